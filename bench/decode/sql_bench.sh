#!/usr/bin/env bash
# The interleaved part of bench/decode_bench.sh, run inside two throwaway clusters: the current pg_gik
# (PG* environment; decoding in its decoder processes) and the 0.1.0 baseline (BASE_PG; decoding in the
# backend, on threads), set up by bench/baseline.sh. In each of RUNS rounds, for each dataset: one
# pass of the raw ecCodes C loop, then gik.decode() in a loop and gik.decode_batch() over the same
# messages in each version. Interleaving lets every method sample the same load on a shared machine;
# report.py keeps the best round of each. CPU time is the backend's plus, for the current version, its
# decoder processes'. Prints one JSON object per line.
# Environment: GIK_HTTP (nginx, smooth mirror), GIK_HTTP_REAL (nginx, real-size mirror), MIRROR and
# MIRROR_REALSIZE (their roots), WORK (the *.tsv lists, ecc_loop), RUNS, THREADS, BASE_PG.
set -euo pipefail
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -At)
DATASETS=(gefs ecmwf gefs-realsize ecmwf-realsize)

# The same helper functions and message lists in both clusters.
setup() { # conninfo (the baseline's cluster has pg_gik_base already)
  [ -z "$1" ] && "${PSQL[@]}" -c "CREATE EXTENSION IF NOT EXISTS pg_gik"
  "${PSQL[@]}" "$1" <<'SQL'
CREATE TABLE bench_list (dataset text, path text, byte_offset int8, byte_length int8, ord serial);
-- CPU milliseconds (user + system, all threads) of a process, from /proc.
CREATE FUNCTION bench_proc_cpu_ms(pid int) RETURNS float8 LANGUAGE sql AS $$
    SELECT ((f[14])::float8 + (f[15])::float8) * 1000 / 100
    FROM regexp_split_to_array(split_part(pg_read_file('/proc/' || pid || '/stat'), ') ', 2), ' ') s(g),
         LATERAL (SELECT ARRAY['', ''] || g) x(f)
$$;
-- CPU milliseconds of this backend and of its decoder processes (none in 0.1.0).
CREATE FUNCTION bench_cpu_ms() RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    ms float8 := bench_proc_cpu_ms(pg_backend_pid());
    d float8;
BEGIN
    IF to_regproc('gik.decoders') IS NOT NULL THEN
        EXECUTE 'SELECT coalesce(sum(bench_proc_cpu_ms(pid)), 0) FROM gik.decoders()' INTO d;
        ms := ms + d;
    END IF;
    RETURN ms;
END $$;
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
  for ds in "${DATASETS[@]}"; do
    sed "s/^/$ds\t/" "$WORK/$ds.tsv" | "${PSQL[@]}" "$1" -c "COPY bench_list (dataset, path, byte_offset, byte_length) FROM STDIN"
  done
}
"$(dirname "$0")/../../test/support/point-at-mirror.sh" "$GIK_HTTP" "$GIK_HTTP_REAL/" >/dev/null
setup ""
setup "$BASE_PG"

# How a dataset's messages are named: s3:// on the smooth mirror's nginx, http:// on the real-size one's.
url_of() { # dataset
  case $1 in
    *-realsize) echo "'$GIK_HTTP_REAL/' || substr(path, length('$MIRROR_REALSIZE') + 2)" ;;
    *) echo "'s3://' || substr(path, length('$MIRROR') + 2)" ;;
  esac
}

# One pass of a SQL method as a JSON line (the session's first call of a method is a warm-up).
sql_pass() { # conninfo dataset label method url-expression version
  "${PSQL[@]}" "$1" <<SQL | tail -1
SET gik.decode_threads = ${THREADS:-2};
SELECT bench_pass('$4', array_agg(($5, byte_offset, byte_length)::gik.ref ORDER BY ord)) IS NULL FROM bench_list WHERE dataset = '$2';
SELECT json_build_object('dataset', '$2', 'method', '$3', 'version', '$6', 'round', ${ROUND:-1}, 'messages', n,
                         'best_ms', round((b).wall_ms::numeric, 1), 'ms_per_msg', round(((b).wall_ms / n)::numeric, 3),
                         'cpu_ms', round((b).cpu_ms::numeric, 0), 'cpu_ms_per_msg', round(((b).cpu_ms / n)::numeric, 3),
                         'threads', ${THREADS:-2})
FROM (SELECT bench_pass('$4', array_agg(($5, byte_offset, byte_length)::gik.ref ORDER BY ord)) AS b, count(*) AS n
      FROM bench_list WHERE dataset = '$2') s;
SQL
}
# One pass of the raw ecCodes loop as a JSON line.
c_pass() { # dataset label [env]
  env ${3:-} "$WORK/ecc_loop" "$WORK/$1.tsv" 1 |
    /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); d.update(dataset='$1', method='$2'); print(json.dumps(d))"
}

for round in $(seq "${RUNS:-5}"); do
  export ROUND=$round
  echo "round $round of ${RUNS:-5}" >&2
  for ds in "${DATASETS[@]}"; do
    url=$(url_of "$ds")
    c_pass "$ds" "raw ecCodes C loop"
    c_pass "$ds" "raw ecCodes C, glibc malloc defaults" ECC_LOOP_GLIBC_DEFAULTS=1
    for v in current 0.1.0; do
      conn=""; prefix=""
      [ $v = 0.1.0 ] && conn=$BASE_PG && prefix="0.1.0 "
      sql_pass "$conn" "$ds" "${prefix}gik.decode (s3 via nginx)" single "$url" $v
      if [ "${ds%-realsize}" = "$ds" ]; then
        sql_pass "$conn" "$ds" "${prefix}gik.decode (server file)" single "path" $v
      fi
      sql_pass "$conn" "$ds" "${prefix}gik.decode_batch (s3 via nginx)" batch "$url" $v
      if [ "${ds%-realsize}" = "$ds" ]; then
        sql_pass "$conn" "$ds" "${prefix}gik.decode_batch in FROM (materialized)" from "$url" $v
      fi
    done
  done
done
