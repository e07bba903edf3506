"""Every function and procedure of schema gik, called with NULL arguments: none may crash a backend.

For each routine: all arguments NULL, then each argument NULL in turn with the others set to an ordinary
value of their type. A call may return a result or raise an error with a SQLSTATE outside class XX
(internal errors); the server must not restart. New routines are covered as soon as they exist, since the
list comes from pg_proc.
"""
import psycopg2
import pytest

from conftest import connect, query

# An ordinary value per argument type (None: only NULL can be written, e.g. internal).
SAMPLES = {
    "text": "'x'", "bigint": "1", "integer": "1", "smallint": "1", "double precision": "1", "real": "1",
    "boolean": "false", "timestamp with time zone": "'2025-10-01 00:00+00'", "interval": "'1 hour'",
    "date": "'2025-10-01'", "bytea": "'\\x00'::bytea", "json": "'{}'::json", "jsonb": "'{}'::jsonb",
    "regclass": "'pg_class'::regclass",
    "real[]": "'{{1,2},{3,4}}'::real[]", "double precision[]": "'{0.5}'", "integer[]": "'{0}'",
    "smallint[]": "'{0}'", "bigint[]": "'{1}'", "text[]": "'{x}'",
    "gik.bbox": "gik.bbox(21, -12, 53, 23)",
    "gik.ref": "ROW('x', 0, 1)::gik.ref",
    "gik.ref[]": "ARRAY[ROW('x', 0, 1)::gik.ref]",
    "gik.grid_desc": "ROW('regular_ll', 2, 2, 90, 0, -90, 180, 180, 180, 0, NULL)::gik.grid_desc",
    "internal": None,
}


def routines(conn):
    """(name, kind, argument types) of every routine of schema gik."""
    return query(conn, """
        SELECT p.proname, p.prokind, array(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) t)
        FROM pg_proc p WHERE p.pronamespace = 'gik'::regnamespace AND p.prokind IN ('f', 'p', 'a')
        ORDER BY 1, 3""")


def call_sql(name, kind, args):
    return f"{'CALL' if kind == 'p' else 'SELECT * FROM' if kind == 'f' else 'SELECT'} gik.{name}({', '.join(args)})"


def calls(name, kind, types):
    """The NULL calls of one routine."""
    out = [call_sql(name, kind, [f"NULL::{t}" for t in types])]
    if all(SAMPLES.get(t) is not None or t == "internal" for t in types) and types:
        for i in range(len(types)):
            args = [f"NULL::{t}" if j == i or SAMPLES.get(t) is None else SAMPLES[t] for j, t in enumerate(types)]
            out.append(call_sql(name, kind, args))
    return out


def run_calls(conn, statements, in_transaction):
    """Run statements, each in its own savepoint of one rolled-back transaction; returns the failures."""
    bad = []
    with conn.cursor() as cur:
        if in_transaction:
            cur.execute("BEGIN")
        for sql in statements:
            if in_transaction:
                cur.execute("SAVEPOINT s")
            try:
                cur.execute("SET LOCAL statement_timeout = '20s'" if in_transaction else "SELECT 1")
                cur.execute(sql)
            except psycopg2.Error as e:
                if e.pgcode is None:
                    raise AssertionError(f"{sql}: the connection was lost ({e})") from e
                if e.pgcode.startswith("XX") and e.pgcode != "XX001":
                    bad.append(f"{sql}: {e.pgcode} {e.diag.message_primary}")
            if in_transaction:
                cur.execute("ROLLBACK TO SAVEPOINT s")
        if in_transaction:
            cur.execute("ROLLBACK")
    return bad


def test_every_routine_with_null_arguments(db, server_watch):
    functions, procedures = [], []
    for name, kind, types in routines(db):
        (procedures if kind == "p" else functions).extend(calls(name, kind, types))
    assert len(functions) > 200, len(functions)
    # functions in a rolled-back transaction (no side effects); procedures commit, so they run on their own,
    # and only where they cannot touch other tests' data: all arguments NULL, or the unknown dataset 'x'
    bad = run_calls(db, functions, True)
    safe = [c for c in procedures if "'x'" not in c.split("(", 1)[1] or c.split("(", 1)[1].startswith("'x'")]
    safe = [c for c in safe if c.split("(", 1)[1].startswith("'x'") or "'" not in c]
    with connect() as conn:
        bad += run_calls(conn, safe, False)
    assert not bad, "\n".join(bad)


def test_null_arguments_as_reader(db, server_watch):
    """The same all-NULL calls as a gik_reader member: refused or answered, never a crash."""
    query(db, "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gik_null_reader') THEN "
              "CREATE ROLE gik_null_reader LOGIN; END IF; END$$")
    query(db, "GRANT gik_reader TO gik_null_reader")
    statements = [call_sql(n, k, [f"NULL::{t}" for t in ts]) for n, k, ts in routines(db) if k != "p"]
    with db.cursor() as cur:
        cur.execute("SET ROLE gik_null_reader")
        try:
            bad = run_calls(db, statements, True)
        finally:
            cur.execute("RESET ROLE")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("sql", [
    "SELECT gik.decode(NULL, 364, 344909)",
    "SELECT gik.decode(NULL::gik.ref)",
    "SELECT gik.output_grid(NULL::gik.grid_desc)",
    "SELECT gik.fetch_bytes(NULL, 0, 1)",
    "SELECT gik.grid_lats(NULL)",
    "SELECT gik.grid_lons(NULL)",
    "SELECT gik.decode_raster_wkb(NULL, 0, 1)",
])
def test_reported_crashes_give_null(db, server_watch, sql):
    """The calls of the report: NULL in a required argument gives NULL, as a STRICT function would."""
    assert query(db, sql) == [(None,)]


def test_null_offset_is_not_offset_zero(db, server_watch):
    """gik.decode(url, NULL, len) used to read from offset 0: it is NULL now, and nothing is fetched."""
    assert query(db, "SELECT gik.decode('s3://noaa-gefs-pds/x', NULL, 10)") == [(None,)]
    assert query(db, "SELECT gik.decode('s3://noaa-gefs-pds/x', 0, NULL)") == [(None,)]
