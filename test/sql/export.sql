-- Manifest export: kerchunk v1 and Zarr v3 (75_export.sql). import.sql goes on with these datasets.
SET client_min_messages = warning;
SET timezone = 'UTC';
\getenv root GIK_TEST_ROOT
\i :root/test/sql/include/helpers.psql
SELECT coalesce(max(grid_id), 0) AS grids_before FROM gik.grid \gset
SELECT coalesce(max(window_id), 0) AS windows_before FROM gik.time_window \gset
-- import.sql removes what both files made.
CREATE TABLE mf_before AS SELECT :grids_before AS grids_before, :windows_before AS windows_before;

-- Clones keep these runs apart from the other tests. GEFS: APCP at 0.25 degree, the rest at 1 degree.
SELECT gik.clone_dataset('gefs_0p25', 'mf_gefs', '{APCP,TMP:2 m above ground,CAPE,TMAX}') > 0 AS cloned,
       gik.clone_dataset('ecmwf_ens_0p25', 'mf_ecmwf', '{tp,2t}') > 0 AS cloned;
SELECT status, refs FROM gik.ingest_run('mf_gefs', '2025-10-01 00:00+00', members => '{0,1,2}', steps => gik.step_list('0-12/3'));
SELECT status, refs FROM gik.ingest_run('mf_ecmwf', '2025-10-01 00:00+00', steps => '{0,6,12}');
SELECT status, refs FROM gik.ingest_run('mf_ecmwf', '2026-06-01 12:00+00', steps => '{0,6}');

-- Variable names: the ecCodes shortName, with the level when two fields share it.
SELECT name, variable, level, stat FROM gik.manifest_variables('mf_gefs');

-- Metadata keys (kerchunk, Zarr format 2): one chunk per GRIB message, [time, number, step, latitude, longitude].
SELECT key, value FROM gik.manifest('mf_gefs') WHERE kind = 'metadata' AND variable IS DISTINCT FROM 'cape_surface'
  AND variable IS DISTINCT FROM 'cape_180-0_mb_above_ground' ORDER BY key;
-- Coordinates are inline base64 little-endian arrays, from the catalog and the templates' grids.
SELECT m.key, z.value ->> 'dtype' AS dtype, cardinality(v) AS n, v[1] AS first, v[2] AS second, v[cardinality(v)] AS last
FROM gik.manifest('mf_gefs') m
JOIN gik.manifest('mf_gefs') z ON z.key = m.variable || '/.zarray',
     LATERAL gik.zarr_decode(gik.inline_bytes(m.value #>> '{}'), z.value ->> 'dtype') v
WHERE m.kind = 'coordinate' ORDER BY m.key;
SELECT to_timestamp(1759276800) AS time_0;
-- Chunks: [url, offset, length] with the window each message covers (APCP resets every 6 h).
SELECT key, value, member, step_start, step_end FROM gik.manifest('mf_gefs', variables => '{APCP}')
WHERE kind = 'chunk' AND member = 1 ORDER BY key;
SELECT variable, count(*) AS chunks, count(DISTINCT url) AS files, min(chunk) AS first, max(chunk) AS last
FROM gik.manifest('mf_gefs') WHERE kind = 'chunk' GROUP BY 1 ORDER BY 1;

-- The whole manifest as one kerchunk v1 document.
SELECT d -> 'version' AS version, (SELECT count(*) FROM json_object_keys(d -> 'refs')) AS keys,
       json_typeof(d -> 'refs' -> 'tp/.zarray') AS zarray_is, (d -> 'refs' ->> 'tp/.zarray')::jsonb -> 'filters' AS filters,
       d -> 'refs' -> 'tp/0.1.1.0.0' AS chunk, d -> 'refs' -> 'step/0' AS step
FROM gik.manifest_kerchunk('mf_gefs') d;
-- ECMWF: two runs on the time axis (control in enfo-ef before 50r1, in oper-fc after), or one with init_from.
SELECT key, value FROM gik.manifest('mf_ecmwf') WHERE key IN ('tp/.zarray', 'time/0', 'longitude/.zattrs') ORDER BY key;
SELECT init_from, count(*) FILTER (WHERE kind = 'chunk') AS chunks, min(chunk) FILTER (WHERE kind = 'chunk') AS first,
       max(chunk) FILTER (WHERE kind = 'chunk') AS last
FROM unnest(ARRAY[NULL, '2026-06-01 12:00+00']::timestamptz[]) init_from, gik.manifest('mf_ecmwf', init_from) GROUP BY 1 ORDER BY 1;
SELECT count(*) AS chunks FROM gik.manifest('mf_ecmwf', '2025-10-01 00:00+00', '2026-06-01 12:00+00', '{tp}') WHERE kind = 'chunk';
-- Resolved HTTP URLs for clients without s3fs.
SELECT regexp_replace(value ->> 0, '127\.0\.0\.1:[0-9]+', '127.0.0.1:PORT') AS url
FROM gik.manifest('mf_ecmwf', '2025-10-01 00:00+00', variables => '{tp}', url_style => 'http') WHERE key = 'tp/0.0.0.0.0';
-- One run at a time through the view.
SELECT dataset, init_time, count(*) AS keys, count(*) FILTER (WHERE kind = 'chunk') AS chunks
FROM gik.run_manifest WHERE dataset = 'mf_ecmwf' GROUP BY 1, 2 ORDER BY 2;

-- Zarr v3: zarr.json with the gribberish codec, and VirtualiZarr-style manifests of chunk references.
SELECT d -> 'zarr_format' AS zarr_format, d -> 'metadata' -> 'zarr.json' -> 'node_type' AS root,
       d -> 'metadata' -> 'tp/zarr.json' AS tp, d -> 'manifests' -> 'tp' -> '1.0.1.0.0' AS entry,
       (SELECT count(*) FROM json_object_keys(d -> 'manifests' -> 'tp')) AS tp_chunks,
       (SELECT array_agg(k ORDER BY k) FROM json_object_keys(d -> 'inline') k) AS inline
FROM gik.manifest_zarr3('mf_ecmwf') d;
SELECT pg_temp.error_of($$SELECT * FROM gik.manifest('mf_nope')$$);
SELECT pg_temp.error_of($$SELECT * FROM gik.manifest('mf_gefs', variables => '{NOPE,APCP}')$$);
SELECT pg_temp.error_of($$SELECT * FROM gik.manifest('mf_gefs', url_style => 'ftp')$$);
