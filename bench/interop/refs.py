"""Reference building for a full GEFS and a full ECMWF run on the loopback mirror, side by side in one run:
gik.ingest_run, gribberish's VirtualiZarr parser reading the index (use_index), the same through
open_virtual_mfdataset, kerchunk's scan_grib on a subset (extrapolated per file), and Herbie's inventory
reader; plus index parsing alone (local files) against Herbie's pandas reader. Bytes each peer read come from
nginx's access log (test/support/mirror-server.sh with GIK_ACCESS_LOG), not from the peer's own account.
Run by bench/interop_bench.sh (project venv; PG* environment of a server with pg_gik pointed at the mirror)."""
import argparse
import concurrent.futures as futures
import datetime as dt
import os
import re
import pathlib
import statistics
import sys
import tempfile
import time
import warnings

import psycopg

warnings.filterwarnings("ignore")
GEFS_RUN = "noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25"
ECMWF_RUN = "ecmwf-forecasts/20251001/00z/ifs/0p25/enfo"
INIT = dt.datetime(2025, 10, 1, tzinfo=dt.timezone.utc)


class Wire:
    """Requests and body bytes nginx served since the last reset (one access-log line per request)."""

    def __init__(self, log):
        self.log = pathlib.Path(log)

    def reset(self):
        self.log.write_text("")

    def read(self):
        reqs, nbytes = 0, 0
        for line in self.log.read_text().splitlines():
            method, status, sent, _uri = line.split(" ", 3)
            if status.startswith(("2", "3")):
                reqs += 1
                nbytes += int(sent)
        return reqs, nbytes


class Table:
    def __init__(self):
        self.rows = []

    def add(self, run, peer, seconds, refs, reqs, nbytes, note=""):
        self.rows.append((run, peer, seconds, refs, reqs, nbytes, note))
        print(f"{run:6s} {peer:58s} {seconds:9.2f} s {refs:>9} refs {reqs:>8} req {nbytes / 1e6:10.2f} MB  {note}",
              flush=True)


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def gik_ingest(conn, wire, table, run, dataset, runs, inits=(INIT,), learn=True):
    """First ingestion (templates learned), then the median of `runs` re-ingestions of the deleted runs; several
    initialisation times (a day of HRRR) are ingested one after the other and timed together."""
    sql = "SELECT gik.ingest_run(%s, %s, learn_templates => %s)"
    delete = "DELETE FROM gik.run WHERE dataset_id = (SELECT dataset_id FROM gik.dataset WHERE name = %s)"

    def ingest_all(cur):
        for t in inits:
            cur.execute(sql, (dataset, t, learn))

    with conn.cursor() as cur:
        cur.execute(delete, (dataset,))
        wire.reset()
        first, _ = timed(ingest_all, cur)
        reqs, nbytes = wire.read()
        cur.execute("SELECT sum(refs) FROM gik.run WHERE dataset_id = (SELECT dataset_id FROM gik.dataset WHERE name = %s)", (dataset,))
        refs = int(cur.fetchone()[0])
        what = "first time (templates learned)" if learn else "first time (no templates: index-only mirror)"
        table.add(run, f"gik.ingest_run, {what}", first, refs, reqs, nbytes)
        warm = []
        for _ in range(runs):
            cur.execute(delete, (dataset,))
            wire.reset()
            s, _ = timed(ingest_all, cur)
            warm.append(s)
        reqs, nbytes = wire.read()
        table.add(run, f"gik.ingest_run, again (median of {runs})", statistics.median(warm), refs, reqs, nbytes)
    return refs


def manifest_refs(group):
    """Chunks referenced by a VirtualiZarr ManifestGroup (every array, every subgroup)."""
    n = 0
    for arr in group.arrays.values():
        n += int((arr.manifest._paths != "").sum()) if hasattr(arr.manifest, "_paths") else len(arr.manifest.dict())
    for sub in group.groups.values():
        n += manifest_refs(sub)
    return n


def gribberish_per_file(reg, urls, use_index, threads):
    from gribberish.virtualizarr import GribberishParser
    parser = GribberishParser(use_index=use_index)
    with futures.ThreadPoolExecutor(threads) as pool:
        stores = list(pool.map(lambda u: parser(url=u, registry=reg), urls))
    return sum(manifest_refs(s._group) for s in stores)


