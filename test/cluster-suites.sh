#!/usr/bin/env bash
# Suites that share one throwaway cluster (run by run_tests.sh under pg_virtualenv): pg_regress, then pytest.
set -uo pipefail
cd "$SRC"
what=${1:-all}
status=0
# Point s3:// at the loopback mirror and allow loopback addresses, for every session of this cluster.
"$SRC/tools/point-at-mirror.sh" "$GIK_HTTP" "$GIK_FAULT/"
if [ "$what" = all ] || [ "$what" = regress ] || [[ " $* " == *" regress "* ]]; then
  rm -rf test/results test/regression.diffs
  make -s installcheck || status=1
fi
if [ "$what" = all ] || [ "$what" = py ] || [[ " $* " == *" py "* ]]; then
  /usr/bin/python3 -m pytest -p no:cacheprovider -q -rfE test/py || status=1
fi
exit $status
