"""Regridding cost per member against decode cost, on the same fields, with numpy as the peer.

Decodes one real 0.25 degree global message (GDAS, test/data/grib-rs) RUNS times, keeps MEMBERS copies
of the field in a temporary table, regrids them all to 0.5 and 1 degree grids (bilinear, conservative)
with gik.regrid (first call: weights computed; then cached), and times numpy doing the same
regridding (the dense-overlap formulation of test/py/test_regrid.py) on the same field in the same run.
Prints a table and one JSON line. Usage: python3 bench.py DATA_DIR (PG* environment; a superuser)."""
import json
import sys
import time

import numpy as np
import psycopg2

RUNS = int(sys.argv[2]) if len(sys.argv) > 2 else 1
MEMBERS = int(sys.argv[3]) if len(sys.argv) > 3 else 10
path = f"{sys.argv[1]}/grib-rs/gdas.t12z.pgrb2.0p25.f000.12"
TARGETS = {"0.5": (720, 361, 90.0, 0.0, 0.5), "1.0": (360, 180, 89.5, 0.5, 1.0)}


def grid_sql(ni, nj, lat0, lon0, d):
    return (f"ROW('regular_ll', {ni}, {nj}, {lat0}, {lon0}, {lat0 - (nj - 1) * d}, {lon0 + (ni - 1) * d}, "
            f"{d}, {d}, 0, NULL)::gik.grid_desc")


def best(fn, runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def numpy_conservative(v, s_lats, s_d, t_lats, t_lons, s_lons, t_d):
    def latw(a, da, b, db):
        top = np.minimum(np.clip(b + db / 2, -90, 90)[:, None], np.clip(a + da / 2, -90, 90)[None, :])
        bot = np.maximum(np.clip(b - db / 2, -90, 90)[:, None], np.clip(a - da / 2, -90, 90)[None, :])
        return np.where(top > bot, np.sin(np.radians(top)) - np.sin(np.radians(bot)), 0.0)
    rel = (s_lons[None, :] - t_lons[:, None] + 180.0) % 360.0 - 180.0
    wx = np.radians(np.clip(np.minimum(t_d / 2, rel + s_d / 2) - np.maximum(-t_d / 2, rel - s_d / 2), 0, None))
    wy = latw(s_lats, s_d, t_lats, t_d)
    return (wy @ v @ wx.T) / (wy @ np.ones_like(v) @ wx.T)


def numpy_bilinear(v, lats, lons, t_lats, t_lons):
    rows = np.array([np.interp(t_lons, lons, r, period=360.0) for r in v])
    o = np.argsort(lats)
    return np.array([np.interp(t_lats, lats[o], rows[o, c]) for c in range(len(t_lons))]).T


conn = psycopg2.connect("")
conn.autocommit = True
cur = conn.cursor()
n = len(open(path, "rb").read())
cur.execute("SELECT g::text, gik.grid_lats(g), gik.grid_lons(g) FROM gik.grid(%s, 0, %s) g", (path, n))
g, lats, lons = cur.fetchone()
lats, lons = np.array(lats), np.array(lons)
decode_s = best(lambda: cur.execute("SELECT gik.decode(%s, 0, %s) IS NULL", (path, n)), RUNS + 2)
cur.execute("DROP TABLE IF EXISTS pg_temp.bench_fields")
cur.execute("CREATE TEMP TABLE bench_fields AS SELECT k, gik.decode(%s, 0, %s) v FROM generate_series(1, %s) k",
            (path, n, MEMBERS))
cur.execute("SELECT v FROM bench_fields LIMIT 1")
field = np.array(cur.fetchone()[0], dtype=np.float64)
rows = []
for name, (ni, nj, lat0, lon0, d) in TARGETS.items():
    t_lats, t_lons = lat0 - d * np.arange(nj), lon0 + d * np.arange(ni)
    for method in ("bilinear", "conservative"):
        sql = f"SELECT count(gik.regrid(v, %s::gik.grid_desc, {grid_sql(ni, nj, lat0, lon0, d)}, %s)) FROM bench_fields"
        t0 = time.perf_counter()    # each grid pair is new to this session: the first call computes its weights
        cur.execute(sql.replace("FROM bench_fields", "FROM bench_fields WHERE k = 1"), (g, method))
        first = time.perf_counter() - t0
        per = best(lambda: cur.execute(sql, (g, method)), RUNS) / MEMBERS
        if method == "conservative":
            peer = best(lambda: numpy_conservative(field, lats, 0.25, t_lats, t_lons, lons, d), RUNS)
        else:
            peer = best(lambda: numpy_bilinear(field, lats, lons, t_lats, t_lons), RUNS)
        rows.append({"target": name, "method": method, "first_call_ms": first * 1e3, "per_member_ms": per * 1e3,
                     "decode_ms": decode_s * 1e3, "numpy_ms": peer * 1e3})
print(f"{'target':>6} {'method':>12} {'first call':>11} {'per member':>11} {'decode':>8} {'numpy':>8}  (ms; 1440x721 source)")
for r in rows:
    print(f"{r['target']:>6} {r['method']:>12} {r['first_call_ms']:11.1f} {r['per_member_ms']:11.2f} "
          f"{r['decode_ms']:8.1f} {r['numpy_ms']:8.1f}")
print(json.dumps({"bench": "regrid", "runs": RUNS, "members": MEMBERS, "rows": rows}))
