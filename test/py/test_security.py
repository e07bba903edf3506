"""Privileges and fetch policy: what PUBLIC, gik_reader and gik_ingest members may do, what no role may reach."""
import json
import pathlib
import re

import psycopg2
import pytest

from conftest import FAULT, HTTP, connect, error_of, query, redirect_url, scalar

TEMPLATE = "{base}/gefs.{{date}}/{{cycle}}/atmos/pgrb2sp25/{{member}}.t{{cycle}}z.pgrb2s.0p25.f{{step3}}"
GRIB = "noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25/gep01.t00z.pgrb2s.0p25.f006"
ROLES = {"gik_pytest_nobody": None, "gik_pytest_reader": "gik_reader", "gik_pytest_ingest": "gik_ingest"}
SQL_DIR = pathlib.Path(__file__).resolve().parents[2] / "sql"


@pytest.fixture(scope="module")
def roles(db_setup):
    """Login-less test roles: one without grants, one gik_reader, one gik_ingest."""
    conn = connect()
    for role, group in ROLES.items():
        query(conn, f"DROP ROLE IF EXISTS {role}")
        query(conn, f"CREATE ROLE {role} NOLOGIN")
        if group:
            query(conn, f"GRANT {group} TO {role}")
    yield
    for role in ROLES:
        query(conn, f"DROP ROLE IF EXISTS {role}")
    conn.close()


@pytest.fixture
def as_role(roles):
    """Connections that SET ROLE to a test role, after optional superuser settings."""
    conns = []

    def open_as(role, **settings):
        conn = connect()
        conns.append(conn)
        query(conn, "LOAD 'pg_gik'")
        for name, value in settings.items():
            query(conn, "SELECT set_config(%s, %s, false)", ("gik." + name, value))
        query(conn, f"SET ROLE {role}")
        return conn
    yield open_as
    for c in conns:
        c.close()


def first_message(conn):
    """Offset and length of the first message of the test GRIB file, from its idx."""
    return query(conn, "SELECT byte_offset, byte_length FROM gik.parse_idx(gik.fetch_text(%s), "
                       "(gik.file_info(%s)).size) ORDER BY byte_offset LIMIT 1",
                 (f"{HTTP}/{GRIB}.idx", f"{HTTP}/{GRIB}"))[0]


# --- PUBLIC and the roles -------------------------------------------------------------------

def test_public_may_execute_nothing(db):
    assert query(db, "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'gik'::regnamespace"
                     " AND has_function_privilege('public', p.oid, 'EXECUTE')") == []
    assert query(db, "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'gik'::regnamespace"
                     " AND c.relkind IN ('r', 'v', 'p') AND has_table_privilege('public', c.oid, 'SELECT')") == []


def test_role_without_grants_is_refused_even_with_schema_usage(db, as_role):
    db2 = connect()
    query(db2, "GRANT USAGE ON SCHEMA gik TO gik_pytest_nobody")
    try:
        conn = as_role("gik_pytest_nobody")
        for sql in ("SELECT gik.decode(%s, 0, 100)", "SELECT gik.fetch_text(%s)", "SELECT gik.message_info(%s, 0, 100)"):
            code, msg, _ = error_of(conn, sql, (f"{HTTP}/{GRIB}",))
            assert code == "42501" and msg.startswith("permission denied for function"), (sql, msg)
        code, msg, _ = error_of(conn, "SELECT count(*) FROM gik.chunk_ref")
        assert code == "42501"
    finally:
        query(db2, "REVOKE USAGE ON SCHEMA gik FROM gik_pytest_nobody")
        db2.close()


def test_reader_decodes_but_does_not_fetch_raw_or_write(db, as_role):
    off, length = first_message(db)
    expected = scalar(db, "SELECT gik.decode(%s, %s, %s)", (f"{HTTP}/{GRIB}", off, length))
    reader = as_role("gik_pytest_reader")
    assert scalar(reader, "SELECT gik.decode(%s, %s, %s)", (f"{HTTP}/{GRIB}", off, length)) == expected
    for sql in ("SELECT gik.fetch_text(%s)", "SELECT gik.scan_grib(%s)", "SELECT gik.file_info(%s)"):
        assert error_of(reader, sql, (f"{HTTP}/{GRIB}",))[0] == "42501", sql
    assert error_of(reader, "SELECT gik.ingest_run('gefs_0p25', now())")[0] == "42501"
    assert error_of(reader, "DELETE FROM gik.run")[0] == "42501"
    assert error_of(reader, "SELECT gik.drop_pack_partition('chunk_pack_1')")[0] == "42501"


