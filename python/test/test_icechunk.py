"""pg_gik.icechunk.export_runs and `pg-gik icechunk`: local and S3 (moto) repositories read back with icechunk,
zarr and xarray; values = gik.decode, chunk meaning = ecCodes; commits, versions, checksums and failures."""
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import xarray as xr
import zarr
from conftest import ECMWF, GEFS, GEFS_RUNS, drop_datasets, gik_decode
from helpers import HTTP, MIRROR, check_chunk_meaning, zarr_group_arrays
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

import pg_gik
from pg_gik.icechunk import export_runs, open_repository, repo_target

TOP = pathlib.Path(__file__).resolve().parents[2]
EAST_AFRICA = dict(latitude=slice(23, -12), longitude=slice(21, 53))
COPY_PORT = 18781
COPY_DIR = pathlib.Path("/tmp/pypkg/mirror_copy")
COPY = "pyt_copy"
RUN_DIR = "noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def head(repo, branch="main"):
    return repo.lookup_branch(branch)


def messages(repo):
    return [s.message for s in repo.ancestry(branch="main")]


def raw_chunk_reader(store):
    """The bytes Icechunk serves for a chunk key (the referenced message), or None for an absent chunk."""
    def read(name, idx):
        buf = sync(store.get(f"{name}/c/{'/'.join(map(str, idx))}", prototype=default_buffer_prototype()))
        return None if buf is None else buf.to_bytes()
    return read


@pytest.fixture(scope="module")
def repo_dir(tmp_path_factory, datasets):
    """The GEFS 0.25° run exported with longitudes -180..180 (East Africa contiguous). (The mirror's 2025-10-02
    GEFS run has its APCP on a 1° grid that the dataset's 0.25° template does not describe: not exported.)"""
    d = tmp_path_factory.mktemp("ic") / "gefs"
    res = export_runs("", GEFS, GEFS_RUNS[:1], d, longitude="-180..180")
    assert [r.action for r in res] == ["created"]
    return d


def test_commits_runs_and_reread(repo_dir, conn):
    repo = open_repository(repo_dir)
    msgs = messages(repo)
    assert msgs[0] == f"pg_gik: {GEFS} run 2025-10-01T00Z version 1 (created; pg_gik client {pg_gik.__version__})"
    assert len(msgs) == 2  # and Icechunk's initial commit
    ds = xr.open_zarr(repo.readonly_session("main").store, zarr_format=3, consolidated=False)
    assert ds["tp"].dims == ("init_time", "member", "step", "latitude", "longitude")
    # the axes of a complete run of the dataset (31 members, its steps); the run's 24 messages in them
    steps = conn.execute("SELECT steps FROM gik.dataset WHERE name = %s", (GEFS,)).fetchone()[0]
    assert ds["tp"].shape == (1, 31, len(steps), 721, 1440)
    assert list(ds["init_time"].values) == [np.datetime64("2025-10-01T00:00")]
    assert ds.attrs["pg_gik_runs"] == {"2025-10-01T00Z": 1}
    # unchanged run: no commit
    before = head(repo)
    assert [r.action for r in export_runs("", GEFS, GEFS_RUNS[:1], repo_dir, longitude="-180..180")] == ["unchanged"]
    assert head(open_repository(repo_dir)) == before


def test_runs_append_along_init_time(datasets, conn, tmp_path):
    runs = ["2025-10-02T00Z", "2025-10-03T00Z"]
    res = export_runs("", ECMWF, runs, tmp_path / "ecmwf")
    assert [r.action for r in res] == ["created", "appended"]
    repo = open_repository(tmp_path / "ecmwf")
    assert [m.split(" (")[0] for m in messages(repo)[:2]] == [f"pg_gik: {ECMWF} run {r} version 1" for r in runs[::-1]]
    ds = xr.open_zarr(repo.readonly_session("main").store, zarr_format=3, consolidated=False)
    assert list(ds["init_time"].values) == [np.datetime64("2025-10-02T00:00"), np.datetime64("2025-10-03T00:00")]
    rows = conn.execute("SELECT init_time, member, step_end, url, byte_offset, byte_length FROM gik.manifest(%s, "
                        "'2025-10-02 00:00+00', '2025-10-03 00:00+00', zarr_format => 3) WHERE kind = 'chunk' "
                        "AND step_end = 24", (ECMWF,)).fetchall()
    assert len(rows) == 5 + 51
    for t, member, step, url, off, n in rows[::7]:
        got = ds["tp"].sel(init_time=np.datetime64(t.replace(tzinfo=None)), member=member, step=step).values
        np.testing.assert_array_equal(got, gik_decode(conn, url, off, n))
    store = repo.readonly_session("main").store
    assert check_chunk_meaning(zarr_group_arrays(zarr.open_group(store, mode="r", zarr_format=3)),
                               raw_chunk_reader(store)) == len(conn.execute(
        "SELECT 1 FROM gik.manifest(%s, '2025-10-02 00:00+00', '2025-10-03 00:00+00', zarr_format => 3) "
        "WHERE kind = 'chunk'", (ECMWF,)).fetchall())


