#!/usr/bin/env bash
# Upgrade test: install pg_gik and pg_gik_postgis 0.1.0 from the frozen release scripts beside them,
# fill a catalog (ingested GEFS and ECMWF runs, an imported kerchunk run, a cloned dataset), run
# ALTER EXTENSION ... UPDATE, and check that
#   (a) the catalog's rows are unchanged and readable, and a reference still decodes (ecCodes agrees),
#   (b) the schema equals a fresh install of the current version in another database,
#   (c) the functions work: a new run ingests, a re-ingestion and a re-import make no new version, exceedance is
#       unchanged and agrees with ecCodes.
# Runs against the server psql reaches (PG* environment): a superuser on the same host (the frozen
# scripts are copied into its extension directory for the test, then the originals put back), with
# pg_gik in shared_preload_libraries and pointed at the loopback mirror (test/support/point-at-mirror.sh).
# Prints TAP-like ok / not ok lines and every differing line; exits 1 on any failure (and then keeps
# the upgraded database, GIK_UPGRADE_DB, for a look).
#   test/upgrade/run.sh            GIK_HTTP (mirror, default http://127.0.0.1:18765), GIK_PY (python), GIK_UPGRADE_DB
#                                  (database prefix), GIK_RELEASE_REV (git revision of 0.1.0, default v0.1.0)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
FROM=0.1.0
TO=$(sed -n "s/^default_version = '\(.*\)'$/\1/p" "$src/pg_gik.control")
OLD=${GIK_UPGRADE_DB:-gik_upgrade}
NEW=${OLD}_fresh
HTTP=${GIK_HTTP:-http://127.0.0.1:18765}
PY=${GIK_PY:-/usr/bin/python3}  # with psycopg2, eccodes and numpy
REV=${GIK_RELEASE_REV:-v0.1.0}
work=$(mktemp -d)
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
# same DESC FILE-A FILE-B: ok when equal, else not ok and every differing line
same() {
  if diff -u "$2" "$3" >"$work/diff"; then ok "$1"; else not_ok "$1"; sed 's/^/#   /' "$work/diff"; fi
}
# py_check PREFIX SCRIPT ARGS...: a Python check of test/upgrade, its lines as ours; it must finish
py_check() {
  local line bad=0 prefix=$1 script=$2
  shift 2
  "$PY" "$here/$script" "$@" >"$work/py" 2>&1 || bad=1
  while read -r line; do
    case $line in
      ok*) ok "$prefix${line#ok - }" ;;
      "not ok"*) not_ok "$prefix${line#not ok - }"; bad=0 ;;
      *) echo "#   $line" ;;
    esac
  done <"$work/py"
  [ $bad -eq 0 ] || not_ok "$prefix$script ran to the end"
}
q() { local db=$1; shift; psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "$@"; }
finish() {
  echo "1..$n"
  echo "# upgrade $FROM -> $TO: $((n - failed)) passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}

# ---- the server
if [ "$(q postgres -c "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")" != t ]; then
  not_ok "connected as a superuser"; finish
fi
if ! q postgres -c "SHOW shared_preload_libraries" | tr -d ' ' | tr ',' '\n' | grep -qx pg_gik; then
  not_ok "pg_gik is in shared_preload_libraries"; finish
fi
extdir=$(q postgres -c "SELECT setting FROM pg_config WHERE name = 'SHAREDIR'")/extension

# ---- the frozen 0.1.0 scripts: equal to the release's build when this clone has the release
if git -C "$src" rev-parse -q --verify "$REV^{commit}" >/dev/null 2>&1; then
  if "$here/freeze.sh" "$REV" "$FROM" "$work/release" 2>"$work/freeze.err"; then
    same "frozen pg_gik--$FROM.sql is the build of $REV" "$work/release/pg_gik--$FROM.sql" "$here/pg_gik--$FROM.sql"
    same "frozen pg_gik_postgis--$FROM.sql is that of $REV" "$work/release/pg_gik_postgis--$FROM.sql" "$here/pg_gik_postgis--$FROM.sql"
  else
    not_ok "freeze.sh $REV"; sed 's/^/#   /' "$work/freeze.err"
  fi
else
  echo "# $REV is not in this clone (shallow or without tags): the frozen scripts are used unchecked"
fi

# ---- install them for the test; put back whatever was there
mkdir -p "$work/saved"
put() { cp "$1" "$2" 2>/dev/null || sudo -n cp "$1" "$2"; }
restore() {
  for f in pg_gik--$FROM.sql pg_gik_postgis--$FROM.sql; do
    if [ -f "$work/saved/$f" ]; then put "$work/saved/$f" "$extdir/$f"; else rm -f "$extdir/$f" 2>/dev/null || sudo -n rm -f "$extdir/$f"; fi
  done
  rm -rf "$work"
}
trap restore EXIT
trap "exit 130" INT TERM
for f in pg_gik--$FROM.sql pg_gik_postgis--$FROM.sql; do
  [ -f "$extdir/$f" ] && cp "$extdir/$f" "$work/saved/$f"
  put "$here/$f" "$extdir/$f" || { not_ok "install $f into $extdir"; finish; }
done
for f in pg_gik--$FROM--$TO.sql pg_gik_postgis--$FROM--$TO.sql; do
  [ -f "$extdir/$f" ] || { not_ok "$f is installed in $extdir (make install)"; finish; }
done

# ---- 0.1.0 and a catalog
for db in "$OLD" "$NEW"; do dropdb --if-exists "$db" 2>/dev/null; createdb "$db" || { not_ok "create database $db"; finish; }; done
if q "$OLD" 2>"$work/install.err" <<SQL
SET client_min_messages = warning;
CREATE EXTENSION pg_gik VERSION '$FROM';
CREATE EXTENSION postgis_raster CASCADE;
CREATE EXTENSION pg_gik_postgis VERSION '$FROM';
SQL
then ok "pg_gik and pg_gik_postgis $FROM install (the current pg_gik.so serves their SQL)"
else not_ok "pg_gik and pg_gik_postgis $FROM install"; sed 's/^/#   /' "$work/install.err"; finish
fi

GEFS="'gefs_0p25', '2025-10-01 00:00+00', variables => '{APCP}', members => '{0,1,2}', steps => gik.step_list('0-24/3')"
# the grid's 0.1.0 attributes (0.2.0 adds proj, NULL for lat/lon grids)
EXC="SELECT threshold, probability, (grid).grid_type, (grid).ni, (grid).nj, (grid).lat_first, (grid).lon_first, (grid).lat_last, (grid).lon_last, (grid).di, (grid).dj, (grid).scanning_mode, members_used FROM gik.exceedance('gefs_0p25', '2025-10-01 00:00+00', 0, 24, '{0.1,1,5,25}', gik.bbox(20, -20, 60, 20))"
if q "$OLD" >"$work/ingest.out" 2>"$work/ingest.err" <<SQL
SET client_min_messages = warning;
SELECT status, files_found, refs FROM gik.ingest_run($GEFS);
SELECT status, files_found, refs FROM gik.ingest_run('ecmwf_ens_0p25', '2025-10-01 00:00+00', variables => '{tp}', steps => '{0,24}');
SELECT init_time, refs FROM gik.import_kerchunk('upgrade_imported', gik.manifest_kerchunk('gefs_0p25', '2025-10-01 00:00+00'));
SELECT gik.clone_dataset('gefs_0p25', 'upgrade_clone', '{APCP}');
SELECT gik.define_dataset('upgrade_local', 'idx', '/srv/grib/{date}/{cycle}/f{step3}.grib2', '{0}', '{0,6}');
SQL
then ok "under $FROM: GEFS and ECMWF runs ingested, a kerchunk run imported, datasets cloned and defined"; sed 's/^/#   /' "$work/ingest.out"
else not_ok "under $FROM: ingestion and import"; sed 's/^/#   /' "$work/ingest.err"; finish
fi

# Every table's rows (the columns it had under 0.1.0) and every view's, as count and digest; left out
# are the view columns that measure the disk (the update rewrites gik.file) or the clock.
q "$OLD" -F ' ' >"$work/columns" <<'SQL'
SELECT c.oid::regclass, string_agg(quote_ident(a.attname), ',' ORDER BY a.attnum)
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relnamespace = 'gik'::regnamespace AND c.relkind IN ('r', 'v')
  AND (c.oid::regclass::text, a.attname::text) NOT IN (VALUES ('gik.storage', 'pack_bytes'), ('gik.storage', 'file_bytes'),
       ('gik.storage', 'bytes_per_ref'), ('gik.ingest_health', 'latest_complete_age'), ('gik.ingest_health', 'state'))
GROUP BY c.oid ORDER BY c.oid::regclass::text;
SQL
# The update adds built-in datasets and redefines those of 0.1.0 (checked with the seeded rows below): rows
# are compared for the datasets that existed before it, and the definitions of the built-in ones left out.
BEFORE_IDS=$(q "$OLD" -c "SELECT string_agg(dataset_id::text, ',') FROM gik.dataset")
BEFORE_NAMES=$(q "$OLD" -c "SELECT string_agg(quote_literal(name), ',') FROM gik.dataset")
BUILT_IN="'gefs_0p25', 'ecmwf_ens_0p25'"
rows() {
  local where
  while read -r rel cols; do
    case ",$cols," in
      *,dataset_id,*) where="WHERE dataset_id IN ($BEFORE_IDS)" ;;
      *,dataset,*) where="WHERE dataset IN ($BEFORE_NAMES)" ;;
      *) where= ;;
    esac
    case $rel in
      gik.dataset|gik.dataset_source)
        where="$where AND dataset_id NOT IN (SELECT dataset_id FROM gik.dataset WHERE name IN ($BUILT_IN))" ;;
    esac
    echo "SELECT '$rel', count(*), md5(coalesce(string_agg(t::text, E'\n' ORDER BY t::text), '')) FROM (SELECT $cols FROM $rel $where) t;"
  done <"$work/columns" | q "$OLD" -F ' '
}
rows >"$work/rows.before"
q "$OLD" -c "$EXC" >"$work/exceedance.before"
# the product to compare must not be trivial: 3 members, so probabilities 0, 1/3, 2/3 and 1 somewhere
got=$(q "$OLD" -c "SELECT min(e.members_used) || ' ' || count(DISTINCT x) FROM ($EXC) e, unnest(e.probability) x")
[ "$got" = "3 4" ] && ok "under $FROM: gik.exceedance over 3 members gives all 4 probabilities" ||
  not_ok "under $FROM: gik.exceedance over 3 members gives all 4 probabilities (members, distinct values: $got)"