def test_ingest_role_runs_the_whole_cycle(db, as_role):
    """A gik_ingest member defines, ingests (new partitions), reads, retains and drops without owning tables."""
    ing = as_role("gik_pytest_ingest")
    query(ing, "SELECT gik.drop_dataset('gefs_sec')")
    query(ing, "SELECT gik.define_dataset('gefs_sec', 'idx', %s, '{0}', gik.step_list('0-24/6'), members => '{0,1,2}',"
               " member_tokens => '{gec00,gep01,gep02}', variables => '{APCP,TMP}')",
          (TEMPLATE.format(base="s3://noaa-gefs-pds"),))
    status, refs = query(ing, "SELECT status, refs FROM gik.ingest_run('gefs_sec', '2025-10-01 00:00+00')")[0]
    assert status == "complete" and refs > 0
    reader = as_role("gik_pytest_reader")
    assert scalar(reader, "SELECT count(*) FROM gik.chunk_ref WHERE dataset = 'gefs_sec'") == refs
    assert scalar(reader, "SELECT cardinality(gik.decode(r.url, r.byte_offset, r.byte_length)) FROM gik.chunk_ref r"
                          " WHERE dataset = 'gefs_sec' ORDER BY file_id, byte_offset LIMIT 1") > 0
    # the pg_cron entry points, as that role: nothing new to ingest, nothing expired, no failure logged
    query(ing, "CALL gik.ingest_latest('gefs_sec', as_of => '2025-10-01 12:00+00', lookback => '12 hours')")
    query(ing, "CALL gik.apply_retention('gefs_sec')")
    assert scalar(reader, "SELECT count(*) FROM gik.ingest_log l JOIN gik.dataset d USING (dataset_id)"
                          " WHERE d.name = 'gefs_sec' AND l.status = 'failed'") == 0
    assert scalar(reader, "SELECT count(*) FROM gik.chunk_ref WHERE dataset = 'gefs_sec'") == refs
    dropped = query(ing, "SELECT partition_name FROM gik.drop_runs_before('gefs_sec', '2025-10-02 00:00+00')")
    assert len(dropped) == 1 and re.fullmatch(r"chunk_pack_\d+_20251001", dropped[0][0])
    assert scalar(ing, "SELECT gik.drop_dataset('gefs_sec')") is True
    assert scalar(db, "SELECT count(*) FROM pg_class WHERE relname ~ %s",
                  (r"^chunk_pack_\d+$",)) == scalar(db, "SELECT count(*) FROM gik.dataset d WHERE EXISTS"
                                                        " (SELECT FROM gik.chunk_pack p WHERE p.dataset_id = d.dataset_id)"
                                                        " OR to_regclass('gik.chunk_pack_' || d.dataset_id) IS NOT NULL")


def test_drop_pack_partition_only_drops_partitions(db):
    for name in ("run", "chunk_pack", "chunk_pack_1; DROP TABLE gik.run", "../pg_authid", "chunk_pack_9999"):
        assert scalar(db, "SELECT gik.drop_pack_partition(%s)", (name,)) is False
    assert scalar(db, "SELECT to_regclass('gik.run') IS NOT NULL")


# --- settings -------------------------------------------------------------------------------

@pytest.mark.parametrize("setting,value", [
    ("allowed_url_prefixes", "http://"), ("allowed_addresses", "0.0.0.0/0"), ("ssl_verify", "off"),
    ("s3_endpoint", "http://169.254.169.254"), ("gs_endpoint", "http://10.0.0.1"), ("max_response_size", "1024"),
])
def test_policy_settings_are_superuser_only(as_role, setting, value):
    conn = as_role("gik_pytest_ingest")
    code, msg, _ = error_of(conn, f"SET gik.{setting} = %s", (value,))
    assert code == "42501" and f"gik.{setting}" in msg


def test_superuser_settings_cannot_be_set_by_a_member(roles):
    """pg_gik is preloaded (shared_preload_libraries), so its superuser-only settings exist in every session
    before anything runs: a member's SET is refused outright, never kept as a placeholder."""
    conn = connect()
    try:
        before = scalar(conn, "SHOW gik.allowed_url_prefixes")
        query(conn, "SET ROLE gik_pytest_ingest")
        for setting, value in (("allowed_url_prefixes", "http://"), ("allowed_addresses", "0.0.0.0/0")):
            code, msg, _ = error_of(conn, f"SET gik.{setting} = '{value}'")
            assert code == "42501" and f"gik.{setting}" in msg
        assert scalar(conn, "SHOW gik.allowed_url_prefixes") == before
    finally:
        conn.close()


# --- files, hosts, redirects, internal addresses --------------------------------------------

