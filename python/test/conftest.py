"""Fixtures of the pg_gik package's tests: the PG* database with test datasets ingested from the loopback mirror,
and the chunk-meaning check (helpers.check_chunk_meaning) for every store the tests write."""
from __future__ import annotations

import os
import sys

os.environ.setdefault("ICECHUNK_LOG", "error")
sys.path.insert(0, os.path.dirname(__file__))

import psycopg  # noqa: E402
import pytest  # noqa: E402

from helpers import HTTP, MIRROR, check_chunk_meaning, zarr_group_arrays  # noqa: E402,F401

GEFS = "pyt_gefs"
ECMWF = "pyt_ecmwf"
GEFS_RUNS = ("2025-10-01 00:00+00", "2025-10-02 00:00+00")
ECMWF_RUN = "2025-10-02 00:00+00"


def connect() -> psycopg.Connection:
    return psycopg.connect("", autocommit=True)


def drop_datasets(conn, *names):
    for n in names:
        conn.execute("SELECT gik.drop_dataset(%s) FROM gik.dataset WHERE name = %s", (n, n))


@pytest.fixture(scope="session")
def conn():
    c = connect()
    c.execute("CREATE EXTENSION IF NOT EXISTS pg_gik")
    yield c
    c.close()


@pytest.fixture(scope="session")
def datasets(conn):
    """pyt_gefs: GEFS 0.25° APCP, members 0-2, steps 0-24/3, two runs; pyt_ecmwf: ECMWF ENS tp, runs 2025-10-02 (5 members) and 2025-10-03 (51)."""
    drop_datasets(conn, GEFS, ECMWF)
    conn.execute("SELECT gik.clone_dataset('gefs_0p25', %s, '{APCP}')", (GEFS,))
    conn.execute("SELECT gik.clone_dataset('ecmwf_ens_0p25', %s, '{tp}')", (ECMWF,))
    for t in GEFS_RUNS:
        conn.execute("SELECT gik.ingest_run(%s, %s, variables => '{APCP}', members => '{0,1,2}', "
                     "steps => gik.step_list('0-24/3'))", (GEFS, t))
    conn.execute("SELECT gik.ingest_run(%s, %s, variables => '{tp}', steps => '{0,6,12,18,24}')", (ECMWF, ECMWF_RUN))
    conn.execute("SELECT gik.ingest_run(%s, '2025-10-03 00:00+00', variables => '{tp}', steps => '{0,24}')", (ECMWF,))
    yield {"gefs": GEFS, "ecmwf": ECMWF}
    drop_datasets(conn, GEFS, ECMWF)


def gik_decode(conn, url, offset, length, lon="source"):
    """gik.decode of one reference (the server's ecCodes), as a float32 array."""
    import numpy as np
    vals = conn.execute("SELECT gik.decode(%s, %s, %s, %s)", (url, offset, length, lon)).fetchone()[0]
    return np.array(vals, dtype="float32")
