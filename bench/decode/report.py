"""Side-by-side table of bench/decode_bench.sh results (JSON lines in WORK/*.json).

Wall time is what a caller waits; CPU time (the process's, all threads) is less sensitive to other
work on a shared machine, so the overhead ratios are given for both.
Usage: report.py WORK CORES
"""
import json
import pathlib
import statistics
import sys

work = pathlib.Path(sys.argv[1])
cores = int(sys.argv[2])
res = {}
by_round = {}    # (dataset, method, round) -> pass, for ratios paired within a round
for f in sorted(work.glob("*.json")):
    for line in f.read_text().splitlines():
        line = line.strip()
        if line.startswith("{"):
            d = json.loads(line)
            key = (d["dataset"], d["method"])
            if "round" in d:
                by_round[key + (d["round"],)] = d
            if key in res:  # several rounds: keep the best wall and the best CPU time
                old = res[key]
                for k in ("best_ms", "ms_per_msg", "cpu_ms", "cpu_ms_per_msg"):
                    if k in d and k in old:
                        d[k] = min(d[k], old[k])
            res[key] = d

TITLES = {"gefs": "GEFS-like APCP 0.25 deg (1440 x 721), complex packing with spatial differencing (5.3), smooth rain",
          "ecmwf": "ECMWF-like tp 0.25 deg (1440 x 721), CCSDS (5.42), smooth rain",
          "gefs-realsize": "GEFS-like APCP 0.25 deg, complex packing (5.3), realistic rain at real message sizes",
          "ecmwf-realsize": "ECMWF-like tp 0.25 deg, CCSDS (5.42), realistic rain at real message sizes"}
SQL = ["gik.decode (server file)", "gik.decode (s3 via nginx)", "gik.decode_batch (s3 via nginx)",
       "gik.decode_batch in FROM (materialized)"]
ORDER = ["raw ecCodes C loop", "raw ecCodes C, glibc malloc defaults"] + SQL + ["0.1.0 " + m for m in SQL] + \
    ["GDAL 3.6 open+read", "cfgrib/xarray open+read"]


def cpu_per_msg(d):
    return d.get("cpu_ms_per_msg")


for ds in ("gefs", "ecmwf", "gefs-realsize", "ecmwf-realsize"):
    raw = res.get((ds, "raw ecCodes C loop"))
    if raw is None:
        continue
    n = raw["messages"] if raw else "?"
    print(f"\n{TITLES[ds]}: {n} messages; best of runs; ms per message")
    print(f"{'method':40} {'wall':>8} {'CPU':>8} {'wall/raw':>9} {'CPU/raw':>8} {'msgs':>5}")
    for m in ORDER:
        d = res.get((ds, m))
        if d is None:
            if ds.endswith("-realsize") and ("server file" in m or "FROM" in m or "GDAL" in m or "cfgrib" in m):
                continue    # the real-size lists run the two main methods only
            note = "cannot read CCSDS" if m.startswith("GDAL") else "not run"
            print(f"{m:40} {'n/a':>8} {'':>8} {note:>18}")
            continue
        w, c = d["ms_per_msg"], cpu_per_msg(d)
        wr = w / raw["ms_per_msg"] if raw else float("nan")
        cr = c / raw["cpu_ms_per_msg"] if (raw and c is not None) else float("nan")
        print(f"{m:40} {w:8.2f} {'' if c is None else format(c, '8.2f'):>8} {wr:8.2f}x {cr:7.2f}x {d['messages']:5d}")
    single = res.get((ds, "gik.decode (s3 via nginx)"))
    file_ = res.get((ds, "gik.decode (server file)"))
    batch = res.get((ds, "gik.decode_batch (s3 via nginx)"))
    if raw and file_ and single:
        print(f"  SQL overhead over the raw ecCodes loop (CPU): server file {100 * (file_['cpu_ms_per_msg'] / raw['cpu_ms_per_msg'] - 1):+.0f}%, "
              f"s3 via nginx {100 * (single['cpu_ms_per_msg'] / raw['cpu_ms_per_msg'] - 1):+.0f}% "
              f"(wall: {100 * (file_['ms_per_msg'] / raw['ms_per_msg'] - 1):+.0f}%, {100 * (single['ms_per_msg'] / raw['ms_per_msg'] - 1):+.0f}%)")
    if single and batch and raw:
        ideal = batch["cpu_ms_per_msg"] * batch["messages"] / cores
        print(f"  batch of {batch['messages']}: {batch['best_ms']:.0f} ms wall vs {single['best_ms']:.0f} ms for the same single "
              f"decodes one after the other ({single['best_ms'] / batch['best_ms']:.2f}x faster); its CPU / {cores} cores = "
              f"{ideal:.0f} ms, so wall / (CPU / cores) = {batch['best_ms'] / ideal:.2f}")
    for m in ("gik.decode (s3 via nginx)", "gik.decode_batch (s3 via nginx)"):
        cur, base = res.get((ds, m)), res.get((ds, "0.1.0 " + m))
        pairs = [(by_round[(ds, m, r)], by_round[(ds, "0.1.0 " + m, r)]) for (d_, m_, r) in by_round
                 if d_ == ds and m_ == m and (ds, "0.1.0 " + m, r) in by_round]
        if cur and base and pairs:
            wall = sorted(c["ms_per_msg"] / b["ms_per_msg"] for c, b in pairs)
            cpu = sorted(c["cpu_ms_per_msg"] / b["cpu_ms_per_msg"] for c, b in pairs)
            print(f"  {m}: decoder processes / 0.1.0 in-process = {statistics.median(wall):.2f}x wall, "
                  f"{statistics.median(cpu):.2f}x CPU (median of {len(pairs)} rounds, each pair measured together; "
                  f"best against best {cur['ms_per_msg'] / base['ms_per_msg']:.2f}x wall)")
    g = res.get((ds, "GDAL 3.6 open+read"))
    c = res.get((ds, "cfgrib/xarray open+read"))
    if single and g:
        print(f"  GDAL is {g['ms_per_msg'] / single['ms_per_msg']:.1f}x slower than gik.decode (s3) per message (wall)")
    if single and c:
        print(f"  cfgrib open+read is {c['ms_per_msg'] / single['ms_per_msg']:.0f}x slower than gik.decode (s3) per message (wall)")
