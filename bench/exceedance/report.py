"""The table of bench/exceedance_bench.sh from its "key value [count]" lines (best of the rounds).
Usage: report.py TIMES"""
import os
import sys

best, count = {}, {}
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) < 2:
        continue
    k, v = parts[0], float(parts[1])
    best[k] = min(best.get(k, v), v)
    if len(parts) > 2:
        count[k] = int(float(parts[2]))
cores = os.cpu_count()
print(f"East Africa 0-24 h exceedance, 6 thresholds, best of {os.environ.get('RUNS')} rounds ({cores} cores)")
print("floor = raw ecCodes decode of the same messages on one core (C, tuned malloc); ratio = time / (floor / cores)")
print(f"{'case':11s} {'msgs':>5s} {'current':>9s} {'0.1.0':>9s} {'cur/0.1.0':>9s} {'floor/cores':>12s} "
      f"{'ratio cur':>9s} {'ratio 0.1.0':>11s} {'Python GIK':>11s}")
floors = {"gefs": ["gefs_0p25"], "ecmwf": ["ecmwf_ens_0p25"], "grand": ["gefs_0p25", "ecmwf_ens_0p25"],
          "gefs_real": ["gefs_real"], "ecmwf_real": ["ecmwf_real"], "grand_real": ["gefs_real", "ecmwf_real"]}
for case, fl in floors.items():
    cur, base = best.get(f"current_{case}"), best.get(f"base_{case}")
    if cur is None:
        continue
    floor = sum(best[f"floor_{d}"] for d in fl) / 1000
    n = sum(count.get(f"floor_{d}", 0) for d in fl)
    py = best.get(f"python_{fl[0]}") if len(fl) == 1 else None
    print(f"{case:11s} {n:5d} {cur / 1000:8.2f}s {base / 1000:8.2f}s {cur / base:8.2f}x {floor / cores:11.2f}s "
          f"{cur / 1000 / (floor / cores):9.2f} {base / 1000 / (floor / cores):11.2f} "
          + (f"{py / 1000:8.2f}s ({py / cur:.1f}x)" if py else ""))
print("\nwhere the time goes, current version (ms, best of the rounds):")
for ds in ("gefs_real", "ecmwf_real"):
    g = {k: best.get(f"stage_{ds}_{k}") for k in
         ("exceedance", "accumulations", "decode_region", "decode_globe", "backend_cpu", "decoders_cpu")}
    if g["exceedance"] is None:
        continue
    floor = best[f"floor_{ds}"]
    print(f"  {ds}: gik.exceedance {g['exceedance']:.0f}; member totals (gik.accumulations) {g['accumulations']:.0f}; "
          f"decode_batch with the region {g['decode_region']:.0f}, whole globe {g['decode_globe']:.0f}; "
          f"decode floor / {cores} cores {floor / cores:.0f}")
    print(f"    CPU during one gik.exceedance: backend {g['backend_cpu']:.0f} ms, decoder processes {g['decoders_cpu']:.0f} ms "
          f"(floor {floor:.0f} ms)")
for tag in ("current", "base"):
    if f"hwm_{tag}" in best:
        print(f"backend peak RSS after the real-size grand ensemble ({tag}): {best[f'hwm_{tag}'] / 1024:.0f} MB")