def test_east_africa_values_equal_gik_decode(repo_dir, conn):
    repo = open_repository(repo_dir)
    ds = xr.open_zarr(repo.readonly_session("main").store, zarr_format=3, consolidated=False)
    region = ds["tp"].sel(**EAST_AFRICA).load()
    assert region.shape[-2:] == (141, 129)
    refs = conn.execute("SELECT init_time, member, step_end, url, byte_offset, byte_length FROM gik.manifest(%s, %s, %s, "
                        "zarr_format => 3) WHERE kind = 'chunk'", (GEFS, GEFS_RUNS[0], GEFS_RUNS[0])).fetchall()
    assert len(refs) == 24
    for t, member, step, url, off, n in refs:
        want = np.array(conn.execute("SELECT gik.decode(%s, %s, %s, '-180..180', gik.bbox(21, -12, 53, 23))",
                                     (url, off, n)).fetchone()[0], dtype="float32")
        got = region.sel(init_time=np.datetime64(t.replace(tzinfo=None)), member=member, step=step).values
        np.testing.assert_array_equal(got, want)  # float32 both: gribberish = ecCodes exactly


def test_every_icechunk_chunk_means_its_key(repo_dir):
    repo = open_repository(repo_dir)
    store = repo.readonly_session("main").store
    group = zarr.open_group(store, mode="r", zarr_format=3)
    assert check_chunk_meaning(zarr_group_arrays(group), raw_chunk_reader(store)) == 24


def test_http_references_get_the_mirror_container(datasets, conn, tmp_path):
    res = export_runs("", ECMWF, ["2025-10-02T00Z"], tmp_path / "http", url_style="http")
    assert res[0].action == "created"
    repo = open_repository(tmp_path / "http")
    assert set(repo.config.virtual_chunk_containers) == {"s3://noaa-gefs-pds/", "s3://ecmwf-forecasts/",
                                                        HTTP + "/"}
    ds = xr.open_zarr(repo.readonly_session("main").store, zarr_format=3, consolidated=False)
    t, member, step, url, off, n = conn.execute(
        "SELECT init_time, member, step_end, url, byte_offset, byte_length FROM gik.manifest(%s, '2025-10-02 00:00+00', "
        "zarr_format => 3, url_style => 'http') WHERE kind = 'chunk' ORDER BY member DESC, step_end DESC LIMIT 1",
        (ECMWF,)).fetchone()
    assert url.startswith(HTTP + "/ecmwf-forecasts/")
    np.testing.assert_array_equal(ds["tp"].sel(init_time=ds.init_time[0], member=member, step=step).values,
                                  gik_decode(conn, url, off, n))


