"""kerchunk parquet references (fsspec's LazyReferenceMapper layout) written and read by pg-gik kerchunk-parquet.

- the layout is kerchunk's own: the same files, columns and values as kerchunk.df.refs_to_dataframe writes for
  the same references;
- fsspec's ReferenceFileSystem returns every message's exact bytes; zarr/xarray (kerchunk's grib codec) and
  VirtualiZarr's KerchunkParquetParser decode them to what gik.decode gives;
- every chunk means what its key says (ecCodes keys against the coordinates), in the JSON and parquet outputs,
  and a store with its member order reversed fails that check;
- export -> import into a new dataset gives the same references, for one run and a range of runs;
- bad input (a run or dataset that does not exist, a directory that is not this layout, a bad reference) is an
  error naming it, and nothing is written or imported.
"""
import json
import shutil

import kerchunk.codecs
import kerchunk.df
import fsspec
import numpy as np
import pyarrow.parquet as pq
import pytest
import xarray as xr
import zarr
from obspec_utils.registry import ObjectStoreRegistry
from obstore.store import HTTPStore
from virtualizarr import open_virtual_dataset
from virtualizarr.parsers import KerchunkParquetParser
from zarr.storage import FsspecStore

from bridge_db import (GEFS_RANGE, GEFS_RUN, HTTP, MIRROR, catalog_counts, db, drop, ecmwf, gefs,  # noqa: F401
                       gefs_range, ref_differences, run_cli, scalar)
from helpers import check_chunk_meaning, zarr_group_arrays
from pg_gik.parquet_bridge import (BridgeError, export_kerchunk_parquet, import_kerchunk_parquet,
                                   read_kerchunk_parquet, write_kerchunk_parquet)

TARGET = "brt_kp"


class GribV3Codec(kerchunk.codecs.GRIBZarrCodec):
    """kerchunk 0.2.10's zarr 3 GRIB codec under the name VirtualiZarr gives the v2 "grib" filter
    ("numcodecs.grib"). Decoding is kerchunk's; this only works around three bugs of its class: from_dict
    expects the name "bytes", to_dict reads a missing `endian`, and decoded chunks are not reshaped."""

    @classmethod
    def from_dict(cls, data):
        return cls(**data.get("configuration", {}))

    def to_dict(self):
        return {"name": "numcodecs.grib", "configuration": {"var": self.var, "dtype": self.dtype}}

    async def _decode_single(self, chunk_bytes, chunk_spec):
        data = await super()._decode_single(chunk_bytes, chunk_spec)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(data.reshape(chunk_spec.shape))


zarr.registry.register_codec("numcodecs.grib", GribV3Codec)


def reference_fs(fo, asynchronous=False):
    """fsspec's ReferenceFileSystem over a kerchunk dict or parquet directory, reaching the mirror over HTTP."""
    return fsspec.filesystem("reference", fo=fo, remote_protocol="http", asynchronous=asynchronous,
                             remote_options={"asynchronous": asynchronous})


def kerchunk_group(fo):
    """The zarr (format 2) group of a kerchunk reference set, read through fsspec."""
    return zarr.open_group(FsspecStore(reference_fs(fo, asynchronous=True), read_only=True, path=""),
                           mode="r", zarr_format=2)


def meaning_checked(fo):
    """helpers.check_chunk_meaning of a kerchunk reference set (dict or parquet directory): coordinates from
    zarr, each chunk's message through fsspec's ReferenceFileSystem. Returns the number of chunks checked."""
    fs = reference_fs(fo)

    def read(name, idx):
        key = f"{name}/{'.'.join(map(str, idx))}"
        return fs.cat(key) if key in fs.references else None
    return check_chunk_meaning(zarr_group_arrays(kerchunk_group(fo)), read)


def with_keys(refs, moves):
    """A copy of a reference dict with chunk keys renamed by moves(key) (None: unchanged)."""
    return {(moves(k) or k) if isinstance(v, list) else k: v for k, v in refs.items()}


@pytest.fixture
def target(db):
    """A dataset name for an import, dropped before and after the test."""
    drop(db, TARGET)
    yield TARGET
    drop(db, TARGET)


def kerchunk_doc(db, dataset, init_from=None, init_to=None, url_style="s3"):
    """gik.manifest_kerchunk() as a dict."""
    return json.loads(scalar(db, "SELECT gik.manifest_kerchunk(%s, %s, %s, url_style => %s)::text",
                             (dataset, init_from, init_to, url_style)))


