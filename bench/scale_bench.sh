#!/usr/bin/env bash
# Scale benchmark: chunk references for a year of GEFS (4 cycles/day x 31 members x 81 steps x 40
# variables) and ECMWF ENS (2 cycles/day x 51 members x 85 steps x 80 variables), generated directly in
# SQL (gik.run, gik.file, gik.chunk_pack through gik.ensure_partition) with plausible offsets and lengths,
# in a throwaway cluster. Measures bytes per reference on disk (indexes included), the insert rate, the
# time to find one run's references of one variable (gik.chunk_ref and gik.run_refs, with the partitions
# the plans scan), and the time to build one run's manifest; figures for fewer days are extrapolated.
# Usage: bench/scale_bench.sh [DAYS]   (default 365; BENCH_PROBE_DAYS=N also measures the queries after N days)
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
export DAYS=${1:-${DAYS:-365}}
export PROBE_DAYS=${BENCH_PROBE_DAYS:-30}
export TOP
pgport=$("$TOP/test/support/free-port.sh")

pg_virtualenv -t -c "-p $pgport" -o shared_preload_libraries=pg_gik -o "shared_buffers=512MB" -o "max_wal_size=8GB" -o "checkpoint_timeout=30min" \
  -o "maintenance_work_mem=256MB" -o "work_mem=64MB" bash -s <<'INNER'
set -euo pipefail
psql() { command psql -qX -v ON_ERROR_STOP=1 "$@"; }
psql -c "CREATE EXTENSION pg_gik"
psql <<'SQL'
SET client_min_messages = warning;
-- Fields: GEFS 40 (APCP accumulated in 6-hourly buckets, TMAX/TMIN max/min), ECMWF 80 (tp from the run start).
INSERT INTO gik.field (dataset_id, variable, level, stat)
SELECT d.dataset_id, v.variable, v.level, v.stat
FROM gik.dataset d, LATERAL (
    SELECT * FROM (VALUES ('APCP', 'surface', 'acc'), ('TMAX', '2 m above ground', 'max'), ('TMIN', '2 m above ground', 'min'),
                          ('TMP', '2 m above ground', ''), ('RH', '2 m above ground', ''), ('UGRD', '10 m above ground', ''),
                          ('VGRD', '10 m above ground', ''), ('PRMSL', 'mean sea level', ''), ('PWAT', 'entire atmosphere (considered as a single layer)', ''),
                          ('CAPE', '180-0 mb above ground', '')) AS x(variable, level, stat)
    UNION ALL
    SELECT v, lvl || ' mb', '' FROM unnest('{HGT,TMP,RH,UGRD,VGRD,VVEL}'::text[]) v, unnest('{1000,850,500,250,100}'::text[]) lvl) v
WHERE d.name = 'gefs_0p25';
INSERT INTO gik.field (dataset_id, variable, level, stat)
SELECT d.dataset_id, v.variable, v.level, v.stat
FROM gik.dataset d, LATERAL (
    SELECT * FROM (VALUES ('tp', 'sfc', 'acc'), ('cp', 'sfc', 'acc'), ('sf', 'sfc', 'acc'), ('ssrd', 'sfc', 'acc'), ('strd', 'sfc', 'acc'),
                          ('2t', 'sfc', ''), ('2d', 'sfc', ''), ('msl', 'sfc', ''), ('10u', 'sfc', ''), ('10v', 'sfc', ''),
                          ('sp', 'sfc', ''), ('tcwv', 'sfc', ''), ('skt', 'sfc', ''), ('st', 'sfc', ''), ('tcc', 'sfc', ''),
                          ('mx2t3', 'sfc', 'max'), ('mn2t3', 'sfc', 'min'), ('10fg', 'sfc', 'max'), ('ro', 'sfc', 'acc'), ('sd', 'sfc', ''))
           AS x(variable, level, stat)
    UNION ALL
    SELECT v, 'pl/' || lvl, '' FROM unnest('{gh,t,q,u,v,w}'::text[]) v,
                                    unnest('{1000,925,850,700,500,300,250,200,100,50}'::text[]) lvl) v
