#!/usr/bin/env bash
# Manifest benchmark: export (kerchunk v1, Zarr v3, COPY to a file) and import of a full GEFS run
# (31 members x 81 steps, the 38-message pgrb2s inventory: about 95,000 references) and a full ECMWF ENS run
# (51 members x 85 steps, 5 params: about 21,700 references), from a generated loopback mirror.
# Prints time, size and bytes per reference. Usage: bench/manifest_bench.sh   (after ./run_tests.sh has installed
# the dependencies and pg_gik). GIK_BENCH_ROOT (default /tmp/pg_gik_manifest_bench) and GIK_BENCH_PORT
# (nginx, default 19075) keep it apart from other runs; the cluster gets a free port.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
WORK=${GIK_BENCH_ROOT:-/tmp/pg_gik_manifest_bench}
PORT=${GIK_BENCH_PORT:-19075}
MIRROR=$WORK/mirror
GEFS_RUN=noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25
ECMWF_RUN=ecmwf-forecasts/20251001/00z/ifs/0p25/enfo

mkdir -p "$WORK"
"$TOP/bench/mirrors.sh" gefs-run "$MIRROR"
"$TOP/bench/mirrors.sh" ecmwf-run "$MIRROR"
mkdir -p "$WORK/out"
chmod -R a+rwX "$WORK/out"
chmod -R a+rX "$WORK"

"$TOP/tools/mirror-server.sh" start "$MIRROR" "$PORT" "$WORK/nginx" >&2
trap '"$TOP/tools/mirror-server.sh" stop "$WORK/nginx"' EXIT
pgport=$("$TOP/tools/free-port.sh")

export BENCH_HTTP="http://127.0.0.1:$PORT" BENCH_OUT="$WORK/out" BENCH_TOP="$TOP"
pg_virtualenv -t -c "-p $pgport" -o shared_preload_libraries=pg_gik bash -s <<'INNER'
set -euo pipefail
"$BENCH_TOP/tools/point-at-mirror.sh" "$BENCH_HTTP"
psql -qX -v ON_ERROR_STOP=1 -c "CREATE EXTENSION pg_gik"
# Milliseconds of one statement (the last "Time:" line psql prints).
ms() { psql -qXAt -v ON_ERROR_STOP=1 -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1; }
val() { psql -qXAt -v ON_ERROR_STOP=1 -c "$1"; }
copy_opts="WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"

# The peer: ingesting the run from its index files (templates learned), measured in the same run of this script.
ing_gefs=$(ms "SELECT gik.ingest_run('gefs_0p25', '2025-10-01 00:00+00')")
ing_ecmwf=$(ms "SELECT gik.ingest_run('ecmwf_ens_0p25', '2025-10-01 00:00+00', variables => '{tp,2t,msl,10u,10v}')")
psql -qXAt -c "ANALYZE"

