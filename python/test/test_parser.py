"""pg_gik.GikParser through VirtualiZarr's own entry points, read with zarr/xarray/gribberish and kerchunk's formats,
values checked against gik.decode and chunk meaning against ecCodes."""
import json

import fsspec
import numpy as np
import pytest
import xarray as xr
import zarr
from conftest import GEFS, GEFS_RUNS, ECMWF, gik_decode
from gribberish.zarr.codec import GribberishCodec
from helpers import HTTP, check_chunk_meaning, read_range, zarr_group_arrays
from virtualizarr import open_virtual_dataset, open_virtual_mfdataset
from virtualizarr.parsers import KerchunkJSONParser

import pg_gik
from pg_gik.catalog import format_init, parse_init
from pg_gik.registry import registry_for, s3_endpoint

URL = f"gik://{GEFS}/2025-10-01T00Z"


@pytest.fixture(scope="module")
def registry(datasets):
    return registry_for(["s3://noaa-gefs-pds/", "s3://ecmwf-forecasts/", HTTP + "/"], s3_endpoint(""))


def refs_of(conn, dataset, init):
    return conn.execute("SELECT member, step_end, url, byte_offset, byte_length FROM gik.manifest(%s, %s, zarr_format => 3) "
                        "WHERE kind = 'chunk' ORDER BY 1, 2", (dataset, init)).fetchall()


def test_store_layout_codec_and_attributes(datasets, registry, conn):
    vds = open_virtual_dataset(URL, registry=registry, parser=pg_gik.GikParser("", variables=["APCP"]))
    tp = vds["tp"]
    assert tp.dims == ("member", "step", "latitude", "longitude")
    assert tp.shape == (3, 8, 721, 1440) and tp.dtype == np.float32
    assert list(vds["member"].values) == [0, 1, 2]
    assert list(vds["step"].values) == [3, 6, 9, 12, 15, 18, 21, 24]
    meta = tp.data.metadata
    assert np.isnan(meta.fill_value)
    codec = meta.to_dict()["codecs"][0]
    # exactly what gribberish's codec takes back (it rejects unknown keys)
    assert GribberishCodec.from_dict(codec).to_dict() == codec
    assert set(codec["configuration"]) <= {"var", "adjust_longitude_range", "north_up"}
    assert vds.attrs["gik_dataset"] == GEFS and vds.attrs["gik_run"] == "2025-10-01T00Z"
    version = conn.execute("SELECT r.version FROM gik.run r JOIN gik.dataset d USING (dataset_id) "
                           "WHERE d.name = %s AND r.init_time = %s", (GEFS, GEFS_RUNS[0])).fetchone()[0]
    assert vds.attrs["gik_run_version"] == version
    # one chunk per message, every reference of the catalog, nothing else
    manifest = tp.data.manifest
    paths = manifest._paths
    assert (paths != "").sum() == len(refs_of(conn, GEFS, GEFS_RUNS[0])) == 24
    # coordinates come from the grid description: 0.25° from 90 N and 0 E
    assert vds["latitude"].values[0] == 90 and vds["latitude"].values[-1] == -90
    assert vds["longitude"].values[1] == 0.25
    # accumulation windows: 6-hour buckets
    ds = xr.open_zarr(pg_gik.GikParser("")(URL, registry), zarr_format=3, consolidated=False)
    assert list(ds["tp_window_start"].values) == [0, 0, 6, 6, 12, 12, 18, 18]
    assert ds["valid_time"].values[0] == np.datetime64("2025-10-01T03:00")


def test_values_equal_gik_decode(datasets, registry, conn):
    store = pg_gik.GikParser("", variables=["APCP:surface"])(URL, registry)
    ds = xr.open_zarr(store, zarr_format=3, consolidated=False)
    for member, step, url, off, n in refs_of(conn, GEFS, GEFS_RUNS[0])[::5]:
        got = ds["tp"].sel(member=member, step=step).values
        want = gik_decode(conn, url, off, n)
        np.testing.assert_array_equal(got, want)


def test_longitude_convention_rolls_data_and_coordinates(datasets, registry, conn):
    ds = xr.open_zarr(pg_gik.GikParser("", longitude="-180..180")(URL, registry), zarr_format=3, consolidated=False)
    lons = ds["longitude"].values
    assert lons[0] == -180 and lons[-1] == 179.75 and np.all(np.diff(lons) > 0)
    member, step, url, off, n = refs_of(conn, GEFS, GEFS_RUNS[0])[3]
    np.testing.assert_array_equal(ds["tp"].sel(member=member, step=step).values,
                                  gik_decode(conn, url, off, n, "-180..180"))
    east_africa = ds["tp"].sel(member=member, step=step, latitude=slice(23, -12), longitude=slice(21, 53))
    assert east_africa.shape == (141, 129)


