-- Privileges (99_privileges.sql, and the "-- grant: reader" or "-- grant: ingest" line above each routine):
-- what gik_reader, gik_ingest and PUBLIC may do with every routine, table, view and sequence of pg_gik.
SET client_min_messages = warning;
CREATE TEMP VIEW member AS
SELECT d.classid, d.objid FROM pg_depend d
WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_gik');

-- Every routine: PUBLIC may not execute it, gik_ingest may, and the grants are in the same order everywhere.
SELECT count(*) AS routines,
       count(*) FILTER (WHERE has_function_privilege('public', p.oid, 'EXECUTE')) AS public_may_execute,
       count(*) FILTER (WHERE NOT has_function_privilege('gik_ingest', p.oid, 'EXECUTE')) AS ingest_may_not,
       count(*) FILTER (WHERE p.pronamespace <> 'gik'::regnamespace) AS outside_gik
FROM pg_proc p JOIN member m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid;
SELECT replace(p.proacl::text, (SELECT r.rolname FROM pg_roles r WHERE r.oid = p.proowner), 'OWNER') AS acl, count(*)
FROM pg_proc p JOIN member m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
GROUP BY 1 ORDER BY 1;

-- The routines gik_reader may execute (every other one is for gik_ingest only).
SELECT p.oid::regprocedure AS reader_routine
FROM pg_proc p JOIN member m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
WHERE has_function_privilege('gik_reader', p.oid, 'EXECUTE')
ORDER BY p.oid::regprocedure::text;

-- Every table, view and sequence: gik_reader reads it, gik_ingest writes it (sequences: uses them), PUBLIC nothing.
SELECT c.relkind, count(*) AS relations,
       count(*) FILTER (WHERE has_table_privilege('public', c.oid, 'SELECT')
                           OR (c.relkind = 'S' AND has_sequence_privilege('public', c.oid, 'USAGE'))) AS public_may_use,
       count(*) FILTER (WHERE c.relkind <> 'S' AND NOT has_table_privilege('gik_reader', c.oid, 'SELECT')) AS reader_may_not_read,
       count(*) FILTER (WHERE c.relkind <> 'S' AND NOT has_table_privilege('gik_ingest', c.oid, 'SELECT, INSERT, UPDATE, DELETE')) AS ingest_may_not_write,
       count(*) FILTER (WHERE c.relkind = 'S' AND NOT has_sequence_privilege('gik_ingest', c.oid, 'USAGE')) AS ingest_may_not_use
FROM pg_class c JOIN member m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
WHERE c.relkind IN ('r', 'p', 'v', 'S')
GROUP BY 1 ORDER BY 1;
