-- Operations: scheduled ingestion (pg_cron), an ingestion log that survives failed transactions,
-- progress and health views, a run's references as of an earlier version, and one run's references fast.

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

-- What gik.ingest_latest would do with each recent cycle of a dataset, probing upstream for new runs.
CREATE FUNCTION gik.latest_runs(
    dataset text, as_of timestamptz DEFAULT now(), lookback interval DEFAULT '2 days',
    recheck interval DEFAULT '0', max_attempts int DEFAULT 5, retry_after interval DEFAULT '10 minutes',
    probe bool DEFAULT true)
RETURNS TABLE (init_time timestamptz, run_status text, version int, failures int,
               probes int, probes_found int, action text, reason text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
    d        gik.dataset;
    times    timestamptz[];
    st       text[] := '{}';
    ver      int[] := '{}';
    nfail    int[] := '{}';
    act      text[] := '{}';
    why      text[] := '{}';
    nprobe   int[] := '{}';
    nfound   int[] := '{}';
    urls     text[] := '{}';
    url_of   int[] := '{}';
    r        record;
    f        record;
    i        int;
    busy     bool;
BEGIN
    d := gik.dataset_named(latest_runs.dataset);
    IF as_of IS NULL OR lookback IS NULL OR lookback <= interval '0' OR recheck IS NULL
       OR max_attempts IS NULL OR max_attempts < 1 OR retry_after IS NULL OR retry_after < interval '0' THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = 'invalid arguments to gik.latest_runs',
            DETAIL = 'as_of must be given, lookback must be positive, max_attempts at least 1 and retry_after not negative.';
    END IF;
    PERFORM gik.ingest_log_cleanup();

    -- The dataset's cycles in (as_of - lookback, as_of], newest first, not older than its retention.
    SELECT array_agg(t.t ORDER BY t.t DESC) INTO times
    FROM generate_series(date_trunc('day', (as_of - lookback) AT TIME ZONE 'UTC'),
                         as_of AT TIME ZONE 'UTC', interval '1 day') AS day,
         unnest(d.cycles) AS c,
         LATERAL (SELECT (day + c * interval '1 hour') AT TIME ZONE 'UTC' AS t) t
    WHERE t.t > as_of - lookback AND t.t <= as_of
      AND (d.retention IS NULL OR t.t >= as_of - d.retention);

    FOR i IN 1 .. coalesce(cardinality(times), 0) LOOP
        SELECT x.status, x.version INTO r FROM gik.run x
        WHERE x.dataset_id = d.dataset_id AND x.init_time = times[i];
        -- Failures since the last successful attempt at this run, and when the last one ended.
        SELECT count(*)::int AS n, max(l.finished) AS last INTO f FROM gik.ingest_log l
        WHERE l.dataset_id = d.dataset_id AND l.init_time = times[i] AND l.status = 'failed'
          AND l.log_id > coalesce((SELECT max(s.log_id) FROM gik.ingest_log s
                                   WHERE s.dataset_id = d.dataset_id AND s.init_time = times[i]
                                     AND s.status IN ('complete', 'partial')), 0);
        busy := EXISTS (SELECT FROM gik.ingest_log l WHERE l.dataset_id = d.dataset_id AND l.init_time = times[i]
                        AND l.status = 'running');
        st := st || r.status;
        ver := ver || r.version;
        nfail := nfail || f.n;
        nprobe := nprobe || 0;
        nfound := nfound || NULL::int;
        IF r.status = 'complete' AND times[i] <= as_of - recheck THEN
            act := act || 'skip'::text; why := why || 'complete'::text;
        ELSIF busy THEN
            act := act || 'skip'::text; why := why || 'being ingested by another session'::text;
        ELSIF f.n >= max_attempts THEN
            act := act || 'skip'::text; why := why || format('gave up after %s failures', f.n);
        ELSIF f.n > 0 AND f.last + retry_after * (2 ^ (f.n - 1)) > clock_timestamp() THEN
            act := act || 'skip'::text;
            why := why || format('waiting to retry after %s failure%s', f.n, CASE WHEN f.n > 1 THEN 's' END);
        ELSIF r.status IS NOT NULL THEN
            act := act || 'ingest'::text;
            why := why || CASE WHEN f.n > 0 THEN format('retry after %s failure%s', f.n, CASE WHEN f.n > 1 THEN 's' END)
                               WHEN r.status = 'complete' THEN 'recheck'
                               ELSE r.status || ' run' END;
        ELSIF NOT probe THEN
            act := act || 'ingest'::text; why := why || 'not probed'::text;
        ELSE
            -- Never ingested: probe its first, middle and last index files.
            act := act || 'probe'::text; why := why || NULL::text;
            FOR r IN
                SELECT p.index_url FROM (SELECT pf.file_no, pf.index_url, count(*) OVER () AS n
                                         FROM gik.plan_files(d.name, times[i]) pf) p
                WHERE p.file_no IN (1, (p.n + 1) / 2, p.n)
            LOOP
                urls := urls || r.index_url;
                url_of := url_of || i;
                nprobe[i] := nprobe[i] + 1;
            END LOOP;
        END IF;
    END LOOP;

    IF cardinality(urls) > 0 THEN
        nfound := array_fill(0, ARRAY[cardinality(times)]);
        FOR r IN SELECT h.ord FROM gik.fetch_many(urls, missing_ok => true, head => true) h WHERE h.found LOOP
            nfound[url_of[r.ord]] := nfound[url_of[r.ord]] + 1;
        END LOOP;
        FOR i IN 1 .. cardinality(times) LOOP
            IF act[i] = 'probe' THEN
                IF nprobe[i] = 0 OR nfound[i] = 0 THEN
                    act[i] := 'skip'; why[i] := 'not published';
                ELSE
                    act[i] := 'ingest';
                    why[i] := CASE WHEN nfail[i] > 0
                                   THEN format('retry after %s failure%s', nfail[i], CASE WHEN nfail[i] > 1 THEN 's' END)
                                   WHEN nfound[i] = nprobe[i] THEN 'published' ELSE 'being published' END;
                END IF;
            ELSIF act[i] <> 'probe' THEN
                nfound[i] := CASE WHEN nprobe[i] > 0 THEN nfound[i] END;
            END IF;
        END LOOP;
    ELSE
        FOR i IN 1 .. coalesce(cardinality(times), 0) LOOP
            IF act[i] = 'probe' THEN
                act[i] := 'skip'; why[i] := 'not published';
            END IF;
        END LOOP;
    END IF;

    FOR i IN 1 .. coalesce(cardinality(times), 0) LOOP
        init_time := times[i]; run_status := st[i]; version := ver[i]; failures := nfail[i];
        probes := nprobe[i]; probes_found := nfound[i]; action := act[i]; reason := why[i];
        RETURN NEXT;
    END LOOP;
END $$;
COMMENT ON FUNCTION gik.latest_runs(text, timestamptz, interval, interval, int, interval, bool) IS
'The cycles of a dataset in (as_of - lookback, as_of] (and within its retention), newest first, with what gik.ingest_latest would do: ingest runs never seen whose index files exist upstream (probed with HEAD requests on the first, middle and last index file of each), partial runs, complete runs younger than recheck, and runs to retry after a failure (waiting retry_after, doubled after each consecutive failure, and giving up after max_attempts); skip the rest. probe => false assumes unseen runs are published.';

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

-- Ingest the latest runs of a dataset: the procedure to schedule with pg_cron.
CREATE PROCEDURE gik.ingest_latest(
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
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
END $$;
COMMENT ON PROCEDURE gik.ingest_latest(text, timestamptz, int, interval, interval, int, interval) IS
'Ingest the latest runs of a dataset, newest first, at most max_runs per call (see gik.latest_runs for which: new runs found upstream, partial runs, failed runs after a backoff). Each run is one committed attempt in gik.ingest_log: running, then complete, partial (files still missing: completed by a later call) or failed (SQLSTATE and message; the run''s previous version stays intact). Returns at once when nothing is new. Must be CALLed outside an explicit transaction block, e.g. by pg_cron: CALL gik.ingest_latest(''gefs_0p25''). as_of replaces now() for tests and backfills.';

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

-- Per dataset: the latest complete run and its age, partial runs, running and failed attempts.
CREATE VIEW gik.ingest_health AS
SELECT d.name AS dataset,
       lc.init_time AS latest_complete,
       now() - lc.init_time AS latest_complete_age,
       lc.version AS latest_complete_version,
       lr.init_time AS latest_run,
       lr.status AS latest_run_status,
       coalesce(pr.n, 0) AS partial_runs,
       pr.init_times AS partial_init_times,
       lg.running,
       lg.last_attempt,
       lg.last_outcome,
       lg.failures_24h,
       lg.consecutive_failures,
       le.finished AS last_error_at,
       le.init_time AS last_error_run,
       le.error AS last_error,
       CASE WHEN lc.init_time IS NULL AND lr.init_time IS NULL AND lg.last_attempt IS NULL THEN 'no runs'
            WHEN lg.consecutive_failures > 0 THEN 'failing'
            WHEN lc.init_time IS NULL OR now() - lc.init_time > interval '1 day' THEN 'behind'
            ELSE 'ok' END AS state
FROM gik.dataset d
LEFT JOIN LATERAL (SELECT r.init_time, r.version FROM gik.run r
                   WHERE r.dataset_id = d.dataset_id AND r.status = 'complete'
                   ORDER BY r.init_time DESC LIMIT 1) lc ON true
LEFT JOIN LATERAL (SELECT r.init_time, r.status FROM gik.run r
                   WHERE r.dataset_id = d.dataset_id ORDER BY r.init_time DESC LIMIT 1) lr ON true
LEFT JOIN LATERAL (SELECT count(*) AS n, array_agg(r.init_time ORDER BY r.init_time) AS init_times FROM gik.run r
                   WHERE r.dataset_id = d.dataset_id AND r.status = 'partial') pr ON true
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE l.status = 'running') AS running,
           max(l.started) AS last_attempt,
           (SELECT x.outcome FROM gik.ingest_log x WHERE x.dataset_id = d.dataset_id AND x.status <> 'running'
            ORDER BY x.log_id DESC LIMIT 1) AS last_outcome,
           count(*) FILTER (WHERE l.status = 'failed' AND l.finished > now() - interval '1 day') AS failures_24h,
           count(*) FILTER (WHERE l.status = 'failed'
                            AND l.log_id > coalesce((SELECT max(s.log_id) FROM gik.ingest_log s
                                                     WHERE s.dataset_id = d.dataset_id
                                                       AND s.status IN ('complete', 'partial')), 0)) AS consecutive_failures
    FROM gik.ingest_log l WHERE l.dataset_id = d.dataset_id) lg ON true
LEFT JOIN LATERAL (SELECT x.finished, x.init_time, x.error FROM gik.ingest_log x
                   WHERE x.dataset_id = d.dataset_id AND x.status = 'failed'
                   ORDER BY x.log_id DESC LIMIT 1) le ON true;
COMMENT ON VIEW gik.ingest_health IS
'One row per dataset: the latest complete run, its age and version; the latest run and its status; partial runs; attempts running; the last attempt and its outcome; failures in the last 24 hours and since the last successful attempt (consecutive_failures); the last error; and a state: no runs, failing (the last attempts failed), behind (no complete run in the last day) or ok.';
