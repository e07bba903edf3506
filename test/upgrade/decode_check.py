"""Decode chunk references through pg_gik and, independently, with ecCodes on the same bytes
(fetched from the mirror with an HTTP Range request): the value sets must agree, and
gik.decode_raster (pg_gik_postgis) must have the message's Ni x Nj.
Usage: /usr/bin/python3 decode_check.py DBNAME HTTP_BASE SQL  (SQL yields url, byte_offset, byte_length, label)
Prints one TAP-like line per reference; exits 1 when any disagrees."""
import sys
import urllib.request

import eccodes as ec
import numpy as np
import psycopg2

db, http, refs_sql = sys.argv[1:4]
conn = psycopg2.connect(dbname=db)  # host, port and user from the PG* environment
cur = conn.cursor()
cur.execute(refs_sql)
refs = cur.fetchall()
bad = 0
if not refs:
    print(f"not ok - no references from: {refs_sql}")
    sys.exit(1)
for url, off, length, label in refs:
    name = f"{label}: {url} [{off}, +{length}]"
    # s3://bucket/key is served by the mirror as HTTP_BASE/bucket/key
    mirror = http.rstrip("/") + "/" + url.removeprefix("s3://")
    req = urllib.request.Request(mirror, headers={"Range": f"bytes={off}-{off + length - 1}"})
    data = urllib.request.urlopen(req, timeout=30).read()
    h = ec.codes_new_from_message(data)
    try:
        want = ec.codes_get_double_array(h, "values").astype(np.float32)
        if ec.codes_get(h, "bitmapPresent"):
            want = np.where(ec.codes_get_long_array(h, "bitmap") == 0, np.nan, want)
        ni, nj = ec.codes_get(h, "Ni"), ec.codes_get(h, "Nj")
    finally:
        ec.codes_release(h)
    cur.execute("SELECT gik.decode(%s, %s, %s), ST_Width(r), ST_Height(r) "
                "FROM gik.decode_raster(%s, %s, %s) r", (url, off, length) * 2)
    got, width, height = cur.fetchone()
    got = np.array(got, dtype=np.float32).ravel()
    same = got.size == want.size and np.allclose(np.sort(got), np.sort(want), rtol=0, atol=1e-6, equal_nan=True)
    if same and (width, height) == (ni, nj):
        print(f"ok - decode and decode_raster of {name} agree with ecCodes ({got.size} values, {ni}x{nj})")
    else:
        bad += 1
        print(f"not ok - {name}: gik.decode {got.size} values, ecCodes {want.size}; "
              f"max |diff| of sorted values {np.nanmax(np.abs(np.sort(got) - np.sort(want))) if got.size == want.size else 'n/a'}; "
              f"raster {width}x{height}, ecCodes {ni}x{nj}")
sys.exit(1 if bad else 0)
