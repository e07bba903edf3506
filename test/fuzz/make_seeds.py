#!/usr/bin/python3
"""Seed corpora of the fuzz harnesses, and the GRIB splitter run.sh uses.

  /usr/bin/python3 test/fuzz/make_seeds.py seeds       rewrite test/fuzz/corpus/* (needs python3-eccodes, numpy
                                                      and, for the generated-mirror seeds, test/support/gen_mirror.py)
  /usr/bin/python3 test/fuzz/make_seeds.py split OUT FILE...   write every GRIB message of FILE... into OUT
  /usr/bin/python3 test/fuzz/make_seeds.py frame IN OUT        the GRIB message fuzz_decode makes of input IN
                                                      (for grib_dump, gik.decode(file://...), bug reports)
The committed corpus is the output of "seeds"; it needs rerunning only to change the seeds.
"""
import glob
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(TOP, "test", "data")
CORPUS = os.path.join(HERE, "corpus")


def grib_messages(buf):
    """(offset, bytes) of every GRIB1/GRIB2 message in buf, found as gik_grib_next does."""
    pos = 0
    while True:
        at = buf.find(b"GRIB", pos)
        if at < 0 or at + 16 > len(buf):
            return
        ed = buf[at + 7]
        total = struct.unpack(">Q", buf[at + 8:at + 16])[0] if ed == 2 else int.from_bytes(buf[at + 4:at + 7], "big")
        if ed in (1, 2) and 16 <= total <= len(buf) - at and buf[at + total - 4:at + total] == b"7777":
            yield at, buf[at:at + total]
            pos = at + total
        else:
            pos = at + 1


def split(out, files):
    os.makedirs(out, exist_ok=True)
    for f in files:
        with open(f, "rb") as fh:
            buf = fh.read()
        for at, msg in grib_messages(buf):
            with open(os.path.join(out, "%s@%d" % (os.path.basename(f), at)), "wb") as fh:
                fh.write(msg)


def framed(data):
    """fuzz_decode.c's framing of an input: length fields and "7777" fitted to it, GRIB2 octets 5-6 cleared."""
    b = bytearray(data)
    if b[7] == 2:
        b[4:6] = b"\0\0"
        b[8:16] = len(b).to_bytes(8, "big")
    else:
        b[4:7] = len(b).to_bytes(3, "big")
    b[-4:] = b"7777"
    return bytes(b)


def frame(src, dst):
    """Write the GRIB message fuzz_decode makes of input src."""
    with open(src, "rb") as fh:
        data = fh.read()
    with open(dst, "wb") as fh:
        fh.write(framed(data))


