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
COMMENT ON FUNCTION gik.ingest_run(text, timestamptz, text[], int[], int[], bool, bool) IS
'Ingest one run: fetch all its index files concurrently, keep the selected messages (''VAR'' or ''VAR:LEVEL'' entries) as chunk references, learn missing templates from one message each, and record a new version when files are new or changed. Transactional: on error nothing changes. With allow_missing, missing files are recorded and the run is partial. learn_templates => false reads no GRIB bytes at all (templates can be learned later).';
