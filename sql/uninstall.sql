-- PgNotify: remove everything it installed: its triggers on every watched table, its functions and tables.
--   psql -v ON_ERROR_STOP=1 -f sql/uninstall.sql
-- The triggers depend on pgnotify.notify_change(), so CASCADE drops them with the schema; the watched tables and
-- their data are untouched.
DROP SCHEMA IF EXISTS pgnotify CASCADE;
