#!/usr/bin/env bash
# A private PostgreSQL 15 tree with a build of pg_gik installed into it, and servers of that tree:
# several checkouts (worktrees, an ASan build) can each test their own pg_gik on one machine without
# touching the system's installation. PostgreSQL finds lib/ and share/ relative to its binary, so the
# tree copies bin/ and links everything else, minus the system's pg_gik files.
#   test/private-pg.sh tree SRC PRIV [MAKE-ARGS...]   build SRC (make MAKE-ARGS) and install it into PRIV
#   test/private-pg.sh start PRIV DATA PORT           initdb DATA once, start a server (pg_gik preloaded,
#                                                     unix socket in DATA/sock); prints the PG* exports.
#                                                     PRIV may also be an installation with PRIV/bin/postgres
#   test/private-pg.sh stop DATA                      stop that server
set -euo pipefail
PGVER=15
cmd=${1:?tree|start|stop}; shift
as_owner() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case $cmd in
  tree)
    src=${1:?source tree}; priv=${2:?private tree}; shift 2
    if [ ! -x "$priv/usr/lib/postgresql/$PGVER/bin/postgres" ]; then
      mkdir -p "$priv/usr/lib/postgresql/$PGVER" "$priv/usr/share/postgresql"
      cp -r "/usr/lib/postgresql/$PGVER/bin" "$priv/usr/lib/postgresql/$PGVER/bin"
      cp -rs "/usr/lib/postgresql/$PGVER/lib" "$priv/usr/lib/postgresql/$PGVER/lib"
      cp -rs "/usr/share/postgresql/$PGVER" "$priv/usr/share/postgresql/$PGVER"
    fi
    # drop links to the system's pg_gik before installing, so nothing is written through them
    find "$priv" -name 'pg_gik*' -exec rm -rf {} +
    make -C "$src" -s -j2 "$@"
    make -C "$src" -s "$@" DESTDIR="$priv" install
    ;;
  start)
    priv=${1:?private tree}; data=${2:?data dir}; port=${3:?port}
    bin=$priv/usr/lib/postgresql/$PGVER/bin
    [ -x "$bin/postgres" ] || bin=$priv/bin   # a relocatable installation (test/other-pg.sh)
    mkdir -p "$data"
    [ "$(id -u)" -eq 0 ] && chown postgres "$data"
    if [ ! -f "$data/pgdata/PG_VERSION" ]; then
      as_owner mkdir -p "$data/pgdata" "$data/sock"
      as_owner "$bin/initdb" -D "$data/pgdata" -U postgres -A trust >"$data/initdb.log"
      cat >>"$data/pgdata/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$data/sock'
fsync = off
shared_preload_libraries = 'pg_gik'
CONF
    fi
    as_owner "$bin/pg_ctl" -D "$data/pgdata" -l "$data/server.log" -w start >/dev/null
    echo "export PGHOST=$data/sock PGPORT=$port PGUSER=postgres PGDATABASE=postgres"
    ;;
  stop)
    data=${1:?data dir}
    pid=$(head -1 "$data/pgdata/postmaster.pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 100); do [ -f "$data/pgdata/postmaster.pid" ] || break; sleep 0.1; done
    ;;
  *) echo "usage: test/private-pg.sh tree SRC PRIV | start PRIV DATA PORT | stop DATA" >&2; exit 2 ;;
esac
