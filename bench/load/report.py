"""Summarise a bench/load/run.sh run: per-script throughput and latency from the pgbench logs, errors,
backend memory from the /proc samples, ingestion attempts and the consistency of every run.
Usage: report.py OUT_DIR PGBENCH_EXIT_STATUS"""
import collections
import glob
import os
import re
import sys

out, rc = sys.argv[1], int(sys.argv[2])
duration = float(os.environ.get("DURATION", "0"))
names = {0: "ingest_latest", 1: "decode", 2: "decode_batch", 3: "exceedance"}

lat = collections.defaultdict(list)       # script -> latencies (ms) of successful transactions
failed = collections.Counter()            # script -> failed transactions (after retries)
retried = collections.Counter()           # script -> transactions that needed a retry
for path in glob.glob(os.path.join(out, "tx.*")):
    for line in open(path):
        f = line.split()
        if len(f) < 6:
            continue
        script = int(f[3])
        if f[2].isdigit():
            lat[script].append(int(f[2]) / 1000.0)
        else:
            failed[script] += 1
        if len(f) >= 7 and f[-1].isdigit() and int(f[-1]) > 0:
            retried[script] += 1

aborted = collections.Counter()
abort_msgs = []
err = open(os.path.join(out, "pgbench.err")).read()
for m in re.finditer(r"client (\d+) script (\d+) aborted in command (\d+) query \d+: (.*)", err):
    aborted[int(m.group(2))] += 1
    abort_msgs.append(f"  client {m.group(1)} {names.get(int(m.group(2)))}: {m.group(4).strip()}")
warnings = [l for l in err.splitlines() if "WARNING" in l]

# ingestion attempts recorded by gik.ingest_latest (its errors are recorded, not raised)
attempts = []
for line in open(os.path.join(out, "ingest_log.txt")):
    status, outcome, n, sqlstate, error = line.rstrip("\n").split("|", 4)
    attempts.append((status, outcome, int(n), sqlstate, error))
ingest_failed = sum(a[2] for a in attempts if a[0] == "failed")


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))]


print(f"\n{os.environ.get('CLIENTS')} clients, {duration:.0f} s, {os.cpu_count()} cores; pgbench exit status {rc}")
print(f"| script | weight | transactions | tps | p50 ms | p95 ms | p99 ms | max ms | errors |")
print(f"|---|---:|---:|---:|---:|---:|---:|---:|---:|")
weights = [os.environ.get(k) for k in ("W_INGEST", "W_DECODE", "W_BATCH", "W_EXCEEDANCE")]
total_ok = total_err = 0
for s in range(4):
    v = lat[s]
    errs = failed[s] + aborted[s] + (ingest_failed if s == 0 else 0)
    total_ok += len(v)
    total_err += errs
    row = (f"{pct(v, 50):.1f} | {pct(v, 95):.1f} | {pct(v, 99):.1f} | {max(v):.1f}" if v else "- | - | - | -")
    print(f"| {names[s]} | {weights[s]} | {len(v)} | {len(v) / duration:.2f} | {row} | {errs} |")
print(f"| all | | {total_ok} | {total_ok / duration:.2f} | | | | | {total_err} |")
print(f"errors = failed transactions after --max-tries=3 ({sum(failed.values())}) + aborted clients "
      f"({sum(aborted.values())}) + failed gik.ingest_log attempts ({ingest_failed}); "
      f"transactions retried: {sum(retried.values())}")
for m in abort_msgs[:10]:
    print(m)
for w in warnings[:10]:
    print("  " + w.strip())

print("\ngik.ingest_log attempts during the load:")
for status, outcome, n, sqlstate, error in attempts:
    print(f"  {status:9s} {outcome:12s} {n:6d} {sqlstate} {error}")

same_run, at_once = open(os.path.join(out, "overlap.txt")).read().strip().split("|")
print(f"  attempts at the same run overlapping in time: {same_run} pairs; most attempts running at once: {at_once}")

mem = collections.defaultdict(lambda: [0, 0, 0])
for line in open(os.path.join(out, "mem.txt")):
    t, pid, hwm, rss, anon = (int(x) for x in line.split())
    m = mem[pid]
    m[0], m[1], m[2] = max(m[0], hwm), max(m[1], rss), max(m[2], anon)
if mem:
    hwm = sorted(m[0] for m in mem.values())
    print(f"\nbackend memory ({len(mem)} pgbench backends sampled every second): VmHWM max {hwm[-1] / 1024:.0f} MB, "
          f"median {hwm[len(hwm) // 2] / 1024:.0f} MB; RssAnon max {max(m[2] for m in mem.values()) / 1024:.0f} MB")

print("\nruns after the load (refs: gik.run.refs / current references / index file lines; diff: references "
      "not equal to a serial re-ingestion):")
bad = 0
nruns = 0
for line in open(os.path.join(out, "runs.txt")):
    ds, init, status, version, fexp, ffound, refs, cur, lines, curfiles, diff = line.rstrip("\n").split("|")
    nruns += 1
    ok = (status == "complete" and fexp == ffound == curfiles and refs == cur == lines and diff == "0")
    bad += not ok
    print(f"  {ds:11s} {init[:16]} {status:8s} v{version:3s} files {ffound}/{fexp} ({curfiles} current) "
          f"refs {refs}/{cur}/{lines} diff {diff}{'' if ok else '   <-- INCONSISTENT'}")
print(f"{nruns} runs, {bad} inconsistent")
print("ingest_health:", "; ".join(l.strip() for l in open(os.path.join(out, "health.txt"))))
serr = open(os.path.join(out, "server_errors.txt")).read().strip()
print("server log errors:", len(serr.splitlines()) if serr else 0)
for l in serr.splitlines()[:10]:
    print("  " + l)
ok = rc == 0 and total_err == 0 and bad == 0 and nruns > 0 and not serr
print("load test:", "PASS" if ok else "FAIL (errors, inconsistent runs or server errors above)")
sys.exit(0 if ok else 1)
