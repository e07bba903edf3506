"""Ingestion against the loopback mirror: offsets match ecCodes, transactions, concurrency, versions, faults."""
import json
import shutil
import urllib.request

import psycopg2
import pytest

from conftest import FAULT, HTTP, MIRROR, concurrently, grib_keys, mirror_path, query, scalar

GEFS_RUN = "noaa-gefs-pds/gefs.20251001"
TEMPLATE = "{base}/gefs.{{date}}/{{cycle}}/atmos/pgrb2sp25/{{member}}.t{{cycle}}z.pgrb2s.0p25.f{{step3}}"


def eccodes_messages(path):
    """(offset, totalLength, shortName, stepRange, number) of every message in a GRIB file, read by ecCodes."""
    return grib_keys(path, ("offset", "totalLength", "shortName", "stepRange", "number"))


def scratch_dataset(db, name, base_url, steps="0-24/6", members="{0,1,2}"):
    """Define a GEFS-layout dataset reading from base_url (a copy of the mirror's GEFS run), anew."""
    query(db, "SELECT gik.drop_dataset(%s)", (name,))
    query(db, "SELECT gik.define_dataset(%s, 'idx', %s, '{0}', gik.step_list(%s), members => %s::int[],"
              " member_tokens => '{gec00,gep01,gep02}', variables => '{APCP,TMP}')",
          (name, TEMPLATE.format(base=base_url), steps, members))


