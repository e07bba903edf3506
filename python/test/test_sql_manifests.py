"""The chunk-meaning check on pg_gik's own SQL export (gik.manifest_kerchunk): time/number/step keys, window starts
from the gik_window_start attribute, read through fsspec + zarr 2 metadata."""
import fsspec
import pytest
import zarr
from conftest import ECMWF, GEFS
from helpers import check_chunk_meaning, read_range, zarr_group_arrays


@pytest.mark.parametrize("dataset, init, n", [(GEFS, "2025-10-01 00:00+00", 24), (ECMWF, "2025-10-03 00:00+00", 102)])
def test_manifest_kerchunk_chunks_mean_their_keys(datasets, conn, dataset, init, n):
    doc = conn.execute("SELECT gik.manifest_kerchunk(%s, %s)", (dataset, init)).fetchone()[0]
    refs = doc["refs"]
    fs = fsspec.filesystem("reference", fo=doc, remote_protocol="s3", asynchronous=True,
                           remote_options={"asynchronous": True, "anon": True})
    group = zarr.open_group(zarr.storage.FsspecStore(fs, read_only=True, path=""), mode="r", zarr_format=2)
    arrays = zarr_group_arrays(group)
    assert [a[1] for a in arrays] == [("time", "number", "step", "latitude", "longitude")]

    def read(name, idx):
        ref = refs.get(f"{name}/{'.'.join(map(str, idx))}")
        return None if ref is None else read_range(*ref)
    assert check_chunk_meaning(arrays, read) == n
