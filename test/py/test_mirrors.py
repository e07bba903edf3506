"""Mirrors and fallback: several loopback servers each hold part of a GEFS run; ingestion tries each file's
mirrors in order, moves on after 404 and 5xx but not after a policy refusal, records the mirror that served
each file, and decoding reads from it (nginx's access log says so)."""
import contextlib
import os
import shutil
import subprocess

import numpy as np
import pytest

from conftest import FAULT, HTTP, MIRROR, ROOT, connect, error_of, query, redirect_url, scalar

RUN = "gefs.20251001/00/atmos/pgrb2sp25"  # under s3://noaa-gefs-pds/
INIT = "2025-10-01 00:00+00"
STEPS = list(range(0, 25, 3))
TOKENS = {0: "gec00", 1: "gep01", 2: "gep02"}
# server "a": members 0 and 1; server "b": member 2, and member 1 at f024 as well
HOLDS = {"a": {(m, s) for m in (0, 1) for s in STEPS}, "b": {(2, s) for s in STEPS} | {(1, 24)}}


def run_file(member, step):
    return f"{RUN}/{TOKENS[member]}.t00z.pgrb2s.0p25.f{step:03d}"


@pytest.fixture(scope="module")
def servers():
    """Two nginx servers on their own ports, each with part of the run, with access logs."""
    tools = ROOT / "tools"
    out = {}
    for name, files in HOLDS.items():
        root = ROOT / "mirrors" / name
        shutil.rmtree(root, ignore_errors=True)
        for m, s in files:
            for suffix in ("", ".idx"):
                dst = root / "noaa-gefs-pds" / (run_file(m, s) + suffix)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(MIRROR / "noaa-gefs-pds" / (run_file(m, s) + suffix), dst)
        subprocess.run(["chmod", "-R", "a+rX", str(ROOT / "mirrors")], check=True)
        port = subprocess.run([str(tools / "free-port.sh")], check=True, capture_output=True, text=True).stdout.strip()
        log = ROOT / "mirrors" / f"{name}.access.log"
        log.write_text("")
        os.chmod(log, 0o666)
        state = ROOT / "mirrors" / f"{name}.state"
        subprocess.run([str(tools / "mirror-server.sh"), "start", str(root), port, str(state)], check=True,
                       capture_output=True, env={**os.environ, "GIK_ACCESS_LOG": str(log)})
        out[name] = (f"http://127.0.0.1:{port}", log, state)
    yield out
    for _, _, state in out.values():
        subprocess.run([str(tools / "mirror-server.sh"), "stop", str(state)], check=False)


@pytest.fixture
def mirrors(db, servers):
    """The servers as mirrors of s3://noaa-gefs-pds/ (allowed for the test), plus one that always answers 503
    and one that redirects to a refused address; gik.mirrors picks among them per session."""
    prefixes = scalar(db, "SHOW gik.allowed_url_prefixes")
    query(db, "ALTER SYSTEM SET gik.allowed_url_prefixes = %s",
          (prefixes + "," + ",".join(u + "/" for u, _, _ in servers.values()),))
    query(db, "SELECT pg_reload_conf()")
    rows = [("a", 11, servers["a"][0] + "/noaa-gefs-pds/"), ("b", 12, servers["b"][0] + "/noaa-gefs-pds/"),
            ("down", 13, f"{FAULT}/fault/status/503/noaa-gefs-pds/"),
            ("refusing", 14, redirect_url("http://169.254.169.254/latest/", "") + "/"),
            ("not_allowed", 15, "http://127.0.0.1:9/noaa-gefs-pds/")]
    for name, prio, url in rows:
        query(db, "INSERT INTO gik.mirror (prefix, name, priority, url_prefix) VALUES ('s3://noaa-gefs-pds/', %s, %s, %s)",
              (name, prio, url))
    query(db, "SELECT gik.drop_dataset('gefs_m') FROM gik.dataset WHERE name = 'gefs_m'")
    query(db, "SELECT gik.clone_dataset('gefs_0p25', 'gefs_m')")
    yield servers
    query(db, "DELETE FROM gik.mirror WHERE priority > 10")
    query(db, "SELECT gik.drop_dataset('gefs_m')")
    query(db, "ALTER SYSTEM SET gik.allowed_url_prefixes = %s", (prefixes,))
    query(db, "SELECT pg_reload_conf()")


@contextlib.contextmanager
def session(order):
    """An autocommit session trying the mirrors in that order, without retries."""
    conn = connect()
    try:
        query(conn, "SET gik.mirrors = %s", (order,))
        query(conn, "SET gik.fetch_retries = 0")
        yield conn
    finally:
        conn.close()


def ingest(conn, **kw):
    return query(conn, "SELECT status, files_found, files_missing FROM gik.ingest_run('gefs_m', %s, variables => '{APCP}',"
                       " members => '{0,1,2}', steps => %s, allow_missing => %s)",
                 (INIT, kw.get("steps", STEPS), kw.get("allow_missing", False)))[0]


def files(conn):
    return {(m, s): (mirror, url) for m, s, mirror, url in query(conn, """
        SELECT f.member, f.step, f.mirror, f.url FROM gik.file f JOIN gik.run r USING (run_id)
        JOIN gik.dataset d USING (dataset_id) WHERE d.name = 'gefs_m' AND f.valid_to IS NULL""")}