@pytest.mark.parametrize("url", ["/etc/passwd", "file:///etc/passwd", "/proc/self/environ"])
@pytest.mark.parametrize("role", ["gik_pytest_reader", "gik_pytest_ingest"])
def test_server_files_are_refused(as_role, role, url):
    conn = as_role(role)
    code, msg, detail = error_of(conn, "SELECT gik.decode(%s, 0, 100)", (url,))
    assert code == "42501" and url in msg and "pg_read_server_files" in detail
    if role == "gik_pytest_ingest":
        code, msg, _ = error_of(conn, "SELECT gik.fetch_text(%s)", (url,))
        assert code == "42501" and url in msg


@pytest.mark.parametrize("url", ["http://example.com/x.grib2", "https://evil.test/noaa-gefs-pds/x",
                                 "ftp://127.0.0.1/x", "gopher://127.0.0.1:70/x", "dict://127.0.0.1:11211/stat"])
def test_hosts_and_schemes_outside_the_prefix_list_are_refused(as_role, url):
    code, msg, _ = error_of(as_role("gik_pytest_reader"), "SELECT gik.decode(%s, 0, 100)", (url,))
    assert code in ("42501", "22023"), (code, msg)
    assert url in msg


def test_redirect_to_a_disallowed_host_is_refused(as_role):
    target = "http://127.0.0.1:9/forbidden"
    url = redirect_url(target)
    code, msg, detail = error_of(as_role("gik_pytest_reader"), "SELECT gik.decode(%s, 0, 100)", (url,))
    assert code == "42501" and target in detail


@pytest.mark.parametrize("host", ["169.254.169.254", "[fd00:ec2::254]", "10.1.2.3", "192.168.0.1", "[::1]", "0.0.0.0"])
def test_internal_addresses_are_refused_before_connecting(as_role, host):
    """Even with the URL allowed, an internal address is refused by the address check (no connection)."""
    url = f"http://{host}/latest/meta-data/"
    conn = as_role("gik_pytest_reader", allowed_url_prefixes=f"http://{host}/", connect_timeout="60000")
    code, msg, detail = error_of(conn, "SELECT gik.decode(%s, 0, 100)", (url,))
    assert code == "42501" and url in msg
    assert "not in gik.allowed_addresses; no connection was made" in detail, detail


def test_metadata_redirect_is_refused(as_role):
    """A redirect from an allowed server to the metadata address is refused by the address check."""
    target = "http://169.254.169.254/latest/meta-data/iam/"
    url = redirect_url(target)
    conn = as_role("gik_pytest_reader", allowed_url_prefixes=f"{FAULT}/,http://169.254.169.254/")
    code, _, detail = error_of(conn, "SELECT gik.decode(%s, 0, 100)", (url,))
    assert code == "42501" and "169.254.169.254" in detail and "no connection was made" in detail


def test_host_name_resolving_to_loopback_is_refused(as_role):
    """The check is on the resolved address, so a name pointing at 127.0.0.1 (DNS rebinding) does not pass."""
    port = HTTP.rsplit(":", 1)[1]
    url = f"http://localhost:{port}/{GRIB}"
    conn = as_role("gik_pytest_reader", allowed_url_prefixes=f"http://localhost:{port}/", allowed_addresses="")
    code, _, detail = error_of(conn, "SELECT gik.decode(%s, 0, 100)", (url,))
    assert code == "42501" and re.search(r"address (127\.0\.0\.1|::1) is loopback", detail), detail


def test_loopback_needs_the_explicit_allowance(as_role, db):
    off, length = first_message(db)
    conn = as_role("gik_pytest_reader", allowed_addresses="")
    code, _, detail = error_of(conn, "SELECT gik.decode(%s, %s, %s)", (f"{HTTP}/{GRIB}", off, length))
    assert code == "42501" and "127.0.0.1" in detail


# --- SQL injection --------------------------------------------------------------------------

EVIL = ["x'); DROP TABLE gik.run; --", 'x"; DROP TABLE gik.run; --', "x$$; DROP TABLE gik.run; $$",
        "x%I%L%s", "x\\'; SELECT pg_sleep(10); --"]


@pytest.mark.parametrize("name", EVIL + ["Gefs", "gefs-1", ""])
def test_dataset_names_are_checked(as_role, name):
    conn = as_role("gik_pytest_ingest")
    code, _, _ = error_of(conn, "SELECT gik.define_dataset(%s, 'idx', %s, '{0}', '{0}')",
                          (name, TEMPLATE.format(base="s3://noaa-gefs-pds")))
    assert code == "23514"


