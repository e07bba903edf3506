-- Import of kerchunk reference JSON and GIK [key, value] reference tables into the catalog (stored with
-- gik.store_run). docs/manifests.md describes the naming rules and the COPY incantations.

-- grant: reader
-- The value of a coordinate array at a chunk's grid position.
CREATE FUNCTION gik.coord_at(vals float8[], pos int[], strides int[], idx int[]) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN cardinality(pos) <= 4 THEN
           vals[1 + coalesce(idx[pos[1]] * strides[1], 0) + coalesce(idx[pos[2]] * strides[2], 0)
                  + coalesce(idx[pos[3]] * strides[3], 0) + coalesce(idx[pos[4]] * strides[4], 0)] END;
COMMENT ON FUNCTION gik.coord_at(float8[], int[], int[], int[]) IS
'The element of a C-order coordinate array of up to 4 dimensions (values vals, row-major strides) at a chunk position: pos gives, for each coordinate dimension, its position in the data variable''s dimensions, idx the chunk''s index along each of them.';

-- grant: reader
-- Member number from a GIK/GEFS member token: control, c00, gec00 -> 0; ens01, p01, gep01, pf01 -> 1.
CREATE FUNCTION gik.member_from_token(token text) RETURNS int
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN lower(token) IN ('control', 'cf') THEN 0
            WHEN length(rtrim(token, '0123456789')) = length(token) OR length(token) - length(rtrim(token, '0123456789')) > 6 THEN NULL
            WHEN lower(rtrim(token, '0123456789')) IN ('c', 'gec') THEN 0
            WHEN lower(rtrim(token, '0123456789')) IN ('ens', 'ens_', 'pf', 'p', 'gep', 'mem', 'mem_', 'member', 'member_')
                THEN substr(token, length(rtrim(token, '0123456789')) + 1)::int END;
COMMENT ON FUNCTION gik.member_from_token(text) IS
'The member number in a GIK or NOAA member token: control, cf, c00, gec00 give 0; ens01, ens_01, pf01, p01, gep01, mem01 give 1; anything else NULL.';

-- grant: ingest
-- Hours (or seconds since 1970) from a CF units string: the scale and the offset to apply.
CREATE FUNCTION gik.cf_time_scale(units text, role text, dtype text, OUT scale float8, OUT base float8)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m    text[] := regexp_match(lower(coalesce(units, '')), '^\s*(\w+)(?:\s+since\s+(.+?))?\s*$');
    secs float8;
BEGIN
    secs := CASE WHEN dtype ~ '[Mm]8' THEN 1
                 ELSE CASE coalesce(m[1], CASE WHEN role = 'step' THEN 'hours' ELSE 'seconds' END)
                          WHEN 'seconds' THEN 1 WHEN 'second' THEN 1 WHEN 's' THEN 1 WHEN 'sec' THEN 1
                          WHEN 'minutes' THEN 60 WHEN 'minute' THEN 60 WHEN 'min' THEN 60
                          WHEN 'hours' THEN 3600 WHEN 'hour' THEN 3600 WHEN 'h' THEN 3600
                          WHEN 'days' THEN 86400 WHEN 'day' THEN 86400 WHEN 'd' THEN 86400 END END;
    IF role = 'step' THEN
        scale := secs / 3600;
        base := 0;
    ELSE
        scale := secs;
        base := CASE WHEN dtype ~ '[Mm]8' OR m[2] IS NULL THEN 0
                     ELSE extract(epoch FROM (replace(m[2], 't', ' ')::timestamp AT TIME ZONE 'UTC')) END;
    END IF;
END $$;
COMMENT ON FUNCTION gik.cf_time_scale(text, text, text) IS
'How to turn a time coordinate into hours (role ''step'') or seconds since 1970 (other roles): the scale and offset for CF units such as ''hours'' or ''seconds since 1970-01-01T00:00:00''; datetime64/timedelta64 dtypes are already in seconds.';

-- grant: ingest
-- Empty staging tables for one import (dropped at commit).
CREATE FUNCTION gik.import_begin() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['gik_imp_e', 'gik_imp_doc', 'gik_imp_arr', 'gik_imp_coord', 'gik_imp_role', 'gik_imp_var',
                             'gik_imp_chunk', 'gik_imp_url', 'gik_imp_ref', 'gik_imp_ref2', 'gik_imp_key', 'gik_imp_file'] LOOP
        IF to_regclass('pg_temp.' || t) IS NOT NULL THEN
            EXECUTE format('DROP TABLE pg_temp.%I', t);
        END IF;
    END LOOP;
    CREATE TEMP TABLE gik_imp_e (
        doc int NOT NULL, key text NOT NULL, kind "char" NOT NULL, url text, byte_offset numeric, byte_length numeric,
        nelem int, inline text, meta jsonb, member int) ON COMMIT DROP;
END $$;
COMMENT ON FUNCTION gik.import_begin() IS
'Internal to the import functions: (re)create the session''s staging table of reference entries, dropped at commit.';

-- grant: ingest
-- A reference written as text, ["url", offset, length] or Python's ['url', offset, length], taken apart without JSON.
CREATE FUNCTION gik.parse_ref_text(value text, OUT url text, OUT byte_offset numeric, OUT byte_length numeric)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    body text := btrim(value);
    c2   int;
    c1   int;
    q    text;
    o    text;
    l    text;
