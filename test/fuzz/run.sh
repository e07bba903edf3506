#!/usr/bin/env bash
# Run the libFuzzer harnesses built by test/fuzz/Makefile.
#   run.sh fuzz|smoke|replay WORK SECONDS JOBS HARNESS...
# fuzz:   each harness for SECONDS, JOBS at a time; new inputs go to WORK/corpus/<harness>.
# smoke:  replay, then each harness for SECONDS from the committed seeds only (fixed -seed).
# replay: run the regression inputs, the seeds and, for decode, every GRIB message in test/data once.
# report: print the table of the last run from WORK/logs only.
# Crash, leak, timeout and OOM inputs go to WORK/crashes/<harness>/ (those of earlier runs to
# WORK/crashes-earlier/<harness>/); logs to WORK/logs/.
# The last line is "fuzz-smoke: N harnesses, M crashes in pg_gik code, K in third-party libraries"
# (or fuzz:/fuzz-replay:); exit status 1 when M > 0.
set -uo pipefail
mode=${1:?fuzz|smoke|replay}; work=${2:?work dir}; seconds=${3:?seconds}; jobs=${4:?jobs}; shift 4
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
mkdir -p "$work/logs" "$work/status" "$work/empty"
# A small quarantine: ecCodes makes thousands of small allocations per message (3x faster than the 256 MB default).
# allocator_may_return_null: an absurd request fails as glibc's malloc would (libFuzzer still reports
# anything over -rss_limit_mb as out-of-memory).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:quarantine_size_mb=16:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
seed=${FUZZ_SEED:-1}
rss=${FUZZ_RSS_MB:-2560}

# Per-harness libFuzzer options.
opts() {
  case $1 in
    idx) echo "-dict=$here/dict/idx.dict -max_len=8192" ;;
    ecindex) echo "-dict=$here/dict/ecindex.dict -max_len=4096" ;;
    grib_frame) echo "-dict=$here/dict/grib.dict -max_len=65536" ;;
    decode|meta) echo "-dict=$here/dict/grib.dict -max_len=131072" ;;
    url) echo "-dict=$here/dict/url.dict -max_len=1024" ;;
    raster_wkb) echo "-max_len=16384" ;;
    grid) echo "-max_len=256" ;;
  esac
}

# Every GRIB message of the fixtures, one file each, in WORK/fixtures (decode and meta harnesses);
# whole fixture files (several messages each) are linked into WORK/fixture-files (framing harness).
fixtures=$work/fixtures
split_fixtures() {
  local f gribs=()
  [ -d "$fixtures" ] && return
  rm -rf "$fixtures.tmp" "$work/fixture-files"
  mkdir -p "$work/fixture-files"
  while IFS= read -r f; do
    [ "$(head -c 4 "$f" | tr -d '\0')" = GRIB ] && gribs+=("$f") && ln -s "$f" "$work/fixture-files/$(basename "$f")"
  done < <(find "$top/test/data" -type f | sort)
  "${GIK_PY:-$("$top/tools/venv.sh")}" "$here/make_seeds.py" split "$fixtures.tmp" "${gribs[@]}" && mv "$fixtures.tmp" "$fixtures"
}

# Replay inputs once: regression files, committed seeds, and the fixture messages for GRIB harnesses.
replay_one() {
  local h=$1 bin=$work/bin/fuzz_$1 dirs=()
  [ -d "$here/regressions/$h" ] && dirs+=("$here/regressions/$h")
  dirs+=("$here/corpus/${h/meta/decode}")
  case $h in decode|meta) dirs+=("$fixtures") ;; grib_frame) dirs+=("$fixtures" "$work/fixture-files") ;; esac
  LSAN_OPTIONS=suppressions=$here/lsan.supp "$bin" $(opts "$h") -max_len=8388608 -runs=0 -rss_limit_mb="$rss" \
    -artifact_prefix="$work/crashes/$h/" "$work/empty" "${dirs[@]}" >>"$work/logs/$h.log" 2>&1
}

# Fuzz one harness for $seconds.
fuzz_one() {
  local h=$1 bin=$work/bin/fuzz_$1 extra=()
  local corpus=$work/corpus/$h
  # smoke: stop at the first crash, from the committed seeds only, reproducibly;
  # fuzz: fork mode goes on after a crash and keeps every crashing input.
  if [ "$mode" = smoke ]; then
    corpus=$work/smoke-corpus/$h; rm -rf "$corpus"; extra+=(-seed="$seed")
  else
    extra+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  fi
  mkdir -p "$corpus"
  LSAN_OPTIONS=suppressions=$here/lsan.supp "$bin" $(opts "$h") "${extra[@]}" -max_total_time="$seconds" \
    -timeout=25 -rss_limit_mb="$rss" -print_final_stats=1 -artifact_prefix="$work/crashes/$h/" \
    "$corpus" "$here/corpus/${h/meta/decode}" >>"$work/logs/$h.log" 2>&1
}

