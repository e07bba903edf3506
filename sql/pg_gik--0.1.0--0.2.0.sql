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

-- Ingestion records each GRIB file's identity and makes a new version when a GRIB file was replaced.
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

    IF pg_my_temp_schema() <> 0 THEN  -- tables an earlier call of this transaction left
        DROP TABLE IF EXISTS pg_temp.gik_plan, pg_temp.gik_route, pg_temp.gik_try, pg_temp.gik_index, pg_temp.gik_msg,
                             pg_temp.gik_grib;
    END IF;
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
        SELECT p.file_no, g.rank, g.mirror, g.url,
               coalesce((SELECT i.url FROM gik.mirror_urls(p.index_url) i WHERE i.mirror = g.mirror), p.index_url) AS index_url
        FROM gik_plan p CROSS JOIN LATERAL gik.mirror_urls(p.url) g;
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
                     -- the GRIB file itself was replaced (known both times, on the same mirror: stores differ in ETags)
                     OR (f.mirror IS NOT DISTINCT FROM p.mirror
                         AND ((f.grib_etag IS NOT NULL AND g.etag IS NOT NULL AND f.grib_etag <> g.etag)
                              OR (f.grib_last_modified IS NOT NULL AND g.last_modified IS NOT NULL
                                  AND f.grib_last_modified <> g.last_modified)))
    FROM gik.file f, gik_index i LEFT JOIN gik_grib g USING (file_no)
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
            INSERT INTO gik.file (run_id, source, step, member, url, found, size, grib_etag, grib_last_modified,
                                  index_size, index_etag, index_md5, index_last_modified, mirror, valid_from)
            SELECT r.run_id, p.source, p.step, p.member, p.url, i.found, g.size, g.etag, g.last_modified,
                   i.bytes, i.etag, i.body_md5, i.last_modified, p.mirror, new_ver
            FROM gik_plan p JOIN gik_index i USING (file_no) LEFT JOIN gik_grib g USING (file_no)
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

CREATE FUNCTION gik.mirror_urls(file_url text)
RETURNS TABLE (rank int, mirror text, url text)
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
        SELECT (row_number() OVER (ORDER BY coalesce(array_position(wanted, m.name), 0), m.priority))::int,
               m.name, m.url_prefix || substr(file_url, length(m.prefix) + 1)
        FROM gik.mirror m
        WHERE left(file_url, length(m.prefix)) = m.prefix
          AND (cardinality(wanted) = 0 OR m.name = ANY (wanted))
          AND gik.url_allowed(m.url_prefix || substr(file_url, length(m.prefix) + 1));
    IF NOT FOUND THEN
        -- no mirror of this prefix is wanted and allowed: the URL as it is (its fetch applies the policy)
        rank := 1; mirror := NULL; url := file_url;
        RETURN NEXT;
    END IF;
END $$;
COMMENT ON FUNCTION gik.mirror_urls(text) IS
'The URLs a file can be fetched from, in the order ingestion tries them: for a URL under a prefix of gik.mirror, that prefix''s mirrors in the order gik.mirrors names them (only those), else by priority, leaving out those gik.allowed_url_prefixes refuses; otherwise, or when none is left, the URL itself.';

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
    probes AS (
        SELECT row_number() OVER ()::int AS ord, l.t, l.file_no, u.url
        FROM last_files l CROSS JOIN LATERAL gik.mirror_urls(l.index_url) u),
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
'The newest cycle of a dataset in (as_of - lookback, as_of] whose last step is published: every index file of that step (each member''s, each file series'') found on one of its mirrors (gik.mirror_urls), by one round of concurrent HEAD requests. NULL when none is.';

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
    gik.gefs_member_tokens(int[]), gik.mirror_urls(text), gik.latest_run(text, timestamptz, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gik.file_info(text), gik.fetch_many(text[], bool, bool, bool), gik.is_server_file(text),
    gik.reads_server_files(name), gik.dataset_source_guard(), gik.decoders(), gik.url_allowed(text),
    gik.gefs_member_tokens(int[]), gik.mirror_urls(text), gik.latest_run(text, timestamptz, interval) TO gik_ingest;
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
