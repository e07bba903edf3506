-- pg_gik demo: ingest a GEFS and an ECMWF ENS run from the loopback mirror and show what was ingested.
\set QUIET on
SET client_min_messages = warning;
SET timezone = 'UTC';
CREATE EXTENSION pg_gik;
\set QUIET off
\pset footer off

\echo '== Ingest GEFS 0.25 (31 members, f000-f048) and ECMWF ENS 0.25 (51 members, 0-48 h) =='
SELECT d.name AS dataset, r.init_time, r.status, r.version, r.files_found || '/' || r.files_expected AS files,
       r.refs, pg_size_pretty(r.index_bytes) AS index_read, pg_size_pretty(r.grib_bytes) AS grib_read,
       round(r.total_ms) AS ms
FROM (VALUES ('gefs_0p25', gik.step_list('0-48/3')), ('ecmwf_ens_0p25', gik.step_list('0-48/6'))) AS job(ds, steps)
CROSS JOIN LATERAL gik.ingest_run(job.ds, '2025-10-01 00:00+00', steps => job.steps) AS r
JOIN gik.dataset d ON d.dataset_id = r.dataset_id;

\echo '== Chunk references per variable =='
SELECT dataset, variable, level, stat, count(DISTINCT member) AS members, count(*) AS refs,
       min(step_end) AS first_step, max(step_end) AS last_step, pg_size_pretty(sum(byte_length)) AS grib_bytes
FROM gik.chunk_ref GROUP BY 1, 2, 3, 4 ORDER BY 1, 2;

\echo '== Templates learned once per field =='
SELECT d.name AS dataset, f.variable, f.short_name, f.units, f.packing, g.grid_type, g.ni, g.nj, g.di
FROM gik.field f JOIN gik.dataset d USING (dataset_id) JOIN gik.grid g USING (grid_id) ORDER BY 1, 2;

\echo '== Storage =='
SELECT dataset, refs, pg_size_pretty(pack_bytes + file_bytes) AS on_disk, bytes_per_ref FROM gik.storage WHERE refs > 0;
