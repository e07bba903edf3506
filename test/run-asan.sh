#!/usr/bin/env bash
# make check-asan: the pg_regress suite (and, with --py, the pytest suite) against a build of
# pg_gik.so instrumented with AddressSanitizer and UBSan, loaded into a PostgreSQL 15 server
# that has the ASan runtime preloaded.
#
# Nothing is installed system-wide and the source tree is only read:
#   GIK_TEST_ROOT (default /tmp/pg_gik_asan)/build   copy of the source tree, built with ASan
#   .../pg/usr/{lib,share}/postgresql/15             private PostgreSQL tree: bin copied, everything
#                                                    else symlinked, the ASan pg_gik installed into it
#                                                    (postgres finds lib and share relative to its binary)
#   .../mirror, nginx, fault server, data, asan/     as run_tests.sh, plus one ASan/UBSan report per process
# GIK_HTTP_PORT / GIK_FAULT_PORT (default 19365 / 19366) and GIK_PG_PORT (default: a free port) keep it
# apart from run_tests.sh. Exit status 0 only when every test passed and no process reported an error.
# GIK_PYTEST_ARGS adds arguments to pytest, e.g. --deselect test/py/test_decode.py::test_corrupt_messages
# (a backend that ASan stops takes the server through crash recovery, failing the tests that run meanwhile).
# Usage: test/run-asan.sh [--py] [--keep]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
py=0
keep=0
for a in "$@"; do
  case $a in
    --py) py=1 ;;
    --keep) keep=1 ;;
    *) echo "unknown option $a" >&2; exit 2 ;;
  esac
done

export GIK_TEST_ROOT=${GIK_TEST_ROOT:-/tmp/pg_gik_asan}
export GIK_HTTP_PORT=${GIK_HTTP_PORT:-19365}
export GIK_FAULT_PORT=${GIK_FAULT_PORT:-19366}
export GIK_HTTP="http://127.0.0.1:$GIK_HTTP_PORT"
export GIK_FAULT="http://127.0.0.1:$GIK_FAULT_PORT"
ROOT=$GIK_TEST_ROOT
PGVER=15
PGBIN=/usr/lib/postgresql/$PGVER/bin
PRIV=$ROOT/pg
PRIVBIN=$PRIV/usr/lib/postgresql/$PGVER/bin
ASAN_RT=$(gcc -print-file-name=libasan.so)
[ -f "$ASAN_RT" ] || { echo "gcc's libasan.so not found" >&2; exit 1; }

# as the server's owner: postgres when running as root
as_owner() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

stop_all() {
  [ -x "$PRIVBIN/pg_ctl" ] && [ -f "$ROOT/data/postmaster.pid" ] && as_owner "$PRIVBIN/pg_ctl" -D "$ROOT/data" -m immediate stop >/dev/null 2>&1 || true
  "$SRC/tools/mirror-server.sh" stop "$ROOT/nginx" 2>/dev/null || true
  [ -f "$ROOT/fault.pid" ] && kill "$(cat "$ROOT/fault.pid")" 2>/dev/null || true
}

"$SRC/tools/install-deps.sh"
# the project venv's Python for the generator, the fault server and pytest (as run_tests.sh)
GIK_PY=$("$SRC/tools/venv.sh")
export GIK_PY
stop_all
rm -rf "$ROOT"
mkdir -p "$ROOT/build" "$ROOT/asan"

echo "== building pg_gik with -fsanitize=address,undefined in $ROOT/build"
tar -C "$SRC" --exclude=.git --exclude=./.venv --exclude=./.venv.lockfile --exclude='*.o' --exclude='*.bc' --exclude='*.so' --exclude=./test/fuzz/work \
  --exclude=./test/results --exclude=./test/unit/bin --exclude=./demo-output --exclude=./tmp_check -cf - . |
  tar -C "$ROOT/build" -xf -
