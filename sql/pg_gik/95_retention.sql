-- Removing runs: one run's references and catalog rows.

-- grant: ingest
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
    PERFORM gik.run_lock(r.dataset_id, r.init_time);
    DELETE FROM gik.chunk_pack p
    WHERE p.dataset_id = r.dataset_id AND p.init_time = r.init_time AND p.run_id = r.run_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM gik.run WHERE run_id = r.run_id;
    RETURN n;
END $$;
COMMENT ON FUNCTION gik.drop_run(text, timestamptz) IS
'Remove one run of a dataset (all versions): its packed chunk references, files, version history and run row. Returns the packed rows removed.';

-- grant: ingest
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

-- grant: reader
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

-- grant: ingest
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

-- grant: ingest
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