def test_cli_to_s3_repository_on_moto(datasets, tmp_path):
    import boto3
    port = free_port()
    server = subprocess.Popen([str(pathlib.Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1",
                               "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        keys = dict(aws_access_key_id="testing", aws_secret_access_key="testing")
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **keys).create_bucket(Bucket="repos")
        cli = [str(pathlib.Path(sys.executable).parent / "pg-gik"), "icechunk", GEFS, "2025-10-01T00Z", "--repo", "s3://repos/gefs", "--endpoint-url", endpoint,
               "--access-key-id", "testing", "--secret-access-key", "testing"]
        out = subprocess.run(cli, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert [ln.split("\t")[:3] for ln in lines] == [["2025-10-01T00Z", "version 1", "created"]]
        storage = repo_target("s3://repos/gefs", endpoint_url=endpoint, access_key_id="testing",
                              secret_access_key="testing")
        repo = open_repository(storage)
        ds = xr.open_zarr(repo.readonly_session("main").store, zarr_format=3, consolidated=False)
        assert ds["tp"].shape[:2] == (1, 31) and ds["tp"].shape[-2:] == (721, 1440)
        assert float(ds["tp"].sel(member=2, step=24).max()) > 0
        again = subprocess.run(cli, capture_output=True, text=True, timeout=300)
        assert [ln.split("\t")[2] for ln in again.stdout.splitlines()] == ["unchanged"]
    finally:
        server.terminate()
        server.wait(10)


def test_failures_leave_the_repository_at_its_last_commit(repo_dir, tmp_path, datasets):
    repo = open_repository(repo_dir)
    before = head(repo)
    with pytest.raises(pg_gik.RunNotFound, match=rf"dataset '{GEFS}' has no run 2025-10-05T00Z"):
        export_runs("", GEFS, ["2025-10-05T00Z"], repo_dir, longitude="-180..180")
    # the same variable on another grid (longitudes 0..360 instead of -180..180)
    with pytest.raises(pg_gik.GikError, match=r"variable 'tp' of gik://pyt_gefs/2025-10-02T00Z is on another grid "
                                              r"than in the repository.*two grids in one variable"):
        export_runs("", GEFS, ["2025-10-01T00Z"], tmp_path / "other", longitude="source")
        export_runs("", GEFS, ["2025-10-02T00Z"], tmp_path / "other", longitude="-180..180")
    assert messages(open_repository(tmp_path / "other"))[0].startswith(f"pg_gik: {GEFS} run 2025-10-01T00Z")
    with pytest.raises(pg_gik.GikError, match=r"cannot reach the Icechunk repository"):
        export_runs("", GEFS, ["2025-10-01T00Z"], repo_target(
            "s3://nowhere/repo", endpoint_url=f"http://127.0.0.1:{free_port()}", access_key_id="x",
            secret_access_key="y"))
    out = subprocess.run([str(pathlib.Path(sys.executable).parent / "pg-gik"), "icechunk", GEFS, "2025-10-05T00Z",
                          "--repo", str(repo_dir)], capture_output=True, text=True, timeout=120)
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr.startswith(f"pg-gik: dataset '{GEFS}' has no run 2025-10-05T00Z")
    assert head(open_repository(repo_dir)) == before


# -- a copy of the mirror whose files the test replaces -----------------------------------------------------

@pytest.fixture(scope="module")
def copy_mirror(conn, datasets):
    shutil.rmtree(COPY_DIR, ignore_errors=True)
    (COPY_DIR / RUN_DIR).mkdir(parents=True)
    for f in (MIRROR / RUN_DIR).iterdir():
        shutil.copy2(f, COPY_DIR / RUN_DIR / f.name)
    state = COPY_DIR.parent / "mirror_copy_state"
    subprocess.run([str(TOP / "tools/mirror-server.sh"), "start", str(COPY_DIR), str(COPY_PORT), str(state)], check=True)
    base = f"http://127.0.0.1:{COPY_PORT}"
    conn.execute("SELECT set_config('gik.allowed_url_prefixes', current_setting('gik.allowed_url_prefixes') || ',' || %s, "
                 "false)", (base + "/",))
    drop_datasets(conn, COPY)
    conn.execute("SELECT gik.clone_dataset('gefs_0p25', %s, '{APCP}')", (COPY,))
    conn.execute("UPDATE gik.dataset_source s SET url_template = replace(url_template, 's3://', %s), "
                 "index_template = replace(index_template, 's3://', %s) FROM gik.dataset d "
                 "WHERE d.dataset_id = s.dataset_id AND d.name = %s", (base + "/", base + "/", COPY))
    yield base
    drop_datasets(conn, COPY)
    subprocess.run([str(TOP / "tools/mirror-server.sh"), "stop", str(state)], check=True)


def ingest_copy(conn):
    return conn.execute("SELECT (gik.ingest_run(%s, '2025-10-01 00:00+00', variables => '{APCP}', members => '{0,1,2}', "
                        "steps => gik.step_list('0-24/3'))).version", (COPY,)).fetchone()[0]


def test_replaced_object_is_refused_then_a_new_version_is_committed(copy_mirror, conn, tmp_path):
    v1 = ingest_copy(conn)
    repo_path = tmp_path / "copy_repo"
    assert export_runs("", COPY, ["2025-10-01T00Z"], repo_path)[0].action == "created"
    repo = open_repository(repo_path)
    assert f"{copy_mirror}/" in repo.config.virtual_chunk_containers
    ds = xr.open_zarr(repo.readonly_session("main").store, zarr_format=3, consolidated=False)
    assert float(ds["tp"].sel(init_time=ds.init_time[0], member=1, step=6).max()) > 0
    # the object is replaced (same bytes, new Last-Modified, so a new ETag): Icechunk must refuse its chunks
    target = COPY_DIR / RUN_DIR / "gep01.t00z.pgrb2s.0p25.f006"
    later = time.time() + 3600
    os.utime(target, (later, later))
    ds = xr.open_zarr(open_repository(repo_path).readonly_session("main").store, zarr_format=3, consolidated=False)
    refused = rf"the checksum of the object owning the virtual chunk has changed \({copy_mirror}/{RUN_DIR}/{target.name}\)"
    with pytest.raises(Exception, match=refused):
        ds["tp"].sel(init_time=ds.init_time[0], member=1, step=6).load()
    assert float(ds["tp"].sel(init_time=ds.init_time[0], member=0, step=6).max()) > 0  # other objects still read
    # re-ingestion records the new identity as a new version; the re-export commits it and reads again
    v2 = ingest_copy(conn)
    assert v2 == v1 + 1
    res = export_runs("", COPY, ["2025-10-01T00Z"], repo_path)
    assert (res[0].action, res[0].version) == ("updated", v2)
    repo = open_repository(repo_path)
    assert messages(repo)[0].startswith(f"pg_gik: {COPY} run 2025-10-01T00Z version {v2} (updated")
    ds = xr.open_zarr(repo.readonly_session("main").store, zarr_format=3, consolidated=False)
    url, off, n = conn.execute("SELECT url, byte_offset, byte_length FROM gik.manifest(%s, '2025-10-01 00:00+00', "
                               "zarr_format => 3) WHERE kind = 'chunk' AND member = 1 AND step_end = 6", (COPY,)).fetchone()
    np.testing.assert_array_equal(ds["tp"].sel(init_time=ds.init_time[0], member=1, step=6).values,
                                  gik_decode(conn, url, off, n))
    # a version in which a message is gone (its index line removed): its chunk is gone from the rewritten run
    idx = COPY_DIR / RUN_DIR / "gep02.t00z.pgrb2s.0p25.f024.idx"
    lines = idx.read_text().splitlines(keepends=True)
    idx.write_text("".join(ln for ln in lines if ":APCP:" not in ln))
    assert len(idx.read_text().splitlines()) == len(lines) - 1
    v3 = ingest_copy(conn)
    assert v3 == v2 + 1
    assert export_runs("", COPY, ["2025-10-01T00Z"], repo_path)[0].action == "updated"
    repo = open_repository(repo_path)
    store = repo.readonly_session("main").store
    ds = xr.open_zarr(store, zarr_format=3, consolidated=False)
    m2, s24 = list(ds["member"].values).index(2), list(ds["step"].values).index(24)
    assert raw_chunk_reader(store)("tp", (0, m2, s24, 0, 0)) is None
    assert np.isnan(ds["tp"].sel(init_time=ds.init_time[0], member=2, step=24).values).all()
    assert raw_chunk_reader(store)("tp", (0, m2, s24 - 1, 0, 0)) is not None
    # a catalog older than the repository (the dataset made anew: version 1 again) is refused
    head_before = head(repo)
    drop_datasets(conn, COPY)
    conn.execute("SELECT gik.clone_dataset('gefs_0p25', %s, '{APCP}')", (COPY,))
    conn.execute("UPDATE gik.dataset_source s SET url_template = replace(url_template, 's3://', %s), "
                 "index_template = replace(index_template, 's3://', %s) FROM gik.dataset d "
                 "WHERE d.dataset_id = s.dataset_id AND d.name = %s", (copy_mirror + "/", copy_mirror + "/", COPY))
    assert ingest_copy(conn) == 1
    with pytest.raises(pg_gik.GikError, match=rf"holds version {v3} of gik://{COPY}/2025-10-01T00Z, newer than the "
                                              r"catalog's version 1"):
        export_runs("", COPY, ["2025-10-01T00Z"], repo_path)
    assert head(open_repository(repo_path)) == head_before
