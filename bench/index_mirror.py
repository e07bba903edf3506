"""Index-only mirrors for the ingestion benchmarks of products our generator does not write (HRRR, GFS):
every index file of a run or a day, made from a real index file of the product (test/data) with its date,
forecast times and accumulation windows set for each step, beside a sparse GRIB file of the size the last
message needs. Only ingestion and inventory reading can use them: the GRIB files hold no messages.
Usage: bench/index_mirror.py hrrr-day|gfs-run MIRROR [--date YYYYMMDD]"""
import argparse
import datetime as dt
import pathlib
import re

TOP = pathlib.Path(__file__).resolve().parents[1]
HRRR_IDX = TOP / "test/data/dynamical/hrrr.t00z.wrfsfcf00.grib2.idx"      # 170 lines, f00
GFS_IDX_F000 = TOP / "test/data/dynamical/gfs.t00z.pgrb2.0p25.f000.idx"   # 696 lines
GFS_IDX_FCST = TOP / "test/data/kerchunk/gfs.t06z.pgrb2.0p25.f021.idx"    # 743 lines, a forecast step


def retime(line, init, step, bucket):
    """The line for another run and step: d=, 'N hour fcst', 'A-B hour|day acc|ave|max|min fcst'."""
    f = line.split(":")
    f[2] = f"d={init:%Y%m%d%H}"
    ftime = f[5]
    if step > 0 and ftime == "anl":
        ftime = f"{step} hour fcst"
    elif re.fullmatch(r"\d+ hour fcst", ftime):
        ftime = f"{step} hour fcst"
    else:
        m = re.fullmatch(r"(\d+)-(\d+) (hour|day) (acc|ave|max|min) fcst", ftime)
        if m:
            a, b, unit, stat = int(m[1]), int(m[2]), m[3], m[4]
            run_total = a == 0 and (b > 0 or unit == "day")
            start = 0 if run_total else bucket(step)
            ftime = f"{start}-{step} hour {stat} fcst" if step > 0 else f"0-0 day {stat} fcst"
    f[5] = ftime
    return ":".join(f)


def write(mirror, path, lines):
    idx = mirror / (path + ".idx")
    idx.parent.mkdir(parents=True, exist_ok=True)
    idx.write_text("\n".join(lines) + "\n")
    grib = mirror / path
    with open(grib, "wb") as g:
        g.truncate(int(lines[-1].split(":")[1]) + 100_000)


def hrrr_day(mirror, day):
    n = 0
    src = HRRR_IDX.read_text().splitlines()
    for cycle in range(24):
        init = day + dt.timedelta(hours=cycle)
        for step in range(49 if cycle % 6 == 0 else 19):
            lines = [retime(ln, init, step, lambda s: s - 1) for ln in src]
            write(mirror, f"noaa-hrrr-bdp-pds/hrrr.{init:%Y%m%d}/conus/hrrr.t{cycle:02d}z.wrfsfcf{step:02d}.grib2", lines)
            n += 1
    return n


def gfs_run(mirror, init):
    n = 0
    f000, fcst = GFS_IDX_F000.read_text().splitlines(), GFS_IDX_FCST.read_text().splitlines()
    for step in list(range(0, 121)) + list(range(123, 385, 3)):
        src = f000 if step == 0 else fcst
        lines = [retime(ln, init, step, lambda s: 6 * ((s - 1) // 6)) for ln in src]
        write(mirror, f"noaa-gfs-bdp-pds/gfs.{init:%Y%m%d}/{init:%H}/atmos/gfs.t{init:%H}z.pgrb2.0p25.f{step:03d}", lines)
        n += 1
    return n


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["hrrr-day", "gfs-run"])
    ap.add_argument("mirror", type=pathlib.Path)
    ap.add_argument("--date", default="20251001")
    a = ap.parse_args()
    day = dt.datetime.strptime(a.date, "%Y%m%d")
    n = hrrr_day(a.mirror, day) if a.what == "hrrr-day" else gfs_run(a.mirror, day)
    print(f"index_mirror: {a.what} {a.date}: {n} index files in {a.mirror}")
