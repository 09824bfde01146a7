-- PgNotify: install the pgnotify schema, its shared trigger function and the helpers that enable tables.
-- Idempotent, and safe when several app instances run it at the same moment (an advisory lock serialises them).
--   psql -v ON_ERROR_STOP=1 -f sql/install.sql
-- The C# installer (PgNotifyInstaller.InstallAsync) runs this very file.
BEGIN;

SELECT pg_advisory_xact_lock(8291770261334);

CREATE SCHEMA IF NOT EXISTS pgnotify;

COMMENT ON SCHEMA pgnotify IS 'PgNotify: streams row changes to listeners through pg_notify.';

-- Rows whose change JSON would not fit NOTIFY's 8000-byte payload limit are parked here; the notification carries
-- only their id and the listener fetches them on a separate connection. Listeners prune old rows.
CREATE TABLE IF NOT EXISTS pgnotify.large_payload (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    payload text NOT NULL
);

CREATE INDEX IF NOT EXISTS large_payload_created_at ON pgnotify.large_payload (created_at);

-- The tables PgNotify watches: one row per table, with the channel its trigger notifies and the columns it never sends.
CREATE TABLE IF NOT EXISTS pgnotify.enabled_table (
    relid regclass PRIMARY KEY,
    channel text NOT NULL,
    excluded_columns text[] NOT NULL DEFAULT '{}'
);

-- The trigger function every watched table shares.
-- Trigger arguments: the channel, then the names of columns to leave out of the payload.
-- Payload: {"v":1,"schema","table","op","xid","seq","ts","data","old"}; "seq" counts the changes of one transaction,
-- so PostgreSQL's folding of identical notifications inside a transaction never merges two real changes.
CREATE OR REPLACE FUNCTION pgnotify.notify_change() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    v_channel text := TG_ARGV[0];
    v_excluded text[] := '{}';
    v_seq bigint;
    v_xid bigint;
    v_data jsonb;
    v_old jsonb;
    v_payload text;
    v_ref bigint;
BEGIN
    IF TG_NARGS > 1 THEN
        v_excluded := TG_ARGV[1:TG_NARGS - 1];
    END IF;

    v_seq := coalesce(nullif(current_setting('pgnotify.seq', true), ''), '0')::bigint + 1;
    PERFORM set_config('pgnotify.seq', v_seq::text, true);
    v_xid := pg_current_xact_id()::text::bigint;

    IF TG_LEVEL = 'ROW' THEN
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            v_data := to_jsonb(NEW) - v_excluded;
        END IF;
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            v_old := to_jsonb(OLD) - v_excluded;
        END IF;
    END IF;

    v_payload := json_build_object(
        'v', 1, 'schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'op', TG_OP,
        'xid', v_xid, 'seq', v_seq, 'ts', clock_timestamp(),
        'data', v_data, 'old', v_old)::text;

    IF octet_length(v_payload) >= 8000 THEN
        INSERT INTO pgnotify.large_payload (payload) VALUES (v_payload) RETURNING id INTO v_ref;
        v_payload := json_build_object(
            'v', 1, 'schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'op', TG_OP,
            'xid', v_xid, 'seq', v_seq, 'ref', v_ref)::text;
    END IF;

    PERFORM pg_notify(v_channel, v_payload);
    RETURN NULL;
END
$fn$;

-- Start watching a table. Re-running with the same settings changes nothing and takes no table lock.
CREATE OR REPLACE FUNCTION pgnotify.enable_table(
    p_schema text, p_table text, p_channel text DEFAULT 'db_changes', p_excluded_columns text[] DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    v_rel regclass;
    v_args text;
    v_missing text;
BEGIN
    IF p_channel IS NULL OR p_channel = '' OR octet_length(p_channel) > 63 THEN
        RAISE EXCEPTION 'pgnotify: channel must be 1 to 63 bytes long' USING ERRCODE = '22023';
    END IF;
    v_rel := to_regclass(format('%I.%I', p_schema, p_table));
    IF v_rel IS NULL THEN
        RAISE EXCEPTION 'pgnotify: table %.% does not exist', quote_ident(p_schema), quote_ident(p_table)
            USING ERRCODE = '42P01';
    END IF;
    p_excluded_columns := coalesce(p_excluded_columns, '{}');
    -- Two instances enabling the same table at once: the second waits, then finds it done.
    PERFORM pg_advisory_xact_lock(hashtextextended('pgnotify.enable_table:' || v_rel::oid::text, 0));
    SELECT string_agg(quote_ident(c), ', ') INTO v_missing
    FROM unnest(p_excluded_columns) AS c
    WHERE NOT EXISTS (
        SELECT 1 FROM pg_attribute a
        WHERE a.attrelid = v_rel AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'pgnotify: table % has no column(s) %', v_rel, v_missing USING ERRCODE = '42703';
    END IF;

    IF EXISTS (
        SELECT 1 FROM pgnotify.enabled_table e
        WHERE e.relid = v_rel AND e.channel = p_channel AND e.excluded_columns = p_excluded_columns)
       AND EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = v_rel AND tgname = 'pgnotify_row_change')
       AND EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = v_rel AND tgname = 'pgnotify_truncate') THEN
        RETURN;
    END IF;

    SELECT string_agg(quote_literal(a), ', ' ORDER BY o) INTO v_args
    FROM unnest(array_prepend(p_channel, p_excluded_columns)) WITH ORDINALITY AS t(a, o);

    EXECUTE format('DROP TRIGGER IF EXISTS pgnotify_row_change ON %s', v_rel);
    EXECUTE format('DROP TRIGGER IF EXISTS pgnotify_truncate ON %s', v_rel);
    EXECUTE format(
        'CREATE TRIGGER pgnotify_row_change AFTER INSERT OR UPDATE OR DELETE ON %s '
        'FOR EACH ROW EXECUTE FUNCTION pgnotify.notify_change(%s)', v_rel, v_args);
    EXECUTE format(
        'CREATE TRIGGER pgnotify_truncate AFTER TRUNCATE ON %s '
        'FOR EACH STATEMENT EXECUTE FUNCTION pgnotify.notify_change(%s)', v_rel, v_args);

    INSERT INTO pgnotify.enabled_table (relid, channel, excluded_columns)
    VALUES (v_rel, p_channel, p_excluded_columns)
    ON CONFLICT (relid) DO UPDATE SET channel = excluded.channel, excluded_columns = excluded.excluded_columns;
END
$fn$;

-- Stop watching a table. A table that is not watched (or does not exist) is not an error.
CREATE OR REPLACE FUNCTION pgnotify.disable_table(p_schema text, p_table text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
    v_rel regclass := to_regclass(format('%I.%I', p_schema, p_table));
BEGIN
    IF v_rel IS NULL THEN
        RETURN;
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS pgnotify_row_change ON %s', v_rel);
    EXECUTE format('DROP TRIGGER IF EXISTS pgnotify_truncate ON %s', v_rel);
    DELETE FROM pgnotify.enabled_table WHERE relid = v_rel;
END
$fn$;

-- The tables being watched, by their current names.
CREATE OR REPLACE FUNCTION pgnotify.enabled_tables()
RETURNS TABLE (schema_name text, table_name text, channel text, excluded_columns text[])
LANGUAGE sql STABLE AS $fn$
    SELECT n.nspname::text, c.relname::text, e.channel, e.excluded_columns
    FROM pgnotify.enabled_table e
    JOIN pg_class c ON c.oid = e.relid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = e.relid AND t.tgname = 'pgnotify_row_change')
    ORDER BY 1, 2
$fn$;

COMMIT;
