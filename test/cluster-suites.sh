#!/usr/bin/env bash
# Suites that share one throwaway cluster (run by run_tests.sh under pg_virtualenv): pg_regress, then pytest.
# GIK_PY: the Python that runs pytest (run_tests.sh sets it to the project venv's; default: tools/venv.sh).
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
  # The pytest directories of the suite, one session each: each has its own conftest.py, which its
  # modules import by name (two in one session would shadow each other). run_tests.sh adds up the
  # "== pytest DIR" sessions' summary lines.
  py_dirs=(test/py python/test)
  py=${GIK_PY:-$("$SRC/tools/venv.sh")}
  for dir in "${py_dirs[@]}"; do
    echo "== pytest $dir ($py)"
    # skips fail unless test/expected-skips.txt names them (test/py's conftest loads the plugin itself)
    plugin=(); [ "$dir" = test/py ] || plugin=(-p expected_skips)
    PYTHONPATH="$SRC/test/py${PYTHONPATH:+:$PYTHONPATH}" "$py" -P -m pytest -p no:cacheprovider -q -rfE "${plugin[@]}" "$dir" || status=1
  done
fi
exit $status
