-- PgNotify: start streaming a table's changes.
--   psql -v ON_ERROR_STOP=1 -v table=profiles -f sql/enable_table.sql
--   psql -v ON_ERROR_STOP=1 -v schema=sales -v table='Order Items' -v channel=db_changes \
--        -v exclude='{password_hash}' -v lossless=true -f sql/enable_table.sql
-- Names are exact (case-sensitive, no quoting needed). Run install.sql first.
\if :{?schema}
\else
\set schema public
\endif
\if :{?channel}
\else
\set channel db_changes
\endif
\if :{?lossless}
\else
\set lossless false
\endif
\if :{?exclude}
\else
\set exclude '{}'
\endif
SELECT pgnotify.enable_table(:'schema', :'table', :'channel', :'exclude'::text[], :'lossless'::boolean);
