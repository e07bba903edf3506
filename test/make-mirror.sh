#!/usr/bin/env bash
# Build the loopback mirror the tests read: generated GEFS and ECMWF runs (real layouts and index formats)
# plus the real fixtures under fixtures/. Usage: test/make-mirror.sh DIR
# GIK_PY: the Python to run the generator with (default: the project venv's, from tools/venv.sh).
set -euo pipefail
out=${1:?mirror dir}
here=$(cd "$(dirname "$0")/.." && pwd)
py=${GIK_PY:-$("$here/tools/venv.sh")}
gen() { "$py" "$here/tools/gen_mirror.py" --out "$out" --jobs 2 "$@"; }

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
# Known-answer rain (tools/gen_scenarios): exact windows, a double-count trap, an ECMWF dip that must clip to 0.
gen gefs --date 20251002 --cycle 0 --members 0-4 --steps 0-30/3 --vars apcp --grid 1p0 --rain-grid 1p0 \
  --scenario "$here/tools/gen_scenarios/basic.json"
gen ecmwf --date 20251002 --cycle 0 --members 0-4 --steps 0-30/3 --grid 1p0 --params tp \
  --scenario "$here/tools/gen_scenarios/basic.json"
# Exceedance ladder (member m gets 5m mm over 0-24 h): GEFS 31 members with one file missing, ECMWF 51 members.
gen gefs --date 20251003 --cycle 0 --members 0-30 --steps 0-24/6 --vars apcp --grid 1p0 --rain-grid 1p0 \
  --scenario "$here/tools/gen_scenarios/exceedance.json" --missing 7:12
gen ecmwf --date 20251003 --cycle 0 --members 0-50 --steps 0,24 --grid 1p0 --params tp \
  --scenario "$here/tools/gen_scenarios/exceedance.json"
chmod -R a+rX "$out"
