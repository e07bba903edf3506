-- pg_gik_postgis: PostGIS rasters from pg_gik grids (SQL only, the h3_postgis pattern).
--
-- pg_gik writes PostGIS raster well-known binary (RFC2: 32BF bands, nodata NaN, upper-left corner
-- half a cell north-west of the first cell centre) with gik.decode_raster_wkb() and gik.grid_wkb();
-- this extension only turns that bytea into raster with ST_RastFromWKB (there is no bytea::raster
-- cast) and adds a PNG preview.
--
-- Where PostGIS lives: postgis_raster may be installed in any schema, and PostgreSQL 15 has no
-- @extschema:postgis_raster@. Every function here has an SQL-standard body (RETURN ...), which is
-- parsed when CREATE EXTENSION runs. During the script the search_path is this extension's schema
-- followed by the schemas of the required extensions (pg_gik, postgis_raster), so ST_RastFromWKB,
-- ST_ColorMap, ST_AsPNG and the raster type resolve to postgis_raster's objects then, are stored
-- by OID, and are recorded as dependencies. At run time the functions therefore neither read the
-- caller's search_path nor need SET search_path (which would also stop the planner inlining them).
--
-- PNG output goes through GDAL: ST_AsPNG fails with "Could not load the output GDAL driver" until
-- postgis.gdal_enabled_drivers includes PNG (e.g. SET postgis.gdal_enabled_drivers = 'PNG', or
-- 'ENABLE_ALL' in postgresql.conf).
\echo Use "CREATE EXTENSION pg_gik_postgis" to load this file. \quit

-- The SRID of a grid's PROJ string: the spatial_ref_sys row with auth_name 'pg_gik' and that proj4text,
-- added on first use. Stable rule: SRID 990000 + (the first 32 bits of md5(proj) mod 8999), the next
-- free one up on a collision, so the same projection gets the same SRID in every database that sees
-- projections in the same order (and usually in any order).
CREATE FUNCTION gik.proj_srid(proj text) RETURNS int
LANGUAGE plpgsql VOLATILE STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    base int := 990000 + (('x' || substr(md5(proj), 1, 8))::bit(32)::bigint % 8999)::int;
    s int;
BEGIN
    LOCK TABLE spatial_ref_sys IN SHARE ROW EXCLUSIVE MODE;
    SELECT r.srid INTO s FROM spatial_ref_sys r WHERE r.auth_name = 'pg_gik' AND r.proj4text = proj;
    IF FOUND THEN
        RETURN s;
    END IF;
    FOR k IN 0..8998 LOOP
        s := 990000 + (base - 990000 + k) % 8999;
        IF NOT EXISTS (SELECT FROM spatial_ref_sys r WHERE r.srid = s) THEN
            INSERT INTO spatial_ref_sys (srid, auth_name, auth_srid, srtext, proj4text)
            VALUES (s, 'pg_gik', s, NULL, proj);
            RETURN s;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'no free SRID in 990000..998998 for projection %', proj USING ERRCODE = 'program_limit_exceeded';
END $$;
COMMENT ON FUNCTION gik.proj_srid(text) IS
'The SRID of a grid''s PROJ string (gik.grid_desc.proj), from spatial_ref_sys (auth_name pg_gik), added on first use at 990000 + md5(proj) mod 8999 (the next free one on a collision).';

CREATE FUNCTION gik.decode_raster(url text, byte_offset int8, byte_length int8,
                                  lon text DEFAULT 'source', region gik.bbox DEFAULT NULL, srid int DEFAULT 4326)
RETURNS raster
LANGUAGE sql VOLATILE PARALLEL RESTRICTED
RETURN (SELECT CASE WHEN p.proj IS NULL THEN ST_SetSRID(ST_RastFromWKB(p.wkb), srid)
                    ELSE ST_SetSRID(ST_RastFromWKB(p.wkb), gik.proj_srid(p.proj)) END
        FROM gik.decode_raster_parts(url, byte_offset, byte_length, lon, region) p);
