"""East Africa 0-24 h rain exceedance, GEFS (31 members) and ECMWF ENS (51) pooled, side by side in one run on
the loopback mirror: gik.exceedance; xarray + gribberish over pg_gik's Icechunk store (dask threads, and a
LocalCluster of worker processes); xarray + gribberish over gribberish's own virtual dataset of the same files;
the GIK-style Python pipeline (bench/exceedance/gik_pipeline.py). Every peer's probabilities are compared with
gik.exceedance's cell by cell. Run by bench/interop_bench.sh (project venv; PG* environment of a server with
pg_gik pointed at the mirror)."""
import argparse
import datetime as dt
import json
import pathlib
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np
import psycopg

warnings.filterwarnings("ignore")
INIT = dt.datetime(2025, 10, 1, tzinfo=dt.timezone.utc)
THRESHOLDS = [5, 25, 50, 75, 100, 125]
BOX = (21.0, -12.0, 53.0, 23.0)  # lon_min, lat_min, lon_max, lat_max
GEFS = "noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25/{m}.t00z.pgrb2s.0p25.f{s:03d}"
ECMWF = "ecmwf-forecasts/20251001/00z/ifs/0p25/enfo/20251001000000-{s}h-enfo-ef.grib2"
GEFS_MEMBERS = ["gec00"] + [f"gep{i:02d}" for i in range(1, 31)]


def probabilities(totals_mm):
    """Exceedance probabilities (threshold, lat, lon) of a (member, lat, lon) stack of 0-24 h totals in mm."""
    return np.stack([(totals_mm >= t).mean(axis=0) for t in THRESHOLDS])


def region(da, lat="latitude", lon="longitude"):
    """The cells of the box, north-up, longitudes -180..180 ascending, as gik.exceedance lays them out."""
    da = da.assign_coords({lon: (da[lon] + 180.0) % 360.0 - 180.0}).sortby(lon)
    da = da.sortby(lat, ascending=False)
    return da.sel({lat: slice(BOX[3] + 1e-9, BOX[1] - 1e-9), lon: slice(BOX[0] - 1e-9, BOX[2] + 1e-9)})


# -- pg_gik ---------------------------------------------------------------------------------------------------

def gik_exceedance(conn):
    rows = conn.execute("SELECT threshold, probability, (grid).ni, (grid).nj, members_used FROM gik.exceedance("
                        "'{gefs_0p25,ecmwf_ens_0p25}', %s, 0, 24, %s, gik.bbox(%s, %s, %s, %s)) ORDER BY threshold",
                        (INIT, THRESHOLDS, *BOX)).fetchall()
    ni, nj = rows[0][2], rows[0][3]
    return np.stack([np.asarray(r[1], dtype=np.float64).reshape(nj, ni) for r in rows]), rows[0][4]


def gik_pipeline(conn, http):
    """The GIK-style Python pipeline on pg_gik's plan of the same messages."""
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "exceedance"))
    import gik_pipeline
    plan = []
    for ds in ("gefs_0p25", "ecmwf_ens_0p25"):
        for m, url, off, length, w, s in conn.execute(
                "SELECT %s || ':' || member, gik.resolve_url((ref).url), (ref).byte_offset, (ref).byte_length, weight,"
                " mm_per_unit FROM gik.accumulation_refs(%s, %s, 0, 24) ORDER BY member, step_end", (ds, ds, INIT)):
            plan.append({"member": m, "url": url, "offset": off, "length": length, "weight": w, "scale": s})
    return lambda: gik_pipeline.run(plan, THRESHOLDS, BOX)[0]


# -- xarray + gribberish over pg_gik's Icechunk store -----------------------------------------------------------

def icechunk_stores(conninfo, work):
    """One local Icechunk repository per run, written by pg_gik's exporter (longitudes -180..180, as
    gik.exceedance gives them); returns a function opening one as an xarray dataset (one chunk per message)."""
    import xarray as xr
    from pg_gik.icechunk import export_runs, open_repository
    repos = {}
    for ds in ("gefs_0p25", "ecmwf_ens_0p25"):
        repos[ds] = pathlib.Path(work) / f"ice_{ds}"
        export_runs(conninfo, ds, [INIT], repos[ds], longitude="-180..180")

    def open_store(ds):
        repo = open_repository(repos[ds])
        x = xr.open_zarr(repo.readonly_session("main").store, zarr_format=3, consolidated=False, chunks={})
        return x.sel(init_time=x.init_time[0])
    return open_store


def icechunk_totals(open_store):
    """Lazy (member, lat, lon) 0-24 h totals in mm of both runs over East Africa, as a user of the store
    writes them: the windows that cover 0-24 h (pg_gik.analysis), summed per member."""
    import xarray as xr
    from pg_gik.analysis import window_total
    parts = []
    for ds in ("gefs_0p25", "ecmwf_ens_0p25"):
        x = open_store(ds)
        total = window_total(x, "tp", 0, 24)
        # pg_gik names grid dimensions latitude_N / longitude_N when a store holds several grids
        total = total.rename({d: d.split("_")[0] for d in total.dims if d.startswith(("latitude_", "longitude_"))})
        parts.append(region(total).drop_vars([c for c in total.coords if c not in ("latitude", "longitude")]))
    return xr.concat(parts, dim="member")