WHERE d.name = 'ecmwf_ens_0p25';
-- Templates (a manifest needs each field's grid): the 0.25 degree global grid.
INSERT INTO gik.grid (grid_type, ni, nj, num_points, lat_first, lon_first, lat_last, lon_last, di, dj, scanning_mode)
VALUES ('regular_ll', 1440, 721, 1038240, 90, 0, -90, 359.75, 0.25, 0.25, 0);
UPDATE gik.field SET grid_id = (SELECT max(grid_id) FROM gik.grid), short_name = lower(variable),
                     units = CASE WHEN stat = 'acc' THEN 'kg m**-2' ELSE 'K' END, packing = 'grid_complex_spatial_differencing';
INSERT INTO gik.time_window (start_min, end_min)
SELECT DISTINCT a * 60, s * 60 FROM generate_series(0, 360, 3) s,
       LATERAL (VALUES (s), (0), (CASE WHEN s > 0 THEN 6 * ((s - 1) / 6) ELSE 0 END), (greatest(s - 3, 0))) w(a)
ON CONFLICT DO NOTHING;

-- One pack template per (dataset, step, member), reused for every run: field and window ids, offsets, lengths.
CREATE TABLE bench_tmpl AS
WITH gefs AS (
    SELECT 'gefs_0p25'::text AS ds, s AS step, m AS member, f.field_id, f.stat,
           row_number() OVER (PARTITION BY s, m ORDER BY f.field_id) AS ord,
           CASE f.stat WHEN '' THEN s ELSE 6 * ((s - 1) / 6) END AS w_start,
           (200000 + (f.field_id * 7919 + m * 104729 + s * 31) % 700000)::int AS len
    FROM unnest(gik.step_list('0-240/3')) s, generate_series(0, 30) m, gik.field f JOIN gik.dataset d USING (dataset_id)
    WHERE d.name = 'gefs_0p25' AND (s > 0 OR f.stat = '')),
ecmwf AS (
    -- One file per step holds every member: param-major, then member (offsets run across members).
    SELECT 'ecmwf_ens_0p25'::text AS ds, s AS step, m AS member, f.field_id, f.stat,
           row_number() OVER (PARTITION BY s ORDER BY f.field_id, m) AS ord,
           CASE f.stat WHEN 'acc' THEN 0 WHEN '' THEN s ELSE greatest(s - 3, 0) END AS w_start,
           (300000 + (f.field_id * 7919 + m * 104729 + s * 31) % 600000)::int AS len
    FROM unnest(gik.step_list('0-144/3,150-360/6')) s, generate_series(0, 50) m, gik.field f JOIN gik.dataset d USING (dataset_id)
    WHERE d.name = 'ecmwf_ens_0p25'),
msgs AS (
    SELECT ds, step, member, field_id, stat, w_start, len, ord,
           sum(len) OVER (PARTITION BY ds, step, member ORDER BY ord) - len AS off FROM gefs
    UNION ALL
    SELECT ds, step, member, field_id, stat, w_start, len, ord,
           sum(len) OVER (PARTITION BY ds, step ORDER BY ord) - len AS off FROM ecmwf)
SELECT m.ds, m.step, m.member,
       array_agg(m.field_id ORDER BY m.off) AS field_ids,
       array_agg(w.window_id ORDER BY m.off) AS window_ids,
       array_agg(m.off::int8 ORDER BY m.off) AS offsets,
       array_agg(m.len ORDER BY m.off) AS lengths,
       sum(m.len)::int8 AS bytes
FROM msgs m JOIN gik.time_window w ON w.start_min = m.w_start * 60 AND w.end_min = m.step * 60
GROUP BY m.ds, m.step, m.member;
CREATE INDEX ON bench_tmpl (ds, step, member);
-- The files of one run: GEFS one per member and step, ECMWF one per step.
CREATE TABLE bench_files AS
SELECT 'gefs_0p25'::text AS ds, 'members'::text AS source, t.step, t.member,
       's3://noaa-gefs-pds/gefs.{date}/{cycle}/atmos/pgrb2sp25/' || CASE WHEN t.member = 0 THEN 'gec00' ELSE 'gep' || lpad(t.member::text, 2, '0') END
       || '.t{cycle}z.pgrb2s.0p25.f{step3}' AS template, t.bytes AS size, 3800 + t.step AS index_size
FROM bench_tmpl t WHERE t.ds = 'gefs_0p25'
UNION ALL
SELECT 'ecmwf_ens_0p25', 'enfo-ef', t.step, NULL,
       's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/enfo/{date}{cycle}0000-{step}h-enfo-ef.grib2', sum(t.bytes), 820000
FROM bench_tmpl t WHERE t.ds = 'ecmwf_ens_0p25' GROUP BY t.step;
ANALYZE bench_tmpl, bench_files;
SELECT ds, count(*) AS packs, sum(cardinality(offsets)) AS refs_per_run FROM bench_tmpl GROUP BY ds ORDER BY ds;

-- Fill days [first, first + days): every run a complete version 1, one transaction per day.
CREATE PROCEDURE bench_fill(first date, days int) LANGUAGE plpgsql AS $$
DECLARE
    d   date;
    ds  record;
    c   int;
    t   timestamptz;
    rid int;
BEGIN
    FOR i IN 0 .. days - 1 LOOP
        d := first + i;
        FOR ds IN SELECT x.dataset_id, x.name,
                         CASE x.name WHEN 'gefs_0p25' THEN '{0,6,12,18}'::int[] ELSE '{0,12}' END AS cycles,
                         (SELECT count(*) FROM bench_files f WHERE f.ds = x.name) AS nfiles,
                         (SELECT sum(cardinality(offsets)) FROM bench_tmpl m WHERE m.ds = x.name) AS nrefs
                  FROM gik.dataset x WHERE x.name IN ('gefs_0p25', 'ecmwf_ens_0p25') LOOP
            PERFORM gik.ensure_partition(ds.dataset_id, d::timestamp AT TIME ZONE 'UTC');
            FOREACH c IN ARRAY ds.cycles LOOP
                t := (d + make_interval(hours => c))::timestamp AT TIME ZONE 'UTC';
                INSERT INTO gik.run (dataset_id, init_time, version, status, files_expected, files_found, refs,
                                     index_bytes, started, finished)
                VALUES (ds.dataset_id, t, 1, 'complete', ds.nfiles, ds.nfiles, ds.nrefs, ds.nfiles * 4000, now(), now())
                RETURNING run_id INTO rid;
                INSERT INTO gik.run_version (run_id, version, files_added, files_changed, refs, note)
                VALUES (rid, 1, ds.nfiles, 0, ds.nrefs, 'first ingestion');
                WITH f AS (
                    INSERT INTO gik.file (run_id, source, step, member, url, found, size, index_size, index_etag, index_md5, valid_from)
                    SELECT rid, b.source, b.step, b.member, gik.expand_url(b.template, t, b.step), true, b.size, b.index_size,
                           format('"%s-%s"', to_hex(extract(epoch FROM t)::int8 + b.step), to_hex(b.index_size)),
                           md5(b.template || t::text || b.step || coalesce(b.member, -1)), 1
                    FROM bench_files b WHERE b.ds = ds.name
                    RETURNING file_id, step, member)
                INSERT INTO gik.chunk_pack (dataset_id, init_time, run_id, file_id, member, field_ids, window_ids, offsets, lengths)
                SELECT ds.dataset_id, t, rid, f.file_id, m.member, m.field_ids, m.window_ids, m.offsets, m.lengths
                FROM f JOIN bench_tmpl m ON m.ds = ds.name AND m.step = f.step AND (f.member IS NULL OR m.member = f.member);
            END LOOP;
        END LOOP;
        COMMIT;
    END LOOP;
END $$;
SQL

ms() { command psql -qXAt -v ON_ERROR_STOP=1 -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1; }
best() { # best of 5 runs in one session after a first one (warm caches, as a pooled connection has), in ms
  command psql -qXAt -v ON_ERROR_STOP=1 -c '\timing on' -c "$1" -c "$1" -c "$1" -c "$1" -c "$1" -c "$1" \
    | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -5 | sort -g | head -1; }
has_fn() { command psql -qXAt -c "SELECT to_regproc('$1') IS NOT NULL" | grep -qx t; }
manifest_sql() { # one GEFS run's kerchunk document with gik.manifest_kerchunk (75_manifest.sql) when installed
  if has_fn gik.manifest_kerchunk; then
    echo "SELECT length(gik.manifest_kerchunk('gefs_0p25', '$1')::text)"
  else
    agg_sql "$1"
  fi; }
agg_sql() { # the same references as a plain jsonb_object_agg over gik.chunk_ref: a baseline
  echo "SELECT length(jsonb_object_agg(variable || '/' || level || '/' || stat || '/' || member || '.' || step_end,
        jsonb_build_array(url, byte_offset, byte_length))::text) FROM gik.chunk_ref WHERE dataset = 'gefs_0p25' AND init_time = '$1'"; }
