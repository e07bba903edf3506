#!/usr/bin/env bash
# Create or update the project's Python virtual environment (.venv at the repository's top) from
# python/requirements.lock, with a CPython 3.12 base interpreter, install the project's own Python package
# (python/, editable) into it, and print the path of the venv's python on stdout. A no-op when the stamp in
# the venv matches the lock, python/pyproject.toml, the .pth line and the base interpreter. Everything else
# goes to stderr.
# Usage: tools/venv.sh [--rebuild]
#   GIK_PYTHON  the base interpreter (must be CPython 3.12); default: the newest
#               /root/.pyenv/versions/3.12.*/bin/python3.12, then python3.12 on PATH, then
#               /usr/local/bin/python3.12, /usr/bin/python3.12
#   GIK_VENV    the venv's directory (default: .venv at the repository's top)
# Typical use: PY=$(tools/venv.sh) && "$PY" -m pytest ...
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
VENV=${GIK_VENV:-$TOP/.venv}
LOCK=$TOP/python/requirements.lock
PYPROJECT=$TOP/python/pyproject.toml
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

[ -f "$LOCK" ] || { echo "venv.sh: $LOCK is missing" >&2; exit 1; }

# What a candidate base interpreter is: "<real executable> <version>", printed only when it is CPython
# 3.12 with the modules a venv and pip need (venv/ensurepip, ssl for HTTPS, ctypes, lzma, sqlite3).
# The real executable (sys.executable, symlinks resolved) is taken, so a pyenv shim on PATH or a
# python3 -> python3.12 link names the same interpreter as its target.
probe() {
  "$1" -I -c '
import os, sys, platform
assert sys.implementation.name == "cpython" and sys.version_info[:2] == (3, 12), platform.python_version()
import venv, ensurepip, ssl, ctypes, lzma, sqlite3
print(os.path.realpath(sys.executable), platform.python_version())' 2>/dev/null
}
# Why a candidate is not usable, in a few words (its version and its last error line).
why() {
  "$1" -I -c 'import platform, sys; print(sys.implementation.name, platform.python_version()); import venv, ensurepip, ssl, ctypes, lzma, sqlite3' 2>&1 \
    | awk 'NF' | sed -n '1p;$p' | uniq | paste -sd ';' | cut -c1-200 || true
}

NEED="Python 3.12 (CPython, with venv, ssl, ctypes, lzma and sqlite3) is required"
if [ -n "${GIK_PYTHON:-}" ]; then
  info=$(probe "$GIK_PYTHON") \
    || { echo "venv.sh: GIK_PYTHON=$GIK_PYTHON is not usable ($(why "$GIK_PYTHON")): $NEED" >&2; exit 1; }
else
  info=
  # pyenv's 3.12.x, newest first; then the usual places
  for cand in $(ls -d /root/.pyenv/versions/3.12.*/bin/python3.12 2>/dev/null | sort -rV) \
              "$(command -v python3.12 || true)" /usr/local/bin/python3.12 /usr/bin/python3.12; do
    [ -n "$cand" ] && [ -x "$cand" ] || continue
    if info=$(probe "$cand"); then break; fi
    echo "venv.sh: skipping $cand ($(why "$cand"))" >&2
    info=
  done
  [ -n "$info" ] || { echo "venv.sh: no base interpreter found: $NEED." \
    "Install one (e.g. pyenv install 3.12) and/or point GIK_PYTHON at it: GIK_PYTHON=/path/to/python3.12 tools/venv.sh" >&2; exit 1; }
fi
BASE=${info% *}
BASE_VERSION=${info##* }

# The stamp covers the lock, the package's pyproject.toml (its console scripts), the .pth line and the base
# interpreter (path and full version): any change of interpreter makes a new venv, a change of lock,
# pyproject or .pth line updates it in place. The package's sources need nothing: it is installed editable.
want="lock+pyproject+pth $( { cat "$LOCK" "$PYPROJECT"; echo "$PTH_TEXT"; } | sha256sum | cut -d' ' -f1)
python $BASE_VERSION $BASE"

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

# A venv is reused only when it was made by this very interpreter (same home and full version);
# otherwise (or on --rebuild) it is made anew.
sound=0
if [ "$rebuild" -eq 0 ] && [ -x "$VENV/bin/python" ] && [ -f "$VENV/pyvenv.cfg" ] \
   && grep -qxF "home = $(dirname "$BASE")" "$VENV/pyvenv.cfg" \
   && [ "$("$VENV/bin/python" -I -c 'import platform; print(platform.python_version())' 2>/dev/null)" = "$BASE_VERSION" ]; then
  sound=1
fi
rm -f "$STAMP"
if [ "$sound" -eq 0 ]; then
  echo "venv.sh: creating $VENV with $BASE (Python $BASE_VERSION)" >&2
  rm -rf "$VENV"
  "$BASE" -m venv "$VENV" >&2 || { echo "venv.sh: $BASE -m venv failed" >&2; exit 1; }
fi

echo "venv.sh: installing $LOCK into $VENV (about 1.5 min and 1 GB when new)" >&2
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# Hashes for every package and wheels only: nothing is built, nothing unpinned comes in. --no-compile:
# pip would byte-compile all ~1 GB serially (about 90 of 160 s); Python compiles what is imported instead.
"$VENV/bin/python" -m pip install -q --no-compile --require-hashes --only-binary :all: -r "$LOCK" >&2

# Remove what the lock no longer lists (pip and setuptools belong to the venv itself).
"$VENV/bin/python" - "$LOCK" >&2 <<'PY'
import re, subprocess, sys
from importlib import metadata
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
locked = {norm(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", open(sys.argv[1]).read(), re.M)}
keep = locked | {"pip", "setuptools", "wheel", "pg-gik"}
stray = sorted({norm(d.metadata["Name"]) for d in metadata.distributions()} - keep)
if stray:
    print("venv.sh: removing", " ".join(stray))
    subprocess.check_call([sys.executable, "-m", "pip", "uninstall", "-q", "-y", *stray])
PY
# The project's package (python/, pure Python), editable, built by the locked setuptools: no index, no
# build isolation, no dependencies (the lock has them all).
"$VENV/bin/python" -m pip install -q --no-compile --no-deps --no-build-isolation --no-index -e "$TOP/python" >&2
"$VENV/bin/python" -m pip check >&2
site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$PTH_TEXT" >"$site/$PTH_NAME"
"$VENV/bin/python" -W ignore -c 'import eccodes, sys; v = eccodes.codes_get_api_version(); print("venv.sh: ecCodes", v, file=sys.stderr)' >&2

echo "$want" >"$STAMP"
echo "$VENV/bin/python"
