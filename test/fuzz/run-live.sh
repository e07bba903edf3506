#!/usr/bin/env bash
# Live-server fuzzing (test/fuzz/live_fuzz.py) against the installed pg_gik: a throwaway cluster
# (pg_virtualenv, pg_gik preloaded) and nginx on a free loopback port serving the mutated files.
# Usage: test/fuzz/run-live.sh SECONDS [WORK]   (WORK default test/fuzz/work/live)
# Prints live_fuzz.py's last line ("live-fuzz: ... R server restarts"); exit status 1 when R > 0.
set -euo pipefail
seconds=${1:?seconds}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
work=${2:-$here/work/live}
served=$(mktemp -d /tmp/pg_gik_livefuzz.XXXXXX)
chmod 755 "$served"
port=$("$top/tools/free-port.sh")
pgport=$("$top/tools/free-port.sh")
mkdir -p "$work"
cleanup() { "$top/tools/mirror-server.sh" stop "$served.nginx" >/dev/null 2>&1 || true; rm -rf "$served" "$served.nginx"; }
trap cleanup EXIT
"$top/tools/mirror-server.sh" start "$served" "$port" "$served.nginx" 2>/dev/null
# GIK_PY: the Python for live_fuzz.py (run_tests.sh sets it to the project venv's; default: tools/venv.sh)
export LIVE_PY=${GIK_PY:-$("$top/tools/venv.sh")}
export LIVE_TOP=$top LIVE_SERVED=$served LIVE_URL="http://127.0.0.1:$port" LIVE_WORK=$work LIVE_SECONDS=$seconds
pg_virtualenv -t -c "-p $pgport" -o shared_preload_libraries=pg_gik bash -c '
  set -e
  "$LIVE_TOP/tools/point-at-mirror.sh" "$LIVE_URL" >/dev/null
  psql -qX -c "CREATE EXTENSION pg_gik" 2>/dev/null
  "$LIVE_PY" "$LIVE_TOP/test/fuzz/live_fuzz.py" --seconds "$LIVE_SECONDS" --dir "$LIVE_SERVED" \
    --url "$LIVE_URL" --out "$LIVE_WORK" --seed "${FUZZ_SEED:-1}"'
