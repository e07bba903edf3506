-- Reading references (42_refs.sql): a run's versions, and one run's references fast, of scheduler.sql's dataset.
SET client_min_messages = warning;
\set SHOW_CONTEXT never
SET timezone = 'UTC';

-- Versions: a new selection makes version 2, the scheduled selection version 3; every version stays readable.
SELECT version, status, refs FROM gik.ingest_run('ops_gefs', '2025-10-02 00:00+00', variables => '{APCP,PRMSL}');
CALL gik.ingest_latest('ops_gefs', '2025-10-02 07:00+00', recheck => '1 day');
SELECT v.version, v.files_added, v.files_changed, v.refs, v.note
FROM gik.run_version v JOIN gik.run r USING (run_id) JOIN gik.dataset d USING (dataset_id)
WHERE d.name = 'ops_gefs' AND r.init_time = '2025-10-02 00:00+00' ORDER BY 1;
SELECT v AS version, variable, count(*) AS refs, count(DISTINCT file_id) AS files
FROM generate_series(1, 3) v, gik.chunk_refs_at('ops_gefs', '2025-10-02 00:00+00', v) GROUP BY 1, 2 ORDER BY 1, 2;
-- The latest version is what gik.chunk_ref shows.
SELECT count(*) AS differences FROM (
    (SELECT * FROM gik.chunk_refs_at('ops_gefs', '2025-10-02 00:00+00', 3)
     EXCEPT ALL SELECT * FROM gik.chunk_ref WHERE dataset = 'ops_gefs' AND init_time = '2025-10-02 00:00+00')
    UNION ALL
    (SELECT * FROM gik.chunk_ref WHERE dataset = 'ops_gefs' AND init_time = '2025-10-02 00:00+00'
     EXCEPT ALL SELECT * FROM gik.chunk_refs_at('ops_gefs', '2025-10-02 00:00+00', 3))) x;
SELECT * FROM gik.chunk_refs_at('ops_gefs', '2025-10-02 00:00+00', 4);
SELECT * FROM gik.chunk_refs_at('ops_gefs', '2025-10-02 00:00+00', 0);
SELECT * FROM gik.chunk_refs_at('ops_gefs', '2025-10-02 06:00+00', 1);

-- gik.run_refs: the same rows as gik.chunk_ref for one run (all, or some variables), read faster.
SELECT count(*) AS differences FROM (
    (SELECT * FROM gik.run_refs('ops_gefs', '2025-10-02 00:00+00', '{APCP:surface}')
     EXCEPT ALL SELECT * FROM gik.chunk_ref WHERE dataset = 'ops_gefs' AND init_time = '2025-10-02 00:00+00' AND variable = 'APCP')
    UNION ALL
    (SELECT * FROM gik.chunk_ref WHERE dataset = 'ops_gefs' AND init_time = '2025-10-02 00:00+00'
     EXCEPT ALL SELECT * FROM gik.run_refs('ops_gefs', '2025-10-02 00:00+00'))) x;
SELECT v AS variables, (SELECT count(*) FROM gik.run_refs('ops_gefs', '2025-10-02 00:00+00', v)) AS refs
FROM (VALUES (NULL::text[]), ('{APCP}'), ('{PRMSL}'), ('{NOPE}')) x(v);
SELECT count(*) AS refs FROM gik.run_refs('ops_gefs', '2025-10-02 06:00+00', '{APCP}');
