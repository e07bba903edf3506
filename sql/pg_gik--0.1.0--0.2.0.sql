-- pg_gik 0.1.0 -> 0.2.0. Every schema change since the v0.1.0 release, in an order that keeps each
-- statement valid; the catalog's rows are kept. test/upgrade/run.sh checks that the result equals a
-- fresh 0.2.0 install and that a 0.1.0 catalog stays readable.
\echo Use "ALTER EXTENSION pg_gik UPDATE TO '0.2.0'" to load this file. \quit

-- Fetching: file_info and fetch_many also report Last-Modified. Their result types change, so they
-- are dropped and created again (only PL/pgSQL bodies call them, which resolve them at run time).
DROP FUNCTION gik.file_info(text);
CREATE FUNCTION gik.file_info(url text, OUT found bool, OUT size int8, OUT etag text, OUT last_modified timestamptz)
AS 'MODULE_PATHNAME', 'gik_file_info'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.file_info(text) IS
'Size, ETag and Last-Modified of an object from a HEAD request (stat for local files); found is false when it does not exist.';

DROP FUNCTION gik.fetch_many(text[], bool, bool);
CREATE FUNCTION gik.fetch_many(urls text[], missing_ok bool DEFAULT false, head bool DEFAULT false,
                               unavailable_ok bool DEFAULT false)
RETURNS TABLE (ord int, url text, found bool, body text, bytes int8, file_size int8, etag text, attempts int,
               last_modified timestamptz, unavailable bool, failure text)
AS 'MODULE_PATHNAME', 'gik_fetch_many'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.fetch_many(text[], bool, bool, bool) IS
'Fetch many whole objects as text (or HEAD them) concurrently, gik.max_connections at a time, with retries; rows come in completion order with ord giving the array position. With missing_ok an object that is not there (404, 410, no such file), with unavailable_ok one whose server kept failing (5xx, 429, no connection, after the retries) is a row with found false (and unavailable true for the second kind) and the reason in failure; otherwise such a failure is an error.';

-- Whether the URL policy lets a URL be fetched (mirrors it refuses are not tried).
CREATE FUNCTION gik.url_allowed(url text) RETURNS bool
AS 'MODULE_PATHNAME', 'gik_url_allowed'
LANGUAGE C STRICT STABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.url_allowed(text) IS
'Whether gik.allowed_url_prefixes lets a URL be fetched (s3:// and gs:// mapped as requests are). Server files are governed by the server-file permission instead and count as allowed.';

-- File series record who defined them (defined_by); server files are read only for an author who may
-- read them. Rows from 0.1.0 get the role running the update, who vouches for them (warned below).
ALTER TABLE gik.dataset_source ADD COLUMN defined_by name;
UPDATE gik.dataset_source SET defined_by = current_user;
ALTER TABLE gik.dataset_source ALTER COLUMN defined_by SET DEFAULT current_user,
                               ALTER COLUMN defined_by SET NOT NULL;
COMMENT ON TABLE gik.dataset_source IS
'A series of GRIB files of a dataset. url_template (GRIB files) and index_template (their indexes) placeholders: {date} (YYYYMMDD), {cycle} (HH), {step} (hours), {step3} (hours, 3 digits), {member} (the member token). With members, there is one file per member; without, members come from the index and index_members, if set, restricts them. cycles and steps, when set, override the dataset''s. The source applies to runs initialised in [valid_from, valid_until). defined_by is the role that last wrote the row (set by a trigger): server files are read for it only when that role may read them.';

-- True when a URL names a file on the database server (an absolute path or file://).
CREATE FUNCTION gik.is_server_file(url text) RETURNS bool
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN left(url, 1) = '/' OR lower(left(url, 7)) = 'file://';
COMMENT ON FUNCTION gik.is_server_file(text) IS 'True when a URL names a file on the database server: an absolute path or a file:// URL.';

-- True when a role may read files on the database server.
CREATE FUNCTION gik.reads_server_files(role_name name) RETURNS bool
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN EXISTS (SELECT FROM pg_roles r WHERE r.rolname = role_name
               AND (r.rolsuper OR pg_has_role(r.oid, 'pg_read_server_files', 'MEMBER')));
COMMENT ON FUNCTION gik.reads_server_files(name) IS 'True when the role is a superuser or a member of pg_read_server_files.';

-- Who wrote a file series, and whether it may name server files.
CREATE FUNCTION gik.dataset_source_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW.defined_by := current_user;
    IF NOT gik.reads_server_files(current_user) AND EXISTS (
           SELECT FROM unnest(coalesce(NEW.member_tokens, '{NULL}'::text[])) AS t(token),
                       unnest(ARRAY[NEW.url_template, NEW.index_template]) AS u(template)
           WHERE gik.is_server_file(gik.expand_url(u.template, now(), 0, t.token))) THEN
        RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
            MESSAGE = format('permission denied to name server files in file series "%s"', NEW.source),
            DETAIL = 'Absolute paths and file:// URLs may be used only by superusers and members of pg_read_server_files.';
    END IF;
    RETURN NEW;
END $$;
COMMENT ON FUNCTION gik.dataset_source_guard() IS
'Trigger of gik.dataset_source: records the writing role in defined_by and refuses server-file URLs from roles that may not read server files.';
CREATE TRIGGER dataset_source_guard BEFORE INSERT OR UPDATE ON gik.dataset_source
FOR EACH ROW EXECUTE FUNCTION gik.dataset_source_guard();

-- Say which existing series name server files: the updating role now vouches for them.
DO $$
DECLARE
    n int;
    example text;
BEGIN
    SELECT count(*), min(d.name || '/' || s.source) INTO n, example
    FROM gik.dataset_source s JOIN gik.dataset d USING (dataset_id)
    WHERE gik.is_server_file(s.url_template) OR gik.is_server_file(s.index_template);
    IF n > 0 THEN
        RAISE WARNING '% file series name server files, e.g. "%"; their author is now recorded as %', n, example, current_user
            USING HINT = 'Review them: pg_gik 0.2.0 reads server files only for series defined by a role that may read them.';
    END IF;
END $$;

-- GRIB files' identity when ingested (ETag, Last-Modified; size was already there) and the index's
-- Last-Modified. Files ingested by 0.1.0 have none of them (NULL): a re-ingestion compares the GRIB
-- identity only where both are known, so it makes no new version for them.
ALTER TABLE gik.file ADD COLUMN grib_etag text,
                     ADD COLUMN grib_last_modified timestamptz,
                     ADD COLUMN index_last_modified timestamptz,
                     ADD COLUMN index_older bool GENERATED ALWAYS AS (index_last_modified < grib_last_modified) STORED,
                     ADD COLUMN mirror text;
COMMENT ON TABLE gik.file IS
'A GRIB file of a run (url: where it was found, on the mirror named in mirror, NULL for a URL with no mirrors): its identity when ingested (size, ETag and Last-Modified from a HEAD request, unless gik.record_grib_identity is off), what its index said (size, ETag, MD5, Last-Modified), found or missing, valid from version valid_from until valid_to (NULL: current). index_older flags an index older than its GRIB file: its offsets may describe an earlier file.';

-- Public mirrors of the buckets that dataset templates name, tried in order by ingestion.
CREATE TABLE gik.mirror (
    prefix      text NOT NULL CHECK (prefix ~ '/$'),
    name        text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_-]{0,40}$'),
    priority    smallint NOT NULL,
    url_prefix  text NOT NULL CHECK (url_prefix ~ '/$'),
    description text,
    PRIMARY KEY (prefix, name),
    UNIQUE (prefix, priority)
);
COMMENT ON TABLE gik.mirror IS
'Where the files under a URL prefix of the dataset templates (a bucket such as s3://noaa-gefs-pds/) can also be had: url_prefix replaces prefix. Ingestion tries a file''s mirrors by priority (or in the order gik.mirrors names them, using only those), moving on when one answers 404 or keeps failing (5xx, no connection), and records which one served each file; decoding reads the recorded URL. A mirror that gik.allowed_url_prefixes does not allow is skipped.';

-- A NULL dataset name and unknown dataset ids are refused with their own errors.
CREATE OR REPLACE FUNCTION gik.dataset_named(p_name text) RETURNS gik.dataset
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d gik.dataset;
BEGIN
    IF p_name IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'null_value_not_allowed', MESSAGE = 'the dataset name must not be NULL';
    END IF;
    SELECT * INTO d FROM gik.dataset x WHERE x.name = p_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object',
            MESSAGE = format('dataset "%s" does not exist', p_name),
            HINT = 'See gik.dataset for the defined datasets, or define one with gik.define_dataset().';
    END IF;
    RETURN d;
END $$;
COMMENT ON FUNCTION gik.dataset_named(text) IS 'The gik.dataset row of a name; raises undefined_object (42704) for an unknown name, null_value_not_allowed (22004) for NULL.';

CREATE OR REPLACE FUNCTION gik.ensure_partition(p_dataset_id smallint, p_init_time timestamptz) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    ds_part text := format('chunk_pack_%s', p_dataset_id);
    day     date := (p_init_time AT TIME ZONE 'UTC')::date;
    part    text := gik.partition_name(p_dataset_id, day);
BEGIN
    IF p_init_time IS NULL OR NOT EXISTS (SELECT FROM gik.dataset d WHERE d.dataset_id = p_dataset_id) THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('no dataset has id %s, or the init time is NULL', coalesce(p_dataset_id::text, 'NULL')),
            DETAIL = 'Partitions are made only for the runs of defined datasets.';
    END IF;
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

-- Planning a run refuses server files named by an author who may not read them.
CREATE OR REPLACE FUNCTION gik.plan_files(dataset text, init_time timestamptz, members int[] DEFAULT NULL, steps int[] DEFAULT NULL)
RETURNS TABLE (file_no int, source text, step int, member int, url text, index_url text, index_members int[])
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    f record;
BEGIN
    FOR f IN
        SELECT (row_number() OVER (ORDER BY st.step, m.member NULLS FIRST, s.source))::int AS file_no,
               s.source, st.step, m.member,
               gik.expand_url(s.url_template, plan_files.init_time, st.step, m.token) AS url,
               gik.expand_url(s.index_template, plan_files.init_time, st.step, m.token) AS index_url,
               s.index_members, s.defined_by
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
        ORDER BY 1
    LOOP
        -- whoever runs this (pg_cron, a superuser), a server file is read only if the series' author may read it
        IF (gik.is_server_file(f.url) OR gik.is_server_file(f.index_url)) AND NOT gik.reads_server_files(f.defined_by) THEN
            RAISE EXCEPTION USING ERRCODE = 'insufficient_privilege',
                MESSAGE = format('file series "%s" of dataset "%s" names server files, but its author %s may not read them',
                                 f.source, plan_files.dataset, f.defined_by),
                HINT = 'A superuser or a member of pg_read_server_files must define the series.';
        END IF;
        file_no := f.file_no; source := f.source; step := f.step; member := f.member;
        url := f.url; index_url := f.index_url; index_members := f.index_members;
        RETURN NEXT;
    END LOOP;
END $$;

-- Datasets like Herbie's: the new built-in datasets and their series (a user's dataset of the same name
-- is kept); the two of 0.1.0 get their new descriptions, and ECMWF ENS its layouts before 2024-02-28 06z.
-- Public mirrors of their buckets, and the GEFS member tokens and mirror lookup they use.
CREATE FUNCTION gik.gefs_member_tokens(members int[]) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN (SELECT array_agg(CASE WHEN m = 0 THEN 'gec00' WHEN m = -1 THEN 'geavg' WHEN m = -2 THEN 'gespr'
                              ELSE 'gep' || lpad(m::text, 2, '0') END ORDER BY o)
        FROM unnest(members) WITH ORDINALITY AS u(m, o));
COMMENT ON FUNCTION gik.gefs_member_tokens(int[]) IS
'The GEFS file-name tokens of members (in order): gec00 for 0, gepNN for 1-30, geavg for -1 (mean), gespr for -2 (spread).';

CREATE FUNCTION gik.mirror_routes(urls text[])
RETURNS TABLE (ord int, rank int, mirror text, url text)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    wanted  text[] := array_remove(string_to_array(replace(current_setting('gik.mirrors'), ' ', ''), ','), '');
    unknown text;
BEGIN
    SELECT string_agg(w, ', ') INTO unknown FROM unnest(wanted) w WHERE NOT EXISTS (SELECT FROM gik.mirror m WHERE m.name = w);
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('gik.mirrors names no mirror called %s', unknown),
            HINT = 'The mirrors are listed in gik.mirror.';
    END IF;
    RETURN QUERY
    WITH m AS (  -- the mirrors wanted, and whether the URL policy allows everything under each
        SELECT x.*, coalesce(array_position(wanted, x.name), 0) AS pos, gik.url_allowed(x.url_prefix) AS all_allowed
        FROM gik.mirror x WHERE cardinality(wanted) = 0 OR x.name = ANY (wanted)),
    routes AS (
        SELECT u.o::int AS ord, m.pos, m.priority, m.name, m.url_prefix || substr(u.u, length(m.prefix) + 1) AS url
        FROM unnest(urls) WITH ORDINALITY AS u(u, o)
        JOIN m ON left(u.u, length(m.prefix)) = m.prefix
        WHERE m.all_allowed OR gik.url_allowed(m.url_prefix || substr(u.u, length(m.prefix) + 1)))
    SELECT r.ord, (row_number() OVER (PARTITION BY r.ord ORDER BY r.pos, r.priority))::int, r.name, r.url FROM routes r
    UNION ALL
    -- no mirror of the URL's prefix is wanted and allowed: the URL as it is (its fetch applies the policy)
    SELECT u.o::int, 1, NULL, u.u FROM unnest(urls) WITH ORDINALITY AS u(u, o)
    WHERE NOT EXISTS (SELECT FROM routes r WHERE r.ord = u.o)
    ORDER BY 1, 2;
END $$;
COMMENT ON FUNCTION gik.mirror_routes(text[]) IS
'For each URL (ord: its position), the URLs it can be fetched from in the order ingestion tries them: for a URL under a prefix of gik.mirror, that prefix''s mirrors in the order gik.mirrors names them (only those), else by priority, leaving out those gik.allowed_url_prefixes refuses; otherwise, or when none is left, the URL itself.';

CREATE FUNCTION gik.mirror_urls(file_url text)
RETURNS TABLE (rank int, mirror text, url text)
LANGUAGE sql STABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT r.rank, r.mirror, r.url FROM gik.mirror_routes(ARRAY[file_url]) r ORDER BY r.rank;
END;
COMMENT ON FUNCTION gik.mirror_urls(text) IS
'The URLs one file can be fetched from, in the order ingestion tries them (see gik.mirror_routes).';

