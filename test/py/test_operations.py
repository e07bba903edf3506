"""Scheduled ingestion against scratch copies of the mirror: runs being published, failures that are
logged while the catalog stays intact, retries, progress seen from another session, interrupted
attempts, concurrent calls, and a run's earlier versions after upstream replaced a file."""
import json
import shutil
import threading
import time
import urllib.request

import psycopg2
import pytest

from conftest import FAULT, HTTP, MIRROR, concurrently, connect, query, scalar
from test_ingest import TEMPLATE, catalog_snapshot, scratch_run  # noqa: F401 - scratch_run is a fixture

RUN = "2025-10-01 00:00+00"
AS_OF = "2025-10-01 07:00+00"
IDX_DIR = "gefs.20251001/00/atmos/pgrb2sp25"


def ops_dataset(db, name, base_url, steps="0-24/6"):
    """A GEFS-layout dataset (00z only, 3 members, APCP and TMP) reading from base_url."""
    query(db, "SELECT gik.drop_dataset(%s)", (name,))
    query(db, "SELECT gik.define_dataset(%s, 'idx', %s, '{0}', gik.step_list(%s), members => '{0,1,2}',"
              " member_tokens => '{gec00,gep01,gep02}', variables => '{APCP,TMP}')",
          (name, TEMPLATE.format(base=base_url), steps))


def call_latest(conn, name, **kw):
    """CALL gik.ingest_latest(name, as_of => AS_OF, ...); returns the notices it raised."""
    args = "".join(f", {k} => %s" for k in kw)
    del conn.notices[:]
    query(conn, f"CALL gik.ingest_latest(%s, as_of => %s{args})", (name, AS_OF, *kw.values()))
    return [n.strip() for n in conn.notices]


def log_rows(db, name, cols="reason, status, outcome, version, files_found, files_missing"):
    return query(db, f"SELECT {cols} FROM gik.ingest_log JOIN gik.dataset USING (dataset_id) "
                     "WHERE name = %s ORDER BY log_id", (name,))


def fault_stats():
    with urllib.request.urlopen(f"{FAULT}/__stats") as resp:
        return json.load(resp)


def test_run_being_published_is_partial_then_completed(db, scratch_run):
    root, base = scratch_run
    name = "ops_publishing"
    # Through the fault server's plain paths (no fault), which counts the requests.
    ops_dataset(db, name, f"{FAULT}/scratch/{root.name}")
    d = root / IDX_DIR
    held = root / "held"
    held.mkdir()
    for f in d.glob("*.f024*"):
        shutil.move(str(f), held / f.name)
    notices = call_latest(db, name)
    assert log_rows(db, name) == [("being published", "partial", "new version", 1, 12, 3)]
    assert any("2025-10-01 00z: ingesting (1 of 1, being published)" in n for n in notices), notices
    assert any("2025-10-01 00z: partial (new version, version 1), 12 of 15 files" in n for n in notices), notices
    for f in held.iterdir():
        shutil.move(str(f), d / f.name)
    call_latest(db, name)
    assert log_rows(db, name)[1:] == [("partial run", "complete", "new version", 2, 15, 0)]
    assert query(db, "SELECT status, version, refs FROM gik.run JOIN gik.dataset USING (dataset_id) WHERE name = %s",
                 (name,)) == [("complete", 2, 27)]
    # Nothing new: no attempt, no index fetched; only HEAD probes of the unseen 30 September run.
    urllib.request.urlopen(f"{FAULT}/__reset").read()
    t0 = time.monotonic()
    notices = call_latest(db, name)
    elapsed = time.monotonic() - t0
    assert len(log_rows(db, name)) == 2
    assert any("nothing to ingest; newest complete run: 2025-10-01 00z" in n for n in notices), notices
    stats = fault_stats()
    assert stats["methods"] == {"HEAD": 3}, stats["methods"]
    assert elapsed < 2, elapsed


