-- Products: the forecaster's morning products (datasets, windows, thresholds, region, statistics),
-- built and stored after each ingestion (gik.ingest_latest calls gik.build_products), read back fast.

CREATE TABLE gik.product_def (
    product_id    int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9_]{0,40}$'),
    datasets      text[] NOT NULL CHECK (cardinality(datasets) > 0),
    window_start  float8[] NOT NULL,
    window_end    float8[] NOT NULL,
    thresholds    real[] NOT NULL DEFAULT '{}',
    region        gik.bbox,
    lon           text NOT NULL DEFAULT '-180..180' CHECK (lon IN ('-180..180', '0..360', 'source')),
    statistics    text[] NOT NULL DEFAULT '{exceedance}'
                  CHECK (cardinality(statistics) > 0 AND statistics <@ '{exceedance,mean,min,max,p10,p50,p90}'),
    min_members   int NOT NULL DEFAULT 1 CHECK (min_members >= 1),
    palette       text NOT NULL DEFAULT 'ecmwf',
    classes       real[],
    raster        bool NOT NULL DEFAULT true,
    enabled       bool NOT NULL DEFAULT true,
    description   text,
    defined       timestamptz NOT NULL DEFAULT now(),
    CHECK (cardinality(window_start) > 0 AND cardinality(window_start) = cardinality(window_end)),
    CHECK (NOT 'exceedance' = ANY (statistics) OR cardinality(thresholds) > 0)
);
COMMENT ON TABLE gik.product_def IS
'Product definitions (gik.define_product): the datasets (one, or several forming a grand ensemble), the accumulation windows in hours (window_start[i], window_end[i]), the exceedance thresholds in mm, the region and longitude convention, the statistics (exceedance, mean, min, max, p10, p50, p90 of the members'' totals), the fewest members a window may be built from, and output options: map palette and classes, and whether pg_gik_postgis publishes a raster table (gik_products.<name>).';

-- One stored grid of a product: one run (its versions), one window, one statistic (and threshold).
CREATE TABLE gik.product_result (
    result_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id       int NOT NULL REFERENCES gik.product_def ON DELETE CASCADE,
    init_time        timestamptz NOT NULL,
    versions         int[] NOT NULL,
    complete         bool NOT NULL,
    window_start     float8 NOT NULL,
    window_end       float8 NOT NULL,
    statistic        text NOT NULL,
    threshold        real,
    grid             gik.grid_desc NOT NULL,
    vals             real[] NOT NULL,
    members_used     int NOT NULL,
    members_expected int,
    members_missing  text[],
    compute_ms       float8,
    computed         timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE NULLS NOT DISTINCT (product_id, init_time, versions, window_start, window_end, statistic, threshold)
);
-- grids are read whole and do not compress: store them uncompressed
ALTER TABLE gik.product_result ALTER COLUMN vals SET STORAGE EXTERNAL;
CREATE INDEX ON gik.product_result (product_id, init_time DESC, result_id DESC);
COMMENT ON TABLE gik.product_result IS
'Stored products: one grid per product, run (init_time and the run version of each of its datasets, in the product''s order), window, statistic and threshold (exceedance only; NULL otherwise), with the members used, expected and missing, whether every run was complete when it was built, and how long the window took to compute. Older versions stay; gik.product() reads the newest.';

-- One attempt at building a product for one run.
CREATE TABLE gik.product_log (
    log_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id      int NOT NULL REFERENCES gik.product_def ON DELETE CASCADE,
    init_time       timestamptz NOT NULL,
    versions        int[] NOT NULL,
    status          text NOT NULL CHECK (status IN ('complete', 'partial', 'waiting', 'failed')),
    windows_built   int NOT NULL DEFAULT 0,
    windows_waiting int NOT NULL DEFAULT 0,
    sqlstate        text,
    error           text,
    error_detail    text,
    started         timestamptz NOT NULL,
    finished        timestamptz NOT NULL DEFAULT clock_timestamp(),
    total_ms        float8
);
CREATE INDEX ON gik.product_log (product_id, init_time, log_id);
COMMENT ON TABLE gik.product_log IS
'One row per attempt at building a product for a run: complete (every window stored), partial (some windows have fewer members than the product''s min_members: built again when the run''s version changes), waiting (none has), or failed (SQLSTATE, message and detail; nothing of the attempt is stored, and it is retried with a backoff).';

