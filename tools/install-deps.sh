#!/usr/bin/env bash
# Install the Debian 12 packages pg_gik needs to build, test, benchmark and run the demo.
# Runs apt-get only when something is missing; uses sudo when not root.
set -euo pipefail

PACKAGES=(
  build-essential pkg-config
  postgresql-15 postgresql-server-dev-15 postgresql-15-postgis-3 postgresql-15-cron
  libeccodes-dev libeccodes-tools libjansson-dev libcurl4-gnutls-dev libseccomp-dev
  nginx
  python3 python3-venv python3-numpy python3-eccodes python3-cfgrib python3-xarray python3-gdal gdal-bin
  python3-fsspec python3-zarr python3-pandas python3-psycopg2 python3-pytest python3-requests python3-aiohttp
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
