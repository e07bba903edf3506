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
CREATE FUNCTION gik.fetch_many(urls text[], missing_ok bool DEFAULT false, head bool DEFAULT false)
RETURNS TABLE (ord int, url text, found bool, body text, bytes int8, file_size int8, etag text, attempts int,
               last_modified timestamptz)
AS 'MODULE_PATHNAME', 'gik_fetch_many'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.fetch_many(text[], bool, bool) IS
'Fetch many whole objects as text (or HEAD them) concurrently, gik.max_connections at a time, with retries; rows come in completion order with ord giving the array position.';

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
                     ADD COLUMN index_older bool GENERATED ALWAYS AS (index_last_modified < grib_last_modified) STORED;
COMMENT ON TABLE gik.file IS
'A GRIB file of a run: its identity when ingested (size, ETag and Last-Modified from a HEAD request, unless gik.record_grib_identity is off), what its index said (size, ETag, MD5, Last-Modified), found or missing, valid from version valid_from until valid_to (NULL: current). index_older flags an index older than its GRIB file: its offsets may describe an earlier file.';

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

    DROP TABLE IF EXISTS pg_temp.gik_plan, pg_temp.gik_index, pg_temp.gik_msg, pg_temp.gik_grib;
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
        SELECT f.ord AS file_no, f.found, f.body, f.bytes, f.etag, md5(f.body) AS body_md5, f.last_modified
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
                     -- the GRIB file itself was replaced (known both times)
                     OR (f.grib_etag IS NOT NULL AND g.etag IS NOT NULL AND f.grib_etag <> g.etag)
                     OR (f.grib_last_modified IS NOT NULL AND g.last_modified IS NOT NULL
                         AND f.grib_last_modified <> g.last_modified)
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
                                  index_size, index_etag, index_md5, index_last_modified, valid_from)
            SELECT r.run_id, p.source, p.step, p.member, p.url, i.found, g.size, g.etag, g.last_modified,
                   i.bytes, i.etag, i.body_md5, i.last_modified, new_ver
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

CREATE FUNCTION gik.decoders()
RETURNS TABLE (slot int, pid int, busy bool, memory_limit_mb int, region_bytes int8, landlock_abi int, sandbox text)
AS 'MODULE_PATHNAME', 'gik_decoders'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.decoders() IS
'This session''s decoder processes (pg_gik_decoder, one per gik.decode_threads, started on first use): process id, whether it is decoding, its address-space limit, its shared region, and its sandbox (Landlock ABI, 0 when the kernel has none, and a sentence on what it may do).';

-- Privileges of the new and re-created functions, as sql/pg_gik/99_privileges.sql gives them.
REVOKE ALL ON FUNCTION gik.file_info(text), gik.fetch_many(text[], bool, bool), gik.is_server_file(text),
    gik.reads_server_files(name), gik.dataset_source_guard(), gik.decoders() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gik.file_info(text), gik.fetch_many(text[], bool, bool), gik.is_server_file(text),
    gik.reads_server_files(name), gik.dataset_source_guard(), gik.decoders() TO gik_ingest;
GRANT EXECUTE ON FUNCTION gik.decoders() TO gik_reader;

-- pg_gik 0.2.0 fetches only when preloaded (see _PG_init): say so now, as a fresh install does.
DO $$
BEGIN
    IF NOT 'pg_gik' = ANY (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ',')) THEN
        RAISE WARNING 'pg_gik is not in shared_preload_libraries: it will refuse to fetch until it is'
            USING HINT = 'Add pg_gik to shared_preload_libraries in postgresql.conf and restart the server.';
    END IF;
END $$;