def put(harness, name, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as fh:
        fh.write(data)


def chunks(lines, size, limit):
    """Up to limit pieces of size lines, spread over the file."""
    step = max(size, len(lines) // max(limit, 1))
    return ["".join(lines[i:i + size]) for i in range(0, len(lines), step)][:limit]


def idx_seeds():
    for f in sorted(glob.glob(os.path.join(DATA, "**", "*.idx"), recursive=True)):
        with open(f) as fh:
            lines = fh.readlines()
        for k, piece in enumerate(chunks(lines, 24, 3)):
            put("idx", "%s.%d" % (os.path.basename(f), k), piece)
    put("idx", "submessages", "1:0:d=2025100100:UGRD:10 m above ground:6 hour fcst:\n"
        "1.1:0:d=2025100100:UGRD:10 m above ground:6 hour fcst:\n1.2:0:d=2025100100:VGRD:10 m above ground:6 hour fcst:\n"
        "2:4000:d=2025100100:APCP:surface:0-6 hour acc fcst:ENS=+3\n")
    put("idx", "windows-crlf", "1:0:d=2025080100:TMP:2 m above ground:anl:\r\n\r\n"
        "2:100:d=2025080100:TMAX:2 m above ground:0-1 day max fcst:ENS=low-res ctl\r\n"
        "3:200:d=2025080100:APCP:surface:0-0 day acc fcst:ens mean\r\n"
        "4:300:d=2025080100:VIS:surface:90 min fcst:ens spread\r\n"
        "5:2147483648:d=2025080100:PRES:surface:12-18 hour ave fcst:ENS=-2\r\n"
        "6:2147483649:d=2025080100:var discipline=0 center=7 local_table=1 parmcat=16 parm=201:"
        "entire atmosphere (considered as a single layer):3600 sec fcst:wt ens mean:extra:fields\r\n")


def ecindex_seeds():
    f = os.path.join(DATA, "dynamical", "aifs_single_20250301_00z_0h.index")
    with open(f) as fh:
        lines = fh.readlines()
    for k, piece in enumerate(chunks(lines, 6, 4)):
        put("ecindex", "aifs.%d" % k, piece)
    mirror = os.environ.get("GIK_SEED_MIRROR")
    if mirror:
        for f in sorted(glob.glob(os.path.join(mirror, "ecmwf-forecasts", "**", "*.index"), recursive=True)):
            with open(f) as fh:
                put("ecindex", os.path.basename(f), "".join(fh.readlines()[:6]))
    put("ecindex", "members-and-steps",
        '{"param": "tp", "_length": 10, "_offset": 20, "type": "em", "step": "0-24", "levtype": "sfc"}\n\n'
        '{"_offset": 0, "_length": 20, "param": "t", "levtype": "pl", "levelist": "500", "type": "pf", "number": 7, "step": 6}\n'
        '{"_offset": 30, "_length": 5, "param": "msl", "type": "es", "stream": "enfo", "class": "od", "expver": "0001", "domain": "g", "date": "20250301", "time": "0000"}\n'
        '{"_offset": 30, "_length": 5, "param": "2t", "type": "fc", "number": "0", "step": "360"}\n')


def gen_messages(tmp):
    """Small GRIB messages written with ecCodes: each packing on a 24x13 grid, other grid types, GRIB1."""
    import eccodes
    import numpy as np

    rng = np.random.default_rng(1)
    out = []

    def make(sample, name, packing=None, grid=True, bitmap=False, edit=None):
        h = eccodes.codes_grib_new_from_samples(sample)
        if grid:
            for k, v in (("Ni", 24), ("Nj", 13), ("latitudeOfFirstGridPointInDegrees", 90.0),
                         ("latitudeOfLastGridPointInDegrees", -90.0), ("longitudeOfFirstGridPointInDegrees", 0.0),
                         ("longitudeOfLastGridPointInDegrees", 345.0), ("iDirectionIncrementInDegrees", 15.0),
                         ("jDirectionIncrementInDegrees", 15.0)):
                eccodes.codes_set(h, k, v)
            if eccodes.codes_get(h, "editionNumber") == 2:
                eccodes.codes_set(h, "numberOfDataPoints", 24 * 13)
        if edit:
            edit(h)
        n = 24 * 13 if grid else eccodes.codes_get_size(h, "values")
        vals = 280 + 20 * rng.standard_normal(n)
        if bitmap:
            eccodes.codes_set(h, "bitmapPresent", 1)
            vals[::5] = 9999
        eccodes.codes_set_values(h, vals)
        if packing:
            eccodes.codes_set(h, "packingType", packing)
            eccodes.codes_set_values(h, vals)
        out.append((name, eccodes.codes_get_message(h)))
        eccodes.codes_release(h)

    for p in ("grid_simple", "grid_complex", "grid_complex_spatial_differencing", "grid_jpeg", "grid_ccsds",
              "grid_ieee"):
        make("regular_ll_sfc_grib2", "g2_%s" % p, p)
    make("regular_ll_sfc_grib2", "g2_bitmap_ccsds", "grid_ccsds", bitmap=True)
    make("regular_ll_sfc_grib2", "g2_bitmap_jpeg", "grid_jpeg", bitmap=True)
    make("regular_ll_sfc_grib2", "g2_scan_ineg_jpos", "grid_simple",
         edit=lambda h: [eccodes.codes_set(h, "iScansNegatively", 1), eccodes.codes_set(h, "jScansPositively", 1)])
    make("regular_ll_sfc_grib2", "g2_ecmwf_lon", "grid_simple",
         edit=lambda h: [eccodes.codes_set(h, "longitudeOfFirstGridPointInDegrees", 180.0),
                         eccodes.codes_set(h, "longitudeOfLastGridPointInDegrees", 165.0)])
    make("regular_ll_sfc_grib1", "g1_simple", "grid_simple")
    make("regular_ll_sfc_grib1", "g1_bitmap", "grid_simple", bitmap=True)
    make("regular_ll_sfc_grib1", "g1_second_order", "grid_second_order")
    make("rotated_ll_sfc_grib2", "g2_rotated_ll")
    make("polar_stereographic_sfc_grib2", "g2_polar_stereographic", grid=False)
    make("reduced_gg_pl_32_grib2", "g2_reduced_gg_32", grid=False)
    make("reduced_gg_sfc_jpeg_grib2", "g2_reduced_gg_jpeg", grid=False)
    make("sh_sfc_grib2", "g2_spectral", grid=False)
    return out


def grib_seeds():
    fixtures = []
    for f in ("grib-rs/20240101000000-0h-oper-fc.grib2.0-10", "generated/lambert.grib2",
              "generated/scan_ineg_jpos.grib2", "gribberish/gfswave.t18z.atlocn.0p16.f001.grib2",
              "kerchunk/gec00_20250101_00_soilw.grib"):
        with open(os.path.join(DATA, f), "rb") as fh:
            buf = fh.read()
        for at, msg in grib_messages(buf):
            fixtures.append(("%s@%d" % (os.path.basename(f), at), msg))
    small = [(n, m) for n, m in fixtures if len(m) <= 100000]
    # GFS-Wave: a few of its 19 jpeg messages are enough, the smallest ones.
    wave = sorted([x for x in small if x[0].startswith("gfswave")], key=lambda x: len(x[1]))[:4]
    small = [x for x in small if not x[0].startswith("gfswave")] + wave
    mirror = os.environ.get("GIK_SEED_MIRROR")
    if mirror:
        for pat in ("ecmwf-forecasts/20260601/**/*-6h-enfo-ef.grib2", "noaa-gefs-pds/**/gep01.t00z.pgrb2s.0p25.f006"):
            for f in sorted(glob.glob(os.path.join(mirror, pat), recursive=True)):
                with open(f, "rb") as fh:
                    msgs = sorted(grib_messages(fh.read()), key=lambda x: len(x[1]))
                small += [("mirror-%s@%d" % (os.path.basename(f), at), m) for at, m in msgs[:2]]
    generated = gen_messages(None)
    for name, msg in small + generated:
        put("decode", name, msg)
    # framing: single small messages, several in a row with junk between, truncated and damaged copies
    tiny = [m for _, m in small + generated if len(m) < 2000]
    for i, m in enumerate(tiny[:6]):
        put("grib_frame", "msg%d" % i, m)
    put("grib_frame", "several", b"junk GRIB" + tiny[0] + b"\0" * 3 + tiny[1] + b"GRI" + tiny[2] + b"7777")
    put("grib_frame", "truncated", tiny[0][:-10])
    put("grib_frame", "grib1-large-flag", b"GRIB" + bytes([0x80, 0x00, 0x02, 1]) + bytes([0, 0, 28]) + b"\0" * 4 +
        bytes([0xc0]) + b"\0" * 20 + bytes([0, 0, 8]) + b"\0" * 5 + bytes([0, 0, 50]) + b"\0" * 40 + b"7777")


def grid_seed(flags, ni, nj, lat1, lon1, lat2, lon2, di, dj, box=None, nsel=0, conv_name=b""):
    """Bytes in fuzz_grid.c's reader layout (values on its k * step lattice)."""
    def dim(v):
        return struct.pack("<BH", 0, v)

    def num(v, step):
        return struct.pack("<Bi", 0, int(round(v / step)))
    b = struct.pack("<B", flags) + dim(ni) + dim(nj)
    b += num(lat1, 0.125) + num(lon1, 0.125) + num(lat2, 0.125) + num(lon2, 0.125)
    b += num(di, 1 / 64) + num(dj, 1 / 64)
    box = box or (0, 0, 0, 0)
    b += b"".join(num(v, 0.125) for v in box)
    return b + struct.pack("<I", nsel) + conv_name


def grid_seeds():
    box_ea = (21, -12, 53, 23)
    seeds = {
        "gfs-1p0": grid_seed(0x00, 360, 181, 90, 0, -90, 359, 1, 1),
        "gfs-1p0-180-box": grid_seed(0x28, 360, 181, 90, 0, -90, 359, 1, 1, box_ea),
        "ecmwf-1p0-360-box": grid_seed(0x30 | 0x10, 360, 181, 90, 180, -90, 179, 1, 1, (170, -10, -170, 10), 77),
        "gefs-0p5-box-180": grid_seed(0x28, 720, 361, 90, 0, -90, 359.5, 0.5, 0.5, (-20, -40, 55, 40)),
        "regional-scan-ineg-jpos": grid_seed(0x23, 80, 40, -10, 40, 30, 0.5, 0.5, 1, (5, 0, 20, 20), 0, b"-180..180"),
        "regional-jcons": grid_seed(0x04, 30, 20, 60, -30, 41, -1, 1, 1),
        "seam-column": grid_seed(0x08, 361, 181, 90, 0, -90, 360, 1, 1),
        "lambert": grid_seed(0xc0, 10, 10, 0, 0, 0, 0, 1, 1, nsel=1, conv_name=b" Source "),
    }
    for name, data in seeds.items():
        put("grid", name, data)


def raster_seeds():
    for name, (nb, ni, nj) in {"one-band": (1, 4, 3), "three-bands": (3, 2, 2), "no-band": (0, 5, 5)}.items():
        b = struct.pack("<BI", nb, 4326) + struct.pack("<HH", ni, nj)
        b += b"".join(struct.pack("<Bi", 0, int(v)) for v in (4, 4, 21 * 4, 23 * 4))
        b += struct.pack("<%df" % (nb * ni * nj), *[float(i) for i in range(nb * ni * nj)])
        put("raster_wkb", name, b)


def url_seeds():
    seeds = {
        "s3-aws": "s3://noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25/gec00.t00z.pgrb2s.0p25.f006\n\n"
                  "https://storage.googleapis.com\ns3://noaa-gefs-pds/,s3://ecmwf-forecasts/\n127.0.0.1\n127.0.0.1\n",
        "s3-endpoint": "s3://ecmwf-forecasts/20251001/00z/ifs/0p25/enfo/x y#z?.grib2\nhttp://127.0.0.1:18765/\n\n"
                       " s3://ecmwf-forecasts/ , http://127.0.0.1:18766/,,gs://b\n10.1.2.3\n10.0.0.0/8, fd00::/8\n",
        "gs": "gs://gcp-public-data-arco-era5/a/%2e%2e/b\n\nhttps://storage.googleapis.com/\ngs://gcp-public-data-arco-era5\n"
              "::ffff:169.254.169.254\n::1,169.254.0.0/16\n",
        "http": "HTTPS://Example.COM:8443/path/./x?q=../y#frag\n\n\nhttps://example.com/path,https://example.com:8443/\n"
                "fe80::1%eth0\n64:ff9b::/96\n",
        "file": "file://localhost/var/lib/data.grib2\n\n\n/var/lib/,file:///tmp\n100.64.0.1\n0.0.0.0/0\n",
    }
    for name, text in seeds.items():
        put("url", name, text)


def seeds():
    if os.path.isdir(CORPUS):
        shutil.rmtree(CORPUS)
    tmp = None
    if not os.environ.get("GIK_SEED_MIRROR"):
        tmp = tempfile.mkdtemp()
        gen = [sys.executable, os.path.join(TOP, "test", "support", "gen_mirror.py"), "--out", tmp, "--jobs", "1"]
        subprocess.run(gen + ["ecmwf", "--date", "20260601", "--cycle", "12", "--members", "0-1", "--steps", "6",
                              "--grid", "1p0", "--params", "tp", "--shuffle-index"], check=True, capture_output=True)
        subprocess.run(gen + ["gefs", "--date", "20251001", "--members", "1", "--steps", "6", "--vars", "full",
                              "--grid", "1p0", "--rain-grid", "1p0"], check=True, capture_output=True)
        os.environ["GIK_SEED_MIRROR"] = tmp
    idx_seeds()
    ecindex_seeds()
    grib_seeds()
    grid_seeds()
    raster_seeds()
    url_seeds()
    if tmp:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "seeds":
        seeds()
    elif len(sys.argv) == 4 and sys.argv[1] == "frame":
        frame(sys.argv[2], sys.argv[3])
    elif len(sys.argv) >= 3 and sys.argv[1] == "split":
        split(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)
