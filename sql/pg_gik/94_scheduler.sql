-- Scheduled ingestion (pg_cron): what each recent cycle of a dataset needs, probing upstream for new runs,
-- the newest published run, and the procedure that ingests the latest runs through the ingestion log.

-- grant: ingest
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

-- grant: ingest
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
    lf AS (
        SELECT array_agg(l.index_url ORDER BY l.t, l.file_no) AS idx, array_agg(l.t ORDER BY l.t, l.file_no) AS ts,
               array_agg(l.file_no ORDER BY l.t, l.file_no) AS nos FROM last_files l),
    probes AS (
        SELECT row_number() OVER ()::int AS ord, lf.ts[r.ord] AS t, lf.nos[r.ord] AS file_no, r.url
        FROM lf CROSS JOIN LATERAL gik.mirror_routes(lf.idx) r),
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
'The newest cycle of a dataset in (as_of - lookback, as_of] whose last step is published: every index file of that step (each member''s, each file series'') found on one of its mirrors (gik.mirror_routes), by one round of concurrent HEAD requests. NULL when none is.';

-- grant: ingest
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
    -- the products of the runs just ingested (each in its own transaction; failures are logged, not raised)
    CALL gik.build_products(datasets => ARRAY[ingest_latest.dataset], since => ingest_latest.as_of - ingest_latest.lookback,
                            until => ingest_latest.as_of);
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
END $$;
COMMENT ON PROCEDURE gik.ingest_latest(text, timestamptz, int, interval, interval, int, interval) IS
'Ingest the latest runs of a dataset, newest first, at most max_runs per call (see gik.latest_runs for which: new runs found upstream, partial runs, failed runs after a backoff). Each run is one committed attempt in gik.ingest_log: running, then complete, partial (files still missing: completed by a later call) or failed (SQLSTATE and message; the run''s previous version stays intact). Returns at once when nothing is new; after ingesting it builds the products of the dataset that are due (gik.build_products). Must be CALLed outside an explicit transaction block, e.g. by pg_cron: CALL gik.ingest_latest(''gefs_0p25''). as_of replaces now() for tests and backfills.';
