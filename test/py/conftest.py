"""Shared pytest fixtures: a connection to the run_tests.sh cluster and the loopback mirror's paths."""
import base64
import os
import pathlib
import threading

import psycopg2
import pytest

ROOT = pathlib.Path(os.environ.get("GIK_TEST_ROOT", "/tmp/pg_gik_test"))
MIRROR = ROOT / "mirror"
DATA = ROOT / "test" / "data"
HTTP = os.environ.get("GIK_HTTP", "http://127.0.0.1:18765")
FAULT = os.environ.get("GIK_FAULT", "http://127.0.0.1:18766")
# skips not named in test/expected-skips.txt fail
pytest_plugins = ["expected_skips"]


def pytest_configure(config):
    # The venv's eccodes bindings run on Debian's libeccodes 2.28, the library pg_gik links (tools/venv.sh's
    # .pth), on purpose; the bindings' advice to use 2.42 or newer is noise here.
    config.addinivalue_line("filterwarnings", "ignore:ecCodes 2.42.0 or higher is recommended:UserWarning")


def connect(autocommit=True):
    """A new connection to the test cluster (libpq settings come from pg_virtualenv)."""
    conn = psycopg2.connect("")
    conn.autocommit = autocommit
    return conn


@pytest.fixture(scope="session")
def db_setup():
    """Create the extensions once per test session."""
    conn = connect()
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_gik")
    conn.close()


@pytest.fixture
def db(db_setup):
    """A fresh autocommit connection for one test."""
    conn = connect()
    yield conn
    conn.close()


def with_postgis(conn):
    """Install PostGIS, its rasters and pg_gik_postgis where missing; returns the connection."""
    with conn.cursor() as cur:
        cur.execute("SET client_min_messages = warning")
        cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        cur.execute("CREATE EXTENSION IF NOT EXISTS postgis_raster")
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_gik_postgis")
        cur.execute("RESET client_min_messages")
    return conn


def query(conn, sql, params=None):
    """Run a query and return all rows."""
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else []


def scalar(conn, sql, params=None):
    """Run a query and return the first column of the first row."""
    rows = query(conn, sql, params)
    return rows[0][0] if rows else None


def concurrently(n, work):
    """Run work(conn) in n threads at once, each on its own connection; returns (results, errors)."""
    results, errors = [], []

    def run():
        conn = connect()
        try:
            results.append(work(conn))
        except Exception as e:  # noqa: BLE001 - returned to the caller
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def pg_error(conn, sql, params=None):
    """The psycopg2 error of a statement expected to fail."""
    with pytest.raises(psycopg2.Error) as exc:
        query(conn, sql, params)
    return exc.value


def error_of(conn, sql, params=None):
    """(sqlstate, message, detail) of a statement expected to fail."""
    e = pg_error(conn, sql, params)
    return e.pgcode, e.diag.message_primary, e.diag.message_detail or ""


def redirect_url(target, path="x"):
    """A fault-server URL answering 302 to target (base64url in the path: pg_gik refuses %2F in request URLs)."""
    return f"{FAULT}/fault/redirect/b64:{base64.urlsafe_b64encode(target.encode()).decode().rstrip('=')}/{path}"


def grib_keys(path, keys):
    """A tuple of the given ecCodes keys for every message of a local GRIB file (ecCodes as the reader)."""
    import eccodes
    out = []
    with open(path, "rb") as f:
        while True:
            h = eccodes.codes_grib_new_from_file(f)
            if h is None:
                break
            try:
                out.append(tuple(eccodes.codes_get(h, k, ktype=int) if k in ("offset", "totalLength")
                                 else eccodes.codes_get(h, k) for k in keys))
            finally:
                eccodes.codes_release(h)
    return out


def mirror_path(url):
    """Local path of an s3:// URL in the loopback mirror."""
    assert url.startswith("s3://"), url
    return MIRROR / url[len("s3://"):]


class ServerWatch:
    """Proof that the server did not restart: its start time, and a second session that must survive."""

    def __init__(self):
        self.sentinel = connect()
        self.started = scalar(self.sentinel, "SELECT pg_postmaster_start_time()")

    def assert_alive(self):
        """The sentinel session still answers and the postmaster is the same (no crash, no reinitialisation)."""
        try:
            now = scalar(self.sentinel, "SELECT pg_postmaster_start_time()")
        except psycopg2.Error as e:  # a backend crash terminates every session
            raise AssertionError(f"the server restarted: the second session was terminated ({e})") from e
        assert now == self.started, f"the server restarted at {now}"
        with connect() as fresh:
            assert scalar(fresh, "SELECT pg_postmaster_start_time()") == self.started

    def close(self):
        self.sentinel.close()


@pytest.fixture
def server_watch(db_setup):
    """Fails the test if the server crashed or restarted while it ran (checked at the end)."""
    watch = ServerWatch()
    yield watch
    watch.assert_alive()
    watch.close()
