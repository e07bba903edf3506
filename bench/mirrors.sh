#!/usr/bin/env bash
# The full-run mirrors the benchmarks share, generated once into a directory (tools/gen_mirror.py, real layouts
# and inventories): bench/mirrors.sh gefs-run|ecmwf-run|exceedance|exceedance-realsize MIRROR
#   gefs-run   GEFS 2025-10-01 00z: 31 members x 81 steps = 2,511 pgrb2s files with their .idx (38 messages each),
#              2.5 degree grids
#   ecmwf-run  ECMWF ENS 2025-10-01 00z: 85 enfo-ef files (51 members, 5 params) with their .index, 2.5 degree
#   exceedance the 0-24 h rain of both runs at 0.25 degree: GEFS APCP steps 0-24/6 (31 members), ECMWF tp
#              steps 0 and 24 (51 members); smooth rain, small messages
#   exceedance-realsize  the same with realistic rain at real message sizes (GEFS APCP ~300 KB, ECMWF tp ~760 KB)
#   hrrr-day   HRRR wrfsfc 2025-10-01, every cycle (20 x 19 + 4 x 49 = 576 index files), index-only
#   gfs-index-run  GFS 0.25 pgrb2 2025-10-01 00z (209 index files), index-only
#              (bench/index_mirror.py: real index files re-dated, sparse GRIB files; for ingestion only)
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
what=${1:?gefs-run|ecmwf-run|exceedance|exceedance-realsize|hrrr-day|gfs-index-run}; mirror=${2:?mirror directory}
gen() { /usr/bin/python3 "$TOP/tools/gen_mirror.py" --out "$mirror" --jobs 2 "$@" >&2; }
case $what in
  gefs-run)
    [ -f "$mirror/noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25/gep30.t00z.pgrb2s.0p25.f240.idx" ] && exit 0
    echo "generating the GEFS mirror (31 x 81 files, 2.5 degree grids) ..." >&2
    gen gefs --date 20251001 --cycle 0 --members 0-30 --steps 0-240/3 --vars full --grid 2p5 --rain-grid 2p5 ;;
  ecmwf-run)
    [ -f "$mirror/ecmwf-forecasts/20251001/00z/ifs/0p25/enfo/20251001000000-360h-enfo-ef.index" ] && exit 0
    echo "generating the ECMWF mirror (51 members x 85 steps, 5 params, 2.5 degree grids) ..." >&2
    gen ecmwf --date 20251001 --cycle 0 --members 0-50 --steps 0-144/3,150-360/6 --grid 2p5 --params tp,2t,msl,10u,10v ;;
  exceedance|exceedance-realsize)
    [ -f "$mirror/.complete" ] && exit 0
    rm -rf "$mirror"
    extra=(); [ "$what" = exceedance-realsize ] && extra=(--rain-model realistic)
    echo "generating the $what mirror (GEFS 31 x 5 files, ECMWF 2 files, 0.25 degree rain) ..." >&2
    gen gefs --date 20251001 --cycle 0 --members 0-30 --steps 0-24/6 --vars apcp --grid 1p0 --rain-grid 0p25 "${extra[@]}"
    gen ecmwf --date 20251001 --cycle 0 --members 0-50 --steps 0,24 --grid 0p25 --params tp "${extra[@]}"
    touch "$mirror/.complete" ;;
  hrrr-day)
    [ -f "$mirror/noaa-hrrr-bdp-pds/hrrr.20251001/conus/hrrr.t23z.wrfsfcf18.grib2.idx" ] && exit 0
    /usr/bin/python3 "$TOP/bench/index_mirror.py" hrrr-day "$mirror" --date 20251001 >&2 ;;
  gfs-index-run)
    [ -f "$mirror/noaa-gfs-bdp-pds/gfs.20251001/00/atmos/gfs.t00z.pgrb2.0p25.f384.idx" ] && exit 0
    /usr/bin/python3 "$TOP/bench/index_mirror.py" gfs-run "$mirror" --date 20251001 >&2 ;;
  *) echo "usage: bench/mirrors.sh gefs-run|ecmwf-run|exceedance|exceedance-realsize|hrrr-day|gfs-index-run MIRROR" >&2; exit 2 ;;
esac
