"""Nobody can take the server down: decoders out of process, memory budgets, a policy with no way around it.

Every test here runs under server_watch: it fails if any backend crashed, because a crash makes the
postmaster terminate every session (the watcher's own session among them) and reinitialise.
"""
import contextlib
import os
import pathlib
import re
import struct
import sys
import threading
import time

import numpy as np
import psycopg2
import pytest

from conftest import FAULT, HTTP, MIRROR, ROOT, connect, error_of, query, redirect_url, scalar

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "fuzz"))
from make_seeds import framed  # noqa: E402 - the harness's own framing of its inputs

KNOWN = pathlib.Path(__file__).resolve().parents[1] / "fuzz" / "known" / "decode"
REGRESSIONS = pathlib.Path(__file__).resolve().parents[1] / "fuzz" / "regressions" / "decode"
SAFETY = MIRROR / "safety"
GRIB = "noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25/gep01.t00z.pgrb2s.0p25.f006"


def serve(name, data):
    """Put bytes in the mirror; their HTTP URL."""
    SAFETY.mkdir(parents=True, exist_ok=True)
    path = SAFETY / name
    path.write_bytes(data)
    path.chmod(0o644)
    return f"{HTTP}/safety/{name}"


def constant_field(ni, nj, packing=None, values=None):
    """A GRIB2 message of ni x nj points, written by ecCodes: constant (0 bits per value) unless values."""
    import eccodes
    h = eccodes.codes_grib_new_from_samples("GRIB2")
    try:
        eccodes.codes_set(h, "Ni", ni)
        eccodes.codes_set(h, "Nj", nj)
        eccodes.codes_set(h, "iDirectionIncrementInDegrees", 360.0 / ni)
        eccodes.codes_set(h, "jDirectionIncrementInDegrees", 180.0 / (nj - 1))
        eccodes.codes_set(h, "latitudeOfFirstGridPointInDegrees", 90.0)
        eccodes.codes_set(h, "latitudeOfLastGridPointInDegrees", -90.0)
        eccodes.codes_set(h, "longitudeOfLastGridPointInDegrees", 360.0 - 360.0 / ni)
        if packing:
            eccodes.codes_set(h, "packingType", packing)
        eccodes.codes_set_values(h, values if values is not None else np.zeros(ni * nj))
        return eccodes.codes_get_message(h)
    finally:
        eccodes.codes_release(h)


def declared_points(data, points):
    """A copy of a GRIB2 message whose grid section declares other dimensions (a decompression bomb)."""
    msg = bytearray(data)
    pos = 16
    while pos < len(msg) - 4:
        n, num = struct.unpack(">IB", msg[pos:pos + 5])
        if num == 3:
            side = int(round(points ** 0.5))
            msg[pos + 6:pos + 10] = struct.pack(">I", side * side)
            msg[pos + 30:pos + 38] = struct.pack(">II", side, side)
        if num == 5:
            side = int(round(points ** 0.5))
            msg[pos + 5:pos + 9] = struct.pack(">I", side * side)
        pos += n
    return bytes(msg)


def proc_status(pid):
    """/proc/PID/status as a dict of strings."""
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def kb(status, key):
    return int(status[key].split()[0])


def decoders(conn):
    return query(conn, "SELECT pid, busy, memory_limit_mb, landlock_abi, sandbox FROM gik.decoders() ORDER BY slot")


def messages(conn, n):
    """(url, offset, length) of the first n messages of a generated GEFS file, from its idx."""
    rows = query(conn, "SELECT byte_offset, byte_length FROM gik.parse_idx(gik.fetch_text(%s), "
                       "(gik.file_info(%s)).size) ORDER BY byte_offset LIMIT %s",
                 (f"{HTTP}/{GRIB}.idx", f"{HTTP}/{GRIB}", n))
    return [(f"{HTTP}/{GRIB}", off, length) for off, length in rows]


def first_message(conn):
    return messages(conn, 1)[0]


def refs_array(msgs):
    return "ARRAY[" + ",".join(f"ROW('{u}', {o}, {n})::gik.ref" for u, o, n in msgs) + "]"


@pytest.fixture
def su(server_watch):
    """A superuser connection (the watcher checks the server afterwards)."""
    conn = connect()
    yield conn
    conn.close()


READER, INGEST = "gik_safety_reader", "gik_safety_ingest"


