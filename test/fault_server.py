#!/usr/bin/python3
"""Static file server with HTTP Range support and injectable faults, for tests.

Serves --root like nginx would (GET/HEAD, single and multiple byte ranges,
ETag, Last-Modified, keep-alive) on 127.0.0.1.  A path prefix selects a fault:

    /fault/<kind>[/<arg>]/<real path>

    500-then-ok/<n>   the first n requests get 500, then normal (any code works:
                      503-then-ok/<n>, 404-then-ok/<n>, ...); counted per path
    status/<code>     always that status (404, 403, 503, ...)
    slow/<seconds>    headers at once, then one body byte per second for that
                      many seconds, then the rest
    stall/<seconds>   headers at once, then nothing for that long, then the body
    hold-last/<s>     the body but its last byte at once (streamed from the file),
                      then nothing for that long, then the last byte
    slow-headers/<s>  wait that long before sending anything
    truncate/<bytes>  full Content-Length advertised, connection closed after
                      that many body bytes
    truncate-then-ok/<n>  the first n GETs closed after half the body (full
                      Content-Length advertised), then normal; counted per path
    ignore-range      200 with the whole file, even for a Range request
    wrong-range       206 for a range shifted by one byte (Content-Range says so)
    reset             connection closed abruptly (RST), no response
    redirect/<target> 302 to the URL-decoded target (absolute URL or path); a target
                      "b64:<base64url>" is decoded from base64url instead (pg_gik refuses
                      request URLs holding %2F, so an absolute URL cannot be percent-encoded)
    changing          every second request for the path sees other content
                      (bytes rotated, same size, another ETag/Last-Modified)

Control endpoints: GET /__stats (JSON request counters), GET or POST /__reset.

Usage: /usr/bin/python3 test/fault_server.py --root DIR --port N [--pidfile F] [-v]
(--port 0 picks a free port and prints it on stdout).  Standard library only.
"""

import argparse
import base64
import email.utils
import json
import os
import posixpath
import re
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROTATE = 17          # bytes of rotation for the "changing" fault
FAULT_RE = re.compile(r"^/fault/([^/]+)(/.*)$")
NEEDS_ARG = {"status", "slow", "stall", "hold-last", "slow-headers", "truncate", "truncate-then-ok", "redirect"}
NO_ARG = {"ignore-range", "wrong-range", "reset", "changing"}
THEN_OK_RE = re.compile(r"^(\d{3})-then-ok$")


