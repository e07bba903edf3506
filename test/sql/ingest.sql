-- Ingestion from the loopback mirror: GEFS (.idx, one file per member) and ECMWF (.index, members inside files).
SET client_min_messages = warning;
\set SHOW_CONTEXT never
SET timezone = 'UTC';

-- Built-in datasets and the files of a run.
SELECT name, index_format, cycles, cardinality(steps) AS steps, steps[1:3] AS first_steps, steps[cardinality(steps)] AS last_step
FROM gik.dataset ORDER BY name;
SELECT file_no, source, step, member, url, index_url
FROM gik.plan_files('gefs_0p25', '2025-10-01 00:00+00', '{0,30}', '{0,240}');
SELECT source, step, member, url, index_url, index_members
FROM gik.plan_files('ecmwf_ens_0p25', '2025-10-01 00:00+00', steps => '{24}');
SELECT source, step, member, url, index_url, index_members
FROM gik.plan_files('ecmwf_ens_0p25', '2026-06-01 12:00+00', steps => '{6}');
SELECT count(*) AS files, min(step), max(step) FROM gik.plan_files('ecmwf_ens_0p25', '2026-06-01 06:00+00');
SELECT gik.step_list('0-12/3,18,24-30/6');

-- GEFS run: 3 members x 9 steps, every message.
SELECT status, version, files_expected, files_found, files_missing, refs, index_bytes > 0 AS read_index,
       grib_bytes > 0 AS learned_templates, error
FROM gik.ingest_run('gefs_0p25', '2025-10-01 00:00+00', members => '{0,1,2}', steps => gik.step_list('0-24/3'));
-- Normalised keys: APCP windows reset every 6 h; member from ENS=.
SELECT member, file_step, variable, level, stat, step_start, step_end
FROM gik.chunk_ref WHERE dataset = 'gefs_0p25' AND variable = 'APCP' AND member = 1 ORDER BY file_step;
SELECT variable, level, stat, count(*) AS refs, count(DISTINCT member) AS members, min(step_end), max(step_end)
FROM gik.chunk_ref WHERE dataset = 'gefs_0p25' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
-- Templates learned once per field from one message.
SELECT variable, level, stat, short_name, units, packing, g.grid_type, g.ni, g.nj, g.lat_first, g.lon_first, g.di
FROM gik.field f JOIN gik.dataset d USING (dataset_id) JOIN gik.grid g USING (grid_id)
WHERE d.name = 'gefs_0p25' AND variable IN ('APCP', 'TMP', 'TMAX', 'PRMSL') ORDER BY variable;
SELECT count(*) AS fields_without_template FROM gik.field WHERE grid_id IS NULL;
-- Re-ingesting an unchanged run adds no version and reads no GRIB bytes.
SELECT status, version, refs, grib_bytes
FROM gik.ingest_run('gefs_0p25', '2025-10-01 00:00+00', members => '{0,1,2}', steps => gik.step_list('0-24/3'));
SELECT v.version, v.files_added, v.files_changed, v.refs, v.note FROM gik.run_version v JOIN gik.run r USING (run_id)
WHERE r.dataset_id = (SELECT dataset_id FROM gik.dataset WHERE name = 'gefs_0p25') ORDER BY v.version;

-- Selecting variables ('VAR' or 'VAR:LEVEL') makes a new version with only those; earlier versions stay readable.
SELECT status, version, refs FROM gik.ingest_run('gefs_0p25', '2025-10-01 00:00+00', variables => '{APCP,TMP:2 m above ground}',
                                                 members => '{0,1,2}', steps => gik.step_list('0-24/3'));
SELECT variable, level, count(*) FROM gik.chunk_ref WHERE dataset = 'gefs_0p25' GROUP BY 1, 2 ORDER BY 1, 2;
-- A narrower selection retires the files it no longer covers.
SELECT status, version, refs FROM gik.ingest_run('gefs_0p25', '2025-10-01 00:00+00', variables => '{APCP}',
                                                 members => '{0,1,2}', steps => '{6,12}');
