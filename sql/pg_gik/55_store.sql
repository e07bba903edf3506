-- Storing references: the one writer of a run's fields, windows, files, packed references and versions,
-- used by ingestion and by every import; the lock that serialises the writers of one run.

-- grant: ingest
-- Serialise the writers of one run (ingestion, import, the scheduler, dropping it) until the transaction ends.
CREATE FUNCTION gik.run_lock(dataset_id smallint, init_time timestamptz) RETURNS void
LANGUAGE sql VOLATILE PARALLEL UNSAFE
RETURN pg_advisory_xact_lock(dataset_id, (extract(epoch FROM init_time) / 3600)::int);
COMMENT ON FUNCTION gik.run_lock(smallint, timestamptz) IS
'Take the transaction-level advisory lock of one run (dataset and init time): ingestion, import, the scheduler and gik.drop_run hold it while they write the run.';

-- grant: ingest
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

-- grant: ingest
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

-- grant: ingest
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

-- grant: ingest
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

-- grant: ingest
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

-- grant: ingest
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
