-- PgNotify: install the pgnotify schema, its shared trigger function and the helpers that enable tables.
-- Idempotent, and safe when several app instances run it at the same moment (an advisory lock serialises them).
--   psql -v ON_ERROR_STOP=1 -f sql/install.sql
-- The C# installer (PgNotifyInstaller.InstallAsync) runs this very file. Run it as the role that should own every
-- PgNotify object (the watched tables' owner, or your migrations role): it refuses objects another role owns.
-- Writers need nothing granted; an app role that is not the owner needs the grants in docs/security.md.
BEGIN;

SELECT pg_advisory_xact_lock(8291770261334);

-- Refuse PgNotify objects that another role owns. CREATE ... IF NOT EXISTS would silently accept a pgnotify schema or
-- table someone else created first, and its owner could then change what the trigger runs or what listeners read.
DO $own$
DECLARE
    v_me oid := (SELECT oid FROM pg_roles WHERE rolname = current_user);
    v_what text;
    v_owner text;
BEGIN
    SELECT 'schema pgnotify', pg_get_userbyid(n.nspowner) INTO v_what, v_owner
    FROM pg_namespace n WHERE n.nspname = 'pgnotify' AND n.nspowner <> v_me;
    IF v_what IS NULL THEN
        SELECT o.what, pg_get_userbyid(o.owner) INTO v_what, v_owner
        FROM (
            SELECT 1 AS rank, format('%s pgnotify.%I', CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' ELSE 'table' END,
                                     c.relname) AS what, c.relowner AS owner
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'pgnotify' AND c.relkind NOT IN ('i', 'I') -- an index belongs to its table's owner
            UNION ALL
            SELECT 2, format('function %s', p.oid::regprocedure), p.proowner
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'pgnotify'
            UNION ALL
            SELECT 3, format('type pgnotify.%I', t.typname), t.typowner
            FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = 'pgnotify') o
        WHERE o.owner <> v_me
        ORDER BY o.rank, o.what LIKE 'sequence%', o.what
        LIMIT 1;
    END IF;
    IF v_what IS NOT NULL THEN
        RAISE EXCEPTION 'pgnotify: % is owned by role %, not by %, the role installing PgNotify', v_what,
            quote_ident(v_owner), quote_ident(current_user)
            USING ERRCODE = '42501',
                  DETAIL = 'PgNotify refuses objects it does not own: their owner could change what its trigger runs or what listeners read.',
                  HINT = 'Find out who created it and why. Then drop it (DROP SCHEMA pgnotify CASCADE drops every PgNotify object) '
                         'and install again, or run the install as the role that owns every object in schema pgnotify.';
    END IF;
END
$own$;

CREATE SCHEMA IF NOT EXISTS pgnotify;

COMMENT ON SCHEMA pgnotify IS 'PgNotify: streams row changes to listeners through pg_notify.';

-- Rows whose change JSON would not fit NOTIFY's 8000-byte payload limit are parked here; the notification carries
-- only their id and the listener fetches them on a separate connection. Old rows are pruned by the trigger itself
-- (see pgnotify.settings) and by listeners.
CREATE TABLE IF NOT EXISTS pgnotify.large_payload (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    payload text NOT NULL
);

CREATE INDEX IF NOT EXISTS large_payload_created_at ON pgnotify.large_payload (created_at);

-- The tables PgNotify watches: one row per table, with the channel its trigger notifies and the columns it never
-- sends. Exclusions are kept by name and by column number, so renaming an excluded column keeps it excluded; they only
-- widen (enable_table adds, only remove_excluded_columns removes). The trigger reads its settings from here.
CREATE TABLE IF NOT EXISTS pgnotify.enabled_table (
    relid regclass PRIMARY KEY,
    channel text NOT NULL,
    excluded_columns text[] NOT NULL DEFAULT '{}'
);

ALTER TABLE pgnotify.enabled_table ADD COLUMN IF NOT EXISTS lossless boolean NOT NULL DEFAULT false;
ALTER TABLE pgnotify.enabled_table ADD COLUMN IF NOT EXISTS excluded_attnums int2[] NOT NULL DEFAULT '{}';

-- Upgrade: exclusions stored before column numbers were.
UPDATE pgnotify.enabled_table e
SET excluded_attnums = ARRAY(
    SELECT a.attnum FROM pg_attribute a
    WHERE a.attrelid = e.relid AND a.attname = ANY (e.excluded_columns) AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY 1)
WHERE e.excluded_attnums = '{}' AND e.excluded_columns <> '{}';

-- Lossless delivery: every change of a table enabled with lossless => true is written here in the writer's own
-- transaction, and NOTIFY only wakes the listeners up. Listeners read the log in position order, so nothing committed
-- while they were disconnected is lost and clients can resume from the last position they saw.
CREATE TABLE IF NOT EXISTS pgnotify.change_log (
    position bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    payload text NOT NULL
);

CREATE INDEX IF NOT EXISTS change_log_created_at ON pgnotify.change_log (created_at);

-- The highest position pruned from the log: a client resuming from an older position must reload instead.
CREATE TABLE IF NOT EXISTS pgnotify.change_log_state (
    id int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    pruned_through bigint NOT NULL DEFAULT 0
);

INSERT INTO pgnotify.change_log_state (id) VALUES (1) ON CONFLICT (id) DO NOTHING;

-- How long change_log and large_payload keep rows. The trigger enforces it itself, so the tables stay bounded even
-- when no app instance runs: every 1000th log position and every 100th large payload, it deletes a bounded batch of
-- the oldest rows past these limits. The installer sets them from PgNotifyOptions (ChangeLogRetention,
-- ChangeLogMaxRows, LargePayloadRetention); by hand: UPDATE pgnotify.settings SET change_log_retention = '2 days';
CREATE TABLE IF NOT EXISTS pgnotify.settings (
    id int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    change_log_retention interval NOT NULL DEFAULT '24 hours' CHECK (change_log_retention >= interval '0'),
    change_log_max_rows bigint NOT NULL DEFAULT 1000000 CHECK (change_log_max_rows >= 1),
    large_payload_retention interval NOT NULL DEFAULT '1 hour' CHECK (large_payload_retention >= interval '0')
);

INSERT INTO pgnotify.settings (id) VALUES (1) ON CONFLICT (id) DO NOTHING;

-- The call stack (PG_CONTEXT) of whoever calls it, one line per level, this function's own line first.
CREATE OR REPLACE FUNCTION pgnotify.call_stack() RETURNS text
LANGUAGE plpgsql AS $fn$
DECLARE
    v_stack text;
BEGIN
    GET DIAGNOSTICS v_stack = PG_CONTEXT;
    RETURN v_stack;
END
$fn$;

-- Whether a call stack taken by pgnotify.emit_change() (through call_stack(), as a plain assignment) shows that
-- pgnotify.notify_change() called it directly, as a plain assignment too. Line 2 is emit_change's own line, line 3 its
-- caller's; both come from the same translated message ("PL/pgSQL function %s line %d at %s"), so line 3 must be line
-- 2 with the function's signature replaced, line numbers aside. That holds in every lc_messages, and no SQL text or
-- name of anyone else's can produce it: only pgnotify.notify_change() formats as that signature.
CREATE OR REPLACE FUNCTION pgnotify.called_by_trigger(p_stack text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT strpos(split_part(p_stack, E'\n', 2), 'pgnotify.emit_change(oid,text,text,text,jsonb,jsonb)') > 0
       AND regexp_replace(split_part(p_stack, E'\n', 3), '[0-9]+', '#', 'g')
           = replace(regexp_replace(split_part(p_stack, E'\n', 2), '[0-9]+', '#', 'g'),
                     'pgnotify.emit_change(oid,text,text,text,jsonb,jsonb)', 'pgnotify.notify_change()')
$fn$;

-- Writes one change: strips the excluded columns, builds the payload, writes change_log or large_payload, notifies,
-- and prunes old rows now and then. SECURITY DEFINER, so writers need no rights on PgNotify's tables, and it only
-- does jsonb and text work on values it is given: nothing a writer or a table owner controls (casts, types, output
-- functions) runs here with the owner's rights. The row JSON is computed by pgnotify.notify_change(), which runs as
-- the writer.
-- Only pgnotify.notify_change() may call it, directly and as a plain assignment (see called_by_trigger). A writer
-- calling it directly, from a trigger or function of their own, or from a cast run inside notify_change(), is
-- refused, so nobody can write a change_log row that no trigger wrote.
-- Payload: {"v":1,"schema","table","op","xid","seq","ts","data","old"}; "seq" counts the changes of one transaction,
-- so PostgreSQL's folding of identical notifications inside a transaction never merges two real changes.
CREATE OR REPLACE FUNCTION pgnotify.emit_change(
    p_relid oid, p_schema text, p_table text, p_op text, p_data jsonb, p_old jsonb)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_stack text;
    v_channel text;
    v_log boolean;
    v_excluded text[];
    v_position bigint;
    v_seq bigint;
    v_xid bigint;
    v_payload text;
    v_ref bigint;
    v_pruned bigint;
BEGIN
    v_stack := pgnotify.call_stack(); -- a plain assignment: see called_by_trigger
    IF pg_trigger_depth() < 1 OR NOT pgnotify.called_by_trigger(v_stack) THEN
        RAISE EXCEPTION 'pgnotify.emit_change may only be called by the trigger function pgnotify.notify_change()'
            USING ERRCODE = '42501';
    END IF;

    SELECT e.channel, e.lossless,
           e.excluded_columns || ARRAY(
               SELECT a.attname::text FROM pg_attribute a
               WHERE a.attrelid = e.relid AND a.attnum = ANY (e.excluded_attnums) AND NOT a.attisdropped)
    INTO v_channel, v_log, v_excluded
    FROM pgnotify.enabled_table e
    WHERE e.relid = p_relid::regclass;
    IF NOT FOUND THEN
        RETURN false; -- not (or no longer) enabled: disable_table forgets the table
    END IF;

    v_seq := coalesce(nullif(current_setting('pgnotify.seq', true), ''), '0')::bigint + 1;
    PERFORM set_config('pgnotify.seq', v_seq::text, true);
    v_xid := pg_current_xact_id()::text::bigint;
    p_data := p_data - v_excluded;
    p_old := p_old - v_excluded;

    IF v_log THEN
        -- The position comes from the identity default, taken while the INSERT already holds the log's
        -- RowExclusiveLock: the reader relies on that lock to know which transactions may still fill a hole.
        INSERT INTO pgnotify.change_log (payload)
        VALUES (json_build_object(
            'v', 1, 'schema', p_schema, 'table', p_table, 'op', p_op,
            'xid', v_xid, 'seq', v_seq, 'ts', clock_timestamp(),
            'data', p_data, 'old', p_old)::text)
        RETURNING position INTO v_position;
        PERFORM pg_notify(v_channel, '{"v":1,"wake":' || v_position || '}');

        -- Retention in the database itself: the 2000 oldest positions at most, skipping rows another pruner holds. One
        -- pruning writer at a time (a try-lock, so no writer ever waits for another on change_log_state's row).
        IF v_position % 1000 = 0 AND pg_try_advisory_xact_lock(8291770261335) THEN
            WITH doomed AS (
                SELECT l.position FROM pgnotify.change_log l
                WHERE l.position < v_position ORDER BY l.position LIMIT 2000 FOR UPDATE SKIP LOCKED),
            deleted AS (
                DELETE FROM pgnotify.change_log l USING doomed d, pgnotify.settings s
                WHERE l.position = d.position AND s.id = 1
                  AND (l.created_at < now() - s.change_log_retention OR l.position <= v_position - s.change_log_max_rows)
                RETURNING l.position)
            SELECT max(position) INTO v_pruned FROM deleted;
            IF v_pruned IS NOT NULL THEN
                UPDATE pgnotify.change_log_state SET pruned_through = greatest(pruned_through, v_pruned) WHERE id = 1;
            END IF;
        END IF;
        RETURN true;
    END IF;

    v_payload := json_build_object(
        'v', 1, 'schema', p_schema, 'table', p_table, 'op', p_op,
        'xid', v_xid, 'seq', v_seq, 'ts', clock_timestamp(),
        'data', p_data, 'old', p_old)::text;

    IF octet_length(v_payload) >= 8000 THEN
        INSERT INTO pgnotify.large_payload (payload) VALUES (v_payload) RETURNING id INTO v_ref;
        v_payload := json_build_object(
            'v', 1, 'schema', p_schema, 'table', p_table, 'op', p_op,
            'xid', v_xid, 'seq', v_seq, 'ref', v_ref)::text;
        IF v_ref % 100 = 0 THEN
            DELETE FROM pgnotify.large_payload l
            USING (SELECT p.id FROM pgnotify.large_payload p WHERE p.id < v_ref ORDER BY p.id LIMIT 200
                   FOR UPDATE SKIP LOCKED) d, pgnotify.settings s
            WHERE l.id = d.id AND s.id = 1 AND l.created_at < now() - s.large_payload_retention;
        END IF;
    END IF;

    PERFORM pg_notify(v_channel, v_payload);
    RETURN true;
END
$fn$;

-- The trigger function every watched table shares. SECURITY INVOKER: it computes the row JSON (to_jsonb, which may
-- run casts and output functions of the table's types) with the writer's own rights, then hands it to
-- pgnotify.emit_change(). The channel, the mode and the excluded columns come from pgnotify.enabled_table, never from
-- trigger arguments, so re-creating the trigger cannot change them. Keep the call below a plain assignment: that is
-- what emit_change() checks for.
CREATE OR REPLACE FUNCTION pgnotify.notify_change() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_data jsonb;
    v_old jsonb;
    v_sent boolean;
BEGIN
    IF TG_LEVEL = 'ROW' THEN
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            v_data := to_jsonb(NEW);
        END IF;
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            v_old := to_jsonb(OLD);
        END IF;
    END IF;
    v_sent := pgnotify.emit_change(TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP, v_data, v_old);
    RETURN NULL;
END
$fn$;

-- The excluded columns of a table, by their current names: those stored by name, and the current names of those stored
-- by column number (a renamed column keeps being excluded, under both names).
CREATE OR REPLACE FUNCTION pgnotify.effective_excluded_columns(p_rel regclass, p_names text[], p_attnums int2[])
RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT coalesce(array_agg(DISTINCT c ORDER BY c), '{}')
    FROM (
        SELECT unnest(p_names) AS c
        UNION
        SELECT a.attname::text FROM pg_attribute a
        WHERE a.attrelid = p_rel AND a.attnum = ANY (p_attnums) AND NOT a.attisdropped) t
$fn$;

-- Start watching a table, and return the columns that are now excluded. Exclusions only widen: the effective set is
-- what was excluded before plus p_excluded_columns (use pgnotify.remove_excluded_columns to remove one). Re-running
-- with the same settings changes nothing and takes no table lock.
DO $upgrade$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_proc
               WHERE oid = to_regprocedure('pgnotify.enable_table(text, text, text, text[], boolean)')
                 AND prorettype = 'void'::regtype) THEN
        DROP FUNCTION pgnotify.enable_table(text, text, text, text[], boolean);
    END IF;
END
$upgrade$;
DROP FUNCTION IF EXISTS pgnotify.enable_table(text, text, text, text[]);
CREATE OR REPLACE FUNCTION pgnotify.enable_table(
    p_schema text, p_table text, p_channel text DEFAULT 'db_changes', p_excluded_columns text[] DEFAULT '{}',
    p_lossless boolean DEFAULT false)
RETURNS text[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_rel regclass;
    v_missing text;
    v_old pgnotify.enabled_table%ROWTYPE;
    v_names text[];
    v_attnums int2[];
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
    p_lossless := coalesce(p_lossless, false);
    -- Two instances enabling the same table at once: the second waits, then finds it done.
    PERFORM pg_advisory_xact_lock(hashtextextended('pgnotify.enable_table:' || v_rel::oid::text, 0));
    SELECT * INTO v_old FROM pgnotify.enabled_table WHERE relid = v_rel;
    v_old.excluded_columns := coalesce(v_old.excluded_columns, '{}');
    v_old.excluded_attnums := coalesce(v_old.excluded_attnums, '{}');

    -- A requested column must exist, unless it is excluded already (renamed or dropped since).
    SELECT string_agg(quote_ident(c), ', ') INTO v_missing
    FROM unnest(p_excluded_columns) AS c
    WHERE NOT EXISTS (
        SELECT 1 FROM pg_attribute a
        WHERE a.attrelid = v_rel AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped)
      AND c <> ALL (v_old.excluded_columns);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'pgnotify: table % has no column(s) %', v_rel, v_missing USING ERRCODE = '42703';
    END IF;

    v_attnums := ARRAY(
        SELECT DISTINCT n FROM (
            SELECT unnest(v_old.excluded_attnums) AS n
            UNION
            SELECT a.attnum FROM pg_attribute a
            WHERE a.attrelid = v_rel AND a.attnum > 0 AND NOT a.attisdropped
              AND a.attname = ANY (v_old.excluded_columns || p_excluded_columns)) t
        ORDER BY n);
    v_names := pgnotify.effective_excluded_columns(v_rel, v_old.excluded_columns || p_excluded_columns, v_attnums);

    IF v_old.relid IS NOT NULL AND v_old.channel = p_channel AND v_old.lossless = p_lossless
       AND v_old.excluded_columns = v_names AND v_old.excluded_attnums = v_attnums
       AND EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = v_rel AND tgname = 'pgnotify_row_change' AND tgnargs = 0
                   AND tgfoid = 'pgnotify.notify_change()'::regprocedure)
       AND EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = v_rel AND tgname = 'pgnotify_truncate' AND tgnargs = 0
                   AND tgfoid = 'pgnotify.notify_change()'::regprocedure) THEN
        RETURN v_names;
    END IF;

    INSERT INTO pgnotify.enabled_table (relid, channel, excluded_columns, lossless, excluded_attnums)
    VALUES (v_rel, p_channel, v_names, p_lossless, v_attnums)
    ON CONFLICT (relid) DO UPDATE
    SET channel = excluded.channel, excluded_columns = excluded.excluded_columns, lossless = excluded.lossless,
        excluded_attnums = excluded.excluded_attnums;

    IF NOT (EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = v_rel AND tgname = 'pgnotify_row_change' AND tgnargs = 0
                    AND tgfoid = 'pgnotify.notify_change()'::regprocedure)
            AND EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = v_rel AND tgname = 'pgnotify_truncate' AND tgnargs = 0
                        AND tgfoid = 'pgnotify.notify_change()'::regprocedure)) THEN
        EXECUTE format('DROP TRIGGER IF EXISTS pgnotify_row_change ON %s', v_rel);
        EXECUTE format('DROP TRIGGER IF EXISTS pgnotify_truncate ON %s', v_rel);
        EXECUTE format(
            'CREATE TRIGGER pgnotify_row_change AFTER INSERT OR UPDATE OR DELETE ON %s '
            'FOR EACH ROW EXECUTE FUNCTION pgnotify.notify_change()', v_rel);
        EXECUTE format(
            'CREATE TRIGGER pgnotify_truncate AFTER TRUNCATE ON %s '
            'FOR EACH STATEMENT EXECUTE FUNCTION pgnotify.notify_change()', v_rel);
    END IF;
    RETURN v_names;
