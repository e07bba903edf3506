#!/usr/bin/env bash
# Time the ensemble aggregates over 51 members of a 0.25 degree global grid (721 x 1440 real[]),
# serial and with 2 parallel workers, against a peer that only reads (detoasts) the same grids.
# Run inside a cluster with pg_gik installed, e.g.: pg_virtualenv -t bench/ensemble_agg.sh
# Options (environment): MEMBERS (51), NJ (721), NI (1440), NAN_SHARE (0.01), RUNS (3).
set -euo pipefail
MEMBERS=${MEMBERS:-51}
NJ=${NJ:-721}
NI=${NI:-1440}
NAN_SHARE=${NAN_SHARE:-0.01}
RUNS=${RUNS:-3}
PSQL=(psql -X -q -v ON_ERROR_STOP=1)

"${PSQL[@]}" -c "CREATE EXTENSION IF NOT EXISTS pg_gik" \
  -c "DROP TABLE IF EXISTS gik_bench_members" \
  -c "CREATE TABLE gik_bench_members (member int, g real[]) WITH (fillfactor = 10)" \
  -c "ALTER TABLE gik_bench_members ALTER g SET STORAGE EXTERNAL"

# Random precipitation-like members (gamma, with NaN cells) sent by binary COPY. A low fillfactor
# spreads the 51 rows over a few pages, so that a parallel scan can share them among workers.
/usr/bin/python3 - "$MEMBERS" "$NJ" "$NI" "$NAN_SHARE" <<'EOF' | "${PSQL[@]}" -c "COPY gik_bench_members FROM STDIN WITH (FORMAT binary)"
import struct, sys
import numpy as np
members, nj, ni, nan_share = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
rng = np.random.default_rng(1)
out = sys.stdout.buffer
out.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
head = struct.pack(">iiiiiii", 2, 0, 700, nj, 1, ni, 1)   # ndim, has nulls, float4, dims/lbounds
elems = np.empty(nj * ni, dtype=[("len", ">i4"), ("val", ">f4")])
elems["len"] = 4
for m in range(members):
    g = rng.gamma(0.6, 8.0, size=nj * ni).astype(np.float32)
    g[rng.random(nj * ni) < nan_share] = np.nan
    elems["val"] = g
    body = head + elems.tobytes()
    out.write(struct.pack(">hii", 2, 4, m) + struct.pack(">i", len(body)) + body)
out.write(struct.pack(">h", -1))
EOF
"${PSQL[@]}" -c "VACUUM ANALYZE gik_bench_members"

queries=(
  "read (peer)|SELECT sum(cardinality(g)) FROM gik_bench_members"
  "ens_exceedance 6 thr|SELECT gik.ens_exceedance(g, '{1,5,10,20,50,100}') IS NULL FROM gik_bench_members"
  "ens_exceedance 1 thr|SELECT gik.ens_exceedance(g, '{10}') IS NULL FROM gik_bench_members"
  "ens_count|SELECT gik.ens_count(g) IS NULL FROM gik_bench_members"
  "ens_mean|SELECT gik.ens_mean(g) IS NULL FROM gik_bench_members"
  "ens_min|SELECT gik.ens_min(g) IS NULL FROM gik_bench_members"
  "ens_max|SELECT gik.ens_max(g) IS NULL FROM gik_bench_members"
  "ens_stddev|SELECT gik.ens_stddev(g) IS NULL FROM gik_bench_members"
  "ens_percentile 10/50/90|SELECT gik.ens_percentile(g, '{0.1,0.5,0.9}') IS NULL FROM gik_bench_members"
  "grid_sum (+1/-1)|SELECT gik.grid_sum(g, CASE WHEN member % 2 = 0 THEN 1 ELSE -1 END) IS NULL FROM gik_bench_members"
)

# Best of RUNS, in ms, of one query under a setting.
best_ms() {
  local setting=$1 sql=$2 best="" t
  for _ in $(seq "$RUNS"); do
    t=$("${PSQL[@]}" -c "SET max_parallel_workers_per_gather = $setting" \
          -c "SET parallel_setup_cost = 0" -c "SET parallel_tuple_cost = 0" -c "SET min_parallel_table_scan_size = 0" \
          -c '\timing on' -c "$sql" 2>&1 | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
    if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$t; fi
  done
  echo "$best"
}

printf "%d members of %dx%d real[] (%d cells), best of %d\n" "$MEMBERS" "$NJ" "$NI" $((NJ * NI)) "$RUNS"
printf "%-26s %12s %12s\n" "query" "serial ms" "2 workers ms"
for q in "${queries[@]}"; do
  name=${q%%|*}
  sql=${q#*|}
  printf "%-26s %12s %12s\n" "$name" "$(best_ms 0 "$sql")" "$(best_ms 2 "$sql")"
done
"${PSQL[@]}" -c "DROP TABLE gik_bench_members"
