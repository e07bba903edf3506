-- Where gik.exceedance's time goes (bench/exceedance/inner.sh), current version, real-size GEFS and ECMWF:
-- the whole product; the member totals without the probabilities (gik.accumulations); the decodes alone
-- (gik.decode_batch over the same references, with the region and over the whole globe); and the CPU of
-- the backend and of its decoder processes during one gik.exceedance. Best of :runs; prints "key value" lines.
\set QUIET on
SELECT set_config('bench.runs', :'runs', false) \g /dev/null
CREATE TEMP TABLE stage (k text, ms float8);
CREATE FUNCTION pg_temp.cpu(pid int) RETURNS float8 LANGUAGE sql AS $$
    SELECT ((f[14])::float8 + (f[15])::float8) * 10
    FROM regexp_split_to_array(split_part(pg_read_file('/proc/' || pid || '/stat'), ') ', 2), ' ') s(g),
         LATERAL (SELECT ARRAY['', ''] || g) x(f) $$;
CREATE FUNCTION pg_temp.decoders_cpu() RETURNS float8 LANGUAGE sql AS $$
    SELECT coalesce(sum(pg_temp.cpu(pid)), 0) FROM gik.decoders() $$;
DO $$
DECLARE
    init timestamptz := '2025-10-01 00:00+00';
    box gik.bbox := gik.bbox(21, -12, 53, 23);
    refs gik.ref[];
    t0 timestamptz;
    b0 float8;
    d0 float8;
    ds text;
BEGIN
    FOREACH ds IN ARRAY '{gefs_real,ecmwf_real}'::text[] LOOP
        SELECT array_agg(p.ref) INTO refs FROM gik.accumulation_refs(ds, init, 0, 24) p;
        PERFORM count(*) FROM gik.exceedance(ds, init, 0, 24, '{5,25,50,75,100,125}', box);
        FOR i IN 1 .. current_setting('bench.runs')::int LOOP
            t0 := clock_timestamp(); b0 := pg_temp.cpu(pg_backend_pid()); d0 := pg_temp.decoders_cpu();
            PERFORM count(*) FROM gik.exceedance(ds, init, 0, 24, '{5,25,50,75,100,125}', box);
            INSERT INTO stage VALUES (ds || '_exceedance', extract(epoch FROM clock_timestamp() - t0) * 1000),
                                     (ds || '_backend_cpu', pg_temp.cpu(pg_backend_pid()) - b0),
                                     (ds || '_decoders_cpu', pg_temp.decoders_cpu() - d0);
            t0 := clock_timestamp();
            PERFORM count(*) FROM gik.accumulations(ds, init, 0, 24, box);
            INSERT INTO stage VALUES (ds || '_accumulations', extract(epoch FROM clock_timestamp() - t0) * 1000);
            t0 := clock_timestamp();
            PERFORM count(*) FROM (SELECT gik.decode_batch(refs, '-180..180', box)) s;
            INSERT INTO stage VALUES (ds || '_decode_region', extract(epoch FROM clock_timestamp() - t0) * 1000);
            t0 := clock_timestamp();
            PERFORM count(*) FROM (SELECT gik.decode_batch(refs)) s;
            INSERT INTO stage VALUES (ds || '_decode_globe', extract(epoch FROM clock_timestamp() - t0) * 1000);
        END LOOP;
    END LOOP;
END $$;
SELECT 'stage_' || k || ' ' || min(ms) FROM stage GROUP BY k ORDER BY k;
