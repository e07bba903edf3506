#!/usr/bin/env bash
# Write the install scripts of a released version as that release's build made them:
# pg_gik--VER.sql is the release's sql/pg_gik/*.sql parts in name order (its Makefile's rule),
# pg_gik_postgis--VER.sql is the release's file. The upgrade test installs these frozen copies.
#   test/upgrade/freeze.sh REV VER OUTDIR   e.g. test/upgrade/freeze.sh v0.1.0 0.1.0 test/upgrade
set -euo pipefail
rev=${1:?git revision of the release, e.g. v0.1.0}; ver=${2:?version, e.g. 0.1.0}; out=${3:?output directory}
cd "$(dirname "$0")/../.."
git rev-parse -q --verify "$rev^{commit}" >/dev/null || { echo "freeze.sh: no commit $rev in this clone" >&2; exit 1; }
mkdir -p "$out"
git ls-tree --name-only "$rev" sql/pg_gik/ | grep '\.sql$' | LC_ALL=C sort |
  while read -r part; do git show "$rev:$part"; done >"$out/pg_gik--$ver.sql"
git show "$rev:sql/pg_gik_postgis--$ver.sql" >"$out/pg_gik_postgis--$ver.sql"