BEGIN
    IF left(body, 1) <> '[' OR right(body, 1) <> ']' THEN
        RETURN;
    END IF;
    body := substr(body, 2, length(body) - 2);
    c2 := strpos(reverse(body), ',');
    IF c2 = 0 THEN RETURN; END IF;
    l := btrim(right(body, c2 - 1));
    body := left(body, length(body) - c2);
    c1 := strpos(reverse(body), ',');
    IF c1 = 0 THEN RETURN; END IF;
    o := btrim(right(body, c1 - 1));
    q := btrim(left(body, length(body) - c1));
    IF length(q) < 2 OR left(q, 1) NOT IN ('"', '''') OR right(q, 1) <> left(q, 1)
       OR strpos(substr(q, 2, length(q) - 2), left(q, 1)) > 0 OR strpos(q, '\') > 0
       OR ltrim(o, '-') = '' OR translate(ltrim(o, '-'), '0123456789', '') <> ''
       OR ltrim(l, '-') = '' OR translate(ltrim(l, '-'), '0123456789', '') <> '' THEN
        RETURN;
    END IF;
    url := substr(q, 2, length(q) - 2);
    byte_offset := o::numeric;
    byte_length := l::numeric;
END $$;
COMMENT ON FUNCTION gik.parse_ref_text(text) IS
'The URL, offset and length of a reference written as ["url", offset, length] or Python''s [''url'', offset, length] (no escapes in the URL), taken apart with string functions (regular expressions with groups are 10-100 times slower per row); NULLs for anything else, which is then read as JSON.';

-- grant: ingest
-- Expand kerchunk {{name}} URL templates.
CREATE FUNCTION gik.expand_templates(url text, templates jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    k text;
    v text;
BEGIN
    IF url IS NULL OR strpos(url, '{{') = 0 OR templates IS NULL OR jsonb_typeof(templates) <> 'object' THEN
        RETURN url;
    END IF;
    FOR k, v IN SELECT t.key, t.value FROM jsonb_each_text(templates) t LOOP
        url := replace(replace(url, '{{' || k || '}}', v), '{{ ' || k || ' }}', v);
    END LOOP;
    RETURN url;
END $$;
COMMENT ON FUNCTION gik.expand_templates(text, jsonb) IS
'A kerchunk reference URL with its {{name}} (or {{ name }}) templates replaced by their values.';

-- grant: ingest
-- The import proper, from the entries staged in pg_temp.gik_imp_e: runs, files, fields, windows and packs.
CREATE FUNCTION gik.import_core(p_dataset text, p_source text, p_bytes int8, p_init timestamptz, p_member int,
                                p_steps float8[], p_url_prefix text, p_reset int, p_learn bool)
RETURNS SETOF gik.run
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    meta_re   constant text := '(^|/)(\.zarray|\.zattrs|\.zgroup|\.zmetadata|zarr\.json)$';
    ecmwf_acc constant text[] := '{tp,cp,lsp,sf,ssrd,strd,ssr,str,ttr,tsr,sshf,slhf,e,ro,sro,ssro}';
    t0        timestamptz := clock_timestamp();
    d         gik.dataset;
    bad       record;
    crec      record;
    arec      record;
    r         gik.run;
    acc       text[];
    dvals     float8[];
    sc        record;
    n_files   int;
    n_refs    int8;
    tmpl_bytes int8;
BEGIN
    IF p_dataset IS NULL OR p_dataset !~ '^[a-z][a-z0-9_]{0,40}$' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = format('invalid dataset name "%s"', p_dataset),
            HINT = 'Dataset names are lower-case letters, digits and _, starting with a letter.';
    END IF;
    SELECT * INTO d FROM gik.dataset x WHERE x.name = p_dataset;
    acc := coalesce(d.accumulated_params, ecmwf_acc);

    -- 1. Every entry must be well formed, and appear once in its document.
    SELECT e.doc, e.key, count(*) AS n INTO bad FROM pg_temp.gik_imp_e e GROUP BY 1, 2 HAVING count(*) > 1 ORDER BY 1, 2 LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'unique_violation',
            MESSAGE = format('key "%s" appears %s times in one reference set', bad.key, bad.n),
            HINT = 'Rows of several GIK files need a source (file name) or member column that tells the files apart.';
    END IF;
    SELECT e.* INTO bad FROM pg_temp.gik_imp_e e
    WHERE (e.kind = 'm' AND e.meta IS NULL AND e.key ~ meta_re)
       OR e.kind = 'x'
       OR (e.kind = 'r' AND (e.nelem IS DISTINCT FROM 3 OR e.url IS NULL OR e.url = '' OR strpos(e.url, '{{') > 0
                             OR e.byte_offset IS NULL OR e.byte_length IS NULL
                             OR e.byte_offset <> trunc(e.byte_offset) OR e.byte_length <> trunc(e.byte_length)
                             OR e.byte_offset < 0 OR e.byte_length <= 0 OR e.byte_offset + e.byte_length > 9223372036854775807
                             OR e.byte_length > 2147483647))
    ORDER BY e.doc, e.key LIMIT 1;
    IF FOUND THEN
        IF bad.kind = 'm' THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_text_representation',
                MESSAGE = format('metadata key "%s" does not hold valid JSON', bad.key),
                DETAIL = format('Its value starts with %s.', left(coalesce(bad.inline, 'nothing'), 60));
        ELSIF bad.kind = 'x' THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_text_representation',
                MESSAGE = format('key "%s" holds neither a reference nor inline data', bad.key),
                DETAIL = 'Values are ["url", offset, length] references, strings (inline data) or, for metadata keys, JSON text.';
        ELSIF bad.nelem = 1 THEN
            RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
                MESSAGE = format('reference "%s" is a whole file, not a byte range', bad.key),
                DETAIL = 'pg_gik keeps one GRIB message per reference: ["url", offset, length].';
        ELSIF strpos(bad.url, '{{') > 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'undefined_object',
                MESSAGE = format('reference "%s" uses an undefined URL template: "%s"', bad.key, bad.url),
                HINT = 'Define it in the document''s "templates" or pass templates => ''{"name": "url"}''.';
        ELSIF bad.nelem = 3 AND bad.byte_offset < 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'numeric_value_out_of_range',
                MESSAGE = format('reference "%s" has a negative offset: %s', bad.key, bad.byte_offset),
                DETAIL = 'Offsets are byte positions in the file, from 0.';
        ELSIF bad.nelem = 3 AND bad.byte_offset = trunc(bad.byte_offset) AND bad.byte_length = trunc(bad.byte_length) THEN
            RAISE EXCEPTION USING ERRCODE = 'numeric_value_out_of_range',
                MESSAGE = format('reference "%s" has an invalid length: %s', bad.key, bad.byte_length),
                DETAIL = 'A GRIB message is between 1 byte and 2 GB long and ends before 2^63.';
        ELSE
            RAISE EXCEPTION USING ERRCODE = 'invalid_text_representation',
                MESSAGE = format('reference "%s" is not ["url", offset, length]', bad.key),
                DETAIL = 'Offset and length must be integers.';
        END IF;
    END IF;
    ANALYZE pg_temp.gik_imp_e;
    IF NOT EXISTS (SELECT FROM pg_temp.gik_imp_e e WHERE e.kind = 'r') THEN
        RAISE EXCEPTION USING ERRCODE = 'no_data_found', MESSAGE = 'no chunk references to import',
            DETAIL = 'The input holds no ["url", offset, length] values.';
    END IF;
    IF p_url_prefix IS NOT NULL THEN
        UPDATE pg_temp.gik_imp_e e SET url = p_url_prefix || e.url
        WHERE e.kind = 'r' AND strpos(e.url, '://') = 0 AND left(e.url, 1) <> '/';
    END IF;
    -- 2. Arrays (.zarray with .zattrs) and which names are coordinates.
    CREATE TEMP TABLE gik_imp_arr ON COMMIT DROP AS
    WITH m AS MATERIALIZED (SELECT e.doc, e.key, e.meta FROM pg_temp.gik_imp_e e WHERE e.kind = 'm')
    SELECT z.doc, left(z.key, -8) AS path,
           regexp_replace(left(z.key, -8), '^.*/', '') AS name,
           CASE WHEN left(z.key, -8) LIKE '%/%' THEN regexp_replace(left(z.key, -8), '/[^/]*$', '') ELSE '' END AS grp,
           z.meta AS zarray, coalesce(t.meta, '{}') AS attrs,
           CASE WHEN jsonb_typeof(t.meta -> '_ARRAY_DIMENSIONS') = 'array'
                THEN ARRAY(SELECT jsonb_array_elements_text(t.meta -> '_ARRAY_DIMENSIONS')) END AS dims,
           CASE WHEN jsonb_typeof(z.meta -> 'shape') = 'array'
                THEN ARRAY(SELECT jsonb_array_elements_text(z.meta -> 'shape'))::int8[] ELSE '{}' END AS shape,
           CASE WHEN jsonb_typeof(z.meta -> 'chunks') = 'array'
                THEN ARRAY(SELECT jsonb_array_elements_text(z.meta -> 'chunks'))::int8[] ELSE '{}' END AS chunks,
           false AS is_data
    FROM m z
    LEFT JOIN m t ON t.doc = z.doc AND t.key = left(z.key, -8) || '/.zattrs'
    WHERE z.key LIKE '_%/.zarray';
    ANALYZE pg_temp.gik_imp_arr;
    UPDATE pg_temp.gik_imp_arr a SET is_data = true
    WHERE NOT EXISTS (
        SELECT FROM (
            SELECT x.doc, unnest(x.dims) AS n FROM pg_temp.gik_imp_arr x
            UNION ALL
            SELECT e.doc, regexp_split_to_table(e.meta ->> 'coordinates', '\s+') FROM pg_temp.gik_imp_e e
            WHERE e.kind = 'm' AND right(e.key, 7) = '.zattrs' AND jsonb_typeof(e.meta -> 'coordinates') = 'string'
            UNION ALL
            SELECT x.doc, unnest('{latitude,longitude,time,step,valid_time,number}'::text[]) FROM pg_temp.gik_imp_arr x) c
        WHERE c.doc = a.doc AND c.n = a.name);

    -- 3. References: chunks of data variables, GIK step_NNN/var/level/member/0.0.0 keys, or errors.
    CREATE TEMP TABLE gik_imp_chunk ON COMMIT DROP AS
    SELECT e.doc, e.key, e.url, e.byte_offset::int8 AS byte_offset, e.byte_length::int8 AS byte_length, e.member AS row_member,
           a.path, a.is_data, k.cid,
           CASE WHEN a.path IS NULL AND k.key_ok AND e.key LIKE 'step\_%/%/%/%' AND split_part(e.key, '/', 6) = ''
                     AND translate(split_part(split_part(e.key, '/', 1), '_', 2), '0123456789', '') = ''
                     AND split_part(split_part(e.key, '/', 1), '_', 2) <> ''
                THEN ARRAY[split_part(split_part(e.key, '/', 1), '_', 2), split_part(e.key, '/', 2), split_part(e.key, '/', 3),
                           CASE WHEN split_part(e.key, '/', 5) <> '' THEN split_part(e.key, '/', 4) END] END AS g2,
           CASE WHEN a.path IS NOT NULL AND k.key_ok THEN string_to_array(k.cid, '.')::int[] END AS idx
    FROM pg_temp.gik_imp_e e
    CROSS JOIN LATERAL (SELECT split_part(e.key, '/', -1) AS cid) c
    CROSS JOIN LATERAL (SELECT c.cid, left(e.key, length(e.key) - length(c.cid) - 1) AS parent,
                               c.cid <> '' AND translate(c.cid, '0123456789.', '') = '' AND strpos(c.cid, '..') = 0
                               AND left(c.cid, 1) <> '.' AND right(c.cid, 1) <> '.' AND length(c.cid) < 60 AS key_ok) k
    LEFT JOIN pg_temp.gik_imp_arr a ON a.doc = e.doc AND strpos(e.key, '/') > 0 AND a.path = k.parent
    WHERE e.kind = 'r';
    ANALYZE pg_temp.gik_imp_chunk;
    SELECT ch.key INTO bad FROM pg_temp.gik_imp_chunk ch WHERE ch.path IS NULL AND ch.g2 IS NULL ORDER BY ch.doc, ch.key LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('reference key "%s" maps to no variable', bad.key),
            DETAIL = 'A reference must be a chunk VAR/i.j… of an array with a VAR/.zarray, or a GIK step_NNN/VAR/LEVEL/MEMBER/0.0.0 key.';
    END IF;
    DELETE FROM pg_temp.gik_imp_chunk ch WHERE ch.path IS NOT NULL AND NOT ch.is_data;   -- coordinates kept in GRIB (kerchunk latitude/longitude)
    SELECT ch.key, ch.url INTO bad FROM pg_temp.gik_imp_chunk ch
    WHERE strpos(ch.url, '://') = 0 AND left(ch.url, 1) <> '/' ORDER BY ch.doc, ch.key LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('reference "%s" has a relative URL: "%s"', bad.key, bad.url),
            HINT = 'Pass url_prefix => ''s3://bucket/dir/'' (or templates) to make it absolute.';
    END IF;

    SELECT ch.key, a.path, a.dims, a.shape, a.chunks INTO bad
    FROM pg_temp.gik_imp_chunk ch JOIN pg_temp.gik_imp_arr a ON a.doc = ch.doc AND a.path = ch.path
    WHERE a.dims IS NULL OR cardinality(a.dims) <> cardinality(a.shape) OR cardinality(a.chunks) <> cardinality(a.shape)
       OR ch.idx IS NULL
       OR (cardinality(a.shape) = 0 AND ch.cid <> '0')
       OR (cardinality(a.shape) > 0 AND cardinality(string_to_array(ch.cid, '.')) <> cardinality(a.shape))
    ORDER BY ch.doc, ch.key LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('key "%s" is not a chunk of array "%s"', bad.key, bad.path),
            DETAIL = format('The array has shape %s, chunks %s and dimensions %s (_ARRAY_DIMENSIONS).',
                            bad.shape, bad.chunks, coalesce(bad.dims::text, 'not given'));
    END IF;
    SELECT ch.key, a.path, a.dims[k] AS dim, a.shape[k] AS size, a.chunks[k] AS csize INTO bad
    FROM pg_temp.gik_imp_chunk ch JOIN pg_temp.gik_imp_arr a ON a.doc = ch.doc AND a.path = ch.path,
         LATERAL generate_subscripts(a.shape, 1) k
    WHERE (a.chunks[k] > 1 AND a.chunks[k] < a.shape[k])
       OR (string_to_array(ch.cid, '.')::int8[])[k] * a.chunks[k] >= greatest(a.shape[k], 1)
    ORDER BY ch.doc, ch.key LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('chunk "%s" is outside array "%s" or only part of a GRIB message', bad.key, bad.path),
            DETAIL = format('Dimension "%s" has %s elements in chunks of %s; each chunk must be a whole message (one chunk along the grid, chunks of 1 elsewhere).',
                            bad.dim, bad.size, bad.csize);
    END IF;

    -- 4. Coordinate arrays: their role and, when inline and uncompressed, their values.
    CREATE TEMP TABLE gik_imp_coord ON COMMIT DROP AS
    SELECT a.doc, a.path, a.name, a.grp, a.dims, a.shape, a.attrs, a.zarray,
           CASE WHEN a.attrs ->> 'standard_name' = 'forecast_reference_time' OR a.name IN ('init_time', 'reference_time', 'forecast_reference_time') THEN 'init'
                WHEN a.attrs ->> 'standard_name' = 'forecast_period' OR a.name IN ('step', 'lead_time') THEN 'step'
                WHEN a.attrs ->> 'standard_name' = 'realization' OR a.name IN ('number', 'ens', 'member', 'ensemble_member', 'realization') THEN 'member'
                WHEN a.attrs ->> 'standard_name' = 'time' OR a.name = 'valid_time' THEN 'valid'
                WHEN a.name = 'time' THEN 'init'
                WHEN a.attrs ->> 'standard_name' IN ('latitude', 'longitude') OR a.name IN ('latitude', 'longitude', 'lat', 'lon', 'x', 'y') THEN 'grid'
                ELSE 'level' END AS role,
           (SELECT e.inline FROM pg_temp.gik_imp_e e
            WHERE e.doc = a.doc AND e.kind = 'i'
              AND e.key = a.path || '/' || coalesce(nullif(array_to_string(array_fill(0, ARRAY[cardinality(a.shape)]), '.'), ''), '0')) AS data,
           NULL::float8[] AS vals, NULL::text AS problem
    FROM pg_temp.gik_imp_arr a WHERE NOT a.is_data AND a.dims IS NOT NULL;
    FOR crec IN SELECT * FROM pg_temp.gik_imp_coord WHERE role <> 'grid' OR cardinality(dims) = 1 LOOP
        dvals := NULL;
        IF jsonb_typeof(crec.zarray -> 'compressor') = 'object' THEN
            UPDATE pg_temp.gik_imp_coord SET problem = format('is compressed with %s', crec.zarray -> 'compressor' ->> 'id')
            WHERE doc = crec.doc AND path = crec.path;
        ELSIF jsonb_typeof(crec.zarray -> 'filters') = 'array' AND jsonb_array_length(crec.zarray -> 'filters') > 0 THEN
            UPDATE pg_temp.gik_imp_coord SET problem = format('is read through the %s filter', crec.zarray -> 'filters' -> 0 ->> 'id')
            WHERE doc = crec.doc AND path = crec.path;
        ELSIF crec.data IS NULL THEN
            UPDATE pg_temp.gik_imp_coord SET problem = 'has no inline values' WHERE doc = crec.doc AND path = crec.path;
        ELSIF (crec.zarray -> 'chunks') IS DISTINCT FROM (crec.zarray -> 'shape') THEN
            UPDATE pg_temp.gik_imp_coord SET problem = 'is split into several chunks' WHERE doc = crec.doc AND path = crec.path;
        ELSE
            BEGIN
                dvals := gik.zarr_decode(gik.inline_bytes(crec.data), crec.zarray ->> 'dtype');
            EXCEPTION WHEN OTHERS THEN
                UPDATE pg_temp.gik_imp_coord SET problem = format('cannot be decoded (%s)', SQLERRM) WHERE doc = crec.doc AND path = crec.path;
                CONTINUE;
            END;
            IF cardinality(dvals) IS DISTINCT FROM (SELECT coalesce(exp(sum(ln(greatest(s, 1)))), 1)::int FROM unnest(crec.shape) s)
               AND NOT (cardinality(dvals) = 0 AND EXISTS (SELECT FROM unnest(crec.shape) s WHERE s = 0)) THEN
                UPDATE pg_temp.gik_imp_coord SET problem = format('holds %s values for shape %s', cardinality(dvals), crec.shape)
                WHERE doc = crec.doc AND path = crec.path;
                CONTINUE;
            END IF;
            IF crec.role IN ('init', 'valid', 'step') THEN
                sc := gik.cf_time_scale(crec.attrs ->> 'units', crec.role, crec.zarray ->> 'dtype');
                IF sc.scale IS NULL THEN
                    UPDATE pg_temp.gik_imp_coord SET problem = format('has units "%s", which are not a time', crec.attrs ->> 'units')
                    WHERE doc = crec.doc AND path = crec.path;
                    CONTINUE;
                END IF;
                dvals := ARRAY(SELECT v * sc.scale + sc.base FROM unnest(dvals) WITH ORDINALITY u(v, o) ORDER BY o);
            END IF;
            UPDATE pg_temp.gik_imp_coord SET vals = dvals WHERE doc = crec.doc AND path = crec.path;
        END IF;
    END LOOP;

    -- 5. Data variables: which coordinate gives each role, and the metadata of their fields.
    CREATE TEMP TABLE gik_imp_role (doc int, path text, role text, cname text, vals float8[], pos int[], strides int[], problem text)
        ON COMMIT DROP;
    FOR arec IN SELECT * FROM pg_temp.gik_imp_arr x WHERE x.is_data AND EXISTS (
                 SELECT FROM pg_temp.gik_imp_chunk ch WHERE ch.doc = x.doc AND ch.path = x.path) LOOP
        INSERT INTO pg_temp.gik_imp_role
        SELECT DISTINCT ON (c.role) arec.doc, arec.path, c.role, c.name, c.vals,
               ARRAY(SELECT array_position(arec.dims, cd) FROM unnest(c.dims) WITH ORDINALITY AS u(cd, o) ORDER BY o),
               ARRAY(SELECT coalesce((SELECT exp(sum(ln(greatest(c.shape[j], 1))))::int
                                      FROM generate_series(k + 1, cardinality(c.shape)) j), 1)
                     FROM generate_series(1, cardinality(c.shape)) k ORDER BY k),
               c.problem
        FROM pg_temp.gik_imp_coord c
        WHERE c.doc = arec.doc AND c.role IN ('init', 'step', 'valid', 'member', 'level') AND c.dims <@ arec.dims
          AND (c.grp = arec.grp OR c.grp = '' OR arec.grp LIKE c.grp || '/%')
          AND (c.role <> 'level' OR c.name = arec.attrs ->> 'GRIB_typeOfLevel' OR c.name = ANY (arec.dims)
               OR (arec.attrs ->> 'GRIB_typeOfLevel' IS NULL AND cardinality(c.dims) = 0 AND c.name = split_part(arec.path, '/', 3)))
        ORDER BY c.role, length(c.grp) DESC, (c.name = arec.attrs ->> 'GRIB_typeOfLevel') DESC, c.name;
    END LOOP;
    CREATE TEMP TABLE gik_imp_var ON COMMIT DROP AS
    SELECT a.doc, a.path, a.dims, a.attrs,
           coalesce(a.attrs ->> 'gik_variable', a.name) AS variable,
           coalesce(a.attrs ->> 'gik_stat',
                    CASE coalesce(a.attrs ->> 'GRIB_stepType', CASE WHEN a.path ~ '^[^/]+/[^/]+/[^/]+/' THEN split_part(a.path, '/', 2) END,
                                  a.attrs ->> 'statistical_process', '')
                        WHEN 'accum' THEN 'acc' WHEN 'acc' THEN 'acc' WHEN 'accumulation' THEN 'acc'
                        WHEN 'avg' THEN 'ave' WHEN 'ave' THEN 'ave' WHEN 'average' THEN 'ave'
                        WHEN 'max' THEN 'max' WHEN 'maximum' THEN 'max' WHEN 'min' THEN 'min' WHEN 'minimum' THEN 'min'
                        ELSE '' END) AS stat,
           coalesce(a.attrs ->> 'GRIB_typeOfLevel', a.attrs ->> 'fixed_surface_type',
                    CASE WHEN a.path ~ '^[^/]+/[^/]+/[^/]+/' THEN split_part(a.path, '/', 3) END, '') AS level_type,
           coalesce(a.attrs ->> 'GRIB_shortName', a.attrs ->> 'GRIB_cfVarName', a.name) AS short_name,
           coalesce(a.attrs ->> 'GRIB_units', a.attrs ->> 'units', a.attrs ->> 'unit') AS units,
           CASE WHEN a.attrs ->> 'GRIB_paramId' ~ '^[0-9]+$' THEN (a.attrs ->> 'GRIB_paramId')::int END AS param_id,
           a.attrs ->> 'GRIB_packingType' AS packing,
           (SELECT min(k) FROM generate_subscripts(a.dims, 1) k
            WHERE EXISTS (SELECT FROM pg_temp.gik_imp_coord c WHERE c.doc = a.doc AND c.name = a.dims[k] AND c.role IN ('step', 'valid'))
               OR a.dims[k] IN ('step', 'valid_time', 'lead_time')) AS lead_pos,
           coalesce(a.attrs ->> 'reference_date', a.attrs ->> 'forecast_reference_time') AS attr_init,
           a.attrs -> 'gik_window_start' AS starts, a.attrs ->> 'gik_level' AS gik_level
    FROM pg_temp.gik_imp_arr a
    WHERE EXISTS (SELECT FROM pg_temp.gik_imp_chunk ch WHERE ch.doc = a.doc AND ch.path = a.path);

    -- 6. One row per reference with its keys: coordinates first, then the options and the URL.
    CREATE TEMP TABLE gik_imp_url ON COMMIT DROP AS
    SELECT u.url,
           (SELECT to_timestamp(m[1] || m[2], 'YYYYMMDDHH24')::timestamp AT TIME ZONE 'UTC'
            FROM regexp_match(u.url, '/(?:[a-z]+\.)?([0-9]{8})/([0-9]{2})z?/') m) AS url_init,
           gik.member_from_token(substring(u.url FROM '/(ge[cp][0-9]+)\.[^/]*$')) AS url_member
    FROM (SELECT DISTINCT ch.url FROM pg_temp.gik_imp_chunk ch) u;
    ANALYZE pg_temp.gik_imp_url;
    CREATE TEMP TABLE gik_imp_ref ON COMMIT DROP AS
    WITH x AS (
        SELECT ch.doc, ch.key, ch.url, ch.byte_offset, ch.byte_length, ch.path, ch.g2, ch.row_member,
               ch.idx, iu.url_init, iu.url_member,
               v.variable, v.stat, v.level_type, v.lead_pos, v.starts, v.attr_init, v.gik_level,
               ri.vals AS ri_vals, ri.pos AS ri_pos, ri.strides AS ri_str,
               rs.vals AS rs_vals, rs.pos AS rs_pos, rs.strides AS rs_str, rs.cname AS rs_name,
               rv.vals AS rv_vals, rv.pos AS rv_pos, rv.strides AS rv_str, rv.cname AS rv_name,
               rm.vals AS rm_vals, rm.pos AS rm_pos, rm.strides AS rm_str,
               rl.vals AS rl_vals, rl.pos AS rl_pos, rl.strides AS rl_str, rl.cname AS rl_name
        FROM pg_temp.gik_imp_chunk ch
        JOIN pg_temp.gik_imp_url iu ON iu.url = ch.url
        LEFT JOIN pg_temp.gik_imp_var v ON v.doc = ch.doc AND v.path = ch.path
        LEFT JOIN pg_temp.gik_imp_role ri ON ri.doc = ch.doc AND ri.path = ch.path AND ri.role = 'init'
        LEFT JOIN pg_temp.gik_imp_role rs ON rs.doc = ch.doc AND rs.path = ch.path AND rs.role = 'step'
        LEFT JOIN pg_temp.gik_imp_role rv ON rv.doc = ch.doc AND rv.path = ch.path AND rv.role = 'valid'
        LEFT JOIN pg_temp.gik_imp_role rm ON rm.doc = ch.doc AND rm.path = ch.path AND rm.role = 'member'
        LEFT JOIN pg_temp.gik_imp_role rl ON rl.doc = ch.doc AND rl.path = ch.path AND rl.role = 'level'),
    y AS MATERIALIZED (
        SELECT x.*,
               gik.coord_at(ri_vals, ri_pos, ri_str, idx) AS init_s,
               gik.coord_at(rs_vals, rs_pos, rs_str, idx) AS step_h,
               gik.coord_at(rv_vals, rv_pos, rv_str, idx) AS valid_s,
               gik.coord_at(rm_vals, rm_pos, rm_str, idx) AS member_v,
               gik.coord_at(rl_vals, rl_pos, rl_str, idx) AS level_v,
               CASE WHEN g2 IS NULL THEN idx[lead_pos] END AS lead_i
        FROM x),
    z AS (
        SELECT y.*,
               coalesce(CASE WHEN valid_s IS NOT NULL AND step_h IS NOT NULL THEN to_timestamp(valid_s - step_h * 3600) END,
                        to_timestamp(init_s),
                        p_init,
                        CASE WHEN attr_init IS NOT NULL THEN attr_init::timestamptz END,
                        url_init) AS init_time
        FROM y),
    w AS (
        SELECT z.*,
               coalesce(step_h,
                        CASE WHEN valid_s IS NOT NULL THEN (valid_s - extract(epoch FROM init_time)) / 3600 END,
                        (g2[1])::float8,
                        p_steps[lead_i + 1],
                        CASE WHEN lead_i IS NULL AND rs_name IS NULL AND rv_name IS NULL AND cardinality(p_steps) = 1 THEN p_steps[1] END) AS step,
               CASE WHEN g2 IS NOT NULL THEN CASE WHEN g2[2] = ANY (acc) THEN 'acc' ELSE '' END ELSE z.stat END AS stat2
        FROM z)
    SELECT w.doc, w.key, w.url, w.byte_offset, w.byte_length, w.path, w.init_time, w.step,
           coalesce(CASE WHEN member_v IS NOT NULL AND member_v <> -9 THEN member_v::int END,
                    gik.member_from_token(g2[4]), row_member, p_member, url_member) AS member,
           coalesce(w.g2[2], w.variable) AS variable,
           CASE WHEN g2 IS NOT NULL THEN g2[3]
                ELSE coalesce(w.gik_level,
                              CASE WHEN rl_name IS NOT NULL AND level_v IS NOT NULL
                                   THEN rl_name || CASE WHEN level_v = 0 THEN '' ELSE '/' || level_v::text END END,
                              level_type) END AS level,
           w.stat2 AS stat,
           round(60 * CASE WHEN w.stat2 = '' THEN w.step
                           WHEN jsonb_typeof(w.starts -> w.lead_i) = 'number' THEN (w.starts ->> w.lead_i)::float8
                           WHEN p_reset > 0 THEN greatest(0, p_reset * ceil(w.step / p_reset) - p_reset)
                           ELSE 0 END)::int AS start_min,
           round(w.step * 60)::int AS end_min
    FROM w;
    ANALYZE pg_temp.gik_imp_ref;

    SELECT f.key, f.init_time, f.step, ri.problem AS ri_problem, ri.cname AS ri_name, rs.problem AS rs_problem, rs.cname AS rs_name,
           rv.problem AS rv_problem, rv.cname AS rv_name INTO bad
    FROM pg_temp.gik_imp_ref f
    LEFT JOIN pg_temp.gik_imp_role ri ON ri.doc = f.doc AND ri.path = f.path AND ri.role = 'init'
    LEFT JOIN pg_temp.gik_imp_role rs ON rs.doc = f.doc AND rs.path = f.path AND rs.role = 'step'
    LEFT JOIN pg_temp.gik_imp_role rv ON rv.doc = f.doc AND rv.path = f.path AND rv.role = 'valid'
    WHERE f.init_time IS NULL OR f.step IS NULL ORDER BY f.doc, f.key LIMIT 1;
    IF FOUND THEN
        IF bad.init_time IS NULL AND bad.ri_problem IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
                MESSAGE = format('cannot read the initialisation time of key "%s": coordinate "%s" %s', bad.key, bad.ri_name, bad.ri_problem),
                HINT = 'Pass init_time => ''YYYY-MM-DD HH:00+00''.';
        ELSIF bad.init_time IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('the initialisation time of key "%s" is not given', bad.key),
                DETAIL = 'Neither a time (forecast_reference_time) coordinate nor a reference_date attribute nor the URL tells it.',
                HINT = 'Pass init_time => ''YYYY-MM-DD HH:00+00''.';
        ELSIF coalesce(bad.rs_problem, bad.rv_problem) IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
                MESSAGE = format('cannot read the forecast step of key "%s": coordinate "%s" %s', bad.key,
                                 coalesce(bad.rs_name, bad.rv_name), coalesce(bad.rs_problem, bad.rv_problem)),
                HINT = 'Pass steps => ARRAY[…], the hours of each position along that dimension.';
        ELSE
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('the forecast step of key "%s" is not given', bad.key),
                DETAIL = 'Neither a step (forecast_period) nor a valid time coordinate tells it.',
                HINT = 'Pass steps => ARRAY[…], the hours of each position along the lead-time dimension.';
        END IF;
    END IF;
    SELECT f.key, f.init_time INTO bad FROM pg_temp.gik_imp_ref f
    WHERE f.init_time <> date_trunc('hour', f.init_time) OR f.step < 0 ORDER BY f.doc, f.key LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('key "%s" has initialisation time %s or a negative step', bad.key, bad.init_time),
            DETAIL = 'Runs start on the hour and steps are 0 or more hours.';
    END IF;

    -- 7. The dataset (created when new), fields with what the metadata says of their templates, windows.
    IF d.dataset_id IS NULL THEN
        -- accumulated_params records the rule this import used, so that importing the same references again
        -- gives the same statistics and windows (and no new version).
        INSERT INTO gik.dataset (name, description, index_format, cycles, steps, members, accumulated_params)
        SELECT p_dataset, format('Imported from %s', p_source), 'imported',
               array_agg(DISTINCT extract(hour FROM f.init_time AT TIME ZONE 'UTC')::smallint),
               array_agg(DISTINCT round(f.step)::int),
               array_remove(array_agg(DISTINCT f.member), NULL), acc
        FROM pg_temp.gik_imp_ref f
        RETURNING * INTO d;
        UPDATE gik.dataset x SET members = NULL WHERE x.dataset_id = d.dataset_id AND cardinality(x.members) = 0;
    ELSIF d.index_format = 'imported' THEN
        UPDATE gik.dataset x SET
            cycles = (SELECT array_agg(DISTINCT c ORDER BY c) FROM (SELECT unnest(x.cycles) UNION
                      SELECT extract(hour FROM f.init_time AT TIME ZONE 'UTC')::smallint FROM pg_temp.gik_imp_ref f) s(c)),
            steps = (SELECT array_agg(DISTINCT s ORDER BY s) FROM (SELECT unnest(x.steps) UNION
                     SELECT round(f.step)::int FROM pg_temp.gik_imp_ref f) t(s)),
            members = (SELECT array_agg(DISTINCT m ORDER BY m) FROM (SELECT unnest(x.members) UNION
                       SELECT f.member FROM pg_temp.gik_imp_ref f WHERE f.member IS NOT NULL) t(m))
        WHERE x.dataset_id = d.dataset_id;
    END IF;
    CREATE TEMP TABLE gik_imp_key ON COMMIT DROP AS
    WITH k AS MATERIALIZED (SELECT DISTINCT f.doc, f.path, f.variable, f.level, f.stat, f.start_min, f.end_min
                            FROM pg_temp.gik_imp_ref f)
    SELECT k.doc, k.path, k.variable, k.level, k.stat, k.start_min, k.end_min, fl.field_id, w.window_id
    FROM k
    JOIN (SELECT f.* FROM (SELECT array_agg(k.variable) AS v, array_agg(k.level) AS l, array_agg(k.stat) AS s FROM k) a,
                          gik.store_fields(d.dataset_id, a.v, a.l, a.s) f) fl
      ON fl.variable = k.variable AND fl.level = k.level AND fl.stat = k.stat
    JOIN (SELECT f.* FROM (SELECT array_agg(k.start_min) AS s, array_agg(k.end_min) AS e FROM k) a,
                          gik.store_windows(a.s, a.e) f) w
      ON w.start_min = k.start_min AND w.end_min = k.end_min;
    ANALYZE pg_temp.gik_imp_key;
    CREATE TEMP TABLE gik_imp_ref2 ON COMMIT DROP AS
    SELECT f.*, k.field_id, k.window_id
    FROM pg_temp.gik_imp_ref f
    JOIN pg_temp.gik_imp_key k ON k.doc = f.doc AND coalesce(k.path, '') = coalesce(f.path, '') AND k.variable = f.variable
         AND k.level = f.level AND k.stat = f.stat AND k.start_min = f.start_min AND k.end_min = f.end_min;
    DROP TABLE pg_temp.gik_imp_ref;
    ALTER TABLE pg_temp.gik_imp_ref2 RENAME TO gik_imp_ref;
    ANALYZE pg_temp.gik_imp_ref;
    -- Templates from the metadata: ecCodes keys as kerchunk writes them, else the latitude/longitude coordinates.
    FOR arec IN
        SELECT DISTINCT ON (f.field_id) f.field_id, v.attrs, v.short_name, v.units, v.param_id, v.packing, v.doc, v.path, v.dims
        FROM pg_temp.gik_imp_key f JOIN pg_temp.gik_imp_var v ON v.doc = f.doc AND v.path = f.path
        JOIN gik.field fl ON fl.field_id = f.field_id
        WHERE fl.grid_id IS NULL OR fl.short_name IS NULL
        ORDER BY f.field_id, f.doc, f.path
    LOOP
        DECLARE
            m   gik.message_meta;
            lat float8[];
            lon float8[];
        BEGIN
            m.short_name := arec.short_name;
            m.units := arec.units;
            m.param_id := arec.param_id;
            m.packing := arec.packing;
            IF arec.attrs ? 'GRIB_gridType' AND arec.attrs ->> 'GRIB_Nx' ~ '^[0-9]+$' AND arec.attrs ->> 'GRIB_Ny' ~ '^[0-9]+$' THEN
                m.grid_type := arec.attrs ->> 'GRIB_gridType';
                m.ni := (arec.attrs ->> 'GRIB_Nx')::int;
                m.nj := (arec.attrs ->> 'GRIB_Ny')::int;
                m.num_points := coalesce((arec.attrs ->> 'GRIB_numberOfPoints')::int8, m.ni::int8 * m.nj);
                m.lat_first := (arec.attrs ->> 'GRIB_latitudeOfFirstGridPointInDegrees')::float8;
                m.lon_first := (arec.attrs ->> 'GRIB_longitudeOfFirstGridPointInDegrees')::float8;
                m.lat_last := (arec.attrs ->> 'GRIB_latitudeOfLastGridPointInDegrees')::float8;
                m.lon_last := (arec.attrs ->> 'GRIB_longitudeOfLastGridPointInDegrees')::float8;
                m.di := (arec.attrs ->> 'GRIB_iDirectionIncrementInDegrees')::float8;
                m.dj := (arec.attrs ->> 'GRIB_jDirectionIncrementInDegrees')::float8;
                m.scanning_mode := 128 * coalesce((arec.attrs ->> 'GRIB_iScansNegatively')::int, 0)
                                   + 64 * coalesce((arec.attrs ->> 'GRIB_jScansPositively')::int, 0)
                                   + 32 * coalesce((arec.attrs ->> 'GRIB_jPointsAreConsecutive')::int, 0);
            ELSE
                SELECT c.vals INTO lat FROM pg_temp.gik_imp_coord c
                WHERE c.doc = arec.doc AND c.role = 'grid' AND c.name = arec.dims[cardinality(arec.dims) - 1] AND cardinality(c.dims) = 1
                  AND c.vals IS NOT NULL;
                SELECT c.vals INTO lon FROM pg_temp.gik_imp_coord c
                WHERE c.doc = arec.doc AND c.role = 'grid' AND c.name = arec.dims[cardinality(arec.dims)] AND cardinality(c.dims) = 1
                  AND c.vals IS NOT NULL;
                IF cardinality(lat) > 1 AND cardinality(lon) > 1 THEN
                    m.grid_type := 'regular_ll';
                    m.nj := cardinality(lat);
                    m.ni := cardinality(lon);
                    m.num_points := m.ni::int8 * m.nj;
                    m.lat_first := lat[1];
                    m.lat_last := lat[m.nj];
                    m.lon_first := lon[1];
                    m.lon_last := lon[m.ni];
                    m.dj := abs(lat[2] - lat[1]);
                    m.di := abs(lon[2] - lon[1]);
                    m.scanning_mode := CASE WHEN lat[2] > lat[1] THEN 64 ELSE 0 END + CASE WHEN lon[2] < lon[1] THEN 128 ELSE 0 END;
                END IF;
            END IF;
            UPDATE gik.field fl SET
                short_name = coalesce(fl.short_name, m.short_name),
                units = coalesce(fl.units, m.units),
                param_id = coalesce(fl.param_id, m.param_id),
                packing = coalesce(fl.packing, m.packing),
                grid_id = coalesce(fl.grid_id, CASE WHEN m.grid_type IS NOT NULL THEN gik.grid_id_of(m) END),
                learned_from = coalesce(fl.learned_from, CASE WHEN m.grid_type IS NOT NULL THEN format('imported metadata of %s', arec.path) END)
            WHERE fl.field_id = arec.field_id;
        END;
    END LOOP;

    -- 8. One run per initialisation time, stored as one (a new version when its references changed).
    FOR crec IN SELECT DISTINCT f.init_time FROM pg_temp.gik_imp_ref f ORDER BY 1 LOOP
        PERFORM gik.store_begin();
        INSERT INTO pg_temp.gik_store_file (file_no, source, step, member, url, found)
        SELECT row_number() OVER (ORDER BY x.step, x.member, x.url), 'imported', x.step, x.member, x.url, true
        FROM (SELECT f.url, min(f.end_min) / 60 AS step,
                     CASE WHEN count(DISTINCT f.member) = 1 AND bool_and(f.member IS NOT NULL) THEN min(f.member) END AS member
              FROM pg_temp.gik_imp_ref f WHERE f.init_time = crec.init_time GROUP BY f.url) x;
        GET DIAGNOSTICS n_files = ROW_COUNT;
        INSERT INTO pg_temp.gik_store_ref (file_no, member, field_id, window_id, byte_offset, byte_length, seq)
        SELECT s.file_no, f.member, f.field_id, f.window_id, f.byte_offset, f.byte_length,
               row_number() OVER (ORDER BY f.byte_offset, f.key)
        FROM pg_temp.gik_imp_ref f JOIN pg_temp.gik_store_file s ON s.url = f.url
        WHERE f.init_time = crec.init_time;
        r := gik.store_run(d.dataset_id, crec.init_time,
                           jsonb_build_object('imported', p_source, 'variables',
                               (SELECT jsonb_agg(DISTINCT f.variable) FROM pg_temp.gik_imp_ref f WHERE f.init_time = crec.init_time)),
                           t0, format('imported from %s', p_source));
        tmpl_bytes := CASE WHEN p_learn THEN gik.learn_templates(d.dataset_id, r.run_id) ELSE 0 END;
        n_refs := gik.run_ref_count(r);
        UPDATE gik.run x SET
            status = 'complete',
            files_expected = n_files, files_found = n_files, files_missing = 0, refs = n_refs,
            index_bytes = coalesce(p_bytes, 0), grib_bytes = tmpl_bytes,
            started = t0, finished = clock_timestamp(), fetch_ms = 0,
            total_ms = extract(epoch FROM clock_timestamp() - t0) * 1000, error = NULL
        WHERE x.run_id = r.run_id
        RETURNING * INTO r;
        RETURN NEXT r;
    END LOOP;
END $$;
COMMENT ON FUNCTION gik.import_core(text, text, int8, timestamptz, int, float8[], text, int, bool) IS
'Internal to gik.import_kerchunk() and gik.import_gik_table(): turn the entries staged in pg_temp.gik_imp_e into runs, files, fields, windows and packed references of a dataset (created as index_format ''imported'' when new). Every check runs before anything is written.';

-- grant: ingest
-- Import kerchunk reference JSON (v0, v1 with templates, or a list of documents as kerchunk's scan_grib writes).
CREATE FUNCTION gik.import_kerchunk(dataset text, refs json, init_time timestamptz DEFAULT NULL, member int DEFAULT NULL,
                                    steps float8[] DEFAULT NULL, templates jsonb DEFAULT NULL, url_prefix text DEFAULT NULL,
                                    window_reset int DEFAULT NULL, learn_templates bool DEFAULT false)
RETURNS SETOF gik.run
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    txt text;
    j   jsonb;
    bad record;
BEGIN
    IF refs IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'refs must not be NULL';
    END IF;
    txt := refs::text;
    -- PostgreSQL text cannot hold NUL: kerchunk's raw inline bytes (\u0000) are read as U+E000 (see gik.inline_bytes).
    IF strpos(txt, '\u0000') > 0 THEN
        txt := regexp_replace(txt, '(?<!\\)((?:\\\\)*)\\u0000', '\1\\ue000', 'g');
    END IF;
    BEGIN
        j := txt::jsonb;
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_text_representation',
            MESSAGE = format('invalid kerchunk reference JSON: %s', SQLERRM);
    END;
    PERFORM gik.import_begin();
    -- The documents: a list (scan_grib) or one; version 1 {"refs", "templates"} or version 0 (the refs themselves).
    SELECT t.o AS doc INTO bad
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(j) = 'array' THEN j ELSE jsonb_build_array(j) END) WITH ORDINALITY AS t(x, o)
    WHERE jsonb_typeof(t.x) <> 'object'
       OR (t.x ? 'refs' AND (jsonb_typeof(t.x -> 'refs') <> 'object' OR t.x -> 'version' IS DISTINCT FROM '1'::jsonb
                             OR coalesce(jsonb_array_length(CASE WHEN jsonb_typeof(t.x -> 'gen') = 'array' THEN t.x -> 'gen' END), 0) > 0))
    ORDER BY t.o LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
            MESSAGE = format('document %s is not a kerchunk reference set pg_gik reads', bad.doc),
            DETAIL = 'Expected {"version": 1, "refs": {…}, "templates": {…}} without "gen", a flat {key: value} object (version 0), or a list of them.';
    END IF;
    INSERT INTO pg_temp.gik_imp_e (doc, key, kind, url, byte_offset, byte_length, nelem, inline, meta)
    SELECT x.doc, e.key,
           CASE WHEN c.meta THEN 'm' WHEN c.typ = 'array' THEN 'r' WHEN c.typ = 'string' THEN 'i' ELSE 'x' END::"char",
           CASE WHEN c.typ = 'array' AND jsonb_typeof(e.value -> 0) = 'string' THEN
                CASE WHEN x.tmpl = '{}' THEN e.value ->> 0 ELSE gik.expand_templates(e.value ->> 0, x.tmpl) END END,
           CASE WHEN c.typ = 'array' AND jsonb_typeof(e.value -> 1) = 'number' THEN (e.value ->> 1)::numeric END,
           CASE WHEN c.typ = 'array' AND jsonb_typeof(e.value -> 2) = 'number' THEN (e.value ->> 2)::numeric END,
           CASE WHEN c.typ = 'array' THEN jsonb_array_length(e.value) END,
           CASE WHEN c.typ = 'string' THEN e.value #>> '{}' END,
           CASE WHEN c.meta THEN CASE c.typ WHEN 'object' THEN e.value WHEN 'string' THEN gik.metadata_jsonb(e.value #>> '{}') END END
    FROM (SELECT t.o::int AS doc, CASE WHEN t.x ? 'refs' THEN t.x -> 'refs' ELSE t.x END AS refs,
                 coalesce(t.x -> 'templates', '{}') || coalesce(templates, '{}') AS tmpl
          FROM jsonb_array_elements(CASE WHEN jsonb_typeof(j) = 'array' THEN j ELSE jsonb_build_array(j) END) WITH ORDINALITY AS t(x, o)) x,
         LATERAL jsonb_each(x.refs) e,
         LATERAL (SELECT jsonb_typeof(e.value) AS typ,
                         right(e.key, 7) IN ('.zarray', '.zattrs', '.zgroup') OR right(e.key, 10) IN ('.zmetadata', '/zarr.json')
                         OR e.key = 'zarr.json' AS meta) c;
    RETURN QUERY SELECT * FROM gik.import_core(dataset, 'kerchunk JSON', octet_length(refs::text), init_time, member, steps,
                                               url_prefix, window_reset, learn_templates);
END $$;
COMMENT ON FUNCTION gik.import_kerchunk(text, json, timestamptz, int, float8[], jsonb, text, int, bool) IS
'Import kerchunk references (version 0 {key: value}, version 1 {"version": 1, "refs", "templates"} with {{name}} URLs and inline base64: or raw values, or a list of such documents as scan_grib writes) into a dataset, created with index_format ''imported'' when it does not exist. Variable, level, statistic, member, step and initialisation time come from each key''s array, its .zattrs (gik_*, GRIB_* or gribberish attributes) and the inline coordinate arrays; the options only fill in what the JSON does not say: init_time, member, steps (hours along the lead-time dimension, e.g. when its coordinate is compressed), templates (override the document''s), url_prefix (for relative URLs), window_reset (statistical windows restart every N hours; default: from the run start). One run per initialisation time, with a new version when its references changed. Transactional; errors name the key. Returns the runs.';

-- grant: ingest
-- Import GIK [key, value] reference rows from a table (loaded with COPY from a GIK parquet file).
CREATE FUNCTION gik.import_gik_table(dataset text, staging regclass, init_time timestamptz DEFAULT NULL, member int DEFAULT NULL,
                                     steps float8[] DEFAULT NULL, templates jsonb DEFAULT NULL, url_prefix text DEFAULT NULL,
                                     window_reset int DEFAULT NULL, learn_templates bool DEFAULT false)
RETURNS SETOF gik.run
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    vcol   text;
    vtype  regtype;
    ktype  regtype;
    mtype  regtype;
    vexpr  text;
    nbytes int8;
    has_source bool;
BEGIN
    SELECT a.atttypid::regtype INTO ktype FROM pg_attribute a
    WHERE a.attrelid = staging AND a.attname = 'key' AND a.attnum > 0 AND NOT a.attisdropped;
    SELECT a.attname, a.atttypid::regtype INTO vcol, vtype FROM pg_attribute a
    WHERE a.attrelid = staging AND a.attname IN ('value', 'reference') AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attname = 'value' DESC LIMIT 1;
    SELECT a.atttypid::regtype INTO mtype FROM pg_attribute a
    WHERE a.attrelid = staging AND a.attname = 'member' AND a.attnum > 0 AND NOT a.attisdropped;
    has_source := EXISTS (SELECT FROM pg_attribute a
                          WHERE a.attrelid = staging AND a.attname = 'source' AND a.attnum > 0 AND NOT a.attisdropped);
    IF ktype IS NULL OR vcol IS NULL OR vtype NOT IN ('text'::regtype, 'varchar'::regtype, 'bytea'::regtype, 'json'::regtype, 'jsonb'::regtype)
       OR mtype NOT IN ('smallint'::regtype, 'int'::regtype, 'bigint'::regtype) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_table_definition',
            MESSAGE = format('table %s is not a GIK reference table', staging),
            DETAIL = 'It needs a key column and a value (or reference) column of type text, bytea or json, and optionally an integer member column.';
    END IF;
    -- A value is UTF-8 JSON text (metadata, ["url", offset, length]) or raw inline data; binary data becomes base64:.
    vexpr := CASE WHEN vtype = 'bytea'::regtype
                  THEN format($e$CASE WHEN position('\x00'::bytea IN s.%1$I) > 0 THEN 'base64:' || translate(encode(s.%1$I, 'base64'), E'\n', '')
                                      ELSE convert_from(s.%1$I, 'UTF8') END$e$, vcol)
                  WHEN vtype IN ('json'::regtype, 'jsonb'::regtype)
                  THEN format('CASE WHEN jsonb_typeof(s.%1$I::jsonb) = %2$L THEN s.%1$I::jsonb #>> %3$L ELSE s.%1$I::text END', vcol, 'string', '{}')
                  ELSE format('s.%I::text', vcol) END;
    PERFORM gik.import_begin();
    EXECUTE format($q$
        INSERT INTO pg_temp.gik_imp_e (doc, key, kind, url, byte_offset, byte_length, nelem, inline, meta, member)
        SELECT v.doc, v.key,
               CASE WHEN v.ism THEN 'm' WHEN (v.rx).url IS NOT NULL OR jsonb_typeof(v.ref) = 'array' THEN 'r'
                    WHEN left(ltrim(v.val), 1) = '[' THEN 'x' ELSE 'i' END::"char",
               CASE WHEN %2$L::jsonb = '{}' THEN v.url ELSE gik.expand_templates(v.url, %2$L::jsonb) END,
               CASE WHEN (v.rx).url IS NOT NULL THEN (v.rx).byte_offset WHEN jsonb_typeof(v.ref -> 1) = 'number' THEN (v.ref ->> 1)::numeric END,
               CASE WHEN (v.rx).url IS NOT NULL THEN (v.rx).byte_length WHEN jsonb_typeof(v.ref -> 2) = 'number' THEN (v.ref ->> 2)::numeric END,
               CASE WHEN (v.rx).url IS NOT NULL THEN 3 WHEN jsonb_typeof(v.ref) = 'array' THEN jsonb_array_length(v.ref) END,
               v.val,
               CASE WHEN v.ism THEN gik.metadata_jsonb(v.val) END,
               v.member
        FROM (SELECT w.*, CASE WHEN (w.rx).url IS NOT NULL THEN (w.rx).url
                               WHEN jsonb_typeof(w.ref -> 0) = 'string' THEN w.ref ->> 0 END AS url
              FROM (SELECT x.*, CASE WHEN (x.rx).url IS NULL AND NOT x.ism AND left(ltrim(x.val), 1) = '['
                                     THEN coalesce(gik.try_jsonb(x.val), gik.try_jsonb(replace(x.val, '''', '"'))) END AS ref
                    -- ["url", offset, length] or Python's ['url', offset, length] without escapes: string functions
                    -- (once per row: OFFSET 0 keeps the planner from copying the call into every use); else JSON.
                    FROM (SELECT u.*,
                                 right(u.key, 7) IN ('.zarray', '.zattrs', '.zgroup') OR right(u.key, 10) IN ('.zmetadata', '/zarr.json')
                                 OR u.key = 'zarr.json' AS ism,
                                 gik.parse_ref_text(u.val) AS rx
                          FROM (SELECT s.key::text AS key, %1$s AS val, %3$s AS member,
                                       dense_rank() OVER (ORDER BY %5$s, %3$s)::int AS doc FROM %4$s s) u
                          OFFSET 0) x
                    OFFSET 0) w) v
        WHERE v.key IS NOT NULL AND v.key NOT IN ('version', 'templates')
    $q$, vexpr, coalesce(templates, '{}'), CASE WHEN mtype IS NULL THEN 'NULL::int' ELSE 's.member::int' END, staging,
       CASE WHEN has_source THEN 's.source::text' ELSE 'NULL::text' END);
    SELECT coalesce(sum(octet_length(e.key) + octet_length(coalesce(e.inline, ''))), 0) INTO nbytes FROM pg_temp.gik_imp_e e;
    RETURN QUERY SELECT * FROM gik.import_core(dataset, format('GIK reference table %s', staging), nbytes, init_time, member, steps,
                                               url_prefix, window_reset, learn_templates);
END $$;
COMMENT ON FUNCTION gik.import_gik_table(text, regclass, timestamptz, int, float8[], jsonb, text, int, bool) IS
'Import the [key, value] rows of a GIK reference table (GIK parquet files loaded with COPY; see docs/manifests.md) into a dataset: a key column, a value (or reference) column holding UTF-8 JSON text (zarr metadata, ["url", offset, length], also Python''s [''url'', offset, length]) or inline data, as text, bytea (binary inline values become base64:) or json, and optionally an integer member column and a source column (e.g. the file name): each distinct (source, member) is one reference set, as each GIK file is. Keys are kerchunk/grib_tree paths (tp/accum/surface/tp/3.0.0 with their .zarray, .zattrs and coordinates) or GIK''s step_024/tp/sfc/ens01/0.0.0 layout. Options and behaviour as gik.import_kerchunk().';