SELECT member, file_step, variable FROM gik.chunk_ref WHERE dataset = 'gefs_0p25' ORDER BY 1, 2;
SELECT v.version, v.files_added, v.files_changed, v.refs, v.note FROM gik.run_version v JOIN gik.run r USING (run_id)
WHERE r.dataset_id = (SELECT dataset_id FROM gik.dataset WHERE name = 'gefs_0p25') ORDER BY v.version;

-- ECMWF before IFS 50r1: the control is the cf message inside enfo-ef; tp windows run from the start.
SELECT status, files_expected, files_found, refs
FROM gik.ingest_run('ecmwf_ens_0p25', '2025-10-01 00:00+00', steps => '{0,6,12,18,24}');
SELECT member, count(*) AS refs, count(DISTINCT file_id) AS files FROM gik.chunk_ref
WHERE dataset = 'ecmwf_ens_0p25' AND init_time = '2025-10-01 00:00+00' GROUP BY member ORDER BY member;
SELECT variable, level, stat, step_start, step_end, count(*) AS members FROM gik.chunk_ref
WHERE dataset = 'ecmwf_ens_0p25' AND init_time = '2025-10-01 00:00+00' AND variable = 'tp'
GROUP BY 1, 2, 3, 4, 5 ORDER BY step_end;
SELECT variable, short_name, units, packing, g.ni, g.nj, g.lon_first, g.lon_last FROM gik.field f
JOIN gik.grid g USING (grid_id) WHERE dataset_id = (SELECT dataset_id FROM gik.dataset WHERE name = 'ecmwf_ens_0p25')
ORDER BY variable;

-- ECMWF after 50r1 (2026-05-12 06z): the control comes from the oper-fc files.
SELECT status, files_expected, files_found, refs
FROM gik.ingest_run('ecmwf_ens_0p25', '2026-06-01 12:00+00', steps => '{0,6,12}');
SELECT c.member, f.source, count(*) AS refs FROM gik.chunk_ref c JOIN gik.file f USING (file_id)
WHERE dataset = 'ecmwf_ens_0p25' AND c.init_time = '2026-06-01 12:00+00' GROUP BY 1, 2 ORDER BY 1, 2;

-- Missing files: an error listing them, or with allow_missing a partial run that records them.
SELECT status FROM gik.ingest_run('gefs_0p25', '2025-10-01 00:00+00', members => '{0,1,2}', steps => '{24,27,30}');
SELECT status, version, files_expected, files_found, files_missing
FROM gik.ingest_run('gefs_0p25', '2025-10-01 00:00+00', variables => '{APCP,TMP:2 m above ground}',
                    members => '{0,1,2}', steps => gik.step_list('0-30/3'), allow_missing => true);
SELECT step, member, found, url FROM gik.file f JOIN gik.run r USING (run_id)
WHERE r.init_time = '2025-10-01 00:00+00' AND f.valid_to IS NULL AND NOT found ORDER BY step, member;

-- Bad requests.
SELECT gik.ingest_run('no_such_dataset', '2025-10-01 00:00+00');
SELECT gik.ingest_run('gefs_0p25', '2025-10-01 03:00+00');
SELECT gik.ingest_run('gefs_0p25', '2025-10-01 00:00+00', members => '{99}');

-- A user-defined dataset (any URL template, no C changes); learn_templates => false reads no GRIB bytes.
SELECT gik.define_dataset('gefs_ctl_only', 'idx',
    's3://noaa-gefs-pds/gefs.{date}/{cycle}/atmos/pgrb2sp25/{member}.t{cycle}z.pgrb2s.0p25.f{step3}',
    '{0}', gik.step_list('0-24/6'), members => '{0}', member_tokens => '{gec00}', variables => '{APCP}') > 0 AS defined;
SELECT status, files_expected, refs, grib_bytes FROM gik.ingest_run('gefs_ctl_only', '2025-10-01 00:00+00', learn_templates => false);
SELECT member, step_start, step_end, byte_length > 0 AS has_length FROM gik.chunk_ref WHERE dataset = 'gefs_ctl_only' ORDER BY step_end;

-- Storage per reference.
SELECT dataset, refs, packs, files, bytes_per_ref > 0 AS measured FROM gik.storage WHERE refs > 0 ORDER BY dataset;
