-- PgNotify: the tables whose changes are streamed.
--   psql -f sql/list_tables.sql
SELECT * FROM pgnotify.enabled_tables();