END
$fn$;

-- The one way to stop excluding columns: an operator's explicit call. Removes each named column from the table's
-- exclusions, by name and by column number (name a renamed column by its current name, and by its old one to drop
-- that too). Returns the columns still excluded.
CREATE OR REPLACE FUNCTION pgnotify.remove_excluded_columns(p_schema text, p_table text, p_columns text[])
RETURNS text[]
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    v_rel regclass := to_regclass(format('%I.%I', p_schema, p_table));
    v_row pgnotify.enabled_table%ROWTYPE;
BEGIN
    IF v_rel IS NULL THEN
        RAISE EXCEPTION 'pgnotify: table %.% does not exist', quote_ident(p_schema), quote_ident(p_table)
            USING ERRCODE = '42P01';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('pgnotify.enable_table:' || v_rel::oid::text, 0));
    SELECT * INTO v_row FROM pgnotify.enabled_table WHERE relid = v_rel FOR UPDATE;
    IF NOT FOUND THEN
        RETURN '{}';
    END IF;
    v_row.excluded_attnums := ARRAY(
        SELECT n FROM unnest(v_row.excluded_attnums) AS n
        WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
                          WHERE a.attrelid = v_rel AND a.attnum = n AND a.attname = ANY (p_columns)));
    v_row.excluded_columns := ARRAY(
        SELECT c FROM unnest(v_row.excluded_columns) AS c WHERE c <> ALL (coalesce(p_columns, '{}')));
    v_row.excluded_columns := pgnotify.effective_excluded_columns(v_rel, v_row.excluded_columns, v_row.excluded_attnums);
    UPDATE pgnotify.enabled_table
    SET excluded_columns = v_row.excluded_columns, excluded_attnums = v_row.excluded_attnums
    WHERE relid = v_rel;
    RETURN v_row.excluded_columns;
