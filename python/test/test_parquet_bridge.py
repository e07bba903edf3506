"""pg-gik parquet-import: GIK [key, value] parquet files, in the shapes GIK's pipelines write, into the catalog.

- the ECMWF index layout (step_006/tp/sfc/ens01/0.0.0, key as the pandas index, a reference column) made from
  the mirror's real .index files imports to exactly the references gik.ingest_run reads from the same indexes;
- the GEFS grib_tree layout (tp/accum/surface/tp/3.0.0, raw NUL-bearing inline coordinates, bytes values)
  imports to the ingested references, windows included (window_reset 6);
- bad input (a missing file, a file that is not parquet, parquet of another layout, a bad reference in one of
  several files, the same file twice) is an error naming the file or key, and nothing is imported.
"""
import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bridge_db import (ECMWF_RUN, ECMWF_STEPS, GEFS_RUN, MIRROR, catalog_counts, db, drop, ecmwf, gefs,  # noqa: F401
                       ref_differences, run_cli, scalar)
from gik_layouts import (ecmwf_gik_store, ecmwf_member_name, gefs_gik_store, write_ecmwf_gik_parquet,
                         write_gefs_gik_parquet)
from pg_gik.catalog import GikError
from pg_gik.parquet_bridge import BridgeError, import_gik_parquet, read_gik_parquet

TARGET = "brt_gik"


@pytest.fixture
def target(db):
    """A dataset name for an import, dropped before and after the test."""
    drop(db, TARGET)
    yield TARGET
    drop(db, TARGET)


@pytest.fixture(scope="module")
def ecmwf_files(tmp_path_factory):
    """One GIK parquet file per ECMWF member (control, ens01-ens03) from the mirror's .index files."""
    d = tmp_path_factory.mktemp("gik_ecmwf")
    day = ECMWF_RUN[:10].replace("-", "")
    base = f"ecmwf-forecasts/{day}/00z/ifs/0p25/enfo/{day}000000"
    index = {h: (f"s3://{base}-{h}h-enfo-ef.grib2", MIRROR / f"{base}-{h}h-enfo-ef.index") for h in ECMWF_STEPS}
    files = []
    for member in range(4):
        path = d / f"{ecmwf_member_name(member)}.parquet"
        write_ecmwf_gik_parquet(ecmwf_gik_store(index, member), path)
        files.append(path)
    return files


@pytest.fixture(scope="module")
def gefs_files(db, gefs, tmp_path_factory):
    """One GIK grib_tree parquet file per GEFS member of the first run, as run_gefs_tutorial names them."""
    d = tmp_path_factory.mktemp("gik_gefs")
    refs = json.loads(scalar(db, "SELECT gik.manifest_kerchunk(%s, %s)::text", (gefs, GEFS_RUN)))["refs"]
    files = []
    for member, token in enumerate(("gec00", "gep01", "gep02")):
        path = d / f"{token}_20251001_00z.parquet"
        write_gefs_gik_parquet(gefs_gik_store(refs, member), path)
        files.append(path)
    return files


def test_the_files_have_gik_shapes(ecmwf_files, gefs_files):
    """What the fixtures hold is what GIK writes: pyarrow reads key/reference (key as pandas' index) and
    key/value with binary values, raw NULs in inline coordinates."""
    ec = pq.read_table(ecmwf_files[1])
    assert set(ec.column_names) == {"key", "reference"}
    assert json.loads(ec.schema.metadata[b"pandas"])["index_columns"] == ["key"]
    rows = dict(zip(ec.column("key").to_pylist(), ec.column("reference").to_pylist()))
    assert json.loads(rows["step_006/tp/sfc/ens01/0.0.0"])[0].endswith("-6h-enfo-ef.grib2")
    assert "_kerchunk_metadata" in rows and ".zgroup" in rows
    ge = pq.read_table(gefs_files[0])
    assert ge.column_names == ["key", "value"] and pa.types.is_binary(ge.schema.field("value").type)
    values = dict(zip(ge.column("key").to_pylist(), ge.column("value").to_pylist()))
    assert b"\x00" in values["tp/accum/surface/step/0"]
    assert json.loads(values["tp/accum/surface/tp/0.0.0"])[0].endswith("gec00.t00z.pgrb2s.0p25.f003")


