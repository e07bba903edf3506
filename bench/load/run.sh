#!/usr/bin/env bash
# Load test: pgbench with 8 clients for DURATION seconds against a private PostgreSQL cluster and a
# loopback nginx mirror, mixing four weighted scripts (pgbench -f file@weight):
#   ingest_latest.sql  CALL gik.ingest_latest for GEFS or ECMWF, "now" being one of 8 mirror cycles
#   decode.sql         gik.decode of a random chunk reference
#   decode_batch.sql   gik.decode_batch of a member set (one field at one step, every member)
#   exceedance.sql     gik.exceedance, East Africa 0-24 h, 4 thresholds
# Reports transactions per second and latency percentiles per script (from pgbench -l), failed
# transactions, aborted clients and failed ingestion attempts (gik.ingest_log), the backends' memory
# high-water mark (VmHWM sampled every second from /proc), then checks that no run is half-ingested:
# every run complete, its references equal to the lines of its index files and to a serial re-ingestion.
#
# Usage: bench/load/run.sh   (after ./run_tests.sh has installed the dependencies and pg_gik)
# Environment: DURATION (s, default 180, 10-1800), CLIENTS (8), THREADS (pgbench -j, 2),
#   W_INGEST/W_DECODE/W_BATCH/W_EXCEEDANCE (weights 1/10/3/2), MAX_RUNS (per ingest_latest call, 2),
#   RECHECK_H (hours, default 87600: complete runs are re-ingested; 0: only new runs),
#   GIK_LOAD_ROOT (/tmp/pg_gik_load), GIK_LOAD_PORT (nginx, 18965).
# Exit status 0 only with no error of any kind, every run consistent and no ERROR in the server log.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
WORK=${GIK_LOAD_ROOT:-/tmp/pg_gik_load}
PORT=${GIK_LOAD_PORT:-18965}
DURATION=${DURATION:-180}
[ "$DURATION" -ge 10 ] && [ "$DURATION" -le 1800 ] || { echo "DURATION must be 10-1800 s" >&2; exit 2; }
export DURATION CLIENTS=${CLIENTS:-8} THREADS=${THREADS:-2} MAX_RUNS=${MAX_RUNS:-2} RECHECK_H=${RECHECK_H:-87600}
export W_INGEST=${W_INGEST:-1} W_DECODE=${W_DECODE:-10} W_BATCH=${W_BATCH:-3} W_EXCEEDANCE=${W_EXCEEDANCE:-2}
MIRROR=$WORK/mirror

# 8 cycles (2025-10-01 00z to 2025-10-02 18z) of each dataset at 1 degree:
# GEFS 10 members x 5 steps (TMP, APCP, PRMSL), ECMWF 21 members (cf + 20 pf) x 5 steps (tp, 2t).
mkdir -p "$WORK"
if [ ! -f "$MIRROR/.complete" ]; then
  rm -rf "$MIRROR"
  echo "generating the mirror (8 GEFS and 8 ECMWF cycles) ..." >&2
  for date in 20251001 20251002; do
    for cycle in 0 6 12 18; do
      /usr/bin/python3 "$TOP/test/support/gen_mirror.py" --out "$MIRROR" --jobs 2 gefs --date $date --cycle $cycle \
        --members 0-9 --steps 0-24/6 --vars apcp --grid 1p0 --rain-grid 1p0 >&2
      /usr/bin/python3 "$TOP/test/support/gen_mirror.py" --out "$MIRROR" --jobs 2 ecmwf --date $date --cycle $cycle \
        --members 0-20 --steps 0-24/6 --grid 1p0 --params tp,2t >&2
    done
  done
  touch "$MIRROR/.complete"
fi
rm -rf "$WORK/out"
mkdir -p "$WORK/out"
chmod -R a+rX "$WORK"
chmod a+rwx "$WORK/out"

"$TOP/test/support/mirror-server.sh" start "$MIRROR" "$PORT" "$WORK/nginx"
trap '"$TOP/test/support/mirror-server.sh" stop "$WORK/nginx"' EXIT
pgport=$("$TOP/test/support/free-port.sh")

export LOAD_HTTP="http://127.0.0.1:$PORT" LOAD_MIRROR="$MIRROR" LOAD_OUT="$WORK/out" LOAD_HERE="$HERE" LOAD_TOP="$TOP"
pg_virtualenv -t -c "-p $pgport" -o shared_preload_libraries=pg_gik -o "max_connections=40" bash "$HERE/inner.sh"