def chunk_refs(refs):
    """{key: [url, offset, length]} of a reference dict."""
    return {k: v for k, v in refs.items() if isinstance(v, list)}


def decode_summaries(db, refs):
    """gik.decode of each reference, summarised server-side: {key: (size, NaN count, sum, every 4099th value)}."""
    keys = sorted(refs)
    rows = db.execute("""
        SELECT b.ord, cardinality(b.vals), (SELECT count(*) FROM unnest(b.vals) v WHERE v = 'NaN'),
               (SELECT sum(v::float8) FROM unnest(b.vals) v WHERE v <> 'NaN'),
               ARRAY(SELECT v FROM unnest(b.vals) WITH ORDINALITY u(v, i) WHERE i %% 4099 = 1 ORDER BY i)
        FROM gik.decode_batch(%s::gik.ref[]) b""",
                      ([f"({json.dumps(refs[k][0])},{refs[k][1]},{refs[k][2]})" for k in keys],)).fetchall()
    return {keys[o - 1]: (n, nans, total, np.array(s, dtype=np.float32)) for o, n, nans, total, s in rows}


def assert_values_equal_gik_decode(values, summary, key):
    """One chunk's decoded values (float32) agree with gik.decode's summary of the same reference."""
    n, nans, total, samples = summary
    vals = np.asarray(values, dtype=np.float32).ravel()
    assert n == vals.size and nans == np.isnan(vals).sum(), key
    assert total == pytest.approx(float(vals[~np.isnan(vals)].astype(np.float64).sum()), rel=1e-9, abs=1e-6), key
    np.testing.assert_array_equal(samples, vals[::4099], err_msg=key)


def test_the_layout_is_kerchunks_own(db, gefs, tmp_path):
    """Our files against kerchunk.df.refs_to_dataframe of the same references: the same .zmetadata, the same
    refs.N.parq files (record_size 10: tp's 24 chunks in 3), the same columns, nullability and values."""
    ours, theirs = tmp_path / "ours", tmp_path / "kerchunk"
    n = export_kerchunk_parquet("", gefs, ours, record_size=10)
    kerchunk.df.refs_to_dataframe(kerchunk_doc(db, gefs), str(theirs), record_size=10)
    assert n == 24
    files = sorted(p.relative_to(ours) for p in ours.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(theirs) for p in theirs.rglob("*") if p.is_file())
    assert [str(f) for f in files if str(f).startswith("tp/")] == [f"tp/refs.{i}.parq" for i in range(3)]
    assert json.loads((ours / ".zmetadata").read_text()) == json.loads((theirs / ".zmetadata").read_text())
    for f in files:
        if f.suffix != ".parq":
            continue
        a, b = pq.read_table(ours / f), pq.read_table(theirs / f)
        assert a.column_names == b.column_names == ["path", "offset", "size", "raw"], f
        assert [a.schema.field(c).nullable for c in a.column_names] == [True, False, False, True], f
        assert [b.schema.field(c).nullable for c in b.column_names] == [True, False, False, True], f
        assert a.num_rows == b.num_rows == 10, f
        assert a.to_pylist() == b.to_pylist(), f


def test_import_reads_kerchunks_own_files(db, ecmwf, target, tmp_path):
    """kerchunk.df.refs_to_dataframe of the ECMWF run (20 references of each variable in 5 files; with
    categorical_threshold 2 kerchunk stores the paths as a pandas categorical) imports to the ingested
    references."""
    out = tmp_path / "kerchunk"
    kerchunk.df.refs_to_dataframe(kerchunk_doc(db, ecmwf), str(out), categorical_threshold=2)
    pandas = json.loads(pq.read_schema(out / "tp" / "refs.0.parq").metadata[b"pandas"])
    assert pandas["columns"][0]["pandas_type"] == "categorical"
    runs = import_kerchunk_parquet("", out, target)
    assert [(r["version"], r["refs"]) for r in runs] == [(1, 60)]
    assert ref_differences(db, ecmwf, target) == (0, 0, 60)