measure() { # label, run: query timings and plans at the current size
  local run=$1
  local q_view="SELECT url, byte_offset, byte_length, member, step_start, step_end FROM gik.chunk_ref WHERE dataset = 'gefs_0p25' AND init_time = '$run' AND variable = 'APCP'"
  local q_fn="SELECT url, byte_offset, byte_length, member, step_start, step_end FROM gik.run_refs('gefs_0p25', '$run', '{APCP}')"
  local q_ec="SELECT url, byte_offset, byte_length, member, step_end FROM gik.chunk_ref WHERE dataset = 'ecmwf_ens_0p25' AND init_time = '$run' AND variable = 'tp'"
  n_view=$(command psql -qXAt -c "SELECT count(*) FROM ($q_view) q")
  t_view=$(best "$q_view")
  if has_fn gik.run_refs; then
    n_fn=$(command psql -qXAt -c "SELECT count(*) FROM ($q_fn) q"); t_fn=$(best "$q_fn")
  else n_fn=-; t_fn=-; fi
  n_ec=$(command psql -qXAt -c "SELECT count(*) FROM ($q_ec) q"); t_ec=$(best "$q_ec")
  if [ "$n_fn" != - ]; then t_ecfn=$(best "SELECT url, byte_offset, byte_length, member, step_end FROM gik.run_refs('ecmwf_ens_0p25', '$run', '{tp}')"); else t_ecfn=-; fi
  t_all=$(best "SELECT url, byte_offset, byte_length FROM gik.chunk_ref WHERE dataset = 'gefs_0p25' AND init_time = '$run'")
  t_man=$(best "$(manifest_sql "$run")")
  t_agg=$(best "$(agg_sql "$run")")
  n_run=$(command psql -qXAt -c "SELECT count(*) FROM gik.chunk_ref WHERE dataset = 'gefs_0p25' AND init_time = '$run'")
  parts=$(command psql -qXAt -c "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) $q_view" | grep -oE 'on chunk_pack_[0-9_]+' | sort -u | wc -l)
  plan_ms=$(command psql -qXAt -c "EXPLAIN (ANALYZE, TIMING OFF) $q_view" | sed -n 's/^Planning Time: \([0-9.]*\) ms/\1/p')
}

