#!/usr/bin/env bash
# East Africa 0-24 h exceedance, end to end from loopback nginx mirrors: GEFS (31 members x 4 APCP
# messages at 0.25 degree, complex packing) and ECMWF (51 members x 1 tp message at 0.25 degree, CCSDS),
# on two mirrors: smooth rain (small messages, as before) and realistic rain at real message sizes
# (tools/README-gen.md: GEFS APCP about 300 KB, ECMWF tp about 760 KB). In one run, interleaved:
# gik.exceedance of the current pg_gik (decoder processes), of pg_gik 0.1.0 (in-process decoding,
# bench/baseline.sh), the raw ecCodes decode floor of the same messages, and a GIK-style Python
# pipeline (8 threads, ecCodes, numpy). Also the backend's peak memory and where the time goes
# (bench/exceedance/stages.sql).
# Usage: bench/exceedance_bench.sh   (after ./run_tests.sh has installed the dependencies and pg_gik)
# Environment: GIK_BENCH_ROOT (/tmp/pg_gik_bench_exc), RUNS (3)
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
WORK=${GIK_BENCH_ROOT:-/tmp/pg_gik_bench_exc}
RUNS=${RUNS:-3}
MIRROR=$WORK/mirror
MIRROR_REALSIZE=$WORK/mirror-realsize
mkdir -p "$WORK"
"$TOP/bench/mirrors.sh" exceedance "$MIRROR"
"$TOP/bench/mirrors.sh" exceedance-realsize "$MIRROR_REALSIZE"
chmod -R a+rX "$WORK"
gcc -O2 -o "$WORK/decode_floor" "$TOP/bench/exceedance/decode_floor.c" $(pkg-config --cflags --libs eccodes)
"$TOP/bench/baseline.sh" install

PORT=$("$TOP/tools/free-port.sh")
PORT_REAL=$("$TOP/tools/free-port.sh")
"$TOP/tools/mirror-server.sh" start "$MIRROR" "$PORT" "$WORK/nginx"
"$TOP/tools/mirror-server.sh" start "$MIRROR_REALSIZE" "$PORT_REAL" "$WORK/nginx-realsize"
trap '"$TOP/tools/mirror-server.sh" stop "$WORK/nginx"; "$TOP/tools/mirror-server.sh" stop "$WORK/nginx-realsize"' EXIT
pgport=$("$TOP/tools/free-port.sh")

export BENCH_HTTP="http://127.0.0.1:$PORT" BENCH_HTTP_REAL="http://127.0.0.1:$PORT_REAL" BENCH_MIRROR="$MIRROR" \
  BENCH_MIRROR_REAL="$MIRROR_REALSIZE" BENCH_WORK="$WORK" BENCH_TOP="$TOP" RUNS BASE_PREFIXES="http://127.0.0.1:$PORT_REAL/"
pg_virtualenv -t -c "-p $pgport" -o shared_preload_libraries=pg_gik \
  "$TOP/bench/baseline.sh" with "$BENCH_HTTP" bash "$TOP/bench/exceedance/inner.sh"
