"""The timed rounds of bench/exceedance_bench.sh: one warm session per version (the current pg_gik from
the libpq environment, 0.1.0 from BASE_PG), and in each round, back to back: gik.exceedance of every
case in both versions, then the raw ecCodes decode floor of the same messages. Pairing within a round
cancels the drift of a shared machine; the report gives medians of the paired ratios, and the first
(cold) call of a fresh session separately. Prints "key value [count]" lines.
Usage: rounds.py WORK RUNS   (Debian's /usr/bin/python3 with psycopg2)"""
import os
import subprocess
import sys
import time

import psycopg2

WORK, RUNS = sys.argv[1], int(sys.argv[2])
INIT = "2025-10-01 00:00+00"
SQL = ("SELECT count(*) FROM gik.exceedance(%s::text[], %s, 0, 24, '{5,25,50,75,100,125}', "
       "gik.bbox(21, -12, 53, 23))")
CASES = {"gefs": ["gefs_0p25"], "ecmwf": ["ecmwf_ens_0p25"], "grand": ["gefs_0p25", "ecmwf_ens_0p25"],
         "gefs_real": ["gefs_real"], "ecmwf_real": ["ecmwf_real"], "grand_real": ["gefs_real", "ecmwf_real"]}
TUNED = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=134217728"


def connect(dsn):
    c = psycopg2.connect(dsn)
    c.autocommit = True
    return c


def timed(conn, datasets):
    t0 = time.monotonic()
    with conn.cursor() as cur:
        cur.execute(SQL, (datasets, INIT))
        cur.fetchall()
    return (time.monotonic() - t0) * 1000


def floor(ds):
    """Seconds of the raw ecCodes C loop over a dataset's messages, and their count."""
    with open(os.path.join(WORK, f"floor_{ds}.txt")) as f:
        out = subprocess.run([os.path.join(WORK, "decode_floor")], stdin=f, capture_output=True, text=True,
                             env=dict(os.environ, GLIBC_TUNABLES=TUNED), check=True).stdout.split()
    return float(out[0]) * 1000, int(out[1])


conns = {"current": connect(""), "base": connect(os.environ["BASE_PG"])}
for tag, conn in conns.items():              # the first call of a fresh session: decoders, ecCodes tables
    for case, datasets in CASES.items():
        print(f"cold_{tag}_{case} {timed(connect('' if tag == 'current' else os.environ['BASE_PG']), datasets):.1f}")
        timed(conn, datasets)                # warms the session used below
for r in range(RUNS):
    print(f"round {r + 1} of {RUNS}", file=sys.stderr)
    for case, datasets in CASES.items():
        for tag, conn in conns.items():
            print(f"{tag}_{case}@{r} {timed(conn, datasets):.1f}")
    for ds in ("gefs_0p25", "ecmwf_ens_0p25", "gefs_real", "ecmwf_real"):
        ms, n = floor(ds)
        print(f"floor_{ds}@{r} {ms:.1f} {n}")
