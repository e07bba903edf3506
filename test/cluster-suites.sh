#!/usr/bin/env bash
# Suites that share one throwaway cluster (run by run_tests.sh under pg_virtualenv): pg_regress, then pytest.
set -uo pipefail
cd "$SRC"
what=${1:-all}
status=0
# Point s3:// at the loopback mirror and allow loopback addresses, for every session of this cluster.
psql -qX -v ON_ERROR_STOP=1 <<SQL
LOAD 'pg_gik';
ALTER SYSTEM SET gik.s3_endpoint = '$GIK_HTTP';
ALTER SYSTEM SET gik.allowed_url_prefixes = 's3://noaa-gefs-pds/,s3://ecmwf-forecasts/,$GIK_HTTP/,$GIK_FAULT/';
ALTER SYSTEM SET gik.allowed_addresses = '127.0.0.1';
SELECT pg_reload_conf();
SQL
if [ "$what" = all ] || [ "$what" = regress ] || [[ " $* " == *" regress "* ]]; then
  rm -rf test/results test/regression.diffs
  make -s installcheck || status=1
fi
if [ "$what" = all ] || [ "$what" = py ] || [[ " $* " == *" py "* ]]; then
  /usr/bin/python3 -m pytest -p no:cacheprovider -q -rfE test/py || status=1
fi
exit $status