echo "# $(wc -l <"$work/columns") tables and views, $(awk '{s += $2} END {print s}' "$work/rows.before") rows"

# ---- the update
if q "$OLD" 2>"$work/update.err" -c "ALTER EXTENSION pg_gik UPDATE" -c "ALTER EXTENSION pg_gik_postgis UPDATE"; then
  ok "ALTER EXTENSION pg_gik UPDATE, ALTER EXTENSION pg_gik_postgis UPDATE"
else
  not_ok "ALTER EXTENSION ... UPDATE"; sed 's/^/#   /' "$work/update.err"; finish
fi
sed 's/^/#   /' "$work/update.err"
grep -q 'WARNING:  1 file series name server files, e.g. "upgrade_local/files"; their author is now recorded as' "$work/update.err" &&
  ! grep -q shared_preload_libraries "$work/update.err" &&
  ok "the update names the file series that name server files, and only that" ||
  not_ok "the update warns of the one file series that names server files (upgrade_local/files), and of nothing else"
got=$(q "$OLD" -c "SELECT string_agg(extname || ' ' || extversion, ', ' ORDER BY extname) FROM pg_extension WHERE extname LIKE 'pg_gik%'")
[ "$got" = "pg_gik $TO, pg_gik_postgis $TO" ] && ok "both extensions are at $TO" || not_ok "both extensions at $TO (got: $got)"

