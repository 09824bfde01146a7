-- PgNotify: stop streaming a table's changes.
--   psql -v ON_ERROR_STOP=1 -v table=profiles -f sql/disable_table.sql
\if :{?schema}
\else
\set schema public
\endif
SELECT pgnotify.disable_table(:'schema', :'table');
