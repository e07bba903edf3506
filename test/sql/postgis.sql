-- pg_gik_postgis: decoded messages and grids as PostGIS rasters. test/py/test_postgis.py compares
-- the same rasters with GDAL's reading of the GRIB messages.
SET extra_float_digits = 0;
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS postgis_raster;
CREATE EXTENSION pg_gik_postgis;
RESET client_min_messages;
SET postgis.gdal_enabled_drivers = 'PNG';
\getenv root GIK_TEST_ROOT
\set fx :root '/mirror/fixtures'
\set gdas :fx '/grib-rs/gdas.t12z.pgrb2.0p25.f000.12'
\set ec25 :fx '/gribberish/ecmwf-ifs-oper-surface.grib2'
\set wave :fx '/gribberish/gfswave.t18z.atlocn.0p16.f001.grib2'
\set soilw :fx '/kerchunk/gec00_20250101_00_soilw.grib'
\set scan :fx '/generated/scan_ineg_jpos.grib2'
\set lambert :fx '/generated/lambert.grib2'

SELECT p.oid::regprocedure AS function, obj_description(p.oid, 'pg_proc') IS NOT NULL AS commented
FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_gik_postgis') AND d.classid = 'pg_proc'::regclass
ORDER BY 1::text;

-- The small grid stored east to west and south to north: value = 100 * lat + lon, (11, 0) missing.
-- Pixel (1, 1) is the north-west cell (13, -3); its upper-left corner is (-3.5, 13.5).
SELECT (ST_Metadata(r)).*, ST_BandPixelType(r), ST_BandNoDataValue(r) FROM gik.decode_raster(:'scan', 0, 228) r;
SELECT ST_AsText(ST_Envelope(r)) FROM gik.decode_raster(:'scan', 0, 228) r;
SELECT ST_Value(r, 1, 1) AS x1y1, ST_Value(r, 6, 4) AS x6y4, ST_Value(r, 4, 3) AS missing, ST_Value(r, 4, 3, false) AS missing_raw,
       ST_Value(r, ST_SetSRID(ST_Point(0, 12), 4326)) AS at_0_12, ST_Value(r, ST_SetSRID(ST_Point(-2.9, 10.1), 4326)) AS at_m3_10
FROM gik.decode_raster(:'scan', 0, 228) r;
-- Pixels as rows, north-west first, match gik.decode().
SELECT array_agg(val ORDER BY y, x) = ARRAY(SELECT unnest(gik.decode(:'scan', 0, 228))::float8) AS same_as_decode
FROM ST_PixelAsCentroids(gik.decode_raster(:'scan', 0, 228), 1, false);
SELECT x, y, ST_AsText(geom) AS centre, val FROM ST_PixelAsCentroids(gik.decode_raster(:'scan', 0, 228, '0..360'), 1, false)
WHERE y = 2 ORDER BY x;

-- Global grids: cell centres at whole multiples of the increment, so the corners sit half a cell out.
SELECT 'gdas ' || conv AS raster, (ST_Metadata(r)).*
FROM (VALUES ('source'), ('-180..180')) c(conv), gik.decode_raster(:'gdas', 0, 305744, conv) r
UNION ALL
SELECT 'ecmwf ' || conv, (ST_Metadata(r)).*
FROM (VALUES ('source'), ('0..360')) c(conv), gik.decode_raster(:'ec25', 1419502, 184448, conv) r
UNION ALL
SELECT 'soilw', (ST_Metadata(gik.decode_raster(:'soilw', 0, 95343))).*
UNION ALL
SELECT 'wave -180..180', (ST_Metadata(gik.decode_raster(:'wave', 0, 41723, '-180..180'))).*
ORDER BY 1;
-- ST_Value at points equals the decoded cell (GDAS (10, 40), (-33.75, 151.25); SOILW (50, 10) and ocean).
SELECT ST_Value(r, ST_SetSRID(ST_Point(40, 10), 4326)) = g[321][161] AS gdas_10_40,
       ST_Value(r, ST_SetSRID(ST_Point(151.25, -33.75), 4326)) = g[496][606] AS gdas_s33_e151,
       ST_Value(r, ST_SetSRID(ST_Point(40.1, 9.9), 4326)) = g[321][161] AS inside_the_cell
FROM gik.decode_raster(:'gdas', 0, 305744) r, gik.decode(:'gdas', 0, 305744) g;
SELECT round(ST_Value(r, ST_SetSRID(ST_Point(10, 50), 4326))::numeric, 4) AS n50_e10,
       ST_Value(r, ST_SetSRID(ST_Point(0, 0), 4326)) AS ocean,
       ST_Value(r, ST_SetSRID(ST_Point(0, 0), 4326), false) AS ocean_raw,
       ST_Count(r) AS valid_pixels, ST_Count(r, false) AS all_pixels
FROM gik.decode_raster(:'soilw', 0, 95343) r;
-- The same point in both conventions.
SELECT ST_Value(a, ST_SetSRID(ST_Point(-60, 20), 4326)) = ST_Value(b, ST_SetSRID(ST_Point(300, 20), 4326)) AS same_value,
       round(ST_Value(a, ST_SetSRID(ST_Point(-60, 20), 4326))::numeric, 2) AS ws_20n_60w
FROM gik.decode_raster(:'wave', 0, 41723, '-180..180') a, gik.decode_raster(:'wave', 0, 41723) b;

