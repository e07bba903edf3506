#!/usr/bin/env bash
# The part of bench/exceedance_bench.sh that runs with its two clusters: the current pg_gik (PG*) and
# the 0.1.0 baseline (BASE_PG). Both ingest the same four runs (GEFS and ECMWF, smooth and real-size);
# then RUNS rounds time gik.exceedance in each version and the decode floor (rounds.py), then the Python peer.
set -euo pipefail
PSQL=(psql -qXAt -v ON_ERROR_STOP=1)
THR='{5,25,50,75,100,125}'
BOX='gik.bbox(21, -12, 53, 23)'
INIT="'2025-10-01 00:00+00'"
W=$BENCH_WORK

"$BENCH_TOP/test/support/point-at-mirror.sh" "$BENCH_HTTP" "$BENCH_HTTP_REAL/" >/dev/null
"${PSQL[@]}" -c "CREATE EXTENSION pg_gik" 2>/dev/null
for conn in "" "$BASE_PG"; do
  "${PSQL[@]}" "$conn" >/dev/null <<SQL
-- real-size copies of the built-in datasets, read from the second mirror
SELECT gik.clone_dataset('gefs_0p25', 'gefs_real'), gik.clone_dataset('ecmwf_ens_0p25', 'ecmwf_real');
UPDATE gik.dataset_source s SET url_template = replace(s.url_template, 's3://', '$BENCH_HTTP_REAL/'),
                                index_template = replace(s.index_template, 's3://', '$BENCH_HTTP_REAL/')
FROM gik.dataset d WHERE d.dataset_id = s.dataset_id AND d.name IN ('gefs_real', 'ecmwf_real');
SELECT gik.ingest_run(ds, $INIT, steps => gik.step_list('0-24/6')) FROM unnest('{gefs_0p25,gefs_real}'::text[]) ds;
SELECT gik.ingest_run(ds, $INIT, steps => '{0,24}') FROM unnest('{ecmwf_ens_0p25,ecmwf_real}'::text[]) ds;
SQL
done

# The messages of each dataset's 0-24 h accumulation: plans for the Python peer, lists for the floor.
for ds in gefs_0p25 ecmwf_ens_0p25 gefs_real ecmwf_real; do
  "${PSQL[@]}" -c "SELECT json_agg(json_build_object('member', member, 'url', gik.resolve_url((ref).url), 'offset', (ref).byte_offset,
                     'length', (ref).byte_length, 'weight', weight, 'scale', mm_per_unit))
                   FROM gik.accumulation_refs('$ds', $INIT, 0, 24)" > "$W/plan_$ds.json"
  /usr/bin/python3 -c "
import json
for p in json.load(open('$W/plan_$ds.json')):
    u = p['url'].replace('$BENCH_HTTP_REAL', '$BENCH_MIRROR_REAL').replace('$BENCH_HTTP', '$BENCH_MIRROR')
    print(u, p['offset'], p['length'])" > "$W/floor_$ds.txt"
done

# warm sessions of both versions and the floor, round by round (bench/exceedance/rounds.py)
/usr/bin/python3 "$BENCH_TOP/bench/exceedance/rounds.py" "$W" "$RUNS" > "$W/times.txt"
TUNED=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=134217728
for ds in gefs_0p25 ecmwf_ens_0p25 gefs_real ecmwf_real; do
  GLIBC_TUNABLES=$TUNED /usr/bin/python3 "$BENCH_TOP/bench/exceedance/gik_pipeline.py" "$W/plan_$ds.json" \
    '[5,25,50,75,100,125]' '[21,-12,53,23]' "$RUNS" | awk -v k="python_$ds" '{print k " " $1 * 1000 " " $2}' >> "$W/times.txt"
done
# Where the time goes, current version, real-size GEFS: stages and CPU of the backend and its decoders.
"${PSQL[@]}" -f "$BENCH_TOP/bench/exceedance/stages.sql" -v runs="$RUNS" >> "$W/times.txt"
for conn in "" "$BASE_PG"; do
  tag=current; [ -n "$conn" ] && tag=base
  echo "hwm_$tag $("${PSQL[@]}" "$conn" -c "SELECT count(*) FROM gik.exceedance('{gefs_real,ecmwf_real}', $INIT, 0, 24, '$THR', $BOX)" \
    -c "SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s+(\d+)'))[1]" | tail -1)" >> "$W/times.txt"
done
/usr/bin/python3 "$BENCH_TOP/bench/exceedance/report.py" "$W/times.txt"
