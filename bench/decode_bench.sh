#!/usr/bin/env bash
# Decode benchmark: the same GRIB messages decoded by pg_gik (gik.decode in a loop, from server files
# and through s3:// on a loopback nginx; gik.decode_batch), by pg_gik 0.1.0, which decoded in the
# backend (bench/baseline.sh), and by its peers: a raw ecCodes C loop (bench/decode/ecc_loop.c),
# GDAL 3.6 (complex packing only: it cannot read CCSDS) and cfgrib/xarray.
# Data: a generated GEFS run, 31 members x APCP f006-f024 (124 messages, 0.25 degree, complex
# packing with spatial differencing), and an ECMWF run, 31 members x tp 6-24 h (124 messages,
# 0.25 degree, CCSDS), made by test/support/gen_mirror.py (smooth rain: messages of 40-140 KB, far below
# real sizes; the same runs at real sizes, --rain-model realistic, go to $WORK/mirror-realsize).
# Starts its own nginx and a throwaway cluster (pg_virtualenv -t), so it runs on a fresh machine once
# ./run_tests.sh has installed the dependencies.
#
# Usage: bench/decode_bench.sh        Environment: WORK (/tmp/pg_gik_decode_bench), RUNS (5; GDAL_RUNS 2,
#        cfgrib 1), CFGRIB_MAX (16 messages per dataset), THREADS (gik.decode_threads, default: cores),
#        KEEP_DATA=1 (reuse the generated data). Every figure is the best of its runs.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
WORK=${WORK:-/tmp/pg_gik_decode_bench}
RUNS=${RUNS:-5}
GDAL_RUNS=${GDAL_RUNS:-2}
CFGRIB_MAX=${CFGRIB_MAX:-16}
CORES=$(nproc)
THREADS=${THREADS:-$CORES}
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
free_port() { test/support/free-port.sh; }

make -s -j2
$SUDO make -s install
bench/baseline.sh install

# Data, in a world-readable directory (nginx workers and the server read it).
if [ "${KEEP_DATA:-0}" != 1 ] || [ ! -d "$WORK/mirror" ]; then
  rm -rf "$WORK"
  mkdir -p "$WORK"
  gen() { /usr/bin/python3 test/support/gen_mirror.py --out "$WORK/mirror" --jobs 2 "$@"; }
  gen gefs --date 20251001 --cycle 0 --members 0-30 --steps 6-24/6 --vars apcp --grid 1p0 --rain-grid 0p25
  gen ecmwf --date 20251001 --cycle 0 --members 0-30 --steps 6-24/6 --grid 0p25 --params tp
fi
# Real-size case: the same two runs with --rain-model realistic, whose messages have the sizes of real
# ones (GEFS APCP about 300 KB for these 6 h windows, with NCEP-style variable group lengths; ECMWF tp
# 600-770 KB; test/support/README.md), in a mirror of its own so that the lists above stay as they were.
# Its message lists are $WORK/gefs-realsize.tsv and $WORK/ecmwf-realsize.tsv; a second nginx serves it.
if [ ! -f "$WORK/mirror-realsize/.complete" ]; then
  rm -rf "$WORK/mirror-realsize"
  genreal() { /usr/bin/python3 test/support/gen_mirror.py --out "$WORK/mirror-realsize" --jobs 2 "$@" --rain-model realistic; }
  genreal gefs --date 20251001 --cycle 0 --members 0-30 --steps 6-24/6 --vars apcp --grid 1p0 --rain-grid 0p25
  genreal ecmwf --date 20251001 --cycle 0 --members 0-30 --steps 6-24/6 --grid 0p25 --params tp
  touch "$WORK/mirror-realsize/.complete"
