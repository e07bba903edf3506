-- Ensemble analytics on generated known-answer runs (test/support/gen_scenarios/basic.json and exceedance.json).
SET client_min_messages = warning;
\set SHOW_CONTEXT never
SET timezone = 'UTC';
-- Clones of the built-in datasets keep these runs and templates apart from the other tests.
SELECT gik.clone_dataset('gefs_0p25', 'gefs_test') > 0 AS cloned, gik.clone_dataset('ecmwf_ens_0p25', 'ecmwf_test') > 0 AS cloned;
SELECT status, files_found, refs FROM gik.ingest_run('gefs_test', '2025-10-02 00:00+00', members => '{0,1,2,3,4}', steps => gik.step_list('0-30/3'));
SELECT status, files_found, refs FROM gik.ingest_run('ecmwf_test', '2025-10-02 00:00+00', steps => gik.step_list('0-30/3'));

-- GEFS windows reset every 6 h: [0, 24] is f006 + f012 + f018 + f024, never 0-3 plus 0-6.
SELECT member, weight, step_start, step_end
FROM gik.accumulation_refs('gefs_test', '2025-10-02 00:00+00', 0, 24, '{3}') ORDER BY step_start;
-- [3, 6] and [6, 9] need a difference or a single bucket.
SELECT weight, step_start, step_end FROM gik.accumulation_refs('gefs_test', '2025-10-02 00:00+00', 3, 6, '{3}') ORDER BY weight DESC;
SELECT weight, step_start, step_end FROM gik.accumulation_refs('gefs_test', '2025-10-02 00:00+00', 6, 9, '{3}');
-- ECMWF tp accumulates from the start: tp[48h] - tp[24h], and step 0 counts as zero.
SELECT weight, step_start, step_end FROM gik.accumulation_refs('ecmwf_test', '2025-10-02 00:00+00', 12, 24, '{1}') ORDER BY weight DESC;
SELECT weight, step_start, step_end FROM gik.accumulation_refs('ecmwf_test', '2025-10-02 00:00+00', 0, 24, '{1}');

-- Member 3 gets 3 mm per 3 h over 0-24 h in [30,-5,45,10] plus 30 mm in 6-9 h in [35,0,40,5]: 54 mm at (37E, 2N).
SELECT d AS dataset, gik.accumulate(d, '2025-10-02 00:00+00', 0, 24, 3, gik.bbox(37, 2, 37, 2)) AS mm_0_24
FROM unnest(ARRAY['gefs_test', 'ecmwf_test']) d;
-- The double-count trap: [6, 12] is 36 mm; adding the 6-9 and 6-12 files would give 69.
SELECT gik.accumulate('gefs_test', '2025-10-02 00:00+00', 6, 12, 3, gik.bbox(37, 2, 37, 2)) AS mm_6_12;
SELECT round(a.total[1][1]::numeric, 3) AS mm_6_12 FROM gik.accumulations('ecmwf_test', '2025-10-02 00:00+00', 6, 12, gik.bbox(37, 2, 37, 2), members => '{3}') a;
-- GEFS members 1 and 2 get 60 mm in 12-18 h in [21,-12,25,-8].
SELECT member, total FROM gik.accumulations('gefs_test', '2025-10-02 00:00+00', 12, 18, gik.bbox(23, -10, 24, -10)) ORDER BY member;
-- Member 1: 12.5 mm per 3 h in 18-30 h in a box across 0 degrees, in both longitude conventions.
SELECT lon, (a.grid).ni, (a.grid).lon_first, (a.grid).lon_last, a.total[1][1:3] AS first_cells, a.total[1][19:21] AS last_cells
FROM unnest(ARRAY['-180..180', '0..360']) lon,
     gik.accumulations('gefs_test', '2025-10-02 00:00+00', 18, 30, gik.bbox(-10, 52, 10, 52), lon, members => '{1}') a;
