-- Grids beyond regular lat/lon: raster parts of projected grids (regridding follows in this part).

CREATE TYPE gik.raster_parts AS (wkb bytea, proj text);
COMMENT ON TYPE gik.raster_parts IS 'Raster WKB of a decoded message and the PROJ string of its grid (NULL for lat/lon).';

-- grant: reader
CREATE FUNCTION gik.decode_raster_parts(url text, byte_offset int8, byte_length int8,
                                        lon text DEFAULT 'source', region gik.bbox DEFAULT NULL)
RETURNS gik.raster_parts
AS 'MODULE_PATHNAME', 'gik_decode_raster_parts'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.decode_raster_parts(text, int8, int8, text, gik.bbox) IS
'Decode one message into raster WKB as gik.decode_raster_wkb() does, with its grid''s PROJ string: a projected grid (lambert, polar_stereographic, mercator) gives a raster in its own projection (metres, SRID 0) and proj; a lat/lon grid SRID 4326 and NULL. pg_gik_postgis gives the raster the SRID of proj.';

-- grant: reader
CREATE FUNCTION gik.regrid(vals real[], source gik.grid_desc, target gik.grid_desc, method text DEFAULT 'bilinear')
RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_regrid'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.regrid(real[], gik.grid_desc, gik.grid_desc, text) IS
'A north-up grid (real[nj][ni] on source, as gik.decode() returns it) on another grid, real[nj][ni] on target. method: ''bilinear'' (source regular lat/lon or projected, target any; NaN where a target centre is outside the source''s centres or next to a NaN) or ''conservative'' (first order, to a regular lat/lon target from a lat/lon or projected source: each target cell is the area-weighted mean of the source cells it overlaps, NaN sources left out; keeps totals such as precipitation). The weights are computed once per grid pair and method and kept in the session (gik.regrid_cache()).';

-- grant: reader
CREATE FUNCTION gik.regrid_cache()
RETURNS TABLE (method text, source_cells int8, target_cells int8, bytes int8, uses int8)
AS 'MODULE_PATHNAME', 'gik_regrid_cache'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.regrid_cache() IS
'This session''s cached regridding weights, most recently used first: method, cells of the two grids, bytes held and uses (at most 256 MB in all).';