def gribberish_mfdataset(reg, nested, use_index, variable):
    from gribberish.virtualizarr import GribberishParser
    from virtualizarr import open_virtual_mfdataset
    ds = open_virtual_mfdataset(nested, registry=reg, combine="nested", concat_dim=["number", "time"],
                                parser=GribberishParser(use_index=use_index, collapse_groups=True,
                                                        only_variables=[variable]),
                                coords="minimal", compat="override", data_vars="minimal",
                                parallel=futures.ThreadPoolExecutor)
    return int(ds[variable].size // (ds.sizes["latitude"] * ds.sizes["longitude"]))


def kerchunk_scan(urls):
    from kerchunk.grib2 import scan_grib
    return sum(len(scan_grib(u)) for u in urls)


def herbie_inventories(base, files, init=INIT):
    """Herbie(...).inventory() per file, through a model template whose only source is the loopback mirror:
    files are (member, step, path under the mirror without .idx)."""
    import herbie.models as templates
    from herbie import Herbie
    path_of = {}

    class loopback:
        def template(self):
            self.DESCRIPTION = "a run on the loopback mirror"
            self.DETAILS = {}
            self.PRODUCTS = {"any": "the files of the run"}
            self.product = self.product or "any"
            self.SOURCES = {"loopback": f"{base}/{path_of[(self.member, self.fxx)]}"}
            # Herbie replaces a .grib2 suffix by the index suffix, and appends it to other names
            self.IDX_SUFFIX = [".grib2.idx" if path_of[(self.member, self.fxx)].endswith(".grib2") else ".idx"]
            self.LOCALFILE = f"{self.get_remoteFileName}"

    templates.loopback = loopback
    n = 0
    with tempfile.TemporaryDirectory() as save:
        for member, step, path in files:
            path_of[(member, step)] = path
            h = Herbie(init.replace(tzinfo=None), model="loopback", member=member, fxx=step,
                       priority=["loopback"], save_dir=save, verbose=False, overwrite=True)
            n += len(h.inventory())
    return n


def herbie_parse_local(paths, steps):
    """Herbie's own idx reader (Herbie.index_as_dataframe) on local index files: parsing alone."""
    from herbie import Herbie
    n = 0
    for path, step in zip(paths, steps):
        h = Herbie.__new__(Herbie)          # only the reader's inputs, no source search
        h.idx, h.idx_source, h.grib_source, h.IDX_STYLE, h.fxx = str(path), "local", "local", "wgrib2", step
        h.model, h.product, h.date = "local", None, INIT.replace(tzinfo=None)  # the attributes it stamps on the frame
        n += len(Herbie.index_as_dataframe.func(h) if hasattr(Herbie.index_as_dataframe, "func")
                 else Herbie.index_as_dataframe.__wrapped__(h))
    return n


def gik_parse_local(conn, paths):
    with conn.cursor() as cur:
        cur.execute("SELECT sum(n) FROM unnest(%s::text[]) p, LATERAL "
                    "(SELECT count(*) n FROM gik.parse_idx(pg_read_file(p))) c", ([str(p) for p in paths],))
        return int(cur.fetchone()[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", required=True)
    ap.add_argument("--mirror", required=True)
    ap.add_argument("--access-log", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--kerchunk-files", type=int, default=10)
    ap.add_argument("--herbie-files", type=int, default=200)
    ap.add_argument("--only", choices=["gefs", "ecmwf", "hrrr", "gfs"], action="append")
    args = ap.parse_args()
    from obspec_utils.registry import ObjectStoreRegistry
    from obstore.store import HTTPStore
    reg = ObjectStoreRegistry({args.http: HTTPStore.from_url(args.http, client_options={"allow_http": True})})
    wire, table = Wire(args.access_log), Table()
    mirror = pathlib.Path(args.mirror)
    conn = psycopg.connect(autocommit=True)

    def peer(run, name, fn, *fargs, scale=1.0, note=""):
        wire.reset()
        seconds, refs = timed(fn, *fargs)
        reqs, nbytes = wire.read()
        table.add(run, name, seconds * scale, int(refs * scale), int(reqs * scale), int(nbytes * scale), note)

    print(f"{'run':6s} {'peer':58s} {'time':>11s} {'refs':>14s} {'requests':>12s} {'bytes read':>13s}")
    if not args.only or "gefs" in args.only:
        idx = sorted((mirror / GEFS_RUN).glob("ge*.t00z.pgrb2s.0p25.f*.idx"))
        urls = [f"{args.http}/{GEFS_RUN}/{p.name[:-4]}" for p in idx]
        gik_ingest(conn, wire, table, "GEFS", "gefs_0p25", args.runs)
        peer("GEFS", f"gribberish parser use_index='.idx', {args.threads} threads", gribberish_per_file, reg, urls,
             ".idx", args.threads)
        sub = urls[:: max(1, len(urls) // 100)]
        peer("GEFS", f"gribberish parser use_index='.idx', serial ({len(sub)} files, x{len(urls) / len(sub):.1f})",
             gribberish_per_file, reg, sub, ".idx", 1, scale=len(urls) / len(sub))
        members = sorted({p.name[2:5] for p in idx})
        nested = [[u for u in urls if f"/ge{m}." in u and not u.endswith("f000")] for m in members]
        peer("GEFS", "gribberish open_virtual_mfdataset, APCP only, threads", gribberish_mfdataset, reg, nested,
             ".idx", "apcp", note="precipitation only")
        sub = urls[:: max(1, len(urls) // args.kerchunk_files)][: args.kerchunk_files]
        peer("GEFS", f"kerchunk scan_grib ({len(sub)} files, x{len(urls) / len(sub):.0f})", kerchunk_scan, sub,
             scale=len(urls) / len(sub), note="whole files read")
        files = [(int(p.name[3:5]), int(p.name.split(".f")[-1][:3]), f"{GEFS_RUN}/{p.name[:-4]}") for p in idx]
        sub = files[:: max(1, len(files) // args.herbie_files)][: args.herbie_files]
        peer("GEFS", f"Herbie inventory() ({len(sub)} files, x{len(files) / len(sub):.1f})", herbie_inventories,
             args.http, sub, scale=len(files) / len(sub))
        steps = [int(p.name.split(".f")[-1][:3]) for p in idx]
        peer("GEFS", "index parsing, local files: gik.parse_idx (SQL)", gik_parse_local, conn, idx)
        peer("GEFS", "index parsing, local files: Herbie index_as_dataframe", herbie_parse_local, idx, steps)
    if not args.only or "ecmwf" in args.only:
        index = sorted((mirror / ECMWF_RUN).glob("*-enfo-ef.index"))
        urls = [f"{args.http}/{ECMWF_RUN}/{p.name[:-6]}.grib2" for p in index]
        gik_ingest(conn, wire, table, "ECMWF", "ecmwf_ens_0p25", args.runs)
        peer("ECMWF", f"gribberish parser use_index='.index', {args.threads} threads", gribberish_per_file, reg,
             urls, ".index", args.threads)
        sub = urls[:: max(1, len(urls) // args.kerchunk_files)][: args.kerchunk_files]
        peer("ECMWF", f"kerchunk scan_grib ({len(sub)} files, x{len(urls) / len(sub):.1f})", kerchunk_scan, sub,
             scale=len(urls) / len(sub), note="whole files read")
    # Index-only mirrors (bench/index_mirror.py): a day of HRRR and a GFS run, made from real index files.
    for run, dataset, inits, pattern in (
            ("HRRR", "hrrr", [INIT + dt.timedelta(hours=h) for h in range(24)], "noaa-hrrr-bdp-pds/hrrr.20251001/conus"),
            ("GFS", "gfs_0p25", [INIT], "noaa-gfs-bdp-pds/gfs.20251001/00/atmos")):
        if args.only and run.lower() not in args.only:
            continue
        idx = sorted((mirror / pattern).glob("*.idx"))
        gik_ingest(conn, wire, table, run, dataset, args.runs, inits, learn=False)
        files = [(None, int(re.search(r"f(\d+)(\.grib2)?\.idx$", p.name)[1]), f"{pattern}/{p.name[:-4]}") for p in idx]
        by_cycle = {}
        for f, p in zip(files, idx):
            by_cycle.setdefault(int(re.search(r"\.t(\d\d)z\.", p.name)[1]), []).append(f)
        sub = files[:: max(1, len(files) // args.herbie_files)][: args.herbie_files]
        wire.reset()
        t0 = time.perf_counter()
        n = sum(herbie_inventories(args.http, [f for f in fs if f in sub], INIT + dt.timedelta(hours=c))
                for c, fs in by_cycle.items())
        seconds = time.perf_counter() - t0
        reqs, nbytes = wire.read()
        k = len(files) / len(sub)
        table.add(run, f"Herbie inventory() ({len(sub)} of {len(files)} files, x{k:.1f})", seconds * k, int(n * k),
                  int(reqs * k), int(nbytes * k))
        peer(run, "index parsing, local files: gik.parse_idx (SQL)", gik_parse_local, conn, idx)
        peer(run, "index parsing, local files: Herbie index_as_dataframe", herbie_parse_local, idx, [f[1] for f in files])
    grib = {run: sum(f.stat().st_size for f in (mirror / path).iterdir() if f.suffix not in (".idx", ".index"))
            for run, path in (("GEFS", GEFS_RUN), ("ECMWF", ECMWF_RUN))}
    print("GRIB bytes in the run: " + ", ".join(f"{k} {v / 1e9:.2f} GB" for k, v in grib.items()))
    best = {}
    for run, peer_name, seconds, refs, reqs, nbytes, note in table.rows:
        if peer_name.startswith("gik.ingest_run, again"):
            best.setdefault(run, {})["gik"] = (seconds, nbytes)
        elif peer_name.startswith("gribberish parser"):
            cur = best.setdefault(run, {}).get("gribberish")
            if cur is None or seconds < cur[0]:
                best[run]["gribberish"] = (seconds, nbytes)
    for run, b in best.items():
        if "gik" in b and "gribberish" in b:
            (gs, gb), (rs, rb) = b["gik"], b["gribberish"]
            print(f"{run}: gik.ingest_run is {rs / gs:.1f}x faster than gribberish's fastest index parser "
                  f"and reads {rb / max(gb, 1):.0f}x fewer bytes (targets: 10x, 100x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
