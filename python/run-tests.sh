#!/usr/bin/env bash
# Run the pg_gik Python package's tests (python/test) with the project venv's python against the database
# the PG* environment names (it must have the pg_gik extension available; the tests create it and their
# own datasets). Needs the loopback mirror (GIK_TEST_ROOT, GIK_HTTP) and nginx for tools/mirror-server.sh.
# Usage: python/run-tests.sh [pytest arguments...]   (paths among them replace the default python/test)
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
PY=$("$TOP/tools/venv.sh")
cd "$TOP"
paths=()
for a in "$@"; do case $a in -*) ;; *) paths+=("$a") ;; esac; done
[ ${#paths[@]} -gt 0 ] || set -- "$TOP/python/test" "$@"
# -P: the checkout's pg_gik.so must not shadow the pg_gik package
exec "$PY" -P -m pytest -p no:cacheprovider "$@"
