#!/usr/bin/env bash
# Build the loopback mirror the tests read: generated GEFS and ECMWF runs (real layouts and index formats)
# plus the real fixtures under fixtures/. Usage: test/make-mirror.sh DIR
set -euo pipefail
out=${1:?mirror dir}
here=$(cd "$(dirname "$0")/.." && pwd)
gen() { /usr/bin/python3 "$here/tools/gen_mirror.py" --out "$out" --jobs 2 "$@"; }

mkdir -p "$out"
# GEFS: 3 members x 9 steps, full pgrb2s inventory (1 degree fields, 0.25 degree APCP).
gen gefs --date 20251001 --cycle 0 --members 0-2 --steps 0-24/3 --vars full --grid 1p0 --rain-grid 0p25
# ECMWF ENS before the 50r1 cutover (control as cf in enfo-ef) and after it (control in oper-fc).
gen ecmwf --date 20251001 --cycle 0 --members 0-3 --steps 0-24/6 --grid 1p0 --params tp,2t,msl
gen ecmwf --date 20260601 --cycle 12 --members 0-3 --steps 0-12/6 --grid 1p0 --params tp,2t --shuffle-index
# Real fixtures, served as they are.
mkdir -p "$out/fixtures"
cp -r "$here/test/data/." "$out/fixtures/"
chmod -R a+rX "$out"
