-- Operations: scheduled ingestion of the latest runs (gik.ingest_latest), the ingestion log, health,
-- a run's earlier versions, and retention by dropping day partitions. Runs from the generated mirror
-- (2025-10-01, -02 and -03 00z), so as_of replaces now().
SET client_min_messages = warning;
\set SHOW_CONTEXT never
SET timezone = 'UTC';
-- A GEFS-layout dataset of 3 members, 6-hourly to 24 h, APCP only; the mirror holds its 00z runs of 1-3 October.
SELECT gik.define_dataset('ops_gefs', 'idx',
    's3://noaa-gefs-pds/gefs.{date}/{cycle}/atmos/pgrb2sp25/{member}.t{cycle}z.pgrb2s.0p25.f{step3}',
    '{0,6,12,18}', gik.step_list('0-24/6'), members => '{0,1,2}', member_tokens => '{gec00,gep01,gep02}',
    variables => '{APCP}') > 0 AS defined;
-- Masks the dataset id in partition names (it depends on the tests before).
CREATE FUNCTION pg_temp.parts(dataset text) RETURNS TABLE (level int, part text)
LANGUAGE sql AS $$
    SELECT t.level, regexp_replace(t.relid::text, 'chunk_pack_\d+', 'chunk_pack_ID')
    FROM gik.dataset d, pg_partition_tree(format('gik.chunk_pack_%s', d.dataset_id)::regclass) t
    WHERE d.name = dataset ORDER BY 2 $$;

-- What a call would do on 2 October at 07z: cycles of the last 30 h, newest first, unseen ones probed upstream.
SELECT init_time, run_status, failures, probes, probes_found, action, reason
FROM gik.latest_runs('ops_gefs', '2025-10-02 07:00+00', lookback => '30 hours');
-- One run per call at most: the newest published one.
CALL gik.ingest_latest('ops_gefs', '2025-10-02 07:00+00', max_runs => 1);
-- Catching up: the new 3 October run first, then the missed 1 October run.
CALL gik.ingest_latest('ops_gefs', '2025-10-03 07:00+00', lookback => '3 days');
SELECT call_id - min(call_id) OVER () AS call, call_pos, call_runs, init_time, reason, status, outcome, version_before,
       version, files_expected, files_found, files_missing, refs, index_bytes > 0 AS read_index,
       finished >= started AS timed, total_ms >= 0 AS timed_ms, error
FROM gik.ingest_log l JOIN gik.dataset d USING (dataset_id) WHERE d.name = 'ops_gefs' ORDER BY log_id;
SELECT init_time, status, version, refs FROM gik.run JOIN gik.dataset USING (dataset_id) WHERE name = 'ops_gefs' ORDER BY 1;
-- Nothing new: no attempt is logged.
SELECT coalesce(max(log_id), 0) AS last_log FROM gik.ingest_log \gset
CALL gik.ingest_latest('ops_gefs', '2025-10-03 07:00+00', lookback => '3 days');
SELECT count(*) AS new_attempts FROM gik.ingest_log WHERE log_id > :last_log;
-- recheck re-reads complete runs younger than it: unchanged upstream, so no new version.
CALL gik.ingest_latest('ops_gefs', '2025-10-03 07:00+00', lookback => '3 days', recheck => '1 day');
SELECT init_time, reason, status, outcome, version_before, version FROM gik.ingest_log WHERE log_id > :last_log ORDER BY log_id;

-- A run still being published (its f030 files are missing upstream) is recorded as partial and retried.
SELECT gik.define_dataset('ops_gefs30', 'idx',
    's3://noaa-gefs-pds/gefs.{date}/{cycle}/atmos/pgrb2sp25/{member}.t{cycle}z.pgrb2s.0p25.f{step3}',
    '{0}', gik.step_list('0-30/6'), members => '{0,1,2}', member_tokens => '{gec00,gep01,gep02}',
    variables => '{APCP}') > 0 AS defined;
SELECT init_time, probes, probes_found, action, reason FROM gik.latest_runs('ops_gefs30', '2025-10-03 07:00+00', '3 days');
CALL gik.ingest_latest('ops_gefs30', '2025-10-03 07:00+00', lookback => '3 days');
CALL gik.ingest_latest('ops_gefs30', '2025-10-03 07:00+00', lookback => '3 days');
SELECT init_time, reason, status, outcome, version, files_expected, files_found, files_missing, refs
FROM gik.ingest_log JOIN gik.dataset USING (dataset_id) WHERE name = 'ops_gefs30' ORDER BY log_id;

-- ECMWF (members inside the files), steps 0 and 24 only: three runs to catch up, two per call.
SELECT gik.clone_dataset('ecmwf_ens_0p25', 'ops_ecmwf', '{tp}') > 0 AS cloned;
UPDATE gik.dataset_source s SET steps = '{0,24}' FROM gik.dataset d
WHERE d.dataset_id = s.dataset_id AND d.name = 'ops_ecmwf';
CALL gik.ingest_latest('ops_ecmwf', '2025-10-03 12:00+00', max_runs => 2, lookback => '3 days');
CALL gik.ingest_latest('ops_ecmwf', '2025-10-03 12:00+00', max_runs => 2, lookback => '3 days');
SELECT l.call_id - min(l.call_id) OVER () AS call, l.init_time, l.reason, l.status, l.files_found, l.refs, r.refs AS run_refs
FROM gik.ingest_log l JOIN gik.dataset d USING (dataset_id) JOIN gik.run r USING (dataset_id, init_time)
WHERE d.name = 'ops_ecmwf' ORDER BY l.log_id;

