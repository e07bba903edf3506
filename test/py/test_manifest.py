"""Manifests read by real clients.

- fsspec's ReferenceFileSystem opens the exported kerchunk JSON against the loopback nginx mirror; every chunk's
  bytes are the GRIB message at (offset, length) of the file, and ecCodes decodes them to what gik.decode gives;
- zarr 3 and xarray open the metadata (through zarr's FsspecStore): shapes, chunks, dimension names, coordinates;
- the Zarr v3 document has the same arrays, the gribberish codec and the same references; zarr-python parses
  every zarr.json in it (group and arrays) and opens it from a MemoryStore, and gribberish's registered zarr
  codec is built from its codec configuration and decodes a referenced message to ecCodes' values;
- COPY and \\copy write files that json.load reads;
- imports: the exported file, and GIK [key, value] rows exactly as GIK's pipelines write them (grib_tree
  layout with inline coordinates, per-member files, bytea values), all in one transaction.
"""
import base64
import io
import json
import os
import pathlib
import shutil
import subprocess
import tempfile

import eccodes
import fsspec
import numcodecs
import numpy as np
import psycopg2
import pytest
import zarr
from numcodecs.abc import Codec

from conftest import HTTP, connect, mirror_path, query, scalar

GEFS = "pym_gefs"
ECMWF = "pym_ecmwf"
COPY_OPTS = "WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"


class GribCodec(Codec):
    """kerchunk's "grib" filter: one GRIB message in, its values (missing points as NaN) out."""

    codec_id = "grib"

    def __init__(self, var, dtype=None):
        self.var = var
        self.dtype = dtype

    def encode(self, buf):
        return buf

    def decode(self, buf, out=None):
        data = grib_values(bytes(buf)).astype(self.dtype or "float64")
        return numcodecs.compat.ndarray_copy(data, out) if out is not None else data


numcodecs.register_codec(GribCodec)


def grib_values(message):
    """ecCodes' values of one GRIB message, NaN where the bitmap says missing."""
    h = eccodes.codes_new_from_message(message)
    try:
        vals = eccodes.codes_get_array(h, "values").astype("float64")
        if eccodes.codes_get(h, "bitmapPresent"):
            vals[vals == eccodes.codes_get(h, "missingValue")] = np.nan
        return vals
    finally:
        eccodes.codes_release(h)


def inline_array(value, dtype, shape):
    """The numbers of a kerchunk inline value ("base64:..." little-endian)."""
    assert value.startswith("base64:"), value[:20]
    return np.frombuffer(base64.b64decode(value[7:]), dtype=dtype).reshape(shape)


@pytest.fixture(scope="module")
def dsets(db_setup):
    """A GEFS run (APCP at 0.25 degree, three 1 degree fields) and two ECMWF runs (before and after IFS 50r1)."""
    conn = connect()
    for name in (GEFS, ECMWF, "pym_rt", "pym_gik"):
        query(conn, "SELECT gik.drop_dataset(%s)", (name,))
    query(conn, "SELECT gik.clone_dataset('gefs_0p25', %s, '{APCP,TMP:2 m above ground,PRMSL,TMAX}')", (GEFS,))
    query(conn, "SELECT gik.clone_dataset('ecmwf_ens_0p25', %s, '{tp,2t,msl}')", (ECMWF,))
    query(conn, "SELECT gik.ingest_run(%s, '2025-10-01 00:00+00', members => '{0,1,2}', steps => gik.step_list('0-24/3'))", (GEFS,))
    query(conn, "SELECT gik.ingest_run(%s, '2025-10-01 00:00+00', steps => '{0,6,12,18,24}')", (ECMWF,))
    query(conn, "SELECT gik.ingest_run(%s, '2026-06-01 12:00+00', steps => '{0,6,12}')", (ECMWF,))
    yield conn
    for name in (GEFS, ECMWF, "pym_rt", "pym_gik"):
        query(conn, "SELECT gik.drop_dataset(%s)", (name,))
    conn.close()