secs() { local t0; t0=$(date +%s.%N); "$@" >/dev/null; /usr/bin/python3 -c "import time; print(time.time() - $t0)"; }
# A first, smaller size, to show that query times do not grow with the number of days.
probe=$(( PROBE_DAYS < DAYS ? PROBE_DAYS : DAYS ))
fill1=$(secs psql -c "CALL bench_fill('2025-01-01', $probe)")
mid0=$(command psql -qXAt -c "SELECT ('2025-01-01'::date + $probe / 2)::text || ' 12:00+00'")
psql -c "VACUUM ANALYZE"
measure "$mid0"
early=("$t_view" "$t_fn" "$t_ec" "$t_ecfn" "$t_man" "$parts")
echo "after $probe days: fill ${fill1}s; view ${t_view} ms, run_refs ${t_fn} ms" >&2
fill2=0
if [ "$DAYS" -gt "$probe" ]; then
  fill2=$(secs psql -c "CALL bench_fill('2025-01-01'::date + $probe, $DAYS - $probe)")
fi
fill_s=$(/usr/bin/python3 -c "print($fill1 + $fill2)")
t0=$(date +%s.%N); psql -c "VACUUM ANALYZE"; vac_s=$(/usr/bin/python3 -c "import time; print(time.time() - $t0)")
mid=$(command psql -qXAt -c "SELECT ('2025-01-01'::date + $DAYS / 2)::text || ' 12:00+00'")
measure "$mid"
command psql -qXAt -F ' ' -c "SELECT dataset, refs, packs, files, pack_bytes, file_bytes, bytes_per_ref FROM gik.storage WHERE refs > 0 ORDER BY dataset" > /tmp/scale_storage.$$
partitions=$(command psql -qXAt -c "SELECT count(*) FROM pg_partition_tree('gik.chunk_pack') WHERE isleaf")
dbsize=$(command psql -qXAt -c "SELECT pg_database_size(current_database())")
echo "== EXPLAIN (ANALYZE) of the view query, a year of data =="
command psql -qX -c "EXPLAIN (ANALYZE, COSTS OFF, BUFFERS) SELECT url, byte_offset, byte_length, member, step_start, step_end FROM gik.chunk_ref WHERE dataset = 'gefs_0p25' AND init_time = '$mid' AND variable = 'APCP'" | sed -n '1,60p'
if has_fn gik.run_refs; then
  echo "== EXPLAIN (ANALYZE) of gik.run_refs' query =="
  command psql -qX -c "LOAD 'auto_explain'" -c "SET auto_explain.log_min_duration = 0" -c "SET auto_explain.log_nested_statements = on" \
    -c "SET auto_explain.log_analyze = on" -c "SET client_min_messages = log" -c "SET auto_explain.log_level = notice" \
    -c "SELECT count(*) FROM gik.run_refs('gefs_0p25', '$mid', '{APCP}')" 2>&1 | sed -n '1,45p'