def test_ecmwf_layout_imports_the_ingested_references(db, ecmwf, ecmwf_files, target):
    """Four member files in one call: one run, every reference of gik.ingest_run with its variable, level,
    statistic, member and window."""
    runs = import_gik_parquet("", ecmwf_files, target)
    assert [(r["init_time"].isoformat(), r["version"], r["refs"]) for r in runs] == [
        ("2025-10-01T00:00:00+00:00", 1, 60)]
    assert ref_differences(db, ecmwf, target) == (0, 0, 60)
    # The same files again: no new version.
    assert [r["version"] for r in import_gik_parquet("", ecmwf_files, target)] == [1]


def test_gefs_grib_tree_layout_imports_the_ingested_references(db, gefs, gefs_files, target):
    """Three member files: the first run's APCP references, 6-hour windows included."""
    runs = import_gik_parquet("", gefs_files, target, window_reset=6)
    assert [(r["version"], r["refs"]) for r in runs] == [(1, 24)]
    assert ref_differences(db, gefs, target, variable="APCP") == (0, 0, 24)


def test_command_line_import(db, ecmwf, ecmwf_files, target):
    """pg-gik parquet-import FILE... --dataset NAME prints the runs it imported."""
    rc, out, err = run_cli("parquet-import", *ecmwf_files, "--dataset", target, "--init-time", "2025-10-01T00Z")
    assert rc == 0, err
    assert out.strip() == "2025-10-01T00Z version 1: 60 references"
    assert ref_differences(db, ecmwf, target) == (0, 0, 60)


def test_missing_file_names_it_and_imports_nothing(db, ecmwf_files, target, tmp_path):
    before = catalog_counts(db)
    with pytest.raises(BridgeError, match=f'"{tmp_path}/gep05.parquet" does not exist'):
        import_gik_parquet("", [*ecmwf_files, tmp_path / "gep05.parquet"], target)
    rc, _, err = run_cli("parquet-import", tmp_path / "gep05.parquet", "--dataset", target)
    assert rc == 1 and "gep05.parquet\" does not exist" in err and "Traceback" not in err
    assert catalog_counts(db) == before


def test_files_of_other_layouts_are_refused_by_name(db, ecmwf_files, target, tmp_path):
    """Not parquet, parquet without key/value columns, a kerchunk refs.N.parq file, a non-text key."""
    not_parquet = tmp_path / "notes.parquet"
    not_parquet.write_text("key,value\n")
    other = tmp_path / "table.parquet"
    pq.write_table(pa.table({"name": ["a"], "size": [1]}), other)
    refs = tmp_path / "refs.0.parq"
    pq.write_table(pa.table({"path": ["s3://x"], "offset": [0], "size": [1],
                             "raw": pa.array([None], pa.binary())}), refs)
    int_keys = tmp_path / "int_keys.parquet"
    pq.write_table(pa.table({"key": [1], "value": [b"x"]}), int_keys)
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"key": pa.array([], pa.string()), "value": pa.array([], pa.binary())}), empty)
    before = catalog_counts(db)
    for path, message in ((not_parquet, "is not a parquet file"),
                          (other, "is not a GIK reference file: it needs a key column and a value (or reference) "
                                  "column, and has name, size"),
                          (refs, "use kerchunk-parquet import"),
                          (int_keys, "its key column is int64, not text"),
                          (empty, "holds no GIK reference rows")):
        with pytest.raises(BridgeError) as err:
            import_gik_parquet("", [ecmwf_files[0], path], target)
        assert f'"{path}"' in str(err.value) and message in str(err.value)
    with pytest.raises(BridgeError, match="the same file is given twice"):
        import_gik_parquet("", [ecmwf_files[0], ecmwf_files[0]], target)
    assert catalog_counts(db) == before


def test_a_bad_reference_in_one_file_imports_nothing(db, ecmwf_files, target, tmp_path):
    """gik.import_gik_table's error (SQLSTATE, the key) comes back naming the files; no table changed."""
    table = pq.read_table(ecmwf_files[2])
    rows = dict(zip(table.column("key").to_pylist(), table.column("reference").to_pylist()))
    url, offset, length = json.loads(rows["step_024/msl/sfc/ens02/0.0.0"])
    rows["step_024/msl/sfc/ens02/0.0.0"] = json.dumps([url, -5, length])
    bad = tmp_path / "ens02.parquet"
    pq.write_table(pa.table({"key": list(rows), "reference": list(rows.values())}), bad)
    before = catalog_counts(db)
    with pytest.raises(BridgeError) as err:
        import_gik_parquet("", [ecmwf_files[0], ecmwf_files[1], bad, ecmwf_files[3]], target)
    assert err.value.sqlstate == "22003"
    assert "step_024/msl/sfc/ens02/0.0.0" in str(err.value) and str(bad) in str(err.value)
    assert catalog_counts(db) == before
    assert scalar(db, "SELECT count(*) FROM gik.dataset WHERE name = %s", (target,)) == 0