-- grant: reader
-- Accumulation windows from a compact list: 'A-B' one window, 'A-B/S' consecutive S-hour windows.
CREATE FUNCTION gik.product_windows(spec text)
RETURNS TABLE (window_start float8, window_end float8)
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    item text;
    m    text[];
BEGIN
    FOREACH item IN ARRAY string_to_array(replace(spec, ' ', ''), ',') LOOP
        -- no backslashes: the body is parsed with the session's standard_conforming_strings
        m := regexp_match(item, '^([0-9]+(?:[.][0-9]+)?)-([0-9]+(?:[.][0-9]+)?)(?:/([0-9]+(?:[.][0-9]+)?))?$');
        IF m IS NULL OR m[2]::float8 <= m[1]::float8 OR m[3]::float8 <= 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
                MESSAGE = format('invalid product window "%s" in "%s"', item, spec),
                HINT = 'Write A-B for one window of hours, A-B/S for consecutive S-hour windows, e.g. ''0-120/24'' or ''0-72''.';
        END IF;
        IF m[3] IS NULL THEN
            window_start := m[1]; window_end := m[2];
            RETURN NEXT;
        ELSE
            FOR k IN 0 .. ceil((m[2]::float8 - m[1]::float8) / m[3]::float8)::int - 1 LOOP
                window_start := m[1]::float8 + k * m[3]::float8;
                window_end := least(window_start + m[3]::float8, m[2]::float8);
                RETURN NEXT;
            END LOOP;
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION gik.product_windows(text) IS
'Accumulation windows in hours from a list of ''A-B'' (one window) and ''A-B/S'' (consecutive S-hour windows from A to B) items: ''0-120/24'' gives 0-24, 24-48, ..., 96-120.';

-- grant: ingest
-- Define (or redefine) a product; a redefinition drops what was built from the old definition.
CREATE FUNCTION gik.define_product(
    name text, datasets text[], windows text DEFAULT '0-24', thresholds real[] DEFAULT '{}',
    region gik.bbox DEFAULT NULL, statistics text[] DEFAULT '{exceedance}', lon text DEFAULT '-180..180',
    min_members int DEFAULT 1, palette text DEFAULT 'ecmwf', classes real[] DEFAULT NULL,
    raster bool DEFAULT true, description text DEFAULT NULL)
RETURNS gik.product_def
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p  gik.product_def;
    ds text;
BEGIN
    IF datasets IS NULL OR cardinality(datasets) = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('product "%s" names no dataset', define_product.name);
    END IF;
    FOREACH ds IN ARRAY datasets LOOP
        PERFORM gik.dataset_named(ds);
    END LOOP;
    IF 'exceedance' = ANY (statistics) AND coalesce(cardinality(thresholds), 0) = 0 THEN
        RAISE EXCEPTION USING ERRCODE = 'invalid_parameter_value',
            MESSAGE = format('product "%s" computes exceedance but has no thresholds', define_product.name),
            HINT = 'Pass thresholds in mm, e.g. thresholds => ''{10,25,50}''.';
    END IF;
    DELETE FROM gik.product_def x WHERE x.name = define_product.name;
    INSERT INTO gik.product_def (name, datasets, window_start, window_end, thresholds, region, lon, statistics,
                                 min_members, palette, classes, raster, description)
    SELECT define_product.name, datasets, array_agg(w.window_start ORDER BY w.window_start, w.window_end),
           array_agg(w.window_end ORDER BY w.window_start, w.window_end), coalesce(thresholds, '{}'), region,
           coalesce(lon, '-180..180'), statistics, coalesce(min_members, 1), coalesce(palette, 'ecmwf'), classes,
           coalesce(raster, true), description
    FROM gik.product_windows(coalesce(windows, '0-24')) w
    RETURNING * INTO p;
    RETURN p;
