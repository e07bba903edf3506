"""Speed of the parquet bridge at the size of full runs (references only; nothing is fetched).

1. kerchunk parquet: writing and reading a GEFS-run-sized reference set (38 fields x 31 members x 81 steps,
   95,418 references, metadata from a real export) with pg_gik.parquet_bridge, beside kerchunk's own writer
   (kerchunk.df.refs_to_dataframe) of the same references.
2. parquet-import of an ECMWF-ENS-run-sized GIK set (51 member files x 85 steps x 5 params, 21,675 references),
   first into a new dataset, then the same files again (no new version).

Usage: PGPORT=… PGDATABASE=… PYTHONPATH=python/src:python/test .venv/bin/python bench/parquet_bridge.py
(needs the loopback mirror's GEFS run of 2025-10-01 for the metadata).
"""
import json
import shutil
import tempfile
import time
from pathlib import Path

import kerchunk.df
import psycopg

from gik_layouts import ecmwf_member_name, write_ecmwf_gik_parquet
from pg_gik.parquet_bridge import import_gik_parquet, read_kerchunk_parquet, write_kerchunk_parquet

DATASETS = ("bench_pq_gefs", "bench_pq_ecmwf")


def timed(label, f, n):
    """Run f once and print its time."""
    t = time.perf_counter()
    out = f()
    print(f"{label}: {time.perf_counter() - t:.2f} s for {n} references")
    return out


def gefs_sized_refs(conn):
    """95,418 references under 38 arrays with the metadata of a real pg_gik export."""
    conn.execute("SELECT gik.clone_dataset('gefs_0p25', %s, '{APCP}')", (DATASETS[0],))
    conn.execute("SELECT gik.ingest_run(%s, '2025-10-01 00:00+00', variables => '{APCP}', members => '{0,1,2}', "
                 "steps => gik.step_list('0-24/3'))", (DATASETS[0],))
    base = json.loads(conn.execute("SELECT gik.manifest_kerchunk(%s)::text", (DATASETS[0],)).fetchone()[0])["refs"]
    refs = {k: v for k, v in base.items() if not k.startswith("tp/")}
    zarray = dict(json.loads(base["tp/.zarray"]), shape=[1, 31, 81, 721, 1440])
    url, offset, length = base["tp/0.1.2.0.0"]
    for v in range(38):
        refs[f"v{v}/.zarray"], refs[f"v{v}/.zattrs"] = json.dumps(zarray), base["tp/.zattrs"]
        for m in range(31):
            for s in range(81):
                refs[f"v{v}/0.{m}.{s}.0.0"] = [url.replace("gep01", f"gep{m:02d}"), offset + 1000 * v, length]
    return refs


def ecmwf_sized_files(d):
    """51 GIK ECMWF-layout member files of one run: 85 steps x 5 params each."""
    steps = list(range(0, 145, 3)) + list(range(150, 361, 6))
    params = ["tp", "2t", "msl", "10u", "10v"]
    files = []
    for m in range(51):
        store = {".zgroup": '{"zarr_format": 2}'}
        for h in steps:
            url = f"s3://ecmwf-forecasts/20251005/00z/ifs/0p25/enfo/20251005000000-{h}h-enfo-ef.grib2"
            for i, p in enumerate(params):
                store[f"step_{h:03d}/{p}/sfc/{ecmwf_member_name(m)}/0.0.0"] = [url, (m * 5 + i) * 1000, 1000]
        files.append(d / f"{ecmwf_member_name(m)}.parquet")
        write_ecmwf_gik_parquet(store, files[-1])
    return files


def main():
    d = Path(tempfile.mkdtemp(prefix="bench_parquet_bridge_"))
    with psycopg.connect("", autocommit=True) as conn:
        try:
            for name in DATASETS:
                conn.execute("SELECT gik.drop_dataset(%s)", (name,))
            refs = gefs_sized_refs(conn)
            n = sum(isinstance(v, list) for v in refs.values())
            timed("kerchunk parquet, pg_gik write", lambda: write_kerchunk_parquet(refs, d / "ours"), n)
            timed("kerchunk parquet, kerchunk.df.refs_to_dataframe", lambda: kerchunk.df.refs_to_dataframe(
                refs, str(d / "kerchunk")), n)
            timed("kerchunk parquet, pg_gik read", lambda: read_kerchunk_parquet(d / "ours"), n)
            files = ecmwf_sized_files(d)
            for label in ("parquet-import, new dataset", "parquet-import, same files again"):
                runs = timed(label, lambda: import_gik_parquet("", files, DATASETS[1]), 21675)
                assert [(r["refs"], r["version"]) for r in runs] == [(21675, 1)]
        finally:
            for name in DATASETS:
                conn.execute("SELECT gik.drop_dataset(%s)", (name,))
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
