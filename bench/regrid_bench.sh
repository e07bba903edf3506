#!/usr/bin/env bash
# Regridding benchmark: the cost of regridding one member (gik.regrid, weights cached) against the cost
# of decoding it (gik.decode), on the same real 0.25 degree global field, with the weights' first call
# and numpy's regridding of the same field (the peer) measured in the same run. bench/regrid/bench.py
# does the work. Runs against the server the PG* environment names (pg_gik installed, a superuser: it
# reads test/data as server files).
#   bench/regrid_bench.sh [RUNS (default 5)] [MEMBERS (default 20)]
set -euo pipefail
cd "$(dirname "$0")/.."
exec nice -n 10 /usr/bin/python3 bench/regrid/bench.py "$(pwd)/test/data" "${1:-5}" "${2:-20}"