# ---- (a) the catalog is intact and readable
rows >"$work/rows.after"
same "every table's and view's rows are unchanged (0.1.0 columns)" "$work/rows.before" "$work/rows.after"
got=$(q "$OLD" -c "SELECT count(*) FILTER (WHERE grib_etag IS NULL AND grib_last_modified IS NULL AND index_last_modified IS NULL
                                                AND index_older IS NULL), count(*) FROM gik.file")
[ "${got%|*}" = "${got#*|}" ] && [ "${got#*|}" -gt 0 ] && ok "0.1.0 files have NULL GRIB identity and index date ($got)" ||
  not_ok "0.1.0 files have NULL GRIB identity and index date (NULL|all: $got)"
got=$(q "$OLD" -c "SELECT count(*) FILTER (WHERE defined_by = current_user), count(*) FROM gik.dataset_source")
[ "${got%|*}" = "${got#*|}" ] && ok "0.1.0 file series are defined_by the updating role ($got)" ||
  not_ok "0.1.0 file series defined_by the updating role (theirs|all: $got)"
REFS="SELECT url, byte_offset, byte_length, dataset FROM (
        SELECT c.*, row_number() OVER (PARTITION BY dataset ORDER BY step_end DESC, member) AS k FROM gik.chunk_ref c
        WHERE init_time = '2025-10-01 00:00+00' AND dataset IN ('gefs_0p25', 'ecmwf_ens_0p25', 'upgrade_imported')) s
      WHERE k <= 2 ORDER BY dataset, k"