def test_fsspec_zarr_and_xarray_read_it_as_gik_decode(db, gefs, tmp_path):
    """Every chunk through ReferenceFileSystem is the mirror file's bytes at (offset, length); xarray with
    kerchunk's grib codec decodes each to gik.decode's values; the coordinates are the catalog's."""
    out = tmp_path / "kp"
    export_kerchunk_parquet("", gefs, out, url_style="http")
    s3 = chunk_refs(kerchunk_doc(db, gefs)["refs"])
    fs = reference_fs(str(out))
    got = fs.cat(sorted(s3))
    assert len(got) == len(s3) == 24
    for key, (url, offset, length) in s3.items():
        with open(MIRROR / url[len("s3://"):], "rb") as f:
            f.seek(offset)
            assert got[key] == f.read(length), key
        assert fs.references[key][0].startswith(HTTP + "/")
    ds = xr.open_zarr(kerchunk_group(str(out)).store, consolidated=False, zarr_format=2, decode_timedelta=False)
    assert dict(ds.sizes) == {"time": 1, "number": 3, "step": 8, "latitude": 721, "longitude": 1440}
    assert list(ds.number.values) == [0, 1, 2] and list(ds.step.values) == [3, 6, 9, 12, 15, 18, 21, 24]
    assert [str(t)[:13] for t in ds.time.values] == ["2025-10-01T00"]
    summaries = decode_summaries(db, s3)
    for key in s3:
        t, m, s = (int(i) for i in key.split("/")[1].split(".")[:3])
        assert_values_equal_gik_decode(ds.tp.isel(time=t, number=m, step=s).values, summaries[key], key)


def test_virtualizarr_kerchunk_parquet_parser_opens_it(db, gefs, tmp_path):
    """KerchunkParquetParser: the manifest holds our references; open_virtual_dataset works; the ManifestStore
    decodes to gik.decode's values."""
    out = tmp_path / "kp"
    export_kerchunk_parquet("", gefs, out, init_from=GEFS_RUN, url_style="http")
    registry = ObjectStoreRegistry({HTTP: HTTPStore.from_url(HTTP, client_options={"allow_http": True})})
    store = KerchunkParquetParser()(str(out), registry)
    refs = chunk_refs(kerchunk_doc(db, gefs, GEFS_RUN, url_style="http")["refs"])
    manifest = store._group.arrays["tp"].manifest.dict()
    assert {f"tp/{k}": [e["path"], e["offset"], e["length"]] for k, e in manifest.items()} == refs
    vds = open_virtual_dataset(str(out), registry=registry, parser=KerchunkParquetParser(),
                               loadable_variables=["time", "number", "step", "latitude", "longitude", "valid_time"])
    assert vds.tp.dims == ("time", "number", "step", "latitude", "longitude") and vds.tp.shape == (1, 3, 8, 721, 1440)
    assert list(vds.number.values) == [0, 1, 2]
    ds = xr.open_zarr(store, consolidated=False, zarr_format=3, decode_timedelta=False)
    summaries = decode_summaries(db, refs)
    for key in ("tp/0.0.0.0.0", "tp/0.2.7.0.0", "tp/0.1.3.0.0"):
        _, m, s = (int(i) for i in key.split("/")[1].split(".")[:3])
        assert_values_equal_gik_decode(ds.tp.isel(time=0, number=m, step=s).values, summaries[key], key)


def test_every_chunk_means_what_its_key_says(db, gefs, gefs_range, ecmwf, tmp_path):
    """The kerchunk JSON and parquet outputs of a run, of a range of runs and of ECMWF tp: each chunk's message has the
    number, stepRange, shortName and level its coordinates say (helpers.check_chunk_meaning)."""
    doc = kerchunk_doc(db, gefs, url_style="http")
    out = tmp_path / "kp"
    write_kerchunk_parquet(doc["refs"], out, record_size=7)
    assert meaning_checked(doc) == 24
    assert meaning_checked(str(out)) == 24
    both = tmp_path / "range"
    export_kerchunk_parquet("", gefs_range, both, init_from=GEFS_RANGE[0], init_to=GEFS_RANGE[1], url_style="http")
    assert meaning_checked(str(both)) == 24
    assert meaning_checked(kerchunk_doc(db, gefs_range, url_style="http")) == 24
    ec = tmp_path / "ecmwf"
    export_kerchunk_parquet("", ecmwf, ec, variables=["tp"], url_style="http")
    assert meaning_checked(str(ec)) == 20


