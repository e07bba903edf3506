-- Import of kerchunk JSON and GIK [key, value] tables (76_import.sql), of the datasets export.sql made.
SET client_min_messages = warning;
SET timezone = 'UTC';
\getenv root GIK_TEST_ROOT
\i :root/test/sql/include/helpers.psql
SELECT grids_before, windows_before FROM mf_before \gset
DROP TABLE mf_before;

-- Import of an export gives the same references, keys, windows and members; a second import changes nothing.
SELECT init_time, version, files_found, refs FROM gik.import_kerchunk('mf_rt', gik.manifest_kerchunk('mf_gefs'));
SELECT init_time, version, files_found, refs FROM gik.import_kerchunk('mf_rt', gik.manifest_kerchunk('mf_gefs'));
SELECT name, index_format, cycles, steps, members FROM gik.dataset WHERE name = 'mf_rt';
SELECT count(*) AS refs, count(*) FILTER (WHERE b.url IS NULL) AS lost
FROM gik.chunk_ref a LEFT JOIN gik.chunk_ref b
  ON b.dataset = 'mf_rt' AND (b.url, b.byte_offset, b.byte_length, b.variable, b.level, b.stat, b.step_start, b.step_end, b.member, b.init_time)
     = (a.url, a.byte_offset, a.byte_length, a.variable, a.level, a.stat, a.step_start, a.step_end, a.member, a.init_time)
WHERE a.dataset = 'mf_gefs';
-- Export of the import is the same JSON (but for the dataset name in the root attributes).
SELECT (SELECT jsonb_object_agg(key, value) FROM gik.manifest('mf_gefs') WHERE key <> '.zattrs')
     = (SELECT jsonb_object_agg(key, value) FROM gik.manifest('mf_rt') WHERE key <> '.zattrs') AS same_manifest;
SELECT init_time, version, refs FROM gik.import_kerchunk('mf_rt_ecmwf', gik.manifest_kerchunk('mf_ecmwf'));
SELECT (SELECT jsonb_object_agg(key, value) FROM gik.manifest('mf_ecmwf') WHERE key <> '.zattrs')
     = (SELECT jsonb_object_agg(key, value) FROM gik.manifest('mf_rt_ecmwf') WHERE key <> '.zattrs') AS same_manifest;
-- One versioning rule (gik.store_run, as for a re-ingestion): an import that moves one reference replaces
-- that file only; the run's other files stay valid from version 1, and version 1 stays readable.
CREATE TEMP TABLE mf_doc AS SELECT gik.manifest_kerchunk('mf_gefs', '2025-10-01 00:00+00')::jsonb AS d;
SELECT (SELECT min(k) FROM jsonb_each(d -> 'refs') e(k, v) WHERE jsonb_typeof(v) = 'array') AS mf_key FROM mf_doc \gset
SELECT version, files_found, refs FROM gik.import_kerchunk('mf_rt_v', (SELECT d::json FROM mf_doc));
SELECT version, files_found, refs FROM gik.import_kerchunk('mf_rt_v',
    (SELECT jsonb_set(d, ARRAY['refs', :'mf_key', '1'], to_jsonb((d -> 'refs' -> :'mf_key' ->> 1)::int8 + 1))::json FROM mf_doc));
SELECT v.version, v.files_added, v.files_changed, v.refs, v.note
FROM gik.run_version v JOIN gik.run r USING (run_id) JOIN gik.dataset d USING (dataset_id) WHERE d.name = 'mf_rt_v' ORDER BY 1;
SELECT f.valid_from, f.valid_to, count(*) AS files
FROM gik.file f JOIN gik.run r USING (run_id) JOIN gik.dataset d USING (dataset_id) WHERE d.name = 'mf_rt_v'
GROUP BY 1, 2 ORDER BY 1, 2;
SELECT count(*) FILTER (WHERE a.url IS NULL) AS only_in_v2, count(*) FILTER (WHERE b.url IS NULL) AS only_in_v1,
       min(b.byte_offset - (SELECT (d -> 'refs' -> :'mf_key' ->> 1)::int8 FROM mf_doc)) AS moved_by
FROM gik.chunk_refs_at('mf_rt_v', '2025-10-01 00:00+00', 1) a
FULL JOIN gik.chunk_refs_at('mf_rt_v', '2025-10-01 00:00+00', 2) b
  ON (a.url, a.byte_offset, a.byte_length, a.field_id, a.window_id, a.member)
   = (b.url, b.byte_offset, b.byte_length, b.field_id, b.window_id, b.member)
WHERE a.url IS NULL OR b.url IS NULL;
SELECT version FROM gik.import_kerchunk('mf_rt_v', (SELECT d::json FROM mf_doc));

-- kerchunk version 0: the flat {key: value} object.
SELECT init_time, version, refs FROM gik.import_kerchunk('mf_rt_v0', gik.manifest_kerchunk('mf_ecmwf', '2026-06-01 12:00+00') -> 'refs');
SELECT (SELECT jsonb_object_agg(key, value) FROM gik.manifest('mf_ecmwf', '2026-06-01 12:00+00') WHERE kind = 'chunk')
     = (SELECT jsonb_object_agg(key, value) FROM gik.manifest('mf_rt_v0') WHERE kind = 'chunk') AS same_chunks;

