#!/usr/bin/env bash
# Point the PostgreSQL server that psql reaches (PG* environment) at a loopback mirror:
# s3:// goes to HTTP_BASE, which with the NOAA and ECMWF buckets and any further prefixes is allowed,
# and 127.0.0.1 may be reached. Usage: test/support/point-at-mirror.sh HTTP_BASE [PREFIX ...]
# GIK_LIBRARY names the library that defines the settings (default pg_gik; bench/baseline.sh: pg_gik_base).
set -euo pipefail
base=${1:?HTTP base URL, e.g. http://127.0.0.1:18765}; shift
prefixes="s3://noaa-gefs-pds/,s3://ecmwf-forecasts/,$base/"
for p in "$@"; do prefixes="$prefixes,$p"; done
psql -qX -v ON_ERROR_STOP=1 -v base="$base" -v prefixes="$prefixes" -v lib="${GIK_LIBRARY:-pg_gik}" <<'SQL'
LOAD :'lib';
ALTER SYSTEM SET gik.s3_endpoint = :'base';
ALTER SYSTEM SET gik.allowed_url_prefixes = :'prefixes';
ALTER SYSTEM SET gik.allowed_addresses = '127.0.0.1';
SELECT pg_reload_conf();
SQL
sleep 0.5