def test_reversed_member_order_fails_the_meaning_check(db, gefs, tmp_path):
    """The mutation that passed the old two-way read tests: members 0 and 2 swapped in every chunk key, in the
    JSON and in the parquet written from it."""
    refs = kerchunk_doc(db, gefs, url_style="http")["refs"]

    def reverse(k):
        t, m, s, y, x = k[3:].split(".")
        return f"tp/{t}.{2 - int(m)}.{s}.{y}.{x}"
    mutated = with_keys(refs, reverse)
    out = tmp_path / "kp"
    write_kerchunk_parquet(mutated, out)
    for fo in ({"version": 1, "refs": mutated}, str(out)):
        with pytest.raises(AssertionError, match="tp chunk 0.0.0.0.0 .*member 0 but the message is number 2"):
            meaning_checked(fo)


def test_other_wrong_references_fail_the_meaning_check(db, gefs):
    """A chunk holding another step's message, or the same file's 2 m temperature (an instantaneous field)."""
    refs = kerchunk_doc(db, gefs, url_style="http")["refs"]
    with pytest.raises(AssertionError, match="tp chunk 0.1.1.0.0 .*stepRange 6-9, the key says 0-6"):
        meaning_checked({"version": 1, "refs": dict(refs, **{"tp/0.1.1.0.0": refs["tp/0.1.2.0.0"]})})
    url, offset, _ = refs["tp/0.1.5.0.0"]
    with open(MIRROR / (url[len(HTTP) + 1:] + ".idx")) as f:
        lines = [line.split(":") for line in f]
    t2m = next(i for i, line in enumerate(lines) if line[3:5] == ["TMP", "2 m above ground"])
    start, end = int(lines[t2m][1]), int(lines[t2m + 1][1])
    with pytest.raises(AssertionError, match="tp chunk 0.1.5.0.0 .*stepRange 18, the key says 12-18"):
        meaning_checked({"version": 1, "refs": dict(refs, **{"tp/0.1.5.0.0": [url, start, end - start]})})


@pytest.mark.parametrize("which", ["gefs", "gefs_range", "ecmwf"])
def test_round_trip_into_a_new_dataset(db, which, target, tmp_path, request):
    """Export a run (gefs), a range of two runs (gefs_range) or every run (ecmwf: tp, 2t, msl), import into a new
    dataset: the same references (variable, level, statistic, window, member, run); importing again makes no new
    version; exporting the import gives the same files but the root attributes naming the dataset."""
    dataset = request.getfixturevalue(which)
    lo, hi = {"gefs": (GEFS_RUN, None), "gefs_range": GEFS_RANGE, "ecmwf": (None, None)}[which]
    out, again = tmp_path / "kp", tmp_path / "again"
    n = export_kerchunk_parquet("", dataset, out, init_from=lo, init_to=hi, record_size=16)
    runs = import_kerchunk_parquet("", out, target)
    if which == "gefs":
        assert n == 24 and [(r["init_time"].isoformat(), r["version"], r["refs"]) for r in runs] == [
            ("2025-10-01T00:00:00+00:00", 1, 24)]
    elif which == "gefs_range":
        assert n == 24 and [(r["init_time"].isoformat()[:13], r["version"], r["refs"]) for r in runs] == [
            ("2025-10-02T00", 1, 12), ("2025-10-03T00", 1, 12)]
    else:
        assert n == 60 and [(r["init_time"].isoformat()[:13], r["version"], r["refs"]) for r in runs] == [
            ("2025-10-01T00", 1, 60)]
    assert ref_differences(db, dataset, target) == (0, 0, n)
    assert [r["version"] for r in import_kerchunk_parquet("", out, target)] == [1] * len(runs)
    export_kerchunk_parquet("", target, again, record_size=16)
    a, b = read_kerchunk_parquet(out)["refs"], read_kerchunk_parquet(again)["refs"]
    assert json.loads(a.pop(".zattrs"))["gik_dataset"] == dataset
    assert json.loads(b.pop(".zattrs"))["gik_dataset"] == target
    assert a == b


def test_one_run_of_several(db, gefs_range, tmp_path):
    """init_from alone: one run, time axis of one; its 12 chunks; the document equals gik.manifest_kerchunk's."""
    out = tmp_path / "kp"
    assert export_kerchunk_parquet("", gefs_range, out, init_from=GEFS_RANGE[1]) == 12
    meta = json.loads((out / ".zmetadata").read_text())
    assert meta["record_size"] == 100_000 and meta["metadata"]["tp/.zarray"]["shape"] == [1, 3, 4, 181, 360]
    doc = read_kerchunk_parquet(out)
    expected = kerchunk_doc(db, gefs_range, GEFS_RANGE[1])["refs"]
    assert {k: json.loads(v) if k.rsplit("/", 1)[-1].startswith(".z") else v for k, v in doc["refs"].items()} == {
        k: json.loads(v) if k.rsplit("/", 1)[-1].startswith(".z") else v for k, v in expected.items()}


