-- Decoding referenced messages (C, ecCodes): arrays, grid descriptions, coordinates, raster WKB, batches.

CREATE TYPE gik.bbox AS (lon_min float8, lat_min float8, lon_max float8, lat_max float8);
COMMENT ON TYPE gik.bbox IS
'A lon/lat box in degrees. Longitudes in either convention; lon_min > lon_max crosses the 180th meridian.';

-- grant: reader
CREATE FUNCTION gik.bbox(lon_min float8, lat_min float8, lon_max float8, lat_max float8) RETURNS gik.bbox
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ROW(lon_min, lat_min, lon_max, lat_max)::gik.bbox;
COMMENT ON FUNCTION gik.bbox(float8, float8, float8, float8) IS 'A region: gik.bbox(lon_min, lat_min, lon_max, lat_max).';

CREATE TYPE gik.ref AS (url text, byte_offset int8, byte_length int8);
COMMENT ON TYPE gik.ref IS 'A chunk reference: one GRIB message as a byte range of a URL.';

CREATE TYPE gik.grid_desc AS (
    grid_type text, ni int, nj int,
    lat_first float8, lon_first float8, lat_last float8, lon_last float8,
    di float8, dj float8, scanning_mode int, proj text);
COMMENT ON TYPE gik.grid_desc IS
'A grid description. For decoded regular lat/lon grids: rows north to south from lat_first, columns west to east from lon_first (cell centres), scanning_mode 0. Projected grids (lambert, polar_stereographic, mercator) carry their PROJ string in proj and di, dj in metres; decoded, they are north-up in their projection with lat/lon_first the north-west and lat/lon_last the south-east cell centre. Gaussian grids carry ''+proj=gik_gaussian +N=..'' (and +pl for reduced ones).';

-- grant: reader
CREATE FUNCTION gik.decode(url text, byte_offset int8, byte_length int8,
                           lon text DEFAULT 'source', region gik.bbox DEFAULT NULL)
RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_decode'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.decode(text, int8, int8, text, gik.bbox) IS
'Fetch one message by its byte range, check it is exactly one GRIB message (else a stale-index error), and decode it with ecCodes: real[nj][ni] north-up, west to east, missing points as NaN. lon: ''source'', ''-180..180'' or ''0..360'' (columns rolled). region: only the cells whose centres are inside. Grids other than regular lat/lon decode to their values in scanning order (2-D when Ni/Nj exist, else 1-D) and accept neither lon nor region.';

-- grant: reader
CREATE FUNCTION gik.decode(ref gik.ref, lon text DEFAULT 'source', region gik.bbox DEFAULT NULL)
RETURNS real[]
LANGUAGE sql VOLATILE PARALLEL RESTRICTED
RETURN gik.decode((ref).url, (ref).byte_offset, (ref).byte_length, lon, region);
COMMENT ON FUNCTION gik.decode(gik.ref, text, gik.bbox) IS 'gik.decode() for a gik.ref.';

-- grant: reader
CREATE FUNCTION gik.output_grid(grid gik.grid_desc, lon text DEFAULT 'source', region gik.bbox DEFAULT NULL)
RETURNS gik.grid_desc
AS 'MODULE_PATHNAME', 'gik_output_grid'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.output_grid(gik.grid_desc, text, gik.bbox) IS
'The north-up grid a decode of a message on this (source) grid returns for a longitude convention and region; nothing is fetched.';

-- grant: reader
CREATE FUNCTION gik.grid(url text, byte_offset int8, byte_length int8,
                         lon text DEFAULT 'source', region gik.bbox DEFAULT NULL)
RETURNS gik.grid_desc
LANGUAGE sql VOLATILE PARALLEL RESTRICTED
RETURN (SELECT CASE WHEN m.grid_type IN ('regular_ll', 'lambert', 'polar_stereographic', 'mercator')
                    THEN gik.output_grid(ROW(m.grid_type, m.ni, m.nj, m.lat_first, m.lon_first, m.lat_last, m.lon_last,
                                             m.di, m.dj, m.scanning_mode, m.proj)::gik.grid_desc, lon, region)
                    ELSE ROW(m.grid_type, m.ni, m.nj, m.lat_first, m.lon_first, m.lat_last, m.lon_last,
                             m.di, m.dj, m.scanning_mode, m.proj)::gik.grid_desc END
        FROM gik.message_info(url, byte_offset, byte_length) m);
