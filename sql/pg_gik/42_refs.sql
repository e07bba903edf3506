-- References: the one reader of gik.chunk_pack's packed arrays (gik.pack_refs, gik.pack_length), and the
-- views and functions that read references through it (current, per run, as of a version, storage).

-- grant: reader
-- True when an index record is selected by a list of 'VAR' or 'VAR:LEVEL' entries (NULL selects all).
CREATE FUNCTION gik.variable_selected(selection text[], variable text, level text) RETURNS bool
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN selection IS NULL OR variable = ANY (selection) OR (variable || ':' || level) = ANY (selection);
COMMENT ON FUNCTION gik.variable_selected(text[], text, text) IS
'True when a message of this variable and level is selected by entries ''VAR'' or ''VAR:LEVEL'' (NULL selects every message).';

-- grant: reader
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

-- grant: reader
-- How many references one pack holds.
CREATE FUNCTION gik.pack_length(pack gik.chunk_pack) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN cardinality(pack.offsets);
COMMENT ON FUNCTION gik.pack_length(gik.chunk_pack) IS 'The number of chunk references packed in one gik.chunk_pack row.';

-- grant: ingest
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
CREATE VIEW gik.chunk_ref AS
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
CREATE VIEW gik.storage AS
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

-- grant: reader
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
    CROSS JOIN LATERAL gik.pack_refs(p) u
    JOIN gik.field fl ON fl.field_id = u.field_id
    JOIN gik.time_window w ON w.window_id = u.window_id
    WHERE p.dataset_id = r.dataset_id AND p.init_time = r.init_time AND p.run_id = r.run_id;
END $$;
COMMENT ON FUNCTION gik.chunk_refs_at(text, timestamptz, int) IS
'The chunk references of one run as they were at an earlier version (files valid from that version until a later one replaced them), with the columns of gik.chunk_ref; gik.chunk_ref itself shows the current version. Versions are listed in gik.run_version.';

-- grant: reader
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
