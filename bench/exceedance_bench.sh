#!/usr/bin/env bash
# East Africa 0-24 h exceedance, end to end from a loopback nginx mirror: GEFS (31 members x 4 APCP
# messages at 0.25 degree, complex packing) and ECMWF (51 members x 1 tp message at 0.25 degree, CCSDS),
# gik.exceedance against a GIK-style Python pipeline (8 threads, ecCodes, numpy) and the raw ecCodes
# decode floor for the same messages, in one run. Also reports the backend's peak memory.
# Usage: bench/exceedance_bench.sh   (after ./run_tests.sh has installed the dependencies and pg_gik)
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
WORK=${GIK_BENCH_ROOT:-/tmp/pg_gik_bench_exc}
PORT=${GIK_BENCH_PORT:-$("$TOP/tools/free-port.sh")}
RUNS=${RUNS:-3}
MIRROR=$WORK/mirror
mkdir -p "$WORK"
if [ ! -f "$MIRROR/.complete" ]; then
  rm -rf "$MIRROR"
  /usr/bin/python3 "$TOP/tools/gen_mirror.py" --out "$MIRROR" --jobs 2 gefs --date 20251001 --cycle 0 \
    --members 0-30 --steps 0-24/6 --vars apcp --grid 1p0 --rain-grid 0p25 >&2
  /usr/bin/python3 "$TOP/tools/gen_mirror.py" --out "$MIRROR" --jobs 2 ecmwf --date 20251001 --cycle 0 \
    --members 0-50 --steps 0,24 --grid 0p25 --params tp >&2
  touch "$MIRROR/.complete"
fi
# Real-size case: the same two runs with --rain-model realistic (GEFS APCP about 300 KB for these 6 h
# windows, ECMWF tp at 24 h about 770 KB; tools/README-gen.md), in a mirror of its own. The
# measurements below do not use it yet; serve $WORK/mirror-realsize instead of $MIRROR to do so.
MIRROR_REALSIZE=$WORK/mirror-realsize
if [ ! -f "$MIRROR_REALSIZE/.complete" ]; then
  rm -rf "$MIRROR_REALSIZE"
  /usr/bin/python3 "$TOP/tools/gen_mirror.py" --out "$MIRROR_REALSIZE" --jobs 2 gefs --date 20251001 --cycle 0 \
    --members 0-30 --steps 0-24/6 --vars apcp --grid 1p0 --rain-grid 0p25 --rain-model realistic >&2
  /usr/bin/python3 "$TOP/tools/gen_mirror.py" --out "$MIRROR_REALSIZE" --jobs 2 ecmwf --date 20251001 --cycle 0 \
    --members 0-50 --steps 0,24 --grid 0p25 --params tp --rain-model realistic >&2
  touch "$MIRROR_REALSIZE/.complete"
fi
chmod -R a+rX "$WORK"
gcc -O2 -o "$WORK/decode_floor" "$TOP/bench/exceedance/decode_floor.c" $(pkg-config --cflags --libs eccodes)

"$TOP/tools/mirror-server.sh" start "$MIRROR" "$PORT" "$WORK/nginx"
trap '"$TOP/tools/mirror-server.sh" stop "$WORK/nginx"' EXIT
pgport=$("$TOP/tools/free-port.sh")

export BENCH_HTTP="http://127.0.0.1:$PORT" BENCH_MIRROR="$MIRROR" BENCH_WORK="$WORK" BENCH_TOP="$TOP" RUNS
pg_virtualenv -t -c "-p $pgport" -o shared_preload_libraries=pg_gik bash -s <<'INNER'
set -euo pipefail
"$BENCH_TOP/tools/point-at-mirror.sh" "$BENCH_HTTP"
psql -qX -v ON_ERROR_STOP=1 -c "CREATE EXTENSION pg_gik" \
  -c "SELECT gik.ingest_run('gefs_0p25', '2025-10-01 00:00+00', steps => gik.step_list('0-24/6'))" \
  -c "SELECT gik.ingest_run('ecmwf_ens_0p25', '2025-10-01 00:00+00', steps => '{0,24}')" >/dev/null
THR='{5,25,50,75,100,125}'
BOX='gik.bbox(21, -12, 53, 23)'
for ds in gefs_0p25 ecmwf_ens_0p25; do
  psql -qXAt -c "SELECT json_agg(json_build_object('member', member, 'url', gik.resolve_url((ref).url), 'offset', (ref).byte_offset,
                   'length', (ref).byte_length, 'weight', weight, 'scale', mm_per_unit))
                 FROM gik.accumulation_refs('$ds', '2025-10-01 00:00+00', 0, 24)" > "$BENCH_WORK/plan_$ds.json"
  /usr/bin/python3 -c "
import json, sys
for p in json.load(open('$BENCH_WORK/plan_$ds.json')):
    print(p['url'].replace('$BENCH_HTTP', '$BENCH_MIRROR'), p['offset'], p['length'])" > "$BENCH_WORK/floor_$ds.txt"