-- Built-in datasets. The dates are those of the public archives' layouts (see docs/datasets.md).
INSERT INTO gik.dataset AS d (name, description, index_format, cycles, steps, variables, accumulated_params, members,
                         precip_variable, precip_level) VALUES
  ('gefs_0p25', 'NOAA GEFS 0.25 degree primary fields (pgrb2sp25): control gec00 and members gep01-gep30, f000-f240 every 3 h. Layout of GEFS v12, from 2020-09-23 12z.',
   'idx', '{0,6,12,18}', gik.step_list('0-240/3'), NULL, '{}', gik.step_list('0-30'), 'APCP', 'surface'),
  ('gefs_0p50', 'NOAA GEFS 0.5 degree primary fields (pgrb2ap5): control gec00, members gep01-gep30, ensemble mean geavg (member -1) and spread gespr (-2); f000-f240 every 3 h, then every 6 h to f384 (the 00z run to f840, 35 days). Layout of GEFS v12, from 2020-09-23 12z.',
   'idx', '{0,6,12,18}', gik.step_list('0-240/3,246-840/6'), NULL, '{}', gik.step_list('0-30'), 'APCP', 'surface'),
  ('gefs_0p50_b', 'NOAA GEFS 0.5 degree secondary fields (pgrb2bp5, about 500 less common fields): control gec00 and members gep01-gep30; steps as gefs_0p50. From 2020-09-23 12z.',
   'idx', '{0,6,12,18}', gik.step_list('0-240/3,246-840/6'), NULL, '{}', gik.step_list('0-30'), NULL, NULL),
  ('gfs_0p25', 'NOAA GFS 0.25 degree (pgrb2), deterministic: f000-f120 hourly, then every 3 h to f384. The AWS archive starts 2021-01-01; files sit under atmos/ from 2021-03-23.',
   'idx', '{0,6,12,18}', gik.step_list('0-120,123-384/3'), NULL, '{}', NULL, 'APCP', 'surface'),
  ('gfs_0p25_b', 'NOAA GFS 0.25 degree secondary fields (pgrb2b), deterministic; steps as gfs_0p25. The AWS archive starts 2021-01-01; files sit under atmos/ from 2021-03-23.',
   'idx', '{0,6,12,18}', gik.step_list('0-120,123-384/3'), NULL, '{}', NULL, NULL, NULL),
  ('hrrr', 'NOAA HRRR CONUS 3 km surface fields (wrfsfc, Lambert conformal grid), deterministic: hourly runs to f18, the 00, 06, 12 and 18z runs to f48 (HRRR v4, from 2020-12-02 12z). The AWS archive starts 2014-07-30.',
   'idx', gik.step_list('0-23')::smallint[], gik.step_list('0-48'), NULL, '{}', NULL, 'APCP', 'surface'),
  ('hrrr_prs', 'NOAA HRRR CONUS 3 km pressure-level fields (wrfprs), deterministic; runs and steps as hrrr (f48 from 2020-12-02 12z). The AWS archive starts 2014-07-30.',
   'idx', gik.step_list('0-23')::smallint[], gik.step_list('0-48'), NULL, '{}', NULL, NULL, NULL),
  ('hrrr_nat', 'NOAA HRRR CONUS 3 km native-level fields (wrfnat), deterministic; runs and steps as hrrr (f48 from 2020-12-02 12z). The AWS archive starts 2014-07-30.',
   'idx', gik.step_list('0-23')::smallint[], gik.step_list('0-48'), NULL, '{}', NULL, NULL, NULL),
  ('hrrr_subh', 'NOAA HRRR CONUS 3 km sub-hourly fields (wrfsubh), deterministic: one file per hour f00-f18 holding the 15, 30, 45 and 60 minute steps (N min fcst) of that hour. The AWS archive starts 2014-07-30.',
   'idx', gik.step_list('0-23')::smallint[], gik.step_list('0-18'), NULL, '{}', NULL, 'APCP', 'surface'),
  ('ecmwf_ens_0p25', 'ECMWF ENS open data: 50 perturbed members in enfo-ef, control as cf before IFS 50r1 and as oper-fc from 2026-05-12 06z; 0-144 h every 3 h, then every 6 h to 360 h (06/18z: to 144 h). 0.25 degree from 2024-02-01 (under ifs/ from 2024-02-28 06z); before, the 0.4 degree 0p4-beta layout, from 2022-01-25.',
   'ecmwf_index', '{0,6,12,18}', gik.step_list('0-144/3,150-360/6'), NULL,
   '{tp,cp,lsp,sf,ssrd,strd,ssr,str,ttr,tsr,sshf,slhf,e,ro,sro,ssro}', gik.step_list('0-50'), 'tp', 'sfc'),
  ('ecmwf_hres_0p25', 'ECMWF IFS HRES open data (oper fc), deterministic: 00/12z 0-144 h every 3 h then every 6 h to 240 h; 06/18z 0-90 h every 3 h (stream scda until 2026-05-12, then oper). 0.25 degree from 2024-02-01 (under ifs/ from 2024-02-28 06z); before, 0p4-beta from 2022-01-25.',
   'ecmwf_index', '{0,6,12,18}', gik.step_list('0-144/3,150-240/6'), NULL,
   '{tp,cp,lsp,sf,ssrd,strd,ssr,str,ttr,tsr,sshf,slhf,e,ro,sro,ssro}', NULL, 'tp', 'sfc'),
  ('aifs_single', 'ECMWF AIFS Single (machine-learned, deterministic) open data, 0.25 degree: 00/06/12/18z, 0-360 h every 6 h. Under aifs-single/ from 2025-02-25 06z (experimental/ from 2025-02-09 12z), aifs/ before.',
   'ecmwf_index', '{0,6,12,18}', gik.step_list('0-360/6'), NULL, '{tp,cp,sf,ssrd,strd}', NULL, 'tp', 'sfc'),
  ('aifs_ens', 'ECMWF AIFS ENS (machine-learned ensemble) open data, 0.25 degree: 50 perturbed members (enfo-pf) and the control (enfo-cf); 00/06/12/18z, 0-360 h every 6 h. Operational from 2025-07-01.',
   'ecmwf_index', '{0,6,12,18}', gik.step_list('0-360/6'), NULL, '{tp,cp,sf,ssrd,strd}', gik.step_list('0-50'), 'tp', 'sfc')
ON CONFLICT ON CONSTRAINT dataset_name_key DO UPDATE SET description = EXCLUDED.description
    WHERE d.name IN ('gefs_0p25', 'ecmwf_ens_0p25');

-- Their file series: GRIB URL template (the index template follows from it), members with one file each
-- and their tokens, the members an index may hold, cycles and steps when not the dataset's, and the runs
-- [valid_from, valid_until) the layout applies to.
INSERT INTO gik.dataset_source (dataset_id, source, url_template, index_template, members, member_tokens, index_members, cycles, steps, valid_from, valid_until)
SELECT d.dataset_id, s.source, s.url_template, gik.default_index_template(d.index_format, s.url_template), s.members,
       s.member_tokens, s.index_members, s.cycles, gik.step_list(s.steps), s.valid_from, s.valid_until
FROM (VALUES
  ('gefs_0p25', 'members',
   's3://noaa-gefs-pds/gefs.{date}/{cycle}/atmos/pgrb2sp25/{member}.t{cycle}z.pgrb2s.0p25.f{step3}',
   gik.step_list('0-30'), gik.gefs_member_tokens(gik.step_list('0-30')), NULL::int[], NULL::smallint[], NULL::text,
   '-infinity'::timestamptz, 'infinity'::timestamptz),
  ('gefs_0p50', 'members',
   's3://noaa-gefs-pds/gefs.{date}/{cycle}/atmos/pgrb2ap5/{member}.t{cycle}z.pgrb2a.0p50.f{step3}',
   gik.step_list('0-30') || '{-1,-2}', gik.gefs_member_tokens(gik.step_list('0-30') || '{-1,-2}'), NULL, '{6,12,18}', '0-240/3,246-384/6',
   '-infinity', 'infinity'),
  ('gefs_0p50', 'members-00z',
   's3://noaa-gefs-pds/gefs.{date}/{cycle}/atmos/pgrb2ap5/{member}.t{cycle}z.pgrb2a.0p50.f{step3}',
   gik.step_list('0-30') || '{-1,-2}', gik.gefs_member_tokens(gik.step_list('0-30') || '{-1,-2}'), NULL, '{0}', '0-240/3,246-840/6',
   '-infinity', 'infinity'),
  ('gefs_0p50_b', 'members',
   's3://noaa-gefs-pds/gefs.{date}/{cycle}/atmos/pgrb2bp5/{member}.t{cycle}z.pgrb2b.0p50.f{step3}',
   gik.step_list('0-30'), gik.gefs_member_tokens(gik.step_list('0-30')), NULL, '{6,12,18}', '0-240/3,246-384/6',
   '-infinity', 'infinity'),
  ('gefs_0p50_b', 'members-00z',
   's3://noaa-gefs-pds/gefs.{date}/{cycle}/atmos/pgrb2bp5/{member}.t{cycle}z.pgrb2b.0p50.f{step3}',
   gik.step_list('0-30'), gik.gefs_member_tokens(gik.step_list('0-30')), NULL, '{0}', '0-240/3,246-840/6',
   '-infinity', 'infinity'),
  ('gfs_0p25', 'pgrb2',
   's3://noaa-gfs-bdp-pds/gfs.{date}/{cycle}/atmos/gfs.t{cycle}z.pgrb2.0p25.f{step3}',
   NULL, NULL, NULL, NULL, NULL, '2021-03-23 00:00+00', 'infinity'),
  ('gfs_0p25', 'pgrb2-before-atmos',
   's3://noaa-gfs-bdp-pds/gfs.{date}/{cycle}/gfs.t{cycle}z.pgrb2.0p25.f{step3}',
   NULL, NULL, NULL, NULL, NULL, '-infinity', '2021-03-23 00:00+00'),
  ('gfs_0p25_b', 'pgrb2b',
   's3://noaa-gfs-bdp-pds/gfs.{date}/{cycle}/atmos/gfs.t{cycle}z.pgrb2b.0p25.f{step3}',
   NULL, NULL, NULL, NULL, NULL, '2021-03-23 00:00+00', 'infinity'),
  ('gfs_0p25_b', 'pgrb2b-before-atmos',
   's3://noaa-gfs-bdp-pds/gfs.{date}/{cycle}/gfs.t{cycle}z.pgrb2b.0p25.f{step3}',
   NULL, NULL, NULL, NULL, NULL, '-infinity', '2021-03-23 00:00+00'),
  ('hrrr', 'wrfsfc',
   's3://noaa-hrrr-bdp-pds/hrrr.{date}/conus/hrrr.t{cycle}z.wrfsfcf{step2}.grib2',
   NULL, NULL, NULL, NULL, '0-18', '-infinity', 'infinity'),
  ('hrrr', 'wrfsfc-to-f48',
   's3://noaa-hrrr-bdp-pds/hrrr.{date}/conus/hrrr.t{cycle}z.wrfsfcf{step2}.grib2',
   NULL, NULL, NULL, '{0,6,12,18}', '19-48', '2020-12-02 12:00+00', 'infinity'),
  ('hrrr_prs', 'wrfprs',
   's3://noaa-hrrr-bdp-pds/hrrr.{date}/conus/hrrr.t{cycle}z.wrfprsf{step2}.grib2',
   NULL, NULL, NULL, NULL, '0-18', '-infinity', 'infinity'),
  ('hrrr_prs', 'wrfprs-to-f48',
   's3://noaa-hrrr-bdp-pds/hrrr.{date}/conus/hrrr.t{cycle}z.wrfprsf{step2}.grib2',
   NULL, NULL, NULL, '{0,6,12,18}', '19-48', '2020-12-02 12:00+00', 'infinity'),
  ('hrrr_nat', 'wrfnat',
   's3://noaa-hrrr-bdp-pds/hrrr.{date}/conus/hrrr.t{cycle}z.wrfnatf{step2}.grib2',
   NULL, NULL, NULL, NULL, '0-18', '-infinity', 'infinity'),
  ('hrrr_nat', 'wrfnat-to-f48',
   's3://noaa-hrrr-bdp-pds/hrrr.{date}/conus/hrrr.t{cycle}z.wrfnatf{step2}.grib2',
   NULL, NULL, NULL, '{0,6,12,18}', '19-48', '2020-12-02 12:00+00', 'infinity'),
  ('hrrr_subh', 'wrfsubh',
   's3://noaa-hrrr-bdp-pds/hrrr.{date}/conus/hrrr.t{cycle}z.wrfsubhf{step2}.grib2',
   NULL, NULL, NULL, NULL, NULL, '-infinity', 'infinity'),
  -- ECMWF ENS: perturbed members (and the control before 50r1) in enfo-ef, by layout era
  ('ecmwf_ens_0p25', 'enfo-ef',
   's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/enfo/{date}{cycle}0000-{step}h-enfo-ef.grib2',
   NULL, NULL, NULL, '{0,12}', '0-144/3,150-360/6', '2024-02-28 06:00+00', 'infinity'),
  ('ecmwf_ens_0p25', 'enfo-ef-short',
   's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/enfo/{date}{cycle}0000-{step}h-enfo-ef.grib2',
   NULL, NULL, NULL, '{6,18}', '0-144/3', '2024-02-28 06:00+00', 'infinity'),
  ('ecmwf_ens_0p25', 'enfo-ef-before-ifs',
   's3://ecmwf-forecasts/{date}/{cycle}z/0p25/enfo/{date}{cycle}0000-{step}h-enfo-ef.grib2',
   NULL, NULL, NULL, '{0,12}', '0-144/3,150-360/6', '2024-02-01 00:00+00', '2024-02-28 06:00+00'),
  ('ecmwf_ens_0p25', 'enfo-ef-0p4-beta',
   's3://ecmwf-forecasts/{date}/{cycle}z/0p4-beta/enfo/{date}{cycle}0000-{step}h-enfo-ef.grib2',
   NULL, NULL, NULL, '{0,12}', '0-144/3,150-360/6', '-infinity', '2024-02-01 00:00+00'),
  -- from 50r1 the control is the oper-fc control forecast
  ('ecmwf_ens_0p25', 'oper-fc-control',
   's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/oper/{date}{cycle}0000-{step}h-oper-fc.grib2',
   NULL, NULL, '{0}', '{0,12}', '0-144/3,150-360/6', '2026-05-12 06:00+00', 'infinity'),
  ('ecmwf_ens_0p25', 'oper-fc-control-short',
   's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/oper/{date}{cycle}0000-{step}h-oper-fc.grib2',
   NULL, NULL, '{0}', '{6,18}', '0-144/3', '2026-05-12 06:00+00', 'infinity'),
  -- ECMWF HRES: oper at 00/12z, scda (then oper) at 06/18z
  ('ecmwf_hres_0p25', 'oper',
   's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/oper/{date}{cycle}0000-{step}h-oper-fc.grib2',
   NULL, NULL, NULL, '{0,12}', NULL, '2024-02-28 06:00+00', 'infinity'),
  ('ecmwf_hres_0p25', 'oper-before-ifs',
   's3://ecmwf-forecasts/{date}/{cycle}z/0p25/oper/{date}{cycle}0000-{step}h-oper-fc.grib2',
   NULL, NULL, NULL, '{0,12}', NULL, '2024-02-01 00:00+00', '2024-02-28 06:00+00'),
  ('ecmwf_hres_0p25', 'oper-0p4-beta',
   's3://ecmwf-forecasts/{date}/{cycle}z/0p4-beta/oper/{date}{cycle}0000-{step}h-oper-fc.grib2',
   NULL, NULL, NULL, '{0,12}', NULL, '-infinity', '2024-02-01 00:00+00'),
  ('ecmwf_hres_0p25', 'oper-short',
   's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/oper/{date}{cycle}0000-{step}h-oper-fc.grib2',
   NULL, NULL, NULL, '{6,18}', '0-90/3', '2026-05-12 06:00+00', 'infinity'),
  ('ecmwf_hres_0p25', 'scda',
   's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/scda/{date}{cycle}0000-{step}h-scda-fc.grib2',
   NULL, NULL, NULL, '{6,18}', '0-90/3', '2024-02-28 06:00+00', '2026-05-12 06:00+00'),
  ('ecmwf_hres_0p25', 'scda-before-ifs',
   's3://ecmwf-forecasts/{date}/{cycle}z/0p25/scda/{date}{cycle}0000-{step}h-scda-fc.grib2',
   NULL, NULL, NULL, '{6,18}', '0-90/3', '2024-02-01 00:00+00', '2024-02-28 06:00+00'),
  ('ecmwf_hres_0p25', 'scda-0p4-beta',
   's3://ecmwf-forecasts/{date}/{cycle}z/0p4-beta/scda/{date}{cycle}0000-{step}h-scda-fc.grib2',
   NULL, NULL, NULL, '{6,18}', '0-90/3', '-infinity', '2024-02-01 00:00+00'),
  -- AIFS
  ('aifs_single', 'oper',
   's3://ecmwf-forecasts/{date}/{cycle}z/aifs-single/0p25/oper/{date}{cycle}0000-{step}h-oper-fc.grib2',
   NULL, NULL, NULL, NULL, NULL, '2025-02-25 06:00+00', 'infinity'),
  ('aifs_single', 'oper-experimental',
   's3://ecmwf-forecasts/{date}/{cycle}z/aifs-single/0p25/experimental/oper/{date}{cycle}0000-{step}h-oper-fc.grib2',
   NULL, NULL, NULL, NULL, NULL, '2025-02-09 12:00+00', '2025-02-25 06:00+00'),
  ('aifs_single', 'oper-aifs',
   's3://ecmwf-forecasts/{date}/{cycle}z/aifs/0p25/oper/{date}{cycle}0000-{step}h-oper-fc.grib2',
   NULL, NULL, NULL, NULL, NULL, '-infinity', '2025-02-09 12:00+00'),
  ('aifs_ens', 'enfo-pf',
   's3://ecmwf-forecasts/{date}/{cycle}z/aifs-ens/0p25/enfo/{date}{cycle}0000-{step}h-enfo-pf.grib2',
   NULL, NULL, gik.step_list('1-50'), NULL, NULL, '-infinity', 'infinity'),
  ('aifs_ens', 'enfo-cf',
   's3://ecmwf-forecasts/{date}/{cycle}z/aifs-ens/0p25/enfo/{date}{cycle}0000-{step}h-enfo-cf.grib2',
   NULL, NULL, '{0}', NULL, NULL, '-infinity', 'infinity')
) AS s(dataset, source, url_template, members, member_tokens, index_members, cycles, steps, valid_from, valid_until)
JOIN gik.dataset d ON d.name = s.dataset
-- the built-in datasets only: those of 0.1.0 and those made just now, not a user's of the same name
WHERE s.dataset IN ('gefs_0p25', 'ecmwf_ens_0p25') OR d.created = now()
ON CONFLICT (dataset_id, source) DO UPDATE SET valid_from = EXCLUDED.valid_from, valid_until = EXCLUDED.valid_until
    WHERE gik.dataset_source.url_template = EXCLUDED.url_template;

