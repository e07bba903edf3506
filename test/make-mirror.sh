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
# Real index files at the paths of the built-in datasets (test/py/test_datasets.py). Their GRIB files are
# sparse stand-ins: only their size is read, for the length of the last message (last offset + 100 kB).
real_index() { # fixture dest
  mkdir -p "$(dirname "$out/$2")"
  cp "$here/test/data/$1" "$out/$2"
  case $2 in
    *.idx) truncate -s $(( $(tail -1 "$out/$2" | cut -d: -f2) + 100000 )) "$out/${2%.idx}" ;;
  esac
}
real_index dynamical/hrrr.t00z.wrfsfcf00.grib2.idx noaa-hrrr-bdp-pds/hrrr.20250801/conus/hrrr.t00z.wrfsfcf00.grib2.idx
real_index kerchunk/hrrr.t01z.wrfsfcf00.grib2.idx noaa-hrrr-bdp-pds/hrrr.20221014/conus/hrrr.t01z.wrfsfcf00.grib2.idx
real_index kerchunk/hrrr.t01z.wrfsubhf00.grib2.idx noaa-hrrr-bdp-pds/hrrr.20221014/conus/hrrr.t01z.wrfsubhf00.grib2.idx
real_index dynamical/gfs.t00z.pgrb2.0p25.f000.idx noaa-gfs-bdp-pds/gfs.20250801/00/atmos/gfs.t00z.pgrb2.0p25.f000.idx
real_index kerchunk/gfs.t00z.pgrb2.0p25.f000.idx noaa-gfs-bdp-pds/gfs.20221014/00/atmos/gfs.t00z.pgrb2.0p25.f000.idx
real_index kerchunk/gfs.t06z.pgrb2.0p25.f021.idx noaa-gfs-bdp-pds/gfs.20221014/06/atmos/gfs.t06z.pgrb2.0p25.f021.idx
real_index dynamical/gec00.t00z.pgrb2a.0p50.f432.idx noaa-gefs-pds/gefs.20250801/00/atmos/pgrb2ap5/gec00.t00z.pgrb2a.0p50.f432.idx
real_index dynamical/gep01.t00z.pgrb2s.0p25.f015.idx noaa-gefs-pds/gefs.20250801/00/atmos/pgrb2sp25/gep01.t00z.pgrb2s.0p25.f015.idx
real_index dynamical/aifs_single_20250301_00z_0h.index ecmwf-forecasts/20250301/00z/aifs-single/0p25/oper/20250301000000-0h-oper-fc.index
real_index dynamical/aifs_single_20250301_00z_6h.index ecmwf-forecasts/20250301/00z/aifs-single/0p25/oper/20250301000000-6h-oper-fc.index
chmod -R a+rX "$out"
