-- Index parsers (C, pure core in src/core).

-- grant: reader
CREATE FUNCTION gik.parse_idx(idx text, file_size int8 DEFAULT NULL, url text DEFAULT NULL)
RETURNS TABLE (
    lineno int, msg_num int, sub_num int, byte_offset int8, byte_length int8,
    ref_time timestamptz, variable text, level text, ftime text, extra text,
    step_start float8, step_end float8, stat text, member int, member_kind text)
AS 'MODULE_PATHNAME', 'gik_parse_idx'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.parse_idx(text, int8, text) IS
'Parse a NOAA wgrib2 .idx inventory: one row per line, with byte length from the next distinct offset (the last one from file_size, else NULL) and the forecast time normalised to hours, statistic and ensemble member.';

-- grant: reader
CREATE FUNCTION gik.parse_ecmwf_index(idx text, url text DEFAULT NULL)
RETURNS TABLE (
    lineno int, byte_offset int8, byte_length int8, param text, levtype text, levelist text,
    ref_time timestamptz, step text, step_start float8, step_end float8, stat text,
    member int, member_kind text, type text, stream text, class text, expver text, domain text,
    number int)
AS 'MODULE_PATHNAME', 'gik_parse_ecmwf_index'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.parse_ecmwf_index(text, text) IS
'Parse an ECMWF open-data .index (JSON lines, keys in any order): one row per message, sorted by byte offset; a missing number means the control.';