fi
manifest_kind=$(manifest_sql x | grep -q manifest_kerchunk && echo "gik.manifest_kerchunk(dataset, init_time) (75_manifest.sql)" || echo "jsonb_object_agg over gik.chunk_ref (no manifest function installed)")

/usr/bin/python3 - "$DAYS" "$probe" "$fill_s" "$vac_s" "$partitions" "$dbsize" "$n_view" "$t_view" "$n_fn" "$t_fn" "$n_ec" "$t_ec" \
  "$t_ecfn" "$t_all" "$n_run" "$t_man" "$t_agg" "$parts" "$plan_ms" "${early[@]}" "$manifest_kind" /tmp/scale_storage.$$ <<'PY'
import sys
(days, probe, fill_s, vac_s, partitions, dbsize, n_view, t_view, n_fn, t_fn, n_ec, t_ec, t_ecfn, t_all, n_run, t_man, t_agg, parts,
 plan_ms, e_view, e_fn, e_ec, e_ecfn, e_man, e_parts, manifest_kind, storage_file) = sys.argv[1:]
days, probe, fill_s, vac_s, dbsize = int(days), int(probe), float(fill_s), float(vac_s), int(dbsize)
rows = [l.split() for l in open(storage_file) if l.strip()]
refs = sum(int(r[1]) for r in rows)
scale = 365 / days
print()
print(f"Scale benchmark: {days} days of GEFS (4 cycles x 31 members x 81 steps x 40 variables) "
      f"and ECMWF ENS (2 cycles x 51 members x 85 steps x 80 variables)")
