"""Python peers of gik.decode on the same messages: GDAL (open + read band 1) and cfgrib/xarray
(open_dataset + .values), plus the list builder the benchmark uses.

  peers.py list MIRROR DATASET OUT.tsv      write "path<TAB>offset<TAB>length" for a generated dataset
  peers.py gdal LIST REPS                   GDAL 3.6 per message (reads the message in place: /vsisubfile/)
  peers.py cfgrib LIST REPS [MAX]           cfgrib per message (each message copied to its own file first,
                                            outside the timing; cfgrib needs a file and writes no index)
Each timing prints one JSON object: messages, best pass in ms, ms per message (wall and CPU). Debian's /usr/bin/python3.
"""
import json
import pathlib
import sys
import tempfile
import time


def read_list(path, limit=None):
    rows = []
    for line in pathlib.Path(path).read_text().splitlines():
        p, o, n = line.split("\t")
        rows.append((p, int(o), int(n)))
    return rows[:limit] if limit else rows


def build_list(mirror, dataset, out):
    """APCP messages of the GEFS run (0.25 degree, complex packing) or tp of the ECMWF run (CCSDS)."""
    mirror = pathlib.Path(mirror)
    rows = []
    if dataset == "gefs":
        for idx in sorted(mirror.glob("noaa-gefs-pds/gefs.*/*/atmos/pgrb2sp25/*.idx")):
            grib = idx.with_suffix("")
            lines = idx.read_text().splitlines()
            offs = [int(line.split(":")[1]) for line in lines] + [grib.stat().st_size]
            for k, line in enumerate(lines):
                if ":APCP:" in line:
                    rows.append((str(grib), offs[k], offs[k + 1] - offs[k]))
    else:
        for index in sorted(mirror.glob("ecmwf-forecasts/*/*/ifs/0p25/enfo/*.index")):
            grib = index.with_suffix(".grib2")
            for line in index.read_text().splitlines():
                d = json.loads(line)
                if d["param"] == "tp":
                    rows.append((str(grib), d["_offset"], d["_length"]))
    rows.sort()
    pathlib.Path(out).write_text("".join(f"{p}\t{o}\t{n}\n" for p, o, n in rows))
    print(len(rows))


def best_of(reps, fn, rows):
    """Lowest wall and lowest CPU time of reps passes over rows, in ms."""
    best = best_cpu = float("inf")
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        for r in rows:
            fn(r)
        best = min(best, (time.perf_counter() - t0) * 1e3)
        best_cpu = min(best_cpu, (time.process_time() - c0) * 1e3)
    return {"messages": len(rows), "best_ms": round(best, 3), "ms_per_msg": round(best / len(rows), 4),
            "cpu_ms_per_msg": round(best_cpu / len(rows), 4)}


def bench_gdal(rows, reps):
    from osgeo import gdal
    gdal.UseExceptions()
    gdal.SetConfigOption("GRIB_NORMALIZE_UNITS", "NO")

    def one(r):
        p, o, n = r
        ds = gdal.Open(f"/vsisubfile/{o}_{n},{p}")
        a = ds.GetRasterBand(1).ReadAsArray()
        assert a.size > 0
        ds = None

    return best_of(reps, one, rows)


def bench_cfgrib(rows, reps):
    import xarray as xr
    tmp = tempfile.TemporaryDirectory()
    files = []
    for k, (p, o, n) in enumerate(rows):
        with open(p, "rb") as f:
            f.seek(o)
            path = pathlib.Path(tmp.name) / f"m{k}.grib2"
            path.write_bytes(f.read(n))
        files.append(path)

    def one(path):
        ds = xr.open_dataset(path, engine="cfgrib", backend_kwargs={"indexpath": ""})
        v = ds[list(ds.data_vars)[0]].values
        assert v.size > 0
        ds.close()

    out = best_of(reps, one, files)
    tmp.cleanup()
    return out


def main():
    cmd = sys.argv[1]
    if cmd == "list":
        build_list(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    rows = read_list(sys.argv[2], int(sys.argv[4]) if len(sys.argv) > 4 else None)
    reps = int(sys.argv[3])
    print(json.dumps(bench_gdal(rows, reps) if cmd == "gdal" else bench_cfgrib(rows, reps)))


if __name__ == "__main__":
    main()
