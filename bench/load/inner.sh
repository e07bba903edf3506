#!/usr/bin/env bash
# The part of bench/load/run.sh that runs inside pg_virtualenv (libpq settings point at the cluster).
set -euo pipefail
OUT=$LOAD_OUT
"$LOAD_TOP/test/support/point-at-mirror.sh" "$LOAD_HTTP" >/dev/null

# Two datasets over the mirror, and their first cycle ingested so that decodes have references at once;
# the other 7 cycles of each are left to gik.ingest_latest.
psql -qX -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION pg_gik;
SELECT gik.define_dataset('load_gefs', 'idx',
  's3://noaa-gefs-pds/gefs.{date}/{cycle}/atmos/pgrb2sp25/{member}.t{cycle}z.pgrb2s.0p25.f{step3}',
  '{0,6,12,18}', gik.step_list('0-24/6'), members => gik.step_list('0-9'),
  member_tokens => (SELECT array_agg(CASE WHEN m = 0 THEN 'gec00' ELSE 'gep' || lpad(m::text, 2, '0') END ORDER BY m)
                    FROM generate_series(0, 9) m),
  precip_variable => 'APCP', precip_level => 'surface');
SELECT gik.define_dataset('load_ecmwf', 'ecmwf_index',
  's3://ecmwf-forecasts/{date}/{cycle}z/ifs/0p25/enfo/{date}{cycle}0000-{step}h-enfo-ef.grib2',
  '{0,6,12,18}', gik.step_list('0-24/6'), accumulated_params => '{tp}', precip_variable => 'tp', precip_level => 'sfc');
UPDATE gik.dataset SET members = gik.step_list('0-20') WHERE name = 'load_ecmwf';
SELECT gik.ingest_run('load_gefs', '2025-10-01 00:00+00');
SELECT gik.ingest_run('load_ecmwf', '2025-10-01 00:00+00');
CREATE SCHEMA bench;
CREATE TABLE bench.ref AS
SELECT (row_number() OVER (ORDER BY dataset, url, byte_offset))::int AS id, url, byte_offset, byte_length
FROM gik.chunk_ref WHERE init_time = '2025-10-01 00:00+00';
CREATE TABLE bench.member_set AS
SELECT (row_number() OVER (ORDER BY dataset, variable, level, step_start, step_end))::int AS id,
       array_agg(ROW(url, byte_offset, byte_length)::gik.ref ORDER BY member) AS refs
FROM gik.chunk_ref WHERE init_time = '2025-10-01 00:00+00'
GROUP BY dataset, variable, level, step_start, step_end HAVING count(*) > 1;
ALTER TABLE bench.ref ADD PRIMARY KEY (id);
ALTER TABLE bench.member_set ADD PRIMARY KEY (id);
ANALYZE;
SQL
nrefs=$(psql -XAtc "SELECT count(*) FROM bench.ref")
nsets=$(psql -XAtc "SELECT count(*) FROM bench.member_set")
setsize=$(psql -XAtc "SELECT round(avg(cardinality(refs)), 1) FROM bench.member_set")
# the sanity check: every script works once before the load starts
for s in decode decode_batch exceedance; do
  PGOPTIONS='-c client_min_messages=warning' pgbench -n -t 1 -D nrefs="$nrefs" -D nsets="$nsets" \
    -f "$LOAD_HERE/$s.sql" >/dev/null
done

# Backend memory: every second, VmHWM / VmRSS / RssAnon of every pgbench backend.
sampler() {
  while :; do
    for pid in $(psql -XAtc "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench'" 2>/dev/null); do
      [ -r "/proc/$pid/status" ] || continue
      awk -v pid="$pid" -v t="$(date +%s)" '/^VmHWM:/ {h=$2} /^VmRSS:/ {r=$2} /^RssAnon:/ {a=$2}
        END {if (h) print t, pid, h, r, a}' "/proc/$pid/status" 2>/dev/null || true
    done
    sleep 1
  done
}
sampler >"$OUT/mem.txt" &
sampler_pid=$!

echo "pgbench: $CLIENTS clients, $DURATION s, weights ingest_latest $W_INGEST, decode $W_DECODE," \
  "decode_batch $W_BATCH ($setsize refs per set), exceedance $W_EXCEEDANCE; $nrefs refs, $nsets member sets" >&2
set +e
cd "$OUT"
PGOPTIONS='-c client_min_messages=warning' timeout $((DURATION + 900)) pgbench -n -c "$CLIENTS" -j "$THREADS" \
  -T "$DURATION" -P 30 -r --max-tries=3 --failures-detailed -l --log-prefix="$OUT/tx" \
  -D nrefs="$nrefs" -D nsets="$nsets" -D ncycles=8 -D max_runs="$MAX_RUNS" -D recheck_h="$RECHECK_H" \
  -f "$LOAD_HERE/ingest_latest.sql@$W_INGEST" -f "$LOAD_HERE/decode.sql@$W_DECODE" \
  -f "$LOAD_HERE/decode_batch.sql@$W_BATCH" -f "$LOAD_HERE/exceedance.sql@$W_EXCEEDANCE" \
  >"$OUT/pgbench.out" 2>"$OUT/pgbench.err"
