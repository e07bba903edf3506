-- pg_gik: chunk references to GRIB archives from their index files.
-- This file is assembled from sql/pg_gik/*.sql by the Makefile.

\echo Use "CREATE EXTENSION pg_gik" to load this file. \quit
-- Index parsers (C, pure core in src/core).

CREATE FUNCTION gik.parse_idx(idx text, file_size int8 DEFAULT NULL, url text DEFAULT NULL)
RETURNS TABLE (
    lineno int, msg_num int, sub_num int, byte_offset int8, byte_length int8,
    ref_time timestamptz, variable text, level text, ftime text, extra text,
    step_start float8, step_end float8, stat text, member int, member_kind text)
AS 'MODULE_PATHNAME', 'gik_parse_idx'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.parse_idx(text, int8, text) IS
'Parse a NOAA wgrib2 .idx inventory: one row per line, with byte length from the next distinct offset (the last one from file_size, else NULL) and the forecast time normalised to hours, statistic and ensemble member.';

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
-- Fetching (C, libcurl). Not executable by PUBLIC: see 90_security.sql.

CREATE FUNCTION gik.fetch_text(url text) RETURNS text
AS 'MODULE_PATHNAME', 'gik_fetch_text'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.fetch_text(text) IS
'Fetch a whole object (s3://, gs://, http(s)://, file:// or a server path) as text.';

CREATE FUNCTION gik.fetch_bytes(url text, byte_offset int8 DEFAULT NULL, byte_length int8 DEFAULT NULL)
RETURNS bytea
AS 'MODULE_PATHNAME', 'gik_fetch_bytes'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.fetch_bytes(text, int8, int8) IS
'Fetch a byte range with an HTTP Range request (or the whole object when offset and length are NULL).';

CREATE FUNCTION gik.file_info(url text, OUT found bool, OUT size int8, OUT etag text)
AS 'MODULE_PATHNAME', 'gik_file_info'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.file_info(text) IS
'Size and ETag of an object from a HEAD request (stat for local files); found is false when it does not exist.';

CREATE FUNCTION gik.fetch_many(urls text[], missing_ok bool DEFAULT false, head bool DEFAULT false)
RETURNS TABLE (ord int, url text, found bool, body text, bytes int8, file_size int8, etag text, attempts int)
AS 'MODULE_PATHNAME', 'gik_fetch_many'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.fetch_many(text[], bool, bool) IS
'Fetch many whole objects as text (or HEAD them) concurrently, gik.max_connections at a time, with retries; rows come in completion order with ord giving the array position.';

CREATE FUNCTION gik.resolve_url(url text) RETURNS text
AS 'MODULE_PATHNAME', 'gik_resolve_url'
LANGUAGE C STRICT STABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.resolve_url(text) IS
'What a URL is fetched as under the current settings: s3:// through gik.s3_endpoint (AWS virtual-host form by default), gs:// through gik.gs_endpoint, file:// as a server path.';
-- GRIB metadata with ecCodes: the traditional full scan, and one referenced message.

CREATE TYPE gik.message_meta AS (
    msg_num int, byte_offset int8, byte_length int8, edition int,
    short_name text, name text, units text, param_id int,
    type_of_level text, level int8, step_range text, step_type text,
    ref_time timestamptz, member int, packing text, bits_per_value int,
    bitmap bool, missing_count int8,
    grid_type text, ni int, nj int, num_points int8,
    lat_first float8, lon_first float8, lat_last float8, lon_last float8,
    di float8, dj float8, scanning_mode int);
COMMENT ON TYPE gik.message_meta IS 'What ecCodes says about one GRIB message: parameter, level, step, member, packing and grid.';

CREATE FUNCTION gik.scan_grib(url text) RETURNS SETOF gik.message_meta
AS 'MODULE_PATHNAME', 'gik_scan_grib'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.scan_grib(text) IS
'Traditional full scan: fetch the whole GRIB file and describe every message with ecCodes (the baseline that index ingestion avoids).';

CREATE FUNCTION gik.message_info(url text, byte_offset int8, byte_length int8) RETURNS gik.message_meta
AS 'MODULE_PATHNAME', 'gik_message_info'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.message_info(text, int8, int8) IS
'Fetch one referenced message by its byte range, check it is exactly one GRIB message, and describe it.';
-- Catalog: datasets, runs and their versions, files, fields with their templates, and packed chunk references.

-- A product such as GEFS 0.25 degree or ECMWF ENS.
CREATE TABLE gik.dataset (
    dataset_id   smallint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9_]{0,40}$'),
    description  text,
    index_format text NOT NULL CHECK (index_format IN ('idx', 'ecmwf_index', 'imported')),
    cycles       smallint[] NOT NULL CHECK (cardinality(cycles) > 0),
    steps        int[] NOT NULL CHECK (cardinality(steps) > 0),
    variables    text[],
    accumulated_params text[] NOT NULL DEFAULT '{}',
    members      int[],
    precip_variable text,
    precip_level text,
    retention    interval,
    created      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE gik.dataset IS
'A forecast product: its index format, cycles (hours of day), forecast steps (hours) with files, the default variable selection (NULL: every message), for ECMWF-style data the params accumulated from the start of the run, the ensemble members a complete run has, and the precipitation field (variable and level) that accumulations use.';

-- The file series that make up one run of a dataset.
CREATE TABLE gik.dataset_source (
    dataset_id    smallint NOT NULL REFERENCES gik.dataset ON DELETE CASCADE,
    source        text NOT NULL,
    url_template  text NOT NULL,
    index_template text NOT NULL,
    members       int[],
    member_tokens text[],
    index_members int[],
    cycles        smallint[],
    steps         int[],
    valid_from    timestamptz NOT NULL DEFAULT '-infinity',
    valid_until   timestamptz NOT NULL DEFAULT 'infinity',
    PRIMARY KEY (dataset_id, source),
    CHECK (cardinality(members) = cardinality(member_tokens)),
    CHECK (members IS NULL OR index_members IS NULL)
);
COMMENT ON TABLE gik.dataset_source IS
'A series of GRIB files of a dataset. url_template (GRIB files) and index_template (their indexes) placeholders: {date} (YYYYMMDD), {cycle} (HH), {step} (hours), {step3} (hours, 3 digits), {member} (the member token). With members, there is one file per member; without, members come from the index and index_members, if set, restricts them. cycles and steps, when set, override the dataset''s. The source applies to runs initialised in [valid_from, valid_until).';

-- One run (initialisation time) of a dataset; version counts re-ingestions that changed something.
CREATE TABLE gik.run (
    run_id         int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dataset_id     smallint NOT NULL REFERENCES gik.dataset ON DELETE CASCADE,
    init_time      timestamptz NOT NULL,
    version        int NOT NULL DEFAULT 0,
    status         text NOT NULL CHECK (status IN ('running', 'complete', 'partial', 'failed')),
    selection      jsonb NOT NULL DEFAULT '{}',
    files_expected int NOT NULL DEFAULT 0,
    files_found    int NOT NULL DEFAULT 0,
    files_missing  int NOT NULL DEFAULT 0,
    refs           int8 NOT NULL DEFAULT 0,
    index_bytes    int8 NOT NULL DEFAULT 0,
    grib_bytes     int8 NOT NULL DEFAULT 0,
    started        timestamptz,
    finished       timestamptz,
    fetch_ms       float8,
    total_ms       float8,
    error          text,
    UNIQUE (dataset_id, init_time)
);
COMMENT ON TABLE gik.run IS
'One initialisation of a dataset: status, current version, what was selected, files expected/found/missing, references, bytes read (index and GRIB) and timings of the last ingestion.';

-- The history of a run's versions.
CREATE TABLE gik.run_version (
    run_id        int NOT NULL REFERENCES gik.run ON DELETE CASCADE,
    version       int NOT NULL,
    created       timestamptz NOT NULL DEFAULT now(),
    files_added   int NOT NULL,
    files_changed int NOT NULL,
    refs          int8 NOT NULL,
    note          text,
    PRIMARY KEY (run_id, version)
);
COMMENT ON TABLE gik.run_version IS
'Commit history of a run: each ingestion that found new or replaced files adds a version. Files keep the versions in which they are valid.';

-- A GRIB file of a run, valid from one version until a later one replaces it.
CREATE TABLE gik.file (
    file_id      int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id       int NOT NULL REFERENCES gik.run ON DELETE CASCADE,
    source       text NOT NULL,
    step         int NOT NULL,
    member       int,
    url          text NOT NULL,
    found        bool NOT NULL,
    size         int8,
    index_size   int8,
    index_etag   text,
    index_md5    text,
    valid_from   int NOT NULL,
    valid_to     int,
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE INDEX ON gik.file (run_id, valid_to, step, member);
COMMENT ON TABLE gik.file IS
'A GRIB file of a run with what its index said (size, ETag, MD5), found or missing, valid from version valid_from until valid_to (NULL: current).';

-- Forecast time windows, shared by every dataset (minutes since the run start).
CREATE TABLE gik.time_window (
    window_id smallint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    start_min int NOT NULL,
    end_min   int NOT NULL CHECK (end_min >= start_min),
    UNIQUE (start_min, end_min)
);
COMMENT ON TABLE gik.time_window IS 'Forecast time windows in minutes: [start, end]; equal for instants.';

-- The grid of a template, learned from one message.
CREATE TABLE gik.grid (
    grid_id       int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    grid_type     text NOT NULL,
    ni            int,
    nj            int,
    num_points    int8 NOT NULL,
    lat_first     float8,
    lon_first     float8,
    lat_last      float8,
    lon_last      float8,
    di            float8,
    dj            float8,
    scanning_mode int NOT NULL,
    UNIQUE NULLS NOT DISTINCT (grid_type, ni, nj, num_points, lat_first, lon_first, lat_last, lon_last, di, dj, scanning_mode)
);
COMMENT ON TABLE gik.grid IS 'A grid description learned from GRIB metadata; coordinates are generated from it, never stored.';

-- A field of a dataset (variable, level, statistic) and its template.
CREATE TABLE gik.field (
    field_id     smallint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    dataset_id   smallint NOT NULL REFERENCES gik.dataset ON DELETE CASCADE,
    variable     text NOT NULL,
    level        text NOT NULL,
    stat         text NOT NULL DEFAULT '' CHECK (stat IN ('', 'acc', 'ave', 'max', 'min')),
    grid_id      int REFERENCES gik.grid,
    short_name   text,
    units        text,
    param_id     int,
    packing      text,
    learned_from text,
    UNIQUE (dataset_id, variable, level, stat)
);
COMMENT ON TABLE gik.field IS
'A field of a dataset, keyed by normalised variable, level and statistic (not by raw index text), with its template (grid, ecCodes shortName, units, packing) learned once from one message.';

-- Chunk references, packed one row per (file, member): arrays of field, window, offset and length.
CREATE TABLE gik.chunk_pack (
    dataset_id smallint NOT NULL,
    init_time  timestamptz NOT NULL,
    run_id     int NOT NULL,
    file_id    int NOT NULL,
    member     smallint,
    field_ids  smallint[] NOT NULL,
    window_ids smallint[] NOT NULL,
    offsets    int8[] NOT NULL,
    lengths    int4[] NOT NULL,
    CHECK (cardinality(field_ids) = cardinality(offsets) AND cardinality(window_ids) = cardinality(offsets)
           AND cardinality(lengths) = cardinality(offsets))
) PARTITION BY LIST (dataset_id);
COMMENT ON TABLE gik.chunk_pack IS
'Chunk references of a file and member, packed into parallel arrays (about 16 bytes of data per reference). Partitioned by dataset, then by day of init_time, so old runs are dropped with their partitions. Read it through gik.chunk_ref.';

-- Flattened chunk references of the current version of every run.
CREATE VIEW gik.chunk_ref AS
SELECT d.name AS dataset, p.dataset_id, p.init_time, p.run_id, f.file_id, f.url, f.step AS file_step,
       p.member, fl.variable, fl.level, fl.stat,
       w.start_min / 60.0::float8 AS step_start, w.end_min / 60.0::float8 AS step_end,
       u.byte_offset, u.byte_length::int8 AS byte_length, u.field_id, u.window_id
FROM gik.chunk_pack p
JOIN gik.file f ON f.file_id = p.file_id AND f.valid_to IS NULL
JOIN gik.dataset d ON d.dataset_id = p.dataset_id
CROSS JOIN LATERAL unnest(p.field_ids, p.window_ids, p.offsets, p.lengths)
    AS u(field_id, window_id, byte_offset, byte_length)
JOIN gik.field fl ON fl.field_id = u.field_id
JOIN gik.time_window w ON w.window_id = u.window_id;
COMMENT ON VIEW gik.chunk_ref IS
'One row per chunk reference (url, byte_offset, byte_length) with its normalised keys, for the current version of every run. Filter on dataset and init_time to use partition pruning.';

-- A dataset's row by name, or the error every function gives for an unknown name.
CREATE FUNCTION gik.dataset_named(p_name text) RETURNS gik.dataset
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d gik.dataset;
BEGIN
    SELECT * INTO d FROM gik.dataset x WHERE x.name = p_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('dataset "%s" does not exist', p_name),
            HINT = 'See gik.dataset for the defined datasets, or define one with gik.define_dataset().';
    END IF;
    RETURN d;
END $$;
COMMENT ON FUNCTION gik.dataset_named(text) IS 'The gik.dataset row of a name; raises undefined_object (42704) for an unknown name.';

-- Name of the day partition of a dataset.
CREATE FUNCTION gik.partition_name(dataset_id smallint, day date) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN format('chunk_pack_%s_%s', dataset_id, to_char(day, 'YYYYMMDD'));
COMMENT ON FUNCTION gik.partition_name(smallint, date) IS 'Name of the chunk_pack partition holding one dataset''s runs of one day.';

-- Create the partitions that hold a dataset's runs of one day.
CREATE FUNCTION gik.ensure_partition(p_dataset_id smallint, p_init_time timestamptz) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ds_part text := format('chunk_pack_%s', p_dataset_id);
    day     date := (p_init_time AT TIME ZONE 'UTC')::date;
    part    text := gik.partition_name(p_dataset_id, day);
BEGIN
    IF to_regclass(format('gik.%I', part)) IS NOT NULL THEN
        RETURN part;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('gik.ensure_partition'));
    IF to_regclass(format('gik.%I', ds_part)) IS NULL THEN
        EXECUTE format('CREATE TABLE gik.%I PARTITION OF gik.chunk_pack FOR VALUES IN (%s) PARTITION BY RANGE (init_time)',
                       ds_part, p_dataset_id);
    END IF;
    IF to_regclass(format('gik.%I', part)) IS NULL THEN
        EXECUTE format('CREATE TABLE gik.%I PARTITION OF gik.%I FOR VALUES FROM (%L) TO (%L)',
                       part, ds_part,
                       (day::timestamp AT TIME ZONE 'UTC'), ((day + 1)::timestamp AT TIME ZONE 'UTC'));
        EXECUTE format('CREATE INDEX ON gik.%I (run_id, file_id)', part);
    END IF;
    RETURN part;
END $$;
COMMENT ON FUNCTION gik.ensure_partition(smallint, timestamptz) IS
'Create, if needed, the chunk_pack partitions for a dataset and the UTC day of an init time; returns the day partition''s name.';

-- Drop one chunk_pack partition (a dataset's or one of its days'). Runs as the extension's owner,
-- like ensure_partition, so gik_ingest members can apply retention without owning the tables.
CREATE FUNCTION gik.drop_pack_partition(p_partition text) RETURNS bool
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF p_partition !~ '^chunk_pack_\d+(_\d{8})?$' OR NOT EXISTS (
           SELECT FROM pg_partition_tree('gik.chunk_pack'::regclass) t
           WHERE t.relid = to_regclass(format('gik.%I', p_partition)) AND t.level > 0) THEN
        RETURN false;
    END IF;
    EXECUTE format('DROP TABLE gik.%I', p_partition);
    RETURN true;
END $$;
COMMENT ON FUNCTION gik.drop_pack_partition(text) IS
'Drop a partition of gik.chunk_pack by name (chunk_pack_<dataset id> or chunk_pack_<dataset id>_<YYYYMMDD>); false when the name is not such a partition.';

-- Storage used by each dataset's chunk references, per reference.
CREATE VIEW gik.storage AS
WITH packs AS (
    SELECT d.dataset_id, d.name,
           coalesce((SELECT sum(pg_total_relation_size(t.relid))
                     FROM pg_partition_tree(to_regclass(format('gik.chunk_pack_%s', d.dataset_id))) t), 0)::int8 AS pack_bytes
    FROM gik.dataset d),
refs AS (
    SELECT p.dataset_id, sum(cardinality(p.offsets))::int8 AS refs, count(*) AS packs
    FROM gik.chunk_pack p GROUP BY p.dataset_id),
files AS (
    SELECT r.dataset_id, count(*) AS files FROM gik.file f JOIN gik.run r USING (run_id) GROUP BY r.dataset_id)
SELECT p.name AS dataset, coalesce(r.refs, 0) AS refs, coalesce(r.packs, 0) AS packs, coalesce(f.files, 0) AS files,
       p.pack_bytes,
       (pg_total_relation_size('gik.file') * coalesce(f.files, 0) / greatest((SELECT count(*) FROM gik.file), 1))::int8 AS file_bytes,
       round((p.pack_bytes + pg_total_relation_size('gik.file') * coalesce(f.files, 0)
              / greatest((SELECT count(*) FROM gik.file), 1))::numeric / nullif(r.refs, 0), 1) AS bytes_per_ref
FROM packs p LEFT JOIN refs r USING (dataset_id) LEFT JOIN files f USING (dataset_id);
COMMENT ON VIEW gik.storage IS
'Disk used by each dataset''s chunk references (packed rows with their indexes and TOAST, plus its share of gik.file), and bytes per reference, all versions included.';
-- Dataset definitions: URL templates, built-in GEFS and ECMWF ENS, and the file plan of a run.

-- Expand a URL template for one run, step and member token.
CREATE FUNCTION gik.expand_url(template text, init_time timestamptz, step int, member_token text DEFAULT NULL)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN replace(replace(replace(replace(replace(replace(template,
    '{date}', to_char(init_time AT TIME ZONE 'UTC', 'YYYYMMDD')),
    '{cycle}', to_char(init_time AT TIME ZONE 'UTC', 'HH24')),
    '{step3}', lpad(step::text, 3, '0')),
    '{step2}', lpad(step::text, 2, '0')),
    '{step}', step::text),
    '{member}', coalesce(member_token, ''));
COMMENT ON FUNCTION gik.expand_url(text, timestamptz, int, text) IS
'Expand {date} (YYYYMMDD), {cycle} (HH), {step}, {step2}, {step3} (zero-padded hours) and {member} in a URL template, in UTC.';

-- Steps from a list of ranges such as '0-144/3,150-360/6'.
CREATE FUNCTION gik.step_list(spec text) RETURNS int[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (
    SELECT array_agg(s ORDER BY s)
    FROM unnest(string_to_array(replace(spec, ' ', ''), ',')) AS part,
         LATERAL (SELECT split_part(part, '/', 1) AS range, coalesce(nullif(split_part(part, '/', 2), ''), '1')::int AS every) r,
         LATERAL generate_series(split_part(r.range, '-', 1)::int,
                                 coalesce(nullif(split_part(r.range, '-', 2), ''), split_part(r.range, '-', 1))::int,
                                 r.every) AS s);
COMMENT ON FUNCTION gik.step_list(text) IS 'Forecast hours from a compact list of ranges, e.g. ''0-144/3,150-360/6''.';

-- The index URL template that goes with a GRIB URL template: NOAA appends .idx, ECMWF replaces .grib2 by .index.
CREATE FUNCTION gik.default_index_template(index_format text, url_template text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE index_format WHEN 'idx' THEN url_template || '.idx'
                         ELSE regexp_replace(url_template, '\.grib2?$', '') || '.index' END;
COMMENT ON FUNCTION gik.default_index_template(text, text) IS
'Index URL template for a GRIB URL template: NOAA appends .idx; ECMWF replaces .grib2 with .index.';

-- Define or redefine a dataset with one file series.
CREATE FUNCTION gik.define_dataset(
    name text, index_format text, url_template text,
    cycles smallint[], steps int[],
    members int[] DEFAULT NULL, member_tokens text[] DEFAULT NULL,
    variables text[] DEFAULT NULL, accumulated_params text[] DEFAULT '{}',
    description text DEFAULT NULL, index_template text DEFAULT NULL,
    precip_variable text DEFAULT NULL, precip_level text DEFAULT NULL)
RETURNS smallint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id smallint;
BEGIN
    INSERT INTO gik.dataset AS d (name, description, index_format, cycles, steps, variables, accumulated_params,
                                  members, precip_variable, precip_level)
    VALUES (define_dataset.name, define_dataset.description, define_dataset.index_format,
            define_dataset.cycles, define_dataset.steps, define_dataset.variables, define_dataset.accumulated_params,
            define_dataset.members, define_dataset.precip_variable, define_dataset.precip_level)
    ON CONFLICT ON CONSTRAINT dataset_name_key DO UPDATE
        SET description = EXCLUDED.description, index_format = EXCLUDED.index_format,
            cycles = EXCLUDED.cycles, steps = EXCLUDED.steps, variables = EXCLUDED.variables,
            accumulated_params = EXCLUDED.accumulated_params, members = EXCLUDED.members,
            precip_variable = EXCLUDED.precip_variable, precip_level = EXCLUDED.precip_level
    RETURNING d.dataset_id INTO id;
    DELETE FROM gik.dataset_source s WHERE s.dataset_id = id;
    INSERT INTO gik.dataset_source (dataset_id, source, url_template, index_template, members, member_tokens)
    VALUES (id, 'files', define_dataset.url_template,
            coalesce(define_dataset.index_template,
                     gik.default_index_template(define_dataset.index_format, define_dataset.url_template)),
            define_dataset.members, coalesce(define_dataset.member_tokens,
                (SELECT array_agg(m::text ORDER BY o) FROM unnest(define_dataset.members) WITH ORDINALITY AS t(m, o))));
    RETURN id;
END $$;
COMMENT ON FUNCTION gik.define_dataset(text, text, text, smallint[], int[], int[], text[], text[], text[], text, text, text, text) IS
'Define (or redefine) a dataset with one series of files: index format (''idx'' or ''ecmwf_index''), GRIB URL template, cycles, steps and, for one file per member, the member numbers and the tokens that replace {member} (default: the numbers). The index template defaults to gik.default_index_template(). precip_variable/precip_level name the field that gik.accumulate() sums. Add more series to gik.dataset_source directly.';

-- Built-in datasets.
INSERT INTO gik.dataset (name, description, index_format, cycles, steps, variables, accumulated_params, members,
                         precip_variable, precip_level) VALUES
  ('gefs_0p25', 'NOAA GEFS 0.25 degree (pgrb2s): control gec00 and members gep01-gep30, f000-f240 every 3 h',
   'idx', '{0,6,12,18}', gik.step_list('0-240/3'), NULL, '{}', gik.step_list('0-30'), 'APCP', 'surface'),
  ('ecmwf_ens_0p25', 'ECMWF ENS open data 0.25 degree: 50 perturbed members in enfo-ef, control as cf before IFS 50r1 and as oper-fc from 2026-05-12 06z',
   'ecmwf_index', '{0,6,12,18}', gik.step_list('0-144/3,150-360/6'), NULL,
   '{tp,cp,lsp,sf,ssrd,strd,ssr,str,ttr,tsr,sshf,slhf,e,ro,sro,ssro}', gik.step_list('0-50'), 'tp', 'sfc');

INSERT INTO gik.dataset_source (dataset_id, source, url_template, index_template, members, member_tokens, index_members, cycles, steps, valid_from, valid_until)
SELECT d.dataset_id, s.source, s.url_template, gik.default_index_template(d.index_format, s.url_template), s.members, s.member_tokens, s.index_members, s.cycles, s.steps,
       s.valid_from, s.valid_until
FROM (VALUES
  ('gefs_0p25', 'members',
   's3://noaa-gefs-pds/gefs.{date}/{cycle}/atmos/pgrb2sp25/{member}.t{cycle}z.pgrb2s.0p25.f{step3}',
   (SELECT array_agg(m ORDER BY m) FROM generate_series(0, 30) m),
   (SELECT array_agg(CASE WHEN m = 0 THEN 'gec00' ELSE 'gep' || lpad(m::text, 2, '0') END ORDER BY m) FROM generate_series(0, 30) m),
   NULL::int[], NULL::smallint[], NULL::int[], '-infinity'::timestamptz, 'infinity'::timestamptz),
  ('ecmwf_ens_0p25', 'enfo-ef',
   's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/enfo/{date}{cycle}0000-{step}h-enfo-ef.grib2',
   NULL, NULL, NULL, '{0,12}', gik.step_list('0-144/3,150-360/6'), '-infinity', 'infinity'),
  ('ecmwf_ens_0p25', 'enfo-ef-short',
   's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/enfo/{date}{cycle}0000-{step}h-enfo-ef.grib2',
   NULL, NULL, NULL, '{6,18}', gik.step_list('0-144/3'), '-infinity', 'infinity'),
  ('ecmwf_ens_0p25', 'oper-fc-control',
   's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/oper/{date}{cycle}0000-{step}h-oper-fc.grib2',
   NULL, NULL, '{0}', '{0,12}', gik.step_list('0-144/3,150-360/6'), '2026-05-12 06:00+00', 'infinity'),
  ('ecmwf_ens_0p25', 'oper-fc-control-short',
   's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/oper/{date}{cycle}0000-{step}h-oper-fc.grib2',
   NULL, NULL, '{0}', '{6,18}', gik.step_list('0-144/3'), '2026-05-12 06:00+00', 'infinity')
) AS s(dataset, source, url_template, members, member_tokens, index_members, cycles, steps, valid_from, valid_until)
JOIN gik.dataset d ON d.name = s.dataset;

-- The files of one run: one row per (source, step, member file).
CREATE FUNCTION gik.plan_files(dataset text, init_time timestamptz, members int[] DEFAULT NULL, steps int[] DEFAULT NULL)
RETURNS TABLE (file_no int, source text, step int, member int, url text, index_url text, index_members int[])
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT (row_number() OVER (ORDER BY st.step, m.member NULLS FIRST, s.source))::int,
           s.source, st.step, m.member,
           gik.expand_url(s.url_template, plan_files.init_time, st.step, m.token),
           gik.expand_url(s.index_template, plan_files.init_time, st.step, m.token),
           s.index_members
    FROM gik.dataset d
    JOIN gik.dataset_source s ON s.dataset_id = d.dataset_id
    CROSS JOIN LATERAL unnest(coalesce(s.steps, d.steps)) AS st(step)
    CROSS JOIN LATERAL (
        SELECT u.member, u.token FROM unnest(s.members, s.member_tokens) AS u(member, token)
        UNION ALL
        SELECT NULL::int, NULL::text WHERE s.members IS NULL) AS m
    WHERE d.name = plan_files.dataset
      AND plan_files.init_time >= s.valid_from AND plan_files.init_time < s.valid_until
      AND extract(hour FROM plan_files.init_time AT TIME ZONE 'UTC')::smallint = ANY (coalesce(s.cycles, d.cycles))
      AND (plan_files.steps IS NULL OR st.step = ANY (plan_files.steps))
      AND (plan_files.members IS NULL OR m.member IS NULL OR m.member = ANY (plan_files.members))
    ORDER BY 1;
END;
COMMENT ON FUNCTION gik.plan_files(text, timestamptz, int[], int[]) IS
'The GRIB and index URLs that make up one run of a dataset, optionally restricted to members and steps.';

-- Copy a dataset's definition (not its runs) under a new name.
CREATE FUNCTION gik.clone_dataset(source text, name text, variables text[] DEFAULT NULL) RETURNS smallint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    src gik.dataset;
    id  smallint;
BEGIN
    src := gik.dataset_named(clone_dataset.source);
    INSERT INTO gik.dataset (name, description, index_format, cycles, steps, variables, accumulated_params, members,
                             precip_variable, precip_level, retention)
    VALUES (clone_dataset.name, src.description, src.index_format, src.cycles, src.steps,
            coalesce(clone_dataset.variables, src.variables), src.accumulated_params, src.members,
            src.precip_variable, src.precip_level, src.retention)
    RETURNING dataset_id INTO id;
    INSERT INTO gik.dataset_source (dataset_id, source, url_template, index_template, members, member_tokens, index_members,
                                    cycles, steps, valid_from, valid_until)
    SELECT id, s.source, s.url_template, s.index_template, s.members, s.member_tokens, s.index_members, s.cycles, s.steps,
           s.valid_from, s.valid_until
    FROM gik.dataset_source s WHERE s.dataset_id = src.dataset_id;
    RETURN id;
END $$;
COMMENT ON FUNCTION gik.clone_dataset(text, text, text[]) IS
'A new dataset with the same definition (file series, cycles, steps, members, precipitation field) as source, optionally with another variable selection; it has its own runs and templates.';
-- Ingestion: fetch a run's index files concurrently, parse them, keep the selected messages as packed chunk references.

-- True when an index record is selected by a list of 'VAR' or 'VAR:LEVEL' entries (NULL selects all).
CREATE FUNCTION gik.variable_selected(selection text[], variable text, level text) RETURNS bool
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN selection IS NULL OR variable = ANY (selection) OR (variable || ':' || level) = ANY (selection);
COMMENT ON FUNCTION gik.variable_selected(text[], text, text) IS
'True when a message of this variable and level is selected by entries ''VAR'' or ''VAR:LEVEL'' (NULL selects every message).';

-- Member number stored for an index record: N for control/perturbed, -1 mean, -2 spread, NULL otherwise.
CREATE FUNCTION gik.member_code(member int, member_kind text) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE member_kind WHEN 'mean' THEN -1 WHEN 'spread' THEN -2 ELSE member END;
COMMENT ON FUNCTION gik.member_code(int, text) IS
'Member number as stored in chunk references: 0 control, N perturbed, -1 ensemble mean, -2 ensemble spread, NULL for deterministic products.';

-- The grid_id of a message's grid, recorded on first sight.
CREATE FUNCTION gik.grid_id_of(m gik.message_meta) RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id int;
BEGIN
    SELECT g.grid_id INTO id FROM gik.grid g
    WHERE g.grid_type = coalesce(m.grid_type, 'unknown') AND g.ni IS NOT DISTINCT FROM m.ni
      AND g.nj IS NOT DISTINCT FROM m.nj AND g.num_points = m.num_points
      AND g.lat_first IS NOT DISTINCT FROM m.lat_first AND g.lon_first IS NOT DISTINCT FROM m.lon_first
      AND g.lat_last IS NOT DISTINCT FROM m.lat_last AND g.lon_last IS NOT DISTINCT FROM m.lon_last
      AND g.di IS NOT DISTINCT FROM m.di AND g.dj IS NOT DISTINCT FROM m.dj AND g.scanning_mode = m.scanning_mode;
    IF NOT FOUND THEN
        INSERT INTO gik.grid (grid_type, ni, nj, num_points, lat_first, lon_first, lat_last, lon_last, di, dj, scanning_mode)
        VALUES (coalesce(m.grid_type, 'unknown'), m.ni, m.nj, m.num_points, m.lat_first, m.lon_first, m.lat_last,
                m.lon_last, m.di, m.dj, m.scanning_mode)
        ON CONFLICT DO NOTHING
        RETURNING grid_id INTO id;
        IF id IS NULL THEN
            RETURN gik.grid_id_of(m);	-- another session inserted it meanwhile
        END IF;
    END IF;
    RETURN id;
END $$;
COMMENT ON FUNCTION gik.grid_id_of(gik.message_meta) IS 'The gik.grid row of a message''s grid, created on first sight.';

-- Learn templates (grid, shortName, units, packing) for fields of a run that have none, from one referenced message each.
CREATE FUNCTION gik.learn_templates(p_dataset_id smallint, p_run_id int) RETURNS int8
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r         record;
    m         gik.message_meta;
    bytes     int8 := 0;
BEGIN
    FOR r IN
        SELECT DISTINCT ON (c.field_id) c.field_id, c.url, c.byte_offset, c.byte_length
        FROM gik.chunk_ref c
        JOIN gik.field fl ON fl.field_id = c.field_id AND fl.grid_id IS NULL
        WHERE c.dataset_id = p_dataset_id AND c.run_id = p_run_id
          AND c.init_time = (SELECT init_time FROM gik.run WHERE run_id = p_run_id)
        ORDER BY c.field_id, c.byte_length
    LOOP
        m := gik.message_info(r.url, r.byte_offset, r.byte_length);
        bytes := bytes + r.byte_length;
        UPDATE gik.field SET grid_id = gik.grid_id_of(m), short_name = m.short_name, units = m.units,
                             param_id = m.param_id, packing = m.packing,
                             learned_from = format('%s bytes %s-%s', r.url, r.byte_offset, r.byte_offset + r.byte_length - 1)
        WHERE field_id = r.field_id;
    END LOOP;
    RETURN bytes;
END $$;
COMMENT ON FUNCTION gik.learn_templates(smallint, int) IS
'Give every field of a run that has no template one: fetch one referenced message by its byte range (the smallest) and record its grid and ecCodes metadata. Returns the GRIB bytes read.';

-- Ingest one run of a dataset: the transactional core (errors roll everything back).
CREATE FUNCTION gik.ingest_run(
    dataset text, init_time timestamptz,
    variables text[] DEFAULT NULL, members int[] DEFAULT NULL, steps int[] DEFAULT NULL,
    allow_missing bool DEFAULT false, learn_templates bool DEFAULT true)
RETURNS gik.run
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    p_dataset  ALIAS FOR dataset;
    p_init     ALIAS FOR init_time;
    p_vars     ALIAS FOR variables;
    p_members  ALIAS FOR members;
    p_steps    ALIAS FOR steps;
    d          gik.dataset;
    r          gik.run;
    sel        jsonb;
    t0         timestamptz := clock_timestamp();
    t_fetch    float8;
    n_expected int;
    n_missing  int;
    n_changed  int;
    n_added    int;
    n_refs     int8;
    idx_bytes  int8;
    tmpl_bytes int8;
    new_ver    int;
    bad        record;
BEGIN
    d := gik.dataset_named(p_dataset);
    IF p_init IS NULL OR date_trunc('hour', p_init) <> p_init
       OR NOT extract(hour FROM p_init AT TIME ZONE 'UTC')::smallint = ANY (d.cycles) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('%s is not a cycle of dataset "%s"', p_init, p_dataset),
            DETAIL = format('The dataset runs at %s UTC.', array_to_string(d.cycles, ', ') || ' h');
    END IF;
    p_vars := coalesce(p_vars, d.variables);
    sel := jsonb_build_object('variables', p_vars, 'members', p_members, 'steps', p_steps);

    -- One ingestion of a run at a time; a second session waits and then finds nothing new.
    PERFORM pg_advisory_xact_lock(d.dataset_id, (extract(epoch FROM p_init) / 3600)::int);

    IF to_regclass('pg_temp.gik_plan') IS NOT NULL THEN
        DROP TABLE pg_temp.gik_plan, pg_temp.gik_index, pg_temp.gik_msg;
    END IF;
    CREATE TEMP TABLE gik_plan ON COMMIT DROP AS
        SELECT * FROM gik.plan_files(p_dataset, p_init, p_members, p_steps);
    SELECT count(*) INTO n_expected FROM gik_plan;
    IF n_expected = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('no files to ingest for dataset "%s" at %s', p_dataset, p_init),
            DETAIL = 'The members and steps asked for match none of the dataset''s files.';
    END IF;

    -- Fetch every index file at once.
    CREATE TEMP TABLE gik_index ON COMMIT DROP AS
        SELECT f.ord AS file_no, f.found, f.body, f.bytes, f.etag, md5(f.body) AS body_md5
        FROM gik.fetch_many((SELECT array_agg(index_url ORDER BY file_no) FROM gik_plan), missing_ok => true) f;
    t_fetch := extract(epoch FROM clock_timestamp() - t0) * 1000;
    SELECT count(*) FILTER (WHERE NOT i.found), coalesce(sum(i.bytes), 0) INTO n_missing, idx_bytes FROM gik_index i;

    IF n_missing > 0 AND NOT allow_missing THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_file',
            MESSAGE = format('%s of %s index files of dataset "%s" at %s are missing', n_missing, n_expected, p_dataset, p_init),
            DETAIL = 'Missing: ' || (SELECT string_agg(p.index_url, ', ' ORDER BY p.file_no)
                                     FROM (SELECT p.* FROM gik_plan p JOIN gik_index i USING (file_no)
                                           WHERE NOT i.found ORDER BY p.file_no LIMIT 5) p)
                      || CASE WHEN n_missing > 5 THEN format(' and %s more.', n_missing - 5) ELSE '.' END,
            HINT = 'Pass allow_missing => true to record a partial run.';
    END IF;

    -- Parse and normalise the selected messages.
    IF d.index_format = 'idx' THEN
        CREATE TEMP TABLE gik_msg ON COMMIT DROP AS
            SELECT p.file_no, l.lineno, l.ref_time, l.variable, l.level, coalesce(l.stat, '') AS stat,
                   l.step_start, l.step_end, l.ftime,
                   coalesce(gik.member_code(l.member, l.member_kind), p.member::smallint) AS member,
                   l.byte_offset, l.byte_length
            FROM gik_plan p
            JOIN gik_index i ON i.file_no = p.file_no AND i.found
            CROSS JOIN LATERAL gik.parse_idx(i.body, NULL, p.index_url) l
            WHERE gik.variable_selected(p_vars, l.variable, l.level);
    ELSE
        CREATE TEMP TABLE gik_msg ON COMMIT DROP AS
            SELECT p.file_no, l.lineno, l.ref_time, l.param AS variable,
                   l.levtype || coalesce('/' || l.levelist, '') AS level,
                   CASE WHEN l.param = ANY (d.accumulated_params) THEN 'acc' ELSE '' END AS stat,
                   CASE WHEN l.param = ANY (d.accumulated_params) AND l.step_start = l.step_end THEN 0
                        ELSE l.step_start END AS step_start,
                   l.step_end, l.step AS ftime,
                   gik.member_code(l.member, l.member_kind) AS member,
                   l.byte_offset, l.byte_length
            FROM gik_plan p
            JOIN gik_index i ON i.file_no = p.file_no AND i.found
            CROSS JOIN LATERAL gik.parse_ecmwf_index(i.body, p.index_url) l
            WHERE gik.variable_selected(p_vars, l.param, l.levtype || coalesce('/' || l.levelist, ''))
              AND (p.index_members IS NULL OR l.member = ANY (p.index_members))
              AND (p_members IS NULL OR l.member = ANY (p_members));
    END IF;

    -- Every index must describe this run.
    SELECT p.index_url, m.lineno, m.ref_time INTO bad
    FROM gik_msg m JOIN gik_plan p USING (file_no)
    WHERE m.ref_time IS DISTINCT FROM p_init LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'data_exception',
            MESSAGE = format('index "%s" line %s is for %s, not for the run %s', bad.index_url, bad.lineno,
                             coalesce(bad.ref_time::text, 'an unreadable date'), p_init),
            HINT = 'The URL template or the upstream file is wrong.';
    END IF;
    SELECT p.index_url, m.lineno, m.ftime INTO bad
    FROM gik_msg m JOIN gik_plan p USING (file_no) WHERE m.step_start IS NULL LIMIT 1;
    IF FOUND THEN
        RAISE WARNING 'skipping % selected messages whose forecast time is not understood, e.g. "%" at line % of "%"',
            (SELECT count(*) FROM gik_msg WHERE step_start IS NULL), bad.ftime, bad.lineno, bad.index_url;
        DELETE FROM gik_msg WHERE step_start IS NULL;
    END IF;

    -- The last message of a file needs the file size (HEAD) for its length.
    IF EXISTS (SELECT FROM gik_msg WHERE byte_length IS NULL) THEN
        UPDATE gik_msg m SET byte_length = h.file_size - m.byte_offset
        FROM (SELECT p.file_no, x.file_size
              FROM gik.fetch_many((SELECT array_agg(DISTINCT p2.url) FROM gik_plan p2
                                   WHERE p2.file_no IN (SELECT file_no FROM gik_msg WHERE byte_length IS NULL)),
                                  missing_ok => false, head => true) x
              JOIN gik_plan p ON p.url = x.url) h
        WHERE m.file_no = h.file_no AND m.byte_length IS NULL;
        SELECT p.url, m.byte_offset INTO bad FROM gik_msg m JOIN gik_plan p USING (file_no)
        WHERE m.byte_length IS NULL OR m.byte_length <= 0 LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'data_exception',
                MESSAGE = format('the last message of "%s" (offset %s) has no length', bad.url, bad.byte_offset),
                DETAIL = 'The server did not report a file size beyond the last indexed offset.';
        END IF;
    END IF;

    -- Fields and time windows.
    INSERT INTO gik.field (dataset_id, variable, level, stat)
    SELECT DISTINCT d.dataset_id, variable, level, stat FROM gik_msg
    ON CONFLICT DO NOTHING;
    INSERT INTO gik.time_window (start_min, end_min)
    SELECT DISTINCT round(step_start * 60)::int, round(step_end * 60)::int FROM gik_msg
    ON CONFLICT DO NOTHING;

    -- Run row, locked for the rest of the ingestion.
    INSERT INTO gik.run AS x (dataset_id, init_time, status, selection, started)
    VALUES (d.dataset_id, p_init, 'running', sel, t0)
    ON CONFLICT (dataset_id, init_time) DO NOTHING;
    SELECT * INTO r FROM gik.run WHERE dataset_id = d.dataset_id AND gik.run.init_time = p_init FOR UPDATE;

    -- Which files are new or changed since the current version.
    ALTER TABLE gik_plan ADD COLUMN changed bool, ADD COLUMN old_file_id int;
    UPDATE gik_plan p SET old_file_id = f.file_id,
           changed = (r.selection IS DISTINCT FROM sel AND r.version > 0)
                     OR (i.found AND (NOT f.found OR f.index_md5 IS DISTINCT FROM i.body_md5))
    FROM gik.file f, gik_index i
    WHERE f.run_id = r.run_id AND f.valid_to IS NULL AND f.source = p.source AND f.step = p.step
      AND f.member IS NOT DISTINCT FROM p.member AND i.file_no = p.file_no;
    UPDATE gik_plan SET changed = true WHERE old_file_id IS NULL;
    SELECT count(*) FILTER (WHERE changed AND old_file_id IS NOT NULL), count(*) FILTER (WHERE old_file_id IS NULL)
    INTO n_changed, n_added FROM gik_plan;

    IF n_changed + n_added > 0 THEN
        new_ver := r.version + 1;
        PERFORM gik.ensure_partition(d.dataset_id, p_init);
        UPDATE gik.file f SET valid_to = new_ver
        FROM gik_plan p WHERE p.changed AND f.file_id = p.old_file_id;
        -- A new selection replaces the whole run: files it no longer covers are retired too.
        IF r.selection IS DISTINCT FROM sel THEN
            UPDATE gik.file f SET valid_to = new_ver
            WHERE f.run_id = r.run_id AND f.valid_to IS NULL
              AND f.file_id NOT IN (SELECT old_file_id FROM gik_plan WHERE old_file_id IS NOT NULL);
        END IF;

        ALTER TABLE gik_plan ADD COLUMN file_id int;
        WITH ins AS (
            INSERT INTO gik.file (run_id, source, step, member, url, found, index_size, index_etag, index_md5, valid_from)
            SELECT r.run_id, p.source, p.step, p.member, p.url, i.found, i.bytes, i.etag, i.body_md5, new_ver
            FROM gik_plan p JOIN gik_index i USING (file_no)
            WHERE p.changed
            ORDER BY p.file_no
            RETURNING file_id, source, step, member)
        UPDATE gik_plan p SET file_id = ins.file_id
        FROM ins WHERE ins.source = p.source AND ins.step = p.step AND ins.member IS NOT DISTINCT FROM p.member;

        INSERT INTO gik.chunk_pack (dataset_id, init_time, run_id, file_id, member, field_ids, window_ids, offsets, lengths)
        SELECT d.dataset_id, p_init, r.run_id, p.file_id, m.member,
               array_agg(fl.field_id ORDER BY m.byte_offset, m.lineno),
               array_agg(w.window_id ORDER BY m.byte_offset, m.lineno),
               array_agg(m.byte_offset ORDER BY m.byte_offset, m.lineno),
               array_agg(m.byte_length::int4 ORDER BY m.byte_offset, m.lineno)
        FROM gik_msg m
        JOIN gik_plan p ON p.file_no = m.file_no AND p.changed
        JOIN gik.field fl ON fl.dataset_id = d.dataset_id AND fl.variable = m.variable AND fl.level = m.level AND fl.stat = m.stat
        JOIN gik.time_window w ON w.start_min = round(m.step_start * 60)::int AND w.end_min = round(m.step_end * 60)::int
        GROUP BY p.file_id, m.member;

        INSERT INTO gik.run_version (run_id, version, files_added, files_changed, refs, note)
        VALUES (r.run_id, new_ver, n_added, n_changed,
                (SELECT count(*) FROM gik_msg m JOIN gik_plan p USING (file_no) WHERE p.changed),
                CASE WHEN r.version = 0 THEN 'first ingestion'
                     WHEN r.selection IS DISTINCT FROM sel THEN 'selection changed'
                     ELSE 'upstream files added or replaced' END);
    ELSE
        new_ver := r.version;
    END IF;

    tmpl_bytes := CASE WHEN learn_templates THEN gik.learn_templates(d.dataset_id, r.run_id) ELSE 0 END;
    SELECT count(*) INTO n_refs FROM gik.chunk_ref c WHERE c.run_id = r.run_id AND c.init_time = p_init
      AND c.dataset_id = d.dataset_id;

    UPDATE gik.run SET
        version = new_ver, selection = sel,
        status = CASE WHEN n_missing > 0 THEN 'partial' ELSE 'complete' END,
        files_expected = n_expected, files_found = n_expected - n_missing, files_missing = n_missing,
        refs = n_refs, index_bytes = idx_bytes, grib_bytes = tmpl_bytes,
        started = t0, finished = clock_timestamp(), fetch_ms = t_fetch,
        total_ms = extract(epoch FROM clock_timestamp() - t0) * 1000, error = NULL
    WHERE run_id = r.run_id
    RETURNING * INTO r;
    RETURN r;
END $$;
COMMENT ON FUNCTION gik.ingest_run(text, timestamptz, text[], int[], int[], bool, bool) IS
'Ingest one run: fetch all its index files concurrently, keep the selected messages (''VAR'' or ''VAR:LEVEL'' entries) as chunk references, learn missing templates from one message each, and record a new version when files are new or changed. Transactional: on error nothing changes. With allow_missing, missing files are recorded and the run is partial. learn_templates => false reads no GRIB bytes at all (templates can be learned later).';
-- Decoding referenced messages (C, ecCodes): arrays, grid descriptions, coordinates, raster WKB, batches.

CREATE TYPE gik.bbox AS (lon_min float8, lat_min float8, lon_max float8, lat_max float8);
COMMENT ON TYPE gik.bbox IS
'A lon/lat box in degrees. Longitudes in either convention; lon_min > lon_max crosses the 180th meridian.';

CREATE FUNCTION gik.bbox(lon_min float8, lat_min float8, lon_max float8, lat_max float8) RETURNS gik.bbox
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ROW(lon_min, lat_min, lon_max, lat_max)::gik.bbox;
COMMENT ON FUNCTION gik.bbox(float8, float8, float8, float8) IS 'A region: gik.bbox(lon_min, lat_min, lon_max, lat_max).';

CREATE TYPE gik.ref AS (url text, byte_offset int8, byte_length int8);
COMMENT ON TYPE gik.ref IS 'A chunk reference: one GRIB message as a byte range of a URL.';

CREATE TYPE gik.grid_desc AS (
    grid_type text, ni int, nj int,
    lat_first float8, lon_first float8, lat_last float8, lon_last float8,
    di float8, dj float8, scanning_mode int);
COMMENT ON TYPE gik.grid_desc IS
'A grid description. For decoded regular lat/lon grids: rows north to south from lat_first, columns west to east from lon_first (cell centres), scanning_mode 0.';

CREATE FUNCTION gik.decode(url text, byte_offset int8, byte_length int8,
                           lon text DEFAULT 'source', region gik.bbox DEFAULT NULL)
RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_decode'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.decode(text, int8, int8, text, gik.bbox) IS
'Fetch one message by its byte range, check it is exactly one GRIB message (else a stale-index error), and decode it with ecCodes: real[nj][ni] north-up, west to east, missing points as NaN. lon: ''source'', ''-180..180'' or ''0..360'' (columns rolled). region: only the cells whose centres are inside. Grids other than regular lat/lon decode to their values in scanning order (2-D when Ni/Nj exist, else 1-D) and accept neither lon nor region.';

CREATE FUNCTION gik.decode(ref gik.ref, lon text DEFAULT 'source', region gik.bbox DEFAULT NULL)
RETURNS real[]
LANGUAGE sql VOLATILE PARALLEL RESTRICTED
RETURN gik.decode((ref).url, (ref).byte_offset, (ref).byte_length, lon, region);
COMMENT ON FUNCTION gik.decode(gik.ref, text, gik.bbox) IS 'gik.decode() for a gik.ref.';

CREATE FUNCTION gik.output_grid(grid gik.grid_desc, lon text DEFAULT 'source', region gik.bbox DEFAULT NULL)
RETURNS gik.grid_desc
AS 'MODULE_PATHNAME', 'gik_output_grid'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.output_grid(gik.grid_desc, text, gik.bbox) IS
'The north-up grid a decode of a message on this (source) grid returns for a longitude convention and region; nothing is fetched.';

CREATE FUNCTION gik.grid(url text, byte_offset int8, byte_length int8,
                         lon text DEFAULT 'source', region gik.bbox DEFAULT NULL)
RETURNS gik.grid_desc
LANGUAGE sql VOLATILE PARALLEL RESTRICTED
RETURN (SELECT CASE WHEN m.grid_type = 'regular_ll'
                    THEN gik.output_grid(ROW(m.grid_type, m.ni, m.nj, m.lat_first, m.lon_first, m.lat_last, m.lon_last,
                                             m.di, m.dj, m.scanning_mode)::gik.grid_desc, lon, region)
                    ELSE ROW(m.grid_type, m.ni, m.nj, m.lat_first, m.lon_first, m.lat_last, m.lon_last,
                             m.di, m.dj, m.scanning_mode)::gik.grid_desc END
        FROM gik.message_info(url, byte_offset, byte_length) m);
COMMENT ON FUNCTION gik.grid(text, int8, int8, text, gik.bbox) IS
'The grid that gik.decode() returns for this message and these options, read from the message''s metadata only.';

CREATE FUNCTION gik.grid_lats(grid gik.grid_desc, lon text DEFAULT 'source', region gik.bbox DEFAULT NULL)
RETURNS float8[]
AS 'MODULE_PATHNAME', 'gik_grid_lats'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.grid_lats(gik.grid_desc, text, gik.bbox) IS
'Latitudes of the rows (north to south) of a regular lat/lon grid, after the longitude convention and region.';

CREATE FUNCTION gik.grid_lons(grid gik.grid_desc, lon text DEFAULT 'source', region gik.bbox DEFAULT NULL)
RETURNS float8[]
AS 'MODULE_PATHNAME', 'gik_grid_lons'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.grid_lons(gik.grid_desc, text, gik.bbox) IS
'Longitudes of the columns (west to east, continuous across the seam) of a regular lat/lon grid, after the longitude convention and region.';

CREATE FUNCTION gik.field_grid(field_id smallint) RETURNS gik.grid_desc
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (SELECT ROW(g.grid_type, g.ni, g.nj, g.lat_first, g.lon_first, g.lat_last, g.lon_last, g.di, g.dj,
                   g.scanning_mode)::gik.grid_desc
        FROM gik.field f JOIN gik.grid g USING (grid_id) WHERE f.field_id = field_grid.field_id);
COMMENT ON FUNCTION gik.field_grid(smallint) IS 'The source grid of a field, from its template (no fetch).';

CREATE FUNCTION gik.decode_raster_wkb(url text, byte_offset int8, byte_length int8,
                                      lon text DEFAULT 'source', region gik.bbox DEFAULT NULL, srid int DEFAULT 4326)
RETURNS bytea
AS 'MODULE_PATHNAME', 'gik_decode_raster_wkb'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.decode_raster_wkb(text, int8, int8, text, gik.bbox, int) IS
'Decode one message into PostGIS raster WKB (RFC2): one 32BF band, nodata NaN, upper-left corner half a cell north-west of the first cell centre. pg_gik_postgis turns it into a raster.';

CREATE FUNCTION gik.grid_wkb(vals real[], grid gik.grid_desc, srid int DEFAULT 4326) RETURNS bytea
AS 'MODULE_PATHNAME', 'gik_grid_wkb'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gik.grid_wkb(real[], gik.grid_desc, int) IS
'Raster WKB of any north-up grid: real[nj][ni] gives one band, real[nbands][nj][ni] (e.g. one probability grid per threshold) one band each; NULL elements become nodata.';

CREATE FUNCTION gik.decode_batch(refs gik.ref[], lon text DEFAULT 'source', region gik.bbox DEFAULT NULL)
RETURNS TABLE (ord int, grid gik.grid_desc, vals real[])
AS 'MODULE_PATHNAME', 'gik_decode_batch'
LANGUAGE C VOLATILE PARALLEL RESTRICTED ROWS 100;
COMMENT ON FUNCTION gik.decode_batch(gik.ref[], text, gik.bbox) IS
'Decode many references in one call: repeated references are fetched and decoded once, ranges that touch in the same file are fetched together, up to gik.max_connections requests run at once, gik.decode_threads threads decode, and rows stream out in completion order (ord is the 1-based position in refs).';
-- Zarr-style manifests: the chunk references of a dataset as Zarr keys (kerchunk v1 JSON, Zarr v3 with the
-- gribberish codec), and import of kerchunk reference JSON and GIK [key, value] reference tables.
-- docs/manifests.md describes the layout, the naming rules and the COPY incantations.

-- Helpers ------------------------------------------------------------------------------------------------

-- A name usable as one Zarr path component.
CREATE FUNCTION gik.zarr_name(name text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN nullif(trim(BOTH '_' FROM regexp_replace(name, '[^A-Za-z0-9_.+-]+', '_', 'g')), '');
COMMENT ON FUNCTION gik.zarr_name(text) IS
'A text made usable as one Zarr path component: runs of other characters than letters, digits, _ . + - become one _, and leading or trailing _ are removed.';

-- Bytes in reverse order (little- to big-endian and back).
CREATE FUNCTION gik.bytes_reverse(b bytea) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN (SELECT coalesce(string_agg(substring(b FROM i FOR 1), ''::bytea ORDER BY i DESC), ''::bytea)
        FROM generate_series(1, length(b)) AS i);
COMMENT ON FUNCTION gik.bytes_reverse(bytea) IS 'The bytes of b in reverse order (turns little-endian numbers into big-endian ones and back).';

-- Numbers as the raw little-endian bytes of a Zarr array: '<f8' (float64) or '<i8' (int64).
CREATE FUNCTION gik.zarr_encode(vals float8[], dtype text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN (SELECT coalesce(string_agg(gik.bytes_reverse(CASE dtype WHEN '<f8' THEN float8send(v) ELSE int8send(v::int8) END),
                                   ''::bytea ORDER BY o), ''::bytea)
        FROM unnest(vals) WITH ORDINALITY AS u(v, o));
COMMENT ON FUNCTION gik.zarr_encode(float8[], text) IS
'The raw bytes of a C-order Zarr chunk holding vals: ''<f8'' little-endian float64, ''<i8'' little-endian int64 (values rounded).';

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

-- The bytes of an inline value: 'base64:…' decoded, else the UTF-8 bytes of the text (U+E000 stands for NUL).
CREATE FUNCTION gik.inline_bytes(value text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN value LIKE 'base64:%' THEN decode(translate(substr(value, 8), E'\n\r ', ''), 'base64')
            ELSE (SELECT string_agg(convert_to(part, 'UTF8'), '\x00'::bytea ORDER BY o)
                  FROM string_to_table(value, chr(57344)) WITH ORDINALITY AS t(part, o)) END;
COMMENT ON FUNCTION gik.inline_bytes(text) IS
'The bytes of a kerchunk inline value: ''base64:…'' decoded, else the UTF-8 bytes of the text, as kerchunk and fsspec encode raw values (U+E000 stands for a NUL byte: gik.import_kerchunk() reads \u0000 as U+E000 because PostgreSQL text cannot hold NUL).';

-- A JSON text parsed, or NULL when it is not valid JSON.
CREATE FUNCTION gik.try_jsonb(value text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN value::jsonb;
EXCEPTION WHEN invalid_text_representation OR untranslatable_character OR character_not_in_repertoire THEN
    RETURN NULL;
END $$;
COMMENT ON FUNCTION gik.try_jsonb(text) IS 'value parsed as jsonb, or NULL when it is not valid JSON.';

-- Zarr metadata text parsed; bare NaN and Infinity (which Python's json and ujson write) read as null.
CREATE FUNCTION gik.metadata_jsonb(value text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(gik.try_jsonb(value),
                gik.try_jsonb(regexp_replace(value, '([:\[,]\s*)(-?Infinity|NaN)(?=\s*[,\]}])', '\1null', 'g')));
COMMENT ON FUNCTION gik.metadata_jsonb(text) IS
'Zarr metadata (.zarray, .zattrs, …) text parsed as jsonb, reading the bare NaN, Infinity and -Infinity that Python writes (e.g. "fill_value": NaN) as null; NULL when it is still not JSON.';

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

-- The key of one chunk of a Zarr array.
CREATE FUNCTION gik.zarr_chunk_key(zarr_format int, name text, idx int[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN zarr_format = 3 THEN name || '/c' || coalesce('/' || nullif(array_to_string(idx, '/'), ''), '')
            ELSE name || '/' || coalesce(nullif(array_to_string(idx, '.'), ''), '0') END;
COMMENT ON FUNCTION gik.zarr_chunk_key(int, text, int[]) IS
'The key of the chunk at grid position idx of a Zarr array: NAME/i.j.k (format 2; NAME/0 for a scalar) or NAME/c/i/j/k (format 3, default chunk key encoding).';

-- Export --------------------------------------------------------------------------------------------------

-- Zarr names of a dataset's fields: shortName when unique, else with the level, then the statistic.
CREATE FUNCTION gik.manifest_variables(dataset text)
RETURNS TABLE (field_id smallint, name text, variable text, level text, stat text)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    WITH f0 AS (
        SELECT f.field_id, f.variable, f.level, f.stat,
               coalesce(gik.zarr_name(CASE WHEN f.short_name IS NULL OR f.short_name IN ('', 'unknown') THEN lower(f.variable)
                                           ELSE f.short_name END), 'var') AS base
        FROM gik.field f JOIN gik.dataset d USING (dataset_id)
        WHERE d.name = manifest_variables.dataset),
    f1 AS (SELECT f0.*, CASE WHEN count(*) OVER (PARTITION BY base) = 1 THEN base
                             ELSE base || coalesce('_' || gik.zarr_name(lower(level)), '') END AS n1 FROM f0),
    f2 AS (SELECT f1.*, CASE WHEN count(*) OVER (PARTITION BY n1) = 1 THEN n1
                             ELSE n1 || '_' || coalesce(nullif(stat, ''), 'instant') END AS n2 FROM f1)
    SELECT f2.field_id,
           CASE WHEN count(*) OVER (PARTITION BY n2) = 1
                     AND n2 NOT IN ('time', 'step', 'number', 'valid_time')
                     AND n2 !~ '^(latitude|longitude|x|y|values)(_[0-9]+)*$' THEN n2
                ELSE n2 || '_' || f2.field_id END,
           f2.variable, f2.level, f2.stat
    FROM f2 ORDER BY 2;
END;
COMMENT ON FUNCTION gik.manifest_variables(text) IS
'The Zarr variable name of every field of a dataset: the template''s ecCodes shortName (the lower-case index variable when there is none or it is ''unknown'') when no other field of the dataset has it, else shortName_level (level made a path component, e.g. cape_surface, t_pl_500), then _stat when still ambiguous (and _field_id in the last resort).';

-- The manifest of a dataset (all runs, one run or a range of runs): Zarr keys and values.
CREATE FUNCTION gik.manifest(dataset text, init_from timestamptz DEFAULT NULL, init_to timestamptz DEFAULT NULL,
                             variables text[] DEFAULT NULL, url_style text DEFAULT 's3', zarr_format int DEFAULT 2)
RETURNS TABLE (key text, value jsonb, kind text, variable text, chunk text, init_time timestamptz, member int,
               step_start float8, step_end float8, url text, byte_offset int8, byte_length int8)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
    p_dataset ALIAS FOR dataset;
    p_format  ALIAS FOR zarr_format;
    d         gik.dataset;
    lo        timestamptz := init_from;
    hi        timestamptz := coalesce(init_to, init_from);
    fids      smallint[];
    fnames    text[];
    missing   text;
    bad       record;
BEGIN
    d := gik.dataset_named(p_dataset);
    IF url_style IS NULL OR url_style NOT IN ('s3', 'http') THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = format('invalid url_style "%s"', url_style),
            HINT = 'Use ''s3'' for the stored URLs or ''http'' for the URLs gik.resolve_url() gives.';
    END IF;
    IF p_format IS NULL OR p_format NOT IN (2, 3) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = format('invalid zarr_format %s', p_format),
            HINT = 'Use 2 (kerchunk) or 3 (Zarr v3 with the gribberish codec).';
    END IF;
    IF lo IS NOT NULL AND hi < lo THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('init_to %s is before init_from %s', hi, lo);
    END IF;

    SELECT array_agg(v.field_id ORDER BY v.field_id), array_agg(v.name ORDER BY v.field_id) INTO fids, fnames
    FROM gik.manifest_variables(p_dataset) v
    WHERE variables IS NULL OR gik.variable_selected(variables, v.variable, v.level) OR v.name = ANY (variables);
    SELECT string_agg(format('"%s"', e), ', ') INTO missing
    FROM unnest(variables) e
    WHERE NOT EXISTS (SELECT FROM gik.manifest_variables(p_dataset) v
                      WHERE e IN (v.variable, v.variable || ':' || v.level, v.name));
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('no field of dataset "%s" matches %s', p_dataset, missing),
            HINT = 'Give index variables (''VAR'' or ''VAR:LEVEL'') or Zarr names as listed by gik.manifest_variables().';
    END IF;
    SELECT f.variable, f.level INTO bad FROM gik.field f
    WHERE f.field_id = ANY (fids) AND f.grid_id IS NULL
      AND EXISTS (SELECT FROM gik.chunk_pack p
                  WHERE p.dataset_id = d.dataset_id AND (lo IS NULL OR p.init_time BETWEEN lo AND hi)
                    AND f.field_id = ANY (p.field_ids))
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('field "%s" (%s) of dataset "%s" has no template', bad.variable, bad.level, p_dataset),
            DETAIL = 'A manifest needs each variable''s grid, which comes from its template.',
            HINT = 'Learn it with gik.learn_templates(dataset_id, run_id), or ingest with learn_templates => true.';
    END IF;

    RETURN QUERY
    WITH fl AS (SELECT u.field_id, u.name FROM unnest(fids, fnames) AS u(field_id, name)),
    r0 AS (
        SELECT p.init_time, coalesce(p.member::int, -9) AS m, p.file_id, u.field_id,
               w.start_min, w.end_min, u.byte_offset, u.byte_length::int8 AS byte_length
        FROM gik.chunk_pack p
        JOIN gik.file fi ON fi.file_id = p.file_id AND fi.valid_to IS NULL
        CROSS JOIN LATERAL unnest(p.field_ids, p.window_ids, p.offsets, p.lengths) AS u(field_id, window_id, byte_offset, byte_length)
        JOIN gik.time_window w ON w.window_id = u.window_id
        WHERE p.dataset_id = d.dataset_id AND (lo IS NULL OR p.init_time BETWEEN lo AND hi) AND u.field_id = ANY (fids)),
    -- Several windows ending at the same step (GFS APCP 6-12 and 0-12 at f012): the shortest keeps the name.
    dup AS MATERIALIZED (SELECT r0.field_id, r0.init_time, r0.m, r0.end_min FROM r0 GROUP BY 1, 2, 3, 4 HAVING count(*) > 1),
    r1 AS (
        SELECT r0.*, 1::int8 AS rk FROM r0
        WHERE NOT EXISTS (SELECT FROM dup WHERE dup.field_id = r0.field_id AND dup.init_time = r0.init_time
                                              AND dup.m = r0.m AND dup.end_min = r0.end_min)
        UNION ALL
        SELECT r0.*, row_number() OVER (PARTITION BY r0.field_id, r0.init_time, r0.m, r0.end_min
                                        ORDER BY r0.end_min - r0.start_min, r0.file_id, r0.byte_offset)
        FROM r0 JOIN dup ON dup.field_id = r0.field_id AND dup.init_time = r0.init_time AND dup.m = r0.m AND dup.end_min = r0.end_min),
    -- The axes: positions of the runs, members and step ends present.
    tax AS (SELECT x.init_time, (row_number() OVER (ORDER BY x.init_time) - 1)::int AS ti FROM (SELECT DISTINCT r0.init_time FROM r0) x),
    max AS (SELECT x.m AS member, (row_number() OVER (ORDER BY x.m) - 1)::int AS mi FROM (SELECT DISTINCT r0.m FROM r0) x),
    sax AS (SELECT x.end_min, (row_number() OVER (ORDER BY x.end_min) - 1)::int AS si FROM (SELECT DISTINCT r0.end_min FROM r0) x),
    ax AS (SELECT (SELECT count(*) FROM tax) AS nt, (SELECT count(*) FROM max) AS nm, (SELECT count(*) FROM sax) AS ns,
                  EXISTS (SELECT FROM max WHERE max.member <> -9) AS ens),
    r AS (
        SELECT r1.init_time, nullif(r1.m, -9) AS member, r1.file_id, r1.field_id, r1.start_min, r1.end_min, r1.byte_offset,
               r1.byte_length, tax.ti, max.mi, sax.si,
               CASE WHEN rk = 1 THEN fl.name WHEN rk = 2 AND r1.start_min = 0 THEN fl.name || '_from0' ELSE fl.name || '_r' || rk END AS var
        FROM r1 JOIN fl ON fl.field_id = r1.field_id JOIN tax ON tax.init_time = r1.init_time
        JOIN max ON max.member = r1.m JOIN sax ON sax.end_min = r1.end_min),
    urls AS MATERIALIZED (
        SELECT fi.file_id, CASE WHEN url_style = 'http' THEN gik.resolve_url(fi.url) ELSE fi.url END AS out_url
        FROM gik.file fi WHERE fi.file_id IN (SELECT DISTINCT r0.file_id FROM r0)),
    -- One Zarr variable per name; its field, template and windows.
    v0 AS MATERIALIZED (SELECT r.var, min(r.field_id) AS field_id FROM r GROUP BY r.var),
    g0 AS (
        SELECT gr.*, (SELECT count(*) FROM gik.field ff WHERE ff.dataset_id = d.dataset_id AND ff.grid_id = gr.grid_id) AS nvars,
               CASE WHEN gr.ni IS NULL OR gr.nj IS NULL THEN 'values' WHEN gr.grid_type = 'regular_ll' THEN 'll' ELSE 'xy' END AS layout
        FROM v0 JOIN gik.field f ON f.field_id = v0.field_id JOIN gik.grid gr ON gr.grid_id = f.grid_id
        GROUP BY gr.grid_id),
    -- The grid most of the dataset's fields use gets latitude/longitude; others get the size as a suffix.
    g1 AS (
        SELECT g0.*, row_number() OVER (PARTITION BY g0.layout ORDER BY g0.nvars DESC, g0.num_points DESC, g0.grid_id) AS lk,
               row_number() OVER (ORDER BY g0.nvars DESC, g0.num_points DESC, g0.grid_id) AS gk
        FROM g0),
    g2 AS (
        SELECT g1.*,
               CASE WHEN lk = 1 THEN '' ELSE '_' || g1.nj || CASE WHEN count(*) OVER (PARTITION BY g1.layout, g1.nj) > 1 THEN '_' || gk ELSE '' END END AS sj,
               CASE WHEN lk = 1 THEN '' ELSE '_' || g1.ni || CASE WHEN count(*) OVER (PARTITION BY g1.layout, g1.ni) > 1 THEN '_' || gk ELSE '' END END AS si_,
               CASE WHEN lk = 1 THEN '' ELSE '_' || g1.num_points || CASE WHEN count(*) OVER (PARTITION BY g1.layout, g1.num_points) > 1 THEN '_' || gk ELSE '' END END AS sp
        FROM g1),
    g AS MATERIALIZED (
        SELECT g2.grid_id, g2.layout, g2.ni, g2.nj, g2.num_points, g2.lat_first, g2.lon_first, g2.lat_last, g2.lon_last,
               g2.di, g2.dj, g2.scanning_mode, g2.grid_type,
               CASE g2.layout WHEN 'll' THEN ARRAY['latitude' || sj, 'longitude' || si_]
                              WHEN 'xy' THEN ARRAY['y' || sj, 'x' || si_]
                              ELSE ARRAY['values' || sp] END AS gdims,
               CASE WHEN g2.layout = 'values' THEN ARRAY[g2.num_points] ELSE ARRAY[g2.nj, g2.ni]::int8[] END AS gshape
        FROM g2),
    -- Window starts of the statistical variables along the step axis.
    vw AS MATERIALIZED (SELECT r.var, r.si, min(r.start_min) AS start_min FROM r
           WHERE r.field_id IN (SELECT f.field_id FROM gik.field f WHERE f.field_id = ANY (fids) AND f.stat <> '')
           GROUP BY r.var, r.si),
    vwo AS MATERIALIZED (SELECT vw.var, jsonb_object_agg(vw.si::text, vw.start_min / 60.0::float8) AS o FROM vw GROUP BY vw.var),
    vws AS MATERIALIZED (SELECT vwo.var, (SELECT jsonb_agg(vwo.o -> s.si::text ORDER BY s.si) FROM sax s) AS starts FROM vwo),
    v AS MATERIALIZED (
        SELECT v0.var, f.variable AS f_variable, f.level, f.stat, f.short_name, f.units, f.param_id, f.packing, g.*,
               (CASE WHEN ax.ens THEN ARRAY['time', 'number', 'step'] ELSE ARRAY['time', 'step'] END) || g.gdims AS dims,
               (CASE WHEN ax.ens THEN ARRAY[ax.nt, ax.nm, ax.ns] ELSE ARRAY[ax.nt, ax.ns] END) || g.gshape AS shape,
               (CASE WHEN ax.ens THEN ARRAY[1, 1, 1] ELSE ARRAY[1, 1] END)::int8[] || g.gshape AS chunks,
               vws.starts,
               -- The chunk key's grid part: .0.0 (format 2) or /0/0 (format 3).
               repeat(CASE WHEN p_format = 3 THEN '/0' ELSE '.0' END, cardinality(g.gdims)) AS tail
        FROM v0 CROSS JOIN ax
        JOIN gik.field f ON f.field_id = v0.field_id
        JOIN g ON g.grid_id = f.grid_id
        LEFT JOIN vws ON vws.var = v0.var),
    coords AS (
        SELECT 'time' AS name, ARRAY['time'] AS dims, ARRAY[ax.nt] AS shape, '<i8' AS dtype,
               (SELECT array_agg(extract(epoch FROM tax.init_time)::float8 ORDER BY tax.ti) FROM tax) AS vals,
               jsonb_build_object('calendar', 'proleptic_gregorian', 'long_name', 'initial time of forecast',
                                  'standard_name', 'forecast_reference_time', 'units', 'seconds since 1970-01-01T00:00:00') AS attrs
        FROM ax
        UNION ALL
        SELECT 'number', ARRAY['number'], ARRAY[ax.nm], '<i8', (SELECT array_agg(max.member::float8 ORDER BY max.mi) FROM max),
               jsonb_build_object('long_name', 'ensemble member numerical id', 'standard_name', 'realization', 'units', '1',
                                  'comment', '0 control, N perturbed, -1 ensemble mean, -2 ensemble spread, -9 no member')
        FROM ax WHERE ax.ens
        UNION ALL
        SELECT 'step', ARRAY['step'], ARRAY[ax.ns], '<f8', (SELECT array_agg(sax.end_min / 60.0::float8 ORDER BY sax.si) FROM sax),
               jsonb_build_object('long_name', 'time since forecast_reference_time', 'standard_name', 'forecast_period', 'units', 'hours')
        FROM ax
        UNION ALL
        SELECT 'valid_time', ARRAY['time', 'step'], ARRAY[ax.nt, ax.ns], '<i8',
               (SELECT array_agg(extract(epoch FROM tax.init_time)::float8 + sax.end_min * 60 ORDER BY tax.ti, sax.si) FROM tax, sax),
               jsonb_build_object('calendar', 'proleptic_gregorian', 'long_name', 'time', 'standard_name', 'time',
                                  'units', 'seconds since 1970-01-01T00:00:00')
        FROM ax
        UNION ALL
        SELECT g.gdims[1], ARRAY[g.gdims[1]], ARRAY[g.nj::int8], '<f8',
               (SELECT array_agg(g.lat_first + k * coalesce(g.dj, abs(g.lat_last - g.lat_first) / greatest(g.nj - 1, 1))
                                 * CASE WHEN g.lat_last < g.lat_first THEN -1 ELSE 1 END ORDER BY k)
                FROM generate_series(0, g.nj - 1) k),
               jsonb_build_object('long_name', 'latitude', 'standard_name', 'latitude', 'units', 'degrees_north')
        FROM g WHERE g.layout = 'll'
        UNION ALL
        SELECT g.gdims[2], ARRAY[g.gdims[2]], ARRAY[g.ni::int8], '<f8',
               (SELECT array_agg(CASE WHEN g.scanning_mode & 128 = 0 AND g.lon_first > g.lon_last THEN g.lon_first - 360 ELSE g.lon_first END
                                 + k * coalesce(g.di, 0) * CASE WHEN g.scanning_mode & 128 <> 0 THEN -1 ELSE 1 END ORDER BY k)
                FROM generate_series(0, g.ni - 1) k),
               jsonb_build_object('long_name', 'longitude', 'standard_name', 'longitude', 'units', 'degrees_east')
        FROM g WHERE g.layout = 'll'),
    root AS (
        SELECT jsonb_build_object(
                   'Conventions', 'CF-1.7',
                   'coordinates', (SELECT string_agg(c.name, ' ' ORDER BY c.name) FROM coords c),
                   'gik_dataset', d.name,
                   'history', 'pg_gik manifest of dataset ' || d.name) AS attrs)
    -- The root group.
    SELECT m.k, m.val, 'metadata', NULL::text, NULL::text, NULL::timestamptz, NULL::int, NULL::float8, NULL::float8,
           NULL::text, NULL::int8, NULL::int8
    FROM root, LATERAL (VALUES (2, '.zgroup', jsonb_build_object('zarr_format', 2)),
                               (2, '.zattrs', root.attrs),
                               (3, 'zarr.json', jsonb_build_object('zarr_format', 3, 'node_type', 'group', 'attributes', root.attrs))
                       ) AS m(fmt, k, val)
    WHERE m.fmt = p_format AND EXISTS (SELECT FROM r)
    UNION ALL
    -- Coordinates: metadata, then one inline chunk of raw little-endian values (base64).
    SELECT z.key, z.value, 'metadata', c.name, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM coords c, LATERAL gik.zarr_array_meta(p_format, c.name, c.shape::int8[], c.shape::int8[], c.dtype, c.attrs, c.dims, false) z
    UNION ALL
    SELECT gik.zarr_chunk_key(p_format, c.name, array_fill(0, ARRAY[cardinality(c.dims)])),
           to_jsonb('base64:' || translate(encode(gik.zarr_encode(c.vals, c.dtype), 'base64'), E'\n', '')),
           'coordinate', c.name, array_to_string(array_fill(0, ARRAY[cardinality(c.dims)]), '.'),
           NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM coords c
    UNION ALL
    -- Data variables.
    SELECT z.key, z.value, 'metadata', v.var, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
    FROM v, LATERAL gik.zarr_array_meta(p_format, v.var, v.shape, v.chunks, '<f8',
        jsonb_strip_nulls(jsonb_build_object(
            'long_name', v.f_variable || ' ' || v.level
                         || CASE v.stat WHEN 'acc' THEN ' (accumulation)' WHEN 'ave' THEN ' (average)'
                                        WHEN 'max' THEN ' (maximum)' WHEN 'min' THEN ' (minimum)' ELSE '' END,
            'units', nullif(v.units, 'unknown'),
            'coordinates', 'valid_time',
            'GRIB_shortName', v.short_name,
            'GRIB_units', v.units,
            'GRIB_paramId', v.param_id,
            'GRIB_stepType', CASE v.stat WHEN 'acc' THEN 'accum' WHEN 'ave' THEN 'avg' WHEN 'max' THEN 'max'
                                         WHEN 'min' THEN 'min' ELSE 'instant' END,
            'GRIB_packingType', v.packing,
            'GRIB_gridType', v.grid_type,
            'GRIB_Nx', v.ni, 'GRIB_Ny', v.nj, 'GRIB_numberOfPoints', v.num_points,
            'GRIB_latitudeOfFirstGridPointInDegrees', v.lat_first, 'GRIB_longitudeOfFirstGridPointInDegrees', v.lon_first,
            'GRIB_latitudeOfLastGridPointInDegrees', v.lat_last, 'GRIB_longitudeOfLastGridPointInDegrees', v.lon_last,
            'GRIB_iDirectionIncrementInDegrees', v.di, 'GRIB_jDirectionIncrementInDegrees', v.dj,
            'GRIB_iScansNegatively', (v.scanning_mode >> 7) & 1, 'GRIB_jScansPositively', (v.scanning_mode >> 6) & 1,
            'GRIB_jPointsAreConsecutive', (v.scanning_mode >> 5) & 1,
            'gik_variable', v.f_variable, 'gik_level', v.level, 'gik_stat', v.stat,
            'gik_window_start', v.starts)),
        v.dims, true) z
    UNION ALL
    SELECT CASE WHEN p_format = 3 THEN r.var || '/c/' || r.ti || CASE WHEN ax.ens THEN '/' || r.mi ELSE '' END || '/' || r.si
                ELSE r.var || '/' || r.ti || CASE WHEN ax.ens THEN '.' || r.mi ELSE '' END || '.' || r.si END || v.tail,
           jsonb_build_array(urls.out_url, r.byte_offset, r.byte_length),
           'chunk', r.var,
           r.ti || CASE WHEN ax.ens THEN '.' || r.mi ELSE '' END || '.' || r.si || replace(v.tail, '/', '.'),
           r.init_time, r.member, r.start_min / 60.0::float8, r.end_min / 60.0::float8,
           urls.out_url, r.byte_offset, r.byte_length
    FROM r CROSS JOIN ax
    JOIN urls ON urls.file_id = r.file_id
    JOIN v ON v.var = r.var;
END $$;
COMMENT ON FUNCTION gik.manifest(text, timestamptz, timestamptz, text[], text, int) IS
'The Zarr keys and values of a dataset''s chunk references (current versions): one row per metadata key (kind ''metadata'': .zgroup, .zattrs, VAR/.zarray, VAR/.zattrs for zarr_format 2; zarr.json, VAR/zarr.json for 3), per inline coordinate chunk (kind ''coordinate'': time, number, step, valid_time, latitude, longitude as base64 little-endian values) and per reference (kind ''chunk'': VAR/t.m.s.0.0 → [url, offset, length], one GRIB message per chunk). init_from alone selects one run, with init_to the runs in [init_from, init_to], neither every run. variables: ''VAR'', ''VAR:LEVEL'' or Zarr names (NULL: all). url_style ''s3'' keeps the stored URLs, ''http'' writes gik.resolve_url(). See docs/manifests.md.';

-- One run's manifest per row of gik.run.
CREATE VIEW gik.run_manifest AS
SELECT d.name AS dataset, r.init_time, r.version, m.key, m.value, m.kind, m.variable, m.chunk, m.member,
       m.step_start, m.step_end, m.url, m.byte_offset, m.byte_length
FROM gik.run r
JOIN gik.dataset d ON d.dataset_id = r.dataset_id
CROSS JOIN LATERAL gik.manifest(d.name, r.init_time) m;
COMMENT ON VIEW gik.run_manifest IS
'The kerchunk (Zarr format 2) manifest of each run on its own: metadata, coordinate and chunk keys with their values (see gik.manifest()). Filter on dataset and init_time.';

-- A dataset's manifest as one kerchunk v1 reference document.
CREATE FUNCTION gik.manifest_kerchunk(dataset text, init_from timestamptz DEFAULT NULL, init_to timestamptz DEFAULT NULL,
                                      variables text[] DEFAULT NULL, url_style text DEFAULT 's3')
RETURNS json
LANGUAGE sql STABLE
RETURN (SELECT json_build_object('version', 1, 'refs', coalesce(json_object_agg(m.key,
                   CASE WHEN m.kind = 'metadata' THEN to_jsonb(m.value::text) ELSE m.value END), '{}'))
        FROM gik.manifest(dataset, init_from, init_to, variables, url_style, 2) m);
COMMENT ON FUNCTION gik.manifest_kerchunk(text, timestamptz, timestamptz, text[], text) IS
'The manifest as one kerchunk v1 document {"version": 1, "refs": {…}} (json, built as text: three times faster than jsonb for 100,000 references): metadata values are JSON text, coordinates inline base64, chunks [url, offset, length]. fsspec''s ReferenceFileSystem and Zarr 2 read it; gik.import_kerchunk() takes it back; write it to a file with COPY (see docs/manifests.md).';

-- A dataset's manifest as Zarr v3 metadata (gribberish codec) with VirtualiZarr-style chunk manifests.
CREATE FUNCTION gik.manifest_zarr3(dataset text, init_from timestamptz DEFAULT NULL, init_to timestamptz DEFAULT NULL,
                                   variables text[] DEFAULT NULL, url_style text DEFAULT 's3')
RETURNS json
LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH m AS (SELECT * FROM gik.manifest(dataset, init_from, init_to, variables, url_style, 3))
    SELECT json_build_object(
        'zarr_format', 3,
        'metadata', coalesce((SELECT json_object_agg(m.key, m.value) FROM m WHERE m.kind = 'metadata'), '{}'),
        'manifests', coalesce((SELECT json_object_agg(e.variable, e.entries)
                               FROM (SELECT m.variable, json_object_agg(m.chunk, json_build_object(
                                         'path', m.url, 'offset', m.byte_offset, 'length', m.byte_length)) AS entries
                                     FROM m WHERE m.kind = 'chunk' GROUP BY m.variable) e), '{}'),
        'inline', coalesce((SELECT json_object_agg(m.key, m.value) FROM m WHERE m.kind = 'coordinate'), '{}'));
END;
COMMENT ON FUNCTION gik.manifest_zarr3(text, timestamptz, timestamptz, text[], text) IS
'The manifest in Zarr v3 form (json): {"zarr_format": 3, "metadata": {"zarr.json": group, "VAR/zarr.json": array with the gribberish codec, …}, "manifests": {"VAR": {"t.m.s.0.0": {"path", "offset", "length"}}} (VirtualiZarr ChunkManifest entries), "inline": {"time/c/0": "base64:…", …} (coordinate chunks)}.';

-- Import -------------------------------------------------------------------------------------------------

-- The value of a coordinate array at a chunk's grid position.
CREATE FUNCTION gik.coord_at(vals float8[], pos int[], strides int[], idx int[]) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN cardinality(pos) <= 4 THEN
           vals[1 + coalesce(idx[pos[1]] * strides[1], 0) + coalesce(idx[pos[2]] * strides[2], 0)
                  + coalesce(idx[pos[3]] * strides[3], 0) + coalesce(idx[pos[4]] * strides[4], 0)] END;
COMMENT ON FUNCTION gik.coord_at(float8[], int[], int[], int[]) IS
'The element of a C-order coordinate array of up to 4 dimensions (values vals, row-major strides) at a chunk position: pos gives, for each coordinate dimension, its position in the data variable''s dimensions, idx the chunk''s index along each of them.';

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
    new_ver   int;
    n_old     int;
    n_same    int;
    n_new     int;
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
        INSERT INTO gik.dataset (name, description, index_format, cycles, steps, members)
        SELECT p_dataset, format('Imported from %s', p_source), 'imported',
               array_agg(DISTINCT extract(hour FROM f.init_time AT TIME ZONE 'UTC')::smallint),
               array_agg(DISTINCT round(f.step)::int),
               array_remove(array_agg(DISTINCT f.member), NULL)
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
    INSERT INTO gik.field (dataset_id, variable, level, stat)
    SELECT DISTINCT d.dataset_id, f.variable, f.level, f.stat FROM pg_temp.gik_imp_ref f
    ON CONFLICT DO NOTHING;
    INSERT INTO gik.time_window (start_min, end_min)
    SELECT DISTINCT f.start_min, f.end_min FROM pg_temp.gik_imp_ref f
    ON CONFLICT DO NOTHING;
    -- Field and window ids of the distinct keys, then of every reference.
    CREATE TEMP TABLE gik_imp_key ON COMMIT DROP AS
    SELECT k.doc, k.path, k.variable, k.level, k.stat, k.start_min, k.end_min, fl.field_id, w.window_id
    FROM (SELECT DISTINCT f.doc, f.path, f.variable, f.level, f.stat, f.start_min, f.end_min FROM pg_temp.gik_imp_ref f) k
    JOIN gik.field fl ON fl.dataset_id = d.dataset_id AND fl.variable = k.variable AND fl.level = k.level AND fl.stat = k.stat
    JOIN gik.time_window w ON w.start_min = k.start_min AND w.end_min = k.end_min;
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

    -- 8. One run per initialisation time: a new version when its references changed.
    FOR crec IN SELECT DISTINCT f.init_time FROM pg_temp.gik_imp_ref f ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(d.dataset_id, (extract(epoch FROM crec.init_time) / 3600)::int);
        INSERT INTO gik.run AS x (dataset_id, init_time, status, started)
        VALUES (d.dataset_id, crec.init_time, 'running', t0)
        ON CONFLICT (dataset_id, init_time) DO NOTHING;
        SELECT * INTO r FROM gik.run x WHERE x.dataset_id = d.dataset_id AND x.init_time = crec.init_time FOR UPDATE;
        CREATE TEMP TABLE gik_imp_file ON COMMIT DROP AS
        SELECT f.url, min(f.end_min) / 60 AS step, CASE WHEN count(DISTINCT f.member) = 1 AND bool_and(f.member IS NOT NULL) THEN min(f.member) END AS member,
               md5(string_agg(concat_ws(':', f.field_id, f.window_id, f.member, f.byte_offset, f.byte_length), ','
                              ORDER BY f.byte_offset, f.field_id, f.window_id, f.member, f.byte_length)) AS refs_md5,
               NULL::int AS file_id
        FROM pg_temp.gik_imp_ref f WHERE f.init_time = crec.init_time GROUP BY f.url;
        ANALYZE pg_temp.gik_imp_file;
        SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT FROM pg_temp.gik_imp_file n WHERE n.url = o.url AND n.refs_md5 = o.index_md5))
        INTO n_old, n_same
        FROM gik.file o WHERE o.run_id = r.run_id AND o.valid_to IS NULL;
        SELECT count(*) INTO n_new FROM pg_temp.gik_imp_file;
        IF n_old = n_new AND n_same = n_new AND r.version > 0 THEN
            new_ver := r.version;
        ELSE
            new_ver := r.version + 1;
            PERFORM gik.ensure_partition(d.dataset_id, crec.init_time);
            UPDATE gik.file o SET valid_to = new_ver WHERE o.run_id = r.run_id AND o.valid_to IS NULL;
            WITH ins AS (
                INSERT INTO gik.file (run_id, source, step, member, url, found, index_size, index_md5, valid_from)
                SELECT r.run_id, 'imported', n.step, n.member, n.url, true, NULL, n.refs_md5, new_ver
                FROM pg_temp.gik_imp_file n ORDER BY n.step, n.member, n.url
                RETURNING file_id, url)
            UPDATE pg_temp.gik_imp_file n SET file_id = ins.file_id FROM ins WHERE ins.url = n.url;
            INSERT INTO gik.chunk_pack (dataset_id, init_time, run_id, file_id, member, field_ids, window_ids, offsets, lengths)
            SELECT d.dataset_id, crec.init_time, r.run_id, n.file_id, f.member,
                   array_agg(f.field_id ORDER BY f.byte_offset, f.key), array_agg(f.window_id ORDER BY f.byte_offset, f.key),
                   array_agg(f.byte_offset ORDER BY f.byte_offset, f.key), array_agg(f.byte_length::int4 ORDER BY f.byte_offset, f.key)
            FROM pg_temp.gik_imp_ref f JOIN pg_temp.gik_imp_file n ON n.url = f.url
            WHERE f.init_time = crec.init_time
            GROUP BY n.file_id, f.member;
            INSERT INTO gik.run_version (run_id, version, files_added, files_changed, refs, note)
            VALUES (r.run_id, new_ver, n_new - n_same, n_old - n_same,
                    (SELECT count(*) FROM pg_temp.gik_imp_ref f WHERE f.init_time = crec.init_time),
                    format('imported from %s', p_source));
        END IF;
        tmpl_bytes := CASE WHEN p_learn THEN gik.learn_templates(d.dataset_id, r.run_id) ELSE 0 END;
        SELECT coalesce(sum(cardinality(p.offsets)), 0) INTO n_refs
        FROM gik.chunk_pack p JOIN gik.file fi ON fi.file_id = p.file_id AND fi.valid_to IS NULL
        WHERE p.dataset_id = d.dataset_id AND p.init_time = crec.init_time AND p.run_id = r.run_id;
        UPDATE gik.run x SET
            version = new_ver, status = 'complete',
            selection = jsonb_build_object('imported', p_source, 'variables',
                (SELECT jsonb_agg(DISTINCT f.variable) FROM pg_temp.gik_imp_ref f WHERE f.init_time = crec.init_time)),
            files_expected = n_new, files_found = n_new, files_missing = 0, refs = n_refs,
            index_bytes = coalesce(p_bytes, 0), grib_bytes = tmpl_bytes,
            started = t0, finished = clock_timestamp(), fetch_ms = 0,
            total_ms = extract(epoch FROM clock_timestamp() - t0) * 1000, error = NULL
        WHERE x.run_id = r.run_id
        RETURNING * INTO r;
        DROP TABLE pg_temp.gik_imp_file;
        RETURN NEXT r;
    END LOOP;
END $$;
COMMENT ON FUNCTION gik.import_core(text, text, int8, timestamptz, int, float8[], text, int, bool) IS
'Internal to gik.import_kerchunk() and gik.import_gik_table(): turn the entries staged in pg_temp.gik_imp_e into runs, files, fields, windows and packed references of a dataset (created as index_format ''imported'' when new). Every check runs before anything is written.';

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
-- Ensemble analytics over real[] grids (C, kernels in src/core/ensemble.c): parallel-safe aggregates
-- for exceedance probability, member count, mean, min, max, standard deviation, percentiles and
-- weighted sums, and element-wise arithmetic of a grid with a scalar.
--
-- Common rules of the aggregates:
--   * A NULL grid is skipped: it is not a member. A NULL element of a grid counts as NaN (missing).
--   * NaN cells are skipped per cell (except in grid_sum, where NaN propagates).
--   * All grids of a group must have the same dimensions; the result keeps the first grid's
--     dimensions and lower bounds (exceedance and percentile results get a leading dimension).
--   * A group with no non-NULL grid gives NULL.

-- Shared support functions: one state type (internal) for every ensemble aggregate.

CREATE FUNCTION gik.ens_combinefn(internal, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'gik_ens_combinefn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_combinefn(internal, internal) IS
'Support function of the ensemble aggregates: merge two partial states (parallel aggregation).';

CREATE FUNCTION gik.ens_serialfn(internal) RETURNS bytea
AS 'MODULE_PATHNAME', 'gik_ens_serialfn'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_serialfn(internal) IS
'Support function of the ensemble aggregates: serialize a partial state for the parallel leader.';

CREATE FUNCTION gik.ens_deserialfn(bytea, internal) RETURNS internal
AS 'MODULE_PATHNAME', 'gik_ens_deserialfn'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_deserialfn(bytea, internal) IS
'Support function of the ensemble aggregates: rebuild a partial state sent by a parallel worker.';

-- Exceedance probability.

CREATE FUNCTION gik.ens_exceedance_transfn(internal, real[], real[]) RETURNS internal
AS 'MODULE_PATHNAME', 'gik_ens_exceedance_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_exceedance_transfn(internal, real[], real[]) IS
'Transition function of gik.ens_exceedance: count, per cell, valid members and members >= each threshold.';

CREATE FUNCTION gik.ens_exceedance_finalfn(internal) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_ens_exceedance_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_exceedance_finalfn(internal) IS
'Final function of gik.ens_exceedance: probabilities [threshold][...grid].';

CREATE AGGREGATE gik.ens_exceedance(grid real[], thresholds real[]) (
    SFUNC = gik.ens_exceedance_transfn,
    STYPE = internal,
    FINALFUNC = gik.ens_exceedance_finalfn,
    COMBINEFUNC = gik.ens_combinefn,
    SERIALFUNC = gik.ens_serialfn,
    DESERIALFUNC = gik.ens_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gik.ens_exceedance(real[], real[]) IS
'Exceedance probability per cell and threshold, for all thresholds in one pass: the fraction of members whose value is greater than or equal to (>=) the threshold. A member whose cell is NaN (or a NULL element) is left out of that cell''s denominator; a cell with no valid member gives NaN. NULL grids are skipped and are not members. The result is [threshold][...grid] (a 2-D grid gives [nthr][nj][ni], a 1-D one [nthr][ncells]). Thresholds: a non-empty real[] without NULL or NaN, the same in every row of a group.';

-- Count of valid members.

CREATE FUNCTION gik.ens_count_transfn(internal, real[]) RETURNS internal
AS 'MODULE_PATHNAME', 'gik_ens_count_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_count_transfn(internal, real[]) IS
'Transition function of gik.ens_count: count valid (non-NaN, non-NULL) members per cell.';

CREATE FUNCTION gik.ens_count_finalfn(internal) RETURNS int[]
AS 'MODULE_PATHNAME', 'gik_ens_count_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_count_finalfn(internal) IS
'Final function of gik.ens_count: valid members per cell.';

CREATE AGGREGATE gik.ens_count(grid real[]) (
    SFUNC = gik.ens_count_transfn,
    STYPE = internal,
    FINALFUNC = gik.ens_count_finalfn,
    COMBINEFUNC = gik.ens_combinefn,
    SERIALFUNC = gik.ens_serialfn,
    DESERIALFUNC = gik.ens_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gik.ens_count(real[]) IS
'Number of members with a valid (non-NaN, non-NULL) value, per cell, as int[] shaped like the grids. NULL grids are skipped; count(*) counts rows.';

-- Mean.

CREATE FUNCTION gik.ens_mean_transfn(internal, real[]) RETURNS internal
AS 'MODULE_PATHNAME', 'gik_ens_mean_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_mean_transfn(internal, real[]) IS
'Transition function of gik.ens_mean: double sum and count of valid values per cell.';

CREATE FUNCTION gik.ens_mean_finalfn(internal) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_ens_mean_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_mean_finalfn(internal) IS
'Final function of gik.ens_mean.';

CREATE AGGREGATE gik.ens_mean(grid real[]) (
    SFUNC = gik.ens_mean_transfn,
    STYPE = internal,
    FINALFUNC = gik.ens_mean_finalfn,
    COMBINEFUNC = gik.ens_combinefn,
    SERIALFUNC = gik.ens_serialfn,
    DESERIALFUNC = gik.ens_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gik.ens_mean(real[]) IS
'Ensemble mean per cell (double accumulation), NaN cells skipped; NaN where no member is valid. NULL grids are skipped.';

-- Minimum and maximum.

CREATE FUNCTION gik.ens_min_transfn(internal, real[]) RETURNS internal
AS 'MODULE_PATHNAME', 'gik_ens_min_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_min_transfn(internal, real[]) IS
'Transition function of gik.ens_min: running minimum of valid values per cell.';

CREATE FUNCTION gik.ens_max_transfn(internal, real[]) RETURNS internal
AS 'MODULE_PATHNAME', 'gik_ens_max_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_max_transfn(internal, real[]) IS
'Transition function of gik.ens_max: running maximum of valid values per cell.';

CREATE FUNCTION gik.ens_extreme_finalfn(internal) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_ens_extreme_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_extreme_finalfn(internal) IS
'Final function of gik.ens_min and gik.ens_max.';

CREATE AGGREGATE gik.ens_min(grid real[]) (
    SFUNC = gik.ens_min_transfn,
    STYPE = internal,
    FINALFUNC = gik.ens_extreme_finalfn,
    COMBINEFUNC = gik.ens_combinefn,
    SERIALFUNC = gik.ens_serialfn,
    DESERIALFUNC = gik.ens_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gik.ens_min(real[]) IS
'Ensemble minimum per cell, NaN cells skipped; NaN where no member is valid. NULL grids are skipped.';

CREATE AGGREGATE gik.ens_max(grid real[]) (
    SFUNC = gik.ens_max_transfn,
    STYPE = internal,
    FINALFUNC = gik.ens_extreme_finalfn,
    COMBINEFUNC = gik.ens_combinefn,
    SERIALFUNC = gik.ens_serialfn,
    DESERIALFUNC = gik.ens_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gik.ens_max(real[]) IS
'Ensemble maximum per cell, NaN cells skipped; NaN where no member is valid. NULL grids are skipped.';

-- Standard deviation (Welford per row, Chan et al. to combine).

CREATE FUNCTION gik.ens_moments_transfn(internal, real[]) RETURNS internal
AS 'MODULE_PATHNAME', 'gik_ens_moments_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_moments_transfn(internal, real[]) IS
'Transition function of gik.ens_stddev and gik.ens_stddev_pop: Welford count, mean and sum of squared deviations per cell, in double.';

CREATE FUNCTION gik.ens_stddev_finalfn(internal) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_ens_stddev_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_stddev_finalfn(internal) IS
'Final function of gik.ens_stddev: sample standard deviation (n - 1).';

CREATE FUNCTION gik.ens_stddev_pop_finalfn(internal) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_ens_stddev_pop_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_stddev_pop_finalfn(internal) IS
'Final function of gik.ens_stddev_pop: population standard deviation (n).';

CREATE AGGREGATE gik.ens_stddev(grid real[]) (
    SFUNC = gik.ens_moments_transfn,
    STYPE = internal,
    FINALFUNC = gik.ens_stddev_finalfn,
    COMBINEFUNC = gik.ens_combinefn,
    SERIALFUNC = gik.ens_serialfn,
    DESERIALFUNC = gik.ens_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gik.ens_stddev(real[]) IS
'Ensemble sample standard deviation per cell, divisor n - 1 (numpy ddof=1, like SQL stddev_samp), NaN cells skipped; NaN where fewer than 2 members are valid. NULL grids are skipped.';

CREATE AGGREGATE gik.ens_stddev_pop(grid real[]) (
    SFUNC = gik.ens_moments_transfn,
    STYPE = internal,
    FINALFUNC = gik.ens_stddev_pop_finalfn,
    COMBINEFUNC = gik.ens_combinefn,
    SERIALFUNC = gik.ens_serialfn,
    DESERIALFUNC = gik.ens_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gik.ens_stddev_pop(real[]) IS
'Ensemble population standard deviation per cell, divisor n (numpy ddof=0, like SQL stddev_pop), NaN cells skipped; NaN where no member is valid, 0 where one is. NULL grids are skipped.';

-- Percentiles (keeps every member's grid).

CREATE FUNCTION gik.ens_percentile_transfn(internal, real[], float8[]) RETURNS internal
AS 'MODULE_PATHNAME', 'gik_ens_percentile_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_percentile_transfn(internal, real[], float8[]) IS
'Transition function of gik.ens_percentile: keep a copy of every member''s grid.';

CREATE FUNCTION gik.ens_percentile_finalfn(internal) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_ens_percentile_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.ens_percentile_finalfn(internal) IS
'Final function of gik.ens_percentile: percentiles [fraction][...grid] by selection over each cell''s members.';

CREATE AGGREGATE gik.ens_percentile(grid real[], fractions float8[]) (
    SFUNC = gik.ens_percentile_transfn,
    STYPE = internal,
    FINALFUNC = gik.ens_percentile_finalfn,
    COMBINEFUNC = gik.ens_combinefn,
    SERIALFUNC = gik.ens_serialfn,
    DESERIALFUNC = gik.ens_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gik.ens_percentile(real[], float8[]) IS
'Ensemble percentiles per cell for several fractions in [0, 1] (0.9 = 90th percentile), linear interpolation between the closest ranks exactly like numpy.percentile''s default and percentile_cont: with n valid values sorted, h = f * (n - 1) and the result is v[floor(h)] + (h - floor(h)) * (v[floor(h) + 1] - v[floor(h)]). NaN cells are skipped per cell (numpy.nanpercentile); NaN where no member is valid. NULL grids are skipped. The result is [fraction][...grid]. Keeps every member''s grid in memory (4 bytes per cell and member).';

-- Weighted element-wise sum.

CREATE FUNCTION gik.grid_sum_transfn(internal, real[]) RETURNS internal
AS 'MODULE_PATHNAME', 'gik_grid_sum_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.grid_sum_transfn(internal, real[]) IS
'Transition function of gik.grid_sum(real[]): element-wise double sum.';

CREATE FUNCTION gik.grid_sum_transfn(internal, real[], float8) RETURNS internal
AS 'MODULE_PATHNAME', 'gik_grid_sum_transfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.grid_sum_transfn(internal, real[], float8) IS
'Transition function of gik.grid_sum(real[], float8): element-wise double sum of weight * grid.';

CREATE FUNCTION gik.grid_sum_finalfn(internal) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_grid_sum_finalfn'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.grid_sum_finalfn(internal) IS
'Final function of gik.grid_sum.';

CREATE AGGREGATE gik.grid_sum(grid real[]) (
    SFUNC = gik.grid_sum_transfn,
    STYPE = internal,
    FINALFUNC = gik.grid_sum_finalfn,
    COMBINEFUNC = gik.ens_combinefn,
    SERIALFUNC = gik.ens_serialfn,
    DESERIALFUNC = gik.ens_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gik.grid_sum(real[]) IS
'Element-wise sum of the grids of a group (double accumulation). NaN propagates: a cell that is NaN (or NULL) in any grid is NaN in the result. NULL grids are skipped.';

CREATE AGGREGATE gik.grid_sum(grid real[], weight float8) (
    SFUNC = gik.grid_sum_transfn,
    STYPE = internal,
    FINALFUNC = gik.grid_sum_finalfn,
    COMBINEFUNC = gik.ens_combinefn,
    SERIALFUNC = gik.ens_serialfn,
    DESERIALFUNC = gik.ens_deserialfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE gik.grid_sum(real[], float8) IS
'Weighted element-wise sum, sum(weight * grid), of the grids of a group (double accumulation), e.g. a window total of a run-accumulated field as grid_sum(tp, CASE step WHEN b THEN 1 WHEN a THEN -1 END). NaN propagates: a cell that is NaN (or NULL) in any grid is NaN in the result. Rows with a NULL grid or a NULL weight are skipped; a NaN weight is an error.';

-- Element-wise arithmetic with a scalar (computed in double, rounded to real; NaN and NULL elements stay).

CREATE FUNCTION gik.grid_add(grid real[], value float8) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_grid_add'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gik.grid_add(real[], float8) IS
'grid + value element by element, keeping dimensions and lower bounds; NaN and NULL elements stay as they are. Also the operator real[] OPERATOR(gik.+) float8.';

CREATE FUNCTION gik.grid_sub(grid real[], value float8) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_grid_sub'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gik.grid_sub(real[], float8) IS
'grid - value element by element, keeping dimensions and lower bounds; NaN and NULL elements stay as they are. Also the operator real[] OPERATOR(gik.-) float8.';

CREATE FUNCTION gik.grid_mul(grid real[], value float8) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_grid_mul'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gik.grid_mul(real[], float8) IS
'grid * value element by element (e.g. metres to millimetres with 1000), keeping dimensions and lower bounds; NaN and NULL elements stay as they are. Also the operator real[] OPERATOR(gik.*) float8.';

CREATE OPERATOR gik.+ (LEFTARG = real[], RIGHTARG = float8, FUNCTION = gik.grid_add);
COMMENT ON OPERATOR gik.+ (real[], float8) IS 'Add a scalar to every element of a grid (gik.grid_add).';

CREATE OPERATOR gik.- (LEFTARG = real[], RIGHTARG = float8, FUNCTION = gik.grid_sub);
COMMENT ON OPERATOR gik.- (real[], float8) IS 'Subtract a scalar from every element of a grid (gik.grid_sub).';

CREATE OPERATOR gik.* (LEFTARG = real[], RIGHTARG = float8, FUNCTION = gik.grid_mul);
COMMENT ON OPERATOR gik.* (real[], float8) IS 'Multiply every element of a grid by a scalar (gik.grid_mul).';

CREATE FUNCTION gik.grid_clip(grid real[], lo float8, hi float8 DEFAULT NULL) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_grid_clip'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.grid_clip(real[], float8, float8) IS
'Limit every element to [lo, hi] (numpy.clip), keeping dimensions and lower bounds; a NULL bound is no bound, NaN and NULL elements stay as they are, and a NULL grid gives NULL. grid_clip(g, 0) clips negative values to 0.';
-- Ensemble analytics: exact accumulation windows from the stored window metadata, and exceedance products.

CREATE FUNCTION gik.grid_band(grids real[], band int) RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_grid_band'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION gik.grid_band(real[], int) IS
'Band n (1-based) of a real[bands][nj][ni] stack, such as one threshold of gik.ens_exceedance, as a real[nj][ni] grid.';

-- Exact cover of [a, b] by accumulation windows: a shortest chain of windows whose signed sum telescopes to [a, b].
CREATE FUNCTION gik.cover_window(starts int[], ends int[], a int, b int)
RETURNS TABLE (idx int, weight int)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n        int := coalesce(cardinality(starts), 0);
    nodes    int[];
    via_node int[];
    via_edge int[];
    via_sign int[];
    frontier int[];
    next     int[];
    node     int;
    k        int;
BEGIN
    IF a IS NULL OR b IS NULL OR a >= b THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid accumulation window [%s, %s]', a, b),
            DETAIL = 'The window must end after it starts.';
    END IF;
    -- Pass 1 sums non-overlapping windows only; pass 2 also subtracts (cumulative fields such as ECMWF tp).
    FOR pass IN 1..2 LOOP
        nodes := ARRAY[a]; via_node := ARRAY[NULL::int]; via_edge := ARRAY[NULL::int]; via_sign := ARRAY[NULL::int];
        frontier := ARRAY[a];
        WHILE cardinality(frontier) > 0 AND NOT b = ANY (nodes) LOOP
            next := '{}';
            FOREACH node IN ARRAY frontier LOOP
                FOR i IN 1..n LOOP
                    CONTINUE WHEN starts[i] >= ends[i];
                    IF starts[i] = node AND NOT ends[i] = ANY (nodes) THEN
                        nodes := nodes || ends[i]; via_node := via_node || node;
                        via_edge := via_edge || i; via_sign := via_sign || 1; next := next || ends[i];
                    ELSIF pass = 2 AND ends[i] = node AND NOT starts[i] = ANY (nodes) THEN
                        nodes := nodes || starts[i]; via_node := via_node || node;
                        via_edge := via_edge || i; via_sign := via_sign || -1; next := next || starts[i];
                    END IF;
                END LOOP;
            END LOOP;
            frontier := next;
        END LOOP;
        IF b = ANY (nodes) THEN
            k := array_position(nodes, b);
            WHILE via_node[k] IS NOT NULL LOOP
                idx := via_edge[k]; weight := via_sign[k];
                RETURN NEXT;
                k := array_position(nodes, via_node[k]);
            END LOOP;
            RETURN;
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION gik.cover_window(int[], int[], int, int) IS
'Which windows [starts[i], ends[i]] make up exactly [a, b], with weights +1/-1: first a chain of consecutive non-overlapping windows (fewest messages), else a chain that also subtracts windows sharing an end (tp[b] - tp[a] for fields accumulated from the start). No rows when no exact combination exists.';

-- Millimetres per unit of a precipitation field.
CREATE FUNCTION gik.mm_per_unit(units text) RETURNS float8
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN CASE units WHEN 'm' THEN 1000 WHEN 'kg m**-2' THEN 1 WHEN 'kg m-2' THEN 1 WHEN 'mm' THEN 1 END;
END $$;
COMMENT ON FUNCTION gik.mm_per_unit(text) IS 'Millimetres per unit of precipitation (m gives 1000; kg m**-2 and mm give 1); NULL when unknown.';

-- The messages and signs that give each member's accumulation over [window_start, window_end] hours.
CREATE FUNCTION gik.accumulation_refs(
    dataset text, init_time timestamptz, window_start float8, window_end float8,
    members int[] DEFAULT NULL, variable text DEFAULT NULL, level text DEFAULT NULL, missing_ok bool DEFAULT false)
RETURNS TABLE (member int, ref gik.ref, weight float8, step_start float8, step_end float8, mm_per_unit float8)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    d       gik.dataset;
    m       int;
    a       int := round(window_start * 60);
    b       int := round(window_end * 60);
    w       record;
    found_n int;
BEGIN
    d := gik.dataset_named(accumulation_refs.dataset);
    IF window_start IS NULL OR window_end IS NULL OR window_end <= window_start THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('invalid accumulation window [%s, %s] h', window_start, window_end),
            DETAIL = 'The window must end after it starts.';
    END IF;
    variable := coalesce(variable, d.precip_variable);
    level := coalesce(level, d.precip_level);
    IF variable IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('dataset "%s" names no precipitation field', d.name),
            HINT = 'Pass variable (and level), or set precip_variable in gik.define_dataset().';
    END IF;
    -- Members: as asked; else the dataset's (missing ones reported) with missing_ok, or the run's.
    FOR m IN
        SELECT x FROM unnest(coalesce(accumulation_refs.members,
                                      CASE WHEN missing_ok THEN d.members END,
                                      (SELECT array_agg(DISTINCT c.member) FROM gik.chunk_ref c
                                       WHERE c.dataset_id = d.dataset_id AND c.init_time = accumulation_refs.init_time))) x
        ORDER BY x
    LOOP
        found_n := 0;
        FOR w IN
            WITH win AS (
                SELECT DISTINCT ON (c.window_id) c.url, c.byte_offset, c.byte_length, w.start_min, w.end_min, f.units
                FROM gik.chunk_ref c
                JOIN gik.time_window w USING (window_id)
                JOIN gik.field f USING (field_id)
                WHERE c.dataset_id = d.dataset_id AND c.init_time = accumulation_refs.init_time
                  AND c.member = m AND c.variable = accumulation_refs.variable
                  AND (accumulation_refs.level IS NULL OR c.level = accumulation_refs.level) AND c.stat = 'acc'
                ORDER BY c.window_id, c.byte_offset),
            arr AS (
                SELECT array_agg(start_min ORDER BY start_min, end_min) AS s, array_agg(end_min ORDER BY start_min, end_min) AS e,
                       array_agg(url ORDER BY start_min, end_min) AS u, array_agg(byte_offset ORDER BY start_min, end_min) AS o,
                       array_agg(byte_length ORDER BY start_min, end_min) AS l, array_agg(units ORDER BY start_min, end_min) AS un
                FROM win)
            SELECT arr.u[cv.idx] AS url, arr.o[cv.idx] AS byte_offset, arr.l[cv.idx] AS byte_length,
                   arr.s[cv.idx] AS start_min, arr.e[cv.idx] AS end_min, arr.un[cv.idx] AS units, cv.weight
            FROM arr, gik.cover_window(arr.s, arr.e, a, b) cv
        LOOP
            found_n := found_n + 1;
            member := m;
            ref := ROW(w.url, w.byte_offset, w.byte_length)::gik.ref;
            weight := w.weight;
            step_start := w.start_min / 60.0;
            step_end := w.end_min / 60.0;
            mm_per_unit := gik.mm_per_unit(w.units);
            IF mm_per_unit IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
                    MESSAGE = format('cannot convert %s of dataset "%s" from "%s" to mm', variable, d.name, coalesce(w.units, 'unknown units')),
                    HINT = 'Learn the field''s template first (gik.ingest_run with learn_templates).';
            END IF;
            RETURN NEXT;
        END LOOP;
        IF found_n = 0 THEN
            IF NOT missing_ok THEN
                RAISE EXCEPTION USING ERRCODE = 'no_data_found',
                    MESSAGE = format('the %s windows of member %s of dataset "%s" at %s cannot cover [%s, %s] h exactly',
                                     variable, m, d.name, accumulation_refs.init_time, window_start, window_end),
                    DETAIL = coalesce('Available windows (h): ' || (
                        SELECT string_agg(format('%s-%s', trim_scale(w2.start_min / 60.0), trim_scale(w2.end_min / 60.0)), ', ' ORDER BY w2.start_min, w2.end_min)
                        FROM (SELECT DISTINCT tw.start_min, tw.end_min FROM gik.chunk_ref c
                              JOIN gik.time_window tw USING (window_id)
                              WHERE c.dataset_id = d.dataset_id AND c.init_time = accumulation_refs.init_time
                                AND c.member = m AND c.variable = accumulation_refs.variable AND c.stat = 'acc') w2) || '.',
                        'No window of this field was ingested for this member.'),
                    HINT = 'Check that the run is complete (gik.run) and that the window matches the dataset''s accumulation periods.';
            END IF;
            member := m; ref := NULL; weight := NULL; step_start := NULL; step_end := NULL; mm_per_unit := NULL;
            RETURN NEXT;
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION gik.accumulation_refs(text, timestamptz, float8, float8, int[], text, text, bool) IS
'For each member (as asked; by default the run''s members, or the dataset''s with missing_ok), the messages whose signed sum is exactly the accumulation over [window_start, window_end] hours, chosen from the windows stored at ingestion (GEFS: consecutive 3/6-hour buckets, never 0-3 plus 0-6; ECMWF: tp[b] - tp[a]). A member that cannot be covered exactly raises an error, or with missing_ok gets one row with a NULL ref.';

-- Each member's precipitation over [window_start, window_end] hours, in mm, decoded in one batch.
CREATE FUNCTION gik.accumulations(
    dataset text, init_time timestamptz, window_start float8, window_end float8,
    region gik.bbox DEFAULT NULL, lon text DEFAULT '-180..180', members int[] DEFAULT NULL,
    variable text DEFAULT NULL, level text DEFAULT NULL, missing_ok bool DEFAULT false)
RETURNS TABLE (member int, grid gik.grid_desc, total real[])
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    WITH plan AS (
        SELECT p.* FROM gik.accumulation_refs(accumulations.dataset, accumulations.init_time, accumulations.window_start,
                                              accumulations.window_end, accumulations.members, accumulations.variable,
                                              accumulations.level, accumulations.missing_ok) p),
    arr AS (
        SELECT array_agg(p.ref) AS refs, array_agg(p.member) AS members, array_agg(p.weight) AS weights,
               array_agg(p.mm_per_unit) AS scales
        FROM plan p WHERE p.ref IS NOT NULL),
    -- decode_batch in the select list streams its rows; in FROM they would be collected first
    decoded AS (
        SELECT arr.members, arr.weights, arr.scales,
               gik.decode_batch(arr.refs, accumulations.lon, accumulations.region) AS d
        FROM arr OFFSET 0)
    SELECT x.members[(x.d).ord], (array_agg((x.d).grid))[1],
           gik.grid_mul(CASE WHEN min(x.weights[(x.d).ord]) < 0
                             THEN gik.grid_clip(gik.grid_sum((x.d).vals, x.weights[(x.d).ord]), 0)
                             ELSE gik.grid_sum((x.d).vals, x.weights[(x.d).ord]) END,
                        max(x.scales[(x.d).ord]))
    FROM decoded x
    GROUP BY x.members[(x.d).ord]
    UNION ALL
    SELECT p.member, NULL::gik.grid_desc, NULL::real[] FROM plan p WHERE p.ref IS NULL
    ORDER BY 1;
END;
COMMENT ON FUNCTION gik.accumulations(text, timestamptz, float8, float8, gik.bbox, text, int[], text, text, bool) IS
'Each member''s total precipitation over [window_start, window_end] hours in mm, for a region (or the globe) in a longitude convention: the exact messages from gik.accumulation_refs, all decoded in one gik.decode_batch call, summed with their signs; differences (cumulative fields) are clipped at 0. With missing_ok, members that cannot be covered come back with a NULL total.';

-- One member's precipitation over a window, in mm.
CREATE FUNCTION gik.accumulate(
    dataset text, init_time timestamptz, window_start float8, window_end float8, member int,
    region gik.bbox DEFAULT NULL, lon text DEFAULT '-180..180', variable text DEFAULT NULL, level text DEFAULT NULL)
RETURNS real[]
LANGUAGE sql VOLATILE
RETURN (SELECT a.total FROM gik.accumulations(dataset, init_time, window_start, window_end, region, lon,
                                              ARRAY[member], variable, level) a);
COMMENT ON FUNCTION gik.accumulate(text, timestamptz, float8, float8, int, gik.bbox, text, text, text) IS
'One member''s total precipitation over [window_start, window_end] hours, in mm (see gik.accumulations); an error when the stored windows cannot cover it exactly.';

-- Probability of exceedance per threshold for one or several ensembles (a grand ensemble on a common grid).
CREATE FUNCTION gik.exceedance(
    datasets text[], init_time timestamptz, window_start float8, window_end float8, thresholds real[],
    region gik.bbox DEFAULT NULL, lon text DEFAULT '-180..180')
RETURNS TABLE (threshold real, probability real[], grid gik.grid_desc, members_used int, members_expected int,
               members_missing text[])
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    probs    real[];
    g        gik.grid_desc;
    n_used   int;
    n_exp    int;
    missing  text[];
    n_grids  int;
BEGIN
    IF thresholds IS NULL OR cardinality(thresholds) = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'no thresholds given';
    END IF;
    IF to_regclass('pg_temp.gik_totals') IS NULL THEN
        CREATE TEMP TABLE gik_totals (dataset text, member int, grid gik.grid_desc, total real[]) ON COMMIT DROP;
    ELSE
        TRUNCATE pg_temp.gik_totals;
    END IF;
    INSERT INTO gik_totals
    SELECT ds, a.member, a.grid, a.total
    FROM unnest(datasets) ds,
         LATERAL gik.accumulations(ds, init_time, window_start, window_end, region, lon, missing_ok => true) a;

    SELECT count(DISTINCT t.grid) INTO n_grids FROM gik_totals t WHERE t.total IS NOT NULL;
    IF n_grids > 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
            MESSAGE = 'the ensembles are on different grids',
            DETAIL = 'Grids: ' || (SELECT string_agg(DISTINCT t.dataset || ' ' || t.grid::text, '; ') FROM gik_totals t WHERE t.total IS NOT NULL) || '.',
            HINT = 'Combine ensembles on the same grid, after choosing one longitude convention (lon => ''-180..180'').';
    END IF;
    SELECT gik.ens_exceedance(t.total, thresholds), count(t.total) INTO probs, n_used FROM gik_totals t;
    SELECT (t.grid).* INTO g FROM gik_totals t WHERE t.total IS NOT NULL LIMIT 1;
    SELECT sum(coalesce(cardinality(d.members), 0)) INTO n_exp FROM gik.dataset d WHERE d.name = ANY (datasets);
    SELECT array_agg(x ORDER BY x) INTO missing FROM (
        SELECT d.name || ':' || m AS x FROM gik.dataset d CROSS JOIN LATERAL unnest(d.members) m
        WHERE d.name = ANY (datasets)
          AND NOT EXISTS (SELECT FROM gik_totals t WHERE t.dataset = d.name AND t.member = m AND t.total IS NOT NULL)) s;
    IF n_used = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'no_data_found',
            MESSAGE = format('no member of %s at %s covers [%s, %s] h', array_to_string(datasets, ', '), init_time, window_start, window_end),
            HINT = 'Check that the runs are ingested (gik.run).';
    END IF;
    FOR i IN 1..cardinality(thresholds) LOOP
        threshold := thresholds[i];
        probability := gik.grid_band(probs, i);
        grid := g;
        members_used := n_used;
        members_expected := n_exp;
        members_missing := coalesce(missing, '{}');
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION gik.exceedance(text[], timestamptz, float8, float8, real[], gik.bbox, text) IS
'The one-call product: per threshold, the fraction of members whose precipitation over [window_start, window_end] hours is >= the threshold (mm), as a grid with its description, for one dataset or a grand ensemble of several on a common grid. Members that cannot be used (missing files or windows) are listed in members_missing and not counted in members_used.';

CREATE FUNCTION gik.exceedance(
    dataset text, init_time timestamptz, window_start float8, window_end float8, thresholds real[],
    region gik.bbox DEFAULT NULL, lon text DEFAULT '-180..180')
RETURNS TABLE (threshold real, probability real[], grid gik.grid_desc, members_used int, members_expected int,
               members_missing text[])
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT * FROM gik.exceedance(CASE WHEN left(dataset, 1) = '{' THEN dataset::text[] ELSE ARRAY[dataset] END,
                                 init_time, window_start, window_end, thresholds, region, lon);
END;
COMMENT ON FUNCTION gik.exceedance(text, timestamptz, float8, float8, real[], gik.bbox, text) IS
'gik.exceedance() for one dataset (a literal such as ''{gefs_0p25,ecmwf_ens_0p25}'' is read as a list).';
-- Removing runs: one run's references and catalog rows.

-- Drop one run of a dataset: its packed references, files, versions and run row.
CREATE FUNCTION gik.drop_run(dataset text, init_time timestamptz) RETURNS int8
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    r     gik.run;
    n     int8;
BEGIN
    SELECT x.* INTO r FROM gik.run x JOIN gik.dataset d USING (dataset_id)
    WHERE d.name = drop_run.dataset AND x.init_time = drop_run.init_time FOR UPDATE OF x;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(r.dataset_id, (extract(epoch FROM r.init_time) / 3600)::int);
    DELETE FROM gik.chunk_pack p
    WHERE p.dataset_id = r.dataset_id AND p.init_time = r.init_time AND p.run_id = r.run_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM gik.run WHERE run_id = r.run_id;
    RETURN n;
END $$;
COMMENT ON FUNCTION gik.drop_run(text, timestamptz) IS
'Remove one run of a dataset (all versions): its packed chunk references, files, version history and run row. Returns the packed rows removed.';

-- Drop a dataset with all its runs, references, fields and partitions.
CREATE FUNCTION gik.drop_dataset(dataset text) RETURNS bool
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id smallint;
BEGIN
    SELECT dataset_id INTO id FROM gik.dataset WHERE name = drop_dataset.dataset FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM gik.drop_pack_partition(format('chunk_pack_%s', id));
    DELETE FROM gik.dataset WHERE dataset_id = id;
    RETURN true;
END $$;
COMMENT ON FUNCTION gik.drop_dataset(text) IS
'Remove a dataset and everything it holds: its chunk_pack partitions (dropped, not deleted), runs, files, fields and file series.';

-- Retention: whole days of a dataset's runs are removed by dropping their chunk_pack partitions.

-- The day partitions of a dataset's chunk_pack that lie entirely before a cutoff.
CREATE FUNCTION gik.expired_partitions(dataset text DEFAULT NULL, as_of timestamptz DEFAULT now(),
                                       cutoff timestamptz DEFAULT NULL)
RETURNS TABLE (dataset text, partition_name text, day date, cutoff timestamptz, bytes int8)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT d.name, c.relname::text, to_date(substring(c.relname FROM '_(\d{8})$'), 'YYYYMMDD'), x.cutoff,
           pg_total_relation_size(c.oid)
    FROM gik.dataset d
    CROSS JOIN LATERAL (SELECT coalesce(expired_partitions.cutoff, expired_partitions.as_of - d.retention) AS cutoff) x
    JOIN pg_inherits i ON i.inhparent = to_regclass(format('gik.chunk_pack_%s', d.dataset_id))
    JOIN pg_class c ON c.oid = i.inhrelid
    WHERE (expired_partitions.dataset IS NULL OR d.name = expired_partitions.dataset)
      AND x.cutoff IS NOT NULL
      AND c.relname ~ ('^chunk_pack_' || d.dataset_id || '_\d{8}$')
      AND (to_date(substring(c.relname FROM '_(\d{8})$'), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' <= x.cutoff
    ORDER BY 1, 3;
END;
COMMENT ON FUNCTION gik.expired_partitions(text, timestamptz, timestamptz) IS
'The chunk_pack day partitions (UTC days) that end at or before the cutoff: the given one, else as_of minus the dataset''s retention (datasets without retention keep everything), with their size in bytes. What gik.drop_runs_before and gik.apply_retention drop.';

-- Drop a dataset's runs of every UTC day that ends at or before the cutoff: partitions are dropped, not deleted from.
CREATE FUNCTION gik.drop_runs_before(dataset text, cutoff timestamptz)
RETURNS TABLE (partition_name text, day date, runs int8, bytes int8)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    id       smallint;
    boundary timestamptz;
    p        record;
BEGIN
    id := (gik.dataset_named(drop_runs_before.dataset)).dataset_id;
    IF drop_runs_before.cutoff IS NULL OR NOT isfinite(drop_runs_before.cutoff) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'the cutoff of gik.drop_runs_before must be a finite time',
            DETAIL = 'Runs of the UTC days that end at or before the cutoff are dropped.';
    END IF;
    -- Whole UTC days only: a day partition is dropped when it ends at or before the cutoff.
    boundary := date_trunc('day', drop_runs_before.cutoff AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    FOR p IN SELECT e.partition_name, e.day, e.bytes
             FROM gik.expired_partitions(drop_runs_before.dataset, cutoff => boundary) e ORDER BY e.day
    LOOP
        DELETE FROM gik.run r
        WHERE r.dataset_id = id AND r.init_time >= p.day::timestamp AT TIME ZONE 'UTC'
          AND r.init_time < (p.day + 1)::timestamp AT TIME ZONE 'UTC';
        GET DIAGNOSTICS runs = ROW_COUNT;
        PERFORM gik.drop_pack_partition(p.partition_name);
        partition_name := p.partition_name; day := p.day; bytes := p.bytes;
        RETURN NEXT;
    END LOOP;
    -- Runs of those days without references (hence without a partition).
    DELETE FROM gik.run r WHERE r.dataset_id = id AND r.init_time < boundary;
    GET DIAGNOSTICS runs = ROW_COUNT;
    IF runs > 0 THEN
        partition_name := NULL; day := NULL; bytes := 0;
        RETURN NEXT;
    END IF;
END $$;
COMMENT ON FUNCTION gik.drop_runs_before(text, timestamptz) IS
'Remove a dataset''s runs of every UTC day that ends at or before the cutoff: each day''s chunk_pack partition is dropped (no DELETE of references, no bloat) and its runs'' gik.run rows are deleted with their files and versions. Runs of the cutoff''s own day are kept. One row per dropped partition (and one without a partition for runs that had none).';

-- Apply every dataset's retention (gik.dataset.retention): the procedure to schedule with pg_cron.
CREATE PROCEDURE gik.apply_retention(dataset text DEFAULT NULL, as_of timestamptz DEFAULT now(),
                                     log_retention interval DEFAULT '90 days')
LANGUAGE plpgsql AS $$
-- Procedures that COMMIT cannot carry SET clauses: names are schema-qualified and search_path is pinned
-- with a transaction-local set_config() at the start of each transaction.
DECLARE
    caller_path text := pg_catalog.current_setting('search_path');
    names       text[];
    days        date[];
    cutoffs     timestamptz[];
    p           record;
    n_parts     int := 0;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF apply_retention.dataset IS NOT NULL THEN
        PERFORM gik.dataset_named(apply_retention.dataset);
    END IF;
    SELECT array_agg(e.dataset ORDER BY e.dataset, e.day), array_agg(e.day ORDER BY e.dataset, e.day)
    INTO names, days
    FROM gik.expired_partitions(apply_retention.dataset, apply_retention.as_of) e;
    -- One day per transaction: each DROP holds its locks only briefly.
    FOR i IN 1 .. coalesce(cardinality(names), 0) LOOP
        FOR p IN SELECT * FROM gik.drop_runs_before(names[i], ((days[i] + 1)::timestamp AT TIME ZONE 'UTC')) LOOP
            n_parts := n_parts + (p.partition_name IS NOT NULL)::int;
            RAISE NOTICE 'gik.apply_retention: %: dropped % (% runs, % bytes)', names[i],
                coalesce(p.partition_name, 'runs without references'), p.runs, p.bytes;
        END LOOP;
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    END LOOP;
    -- Runs without references older than the cutoff, then the ingestion log.
    SELECT array_agg(d.name ORDER BY d.name), array_agg(apply_retention.as_of - d.retention ORDER BY d.name)
    INTO names, cutoffs
    FROM gik.dataset d
    WHERE d.retention IS NOT NULL AND (apply_retention.dataset IS NULL OR d.name = apply_retention.dataset);
    FOR i IN 1 .. coalesce(cardinality(names), 0) LOOP
        PERFORM gik.drop_runs_before(names[i], cutoffs[i]);
    END LOOP;
    IF apply_retention.log_retention IS NOT NULL THEN
        DELETE FROM gik.ingest_log l WHERE l.status <> 'running' AND l.started < now() - apply_retention.log_retention;
    END IF;
    RAISE NOTICE 'gik.apply_retention: % partitions dropped', n_parts;
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
END $$;
COMMENT ON PROCEDURE gik.apply_retention(text, timestamptz, interval) IS
'Apply the retention of every dataset that has one (gik.dataset.retention), or of one dataset: drop the chunk_pack day partitions that end at or before as_of minus the retention, one day per transaction, with their runs; then delete gik.ingest_log rows older than log_retention (NULL keeps them). Schedule it with pg_cron: CALL gik.apply_retention().';
-- Operations: scheduled ingestion (pg_cron), an ingestion log that survives failed transactions,
-- progress and health views, a run's references as of an earlier version, and one run's references fast.

-- One ingestion attempt of a run (or a failed probe of upstream), committed before and after it runs.
CREATE TABLE gik.ingest_log (
    log_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    call_id        bigint,
    call_pos       int,
    call_runs      int,
    dataset_id     smallint NOT NULL REFERENCES gik.dataset ON DELETE CASCADE,
    init_time      timestamptz,
    reason         text,
    status         text NOT NULL CHECK (status IN ('running', 'complete', 'partial', 'failed')),
    outcome        text CHECK (outcome IN ('new version', 'unchanged', 'failed', 'interrupted')),
    version_before int,
    version        int,
    files_expected int,
    files_found    int,
    files_missing  int,
    refs           int8,
    index_bytes    int8,
    grib_bytes     int8,
    started        timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished       timestamptz,
    total_ms       float8,
    sqlstate       text,
    error          text,
    error_detail   text,
    backend_pid    int NOT NULL DEFAULT pg_backend_pid(),
    username       text NOT NULL DEFAULT current_user,
    CHECK ((status = 'running') = (finished IS NULL))
);
CREATE INDEX ON gik.ingest_log (dataset_id, init_time, log_id);
CREATE INDEX ON gik.ingest_log (call_id);
CREATE INDEX ON gik.ingest_log (log_id) WHERE status = 'running';
COMMENT ON TABLE gik.ingest_log IS
'One row per ingestion attempt made by gik.ingest_latest: committed as running before the run is ingested, then updated with its status (complete, partial, failed), outcome (new version, unchanged, failed, interrupted), files expected/found/missing, references, index and GRIB bytes read, timings, and the SQLSTATE, message and detail of an error. A failed attempt rolls back its own catalog changes but keeps this row. init_time is NULL when probing upstream failed.';

-- Numbers the calls of gik.ingest_latest.
CREATE SEQUENCE gik.ingest_call_seq;
COMMENT ON SEQUENCE gik.ingest_call_seq IS 'Identifies one call of gik.ingest_latest in gik.ingest_log.call_id.';

-- Mark attempts whose session ended or was cancelled while ingesting as failed (interrupted).
CREATE FUNCTION gik.ingest_log_cleanup() RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n int;
BEGIN
    -- A live attempt holds its row lock for the whole ingestion (see gik.ingest_log_run); the grace period
    -- covers the instant between committing the running row and taking that lock.
    WITH stale AS (
        SELECT l.log_id FROM gik.ingest_log l
        WHERE l.status = 'running' AND l.started < clock_timestamp() - interval '5 seconds'
        FOR UPDATE SKIP LOCKED)
    UPDATE gik.ingest_log l
    SET status = 'failed', outcome = 'interrupted', finished = clock_timestamp(),
        total_ms = extract(epoch FROM clock_timestamp() - l.started) * 1000,
        error = 'the ingestion was interrupted before it finished',
        error_detail = 'Its session ended or its statement was cancelled; nothing of it was committed.'
    FROM stale WHERE l.log_id = stale.log_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION gik.ingest_log_cleanup() IS
'Mark gik.ingest_log rows still running whose ingestion no longer runs (session ended, statement cancelled) as failed with outcome interrupted; returns how many. gik.latest_runs calls it.';

-- What gik.ingest_latest would do with each recent cycle of a dataset, probing upstream for new runs.
CREATE FUNCTION gik.latest_runs(
    dataset text, as_of timestamptz DEFAULT now(), lookback interval DEFAULT '2 days',
    recheck interval DEFAULT '0', max_attempts int DEFAULT 5, retry_after interval DEFAULT '10 minutes',
    probe bool DEFAULT true)
RETURNS TABLE (init_time timestamptz, run_status text, version int, failures int,
               probes int, probes_found int, action text, reason text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    d        gik.dataset;
    times    timestamptz[];
    st       text[] := '{}';
    ver      int[] := '{}';
    nfail    int[] := '{}';
    act      text[] := '{}';
    why      text[] := '{}';
    nprobe   int[] := '{}';
    nfound   int[] := '{}';
    urls     text[] := '{}';
    url_of   int[] := '{}';
    r        record;
    f        record;
    i        int;
    busy     bool;
BEGIN
    d := gik.dataset_named(latest_runs.dataset);
    IF as_of IS NULL OR lookback IS NULL OR lookback <= interval '0' OR recheck IS NULL
       OR max_attempts IS NULL OR max_attempts < 1 OR retry_after IS NULL OR retry_after < interval '0' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'invalid arguments to gik.latest_runs',
            DETAIL = 'as_of must be given, lookback must be positive, max_attempts at least 1 and retry_after not negative.';
    END IF;
    PERFORM gik.ingest_log_cleanup();

    -- The dataset's cycles in (as_of - lookback, as_of], newest first, not older than its retention.
    SELECT array_agg(t.t ORDER BY t.t DESC) INTO times
    FROM generate_series(date_trunc('day', (as_of - lookback) AT TIME ZONE 'UTC'),
                         as_of AT TIME ZONE 'UTC', interval '1 day') AS day,
         unnest(d.cycles) AS c,
         LATERAL (SELECT (day + c * interval '1 hour') AT TIME ZONE 'UTC' AS t) t
    WHERE t.t > as_of - lookback AND t.t <= as_of
      AND (d.retention IS NULL OR t.t >= as_of - d.retention);

    FOR i IN 1 .. coalesce(cardinality(times), 0) LOOP
        SELECT x.status, x.version INTO r FROM gik.run x
        WHERE x.dataset_id = d.dataset_id AND x.init_time = times[i];
        -- Failures since the last successful attempt at this run, and when the last one ended.
        SELECT count(*)::int AS n, max(l.finished) AS last INTO f FROM gik.ingest_log l
        WHERE l.dataset_id = d.dataset_id AND l.init_time = times[i] AND l.status = 'failed'
          AND l.log_id > coalesce((SELECT max(s.log_id) FROM gik.ingest_log s
                                   WHERE s.dataset_id = d.dataset_id AND s.init_time = times[i]
                                     AND s.status IN ('complete', 'partial')), 0);
        busy := EXISTS (SELECT FROM gik.ingest_log l WHERE l.dataset_id = d.dataset_id AND l.init_time = times[i]
                        AND l.status = 'running');
        st := st || r.status;
        ver := ver || r.version;
        nfail := nfail || f.n;
        nprobe := nprobe || 0;
        nfound := nfound || NULL::int;
        IF r.status = 'complete' AND times[i] <= as_of - recheck THEN
            act := act || 'skip'::text; why := why || 'complete'::text;
        ELSIF busy THEN
            act := act || 'skip'::text; why := why || 'being ingested by another session'::text;
        ELSIF f.n >= max_attempts THEN
            act := act || 'skip'::text; why := why || format('gave up after %s failures', f.n);
        ELSIF f.n > 0 AND f.last + retry_after * (2 ^ (f.n - 1)) > clock_timestamp() THEN
            act := act || 'skip'::text;
            why := why || format('waiting to retry after %s failure%s', f.n, CASE WHEN f.n > 1 THEN 's' END);
        ELSIF r.status IS NOT NULL THEN
            act := act || 'ingest'::text;
            why := why || CASE WHEN f.n > 0 THEN format('retry after %s failure%s', f.n, CASE WHEN f.n > 1 THEN 's' END)
                               WHEN r.status = 'complete' THEN 'recheck'
                               ELSE r.status || ' run' END;
        ELSIF NOT probe THEN
            act := act || 'ingest'::text; why := why || 'not probed'::text;
        ELSE
            -- Never ingested: probe its first, middle and last index files.
            act := act || 'probe'::text; why := why || NULL::text;
            FOR r IN
                SELECT p.index_url FROM (SELECT pf.file_no, pf.index_url, count(*) OVER () AS n
                                         FROM gik.plan_files(d.name, times[i]) pf) p
                WHERE p.file_no IN (1, (p.n + 1) / 2, p.n)
            LOOP
                urls := urls || r.index_url;
                url_of := url_of || i;
                nprobe[i] := nprobe[i] + 1;
            END LOOP;
        END IF;
    END LOOP;

    IF cardinality(urls) > 0 THEN
        nfound := array_fill(0, ARRAY[cardinality(times)]);
        FOR r IN SELECT h.ord FROM gik.fetch_many(urls, missing_ok => true, head => true) h WHERE h.found LOOP
            nfound[url_of[r.ord]] := nfound[url_of[r.ord]] + 1;
        END LOOP;
        FOR i IN 1 .. cardinality(times) LOOP
            IF act[i] = 'probe' THEN
                IF nprobe[i] = 0 OR nfound[i] = 0 THEN
                    act[i] := 'skip'; why[i] := 'not published';
                ELSE
                    act[i] := 'ingest';
                    why[i] := CASE WHEN nfail[i] > 0
                                   THEN format('retry after %s failure%s', nfail[i], CASE WHEN nfail[i] > 1 THEN 's' END)
                                   WHEN nfound[i] = nprobe[i] THEN 'published' ELSE 'being published' END;
                END IF;
            ELSIF act[i] <> 'probe' THEN
                nfound[i] := CASE WHEN nprobe[i] > 0 THEN nfound[i] END;
            END IF;
        END LOOP;
    ELSE
        FOR i IN 1 .. coalesce(cardinality(times), 0) LOOP
            IF act[i] = 'probe' THEN
                act[i] := 'skip'; why[i] := 'not published';
            END IF;
        END LOOP;
    END IF;

    FOR i IN 1 .. coalesce(cardinality(times), 0) LOOP
        init_time := times[i]; run_status := st[i]; version := ver[i]; failures := nfail[i];
        probes := nprobe[i]; probes_found := nfound[i]; action := act[i]; reason := why[i];
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION gik.latest_runs(text, timestamptz, interval, interval, int, interval, bool) IS
'The cycles of a dataset in (as_of - lookback, as_of] (and within its retention), newest first, with what gik.ingest_latest would do: ingest runs never seen whose index files exist upstream (probed with HEAD requests on the first, middle and last index file of each), partial runs, complete runs younger than recheck, and runs to retry after a failure (waiting retry_after, doubled after each consecutive failure, and giving up after max_attempts); skip the rest. probe => false assumes unseen runs are published.';

-- Record the start of an ingestion attempt; returns its gik.ingest_log id.
CREATE FUNCTION gik.ingest_log_open(dataset text, init_time timestamptz, call_id bigint DEFAULT NULL,
                                    call_pos int DEFAULT NULL, call_runs int DEFAULT NULL, reason text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id int;
    lid bigint;
BEGIN
    id := (gik.dataset_named(ingest_log_open.dataset)).dataset_id;
    INSERT INTO gik.ingest_log (call_id, call_pos, call_runs, dataset_id, init_time, reason, status,
                                version_before, files_expected)
    VALUES (ingest_log_open.call_id, ingest_log_open.call_pos, ingest_log_open.call_runs, id,
            ingest_log_open.init_time, ingest_log_open.reason, 'running',
            (SELECT r.version FROM gik.run r WHERE r.dataset_id = id AND r.init_time = ingest_log_open.init_time),
            (SELECT count(*) FROM gik.plan_files(ingest_log_open.dataset, ingest_log_open.init_time)))
    RETURNING log_id INTO lid;
    RETURN lid;
END $$;
COMMENT ON FUNCTION gik.ingest_log_open(text, timestamptz, bigint, int, int, text) IS
'Insert a running gik.ingest_log row for one run (commit it before calling gik.ingest_log_run, so other sessions see the attempt); returns its log_id.';

-- Ingest the run of a running log row, recording the result or the error in that row.
CREATE FUNCTION gik.ingest_log_run(log_id bigint) RETURNS gik.ingest_log
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    l      gik.ingest_log;
    ds     text;
    r      gik.run;
    before int;
    st     text;
    msg    text;
    det    text;
    hint   text;
BEGIN
    -- Lock the row for the whole ingestion: gik.ingest_log_cleanup() skips locked rows.
    UPDATE gik.ingest_log x SET backend_pid = pg_backend_pid()
    WHERE x.log_id = ingest_log_run.log_id AND x.status = 'running'
    RETURNING * INTO l;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'object_not_in_prerequisite_state',
            MESSAGE = format('ingestion log entry %s is not a running attempt', ingest_log_run.log_id),
            HINT = 'Open an attempt with gik.ingest_log_open() and commit it first.';
    END IF;
    SELECT d.name INTO ds FROM gik.dataset d WHERE d.dataset_id = l.dataset_id;
    -- gik.ingest_run's lock on this run (held to the end of the transaction): another session's ingestion
    -- finishes first, so that the version read here is the one this ingestion starts from.
    PERFORM pg_advisory_xact_lock(l.dataset_id, (extract(epoch FROM l.init_time) / 3600)::int);
    SELECT x.version INTO before FROM gik.run x WHERE x.dataset_id = l.dataset_id AND x.init_time = l.init_time;
    BEGIN
        r := gik.ingest_run(ds, l.init_time, allow_missing => true);
        UPDATE gik.ingest_log x
        SET status = r.status,
            outcome = CASE WHEN r.version > coalesce(before, 0) THEN 'new version' ELSE 'unchanged' END,
            version_before = before, version = r.version,
            files_expected = r.files_expected, files_found = r.files_found, files_missing = r.files_missing,
            refs = r.refs, index_bytes = r.index_bytes, grib_bytes = r.grib_bytes,
            finished = clock_timestamp(), total_ms = extract(epoch FROM clock_timestamp() - x.started) * 1000
        WHERE x.log_id = l.log_id
        RETURNING * INTO l;
    EXCEPTION WHEN OTHERS THEN
        -- The ingestion's own changes are rolled back with this block; the previous version stays intact.
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL,
                                hint = PG_EXCEPTION_HINT;
        UPDATE gik.ingest_log x
        SET status = 'failed', outcome = 'failed', sqlstate = st, error = msg,
            error_detail = nullif(concat_ws(E'\n', nullif(det, ''), nullif(hint, '')), ''),
            finished = clock_timestamp(), total_ms = extract(epoch FROM clock_timestamp() - x.started) * 1000
        WHERE x.log_id = l.log_id
        RETURNING * INTO l;
    END;
    RETURN l;
END $$;
COMMENT ON FUNCTION gik.ingest_log_run(bigint) IS
'Ingest the run of a running gik.ingest_log row with gik.ingest_run(allow_missing => true) inside a subtransaction, and record its status, counters and timings, or on error status failed with the SQLSTATE, message, detail and hint; the error is not raised again. Returns the updated row.';

-- Record an attempt that failed before any run was chosen (e.g. upstream unreachable while probing).
CREATE FUNCTION gik.ingest_log_failure(dataset text, init_time timestamptz, call_id bigint, reason text,
                                       sqlstate text, error text, error_detail text DEFAULT NULL)
RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    INSERT INTO gik.ingest_log (call_id, dataset_id, init_time, reason, status, outcome, finished, total_ms,
                                sqlstate, error, error_detail)
    SELECT ingest_log_failure.call_id, d.dataset_id, ingest_log_failure.init_time, ingest_log_failure.reason,
           'failed', 'failed', clock_timestamp(), 0, ingest_log_failure.sqlstate, ingest_log_failure.error,
           nullif(ingest_log_failure.error_detail, '')
    FROM gik.dataset d WHERE d.name = ingest_log_failure.dataset
    RETURNING log_id;
END;
COMMENT ON FUNCTION gik.ingest_log_failure(text, timestamptz, bigint, text, text, text, text) IS
'Insert a failed gik.ingest_log row that no ingestion preceded, such as a failed probe of upstream; returns its log_id.';

-- Ingest the latest runs of a dataset: the procedure to schedule with pg_cron.
CREATE PROCEDURE gik.ingest_latest(
    dataset text, as_of timestamptz DEFAULT now(), max_runs int DEFAULT 8, lookback interval DEFAULT '2 days',
    recheck interval DEFAULT '0', max_attempts int DEFAULT 5, retry_after interval DEFAULT '10 minutes')
LANGUAGE plpgsql AS $$
-- Procedures that COMMIT cannot carry SET clauses. Instead every table and function is named with its
-- schema, the work is done by gik functions that have SET search_path, and search_path is pinned with a
-- transaction-local set_config() at the start of each transaction (the caller's value is put back at the end).
DECLARE
    caller_path text := pg_catalog.current_setting('search_path');
    call        bigint;
    times       timestamptz[];
    reasons     text[];
    n           int;
    lid         bigint;
    l           gik.ingest_log;
    st          text;
    msg         text;
    det         text;
    label       text;
    skipped     text;
    probe_error bool := false;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF max_runs IS NULL OR max_runs < 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('max_runs must be at least 1, not %s', coalesce(max_runs::text, 'NULL'));
    END IF;
    PERFORM gik.dataset_named(ingest_latest.dataset);
    call := nextval('gik.ingest_call_seq');
    BEGIN
        SELECT array_agg(c.init_time ORDER BY c.init_time DESC) FILTER (WHERE c.action = 'ingest'),
               array_agg(c.reason ORDER BY c.init_time DESC) FILTER (WHERE c.action = 'ingest'),
               string_agg(to_char(c.init_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24"z" ') || c.reason, '; '
                          ORDER BY c.init_time DESC)
                   FILTER (WHERE c.action = 'skip' AND c.reason NOT IN ('complete', 'not published'))
        INTO times, reasons, skipped
        FROM gik.latest_runs(ingest_latest.dataset, ingest_latest.as_of, ingest_latest.lookback,
                             ingest_latest.recheck, ingest_latest.max_attempts, ingest_latest.retry_after) c;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
        probe_error := true;
    END;
    IF probe_error THEN
        PERFORM gik.ingest_log_failure(ingest_latest.dataset, NULL, call, 'probe', st, msg, det);
        RAISE WARNING 'gik.ingest_latest(%): probing upstream failed (%): %', ingest_latest.dataset, st, msg;
        PERFORM pg_catalog.set_config('search_path', caller_path, true);
        RETURN;
    END IF;
    n := least(coalesce(cardinality(times), 0), ingest_latest.max_runs);
    IF n = 0 THEN
        RAISE NOTICE 'gik.ingest_latest(%): nothing to ingest; newest complete run: %', ingest_latest.dataset,
            coalesce((SELECT to_char(r.init_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24"z"')
                      FROM gik.run r JOIN gik.dataset d USING (dataset_id)
                      WHERE d.name = ingest_latest.dataset AND r.status = 'complete'
                      ORDER BY r.init_time DESC LIMIT 1), 'none') || coalesce('; skipped: ' || skipped, '');
        PERFORM pg_catalog.set_config('search_path', caller_path, true);
        RETURN;
    END IF;
    IF cardinality(times) > n THEN
        RAISE NOTICE 'gik.ingest_latest(%): % runs to ingest, the % oldest are left for later calls',
            ingest_latest.dataset, cardinality(times), cardinality(times) - n;
    END IF;
    FOR i IN 1 .. n LOOP
        label := to_char(times[i] AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24"z"');
        lid := gik.ingest_log_open(ingest_latest.dataset, times[i], call, i, n, reasons[i]);
        RAISE NOTICE 'gik.ingest_latest(%): %: ingesting (% of %, %)', ingest_latest.dataset, label, i, n, reasons[i];
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        l := gik.ingest_log_run(lid);
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        IF l.status = 'failed' THEN
            RAISE WARNING 'gik.ingest_latest(%): %: failed (%): %', ingest_latest.dataset, label, l.sqlstate, l.error;
        ELSE
            RAISE NOTICE 'gik.ingest_latest(%): %: % (%, version %), % of % files, % references, % s',
                ingest_latest.dataset, label, l.status, l.outcome, l.version, l.files_found, l.files_expected,
                l.refs, round((l.total_ms / 1000)::numeric, 1);
        END IF;
    END LOOP;
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
END $$;
COMMENT ON PROCEDURE gik.ingest_latest(text, timestamptz, int, interval, interval, int, interval) IS
'Ingest the latest runs of a dataset, newest first, at most max_runs per call (see gik.latest_runs for which: new runs found upstream, partial runs, failed runs after a backoff). Each run is one committed attempt in gik.ingest_log: running, then complete, partial (files still missing: completed by a later call) or failed (SQLSTATE and message; the run''s previous version stays intact). Returns at once when nothing is new. Must be CALLed outside an explicit transaction block, e.g. by pg_cron: CALL gik.ingest_latest(''gefs_0p25''). as_of replaces now() for tests and backfills.';

-- Ingestion attempts in progress, for other sessions to watch.
CREATE VIEW gik.ingest_progress AS
SELECT l.log_id, l.call_id, d.name AS dataset, l.init_time, l.reason, l.call_pos, l.call_runs,
       (SELECT count(*) FROM gik.ingest_log c WHERE c.call_id = l.call_id AND c.status <> 'running') AS call_done,
       (SELECT count(*) FROM gik.ingest_log c WHERE c.call_id = l.call_id AND c.status = 'failed') AS call_failed,
       l.files_expected, l.started, clock_timestamp() - l.started AS elapsed, l.backend_pid, l.username
FROM gik.ingest_log l
JOIN gik.dataset d USING (dataset_id)
WHERE l.status = 'running';
COMMENT ON VIEW gik.ingest_progress IS
'Ingestions running now (committed by gik.ingest_latest before each run): dataset, run, position in the call (call_pos of call_runs, call_done finished, call_failed failed), files expected, elapsed time and backend pid.';

-- Per dataset: the latest complete run and its age, partial runs, running and failed attempts.
CREATE VIEW gik.ingest_health AS
SELECT d.name AS dataset,
       lc.init_time AS latest_complete,
       now() - lc.init_time AS latest_complete_age,
       lc.version AS latest_complete_version,
       lr.init_time AS latest_run,
       lr.status AS latest_run_status,
       coalesce(pr.n, 0) AS partial_runs,
       pr.init_times AS partial_init_times,
       lg.running,
       lg.last_attempt,
       lg.last_outcome,
       lg.failures_24h,
       lg.consecutive_failures,
       le.finished AS last_error_at,
       le.init_time AS last_error_run,
       le.error AS last_error,
       CASE WHEN lc.init_time IS NULL AND lr.init_time IS NULL AND lg.last_attempt IS NULL THEN 'no runs'
            WHEN lg.consecutive_failures > 0 THEN 'failing'
            WHEN lc.init_time IS NULL OR now() - lc.init_time > interval '1 day' THEN 'behind'
            ELSE 'ok' END AS state
FROM gik.dataset d
LEFT JOIN LATERAL (SELECT r.init_time, r.version FROM gik.run r
                   WHERE r.dataset_id = d.dataset_id AND r.status = 'complete'
                   ORDER BY r.init_time DESC LIMIT 1) lc ON true
LEFT JOIN LATERAL (SELECT r.init_time, r.status FROM gik.run r
                   WHERE r.dataset_id = d.dataset_id ORDER BY r.init_time DESC LIMIT 1) lr ON true
LEFT JOIN LATERAL (SELECT count(*) AS n, array_agg(r.init_time ORDER BY r.init_time) AS init_times FROM gik.run r
                   WHERE r.dataset_id = d.dataset_id AND r.status = 'partial') pr ON true
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE l.status = 'running') AS running,
           max(l.started) AS last_attempt,
           (SELECT x.outcome FROM gik.ingest_log x WHERE x.dataset_id = d.dataset_id AND x.status <> 'running'
            ORDER BY x.log_id DESC LIMIT 1) AS last_outcome,
           count(*) FILTER (WHERE l.status = 'failed' AND l.finished > now() - interval '1 day') AS failures_24h,
           count(*) FILTER (WHERE l.status = 'failed'
                            AND l.log_id > coalesce((SELECT max(s.log_id) FROM gik.ingest_log s
                                                     WHERE s.dataset_id = d.dataset_id
                                                       AND s.status IN ('complete', 'partial')), 0)) AS consecutive_failures
    FROM gik.ingest_log l WHERE l.dataset_id = d.dataset_id) lg ON true
LEFT JOIN LATERAL (SELECT x.finished, x.init_time, x.error FROM gik.ingest_log x
                   WHERE x.dataset_id = d.dataset_id AND x.status = 'failed'
                   ORDER BY x.log_id DESC LIMIT 1) le ON true;
COMMENT ON VIEW gik.ingest_health IS
'One row per dataset: the latest complete run, its age and version; the latest run and its status; partial runs; attempts running; the last attempt and its outcome; failures in the last 24 hours and since the last successful attempt (consecutive_failures); the last error; and a state: no runs, failing (the last attempts failed), behind (no complete run in the last day) or ok.';

-- The references of one run as they were at one of its versions.
CREATE FUNCTION gik.chunk_refs_at(dataset text, init_time timestamptz, version int)
RETURNS SETOF gik.chunk_ref
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET max_parallel_workers_per_gather = 0 AS $$
DECLARE
    r gik.run;
BEGIN
    SELECT x.* INTO r FROM gik.run x JOIN gik.dataset d USING (dataset_id)
    WHERE d.name = chunk_refs_at.dataset AND x.init_time = chunk_refs_at.init_time;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('dataset "%s" has no run at %s', chunk_refs_at.dataset,
                             to_char(chunk_refs_at.init_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI"Z"'));
    END IF;
    IF chunk_refs_at.version IS NULL OR chunk_refs_at.version < 1 OR chunk_refs_at.version > r.version THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('run %s of dataset "%s" has no version %s',
                             to_char(r.init_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI"Z"'), chunk_refs_at.dataset,
                             coalesce(chunk_refs_at.version::text, 'NULL')),
            DETAIL = format('Its versions are 1 to %s.', r.version);
    END IF;
    RETURN QUERY
    SELECT d.name, p.dataset_id, p.init_time, p.run_id, f.file_id, f.url, f.step, p.member, fl.variable, fl.level, fl.stat,
           w.start_min / 60.0::float8, w.end_min / 60.0::float8, u.byte_offset, u.byte_length::int8, u.field_id, u.window_id
    FROM gik.chunk_pack p
    JOIN gik.file f ON f.file_id = p.file_id AND f.valid_from <= chunk_refs_at.version
                   AND (f.valid_to IS NULL OR f.valid_to > chunk_refs_at.version)
    JOIN gik.dataset d ON d.dataset_id = p.dataset_id
    CROSS JOIN LATERAL unnest(p.field_ids, p.window_ids, p.offsets, p.lengths)
        AS u(field_id, window_id, byte_offset, byte_length)
    JOIN gik.field fl ON fl.field_id = u.field_id
    JOIN gik.time_window w ON w.window_id = u.window_id
    WHERE p.dataset_id = r.dataset_id AND p.init_time = r.init_time AND p.run_id = r.run_id;
END $$;
COMMENT ON FUNCTION gik.chunk_refs_at(text, timestamptz, int) IS
'The chunk references of one run as they were at an earlier version (files valid from that version until a later one replaced them), with the columns of gik.chunk_ref; gik.chunk_ref itself shows the current version. Versions are listed in gik.run_version.';

-- The current references of one run, optionally of some variables only: gik.chunk_ref for one run, fast.
CREATE FUNCTION gik.run_refs(dataset text, init_time timestamptz, variables text[] DEFAULT NULL)
RETURNS SETOF gik.chunk_ref
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET max_parallel_workers_per_gather = 0 AS $$
-- One run is a few thousand packed rows: starting parallel workers costs more than it saves.
DECLARE
    r    gik.run;
    fids smallint[];
BEGIN
    SELECT x.* INTO r FROM gik.run x JOIN gik.dataset d USING (dataset_id)
    WHERE d.name = run_refs.dataset AND x.init_time = run_refs.init_time;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF run_refs.variables IS NULL THEN
        RETURN QUERY SELECT * FROM gik.chunk_refs_at(run_refs.dataset, run_refs.init_time, r.version);
        RETURN;
    END IF;
    SELECT array_agg(fl.field_id) INTO fids FROM gik.field fl
    WHERE fl.dataset_id = r.dataset_id AND gik.variable_selected(run_refs.variables, fl.variable, fl.level);
    -- One partition (dataset and day known), the run's packs by index, and only the selected elements
    -- of each pack (array_positions) instead of unnesting all of them.
    RETURN QUERY
    SELECT run_refs.dataset, p.dataset_id, p.init_time, p.run_id, f.file_id, f.url, f.step, p.member,
           fl.variable, fl.level, fl.stat, w.start_min / 60.0::float8, w.end_min / 60.0::float8,
           p.offsets[i.pos], p.lengths[i.pos]::int8, s.fid, p.window_ids[i.pos]
    FROM gik.chunk_pack p
    CROSS JOIN LATERAL unnest(fids) AS s(fid)
    CROSS JOIN LATERAL unnest(array_positions(p.field_ids, s.fid)) AS i(pos)
    JOIN gik.file f ON f.file_id = p.file_id AND f.valid_to IS NULL
    JOIN gik.field fl ON fl.field_id = s.fid
    JOIN gik.time_window w ON w.window_id = p.window_ids[i.pos]
    WHERE p.dataset_id = r.dataset_id AND p.init_time = r.init_time AND p.run_id = r.run_id;
END $$;
COMMENT ON FUNCTION gik.run_refs(text, timestamptz, text[]) IS
'The current chunk references of one run, with the columns of gik.chunk_ref, optionally only of some variables (''VAR'' or ''VAR:LEVEL'' entries). Same rows as filtering gik.chunk_ref, but it reads one partition by index and picks the selected elements of each pack without unnesting the rest: milliseconds at a year of data. No rows when the run does not exist.';
-- Privileges. Nothing in schema gik is executable or readable by PUBLIC. Two roles are granted
-- what they need (created here when missing; roles outlive DROP EXTENSION):
--   gik_reader  reads the catalog, decodes referenced messages, runs analytics and manifests;
--   gik_ingest  is also a gik_reader and defines datasets, ingests, imports and removes runs.
-- Which URLs either may fetch is decided by the superuser-only settings gik.allowed_url_prefixes
-- and gik.allowed_addresses; server files only by superusers and pg_read_server_files members.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'gik_reader') THEN
        CREATE ROLE gik_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'gik_ingest') THEN
        CREATE ROLE gik_ingest NOLOGIN;
    END IF;
    IF NOT pg_catalog.pg_has_role('gik_ingest', 'gik_reader', 'MEMBER') THEN
        GRANT gik_reader TO gik_ingest;
    END IF;
END $$;

REVOKE ALL ON ALL ROUTINES IN SCHEMA gik FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA gik FROM PUBLIC;

GRANT USAGE ON SCHEMA gik TO gik_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA gik TO gik_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA gik TO gik_ingest;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA gik TO gik_ingest;
GRANT EXECUTE ON ALL ROUTINES IN SCHEMA gik TO gik_ingest;

-- What readers may execute: listed by name (every overload), so a new function is not granted by accident.
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = 'gik'::regnamespace
          AND (p.proname ~ '^(ens_|grid_sum|zarr_)' OR p.proname = ANY (ARRAY[
              -- decoding referenced messages (fetches under the URL policy)
              'decode', 'decode_batch', 'decode_raster_wkb', 'grid', 'message_info', 'field_grid',
              'output_grid', 'grid_lats', 'grid_lons', 'grid_wkb', 'resolve_url',
              -- analytics
              'accumulation_refs', 'accumulations', 'accumulate', 'exceedance', 'cover_window', 'mm_per_unit',
              'grid_add', 'grid_sub', 'grid_mul', 'grid_clip', 'grid_band', 'bbox',
              -- reading the catalog and manifests
              'chunk_refs_at', 'run_refs', 'expired_partitions', 'partition_name', 'manifest', 'manifest_kerchunk',
              'manifest_zarr3', 'manifest_variables', 'coord_at', 'bytes_reverse', 'inline_bytes',
              -- parsing index text the caller already holds, and naming helpers
              'parse_idx', 'parse_ecmwf_index', 'expand_url', 'step_list', 'default_index_template',
              'member_code', 'member_from_token', 'variable_selected', 'dataset_named']))
    LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON ROUTINE %s TO gik_reader', f);
    END LOOP;
END $$;
