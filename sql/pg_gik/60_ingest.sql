-- Ingestion: fetch a run's index files concurrently, parse them, keep the selected messages as packed chunk references.


-- grant: reader
-- Member number stored for an index record: N for control/perturbed, -1 mean, -2 spread, NULL otherwise.
CREATE FUNCTION gik.member_code(member int, member_kind text) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE member_kind WHEN 'mean' THEN -1 WHEN 'spread' THEN -2 ELSE member END;
COMMENT ON FUNCTION gik.member_code(int, text) IS
'Member number as stored in chunk references: 0 control, N perturbed, -1 ensemble mean, -2 ensemble spread, NULL for deterministic products.';


-- grant: ingest
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