-- Public mirrors of the buckets above, in Herbie's order: AWS (the templates' own s3:// URLs), Google Cloud,
-- Azure, then the producer's own server (which keeps only recent runs).
INSERT INTO gik.mirror (prefix, name, priority, url_prefix, description) VALUES
  ('s3://noaa-gefs-pds/', 'aws', 1, 's3://noaa-gefs-pds/', 'NOAA Open Data Dissemination on AWS'),
  ('s3://noaa-gefs-pds/', 'google', 2, 'https://storage.googleapis.com/gfs-ensemble-forecast-system/', 'NOAA Open Data Dissemination on Google Cloud'),
  ('s3://noaa-gefs-pds/', 'azure', 3, 'https://noaagefs.blob.core.windows.net/gefs/', 'NOAA Open Data Dissemination on Azure'),
  ('s3://noaa-gefs-pds/', 'nomads', 4, 'https://nomads.ncep.noaa.gov/pub/data/nccf/com/gens/prod/', 'NCEP NOMADS (the last days only)'),
  ('s3://noaa-gfs-bdp-pds/', 'aws', 1, 's3://noaa-gfs-bdp-pds/', 'NOAA Open Data Dissemination on AWS'),
  ('s3://noaa-gfs-bdp-pds/', 'google', 2, 'https://storage.googleapis.com/global-forecast-system/', 'NOAA Open Data Dissemination on Google Cloud'),
  ('s3://noaa-gfs-bdp-pds/', 'azure', 3, 'https://noaagfs.blob.core.windows.net/gfs/', 'NOAA Open Data Dissemination on Azure'),
  ('s3://noaa-gfs-bdp-pds/', 'nomads', 4, 'https://nomads.ncep.noaa.gov/pub/data/nccf/com/gfs/prod/', 'NCEP NOMADS (the last days only)'),
  ('s3://noaa-hrrr-bdp-pds/', 'aws', 1, 's3://noaa-hrrr-bdp-pds/', 'NOAA Open Data Dissemination on AWS'),
  ('s3://noaa-hrrr-bdp-pds/', 'google', 2, 'https://storage.googleapis.com/high-resolution-rapid-refresh/', 'NOAA Open Data Dissemination on Google Cloud'),
  ('s3://noaa-hrrr-bdp-pds/', 'azure', 3, 'https://noaahrrr.blob.core.windows.net/hrrr/', 'NOAA Open Data Dissemination on Azure'),
  ('s3://noaa-hrrr-bdp-pds/', 'nomads', 4, 'https://nomads.ncep.noaa.gov/pub/data/nccf/com/hrrr/prod/', 'NCEP NOMADS (the last days only)'),
  ('s3://ecmwf-forecasts/', 'aws', 1, 's3://ecmwf-forecasts/', 'ECMWF open data on AWS'),
  ('s3://ecmwf-forecasts/', 'google', 2, 'https://storage.googleapis.com/ecmwf-open-data/', 'ECMWF open data on Google Cloud'),
  ('s3://ecmwf-forecasts/', 'azure', 3, 'https://ai4edataeuwest.blob.core.windows.net/ecmwf/', 'ECMWF open data on Azure'),
  ('s3://ecmwf-forecasts/', 'ecmwf', 4, 'https://data.ecmwf.int/forecasts/', 'ECMWF''s own data portal (the last days only)');

-- The ensemble's members exclude the mean and spread; deterministic products have none.
CREATE OR REPLACE FUNCTION gik.accumulation_refs(
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
                                      -- the ensemble's members, not the mean (-1) or spread (-2); NULL: deterministic
                                      (SELECT array_agg(DISTINCT c.member) FROM gik.chunk_ref c
                                       WHERE c.dataset_id = d.dataset_id AND c.init_time = accumulation_refs.init_time
                                         AND (c.member >= 0 OR c.member IS NULL)))) x
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
                  AND c.member IS NOT DISTINCT FROM m AND c.variable = accumulation_refs.variable
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
                                AND c.member IS NOT DISTINCT FROM m AND c.variable = accumulation_refs.variable AND c.stat = 'acc') w2) || '.',
                        'No window of this field was ingested for this member.'),
                    HINT = 'Check that the run is complete (gik.run) and that the window matches the dataset''s accumulation periods.';
            END IF;
            member := m; ref := NULL; weight := NULL; step_start := NULL; step_end := NULL; mm_per_unit := NULL;
            RETURN NEXT;
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION gik.accumulation_refs(text, timestamptz, float8, float8, int[], text, text, bool) IS
'For each member (as asked; by default the run''s ensemble members, not its mean or spread, or the dataset''s with missing_ok), the messages whose signed sum is exactly the accumulation over [window_start, window_end] hours, chosen from the windows stored at ingestion (GEFS: consecutive 3/6-hour buckets, never 0-3 plus 0-6; ECMWF: tp[b] - tp[a]). A member that cannot be covered exactly raises an error, or with missing_ok gets one row with a NULL ref.';