py_check "" decode_check.py "$OLD" "$HTTP" "$REFS"

# ---- (b) the schema equals a fresh install
if q "$NEW" 2>"$work/fresh.err" -c "SET client_min_messages = warning" -c "CREATE EXTENSION pg_gik" \
     -c "CREATE EXTENSION postgis_raster CASCADE" -c "CREATE EXTENSION pg_gik_postgis"; then
  ok "fresh $TO install in $NEW"
else
  not_ok "fresh $TO install"; sed 's/^/#   /' "$work/fresh.err"; finish
fi
# pg_dump --binary-upgrade is the one mode that dumps extension members: the full DDL of every
# object, comments, ACLs and initial privileges, extension membership and config tables. Normalised:
#  - binary_upgrade_set_next_* lines: OIDs, relfilenodes and attribute LSNs a database assigns;
#  - relfrozenxid/relminmxid values and the TOAST table OIDs they are set for (transaction ids);
#  - in binary_upgrade_create_empty_extension, config-table OIDs and the order of the required
#    extensions (pg_dump lists them in pg_depend's physical order); both are compared below by name;
#  - sequence positions (setval: how many rows the upgraded catalog has made, data not schema);
#  - pg_dump's \restrict key (random per run);
#  - relations in gik that belong to no extension are left out: the chunk_pack partitions that
#    ingestion made in the upgraded database (the fresh one has no runs).
dump() {
  local db=$1 excl=()
  while read -r t; do excl+=(--exclude-table="$t"); done < <(q "$db" <<'SQL'
SELECT c.oid::regclass FROM pg_class c
WHERE c.relnamespace = 'gik'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e');
SQL
)
  pg_dump --binary-upgrade --schema-only "${excl[@]}" "$db"
}
for db in "$OLD" "$NEW"; do
  dump "$db" 2>>"$work/dump.err" | grep -Ev '^(SELECT pg_catalog\.binary_upgrade_set_next_|SELECT pg_catalog\.setval\(|\\(un)?restrict )' |
    perl -pe 'if (/^SELECT pg_catalog\.binary_upgrade_create_empty_extension/) {
                s/\x27\{[0-9,]+\}\x27/\x27{OIDS}\x27/; s/ARRAY\[([^\]]+)\]/"ARRAY[" . join(",", sort split(m{,}, $1)) . "]"/e }' |
    sed -E -e "s/^SET relfrozenxid = '[0-9]+', relminmxid = '[0-9]+'$/SET relfrozenxid = XID, relminmxid = XID/" \
      -e "s/^WHERE oid = '[0-9]+';$/WHERE oid = OID;/" >"$work/schema.$db"
done
[ -s "$work/dump.err" ] && { not_ok "pg_dump"; sed 's/^/#   /' "$work/dump.err"; }
same "pg_dump --binary-upgrade --schema-only: upgraded = fresh ($(wc -l <"$work/schema.$NEW") lines)" \
  "$work/schema.$NEW" "$work/schema.$OLD"
