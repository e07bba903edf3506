"""Hardening: backends killed mid-ingestion and mid-batch, memory over many failing calls, every fault kind."""
import json
import re
import threading
import time
import urllib.request

import psycopg2
import pytest

from conftest import FAULT, HTTP, MIRROR, ROOT, connect, query, scalar

RUN = "noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25"
TEMPLATE = "{base}/gefs.{{date}}/{{cycle}}/atmos/pgrb2sp25/{{member}}.t{{cycle}}z.pgrb2s.0p25.f{{step3}}"


def pid_rss_kb(pid):
    """Anonymous resident memory of a process (kB)."""
    return int(re.search(r"RssAnon:\s+(\d+)", open(f"/proc/{pid}/status").read()).group(1))


def rss_kb(conn):
    """Anonymous resident memory of the connection's backend (kB)."""
    return pid_rss_kb(scalar(conn, "SELECT pg_backend_pid()"))


def skip_under_asan(conn):
    """Resident memory says nothing under AddressSanitizer (test/run-asan.sh): freed blocks stay in its
    quarantine, so the backend's RSS grows by design."""
    maps = open(f"/proc/{scalar(conn, 'SELECT pg_backend_pid()')}/maps").read()
    if "libasan" in maps:
        pytest.skip("backend runs under AddressSanitizer: its quarantine keeps freed memory resident")


def record(line):
    """Print a measured figure and append it to GIK_TEST_ROOT/hardening-figures.txt (quoted in docs/reliability.md)."""
    print(line)
    try:
        with open(ROOT / "hardening-figures.txt", "a") as f:
            f.write(line + "\n")
    except OSError:
        pass


def catalog(conn):
    """Everything the catalog holds, for before/after comparisons."""
    return {t: query(conn, f"SELECT * FROM gik.{t} ORDER BY 1") for t in
            ("dataset", "run", "run_version", "file", "field", "time_window")} | \
        {"packs": query(conn, "SELECT * FROM gik.chunk_pack ORDER BY run_id, file_id, member")}


def define(conn, name, base):
    """A GEFS-layout dataset of 3 members reading from base."""
    query(conn, "SELECT gik.drop_dataset(%s)", (name,))
    query(conn, "SELECT gik.define_dataset(%s, 'idx', %s, '{0}', gik.step_list('0-24/6'), members => '{0,1,2}',"
                " member_tokens => '{gec00,gep01,gep02}', variables => '{APCP,TMP}')",
          (name, TEMPLATE.format(base=base)))


def kill_during(conn_sql, params, delay, killer):
    """Run a statement in a new session and terminate that backend after delay seconds."""
    victim = connect()
    pid = scalar(victim, "SELECT pg_backend_pid()")
    errors = []

    def run():
        try:
            query(victim, conn_sql, params)
        except psycopg2.Error as e:
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(delay)
    assert scalar(killer, "SELECT pg_terminate_backend(%s)", (pid,)) is True
    t.join(10)
    assert not t.is_alive()
    assert errors, "the statement should have been interrupted"
    return errors[0]


def test_kill_backend_during_ingestion(db):
    urllib.request.urlopen(f"{FAULT}/__reset").read()
    define(db, "gefs_killed", f"{FAULT}/fault/slow/5/noaa-gefs-pds")
    before = catalog(db)
    kill_during("SELECT gik.ingest_run('gefs_killed', '2025-10-01 00:00+00')", None, 1.5, db)
    # the server is up, nothing of the run is visible, and the next call works
    assert scalar(db, "SELECT 1") == 1
    assert catalog(db) == before
    define(db, "gefs_killed", f"{HTTP}/noaa-gefs-pds")
    assert query(db, "SELECT status, refs FROM gik.ingest_run('gefs_killed', '2025-10-01 00:00+00')") == [("complete", 27)]
    query(db, "SELECT gik.drop_dataset('gefs_killed')")


def apcp_refs(conn):
    """The APCP references of a private GEFS-layout dataset read from the mirror (ingested here if needed)."""
    sql = ("SELECT url, byte_offset, byte_length FROM gik.chunk_ref WHERE dataset = 'gefs_hardening' "
           "AND variable = 'APCP' ORDER BY member, file_step")
    refs = query(conn, sql)
    if not refs:
        define(conn, "gefs_hardening", f"{HTTP}/noaa-gefs-pds")
        query(conn, "SELECT gik.ingest_run('gefs_hardening', '2025-10-01 00:00+00')")
        refs = query(conn, sql)
    return refs


def ref_array(refs):
    """A gik.ref[] literal."""
    return "{" + ",".join(f'"({u},{o},{n})"' for u, o, n in refs) + "}"


def test_kill_backend_during_batch_decode(db):
    refs = apcp_refs(db)
    # a query string makes each reference distinct for the batch (no dedupe) while nginx serves the same file
    batch = [(f"{u}?copy={i}", o, n) for i, (u, o, n) in enumerate(refs * 100)]
    kill_during("SELECT count(*) FROM gik.decode_batch(%s::gik.ref[])", (ref_array(batch),), 1.0, db)
    assert scalar(db, "SELECT 1") == 1
    other = connect()
    assert scalar(other, "SELECT count(*) FROM gik.decode_batch(%s::gik.ref[])", (ref_array(refs[:2]),)) == 2
    other.close()