# -- xarray + gribberish over gribberish's own virtual dataset --------------------------------------------------

def gribberish_build(reg, http):
    """gribberish's ManifestStores of the same messages: GEFS APCP (index), ECMWF tp (scan)."""
    from gribberish.virtualizarr import GribberishParser
    gefs = GribberishParser(use_index=".idx")
    ecmwf = GribberishParser(use_index=False)
    stores = {"gefs": [[gefs(url=f"{http}/{GEFS.format(m=m, s=s)}", registry=reg) for s in (6, 12, 18, 24)]
                       for m in GEFS_MEMBERS],
              "ecmwf": [ecmwf(url=f"{http}/{ECMWF.format(s=s)}", registry=reg) for s in (0, 24)]}
    return stores


def accumulated(store):
    """The single surface accumulation array of a gribberish store (GEFS APCP; ECMWF tp, which gribberish names
    cfrzr after NCEP's local table), squeezed to (number, lat, lon)."""
    import xarray as xr
    import zarr
    root = zarr.open_group(store, mode="r", zarr_format=3)
    group = next(f"sfc/{k}" for k, _ in root["sfc"].groups() if k.startswith("acc"))
    ds = xr.open_zarr(store, group=group, consolidated=False, zarr_format=3)
    name = next(v for v in ds.data_vars if ds[v].attrs.get("statistical_process") == "accumulation")
    return ds[name].isel(time=0)


def gribberish_totals(stores):
    import xarray as xr
    g = xr.concat([region(sum(accumulated(s).isel(number=0, drop=True) for s in member))
                   for member in stores["gefs"]], dim="member")
    e0, e24 = (region(accumulated(s)) for s in stores["ecmwf"])
    e = ((e24 - e0).clip(min=0) * 1000.0).rename(number="member")
    keep = lambda a: a.drop_vars([c for c in a.coords if c not in ("latitude", "longitude")])
    return xr.concat([keep(g), keep(e)], dim="member")


# -- the run ----------------------------------------------------------------------------------------------------

def best_of(n, fn):
    times, out = [], None
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", help="write the table here")
    ap.add_argument("--peers", default="pipeline,icechunk,gribberish", help="which peers besides gik.exceedance")
    args = ap.parse_args()
    import dask
    from dask.distributed import Client, LocalCluster
    from obspec_utils.registry import ObjectStoreRegistry
    from obstore.store import HTTPStore

    conn = psycopg.connect("", autocommit=True)
    conn.execute("SELECT gik.ingest_run('gefs_0p25', %s, steps => gik.step_list('0-24/6'))", (INIT,))
    conn.execute("SELECT gik.ingest_run('ecmwf_ens_0p25', %s, steps => '{0,24}')", (INIT,))
    rows = []

    def report(peer, seconds, probs, note=""):
        diff = float(np.abs(probs - ref).max()) if probs.shape == ref.shape else float("nan")
        cells = int((np.abs(probs - ref) > 1e-6).sum()) if probs.shape == ref.shape else -1
        note = f"{cells} cells differ; {note}" if cells else note
        rows.append({"peer": peer, "seconds": seconds, "max_abs_diff": diff, "shape": list(probs.shape), "note": note})
        print(f"{peer:66s} {seconds * 1000:9.0f} ms  max|p - gik| = {diff:.3g}  {note}", flush=True)

    gik_exceedance(conn)  # warm the session's decoders
    t_gik, (ref, used) = best_of(args.runs, lambda: gik_exceedance(conn))
    report(f"gik.exceedance ({used} members, median of {args.runs})", t_gik, ref)

    peers = args.peers.split(",")
    if "pipeline" in peers:
        t, probs = best_of(args.runs, gik_pipeline(conn, args.http))
        report("GIK-style Python pipeline (8 threads, ecCodes, numpy)", t, probs)

    if "icechunk" in peers:
        with tempfile.TemporaryDirectory() as work:
            t0 = time.perf_counter()
            open_store = icechunk_stores("", work)
            export_s = time.perf_counter() - t0
            compute = lambda **kw: probabilities(icechunk_totals(open_store).compute(**kw).values)
            t, probs = best_of(args.runs, lambda: compute(scheduler="threads", num_workers=2))
            report("xarray + gribberish over pg_gik's Icechunk store, dask threads (2)", t, probs,
                   f"export {export_s:.2f} s once")
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster, Client(cluster):
                compute()
                t, probs = best_of(args.runs, compute)
                report("xarray + gribberish over pg_gik's Icechunk store, LocalCluster 2 processes", t, probs)

    if "gribberish" in peers:
        reg = ObjectStoreRegistry({args.http: HTTPStore.from_url(args.http, client_options={"allow_http": True})})
        t0 = time.perf_counter()
        stores = gribberish_build(reg, args.http)
        build_s = time.perf_counter() - t0
        with dask.config.set(scheduler="threads", num_workers=2):
            t, probs = best_of(args.runs, lambda: probabilities(gribberish_totals(stores).compute().values))
        report("xarray + gribberish over gribberish's own virtual dataset, threads (2)", t, probs,
               f"references built in {build_s:.2f} s once")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
