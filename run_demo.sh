#!/usr/bin/env bash
# The main job on local data, no network needed: installs dependencies, builds pg_gik, generates a
# loopback mirror of one GEFS run (31 members) and one ECMWF ENS run (51 members) in the real S3
# layouts and index formats, serves it with nginx on 127.0.0.1, ingests both runs into a throwaway
# PostgreSQL cluster, prints what was ingested (demo/demo.sql), stores the East Africa morning product
# (demo/products.sql) and draws its maps (tools/product_map.py).
# Usage: ./run_demo.sh   (output files go to ./demo-output/)
set -euo pipefail
cd "$(dirname "$0")"
TOP=$(pwd)
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

tools/install-deps.sh
make -s -j2
$SUDO make -s install

WORK=${GIK_DEMO_ROOT:-/tmp/pg_gik_demo}
PORT=${GIK_DEMO_PORT:-18965}
OUT=$TOP/demo-output
mkdir -p "$WORK" "$OUT"
if [ ! -f "$WORK/mirror/.complete" ]; then
  rm -rf "$WORK/mirror"
  echo "Generating the mirror (GEFS 31 members x 17 steps, ECMWF 51 members x 9 steps, 0.25 degree rain) ..." >&2
  /usr/bin/python3 tools/gen_mirror.py --out "$WORK/mirror" --jobs 2 gefs --date 20251001 --cycle 0 \
    --members 0-30 --steps 0-48/3 --vars apcp --grid 1p0 --rain-grid 0p25 >&2
  /usr/bin/python3 tools/gen_mirror.py --out "$WORK/mirror" --jobs 2 ecmwf --date 20251001 --cycle 0 \
    --members 0-50 --steps 0-48/6 --grid 0p25 --params tp >&2
  touch "$WORK/mirror/.complete"
fi
chmod -R a+rX "$WORK"

tools/mirror-server.sh start "$WORK/mirror" "$PORT" "$WORK/nginx"
trap 'tools/mirror-server.sh stop "$WORK/nginx"' EXIT
pgport=$(tools/free-port.sh)

export DEMO_HTTP="http://127.0.0.1:$PORT" DEMO_OUT="$OUT" DEMO_SQL="$TOP/demo/demo.sql" DEMO_TOP="$TOP"
pg_virtualenv -t -c "-p $pgport" -o shared_preload_libraries=pg_gik bash -c '
set -euo pipefail
"$DEMO_TOP/tools/point-at-mirror.sh" "$DEMO_HTTP"
psql -X -v ON_ERROR_STOP=1 -v out="$DEMO_OUT" -f "$DEMO_SQL"
psql -X -v ON_ERROR_STOP=1 -v out="$DEMO_OUT" -f "$DEMO_TOP/demo/products.sql"
echo "== 8. Maps: coastlines and borders (Natural Earth), colour classes, legend, title =="
psql -X -q -v ON_ERROR_STOP=1 -o /dev/null -f "$DEMO_TOP/data/boundaries/ne_110m_countries.sql" 2>/dev/null
/usr/bin/python3 "$DEMO_TOP/tools/product_map.py" --product east_africa_rain --out-dir "$DEMO_OUT"
'
