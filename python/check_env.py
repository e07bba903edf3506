"""Smoke checks of the project virtual environment: one small real operation per library, on the
repository's GRIB fixtures, on loopback only. Prints one line per check and exits non-zero on failure.

Usage: "$(tools/venv.sh)" python/check_env.py [--keep]     (--keep leaves the scratch directory)
"""
import datetime
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore", category=UserWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=FutureWarning)

TOP = pathlib.Path(__file__).resolve().parent.parent
DATA = TOP / "test" / "data"
WAVE = DATA / "gribberish" / "gfswave.t18z.atlocn.0p16.f001.grib2"     # JPEG 2000, 19 messages
ECMWF = DATA / "gribberish" / "ecmwf-ifs-oper-surface.grib2"           # CCSDS, 5 messages
SOILW = DATA / "kerchunk" / "gec00_20250101_00_soilw.grib"             # complex packing, 1 message
failures = []


def check(name):
    """Decorator: run a check, print its one-line result, record failures."""
    def wrap(fn):
        t0 = time.monotonic()
        try:
            detail = fn()
            print(f"ok   {name}: {detail} ({time.monotonic() - t0:.1f}s)", flush=True)
        except Exception as e:  # noqa: BLE001 - reported, then exit status
            failures.append(name)
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
        return fn
    return wrap


def messages(data):
    """(offset, length) of every GRIB message in a byte string, from section 0 (GRIB1 and GRIB2)."""
    out, pos = [], 0
    while (pos := data.find(b"GRIB", pos)) >= 0:
        n = int.from_bytes(data[pos + 8:pos + 16], "big") if data[pos + 7] == 2 else int.from_bytes(data[pos + 4:pos + 7], "big")
        assert data[pos + n - 4:pos + n] == b"7777", (pos, n)
        out.append((pos, n))
        pos += n
    return out


def eccodes_values(message):
    """ecCodes' values of one message, NaN where the bitmap says missing."""
    import eccodes
    h = eccodes.codes_new_from_message(message)
    try:
        v = eccodes.codes_get_values(h).astype("float64")
        if eccodes.codes_get(h, "bitmapPresent"):
            v[v == eccodes.codes_get(h, "missingValue")] = np.nan
        return v, eccodes.codes_get(h, "shortName"), eccodes.codes_get(h, "Nj"), eccodes.codes_get(h, "Ni")
    finally:
        eccodes.codes_release(h)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def grib_parser(only=None):
    """A VirtualiZarr parser (url, registry) -> ManifestStore: one float64 array per GRIB message,
    one chunk per message, the gribberish codec, (latitude, longitude) dimensions."""
    from obstore import open_reader
    from virtualizarr.manifests import ChunkManifest, ManifestArray, ManifestGroup, ManifestStore
    from virtualizarr.manifests.utils import create_v3_array_metadata

    def parse(url, registry):
        store, path = registry.resolve(url)
        data = open_reader(store, path).read().to_bytes()
        arrays = {}
        for k, (off, n) in enumerate(messages(data)):
            _, short, nj, ni = eccodes_values(data[off:off + n])
            name = f"{short}_{k}"
            if only and k not in only:
                continue
            meta = create_v3_array_metadata(
                shape=(nj, ni), data_type=np.dtype("float64"), chunk_shape=(nj, ni), fill_value=float("nan"),
                codecs=[{"name": "gribberish", "configuration": {"var": short}}],
                attributes={"GRIB_shortName": short}, dimension_names=("latitude", "longitude"))
            manifest = ChunkManifest.from_arrays(
                paths=np.array([[url]], dtype=np.dtypes.StringDType()),
                offsets=np.array([[off]], dtype=np.uint64), lengths=np.array([[n]], dtype=np.uint64))
            arrays[name] = ManifestArray(metadata=meta, chunkmanifest=manifest)
        return ManifestStore(ManifestGroup(arrays=arrays, attributes={"source": url}), registry=registry)
    return parse