@pytest.fixture(scope="module", autouse=True)
def safety_roles(db_setup):
    """The roles that reported the findings: a gik_reader member and a gik_ingest member."""
    conn = connect()
    for role, group in ((READER, "gik_reader"), (INGEST, "gik_ingest")):
        query(conn, f"DROP ROLE IF EXISTS {role}")
        query(conn, f"CREATE ROLE {role}")
        query(conn, f"GRANT {group} TO {role}")
    yield
    query(conn, "SELECT gik.drop_dataset(name) FROM gik.dataset WHERE name LIKE 'safety_%'")
    for role in (READER, INGEST):
        query(conn, f"DROP ROLE IF EXISTS {role}")
    conn.close()


@contextlib.contextmanager
def acting(conn, role):
    """Statements in the block run as role (settings made before stay)."""
    query(conn, f"SET ROLE {role}")
    try:
        yield conn
    finally:
        query(conn, "RESET ROLE")


@pytest.fixture(scope="module")
def slow_message():
    """A 3000 x 3000 JPEG 2000 message of noise: it takes the decoder well over a second."""
    rng = np.random.default_rng(7)
    data = constant_field(3000, 3000, "grid_jpeg", rng.normal(280, 10, 9_000_000).round(1))
    return serve("slow-jpeg2000.grib2", data), len(data)


# --- decoders are processes of their own -----------------------------------------------------------

def test_decoders_are_sandboxed_children_of_the_backend(su):
    url, off, length = first_message(su)
    query(su, "SELECT gik.decode(%s, %s, %s)", (url, off, length))
    backend = scalar(su, "SELECT pg_backend_pid()")
    rows = decoders(su)
    assert rows, "a decode started a decoder process"
    for pid, busy, limit_mb, landlock, sandbox in rows:
        st = proc_status(pid)
        assert int(st["PPid"]) == backend
        assert st["Seccomp"] == "2", "seccomp filter mode"
        assert st["NoNewPrivs"] == "1"
        assert not busy and limit_mb == 2048
        limits = open(f"/proc/{pid}/limits").read()
        assert re.search(r"Max address space\s+%d\s" % (2048 << 20), limits), limits
        assert re.search(r"Max file size\s+0\s", limits)
        assert "seccomp filter on" in sandbox
        if landlock:
            assert "Landlock on" in sandbox
        # ecCodes is not in the backend any more
        maps = open(f"/proc/{backend}/maps").read()
        assert "libeccodes" not in maps
        assert "libeccodes" in open(f"/proc/{pid}/maps").read()


def test_pool_follows_decode_threads(su):
    refs = refs_array(messages(su, 8))
    for threads in (3, 1, 2):
        query(su, f"SET gik.decode_threads = {threads}")
        assert scalar(su, f"SELECT count(*) FROM gik.decode_batch({refs})") == 8
        assert 1 <= len(decoders(su)) <= threads
    query(su, "RESET gik.decode_threads")


@pytest.mark.parametrize("name", sorted(p.name for p in KNOWN.iterdir() if p.name != "README.md"))
def test_known_decoder_crashes_are_errors(su, name):
    """The inputs that still crash ecCodes or a codec under it: each is an ERROR naming the URL and range."""
    data = framed((KNOWN / name).read_bytes())
    url = serve("known-" + name, data)
    with acting(su, READER):
        code, msg, detail = error_of(su, "SELECT gik.decode(%s, 0, %s)", (url, len(data)))
    assert code in ("XX001", "53200", "54000", "0A000"), (code, msg, detail)
    assert url in msg and f"bytes 0-{len(data) - 1}" in msg
    # the decoder that died is replaced: a good message decodes next
    url2, off, length = first_message(su)
    assert scalar(su, "SELECT cardinality(gik.decode(%s, %s, %s))", (url2, off, length)) > 0


def test_decoder_crash_names_signal_and_range(su):
    data = framed((KNOWN / "jpeg2000-openjpeg-invalid-free").read_bytes())
    url = serve("crash.grib2", data)
    before = {r[0] for r in decoders(su)}
    with acting(su, READER):
        code, msg, detail = error_of(su, "SELECT gik.decode(%s, 0, %s)", (url, len(data)))
    assert code == "XX001"
    assert "killed by signal" in detail and "server is unaffected" in detail, detail
    url2, off, length = first_message(su)
    query(su, "SELECT gik.decode(%s, %s, %s)", (url2, off, length))
    assert {r[0] for r in decoders(su)} != before, "the crashed decoder was replaced"