fi
rm -f "$WORK"/*.json
chmod -R a+rX "$WORK"
MIRROR=$(cd "$WORK/mirror" && pwd)
MIRROR_REALSIZE=$(cd "$WORK/mirror-realsize" && pwd)
for ds in gefs ecmwf; do
  n=$(/usr/bin/python3 bench/decode/peers.py list "$MIRROR" "$ds" "$WORK/$ds.tsv")
  echo "$ds: $n messages" >&2
  n=$(/usr/bin/python3 bench/decode/peers.py list "$MIRROR_REALSIZE" "$ds" "$WORK/$ds-realsize.tsv")
  echo "$ds (real-size mirror): $n messages" >&2
done

HTTP_PORT=$(free_port)
GIK_HTTP="http://127.0.0.1:$HTTP_PORT"
test/support/mirror-server.sh start "$MIRROR" "$HTTP_PORT" "$WORK/nginx"
REAL_PORT=$(free_port)
GIK_HTTP_REAL="http://127.0.0.1:$REAL_PORT"
test/support/mirror-server.sh start "$MIRROR_REALSIZE" "$REAL_PORT" "$WORK/nginx-realsize"
trap 'test/support/mirror-server.sh stop "$WORK/nginx"; test/support/mirror-server.sh stop "$WORK/nginx-realsize"' EXIT
# With "tcp_nopush on" (TCP_CORK around sendfile) nginx holds the last segment of most range
# responses on a kept-alive loopback connection until the client's delayed ACK: about 40 ms per
# request whose offset is not a multiple of 64 KiB. S3 does not do that; turn it off here.
for n in nginx nginx-realsize; do
  if grep -q 'tcp_nopush on;' "$WORK/$n/nginx.conf"; then
    sed -i 's/tcp_nopush on;/tcp_nopush off;/' "$WORK/$n/nginx.conf"
    /usr/sbin/nginx -c "$WORK/$n/nginx.conf" -p "$WORK/$n" -s reload
    sleep 0.5
  fi
done

# Peers outside the database: GDAL (complex packing only) and cfgrib, which are far slower.
gcc -O2 -o "$WORK/ecc_loop" bench/decode/ecc_loop.c $(pkg-config --cflags --libs eccodes)
for ds in gefs ecmwf; do
  if [ "$ds" = gefs ]; then
    echo "GDAL: $ds" >&2
    /usr/bin/python3 bench/decode/peers.py gdal "$WORK/$ds.tsv" "$GDAL_RUNS" |
      /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); d.update(dataset='$ds', method='GDAL 3.6 open+read'); print(json.dumps(d))" \
      >> "$WORK/peers.json"
  fi
  echo "cfgrib: $ds ($CFGRIB_MAX messages)" >&2
  /usr/bin/python3 bench/decode/peers.py cfgrib "$WORK/$ds.tsv" 1 "$CFGRIB_MAX" 2>/dev/null |
    /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); d.update(dataset='$ds', method='cfgrib/xarray open+read'); print(json.dumps(d))" \
    >> "$WORK/peers.json"
done

# pg_gik in a throwaway cluster on a free port, interleaved with the raw ecCodes loop.
echo "SQL (current and 0.1.0) and raw ecCodes, interleaved: gik.decode and gik.decode_batch" >&2
PGPORT_BENCH=$(free_port)
GIK_HTTP=$GIK_HTTP GIK_HTTP_REAL=$GIK_HTTP_REAL MIRROR=$MIRROR MIRROR_REALSIZE=$MIRROR_REALSIZE WORK=$WORK \
  RUNS=$RUNS THREADS=$THREADS BASE_PREFIXES="$GIK_HTTP_REAL/" \
  pg_virtualenv -t -c "-p $PGPORT_BENCH" -o shared_preload_libraries=pg_gik \
  "$SRC/bench/baseline.sh" with "$GIK_HTTP" bash "$SRC/bench/decode/sql_bench.sh" > "$WORK/sql.json"

echo
echo "Decode benchmark on $(nproc) cores ($(uname -m)), load average $(cut -d' ' -f1-3 /proc/loadavg); gik.decode_threads = $THREADS"
/usr/bin/python3 bench/decode/report.py "$WORK" "$CORES"