@pytest.fixture(scope="module")
def outdir():
    """A directory the server (another OS user) can write to."""
    d = tempfile.mkdtemp(prefix="gik_manifest_")
    os.chmod(d, 0o777)
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


def kerchunk(conn, dataset, **kw):
    """gik.manifest_kerchunk() as a dict."""
    args = ", ".join(f"{k} => %({k})s" for k in kw)
    sql = f"SELECT gik.manifest_kerchunk(%(d)s{', ' + args if args else ''})::text"
    return json.loads(scalar(conn, sql, dict(d=dataset, **kw)))


def chunk_refs(refs):
    """{key: [url, offset, length]} of a kerchunk document's references."""
    return {k: v for k, v in refs.items() if isinstance(v, list)}


@pytest.mark.parametrize("dataset", [GEFS, ECMWF])
def test_copy_and_backslash_copy_write_valid_json(dsets, outdir, dataset):
    """Server-side COPY and psql's \\copy with the CSV incantation write the document byte for byte."""
    expected = kerchunk(dsets, dataset, url_style="http")
    server = outdir / f"{dataset}_server.json"
    query(dsets, f"COPY (SELECT gik.manifest_kerchunk(%s, url_style => 'http')) TO %s {COPY_OPTS}", (dataset, str(server)))
    client = outdir / f"{dataset}_client.json"
    subprocess.run(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-c",
                    f"\\copy (SELECT gik.manifest_kerchunk('{dataset}', url_style => 'http')) TO '{client}' {COPY_OPTS}"],
                   check=True)
    for path in (server, client):
        text = path.read_text()
        assert text.endswith("}\n") and text.count("\n") == 1
        assert json.loads(text) == expected
    # The plain text format doubles the backslashes of the JSON text inside the .zarray strings: not JSON any more.
    naive = outdir / f"{dataset}_naive.json"
    query(dsets, "COPY (SELECT gik.manifest_kerchunk(%s)) TO %s", (dataset, str(naive)))
    with pytest.raises(json.JSONDecodeError):
        json.loads(naive.read_text())


@pytest.mark.parametrize("dataset", [GEFS, ECMWF])
def test_fsspec_reads_every_chunk_and_ecccodes_agrees_with_gik_decode(dsets, dataset):
    """Every chunk key through ReferenceFileSystem: the exact GRIB message bytes, decoding to gik.decode's values."""
    doc = kerchunk(dsets, dataset, url_style="http")
    s3 = chunk_refs(kerchunk(dsets, dataset)["refs"])
    fs = fsspec.filesystem("reference", fo=doc, remote_protocol="http")
    chunks = chunk_refs(doc["refs"])
    assert len(chunks) == scalar(dsets, "SELECT count(*) FROM gik.chunk_ref WHERE dataset = %s", (dataset,)) > 50
    assert all(v[0].startswith(HTTP + "/") for v in chunks.values())
    got = fs.cat(sorted(chunks))
    for key, (url, off, length) in chunks.items():
        with open(mirror_path(s3[key][0]), "rb") as f:
            f.seek(off)
            expected = f.read(length)
        assert got[key] == expected, key
        assert expected[:4] == b"GRIB" and expected[-4:] == b"7777"
    # gik.decode of the same references, summarised server-side: NaN count, sum, and every 4099th value.
    rows = query(dsets, """
        WITH m AS (SELECT key, url, byte_offset, byte_length, row_number() OVER (ORDER BY key)::int AS o
                   FROM gik.manifest(%s) WHERE kind = 'chunk')
        SELECT m.key, cardinality(b.vals),
               (SELECT count(*) FROM unnest(b.vals) v WHERE v = 'NaN'),
               (SELECT sum(v::float8) FROM unnest(b.vals) v WHERE v <> 'NaN'),
               ARRAY(SELECT v FROM unnest(b.vals) WITH ORDINALITY u(v, i) WHERE i %% 4099 = 1 ORDER BY i)
        FROM gik.decode_batch((SELECT array_agg(ROW(url, byte_offset, byte_length)::gik.ref ORDER BY o) FROM m)) b
        JOIN m ON m.o = b.ord""", (dataset,))
    assert len(rows) == len(chunks)
    for key, n, nans, total, samples in rows:
        vals = grib_values(got[key]).astype(np.float32)
        assert n == vals.size, key
        assert nans == np.isnan(vals).sum(), key
        assert total == pytest.approx(float(vals[~np.isnan(vals)].astype(np.float64).sum()), rel=1e-9, abs=1e-6), key
        np.testing.assert_array_equal(np.array(samples, dtype=np.float32), vals[::4099], err_msg=key)