@pytest.mark.parametrize("name", sorted(p.name for p in REGRESSIONS.iterdir()))
def test_decode_regressions_are_errors_through_sql(su, name):
    """Every input that once crashed or misled the decoder, served over HTTP: an error, never a crash."""
    data = framed((REGRESSIONS / name).read_bytes())
    url = serve("regression-" + name, data)
    try:
        with acting(su, READER):
            query(su, "SELECT gik.decode(%s, 0, %s)", (url, len(data)))
    except psycopg2.Error as e:
        assert e.pgcode is not None and not (e.pgcode.startswith("XX") and e.pgcode != "XX001"), e


# --- memory ------------------------------------------------------------------------------------------

def test_bomb_is_refused_before_decoding(su):
    """A 182-byte message declaring 10,000 x 10,000 points: 54000 naming it, before any decoder allocates."""
    small = constant_field(100, 100)
    bomb = declared_points(small, 100_000_000)
    url = serve("bomb-1e8.grib2", bomb)
    query(su, "SELECT gik.decode(%s, %s, %s)", first_message(su))  # a decoder to watch
    t0 = time.monotonic()
    with acting(su, READER):
        code, msg, detail = error_of(su, "SELECT gik.decode(%s, 0, %s)", (url, len(bomb)))
    assert time.monotonic() - t0 < 1.0
    assert code == "54000" and url in msg and "gik.max_message_points" in detail, (code, msg, detail)
    watched = decoders(su)
    assert watched, "the first decode started a decoder"
    for pid, *_ in watched:
        assert kb(proc_status(pid), "VmHWM") < 200_000


def test_points_and_call_limits_are_superuser_settings(su):
    url, off, length = first_message(su)
    query(su, "SET gik.max_message_points = 1000")
    with acting(su, READER):
        code, msg, detail = error_of(su, "SELECT gik.decode(%s, %s, %s)", (url, off, length))
    assert code == "54000" and "gik.max_message_points (1000)" in detail
    query(su, "RESET gik.max_message_points")
    query(su, "SET gik.max_call_decoded_size = '1MB'")
    msgs = messages(su, 40)
    with acting(su, READER):
        code, msg, detail = error_of(su, f"SELECT count(*) FROM gik.decode_batch({refs_array(msgs)})")
    assert code == "54000" and "gik.max_call_decoded_size (1 MB" in detail, (code, detail)
    query(su, "RESET gik.max_call_decoded_size")


def test_decoder_memory_limit(su):
    """25 million points of a constant field (about 200 bytes) need more than 128 MB to decode."""
    bomb = constant_field(5000, 5000)
    url = serve("constant-25e6.grib2", bomb)
    query(su, "SET gik.decoder_memory_limit = '128MB'")
    with acting(su, READER):
        code, msg, detail = error_of(su, "SELECT gik.decode(%s, 0, %s)", (url, len(bomb)))
    assert code == "53200" and url in msg, (code, msg, detail)
    assert all(r[2] == 128 for r in decoders(su))
    query(su, "RESET gik.decoder_memory_limit")
    assert scalar(su, "SELECT cardinality(gik.decode(%s, 0, %s))", (url, len(bomb))) == 25_000_000


def test_decoder_timeout(su, slow_message):
    url, length = slow_message
    query(su, "SET gik.decoder_timeout = '200ms'")
    t0 = time.monotonic()
    with acting(su, READER):
        code, msg, detail = error_of(su, "SELECT gik.decode(%s, 0, %s)", (url, length))
    assert time.monotonic() - t0 < 1.5
    assert code == "57014" and "gik.decoder_timeout" in detail and url in msg, (code, msg, detail)
    query(su, "RESET gik.decoder_timeout")


def test_statement_timeout_stops_the_decoder(su, slow_message):
    url, length = slow_message
    query(su, "SELECT gik.decode(%s, %s, %s)", first_message(su))
    with acting(su, READER):
        query(su, "SET statement_timeout = '300ms'")
        t0 = time.monotonic()
        code, _, _ = error_of(su, "SELECT gik.decode(%s, 0, %s)", (url, length))
        took = time.monotonic() - t0
    query(su, "RESET statement_timeout")
    assert code == "57014" and took < 1.3, (code, took)
    assert not any(busy for _, busy, *_ in decoders(su))


