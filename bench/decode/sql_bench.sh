#!/usr/bin/env bash
# The interleaved part of bench/decode_bench.sh, run inside a throwaway cluster (pg_virtualenv): in
# each of RUNS rounds, for each dataset, one pass of the raw ecCodes C loop (both malloc settings),
# gik.decode() in a loop (through s3:// on the loopback nginx, and from server files) and
# gik.decode_batch() over the same messages. Interleaving lets every method sample the same load on
# a shared machine; report.py keeps the best round of each. Prints one JSON object per line.
# Environment: GIK_HTTP (nginx), MIRROR (its root), WORK (gefs.tsv, ecmwf.tsv, ecc_loop), RUNS, THREADS.
set -euo pipefail
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -At)

"$(dirname "$0")/../../tools/point-at-mirror.sh" "$GIK_HTTP"
"${PSQL[@]}" <<'SQL'
CREATE EXTENSION IF NOT EXISTS pg_gik;
CREATE TABLE bench_list (dataset text, path text, byte_offset int8, byte_length int8, ord serial);
-- Milliseconds of CPU (user + system, all threads) this backend has used, from /proc.
CREATE FUNCTION bench_cpu_ms() RETURNS float8 LANGUAGE sql AS $$
    SELECT ((f[14])::float8 + (f[15])::float8) * 1000 / 100
    FROM regexp_split_to_array(split_part(pg_read_file('/proc/' || pg_backend_pid() || '/stat'), ') ', 2), ' ') s(g),
         LATERAL (SELECT ARRAY['', ''] || g) x(f)
$$;
-- One timed pass of a method over a dataset: wall and CPU milliseconds.
CREATE FUNCTION bench_pass(method text, refs gik.ref[], OUT wall_ms float8, OUT cpu_ms float8) LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz := clock_timestamp();
    c0 float8 := bench_cpu_ms();
    r gik.ref;
    n int;
BEGIN
    IF method = 'single' THEN
        FOREACH r IN ARRAY refs LOOP
            PERFORM gik.decode(r);
        END LOOP;
    ELSIF method = 'batch' THEN
        -- in the select list PostgreSQL streams the rows (ProjectSet) ...
        SELECT count(*) INTO n FROM (SELECT gik.decode_batch(refs)) s;
        IF n <> cardinality(refs) THEN
            RAISE EXCEPTION 'batch returned % rows for % references', n, cardinality(refs);
        END IF;
    ELSE
        -- ... in FROM it first materializes them all in a tuplestore, on disk past work_mem
        SELECT count(*) INTO n FROM gik.decode_batch(refs);
    END IF;
    wall_ms := extract(epoch FROM clock_timestamp() - t0) * 1000;
    cpu_ms := bench_cpu_ms() - c0;
END $$;
SQL
for ds in gefs ecmwf; do
  sed "s/^/$ds\t/" "$WORK/$ds.tsv" | "${PSQL[@]}" -c "COPY bench_list (dataset, path, byte_offset, byte_length) FROM STDIN"
done

# One pass of a SQL method as a JSON line (the session's first call of a method is a warm-up).
sql_pass() { # dataset label method url-expression
  "${PSQL[@]}" <<SQL | tail -1
SET gik.decode_threads = ${THREADS:-2};
SELECT bench_pass('$3', array_agg(($4, byte_offset, byte_length)::gik.ref ORDER BY ord)) IS NULL FROM bench_list WHERE dataset = '$1';
SELECT json_build_object('dataset', '$1', 'method', '$2', 'messages', n, 'best_ms', round((b).wall_ms::numeric, 1),
                         'ms_per_msg', round(((b).wall_ms / n)::numeric, 3), 'cpu_ms', round((b).cpu_ms::numeric, 0),
                         'cpu_ms_per_msg', round(((b).cpu_ms / n)::numeric, 3), 'threads', ${THREADS:-2})
FROM (SELECT bench_pass('$3', array_agg(($4, byte_offset, byte_length)::gik.ref ORDER BY ord)) AS b, count(*) AS n
      FROM bench_list WHERE dataset = '$1') s;
SQL
}
# One pass of the raw ecCodes loop as a JSON line.
c_pass() { # dataset label [env]
  env ${3:-} "$WORK/ecc_loop" "$WORK/$1.tsv" 1 |
    /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); d.update(dataset='$1', method='$2'); print(json.dumps(d))"
}

s3url="'s3://' || substr(path, length('$MIRROR') + 2)"
for round in $(seq "${RUNS:-5}"); do
  echo "round $round of ${RUNS:-5}" >&2
  for ds in gefs ecmwf; do
    c_pass "$ds" "raw ecCodes C loop"
    c_pass "$ds" "raw ecCodes C, glibc malloc defaults" ECC_LOOP_GLIBC_DEFAULTS=1
    sql_pass "$ds" "gik.decode (s3 via nginx)" single "$s3url"
    sql_pass "$ds" "gik.decode (server file)" single "path"
    sql_pass "$ds" "gik.decode_batch (s3 via nginx)" batch "$s3url"
    sql_pass "$ds" "gik.decode_batch in FROM (materialized)" from "$s3url"
  done
done
