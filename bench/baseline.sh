#!/usr/bin/env bash
# A released pg_gik beside the current one, for side-by-side benchmarks.
#   bench/baseline.sh install [REV]        build git REV (default v0.1.0) from this repository as the
#                                          extension pg_gik_base (library pg_gik_base.so) and install it
#   bench/baseline.sh with HTTP CMD ARG...  run CMD in a throwaway cluster of its own (pg_virtualenv) where
#                                          pg_gik_base is created and pointed at the mirror HTTP (and at the
#                                          space-separated BASE_PREFIXES); CMD gets BASE_PG, a libpq
#                                          conninfo of that cluster (PG* stay the caller's)
# Both versions define the gik.* settings, so they cannot share a server: the baseline's cluster does not
# preload anything. REV's SQL is installed under its own extension name; the schema is still "gik".
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:?install|with}
shift
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

if [ "$cmd" = install ]; then
  rev=${1:-v0.1.0}
  commit=$(git -C "$TOP" rev-parse --verify "$rev^{commit}")
  build=${GIK_BASE_BUILD:-/tmp/pg_gik_base-$commit}
  if [ ! -f "$build/.installed" ] || [ ! -f "$(pg_config --pkglibdir)/pg_gik_base.so" ]; then
    rm -rf "$build"
    mkdir -p "$build"
    git -C "$TOP" archive "$commit" | tar -x -C "$build"
    # the same build under another name: library, control file and install script
    sed -i -e 's/^EXTENSION = .*/EXTENSION = pg_gik_base/' -e 's/^MODULE_big = pg_gik$/MODULE_big = pg_gik_base/' \
      -e 's/^DATA = .*/DATA =/' -e 's|sql/pg_gik--\$(EXTVERSION).sql|sql/pg_gik_base--$(EXTVERSION).sql|g' \
      "$build/Makefile"
    sed -e "s|\$libdir/pg_gik'|\$libdir/pg_gik_base'|" -e "s/^comment = '/comment = 'baseline build of /" \
      "$build/pg_gik.control" > "$build/pg_gik_base.control"
    make -C "$build" -s -j2 >/dev/null
    $SUDO make -C "$build" -s install >/dev/null
    touch "$build/.installed"
  fi
  echo "pg_gik_base is $rev ($commit)" >&2
  exit 0
fi

[ "$cmd" = with ] || { echo "usage: bench/baseline.sh install [REV] | with HTTP CMD..." >&2; exit 2; }
http=${1:?HTTP base of the mirror}
shift
# the caller's cluster, for CMD
for v in PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE PGSYSCONFDIR; do
  eval "export CALLER_$v=\${$v:-}"
done
export BASE_HTTP=$http BASE_TOP=$TOP
pg_virtualenv -t -c "-p $("$TOP/test/support/free-port.sh")" bash -c '
  set -euo pipefail
  GIK_LIBRARY=pg_gik_base "$BASE_TOP/test/support/point-at-mirror.sh" "$BASE_HTTP" ${BASE_PREFIXES:-} >/dev/null
  psql -qX -v ON_ERROR_STOP=1 -c "CREATE EXTENSION pg_gik_base" >/dev/null
  export BASE_PG="host=$PGHOST port=$PGPORT user=$PGUSER password=$PGPASSWORD dbname=$PGDATABASE"
  for v in PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE PGSYSCONFDIR; do
    eval "c=\${CALLER_$v}"
    if [ -n "$c" ]; then export "$v=$c"; else unset "$v"; fi
  done
  exec "$@"' baseline "$@"