def test_cancel_stops_the_decoder_within_a_second(su, slow_message):
    url, length = slow_message
    pid = scalar(su, "SELECT pg_backend_pid()")
    result = {}

    def run():
        t0 = time.monotonic()
        try:
            with acting(su, READER):
                query(su, "SELECT gik.decode(%s, 0, %s)", (url, length))
        except psycopg2.Error as e:
            result["code"] = e.pgcode
        result["took"] = time.monotonic() - t0

    th = threading.Thread(target=run)
    th.start()
    time.sleep(0.3)
    with connect() as other:
        query(other, "SELECT pg_cancel_backend(%s)", (pid,))
    th.join(10)
    assert result.get("code") == "57014" and result["took"] < 1.5, result


def test_impossible_ranges_are_refused_before_anything_is_allocated(su):
    url, _, _ = first_message(su)
    with acting(su, READER):
        code, msg, _ = error_of(su, "SELECT gik.decode(%s, 0, %s)", (url, 2 ** 62))
    assert code == "54000" and "gik.max_response_size" in msg
    with acting(su, INGEST):
        code, msg, detail = error_of(su, "SELECT gik.fetch_bytes(%s, %s, 16)", (url, 2 ** 63 - 8))
    assert code == "22023" and "64-bit" in detail
    assert kb(proc_status(scalar(su, "SELECT pg_backend_pid()")), "VmPeak") < 4 << 20


def test_batch_of_huge_ranges_stays_in_the_fetch_budget(su):
    """16 ranges of 200 MB from a server that holds back each response's last byte: without a budget the
    backend held them all at once (3 GB); with gik.max_fetch_memory (512 MB) it holds about that much."""
    big = SAFETY / "zeros-200mb.bin"
    SAFETY.mkdir(parents=True, exist_ok=True)
    with open(big, "wb") as f:
        f.truncate(200 << 20)
    big.chmod(0o644)
    url = f"{FAULT}/fault/hold-last/2/safety/zeros-200mb.bin"
    query(su, f"SET ROLE {READER}")
    query(su, "SET gik.max_connections = 32")     # a reader's own setting
    refs = refs_array([(url, i, (200 << 20) - 16) for i in range(16)])
    pid = scalar(su, "SELECT pg_backend_pid()")
    peak = {"kb": 0}
    done = threading.Event()

    def watch():
        while not done.is_set():
            try:
                peak["kb"] = max(peak["kb"], kb(proc_status(pid), "VmRSS"))
            except (FileNotFoundError, ProcessLookupError):
                break
            time.sleep(0.05)

    th = threading.Thread(target=watch)
    th.start()
    try:
        code, _, _ = error_of(su, f"SELECT count(*) FROM gik.decode_batch({refs})")
    finally:
        done.set()
        th.join()
    query(su, "RESET gik.max_connections")
    query(su, "RESET ROLE")
    assert code == "XX001"      # zeros are not a GRIB message: refused once the first range arrives
    assert peak["kb"] < (512 + 256) * 1024, f"backend peak RSS {peak['kb']} kB"


def test_readers_cannot_raise_the_budgets(su):
    with acting(su, READER):
        for setting in ("max_fetch_memory", "max_message_points", "max_call_decoded_size", "decoder_memory_limit",
                        "decoder_timeout", "decode_threads", "max_index_size", "max_response_size"):
            code, _, _ = error_of(su, f"SET gik.{setting} = 1000000")
            assert code == "42501", setting


# --- index parsers -----------------------------------------------------------------------------------

def big_ecmwf_index(mb):
    line = ('{"domain": "g", "date": "20251001", "time": "0000", "expver": "0001", "class": "od", '
            '"type": "pf", "stream": "enfo", "step": "24", "levtype": "sfc", "number": "%d", '
            '"param": "tp", "_offset": %d, "_length": 1000}\n')
    n = mb * 1024 * 1024 // len(line % (1, 10**9))
    return "".join(line % (i % 50 + 1, i * 1000) for i in range(n))


def test_index_size_is_capped(su):
    text = "x" * (65 * 1024 * 1024)
    with acting(su, READER):
        code, msg, _ = error_of(su, "SELECT count(*) FROM gik.parse_idx(%s, NULL, 'http://example/x.idx')", (text,))
    assert code == "54000" and "gik.max_index_size" in msg and "http://example/x.idx" in msg