-- Exceedance stores member totals uncompressed.
CREATE OR REPLACE FUNCTION gik.exceedance(
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
        -- member totals are read once or twice: compressing them cost more than the rest of the product
        ALTER TABLE pg_temp.gik_totals ALTER COLUMN total SET STORAGE EXTERNAL;
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
    IF n_used < current_setting('gik.min_members')::int THEN
        RAISE EXCEPTION USING ERRCODE = 'no_data_found',
            MESSAGE = format('only %s of %s members of %s at %s cover [%s, %s] h, fewer than gik.min_members (%s)', n_used, n_exp,
                             array_to_string(datasets, ', '), init_time, window_start, window_end, current_setting('gik.min_members')),
            DETAIL = 'Missing: ' || array_to_string(missing[1:10], ', ')
                     || CASE WHEN cardinality(missing) > 10 THEN format(' and %s more.', cardinality(missing) - 10) ELSE '.' END,
            HINT = 'Lower gik.min_members to go on with fewer members (gik.run_members shows what each step holds).';
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
'The one-call product: per threshold, the fraction of members whose precipitation over [window_start, window_end] hours is >= the threshold (mm), as a grid with its description, for one dataset or a grand ensemble of several on a common grid. Members that cannot be used (missing files or windows) are listed in members_missing and not counted in members_used; fewer than gik.min_members is an error.';

-- Run completeness: the newest published run across the mirrors, and what each step of a run holds.
-- The newest run of a dataset whose last step is published on one of its mirrors, as Herbie's "latest".
CREATE FUNCTION gik.latest_run(dataset text, as_of timestamptz DEFAULT now(), lookback interval DEFAULT '2 days')
RETURNS timestamptz
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    d     gik.dataset;
    best  timestamptz;
BEGIN
    d := gik.dataset_named(latest_run.dataset);
    IF as_of IS NULL OR lookback IS NULL OR lookback <= interval '0' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'invalid arguments to gik.latest_run',
            DETAIL = 'as_of must be given and lookback must be positive.';
    END IF;
    -- Every cycle in (as_of - lookback, as_of]: the index files of its last step (each member's, each series'),
    -- on every mirror; a run is complete when each of them is on one mirror. One round of HEAD requests.
    WITH cycles AS (
        SELECT (day + c * interval '1 hour') AT TIME ZONE 'UTC' AS t
        FROM generate_series(date_trunc('day', (as_of - lookback) AT TIME ZONE 'UTC'), as_of AT TIME ZONE 'UTC',
                             interval '1 day') AS day, unnest(d.cycles) AS c),
    last_files AS (
        SELECT y.t, p.file_no, p.index_url
        FROM cycles y
        CROSS JOIN LATERAL (SELECT pf.*, max(pf.step) OVER () AS last_step
                            FROM gik.plan_files(d.name, y.t) pf) p
        WHERE y.t > as_of - lookback AND y.t <= as_of AND p.step = p.last_step),
    lf AS (
        SELECT array_agg(l.index_url ORDER BY l.t, l.file_no) AS idx, array_agg(l.t ORDER BY l.t, l.file_no) AS ts,
               array_agg(l.file_no ORDER BY l.t, l.file_no) AS nos FROM last_files l),
    probes AS (
        SELECT row_number() OVER ()::int AS ord, lf.ts[r.ord] AS t, lf.nos[r.ord] AS file_no, r.url
        FROM lf CROSS JOIN LATERAL gik.mirror_routes(lf.idx) r),
    found AS (
        SELECT DISTINCT p.t, p.file_no
        FROM gik.fetch_many((SELECT array_agg(url ORDER BY ord) FROM probes), missing_ok => true, head => true,
                            unavailable_ok => true) h
        JOIN probes p USING (ord) WHERE h.found)
    SELECT max(l.t) INTO best FROM (SELECT t, count(*) AS n FROM last_files GROUP BY t) l
    WHERE l.n = (SELECT count(*) FROM found f WHERE f.t = l.t);
    RETURN best;
END $$;
COMMENT ON FUNCTION gik.latest_run(text, timestamptz, interval) IS
'The newest cycle of a dataset in (as_of - lookback, as_of] whose last step is published: every index file of that step (each member''s, each file series'') found on one of its mirrors (gik.mirror_routes), by one round of concurrent HEAD requests. NULL when none is.';

-- What each step of a run holds: the ensemble members with references, and those missing.
CREATE VIEW gik.run_members AS
SELECT d.name AS dataset, x.init_time, x.step, coalesce(cardinality(x.present), 0) AS members_present,
       cardinality(d.members) AS members_expected, x.present AS members,
       ARRAY(SELECT m FROM unnest(d.members) m WHERE m <> ALL (coalesce(x.present, '{}')) ORDER BY m) AS members_missing
FROM (SELECT r.dataset_id, r.init_time, f.step,
             array_agg(DISTINCT p.member ORDER BY p.member) FILTER (WHERE p.member >= 0) AS present
      FROM gik.run r
      JOIN gik.file f ON f.run_id = r.run_id AND f.valid_to IS NULL
      LEFT JOIN gik.chunk_pack p ON p.file_id = f.file_id AND p.dataset_id = r.dataset_id AND p.init_time = r.init_time
      GROUP BY 1, 2, 3) x
JOIN gik.dataset d ON d.dataset_id = x.dataset_id;
COMMENT ON VIEW gik.run_members IS
'Per run and forecast step: how many of the dataset''s ensemble members have references (not the mean or spread), which, and which are missing (a file not published, or an ECMWF file holding fewer members than the ensemble). Deterministic datasets show none. Filter on dataset and init_time.';

CREATE FUNCTION gik.decoders()
RETURNS TABLE (slot int, pid int, busy bool, memory_limit_mb int, region_bytes int8, landlock_abi int, sandbox text)
AS 'MODULE_PATHNAME', 'gik_decoders'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.decoders() IS
'This session''s decoder processes (pg_gik_decoder, one per gik.decode_threads, started on first use): process id, whether it is decoding, its address-space limit, its shared region, and its sandbox (Landlock ABI, 0 when the kernel has none, and a sentence on what it may do).';

-- Privileges of the new and re-created functions, as sql/pg_gik/99_privileges.sql gives them.
REVOKE ALL ON FUNCTION gik.file_info(text), gik.fetch_many(text[], bool, bool, bool), gik.is_server_file(text),
    gik.reads_server_files(name), gik.dataset_source_guard(), gik.decoders(), gik.url_allowed(text),
    gik.gefs_member_tokens(int[]), gik.mirror_urls(text), gik.mirror_routes(text[]),
    gik.latest_run(text, timestamptz, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gik.file_info(text), gik.fetch_many(text[], bool, bool, bool), gik.is_server_file(text),
    gik.reads_server_files(name), gik.dataset_source_guard(), gik.decoders(), gik.url_allowed(text),
    gik.gefs_member_tokens(int[]), gik.mirror_urls(text), gik.mirror_routes(text[]),
    gik.latest_run(text, timestamptz, interval) TO gik_ingest;
GRANT EXECUTE ON FUNCTION gik.decoders() TO gik_reader;
REVOKE ALL ON TABLE gik.mirror FROM PUBLIC;
GRANT SELECT ON TABLE gik.mirror TO gik_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE gik.mirror TO gik_ingest;
REVOKE ALL ON TABLE gik.run_members FROM PUBLIC;
GRANT SELECT ON TABLE gik.run_members TO gik_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE gik.run_members TO gik_ingest;

-- Projected and Gaussian grids (branch grids): grid descriptions, message metadata and gik.grid carry
-- the grid's projection (proj); gik.grid() lays projected grids out north-up as gik.decode() does.
ALTER TYPE gik.grid_desc ADD ATTRIBUTE proj text;

COMMENT ON TYPE gik.grid_desc IS
'A grid description. For decoded regular lat/lon grids: rows north to south from lat_first, columns west to east from lon_first (cell centres), scanning_mode 0. Projected grids (lambert, polar_stereographic, mercator) carry their PROJ string in proj and di, dj in metres; decoded, they are north-up in their projection with lat/lon_first the north-west and lat/lon_last the south-east cell centre. Gaussian grids carry ''+proj=gik_gaussian +N=..'' (and +pl for reduced ones).';

ALTER TYPE gik.message_meta ADD ATTRIBUTE proj text;

COMMENT ON TYPE gik.message_meta IS 'What ecCodes says about one GRIB message: parameter, level, step, member, packing and grid (projected grids: di, dj in metres and the PROJ string in proj).';

ALTER TABLE gik.grid ADD COLUMN proj text;
DO $$
DECLARE
    c name;
BEGIN
    FOR c IN SELECT conname FROM pg_catalog.pg_constraint WHERE conrelid = 'gik.grid'::regclass AND contype = 'u' LOOP
        EXECUTE pg_catalog.format('ALTER TABLE gik.grid DROP CONSTRAINT %I', c);
    END LOOP;
END $$;
ALTER TABLE gik.grid ADD CONSTRAINT grid_geometry_key
    UNIQUE NULLS NOT DISTINCT (grid_type, ni, nj, num_points, lat_first, lon_first, lat_last, lon_last, di, dj, scanning_mode, proj);

CREATE OR REPLACE FUNCTION gik.grid_id_of(m gik.message_meta) RETURNS int
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    id int;
BEGIN
    SELECT g.grid_id INTO id FROM gik.grid g
    WHERE g.grid_type = coalesce(m.grid_type, 'unknown') AND g.ni IS NOT DISTINCT FROM m.ni
      AND g.nj IS NOT DISTINCT FROM m.nj AND g.num_points = m.num_points
      AND g.lat_first IS NOT DISTINCT FROM m.lat_first AND g.lon_first IS NOT DISTINCT FROM m.lon_first
      AND g.lat_last IS NOT DISTINCT FROM m.lat_last AND g.lon_last IS NOT DISTINCT FROM m.lon_last
      AND g.di IS NOT DISTINCT FROM m.di AND g.dj IS NOT DISTINCT FROM m.dj AND g.scanning_mode = m.scanning_mode
      AND g.proj IS NOT DISTINCT FROM m.proj;
    IF NOT FOUND THEN
        INSERT INTO gik.grid (grid_type, ni, nj, num_points, lat_first, lon_first, lat_last, lon_last, di, dj, scanning_mode, proj)
        VALUES (coalesce(m.grid_type, 'unknown'), m.ni, m.nj, m.num_points, m.lat_first, m.lon_first, m.lat_last,
                m.lon_last, m.di, m.dj, m.scanning_mode, m.proj)
        ON CONFLICT DO NOTHING
        RETURNING grid_id INTO id;
        IF id IS NULL THEN
            RETURN gik.grid_id_of(m);	-- another session inserted it meanwhile
        END IF;
    END IF;
    RETURN id;
END $$;
COMMENT ON FUNCTION gik.grid_id_of(gik.message_meta) IS 'The gik.grid row of a message''s grid, created on first sight.';

CREATE OR REPLACE FUNCTION gik.grid(url text, byte_offset int8, byte_length int8,
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

CREATE OR REPLACE FUNCTION gik.field_grid(field_id smallint) RETURNS gik.grid_desc
LANGUAGE sql STABLE PARALLEL SAFE
RETURN (SELECT ROW(g.grid_type, g.ni, g.nj, g.lat_first, g.lon_first, g.lat_last, g.lon_last, g.di, g.dj,
                   g.scanning_mode, g.proj)::gik.grid_desc
        FROM gik.field f JOIN gik.grid g USING (grid_id) WHERE f.field_id = field_grid.field_id);
COMMENT ON FUNCTION gik.field_grid(smallint) IS 'The source grid of a field, from its template (no fetch).';

COMMENT ON FUNCTION gik.grid_lats(gik.grid_desc, text, gik.bbox) IS
'Latitudes of the rows (north to south) of a regular lat/lon grid, after the longitude convention and region; of every cell (float8[nj][ni], north-up) of a projected grid; of the rows of a regular_gg grid and of every point (scanning order) of a reduced_gg grid.';

COMMENT ON FUNCTION gik.grid_lons(gik.grid_desc, text, gik.bbox) IS
'Longitudes of the columns (west to east, continuous across the seam) of a regular lat/lon grid, after the longitude convention and region; of every cell (float8[nj][ni], north-up, in the convention) of a projected grid; of the columns of a regular_gg grid and of every point of a reduced_gg grid.';


-- sql/pg_gik/85_regrid.sql
CREATE TYPE gik.raster_parts AS (wkb bytea, proj text);
COMMENT ON TYPE gik.raster_parts IS 'Raster WKB of a decoded message and the PROJ string of its grid (NULL for lat/lon).';

CREATE FUNCTION gik.decode_raster_parts(url text, byte_offset int8, byte_length int8,
                                        lon text DEFAULT 'source', region gik.bbox DEFAULT NULL)
RETURNS gik.raster_parts
AS 'MODULE_PATHNAME', 'gik_decode_raster_parts'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.decode_raster_parts(text, int8, int8, text, gik.bbox) IS
'Decode one message into raster WKB as gik.decode_raster_wkb() does, with its grid''s PROJ string: a projected grid (lambert, polar_stereographic, mercator) gives a raster in its own projection (metres, SRID 0) and proj; a lat/lon grid SRID 4326 and NULL. pg_gik_postgis gives the raster the SRID of proj.';

REVOKE ALL ON FUNCTION gik.decode_raster_parts(text, int8, int8, text, gik.bbox) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gik.decode_raster_parts(text, int8, int8, text, gik.bbox) TO gik_ingest;
GRANT EXECUTE ON FUNCTION gik.decode_raster_parts(text, int8, int8, text, gik.bbox) TO gik_reader;

-- Regridding (branch grids): gik.regrid, gik.regrid_cache, and gik.exceedance with target => and
-- method => and a regrid_method column (a new signature and result: the old one is dropped).
CREATE FUNCTION gik.regrid(vals real[], source gik.grid_desc, target gik.grid_desc, method text DEFAULT 'bilinear')
RETURNS real[]
AS 'MODULE_PATHNAME', 'gik_regrid'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.regrid(real[], gik.grid_desc, gik.grid_desc, text) IS
'A north-up grid (real[nj][ni] on source, as gik.decode() returns it) on another grid, real[nj][ni] on target. method: ''bilinear'' (source regular lat/lon or projected, target any; NaN where a target centre is outside the source''s centres or next to a NaN) or ''conservative'' (first order, to a regular lat/lon target from a lat/lon or projected source: each target cell is the area-weighted mean of the source cells it overlaps, NaN sources left out; keeps totals such as precipitation). The weights are computed once per grid pair and method and kept in the session (gik.regrid_cache()).';

CREATE FUNCTION gik.regrid_cache()
RETURNS TABLE (method text, source_cells int8, target_cells int8, bytes int8, uses int8)
AS 'MODULE_PATHNAME', 'gik_regrid_cache'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.regrid_cache() IS
'This session''s cached regridding weights, most recently used first: method, cells of the two grids, bytes held and uses (at most 256 MB in all).';
DROP FUNCTION gik.exceedance(text, timestamptz, float8, float8, real[], gik.bbox, text);
DROP FUNCTION gik.exceedance(text[], timestamptz, float8, float8, real[], gik.bbox, text);
CREATE FUNCTION gik.exceedance(
    datasets text[], init_time timestamptz, window_start float8, window_end float8, thresholds real[],
    region gik.bbox DEFAULT NULL, lon text DEFAULT '-180..180', target gik.grid_desc DEFAULT NULL,
    method text DEFAULT NULL)
RETURNS TABLE (threshold real, probability real[], grid gik.grid_desc, members_used int, members_expected int,
               members_missing text[], regrid_method text)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    probs    real[];
    g        gik.grid_desc;
    n_used   int;
    n_exp    int;
    missing  text[];
    n_grids  int;
    how      text;
BEGIN
    IF thresholds IS NULL OR cardinality(thresholds) = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'no thresholds given';
    END IF;
    IF to_regclass('pg_temp.gik_totals') IS NULL THEN
        CREATE TEMP TABLE gik_totals (dataset text, member int, grid gik.grid_desc, total real[]) ON COMMIT DROP;
        -- member totals are read once or twice: compressing them cost more than the rest of the product
        ALTER TABLE pg_temp.gik_totals ALTER COLUMN total SET STORAGE EXTERNAL;
    ELSE
        TRUNCATE pg_temp.gik_totals;
    END IF;
    INSERT INTO gik_totals
    SELECT ds, a.member, a.grid, a.total
    FROM unnest(datasets) ds,
         LATERAL gik.accumulations(ds, init_time, window_start, window_end, region, lon, missing_ok => true) a;

    -- every member on the target grid (precipitation totals: conservative unless asked otherwise)
    IF NOT target IS NULL THEN	-- (a row IS NOT NULL only when every field is)
        how := lower(coalesce(method, 'conservative'));
        target := gik.output_grid(target);	-- north-up, as decodes lay grids out
        UPDATE gik_totals t SET total = gik.regrid(t.total, t.grid, target, how), grid = target
        WHERE t.total IS NOT NULL AND t.grid IS DISTINCT FROM target;
    ELSIF method IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value', MESSAGE = 'a regridding method needs a target grid',
            HINT = 'Pass target => a gik.grid_desc, e.g. gik.field_grid() of one dataset''s field or gik.output_grid() of it with a region.';
    END IF;
    SELECT count(DISTINCT t.grid) INTO n_grids FROM gik_totals t WHERE t.total IS NOT NULL;
    IF n_grids > 1 THEN
        RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
            MESSAGE = 'the ensembles are on different grids',
            DETAIL = 'Grids: ' || (SELECT string_agg(DISTINCT t.dataset || ' ' || t.grid::text, '; ') FROM gik_totals t WHERE t.total IS NOT NULL) || '.',
            HINT = 'Choose one longitude convention (lon => ''-180..180''), or regrid every member to one grid with target => (and method => ''conservative'' or ''bilinear'').';
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
    IF n_used < current_setting('gik.min_members')::int THEN
        RAISE EXCEPTION USING ERRCODE = 'no_data_found',
            MESSAGE = format('only %s of %s members of %s at %s cover [%s, %s] h, fewer than gik.min_members (%s)', n_used, n_exp,
                             array_to_string(datasets, ', '), init_time, window_start, window_end, current_setting('gik.min_members')),
            DETAIL = 'Missing: ' || array_to_string(missing[1:10], ', ')
                     || CASE WHEN cardinality(missing) > 10 THEN format(' and %s more.', cardinality(missing) - 10) ELSE '.' END,
            HINT = 'Lower gik.min_members to go on with fewer members (gik.run_members shows what each step holds).';
    END IF;
    FOR i IN 1..cardinality(thresholds) LOOP
        threshold := thresholds[i];
        probability := gik.grid_band(probs, i);
        grid := g;
        members_used := n_used;
        members_expected := n_exp;
        members_missing := coalesce(missing, '{}');
        regrid_method := how;
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION gik.exceedance(text[], timestamptz, float8, float8, real[], gik.bbox, text, gik.grid_desc, text) IS
'The one-call product: per threshold, the fraction of members whose precipitation over [window_start, window_end] hours is >= the threshold (mm), as a grid with its description, for one dataset or a grand ensemble of several on a common grid. Members that cannot be used (missing files or windows) are listed in members_missing and not counted in members_used; fewer than gik.min_members is an error. With target, every member not already on that grid is regridded to it first (gik.regrid(), method ''conservative'' by default, or ''bilinear''), so ensembles on different grids (GEFS 0.5 with ECMWF 0.25, HRRR with GEFS) combine; regrid_method says which was used (NULL: none).';
CREATE FUNCTION gik.exceedance(
    dataset text, init_time timestamptz, window_start float8, window_end float8, thresholds real[],
    region gik.bbox DEFAULT NULL, lon text DEFAULT '-180..180', target gik.grid_desc DEFAULT NULL,
    method text DEFAULT NULL)
RETURNS TABLE (threshold real, probability real[], grid gik.grid_desc, members_used int, members_expected int,
               members_missing text[], regrid_method text)
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT * FROM gik.exceedance(CASE WHEN left(dataset, 1) = '{' THEN dataset::text[] ELSE ARRAY[dataset] END,
                                 init_time, window_start, window_end, thresholds, region, lon, target, method);
END;
COMMENT ON FUNCTION gik.exceedance(text, timestamptz, float8, float8, real[], gik.bbox, text, gik.grid_desc, text) IS
'gik.exceedance() for one dataset (a literal such as ''{gefs_0p25,ecmwf_ens_0p25}'' is read as a list).';
REVOKE ALL ON FUNCTION gik.regrid(real[], gik.grid_desc, gik.grid_desc, text), gik.regrid_cache(),
    gik.exceedance(text[], timestamptz, float8, float8, real[], gik.bbox, text, gik.grid_desc, text),
    gik.exceedance(text, timestamptz, float8, float8, real[], gik.bbox, text, gik.grid_desc, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gik.regrid(real[], gik.grid_desc, gik.grid_desc, text), gik.regrid_cache(),
    gik.exceedance(text[], timestamptz, float8, float8, real[], gik.bbox, text, gik.grid_desc, text),
    gik.exceedance(text, timestamptz, float8, float8, real[], gik.bbox, text, gik.grid_desc, text) TO gik_ingest;
GRANT EXECUTE ON FUNCTION gik.regrid(real[], gik.grid_desc, gik.grid_desc, text), gik.regrid_cache(),
    gik.exceedance(text[], timestamptz, float8, float8, real[], gik.bbox, text, gik.grid_desc, text),
    gik.exceedance(text, timestamptz, float8, float8, real[], gik.bbox, text, gik.grid_desc, text) TO gik_reader;

-- pg_gik 0.2.0 fetches only when preloaded (see _PG_init): say so now, as a fresh install does.
DO $$
BEGIN
    IF NOT 'pg_gik' = ANY (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ',')) THEN
        RAISE WARNING 'pg_gik is not in shared_preload_libraries: it will refuse to fetch until it is'
            USING HINT = 'Add pg_gik to shared_preload_libraries in postgresql.conf and restart the server.';
    END IF;
END $$;

-- ---- Products (issue 15): definitions, products built after ingestion, stored grids (sql/pg_gik/92_products.sql),
-- and gik.ingest_latest calling gik.build_products after its runs (sql/pg_gik/94_scheduler.sql).
-- Products: the forecaster's morning products (datasets, windows, thresholds, region, statistics),
-- built and stored after each ingestion (gik.ingest_latest calls gik.build_products), read back fast.

CREATE TABLE gik.product_def (
    product_id    int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9_]{0,40}$'),
    datasets      text[] NOT NULL CHECK (cardinality(datasets) > 0),
    window_start  float8[] NOT NULL,
    window_end    float8[] NOT NULL,
    thresholds    real[] NOT NULL DEFAULT '{}',
    region        gik.bbox,
    lon           text NOT NULL DEFAULT '-180..180' CHECK (lon IN ('-180..180', '0..360', 'source')),
    statistics    text[] NOT NULL DEFAULT '{exceedance}'
                  CHECK (cardinality(statistics) > 0 AND statistics <@ '{exceedance,mean,min,max,p10,p50,p90}'),
    min_members   int NOT NULL DEFAULT 1 CHECK (min_members >= 1),
    palette       text NOT NULL DEFAULT 'ecmwf',
    classes       real[],
    raster        bool NOT NULL DEFAULT true,
    enabled       bool NOT NULL DEFAULT true,
    description   text,
    defined       timestamptz NOT NULL DEFAULT now(),
    CHECK (cardinality(window_start) > 0 AND cardinality(window_start) = cardinality(window_end)),
    CHECK (NOT 'exceedance' = ANY (statistics) OR cardinality(thresholds) > 0)
);
COMMENT ON TABLE gik.product_def IS
'Product definitions (gik.define_product): the datasets (one, or several forming a grand ensemble), the accumulation windows in hours (window_start[i], window_end[i]), the exceedance thresholds in mm, the region and longitude convention, the statistics (exceedance, mean, min, max, p10, p50, p90 of the members'' totals), the fewest members a window may be built from, and output options: map palette and classes, and whether pg_gik_postgis publishes a raster table (gik_products.<name>).';

-- One stored grid of a product: one run (its versions), one window, one statistic (and threshold).
CREATE TABLE gik.product_result (
    result_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id       int NOT NULL REFERENCES gik.product_def ON DELETE CASCADE,
    init_time        timestamptz NOT NULL,
    versions         int[] NOT NULL,
    complete         bool NOT NULL,
    window_start     float8 NOT NULL,
    window_end       float8 NOT NULL,
    statistic        text NOT NULL,
    threshold        real,
    grid             gik.grid_desc NOT NULL,
    vals             real[] NOT NULL,
    members_used     int NOT NULL,
    members_expected int,
    members_missing  text[],
    compute_ms       float8,
    computed         timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE NULLS NOT DISTINCT (product_id, init_time, versions, window_start, window_end, statistic, threshold)
);
-- grids are read whole and do not compress: store them uncompressed
ALTER TABLE gik.product_result ALTER COLUMN vals SET STORAGE EXTERNAL;
CREATE INDEX ON gik.product_result (product_id, init_time DESC, result_id DESC);
COMMENT ON TABLE gik.product_result IS
'Stored products: one grid per product, run (init_time and the run version of each of its datasets, in the product''s order), window, statistic and threshold (exceedance only; NULL otherwise), with the members used, expected and missing, whether every run was complete when it was built, and how long the window took to compute. Older versions stay; gik.product() reads the newest.';

-- One attempt at building a product for one run.
CREATE TABLE gik.product_log (
    log_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id      int NOT NULL REFERENCES gik.product_def ON DELETE CASCADE,
    init_time       timestamptz NOT NULL,
    versions        int[] NOT NULL,
    status          text NOT NULL CHECK (status IN ('complete', 'partial', 'waiting', 'failed')),
    windows_built   int NOT NULL DEFAULT 0,
    windows_waiting int NOT NULL DEFAULT 0,
    sqlstate        text,
    error           text,
    error_detail    text,
    started         timestamptz NOT NULL,
    finished        timestamptz NOT NULL DEFAULT clock_timestamp(),
    total_ms        float8
);
CREATE INDEX ON gik.product_log (product_id, init_time, log_id);
COMMENT ON TABLE gik.product_log IS
'One row per attempt at building a product for a run: complete (every window stored), partial (some windows have fewer members than the product''s min_members: built again when the run''s version changes), waiting (none has), or failed (SQLSTATE, message and detail; nothing of the attempt is stored, and it is retried with a backoff).';

-- Accumulation windows from a compact list: 'A-B' one window, 'A-B/S' consecutive S-hour windows.
CREATE FUNCTION gik.product_windows(spec text)
RETURNS TABLE (window_start float8, window_end float8)
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    item text;
    m    text[];
BEGIN
    FOREACH item IN ARRAY string_to_array(replace(spec, ' ', ''), ',') LOOP
        -- no backslashes: the body is parsed with the session's standard_conforming_strings
        m := regexp_match(item, '^([0-9]+(?:[.][0-9]+)?)-([0-9]+(?:[.][0-9]+)?)(?:/([0-9]+(?:[.][0-9]+)?))?$');
        IF m IS NULL OR m[2]::float8 <= m[1]::float8 OR m[3]::float8 <= 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('invalid product window "%s" in "%s"', item, spec),
                HINT = 'Write A-B for one window of hours, A-B/S for consecutive S-hour windows, e.g. ''0-120/24'' or ''0-72''.';
        END IF;
        IF m[3] IS NULL THEN
            window_start := m[1]; window_end := m[2];
            RETURN NEXT;
        ELSE
            FOR k IN 0 .. ceil((m[2]::float8 - m[1]::float8) / m[3]::float8)::int - 1 LOOP
                window_start := m[1]::float8 + k * m[3]::float8;
                window_end := least(window_start + m[3]::float8, m[2]::float8);
                RETURN NEXT;
            END LOOP;
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION gik.product_windows(text) IS
'Accumulation windows in hours from a list of ''A-B'' (one window) and ''A-B/S'' (consecutive S-hour windows from A to B) items: ''0-120/24'' gives 0-24, 24-48, ..., 96-120.';

-- Define (or redefine) a product; a redefinition drops what was built from the old definition.
CREATE FUNCTION gik.define_product(
    name text, datasets text[], windows text DEFAULT '0-24', thresholds real[] DEFAULT '{}',
    region gik.bbox DEFAULT NULL, statistics text[] DEFAULT '{exceedance}', lon text DEFAULT '-180..180',
    min_members int DEFAULT 1, palette text DEFAULT 'ecmwf', classes real[] DEFAULT NULL,
    raster bool DEFAULT true, description text DEFAULT NULL)
RETURNS gik.product_def
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p  gik.product_def;
    ds text;
BEGIN
    IF datasets IS NULL OR cardinality(datasets) = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('product "%s" names no dataset', define_product.name);
    END IF;
    FOREACH ds IN ARRAY datasets LOOP
        PERFORM gik.dataset_named(ds);
    END LOOP;
    IF 'exceedance' = ANY (statistics) AND coalesce(cardinality(thresholds), 0) = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('product "%s" computes exceedance but has no thresholds', define_product.name),
            HINT = 'Pass thresholds in mm, e.g. thresholds => ''{10,25,50}''.';
    END IF;
    DELETE FROM gik.product_def x WHERE x.name = define_product.name;
    INSERT INTO gik.product_def (name, datasets, window_start, window_end, thresholds, region, lon, statistics,
                                 min_members, palette, classes, raster, description)
    SELECT define_product.name, datasets, array_agg(w.window_start ORDER BY w.window_start, w.window_end),
           array_agg(w.window_end ORDER BY w.window_start, w.window_end), coalesce(thresholds, '{}'), region,
           coalesce(lon, '-180..180'), statistics, coalesce(min_members, 1), coalesce(palette, 'ecmwf'), classes,
           coalesce(raster, true), description
    FROM gik.product_windows(coalesce(windows, '0-24')) w
    RETURNING * INTO p;
    RETURN p;
END $$;
COMMENT ON FUNCTION gik.define_product(text, text[], text, real[], gik.bbox, text[], text, int, text, real[], bool, text) IS
'Define a product: datasets (several form a grand ensemble on their common grid), windows (gik.product_windows syntax: ''0-120/24'' for day 1 to day 5, ''0-72'' for one window), thresholds in mm, region and longitude convention, statistics (exceedance, mean, min, max, p10, p50, p90), the fewest members a window is built from, the map palette and classes, and raster (publish gik_products.<name> when pg_gik_postgis is installed). Redefining a product drops its stored results. Returns the definition.';

CREATE FUNCTION gik.product_named(name text) RETURNS gik.product_def
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p gik.product_def;
BEGIN
    SELECT x.* INTO p FROM gik.product_def x WHERE x.name = product_named.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object', MESSAGE = format('product "%s" does not exist', product_named.name),
            HINT = 'Products are listed in gik.product_def; define one with gik.define_product().';
    END IF;
    RETURN p;
END $$;
COMMENT ON FUNCTION gik.product_named(text) IS 'The definition of a product; an error naming it when it does not exist.';

-- The current version of each of a product's runs at init_time (NULL for a dataset without that run).
CREATE FUNCTION gik.product_runs(product_id int, init_time timestamptz,
                                 OUT versions int[], OUT runs_found int, OUT complete bool)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT array_agg(r.version ORDER BY d.ord), count(r.run_id)::int, coalesce(bool_and(r.status = 'complete'), false)
    FROM gik.product_def p
    CROSS JOIN LATERAL unnest(p.datasets) WITH ORDINALITY AS d(name, ord)
    LEFT JOIN gik.dataset ds ON ds.name = d.name
    LEFT JOIN gik.run r ON r.dataset_id = ds.dataset_id AND r.init_time = product_runs.init_time
    WHERE p.product_id = product_runs.product_id;
END;
COMMENT ON FUNCTION gik.product_runs(int, timestamptz) IS
'For a product and an init time: the current run version of each of its datasets (in its order; NULL where the run is not ingested), how many of the runs exist, and whether all are complete.';

-- Build one product for one run: every window whose members meet min_members; logged, never raised.
CREATE FUNCTION gik.build_product(name text, init_time timestamptz, force bool DEFAULT false)
RETURNS gik.product_log
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p        gik.product_def;
    runs     record;
    l        gik.product_log;
    t0       timestamptz := clock_timestamp();
    tw       timestamptz;
    ms       float8;
    built    int := 0;
    waiting  int := 0;
    others   text[];
    e        record;
    n        int;
    st       text;
    msg      text;
    det      text;
    hint     text;
BEGIN
    p := gik.product_named(build_product.name);
    runs := gik.product_runs(p.product_id, build_product.init_time);
    IF runs.runs_found < cardinality(p.datasets) THEN
        INSERT INTO gik.product_log (product_id, init_time, versions, status, error, started, total_ms)
        VALUES (p.product_id, build_product.init_time, runs.versions, 'waiting',
                format('not every run of %s at %s is ingested', array_to_string(p.datasets, ', '),
                       to_char(build_product.init_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24"z"')),
                t0, extract(epoch FROM clock_timestamp() - t0) * 1000)
        RETURNING * INTO l;
        RETURN l;
    END IF;
    others := ARRAY(SELECT s FROM unnest(p.statistics) s WHERE s <> 'exceedance');
    BEGIN
        IF force THEN
            DELETE FROM gik.product_result x WHERE x.product_id = p.product_id AND x.init_time = build_product.init_time
              AND x.versions = runs.versions;
        END IF;
        PERFORM pg_catalog.set_config('gik.min_members', p.min_members::text, true);
        FOR i IN 1 .. cardinality(p.window_start) LOOP
            tw := clock_timestamp();
            BEGIN
                -- gik.exceedance checks the members and grids, and leaves the members' totals of this
                -- window in pg_temp.gik_totals, from which the other statistics are computed.
                n := 0;
                FOR e IN SELECT * FROM gik.exceedance(p.datasets, build_product.init_time, p.window_start[i], p.window_end[i],
                                                      CASE WHEN cardinality(p.thresholds) > 0 THEN p.thresholds ELSE '{0}' END,
                                                      p.region, p.lon)
                LOOP
                    n := n + 1;
                    IF 'exceedance' = ANY (p.statistics) THEN
                        INSERT INTO gik.product_result (product_id, init_time, versions, complete, window_start, window_end,
                                                        statistic, threshold, grid, vals, members_used, members_expected,
                                                        members_missing)
                        VALUES (p.product_id, build_product.init_time, runs.versions, runs.complete, p.window_start[i],
                                p.window_end[i], 'exceedance', e.threshold, e.grid, e.probability, e.members_used,
                                e.members_expected, e.members_missing);
                    END IF;
                END LOOP;
                IF cardinality(others) > 0 THEN
                    INSERT INTO gik.product_result (product_id, init_time, versions, complete, window_start, window_end,
                                                    statistic, grid, vals, members_used, members_expected, members_missing)
                    SELECT p.product_id, build_product.init_time, runs.versions, runs.complete, p.window_start[i],
                           p.window_end[i], s.stat, e.grid, s.vals, e.members_used, e.members_expected, e.members_missing
                    FROM (SELECT gik.ens_mean(t.total) AS mean, gik.ens_min(t.total) AS mn, gik.ens_max(t.total) AS mx,
                                 gik.ens_percentile(t.total, '{0.1,0.5,0.9}') AS pct
                          FROM pg_temp.gik_totals t WHERE t.total IS NOT NULL) a
                    CROSS JOIN LATERAL (VALUES ('mean', a.mean), ('min', a.mn), ('max', a.mx),
                                               ('p10', gik.grid_band(a.pct, 1)), ('p50', gik.grid_band(a.pct, 2)),
                                               ('p90', gik.grid_band(a.pct, 3))) AS s(stat, vals)
                    WHERE s.stat = ANY (others);
                END IF;
                ms := extract(epoch FROM clock_timestamp() - tw) * 1000;
                UPDATE gik.product_result x SET compute_ms = ms
                WHERE x.product_id = p.product_id AND x.init_time = build_product.init_time AND x.versions = runs.versions
                  AND x.window_start = p.window_start[i] AND x.window_end = p.window_end[i];
                built := built + 1;
            EXCEPTION WHEN no_data_found THEN
                -- fewer members than min_members (or none) cover this window yet
                waiting := waiting + 1;
            END;
        END LOOP;
        INSERT INTO gik.product_log (product_id, init_time, versions, status, windows_built, windows_waiting, started, total_ms)
        VALUES (p.product_id, build_product.init_time, runs.versions,
                CASE WHEN waiting = 0 THEN 'complete' WHEN built = 0 THEN 'waiting' ELSE 'partial' END,
                built, waiting, t0, extract(epoch FROM clock_timestamp() - t0) * 1000)
        RETURNING * INTO l;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
        INSERT INTO gik.product_log (product_id, init_time, versions, status, sqlstate, error, error_detail, started, total_ms)
        VALUES (p.product_id, build_product.init_time, runs.versions, 'failed', st, msg,
                nullif(concat_ws(E'\n', nullif(det, ''), nullif(hint, '')), ''), t0,
                extract(epoch FROM clock_timestamp() - t0) * 1000)
        RETURNING * INTO l;
    END;
    RETURN l;
END $$;
COMMENT ON FUNCTION gik.build_product(text, timestamptz, bool) IS
'Build one product for the runs of its datasets at init_time, at their current versions: per window, the exceedance probabilities (gik.exceedance, with gik.min_members set to the product''s min_members) and the other statistics from the same members'' totals, stored in gik.product_result. A window with too few members waits; an error rolls back the whole attempt. Every attempt is logged in gik.product_log and returned; errors are not raised. force rebuilds results already stored for these versions.';

-- What gik.build_products would build: products of the given datasets whose runs changed since they were built.
CREATE FUNCTION gik.products_due(datasets text[] DEFAULT NULL, since timestamptz DEFAULT NULL,
                                 until timestamptz DEFAULT NULL, max_attempts int DEFAULT 5,
                                 retry_after interval DEFAULT '10 minutes')
RETURNS TABLE (product text, init_time timestamptz, versions int[], reason text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT c.name, c.init_time, c.versions,
           CASE WHEN c.last_status IS NULL THEN 'new run' ELSE 'retry after ' || c.failures || ' failures' END
    FROM (SELECT p.name, t.init_time, v.versions, v.runs_found, cardinality(p.datasets) AS n_datasets,
                 (SELECT l.status FROM gik.product_log l WHERE l.product_id = p.product_id AND l.init_time = t.init_time
                    AND l.versions IS NOT DISTINCT FROM v.versions ORDER BY l.log_id DESC LIMIT 1) AS last_status,
                 f.failures, f.last_failure
          FROM gik.product_def p
          CROSS JOIN LATERAL (SELECT DISTINCT r.init_time FROM gik.run r JOIN gik.dataset d USING (dataset_id)
                              WHERE d.name = ANY (p.datasets)
                                AND (products_due.since IS NULL OR r.init_time >= products_due.since)
                                AND (products_due.until IS NULL OR r.init_time <= products_due.until)) t
          CROSS JOIN LATERAL gik.product_runs(p.product_id, t.init_time) v
          CROSS JOIN LATERAL (SELECT count(*) AS failures, max(l.finished) AS last_failure FROM gik.product_log l
                              WHERE l.product_id = p.product_id AND l.init_time = t.init_time
                                AND l.versions IS NOT DISTINCT FROM v.versions AND l.status = 'failed') f
          WHERE p.enabled AND (products_due.datasets IS NULL OR p.datasets && products_due.datasets)) c
    WHERE c.runs_found = c.n_datasets
      AND (c.last_status IS NULL
           OR (c.last_status = 'failed' AND c.failures < products_due.max_attempts
               AND c.last_failure + products_due.retry_after * (2 ^ (c.failures - 1)) <= clock_timestamp()))
    ORDER BY c.init_time DESC, c.name;
END;
COMMENT ON FUNCTION gik.products_due(text[], timestamptz, timestamptz, int, interval) IS
'The (product, run) pairs to build: enabled products using one of datasets (all when NULL) and init times in [since, until] at which every dataset of the product has a run, not yet attempted at the runs'' current versions (a new run, a partial run that grew, a new version), or failed at them fewer than max_attempts times and not within retry_after (doubled after each failure).';

-- Build the due products, one committed transaction each: called by gik.ingest_latest after its runs.
CREATE PROCEDURE gik.build_products(
    product text DEFAULT NULL, init_time timestamptz DEFAULT NULL, datasets text[] DEFAULT NULL,
    since timestamptz DEFAULT NULL, until timestamptz DEFAULT NULL, force bool DEFAULT false)
LANGUAGE plpgsql AS $$
-- Procedures that COMMIT cannot carry SET clauses: names are qualified and search_path pinned per transaction.
DECLARE
    caller_path text := pg_catalog.current_setting('search_path');
    todo        record;
    l           gik.product_log;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF build_products.product IS NOT NULL THEN
        PERFORM gik.product_named(build_products.product);
    END IF;
    FOR todo IN
        SELECT d.product AS name, d.init_time FROM gik.products_due(build_products.datasets, coalesce(build_products.init_time, build_products.since),
                                                                    coalesce(build_products.init_time, build_products.until)) d
        WHERE NOT build_products.force AND (build_products.product IS NULL OR d.product = build_products.product)
        UNION ALL
        -- force: every run in range of the named products, whatever was built before
        SELECT p.name, t.init_time FROM gik.product_def p
        CROSS JOIN LATERAL (SELECT DISTINCT r.init_time FROM gik.run r JOIN gik.dataset ds USING (dataset_id)
                            WHERE ds.name = ANY (p.datasets)
                              AND r.init_time >= coalesce(build_products.init_time, build_products.since, '-infinity')
                              AND r.init_time <= coalesce(build_products.init_time, build_products.until, 'infinity')) t
        WHERE build_products.force AND (build_products.product IS NULL OR p.name = build_products.product)
          AND (build_products.datasets IS NULL OR p.datasets && build_products.datasets)
        ORDER BY 2 DESC, 1
    LOOP
        l := gik.build_product(todo.name, todo.init_time, build_products.force);
        IF l.status = 'failed' THEN
            RAISE WARNING 'gik.build_products: % at %: failed (%): %', todo.name,
                to_char(todo.init_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24"z"'), l.sqlstate, l.error;
        ELSE
            RAISE NOTICE 'gik.build_products: % at %: % (% windows built, % waiting), % ms', todo.name,
                to_char(todo.init_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24"z"'), l.status, l.windows_built,
                l.windows_waiting, round(l.total_ms::numeric);
        END IF;
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    END LOOP;
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
END $$;
COMMENT ON PROCEDURE gik.build_products(text, timestamptz, text[], timestamptz, timestamptz, bool) IS
'Build every due product (gik.products_due: new runs, grown partial runs, new versions, failures to retry), optionally only one product, one init time, the products of some datasets, or init times in [since, until]; each (product, run) is one committed gik.build_product attempt. force rebuilds every run in range. gik.ingest_latest calls it for its dataset after ingesting; CALL it to back-fill past runs. Must be CALLed outside an explicit transaction block.';

-- A stored product: the newest run by default, at its newest versions.
CREATE FUNCTION gik.product(name text, run timestamptz DEFAULT NULL, window_start float8 DEFAULT NULL,
                            statistic text DEFAULT NULL, threshold real DEFAULT NULL)
RETURNS TABLE (product text, datasets text[], init_time timestamptz, versions int[], complete bool,
               window_start float8, window_end float8, statistic text, threshold real, grid gik.grid_desc,
               vals real[], members_used int, members_expected int, members_missing text[], computed timestamptz,
               compute_ms float8)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH p AS (SELECT * FROM gik.product_named(product.name)),
    latest AS (
        SELECT x.init_time, x.versions FROM gik.product_result x, p
        WHERE x.product_id = p.product_id AND (product.run IS NULL OR x.init_time = product.run)
        ORDER BY x.init_time DESC, x.result_id DESC LIMIT 1)
    SELECT p.name, p.datasets, x.init_time, x.versions, x.complete, x.window_start, x.window_end, x.statistic,
           x.threshold, x.grid, x.vals, x.members_used, x.members_expected, x.members_missing, x.computed, x.compute_ms
    FROM p JOIN gik.product_result x ON x.product_id = p.product_id
    JOIN latest ON x.init_time = latest.init_time AND x.versions = latest.versions
    WHERE (product.window_start IS NULL OR x.window_start = product.window_start)
      AND (product.statistic IS NULL OR x.statistic = product.statistic)
      AND (product.threshold IS NULL OR x.threshold = product.threshold)
    ORDER BY x.window_start, x.statistic, x.threshold;
END;
COMMENT ON FUNCTION gik.product(text, timestamptz, float8, text, real) IS
'A stored product: the grids of its newest run (or of run), at the newest versions built, one row per window, statistic and threshold (filter with window_start, statistic, threshold), with the grid description, members used, expected and missing, the run versions and whether the runs were complete.';

CREATE OR REPLACE PROCEDURE gik.ingest_latest(
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
    -- the products of the runs just ingested (each in its own transaction; failures are logged, not raised)
    CALL gik.build_products(datasets => ARRAY[ingest_latest.dataset], since => ingest_latest.as_of - ingest_latest.lookback,
                            until => ingest_latest.as_of);
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
END $$;
COMMENT ON PROCEDURE gik.ingest_latest(text, timestamptz, int, interval, interval, int, interval) IS
'Ingest the latest runs of a dataset, newest first, at most max_runs per call (see gik.latest_runs for which: new runs found upstream, partial runs, failed runs after a backoff). Each run is one committed attempt in gik.ingest_log: running, then complete, partial (files still missing: completed by a later call) or failed (SQLSTATE and message; the run''s previous version stays intact). Returns at once when nothing is new; after ingesting it builds the products of the dataset that are due (gik.build_products). Must be CALLed outside an explicit transaction block, e.g. by pg_cron: CALL gik.ingest_latest(''gefs_0p25''). as_of replaces now() for tests and backfills.';

-- Privileges of the product objects, as sql/pg_gik/99_privileges.sql gives them.
REVOKE ALL ON TABLE gik.product_def, gik.product_result, gik.product_log FROM PUBLIC;
GRANT SELECT ON TABLE gik.product_def, gik.product_result, gik.product_log TO gik_reader;
GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE gik.product_def, gik.product_result, gik.product_log TO gik_ingest;
GRANT USAGE ON SEQUENCE gik.product_def_product_id_seq, gik.product_result_result_id_seq, gik.product_log_log_id_seq
    TO gik_ingest;
REVOKE ALL ON ROUTINE gik.product_windows(text),
    gik.define_product(text, text[], text, real[], gik.bbox, text[], text, int, text, real[], bool, text),
    gik.product_named(text), gik.product_runs(int, timestamptz), gik.build_product(text, timestamptz, bool),
    gik.products_due(text[], timestamptz, timestamptz, int, interval),
    gik.build_products(text, timestamptz, text[], timestamptz, timestamptz, bool),
    gik.product(text, timestamptz, float8, text, real) FROM PUBLIC;
GRANT EXECUTE ON ROUTINE gik.product_windows(text),
    gik.define_product(text, text[], text, real[], gik.bbox, text[], text, int, text, real[], bool, text),
    gik.product_named(text), gik.product_runs(int, timestamptz), gik.build_product(text, timestamptz, bool),
    gik.products_due(text[], timestamptz, timestamptz, int, interval),
    gik.build_products(text, timestamptz, text[], timestamptz, timestamptz, bool),
    gik.product(text, timestamptz, float8, text, real) TO gik_ingest;
GRANT EXECUTE ON FUNCTION gik.product(text, timestamptz, float8, text, real), gik.product_named(text),
    gik.product_windows(text), gik.product_runs(int, timestamptz),
    gik.products_due(text[], timestamptz, timestamptz, int, interval) TO gik_reader;

-- One writer and one reader of references (issue 13). gik.store_run stores a run's fields, windows, files,
-- packs and versions for ingestion and import alike, under gik.run_lock; gik.pack_refs is the one reader of
-- the packed arrays, which every reader goes through. gik.file.index_md5 of an imported file is documented as
-- what it has always been: the MD5 of its references. gik.ingest_run and gik.import_core (which records the
-- accumulated params a new dataset's import used) are defined here in their 0.2.0 form.
-- The references of one pack, in pack order: all of them, or only those of some fields.
CREATE FUNCTION gik.pack_refs(pack gik.chunk_pack, fields smallint[] DEFAULT NULL)
RETURNS TABLE (field_id smallint, window_id smallint, byte_offset int8, byte_length int4)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
-- A single SELECT without SET clauses, so that the planner inlines it into each caller's query.
SELECT u.field_id, u.window_id, u.byte_offset, u.byte_length
FROM unnest(pack.field_ids, pack.window_ids, pack.offsets, pack.lengths) AS u(field_id, window_id, byte_offset, byte_length)
WHERE fields IS NULL
UNION ALL
-- only the selected elements (array_positions), without unnesting the rest
SELECT pack.field_ids[i.pos], pack.window_ids[i.pos], pack.offsets[i.pos], pack.lengths[i.pos]
FROM unnest(fields) AS s(fid) CROSS JOIN LATERAL unnest(array_positions(pack.field_ids, s.fid)) AS i(pos)
WHERE fields IS NOT NULL
$$;
COMMENT ON FUNCTION gik.pack_refs(gik.chunk_pack, smallint[]) IS
'The chunk references packed in one gik.chunk_pack row (field, window, byte offset and length), or only those of the given fields: the one reader of the packed layout, which every view and function reading references uses.';

-- How many references one pack holds.
CREATE FUNCTION gik.pack_length(pack gik.chunk_pack) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN cardinality(pack.offsets);
COMMENT ON FUNCTION gik.pack_length(gik.chunk_pack) IS 'The number of chunk references packed in one gik.chunk_pack row.';

-- How many references the current version of a run holds.
-- PL/pgSQL, not SQL: a SQL function's plan outlives a partition its caller creates (PostgreSQL 15).
CREATE FUNCTION gik.run_ref_count(run gik.run) RETURNS int8
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN (SELECT coalesce(sum(gik.pack_length(p)), 0)::int8 FROM gik.chunk_pack p
            JOIN gik.file f ON f.file_id = p.file_id AND f.valid_to IS NULL
            WHERE p.dataset_id = run.dataset_id AND p.init_time = run.init_time AND p.run_id = run.run_id);
END $$;
COMMENT ON FUNCTION gik.run_ref_count(gik.run) IS 'The number of chunk references of the current version of a run.';

-- Flattened chunk references of the current version of every run.
CREATE OR REPLACE VIEW gik.chunk_ref AS
SELECT d.name AS dataset, p.dataset_id, p.init_time, p.run_id, f.file_id, f.url, f.step AS file_step,
       p.member, fl.variable, fl.level, fl.stat,
       w.start_min / 60.0::float8 AS step_start, w.end_min / 60.0::float8 AS step_end,
       u.byte_offset, u.byte_length::int8 AS byte_length, u.field_id, u.window_id
FROM gik.chunk_pack p
JOIN gik.file f ON f.file_id = p.file_id AND f.valid_to IS NULL
JOIN gik.dataset d ON d.dataset_id = p.dataset_id
CROSS JOIN LATERAL gik.pack_refs(p) u
JOIN gik.field fl ON fl.field_id = u.field_id
JOIN gik.time_window w ON w.window_id = u.window_id;
COMMENT ON VIEW gik.chunk_ref IS
'One row per chunk reference (url, byte_offset, byte_length) with its normalised keys, for the current version of every run. Filter on dataset and init_time to use partition pruning.';

-- Storage used by each dataset's chunk references, per reference.
CREATE OR REPLACE VIEW gik.storage AS
WITH packs AS (
    SELECT d.dataset_id, d.name,
           coalesce((SELECT sum(pg_total_relation_size(t.relid))
                     FROM pg_partition_tree(to_regclass(format('gik.chunk_pack_%s', d.dataset_id))) t), 0)::int8 AS pack_bytes
    FROM gik.dataset d),
refs AS (
    SELECT p.dataset_id, sum(gik.pack_length(p))::int8 AS refs, count(*) AS packs
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

-- The references of one run as they were at one of its versions.
CREATE OR REPLACE FUNCTION gik.chunk_refs_at(dataset text, init_time timestamptz, version int)
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
    CROSS JOIN LATERAL gik.pack_refs(p) u
    JOIN gik.field fl ON fl.field_id = u.field_id
    JOIN gik.time_window w ON w.window_id = u.window_id
    WHERE p.dataset_id = r.dataset_id AND p.init_time = r.init_time AND p.run_id = r.run_id;
END $$;
COMMENT ON FUNCTION gik.chunk_refs_at(text, timestamptz, int) IS
'The chunk references of one run as they were at an earlier version (files valid from that version until a later one replaced them), with the columns of gik.chunk_ref; gik.chunk_ref itself shows the current version. Versions are listed in gik.run_version.';

-- The current references of one run, optionally of some variables only: gik.chunk_ref for one run, fast.
CREATE OR REPLACE FUNCTION gik.run_refs(dataset text, init_time timestamptz, variables text[] DEFAULT NULL)
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
    -- One partition (dataset and day known), the run's packs by index, and only the selected elements of each pack.
    RETURN QUERY
    SELECT run_refs.dataset, p.dataset_id, p.init_time, p.run_id, f.file_id, f.url, f.step, p.member,
           fl.variable, fl.level, fl.stat, w.start_min / 60.0::float8, w.end_min / 60.0::float8,
           u.byte_offset, u.byte_length::int8, u.field_id, u.window_id
    FROM gik.chunk_pack p
    CROSS JOIN LATERAL gik.pack_refs(p, coalesce(fids, '{}')) u
    JOIN gik.file f ON f.file_id = p.file_id AND f.valid_to IS NULL
    JOIN gik.field fl ON fl.field_id = u.field_id
    JOIN gik.time_window w ON w.window_id = u.window_id
    WHERE p.dataset_id = r.dataset_id AND p.init_time = r.init_time AND p.run_id = r.run_id;
END $$;
COMMENT ON FUNCTION gik.run_refs(text, timestamptz, text[]) IS
'The current chunk references of one run, with the columns of gik.chunk_ref, optionally only of some variables (''VAR'' or ''VAR:LEVEL'' entries). Same rows as filtering gik.chunk_ref, but it reads one partition by index and picks the selected elements of each pack without unnesting the rest: milliseconds at a year of data. No rows when the run does not exist.';

-- Serialise the writers of one run (ingestion, import, the scheduler, dropping it) until the transaction ends.
CREATE FUNCTION gik.run_lock(dataset_id smallint, init_time timestamptz) RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
RETURN pg_advisory_xact_lock(dataset_id, (extract(epoch FROM init_time) / 3600)::int);
COMMENT ON FUNCTION gik.run_lock(smallint, timestamptz) IS
'Take the transaction-level advisory lock of one run (dataset and init time): ingestion, import, the scheduler and gik.drop_run hold it while they write the run.';

-- The field ids of some (variable, level, stat) keys of a dataset, the fields created when new.
CREATE FUNCTION gik.store_fields(dataset_id smallint, variables text[], levels text[], stats text[])
RETURNS TABLE (variable text, level text, stat text, field_id smallint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    INSERT INTO gik.field (dataset_id, variable, level, stat)
    SELECT DISTINCT store_fields.dataset_id, k.variable, k.level, k.stat FROM unnest(variables, levels, stats) AS k(variable, level, stat)
    ON CONFLICT DO NOTHING;
    RETURN QUERY
    SELECT k.variable, k.level, k.stat, fl.field_id
    FROM (SELECT DISTINCT * FROM unnest(variables, levels, stats) AS u(variable, level, stat)) k
    JOIN gik.field fl ON fl.dataset_id = store_fields.dataset_id AND fl.variable = k.variable AND fl.level = k.level
                     AND fl.stat = k.stat;
END $$;
COMMENT ON FUNCTION gik.store_fields(smallint, text[], text[], text[]) IS
'The gik.field ids of a dataset''s (variable, level, stat) keys given as parallel arrays, creating the fields that are new.';

-- The window ids of some (start, end) windows in minutes, the windows created when new.
CREATE FUNCTION gik.store_windows(start_mins int[], end_mins int[])
RETURNS TABLE (start_min int, end_min int, window_id smallint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
BEGIN
    INSERT INTO gik.time_window (start_min, end_min)
    SELECT DISTINCT k.start_min, k.end_min FROM unnest(start_mins, end_mins) AS k(start_min, end_min)
    ON CONFLICT DO NOTHING;
    RETURN QUERY
    SELECT k.start_min, k.end_min, w.window_id
    FROM (SELECT DISTINCT * FROM unnest(start_mins, end_mins) AS u(start_min, end_min)) k
    JOIN gik.time_window w ON w.start_min = k.start_min AND w.end_min = k.end_min;
END $$;
COMMENT ON FUNCTION gik.store_windows(int[], int[]) IS
'The gik.time_window ids of (start, end) windows in minutes given as parallel arrays, creating the windows that are new.';

-- Empty staging tables for the files and references of one run (dropped at commit).
CREATE FUNCTION gik.store_begin() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF to_regclass('pg_temp.gik_store_file') IS NOT NULL THEN  -- tables an earlier call of this transaction left
        DROP TABLE pg_temp.gik_store_file, pg_temp.gik_store_ref;
    END IF;
    CREATE TEMP TABLE gik_store_file (
        file_no int PRIMARY KEY, source text NOT NULL, step int NOT NULL, member int, url text NOT NULL, found bool NOT NULL,
        size int8, grib_etag text, grib_last_modified timestamptz, mirror text,
        index_size int8, index_etag text, index_md5 text, index_last_modified timestamptz,
        refs_md5 text, old_file_id int, changed bool, file_id int) ON COMMIT DROP;
    CREATE TEMP TABLE gik_store_ref (
        file_no int NOT NULL, member smallint, field_id smallint NOT NULL, window_id smallint NOT NULL,
        byte_offset int8 NOT NULL, byte_length int4 NOT NULL, seq int8 NOT NULL) ON COMMIT DROP;
END $$;
COMMENT ON FUNCTION gik.store_begin() IS
'Create the empty staging tables pg_temp.gik_store_file (the files of one run, numbered by file_no, with what identifies their contents) and pg_temp.gik_store_ref (their references, ordered by byte_offset then seq) that gik.store_run() reads.';

-- Store one run from the staging tables: a new version when a file is new, changed or gone.
CREATE FUNCTION gik.store_run(dataset_id smallint, init_time timestamptz, selection jsonb, started timestamptz,
                              note text DEFAULT NULL)
RETURNS gik.run
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    p_dataset_id ALIAS FOR dataset_id;
    p_init       ALIAS FOR init_time;
    p_sel        ALIAS FOR selection;
    r            gik.run;
    new_ver      int;
    n_changed    int;
    n_added      int;
    n_gone       int;
BEGIN
    PERFORM gik.run_lock(p_dataset_id, p_init);
    -- Run row, locked until the transaction ends.
    INSERT INTO gik.run AS x (dataset_id, init_time, status, selection, started)
    VALUES (p_dataset_id, p_init, 'running', p_sel, store_run.started)
    ON CONFLICT (dataset_id, init_time) DO NOTHING;
    SELECT * INTO r FROM gik.run x WHERE x.dataset_id = p_dataset_id AND x.init_time = p_init FOR UPDATE;

    -- A file without an index (imported) is known by what it references: refs_md5, an MD5 of its references,
    -- stands in for the index's MD5.
    UPDATE pg_temp.gik_store_file s SET refs_md5 = h.refs_md5
    FROM (SELECT m.file_no,
                 md5(string_agg(concat_ws(':', m.field_id, m.window_id, m.member, m.byte_offset, m.byte_length), ','
                                ORDER BY m.byte_offset, m.field_id, m.window_id, m.member, m.byte_length)) AS refs_md5
          FROM pg_temp.gik_store_ref m GROUP BY m.file_no) h
    WHERE s.file_no = h.file_no AND s.index_md5 IS NULL AND s.found;
    ANALYZE pg_temp.gik_store_file, pg_temp.gik_store_ref;

    -- The one versioning rule. A file is the current file of the same source, step and member (and, without an
    -- index, URL); it changed when the selection changed, its index or references differ, or the GRIB file
    -- itself was replaced (known both times, on the same mirror: stores differ in ETags).
    UPDATE pg_temp.gik_store_file s SET old_file_id = f.file_id,
           changed = (r.selection IS DISTINCT FROM p_sel AND r.version > 0)
                     OR (s.found AND (NOT f.found OR f.index_md5 IS DISTINCT FROM coalesce(s.index_md5, s.refs_md5)))
                     OR (f.mirror IS NOT DISTINCT FROM s.mirror
                         AND ((f.grib_etag IS NOT NULL AND s.grib_etag IS NOT NULL AND f.grib_etag <> s.grib_etag)
                              OR (f.grib_last_modified IS NOT NULL AND s.grib_last_modified IS NOT NULL
                                  AND f.grib_last_modified <> s.grib_last_modified)))
    FROM gik.file f
    WHERE f.run_id = r.run_id AND f.valid_to IS NULL AND f.source = s.source AND f.step = s.step
      AND f.member IS NOT DISTINCT FROM s.member AND (s.refs_md5 IS NULL OR f.url = s.url);
    UPDATE pg_temp.gik_store_file SET changed = true WHERE old_file_id IS NULL;
    SELECT count(*) FILTER (WHERE changed AND old_file_id IS NOT NULL), count(*) FILTER (WHERE old_file_id IS NULL)
    INTO n_changed, n_added FROM pg_temp.gik_store_file;
    -- Files of the current version that the staged set no longer has are gone.
    SELECT count(*) INTO n_gone FROM gik.file f
    WHERE f.run_id = r.run_id AND f.valid_to IS NULL
      AND f.file_id NOT IN (SELECT s.old_file_id FROM pg_temp.gik_store_file s WHERE s.old_file_id IS NOT NULL);
    IF n_changed + n_added + n_gone = 0 THEN
        UPDATE gik.run x SET selection = p_sel WHERE x.run_id = r.run_id RETURNING * INTO r;
        RETURN r;
    END IF;

    new_ver := r.version + 1;
    PERFORM gik.ensure_partition(p_dataset_id, p_init);
    UPDATE gik.file f SET valid_to = new_ver
    WHERE f.run_id = r.run_id AND f.valid_to IS NULL
      AND (f.file_id IN (SELECT s.old_file_id FROM pg_temp.gik_store_file s WHERE s.changed)
           OR f.file_id NOT IN (SELECT s.old_file_id FROM pg_temp.gik_store_file s WHERE s.old_file_id IS NOT NULL));
    WITH ins AS (
        INSERT INTO gik.file (run_id, source, step, member, url, found, size, grib_etag, grib_last_modified,
                              index_size, index_etag, index_md5, index_last_modified, mirror, valid_from)
        SELECT r.run_id, s.source, s.step, s.member, s.url, s.found, s.size, s.grib_etag, s.grib_last_modified,
               s.index_size, s.index_etag, coalesce(s.index_md5, s.refs_md5), s.index_last_modified, s.mirror, new_ver
        FROM pg_temp.gik_store_file s
        WHERE s.changed
        ORDER BY s.file_no
        RETURNING file_id, source, step, member, url)
    UPDATE pg_temp.gik_store_file s SET file_id = ins.file_id
    FROM ins WHERE ins.source = s.source AND ins.step = s.step AND ins.member IS NOT DISTINCT FROM s.member
               AND ins.url = s.url;

    -- The one writer of the packed layout: one row per (file, member), in byte order.
    INSERT INTO gik.chunk_pack (dataset_id, init_time, run_id, file_id, member, field_ids, window_ids, offsets, lengths)
    SELECT p_dataset_id, p_init, r.run_id, s.file_id, m.member,
           array_agg(m.field_id ORDER BY m.byte_offset, m.seq), array_agg(m.window_id ORDER BY m.byte_offset, m.seq),
           array_agg(m.byte_offset ORDER BY m.byte_offset, m.seq), array_agg(m.byte_length ORDER BY m.byte_offset, m.seq)
    FROM pg_temp.gik_store_ref m
    JOIN pg_temp.gik_store_file s ON s.file_no = m.file_no AND s.changed
    GROUP BY s.file_id, m.member;

    INSERT INTO gik.run_version (run_id, version, files_added, files_changed, refs, note)
    VALUES (r.run_id, new_ver, n_added, n_changed,
            (SELECT count(*) FROM pg_temp.gik_store_ref m JOIN pg_temp.gik_store_file s USING (file_no) WHERE s.changed),
            coalesce(store_run.note,
                     CASE WHEN r.version = 0 THEN 'first ingestion'
                          WHEN r.selection IS DISTINCT FROM p_sel THEN 'selection changed'
                          ELSE 'upstream files added or replaced' END));
    UPDATE gik.run x SET version = new_ver, selection = p_sel WHERE x.run_id = r.run_id RETURNING * INTO r;
    RETURN r;
END $$;
COMMENT ON FUNCTION gik.store_run(smallint, timestamptz, jsonb, timestamptz, text) IS
'Store one run of a dataset from pg_temp.gik_store_file and pg_temp.gik_store_ref (see gik.store_begin()), holding the run''s lock and its row locked: a new version when a staged file is new or changed, or a current file is gone (files are matched by source, step and member, and by URL when they have no index; they changed when the selection or their index differs, or for a file without an index its references, or the GRIB file was replaced). Changed and gone files are retired, the others stay valid. Returns the run row with its version and selection set; the caller records the rest. The version''s note is the one given, else what changed.';

-- Ingest one run of a dataset: the transactional core (errors roll everything back).
CREATE OR REPLACE FUNCTION gik.ingest_run(
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
    n_refs     int8;
    idx_bytes  int8;
    tmpl_bytes int8;
    bad        record;
    tmp        text;
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
    PERFORM gik.run_lock(d.dataset_id, p_init);

    -- tables an earlier call in this transaction left (dropped one by one: no notices for the others)
    FOR tmp IN SELECT unnest(ARRAY['gik_plan', 'gik_route', 'gik_try', 'gik_index', 'gik_msg', 'gik_grib'])
    LOOP
        IF to_regclass('pg_temp.' || tmp) IS NOT NULL THEN
            EXECUTE format('DROP TABLE pg_temp.%I', tmp);
        END IF;
    END LOOP;
    CREATE TEMP TABLE gik_plan ON COMMIT DROP AS
        SELECT *, NULL::text AS mirror FROM gik.plan_files(p_dataset, p_init, p_members, p_steps);
    SELECT count(*) INTO n_expected FROM gik_plan;
    IF n_expected = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('no files to ingest for dataset "%s" at %s', p_dataset, p_init),
            DETAIL = 'The members and steps asked for match none of the dataset''s files.';
    END IF;

    -- Fetch every index file at once from its first mirror, then the files one mirror lacks (404) or could
    -- not serve (5xx, no connection) from the next; each file keeps the URLs of the mirror that had it.
    CREATE TEMP TABLE gik_route ON COMMIT DROP AS
        WITH f AS (SELECT array_agg(p.url ORDER BY p.file_no) AS urls, array_agg(p.index_url ORDER BY p.file_no) AS idx,
                          array_agg(p.file_no ORDER BY p.file_no) AS nos FROM gik_plan p)
        SELECT f.nos[g.ord] AS file_no, g.rank, g.mirror, g.url, coalesce(i.url, f.idx[g.ord]) AS index_url
        FROM f CROSS JOIN LATERAL gik.mirror_routes(f.urls) g
        LEFT JOIN LATERAL gik.mirror_routes(f.idx) i ON i.ord = g.ord AND i.mirror = g.mirror;
    CREATE TEMP TABLE gik_index (file_no int PRIMARY KEY, found bool, body text, bytes int8, etag text, body_md5 text,
                                 last_modified timestamptz, unavailable bool, tried text) ON COMMIT DROP;
    FOR k IN 1 .. (SELECT max(rank) FROM gik_route) LOOP
        CREATE TEMP TABLE gik_try ON COMMIT DROP AS
            SELECT row_number() OVER (ORDER BY r.file_no)::int AS ord, r.*
            FROM gik_route r LEFT JOIN gik_index i USING (file_no)
            WHERE r.rank = k AND i.found IS NOT TRUE;
        INSERT INTO gik_index AS x
            SELECT t.file_no, f.found, f.body, f.bytes, f.etag, md5(f.body), f.last_modified, f.unavailable,
                   CASE WHEN NOT f.found THEN format('%s%s (%s)', t.index_url, ' on ' || t.mirror, rtrim(f.failure, '.')) END
            FROM gik.fetch_many((SELECT array_agg(index_url ORDER BY ord) FROM gik_try), missing_ok => true,
                                unavailable_ok => true) f
            JOIN gik_try t USING (ord)
        ON CONFLICT (file_no) DO UPDATE
            SET found = EXCLUDED.found, body = EXCLUDED.body, bytes = EXCLUDED.bytes, etag = EXCLUDED.etag,
                body_md5 = EXCLUDED.body_md5, last_modified = EXCLUDED.last_modified, unavailable = EXCLUDED.unavailable,
                tried = concat_ws('; ', x.tried, EXCLUDED.tried);
        -- a file takes the URLs of the mirror that had it (a file no mirror has keeps the first one's)
        UPDATE gik_plan p SET url = t.url, index_url = t.index_url, mirror = t.mirror
        FROM gik_try t JOIN gik_index i USING (file_no)
        WHERE p.file_no = t.file_no AND (i.found OR k = 1);
        DROP TABLE gik_try;
    END LOOP;
    t_fetch := extract(epoch FROM clock_timestamp() - t0) * 1000;
    -- A server that kept failing is not a missing file: the run would be recorded without files that exist.
    SELECT p.index_url, i.tried INTO bad FROM gik_plan p JOIN gik_index i USING (file_no)
    WHERE NOT i.found AND i.unavailable ORDER BY p.file_no LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'connection_failure',
            MESSAGE = format('%s of %s index files of dataset "%s" at %s could not be fetched from any mirror',
                             (SELECT count(*) FROM gik_index i WHERE NOT i.found AND i.unavailable), n_expected, p_dataset, p_init),
            DETAIL = format('Tried %s.', bad.tried),
            HINT = 'The servers answered 5xx or could not be reached after the retries (gik.fetch_retries); nothing was recorded.';
    END IF;
    SELECT count(*) FILTER (WHERE NOT i.found), coalesce(sum(i.bytes), 0) INTO n_missing, idx_bytes FROM gik_index i;

    IF n_missing > 0 AND NOT allow_missing THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_file',
            MESSAGE = format('%s of %s index files of dataset "%s" at %s are missing', n_missing, n_expected, p_dataset, p_init),
            DETAIL = 'Missing: ' || (SELECT string_agg(x.tried, ', ' ORDER BY x.file_no)
                                     FROM (SELECT i.* FROM gik_index i WHERE NOT i.found ORDER BY i.file_no LIMIT 5) x)
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
                   -- a deterministic product (no members) has none, though oper-fc rows read as a control
                   CASE WHEN d.members IS NOT NULL THEN gik.member_code(l.member, l.member_kind) END AS member,
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

    -- Each GRIB file's identity (size, ETag, Last-Modified), one concurrent HEAD per file: what exports
    -- check chunks against. Without it, only files whose last message needs the size for its length.
    CREATE TEMP TABLE gik_grib ON COMMIT DROP AS
        SELECT p.file_no, x.file_size AS size, x.etag, x.last_modified
        FROM gik.fetch_many((SELECT array_agg(DISTINCT p2.url) FROM gik_plan p2 JOIN gik_index i2 USING (file_no)
                             WHERE i2.found AND (current_setting('gik.record_grib_identity')::bool
                                                 OR p2.file_no IN (SELECT file_no FROM gik_msg WHERE byte_length IS NULL))),
                            missing_ok => true, head => true) x
        JOIN gik_plan p ON p.url = x.url
        WHERE x.found;
    SELECT p.index_url, p.url INTO bad FROM gik_plan p JOIN gik_index i USING (file_no) JOIN gik_grib g USING (file_no)
    WHERE i.last_modified < g.last_modified LIMIT 1;
    IF FOUND THEN
        RAISE WARNING '% index files of dataset "%" at % are older than their GRIB files, e.g. "%"',
            (SELECT count(*) FROM gik_index i JOIN gik_grib g USING (file_no) WHERE i.last_modified < g.last_modified),
            p_dataset, p_init, bad.index_url
            USING DETAIL = 'Their offsets may describe an earlier file; decoding checks every range (gik.file.index_older).';
    END IF;

    -- The last message of a file needs the file size for its length.
    IF EXISTS (SELECT FROM gik_msg WHERE byte_length IS NULL) THEN
        UPDATE gik_msg m SET byte_length = g.size - m.byte_offset
        FROM gik_grib g
        WHERE m.file_no = g.file_no AND m.byte_length IS NULL;
        SELECT p.url, m.byte_offset INTO bad FROM gik_msg m JOIN gik_plan p USING (file_no)
        WHERE m.byte_length IS NULL OR m.byte_length <= 0 LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'data_exception',
                MESSAGE = format('the last message of "%s" (offset %s) has no length', bad.url, bad.byte_offset),
                DETAIL = 'The server did not report a file size beyond the last indexed offset.';
        END IF;
    END IF;

    -- Stage the files and their references, and store them (a new version when something changed). Temporary
    -- tables have no statistics until analysed: without them the planner nested loops over a GFS run's
    -- 155,000 messages.
    ANALYZE gik_msg, gik_plan, gik_index;
    PERFORM gik.store_begin();
    INSERT INTO pg_temp.gik_store_file (file_no, source, step, member, url, found, size, grib_etag, grib_last_modified,
                                        mirror, index_size, index_etag, index_md5, index_last_modified)
    SELECT p.file_no, p.source, p.step, p.member, p.url, i.found, g.size, g.etag, g.last_modified,
           p.mirror, i.bytes, i.etag, i.body_md5, i.last_modified
    FROM gik_plan p JOIN gik_index i USING (file_no) LEFT JOIN gik_grib g USING (file_no);
    INSERT INTO pg_temp.gik_store_ref (file_no, member, field_id, window_id, byte_offset, byte_length, seq)
    SELECT m.file_no, m.member, fl.field_id, w.window_id, m.byte_offset, m.byte_length, m.lineno
    FROM gik_msg m
    JOIN (SELECT f.* FROM (SELECT array_agg(k.variable) AS v, array_agg(k.level) AS l, array_agg(k.stat) AS s
                           FROM (SELECT DISTINCT variable, level, stat FROM gik_msg) k) a,
                          gik.store_fields(d.dataset_id, a.v, a.l, a.s) f) fl
      ON fl.variable = m.variable AND fl.level = m.level AND fl.stat = m.stat
    JOIN (SELECT f.* FROM (SELECT array_agg(k.s) AS s, array_agg(k.e) AS e
                           FROM (SELECT DISTINCT round(step_start * 60)::int AS s, round(step_end * 60)::int AS e FROM gik_msg) k) a,
                          gik.store_windows(a.s, a.e) f) w
      ON w.start_min = round(m.step_start * 60)::int AND w.end_min = round(m.step_end * 60)::int;
    r := gik.store_run(d.dataset_id, p_init, sel, t0);

    tmpl_bytes := CASE WHEN learn_templates THEN gik.learn_templates(d.dataset_id, r.run_id) ELSE 0 END;
    n_refs := gik.run_ref_count(r);

    UPDATE gik.run SET
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

-- The import proper, from the entries staged in pg_temp.gik_imp_e: runs, files, fields, windows and packs.
CREATE OR REPLACE FUNCTION gik.import_core(p_dataset text, p_source text, p_bytes int8, p_init timestamptz, p_member int,
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

-- The manifest of a dataset (all runs, one run or a range of runs): Zarr keys and values.
CREATE OR REPLACE FUNCTION gik.manifest(dataset text, init_from timestamptz DEFAULT NULL, init_to timestamptz DEFAULT NULL,
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
        CROSS JOIN LATERAL gik.pack_refs(p) u
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

-- Drop one run of a dataset: its packed references, files, versions and run row.
CREATE OR REPLACE FUNCTION gik.drop_run(dataset text, init_time timestamptz) RETURNS int8
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
    PERFORM gik.run_lock(r.dataset_id, r.init_time);
    DELETE FROM gik.chunk_pack p
    WHERE p.dataset_id = r.dataset_id AND p.init_time = r.init_time AND p.run_id = r.run_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM gik.run WHERE run_id = r.run_id;
    RETURN n;
END $$;
COMMENT ON FUNCTION gik.drop_run(text, timestamptz) IS
'Remove one run of a dataset (all versions): its packed chunk references, files, version history and run row. Returns the packed rows removed.';

-- Ingest the run of a running log row, recording the result or the error in that row.
CREATE OR REPLACE FUNCTION gik.ingest_log_run(log_id bigint) RETURNS gik.ingest_log
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
    PERFORM gik.run_lock(l.dataset_id, l.init_time);
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

COMMENT ON TABLE gik.file IS
'A GRIB file of a run (url: where it was found, on the mirror named in mirror, NULL for a URL with no mirrors): its identity when ingested (size, ETag and Last-Modified from a HEAD request, unless gik.record_grib_identity is off), what its index said (size, ETag, MD5, Last-Modified; an imported file has no index: its index_md5 is the MD5 of its references, which tells a re-import whether it changed), found or missing, valid from version valid_from until valid_to (NULL: current). index_older flags an index older than its GRIB file: its offsets may describe an earlier file.';

REVOKE ALL ON FUNCTION gik.pack_refs(gik.chunk_pack, smallint[]), gik.pack_length(gik.chunk_pack), gik.run_ref_count(gik.run),
    gik.run_lock(smallint, timestamptz), gik.store_fields(smallint, text[], text[], text[]), gik.store_windows(int[], int[]),
    gik.store_begin(), gik.store_run(smallint, timestamptz, jsonb, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gik.pack_refs(gik.chunk_pack, smallint[]), gik.pack_length(gik.chunk_pack), gik.run_ref_count(gik.run),
    gik.run_lock(smallint, timestamptz), gik.store_fields(smallint, text[], text[], text[]), gik.store_windows(int[], int[]),
    gik.store_begin(), gik.store_run(smallint, timestamptz, jsonb, timestamptz, text) TO gik_ingest;
GRANT EXECUTE ON FUNCTION gik.pack_refs(gik.chunk_pack, smallint[]), gik.pack_length(gik.chunk_pack) TO gik_reader;