print(f"{'dataset':16s} {'references':>14s} {'packs':>11s} {'files':>10s} {'pack MB':>10s} {'file MB':>9s} {'B/ref':>7s}")
for ds, r, p, f, pb, fb, bpr in rows:
    print(f"{ds:16s} {int(r):14,d} {int(p):11,d} {int(f):10,d} {int(pb)/1e6:10.0f} {int(fb)/1e6:9.0f} {bpr:>7s}")
tot_bytes = sum(int(r[4]) + int(r[5]) for r in rows)
print(f"{'total':16s} {refs:14,d} {'':11s} {'':10s} {tot_bytes/1e6:10.0f} {'':9s} {tot_bytes/refs:7.1f}")
print(f"database size {dbsize/1e9:.2f} GB, {partitions} leaf partitions")
print()
fmt = lambda v: v if v == '-' else f"{float(v):.1f}"
print(f"{'measure':58s} {'value':>16s}   {'1 year (extrapolated)':>22s}")
print(f"{'references inserted':58s} {refs:16,d}   {refs*scale:22,.0f}")
print(f"{'insert time (SQL generation, one transaction per day)':58s} {fill_s:14.0f} s   {fill_s*scale:20.0f} s")
print(f"{'insert rate':58s} {refs/fill_s/1e6:12.2f} M/s")
print(f"{'VACUUM ANALYZE after the load':58s} {vac_s:14.0f} s")
print(f"{'bytes per reference on disk (gik.storage, indexes incl.)':58s} {tot_bytes/refs:16.1f}   {tot_bytes/refs:22.1f}")
print(f"{'disk for the references':58s} {tot_bytes/1e9:14.2f} GB   {tot_bytes*scale/1e9:19.2f} GB")
print(f"{'one GEFS run, APCP via gik.chunk_ref (rows / best of 5)':58s} {n_view:>7s} {fmt(t_view):>6s} ms   (after {probe} days: {fmt(e_view)} ms)")
print(f"{'  partitions scanned / planning time':58s} {parts:>7s} {fmt(plan_ms):>6s} ms   (after {probe} days: {e_parts} partitions)")
print(f"{'one GEFS run, APCP via gik.run_refs':58s} {n_fn:>7s} {fmt(t_fn):>6s} ms   (after {probe} days: {fmt(e_fn)} ms)")
print(f"{'one ECMWF run, tp via gik.chunk_ref':58s} {n_ec:>7s} {fmt(t_ec):>6s} ms   (after {probe} days: {fmt(e_ec)} ms)")
print(f"{'one ECMWF run, tp via gik.run_refs':58s} {n_ec:>7s} {fmt(t_ecfn):>6s} ms   (after {probe} days: {fmt(e_ecfn)} ms)")
print(f"{'one GEFS run, all references via gik.chunk_ref':58s} {n_run:>7s} {fmt(t_all):>6s} ms")
print(f"{'one GEFS run manifest, all references':58s} {n_run:>7s} {fmt(t_man):>6s} ms   (after {probe} days: {fmt(e_man)} ms)")
print(f"  manifest built with: {manifest_kind}")
print(f"{'  baseline: jsonb_object_agg of the same references':58s} {n_run:>7s} {fmt(t_agg):>6s} ms")
PY
rm -f /tmp/scale_storage.$$
INNER
