#!/bin/sh
# Benchmark gik_idx_parse against pandas.read_csv on a 1,000,000-line GFS-style .idx.
# The file repeats the real test/data/kerchunk/gfs.t06z.pgrb2.0p25.f021.idx lines,
# renumbered 1..N, with offsets shifted by one file length per repetition.
set -eu
TOP=$(cd "$(dirname "$0")/.." && pwd)
LINES=${LINES:-1000000}
RUNS=${RUNS:-5}
WORK=${TMPDIR:-/tmp}/gik_bench
IDX=$WORK/gfs_${LINES}.idx
mkdir -p "$WORK"

if [ ! -s "$IDX" ]; then
	awk -F: -v OFS=: -v want="$LINES" '
		{ n[NR] = $1; off[NR] = $2; rest[NR] = substr($0, length($1) + length($2) + 3) }
		END {
			period = off[NR] + 1000000; k = 0
			for (rep = 0; k < want; rep++)
				for (i = 1; i <= NR && k < want; i++)
					printf "%d:%.0f:%s\n", ++k, rep * period + off[i], rest[i]
		}' "$TOP/test/data/kerchunk/gfs.t06z.pgrb2.0p25.f021.idx" > "$IDX"
fi
echo "input: $IDX ($(wc -l < "$IDX") lines, $(wc -c < "$IDX") bytes)"
head -n 2 "$IDX"

${CC:-gcc} -O2 -Wall -Wextra -Werror -std=gnu11 -I"$TOP/src" -o "$WORK/parse_idx_c" \
	"$TOP/bench/parse_idx_c.c" "$TOP/src/core/common.c" "$TOP/src/core/idx.c"
"$WORK/parse_idx_c" "$IDX" "$RUNS"
# The cold figure is dominated by 4 KiB page faults on the fresh output array;
# with glibc's transparent-huge-page tunable the same run shows the difference.
echo "with GLIBC_TUNABLES=glibc.malloc.hugetlb=1:"
GLIBC_TUNABLES=glibc.malloc.hugetlb=1 "$WORK/parse_idx_c" "$IDX" "$RUNS" | grep cold

/usr/bin/python3 - "$IDX" "$RUNS" <<'PY'
import sys, time
import pandas
path, runs = sys.argv[1], int(sys.argv[2])
best = float("inf")
for _ in range(runs):
    t0 = time.perf_counter()
    df = pandas.read_csv(path, sep=":", header=None)
    best = min(best, time.perf_counter() - t0)
print(f"pandas {pandas.__version__} read_csv(sep=':'): {len(df)} lines, best of {runs}: "
      f"{best:.4f} s, {len(df) / best / 1e6:.2f} M lines/s")
PY