-- Failures are recorded, not lost: an index of the wrong date fails the 2 October run (its own changes
-- roll back), and the procedure goes on with the 1 October run.
SELECT gik.define_dataset('ops_wrong', 'idx',
    's3://noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25/{member}.t00z.pgrb2s.0p25.f{step3}',
    '{0}', gik.step_list('0-24/6'), members => '{0,1,2}', member_tokens => '{gec00,gep01,gep02}',
    variables => '{APCP}') > 0 AS defined;
CALL gik.ingest_latest('ops_wrong', '2025-10-02 07:00+00');
SELECT init_time, reason, status, outcome, version, files_expected, files_found, sqlstate, error, error_detail
FROM gik.ingest_log JOIN gik.dataset USING (dataset_id) WHERE name = 'ops_wrong' ORDER BY log_id;
SELECT init_time, status, version FROM gik.run JOIN gik.dataset USING (dataset_id) WHERE name = 'ops_wrong';
-- The failed run waits retry_after (doubling after each failure), then is retried, until max_attempts.
SELECT init_time, run_status, failures, action, reason FROM gik.latest_runs('ops_wrong', '2025-10-02 07:00+00');
CALL gik.ingest_latest('ops_wrong', '2025-10-02 07:00+00', retry_after => '0');
SELECT init_time, failures, action, reason FROM gik.latest_runs('ops_wrong', '2025-10-02 07:00+00', max_attempts => 2);
-- Probing an unreachable upstream is logged too (init_time NULL), and the call itself succeeds.
SELECT gik.define_dataset('ops_down', 'idx', 'https://example.com/{date}/{cycle}/x.f{step3}', '{0}', '{0,6}') > 0 AS defined;
CALL gik.ingest_latest('ops_down', '2025-10-02 07:00+00');
SELECT init_time, reason, status, outcome, sqlstate, error, error_detail
FROM gik.ingest_log JOIN gik.dataset USING (dataset_id) WHERE name = 'ops_down';

-- Health per dataset (ages are relative to now(): these runs are old, so 'behind').
SELECT dataset, latest_complete, latest_complete_version, latest_run, latest_run_status, partial_runs, partial_init_times,
       running, last_outcome, failures_24h, consecutive_failures, last_error_run, last_error IS NOT NULL AS has_error, state
FROM gik.ingest_health WHERE dataset LIKE 'ops\_%' ORDER BY dataset;
SELECT count(*) AS in_progress FROM gik.ingest_progress WHERE dataset LIKE 'ops\_%';

-- Bad calls.
CALL gik.ingest_latest('no_such_dataset');
CALL gik.ingest_latest('ops_gefs', max_runs => 0);
SELECT * FROM gik.latest_runs('ops_gefs', '2025-10-02 07:00+00', lookback => '0');

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

-- Retention drops whole UTC days by dropping their partitions, and deletes their runs.
SELECT * FROM pg_temp.parts('ops_gefs');
SELECT regexp_replace(partition_name, '\d+_', 'ID_') AS partition_name, day, cutoff, bytes > 0 AS sized
FROM gik.expired_partitions('ops_gefs', cutoff => '2025-10-02 12:00+00');
SELECT regexp_replace(partition_name, '\d+_', 'ID_') AS partition_name, day, runs, bytes > 0 AS sized
FROM gik.drop_runs_before('ops_gefs', '2025-10-02 12:00+00');
SELECT * FROM pg_temp.parts('ops_gefs');
SELECT init_time, count(*) AS refs FROM gik.chunk_ref WHERE dataset = 'ops_gefs' GROUP BY 1 ORDER BY 1;
SELECT init_time FROM gik.run JOIN gik.dataset USING (dataset_id) WHERE name = 'ops_gefs' ORDER BY 1;
-- Nothing to drop before the cutoff's own day.
SELECT count(*) AS dropped FROM gik.drop_runs_before('ops_gefs', '2025-10-02 23:59+00');
-- With a retention of 1 day, the scheduled procedure drops 2 October at 4 October 00z and keeps 3 October;
-- gik.ingest_latest no longer looks at cycles older than the retention.
UPDATE gik.dataset SET retention = '1 day' WHERE name = 'ops_gefs';
SELECT regexp_replace(partition_name, '\d+_', 'ID_') AS partition_name, day, cutoff
FROM gik.expired_partitions(as_of => '2025-10-04 00:00+00') WHERE dataset = 'ops_gefs';
CALL gik.apply_retention(as_of => '2025-10-04 00:00+00', log_retention => NULL);
SELECT * FROM pg_temp.parts('ops_gefs');
SELECT init_time, status, count(*) OVER () AS runs FROM gik.run JOIN gik.dataset USING (dataset_id) WHERE name = 'ops_gefs';
SELECT min(init_time) AS oldest_candidate FROM gik.latest_runs('ops_gefs', '2025-10-04 00:00+00', lookback => '3 days', probe => false);
SELECT count(*) > 0 AS log_kept FROM gik.ingest_log JOIN gik.dataset USING (dataset_id) WHERE name = 'ops_gefs';
SELECT gik.drop_runs_before('no_such_dataset', now());
SELECT gik.drop_runs_before('ops_gefs', NULL);
CALL gik.apply_retention('no_such_dataset');

-- Leave nothing behind for the other tests.
SELECT name, gik.drop_dataset(name) AS dropped FROM gik.dataset WHERE name LIKE 'ops\_%' ORDER BY name;
SELECT count(*) AS log_rows FROM gik.ingest_log l WHERE NOT EXISTS (SELECT FROM gik.dataset d WHERE d.dataset_id = l.dataset_id);
