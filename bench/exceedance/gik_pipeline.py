"""A GIK-style Python pipeline, the peer of gik.exceedance: threads fetch byte ranges over HTTP,
ecCodes decodes, numpy sums each member's windows and computes the exceedance probabilities.
Input: a JSON plan [{"member", "url", "offset", "length", "weight", "scale"}], thresholds, region."""
import concurrent.futures
import http.client
import json
import sys
import threading
import time
import urllib.parse

import eccodes
import numpy as np

_local = threading.local()


def fetch(url, offset, length):
    """One ranged GET on a per-thread keep-alive connection."""
    u = urllib.parse.urlsplit(url)
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = http.client.HTTPConnection(u.hostname, u.port)
    conn.request("GET", u.path, headers={"Range": f"bytes={offset}-{offset + length - 1}"})
    r = conn.getresponse()
    data = r.read()
    assert r.status == 206 and len(data) == length, (url, r.status, len(data))
    return data


def decode_region(data, box):
    """Values of the cells inside box, north-up, longitudes in -180..180."""
    h = eccodes.codes_new_from_message(data)
    try:
        ni, nj = eccodes.codes_get(h, "Ni"), eccodes.codes_get(h, "Nj")
        lat0, lon0 = eccodes.codes_get(h, "latitudeOfFirstGridPointInDegrees"), eccodes.codes_get(h, "longitudeOfFirstGridPointInDegrees")
        di, dj = eccodes.codes_get(h, "iDirectionIncrementInDegrees"), eccodes.codes_get(h, "jDirectionIncrementInDegrees")
        vals = eccodes.codes_get_values(h).reshape(nj, ni)
    finally:
        eccodes.codes_release(h)
    lats = lat0 - dj * np.arange(nj)
    lons = (lon0 + di * np.arange(ni) + 180.0) % 360.0 - 180.0
    rows = (lats >= box[1] - 1e-9) & (lats <= box[3] + 1e-9)
    order = np.argsort(lons)
    cols = order[(lons[order] >= box[0] - 1e-9) & (lons[order] <= box[2] + 1e-9)]
    return vals[np.ix_(np.where(rows)[0], cols)]


def run(plan, thresholds, box, threads=8):
    """Per-member totals and the exceedance stack."""
    def work(item):
        return item, decode_region(fetch(item["url"], item["offset"], item["length"]), box)

    totals = {}
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for item, vals in pool.map(work, plan):
            m = item["member"]
            totals[m] = totals.get(m, 0) + item["weight"] * vals
    scale = {i["member"]: i["scale"] for i in plan}
    clip = {i["member"] for i in plan if i["weight"] < 0}
    stack = np.stack([np.clip(t, 0, None) * scale[m] if m in clip else t * scale[m] for m, t in sorted(totals.items())])
    return np.stack([(stack >= t).mean(axis=0) for t in thresholds]), len(totals)


if __name__ == "__main__":
    plan = json.load(open(sys.argv[1]))
    thresholds = json.loads(sys.argv[2])
    box = json.loads(sys.argv[3])
    best = float("inf")
    for _ in range(int(sys.argv[4]) if len(sys.argv) > 4 else 3):
        t0 = time.perf_counter()
        probs, n = run(plan, thresholds, box)
        best = min(best, time.perf_counter() - t0)
    print(f"{best:.3f} {n} {float(probs.max()):.4f}")
