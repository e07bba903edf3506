-- pg_gik_postgis 0.1.0 -> 0.2.0: projected grids get rasters in their own projection (gik.proj_srid,
-- gik.decode_raster through gik.decode_raster_parts); gik.grid_raster and gik.grid_png are unchanged.
-- test/upgrade/run.sh checks that the result equals a fresh 0.2.0 install.
\echo Use "ALTER EXTENSION pg_gik_postgis UPDATE TO '0.2.0'" to load this file. \quit

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

CREATE OR REPLACE FUNCTION gik.decode_raster(url text, byte_offset int8, byte_length int8,
                                  lon text DEFAULT 'source', region gik.bbox DEFAULT NULL, srid int DEFAULT 4326)
RETURNS raster
LANGUAGE sql VOLATILE PARALLEL RESTRICTED
RETURN (SELECT CASE WHEN p.proj IS NULL THEN ST_SetSRID(ST_RastFromWKB(p.wkb), srid)
                    ELSE ST_SetSRID(ST_RastFromWKB(p.wkb), gik.proj_srid(p.proj)) END
        FROM gik.decode_raster_parts(url, byte_offset, byte_length, lon, region) p);
COMMENT ON FUNCTION gik.decode_raster(text, int8, int8, text, gik.bbox, int) IS
'Fetch and decode one GRIB message into a one-band 32BF raster, nodata NaN, north-up; lon and region as for gik.decode(). Pixel (1, 1) is the north-west cell: the raster''s upper-left corner is half a cell north-west of that cell''s centre, as GDAL reads GRIB. Regular lat/lon grids get srid (default 4326); projected grids (lambert, polar_stereographic, mercator) are in their own projection, in metres, with the SRID of gik.proj_srid(their PROJ string), and a region keeps the rectangle around the cells whose centres are inside (the others nodata). Gaussian grids need regridding first.';

CREATE OR REPLACE FUNCTION gik.decode_raster(ref gik.ref, lon text DEFAULT 'source', region gik.bbox DEFAULT NULL,
                                  srid int DEFAULT 4326)
RETURNS raster
LANGUAGE sql VOLATILE PARALLEL RESTRICTED
RETURN gik.decode_raster((ref).url, (ref).byte_offset, (ref).byte_length, lon, region, srid);
COMMENT ON FUNCTION gik.decode_raster(gik.ref, text, gik.bbox, int) IS 'gik.decode_raster() for a gik.ref.';

-- spatial_ref_sys lives in postgis's schema: pin it for gik.proj_srid.
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION gik.proj_srid(text) SET search_path = pg_catalog, %I, pg_temp',
                   (SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
                    WHERE e.extname = 'postgis'));
END
$$;

REVOKE ALL ON FUNCTION gik.proj_srid(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gik.proj_srid(text) TO gik_reader;