def reference_store(doc):
    """A read-only zarr store over a kerchunk document (zarr 3 needs the reference filesystem asynchronous)."""
    fs = fsspec.filesystem("reference", fo=doc, remote_protocol="http", remote_options={"asynchronous": True},
                           asynchronous=True)
    return zarr.storage.FsspecStore(fs, read_only=True, path="")


def test_zarr_and_xarray_open_the_metadata(dsets):
    """zarr sees the shapes, chunks and dimension names; its arrays read through the grib filter; xarray decodes."""
    doc = kerchunk(dsets, GEFS, url_style="http")
    refs = doc["refs"]
    store = reference_store(doc)
    g = zarr.open_group(store, mode="r")
    assert sorted(g.array_keys()) == ["2t", "latitude", "latitude_721", "longitude", "longitude_1440", "number",
                                      "prmsl", "step", "time", "tmax", "tp", "valid_time"]
    expect_dims = {"2t": ["time", "number", "step", "latitude", "longitude"],
                   "tp": ["time", "number", "step", "latitude_721", "longitude_1440"]}
    for name, dims in expect_dims.items():
        a = g[name]
        ny, nx = (721, 1440) if name == "tp" else (181, 360)
        assert a.shape == (1, 3, 9, ny, nx) and a.chunks == (1, 1, 1, ny, nx)
        assert a.attrs["_ARRAY_DIMENSIONS"] == dims
        assert a.dtype == np.float64 and np.isnan(a.fill_value)
        assert a.filters[0].codec_id == "grib"
    assert g["tp"].attrs["GRIB_shortName"] == "tp" and g["tp"].attrs["gik_stat"] == "acc"
    assert g["tp"].attrs["gik_window_start"] == [None, 0, 0, 6, 6, 12, 12, 18, 18]
    assert g["2t"].attrs["units"] == "K" and g["2t"].attrs["GRIB_stepType"] == "instant"
    np.testing.assert_array_equal(g["step"][:], np.arange(0, 25, 3, dtype=float))
    np.testing.assert_array_equal(g["number"][:], [0, 1, 2])
    assert g["time"][:].tolist() == [1759276800]
    np.testing.assert_array_equal(g["latitude_721"][:], 90 - 0.25 * np.arange(721))
    np.testing.assert_array_equal(g["longitude"][:], np.arange(360, dtype=float))
    np.testing.assert_array_equal(g["valid_time"][:], [1759276800 + 3600 * np.arange(0, 25, 3)])
    # Reading through zarr: the chunk's message decoded by the grib filter.
    url, off, length = refs["tp/0.2.4.0.0"]
    with open(mirror_path(kerchunk(dsets, GEFS)["refs"]["tp/0.2.4.0.0"][0]), "rb") as f:
        f.seek(off)
        message = f.read(length)
    np.testing.assert_array_equal(g["tp"][0, 2, 4], grib_values(message).reshape(721, 1440))
    # xarray decodes the CF coordinates.
    import xarray as xr
    ds = xr.open_zarr(store, consolidated=False, decode_timedelta=True)  # xarray >= 2025.x no longer guesses from units
    assert dict(ds["2t"].sizes) == {"time": 1, "number": 3, "step": 9, "latitude": 181, "longitude": 360}
    assert str(ds["time"].values[0])[:19] == "2025-10-01T00:00:00"
    assert ds["step"].values[1] == np.timedelta64(3, "h")
    assert str(ds["valid_time"].values[0, -1])[:19] == "2025-10-02T00:00:00"