done

# gik.exceedance timings in one session (best of RUNS, first call warms ecCodes), with the backend's peak RSS.
psql -qXAt -v ON_ERROR_STOP=1 > "$BENCH_WORK/sql_times.txt" <<SQL
CREATE TEMP TABLE t (what text, ms float8);
SELECT count(*) FROM gik.exceedance('gefs_0p25', '2025-10-01 00:00+00', 0, 24, '$THR', $BOX) \g /dev/null
DO \$\$
DECLARE t0 timestamptz; BEGIN
  FOR i IN 1..$RUNS LOOP
    t0 := clock_timestamp(); PERFORM count(*) FROM gik.exceedance('gefs_0p25', '2025-10-01 00:00+00', 0, 24, '$THR', $BOX);
    INSERT INTO t VALUES ('gefs', extract(epoch FROM clock_timestamp() - t0) * 1000);
    t0 := clock_timestamp(); PERFORM count(*) FROM gik.exceedance('ecmwf_ens_0p25', '2025-10-01 00:00+00', 0, 24, '$THR', $BOX);
    INSERT INTO t VALUES ('ecmwf', extract(epoch FROM clock_timestamp() - t0) * 1000);
    t0 := clock_timestamp(); PERFORM count(*) FROM gik.exceedance(ARRAY['gefs_0p25', 'ecmwf_ens_0p25'], '2025-10-01 00:00+00', 0, 24, '$THR', $BOX);
    INSERT INTO t VALUES ('grand', extract(epoch FROM clock_timestamp() - t0) * 1000);
  END LOOP;
END \$\$;
SELECT what || ' ' || min(ms) FROM t GROUP BY what ORDER BY what;
SELECT 'hwm ' || (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s+(\d+)'))[1];
SQL
# Peers run twice: with glibc's default malloc, and with the settings pg_gik sets in the backend
# (src/pg_gik.c): without them every ecCodes decode pays page faults for fresh mmap()ed buffers.
TUNED=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=134217728
for ds in gefs_0p25 ecmwf_ens_0p25; do
  for mode in default tuned; do
    tun=""; [ $mode = tuned ] && tun=$TUNED
    for i in $(seq "$RUNS"); do GLIBC_TUNABLES=$tun "$BENCH_WORK/decode_floor" < "$BENCH_WORK/floor_$ds.txt"; done \
      | sort -n | head -1 | awk -v k="floor_${mode}_$ds" '{print k " " $1 " " $2}' >> "$BENCH_WORK/sql_times.txt"
    GLIBC_TUNABLES=$tun /usr/bin/python3 "$BENCH_TOP/bench/exceedance/gik_pipeline.py" "$BENCH_WORK/plan_$ds.json" \
      '[5,25,50,75,100,125]' '[21,-12,53,23]' "$RUNS" | awk -v k="python_${mode}_$ds" '{print k " " $1*1000 " " $2}' >> "$BENCH_WORK/sql_times.txt"
  done
done
/usr/bin/python3 - "$BENCH_WORK/sql_times.txt" <<'PY'
import os, sys
r = {}
for line in open(sys.argv[1]):
    k, *v = line.split()
    r[k] = [float(x) for x in v]
cores = os.cpu_count()
print(f"East Africa 0-24 h exceedance, 6 thresholds, best of {os.environ.get('RUNS')} ({cores} cores)")
print("decode floor = raw ecCodes C loop on one core over the same messages (tuned malloc); ratio = gik.exceedance / (floor / cores)")
print(f"{'case':8s} {'msgs':>5s} {'gik.exceedance':>15s} {'floor':>7s} {'floor/cores':>12s} {'ratio':>6s} {'floor, default malloc':>22s} {'Python GIK (default)':>21s} {'Python GIK (tuned)':>19s}")
for ds, key in (("gefs_0p25", "gefs"), ("ecmwf_ens_0p25", "ecmwf")):
    t = r[key][0] / 1000
    floor, n = r[f"floor_tuned_{ds}"]
    floor_def = r[f"floor_default_{ds}"][0]
    py_def = r[f"python_default_{ds}"][0] / 1000
    py_tun = r[f"python_tuned_{ds}"][0] / 1000
    print(f"{key:8s} {int(n):5d} {t:14.2f}s {floor:6.2f}s {floor / cores:11.2f}s {t / (floor / cores):6.2f} {floor_def:21.2f}s "
          f"{py_def:9.2f}s ({py_def / t:4.1f}x) {py_tun:8.2f}s ({py_tun / t:4.1f}x)")
print(f"grand ensemble (GEFS + ECMWF, 82 members): {r['grand'][0] / 1000:.2f}s")
print(f"backend peak RSS (VmHWM): {r['hwm'][0] / 1024:.0f} MB")
PY
INNER