run_harness() {
  local h=$1 rc=0
  rm -f "$work/logs/$h.log"
  # each run reports its own crashes: earlier artifacts move to WORK/crashes-earlier/<harness>/
  if [ -n "$(ls -A "$work/crashes/$h" 2>/dev/null)" ]; then
    mkdir -p "$work/crashes-earlier/$h" && mv "$work/crashes/$h"/* "$work/crashes-earlier/$h/"
  fi
  mkdir -p "$work/crashes/$h"
  replay_one "$h" || rc=$?
  if [ "$mode" != replay ] && [ $rc -eq 0 ]; then fuzz_one "$h" || rc=$?; fi
  echo "$rc" >"$work/status/$h"
}

# Where a crash input fails: "third-party" when the first stack frame outside the sanitizer runtime,
# libFuzzer and libc lies in another shared library (ecCodes, OpenJPEG, libaec, libpng: not
# instrumented, not ours), else "ours" (pg_gik's core is compiled into the harness; UBSan reports,
# broken invariants and crashes without a stack count as ours).
crash_origin() {
  LSAN_OPTIONS=suppressions=$here/lsan.supp timeout 120 "$work/bin/fuzz_$1" -rss_limit_mb="$rss" "$2" 2>&1 |
    awk '/runtime error:|invariant failed/ { print "ours"; found = 1; exit }
         /^ +#[0-9]+ 0x/ {
           if ($0 ~ /__interceptor_|__asan|__sanitizer|__lsan|__ubsan|fuzzer::|Interceptor|in (malloc|calloc|realloc|free|abort|raise) |libc\.so|sysdeps/) next
           print ($0 ~ /\(\/[^ ]*\.so[.0-9]*\+0x/ ? "third-party" : "ours"); found = 1; exit
         }
         END { if (!found) print "ours" }'
}

# The results table of WORK/logs and the last line; status 1 when pg_gik's own code crashed.
# Crashes inside third-party libraries are counted and listed apart (see docs/fuzzing.md).
report() {
  local crashes=0 third=0 h log n rc execs eps last fork t cov ft corp label f
  printf '%-11s %12s %8s %6s %7s %14s %8s\n' harness executions exec/s cov ft corpus crashes
  for h in "$@"; do
    log=$work/logs/$h.log
    n=$(find "$work/crashes/$h" -type f 2>/dev/null | wc -l)
    rc=$(cat "$work/status/$h" 2>/dev/null || echo 1)
    [ "$rc" -ne 0 ] && [ "$n" -eq 0 ] && n=1 && crashes=$((crashes + 1))
    while IFS= read -r f; do
      if [ "$(crash_origin "$h" "$f")" = third-party ]; then third=$((third + 1)); echo "--- $h: third-party crash $f" >&2
      else crashes=$((crashes + 1)); fi
    done < <(find "$work/crashes/$h" -type f 2>/dev/null)
    execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$')
    eps=$(grep -oE 'stat::average_exec_per_sec: +[0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$')
    last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|INITED)' "$log" | tail -1)
    fork=$(grep -E '^#[0-9]+: cov: ' "$log" | tail -1)
    if [ -n "$fork" ]; then     # fork mode: "#N: cov: C ft: F corp: U exec/s E ... time: Ts"
      last=$fork
      execs=$(echo "$fork" | grep -oE '^#[0-9]+' | tr -d '#')
      t=$(echo "$fork" | grep -oE ' time: [0-9]+' | grep -oE '[0-9]+')
      eps=$((execs / (t > 0 ? t : 1)))
    fi
    cov=$(echo "$last" | grep -oE 'cov: [0-9]+' | grep -oE '[0-9]+')
    ft=$(echo "$last" | grep -oE 'ft: [0-9]+' | grep -oE '[0-9]+')
    corp=$(echo "$last" | grep -oE 'corp: [0-9]+(/[0-9]+[a-zA-Z]*)?' | cut -d' ' -f2)
    [ -n "$fork" ] && corp="$(find "$work/corpus/$h" -type f | wc -l)/$(du -sk "$work/corpus/$h" | cut -f1)K"
    printf '%-11s %12s %8s %6s %7s %14s %8s\n' "$h" "${execs:--}" "${eps:--}" "${cov:--}" "${ft:--}" "${corp:--}" "$n"
    if [ "$n" -gt 0 ]; then
      echo "--- $h: $(find "$work/crashes/$h" -type f | head -5 | tr '\n' ' ')" >&2
      grep -E 'ERROR|invariant failed|runtime error|SUMMARY' "$log" | head -5 >&2
    fi
  done
  label=fuzz; [ "$mode" = smoke ] && label=fuzz-smoke; [ "$mode" = replay ] && label=fuzz-replay
  echo "$label: $# harnesses, $crashes crashes in pg_gik code, $third in third-party libraries"
  [ "$crashes" -eq 0 ]
}

# Run the harnesses, JOBS at a time, then report.
run_all() {
  local h running=0
  split_fixtures
  for h in "$@"; do
    [ -x "$work/bin/fuzz_$h" ] || { echo "no harness $work/bin/fuzz_$h" >&2; exit 2; }
    run_harness "$h" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
  done
  wait
  report "$@"
}

case $mode in
  fuzz|smoke|replay) run_all "$@" ;;
  report) report "$@" ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