def test_zarr3_document_matches_the_kerchunk_one(dsets):
    """Zarr v3: shape, chunk grid, gribberish codec, dimension names, NaN fill, and manifests equal to the references."""
    v2 = kerchunk(dsets, ECMWF)["refs"]
    v3 = json.loads(scalar(dsets, "SELECT gik.manifest_zarr3(%s)::text", (ECMWF,)))
    assert v3["zarr_format"] == 3
    assert v3["metadata"]["zarr.json"]["node_type"] == "group"
    names = sorted(k[:-len("/.zarray")] for k in v2 if k.endswith("/.zarray"))
    assert sorted(k[:-len("/zarr.json")] for k in v3["metadata"] if k != "zarr.json") == names
    for name in names:
        za, at = json.loads(v2[f"{name}/.zarray"]), json.loads(v2[f"{name}/.zattrs"])
        meta = v3["metadata"][f"{name}/zarr.json"]
        assert meta["zarr_format"] == 3 and meta["node_type"] == "array"
        assert meta["shape"] == za["shape"]
        assert meta["chunk_grid"] == {"name": "regular", "configuration": {"chunk_shape": za["chunks"]}}
        assert meta["chunk_key_encoding"] == {"name": "default", "configuration": {"separator": "/"}}
        assert meta["dimension_names"] == at["_ARRAY_DIMENSIONS"]
        assert meta["attributes"] == {k: v for k, v in at.items() if k != "_ARRAY_DIMENSIONS"}
        if za["filters"]:
            assert meta["data_type"] == "float64" and meta["fill_value"] == "NaN"
            assert meta["codecs"] == [{"name": "gribberish", "configuration": {"var": name}}]
            expected = {k[len(name) + 1:]: v for k, v in v2.items() if isinstance(v, list) and k.startswith(name + "/")}
            got = {k: [e["path"], e["offset"], e["length"]] for k, e in v3["manifests"][name].items()}
            assert got == expected and len(got) > 0
        else:
            assert meta["codecs"] == [{"name": "bytes", "configuration": {"endian": "little"}}]
            key = name + "/c/" + "/".join("0" * len(za["shape"]))
            v2key = name + "/" + ".".join("0" * len(za["shape"]))
            assert v3["inline"][key] == v2[v2key]
            dt = "<i8" if meta["data_type"] == "int64" else "<f8"
            assert dt == za["dtype"]
            inline_array(v3["inline"][key], dt, za["shape"])
    assert sorted(v3["manifests"]) == ["2t", "msl", "tp"]
    assert v3["metadata"]["tp/zarr.json"]["shape"] == [2, 4, 5, 181, 360]
    lon = inline_array(v3["inline"]["longitude/c/0"], "<f8", [360])
    np.testing.assert_array_equal(lon, np.arange(-180, 180, dtype=float))