END $$;
COMMENT ON FUNCTION gik.define_product(text, text[], text, real[], gik.bbox, text[], text, int, text, real[], bool, text) IS
'Define a product: datasets (several form a grand ensemble on their common grid), windows (gik.product_windows syntax: ''0-120/24'' for day 1 to day 5, ''0-72'' for one window), thresholds in mm, region and longitude convention, statistics (exceedance, mean, min, max, p10, p50, p90), the fewest members a window is built from, the map palette and classes, and raster (publish gik_products.<name> when pg_gik_postgis is installed). Redefining a product drops its stored results. Returns the definition.';

-- grant: reader
CREATE FUNCTION gik.product_named(name text) RETURNS gik.product_def
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p gik.product_def;
BEGIN
    SELECT x.* INTO p FROM gik.product_def x WHERE x.name = product_named.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'undefined_object', MESSAGE = format('product "%s" does not exist', product_named.name),
            HINT = 'Products are listed in gik.product_def; define one with gik.define_product().';
    END IF;
    RETURN p;
END $$;
COMMENT ON FUNCTION gik.product_named(text) IS 'The definition of a product; an error naming it when it does not exist.';

-- grant: reader
-- The current version of each of a product's runs at init_time (NULL for a dataset without that run).
CREATE FUNCTION gik.product_runs(product_id int, init_time timestamptz,
                                 OUT versions int[], OUT runs_found int, OUT complete bool)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT array_agg(r.version ORDER BY d.ord), count(r.run_id)::int, coalesce(bool_and(r.status = 'complete'), false)
    FROM gik.product_def p
    CROSS JOIN LATERAL unnest(p.datasets) WITH ORDINALITY AS d(name, ord)
    LEFT JOIN gik.dataset ds ON ds.name = d.name
    LEFT JOIN gik.run r ON r.dataset_id = ds.dataset_id AND r.init_time = product_runs.init_time
    WHERE p.product_id = product_runs.product_id;
END;
COMMENT ON FUNCTION gik.product_runs(int, timestamptz) IS
'For a product and an init time: the current run version of each of its datasets (in its order; NULL where the run is not ingested), how many of the runs exist, and whether all are complete.';

-- grant: ingest
-- Build one product for one run: every window whose members meet min_members; logged, never raised.
CREATE FUNCTION gik.build_product(name text, init_time timestamptz, force bool DEFAULT false)
RETURNS gik.product_log
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    p        gik.product_def;
    runs     record;
    l        gik.product_log;
    t0       timestamptz := clock_timestamp();
    tw       timestamptz;
    ms       float8;
    built    int := 0;
    waiting  int := 0;
    others   text[];
    e        record;
    n        int;
    st       text;
    msg      text;
    det      text;
    hint     text;