echo "== private PostgreSQL tree in $PRIV"
"$SRC/test/private-pg.sh" tree "$ROOT/build" "$PRIV" with_llvm=no \
  COPT='-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize=alignment'

# the mirror, nginx and the fault server, laid out as run_tests.sh does
cp -r "$ROOT/build/test" "$ROOT/test"
cp -r "$ROOT/build/tools" "$ROOT/tools"
"$ROOT/build/test/make-mirror.sh" "$ROOT/mirror" 2>"$ROOT/mirror.log"
chmod -R a+rX "$ROOT"
chmod a+rwx "$ROOT/asan"
[ $keep -eq 1 ] || trap stop_all EXIT
"$SRC/tools/mirror-server.sh" start "$ROOT/mirror" "$GIK_HTTP_PORT" "$ROOT/nginx"
"$GIK_PY" "$SRC/test/fault_server.py" --root "$ROOT/mirror" --port "$GIK_FAULT_PORT" \
  --pidfile "$ROOT/fault.pid" >"$ROOT/fault.log" 2>&1 &
for _ in $(seq 50); do curl -sf -o /dev/null "$GIK_FAULT/__stats" && break; sleep 0.1; done

echo "== server with the ASan runtime preloaded"
pgport=${GIK_PG_PORT:-$("$SRC/tools/free-port.sh")}
mkdir -p "$ROOT/data" "$ROOT/sock"
touch "$ROOT/server.log"
[ "$(id -u)" -eq 0 ] && chown postgres "$ROOT/data" "$ROOT/sock" "$ROOT/server.log"
as_owner "$PRIVBIN/initdb" -D "$ROOT/data" -U postgres -A trust >"$ROOT/initdb.log"
cat >>"$ROOT/data/postgresql.conf" <<CONF
port = $pgport
listen_addresses = ''
unix_socket_directories = '$ROOT/sock'
max_parallel_workers_per_gather = 2
fsync = off
shared_preload_libraries = 'pg_gik'
CONF
# The ASan runtime is preloaded, so its constructor runs after those of the libraries postgres links
# (Debian's libgpg-error calls bindtextdomain() from its constructor). ASan then initialises inside that
# bindtextdomain(), holding glibc's gettext lock, and looks up swift_demangle with dlsym(): the dlerror()
# message is translated under the same lock, leaving it broken, and postgres hangs in its own
# bindtextdomain() (even "postgres -V", so pg_ctl start never returns). A swift_demangle that exists
# (returning NULL: no Swift demangling) keeps dlerror() from translating anything.
cat >"$ROOT/swift_demangle_stub.c" <<'C'
#include <stddef.h>
#include <stdint.h>
char *swift_demangle(const char *name, size_t len, char *out, size_t *outlen, uint32_t flags);
char *swift_demangle(const char *name, size_t len, char *out, size_t *outlen, uint32_t flags)
{ (void) name; (void) len; (void) out; (void) outlen; (void) flags; return NULL; }
C
gcc -shared -fPIC -O2 -o "$ROOT/swift_demangle_stub.so" "$ROOT/swift_demangle_stub.c"
chmod a+rx "$ROOT/swift_demangle_stub.so"
PRELOAD="$ASAN_RT $ROOT/swift_demangle_stub.so"
if ! timeout 30 env LD_PRELOAD="$PRELOAD" ASAN_OPTIONS=detect_leaks=0 "$PRIVBIN/postgres" -V >/dev/null; then
  echo "postgres does not start with the ASan runtime preloaded (LD_PRELOAD=$PRELOAD)" >&2; exit 1
fi
# detect_leaks=0: backends leave their memory to process exit. One report file per process.
as_owner env LD_PRELOAD="$PRELOAD" \
  ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:disable_coredump=1:log_path=$ROOT/asan/asan" \
  UBSAN_OPTIONS="print_stacktrace=1:log_path=$ROOT/asan/ubsan" \
  "$PRIVBIN/pg_ctl" -D "$ROOT/data" -l "$ROOT/server.log" -w start >/dev/null
