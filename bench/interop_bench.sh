#!/usr/bin/env bash
# pg_gik beside the Python peers, in one run on loopback mirrors (bench/interop/):
#   refs        reference building for a full GEFS run (2,511 files) and a full ECMWF run (85 files): gik.ingest_run
#               against gribberish's VirtualiZarr parser, kerchunk's scan_grib and Herbie; time and bytes read
#               (nginx access log); a day of HRRR and a GFS run against Herbie on index-only mirrors
#               (bench/interop/refs.py)
#   exceedance  East Africa 0-24 h exceedance, GEFS + ECMWF at real message sizes: gik.exceedance against
#               xarray + gribberish over pg_gik's Icechunk store (threads, LocalCluster) and over gribberish's own
#               virtual dataset, and the GIK-style Python pipeline (bench/interop/exceedance.py)
# Usage: bench/interop_bench.sh [refs|exceedance|all] [options of that part's script]
#        (after ./run_tests.sh has installed pg_gik; makes the venv)
# Environment: GIK_BENCH_ROOT (/tmp/pg_gik_bench)
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
WORK=${GIK_BENCH_ROOT:-/tmp/pg_gik_bench}
part=${1:-all}; [ $# -gt 0 ] && shift
PY=$("$TOP/tools/venv.sh")
mkdir -p "$WORK"
stop=()
trap 'for s in "${stop[@]}"; do "$TOP/tools/mirror-server.sh" stop "$s"; done' EXIT

# inside a throwaway cluster pointed at the mirror: SCRIPT ARGS...
in_cluster() {
  local pgport; pgport=$("$TOP/tools/free-port.sh")
  pg_virtualenv -t -c "-p $pgport" -o shared_preload_libraries=pg_gik bash -s -- "$@" <<'INNER'
set -euo pipefail
"$BENCH_TOP/tools/point-at-mirror.sh" "$BENCH_HTTP" >/dev/null
psql -qX -v ON_ERROR_STOP=1 -c "CREATE EXTENSION pg_gik"
"$PY" "$@"
INNER
}
serve() { # mirror state-dir [access-log]
  local port; port=$("$TOP/tools/free-port.sh")
  chmod -R a+rX "$1"
  GIK_ACCESS_LOG=${3:-} "$TOP/tools/mirror-server.sh" start "$1" "$port" "$2" >&2
  stop+=("$2")
  [ -n "${3:-}" ] && chmod a+rw "$3"
  echo "http://127.0.0.1:$port"
}
export BENCH_TOP="$TOP" PY

if [ "$part" = all ] || [ "$part" = refs ]; then
  "$TOP/bench/mirrors.sh" gefs-run "$WORK/mirror"
  "$TOP/bench/mirrors.sh" ecmwf-run "$WORK/mirror"
  "$TOP/bench/mirrors.sh" hrrr-day "$WORK/mirror"
  "$TOP/bench/mirrors.sh" gfs-index-run "$WORK/mirror"
  BENCH_HTTP=$(serve "$WORK/mirror" "$WORK/nginx-log" "$WORK/access.log")
  export BENCH_HTTP
  in_cluster "$TOP/bench/interop/refs.py" --http "$BENCH_HTTP" --mirror "$WORK/mirror" --access-log "$WORK/access.log" \
    $([ "$part" = refs ] && printf '%s ' "$@")
fi
if [ "$part" = all ] || [ "$part" = exceedance ]; then
  "$TOP/bench/mirrors.sh" exceedance-realsize "$WORK/exc-mirror"
  BENCH_HTTP=$(serve "$WORK/exc-mirror" "$WORK/nginx-exc")
  export BENCH_HTTP
  in_cluster "$TOP/bench/interop/exceedance.py" --http "$BENCH_HTTP" $([ "$part" = exceedance ] && printf '%s ' "$@")
fi
