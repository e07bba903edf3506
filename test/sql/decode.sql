-- Decoding referenced GRIB messages: real fixtures read as server files (superuser) and over HTTP,
-- generated GEFS/ECMWF runs through s3:// URLs mapped onto the loopback mirror.
-- Expected values were checked against ecCodes (grib_get_data / grib_ls); see test/py/test_decode.py
-- for the element-by-element comparison of every message.
SET extra_float_digits = 0;
\getenv root GIK_TEST_ROOT
\getenv http GIK_HTTP
\set fx :root '/mirror/fixtures'
\set gdas :fx '/grib-rs/gdas.t12z.pgrb2.0p25.f000.12'
\set ec04 :fx '/grib-rs/20240101000000-0h-oper-fc.grib2.0-10'
\set ec25 :fx '/gribberish/ecmwf-ifs-oper-surface.grib2'
\set wave :fx '/gribberish/gfswave.t18z.atlocn.0p16.f001.grib2'
\set soilw :fx '/kerchunk/gec00_20250101_00_soilw.grib'
\set scan :fx '/generated/scan_ineg_jpos.grib2'
\set lambert :fx '/generated/lambert.grib2'
\set gefs 's3://noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25/gep01.t00z.pgrb2s.0p25.f024'
\set ens 's3://ecmwf-forecasts/20251001/00z/ifs/0p25/enfo/20251001000000-24h-enfo-ef'

-- Errors as text, with the machine-specific test root and HTTP address replaced.
SELECT set_config('gik_test.root', :'root', false) IS NOT NULL AS root_set,
       set_config('gik_test.http', :'http', false) IS NOT NULL AS http_set;
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    m text; d text; h text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
    RETURN replace(replace(concat_ws(E'\n', SQLSTATE || ': ' || m, 'DETAIL: ' || nullif(d, ''), 'HINT: ' || nullif(h, '')),
                           current_setting('gik_test.root'), '$ROOT'), current_setting('gik_test.http'), '$HTTP');
END $$;

-- Summary of a decoded grid: dimensions, missing (NaN) cells, smallest and largest value.
CREATE FUNCTION pg_temp.stats(g real[], OUT dims text, OUT nan bigint, OUT min real, OUT max real)
LANGUAGE sql AS $$
    SELECT array_dims(g), count(*) FILTER (WHERE x = 'NaN'), min(x) FILTER (WHERE x <> 'NaN'), max(x) FILTER (WHERE x <> 'NaN')
    FROM unnest(g) x
$$;

