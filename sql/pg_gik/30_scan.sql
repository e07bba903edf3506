-- GRIB metadata with ecCodes: the traditional full scan, and one referenced message.

CREATE TYPE gik.message_meta AS (
    msg_num int, byte_offset int8, byte_length int8, edition int,
    short_name text, name text, units text, param_id int,
    type_of_level text, level int8, step_range text, step_type text,
    ref_time timestamptz, member int, packing text, bits_per_value int,
    bitmap bool, missing_count int8,
    grid_type text, ni int, nj int, num_points int8,
    lat_first float8, lon_first float8, lat_last float8, lon_last float8,
    di float8, dj float8, scanning_mode int, proj text);
COMMENT ON TYPE gik.message_meta IS 'What ecCodes says about one GRIB message: parameter, level, step, member, packing and grid (projected grids: di, dj in metres and the PROJ string in proj).';

-- grant: ingest
CREATE FUNCTION gik.scan_grib(url text) RETURNS SETOF gik.message_meta
AS 'MODULE_PATHNAME', 'gik_scan_grib'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.scan_grib(text) IS
'Traditional full scan: fetch the whole GRIB file and describe every message with ecCodes (the baseline that index ingestion avoids).';

-- grant: reader
CREATE FUNCTION gik.message_info(url text, byte_offset int8, byte_length int8) RETURNS gik.message_meta
AS 'MODULE_PATHNAME', 'gik_message_info'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.message_info(text, int8, int8) IS
'Fetch one referenced message by its byte range, check it is exactly one GRIB message, and describe it.';