def test_ecmwf_parser_defaults_to_precipitation(datasets, registry, conn):
    class Parser(pg_gik.ECMWFParser):
        dataset = ECMWF
    vds = open_virtual_dataset("gik://2025-10-02T00Z", registry=registry, parser=Parser(""))
    assert list(vds.data_vars) == ["tp"]
    assert vds["longitude"].values[0] == -180
    ds = xr.open_zarr(Parser("")("gik://2025-10-02T00Z", registry), zarr_format=3, consolidated=False)
    member, step, url, off, n = refs_of(conn, ECMWF, "2025-10-02 00:00+00")[-1]
    np.testing.assert_array_equal(ds["tp"].sel(member=member, step=step).values, gik_decode(conn, url, off, n))


def test_to_kerchunk_json_chunks_mean_their_keys(datasets, registry, tmp_path):
    vds = open_virtual_dataset(URL, registry=registry, parser=pg_gik.GikParser(""))
    path = tmp_path / "refs.json"
    vds.vz.to_kerchunk(str(path), format="json")
    refs = json.loads(path.read_text())["refs"]
    fs = fsspec.filesystem("reference", fo=str(path), remote_protocol="s3", asynchronous=True,
                           remote_options={"asynchronous": True, "anon": True,
                                           "client_kwargs": {"endpoint_url": s3_endpoint("")}})
    group = zarr.open_group(zarr.storage.FsspecStore(fs, read_only=True, path=""), mode="r", zarr_format=2)
    arrays = zarr_group_arrays(group)

    def read(name, idx):
        ref = refs.get(f"{name}/{'.'.join(map(str, idx))}")
        return None if ref is None else read_range(*ref)
    assert check_chunk_meaning(arrays, read) == 24

    # the mutation the issue names: member order reversed in the chunk keys must fail the check
    reversed_refs = {}
    for k, v in refs.items():
        parts = k.split("/")
        if parts[0] == "tp" and parts[-1][:1].isdigit():
            i = parts[-1].split(".")
            i[0] = str(2 - int(i[0]))
            k = "tp/" + ".".join(i)
        reversed_refs[k] = v

    def read_reversed(name, idx):
        ref = reversed_refs.get(f"{name}/{'.'.join(map(str, idx))}")
        return None if ref is None else read_range(*ref)
    with pytest.raises(AssertionError, match="member 0 but the message is number 2"):
        check_chunk_meaning(arrays, read_reversed)


def test_to_kerchunk_parquet_and_to_icechunk_unchanged(datasets, registry, tmp_path, conn):
    import icechunk as ic
    vds = open_virtual_dataset(URL, registry=registry, parser=pg_gik.GikParser(""))
    vds.vz.to_kerchunk(str(tmp_path / "refs.parq"), format="parquet")
    fs = fsspec.filesystem("reference", fo=str(tmp_path / "refs.parq"), remote_protocol="s3",
                           remote_options={"anon": True})
    assert set(fs.ls("", detail=False)) >= {"tp", "latitude", "longitude", "member", "step"}
    assert fs.references["tp/1.1.0.0"][1:] == [int(x) for x in refs_of(conn, GEFS, GEFS_RUNS[0])[9][3:5]]

    from pg_gik.icechunk import container_credentials, container_store
    prefix = "s3://noaa-gefs-pds/"
    cfg = ic.RepositoryConfig.default()
    cfg.set_virtual_chunk_container(ic.VirtualChunkContainer(prefix, container_store(prefix, s3_endpoint(""))))
    repo = ic.Repository.create(ic.local_filesystem_storage(str(tmp_path / "repo")), config=cfg,
                                authorize_virtual_chunk_access=container_credentials([prefix]))
    s = repo.writable_session("main")
    vds.vz.to_icechunk(s.store)
    s.commit("virtualizarr to_icechunk of a pg_gik run")
    ds = xr.open_zarr(repo.readonly_session("main").store, zarr_format=3, consolidated=False)
    member, step, url, off, n = refs_of(conn, GEFS, GEFS_RUNS[0])[9]
    np.testing.assert_array_equal(ds["tp"].sel(member=member, step=step).values, gik_decode(conn, url, off, n))