def test_failure_is_logged_and_previous_version_stays(db, scratch_run):
    root, base = scratch_run
    name = "ops_failing"
    ops_dataset(db, name, base)
    call_latest(db, name)
    before = catalog_snapshot(db, name)
    refs_before = query(db, "SELECT * FROM gik.chunk_ref WHERE dataset = %s ORDER BY file_id, byte_offset", (name,))
    idx = root / IDX_DIR / "gep02.t00z.pgrb2s.0p25.f018.idx"
    good = idx.read_text()
    idx.write_text(good + "39:notanumber:d=2025100100:TMP:surface:18 hour fcst:ENS=+2\n")
    del db.notices[:]
    call_latest(db, name, recheck="1 day")
    assert any("WARNING" in n and "failed (22P02)" in n for n in db.notices), db.notices
    sqlstate, error, status, outcome = query(db, "SELECT sqlstate, error, status, outcome FROM gik.ingest_log "
                                                 "JOIN gik.dataset USING (dataset_id) WHERE name = %s "
                                                 "ORDER BY log_id DESC LIMIT 1", (name,))[0]
    assert (sqlstate, status, outcome) == ("22P02", "failed", "failed")
    assert "line 39" in error and "gep02.t00z.pgrb2s.0p25.f018.idx" in error
    # The failed attempt's own transaction rolled back; the complete version 1 is untouched and readable.
    assert catalog_snapshot(db, name) == before
    assert query(db, "SELECT * FROM gik.chunk_ref WHERE dataset = %s ORDER BY file_id, byte_offset", (name,)) == refs_before
    assert query(db, "SELECT latest_complete_version, consecutive_failures, state FROM gik.ingest_health "
                     "WHERE dataset = %s", (name,)) == [(1, 1, "failing")]
    # Backoff: the next call waits (retry_after, 10 minutes by default) and logs nothing.
    notices = call_latest(db, name, recheck="1 day")
    assert any("skipped: 2025-10-01 00z waiting to retry after 1 failure" in n for n in notices), notices
    assert len(log_rows(db, name)) == 2
    # Fixed upstream: the retry succeeds, and as the index is what it was, the run is unchanged.
    idx.write_text(good)
    call_latest(db, name, recheck="1 day", retry_after="0")
    assert log_rows(db, name, "reason, status, outcome, version") == [
        ("published", "complete", "new version", 1), ("recheck", "failed", "failed", None),
        ("retry after 1 failure", "complete", "unchanged", 1)]
    assert query(db, "SELECT consecutive_failures, failures_24h, state FROM gik.ingest_health WHERE dataset = %s",
                 (name,)) == [(0, 1, "behind")]


def test_failed_first_ingestion_leaves_no_run(db, scratch_run):
    root, base = scratch_run
    name = "ops_first_fail"
    ops_dataset(db, name, base)
    idx = root / IDX_DIR / "gec00.t00z.pgrb2s.0p25.f006.idx"
    idx.write_text(idx.read_text().replace("d=2025100100", "d=2025093000"))
    call_latest(db, name)
    assert log_rows(db, name, "status, sqlstate") == [("failed", "22000")]
    assert scalar(db, "SELECT count(*) FROM gik.run JOIN gik.dataset USING (dataset_id) WHERE name = %s", (name,)) == 0
    assert scalar(db, "SELECT count(*) FROM gik.file f JOIN gik.run USING (run_id) JOIN gik.dataset USING (dataset_id) "
                      "WHERE name = %s", (name,)) == 0
    # Gives up after max_attempts consecutive failures.
    call_latest(db, name, retry_after="0", max_attempts=2)
    notices = call_latest(db, name, retry_after="0", max_attempts=2)
    assert len(log_rows(db, name)) == 2
    assert any("gave up after 2 failures" in n for n in notices), notices


def test_progress_is_visible_from_another_session(db):
    # Index bodies trickle out for 2 s, so the ingestion takes a while.
    name = "ops_slow"
    ops_dataset(db, name, f"{FAULT}/fault/slow/2/noaa-gefs-pds")
    worker = connect()
    errors = []

    def run():
        try:
            call_latest(worker, name)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    seen = []
    deadline = time.monotonic() + 30
    while t.is_alive() and time.monotonic() < deadline:
        seen = query(db, "SELECT dataset, init_time::text, reason, call_pos, call_runs, call_done, files_expected, "
                         "backend_pid FROM gik.ingest_progress WHERE dataset = %s", (name,))
        if seen:
            break
        time.sleep(0.1)
    t.join()
    assert not errors, errors
    assert seen and seen[0][:7] == (name, "2025-10-01 00:00:00+00", "published", 1, 1, 0, 15), seen
    assert seen[0][7] == worker.get_backend_pid()
    worker.close()
    assert query(db, "SELECT count(*) FROM gik.ingest_progress WHERE dataset = %s", (name,)) == [(0,)]
    assert log_rows(db, name, "status, outcome") == [("complete", "new version")]


