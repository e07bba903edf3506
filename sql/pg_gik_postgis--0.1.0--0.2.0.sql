-- pg_gik_postgis 0.1.0 -> 0.2.0: projected grids get rasters in their own projection (gik.proj_srid,
-- gik.decode_raster through gik.decode_raster_parts; issue 14); product rasters and GeoTIFFs (issue 15);
-- gik.grid_raster and gik.grid_png are unchanged. test/upgrade/run.sh checks that the result equals a
-- fresh 0.2.0 install.
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

-- Products as rasters: one PostGIS raster table per product (gik_products.<name>, one row per stored
-- grid), kept by a trigger on gik.product_result, with AddRasterConstraints so QGIS and GDAL list them;
-- and any product as a GeoTIFF.
CREATE SCHEMA gik_products;
COMMENT ON SCHEMA gik_products IS
'One raster table per product of pg_gik (gik.product_def with raster true), filled as products are built: rid (= gik.product_result.result_id), init_time, versions, window_start, window_end, statistic, threshold, members_used, rast (one 32BF band, nodata NaN, EPSG:4326).';

CREATE FUNCTION gik.product_raster(result_id bigint) RETURNS raster
LANGUAGE sql STABLE STRICT PARALLEL SAFE
RETURN (SELECT gik.grid_raster(x.vals, x.grid) FROM gik.product_result x WHERE x.result_id = product_raster.result_id);
COMMENT ON FUNCTION gik.product_raster(bigint) IS 'One stored product grid (gik.product_result) as a one-band 32BF raster, nodata NaN, EPSG:4326.';

-- Copy each new product grid into its product's raster table (created, with its constraints, on first use).
CREATE FUNCTION gik.product_publish() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET client_min_messages = warning AS $$
DECLARE
    p     gik.product_def;
    fresh bool;
    note  text;
BEGIN
    SELECT x.* INTO p FROM gik.product_def x WHERE x.product_id = NEW.product_id;
    IF NOT p.raster THEN
        RETURN NULL;
    END IF;
    -- p.name matches ^[a-z][a-z0-9_]{0,40}$ (gik.product_def's check)
    fresh := to_regclass(format('gik_products.%I', p.name)) IS NULL;
    IF fresh THEN
        EXECUTE format($q$CREATE TABLE gik_products.%I (rid bigint PRIMARY KEY, init_time timestamptz NOT NULL,
                       versions int[] NOT NULL, window_start float8 NOT NULL, window_end float8 NOT NULL,
                       statistic text NOT NULL, threshold real, members_used int NOT NULL, rast raster NOT NULL)$q$,
                       p.name);
        EXECUTE format('CREATE INDEX ON gik_products.%I (init_time DESC, window_start, statistic, threshold)', p.name);
        EXECUTE format('GRANT SELECT ON gik_products.%I TO gik_reader', p.name);
        note := format('Product %s (%s): one raster per run, window, statistic and threshold, filled by pg_gik_postgis.',
                       p.name, array_to_string(p.datasets, ' + '));
        EXECUTE format('COMMENT ON TABLE gik_products.%I IS %L', p.name, note);
    END IF;
    EXECUTE format($q$INSERT INTO gik_products.%I SELECT x.result_id, x.init_time, x.versions, x.window_start, x.window_end,
                   x.statistic, x.threshold, x.members_used, gik.grid_raster(x.vals, x.grid)
                   FROM gik.product_result x WHERE x.result_id = %L$q$, p.name, NEW.result_id);
    IF fresh THEN
        -- the constraints raster_columns reports (SRID, scale, block size, alignment, bands, type, nodata, extent)
        PERFORM AddRasterConstraints('gik_products', p.name, 'rast', true, true, true, true, true, true, false,
                                     true, true, true, true, true);
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION gik.product_publish() IS
'Trigger of gik.product_result: copies a new product grid into gik_products.<product> as a raster (the table is created on first use, with AddRasterConstraints so that raster_columns, QGIS and GDAL''s PostGISRaster driver describe it). Products defined with raster => false are skipped.';
CREATE TRIGGER product_publish AFTER INSERT ON gik.product_result
FOR EACH ROW EXECUTE FUNCTION gik.product_publish();

-- Deleted results (a redefined product, a forced rebuild) leave the raster tables too.
CREATE FUNCTION gik.product_unpublish() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    name text;
BEGIN
    SELECT p.name INTO name FROM gik.product_def p WHERE p.product_id = OLD.product_id;
    IF name IS NOT NULL AND to_regclass(format('gik_products.%I', name)) IS NOT NULL THEN
        EXECUTE format('DELETE FROM gik_products.%I WHERE rid = %L', name, OLD.result_id);
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION gik.product_unpublish() IS 'Trigger of gik.product_result: removes a deleted product grid from its raster table.';
CREATE TRIGGER product_unpublish AFTER DELETE ON gik.product_result
FOR EACH ROW EXECUTE FUNCTION gik.product_unpublish();

CREATE FUNCTION gik.product_geotiff(name text, run timestamptz DEFAULT NULL, window_start float8 DEFAULT NULL,
                                    statistic text DEFAULT 'exceedance', threshold real DEFAULT NULL)
RETURNS bytea
LANGUAGE plpgsql STABLE AS $$
DECLARE
    res  record;
    n    int := 0;
BEGIN
    FOR res IN SELECT p.grid, p.vals FROM gik.product(name, run, window_start, statistic, threshold) p LOOP
        n := n + 1;
        IF n > 1 THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('product "%s" has several grids for these arguments', name),
                HINT = 'Name the window_start, statistic and threshold (gik.product() lists them).';
        END IF;
    END LOOP;
    IF n = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'no_data_found',
            MESSAGE = format('product "%s" has no stored grid for run %s, window start %s, %s %s', name,
                             coalesce(run::text, 'latest'), coalesce(window_start::text, 'any'), statistic,
                             coalesce(threshold::text, '')),
            HINT = 'Build it with CALL gik.build_products(); gik.product() lists what is stored.';
    END IF;
    SELECT p.grid, p.vals INTO res FROM gik.product(name, run, window_start, statistic, threshold) p;
    RETURN ST_AsGDALRaster(gik.grid_raster(res.vals, res.grid), 'GTiff', ARRAY['COMPRESS=DEFLATE']);
END $$;
COMMENT ON FUNCTION gik.product_geotiff(text, timestamptz, float8, text, real) IS
'One stored product grid (gik.product(), which must give exactly one) as a GeoTIFF: float32, nodata NaN, EPSG:4326, the grid''s geotransform (upper-left corner half a cell north-west of the first cell centre), DEFLATE-compressed. Needs GTiff in postgis.gdal_enabled_drivers.';
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION gik.product_geotiff(text, timestamptz, float8, text, real) SET search_path = pg_catalog, %I, pg_temp',
                   (SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
                    WHERE e.extname = 'postgis_raster'));
    EXECUTE format('ALTER FUNCTION gik.product_publish() SET search_path = pg_catalog, %I, pg_temp',
                   (SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
                    WHERE e.extname = 'postgis_raster'));
END
$$;

REVOKE ALL ON FUNCTION gik.product_raster(bigint), gik.product_geotiff(text, timestamptz, float8, text, real),
    gik.product_publish(), gik.product_unpublish() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gik.product_raster(bigint), gik.product_geotiff(text, timestamptz, float8, text, real) TO gik_reader;
GRANT USAGE ON SCHEMA gik_products TO gik_reader;