export PGHOST=$ROOT/sock PGPORT=$pgport PGUSER=postgres PGDATABASE=postgres
psql -qX -v ON_ERROR_STOP=1 <<SQL
LOAD 'pg_gik';
ALTER SYSTEM SET gik.s3_endpoint = '$GIK_HTTP';
ALTER SYSTEM SET gik.allowed_url_prefixes = 's3://noaa-gefs-pds/,s3://ecmwf-forecasts/,$GIK_HTTP/,$GIK_FAULT/';
ALTER SYSTEM SET gik.allowed_addresses = '127.0.0.1';
SELECT pg_reload_conf();
SQL
libdir=$(psql -XAtc "SELECT setting FROM pg_config WHERE name = 'PKGLIBDIR'")
if [ "$libdir" != "$PRIV/usr/lib/postgresql/$PGVER/lib" ] || ! ldd "$libdir/pg_gik.so" | grep libasan >/dev/null; then
  echo "the server does not load the ASan pg_gik.so (PKGLIBDIR $libdir)" >&2; exit 1
fi
echo "   port $pgport, pg_gik.so from $libdir"

status=0
echo "== pg_regress"
set +e
make -C "$ROOT/build" -s with_llvm=no installcheck 2>&1 | tee "$ROOT/regress.log"
set -e
rp=$(grep -cE '\.\.\. ok ' "$ROOT/regress.log" || true)
rf=$(grep -cE '\.\.\. (FAILED|failed)' "$ROOT/regress.log" || true)
grep -q 'running regression test queries' "$ROOT/regress.log" || rf=$((rf + 1))
[ -s "$ROOT/build/test/regression.diffs" ] && head -100 "$ROOT/build/test/regression.diffs"
echo "== regress: $rp passed, $rf failed"
[ "$rf" -eq 0 ] || status=1

if [ $py -eq 1 ]; then
  echo "== pytest"
  set +e
  # shellcheck disable=SC2086 # GIK_PYTEST_ARGS is split into arguments on purpose
  (cd "$ROOT/build" && "$GIK_PY" -m pytest -p no:cacheprovider -q -rfE ${GIK_PYTEST_ARGS:-} test/py) 2>&1 |
    tee "$ROOT/pytest.log"
  pst=${PIPESTATUS[0]}
  set -e
  [ "$pst" -eq 0 ] || status=1
fi

# ASan/UBSan reports: one file per process that reported; crashed backends also show in the server log
as_owner "$PRIVBIN/pg_ctl" -D "$ROOT/data" -m fast stop >/dev/null || true
nasan=$( (grep -l 'ERROR: AddressSanitizer' "$ROOT"/asan/asan.* 2>/dev/null || true) | wc -l)
nubsan=$(cat "$ROOT"/asan/* 2>/dev/null | grep -c 'runtime error:' || true)
# ASan ends a process with exit code 1 (halt_on_error) rather than a signal; the postmaster logs both.
ncrash=$(grep -cE 'server process \(PID [0-9]+\) (was terminated by|exited with exit code [1-9])' "$ROOT/server.log" || true)
for f in "$ROOT"/asan/*; do
  [ -f "$f" ] || continue
  echo "--- $f"; head -40 "$f"
done
pyres=""
[ $py -eq 1 ] && pyres="; pytest: $(grep -E '[0-9]+ (passed|failed)' "$ROOT/pytest.log" | tail -1 | sed 's/=//g; s/^ *//; s/ *$//')"
echo "check-asan: $rp regress passed, $rf failed$pyres; $nasan ASan reports, $nubsan UBSan reports, $ncrash backend crashes"
[ "$nasan" -eq 0 ] && [ "$nubsan" -eq 0 ] && [ "$ncrash" -eq 0 ] || status=1
exit $status