class Stats:
    """Request counters shared by all handler threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with getattr(self, "lock", threading.Lock()):
            self.total = 0
            self.by_path = {}        # request path (with fault prefix), no query
            self.by_file = {}        # real file path
            self.by_status = {}
            self.by_method = {}
            self.fault_counts = {}   # (kind, arg, real path) -> requests seen
            self.log = []

    def count_request(self, method, path, real):
        with self.lock:
            self.total += 1
            self.by_path[path] = self.by_path.get(path, 0) + 1
            if real is not None:
                self.by_file[real] = self.by_file.get(real, 0) + 1
            self.by_method[method] = self.by_method.get(method, 0) + 1

    def bump_fault(self, key):
        """Return how many requests this fault key had before this one."""
        with self.lock:
            n = self.fault_counts.get(key, 0)
            self.fault_counts[key] = n + 1
            return n

    def record(self, method, path, rng, status, nbytes):
        with self.lock:
            self.by_status[str(status)] = self.by_status.get(str(status), 0) + 1
            self.log.append({"t": round(time.time(), 3), "method": method, "path": path,
                             "range": rng, "status": status, "bytes": nbytes})
            if len(self.log) > 2000:
                del self.log[:1000]

    def snapshot(self):
        with self.lock:
            return {"total": self.total, "paths": dict(self.by_path), "files": dict(self.by_file),
                    "status": dict(self.by_status), "methods": dict(self.by_method),
                    "faults": {"%s|%s|%s" % k: v for k, v in self.fault_counts.items()},
                    "requests": list(self.log)}


def parse_ranges(header, size):
    """Parse a Range header.  Returns None (ignore it), [] (unsatisfiable) or [(start, end)]."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(.+)", header or "")
    if not m:
        return None
    out = []
    for part in m.group(1).split(","):
        part = part.strip()
        pm = re.fullmatch(r"(\d*)\s*-\s*(\d*)", part)
        if not pm or (pm.group(1) == "" and pm.group(2) == ""):
            return None                         # syntactically invalid: serve the whole file
        if pm.group(1) == "":                   # suffix range: last N bytes
            n = int(pm.group(2))
            if n == 0:
                continue
            out.append((max(0, size - n), size - 1))
        else:
            a = int(pm.group(1))
            b = int(pm.group(2)) if pm.group(2) else None
            if b is not None and b < a:
                return None                     # invalid: serve the whole file, like nginx
            if a >= size:
                continue                        # unsatisfiable part
            if b is None:
                b = size - 1
            out.append((a, min(b, size - 1)))
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fault_server/1.0"

    # -- logging ------------------------------------------------------------
    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    # -- helpers ------------------------------------------------------------
    def send_simple(self, status, body=b"", headers=None, head=False):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        if "Content-Type" not in (headers or {}):
            self.send_header("Content-Type", "text/plain")
        self.end_headers()
        if not head and body:
            self.wfile.write(body)
        return len(body)

    def resolve(self, path):
        """Map a URL path onto a file under root, or None."""
        path = posixpath.normpath(urllib.parse.unquote(path))
        parts = [p for p in path.split("/") if p not in ("", ".", "..")]
        full = os.path.join(self.server.root, *parts)
        if not os.path.realpath(full).startswith(self.server.root_real):
            return None
        return full if os.path.isfile(full) else None

    def do_GET(self):
        self.handle_any(head=False)

    def do_HEAD(self):
        self.handle_any(head=True)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = urllib.parse.urlsplit(self.path).path
        if path == "/__reset":
            self.server.stats.reset()
            self.send_simple(200, "reset\n")
        else:
            self.send_simple(405, "method not allowed\n", {"Allow": "GET, HEAD"})

    # -- main logic ---------------------------------------------------------
    def handle_any(self, head):
        method = "HEAD" if head else "GET"
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        stats = self.server.stats
        if path == "/__stats":
            body = json.dumps(stats.snapshot(), indent=1).encode() + b"\n"
            self.send_simple(200, body, {"Content-Type": "application/json", "Cache-Control": "no-store"}, head)
            return
        if path == "/__reset":
            stats.reset()
            self.send_simple(200, "reset\n", head=head)
            return

        kind = arg = None
        real = path
        m = FAULT_RE.match(path)
        if m:
            kind, rest = m.group(1), m.group(2)
            if kind in NEEDS_ARG or THEN_OK_RE.match(kind):
                # redirect's target is URL-encoded and needs no real path after it
                am = re.match(r"^/([^/]+)(/.*)?$" if kind == "redirect" else r"^/([^/]+)(/.*)$", rest)
                if not am:
                    stats.count_request(method, path, None)
                    n = self.send_simple(400, "fault %s needs an argument\n" % kind, head=head)
                    stats.record(method, path, None, 400, n)
                    return
                arg, real = am.group(1), am.group(2) or "/"
            elif kind in NO_ARG:
                real = rest
            else:
                stats.count_request(method, path, None)
                n = self.send_simple(400, "unknown fault kind %s\n" % kind, head=head)
                stats.record(method, path, None, 400, n)
                return
        stats.count_request(method, path, real)
        rng_header = self.headers.get("Range")

        # Faults that do not need the file.
        if kind == "reset":
            stats.record(method, path, rng_header, 0, 0)
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            except OSError:
                pass
            return
        if kind == "status":
            code = int(arg)
            n = self.send_simple(code, "injected status %d\n" % code, head=head)
            stats.record(method, path, rng_header, code, n)
            return
        if kind and THEN_OK_RE.match(kind):
            code = int(THEN_OK_RE.match(kind).group(1))
            seen = stats.bump_fault((kind, arg, real))
            if seen < int(arg):
                n = self.send_simple(code, "injected %d (%d of %s)\n" % (code, seen + 1, arg),
                                     {"Retry-After": "0"} if code == 503 else None, head)
                stats.record(method, path, rng_header, code, n)
                return
        if kind == "redirect":
            if arg.startswith("b64:"):
                target = base64.urlsafe_b64decode(arg[4:] + "=" * (-len(arg[4:]) % 4)).decode()
            else:
                target = urllib.parse.unquote(arg)
            n = self.send_simple(302, "redirect\n", {"Location": target}, head)
            stats.record(method, path, rng_header, 302, n)
            return
        if kind == "slow-headers":
            time.sleep(float(arg))

        full = self.resolve(real)
        if full is None:
            n = self.send_simple(404, "not found\n", head=head)
            stats.record(method, path, rng_header, 404, n)
            return
        st = os.stat(full)
        size = st.st_size
        mtime = int(st.st_mtime)
        etag = '"%x-%x"' % (mtime, size)
        variant = 0
        if kind == "changing":
            variant = stats.bump_fault((kind, "", real)) % 2
            if variant:
                etag = '"%x-%x-v2"' % (mtime, size)
                mtime += 3600
        last_modified = email.utils.formatdate(mtime, usegmt=True)

        def read(a, b):
            """Bytes a..b inclusive of the (possibly altered) content."""
            with open(full, "rb") as f:
                if not variant:
                    f.seek(a)
                    return f.read(b - a + 1)
                data = f.read()
            data = data[-ROTATE:] + data[:-ROTATE] if len(data) > ROTATE else data[::-1]
            return data[a:b + 1]

        inm = self.headers.get("If-None-Match")
        if inm and etag in [t.strip() for t in inm.split(",")]:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", last_modified)
            self.send_header("Content-Length", "0")
            self.end_headers()
            stats.record(method, path, rng_header, 304, 0)
            return

        ranges = None
        if rng_header and kind != "ignore-range":
            if_range = self.headers.get("If-Range")
            if not if_range or if_range.strip() in (etag, last_modified):
                ranges = parse_ranges(rng_header, size)
        common = {"ETag": etag, "Last-Modified": last_modified, "Accept-Ranges": "bytes"}

        if ranges is not None and not ranges:
            n = self.send_simple(416, "range not satisfiable\n", dict(common, **{"Content-Range": "bytes */%d" % size}),
                                 head)
            stats.record(method, path, rng_header, 416, n)
            return

        if ranges is None:
            status, a, b = 200, 0, size - 1
            headers = dict(common, **{"Content-Type": "application/octet-stream"})
            parts = None
        elif len(ranges) == 1:
            a, b = ranges[0]
            if kind == "wrong-range":
                shift = 1 if b + 1 < size else -1
                if a + shift < 0 or size <= 1:
                    shift = 0
                a, b = a + shift, b + shift
            status = 206
            headers = dict(common, **{"Content-Type": "application/octet-stream",
                                      "Content-Range": "bytes %d-%d/%d" % (a, b, size)})
            parts = None
        else:
            status = 206
            boundary = "fault_server_%x" % (hash(path) & 0xffffffff)
            headers = dict(common, **{"Content-Type": "multipart/byteranges; boundary=%s" % boundary})
            parts = []
            for (ra, rb) in ranges:
                parts.append(("\r\n--%s\r\nContent-Type: application/octet-stream\r\n"
                              "Content-Range: bytes %d-%d/%d\r\n\r\n" % (boundary, ra, rb, size)).encode())
                parts.append((ra, rb))
            parts.append(("\r\n--%s--\r\n" % boundary).encode())

        if parts is None:
            length = b - a + 1 if size else 0
        else:
            length = sum(len(p) if isinstance(p, bytes) else p[1] - p[0] + 1 for p in parts)

        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if head:
            stats.record(method, path, rng_header, status, 0)
            return

        if kind == "hold-last" and parts is None and size:
            sent = 0
            try:
                with open(full, "rb") as f:
                    f.seek(a)
                    left = b - a       # all but the last byte
                    while left > 0:
                        chunk = f.read(min(left, 1 << 20))
                        self.wfile.write(chunk)
                        left -= len(chunk)
                        sent += len(chunk)
                    self.wfile.flush()
                    time.sleep(float(arg))
                    self.wfile.write(f.read(1))
                    sent += 1
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            stats.record(method, path, rng_header, status, sent)
            return
        if parts is None:
            body = read(a, b) if size else b""
        else:
            body = b"".join(p if isinstance(p, bytes) else read(p[0], p[1]) for p in parts)

        limit = None
        if kind == "truncate":
            limit = int(arg)
        elif kind == "truncate-then-ok" and stats.bump_fault((kind, arg, real)) < int(arg):
            limit = len(body) // 2
        sent = 0
        try:
            if limit is not None:
                self.wfile.write(body[:limit])
                sent = min(limit, len(body))
                self.wfile.flush()
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            elif kind == "slow":
                deadline = time.time() + float(arg)
                while sent < len(body) and time.time() < deadline:
                    self.wfile.write(body[sent:sent + 1])
                    self.wfile.flush()
                    sent += 1
                    time.sleep(min(1.0, max(0.0, deadline - time.time())))
                self.wfile.write(body[sent:])
                sent = len(body)
            elif kind == "stall":
                self.wfile.flush()
                time.sleep(float(arg))
                self.wfile.write(body)
                sent = len(body)
            else:
                self.wfile.write(body)
                sent = len(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        stats.record(method, path, rng_header, status, sent)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        if self.verbose:
            super().handle_error(request, client_address)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help="directory to serve")
    p.add_argument("--port", type=int, required=True, help="TCP port (0: pick a free one and print it)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--pidfile", help="write the process id here once listening; removed on exit")
    p.add_argument("-v", "--verbose", action="store_true", help="log requests and errors to stderr")
    args = p.parse_args(argv)

    srv = Server((args.host, args.port), Handler)
    srv.root = os.path.abspath(args.root)
    srv.root_real = os.path.realpath(args.root)
    srv.verbose = args.verbose
    srv.stats = Stats()
    port = srv.server_address[1]
    if args.port == 0:
        sys.stdout.write("%d\n" % port)
        sys.stdout.flush()
    if args.pidfile:
        tmp = args.pidfile + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.replace(tmp, args.pidfile)

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.verbose:
        sys.stderr.write("fault_server: serving %s on http://%s:%d/\n" % (srv.root, args.host, port))
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
        if args.pidfile:
            try:
                os.unlink(args.pidfile)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