def json_form(value):
    """A value as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


def message_at(url, offset, length):
    """The bytes of one referenced GRIB message, from the loopback mirror."""
    with open(mirror_path(url), "rb") as f:
        f.seek(offset)
        return f.read(length)


def member_of(h):
    """The ensemble member of an ecCodes message: its number, or 0 for a deterministic forecast (ECMWF's control
    in oper-fc since IFS 50r1, which has no number key)."""
    if eccodes.codes_is_defined(h, "number"):
        return eccodes.codes_get(h, "number")
    assert eccodes.codes_get(h, "dataType") == "fc"
    return 0


def epoch_of(h):
    """The reference time of an ecCodes message in seconds since 1970."""
    d, t = eccodes.codes_get(h, "dataDate"), eccodes.codes_get(h, "dataTime")
    stamp = np.datetime64(f"{d // 10000:04d}-{d // 100 % 100:02d}-{d % 100:02d}T{t // 100:02d}:{t % 100:02d}")
    return int(stamp.astype("datetime64[s]").astype(np.int64))


@pytest.mark.parametrize("dataset", [GEFS, ECMWF])
def test_zarr_python_and_gribberish_accept_the_zarr3_document(dsets, dataset):
    """zarr-python parses every zarr.json as v3 group or array metadata and writes it back unchanged; gribberish's
    registered zarr codec is built from each codec configuration; a MemoryStore holding the document opens with
    zarr.open_group with the manifest's shapes, data types, chunks, fills, dimension names and attributes; referenced
    messages read through zarr and gribberish equal ecCodes' values; every chunk key's coordinates are its message's."""
    from gribberish.zarr.codec import GribberishCodec
    from zarr.core.buffer import cpu
    from zarr.core.group import GroupMetadata
    from zarr.core.metadata.v3 import ArrayV3Metadata

    v3 = json.loads(scalar(dsets, "SELECT gik.manifest_zarr3(%s)::text", (dataset,)))
    arrays = {k[:-len("/zarr.json")]: m for k, m in v3["metadata"].items() if k != "zarr.json"}
    assert json_form(GroupMetadata.from_dict(v3["metadata"]["zarr.json"]).to_dict()) == v3["metadata"]["zarr.json"]
    for name, meta in arrays.items():
        parsed = ArrayV3Metadata.from_dict(meta)
        written = json_form(parsed.to_dict())
        assert written.pop("storage_transformers") == [] and written == meta, name
        for cfg, codec in zip(meta["codecs"], parsed.codecs, strict=True):
            built = zarr.registry.get_codec_class(cfg["name"]).from_dict(cfg)
            assert type(built) is type(codec) and built.to_dict() == cfg == codec.to_dict(), name
    gribbed = sorted(n for n, m in arrays.items() if m["codecs"][0]["name"] == "gribberish")
    assert gribbed == sorted(v3["manifests"]) and gribbed
    assert all(type(ArrayV3Metadata.from_dict(arrays[n]).codecs[0]) is GribberishCodec for n in gribbed)

    # The document as a store: metadata, inline coordinate chunks, and the first and last message of each manifest.
    items = {k: json.dumps(m).encode() for k, m in v3["metadata"].items()}
    for key, value in v3["inline"].items():
        assert value.startswith("base64:"), key
        items[key] = base64.b64decode(value[len("base64:"):])
    picked = {}
    for name in gribbed:
        keys = sorted(v3["manifests"][name], key=lambda k: tuple(map(int, k.split("."))))
        for key in {keys[0], keys[-1]}:
            e = v3["manifests"][name][key]
            picked[(name, key)] = message_at(e["path"], e["offset"], e["length"])
            items[f"{name}/c/" + key.replace(".", "/")] = picked[(name, key)]
    store = zarr.storage.MemoryStore({k: cpu.Buffer.from_bytes(v) for k, v in items.items()}, read_only=True)
    g = zarr.open_group(store, mode="r", zarr_format=3)
    assert sorted(g.array_keys()) == sorted(arrays) and dict(g.attrs) == v3["metadata"]["zarr.json"]["attributes"]
    for name, meta in arrays.items():
        a = g[name]
        assert a.shape == tuple(meta["shape"]) and a.chunks == tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
        assert a.dtype == np.dtype(meta["data_type"]), name
        assert np.isnan(a.fill_value) if meta["fill_value"] == "NaN" else a.fill_value == meta["fill_value"], name
        assert a.metadata.dimension_names == tuple(meta["dimension_names"]) and dict(a.attrs) == meta["attributes"]
        if name not in gribbed:
            raw = items[f"{name}/c/" + "/".join("0" * len(meta["shape"]))]
            np.testing.assert_array_equal(a[...], np.frombuffer(raw, "<" + a.dtype.str[1:]).reshape(a.shape))
    for (name, key), message in picked.items():
        idx = tuple(map(int, key.split(".")))
        np.testing.assert_array_equal(g[name][idx[:-2]], grib_values(message).reshape(g[name].chunks[-2:]),
                                      err_msg=f"{name} {key}")

    # What each chunk means: its message's member, step, reference time, variable and grid size are the key's.
    coords = {dim: g[dim][:] for dim in ("time", "number", "step")}
    for name in gribbed:
        meta = arrays[name]
        dims = meta["dimension_names"]
        assert dims[:3] == ["time", "number", "step"], name
        for key, e in v3["manifests"][name].items():
            at = dict(zip(dims, map(int, key.split("."))))
            assert at[dims[3]] == at[dims[4]] == 0, key
            h = eccodes.codes_new_from_message(message_at(e["path"], e["offset"], e["length"]))
            try:
                got = (member_of(h), eccodes.codes_get(h, "endStep"), epoch_of(h),
                       eccodes.codes_get(h, "shortName"), eccodes.codes_get(h, "Nj"), eccodes.codes_get(h, "Ni"))
            finally:
                eccodes.codes_release(h)
            want = (coords["number"][at["number"]], coords["step"][at["step"]], coords["time"][at["time"]],
                    meta["attributes"]["GRIB_shortName"], *meta["shape"][-2:])
            assert got == want, f"{name} {key}"


