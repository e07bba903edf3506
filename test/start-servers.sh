#!/usr/bin/env bash
# Start what the regression and Python suites read, in a work directory DIR: a copy of test/, the loopback
# mirror (built by test/support/make-mirror.sh when missing or made from other inputs), nginx serving it and
# the fault-injecting server. Then point the server psql reaches (PG* environment) at them and print the
# environment the suites need (also written to DIR/env.sh), so that against any running server with pg_gik
# preloaded: test/start-servers.sh /tmp/gik && . /tmp/gik/env.sh && make installcheck
#   test/start-servers.sh [--no-point] [DIR]   start (DIR: $GIK_TEST_ROOT, else /tmp/pg_gik_test)
#   test/start-servers.sh stop [DIR]           stop nginx and the fault server of DIR
# GIK_HTTP_PORT, GIK_FAULT_PORT: ports (default: free ones). --no-point: leave the server's settings alone.
# GIK_PY: the Python of the generator and the fault server (default: the project venv's, tools/venv.sh).
# DIR and its parents must be readable by the PostgreSQL server's user (it reads files under DIR).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
support=$top/test/support

stop_servers() { # DIR
  "$support/mirror-server.sh" stop "$1/nginx" 2>/dev/null || true
  if [ -f "$1/fault.pid" ]; then
    kill "$(cat "$1/fault.pid")" 2>/dev/null || true
    rm -f "$1/fault.pid"
  fi
}

# A digest of everything the mirror is made from: a mirror made from the same inputs is reused.
mirror_inputs() {
  (cd "$top" && find test/support/make-mirror.sh test/support/gen_mirror.py test/support/gen_scenarios test/data \
    -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

if [ "${1:-}" = stop ]; then
  stop_servers "${2:-${GIK_TEST_ROOT:-/tmp/pg_gik_test}}"
  exit 0
fi
point=1
[ "${1:-}" = --no-point ] && { point=0; shift; }
dir=${1:-${GIK_TEST_ROOT:-/tmp/pg_gik_test}}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
py=${GIK_PY:-$("$top/tools/venv.sh")}
http_port=${GIK_HTTP_PORT:-$("$support/free-port.sh")}
fault_port=${GIK_FAULT_PORT:-$("$support/free-port.sh")}
[ "$http_port" != "$fault_port" ] || { echo "start-servers: the mirror and the fault server need two ports" >&2; exit 2; }
stop_servers "$dir"

# The suites read test data, fixtures and the psql helpers from DIR/test (the clone may be private).
rm -rf "$dir/test"
mkdir -p "$dir/test"
tar -C "$top/test" --exclude=./results --exclude=./regression.diffs --exclude=./regression.out \
  --exclude=./fuzz/work --exclude=./unit/bin --exclude=__pycache__ -cf - . | tar -C "$dir/test" -xf -

inputs=$(mirror_inputs)
if [ "$(cat "$dir/mirror/.inputs" 2>/dev/null || true)" != "$inputs" ]; then
  echo "start-servers: building the mirror in $dir/mirror" >&2
  rm -rf "$dir/mirror" "$dir/mirror.new"
  GIK_PY=$py "$support/make-mirror.sh" "$dir/mirror.new" >&2
  echo "$inputs" >"$dir/mirror.new/.inputs"
  mv "$dir/mirror.new" "$dir/mirror"
fi
chmod -R a+rX "$dir"

"$support/mirror-server.sh" start "$dir/mirror" "$http_port" "$dir/nginx"
setsid "$py" "$support/fault_server.py" --root "$dir/mirror" --port "$fault_port" --pidfile "$dir/fault.pid" \
  >"$dir/fault.log" 2>&1 </dev/null &
http=http://127.0.0.1:$http_port
fault=http://127.0.0.1:$fault_port
for _ in $(seq 100); do curl -sf -o /dev/null "$fault/__stats" && break; sleep 0.1; done
curl -sf -o /dev/null "$fault/__stats" || { echo "start-servers: the fault server did not start; $dir/fault.log:" >&2; cat "$dir/fault.log" >&2; exit 1; }
curl -sf -o /dev/null -r 0-0 "$http/fixtures/SOURCES.md" || { echo "start-servers: nginx does not serve $dir/mirror on $http" >&2; exit 1; }
echo "start-servers: mirror on $http, fault server on $fault" >&2

# s3:// to the mirror; the mirror and the fault server allowed (the fault server as a further prefix).
[ $point -eq 0 ] || "$support/point-at-mirror.sh" "$http" "$fault/" >&2
cat <<ENV | tee "$dir/env.sh"
export GIK_TEST_ROOT=$dir GIK_HTTP=$http GIK_FAULT=$fault GIK_HTTP_PORT=$http_port GIK_FAULT_PORT=$fault_port
ENV
