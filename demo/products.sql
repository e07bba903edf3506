-- pg_gik demo, part 2: the morning product. Defined once; built after ingestion (here on demand, as
-- gik.ingest_latest does after each run); read back in milliseconds; published as a raster table for
-- QGIS/GDAL and exported as a GeoTIFF. run_demo.sh then draws its maps (tools/product_map.py).
-- psql variables: out (output directory), datasets (default: GEFS + ECMWF), min_members (20).
\set QUIET on
SET client_min_messages = warning;
SET timezone = 'UTC';
\if :{?datasets}
\else
\set datasets '{gefs_0p25,ecmwf_ens_0p25}'
\endif
\if :{?min_members}
\else
\set min_members 20
\endif
\set QUIET off
\pset footer off

\echo '== 5. The morning product: East Africa, day 1 and day 2, rain exceedance and ensemble statistics =='
SELECT name, datasets, window_start AS "from (h)", window_end AS "to (h)", thresholds AS "mm", statistics, min_members
FROM gik.define_product('east_africa_rain', :'datasets', '0-48/24', '{5,25,50,100}', gik.bbox(21, -12, 53, 23),
                        '{exceedance,mean,p90,max}', min_members => :min_members,
                        description => 'Day-1 and day-2 rain over East Africa');
\set QUIET on
SET client_min_messages = notice;
\set QUIET off
CALL gik.build_products('east_africa_rain', since => '2025-10-01 00:00+00');
\set QUIET on
SET client_min_messages = warning;
\set QUIET off
SELECT init_time, versions, status, windows_built, windows_waiting, round(total_ms) AS ms
FROM gik.product_log JOIN gik.product_def USING (product_id) WHERE name = 'east_africa_rain';

\echo '== 6. Reading it back: gik.product() (timing on) =='
\timing on
SELECT window_start || '-' || window_end || ' h' AS "window", statistic, threshold AS mm,
       members_used || '/' || members_expected AS members,
       round((SELECT max(v) FROM unnest(vals) v)::numeric, 2) AS max, round(compute_ms) AS compute_ms
FROM gik.product('east_africa_rain');
\timing off

\echo '== 7. For QGIS and GDAL: the raster table (raster_columns) and a GeoTIFF =='
SELECT r_table_schema || '.' || r_table_name AS "table", srid, scale_x, scale_y, num_bands, pixel_types
FROM raster_columns WHERE r_table_schema = 'gik_products';
SET postgis.gdal_enabled_drivers = 'GTiff';
\pset tuples_only on
\pset format unaligned
SELECT format('printf %%s %s | base64 -d > %s && echo %s', quote_literal(encode(tif, 'base64')), quote_literal(path), path)
FROM (SELECT format('%s/east_africa_rain_0-24h_p50mm.tif', :'out') AS path,
             gik.product_geotiff('east_africa_rain', window_start => 0, threshold => 50) AS tif) t
\g | sh
