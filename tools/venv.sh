#!/usr/bin/env bash
# Create or update the project's Python virtual environment (.venv) from python/requirements.lock,
# with Debian's /usr/bin/python3 only, and print the path of the venv's python on stdout.
# A no-op when the lock's hash matches the one stored in the venv. Everything else goes to stderr.
# Usage: tools/venv.sh [--rebuild]      GIK_VENV overrides the venv's directory.
# Typical use: PY=$(tools/venv.sh) && "$PY" -m pytest ...
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
VENV=${GIK_VENV:-$TOP/.venv}
LOCK=$TOP/python/requirements.lock
BASE=/usr/bin/python3
STAMP=$VENV/.gik-lock-sha256
# Written into the venv's site-packages: Python's site module runs it at every start of the venv's
# python. It makes eccodes (cffi bindings from PyPI) load Debian's libeccodes, the library the
# extension links, instead of the eccodeslib/eckitlib wheels that eccodes and herbie-data pull in:
# those bundle OpenLDAP 2.4 and OpenSSL 1.1, load them RTLD_GLOBAL, and the process then dies at exit
# (double free in libldap's destructor) once psycopg2, psycopg or pyproj is imported after eccodes.
# Both variables are defaults: set ECCODES_PYTHON_USE_FINDLIBS=0 to use the bundled ecCodes.
PTH_NAME=gik-eccodes.pth
PTH_TEXT='import os; os.environ.setdefault("ECCODES_PYTHON_USE_FINDLIBS", "1"); os.environ.setdefault("FINDLIBS_DISABLE_PACKAGE", "yes")'
rebuild=0
[ "${1:-}" = "--rebuild" ] && rebuild=1

[ -x "$BASE" ] || { echo "venv.sh: $BASE is missing (tools/install-deps.sh installs python3)" >&2; exit 1; }
[ -f "$LOCK" ] || { echo "venv.sh: $LOCK is missing" >&2; exit 1; }

# The stamp covers the lock, the .pth line and the base interpreter's minor version (compiled wheels
# depend on it).
want=$( { cat "$LOCK"; echo "$PTH_TEXT"; "$BASE" -c 'import sys; print(sys.implementation.cache_tag)'; } | sha256sum | cut -d' ' -f1)

up_to_date() {
  [ "$rebuild" -eq 0 ] && [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]
}

if up_to_date; then
  echo "$VENV/bin/python"
  exit 0
fi

# One run at a time per venv (run_tests.sh and a benchmark may both call this).
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lockfile"
flock 9
if up_to_date; then  # another run finished it while this one waited
  echo "$VENV/bin/python"
  exit 0
fi

# A venv is reused only when it was made by $BASE; otherwise (or on --rebuild) it is made anew.
sound=0
if [ "$rebuild" -eq 0 ] && [ -x "$VENV/bin/python" ] && [ -f "$VENV/pyvenv.cfg" ] \
   && grep -qx 'home = /usr/bin' "$VENV/pyvenv.cfg" \
   && [ "$("$VENV/bin/python" -c 'import sys; print(sys.implementation.cache_tag)' 2>/dev/null)" = \
        "$("$BASE" -c 'import sys; print(sys.implementation.cache_tag)')" ]; then
  sound=1
fi
rm -f "$STAMP"
if [ "$sound" -eq 0 ]; then
  echo "venv.sh: creating $VENV with $BASE" >&2
  rm -rf "$VENV"
  "$BASE" -m venv "$VENV" >&2 \
    || { echo "venv.sh: $BASE -m venv failed (it needs Debian's python3-venv; tools/install-deps.sh installs it)" >&2; exit 1; }
fi

echo "venv.sh: installing $LOCK into $VENV (about 1.5 min and 1.1 GB when new)" >&2
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# Hashes for every package and wheels only: nothing is built, nothing unpinned comes in.
"$VENV/bin/python" -m pip install -q --require-hashes --only-binary :all: -r "$LOCK" >&2

# Remove what the lock no longer lists (pip and setuptools belong to the venv itself).
"$VENV/bin/python" - "$LOCK" >&2 <<'PY'
import re, subprocess, sys
from importlib import metadata
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
locked = {norm(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", open(sys.argv[1]).read(), re.M)}
keep = locked | {"pip", "setuptools", "wheel"}
stray = sorted({norm(d.metadata["Name"]) for d in metadata.distributions()} - keep)
if stray:
    print("venv.sh: removing", " ".join(stray))
    subprocess.check_call([sys.executable, "-m", "pip", "uninstall", "-q", "-y", *stray])
PY
"$VENV/bin/python" -m pip check >&2
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$PTH_TEXT" >"$site/$PTH_NAME"
"$VENV/bin/python" -W ignore -c 'import eccodes, sys; v = eccodes.codes_get_api_version(); print("venv.sh: ecCodes", v, file=sys.stderr)' >&2

echo "$want" >"$STAMP"
echo "$VENV/bin/python"