END
$fn$;

-- Stop watching a table, and forget its settings (its excluded columns too). A table that is not watched (or does not
-- exist) is not an error.
CREATE OR REPLACE FUNCTION pgnotify.disable_table(p_schema text, p_table text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
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

-- The tables being watched, by their current names. SECURITY DEFINER (it only reads PgNotify's table and the catalogs),
-- so an app role that does not own PgNotify needs only EXECUTE on it to check its configuration.
DROP FUNCTION IF EXISTS pgnotify.enabled_tables();
CREATE OR REPLACE FUNCTION pgnotify.enabled_tables()
RETURNS TABLE (schema_name text, table_name text, channel text, excluded_columns text[], lossless boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT n.nspname::text, c.relname::text, e.channel,
           pgnotify.effective_excluded_columns(e.relid, e.excluded_columns, e.excluded_attnums), e.lossless
    FROM pgnotify.enabled_table e
    JOIN pg_class c ON c.oid = e.relid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = e.relid AND t.tgname = 'pgnotify_row_change')
    ORDER BY 1, 2
$fn$;

-- Rights: nothing for PUBLIC but what writers need. The trigger runs as the writer and calls pgnotify.emit_change(), so
-- writers need USAGE on the schema and EXECUTE on that one function (which refuses any caller but the trigger).
-- Nobody but the owner may attach pgnotify.notify_change() to a table (CREATE TRIGGER needs EXECUTE on it; an
-- existing trigger fires without it). App roles that are not the owner need the grants in docs/security.md.
REVOKE ALL ON SCHEMA pgnotify FROM PUBLIC;
GRANT USAGE ON SCHEMA pgnotify TO PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA pgnotify FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA pgnotify FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgnotify FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgnotify.emit_change(oid, text, text, text, jsonb, jsonb) TO PUBLIC;

COMMIT;