def main():
    work = pathlib.Path(tempfile.mkdtemp(prefix="gik-venv-check-"))
    wave = WAVE.read_bytes()
    wave_msgs = messages(wave)

    @check("eccodes")
    def _():
        import eccodes
        got = []
        for path in (ECMWF, SOILW):
            with open(path, "rb") as f:
                while (h := eccodes.codes_grib_new_from_file(f)) is not None:
                    got.append((eccodes.codes_get(h, "packingType"), eccodes.codes_get_values(h).size))
                    eccodes.codes_release(h)
        assert ("grid_ccsds", 1038240) in got and ("grid_complex_spatial_differencing", 259920) in got, got
        return f"ecCodes {eccodes.codes_get_api_version()}, {len(got)} messages (CCSDS + complex packing) read"

    @check("cfgrib")
    def _():
        import cfgrib
        import xarray as xr
        ds = xr.open_dataset(ECMWF, engine="cfgrib", backend_kwargs={"indexpath": ""})
        return f"cfgrib {cfgrib.__version__}: {sorted(ds.data_vars)} {dict(ds.sizes)}"

    @check("gribberish")
    def _():
        import gribberish
        worst = 0.0
        for path in (WAVE, ECMWF, SOILW):
            data = path.read_bytes()
            for off, n in messages(data):
                a = gribberish.parse_grib_array(data[off:off + n], 0)
                v = eccodes_values(data[off:off + n])[0]
                assert np.array_equal(np.isnan(a), np.isnan(v))
                worst = max(worst, float(np.nanmax(np.abs(a - v))) if (~np.isnan(v)).any() else 0.0)
        return f"every message of 3 files (JPEG 2000, CCSDS, complex) equals ecCodes, max |diff| {worst}"

    @check("zarr round trip")
    def _():
        import zarr
        z = zarr.create_array(store=str(work / "a.zarr"), shape=(4, 5), chunks=(2, 5), dtype="f4",
                              fill_value=np.nan, dimension_names=("y", "x"))
        z[:] = np.arange(20, dtype="f4").reshape(4, 5)
        back = zarr.open_array(str(work / "a.zarr"), mode="r")
        assert back[3, 4] == 19 and back.metadata.zarr_format == 3
        return f"zarr {zarr.__version__}, v3 array written and read"

    @check("icechunk local repo")
    def _():
        import icechunk as ic
        import zarr
        repo = ic.Repository.create(ic.local_filesystem_storage(str(work / "repo")))
        s = repo.writable_session("main")
        g = zarr.group(store=s.store)
        g.create_array("t", shape=(3, 4), chunks=(1, 4), dtype="f8", dimension_names=("step", "x"))[:] = np.arange(12.0).reshape(3, 4)
        sid = s.commit("tiny array")
        repo.create_branch("dev", sid)
        ro = repo.readonly_session("main")
        assert zarr.open_group(ro.store, mode="r")["t"][2].tolist() == [8, 9, 10, 11]
        return f"icechunk {ic.__version__} (spec {ic.spec_version()}), commit {sid}, branches {sorted(repo.list_branches())}"

    @check("icechunk virtual refs + gribberish codec (local file)")
    def _():
        import icechunk as ic
        import zarr
        cfg = ic.RepositoryConfig.default()
        cfg.set_virtual_chunk_container(ic.VirtualChunkContainer(f"file://{DATA}/", ic.local_filesystem_store(str(DATA))))
        repo = ic.Repository.create(ic.local_filesystem_storage(str(work / "vrepo")), config=cfg,
                                    authorize_virtual_chunk_access={f"file://{DATA}/": None})
        s = repo.writable_session("main")
        off, n = wave_msgs[4]
        vals, short, nj, ni = eccodes_values(wave[off:off + n])
        zarr.group(store=s.store).create_array(short, shape=(nj, ni), chunks=(nj, ni), dtype="f8", fill_value=np.nan,
                                               serializer={"name": "gribberish", "configuration": {"var": short}},
                                               compressors=None, dimension_names=("latitude", "longitude"))
        mtime = datetime.datetime.fromtimestamp(WAVE.stat().st_mtime, tz=datetime.timezone.utc) + datetime.timedelta(seconds=1)
        s.store.set_virtual_ref(f"{short}/c/0/0", f"file://{WAVE}", offset=off, length=n, checksum=mtime)
        s.commit("one virtual GRIB message")
        got = zarr.open_group(repo.readonly_session("main").store, mode="r")[short][:]
        assert np.array_equal(got.ravel(), vals, equal_nan=True)
        return f"{short} read through icechunk = ecCodes ({np.isnan(vals).sum()} NaN of {vals.size})"

    @check("moto_server + icechunk on S3 (endpoint override) + virtual refs with etag")
    def _():
        import boto3
        import icechunk as ic
        import zarr
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        moto = shutil.which("moto_server", path=os.path.dirname(sys.executable))
        proc = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            creds = dict(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
            s3 = boto3.client("s3", endpoint_url=endpoint, **creds)
            for _ in range(100):
                try:
                    s3.list_buckets()
                    break
                except Exception:  # noqa: BLE001 - server still starting
                    time.sleep(0.1)
            s3.create_bucket(Bucket="repo")
            s3.create_bucket(Bucket="gribs")
            s3.put_object(Bucket="gribs", Key="wave.grib2", Body=wave)
            etag = s3.head_object(Bucket="gribs", Key="wave.grib2")["ETag"]
            opts = dict(region="us-east-1", endpoint_url=endpoint, allow_http=True, force_path_style=True)
            storage = ic.s3_storage(bucket="repo", prefix="r1", access_key_id="test", secret_access_key="test", **opts)
            cfg = ic.RepositoryConfig.default()
            cfg.set_virtual_chunk_container(ic.VirtualChunkContainer("s3://gribs/", ic.s3_store(**opts)))
            vcreds = ic.containers_credentials({"s3://gribs/": ic.s3_credentials(access_key_id="test", secret_access_key="test")})
            repo = ic.Repository.create(storage, config=cfg, authorize_virtual_chunk_access=vcreds)
            s = repo.writable_session("main")
            off, n = wave_msgs[0]
            vals, short, nj, ni = eccodes_values(wave[off:off + n])
            zarr.group(store=s.store).create_array(short, shape=(nj, ni), chunks=(nj, ni), dtype="f8", fill_value=np.nan,
                                                   serializer={"name": "gribberish", "configuration": {"var": short}},
                                                   compressors=None, dimension_names=("latitude", "longitude"))
            s.store.set_virtual_refs(short, [ic.VirtualChunkSpec([0, 0], "s3://gribs/wave.grib2", off, n, etag_checksum=etag)])
            s.commit("virtual ref on S3")
            keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="repo", Prefix="r1/")["Contents"])
            repo2 = ic.Repository.open(storage, authorize_virtual_chunk_access=vcreds)
            got = zarr.open_group(repo2.readonly_session("main").store, mode="r")[short][:]
            assert np.array_equal(got.ravel(), vals, equal_nan=True)
            s3.put_object(Bucket="gribs", Key="wave.grib2", Body=wave + b"x")  # new etag: the ref is stale
            try:
                zarr.open_group(repo2.readonly_session("main").store, mode="r")[short][:]
                stale = "stale ref NOT detected"
            except Exception as e:  # noqa: BLE001
                stale = f"stale etag refused ({type(e).__name__}: {str(e).splitlines()[0][:120]})"
            return f"{len(keys)} repo objects in the bucket, {short} read back = ecCodes, {stale}"
        finally:
            proc.terminate()
            proc.wait(10)

    @check("dask.distributed LocalCluster(n_workers=2, processes=True)")
    def _():
        import dask.array as da
        from dask.distributed import Client, LocalCluster
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                          host="127.0.0.1") as cluster, Client(cluster) as client:
            total = da.arange(1_000_000, chunks=100_000).sum().compute()
            nw = len(client.scheduler_info()["workers"])
        assert total == 499999500000
        return f"sum = {total} on {nw} worker processes"

    @check("virtualizarr open_virtual_dataset + to_icechunk + to_kerchunk json/parquet")
    def _():
        import icechunk as ic
        import virtualizarr as vz
        import xarray as xr
        from obspec_utils.registry import ObjectStoreRegistry
        from obstore.store import LocalStore
        from virtualizarr.parsers import KerchunkParquetParser
        url = f"file://{WAVE}"
        registry = ObjectStoreRegistry({"file://": LocalStore()})
        vds = vz.open_virtual_dataset(url, registry=registry, parser=grib_parser(only={0, 4, 8}))
        cfg = ic.RepositoryConfig.default()
        cfg.set_virtual_chunk_container(ic.VirtualChunkContainer(f"file://{DATA}/", ic.local_filesystem_store(str(DATA))))
        repo = ic.Repository.create(ic.local_filesystem_storage(str(work / "vzrepo")), config=cfg,
                                    authorize_virtual_chunk_access={f"file://{DATA}/": None})
        s = repo.writable_session("main")
        vds.vz.to_icechunk(s.store)
        s.commit("virtualizarr")
        ds = xr.open_zarr(repo.readonly_session("main").store, consolidated=False, zarr_format=3)
        off, n = wave_msgs[4]
        assert np.array_equal(ds["swh_4"].values.ravel(), eccodes_values(wave[off:off + n])[0], equal_nan=True)
        refs = vds.vz.to_kerchunk(format="dict")
        vds.vz.to_kerchunk(str(work / "refs.json"), format="json")
        vds.vz.to_kerchunk(str(work / "refs.parq"), format="parquet", record_size=2)
        parq = sorted(str(p.relative_to(work / "refs.parq")) for p in (work / "refs.parq").rglob("*") if p.is_file())
        back = vz.open_virtual_dataset(f"file://{work}/refs.parq", registry=registry, parser=KerchunkParquetParser())
        assert sorted(back.data_vars) == sorted(vds.data_vars)
        zarray = json.loads(refs["refs"]["swh_4/.zarray"])  # the v2 writer drops the gribberish codec
        return (f"virtualizarr {vz.__version__}: {sorted(vds.data_vars)}; icechunk read = ecCodes; kerchunk v2 "
                f"filters={zarray['filters']} compressor={zarray['compressor']}; parquet files {parq}")

    @check("herbie-data inventory of local .idx / .index files")
    def _():
        import types
        os.environ["HERBIE_CONFIG_PATH"] = str(work / "herbie")      # herbie writes a config on import
        os.environ["HERBIE_SAVE_DIR"] = str(work / "herbie-data")
        from herbie import Herbie, __version__
        out = []
        for path, style in ((DATA / "dynamical" / "gep01.t00z.pgrb2s.0p25.f015.idx", "wgrib2"),
                            (DATA / "dynamical" / "aifs_single_20250301_00z_0h.index", "eccodes")):
            # Herbie's own parser, without a Herbie object (whose constructor looks for the GRIB file)
            h = types.SimpleNamespace(idx=str(path), idx_source="local", IDX_STYLE=style, fxx=15, grib_source="local",
                                      verbose=False, model="gefs", product="", date=None)
            df = Herbie.index_as_dataframe.func(h)
            out.append(f"{path.name}: {len(df)} rows, first range {df['range'].iloc[0]}, last {df['range'].iloc[-1]}")
        return f"herbie {__version__}: " + "; ".join(out)

    @check("psycopg / psycopg2 / pytest / requests / aiohttp / pandas / pyarrow / s3fs / kerchunk import")
    def _():
        import aiohttp
        import kerchunk
        import pandas
        import psycopg
        import psycopg2
        import pyarrow
        import pytest
        import requests
        import s3fs
        return (f"psycopg {psycopg.__version__} ({psycopg.pq.__impl__}), psycopg2 {psycopg2.__version__.split()[0]}, pytest {pytest.__version__}, "
                f"requests {requests.__version__}, aiohttp {aiohttp.__version__}, pandas {pandas.__version__}, pyarrow {pyarrow.__version__}, "
                f"s3fs {s3fs.__version__}, kerchunk {kerchunk.__version__}")

    if "--keep" in sys.argv:
        print(f"scratch directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(failures)} failed" + (f": {', '.join(failures)}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