# The same from the catalogs, independently of pg_dump: each member of each extension, the config
# tables with their filters, each gik routine's definition, settings and ACL, the columns in order
# (SELECT *, row types and positional INSERTs depend on it) with types, defaults, NOT NULL, storage
# and stored missing values, constraints, indexes, triggers, views, comments and initial privileges.
catalog() {
  q "$1" <<'SQL'
SELECT e.extname, e.extversion, e.extrelocatable, e.extconfig::regclass[]::text, e.extcondition FROM pg_extension e ORDER BY 1;
SELECT e.extname, r.extname, d.deptype FROM pg_depend d
JOIN pg_extension e ON d.classid = 'pg_extension'::regclass AND d.objid = e.oid
JOIN pg_extension r ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = r.oid ORDER BY 1, 2;
SELECT e.extname, pg_describe_object(d.classid, d.objid, d.objsubid)
FROM pg_depend d JOIN pg_extension e ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid
WHERE d.deptype = 'e' ORDER BY 1, 2;
SELECT p.oid::regprocedure, CASE WHEN p.prokind = 'a' THEN (SELECT row(a.*)::text FROM (
           SELECT aggkind, aggnumdirectargs, aggtransfn, aggfinalfn, aggcombinefn, aggserialfn, aggdeserialfn,
                  aggfinalextra, aggfinalmodify, aggtranstype::regtype, aggtransspace, agginitval
           FROM pg_aggregate WHERE aggfnoid = p.oid) a) ELSE pg_get_functiondef(p.oid) END, p.proacl, p.proconfig, p.provolatile, p.proisstrict, p.proparallel,
       p.prosecdef, p.procost, p.prorows
FROM pg_proc p WHERE p.pronamespace = 'gik'::regnamespace ORDER BY p.oid::regprocedure::text;
SELECT c.oid::regclass, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attgenerated,
       pg_get_expr(ad.adbin, ad.adrelid), a.attstorage, a.atthasmissing
FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
WHERE c.relnamespace = 'gik'::regnamespace
  AND EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY c.oid::regclass::text, a.attnum;
SELECT c.conrelid::regclass, c.contypid::regtype, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c
WHERE c.connamespace = 'gik'::regnamespace AND (c.conrelid = 0 OR EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.conrelid AND d.deptype = 'e'))
ORDER BY c.conrelid::regclass::text, c.contypid::regtype::text, c.conname;
SELECT i.indrelid::regclass, pg_get_indexdef(i.indexrelid) FROM pg_index i
WHERE EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indrelid AND d.deptype = 'e') ORDER BY i.indrelid::regclass::text, 2;
SELECT t.tgrelid::regclass, pg_get_triggerdef(t.oid) FROM pg_trigger t
WHERE NOT t.tgisinternal AND EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = t.tgrelid AND d.deptype = 'e') ORDER BY t.tgrelid::regclass::text, 2;
SELECT c.oid::regclass, pg_get_viewdef(c.oid) FROM pg_class c
WHERE c.relkind IN ('v', 'm') AND EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e') ORDER BY c.oid::regclass::text;
SELECT pg_describe_object(ds.classoid, ds.objoid, ds.objsubid), ds.description FROM pg_description ds
WHERE EXISTS (SELECT FROM pg_depend d WHERE d.classid = ds.classoid AND d.objid = ds.objoid AND d.deptype = 'e') ORDER BY 1, 2;
SELECT i.privtype, pg_describe_object(i.classoid, i.objoid, i.objsubid), i.initprivs FROM pg_init_privs i
WHERE pg_describe_object(i.classoid, i.objoid, i.objsubid) ~ ' gik\.|^schema gik$' ORDER BY 2, 1;
SQL
}
if catalog "$NEW" >"$work/catalog.$NEW" 2>"$work/catalog.err" && catalog "$OLD" >"$work/catalog.$OLD" 2>>"$work/catalog.err"; then
  same "catalogs: extension members, config tables, routines, columns, constraints, indexes, triggers, views, comments, initial privileges: upgraded = fresh" \
    "$work/catalog.$NEW" "$work/catalog.$OLD"
else
  not_ok "catalog queries"; sed 's/^/#   /' "$work/catalog.err"
fi
# The rows a fresh install seeds (datasets, file series, ...) are in the upgraded catalog too, but for
# the columns that record when a row was made (default now()): the upgraded rows were made by 0.1.0.
# Identity columns are numbered in insertion order, so a dataset is named rather than numbered.
MEMBERS="SELECT c.oid::regclass, string_agg(CASE WHEN a.attname = 'dataset_id' AND c.oid <> 'gik.dataset'::regclass
    THEN '(SELECT d.name FROM gik.dataset d WHERE d.dataset_id = x.dataset_id)' ELSE 'x.' || quote_ident(a.attname) END,
    ',' ORDER BY a.attnum) FROM pg_class c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity = ''
  LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
  WHERE c.relnamespace = 'gik'::regnamespace AND c.relkind = 'r' AND pg_get_expr(ad.adbin, ad.adrelid) IS DISTINCT FROM 'now()'
  AND EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
  GROUP BY c.oid ORDER BY c.oid::regclass::text"