pgbench_rc=$?
set -e
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true

# Catalog after the load. Attempts still marked running would be interrupted ones.
psql -qXAt -v ON_ERROR_STOP=1 -c "SELECT gik.ingest_log_cleanup()" >/dev/null
psql -qXAt -F '|' -v ON_ERROR_STOP=1 >"$OUT/ingest_log.txt" <<'SQL'
SELECT status, coalesce(outcome, ''), count(*), coalesce(sqlstate, ''), coalesce(left(error, 200), '')
FROM gik.ingest_log GROUP BY 1, 2, 4, 5 ORDER BY 1, 2;
SQL
# How much the ingestions overlapped: pairs of attempts at the same run that ran at the same time (they
# serialise on the run's advisory lock), and the most attempts running at once.
psql -qXAt -F '|' -v ON_ERROR_STOP=1 >"$OUT/overlap.txt" <<'SQL'
SELECT (SELECT count(*) FROM gik.ingest_log a JOIN gik.ingest_log b
          ON b.dataset_id = a.dataset_id AND b.init_time = a.init_time AND b.log_id > a.log_id
         AND b.started < a.finished AND a.started < b.finished),
       (SELECT max((SELECT count(*) FROM gik.ingest_log b WHERE b.started <= a.started AND b.finished > a.started))
        FROM gik.ingest_log a);
SQL
# Per run: status, files expected/found, gik.run.refs, current references, lines of its index files (read
# from the mirror), current files; then the same run ingested once more, serially, into a copy of the
# dataset, and the two sets of references compared.
psql -qXAt -F '|' -v ON_ERROR_STOP=1 -v mirror="$LOAD_MIRROR" >"$OUT/runs.txt" <<'SQL'
SELECT gik.clone_dataset(name, name || '_serial') FROM gik.dataset WHERE name IN ('load_gefs', 'load_ecmwf') \g /dev/null
SELECT gik.ingest_run(d.name || '_serial', r.init_time) FROM gik.run r JOIN gik.dataset d USING (dataset_id)
WHERE d.name IN ('load_gefs', 'load_ecmwf') ORDER BY 1 \g /dev/null
SELECT d.name, r.init_time AT TIME ZONE 'UTC', r.status, r.version, r.files_expected, r.files_found, r.refs,
       (SELECT count(*) FROM gik.run_refs(d.name, r.init_time)),
       (SELECT sum(cardinality(regexp_split_to_array(btrim(pg_read_file(replace(p.index_url, 's3://', :'mirror' || '/')), E'\n'), E'\n')))
        FROM gik.plan_files(d.name, r.init_time) p),
       (SELECT count(*) FROM gik.file f WHERE f.run_id = r.run_id AND f.valid_to IS NULL),
       (SELECT count(*) FROM (
          (SELECT url, member, variable, level, stat, step_start, step_end, byte_offset, byte_length FROM gik.run_refs(d.name, r.init_time)
           EXCEPT ALL
           SELECT url, member, variable, level, stat, step_start, step_end, byte_offset, byte_length FROM gik.run_refs(d.name || '_serial', r.init_time))
          UNION ALL
          (SELECT url, member, variable, level, stat, step_start, step_end, byte_offset, byte_length FROM gik.run_refs(d.name || '_serial', r.init_time)
           EXCEPT ALL
           SELECT url, member, variable, level, stat, step_start, step_end, byte_offset, byte_length FROM gik.run_refs(d.name, r.init_time))) x)
FROM gik.run r JOIN gik.dataset d USING (dataset_id)
WHERE d.name IN ('load_gefs', 'load_ecmwf') ORDER BY 1, 2;
SQL
psql -qXAt -F '|' >"$OUT/health.txt" -c \
  "SELECT dataset, state, latest_run_status, partial_runs, running, consecutive_failures FROM gik.ingest_health
   WHERE dataset IN ('load_gefs', 'load_ecmwf') ORDER BY 1"
# the server log of this cluster (pg_virtualenv -t keeps it next to the cluster's configuration)
serverlog="$(dirname "$PG_CLUSTER_CONF_ROOT")/log/postgresql-$PGVERSION-regress.log"
cp "$serverlog" "$OUT/server.log" 2>/dev/null || : >"$OUT/server.log"
grep -E 'ERROR|FATAL|PANIC|terminated by signal' "$OUT/server.log" >"$OUT/server_errors.txt" || true

/usr/bin/python3 "$LOAD_HERE/report.py" "$OUT" "$pgbench_rc" | tee "$OUT/results.txt"
