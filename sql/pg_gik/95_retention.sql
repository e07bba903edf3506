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
    IF to_regclass(format('gik.chunk_pack_%s', id)) IS NOT NULL THEN
        EXECUTE format('DROP TABLE gik.%I', format('chunk_pack_%s', id));
    END IF;
    DELETE FROM gik.dataset WHERE dataset_id = id;
    RETURN true;
END $$;
COMMENT ON FUNCTION gik.drop_dataset(text) IS
'Remove a dataset and everything it holds: its chunk_pack partitions (dropped, not deleted), runs, files, fields and file series.';