-- The real gribberish GEFS-Wave references: raw \u0000 bytes (ens), base64 coordinates, a zstd-compressed time axis.
SELECT pg_read_file(:'root' || '/mirror/fixtures/gribberish/gefswave_kerchunk.json') AS wave \gset
SELECT pg_temp.error_of(format('SELECT gik.import_kerchunk(%L, %L)', 'mf_wave', :'wave'));
SELECT init_time, version, files_found, refs
FROM gik.import_kerchunk('mf_wave', :'wave', steps => gik.step_list('0-240/3,246-384/6')::float8[]);
SELECT name, index_format, cycles, cardinality(steps) AS steps, steps[80:83] AS steps_80_83, members
FROM gik.dataset WHERE name = 'mf_wave';
SELECT f.variable, f.level, f.stat, f.short_name, f.units, g.grid_type, g.ni, g.nj, g.lat_first, g.lon_last, g.di, g.scanning_mode
FROM gik.field f JOIN gik.dataset d USING (dataset_id) JOIN gik.grid g USING (grid_id) WHERE d.name = 'mf_wave';
SELECT member, step_end, url, byte_offset, byte_length FROM gik.chunk_ref
WHERE dataset = 'mf_wave' AND (member, step_end) IN ((1, 0), (1, 384), (30, 246)) ORDER BY 1, 2;
SELECT count(DISTINCT member) AS members, count(DISTINCT step_end) AS steps, count(*) AS refs FROM gik.chunk_ref WHERE dataset = 'mf_wave';
-- kerchunk scan_grib output: a list of documents with {{u}} templates and relative URLs.
SELECT pg_read_file(:'root' || '/mirror/fixtures/kerchunk/hrrr.wrfsfcf.subset.json') AS hrrr \gset
SELECT pg_temp.error_of(format('SELECT gik.import_kerchunk(%L, %L)', 'mf_hrrr', :'hrrr'));
SELECT init_time, refs FROM gik.import_kerchunk('mf_hrrr', :'hrrr', url_prefix => 's3://noaa-hrrr-bdp-pds/hrrr.20230928/conus/');
SELECT variable, level, stat, step_end, member, regexp_replace(url, '^.*/', '') AS file, byte_offset, byte_length
FROM gik.chunk_ref WHERE dataset = 'mf_hrrr' AND step_end = 1 ORDER BY byte_offset;
SELECT DISTINCT f.short_name, f.units, f.param_id, g.grid_type, g.ni, g.nj, g.scanning_mode
FROM gik.field f JOIN gik.dataset d USING (dataset_id) JOIN gik.grid g USING (grid_id) WHERE d.name = 'mf_hrrr' ORDER BY 1;

-- GIK [key, value] rows: the ECMWF step_NNN/param/levtype/member/0.0.0 layout, values as JSON or Python lists.
CREATE TEMP TABLE gik_rows (key text, value text);
INSERT INTO gik_rows
SELECT format('step_%s/%s/%s/%s/0.0.0', lpad(step_end::int::text, 3, '0'), variable, level,
              CASE member WHEN 0 THEN 'control' ELSE 'ens' || lpad(member::text, 2, '0') END),
       CASE WHEN member % 2 = 0 THEN jsonb_build_array(url, byte_offset, byte_length)::text
            ELSE format('[''%s'', %s, %s]', url, byte_offset, byte_length) END
FROM gik.chunk_ref WHERE dataset = 'mf_ecmwf' AND init_time = '2025-10-01 00:00+00';
INSERT INTO gik_rows VALUES ('.zgroup', '{"zarr_format": 2}'), ('version', '1');
SELECT key, value FROM gik_rows WHERE key LIKE 'step_006/tp/%' ORDER BY key LIMIT 2;
SELECT init_time, version, files_found, refs FROM gik.import_gik_table('mf_gik', 'gik_rows');
SELECT count(*) AS refs, count(*) FILTER (WHERE b.url IS NULL) AS lost
FROM gik.chunk_ref a LEFT JOIN gik.chunk_ref b
  ON b.dataset = 'mf_gik' AND (b.url, b.byte_offset, b.byte_length, b.variable, b.level, b.stat, b.step_start, b.step_end, b.member, b.init_time)
     = (a.url, a.byte_offset, a.byte_length, a.variable, a.level, a.stat, a.step_start, a.step_end, a.member, a.init_time)
WHERE a.dataset = 'mf_ecmwf' AND a.init_time = '2025-10-01 00:00+00';
-- The same rows as bytea (how a binary parquet column arrives) with a member column.
CREATE TEMP TABLE gik_rows_bin (key text, value bytea, member int);
INSERT INTO gik_rows_bin SELECT replace(key, '/ens01/', '/'), convert_to(value, 'UTF8'), 1 FROM gik_rows WHERE key LIKE '%/ens01/%';
SELECT init_time, version, refs FROM gik.import_gik_table('mf_gik_bin', 'gik_rows_bin');
SELECT DISTINCT member FROM gik.chunk_ref WHERE dataset = 'mf_gik_bin';