def test_command_line_export_and_import(db, gefs, target, tmp_path):
    out = tmp_path / "kp"
    rc, stdout, err = run_cli("kerchunk-parquet", "export", gefs, out, "--init-from", GEFS_RUN)
    assert rc == 0, err
    assert stdout.strip() == f"24 references written to {out}"
    rc, stdout, err = run_cli("kerchunk-parquet", "import", out, "--dataset", target)
    assert rc == 0, err
    assert stdout.strip() == "2025-10-01T00Z version 1: 24 references"
    assert ref_differences(db, gefs, target) == (0, 0, 24)


def test_export_of_a_missing_run_names_it_and_writes_nothing(db, gefs, tmp_path):
    out = tmp_path / "kp"
    with pytest.raises(BridgeError, match='dataset "brt_gefs" has no run at 2025-10-05T00Z'):
        export_kerchunk_parquet("", gefs, out, init_from="2025-10-05 00:00+00")
    assert not out.exists()
    with pytest.raises(BridgeError, match="has no run between 2025-10-03T00Z and 2025-10-04T00Z"):
        export_kerchunk_parquet("", gefs, out, init_from="2025-10-03 00:00+00", init_to="2025-10-04 00:00+00")
    with pytest.raises(BridgeError) as err:
        export_kerchunk_parquet("", "brt_nope", out)
    assert err.value.sqlstate is not None and 'dataset "brt_nope" does not exist' in str(err.value)
    # An existing export stays as it was when a later one fails.
    export_kerchunk_parquet("", gefs, out, init_from=GEFS_RUN)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(BridgeError):
        export_kerchunk_parquet("", gefs, out, init_from="2025-10-05 00:00+00")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kp"]
    rc, _, stderr = run_cli("kerchunk-parquet", "export", gefs, tmp_path / "x", "--init-from", "2025-10-05 00:00+00")
    assert rc == 1 and "has no run at 2025-10-05T00Z" in stderr and "Traceback" not in stderr


def test_imports_of_bad_directories_name_the_file_and_import_nothing(db, gefs, target, tmp_path):
    good = tmp_path / "good"
    export_kerchunk_parquet("", gefs, good, init_from=GEFS_RUN)
    before = catalog_counts(db)
    with pytest.raises(BridgeError, match=f'"{tmp_path}/none" is not a kerchunk parquet reference directory'):
        import_kerchunk_parquet("", tmp_path / "none", target)
    broken = tmp_path / "broken"
    shutil.copytree(good, broken)
    (broken / ".zmetadata").write_text('{"metadata": {}}')
    with pytest.raises(BridgeError, match="is not kerchunk parquet metadata"):
        import_kerchunk_parquet("", broken, target)
    shutil.rmtree(broken)
    shutil.copytree(good, broken)
    pq.write_table(pq.read_table(broken / "tp" / "refs.0.parq").drop_columns(["offset"]), broken / "tp" / "refs.0.parq")
    with pytest.raises(BridgeError, match=f'"{broken}/tp/refs.0.parq" is not a kerchunk reference file: '
                                          'it has no offset'):
        import_kerchunk_parquet("", broken, target)
    (broken / "tp" / "refs.0.parq").write_text("not parquet")
    with pytest.raises(BridgeError, match=f'"{broken}/tp/refs.0.parq" is not a parquet file'):
        import_kerchunk_parquet("", broken, target)
    # A negative offset: gik.import_kerchunk's error, naming the key; nothing imported.
    refs = read_kerchunk_parquet(good)["refs"]
    refs["tp/0.2.5.0.0"] = [refs["tp/0.2.5.0.0"][0], -1, refs["tp/0.2.5.0.0"][2]]
    write_kerchunk_parquet(refs, broken)
    with pytest.raises(BridgeError) as err:
        import_kerchunk_parquet("", broken, target)
    assert err.value.sqlstate == "22003" and '"tp/0.2.5.0.0"' in str(err.value) and str(broken) in str(err.value)
    assert catalog_counts(db) == before
