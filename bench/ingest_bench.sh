#!/usr/bin/env bash
# Ingestion benchmark: a full GEFS run layout (31 members x 81 steps = 2,511 .idx files, the real
# 38-message pgrb2s inventory) from a loopback nginx mirror, against gik.scan_grib (the traditional
# full scan) on a subset of the same files, plus gik.parse_idx through SQL against pandas.
# Usage: bench/ingest_bench.sh   (after ./run_tests.sh has installed the dependencies and pg_gik)
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
WORK=${GIK_BENCH_ROOT:-/tmp/pg_gik_bench}
PORT=${GIK_BENCH_PORT:-$("$TOP/test/support/free-port.sh")}
MIRROR=$WORK/mirror
RUN=noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25

mkdir -p "$WORK"
"$TOP/bench/mirrors.sh" gefs-run "$MIRROR"
chmod -R a+rX "$WORK"
LINES=1000000 RUNS=1 sh "$TOP/bench/parse_idx_c.sh" >/dev/null   # builds the 1M-line idx
BIGIDX=${TMPDIR:-/tmp}/gik_bench/gfs_1000000.idx
chmod a+rx "$(dirname "$BIGIDX")"; chmod a+r "$BIGIDX"

"$TOP/test/support/mirror-server.sh" start "$MIRROR" "$PORT" "$WORK/nginx"
trap '"$TOP/test/support/mirror-server.sh" stop "$WORK/nginx"' EXIT
pgport=$("$TOP/test/support/free-port.sh")

export BENCH_HTTP="http://127.0.0.1:$PORT" BENCH_RUN="$RUN" BENCH_MIRROR="$MIRROR" BENCH_TOP="$TOP" BIGIDX
pg_virtualenv -t -c "-p $pgport" -o shared_preload_libraries=pg_gik bash -s <<'INNER'
set -euo pipefail
"$BENCH_TOP/test/support/point-at-mirror.sh" "$BENCH_HTTP"
psql -qX -v ON_ERROR_STOP=1 -c "CREATE EXTENSION pg_gik"
ms() { psql -qXAt -v ON_ERROR_STOP=1 -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1; }

cold=$(ms "SELECT gik.ingest_run('gefs_0p25', '2025-10-01 00:00+00')")
psql -qXAt -F ' ' -c "SELECT files_expected, files_found, refs, index_bytes, grib_bytes, round(fetch_ms) FROM gik.run" > /tmp/gik_bench_run.txt
read files found refs idx_bytes grib_bytes fetch_ms < /tmp/gik_bench_run.txt
psql -qX -c "DELETE FROM gik.run"
warm=$(ms "SELECT gik.ingest_run('gefs_0p25', '2025-10-01 00:00+00')")
total_grib=$(find "$BENCH_MIRROR/$BENCH_RUN" -type f ! -name '*.idx' -printf '%s\n' | awk '{s+=$1} END {print s}')
scan_files=20
scan=$(ms "SELECT count(*) FROM (SELECT (gik.scan_grib(url)).msg_num FROM (SELECT DISTINCT url FROM gik.chunk_ref ORDER BY url LIMIT $scan_files) u) s")
bpr=$(psql -qXAt -c "SELECT bytes_per_ref FROM gik.storage WHERE dataset = 'gefs_0p25'")
p1=$(ms "SELECT count(*) FROM gik.parse_idx(pg_read_file('$BIGIDX'))")
p2=$(ms "SELECT count(*) FROM gik.parse_idx(pg_read_file('$BIGIDX'))")
rd=$(ms "SELECT length(pg_read_file('$BIGIDX'))")

/usr/bin/python3 - "$cold" "$warm" "$files" "$found" "$refs" "$idx_bytes" "$grib_bytes" "$fetch_ms" "$total_grib" "$scan" "$scan_files" "$bpr" "$p1" "$p2" "$rd" "$BIGIDX" <<'PY'
import sys, time, pandas
(cold, warm, files, found, refs, idx_b, grib_b, fetch_ms, total, scan, nscan, bpr, p1, p2, rd, bigidx) = sys.argv[1:]
cold, warm, scan, p, rd = float(cold), float(warm), float(scan), min(float(p1), float(p2)), float(rd)
files, refs, idx_b, grib_b, total, nscan = int(files), int(refs), int(idx_b), int(grib_b), int(total), int(nscan)
t0 = time.perf_counter(); df = pandas.read_csv(bigidx, sep=":", header=None); pd_s = time.perf_counter() - t0
real_file = 17_500_000          # a real GEFS pgrb2s 0.25 file (gep01 f015: last offset 17,007,489)
print(f"GEFS run: {files} index files ({found} found), {refs} references, {idx_b/1e6:.2f} MB of index read")
print(f"{'ingest, first time (templates learned)':48s} {cold/1000:8.2f} s")
print(f"{'ingest, templates known':48s} {warm/1000:8.2f} s   (index fetch {float(fetch_ms)/1000:.2f} s)")
print(f"{'gik.scan_grib full scan, extrapolated':48s} {scan/nscan*files/1000:8.2f} s   ({scan/nscan:.1f} ms per file on {nscan} reduced-size files)")
print(f"{'bytes read / GRIB bytes, this mirror':48s} {100*(idx_b+grib_b)/total:8.4f} %  (GRIB {total/1e9:.2f} GB at 2.5 deg)")
print(f"{'bytes read / GRIB bytes, real 0.25 deg sizes':48s} {100*idx_b/(files*real_file):8.4f} %  (templates once per dataset excluded)")
print(f"{'bytes per reference on disk':48s} {bpr:>8s}")
print(f"{'gik.parse_idx via SQL, 1M-line idx':48s} {1e6/(p/1000)/1e6:8.2f} M lines/s ({p:.0f} ms; pg_read_file alone {rd:.0f} ms)")
print(f"{'pandas read_csv, same file':48s} {len(df)/pd_s/1e6:8.2f} M lines/s")
PY
INNER
