#!/usr/bin/env bash
# Run the TAP tests (test/t/*.pl) with prove. Their clusters are created by PostgreSQL::Test::Cluster,
# which refuses to run as root, so as root they run as the postgres user from the work directory.
set -euo pipefail
root=${GIK_TEST_ROOT:?run through run_tests.sh}
shopt -s nullglob
tests=("$root"/test/t/*.pl)
if [ ${#tests[@]} -eq 0 ]; then echo "no TAP tests"; exit 0; fi
pgbin=$(pg_config --bindir)
pgxs=$(dirname "$(pg_config --pgxs)")/../..
export PERL5LIB="$pgxs/src/test/perl"
export PATH="$pgbin:$PATH"
export TESTDIR="$root/tap"
export PG_REGRESS="$pgxs/src/test/regress/pg_regress"
rm -rf "$TESTDIR"; mkdir -p "$TESTDIR"
cd "$root/test"
if [ "$(id -u)" -eq 0 ]; then
  chown -R postgres "$TESTDIR"
  exec runuser -u postgres -- env PERL5LIB="$PERL5LIB" PATH="$PATH" TESTDIR="$TESTDIR" PG_REGRESS="$PG_REGRESS" \
    GIK_TEST_ROOT="$root" GIK_HTTP="$GIK_HTTP" GIK_FAULT="$GIK_FAULT" prove -v t/*.pl
fi
exec prove -v t/*.pl