-- A region (East Africa) and a region across 180 degrees.
SELECT (ST_Metadata(r)).*, ST_AsText(ST_Envelope(r)) AS envelope
FROM gik.decode_raster(:'gdas', 0, 305744, 'source', gik.bbox(21, -12, 53, 23)) r;
SELECT (ST_Metadata(r)).*, ST_AsText(ST_Envelope(r)) AS envelope
FROM gik.decode_raster((:'ec25', 1419502, 184448)::gik.ref, '-180..180', gik.bbox(170, -5, -170, 5)) r;
SELECT ST_Value(r, ST_SetSRID(ST_Point(30, 0), 4326)) = ST_Value(w, ST_SetSRID(ST_Point(30, 0), 4326)) AS region_pixel_same
FROM gik.decode_raster(:'gdas', 0, 305744, 'source', gik.bbox(21, -12, 53, 23)) r, gik.decode_raster(:'gdas', 0, 305744) w;

-- SRIDs are carried as given.
SELECT ST_SRID(gik.decode_raster(:'scan', 0, 228)) AS default_srid, ST_SRID(gik.decode_raster(:'scan', 0, 228, srid => 0)) AS srid_0,
       ST_SRID(gik.grid_raster(gik.decode(:'scan', 0, 228), gik.grid(:'scan', 0, 228), 4269)) AS srid_4269;

-- gik.grid_raster: one band per slice of a 3-D array (three wave fields decoded in one batch).
CREATE TEMP TABLE waves AS
SELECT b.ord, b.grid, b.vals
FROM gik.decode_batch(ARRAY[(:'wave', 0, 41723), (:'wave', 184546, 28830), (:'wave', 213376, 33991)]::gik.ref[]) b;
SELECT ST_NumBands(r) AS bands, (ST_Metadata(r)).width, (ST_Metadata(r)).height, ST_BandPixelType(r, 3),
       ST_Value(r, 1, 181, 181) = (SELECT vals[181][181] FROM waves WHERE ord = 1) AS band1,
       ST_Value(r, 2, 181, 181) = (SELECT vals[181][181] FROM waves WHERE ord = 2) AS band2,
       ST_Value(r, 3, 181, 181) = (SELECT vals[181][181] FROM waves WHERE ord = 3) AS band3,
       ST_Value(r, 3, 1, 1) IS NULL AS band3_nodata
FROM (SELECT gik.grid_raster(ARRAY[w1.vals, w2.vals, w3.vals], w1.grid) AS r
      FROM waves w1, waves w2, waves w3 WHERE w1.ord = 1 AND w2.ord = 2 AND w3.ord = 3) s;
-- An ensemble-style product over the three fields (ws 3.02, swh 1.1, perpw 8.51 at x 181, y 181): the fraction
-- of fields >= 1 and >= 2, one band per threshold.
SELECT ST_NumBands(r) AS bands, ST_Value(r, 1, 181, 181) AS p1_x181y181, ST_Value(r, 2, 181, 181) AS p2_x181y181,
       ST_Value(r, 1, 1, 1) IS NULL AS land_nodata
FROM (SELECT gik.grid_raster(gik.ens_exceedance(vals, '{1, 2}'), (array_agg(grid))[1]) AS r FROM waves) s;
-- NULL elements become nodata.
SELECT ST_Value(r, 1, 1) AS null_cell, ST_Value(r, 2, 1) AS set_cell
FROM gik.grid_raster('{{NULL, 2}, {3, 4}}'::real[], ROW('regular_ll', 2, 2, 1, 0, 0, 1, 1, 1, 0, NULL)::gik.grid_desc) r;

-- PNG previews: ST_AsPNG(ST_ColorMap(...)) and gik.grid_png().
SELECT substring(ST_AsPNG(ST_ColorMap(r, 1, 'bluered')) from 1 for 8) AS png_magic
FROM gik.decode_raster(:'gdas', 0, 305744, 'source', gik.bbox(21, -12, 53, 23)) r;
SELECT substring(gik.grid_png(vals, grid) from 1 for 8) AS png_magic,
       substring(gik.grid_png(vals, grid, E'10 255 0 0 255\n1 0 0 255 255\n0 255 255 255 0\nnv 0 0 0 0') from 1 for 8) AS png_custom
FROM waves WHERE ord = 1;
-- PNG width and height (IHDR) are the grid's.
SELECT get_byte(p, 18) * 256 + get_byte(p, 19) AS png_width, get_byte(p, 22) * 256 + get_byte(p, 23) AS png_height
FROM waves, gik.grid_png(vals, grid, 'fire') p WHERE ord = 2;

-- Projected grids are rasters in their own projection, with an SRID of their PROJ string (pg_gik's range).
SELECT ST_Width(r), ST_Height(r), ST_ScaleX(r), ST_ScaleY(r), ST_SRID(r) BETWEEN 990000 AND 998998 AS gik_srid
FROM gik.decode_raster(:'lambert', 0, 248) r;
-- the SRID's row holds the PROJ string, and asking again gives the same SRID
SELECT s.srid = ST_SRID(gik.decode_raster(:'lambert', 0, 248)) AS same_srid, s.auth_name
FROM gik.decode_raster_parts(:'lambert', 0, 248) p JOIN spatial_ref_sys s ON s.proj4text = p.proj;
-- Rasters are limited to 65535 pixels a side.
SELECT gik.grid_raster(array_fill(0::real, ARRAY[1, 70000]), ROW('regular_ll', 70000, 1, 0, 0, 0, 69999, 1, 1, 0, NULL)::gik.grid_desc);