def test_hostile_variables_templates_and_import_keys_are_data(db, as_role):
    """Quotes and SQL in variable names, URL templates, import keys and sources are stored and exported as data."""
    ing = as_role("gik_pytest_ingest")
    query(ing, "SELECT gik.drop_dataset('gefs_evil')")
    evil_template = TEMPLATE.format(base="s3://noaa-gefs-pds") + "?x='); DROP TABLE gik.run; --"
    query(ing, "SELECT gik.define_dataset('gefs_evil', 'idx', %s, '{0}', gik.step_list('0-6/6'), members => '{1}',"
               " member_tokens => '{gep01}', variables => %s)", (evil_template, EVIL + ["APCP"]))
    assert scalar(db, "SELECT url_template FROM gik.dataset_source s JOIN gik.dataset d USING (dataset_id)"
                      " WHERE d.name = 'gefs_evil'") == evil_template
    # the files do not exist under that template: a clear error naming the URL, nothing else happens
    code, msg, _ = error_of(ing, "SELECT gik.ingest_run('gefs_evil', '2025-10-01 00:00+00')")
    assert code in ("22023", "58P01", "P0002") and "gefs.20251001" in msg, (code, msg)
    assert scalar(db, "SELECT count(*) FROM gik.run r JOIN gik.dataset d USING (dataset_id) WHERE d.name = 'gefs_evil'") == 0
    # an import whose keys, variable names and source hold SQL is refused or stored literally
    refs = {"version": 1, "refs": {
        ".zgroup": json.dumps({"zarr_format": 2}),
        "x'); DROP TABLE gik.run; --/.zarray": json.dumps({"shape": [1], "chunks": [1], "dtype": "<f4",
                                                          "compressor": None, "filters": None, "fill_value": None,
                                                          "order": "C", "zarr_format": 2}),
        "x'); DROP TABLE gik.run; --/0": [f"{HTTP}/{GRIB}'; DROP TABLE gik.run; --", 0, 10]}}
    try:
        query(ing, "SELECT gik.import_kerchunk('gefs_evil2', %s::json, '2025-10-01 00:00+00')", (json.dumps(refs),))
    except psycopg2.Error as e:
        assert e.pgcode and e.pgcode[:2] in ("22", "23", "0A", "42") and e.pgcode != "42601", (e.pgcode, str(e))
    for t in ("run", "dataset", "file", "chunk_pack", "field"):
        assert scalar(db, "SELECT to_regclass(%s) IS NOT NULL", (f"gik.{t}",)), t
    query(ing, "SELECT gik.drop_dataset('gefs_evil'), gik.drop_dataset('gefs_evil2')")


def split_args(args):
    """Top-level comma-separated expressions of a format() argument list."""
    out, depth, cur, quote = [], 0, "", False
    for ch in args:
        if ch == "'":
            quote = not quote
        elif not quote and ch in "([":
            depth += 1
        elif not quote and ch in ")]":
            depth -= 1
        if ch == "," and depth == 0 and not quote:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return out + [cur.strip()] if cur.strip() else out


# %s may only take these: integers, regclass/regprocedure values (quoted by their output functions),
# and SQL fragments that were themselves built with format() and %I.
SAFE_FOR_S = {"p_dataset_id", "f", "staging", "vexpr"}


def test_dynamic_sql_only_through_format():
    """Every EXECUTE in the extension's SQL builds its statement with format(), never by concatenation;
    names go through %I, values through %L, and %s only takes integers, reg* values or constant SQL."""
    texts = [p.read_text() for p in sorted((SQL_DIR / "pg_gik").glob("*.sql"))] + \
            [p.read_text() for p in SQL_DIR.glob("pg_gik_postgis--*.sql")]
    starts = [(t, m.end()) for t in texts for m in re.finditer(r"^\s*EXECUTE\s+", t, re.M)]
    assert len(starts) >= 5, "too few EXECUTE statements found: the pattern is wrong"
    for text, pos in starts:
        m = re.match(r"(?:pg_catalog\.)?format\((\$q\$.*?\$q\$|'(?:[^']|'')*')\s*((?:,[^;]*)?)\)\s*;", text[pos:], re.S)
        assert m, text[pos:pos + 200]
        fmt, args = m.group(1), split_args(m.group(2)[1:]) if m.group(2) else []
        assert "||" not in fmt
        seq = 0
        for spec in re.finditer(r"%(?:(\d+)\$)?([sIL%])", fmt):
            if spec.group(2) == "%":
                continue
            n = int(spec.group(1)) if spec.group(1) else seq + 1
            seq = n
            if spec.group(2) == "s":
                arg = args[n - 1]
                constant = re.fullmatch(r"CASE WHEN \w+( IS NULL| IS NOT NULL)? THEN '[^']*' ELSE '[^']*' END", arg)
                assert arg in SAFE_FOR_S or constant, (fmt[:80], arg)
