#!/usr/bin/python3
"""Live-server fuzzing: mutated real GRIB messages, served over HTTP, decoded through SQL.

Each round writes a file of mutated messages (real messages of test/data, mutated and framed as the
libFuzzer decode harness frames its inputs, so most reach the decoders) into a directory that an HTTP
server publishes, decodes every message with gik.decode and all of them at once with gik.decode_batch,
then checks that the server did not restart: its postmaster start time is unchanged and a second
session opened at the start still answers. Decoder processes may die (that is what they are for):
their crashes are counted, and the inputs kept.

  live_fuzz.py --seconds N --dir SERVED_DIR --url HTTP_BASE_OF_DIR --out WORK [--seed S]

libpq settings (PGHOST, PGPORT, ...) name the server. The last line is
"live-fuzz: N messages, M decodes, K batches, C decoder crashes, R server restarts"; exit status 1
when R > 0 or a statement fails with an internal error (SQLSTATE class XX other than XX001).
"""
import argparse
import collections
import os
import random
import sys
import time

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_seeds import DATA, framed, grib_messages  # noqa: E402

INTERESTING = [0, 1, 2, 0x7f, 0x80, 0xfe, 0xff]


def seeds():
    """Every GRIB message of the fixtures, up to 2 MB each."""
    out = []
    for root, _, files in os.walk(DATA):
        for name in sorted(files):
            with open(os.path.join(root, name), "rb") as f:
                buf = f.read()
            if b"GRIB" in buf[:4]:
                out += [m for _, m in grib_messages(buf) if len(m) <= 2 << 20]
    return out


def section_starts(msg):
    """Offsets of the section headers of a GRIB2 message (empty for GRIB1)."""
    starts, pos = [], 16
    if msg[7] != 2:
        return starts
    while pos + 5 <= len(msg) - 4:
        starts.append(pos)
        n = int.from_bytes(msg[pos:pos + 4], "big")
        if n < 5:
            break
        pos += n
    return starts


def mutate(msg, rng, pool):
    """One mutated copy of a message, framed so that its length and trailer are consistent."""
    b = bytearray(msg)
    for _ in range(rng.randint(1, 6)):
        op = rng.random()
        if op < 0.3 and len(b) > 20:                     # flip bits
            i = rng.randrange(8, len(b) - 4)
            b[i] ^= 1 << rng.randrange(8)
        elif op < 0.55:                                  # an interesting byte near a section header
            starts = section_starts(b) or [8]
            i = min(len(b) - 5, rng.choice(starts) + rng.randrange(0, 64))
            if i > 8:
                b[i] = rng.choice(INTERESTING)
        elif op < 0.7 and len(b) > 64:                   # cut a piece out
            i = rng.randrange(16, len(b) - 8)
            del b[i:i + rng.randint(1, min(4096, len(b) - i - 5))]
        elif op < 0.8:                                   # insert random bytes
            i = rng.randrange(16, max(17, len(b) - 4))
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        elif op < 0.9 and len(b) > 40:                   # a 4-byte length or count set to an extreme
            i = rng.randrange(16, len(b) - 8)
            b[i:i + 4] = rng.choice([b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff"])
        else:                                            # splice the tail of another message
            other = rng.choice(pool)
            i = rng.randrange(16, max(17, len(b) - 4))
            j = rng.randrange(16, max(17, len(other) - 4))
            b = b[:i] + other[j:]
    if len(b) < 24:
        b = bytearray(msg)
    return framed(bytes(b))


class Watch:
    """The server's identity: its start time, and a session that a crash would terminate."""

    def __init__(self):
        self.sentinel = psycopg2.connect("")
        self.sentinel.autocommit = True
        self.started = self.start_time(self.sentinel)

    @staticmethod
    def start_time(conn):
        with conn.cursor() as cur:
            cur.execute("SELECT pg_postmaster_start_time()")
            return cur.fetchone()[0]

    def alive(self):
        try:
            return self.start_time(self.sentinel) == self.started
        except psycopg2.Error:
            return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--dir", required=True, help="directory the HTTP server publishes")
    ap.add_argument("--url", required=True, help="HTTP URL of that directory")
    ap.add_argument("--out", required=True, help="where crashing inputs are kept")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--per-round", type=int, default=24)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    pool = seeds()
    os.makedirs(args.dir, exist_ok=True)
    os.makedirs(os.path.join(args.out, "decoder-crashes"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "server-restarts"), exist_ok=True)
    watch = Watch()
    conn = psycopg2.connect("")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET statement_timeout = '60s'")
    counts = collections.Counter()
    sqlstates = collections.Counter()
    internal = []
    deadline = time.monotonic() + args.seconds
    rnd = 0
    while time.monotonic() < deadline:
        rnd += 1
        msgs = [mutate(rng.choice(pool), rng, pool) for _ in range(args.per_round)]
        name = f"round-{args.seed}-{rnd}.grib2"
        path = os.path.join(args.dir, name)
        with open(path, "wb") as f:
            f.write(b"".join(msgs))
        os.chmod(path, 0o644)
        url = f"{args.url}/{name}"
        refs, off = [], 0
        for m in msgs:
            refs.append((url, off, len(m)))
            off += len(m)
        for k, (u, o, n) in enumerate(refs):
            counts["messages"] += 1
            counts["decodes"] += 1
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT cardinality(gik.decode(%s, %s, %s))", (u, o, n))
                sqlstates["ok"] += 1
            except psycopg2.Error as e:
                if e.pgcode is None:                      # the connection itself went
                    break
                sqlstates[e.pgcode] += 1
                detail = e.diag.message_detail or ""
                if "killed by signal" in detail or "decoder process" in detail:
                    counts["decoder crashes"] += 1
                    with open(os.path.join(args.out, "decoder-crashes", f"{name}@{o}"), "wb") as f:
                        f.write(msgs[k])
                if e.pgcode.startswith("XX") and e.pgcode != "XX001":
                    internal.append(f"{name}@{o}: {e.pgcode} {e.diag.message_primary}")
        counts["batches"] += 1
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM gik.decode_batch(%s::gik.ref[])",
                            ("{" + ",".join('"(%s,%d,%d)"' % r for r in refs) + "}",))
        except psycopg2.Error as e:
            if e.pgcode is not None and e.pgcode.startswith("XX") and e.pgcode != "XX001":
                internal.append(f"{name} batch: {e.pgcode} {e.diag.message_primary}")
        if not watch.alive():
            counts["server restarts"] += 1
            os.replace(path, os.path.join(args.out, "server-restarts", name))
            print(f"live-fuzz: the server restarted during round {rnd}; its file is kept", file=sys.stderr)
            break
        os.unlink(path)
    print("live-fuzz: outcomes by SQLSTATE: " + ", ".join(f"{k} {v}" for k, v in sorted(sqlstates.items())))
    for line in internal[:20]:
        print("live-fuzz: internal error: " + line)
    print(f"live-fuzz: {counts['messages']} messages, {counts['decodes']} decodes, {counts['batches']} batches, "
          f"{counts['decoder crashes']} decoder crashes, {counts['server restarts']} server restarts")
    return 1 if counts["server restarts"] or internal else 0


if __name__ == "__main__":
    sys.exit(main())
