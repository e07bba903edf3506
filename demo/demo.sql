-- pg_gik demo: ingest a GEFS and an ECMWF ENS run from the loopback mirror, compute the probability
-- that 0-24 h rain exceeds each threshold over East Africa and print the table (demo/products.sql then
-- stores it as a morning product, with its maps).
\set QUIET on
SET client_min_messages = warning;
SET timezone = 'UTC';
CREATE EXTENSION pg_gik;
CREATE EXTENSION postgis;
CREATE EXTENSION postgis_raster;
CREATE EXTENSION pg_gik_postgis;
SET postgis.gdal_enabled_drivers = 'PNG';
\set QUIET off
\pset footer off
\timing off

\echo '== 1. Ingest GEFS 0.25 (31 members, f000-f048) and ECMWF ENS 0.25 (51 members, 0-48 h): index files only =='
SELECT d.name AS dataset, r.init_time, r.status, r.files_found || '/' || r.files_expected AS files,
       r.refs, pg_size_pretty(r.index_bytes) AS index_read, pg_size_pretty(r.grib_bytes) AS grib_read,
       round(r.total_ms) AS ms
FROM (VALUES ('gefs_0p25', gik.step_list('0-48/3')), ('ecmwf_ens_0p25', gik.step_list('0-48/6'))) AS job(ds, steps)
CROSS JOIN LATERAL gik.ingest_run(job.ds, '2025-10-01 00:00+00', steps => job.steps) AS r
JOIN gik.dataset d ON d.dataset_id = r.dataset_id;

\echo '== 2. Which messages make up 0-24 h rain (member 1): GEFS buckets reset every 6 h, ECMWF tp accumulates =='
SELECT 'gefs_0p25' AS dataset, weight, step_start, step_end, (ref).byte_length
FROM gik.accumulation_refs('gefs_0p25', '2025-10-01 00:00+00', 0, 24, '{1}')
UNION ALL
SELECT 'ecmwf_ens_0p25', weight, step_start, step_end, (ref).byte_length
FROM gik.accumulation_refs('ecmwf_ens_0p25', '2025-10-01 00:00+00', 0, 24, '{1}');

\echo '== 3. East Africa (21E-53E, 12S-23N): probability that 0-24 h rain >= threshold =='
\timing on
CREATE TEMP TABLE ea AS
SELECT e.*, x.ensemble
FROM (VALUES ('GEFS', ARRAY['gefs_0p25']), ('ECMWF', ARRAY['ecmwf_ens_0p25']),
             ('GEFS+ECMWF', ARRAY['gefs_0p25', 'ecmwf_ens_0p25'])) AS x(ensemble, datasets)
CROSS JOIN LATERAL gik.exceedance(x.datasets, '2025-10-01 00:00+00', 0, 24, '{5,25,50,75,100,125}',
                                  gik.bbox(21, -12, 53, 23)) AS e;
\timing off
SELECT threshold AS "mm",
       max(round((SELECT max(v) FROM unnest(probability) v)::numeric, 2)) FILTER (WHERE ensemble = 'GEFS') AS "GEFS max P",
       max(round((SELECT max(v) FROM unnest(probability) v)::numeric, 2)) FILTER (WHERE ensemble = 'ECMWF') AS "ECMWF max P",
       max(round((SELECT max(v) FROM unnest(probability) v)::numeric, 2)) FILTER (WHERE ensemble = 'GEFS+ECMWF') AS "both max P",
       max(round(100 * (SELECT avg((v >= 0.5)::int) FROM unnest(probability) v), 1)) FILTER (WHERE ensemble = 'GEFS+ECMWF') AS "area P>=50% (%)",
       max(members_used || '/' || members_expected) FILTER (WHERE ensemble = 'GEFS+ECMWF') AS members
FROM ea GROUP BY threshold ORDER BY threshold;
SELECT DISTINCT ensemble, grid, members_missing FROM ea ORDER BY ensemble;

-- 5. products and their maps: demo/products.sql and tools/product_map.py (run_demo.sh runs both)
