#!/usr/bin/env bash
# Install the Debian 12 packages pg_gik needs to build, test, benchmark and run the demo
# (python3-matplotlib: tools/product_map.py draws the product maps on Debian's Python).
# Runs apt-get only when something is missing; uses sudo when not root.
# The test suite's Python is the project venv (tools/venv.sh: CPython 3.12 from pyenv, packages from
# python/requirements.lock); it needs libeccodes (its eccodes bindings load Debian's) and gdal-bin
# (test_postgis.py runs GDAL's tools). Debian's own Python packages serve the benchmarks and the demo
# that still run /usr/bin/python3 (bench/decode/peers.py needs python3-gdal in process, which exists
# only for Debian's 3.11).
set -euo pipefail

PACKAGES=(
  build-essential pkg-config
  postgresql-15 postgresql-server-dev-15 postgresql-15-postgis-3 postgresql-15-cron
  libeccodes-dev libeccodes-tools libjansson-dev libcurl4-gnutls-dev libseccomp-dev
  nginx
  gdal-bin
  python3 python3-numpy python3-eccodes python3-cfgrib python3-xarray python3-gdal python3-pandas python3-psycopg2
  python3-matplotlib
  libipc-run-perl
  clang-14 libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "Installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q "${missing[@]}"
