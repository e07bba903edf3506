#!/usr/bin/env bash
# Stored products: reading a product (gik.product) beside computing it (gik.exceedance, the peer, and
# gik.build_product, which computes and stores it), measured in the same run, interleaved by round:
# East Africa 0-24 h exceedance of GEFS (31 members) + ECMWF (51 members) at 0.25 degree, 6 thresholds
# (bench/products/inner.sql).
# Usage: bench/products_bench.sh             the exceedance bench mirror (bench/mirrors.sh), a throwaway cluster
#        BENCH_SMOKE=1 bench/products_bench.sh   a quick check on the server in PG* with the mirror it already
#                                               points at (the test mirror: GEFS alone, 3 members), 2 rounds
# Environment: GIK_BENCH_ROOT (/tmp/pg_gik_bench_products), RUNS (5 rounds), READS (reads per round, 20)
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${BENCH_SMOKE:-}" ]; then
  db=gik_products_bench_$$
  createdb "$db"
  trap 'dropdb --if-exists "$db"' EXIT
  psql -X -d "$db" -qc "CREATE EXTENSION pg_gik" 2>/dev/null
  # the test mirror's ECMWF run is on a 1 degree grid: GEFS alone
  psql -X -d "$db" -v ON_ERROR_STOP=1 -v rounds="${RUNS:-2}" -v reads="${READS:-5}" -v datasets='{gefs_0p25}' -f "$TOP/bench/products/inner.sql"
  exit
fi
WORK=${GIK_BENCH_ROOT:-/tmp/pg_gik_bench_products}
mkdir -p "$WORK"
"$TOP/bench/mirrors.sh" exceedance "$WORK/mirror"
chmod -R a+rX "$WORK"
PORT=$("$TOP/tools/free-port.sh")
"$TOP/tools/mirror-server.sh" start "$WORK/mirror" "$PORT" "$WORK/nginx"
trap '"$TOP/tools/mirror-server.sh" stop "$WORK/nginx"' EXIT
pgport=$("$TOP/tools/free-port.sh")
export BENCH_HTTP="http://127.0.0.1:$PORT" BENCH_TOP="$TOP" RUNS=${RUNS:-5} READS=${READS:-20}
pg_virtualenv -t -c "-p $pgport" -o shared_preload_libraries=pg_gik bash -c '
set -euo pipefail
"$BENCH_TOP/tools/point-at-mirror.sh" "$BENCH_HTTP" >/dev/null
psql -X -qc "CREATE EXTENSION pg_gik" 2>/dev/null
psql -X -v ON_ERROR_STOP=1 -v rounds="$RUNS" -v reads="$READS" -v datasets="{gefs_0p25,ecmwf_ens_0p25}" -f "$BENCH_TOP/bench/products/inner.sql"
'
