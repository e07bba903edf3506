-- Health (96_health.sql) and attempts in progress (93_ingest_log.sql) of scheduler.sql's datasets.
SET client_min_messages = warning;
\set SHOW_CONTEXT never
SET timezone = 'UTC';
-- Health per dataset (ages are relative to now(): these runs are old, so 'behind').
SELECT dataset, latest_complete, latest_complete_version, latest_run, latest_run_status, partial_runs, partial_init_times,
       running, last_outcome, failures_24h, consecutive_failures, last_error_run, last_error IS NOT NULL AS has_error, state
FROM gik.ingest_health WHERE dataset LIKE 'ops\_%' ORDER BY dataset;
SELECT count(*) AS in_progress FROM gik.ingest_progress WHERE dataset LIKE 'ops\_%';
