"""gik.exceedance of a GEFS run (members gec00, gep01, gep02; 0-24 h) against ecCodes: each member's
total is the sum of its 0-6, 6-12, 12-18 and 18-24 h APCP messages, found from the .idx files and
fetched from the mirror without pg_gik; the probability of a threshold is the fraction of members
whose total reaches it. Cells with a member total within 1e-3 mm of a threshold are not compared.
Usage: /usr/bin/python3 exceedance_check.py DBNAME HTTP_BASE YYYYMMDD LON_MIN LAT_MIN LON_MAX LAT_MAX T1,T2,..
Prints one TAP-like line per threshold; exits 1 when any disagrees."""
import sys
import urllib.request

import eccodes as ec
import numpy as np
import psycopg2

db, http, day = sys.argv[1:4]
lon_min, lat_min, lon_max, lat_max = (float(x) for x in sys.argv[4:8])
thresholds = [float(t) for t in sys.argv[8].split(",")]
MEMBERS = ["gec00", "gep01", "gep02"]
WINDOWS = [(0, 6), (6, 12), (12, 18), (18, 24)]


def fetch(url, first=None, last=None):
    headers = {} if first is None else {"Range": f"bytes={first}-{'' if last is None else last}"}
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30).read()


def apcp(token, a, b):
    """The a-b h APCP field of one member: values[nj][ni] north to south, with its latitudes and longitudes."""
    url = f"{http.rstrip('/')}/noaa-gefs-pds/gefs.{day}/00/atmos/pgrb2sp25/{token}.t00z.pgrb2s.0p25.f{b:03d}"
    lines = fetch(url + ".idx").decode().splitlines()
    k = next(i for i, l in enumerate(lines) if f":APCP:surface:{a}-{b} hour acc" in l)
    first = int(lines[k].split(":")[1])
    last = int(lines[k + 1].split(":")[1]) - 1 if k + 1 < len(lines) else None
    h = ec.codes_new_from_message(fetch(url, first, last))
    try:
        assert ec.codes_get(h, "jScansPositively") == 0 and ec.codes_get(h, "iScansNegatively") == 0
        ni, nj = ec.codes_get(h, "Ni"), ec.codes_get(h, "Nj")
        vals = ec.codes_get_double_array(h, "values").reshape(nj, ni)
        lats, lons = ec.codes_get_double_array(h, "distinctLatitudes"), ec.codes_get_double_array(h, "distinctLongitudes")
    finally:
        ec.codes_release(h)
    return vals, np.sort(lats)[::-1], np.sort(lons)


totals = []
for token in MEMBERS:
    parts = [apcp(token, a, b) for a, b in WINDOWS]
    _, lats, lons = parts[0]
    totals.append(sum(p[0] for p in parts))
rows = (lats >= lat_min - 1e-9) & (lats <= lat_max + 1e-9)
cols = (lons >= lon_min - 1e-9) & (lons <= lon_max + 1e-9)
totals = np.array([t[np.ix_(rows, cols)] for t in totals])  # member, north to south, west to east

conn = psycopg2.connect(dbname=db)  # host, port and user from the PG* environment
cur = conn.cursor()
cur.execute("SELECT threshold, probability, (grid).lat_first, (grid).lon_first, members_used "
            f"FROM gik.exceedance('gefs_0p25', %s, 0, 24, %s, gik.bbox(%s, %s, %s, %s)) ORDER BY threshold",
            (f"{day} 00:00+00", thresholds, lon_min, lat_min, lon_max, lat_max))
got = cur.fetchall()
bad = 0 if len(got) == len(thresholds) else 1
if bad:
    print(f"not ok - gik.exceedance gave {len(got)} rows for {len(thresholds)} thresholds")
for t, prob, lat_first, lon_first, used in got:
    prob = np.array(prob, dtype=np.float64)
    want = (totals >= t).mean(axis=0)
    near = (np.abs(totals - t) < 1e-3).any(axis=0)
    same_grid = prob.shape == want.shape and (lat_first, lon_first) == (lats[rows][0], lons[cols][0]) and used == len(MEMBERS)
    wrong = int((np.abs(prob - want) > 1e-6)[~near].sum()) if same_grid else -1
    if wrong == 0 and (want[~near] > 0).any():
        print(f"ok - exceedance >= {t} mm agrees with ecCodes on {int((~near).sum())} of {want.size} cells "
              f"({int((want > 0).sum())} wet)")
    else:
        bad += 1
        print(f"not ok - exceedance >= {t} mm: shape {prob.shape} (ecCodes {want.shape}), first cell "
              f"({lat_first}, {lon_first}), members {used}, {wrong} cells differ")
sys.exit(1 if bad else 0)