-- Bad input: an error with a SQLSTATE that names the key, and nothing imported.
SELECT (SELECT count(*) FROM gik.run) AS runs, (SELECT count(*) FROM gik.file) AS files, (SELECT count(*) FROM gik.field) AS fields,
       (SELECT count(*) FROM gik.chunk_pack) AS packs, (SELECT count(*) FROM gik.dataset) AS datasets \gset before_
SELECT pg_temp.error_of($$SELECT gik.import_kerchunk('mf_bad', '{"version": 1, "refs": {')$$);
SELECT pg_temp.error_of($$SELECT gik.import_kerchunk('mf_bad', '{"version": 1, "refs": {"tp/.zarray": "{\"shape\": [1, 2], \"chunks\": [1, 1]}", "tp/.zattrs": "{\"_ARRAY_DIMENSIONS\": [\"time\", \"step\"]}", "tp/0.0": ["s3://b/k", 0, 10], "tp/0.1": ["s3://b/k", -10, 10]}}')$$);
SELECT pg_temp.error_of($$SELECT gik.import_kerchunk('mf_bad', '{"tp/.zarray": "{\"shape\": [2], \"chunks\": [1]}", "tp/.zattrs": "{\"_ARRAY_DIMENSIONS\": [\"step\"]}", "tp/0": ["s3://b/k", 0, 10], "t2m/0": ["s3://b/k", 10, 10]}')$$);
SELECT pg_temp.error_of($$SELECT gik.import_kerchunk('mf_bad', '{"tp/.zarray": "{shape: [2]}", "tp/0": ["s3://b/k", 0, 10]}')$$);
SELECT pg_temp.error_of($$SELECT gik.import_kerchunk('mf_bad', '{"version": 1, "refs": {"tp/0": ["{{u}}", 0, 10]}}')$$);
SELECT pg_temp.error_of($$SELECT gik.import_kerchunk('mf_bad', '{"tp/0": ["s3://b/k"]}')$$);
SELECT pg_temp.error_of($$SELECT gik.import_kerchunk('mf_bad', '{"tp/.zarray": "{\"shape\": [2], \"chunks\": [1]}", "tp/.zattrs": "{\"_ARRAY_DIMENSIONS\": [\"step\"]}", "tp/1": ["s3://b/k", 0, 10]}')$$);
SELECT pg_temp.error_of($$SELECT gik.import_kerchunk('mf_bad', '{"tp/.zarray": "{\"shape\": [2], \"chunks\": [1]}", "tp/.zattrs": "{\"_ARRAY_DIMENSIONS\": [\"step\"]}", "tp/1": ["s3://b/k", 0, 10]}', init_time => '2025-10-01')$$);
SELECT pg_temp.error_of($$SELECT gik.import_kerchunk('mf_bad', '{"tp/.zarray": "{\"shape\": [2], \"chunks\": [1]}", "tp/.zattrs": "{\"_ARRAY_DIMENSIONS\": [\"step\"]}", "tp/7": ["s3://b/k", 0, 10]}', init_time => '2025-10-01', steps => '{0,6}')$$);
-- A bad reference in the middle of a good document: the existing dataset and its runs are untouched.
SELECT pg_temp.error_of(format('SELECT gik.import_kerchunk(%L, %L)', 'mf_rt',
    jsonb_set(gik.manifest_kerchunk('mf_gefs')::jsonb, '{refs,tp/0.2.3.0.0,1}', '-1')));
SELECT pg_temp.error_of($$SELECT gik.import_gik_table('mf_bad', 'pg_class')$$);
INSERT INTO gik_rows VALUES ('step_006/tp/sfc/ens77/0.0.0', '["s3://ecmwf-forecasts/x", 5, -3]');
SELECT pg_temp.error_of($$SELECT gik.import_gik_table('mf_gik', 'gik_rows')$$);
SELECT (SELECT count(*) FROM gik.run) - :before_runs AS runs, (SELECT count(*) FROM gik.file) - :before_files AS files,
       (SELECT count(*) FROM gik.field) - :before_fields AS fields, (SELECT count(*) FROM gik.chunk_pack) - :before_packs AS packs,
       (SELECT count(*) FROM gik.dataset) - :before_datasets AS datasets;

-- Leave nothing behind for the other tests.
SELECT d, gik.drop_dataset(d) AS dropped
FROM unnest('{mf_gefs,mf_ecmwf,mf_rt,mf_rt_ecmwf,mf_rt_v,mf_rt_v0,mf_wave,mf_hrrr,mf_gik,mf_gik_bin}'::text[]) d;
DELETE FROM gik.grid g WHERE g.grid_id > :grids_before AND NOT EXISTS (SELECT FROM gik.field f WHERE f.grid_id = g.grid_id);
DELETE FROM gik.time_window w WHERE w.window_id > :windows_before
  AND NOT EXISTS (SELECT FROM gik.chunk_pack p WHERE w.window_id = ANY (p.window_ids));
SELECT count(*) AS left_over FROM gik.dataset WHERE name LIKE 'mf\_%';
