-- Scheduled ingestion of the latest runs (gik.ingest_latest, 94_scheduler.sql) and the ingestion log
-- (93_ingest_log.sql). Runs from the generated mirror (2025-10-01, -02 and -03 00z),
-- so as_of replaces now(). health.sql, refs.sql and retention.sql go on with its datasets.
SET client_min_messages = warning;
\set SHOW_CONTEXT never
SET timezone = 'UTC';
-- A GEFS-layout dataset of 3 members, 6-hourly to 24 h, APCP only; the mirror holds its 00z runs of 1-3 October.
SELECT gik.define_dataset('ops_gefs', 'idx',
    's3://noaa-gefs-pds/gefs.{date}/{cycle}/atmos/pgrb2sp25/{member}.t{cycle}z.pgrb2s.0p25.f{step3}',
    '{0,6,12,18}', gik.step_list('0-24/6'), members => '{0,1,2}', member_tokens => '{gec00,gep01,gep02}',
    variables => '{APCP}') > 0 AS defined;

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

-- Bad calls.
CALL gik.ingest_latest('no_such_dataset');
CALL gik.ingest_latest('ops_gefs', max_runs => 0);
SELECT * FROM gik.latest_runs('ops_gefs', '2025-10-02 07:00+00', lookback => '0');
