"""Each GRIB file's identity recorded at ingestion (size, ETag, Last-Modified from one HEAD per file),
indexes older than their GRIB files flagged, and a replaced GRIB file making a new version."""
import email.utils
import os
import time
import urllib.request

from conftest import query, scalar
from test_ingest import scratch_dataset, scratch_run  # noqa: F401 - the fixture


def head(url):
    """(size, ETag, Last-Modified as a Unix time) of a URL, as nginx reports them."""
    r = urllib.request.urlopen(urllib.request.Request(url, method="HEAD"))
    return (int(r.headers["Content-Length"]), r.headers["ETag"],
            email.utils.parsedate_to_datetime(r.headers["Last-Modified"]).timestamp())


def files(db, name):
    return query(db, "SELECT f.url, f.size, f.grib_etag, extract(epoch FROM f.grib_last_modified), "
                     "extract(epoch FROM f.index_last_modified), f.index_older, r.version "
                     "FROM gik.file f JOIN gik.run r USING (run_id) JOIN gik.dataset d USING (dataset_id) "
                     "WHERE d.name = %s AND f.valid_to IS NULL ORDER BY f.step, f.member", (name,))


def test_identity_is_recorded_as_the_server_reports_it(db, scratch_run):
    root, base = scratch_run
    scratch_dataset(db, "identity_run", base)
    query(db, "SELECT gik.ingest_run('identity_run', '2025-10-01 00:00+00')")
    rows = files(db, "identity_run")
    assert len(rows) == 15
    for url, size, etag, lm, idx_lm, older, _ in rows:
        h_size, h_etag, h_lm = head(url)
        assert (size, etag, lm) == (h_size, h_etag, h_lm), url
        assert idx_lm == head(url + ".idx")[2] and older is False
    assert scalar(db, "SELECT (gik.file_info(%s)).last_modified = to_timestamp(%s)", (rows[0][0], rows[0][3]))
    query(db, "SELECT gik.drop_dataset('identity_run')")


def test_identity_can_be_switched_off(db, scratch_run):
    root, base = scratch_run
    scratch_dataset(db, "identity_off", base)
    query(db, "SET gik.record_grib_identity = off")
    query(db, "SELECT gik.ingest_run('identity_off', '2025-10-01 00:00+00')")
    query(db, "RESET gik.record_grib_identity")
    assert all(r[2] is None and r[3] is None for r in files(db, "identity_off"))
    query(db, "SELECT gik.drop_dataset('identity_off')")


def test_index_older_than_its_grib_is_flagged_and_a_replaced_grib_makes_a_new_version(db, scratch_run):
    root, base = scratch_run
    scratch_dataset(db, "identity_stale", base)
    query(db, "SELECT gik.ingest_run('identity_stale', '2025-10-01 00:00+00')")
    grib = root / "gefs.20251001/00/atmos/pgrb2sp25/gep01.t00z.pgrb2s.0p25.f012"
    later = time.time() + 120
    os.utime(grib, (later, later))        # the GRIB file replaced after its index was written
    with db.cursor() as cur:
        cur.execute("SELECT gik.ingest_run('identity_stale', '2025-10-01 00:00+00')")
        notices = "".join(db.notices)
    rows = {r[0]: r for r in files(db, "identity_stale")}
    url = f"{base}/gefs.20251001/00/atmos/pgrb2sp25/gep01.t00z.pgrb2s.0p25.f012"
    assert rows[url][5] is True and rows[url][3] == int(later)
    assert sum(r[5] for r in rows.values()) == 1
    assert "older than their GRIB files" in notices
    assert {r[6] for r in rows.values()} == {2}, "the replaced GRIB file made version 2"
    query(db, "SELECT gik.drop_dataset('identity_stale')")