def test_interrupted_attempt_is_marked_and_retried(db):
    name = "ops_interrupted"
    ops_dataset(db, name, f"{FAULT}/fault/slow/3/noaa-gefs-pds")
    conn = connect()
    query(conn, "SET statement_timeout = '1500ms'")
    with pytest.raises(psycopg2.Error) as exc:
        call_latest(conn, name)
    assert exc.value.pgcode == "57014"
    conn.close()
    # The running row was committed before the ingestion; the ingestion itself rolled back.
    assert log_rows(db, name, "status") == [("running",)]
    assert scalar(db, "SELECT count(*) FROM gik.run JOIN gik.dataset USING (dataset_id) WHERE name = %s", (name,)) == 0
    time.sleep(5.5)  # the grace period of gik.ingest_log_cleanup()
    assert scalar(db, "SELECT gik.ingest_log_cleanup()") == 1
    assert log_rows(db, name, "status, outcome") == [("failed", "interrupted")]
    query(db, f"SELECT gik.define_dataset(%s, 'idx', %s, '{{0}}', gik.step_list('0-24/6'), members => '{{0,1,2}}',"
              " member_tokens => '{gec00,gep01,gep02}', variables => '{APCP,TMP}')",
          (name, TEMPLATE.format(base=HTTP + "/noaa-gefs-pds")))
    call_latest(db, name, retry_after="0")
    assert log_rows(db, name, "reason, status")[-1] == ("retry after 1 failure", "complete")


def test_concurrent_calls_ingest_once(db):
    name = "ops_concurrent"
    ops_dataset(db, name, f"{FAULT}/fault/slow/1/noaa-gefs-pds")
    _, errors = concurrently(2, lambda conn: call_latest(conn, name))
    assert not errors, errors
    assert query(db, "SELECT r.version, (SELECT count(*) FROM gik.run_version v WHERE v.run_id = r.run_id) "
                     "FROM gik.run r JOIN gik.dataset USING (dataset_id) WHERE name = %s", (name,)) == [(1, 1)]
    outcomes = sorted(o for (o,) in log_rows(db, name, "outcome"))
    assert outcomes in (["new version"], ["new version", "unchanged"]), outcomes


def test_replaced_upstream_file_keeps_earlier_versions_readable(db, scratch_run):
    root, base = scratch_run
    name = "ops_replaced"
    ops_dataset(db, name, base)
    call_latest(db, name)
    cols = "file_step, member, variable, level, stat, step_start, step_end, url, byte_offset, byte_length"
    v1 = query(db, f"SELECT {cols} FROM gik.chunk_ref WHERE dataset = %s AND init_time = %s ORDER BY 1, 2, 3, 9",
               (name, RUN))
    # Upstream replaces member 1 at f012 (with member 2's file: other offsets and lengths).
    d = root / IDX_DIR
    for suffix in ("", ".idx"):
        shutil.copy(d / f"gep02.t00z.pgrb2s.0p25.f012{suffix}", d / f"gep01.t00z.pgrb2s.0p25.f012{suffix}")
    call_latest(db, name, recheck="1 day")
    assert log_rows(db, name, "reason, outcome, version_before, version")[-1] == ("recheck", "new version", 1, 2)
    current = query(db, f"SELECT {cols} FROM gik.chunk_ref WHERE dataset = %s AND init_time = %s ORDER BY 1, 2, 3, 9",
                    (name, RUN))
    at_v1 = query(db, f"SELECT {cols} FROM gik.chunk_refs_at(%s, %s, 1) ORDER BY 1, 2, 3, 9", (name, RUN))
    at_v2 = query(db, f"SELECT {cols} FROM gik.chunk_refs_at(%s, %s, 2) ORDER BY 1, 2, 3, 9", (name, RUN))
    assert at_v1 == v1
    assert at_v2 == current
    u1 = f"{base}/{IDX_DIR}/gep01.t00z.pgrb2s.0p25.f012"
    u2 = f"{base}/{IDX_DIR}/gep02.t00z.pgrb2s.0p25.f012"
    assert {r[7] for r in set(v1) ^ set(current)} == {u1}
    # Version 2 of that file has member 2's messages (its index says ENS=+2) and byte ranges.
    assert sorted((r[1], r[2], r[8], r[9]) for r in current if r[7] == u1) == \
        sorted((r[1], r[2], r[8], r[9]) for r in current if r[7] == u2)
    assert {r[1] for r in v1 if r[7] == u1} == {1}


@pytest.fixture(autouse=True)
def _drop_ops_datasets(db_setup):
    """Each test's datasets (and with them their log rows) are removed afterwards."""
    yield
    conn = connect()
    query(conn, "SELECT gik.drop_dataset(name) FROM gik.dataset WHERE name LIKE 'ops\\_%'")
    conn.close()