: > /tmp/gik_manifest_bench.txt
for ds in gefs_0p25 ecmwf_ens_0p25; do
  refs=$(val "SELECT count(*) FROM gik.chunk_ref WHERE dataset = '$ds'")
  files=$(val "SELECT count(*) FROM gik.file f JOIN gik.run r USING (run_id) JOIN gik.dataset d USING (dataset_id) WHERE d.name = '$ds' AND f.valid_to IS NULL")
  # Export: best of two for each form.
  t_rows=$(ms "SELECT count(*) FROM gik.manifest('$ds')"); t_rows=$(printf '%s\n%s\n' "$t_rows" "$(ms "SELECT count(*) FROM gik.manifest('$ds')")" | sort -g | head -1)
  t_k=$(ms "SELECT length(gik.manifest_kerchunk('$ds')::text)"); t_k=$(printf '%s\n%s\n' "$t_k" "$(ms "SELECT length(gik.manifest_kerchunk('$ds')::text)")" | sort -g | head -1)
  t_h=$(ms "SELECT length(gik.manifest_kerchunk('$ds', url_style => 'http')::text)")
  t_3=$(ms "SELECT length(gik.manifest_zarr3('$ds')::text)")
  t_c=$(ms "COPY (SELECT gik.manifest_kerchunk('$ds')) TO '$BENCH_OUT/$ds.json' $copy_opts")
  b_k=$(stat -c %s "$BENCH_OUT/$ds.json")
  b_h=$(val "SELECT octet_length(gik.manifest_kerchunk('$ds', url_style => 'http')::text)")
  b_3=$(val "SELECT octet_length(gik.manifest_zarr3('$ds')::text)")
  b_meta=$(val "SELECT octet_length((SELECT jsonb_object_agg(key, value) FROM gik.manifest('$ds') WHERE kind <> 'chunk')::text)")
  # Import of the exported file into a new dataset, then again (unchanged: no new version).
  t_i=$(ms "SELECT count(*) FROM gik.import_kerchunk('imp_$ds', pg_read_file('$BENCH_OUT/$ds.json')::json)")
  t_i2=$(ms "SELECT count(*) FROM gik.import_kerchunk('imp_$ds', pg_read_file('$BENCH_OUT/$ds.json')::json)")
  same=$(val "SELECT (SELECT jsonb_object_agg(key, value) FROM gik.manifest('$ds') WHERE kind = 'chunk')
                   = (SELECT jsonb_object_agg(key, value) FROM gik.manifest('imp_$ds') WHERE kind = 'chunk')")
  # The same references as GIK [key, value] rows in a table (what COPY of a GIK parquet file gives).
  val "CREATE TABLE rows_$ds AS SELECT key, CASE WHEN kind = 'coordinate' THEN value #>> '{}' ELSE value::text END AS value
       FROM gik.manifest('$ds')" >/dev/null
  t_g=$(ms "SELECT count(*) FROM gik.import_gik_table('gik_$ds', 'rows_$ds')")
  ing=$([ "$ds" = gefs_0p25 ] && echo "$ing_gefs" || echo "$ing_ecmwf")
  echo "$ds $refs $files $t_rows $t_k $t_h $t_3 $t_c $b_k $b_h $b_3 $b_meta $t_i $t_i2 $t_g $same $ing" >> /tmp/gik_manifest_bench.txt
done
pack=$(val "SELECT string_agg(dataset || ' ' || bytes_per_ref, ', ') FROM gik.storage WHERE dataset IN ('gefs_0p25', 'ecmwf_ens_0p25')")

/usr/bin/python3 - "$pack" <<'PY'
import sys
rows = [l.split() for l in open("/tmp/gik_manifest_bench.txt")]
print(f"{'':44s} {'GEFS':>12s} {'ECMWF ENS':>12s}")
def line(label, fmt, idx, conv=float):
    vals = [fmt(conv(r[idx]), r) for r in rows]
    print(f"{label:44s} " + " ".join(f"{v:>12s}" for v in vals))
refs = lambda r: int(r[1])
line("references", lambda v, r: f"{int(v):,}", 1, int)
line("GRIB files", lambda v, r: f"{int(v):,}", 2, int)
line("gik.manifest() rows, s", lambda v, r: f"{v/1000:.2f}", 3)
line("kerchunk JSON (s3:// URLs), s", lambda v, r: f"{v/1000:.2f}", 4)
line("kerchunk JSON (http URLs), s", lambda v, r: f"{v/1000:.2f}", 5)
line("Zarr v3 JSON, s", lambda v, r: f"{v/1000:.2f}", 6)
line("COPY kerchunk JSON to a file, s", lambda v, r: f"{v/1000:.2f}", 7)
line("kerchunk JSON size, MB", lambda v, r: f"{v/1e6:.2f}", 8)
line("  bytes per reference", lambda v, r: f"{v/refs(r):.1f}", 8)
line("  of which metadata + coordinates, kB", lambda v, r: f"{v/1e3:.1f}", 11)
line("kerchunk JSON with http URLs, bytes/ref", lambda v, r: f"{v/refs(r):.1f}", 9)
line("Zarr v3 JSON, bytes/ref", lambda v, r: f"{v/refs(r):.1f}", 10)
line("import that file (new dataset), s", lambda v, r: f"{v/1000:.2f}", 12)
line("import it again (unchanged), s", lambda v, r: f"{v/1000:.2f}", 13)
line("import as GIK [key, value] table rows, s", lambda v, r: f"{v/1000:.2f}", 14)
line("references per second, export / import", lambda v, r: f"{refs(r)/(float(r[4])/1000)/1000:.0f}k/{refs(r)/(v/1000)/1000:.0f}k", 12)
line("peer: gik.ingest_run of the run, s", lambda v, r: f"{v/1000:.2f}", 16)
line("  kerchunk export / ingest time", lambda v, r: f"{float(r[4])/v:.2f}", 16)
line("  kerchunk import / ingest time", lambda v, r: f"{float(r[12])/v:.2f}", 16)
print(f"{'re-export of the import equals the export':44s} " + " ".join(f"{'yes' if r[15] == 't' else 'NO':>12s}" for r in rows))
print(f"catalog bytes per reference (gik.storage): {sys.argv[1]}")
if not rows or any(r[15] != "t" for r in rows):
    sys.exit("manifest bench: the re-export of an import differs from the export")
PY
INNER
