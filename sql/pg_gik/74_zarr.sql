-- Zarr helpers shared by manifest export and import: Zarr names, keys and array metadata, the raw bytes of
-- small Zarr arrays, inline values and metadata text.

-- grant: reader
-- A name usable as one Zarr path component.
CREATE FUNCTION gik.zarr_name(name text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN nullif(trim(BOTH '_' FROM regexp_replace(name, '[^A-Za-z0-9_.+-]+', '_', 'g')), '');
COMMENT ON FUNCTION gik.zarr_name(text) IS
'A text made usable as one Zarr path component: runs of other characters than letters, digits, _ . + - become one _, and leading or trailing _ are removed.';

-- grant: reader
-- Bytes in reverse order (little- to big-endian and back).
CREATE FUNCTION gik.bytes_reverse(b bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN (SELECT coalesce(string_agg(substring(b FROM i FOR 1), ''::bytea ORDER BY i DESC), ''::bytea)
        FROM generate_series(1, length(b)) AS i);
COMMENT ON FUNCTION gik.bytes_reverse(bytea) IS 'The bytes of b in reverse order (turns little-endian numbers into big-endian ones and back).';

-- grant: reader
-- Numbers as the raw little-endian bytes of a Zarr array: '<f8' (float64) or '<i8' (int64).
CREATE FUNCTION gik.zarr_encode(vals float8[], dtype text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN (SELECT coalesce(string_agg(gik.bytes_reverse(CASE dtype WHEN '<f8' THEN float8send(v) ELSE int8send(v::int8) END),
                                   ''::bytea ORDER BY o), ''::bytea)
        FROM unnest(vals) WITH ORDINALITY AS u(v, o));
COMMENT ON FUNCTION gik.zarr_encode(float8[], text) IS
'The raw bytes of a C-order Zarr chunk holding vals: ''<f8'' little-endian float64, ''<i8'' little-endian int64 (values rounded).';

-- grant: reader
-- The numbers in the raw bytes of an uncompressed Zarr chunk.
CREATE FUNCTION gik.zarr_decode(data bytea, dtype text) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m      text[] := regexp_match(dtype, '^([<>|=])([fiuMmb])([1248])(?:\[(\w+)\])?$');
    size   int;
    kind   text;
    scale  float8 := 1;
    n      int;
    out    float8[] := '{}';
    b      bytea;
    bits   int8;
    e      int;
    frac   int8;
    v      float8;
BEGIN
    IF m IS NULL OR (m[2] = 'f' AND m[3] NOT IN ('4', '8')) THEN
        RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
            MESSAGE = format('unsupported Zarr dtype "%s"', dtype),
            HINT = 'Coordinates can be float, integer, datetime64 or timedelta64 arrays.';
    END IF;
    size := m[3]::int;
    kind := m[2];
    IF kind IN ('M', 'm') THEN
        scale := CASE coalesce(m[4], 's') WHEN 's' THEN 1 WHEN 'ms' THEN 1e-3 WHEN 'us' THEN 1e-6 WHEN 'ns' THEN 1e-9
                                          WHEN 'm' THEN 60 WHEN 'h' THEN 3600 WHEN 'D' THEN 86400 END;
        IF scale IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'feature_not_supported', MESSAGE = format('unsupported Zarr dtype "%s"', dtype);
        END IF;
    END IF;
    IF length(data) % size <> 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_binary_representation',
            MESSAGE = format('%s bytes are not a whole number of %s-byte values', length(data), size);
    END IF;
    n := length(data) / size;
    FOR i IN 0 .. n - 1 LOOP
        b := substring(data FROM i * size + 1 FOR size);
        IF m[1] <> '>' THEN
            b := gik.bytes_reverse(b);
        END IF;
        bits := ('x' || lpad(encode(b, 'hex'), 16, '0'))::bit(64)::int8;
        IF kind = 'f' AND size = 8 THEN
            e := ((bits >> 52) & 2047)::int;
            frac := bits & 4503599627370495;
            v := CASE WHEN e = 2047 AND frac <> 0 THEN 'NaN'::float8
                      WHEN e = 2047 THEN 'Infinity'::float8
                      WHEN e = 0 THEN frac * power(2::float8, -1074)
                      ELSE (4503599627370496 + frac)::float8 * power(2::float8, e - 1075) END;
            IF bits < 0 THEN v := -v; END IF;
        ELSIF kind = 'f' THEN
            e := ((bits >> 23) & 255)::int;
            frac := bits & 8388607;
            v := CASE WHEN e = 255 AND frac <> 0 THEN 'NaN'::float8
                      WHEN e = 255 THEN 'Infinity'::float8
                      WHEN e = 0 THEN frac * power(2::float8, -149)
                      ELSE (8388608 + frac)::float8 * power(2::float8, e - 150) END;
            IF (bits >> 31) & 1 = 1 THEN v := -v; END IF;
        ELSE
            IF kind <> 'u' AND kind <> 'b' AND size < 8 AND bits >= (1::int8 << (size * 8 - 1)) THEN
                bits := bits - (1::int8 << (size * 8));      -- two's complement of a narrow signed integer
            END IF;
            v := CASE WHEN kind IN ('M', 'm') AND bits = -9223372036854775808 THEN NULL    -- NaT
                      ELSE bits * scale END;
        END IF;
        out := out || v;
    END LOOP;
    RETURN out;
END $$;
COMMENT ON FUNCTION gik.zarr_decode(bytea, text) IS
'The numbers held in the raw bytes of an uncompressed Zarr chunk of dtype ''<f8'', ''<f4'', ''<i8'', ''<i4'', ''<i2'', ''|i1'', unsigned ''u'' kinds, ''>'' big-endian forms, datetime64 (''<M8[s]'', ''[ns]'' …: seconds since 1970, NaT as NULL) and timedelta64 (''<m8[…]'': seconds).';

-- grant: reader
-- The bytes of an inline value: 'base64:…' decoded, else the UTF-8 bytes of the text (U+E000 stands for NUL).
CREATE FUNCTION gik.inline_bytes(value text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN value LIKE 'base64:%' THEN decode(translate(substr(value, 8), E'\n\r ', ''), 'base64')
            ELSE (SELECT string_agg(convert_to(part, 'UTF8'), '\x00'::bytea ORDER BY o)
                  FROM string_to_table(value, chr(57344)) WITH ORDINALITY AS t(part, o)) END;
COMMENT ON FUNCTION gik.inline_bytes(text) IS
'The bytes of a kerchunk inline value: ''base64:…'' decoded, else the UTF-8 bytes of the text, as kerchunk and fsspec encode raw values (U+E000 stands for a NUL byte: gik.import_kerchunk() reads \u0000 as U+E000 because PostgreSQL text cannot hold NUL).';

-- grant: ingest
-- A JSON text parsed, or NULL when it is not valid JSON.
CREATE FUNCTION gik.try_jsonb(value text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN value::jsonb;
EXCEPTION WHEN invalid_text_representation OR untranslatable_character OR character_not_in_repertoire THEN
    RETURN NULL;
END $$;
COMMENT ON FUNCTION gik.try_jsonb(text) IS 'value parsed as jsonb, or NULL when it is not valid JSON.';

-- grant: ingest
-- Zarr metadata text parsed; bare NaN and Infinity (which Python's json and ujson write) read as null.
CREATE FUNCTION gik.metadata_jsonb(value text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(gik.try_jsonb(value),
                gik.try_jsonb(regexp_replace(value, '([:\[,]\s*)(-?Infinity|NaN)(?=\s*[,\]}])', '\1null', 'g')));
COMMENT ON FUNCTION gik.metadata_jsonb(text) IS
'Zarr metadata (.zarray, .zattrs, …) text parsed as jsonb, reading the bare NaN, Infinity and -Infinity that Python writes (e.g. "fill_value": NaN) as null; NULL when it is still not JSON.';

-- grant: reader
-- The metadata keys of one Zarr array: .zarray and .zattrs (format 2) or zarr.json (format 3).
CREATE FUNCTION gik.zarr_array_meta(zarr_format int, name text, shape int8[], chunks int8[], dtype text,
                                    attrs jsonb, dims text[], grib bool)
RETURNS TABLE (key text, value jsonb)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT k, v FROM (VALUES
        (1, name || '/.zarray', jsonb_build_object(
            'chunks', to_jsonb(chunks), 'compressor', NULL, 'dtype', dtype,
            'fill_value', CASE WHEN grib THEN to_jsonb('NaN'::text) END,
            'filters', CASE WHEN grib THEN jsonb_build_array(jsonb_build_object('dtype', 'float64', 'id', 'grib', 'var', name)) END,
            'order', 'C', 'shape', to_jsonb(shape), 'zarr_format', 2)),
        (2, name || '/.zattrs', attrs || jsonb_build_object('_ARRAY_DIMENSIONS', to_jsonb(dims))),
        (3, name || '/zarr.json', jsonb_build_object(
            'zarr_format', 3, 'node_type', 'array', 'shape', to_jsonb(shape),
            'data_type', CASE dtype WHEN '<f8' THEN 'float64' WHEN '<i8' THEN 'int64' ELSE dtype END,
            'chunk_grid', jsonb_build_object('name', 'regular', 'configuration', jsonb_build_object('chunk_shape', to_jsonb(chunks))),
            'chunk_key_encoding', jsonb_build_object('name', 'default', 'configuration', jsonb_build_object('separator', '/')),
            'fill_value', CASE WHEN dtype = '<f8' THEN to_jsonb('NaN'::text) ELSE to_jsonb(0) END,
            'codecs', CASE WHEN grib THEN jsonb_build_array(jsonb_build_object('name', 'gribberish', 'configuration', jsonb_build_object('var', name)))
                           ELSE jsonb_build_array(jsonb_build_object('name', 'bytes', 'configuration', jsonb_build_object('endian', 'little'))) END,
            'attributes', attrs, 'dimension_names', to_jsonb(dims)))
    ) AS m(n, k, v)
    WHERE (zarr_format = 2 AND n < 3) OR (zarr_format = 3 AND n = 3);
END;
COMMENT ON FUNCTION gik.zarr_array_meta(int, text, int8[], int8[], text, jsonb, text[], bool) IS
'The metadata keys of one Zarr array: NAME/.zarray and NAME/.zattrs (with _ARRAY_DIMENSIONS) for zarr_format 2, NAME/zarr.json (dimension_names) for 3. grib: a data variable, one GRIB message per chunk, read through the kerchunk "grib" filter (format 2) or the "gribberish" codec (format 3), float64 with NaN fill; otherwise raw little-endian bytes.';

-- grant: reader
-- The key of one chunk of a Zarr array.
CREATE FUNCTION gik.zarr_chunk_key(zarr_format int, name text, idx int[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN zarr_format = 3 THEN name || '/c' || coalesce('/' || nullif(array_to_string(idx, '/'), ''), '')
            ELSE name || '/' || coalesce(nullif(array_to_string(idx, '.'), ''), '0') END;
COMMENT ON FUNCTION gik.zarr_chunk_key(int, text, int[]) IS
'The key of the chunk at grid position idx of a Zarr array: NAME/i.j.k (format 2; NAME/0 for a scalar) or NAME/c/i/j/k (format 3, default chunk key encoding).';
