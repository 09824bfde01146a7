-- PgNotify: send columns again that a table's trigger excludes. Exclusions only widen (enable_table adds to them);
-- this explicit call is the only way to narrow them.
--   psql -v ON_ERROR_STOP=1 -v table=profiles -v columns='{password_hash}' -f sql/remove_excluded_columns.sql
-- Prints the columns still excluded. A renamed column is removed by its current name; name its old one too to drop
-- that name from the list.
\if :{?schema}
\else
\set schema public
\endif
SELECT pgnotify.remove_excluded_columns(:'schema', :'table', :'columns'::text[]);
