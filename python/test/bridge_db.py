"""Database fixtures of the parquet bridge tests: GEFS and ECMWF runs ingested from the loopback mirror.

The database is libpq's default (PG* environment) or $PG_GIK_CONNINFO; pg_gik must be installed there and
pointed at the mirror (gik.s3_endpoint), as run_tests.sh sets it up.
"""
import os
import pathlib
import subprocess
import sys

import psycopg
import pytest

CONNINFO = os.environ.get("PG_GIK_CONNINFO", "")
MIRROR = pathlib.Path(os.environ.get("GIK_TEST_ROOT", "/tmp/pg_gik_test")) / "mirror"
HTTP = os.environ.get("GIK_HTTP", "http://127.0.0.1:18765")
GEFS_RUN = "2025-10-01 00:00+00"                              # 0.25 degree, steps 0-24/3
GEFS_RANGE = ("2025-10-02 00:00+00", "2025-10-03 00:00+00")   # the mirror's 1 degree runs, steps 0-24/6
ECMWF_RUN = "2025-10-01 00:00+00"
ECMWF_STEPS = (0, 6, 12, 18, 24)
CATALOG = ("dataset", "run", "run_version", "file", "field", "time_window", "grid", "chunk_pack")


def connect():
    """An autocommit psycopg connection to the test database."""
    return psycopg.connect(CONNINFO, autocommit=True)


def scalar(conn, sql, params=None):
    """The first column of the first row."""
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def drop(conn, *datasets):
    """Drop datasets if they exist."""
    for d in datasets:
        conn.execute("SELECT gik.drop_dataset(%s)", (d,))


def catalog_counts(conn):
    """Row counts of every catalog table (an import that fails must leave them all unchanged)."""
    return {t: scalar(conn, f"SELECT count(*) FROM gik.{t}") for t in CATALOG}


def ref_differences(conn, a, b, variable=None):
    """(references of a missing from b, of b missing from a, rows compared) by url, offset, length, member,
    window and run; with variable, only a's references of that variable, and names are not compared (an
    import names APCP after its Zarr array, tp); without, variable, level and statistic must match too."""
    return conn.execute("""
        WITH a AS (SELECT * FROM gik.chunk_ref WHERE dataset = %(a)s AND (%(v)s::text IS NULL OR variable = %(v)s)),
             b AS (SELECT * FROM gik.chunk_ref WHERE dataset = %(b)s)
        SELECT count(*) FILTER (WHERE b.url IS NULL), count(*) FILTER (WHERE a.url IS NULL), count(*)
        FROM a FULL JOIN b
          ON (a.url, a.byte_offset, a.byte_length, a.member, a.step_start, a.step_end, a.init_time)
           = (b.url, b.byte_offset, b.byte_length, b.member, b.step_start, b.step_end, b.init_time)
         AND (%(v)s::text IS NOT NULL OR (a.variable, a.level, a.stat) = (b.variable, b.level, b.stat))""",
                        dict(a=a, b=b, v=variable)).fetchone()


def run_cli(*args):
    """The installed pg-gik console script in a new process: (returncode, stdout, stderr)."""
    p = subprocess.run([str(pathlib.Path(sys.executable).with_name("pg-gik")), *map(str, args)],
                       capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def db():
    """One autocommit connection for a test module, with the extension created."""
    conn = connect()
    conn.execute("CREATE EXTENSION IF NOT EXISTS pg_gik")
    yield conn
    conn.close()


def _gefs_dataset(db, name, runs, steps):
    """A clone of gefs_0p25 with APCP of members 0-2 ingested for the given runs and steps."""
    drop(db, name)
    db.execute("SELECT gik.clone_dataset('gefs_0p25', %s, '{APCP}')", (name,))
    for run in runs:
        db.execute("SELECT gik.ingest_run(%s, %s, variables => '{APCP}', members => '{0,1,2}', "
                   "steps => gik.step_list(%s))", (name, run, steps))
    return name


@pytest.fixture(scope="module")
def gefs(db):
    """Dataset brt_gefs: the GEFS run of 2025-10-01 00z, APCP, members 0-2, steps 0-24 h, from the mirror."""
    yield _gefs_dataset(db, "brt_gefs", [GEFS_RUN], "0-24/3")
    drop(db, "brt_gefs")


@pytest.fixture(scope="module")
def gefs_range(db):
    """Dataset brt_gefs_range: two GEFS runs (2025-10-02 and -03 00z, 1 degree), APCP, members 0-2, steps 0-24/6."""
    yield _gefs_dataset(db, "brt_gefs_range", GEFS_RANGE, "0-24/6")
    drop(db, "brt_gefs_range")


@pytest.fixture(scope="module")
def ecmwf(db):
    """Dataset brt_ecmwf: ECMWF ENS tp, 2t and msl (control and three members), one run, from the mirror."""
    name = "brt_ecmwf"
    drop(db, name)
    db.execute("SELECT gik.clone_dataset('ecmwf_ens_0p25', %s, '{tp,2t,msl}')", (name,))
    db.execute("SELECT gik.ingest_run(%s, %s, steps => %s)", (name, ECMWF_RUN, list(ECMWF_STEPS)))
    yield name
    drop(db, name)
