-- The ingestion log: one row per ingestion attempt, committed before and after it runs so that it survives
-- a failed transaction; the functions that open, run and close attempts, and the attempts in progress.

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

-- grant: ingest
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

-- grant: ingest
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

-- grant: ingest
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

-- grant: ingest
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