BEGIN
    p := gik.product_named(build_product.name);
    runs := gik.product_runs(p.product_id, build_product.init_time);
    IF runs.runs_found < cardinality(p.datasets) THEN
        INSERT INTO gik.product_log (product_id, init_time, versions, status, error, started, total_ms)
        VALUES (p.product_id, build_product.init_time, runs.versions, 'waiting',
                format('not every run of %s at %s is ingested', array_to_string(p.datasets, ', '),
                       to_char(build_product.init_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24"z"')),
                t0, extract(epoch FROM clock_timestamp() - t0) * 1000)
        RETURNING * INTO l;
        RETURN l;
    END IF;
    others := ARRAY(SELECT s FROM unnest(p.statistics) s WHERE s <> 'exceedance');
    BEGIN
        IF force THEN
            DELETE FROM gik.product_result x WHERE x.product_id = p.product_id AND x.init_time = build_product.init_time
              AND x.versions = runs.versions;
        END IF;
        PERFORM pg_catalog.set_config('gik.min_members', p.min_members::text, true);
        FOR i IN 1 .. cardinality(p.window_start) LOOP
            tw := clock_timestamp();
            BEGIN
                -- gik.exceedance checks the members and grids, and leaves the members' totals of this
                -- window in pg_temp.gik_totals, from which the other statistics are computed.
                n := 0;
                FOR e IN SELECT * FROM gik.exceedance(p.datasets, build_product.init_time, p.window_start[i], p.window_end[i],
                                                      CASE WHEN cardinality(p.thresholds) > 0 THEN p.thresholds ELSE '{0}' END,
                                                      p.region, p.lon)
                LOOP
                    n := n + 1;
                    IF 'exceedance' = ANY (p.statistics) THEN
                        INSERT INTO gik.product_result (product_id, init_time, versions, complete, window_start, window_end,
                                                        statistic, threshold, grid, vals, members_used, members_expected,
                                                        members_missing)
                        VALUES (p.product_id, build_product.init_time, runs.versions, runs.complete, p.window_start[i],
                                p.window_end[i], 'exceedance', e.threshold, e.grid, e.probability, e.members_used,
                                e.members_expected, e.members_missing);
                    END IF;
                END LOOP;
                IF cardinality(others) > 0 THEN
                    INSERT INTO gik.product_result (product_id, init_time, versions, complete, window_start, window_end,
                                                    statistic, grid, vals, members_used, members_expected, members_missing)
                    SELECT p.product_id, build_product.init_time, runs.versions, runs.complete, p.window_start[i],
                           p.window_end[i], s.stat, e.grid, s.vals, e.members_used, e.members_expected, e.members_missing
                    FROM (SELECT gik.ens_mean(t.total) AS mean, gik.ens_min(t.total) AS mn, gik.ens_max(t.total) AS mx,
                                 gik.ens_percentile(t.total, '{0.1,0.5,0.9}') AS pct
                          FROM pg_temp.gik_totals t WHERE t.total IS NOT NULL) a
                    CROSS JOIN LATERAL (VALUES ('mean', a.mean), ('min', a.mn), ('max', a.mx),
                                               ('p10', gik.grid_band(a.pct, 1)), ('p50', gik.grid_band(a.pct, 2)),
                                               ('p90', gik.grid_band(a.pct, 3))) AS s(stat, vals)
                    WHERE s.stat = ANY (others);
                END IF;
                ms := extract(epoch FROM clock_timestamp() - tw) * 1000;
                UPDATE gik.product_result x SET compute_ms = ms
                WHERE x.product_id = p.product_id AND x.init_time = build_product.init_time AND x.versions = runs.versions
                  AND x.window_start = p.window_start[i] AND x.window_end = p.window_end[i];
                built := built + 1;
            EXCEPTION WHEN no_data_found THEN
                -- fewer members than min_members (or none) cover this window yet
                waiting := waiting + 1;
            END;
        END LOOP;
        INSERT INTO gik.product_log (product_id, init_time, versions, status, windows_built, windows_waiting, started, total_ms)
        VALUES (p.product_id, build_product.init_time, runs.versions,
                CASE WHEN waiting = 0 THEN 'complete' WHEN built = 0 THEN 'waiting' ELSE 'partial' END,
                built, waiting, t0, extract(epoch FROM clock_timestamp() - t0) * 1000)
        RETURNING * INTO l;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
        INSERT INTO gik.product_log (product_id, init_time, versions, status, sqlstate, error, error_detail, started, total_ms)
        VALUES (p.product_id, build_product.init_time, runs.versions, 'failed', st, msg,
                nullif(concat_ws(E'\n', nullif(det, ''), nullif(hint, '')), ''), t0,
                extract(epoch FROM clock_timestamp() - t0) * 1000)
        RETURNING * INTO l;
    END;
    RETURN l;
END $$;
COMMENT ON FUNCTION gik.build_product(text, timestamptz, bool) IS
'Build one product for the runs of its datasets at init_time, at their current versions: per window, the exceedance probabilities (gik.exceedance, with gik.min_members set to the product''s min_members) and the other statistics from the same members'' totals, stored in gik.product_result. A window with too few members waits; an error rolls back the whole attempt. Every attempt is logged in gik.product_log and returned; errors are not raised. force rebuilds results already stored for these versions.';

-- grant: reader
-- What gik.build_products would build: products of the given datasets whose runs changed since they were built.
CREATE FUNCTION gik.products_due(datasets text[] DEFAULT NULL, since timestamptz DEFAULT NULL,
                                 until timestamptz DEFAULT NULL, max_attempts int DEFAULT 5,
                                 retry_after interval DEFAULT '10 minutes')
RETURNS TABLE (product text, init_time timestamptz, versions int[], reason text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    SELECT c.name, c.init_time, c.versions,
           CASE WHEN c.last_status IS NULL THEN 'new run' ELSE 'retry after ' || c.failures || ' failures' END
    FROM (SELECT p.name, t.init_time, v.versions, v.runs_found, cardinality(p.datasets) AS n_datasets,
                 (SELECT l.status FROM gik.product_log l WHERE l.product_id = p.product_id AND l.init_time = t.init_time
                    AND l.versions IS NOT DISTINCT FROM v.versions ORDER BY l.log_id DESC LIMIT 1) AS last_status,
                 f.failures, f.last_failure
          FROM gik.product_def p
          CROSS JOIN LATERAL (SELECT DISTINCT r.init_time FROM gik.run r JOIN gik.dataset d USING (dataset_id)
                              WHERE d.name = ANY (p.datasets)
                                AND (products_due.since IS NULL OR r.init_time >= products_due.since)
                                AND (products_due.until IS NULL OR r.init_time <= products_due.until)) t
          CROSS JOIN LATERAL gik.product_runs(p.product_id, t.init_time) v
          CROSS JOIN LATERAL (SELECT count(*) AS failures, max(l.finished) AS last_failure FROM gik.product_log l
                              WHERE l.product_id = p.product_id AND l.init_time = t.init_time
                                AND l.versions IS NOT DISTINCT FROM v.versions AND l.status = 'failed') f
          WHERE p.enabled AND (products_due.datasets IS NULL OR p.datasets && products_due.datasets)) c
    WHERE c.runs_found = c.n_datasets
      AND (c.last_status IS NULL
           OR (c.last_status = 'failed' AND c.failures < products_due.max_attempts
               AND c.last_failure + products_due.retry_after * (2 ^ (c.failures - 1)) <= clock_timestamp()))
    ORDER BY c.init_time DESC, c.name;
END;
COMMENT ON FUNCTION gik.products_due(text[], timestamptz, timestamptz, int, interval) IS
'The (product, run) pairs to build: enabled products using one of datasets (all when NULL) and init times in [since, until] at which every dataset of the product has a run, not yet attempted at the runs'' current versions (a new run, a partial run that grew, a new version), or failed at them fewer than max_attempts times and not within retry_after (doubled after each failure).';

-- grant: ingest
-- Build the due products, one committed transaction each: called by gik.ingest_latest after its runs.
CREATE PROCEDURE gik.build_products(
    product text DEFAULT NULL, init_time timestamptz DEFAULT NULL, datasets text[] DEFAULT NULL,
    since timestamptz DEFAULT NULL, until timestamptz DEFAULT NULL, force bool DEFAULT false)
LANGUAGE plpgsql AS $$
-- Procedures that COMMIT cannot carry SET clauses: names are qualified and search_path pinned per transaction.
DECLARE
    caller_path text := pg_catalog.current_setting('search_path');
    todo        record;
    l           gik.product_log;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF build_products.product IS NOT NULL THEN
        PERFORM gik.product_named(build_products.product);
    END IF;
    FOR todo IN
        SELECT d.product AS name, d.init_time FROM gik.products_due(build_products.datasets, coalesce(build_products.init_time, build_products.since),
                                                                    coalesce(build_products.init_time, build_products.until)) d
        WHERE NOT build_products.force AND (build_products.product IS NULL OR d.product = build_products.product)
        UNION ALL
        -- force: every run in range of the named products, whatever was built before
        SELECT p.name, t.init_time FROM gik.product_def p
        CROSS JOIN LATERAL (SELECT DISTINCT r.init_time FROM gik.run r JOIN gik.dataset ds USING (dataset_id)
                            WHERE ds.name = ANY (p.datasets)
                              AND r.init_time >= coalesce(build_products.init_time, build_products.since, '-infinity')
                              AND r.init_time <= coalesce(build_products.init_time, build_products.until, 'infinity')) t
        WHERE build_products.force AND (build_products.product IS NULL OR p.name = build_products.product)
          AND (build_products.datasets IS NULL OR p.datasets && build_products.datasets)
        ORDER BY 2 DESC, 1
    LOOP
        l := gik.build_product(todo.name, todo.init_time, build_products.force);
        IF l.status = 'failed' THEN
            RAISE WARNING 'gik.build_products: % at %: failed (%): %', todo.name,
                to_char(todo.init_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24"z"'), l.sqlstate, l.error;
        ELSE
            RAISE NOTICE 'gik.build_products: % at %: % (% windows built, % waiting), % ms', todo.name,
                to_char(todo.init_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24"z"'), l.status, l.windows_built,
                l.windows_waiting, round(l.total_ms::numeric);
        END IF;
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    END LOOP;
    PERFORM pg_catalog.set_config('search_path', caller_path, true);
END $$;
COMMENT ON PROCEDURE gik.build_products(text, timestamptz, text[], timestamptz, timestamptz, bool) IS
'Build every due product (gik.products_due: new runs, grown partial runs, new versions, failures to retry), optionally only one product, one init time, the products of some datasets, or init times in [since, until]; each (product, run) is one committed gik.build_product attempt. force rebuilds every run in range. gik.ingest_latest calls it for its dataset after ingesting; CALL it to back-fill past runs. Must be CALLed outside an explicit transaction block.';

-- grant: reader
-- A stored product: the newest run by default, at its newest versions.
CREATE FUNCTION gik.product(name text, run timestamptz DEFAULT NULL, window_start float8 DEFAULT NULL,
                            statistic text DEFAULT NULL, threshold real DEFAULT NULL)
RETURNS TABLE (product text, datasets text[], init_time timestamptz, versions int[], complete bool,
               window_start float8, window_end float8, statistic text, threshold real, grid gik.grid_desc,
               vals real[], members_used int, members_expected int, members_missing text[], computed timestamptz,
               compute_ms float8)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
BEGIN ATOMIC
    WITH p AS (SELECT * FROM gik.product_named(product.name)),
    latest AS (
        SELECT x.init_time, x.versions FROM gik.product_result x, p
        WHERE x.product_id = p.product_id AND (product.run IS NULL OR x.init_time = product.run)
        ORDER BY x.init_time DESC, x.result_id DESC LIMIT 1)
    SELECT p.name, p.datasets, x.init_time, x.versions, x.complete, x.window_start, x.window_end, x.statistic,
           x.threshold, x.grid, x.vals, x.members_used, x.members_expected, x.members_missing, x.computed, x.compute_ms
    FROM p JOIN gik.product_result x ON x.product_id = p.product_id
    JOIN latest ON x.init_time = latest.init_time AND x.versions = latest.versions
    WHERE (product.window_start IS NULL OR x.window_start = product.window_start)
      AND (product.statistic IS NULL OR x.statistic = product.statistic)
      AND (product.threshold IS NULL OR x.threshold = product.threshold)
    ORDER BY x.window_start, x.statistic, x.threshold;
END;
COMMENT ON FUNCTION gik.product(text, timestamptz, float8, text, real) IS
'A stored product: the grids of its newest run (or of run), at the newest versions built, one row per window, statistic and threshold (filter with window_start, statistic, threshold), with the grid description, members used, expected and missing, the run versions and whether the runs were complete.';