@pytest.mark.parametrize("parser", ["parse_ecmwf_index(t.txt)", "parse_idx(t.txt, NULL)"])
def test_parsers_stop_on_statement_timeout(su, parser):
    """A 120 MB index (already in the server, so only parsing is timed) stops within a second of the timeout."""
    if parser.startswith("parse_idx"):
        line = "%d:%d:d=2025100100:TMP:2 m above ground:anl:ENS=+1\n"
        text = "".join(line % (i + 1, i * 1000) for i in range(2_500_000))
    else:
        text = big_ecmwf_index(120)
    query(su, "CREATE TEMP TABLE IF NOT EXISTS big_index (txt text)")
    query(su, f"GRANT SELECT ON big_index TO {READER}")
    query(su, "TRUNCATE big_index")
    query(su, "INSERT INTO big_index VALUES (%s)", (text,))
    query(su, "SET gik.max_index_size = '256MB'")
    with acting(su, READER):
        query(su, "SET statement_timeout = '300ms'")
        t0 = time.monotonic()
        code, _, _ = error_of(su, f"SELECT count(*) FROM big_index t, gik.{parser}")
        took = time.monotonic() - t0
        query(su, "RESET statement_timeout")
    query(su, "RESET gik.max_index_size")
    assert code == "57014" and took < 1.3, (code, took)


def test_long_key_names_the_line(su):
    idx = "1:0:d=2025100100:TMP:2 m above ground:anl:\n2:100:d=2025100100:" + "V" * (10 << 20) + ":surface:anl:\n"
    with acting(su, READER):
        code, msg, detail = error_of(su, "SELECT count(*) FROM gik.parse_idx(%s, 200, 'http://example/long.idx')", (idx,))
    assert code == "22P02" and "line 2" in msg and "http://example/long.idx" in msg, (code, msg)


def test_ensure_partition_refuses_unknown_datasets(su):
    with acting(su, INGEST):
        code, msg, _ = error_of(su, "SELECT gik.ensure_partition(32000::smallint, now())")
    assert code == "22023"


# --- the URL policy ----------------------------------------------------------------------------------

@pytest.fixture
def narrow_allow_list(su):
    """gik.allowed_url_prefixes narrowed to the NOAA bucket of the mirror, for this session."""
    query(su, "SET gik.allowed_url_prefixes = %s", (f"{HTTP}/noaa-gefs-pds/,{FAULT}/",))
    return su


ECMWF_INDEX = "ecmwf-forecasts/20251001/00z/ifs/0p25/enfo/20251001000000-0h-enfo-ef.index"


@pytest.mark.parametrize("escape", ["..%2f", "..%2F", "%2e%2e%2f", ".%2E%2F", "%2e%2e/", "./../", "..%5c"])
def test_encoded_dot_segments_do_not_leave_the_prefix(narrow_allow_list, escape):
    url = f"{HTTP}/noaa-gefs-pds/{escape}{ECMWF_INDEX}"
    with acting(narrow_allow_list, INGEST):
        code, msg, detail = error_of(narrow_allow_list, "SELECT gik.fetch_text(%s)", (url,))
    assert code in ("42501", "22023"), (code, msg, detail)


def test_redirect_with_dot_segments_is_refused(narrow_allow_list):
    url = redirect_url(f"{HTTP}/noaa-gefs-pds/../{ECMWF_INDEX}")
    with acting(narrow_allow_list, INGEST):
        code, msg, detail = error_of(narrow_allow_list, "SELECT gik.fetch_text(%s)", (url,))
    assert code in ("42501", "22023"), (code, msg, detail)


def test_too_many_redirects_is_a_protocol_error(su):
    url = f"{FAULT}/x"
    for _ in range(7):
        url = redirect_url(url)
    with acting(su, INGEST):
        code, msg, _ = error_of(su, "SELECT gik.fetch_text(%s)", (url,))
    assert code == "08P01" and "too many redirects" in msg, (code, msg)


# --- server files in dataset definitions -------------------------------------------------------------

@pytest.fixture
def ingest_role(su):
    """The gik_ingest member; its datasets are dropped afterwards."""
    yield INGEST
    query(su, "RESET ROLE")
    query(su, "SELECT gik.drop_dataset(name) FROM gik.dataset WHERE name LIKE 'safety_%'")


