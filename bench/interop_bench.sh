#!/usr/bin/env bash
# pg_gik beside the Python peers, in one run on the loopback mirror (bench/interop/): reference building for a
# full GEFS run (2,511 files) and a full ECMWF run (85 files) against gribberish's VirtualiZarr parser, kerchunk's
# scan_grib and Herbie, time and bytes read (nginx access log).
# Usage: bench/interop_bench.sh [refs.py options]   (after ./run_tests.sh has installed pg_gik; makes the venv)
# Environment: GIK_BENCH_ROOT (/tmp/pg_gik_bench)
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
WORK=${GIK_BENCH_ROOT:-/tmp/pg_gik_bench}
MIRROR=$WORK/mirror
PY=$("$TOP/tools/venv.sh")
mkdir -p "$WORK"
"$TOP/bench/mirrors.sh" gefs-run "$MIRROR"
"$TOP/bench/mirrors.sh" ecmwf-run "$MIRROR"
chmod -R a+rX "$WORK"
PORT=$("$TOP/tools/free-port.sh")
GIK_ACCESS_LOG=$WORK/access.log "$TOP/tools/mirror-server.sh" start "$MIRROR" "$PORT" "$WORK/nginx-log"
trap '"$TOP/tools/mirror-server.sh" stop "$WORK/nginx-log"' EXIT
chmod a+rw "$WORK/access.log"
pgport=$("$TOP/tools/free-port.sh")
export BENCH_HTTP="http://127.0.0.1:$PORT" BENCH_MIRROR="$MIRROR" BENCH_TOP="$TOP" BENCH_LOG="$WORK/access.log" PY
pg_virtualenv -t -c "-p $pgport" -o shared_preload_libraries=pg_gik bash -s -- "$@" <<'INNER'
set -euo pipefail
"$BENCH_TOP/tools/point-at-mirror.sh" "$BENCH_HTTP"
psql -qX -v ON_ERROR_STOP=1 -c "CREATE EXTENSION pg_gik"
"$PY" "$BENCH_TOP/bench/interop/refs.py" --http "$BENCH_HTTP" --mirror "$BENCH_MIRROR" --access-log "$BENCH_LOG" "$@"
INNER