-- Messages of the real fixtures (ecCodes' own view of them).
SELECT msg_num, byte_offset, byte_length, short_name, packing, bitmap, missing_count, grid_type, ni, nj, lon_first, lon_last
FROM gik.scan_grib(:'ec04') ORDER BY msg_num;
SELECT msg_num, byte_offset, byte_length, short_name, packing, bitmap, missing_count, grid_type, ni, nj, lon_first, lon_last
FROM gik.scan_grib(:'wave') WHERE msg_num IN (1, 8, 19) ORDER BY msg_num;

--
-- Whole grids, north-up: GDAS 0.25 (complex packing, longitudes 0..359.75, no bitmap).
--
CREATE TEMP TABLE gdas AS SELECT gik.decode(:'gdas', 0, 305744) AS g;
SELECT (pg_temp.stats(g)).* FROM gdas;
SELECT * FROM gik.grid(:'gdas', 0, 305744);
-- Cells (lat, lon): (90, 0), (0, 0), (0, 180), (-90, 359.75), (10, 40), (-33.75, 151.25); grib_get_data agrees.
SELECT g[1][1] AS n90_e0, g[361][1] AS eq_e0, g[361][721] AS eq_e180, g[721][1440] AS s90_e359_75,
       g[321][161] AS n10_e40, g[496][606] AS s33_75_e151_25
FROM gdas;
-- The same cells in -180..180: columns are rolled by half the globe, nothing else changes.
SELECT * FROM gik.grid(:'gdas', 0, 305744, '-180..180');
SELECT g2[361][721] AS eq_e0, g2[361][1] AS eq_w180, g2[321][881] AS n10_e40,
       g2[:][1:720] = g[:][721:1440] AND g2[:][721:1440] = g[:][1:720] AS rolled_exactly
FROM gdas, gik.decode(:'gdas', 0, 305744, '-180..180') g2;
-- Through HTTP (nginx, Range request): the same array.
SELECT gik.decode(:'http' || '/fixtures/grib-rs/gdas.t12z.pgrb2.0p25.f000.12', 0, 305744) = g AS http_same FROM gdas;

--
-- ECMWF 0.4 (CCSDS, longitudes coded 180..179.6, meaning -180..179.6) and its 224-byte constant tp.
--
SELECT * FROM gik.grid(:'ec04', 0, 205483);
SELECT * FROM gik.grid(:'ec04', 0, 205483, '0..360');
SELECT (pg_temp.stats(gik.decode(:'ec04', 0, 205483))).*;
-- gh at (90, -180), (0, -180), (0, 0), (-90, 179.6), (50, 10)
SELECT round(g[1][1]::float8::numeric, 4) AS n90_w180, round(g[226][1]::float8::numeric, 4) AS eq_w180,
       round(g[226][451]::float8::numeric, 4) AS eq_e0, round(g[451][900]::float8::numeric, 4) AS s90_e179_6,
       round(g[101][476]::float8::numeric, 4) AS n50_e10
FROM gik.decode(:'ec04', 0, 205483) g;
SELECT round(g[226][1]::float8::numeric, 4) AS eq_e0, round(g[226][451]::float8::numeric, 4) AS eq_e180,
       round(g[101][26]::float8::numeric, 4) AS n50_e10
FROM gik.decode(:'ec04', 0, 205483, '0..360') g;
SELECT short_name, packing, bits_per_value FROM gik.message_info(:'ec04', 427603, 224);
SELECT (pg_temp.stats(gik.decode(:'ec04', 427603, 224))).*;

-- ECMWF 0.25 (CCSDS): sd (snow depth), all five messages have the same grid.
SELECT * FROM gik.grid(:'ec25', 1419502, 184448);
SELECT (pg_temp.stats(gik.decode(:'ec25', 1419502, 184448))).*;

--
-- Bitmaps: missing points are NaN, counted as ecCodes' numberOfMissing.
--
-- GFS-Wave Atlantic 0.16 (JPEG 2000, regional, lon 260..310): ws, swh and the 8th message.
SELECT * FROM gik.grid(:'wave', 0, 41723);
SELECT * FROM gik.grid(:'wave', 0, 41723, '-180..180');
SELECT (pg_temp.stats(gik.decode(:'wave', 0, 41723))).*;
SELECT (pg_temp.stats(gik.decode(:'wave', 301077, 24341))).*;
-- ws at (55, -100) missing (land), (25, -70), (10, -80)
SELECT g[1][1] AS n55_w100, round(g[181][181]::float8::numeric, 4) AS n25_w70, round(g[271][121]::float8::numeric, 4) AS n10_w80
FROM gik.decode(:'wave', 0, 41723, '-180..180') g;
-- GEFS 0.5 SOILW (complex packing, bitmap over the oceans).
SELECT * FROM gik.grid(:'soilw', 0, 95343);
SELECT (pg_temp.stats(gik.decode(:'soilw', 0, 95343))).*;
-- (0, 0) is ocean; (50, 10) is Germany; (-25, 135) is Australia.
SELECT g[181][1] AS eq_e0, round(g[81][21]::float8::numeric, 4) AS n50_e10, round(g[231][271]::float8::numeric, 4) AS s25_e135
FROM gik.decode(:'soilw', 0, 95343) g;

--
-- Scanning order: a grid stored east to west and south to north (scanningMode 192) across 0 degrees.
-- Each value is 100 * lat + lon; the point at (11, 0) is missing.
--
SELECT scanning_mode, lat_first, lat_last, lon_first, lon_last FROM gik.message_info(:'scan', 0, 228);
SELECT gik.decode(:'scan', 0, 228);
SELECT * FROM gik.grid(:'scan', 0, 228);
SELECT gik.decode(:'scan', 0, 228, '0..360'), (gik.grid(:'scan', 0, 228, '0..360')).lon_first;
SELECT gik.decode(:'scan', 0, 228, '-180..180', gik.bbox(-1, 11, 1, 12));
SELECT gik.decode(:'scan', 0, 228, '0..360', gik.bbox(358, 10, 0.5, 10)), gik.grid_lons(gik.grid(:'scan', 0, 228), '0..360', gik.bbox(358, 10, 0.5, 10));

--
-- Projected grids: Lambert conformal decodes north-up in its own projection (di, dj in metres, the
-- PROJ string in proj); test/py/test_grids.py checks every cell against ecCodes, GDAL and PROJ.
--
SELECT * FROM gik.grid(:'lambert', 0, 248);
SELECT gik.decode(:'lambert', 0, 248);
-- a longitude convention only changes the longitudes reported
SELECT (gik.grid(:'lambert', 0, 248, '0..360')).lon_first;
SELECT pg_temp.err(format('SELECT gik.decode(%L, 0, 248, region => gik.bbox(0, 0, 1, 1))', :'lambert'));
SELECT length(gik.decode_raster_wkb(:'lambert', 0, 248)) AS raster_bytes;
SELECT array_dims(gik.grid_lats(gik.grid(:'lambert', 0, 248))) AS lat_dims;
SELECT ord, grid, vals FROM gik.decode_batch(ARRAY[(:'lambert', 0, 248)::gik.ref]);

--
-- Regions across 0 and 180 degrees, in both longitude conventions, on a 0..360 grid (GDAS) and a
-- -180..180 grid (ECMWF 0.25). A region selects the cells whose centres are inside (edges included).
--
SELECT src, conv, box, (gik.grid(url, off, len, conv, box)).*
FROM (VALUES ('gdas', :'gdas', 0, 305744), ('ecmwf', :'ec25', 1419502, 184448)) m(src, url, off, len),
     (VALUES ('source'), ('-180..180'), ('0..360')) c(conv),
     (VALUES (gik.bbox(-10, -5, 10, 5)), (gik.bbox(350, -5, 10, 5)), (gik.bbox(170, -5, -170, 5)),
             (gik.bbox(170, -5, 190, 5)), (gik.bbox(-190, -5, -170, 5))) b(box)
ORDER BY src, box::text, conv;
-- A region is the same cells whatever the convention: only the longitudes differ.
SELECT gik.decode(:'gdas', 0, 305744, 'source', gik.bbox(-10, -5, 10, 5))
     = gik.decode(:'gdas', 0, 305744, '-180..180', gik.bbox(350, -5, 10, 5)) AS gdas_across_0,
       gik.decode(:'gdas', 0, 305744, '-180..180', gik.bbox(170, -5, -170, 5))
     = gik.decode(:'gdas', 0, 305744, '0..360', gik.bbox(170, -5, 190, 5)) AS gdas_across_180,
       gik.decode(:'ec25', 1419502, 184448, 'source', gik.bbox(170, -5, -170, 5))
     = gik.decode(:'ec25', 1419502, 184448, '0..360', gik.bbox(170, -5, 190, 5)) AS ecmwf_across_180;
-- ... and the matching slice of the whole grid (0..360 keeps 170..190 contiguous).
SELECT gik.decode(:'gdas', 0, 305744, 'source', gik.bbox(170, -5, -170, 5)) = g[341:381][681:761] AS slice_180,
       gik.decode(:'gdas', 0, 305744, '-180..180', gik.bbox(-10, -5, 10, 5))
     = (gik.decode(:'gdas', 0, 305744, '-180..180'))[341:381][681:761] AS slice_0
FROM gdas;
-- Coordinates of a region across 180 degrees, continuous in the chosen convention.
SELECT gik.grid_lons(gik.grid(:'ec25', 1419502, 184448), 'source', gik.bbox(179, 0, -179, 0)) AS ecmwf_source,
       gik.grid_lons(gik.grid(:'ec25', 1419502, 184448), '0..360', gik.bbox(179, 0, -179, 0)) AS ecmwf_360,
       gik.grid_lats(gik.grid(:'ec25', 1419502, 184448), 'source', gik.bbox(179, -0.5, -179, 0.5)) AS lats;
-- A region that is one cell, a region on the poles, regions that are the whole globe (starting at their west edge).
SELECT gik.decode(:'gdas', 0, 305744, 'source', gik.bbox(40, 10, 40, 10)) = ARRAY[[g[321][161]]] AS one_cell,
       array_dims(gik.decode(:'gdas', 0, 305744, 'source', gik.bbox(0, 89.9, 359.9, 90))) AS north_pole_row,
       gik.decode(:'gdas', 0, 305744, 'source', gik.bbox(0, -90, 360, 90)) = g AS globe_from_0,
       gik.decode(:'gdas', 0, 305744, 'source', gik.bbox(-180, -90, 180, 90)) = gik.decode(:'gdas', 0, 305744, '-180..180') AS globe_from_180,
       (gik.grid(:'gdas', 0, 305744, 'source', gik.bbox(-180, -90, 180, 90))).lon_first AS globe_from_180_lon_first
FROM gdas;

--
-- East Africa (lon 21..53, lat -12..23) on a GEFS-like grid (0..359.75) and an ECMWF-like grid
-- (-180..179.75) gives the same rows and columns.
--
SELECT src, (gik.grid(url, off, len, 'source', gik.bbox(21, -12, 53, 23))).*
FROM (VALUES ('gdas', :'gdas', 0, 305744), ('ecmwf', :'ec25', 1419502, 184448)) m(src, url, off, len);
SELECT gik.grid_lats(a, 'source', box) = gik.grid_lats(b, 'source', box) AS same_lats,
       gik.grid_lons(a, 'source', box) = gik.grid_lons(b, 'source', box) AS same_lons,
       gik.grid_lons(a, '-180..180', box) = gik.grid_lons(b, '0..360', box) AS same_lons_other_conventions,
       gik.output_grid(a, 'source', box) = gik.output_grid(b, '-180..180', box) AS same_grid
FROM gik.grid(:'gdas', 0, 305744) a, gik.grid(:'ec25', 1419502, 184448) b, gik.bbox(21, -12, 53, 23) box;
-- The generated runs: references from the real index formats, fetched through s3:// (the mirror).
CREATE TEMP TABLE gefs_ref AS
SELECT variable, level, (:'gefs', byte_offset, byte_length)::gik.ref AS ref
FROM gik.parse_idx(gik.fetch_text(:'gefs' || '.idx'), (gik.file_info(:'gefs')).size, :'gefs');
CREATE TEMP TABLE ens_ref AS
SELECT param, number, (:'ens' || '.grib2', byte_offset, byte_length)::gik.ref AS ref
FROM gik.parse_ecmwf_index(gik.fetch_text(:'ens' || '.index'), :'ens' || '.grib2');
SELECT count(*) AS gefs_messages, count(*) FILTER (WHERE variable = 'APCP') AS apcp FROM gefs_ref;
SELECT count(*) AS ecmwf_messages FROM ens_ref;
SELECT 'gefs ' || variable AS field, (gik.grid((ref).url, (ref).byte_offset, (ref).byte_length)).*
FROM gefs_ref WHERE variable IN ('TMP', 'APCP') AND level IN ('2 m above ground', 'surface')
UNION ALL
SELECT 'ecmwf ' || param, (gik.grid((ref).url, (ref).byte_offset, (ref).byte_length)).*
FROM ens_ref WHERE number = 1 ORDER BY 1;
SELECT g.grid = e.grid AS same_east_africa_grid, array_dims(g.vals) AS dims, gik.grid_lons(g.grid) = gik.grid_lons(e.grid) AS same_lons
FROM (SELECT grid, vals FROM gefs_ref, gik.decode_batch(ARRAY[ref], 'source', gik.bbox(21, -12, 53, 23))
      WHERE variable = 'TMP' AND level = '2 m above ground') g,
     (SELECT grid, vals FROM ens_ref, gik.decode_batch(ARRAY[ref], '0..360', gik.bbox(21, -12, 53, 23))
      WHERE param = '2t' AND number = 1) e;
-- Every generated message decodes (complex packing and CCSDS), with no missing cell.
SELECT count(*) AS decoded, count(*) FILTER (WHERE (pg_temp.stats(gik.decode(ref))).nan > 0) AS with_nan FROM gefs_ref;
SELECT count(*) AS decoded, count(*) FILTER (WHERE (pg_temp.stats(gik.decode(ref))).nan > 0) AS with_nan FROM ens_ref;

--
-- gik.output_grid, gik.grid_lats, gik.grid_lons from a grid description alone (nothing fetched).
--
SELECT * FROM gik.output_grid(ROW('regular_ll', 4, 3, 10, 350, 12, 353, 1, 1, 64, NULL)::gik.grid_desc, '-180..180');
SELECT gik.grid_lats(d), gik.grid_lons(d), gik.grid_lons(d, '0..360'), gik.grid_lons(d, 'source', gik.bbox(352, 0, 10, 90))
FROM (SELECT ROW('regular_ll', 4, 3, 10, 350, 12, 353, 1, 1, 64, NULL)::gik.grid_desc) s(d);
-- A repeated seam column (0..360 inclusive) is dropped: the grid is global with 360 columns.
SELECT * FROM gik.output_grid(ROW('regular_ll', 361, 181, 90, 0, -90, 360, 1, 1, 0, NULL)::gik.grid_desc, '-180..180');

--
-- Stale or wrong references: never decoded, the error names the URL and the byte range.
--
SELECT pg_temp.err(format('SELECT gik.decode(%L, 1, 305743)', :'gdas')) AS shifted_offset;
SELECT pg_temp.err(format('SELECT gik.decode(%L, 1, 305744)', :'gdas')) AS shifted_past_the_end;
SELECT pg_temp.err(format('SELECT gik.decode(%L, 0, 305743)', :'gdas')) AS short_length;
SELECT pg_temp.err(format('SELECT gik.decode(%L, 205483, 222121)', :'ec04')) AS long_length;
SELECT pg_temp.err(format('SELECT gik.decode(%L, 0, 427827)', :'ec04')) AS three_messages;
SELECT pg_temp.err(format('SELECT gik.decode(%L, 100000, 41723)', :'wave')) AS inside_a_message;
SELECT pg_temp.err(format('SELECT gik.decode(%L, 689000, 2000)', :'wave')) AS past_the_end;
SELECT pg_temp.err(format('SELECT gik.decode(%L, 0, 41723)', :'http' || '/fixtures/no/such/file.grib2')) AS missing_file;
SELECT pg_temp.err(format('SELECT * FROM gik.decode_batch(ARRAY[(%L, 0, 305744), (%L, 8, 305736)]::gik.ref[])', :'gdas', :'gdas')) AS batch_stale;
SELECT pg_temp.err(format('SELECT gik.decode(%L, %s, %s)', :'gefs', (ref).byte_offset + 8, (ref).byte_length))
       ~ ('^XX001: bytes \d+-\d+ of "' || :'gefs' || '" are not one GRIB message') AS s3_shifted
FROM gefs_ref WHERE variable = 'APCP';

--
-- Bad arguments.
--
SELECT pg_temp.err(format('SELECT gik.decode(%L, 0, 305744, %L)', :'gdas', 'east'));
SELECT pg_temp.err(format('SELECT gik.decode(%L, 0, 305744, %L, gik.bbox(0, 10, 1, 5))', :'gdas', 'source'));
SELECT pg_temp.err(format('SELECT gik.decode(%L, 0, 305744, %L, gik.bbox(0, NULL, 1, 5))', :'gdas', 'source'));
SELECT pg_temp.err(format('SELECT gik.decode(%L, 0, 305744, %L, gik.bbox(''NaN'', 0, 1, 5))', :'gdas', 'source'));
SELECT pg_temp.err(format('SELECT gik.decode(%L, 0, 41723, %L, gik.bbox(0, 10, 20, 20))', :'wave', 'source')) AS outside_regional_grid;
SELECT pg_temp.err(format('SELECT gik.decode(%L, 0, 228, %L, gik.bbox(1, 11, 358, 12))', :'scan', '0..360')) AS split_region;
SELECT pg_temp.err('SELECT gik.decode(''https://example.com/x.grib2'', 0, 100)') AS not_allowed;
SELECT pg_temp.err('SELECT * FROM gik.decode_batch(ARRAY[NULL]::gik.ref[])') AS null_ref;
SELECT pg_temp.err(format('SELECT * FROM gik.decode_batch(ARRAY[(%L, -1, 10)]::gik.ref[])', :'gdas')) AS negative_offset;
SELECT pg_temp.err('SELECT gik.grid_wkb(''{{1,2},{3,4}}''::real[], ROW(''regular_ll'', 3, 2, 1, 0, 0, 2, 1, 1, 0, NULL)::gik.grid_desc)') AS wkb_shape;
-- Server files need superuser or pg_read_server_files, even for gik_reader members.
CREATE ROLE gik_decode_tester IN ROLE gik_reader;
SET ROLE gik_decode_tester;
SELECT pg_temp.err(format('SELECT gik.decode(%L, 0, 305744)', :'gdas')) AS not_privileged;
RESET ROLE;
DROP OWNED BY gik_decode_tester;
DROP ROLE gik_decode_tester;

--
-- Batches: one row per reference (repeats included), same arrays and grids as single decodes.
--
SELECT ord, (grid).ni, (grid).nj, (grid).lon_first,
       vals = CASE ord WHEN 2 THEN gik.decode(:'ec04', 427603, 224, '0..360', gik.bbox(-10, -5, 10, 5))
                       ELSE gik.decode(:'gdas', 0, 305744, '0..360', gik.bbox(-10, -5, 10, 5)) END AS same_as_single
FROM gik.decode_batch(ARRAY[(:'gdas', 0, 305744), (:'ec04', 427603, 224), (:'gdas', 0, 305744), (:'gdas', 0, 305744)]::gik.ref[],
                      '0..360', gik.bbox(-10, -5, 10, 5))
ORDER BY ord;
-- An empty batch returns no row.
SELECT count(*) FROM gik.decode_batch(ARRAY[]::gik.ref[]);
-- All messages of one generated GEFS file in one batch (touching ranges merged into one request).
SELECT count(*) AS rows, count(DISTINCT b.ord) AS ords,
       bool_and(b.vals = gik.decode(r.ref)) AS same_as_single
FROM (SELECT array_agg(ref ORDER BY (ref).byte_offset) AS refs FROM gefs_ref) a,
     gik.decode_batch(a.refs) b
JOIN (SELECT row_number() OVER (ORDER BY (ref).byte_offset) AS ord, ref FROM gefs_ref) r ON r.ord = b.ord;

--
-- Raster WKB header (RFC2): little endian, version 0, bands, scale, upper-left corner, SRID, size.
--
SELECT get_byte(w, 0) AS endian, length(w) AS bytes, length(w) = 61 + 5 + 4 * 6 * 4 AS size_ok,
       encode(substring(w from 62 for 5), 'hex') AS band_header
FROM gik.decode_raster_wkb(:'scan', 0, 228) w;
SELECT length(gik.grid_wkb(array_fill(1::real, ARRAY[3, 2, 4]), ROW('regular_ll', 4, 2, 1, 0, 0, 3, 1, 1, 0, NULL)::gik.grid_desc)) AS three_bands;