def test_import_of_the_exported_file_round_trips(dsets, outdir):
    """The file written by COPY imports to the same references; the re-export equals the export."""
    path = outdir / "rt.json"
    query(dsets, f"COPY (SELECT gik.manifest_kerchunk(%s)) TO %s {COPY_OPTS}", (GEFS, str(path)))
    text = path.read_text()
    runs = query(dsets, "SELECT init_time, version, refs FROM gik.import_kerchunk('pym_rt', %s)", (text,))
    assert [(r[1], r[2]) for r in runs] == [(1, 102)]
    before = chunk_refs(json.loads(text)["refs"])
    after = chunk_refs(kerchunk(dsets, "pym_rt")["refs"])
    assert after == before and len(after) == 102
    exported = kerchunk(dsets, GEFS)["refs"]
    again = kerchunk(dsets, "pym_rt")["refs"]
    exported.pop(".zattrs")
    again.pop(".zattrs")
    assert again == exported


def gik_store_for_member(refs, member):
    """A GIK reference store for one GEFS member as GIK's pipelines build it (gefs_util.process_unique_groups with
    BEST_AVAILABLE axes, store_coord_var, store_data_var): grib_tree path tp/accum/surface/tp, chunk keys
    {i}.0.0 along valid_time, and - as GIK does - the 'time' coordinate holding the valid times."""
    za = json.loads(refs["tp/.zarray"])
    steps = inline_array(refs["step/0"], "<f8", [-1])
    init = int(inline_array(refs["time/0"], "<i8", [-1])[0])
    ny, nx = za["shape"][-2:]
    keys = sorted(k for k in refs if k.startswith(f"tp/0.{member}.") and isinstance(refs[k], list))
    chunk_steps = [steps[int(k.split(".")[2])] for k in keys]
    valid = np.array([init + 3600 * s for s in chunk_steps], dtype="<i8")
    store = {".zgroup": json.dumps({"zarr_format": 2})}
    for grp, attrs in (("tp", {"name": "Total Precipitation"}), ("tp/accum", {"stepType": "accum"}),
                       ("tp/accum/surface", {"coordinates": "surface latitude longitude step time valid_time",
                                             "typeOfLevel": "surface"})):
        store[f"{grp}/.zgroup"] = json.dumps({"zarr_format": 2})
        store[f"{grp}/.zattrs"] = json.dumps(attrs)

    def coord(name, data, dims, attrs):
        store[f"tp/accum/surface/{name}/.zarray"] = json.dumps(
            {"chunks": list(data.shape), "compressor": None, "dtype": data.dtype.str, "fill_value": None,
             "filters": None, "order": "C", "shape": list(data.shape), "zarr_format": 2})
        store[f"tp/accum/surface/{name}/.zattrs"] = json.dumps(dict(attrs, _ARRAY_DIMENSIONS=dims))
        raw = data.tobytes()
        try:
            value = raw.decode("ascii")          # store_coord_var keeps ASCII-decodable bytes raw (NULs included)
        except UnicodeDecodeError:
            value = (b"base64:" + base64.b64encode(raw)).decode("ascii")
        store[f"tp/accum/surface/{name}/" + ".".join("0" * data.ndim) if data.ndim else f"tp/accum/surface/{name}/0"] = value

    coord("time", valid, ["valid_time"], {"long_name": "initial time of forecast", "standard_name": "forecast_reference_time",
                                          "units": "seconds since 1970-01-01T00:00:00", "calendar": "proleptic_gregorian"})
    coord("valid_time", valid, ["valid_time"], {"long_name": "time", "standard_name": "time",
                                                "units": "seconds since 1970-01-01T00:00:00", "calendar": "proleptic_gregorian"})
    coord("step", np.array(chunk_steps, dtype="<f8"), ["valid_time"], {"long_name": "time since forecast_reference_time",
                                                                       "standard_name": "forecast_period", "units": "hours"})
    coord("surface", np.array(0.0), [], {})
    coord("latitude", inline_array(refs["latitude_721/0"], "<f8", [-1]), ["latitude"], {"units": "degrees_north"})
    coord("longitude", inline_array(refs["longitude_1440/0"], "<f8", [-1]), ["longitude"], {"units": "degrees_east"})
    # store_data_var turns a null fill_value into NaN, which Python's JSON writers print as a bare NaN.
    store["tp/accum/surface/tp/.zarray"] = json.dumps(
        {"chunks": [1, ny, nx], "compressor": None, "dtype": "<f8", "fill_value": float("nan"),
         "filters": [{"dtype": "float64", "id": "grib", "var": "tp"}], "order": "C", "shape": [len(keys), ny, nx],
         "zarr_format": 2})
    store["tp/accum/surface/tp/.zattrs"] = json.dumps(
        {"GRIB_Nx": nx, "GRIB_Ny": ny, "GRIB_gridType": "regular_ll", "GRIB_shortName": "tp", "GRIB_stepType": "accum",
         "GRIB_typeOfLevel": "surface", "GRIB_units": "kg m**-2", "GRIB_paramId": 228228, "units": "kg m**-2",
         "GRIB_latitudeOfFirstGridPointInDegrees": 90.0, "GRIB_longitudeOfFirstGridPointInDegrees": 0.0,
         "GRIB_latitudeOfLastGridPointInDegrees": -90.0, "GRIB_longitudeOfLastGridPointInDegrees": 359.75,
         "GRIB_iDirectionIncrementInDegrees": 0.25, "GRIB_jDirectionIncrementInDegrees": 0.25,
         "_ARRAY_DIMENSIONS": ["valid_time", "latitude", "longitude"]})
    for i, k in enumerate(keys):
        store[f"tp/accum/surface/tp/{i}.0.0"] = refs[k]
    return store