def test_icechunk_option_writes_the_imported_runs(db, gefs, gefs_files, ecmwf_files, target, tmp_path):
    """--icechunk: the import, then pg_gik.icechunk.export_runs of its runs (one commit each); the store's values
    are gik.decode's. The ECMWF layout has no metadata: its templates are learned (one message per field)."""
    import xarray as xr
    from conftest import gik_decode
    from pg_gik.icechunk import open_repository
    runs = import_gik_parquet("", gefs_files, target, window_reset=6, icechunk=tmp_path / "gefs")
    assert [(r["refs"], r["icechunk"].action) for r in runs] == [(24, "created")]
    repo = open_repository(tmp_path / "gefs")
    assert next(repo.ancestry(branch="main")).message.startswith(f"pg_gik: {target} run 2025-10-01T00Z version 1")
    ds = xr.open_zarr(repo.readonly_session("main").store, zarr_format=3, consolidated=False)
    url, offset, length = db.execute("SELECT url, byte_offset, byte_length FROM gik.chunk_ref WHERE dataset = %s "
                                     "AND member = 2 AND step_end = 18", (target,)).fetchone()
    np.testing.assert_array_equal(ds["tp"].sel(member=2, step=18).values[0],
                                  gik_decode(db, url, offset, length))
    # Unchanged on a second import: no new version, no new commit.
    again = import_gik_parquet("", gefs_files, target, window_reset=6, icechunk=tmp_path / "gefs")
    assert [(r["version"], r["icechunk"].action) for r in again] == [(1, "unchanged")]
    drop(db, target)
    runs = import_gik_parquet("", ecmwf_files, target, icechunk=tmp_path / "ecmwf")
    assert [(r["refs"], r["icechunk"].action) for r in runs] == [(60, "created")]
    ds = xr.open_zarr(open_repository(tmp_path / "ecmwf").readonly_session("main").store, zarr_format=3,
                      consolidated=False)
    url, offset, length = db.execute("SELECT url, byte_offset, byte_length FROM gik.chunk_ref WHERE dataset = %s "
                                     "AND variable = 'tp' AND member = 3 AND step_end = 24", (target,)).fetchone()
    np.testing.assert_array_equal(ds["tp"].sel(member=3, step=24).values[0], gik_decode(db, url, offset, length))


def test_command_line_import_to_icechunk(db, gefs, gefs_files, target, tmp_path):
    """pg-gik parquet-import … --icechunk REPO prints the run and its commit."""
    rc, out, err = run_cli("parquet-import", *gefs_files, "--dataset", target, "--window-reset", "6",
                           "--icechunk", tmp_path / "repo")
    assert rc == 0, err
    assert re.fullmatch(r"2025-10-01T00Z version 1: 24 references; icechunk: created \w+", out.strip()), out
    from pg_gik.icechunk import open_repository
    snapshot = out.split()[-1]
    assert open_repository(tmp_path / "repo").lookup_branch("main") == snapshot


def test_icechunk_export_failure_is_a_clear_error(db, ecmwf_files, target, tmp_path):
    """Without templates the export cannot describe the grid: pg_gik.icechunk's error, naming the run."""
    with pytest.raises(GikError, match=f"run gik://{target}/2025-10-01T00Z: .*has no template"):
        import_gik_parquet("", ecmwf_files, target, learn_templates=False, icechunk=tmp_path / "repo")


def test_read_gik_parquet_values_are_bytes(ecmwf_files, gefs_files):
    """Text values become UTF-8 bytes, binary ones stay as written (what the bytea staging column gets)."""
    ec = dict(read_gik_parquet(ecmwf_files[0]))
    assert ec[".zgroup"] == b'{"zarr_format": 2}'
    day = ECMWF_RUN[:10].replace("-", "")
    with open(MIRROR / f"ecmwf-forecasts/{day}/00z/ifs/0p25/enfo/{day}000000-6h-enfo-ef.index") as f:
        control_tp = next(e for e in map(json.loads, f) if e["param"] == "tp" and "number" not in e)
    assert json.loads(ec["step_006/tp/sfc/control/0.0.0"])[1:] == [control_tp["_offset"], control_tp["_length"]]
    ge = dict(read_gik_parquet(gefs_files[0]))
    assert all(isinstance(v, bytes) for v in ge.values()) and b"\x00" in ge["tp/accum/surface/step/0"]