SECRET = ROOT / "safety-private.idx"


def test_ingest_member_cannot_name_server_files(su, ingest_role):
    SECRET.write_text("the classified first line\n")
    query(su, f"SET ROLE {ingest_role}")
    code, msg, _ = error_of(su, "SELECT gik.define_dataset('safety_file', 'idx', %s, '{0}', '{0}', "
                                "index_template => %s)", (str(SECRET), str(SECRET)))
    assert code == "42501", (code, msg)
    code, _, _ = error_of(su, "SELECT gik.define_dataset('safety_file', 'idx', %s, '{0}', '{0}')",
                          ("file://" + str(SECRET),))
    assert code == "42501"
    # an allowed definition, then an UPDATE to a server file
    query(su, "SELECT gik.define_dataset('safety_file', 'idx', %s, '{0}', '{0}')", (f"{HTTP}/x/{{date}}",))
    code, _, _ = error_of(su, "UPDATE gik.dataset_source SET index_template = %s "
                              "WHERE dataset_id = (SELECT dataset_id FROM gik.dataset WHERE name = 'safety_file')",
                          (str(SECRET),))
    assert code == "42501"
    code, _, _ = error_of(su, "UPDATE gik.dataset_source SET member_tokens = ARRAY[%s], members = '{0}', "
                              "url_template = '{member}' "
                              "WHERE dataset_id = (SELECT dataset_id FROM gik.dataset WHERE name = 'safety_file')",
                          (str(SECRET),))
    assert code == "42501"
    query(su, "UPDATE gik.dataset_source SET defined_by = 'postgres' "
              "WHERE dataset_id = (SELECT dataset_id FROM gik.dataset WHERE name = 'safety_file')")
    assert scalar(su, "SELECT defined_by FROM gik.dataset_source s JOIN gik.dataset d USING (dataset_id) "
                      "WHERE d.name = 'safety_file'") == ingest_role


def test_superuser_ingestion_does_not_read_what_a_member_pointed_at(su, ingest_role):
    """A series that names a server file is refused at ingestion unless its author may read server files,
    whoever runs the ingestion (pg_cron runs it as a superuser); the log does not quote the file."""
    SECRET.write_text("the classified first line\n")
    query(su, "SELECT gik.define_dataset('safety_cron', 'idx', %s, '{0}', '{0}', index_template => %s)",
          (str(SECRET) + ".grib", str(SECRET)))
    # written by the superuser, then taken over by the member without touching the path: refused
    code, _, _ = error_of(su, f"SET ROLE {ingest_role}; UPDATE gik.dataset_source SET valid_from = '-infinity' "
                              "WHERE dataset_id = (SELECT dataset_id FROM gik.dataset WHERE name = 'safety_cron')")
    assert code == "42501"
    query(su, "RESET ROLE")
    # a superuser's own series is read, and its parse error does not quote the file
    code, msg, detail = error_of(su, "SELECT gik.ingest_run('safety_cron', '2025-10-01 00:00+00')")
    assert "classified" not in msg + detail, (msg, detail)
    query(su, "CALL gik.ingest_latest('safety_cron', as_of => '2025-10-01 06:00+00')")
    errors = [r[0] or "" for r in query(su, "SELECT error || coalesce(error_detail, '') FROM gik.ingest_log l "
                                            "JOIN gik.dataset d USING (dataset_id) WHERE d.name = 'safety_cron'")]
    assert errors and not any("classified" in e for e in errors), errors


def test_non_superuser_cannot_reset_superuser_settings_at_connection(su):
    """With pg_gik preloaded, a session's PGOPTIONS for a superuser-only gik.* setting fails the connection
    instead of replacing the configured value."""
    query(su, "DROP ROLE IF EXISTS gik_safety_login")
    query(su, "CREATE ROLE gik_safety_login LOGIN PASSWORD 'safety'")
    try:
        with pytest.raises(psycopg2.Error) as e:
            psycopg2.connect(user="gik_safety_login", password="safety",
                             options="-c gik.s3_endpoint=http://attacker.example")
        assert "permission denied to set parameter" in str(e.value)
        c = psycopg2.connect(user="gik_safety_login", password="safety")
        assert scalar(c, "SHOW gik.s3_endpoint") == HTTP
        c.close()
    finally:
        query(su, "DROP ROLE gik_safety_login")