FAILING_CALLS = [
    ("404", "SELECT gik.fetch_text(%s)", lambda: (f"{HTTP}/no/such/file.idx",)),
    ("policy", "SELECT gik.fetch_text(%s)", lambda: ("https://example.com/x",)),
    ("parse", "SELECT count(*) FROM gik.parse_idx(%s)", lambda: ("1:0:d=2025010100:TMP:surface:anl:\n2:x:bad\n",)),
    ("parse_json", "SELECT count(*) FROM gik.parse_ecmwf_index(%s)", lambda: ('{"_offset": 0, "_length": 1, "param": "tp"}\n{bad\n',)),
    ("stale", "SELECT gik.decode(%s, 1, 1000)", lambda: (f"{HTTP}/{RUN}/gep01.t00z.pgrb2s.0p25.f006",)),
    ("range_past_end", "SELECT gik.fetch_bytes(%s, 999999999, 10)", lambda: (f"{HTTP}/{RUN}/gep01.t00z.pgrb2s.0p25.f006",)),
    ("bad_url", "SELECT gik.fetch_text(%s)", lambda: ("ftp://example.com/x",)),
]


@pytest.mark.parametrize("kind,sql,args", FAILING_CALLS, ids=[c[0] for c in FAILING_CALLS])
def test_memory_flat_over_1000_failed_calls(db, kind, sql, args):
    def fail_once():
        with pytest.raises(psycopg2.Error) as exc:
            query(db, sql, args())
        assert exc.value.pgcode, exc.value  # an SQL error, not a lost connection

    skip_under_asan(db)
    for _ in range(50):
        fail_once()
    start = rss_kb(db)
    for _ in range(1000):
        fail_once()
    grown = rss_kb(db) - start
    record(f"memory: 1000 failed calls ({kind}): RssAnon {start} kB -> {start + grown} kB, growth {grown} kB")
    assert grown < 2048, f"{kind}: backend anonymous memory grew by {grown} kB over 1000 failed calls"


def test_memory_flat_over_10000_decodes_of_ingested_references(db):
    """10,000 successful gik.decode calls (2 m temperature, 1 degree: 65,160 values each) in 10 statements of
    1,000, cycling over 15 references (3 members x 5 steps), half of them with a longitude convention and a
    region: after a warm-up, the backend's anonymous memory stays flat."""
    skip_under_asan(db)
    refs = [tuple(r) for r in query(db, "SELECT url, byte_offset, byte_length FROM gik.chunk_ref "
                                         "WHERE dataset = 'gefs_hardening' AND variable = 'TMP' "
                                         "AND level = '2 m above ground' ORDER BY member, file_step")]
    if not refs:
        apcp_refs(db)   # defines and ingests gefs_hardening
        refs = [tuple(r) for r in query(db, "SELECT url, byte_offset, byte_length FROM gik.chunk_ref "
                                             "WHERE dataset = 'gefs_hardening' AND variable = 'TMP' "
                                             "AND level = '2 m above ground' ORDER BY member, file_step")]
    assert len(refs) == 15
    urls, offs, lens = ([r[k] for r in refs] for k in range(3))
    sql = """SELECT count(*), sum(cardinality(v)) FROM generate_series(0, %s - 1) i,
             LATERAL (SELECT CASE WHEN i %% 2 = 0 THEN gik.decode(u[1 + i %% n], o[1 + i %% n], l[1 + i %% n])
                                  ELSE gik.decode(u[1 + i %% n], o[1 + i %% n], l[1 + i %% n], '-180..180',
                                                  gik.bbox(-30, -40, 60, 40)) END AS v
                      FROM (SELECT %s::text[] AS u, %s::int8[] AS o, %s::int8[] AS l, %s AS n) a) d"""

    def decode(calls):
        n, values = query(db, sql, (calls, urls, offs, lens, len(refs)))[0]
        assert n == calls and values > calls * 3000

    decode(500)            # warm-up: ecCodes definitions, curl handles, malloc arenas
    start = rss_kb(db)
    helpers = [r[0] for r in query(db, "SELECT pid FROM gik.decoders()")]
    helper_start = {pid: pid_rss_kb(pid) for pid in helpers}
    t0 = time.monotonic()
    for _ in range(10):
        decode(1000)
    secs = time.monotonic() - t0
    grown = rss_kb(db) - start
    assert [r[0] for r in query(db, "SELECT pid FROM gik.decoders()")] == helpers, "the same decoders served every call"
    helper_grown = {pid: pid_rss_kb(pid) - kb for pid, kb in helper_start.items()}
    record(f"memory: 10000 decodes ({secs:.1f} s, {10000 / secs:.0f}/s): backend RssAnon {start} kB -> "
           f"{start + grown} kB, growth {grown} kB; decoder RssAnon growth "
           + ", ".join(f"{g} kB" for g in helper_grown.values()))
    assert grown < 2048, f"backend anonymous memory grew by {grown} kB over 10,000 decodes"
    assert helpers and all(g < 2048 for g in helper_grown.values()), f"decoder memory grew: {helper_grown}"


def test_changing_file_between_index_and_data_reads(db):
    """The fault server serves other bytes on every other request: a decode never returns garbage."""
    urllib.request.urlopen(f"{FAULT}/__reset").read()
    http_url, off, n = apcp_refs(db)[0]
    url = http_url.replace(HTTP, f"{FAULT}/fault/changing")
    outcomes = set()
    for _ in range(4):
        try:
            vals = scalar(db, "SELECT gik.decode(%s, %s, %s)", (url, off, n))
            outcomes.add("decoded")
            assert len(vals) > 0
        except psycopg2.Error as e:
            assert e.pgcode == "XX001" and "not one GRIB message" in e.diag.message_primary
            outcomes.add("stale")
    assert outcomes == {"decoded", "stale"}