COMMENT ON FUNCTION gik.decode_raster(text, int8, int8, text, gik.bbox, int) IS
'Fetch and decode one GRIB message into a one-band 32BF raster, nodata NaN, north-up; lon and region as for gik.decode(). Pixel (1, 1) is the north-west cell: the raster''s upper-left corner is half a cell north-west of that cell''s centre, as GDAL reads GRIB. Regular lat/lon grids get srid (default 4326); projected grids (lambert, polar_stereographic, mercator) are in their own projection, in metres, with the SRID of gik.proj_srid(their PROJ string), and a region keeps the rectangle around the cells whose centres are inside (the others nodata). Gaussian grids need regridding first.';

CREATE FUNCTION gik.decode_raster(ref gik.ref, lon text DEFAULT 'source', region gik.bbox DEFAULT NULL,
                                  srid int DEFAULT 4326)
RETURNS raster
LANGUAGE sql VOLATILE PARALLEL RESTRICTED
RETURN gik.decode_raster((ref).url, (ref).byte_offset, (ref).byte_length, lon, region, srid);
COMMENT ON FUNCTION gik.decode_raster(gik.ref, text, gik.bbox, int) IS 'gik.decode_raster() for a gik.ref.';

CREATE FUNCTION gik.grid_raster(vals real[], grid gik.grid_desc, srid int DEFAULT 4326)
RETURNS raster
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN ST_RastFromWKB(gik.grid_wkb(vals, grid, srid));
COMMENT ON FUNCTION gik.grid_raster(real[], gik.grid_desc, int) IS
'A raster of any north-up grid, e.g. gik.decode_batch() output or an ensemble product: real[nj][ni] gives one 32BF band, real[nbands][nj][ni] one band per slice (e.g. one exceedance probability per threshold). NaN and NULL elements become nodata.';

CREATE FUNCTION gik.grid_png(vals real[], grid gik.grid_desc, colormap text DEFAULT 'bluered', band int DEFAULT 1)
RETURNS bytea
LANGUAGE sql STABLE STRICT PARALLEL SAFE
RETURN ST_AsPNG(ST_ColorMap(gik.grid_raster(vals, grid), band, colormap, 'INTERPOLATE'));
COMMENT ON FUNCTION gik.grid_png(real[], gik.grid_desc, text, int) IS
'A PNG preview of one band of a grid: ST_AsPNG(ST_ColorMap(gik.grid_raster(vals, grid), band, colormap)). colormap is an ST_ColorMap keyword (grayscale, pseudocolor, fire, bluered: stretched over the band''s range) or an explicit table such as E''50 255 0 0 255\n5 0 0 255 255\n0 255 255 255 0\nnv 0 0 0 0''; nodata is transparent with the keywords. Needs PNG in postgis.gdal_enabled_drivers.';
-- ST_AsPNG and ST_ColorMap are PL/pgSQL inside PostGIS 3.3 and call other PostGIS functions
-- unqualified, so they only work with postgis_raster's schema on the search_path: pin it here.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION gik.grid_png(real[], gik.grid_desc, text, int) SET search_path = pg_catalog, %I, pg_temp',
                   (SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
                    WHERE e.extname = 'postgis_raster'));
END
$$;

-- spatial_ref_sys lives in postgis's schema: pin it for gik.proj_srid.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION gik.proj_srid(text) SET search_path = pg_catalog, %I, pg_temp',
                   (SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
                    WHERE e.extname = 'postgis'));
END
$$;

-- Privileges as in pg_gik: not for PUBLIC, for gik_reader (and so gik_ingest).
REVOKE ALL ON FUNCTION gik.decode_raster(text, int8, int8, text, gik.bbox, int), gik.decode_raster(gik.ref, text, gik.bbox, int),
    gik.proj_srid(text), gik.grid_raster(real[], gik.grid_desc, int), gik.grid_png(real[], gik.grid_desc, text, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gik.decode_raster(text, int8, int8, text, gik.bbox, int), gik.decode_raster(gik.ref, text, gik.bbox, int),
    gik.proj_srid(text), gik.grid_raster(real[], gik.grid_desc, int), gik.grid_png(real[], gik.grid_desc, text, int) TO gik_reader;