def test_mirror_urls_order_and_policy(db, mirrors):
    url = "s3://noaa-gefs-pds/" + run_file(0, 0)
    with session("b,down,a,not_allowed") as conn:
        got = query(conn, "SELECT rank, mirror, url FROM gik.mirror_urls(%s)", (url,))
    # in the order asked for; the mirror the URL policy refuses is left out; aws is not asked for
    assert [(r, m) for r, m, _ in got] == [(1, "b"), (2, "down"), (3, "a")]
    assert got[0][2] == mirrors["b"][0] + "/noaa-gefs-pds/" + run_file(0, 0)
    with session("") as conn:  # every allowed mirror by priority: aws (the loopback mirror) first
        assert [m for _, m, _ in query(conn, "SELECT * FROM gik.mirror_urls(%s)", (url,))] == ["aws", "a", "b", "down", "refusing"]
        assert query(conn, "SELECT * FROM gik.mirror_urls('s3://elsewhere/x')") == [(1, None, "s3://elsewhere/x")]
    with session("a,nosuch") as conn:
        code, msg, _ = error_of(conn, "SELECT * FROM gik.mirror_urls(%s)", (url,))
    assert code == "22023" and "nosuch" in msg


def test_fallback_records_the_mirror_and_decode_reads_it(db, mirrors):
    with session("down,a,b") as conn:
        assert ingest(conn) == ("complete", 27, 0)
        got = files(conn)
        # every file skipped the failing mirror; each came from the first server that had it
        assert {k: v[0] for k, v in got.items()} == {(m, s): ("a" if (m, s) in HOLDS["a"] else "b")
                                                    for m in TOKENS for s in STEPS}
        assert got[(2, 24)][1] == mirrors["b"][0] + "/noaa-gefs-pds/" + run_file(2, 24)
        # decoding reads the recorded URL: the range request reaches server b, and the values are the message's
        url, off, length = query(conn, """SELECT c.url, c.byte_offset, c.byte_length FROM gik.chunk_ref c
            JOIN gik.dataset d USING (dataset_id) WHERE d.name = 'gefs_m' AND c.member = 2 AND c.step_end = 24""")[0]
        log = mirrors["b"][1]
        log.write_text("")
        vals = np.array(scalar(conn, "SELECT gik.decode(%s, %s, %s)", (url, off, length)), dtype=np.float32)
        assert f"GET 206 {length} /noaa-gefs-pds/{run_file(2, 24)}" in log.read_text()
        ref = np.array(scalar(conn, "SELECT gik.decode(%s, %s, %s)",
                              ("s3://noaa-gefs-pds/" + run_file(2, 24), off, length)), dtype=np.float32)
        assert vals.size == 1440 * 721 and np.array_equal(vals, ref)
    with session("b,a") as conn:  # another order: the file both servers hold now comes from b
        query(conn, "SELECT gik.drop_run('gefs_m', %s)", (INIT,))
        assert ingest(conn) == ("complete", 27, 0)
        assert files(conn)[(1, 24)][0] == "b" and files(conn)[(1, 0)][0] == "a"


def test_no_mirror_has_the_file(db, mirrors):
    with session("down,a,b") as conn:
        code, msg, detail = error_of(conn, "SELECT gik.ingest_run('gefs_m', %s, members => '{2}', steps => '{27}')", (INIT,))
    assert code == "58P01" and "1 of 1 index files" in msg
    # each mirror's answer, in the order tried
    assert detail.index("on down (HTTP status 503)") < detail.index("on a (Not found)") < detail.index("on b (Not found)")


def test_every_mirror_failing_is_an_error_not_a_missing_file(db, mirrors):
    with session("down") as conn:
        code, msg, detail = error_of(conn, "SELECT gik.ingest_run('gefs_m', %s, members => '{0}', steps => '{0}',"
                                           " allow_missing => true)", (INIT,))
        assert code == "08006" and "could not be fetched from any mirror" in msg and "HTTP status 503" in detail
        assert scalar(conn, "SELECT count(*) FROM gik.run r JOIN gik.dataset d USING (dataset_id) WHERE d.name = 'gefs_m'") == 0


def test_a_policy_refusal_stops_the_fallback(db, mirrors):
    """A mirror that redirects to a refused address is an error, although mirror a has the file."""
    with session("refusing,a") as conn:
        code, msg, _ = error_of(conn, "SELECT gik.ingest_run('gefs_m', %s, members => '{0}', steps => '{0}')", (INIT,))
        assert code == "42501", msg
        assert scalar(conn, "SELECT count(*) FROM gik.run r JOIN gik.dataset d USING (dataset_id) WHERE d.name = 'gefs_m'") == 0


def test_default_mirrors_are_allowed_by_default(db):
    """Every built-in mirror is under the default gik.allowed_url_prefixes."""
    default = scalar(db, "SELECT boot_val FROM pg_settings WHERE name = 'gik.allowed_url_prefixes'")
    prefixes = [p for p in default.split(",") if p]
    built_in = query(db, "SELECT name, url_prefix FROM gik.mirror WHERE priority <= 10")
    assert len(built_in) == 16
    for name, url in built_in:
        assert any(url.startswith(p) for p in prefixes), (name, url)
    assert HTTP  # the loopback mirror stands in for aws in every other test
