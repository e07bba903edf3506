"""The table of bench/exceedance_bench.sh from its "key[@round] value [count]" lines.
Ratios are medians over the rounds of values measured together in a round; times are the best round.
Usage: report.py TIMES"""
import collections
import os
import statistics
import sys

rounds = collections.defaultdict(dict)   # key -> {round: value}
best, count = {}, {}
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) < 2 or parts[0] == "round":
        continue
    key, _, r = parts[0].partition("@")
    v = float(parts[1])
    rounds[key][r] = v
    best[key] = min(best.get(key, v), v)
    if len(parts) > 2:
        count[key] = int(float(parts[2]))
cores = os.cpu_count()
FLOORS = {"gefs": ["gefs_0p25"], "ecmwf": ["ecmwf_ens_0p25"], "grand": ["gefs_0p25", "ecmwf_ens_0p25"],
          "gefs_real": ["gefs_real"], "ecmwf_real": ["ecmwf_real"], "grand_real": ["gefs_real", "ecmwf_real"]}


def paired(case, fn):
    """Median over rounds of fn(current, base, floor) for one case."""
    out = []
    for r, cur in rounds[f"current_{case}"].items():
        base = rounds[f"base_{case}"].get(r)
        fl = [rounds[f"floor_{d}"].get(r) for d in FLOORS[case]]
        if base is not None and None not in fl:
            out.append(fn(cur, base, sum(fl) / cores))
    return statistics.median(out) if out else float("nan"), len(out)


print(f"East Africa 0-24 h exceedance, 6 thresholds, {max(len(v) for v in rounds.values())} rounds ({cores} cores), warm sessions")
print("floor = raw ecCodes decode of the same messages on one core (C, tuned malloc); ratios are medians of pairs "
      "measured in the same round")
print(f"{'case':11s} {'msgs':>5s} {'current':>9s} {'0.1.0':>9s} {'cur/0.1.0':>9s} {'floor/cores':>12s} "
      f"{'cur/floor':>10s} {'0.1.0/floor':>11s} {'cold current':>13s} {'cold 0.1.0':>11s} {'Python GIK':>16s}")
for case, fl in FLOORS.items():
    if f"current_{case}" not in best:
        continue
    n = sum(count.get(f"floor_{d}", 0) for d in fl)
    ratio, k = paired(case, lambda c, b, f: c / b)
    cur_fl, _ = paired(case, lambda c, b, f: c / f)
    base_fl, _ = paired(case, lambda c, b, f: b / f)
    floor = sum(best[f"floor_{d}"] for d in fl) / cores
    py = best.get(f"python_{fl[0]}") if len(fl) == 1 else None
    print(f"{case:11s} {n:5d} {best[f'current_{case}'] / 1000:8.3f}s {best[f'base_{case}'] / 1000:8.3f}s {ratio:8.2f}x "
          f"{floor / 1000:11.3f}s {cur_fl:10.2f} {base_fl:11.2f} {best.get(f'cold_current_{case}', 0) / 1000:12.3f}s "
          f"{best.get(f'cold_base_{case}', 0) / 1000:10.3f}s "
          + (f"{py / 1000:8.3f}s ({py / best[f'current_{case}']:.1f}x)" if py else ""))
print("\nwhere the time goes, current version (ms, best of the rounds):")
for ds in ("gefs_real", "ecmwf_real"):
    g = {k: best.get(f"stage_{ds}_{k}") for k in
         ("exceedance", "accumulations", "decode_region", "decode_globe", "backend_cpu", "decoders_cpu")}
    if g["exceedance"] is None:
        continue
    fl = best[f"floor_{ds}"]
    print(f"  {ds}: gik.exceedance {g['exceedance']:.0f}; member totals (gik.accumulations) {g['accumulations']:.0f}; "
          f"decode_batch with the region {g['decode_region']:.0f}, whole globe {g['decode_globe']:.0f}; "
          f"decode floor / {cores} cores {fl / cores:.0f}")
    print(f"    CPU during one gik.exceedance: backend {g['backend_cpu']:.0f} ms, decoder processes {g['decoders_cpu']:.0f} ms "
          f"(floor {fl:.0f} ms)")
for tag in ("current", "base"):
    if f"hwm_{tag}" in best:
        print(f"backend peak RSS after the real-size grand ensemble ({tag}): {best[f'hwm_{tag}'] / 1024:.0f} MB")