: >"$work/seed.missing"
seeded=()
while read -r rel cols; do
  q "$NEW" -c "SELECT t::text FROM (SELECT $cols FROM $rel x) t" | LC_ALL=C sort >"$work/seed.new"
  q "$OLD" -c "SELECT t::text FROM (SELECT $cols FROM $rel x) t" | LC_ALL=C sort >"$work/seed.old"
  [ -s "$work/seed.new" ] && seeded+=("$rel:$(wc -l <"$work/seed.new")")
  LC_ALL=C comm -23 "$work/seed.new" "$work/seed.old" | sed "s/^/$rel: /" >>"$work/seed.missing"
done < <(q "$NEW" -F ' ' -c "$MEMBERS")
if [ -s "$work/seed.missing" ] || [ ${#seeded[@]} -eq 0 ]; then
  not_ok "the rows a fresh install seeds are in the upgraded catalog"; sed 's/^/#   missing /' "$work/seed.missing"
else
  ok "the rows a fresh install seeds are in the upgraded catalog (${seeded[*]})"
fi

# ---- (c) the functions work after the update
got=$(q "$OLD" -c "SET client_min_messages = warning" -c "SELECT status || ' ' || files_found || ' ' || refs FROM gik.ingest_run(
        'gefs_0p25', '2025-10-02 00:00+00', variables => '{APCP}', members => '{0,1,2}', steps => gik.step_list('0-24/3'))" 2>&1)
[[ $got == "complete 27 "* ]] && ok "a new run ingests after the update ($got)" || not_ok "a new run ingests after the update: $got"
got=$(q "$OLD" -c "SELECT count(*) FILTER (WHERE f.grib_etag IS NOT NULL AND f.grib_last_modified IS NOT NULL AND f.size > 0
                                            AND f.index_last_modified IS NOT NULL AND NOT f.index_older), count(*)
                     FROM gik.file f JOIN gik.run r USING (run_id) WHERE r.init_time = '2025-10-02 00:00+00'")
[ "${got%|*}" = "${got#*|}" ] && [ "${got#*|}" -gt 0 ] && ok "its files record GRIB identity and index date ($got)" ||
  not_ok "its files record GRIB identity and index date (recorded|all: $got)"
before=$(q "$OLD" -c "SELECT version FROM gik.run JOIN gik.dataset USING (dataset_id) WHERE name = 'gefs_0p25' AND init_time = '2025-10-01 00:00+00'")
got=$(q "$OLD" -c "SET client_min_messages = warning" -c "SELECT version || ' ' || status FROM gik.ingest_run($GEFS)" 2>&1)
[ "$got" = "$before complete" ] && ok "re-ingesting a 0.1.0 run makes no new version (version $before)" ||
  not_ok "re-ingesting a 0.1.0 run makes no new version (was $before, got: $got)"
# an imported file's index_md5 (the MD5 of its references) is what gik.store_run compares on a re-import
before=$(q "$OLD" -c "SELECT version FROM gik.run JOIN gik.dataset USING (dataset_id) WHERE name = 'upgrade_imported'")
got=$(q "$OLD" -c "SET client_min_messages = warning" -c "SELECT string_agg(version::text, ' ') FROM gik.import_kerchunk(
        'upgrade_imported', gik.manifest_kerchunk('gefs_0p25', '2025-10-01 00:00+00'))" 2>&1)
[ "$got" = "$before" ] && ok "re-importing a 0.1.0 import makes no new version (version $before)" ||
  not_ok "re-importing a 0.1.0 import makes no new version (was $before, got: $got)"
q "$OLD" -c "$EXC" >"$work/exceedance.after" 2>&1
[ -s "$work/exceedance.before" ] && same "gik.exceedance of the 0.1.0 run is what 0.1.0 computed ($(wc -l <"$work/exceedance.before") thresholds)" \
  "$work/exceedance.before" "$work/exceedance.after" || not_ok "gik.exceedance gave rows before the update"
py_check "" exceedance_check.py "$OLD" "$HTTP" 20251001 20 -20 60 20 0.1,1,5,25
REFS="SELECT url, byte_offset, byte_length, dataset FROM gik.chunk_ref WHERE dataset = 'gefs_0p25'
      AND init_time = '2025-10-02 00:00+00' ORDER BY step_end DESC, member LIMIT 3"
py_check "new run: " decode_check.py "$OLD" "$HTTP" "$REFS"

dropdb --if-exists "$NEW"
[ "$failed" -eq 0 ] && dropdb --if-exists "$OLD"
finish
