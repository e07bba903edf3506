-- Grids beyond regular lat/lon: raster parts of projected grids (regridding follows in this part).

CREATE TYPE gik.raster_parts AS (wkb bytea, proj text);
COMMENT ON TYPE gik.raster_parts IS 'Raster WKB of a decoded message and the PROJ string of its grid (NULL for lat/lon).';

CREATE FUNCTION gik.decode_raster_parts(url text, byte_offset int8, byte_length int8,
                                        lon text DEFAULT 'source', region gik.bbox DEFAULT NULL)
RETURNS gik.raster_parts
AS 'MODULE_PATHNAME', 'gik_decode_raster_parts'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.decode_raster_parts(text, int8, int8, text, gik.bbox) IS
'Decode one message into raster WKB as gik.decode_raster_wkb() does, with its grid''s PROJ string: a projected grid (lambert, polar_stereographic, mercator) gives a raster in its own projection (metres, SRID 0) and proj; a lat/lon grid SRID 4326 and NULL. pg_gik_postgis gives the raster the SRID of proj.';