def test_open_virtual_mfdataset_appends_runs(datasets, registry, conn):
    import pickle
    parser = pickle.loads(pickle.dumps(pg_gik.GikParser("", init_time_dim=True)))  # process executors pickle it
    assert parser(URL, registry)._group.arrays["tp"].shape == (1, 3, 8, 721, 1440)
    urls = [f"gik://{GEFS}/{format_init(parse_init(t))}" for t in GEFS_RUNS]
    vds = open_virtual_mfdataset(urls, registry=registry, parser=pg_gik.GikParser("", init_time_dim=True),
                                 combine="nested", concat_dim="init_time", coords="minimal", compat="override")
    assert vds["tp"].dims == ("init_time", "member", "step", "latitude", "longitude")
    assert vds["tp"].shape[0] == 2
    man = vds["tp"].data.manifest
    second = refs_of(conn, GEFS, GEFS_RUNS[1])[0]
    m_idx, s_idx = [0, 1, 2].index(second[0]), [3, 6, 9, 12, 15, 18, 21, 24].index(second[1])
    assert man._paths[1, m_idx, s_idx, 0, 0] == second[2] and int(man._offsets[1, m_idx, s_idx, 0, 0]) == second[3]


def test_http_urls(datasets, registry, conn):
    store = pg_gik.GikParser("", url_style="http")(URL, registry)
    ds = xr.open_zarr(store, zarr_format=3, consolidated=False)
    member, step, url, off, n = refs_of(conn, GEFS, GEFS_RUNS[0])[1]
    arr = store._group.arrays["tp"].manifest._paths
    assert all(p.startswith(HTTP + "/noaa-gefs-pds/") for p in arr.ravel() if p)
    np.testing.assert_array_equal(ds["tp"].sel(member=member, step=step).values, gik_decode(conn, url, off, n))


def test_errors_name_what_is_wrong(datasets, registry):
    with pytest.raises(pg_gik.RunNotFound, match=rf"dataset '{GEFS}' has no run 2025-10-09T00Z.*runs: 2025-10-01T00Z, 2025-10-02T00Z"):
        pg_gik.GikParser("")(f"gik://{GEFS}/2025-10-09T00Z", registry)
    with pytest.raises(pg_gik.GikError, match=r"dataset 'no_such_dataset'.*SQLSTATE"):
        pg_gik.GikParser("")("gik://no_such_dataset/2025-10-01T00Z", registry)
    with pytest.raises(pg_gik.GikError, match=r"invalid pg_gik URL 's3://x/y'"):
        pg_gik.GikParser("")("s3://x/y", registry)
    with pytest.raises(pg_gik.GikError, match=r"no field of dataset .* matches \"TMP\".*SQLSTATE 42704"):
        pg_gik.GikParser("", variables=["TMP"])(URL, registry)
    with pytest.raises(pg_gik.GikError, match="cannot give longitudes 0..360"):
        class P(pg_gik.ECMWFParser):
            dataset = ECMWF
        P("", longitude="0..360")("gik://2025-10-02T00Z", registry)


def test_to_kerchunk_json_zarr3_reads_values_with_fsspec_and_zarr(datasets, registry, tmp_path, conn):
    """VirtualiZarr's v2 kerchunk JSON drops the gribberish codec (its convert_v3_to_v2_metadata); the v3 form keeps
    it and reads back through fsspec's reference filesystem and zarr 3."""
    vds = open_virtual_dataset(URL, registry=registry, parser=pg_gik.GikParser(""))
    path = tmp_path / "refs3.json"
    vds.vz.to_kerchunk(str(path), format="json", zarr_format=3)
    fs = fsspec.filesystem("reference", fo=str(path), remote_protocol="s3", asynchronous=True,
                           remote_options={"asynchronous": True, "anon": True,
                                           "client_kwargs": {"endpoint_url": s3_endpoint("")}})
    ds = xr.open_zarr(zarr.storage.FsspecStore(fs, read_only=True, path=""), zarr_format=3, consolidated=False)
    meta = json.loads(json.loads(path.read_text())["refs"]["tp/zarr.json"])
    assert meta["codecs"] == [{"name": "gribberish", "configuration": {"var": "tp", "north_up": True}}]
    for member, step, url, off, n in refs_of(conn, GEFS, GEFS_RUNS[0])[::7]:
        np.testing.assert_array_equal(ds["tp"].sel(member=member, step=step).values, gik_decode(conn, url, off, n))
    # and VirtualiZarr's own kerchunk reader takes it back: the same references, the codec kept
    from obstore.store import LocalStore
    from obspec_utils.registry import ObjectStoreRegistry
    back = open_virtual_dataset(f"file://{path}", registry=ObjectStoreRegistry({"file://": LocalStore()}),
                                parser=KerchunkJSONParser())
    assert back["tp"].data.metadata.to_dict()["codecs"] == vds["tp"].data.metadata.to_dict()["codecs"]
    np.testing.assert_array_equal(back["tp"].data.manifest._paths, vds["tp"].data.manifest._paths)
    np.testing.assert_array_equal(back["tp"].data.manifest._offsets, vds["tp"].data.manifest._offsets)
    np.testing.assert_array_equal(back["tp"].data.manifest._lengths, vds["tp"].data.manifest._lengths)
