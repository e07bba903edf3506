-- Health of the catalog: what each step of a run holds (members present and missing) and, per dataset, the
-- state of its ingestion.

-- What each step of a run holds: the ensemble members with references, and those missing.
CREATE VIEW gik.run_members AS
SELECT d.name AS dataset, x.init_time, x.step, coalesce(cardinality(x.present), 0) AS members_present,
       cardinality(d.members) AS members_expected, x.present AS members,
       ARRAY(SELECT m FROM unnest(d.members) m WHERE m <> ALL (coalesce(x.present, '{}')) ORDER BY m) AS members_missing
FROM (SELECT r.dataset_id, r.init_time, f.step,
             array_agg(DISTINCT p.member ORDER BY p.member) FILTER (WHERE p.member >= 0) AS present
      FROM gik.run r
      JOIN gik.file f ON f.run_id = r.run_id AND f.valid_to IS NULL
      LEFT JOIN gik.chunk_pack p ON p.file_id = f.file_id AND p.dataset_id = r.dataset_id AND p.init_time = r.init_time
      GROUP BY 1, 2, 3) x
JOIN gik.dataset d ON d.dataset_id = x.dataset_id;
COMMENT ON VIEW gik.run_members IS
'Per run and forecast step: how many of the dataset''s ensemble members have references (not the mean or spread), which, and which are missing (a file not published, or an ECMWF file holding fewer members than the ensemble). Deterministic datasets show none. Filter on dataset and init_time.';

-- Per dataset: the latest complete run and its age, partial runs, running and failed attempts.
CREATE VIEW gik.ingest_health AS
SELECT d.name AS dataset,
       lc.init_time AS latest_complete,
       now() - lc.init_time AS latest_complete_age,
       lc.version AS latest_complete_version,
       lr.init_time AS latest_run,
       lr.status AS latest_run_status,
       coalesce(pr.n, 0) AS partial_runs,
       pr.init_times AS partial_init_times,
       lg.running,
       lg.last_attempt,
       lg.last_outcome,
       lg.failures_24h,
       lg.consecutive_failures,
       le.finished AS last_error_at,
       le.init_time AS last_error_run,
       le.error AS last_error,
       CASE WHEN lc.init_time IS NULL AND lr.init_time IS NULL AND lg.last_attempt IS NULL THEN 'no runs'
            WHEN lg.consecutive_failures > 0 THEN 'failing'
            WHEN lc.init_time IS NULL OR now() - lc.init_time > interval '1 day' THEN 'behind'
            ELSE 'ok' END AS state
FROM gik.dataset d
LEFT JOIN LATERAL (SELECT r.init_time, r.version FROM gik.run r
                   WHERE r.dataset_id = d.dataset_id AND r.status = 'complete'
                   ORDER BY r.init_time DESC LIMIT 1) lc ON true
LEFT JOIN LATERAL (SELECT r.init_time, r.status FROM gik.run r
                   WHERE r.dataset_id = d.dataset_id ORDER BY r.init_time DESC LIMIT 1) lr ON true
LEFT JOIN LATERAL (SELECT count(*) AS n, array_agg(r.init_time ORDER BY r.init_time) AS init_times FROM gik.run r
                   WHERE r.dataset_id = d.dataset_id AND r.status = 'partial') pr ON true
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE l.status = 'running') AS running,
           max(l.started) AS last_attempt,
           (SELECT x.outcome FROM gik.ingest_log x WHERE x.dataset_id = d.dataset_id AND x.status <> 'running'
            ORDER BY x.log_id DESC LIMIT 1) AS last_outcome,
           count(*) FILTER (WHERE l.status = 'failed' AND l.finished > now() - interval '1 day') AS failures_24h,
           count(*) FILTER (WHERE l.status = 'failed'
                            AND l.log_id > coalesce((SELECT max(s.log_id) FROM gik.ingest_log s
                                                     WHERE s.dataset_id = d.dataset_id
                                                       AND s.status IN ('complete', 'partial')), 0)) AS consecutive_failures
    FROM gik.ingest_log l WHERE l.dataset_id = d.dataset_id) lg ON true
LEFT JOIN LATERAL (SELECT x.finished, x.init_time, x.error FROM gik.ingest_log x
                   WHERE x.dataset_id = d.dataset_id AND x.status = 'failed'
                   ORDER BY x.log_id DESC LIMIT 1) le ON true;
COMMENT ON VIEW gik.ingest_health IS
'One row per dataset: the latest complete run, its age and version; the latest run and its status; partial runs; attempts running; the last attempt and its outcome; failures in the last 24 hours and since the last successful attempt (consecutive_failures); the last error; and a state: no runs, failing (the last attempts failed), behind (no complete run in the last day) or ok.';
