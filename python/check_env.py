"""Smoke checks of the project virtual environment (CPython 3.12): one small real operation per library, on the
repository's GRIB fixtures, on loopback only. Prints one line per check and exits non-zero on any failure.

Usage: "$(tools/venv.sh)" python/check_env.py [--keep]     (--keep leaves the scratch directory)

Servers it starts, each on a free port of 127.0.0.1 and stopped at the end: test/support/fault_server.py (Debian's
/usr/bin/python3, serving test/data), moto_server (from the venv), and nginx through test/support/mirror-server.sh
when /usr/sbin/nginx exists.
"""
import datetime
import json
import multiprocessing
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings

import numpy as np

warnings.filterwarnings("ignore", category=UserWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", category=FutureWarning)
os.environ.setdefault("ICECHUNK_LOG", "error")   # icechunk logs WARN lines on stderr (local storage, conditional PUT)

TOP = pathlib.Path(__file__).resolve().parent.parent
DATA = TOP / "test" / "data"
WAVE = DATA / "gribberish" / "gfswave.t18z.atlocn.0p16.f001.grib2"     # JPEG 2000, 19 messages, .idx beside it
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
            print(f"FAIL {name}: {type(e).__name__}: {first_line(e)}", flush=True)
        return fn
    return wrap


def first_line(e, n=300):
    return (str(e).strip().splitlines() or [""])[0][:n]


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
    """Our own VirtualiZarr parser (url, registry) -> ManifestStore: one float64 array per GRIB message (named
    <ecCodes shortName>_<message number>), one chunk per message, the gribberish codec, (latitude, longitude)."""
    from obstore import open_reader
    from virtualizarr.manifests import ChunkManifest, ManifestArray, ManifestGroup, ManifestStore
    from virtualizarr.manifests.utils import create_v3_array_metadata

    def parse(url, registry):
        store, path = registry.resolve(url)
        data = open_reader(store, path).read().to_bytes()
        arrays = {}
        for k, (off, n) in enumerate(messages(data)):
            if only and k not in only:
                continue
            _, short, nj, ni = eccodes_values(data[off:off + n])
            meta = create_v3_array_metadata(
                shape=(nj, ni), data_type=np.dtype("float64"), chunk_shape=(nj, ni), fill_value=float("nan"),
                codecs=[{"name": "gribberish", "configuration": {"var": short}}],
                attributes={"GRIB_shortName": short}, dimension_names=("latitude", "longitude"))
            manifest = ChunkManifest.from_arrays(
                paths=np.array([[url]], dtype=np.dtypes.StringDType()),
                offsets=np.array([[off]], dtype=np.uint64), lengths=np.array([[n]], dtype=np.uint64))
            arrays[f"{short}_{k}"] = ManifestArray(metadata=meta, chunkmanifest=manifest)
        return ManifestStore(ManifestGroup(arrays=arrays, attributes={"source": url}), registry=registry)
    return parse


def one_message_repo(storage, prefix, store_config, credential, location, off, n, short, nj, ni, checksum=None):
    """A new icechunk repository with one virtual-chunk container and one gribberish array whose only chunk is the
    byte range (off, n) of `location`. Returns the repository."""
    import icechunk as ic
    import zarr
    cfg = ic.RepositoryConfig.default()
    cfg.set_virtual_chunk_container(ic.VirtualChunkContainer(prefix, store_config))
    repo = ic.Repository.create(storage, config=cfg,
                                authorize_virtual_chunk_access=ic.containers_credentials({prefix: credential}))
    s = repo.writable_session("main")
    zarr.group(store=s.store).create_array(short, shape=(nj, ni), chunks=(nj, ni), dtype="f8", fill_value=np.nan,
                                           serializer={"name": "gribberish", "configuration": {"var": short}},
                                           compressors=None, dimension_names=("latitude", "longitude"))
    s.store.set_virtual_ref(f"{short}/c/0/0", location, offset=off, length=n, checksum=checksum)
    s.commit("one virtual GRIB message")
    return repo


def read_first_array(repo):
    import zarr
    g = zarr.open_group(repo.readonly_session("main").store, mode="r")
    return g[next(iter(g.array_keys()))][:]


def main():
    work = pathlib.Path(tempfile.mkdtemp(prefix="gik-venv-check-"))
    wave = WAVE.read_bytes()
    wave_msgs = messages(wave)
    wave_by_offset = {off: n for off, n in wave_msgs}
    off4, n4 = wave_msgs[4]
    vals4, short4, nj4, ni4 = eccodes_values(wave[off4:off4 + n4])
    servers = []

    def stop_servers():
        for p in servers:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()

    # test/support/fault_server.py (standard library, Debian's python3): Range, HEAD, ETag, Last-Modified on test/data.
    fault = subprocess.Popen(["/usr/bin/python3", str(TOP / "test" / "support" / "fault_server.py"), "--root", str(DATA), "--port", "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    servers.append(fault)
    http_base = f"http://127.0.0.1:{int(fault.stdout.readline())}"
    try:
        return run_checks(work, wave, wave_msgs, wave_by_offset, off4, n4, vals4, short4, nj4, ni4, http_base)
    finally:
        stop_servers()
        if "--keep" in sys.argv:
            print(f"scratch directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run_checks(work, wave, wave_msgs, wave_by_offset, off4, n4, vals4, short4, nj4, ni4, http_base):
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

    @check("gribberish decode")
    def _():
        import importlib.metadata
        import gribberish
        worst = 0.0
        for path in (WAVE, ECMWF, SOILW):
            data = path.read_bytes()
            for off, n in messages(data):
                a = gribberish.parse_grib_array(data[off:off + n], 0)
                v = eccodes_values(data[off:off + n])[0]
                assert np.array_equal(np.isnan(a), np.isnan(v))
                worst = max(worst, float(np.nanmax(np.abs(a - v))) if (~np.isnan(v)).any() else 0.0)
        return (f"gribberish {importlib.metadata.version('gribberish')}: every message of 3 files (JPEG 2000, CCSDS, "
                f"complex) equals ecCodes, max |diff| {worst}")

    @check("gribberish zarr codec configuration")
    def _():
        from zarr.registry import get_codec_class
        codec = get_codec_class("gribberish")
        out = []
        for label, conf in (("none", None), ("{}", {}), ("var", {"var": "swh"}),
                            ("var+flags", {"var": "swh", "adjust_longitude_range": True, "north_up": True}),
                            ("var+dtype", {"var": "swh", "dtype": "<f8"}), ("var=null", {"var": None})):
            d = {"name": "gribberish"} if conf is None else {"name": "gribberish", "configuration": conf}
            try:
                c = codec.from_dict(d)
                try:
                    codec.from_dict(c.to_dict())
                    out.append(f"{label}: ok")
                except TypeError:
                    out.append(f"{label}: accepted, but its to_dict() {c.to_dict()} does not load again")
            except TypeError:
                out.append(f"{label}: TypeError")
        assert out[2] == "var: ok" and out[3] == "var+flags: ok" and out[4] == "var+dtype: TypeError", out
        return f"{codec.__module__}.{codec.__name__}; " + "; ".join(out)

    @check("zarr round trip")
    def _():
        import zarr
        z = zarr.create_array(store=str(work / "a.zarr"), shape=(4, 5), chunks=(2, 5), dtype="f4",
                              fill_value=np.nan, dimension_names=("y", "x"))
        z[:] = np.arange(20, dtype="f4").reshape(4, 5)
        back = zarr.open_array(str(work / "a.zarr"), mode="r")
        assert back[3, 4] == 19 and back.metadata.zarr_format == 3
        return f"zarr {zarr.__version__}, v3 array written and read"

    @check("icechunk local repository: tiny array write/commit/read")
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
        top = sorted(p.name + ("/" if p.is_dir() else "") for p in (work / "repo").iterdir())
        return (f"icechunk {ic.__version__}, repository spec {int(repo.spec_version)}, commit {sid}, "
                f"branches {sorted(repo.list_branches())}, top level {top}")

    @check("icechunk virtual chunk, file:// container, last-modified checksum")
    def _():
        import icechunk as ic
        from icechunk.credentials import LocalFileSystemAccess
        mtime = datetime.datetime.fromtimestamp(WAVE.stat().st_mtime, tz=datetime.timezone.utc) + datetime.timedelta(seconds=1)
        args = (f"file://{DATA}/", ic.local_filesystem_store(str(DATA)), LocalFileSystemAccess, f"file://{WAVE}",
                off4, n4, short4, nj4, ni4)
        got = read_first_array(one_message_repo(ic.local_filesystem_storage(str(work / "vfile")), *args, checksum=mtime))
        assert np.array_equal(got.ravel(), vals4, equal_nan=True)
        try:
            read_first_array(one_message_repo(ic.local_filesystem_storage(str(work / "vfile-stale")), *args,
                                              checksum=mtime - datetime.timedelta(days=1)))
            stale = "stale date NOT detected"
        except Exception as e:  # noqa: BLE001
            stale = f"stale date refused ({type(e).__name__})"
        return f"{short4} through the gribberish codec = ecCodes ({np.isnan(vals4).sum()} NaN of {vals4.size}); {stale}"

    http_head = urllib.request.urlopen(urllib.request.Request(f"{http_base}/gribberish/{WAVE.name}", method="HEAD"))
    etag = http_head.headers["ETag"]

    def stale_etag(make_repo):
        try:
            read_first_array(make_repo('"0-0"'))
            return "a wrong etag is NOT refused (the server ignores If-Match)"
        except Exception as e:  # noqa: BLE001
            return f"a wrong etag is refused ({type(e).__name__})"

    @check("icechunk virtual chunk, http://127.0.0.1:PORT/ container (fault_server)")
    def _():
        import icechunk as ic
        from icechunk.credentials import HttpAccess

        def make(checksum, name=[0]):
            name[0] += 1
            return one_message_repo(ic.local_filesystem_storage(str(work / f"vhttp{name[0]}")), f"{http_base}/",
                                    ic.http_store(), HttpAccess, f"{http_base}/gribberish/{WAVE.name}",
                                    off4, n4, short4, nj4, ni4, checksum=checksum)
        got = read_first_array(make(etag))
        assert np.array_equal(got.ravel(), vals4, equal_nan=True)
        return f"{http_base}/gribberish/... with etag {etag}: {short4} = ecCodes; {stale_etag(make)}"

    @check("icechunk virtual chunk, s3://bucket/ container: anonymous path-style S3 at the HTTP server")
    def _():
        import icechunk as ic

        def make(checksum, name=[0]):
            name[0] += 1
            return one_message_repo(ic.local_filesystem_storage(str(work / f"vs3http{name[0]}")), "s3://gribberish/",
                                    ic.s3_store(region="us-east-1", endpoint_url=http_base, allow_http=True,
                                                anonymous=True, force_path_style=True),
                                    ic.s3_anonymous_credentials(), f"s3://gribberish/{WAVE.name}",
                                    off4, n4, short4, nj4, ni4, checksum=checksum)
        got = read_first_array(make(etag))
        assert np.array_equal(got.ravel(), vals4, equal_nan=True)
        return f"s3://gribberish/{WAVE.name} -> GET {http_base}/gribberish/...: {short4} = ecCodes; {stale_etag(make)}"

    if os.path.exists("/usr/sbin/nginx"):
        @check("icechunk virtual chunks on the nginx mirror (test/support/mirror-server.sh): etag / last-modified")
        def _():
            import icechunk as ic
            from icechunk.credentials import HttpAccess
            port, state = free_port(), work / "nginx"
            subprocess.run([str(TOP / "test" / "support" / "mirror-server.sh"), "start", str(DATA), str(port), str(state)],
                           check=True, capture_output=True)
            try:
                base = f"http://127.0.0.1:{port}"
                head = urllib.request.urlopen(urllib.request.Request(f"{base}/gribberish/{WAVE.name}", method="HEAD")).headers
                lm = datetime.datetime.strptime(head["Last-Modified"], "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=datetime.timezone.utc)
                out, dirs = {}, iter(range(100))
                for label, ck in (("etag", head["ETag"]), ('etag in extra quotes', f'"{head["ETag"]}"'),
                                  ("last-modified", lm), ("last-modified - 1 s", lm - datetime.timedelta(seconds=1))):
                    for kind, prefix, store_cfg, cred, loc in (
                            ("http", f"{base}/", ic.http_store(), HttpAccess, f"{base}/gribberish/{WAVE.name}"),
                            ("s3", "s3://gribberish/", ic.s3_store(region="us-east-1", endpoint_url=base, allow_http=True,
                                                                   anonymous=True, force_path_style=True),
                             ic.s3_anonymous_credentials(), f"s3://gribberish/{WAVE.name}")):
                        try:
                            got = read_first_array(one_message_repo(
                                ic.local_filesystem_storage(str(work / f"vnginx{next(dirs)}")), prefix, store_cfg,
                                cred, loc, off4, n4, short4, nj4, ni4, checksum=ck))
                            assert np.array_equal(got.ravel(), vals4, equal_nan=True)
                            out.setdefault(label, []).append(f"{kind} read")
                        except AssertionError:
                            raise
                        except Exception:  # noqa: BLE001
                            out.setdefault(label, []).append(f"{kind} refused")
                assert out["last-modified"] == ["http read", "s3 read"], out
                assert out["last-modified - 1 s"] == ["http refused", "s3 refused"], out
                return "; ".join(f"{k}: {', '.join(v)}" for k, v in out.items())
            finally:
                subprocess.run([str(TOP / "test" / "support" / "mirror-server.sh"), "stop", str(state)], capture_output=True)

    @check("moto_server: icechunk repository in S3 (endpoint override) + virtual refs with etag")
    def _():
        import boto3
        import icechunk as ic
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
            vcred = ic.s3_credentials(access_key_id="test", secret_access_key="test")
            repo = one_message_repo(storage, "s3://gribs/", ic.s3_store(**opts), vcred, "s3://gribs/wave.grib2",
                                    off4, n4, short4, nj4, ni4, checksum=etag)
            keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="repo", Prefix="r1/")["Contents"])
            repo2 = ic.Repository.open(storage, authorize_virtual_chunk_access=ic.containers_credentials({"s3://gribs/": vcred}))
            assert np.array_equal(read_first_array(repo2).ravel(), vals4, equal_nan=True)
            s3.put_object(Bucket="gribs", Key="wave.grib2", Body=wave + b"x")  # new etag: the ref is stale
            try:
                read_first_array(repo2)
                stale = "stale ref NOT detected"
            except Exception as e:  # noqa: BLE001
                stale = f"stale etag refused ({type(e).__name__}: {first_line(e, 110)})"
            return f"repo objects {len(keys)} under {sorted({k.removeprefix('r1/').split('/')[0] for k in keys})}, {short4} read back = ecCodes, {stale}"
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

    # ---- VirtualiZarr 2.8 + gribberish.virtualizarr.GribberishParser
    from obspec_utils.registry import ObjectStoreRegistry
    from obstore.store import LocalStore
    registry = ObjectStoreRegistry({"file://": LocalStore()})
    url = f"file://{WAVE}"
    state = {}

    def refs_of(vds):
        """{(variable, chunk key): (path, offset, length)} of every virtual data variable."""
        from virtualizarr.manifests import ManifestArray
        return {(name, key): (e["path"], e["offset"], e["length"]) for name, v in vds.data_vars.items()
                if isinstance(v.data, ManifestArray) for key, e in v.data.manifest.dict().items()}

    def equals_eccodes(ds, refs):
        """Every chunk of `refs` read from `ds` equals ecCodes' decoding of the message it points at."""
        for (name, key), (_, off, n) in refs.items():
            idx = tuple(int(i) for i in key.split("."))
            got = np.asarray(ds[name][idx[:-2]])
            assert np.array_equal(got.ravel(), eccodes_values(wave[off:off + n])[0], equal_nan=True), (name, key)
        return len(refs)

    @check("virtualizarr open_virtual_dataset(GribberishParser), full read and use_index")
    def _():
        import virtualizarr as vz
        from gribberish.virtualizarr import GribberishParser
        tree = vz.open_virtual_datatree(url, registry=registry, parser=GribberishParser())
        full = vz.open_virtual_dataset(url, registry=registry, parser=GribberishParser(collapse_groups=True))
        by_idx = vz.open_virtual_dataset(url, registry=registry, parser=GribberishParser(collapse_groups=True, use_index=".idx"))
        try:
            vz.open_virtual_dataset(url, registry=registry, parser=GribberishParser(collapse_groups=True, use_index=True))
            true_idx = "use_index=True works"
        except ValueError as e:
            true_idx = f"use_index=True -> ValueError ({first_line(e, 80)})"
        refs = refs_of(full)
        assert refs == refs_of(by_idx) and sorted(off for _, off, _ in refs.values()) == sorted(wave_by_offset)
        assert all(wave_by_offset[off] == n for _, off, n in refs.values())
        state["vds"] = by_idx
        groups = [g for g in tree.groups if tree[g].ds.data_vars]
        return (f"virtualizarr {vz.__version__}; default layout: groups {groups}; collapse_groups=True: "
                f"{len(full.data_vars)} variables, {len(refs)} chunks = the 19 messages; use_index='.idx' gives the "
                f"same manifest; {true_idx}")

    @check("virtualizarr .vz.to_icechunk -> xr.open_zarr(session.store) = ecCodes")
    def _():
        import icechunk as ic
        import xarray as xr
        from icechunk.credentials import LocalFileSystemAccess
        vds = state["vds"]
        cfg = ic.RepositoryConfig.default()
        cfg.set_virtual_chunk_container(ic.VirtualChunkContainer(f"file://{DATA}/", ic.local_filesystem_store(str(DATA))))
        repo = ic.Repository.create(ic.local_filesystem_storage(str(work / "vzrepo")), config=cfg,
                                    authorize_virtual_chunk_access=ic.containers_credentials({f"file://{DATA}/": LocalFileSystemAccess}))
        s = repo.writable_session("main")
        vds.vz.to_icechunk(s.store)
        s.commit("virtualizarr")
        session = repo.readonly_session("main")
        ds = xr.open_zarr(session.store, zarr_format=3, consolidated=False)
        n = equals_eccodes(ds, refs_of(vds))
        return f"{n} chunks of {len(ds.data_vars)} variables decoded = ecCodes; coords {sorted(ds.coords)}"

    @check("virtualizarr custom parser (ChunkManifest.from_arrays, ManifestArray/Group/Store) -> to_icechunk")
    def _():
        import icechunk as ic
        import virtualizarr as vz
        import xarray as xr
        from icechunk.credentials import LocalFileSystemAccess
        vds = vz.open_virtual_dataset(url, registry=registry, parser=grib_parser(only={0, 4, 8}))
        cfg = ic.RepositoryConfig.default()
        cfg.set_virtual_chunk_container(ic.VirtualChunkContainer(f"file://{DATA}/", ic.local_filesystem_store(str(DATA))))
        repo = ic.Repository.create(ic.local_filesystem_storage(str(work / "ownrepo")), config=cfg,
                                    authorize_virtual_chunk_access=ic.containers_credentials({f"file://{DATA}/": LocalFileSystemAccess}))
        s = repo.writable_session("main")
        vds.vz.to_icechunk(s.store)
        s.commit("own parser")
        ds = xr.open_zarr(repo.readonly_session("main").store, zarr_format=3, consolidated=False)
        assert np.array_equal(ds[f"{short4}_4"].values.ravel(), vals4, equal_nan=True)
        return f"{sorted(vds.data_vars)}; {short4}_4 = ecCodes"

    @check("virtualizarr .vz.to_kerchunk json (zarr_format 2 and 3) read back with fsspec + zarr")
    def _():
        import fsspec
        import xarray as xr
        import zarr
        vds = state["vds"]
        out = []
        for fmt in (2, 3):
            path = work / f"refs.v{fmt}.json"
            vds.vz.to_kerchunk(str(path), format="json", zarr_format=fmt)
            refs = json.loads(path.read_text())["refs"]
            meta = json.loads(refs["htsgw/.zarray" if fmt == 2 else "htsgw/zarr.json"])
            codecs = (meta["filters"], meta["compressor"]) if fmt == 2 else [c["name"] for c in meta["codecs"]]
            fs = fsspec.filesystem("reference", fo=str(path), remote_protocol="file", asynchronous=True,
                                   remote_options={"asynchronous": True})
            store = zarr.storage.FsspecStore(fs, read_only=True, path="")
            try:
                n = equals_eccodes(xr.open_zarr(store, zarr_format=fmt, consolidated=False), refs_of(vds))
                out.append(f"v{fmt}: codecs {codecs}, {n} chunks = ecCodes")
            except Exception as e:  # noqa: BLE001
                out.append(f"v{fmt}: codecs {codecs}, unreadable ({type(e).__name__}: {first_line(e, 70)})")
        assert out[1].endswith("= ecCodes"), out
        return "; ".join(out)

    @check("virtualizarr .vz.to_kerchunk parquet + KerchunkParquetParser read back")
    def _():
        import virtualizarr as vz
        from virtualizarr.parsers import KerchunkParquetParser
        vds = state["vds"]
        try:
            vds.vz.to_kerchunk(str(work / "refs0.parq"), format="parquet", record_size=2)
            as_is = "written as is"
        except KeyError as e:
            as_is = f"as is -> KeyError {e} (0-d array's chunk key)"
        # the workaround: no 0-d spatial_ref, no float _FillValue attribute on the loaded coordinates
        fixed = vds.drop_vars("spatial_ref")
        for c in fixed.coords:
            fixed[c].encoding["_FillValue"] = None
        fixed.vz.to_kerchunk(str(work / "refs.parq"), format="parquet", record_size=2)
        files = sorted(str(p.relative_to(work / "refs.parq")) for p in (work / "refs.parq").rglob("*") if p.is_file())
        back = vz.open_virtual_dataset(f"file://{work}/refs.parq", registry=registry, parser=KerchunkParquetParser())
        assert refs_of(back) == refs_of(vds)
        codecs = [type(c).__name__ for c in back["htsgw"].data.metadata.codecs]
        return (f"{as_is}; without spatial_ref and _FillValue: {len(files)} files ({files[0]}, {files[-1]}, ...), "
                f"read back: same {len(refs_of(back))} refs, codecs now {codecs}")

    @check("virtualizarr open_virtual_mfdataset, parser pickled to a forkserver ProcessPoolExecutor")
    def _():
        from concurrent.futures import ProcessPoolExecutor
        import virtualizarr as vz
        from gribberish.virtualizarr import GribberishParser
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver")) as ex:
            m = vz.open_virtual_mfdataset([url], registry=registry, parallel=ex,
                                          parser=GribberishParser(collapse_groups=True, use_index=".idx"))
        assert refs_of(m) == refs_of(state["vds"])
        return f"{len(m.data_vars)} variables, same manifest"

    @check("herbie-data inventory of local .idx / .index files")
    def _():
        import types
        os.environ["HERBIE_CONFIG_PATH"] = str(work / "herbie")      # herbie writes a config on import
        os.environ["HERBIE_SAVE_DIR"] = str(work / "herbie-data")
        import contextlib
        import io
        with contextlib.redirect_stdout(io.StringIO()):                # and prints a banner about it
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

    @check("psycopg / psycopg2 / pytest / requests / aiohttp / pandas / pyarrow / fastparquet / s3fs / kerchunk import")
    def _():
        import aiohttp
        import fastparquet
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
                f"fastparquet {fastparquet.__version__}, s3fs {s3fs.__version__}, kerchunk {kerchunk.__version__}")

    print(f"Python {sys.version.split()[0]} ({sys.executable}); {len(failures)} failed"
          + (f": {', '.join(failures)}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