def gik_parquet_rows(store):
    """The (key, value) rows of GIK's save_parquet_file: strings as UTF-8, lists and dicts as JSON."""
    return [(k, v.encode("utf-8") if isinstance(v, str) else json.dumps(v).encode("utf-8")) for k, v in store.items()]


def test_import_gik_tree_layout_rows_loaded_with_copy(dsets):
    """Three per-member GIK stores (tp/accum/surface/tp/3.0.0 keys, raw NUL-bearing coordinates) loaded with COPY into
    a bytea staging table import to the references pg_gik ingested, windows included (window_reset 6)."""
    refs = kerchunk(dsets, GEFS)["refs"]
    rows = []
    for member, token in ((0, "gec00"), (1, "gep01"), (2, "gep02")):
        rows += [(f"{token}_20251001_00z.parquet", k, v) for k, v in gik_parquet_rows(gik_store_for_member(refs, member))]
    assert any(b"\x00" in v for _, _, v in rows)      # raw inline step values, as store_coord_var writes them
    conn = connect(autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TEMP TABLE gik_staging (source text, key text, value bytea)")
            # What a parquet -> CSV conversion gives: one row per (file, key), the bytes in PostgreSQL's hex form.
            buf = io.StringIO()
            for src, k, v in rows:
                buf.write(f'{src},"{k}",\\x{v.hex()}\n')
            buf.seek(0)
            cur.copy_expert("COPY gik_staging (source, key, value) FROM STDIN WITH (FORMAT csv)", buf)
            # One file's rows twice over would be ambiguous: an error, not a guess.
            cur.execute("SAVEPOINT dup")
            cur.execute("CREATE TEMP TABLE gik_dup AS SELECT key, value FROM gik_staging")
            with pytest.raises(psycopg2.Error) as err:
                cur.execute("SELECT gik.import_gik_table('pym_gik', 'gik_dup')")
            assert err.value.pgcode == "23505" and "appears 3 times" in err.value.pgerror
            cur.execute("ROLLBACK TO SAVEPOINT dup")
            cur.execute("SELECT init_time, version, refs FROM gik.import_gik_table('pym_gik', 'gik_staging', window_reset => 6)")
            runs = cur.fetchall()
        conn.commit()
    finally:
        conn.close()
    assert [(r[1], r[2]) for r in runs] == [(1, 24)]
    mismatch = query(dsets, """
        SELECT count(*) FROM gik.chunk_ref a FULL JOIN (SELECT * FROM gik.chunk_ref WHERE dataset = 'pym_gik') b
          ON (a.url, a.byte_offset, a.byte_length, a.step_start, a.step_end, a.member, a.init_time)
           = (b.url, b.byte_offset, b.byte_length, b.step_start, b.step_end, b.member, b.init_time)
        WHERE a.dataset = %s AND a.variable = 'APCP' AND (a.url IS NULL OR b.url IS NULL)""", (GEFS,))[0][0]
    assert mismatch == 0
    field = query(dsets, """SELECT f.variable, f.level, f.stat, f.short_name, f.units, g.ni, g.nj FROM gik.field f
                            JOIN gik.dataset d USING (dataset_id) JOIN gik.grid g USING (grid_id) WHERE d.name = 'pym_gik'""")
    assert field == [("tp", "surface", "acc", "tp", "kg m**-2", 1440, 721)]


def test_failed_imports_change_nothing(dsets, outdir):
    """A bad reference anywhere in a document aborts the import whole: every catalog table is unchanged."""
    tables = ["dataset", "run", "run_version", "file", "field", "time_window", "grid", "chunk_pack"]

    def counts():
        return {t: scalar(dsets, f"SELECT count(*) FROM gik.{t}") for t in tables}

    doc = kerchunk(dsets, ECMWF)
    last = sorted(chunk_refs(doc["refs"]))[-1]
    doc["refs"][last] = [doc["refs"][last][0], -7, 100]
    # A new variable and windows that would be created before the bad reference is reached, were it not checked first.
    doc["refs"]["new/.zarray"] = doc["refs"]["tp/.zarray"]
    doc["refs"]["new/.zattrs"] = doc["refs"]["tp/.zattrs"].replace('"gik_variable": "tp"', '"gik_variable": "new"')
    doc["refs"]["new/0.0.0.0.0"] = doc["refs"]["tp/0.0.0.0.0"]
    before = counts()
    for target in (ECMWF, "pym_new"):
        with pytest.raises(psycopg2.Error) as err:
            query(dsets, "SELECT gik.import_kerchunk(%s, %s)", (target, json.dumps(doc)))
        assert err.value.pgcode == "22003" and f'"{last}"' in err.value.pgerror
    assert counts() == before
    with pytest.raises(psycopg2.Error) as err:
        query(dsets, "SELECT gik.import_kerchunk(%s, %s)", (ECMWF, '{"version": 1, "refs": {"tp/0.0": ["s3://x", 1,'))
    assert err.value.pgcode == "22P02"
    assert counts() == before