@pytest.fixture
def scratch_run(tmp_path_factory, request):
    """A private copy of the GEFS run under the mirror (served by nginx), removed afterwards."""
    name = request.node.name.replace("[", "_").replace("]", "")[:40]
    root = MIRROR / "scratch" / name
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    shutil.copytree(MIRROR / GEFS_RUN, root / "gefs.20251001")
    for p in [root, *root.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    yield root, f"{HTTP}/scratch/{name}"
    shutil.rmtree(root, ignore_errors=True)


def catalog_snapshot(db, dataset):
    """Everything the catalog holds about a dataset, for before/after comparisons."""
    return {
        "run": query(db, "SELECT run_id, version, status, refs, files_expected, files_missing, selection::text "
                         "FROM gik.run JOIN gik.dataset USING (dataset_id) WHERE name = %s ORDER BY run_id", (dataset,)),
        "files": query(db, "SELECT f.* FROM gik.file f JOIN gik.run USING (run_id) JOIN gik.dataset USING (dataset_id) "
                           "WHERE name = %s ORDER BY file_id", (dataset,)),
        "packs": query(db, "SELECT p.* FROM gik.chunk_pack p JOIN gik.dataset USING (dataset_id) WHERE name = %s "
                           "ORDER BY file_id, member", (dataset,)),
        "versions": query(db, "SELECT v.run_id, v.version, v.files_added, v.files_changed, v.refs FROM gik.run_version v "
                              "JOIN gik.run USING (run_id) JOIN gik.dataset USING (dataset_id) WHERE name = %s", (dataset,)),
    }


def test_gefs_offsets_and_lengths_match_eccodes(db):
    query(db, "SELECT gik.ingest_run('gefs_0p25', '2025-10-01 00:00+00', members => '{0,1,2}',"
              " steps => gik.step_list('0-24/3'))")
    refs = query(db, "SELECT url, byte_offset, byte_length, variable, step_start, step_end, member "
                     "FROM gik.chunk_ref WHERE dataset = 'gefs_0p25' AND init_time = '2025-10-01 00:00+00'")
    assert len(refs) == 984
    by_file = {}
    for url, off, length, var, s0, s1, member in refs:
        by_file.setdefault(url, []).append((off, length, var, s0, s1, member))
    assert len(by_file) == 27
    for url, msgs in by_file.items():
        truth = {m[0]: m for m in eccodes_messages(mirror_path(url))}
        assert len(truth) == len(msgs), url
        for off, length, var, s0, s1, member in msgs:
            t_off, t_len, short, step_range, number = truth[off]
            assert length == t_len, (url, off)
            assert number == member
            if var == "APCP":
                assert short == "tp" and step_range == f"{int(s0)}-{int(s1)}"


def test_ecmwf_offsets_lengths_and_members_match_eccodes(db):
    query(db, "SELECT gik.ingest_run('ecmwf_ens_0p25', '2025-10-01 00:00+00', steps => '{0,6,12,18,24}')")
    refs = query(db, "SELECT url, byte_offset, byte_length, variable, member, step_end "
                     "FROM gik.chunk_ref WHERE dataset = 'ecmwf_ens_0p25' AND init_time = '2025-10-01 00:00+00'")
    assert len(refs) == 60
    cache = {}
    for url, off, length, var, member, step in refs:
        if url not in cache:
            cache[url] = {m[0]: m for m in eccodes_messages(mirror_path(url))}
        t_off, t_len, short, step_range, number = cache[url][off]
        assert (length, short, number) == (t_len, var, member), (url, off)
        assert step_range.split("-")[-1] == str(int(step))


def test_two_sessions_ingesting_one_run_leave_one_copy(db):
    scratch_dataset(db, "gefs_concurrent", f"{HTTP}/{'noaa-gefs-pds'}")
    results, errors = concurrently(
        2, lambda conn: scalar(conn, "SELECT version FROM gik.ingest_run('gefs_concurrent', '2025-10-01 00:00+00')"))
    assert not errors, errors
    assert sorted(results) == [1, 1]
    assert scalar(db, "SELECT count(*) FROM gik.run JOIN gik.dataset USING (dataset_id) WHERE name = 'gefs_concurrent'") == 1
    assert scalar(db, "SELECT count(*) FROM gik.chunk_ref WHERE dataset = 'gefs_concurrent'") == 3 * 4 * 2 + 3
    assert scalar(db, "SELECT count(*) FROM gik.run_version JOIN gik.run USING (run_id) "
                      "JOIN gik.dataset USING (dataset_id) WHERE name = 'gefs_concurrent'") == 1


def test_replaced_upstream_file_makes_a_new_version(db, scratch_run):
    root, base = scratch_run
    scratch_dataset(db, "gefs_replaced", base)
    v1 = query(db, "SELECT version, refs FROM gik.ingest_run('gefs_replaced', '2025-10-01 00:00+00')")[0]
    assert v1 == (1, 27)
    # Upstream replaces member 1 at f012 with other content (member 2's file).
    d = root / "gefs.20251001/00/atmos/pgrb2sp25"
    for suffix in ("", ".idx"):
        shutil.copy(d / f"gep02.t00z.pgrb2s.0p25.f012{suffix}", d / f"gep01.t00z.pgrb2s.0p25.f012{suffix}")
    v2 = query(db, "SELECT version, refs FROM gik.ingest_run('gefs_replaced', '2025-10-01 00:00+00')")[0]
    assert v2 == (2, 27)
    assert query(db, "SELECT files_added, files_changed, note FROM gik.run_version v JOIN gik.run USING (run_id) "
                     "JOIN gik.dataset USING (dataset_id) WHERE name = 'gefs_replaced' AND v.version = 2") == \
        [(0, 1, "upstream files added or replaced")]
    # The old file row is kept, valid until version 2.
    assert query(db, "SELECT valid_from, valid_to FROM gik.file f JOIN gik.run USING (run_id) JOIN gik.dataset USING (dataset_id) "
                     "WHERE name = 'gefs_replaced' AND f.step = 12 AND f.member = 1 ORDER BY valid_from") == [(1, 2), (2, None)]
    # Nothing else changes on a third ingestion.
    assert scalar(db, "SELECT version FROM gik.ingest_run('gefs_replaced', '2025-10-01 00:00+00')") == 2


def test_failed_ingestion_leaves_previous_state_intact(db, scratch_run):
    root, base = scratch_run
    scratch_dataset(db, "gefs_fail", base)
    query(db, "SELECT gik.ingest_run('gefs_fail', '2025-10-01 00:00+00')")
    before = catalog_snapshot(db, "gefs_fail")
    idx = root / "gefs.20251001/00/atmos/pgrb2sp25/gep02.t00z.pgrb2s.0p25.f018.idx"
    idx.write_text(idx.read_text() + "39:notanumber:d=2025100100:TMP:surface:18 hour fcst:ENS=+2\n")
    with pytest.raises(psycopg2.Error) as exc:
        query(db, "SELECT gik.ingest_run('gefs_fail', '2025-10-01 00:00+00')")
    assert exc.value.pgcode == "22P02"
    assert "line 39" in exc.value.diag.message_primary
    assert "gep02.t00z.pgrb2s.0p25.f018.idx" in exc.value.diag.message_primary
    assert catalog_snapshot(db, "gefs_fail") == before


def test_index_for_another_run_is_refused(db, scratch_run):
    root, base = scratch_run
    scratch_dataset(db, "gefs_wrongdate", base)
    idx = root / "gefs.20251001/00/atmos/pgrb2sp25/gec00.t00z.pgrb2s.0p25.f006.idx"
    idx.write_text(idx.read_text().replace("d=2025100100", "d=2025093000"))
    with pytest.raises(psycopg2.Error) as exc:
        query(db, "SELECT gik.ingest_run('gefs_wrongdate', '2025-10-01 00:00+00')")
    assert exc.value.pgcode == "22000"
    assert "gec00.t00z.pgrb2s.0p25.f006.idx" in exc.value.diag.message_primary


def test_partial_run_completes_later(db, scratch_run):
    root, base = scratch_run
    scratch_dataset(db, "gefs_partial", base)
    d = root / "gefs.20251001/00/atmos/pgrb2sp25"
    held = d.parent / "held"
    held.mkdir()
    for f in d.glob("*.f024*"):
        shutil.move(str(f), held / f.name)
    r = query(db, "SELECT status, version, files_found, files_missing FROM gik.ingest_run('gefs_partial', "
                  "'2025-10-01 00:00+00', allow_missing => true)")[0]
    assert r == ("partial", 1, 12, 3)
    for f in held.iterdir():
        shutil.move(str(f), d / f.name)
    r = query(db, "SELECT status, version, files_found, files_missing, refs FROM gik.ingest_run('gefs_partial', "
                  "'2025-10-01 00:00+00', allow_missing => true)")[0]
    assert r == ("complete", 2, 15, 0, 27)
    assert query(db, "SELECT files_added, files_changed FROM gik.run_version v JOIN gik.run USING (run_id) "
                     "JOIN gik.dataset USING (dataset_id) WHERE name = 'gefs_partial' AND v.version = 2") == [(0, 3)]


def test_ingestion_retries_through_server_errors(db):
    urllib.request.urlopen(f"{FAULT}/__reset").read()
    query(db, "SET gik.retry_backoff = '10ms'")
    scratch_dataset(db, "gefs_flaky", f"{FAULT}/fault/503-then-ok/1/noaa-gefs-pds")
    r = query(db, "SELECT status, files_found, refs FROM gik.ingest_run('gefs_flaky', '2025-10-01 00:00+00')")[0]
    assert r == ("complete", 15, 27)
    with urllib.request.urlopen(f"{FAULT}/__stats") as resp:
        stats = json.load(resp)
    assert stats["status"].get("503", 0) >= 15