COMMENT ON FUNCTION gik.grid(text, int8, int8, text, gik.bbox) IS
'The grid that gik.decode() returns for this message and these options, read from the message''s metadata only.';

-- grant: reader
CREATE FUNCTION gik.grid_lats(grid gik.grid_desc, lon text DEFAULT 'source', region gik.bbox DEFAULT NULL)
RETURNS float8[]
AS 'MODULE_PATHNAME', 'gik_grid_lats'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.grid_lats(gik.grid_desc, text, gik.bbox) IS
'Latitudes of the rows (north to south) of a regular lat/lon grid, after the longitude convention and region; of every cell (float8[nj][ni], north-up) of a projected grid; of the rows of a regular_gg grid and of every point (scanning order) of a reduced_gg grid.';

-- grant: reader
CREATE FUNCTION gik.grid_lons(grid gik.grid_desc, lon text DEFAULT 'source', region gik.bbox DEFAULT NULL)
RETURNS float8[]
AS 'MODULE_PATHNAME', 'gik_grid_lons'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.grid_lons(gik.grid_desc, text, gik.bbox) IS
'Longitudes of the columns (west to east, continuous across the seam) of a regular lat/lon grid, after the longitude convention and region; of every cell (float8[nj][ni], north-up, in the convention) of a projected grid; of the columns of a regular_gg grid and of every point of a reduced_gg grid.';

-- grant: reader
CREATE FUNCTION gik.field_grid(field_id smallint) RETURNS gik.grid_desc
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (SELECT ROW(g.grid_type, g.ni, g.nj, g.lat_first, g.lon_first, g.lat_last, g.lon_last, g.di, g.dj,
                   g.scanning_mode, g.proj)::gik.grid_desc
        FROM gik.field f JOIN gik.grid g USING (grid_id) WHERE f.field_id = field_grid.field_id);
COMMENT ON FUNCTION gik.field_grid(smallint) IS 'The source grid of a field, from its template (no fetch).';

-- grant: reader
CREATE FUNCTION gik.decode_raster_wkb(url text, byte_offset int8, byte_length int8,
                                      lon text DEFAULT 'source', region gik.bbox DEFAULT NULL, srid int DEFAULT 4326)
RETURNS bytea
AS 'MODULE_PATHNAME', 'gik_decode_raster_wkb'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.decode_raster_wkb(text, int8, int8, text, gik.bbox, int) IS
'Decode one message into PostGIS raster WKB (RFC2): one 32BF band, nodata NaN, upper-left corner half a cell north-west of the first cell centre. pg_gik_postgis turns it into a raster.';

-- grant: reader
CREATE FUNCTION gik.grid_wkb(vals real[], grid gik.grid_desc, srid int DEFAULT 4326) RETURNS bytea
AS 'MODULE_PATHNAME', 'gik_grid_wkb'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gik.grid_wkb(real[], gik.grid_desc, int) IS
'Raster WKB of any north-up grid: real[nj][ni] gives one band, real[nbands][nj][ni] (e.g. one probability grid per threshold) one band each; NULL elements become nodata.';

-- grant: reader
CREATE FUNCTION gik.decode_batch(refs gik.ref[], lon text DEFAULT 'source', region gik.bbox DEFAULT NULL)
RETURNS TABLE (ord int, grid gik.grid_desc, vals real[])
AS 'MODULE_PATHNAME', 'gik_decode_batch'
LANGUAGE C VOLATILE PARALLEL RESTRICTED ROWS 100;
COMMENT ON FUNCTION gik.decode_batch(gik.ref[], text, gik.bbox) IS
'Decode many references in one call: repeated references are fetched and decoded once, ranges that touch in the same file are fetched together, up to gik.max_connections requests run at once, gik.decode_threads threads decode, and rows stream out in completion order (ord is the 1-based position in refs).';

-- grant: reader
CREATE FUNCTION gik.decoders()
RETURNS TABLE (slot int, pid int, busy bool, memory_limit_mb int, region_bytes int8, landlock_abi int, sandbox text)
AS 'MODULE_PATHNAME', 'gik_decoders'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.decoders() IS
'This session''s decoder processes (pg_gik_decoder, one per gik.decode_threads, started on first use): process id, whether it is decoding, its address-space limit, its shared region, and its sandbox (Landlock ABI, 0 when the kernel has none, and a sentence on what it may do).';
