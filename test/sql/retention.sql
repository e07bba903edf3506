-- Retention (95_retention.sql): dropping whole days of scheduler.sql's dataset, then the dataset.
SET client_min_messages = warning;
\set SHOW_CONTEXT never
SET timezone = 'UTC';
-- Masks the dataset id in partition names (it depends on the tests before).
CREATE FUNCTION pg_temp.parts(dataset text) RETURNS TABLE (level int, part text)
LANGUAGE sql AS $$
    SELECT t.level, regexp_replace(t.relid::text, 'chunk_pack_\d+', 'chunk_pack_ID')
    FROM gik.dataset d, pg_partition_tree(format('gik.chunk_pack_%s', d.dataset_id)::regclass) t
    WHERE d.name = dataset ORDER BY 2 $$;

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