-- ECMWF member 2: tp dips 0.3 mm at 12 h (packing noise upstream); the negative difference clips to 0.
SELECT w, round((gik.accumulate('ecmwf_test', '2025-10-02 00:00+00', w[1], w[2], 2, gik.bbox(32, -2, 32, -2)))[1][1]::numeric, 3) AS mm
FROM (VALUES (ARRAY[9, 12]), (ARRAY[6, 12]), (ARRAY[12, 15]), (ARRAY[0, 24])) v(w);

-- Windows that cannot be covered exactly are an error, never an approximation.
SELECT gik.accumulate('gefs_test', '2025-10-02 00:00+00', 1, 6, 3);
SELECT gik.accumulate('gefs_test', '2025-10-02 00:00+00', 0, 36, 3);
SELECT gik.accumulate('gefs_test', '2025-10-02 00:00+00', 6, 6, 3);

-- Exceedance ladder: member m gets 5m mm over 0-24 h in [30,-5,45,10]; GEFS member 7's f012 is missing.
SELECT status, files_missing FROM gik.ingest_run('gefs_test', '2025-10-03 00:00+00', steps => gik.step_list('0-24/6'), allow_missing => true);
SELECT status, refs FROM gik.ingest_run('ecmwf_test', '2025-10-03 00:00+00', steps => '{0,24}');
-- GEFS: 30 members used, member 7 reported; thresholds equal to exact member values count (>=).
SELECT threshold, probability[1][1] AS p_in_box, round(probability[1][1] * members_used) AS members_over,
       probability[1][3] AS p_outside, members_used, members_expected, members_missing, grid
FROM gik.exceedance('gefs_test', '2025-10-03 00:00+00', 0, 24, '{5,25,50,75,100,125,150}', gik.bbox(44, 2, 46, 2));
-- ECMWF alone (thresholds between member values: tp is packed to about 1e-5 mm).
SELECT threshold, round(probability[1][1] * members_used) AS members_over, members_used, members_missing
FROM gik.exceedance('ecmwf_test', '2025-10-03 00:00+00', 0, 24, '{2.5,52.5,127.5,247.5}', gik.bbox(37, 2, 37, 2));
-- The grand ensemble: 81 of 82 members on the common 1 degree grid.
SELECT threshold, round(probability[1][1] * members_used) AS members_over, members_used, members_expected, members_missing
FROM gik.exceedance(ARRAY['gefs_test', 'ecmwf_test'], '2025-10-03 00:00+00', 0, 24, '{2.5,52.5,127.5,152.5}', gik.bbox(37, 2, 37, 2));
SELECT count(*) AS rows FROM gik.exceedance('{gefs_test,ecmwf_test}', '2025-10-03 00:00+00', 0, 24, '{50}', gik.bbox(37, 2, 37, 2));
-- Ensembles on different grids (GEFS rain at 0.25 degree, ECMWF tp at 1 degree) cannot be combined.
SELECT status FROM gik.ingest_run('gefs_test', '2025-10-01 00:00+00', variables => '{APCP}', members => '{0}', steps => '{6,12,18,24}');
SELECT status FROM gik.ingest_run('ecmwf_test', '2025-10-01 00:00+00', variables => '{tp}', steps => '{0,24}');
SELECT * FROM gik.exceedance(ARRAY['gefs_test', 'ecmwf_test'], '2025-10-01 00:00+00', 0, 24, '{50}', gik.bbox(37, 2, 37, 2));
-- Leave no runs behind for the other tests.
SELECT d, t, gik.drop_run(d, t) > 0 AS dropped
FROM unnest(ARRAY['gefs_test', 'ecmwf_test']) d, unnest(ARRAY['2025-10-01 00:00+00', '2025-10-02 00:00+00', '2025-10-03 00:00+00']::timestamptz[]) t
ORDER BY 1, 2;
SELECT count(*) AS runs, (SELECT count(*) FROM gik.chunk_pack) AS packs, (SELECT count(*) FROM gik.file) AS files FROM gik.run;
SELECT count(*) AS partitions_before FROM pg_partition_tree('gik.chunk_pack') \gset
SELECT gik.drop_dataset('gefs_test') AND gik.drop_dataset('ecmwf_test') AS dropped;
SELECT :partitions_before - count(*) AS partitions_dropped FROM pg_partition_tree('gik.chunk_pack');
