-- bench/products_bench.sh: East Africa 0-24 h exceedance (6 thresholds) of :datasets (GEFS + ECMWF), as a stored product.
-- Per round: compute it with gik.exceedance (the peer: what a forecaster runs without products), build it
-- with gik.build_product (the same computation, stored), then read it back with gik.product() :reads times.
\set QUIET on
SET client_min_messages = warning;
SET timezone = 'UTC';
\o /dev/null
SELECT FROM gik.ingest_run('gefs_0p25', '2025-10-01 00:00+00', variables => '{APCP}', steps => gik.step_list('0-24/6'), allow_missing => true);
SELECT FROM gik.ingest_run('ecmwf_ens_0p25', '2025-10-01 00:00+00', variables => '{tp}', steps => '{0,24}', allow_missing => true);
SELECT FROM gik.define_product('bench_ea', :'datasets', '0-24', '{5,25,50,75,100,125}',
                           gik.bbox(21, -12, 53, 23), raster => false);
CREATE TEMP TABLE timing (round int, what text, ms float8);
CREATE FUNCTION pg_temp.round(r int, reads int) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    n  int;
    l  gik.product_log;
BEGIN
    t0 := clock_timestamp();
    SELECT count(*) INTO n FROM gik.exceedance((SELECT p.datasets FROM gik.product_def p WHERE p.name = 'bench_ea'),
                                               '2025-10-01 00:00+00', 0, 24,
                                               '{5,25,50,75,100,125}', gik.bbox(21, -12, 53, 23));
    INSERT INTO timing VALUES (r, 'compute: gik.exceedance (peer)', extract(epoch FROM clock_timestamp() - t0) * 1000);
    t0 := clock_timestamp();
    l := gik.build_product('bench_ea', '2025-10-01 00:00+00', force => true);
    IF l.status <> 'complete' THEN
        RAISE EXCEPTION 'bench_ea not built: % %', l.status, l.error;
    END IF;
    INSERT INTO timing VALUES (r, 'compute and store: gik.build_product', extract(epoch FROM clock_timestamp() - t0) * 1000);
    FOR i IN 1 .. reads LOOP
        t0 := clock_timestamp();
        -- cardinality() detoasts each grid: the read includes fetching the values
        PERFORM sum(cardinality(p.vals)) FROM gik.product('bench_ea') p;
        INSERT INTO timing VALUES (r, 'read all 6 thresholds: gik.product', extract(epoch FROM clock_timestamp() - t0) * 1000);
        t0 := clock_timestamp();
        PERFORM sum(cardinality(p.vals)) FROM gik.product('bench_ea', threshold => 50) p;
        INSERT INTO timing VALUES (r, 'read one threshold: gik.product', extract(epoch FROM clock_timestamp() - t0) * 1000);
    END LOOP;
END $$;
SELECT pg_temp.round(r, :reads) FROM generate_series(1, :rounds) r;
\o
\set QUIET off
\pset footer off
SELECT members_used || '/' || members_expected AS members, (grid).ni || 'x' || (grid).nj AS grid
FROM gik.product('bench_ea', threshold => 50);
SELECT what, count(*) AS n, round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 2) AS median_ms,
       round(min(ms)::numeric, 2) AS min_ms, round(max(ms)::numeric, 2) AS max_ms
FROM timing GROUP BY what ORDER BY median_ms DESC;
