#!/usr/bin/python3
"""Generate a realistic local mirror of NOAA GEFS and ECMWF ENS open data.

The output tree mimics the S3 buckets `noaa-gefs-pds` and `ecmwf-forecasts`:
real GRIB2 messages written with ecCodes, plus `.idx` (wgrib2 inventory) and
`.index` (ECMWF JSON lines) files in the exact upstream formats.  Rain is
either a plausible synthetic field or an exact, known-answer scenario; a truth
file next to the mirror records how every value was made, and `--verify`
re-reads the mirror and checks it against that truth.  `--rain-model realistic`
makes rain whose packed messages have the sizes of real ones; `--self-check`
checks those sizes against real ones.

Runs with the project venv's Python (tools/venv.sh; the test suite's) or Debian's /usr/bin/python3
(python3-eccodes, python3-numpy): both write byte-identical mirrors.
See tools/README-gen.md for the full documentation.
"""

import argparse
import datetime as dt
import json
import math
import multiprocessing as mp
import os
import re
import shutil
import struct
import subprocess
import sys
import time

import numpy as np

try:
    import eccodes as ec
except ImportError:  # pragma: no cover - depends on the interpreter
    sys.stderr.write("gen_mirror.py: the eccodes module is missing; run it with the venv's python (tools/venv.sh)\n")
    sys.exit(2)

GENERATOR_VERSION = 1

# ECMWF moved the ENS control from enfo/cf to oper/fc with IFS cycle 50r1.
ECMWF_CONTROL_CUTOVER = dt.datetime(2026, 5, 12, 6)

GRIDS = {"0p25": 0.25, "0p5": 0.5, "1p0": 1.0, "2p5": 2.5}

HORIZON_H = 384          # realistic rain is defined on [0, HORIZON_H]
SLOT_H = 3               # rain is defined per 3-hour slot
EAST_AFRICA_BOX = [21.0, -12.0, 53.0, 23.0]   # lon_min, lat_min, lon_max, lat_max

# --------------------------------------------------------------------------
# Variable tables
# --------------------------------------------------------------------------

# wgrib2 level string -> (typeOfFirstFixedSurface, scaleFactor1, scaledValue1,
#                         typeOfSecondFixedSurface, scaleFactor2, scaledValue2)
LEVELS = {
    "surface": (1, 0, 0, 255, None, None),
    "mean sea level": (101, 0, 0, 255, None, None),
    "2 m above ground": (103, 0, 2, 255, None, None),
    "10 m above ground": (103, 0, 10, 255, None, None),
    "0-0.1 m below ground": (106, 2, 0, 106, 2, 10),
    "entire atmosphere (considered as a single layer)": (200, 0, 0, 255, None, None),
    "entire atmosphere": (10, 0, 0, 255, None, None),
    "cloud ceiling": (215, 0, 0, 255, None, None),
    "top of atmosphere": (8, 0, 0, 255, None, None),
    "3000-0 m above ground": (103, 0, 3000, 103, 0, 0),
    "180-0 mb above ground": (108, 0, 18000, 108, 0, 0),
}

STAT_CODES = {"acc": 1, "ave": 0, "max": 2, "min": 3}

# GEFS variables: key -> (VAR, level, discipline, category, number, stat, D,
#                         (value at equator, value at pole, wave amplitude, lo, hi))
GEFS_VARS = {
    "VIS": ("VIS", "surface", 0, 19, 0, None, 0, (24000, 15000, 9000, 50, 24100)),
    "GUST": ("GUST", "surface", 0, 2, 22, None, 2, (6, 11, 6, 0.1, 45)),
    "MSLET": ("MSLET", "mean sea level", 0, 3, 192, None, 0, (101100, 101600, 1500, 95000, 106000)),
    "PRES": ("PRES", "surface", 0, 3, 0, None, 0, (98500, 92000, 5000, 50000, 105000)),
    "HGTsfc": ("HGT", "surface", 0, 3, 5, None, 1, (300, 1200, 900, -50, 5500)),
    "TSOIL": ("TSOIL", "0-0.1 m below ground", 2, 0, 2, None, 2, (299, 250, 6, 220, 330)),
    "SOILW": ("SOILW", "0-0.1 m below ground", 2, 0, 192, None, 3, (0.25, 0.35, 0.12, 0.02, 1.0)),
    "WEASD": ("WEASD", "surface", 0, 1, 13, None, 2, (-40, 60, 30, 0, 400)),
    "SNOD": ("SNOD", "surface", 0, 1, 11, None, 3, (-0.4, 0.5, 0.3, 0, 4)),
    "ICETK": ("ICETK", "surface", 10, 2, 1, None, 2, (-1.5, 2.0, 0.8, 0, 5)),
    "TMP": ("TMP", "2 m above ground", 0, 0, 0, None, 2, (300, 245, 8, 200, 330)),
    "DPT": ("DPT", "2 m above ground", 0, 0, 6, None, 2, (293, 240, 7, 190, 310)),
    "RH": ("RH", "2 m above ground", 0, 1, 1, None, 1, (80, 75, 25, 1, 100)),
    "TMAX": ("TMAX", "2 m above ground", 0, 0, 4, "max", 2, (302, 247, 8, 200, 332)),
    "TMIN": ("TMIN", "2 m above ground", 0, 0, 5, "min", 2, (298, 243, 8, 198, 328)),
    "UGRD": ("UGRD", "10 m above ground", 0, 2, 2, None, 2, (-4, 6, 8, -40, 40)),
    "VGRD": ("VGRD", "10 m above ground", 0, 2, 3, None, 2, (0, 0, 6, -40, 40)),
    "CPOFP": ("CPOFP", "surface", 0, 1, 39, None, 1, (-50, 60, 60, -50, 100)),
    "APCP": ("APCP", "surface", 0, 1, 8, "acc", 2, None),
    "CSNOW": ("CSNOW", "surface", 0, 1, 195, "ave", 2, (-1, 0.6, 0.6, 0, 1)),
    "CICEP": ("CICEP", "surface", 0, 1, 194, "ave", 2, (-1, -0.2, 0.4, 0, 1)),
    "CFRZR": ("CFRZR", "surface", 0, 1, 193, "ave", 2, (-1, -0.1, 0.4, 0, 1)),
    "CRAIN": ("CRAIN", "surface", 0, 1, 192, "ave", 2, (0.2, 0.0, 0.6, 0, 1)),
    "LHTFL": ("LHTFL", "surface", 0, 0, 10, "ave", 1, (110, 10, 80, -50, 600)),
    "SHTFL": ("SHTFL", "surface", 0, 0, 11, "ave", 1, (20, -10, 60, -200, 500)),
    "CAPE": ("CAPE", "surface", 0, 7, 6, None, 0, (800, 0, 900, 0, 6000)),
    "CIN": ("CIN", "surface", 0, 7, 7, None, 0, (-40, 0, 60, -800, 0)),
    "PWAT": ("PWAT", "entire atmosphere (considered as a single layer)", 0, 1, 3, None, 1, (45, 5, 15, 0.5, 80)),
    "TCDC": ("TCDC", "entire atmosphere", 0, 6, 1, "ave", 0, (50, 75, 60, 0, 100)),
    "HGTceil": ("HGT", "cloud ceiling", 0, 3, 5, None, 0, (12000, 6000, 15000, 20, 20000)),
    "DSWRF": ("DSWRF", "surface", 0, 4, 192, "ave", 0, (280, 40, 200, 0, 1100)),
    "DLWRF": ("DLWRF", "surface", 0, 5, 192, "ave", 0, (400, 220, 40, 80, 520)),
    "USWRF": ("USWRF", "surface", 0, 4, 193, "ave", 0, (40, 60, 40, 0, 700)),
    "ULWRF": ("ULWRF", "surface", 0, 5, 193, "ave", 0, (460, 230, 40, 100, 650)),
    "ULWRFtoa": ("ULWRF", "top of atmosphere", 0, 5, 193, "ave", 0, (260, 190, 50, 90, 350)),
    "HLCY": ("HLCY", "3000-0 m above ground", 0, 7, 8, None, 0, (20, 60, 120, -600, 800)),
    "CAPE180": ("CAPE", "180-0 mb above ground", 0, 7, 6, None, 0, (900, 0, 1000, 0, 7000)),
    "CIN180": ("CIN", "180-0 mb above ground", 0, 7, 7, None, 0, (-50, 0, 60, -900, 0)),
    "PRMSL": ("PRMSL", "mean sea level", 0, 3, 1, None, 0, (101100, 101600, 1500, 95000, 106000)),
}

# Inventory of a GEFS member pgrb2s 0.25 file for f003..f240, as in the real
# gep01.t00z.pgrb2s.0p25.f015.idx (38 messages).
GEFS_FULL_FCST = ["VIS", "GUST", "MSLET", "PRES", "TSOIL", "SOILW", "WEASD", "SNOD", "ICETK",
                  "TMP", "DPT", "RH", "TMAX", "TMIN", "UGRD", "VGRD", "CPOFP", "APCP", "CSNOW",
                  "CICEP", "CFRZR", "CRAIN", "LHTFL", "SHTFL", "CAPE", "CIN", "PWAT", "TCDC",
                  "HGTceil", "DSWRF", "DLWRF", "USWRF", "ULWRF", "ULWRFtoa", "HLCY", "CAPE180",
                  "CIN180", "PRMSL"]
# f000: the instantaneous fields of the real geavg f000 inventory (26 lines
# minus its two `0-0 day max/min fcst` lines), all with `anl`.
GEFS_FULL_F000 = ["VIS", "GUST", "MSLET", "PRES", "HGTsfc", "TSOIL", "SOILW", "WEASD", "SNOD",
                  "ICETK", "TMP", "DPT", "RH", "UGRD", "VGRD", "CPOFP", "CAPE", "CIN", "PWAT",
                  "HGTceil", "HLCY", "CAPE180", "CIN180", "PRMSL"]
GEFS_APCP_FCST = ["TMP", "APCP", "PRMSL"]
GEFS_APCP_F000 = ["TMP", "PRMSL"]

# ECMWF params: shortName -> (paramId, bitsPerValue, (equator, pole, amplitude, lo, hi))
ECMWF_PARAMS = {
    "tp": (228, 16, None),
    "2t": (167, 16, (300, 245, 8, 200, 330)),
    "msl": (151, 16, (101100, 101600, 1500, 95000, 106000)),
    "10u": (165, 16, (-4, 6, 8, -40, 40)),
    "10v": (166, 16, (0, 0, 6, -40, 40)),
    "sp": (134, 16, (98500, 92000, 5000, 50000, 105000)),
    "2d": (168, 16, (293, 240, 7, 190, 310)),
    "tcwv": (137, 16, (45, 5, 15, 0.5, 80)),
}
ECMWF_DEFAULT_PARAMS = ["tp", "2t", "msl", "10u", "10v"]


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def parse_int_list(spec, what):
    """Parse "0-30", "0,3,5", "0-144/3,150-360/6" into a sorted list of ints."""
    out = set()
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+)(?:/(\d+))?)?", item)
        if not m:
            raise SystemExit("invalid %s list item %r (use A, A-B or A-B/STEP)" % (what, item))
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) else a
        s = int(m.group(3)) if m.group(3) else 1
        if b < a or s <= 0:
            raise SystemExit("invalid %s range %r" % (what, item))
        out.update(range(a, b + 1, s))
    return sorted(out)


def grid_axes(dx, lon_first):
    """Latitudes 90 -> -90 and longitudes lon_first -> lon_first + 360 - dx."""
    nj = int(round(180.0 / dx)) + 1
    ni = int(round(360.0 / dx))
    lat = 90.0 - dx * np.arange(nj)
    lon = lon_first + dx * np.arange(ni)
    return lat, lon


def gefs_window(step):
    """GEFS accumulation/statistics window ending at step: resets every 6 h."""
    return ((step - 1) // 6) * 6, step


def wgrib2_range(a, b, op):
    """wgrib2 -ftime text for a statistical window [a, b] hours (days when both are whole days)."""
    if a % 24 == 0 and b % 24 == 0:
        return "%d-%d day %s fcst" % (a // 24, b // 24, op)
    return "%d-%d hour %s fcst" % (a, b, op)


def gefs_member_name(m):
    return "gec00" if m == 0 else "gep%02d" % m


def gefs_paths(date, cycle, member, step):
    d = "noaa-gefs-pds/gefs.%s/%02d/atmos/pgrb2sp25" % (date, cycle)
    f = "%s.t%02dz.pgrb2s.0p25.f%03d" % (gefs_member_name(member), cycle, step)
    return d + "/" + f, d + "/" + f + ".idx"


def ecmwf_paths(date, cycle, step, kind):
    """kind is 'enfo' (enfo-ef) or 'oper' (oper-fc)."""
    d = "ecmwf-forecasts/%s/%02dz/ifs/0p25/%s" % (date, cycle, kind)
    suffix = "enfo-ef" if kind == "enfo" else "oper-fc"
    f = "%s%02d0000-%dh-%s" % (date, cycle, step, suffix)
    return d + "/" + f + ".grib2", d + "/" + f + ".index"


def makedirs(path):
    if os.path.isdir(path):
        return
    parent = os.path.dirname(path)
    if parent and not os.path.isdir(parent):
        makedirs(parent)
    try:
        os.mkdir(path)
    except FileExistsError:
        pass
    os.chmod(path, 0o755)


def write_file(path, chunks, mtime):
    """Write atomically (temp file + rename), world-readable, fixed mtime."""
    makedirs(os.path.dirname(path))
    tmp = "%s.tmp%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        for c in chunks:
            f.write(c)
    os.chmod(tmp, 0o644)
    if mtime is not None:
        os.utime(tmp, (mtime, mtime))
    os.replace(tmp, path)


def smooth_field(params, lat, lon, key):
    """A cheap, smooth, plausible field: latitude profile plus a travelling wave."""
    c_eq, c_pole, amp, lo, hi = params
    rng = np.random.default_rng(key)
    p1, p2, p3 = rng.uniform(0, 2 * np.pi, 3)
    k = int(rng.integers(2, 6))
    latr = np.radians(lat)[:, None]
    lonr = np.radians(lon)[None, :]
    base = c_pole + (c_eq - c_pole) * np.cos(latr) ** 2
    wave = amp * np.sin(2 * latr + p1) * np.cos(k * lonr + p2)
    wave2 = 0.35 * amp * np.cos(3 * latr + p3) * np.sin((k + 3) * lonr - p1)
    return np.clip(base + wave + wave2, lo, hi)


def name_hash(s):
    return sum((i + 1) * ord(c) for i, c in enumerate(s))


# --------------------------------------------------------------------------
# Rain model
# --------------------------------------------------------------------------

class RainModel:
    """Cumulative rain since the run start, in integer units of 0.01 mm.

    Q(member, t) is non-decreasing in t, Q(member, 0) = 0 (scenario dips are
    applied separately, to one ECMWF message only).  GEFS APCP over [a, b] is
    (Q(b) - Q(a)) / 100 mm; ECMWF tp at step t is Q(t) / 100 / 1000 m.
    """

    def __init__(self, dataset, seed, members, background, scenario_slots, dips,
                 rain_model="smooth", rain_size="normal"):
        self.ds_code = 1 if dataset == "gefs" else 2
        # --rain-model realistic: the background is TexturedRain instead of Gaussian cells.
        self.tex = (TexturedRain(dataset, seed, rain_size)
                    if rain_model == "realistic" and background == "realistic" else None)
        self.dataset = dataset
        self.seed = seed
        self.members = list(members)
        self.background = background
        self.slots = {}        # member -> list of (slot_end_h, mm_int, box)
        for s in scenario_slots:
            self.slots.setdefault(s["member"], []).append((s["to_h"], int(round(s["mm"] * 100)), s["box"]))
        self.dips = {}         # (member, step) -> list of dip records
        for d in dips:
            self.dips.setdefault((d["member"], d["dip_at_h"]), []).append(d)
        self._blobs = {}
        self._storms = None
        self._cache = {}
        self._cache_order = []

    # -- synthetic weather -------------------------------------------------
    def _shared_storms(self):
        if self._storms is not None:
            return self._storms
        rng = np.random.default_rng([self.seed, self.ds_code, 424242])
        storms = []
        n = 70
        for i in range(n):
            tropical = rng.random() < 0.45
            if tropical:
                lat0 = rng.uniform(-15, 15)
                vlon = rng.uniform(-7, -1)        # deg/day, westward
                vlat = rng.uniform(-1, 1)
                amt = rng.uniform(4, 14)          # mm per 6 h at the centre
                sig = rng.uniform(1.2, 3.0)
            else:
                lat0 = rng.choice([-1, 1]) * rng.uniform(28, 62)
                vlon = rng.uniform(5, 15)         # eastward
                vlat = rng.uniform(-2, 2)
                amt = rng.uniform(3, 10)
                sig = rng.uniform(2.5, 5.0)
            lon0 = rng.uniform(0, 360)
            t0 = rng.uniform(-24, HORIZON_H)
            life = rng.uniform(12, 60)
            storms.append((lon0, lat0, vlon, vlat, amt, sig, t0, life))
        # Heavy rain events over East Africa, shared by the ensemble with spread.
        ea = []
        for lo_t, hi_t in ((0, 6), (30, 60), (66, 120), (120, 216)):
            lon0 = rng.uniform(28, 48)
            lat0 = rng.uniform(-8, 15)
            sig = rng.uniform(1.5, 2.5)
            t0 = rng.uniform(lo_t, hi_t)
            ea.append((lon0, lat0, sig, t0))
        self._storms = (storms, ea)
        return self._storms

    def blobs(self, member):
        """Per-member Gaussian rain blobs: arrays (lon0, lat0, sigma, t0, t1, amount_mm)."""
        if member in self._blobs:
            return self._blobs[member]
        out = []
        if self.background == "realistic":
            storms, ea = self._shared_storms()
            rng = np.random.default_rng([self.seed, self.ds_code, 1000 + member])
            for (lon0, lat0, vlon, vlat, amt, sig, t0, life) in storms:
                present = rng.random() < 0.85
                tj = rng.normal(0, 1 + max(t0, 0) / 48.0)
                sd = 0.7 + max(t0, 0) / 60.0
                dlon, dlat = rng.normal(0, sd, 2)
                fac = rng.lognormal(0, 0.35)
                if not present:
                    continue
                ts = t0 + tj
                nseg = max(1, int(math.ceil(life / 6.0)))
                for k in range(nseg):
                    tm = 6 * k + 3
                    bell = math.sin(math.pi * (k + 0.5) / nseg)
                    out.append((lon0 + dlon + vlon * tm / 24.0, float(np.clip(lat0 + dlat + vlat * tm / 24.0, -85, 85)),
                                sig, ts + 6 * k, ts + 6 * k + 6, amt * fac * (0.4 + 0.6 * bell)))
            for (lon0, lat0, sig, t0) in ea:
                present = rng.random() < 0.9
                total = rng.uniform(0, 180)        # 24 h total at the centre, mm
                dlon, dlat = rng.normal(0, 1.0, 2)
                tj = rng.normal(0, 3)
                if not present:
                    continue
                for k in range(4):
                    out.append((lon0 + dlon + 0.3 * k, lat0 + dlat, sig, t0 + tj + 6 * k, t0 + tj + 6 * k + 6, total / 4.0))
        arr = np.array(out, dtype=np.float64).reshape(-1, 6)
        self._blobs[member] = arr
        return arr

    def _background(self, member, t, lat, lon, dx):
        nj, ni = len(lat), len(lon)
        acc = np.zeros((nj, ni), dtype=np.float64)
        b = self.blobs(member)
        if len(b) == 0 or t <= 0:
            return acc
        lon_first = lon[0]
        for lon0, lat0, sig, t0, t1, amount in b:
            start = max(t0, 0.0)
            if t <= start or t1 <= start:
                continue
            frac = (min(t, t1) - start) / (t1 - t0)
            a = amount * frac
            if a <= 0:
                continue
            half = 3.5 * sig
            r0 = max(0, int(math.ceil((90.0 - (lat0 + half)) / dx)))
            r1 = min(nj - 1, int(math.floor((90.0 - (lat0 - half)) / dx)))
            if r1 < r0:
                continue
            gy = np.exp(-0.5 * ((lat[r0:r1 + 1] - lat0) / sig) ** 2)
            coslat = max(math.cos(math.radians(lat0)), 0.15)
            w = min(180.0, half / coslat)
            c0 = int(math.ceil((lon0 - w - lon_first) / dx))
            n = min(ni, int(math.floor((lon0 + w - lon_first) / dx)) - c0 + 1)
            if n <= 0:
                continue
            idx = (c0 + np.arange(n)) % ni
            dlon = ((lon_first + idx * dx - lon0 + 180.0) % 360.0) - 180.0
            gx = np.exp(-0.5 * (dlon * coslat / sig) ** 2)
            block = a * np.outer(gy, gx)
            s = idx[0]
            first = min(n, ni - s)
            acc[r0:r1 + 1, s:s + first] += block[:, :first]
            if first < n:
                acc[r0:r1 + 1, 0:n - first] += block[:, first:]
        return acc

    def Q(self, member, t, gridname, lon_first):
        """Cumulative rain (int64, 0.01 mm) for member at hour t on a grid."""
        key = (member, t, gridname, lon_first)
        if key in self._cache:
            return self._cache[key]
        dx = GRIDS[gridname]
        lat, lon = grid_axes(dx, lon_first)
        if self.tex is not None and t > 0:
            q = self.tex.Q(member, t, gridname, lon_first).astype(np.int64)
        elif self.background == "realistic" and t > 0:
            q = np.rint(self._background(member, t, lat, lon, dx) * 100.0).astype(np.int64)
        else:
            q = np.zeros((len(lat), len(lon)), dtype=np.int64)
        for (end, mm_int, box) in self.slots.get(member, ()):
            if end <= t:
                add_box(q, lat, lon, box, mm_int)
        self._cache[key] = q
        self._cache_order.append(key)
        while len(self._cache_order) > 6:
            self._cache.pop(self._cache_order.pop(0), None)
        return q

    def window(self, member, a, b, gridname, lon_first):
        """Q(b) - Q(a) (int64, 0.01 mm): the rain that fell in the window [a, b]."""
        if self.tex is None:
            return self.Q(member, b, gridname, lon_first) - self.Q(member, a, gridname, lon_first)
        # Only the storms raining within the window change Q there: no need to sum the rest.
        d = self.tex.delta(member, a, b, gridname, lon_first).astype(np.int64)
        lat, lon = grid_axes(GRIDS[gridname], lon_first)
        for (end, mm_int, box) in self.slots.get(member, ()):
            if a < end <= b:
                add_box(d, lat, lon, box, mm_int)
        return d

    def dip(self, member, t, gridname, lon_first):
        """Integer (0.01 mm) field to subtract from the ECMWF tp message at step t, or None."""
        lst = self.dips.get((member, t))
        if not lst:
            return None
        dx = GRIDS[gridname]
        lat, lon = grid_axes(dx, lon_first)
        d = np.zeros((len(lat), len(lon)), dtype=np.int64)
        for rec in lst:
            if "mm" in rec:
                add_box(d, lat, lon, rec["box"], int(round(rec["mm"] * 100)))
            else:
                # tp[t] = tp[previous step] - x inside the box: subtract the rain since then, plus x.
                since = self.Q(member, t, gridname, lon_first) - self.Q(member, rec["previous_h"], gridname, lon_first)
                rows, cols = box_masks(lat, lon, rec["box"])
                if len(rows) and len(cols):
                    sl = (slice(rows[0], rows[-1] + 1), cols)
                    d[sl] += since[sl] + int(round(rec["below_previous_mm"] * 100))
        return d


def box_masks(lat, lon, box):
    lon_min, lat_min, lon_max, lat_max = box
    eps = 1e-9
    rows = np.nonzero((lat >= lat_min - eps) & (lat <= lat_max + eps))[0]
    span = lon_max - lon_min
    if span < 0:                 # the box wraps, e.g. [350, 50, 10, 55]
        span += 360.0
    if span >= 360.0:
        cols = np.arange(len(lon))
    else:
        cols = np.nonzero(((lon - lon_min) % 360.0) <= span + eps)[0]
    return rows, cols


def add_box(arr, lat, lon, box, value):
    rows, cols = box_masks(lat, lon, box)
    if len(rows) == 0 or len(cols) == 0:
        return
    arr[rows[0]:rows[-1] + 1, cols] += value


# --------------------------------------------------------------------------
# Realistic rain model (--rain-model realistic)
#
# Rain comes from storms. A storm is an elliptical patch whose rain has the
# texture of a multi-scale, log-normal random field cut at a threshold (so it
# is patchy, with exact zeros inside and outside it), and it rains as a front
# that sweeps across the patch: a point gets its share over D hours, starting
# when the front reaches it.  Storm s adds q_s(t) = rint(100 * A_s * ramp_s(t))
# (0.01 mm) to the cumulative total Q(t) at a point, with A_s >= 0 and ramp_s
# non-decreasing from 0 to 1, so Q is non-decreasing, integer, and exact; a
# window [a, b] only needs the storms that rain within it (the others add the
# same q_s to Q(a) and Q(b)), and Q(t) is updated from the last Q computed.
#
# The textures come from two random fields made once per process (an FFT with
# a power-law spectrum); storms read them at their own offsets, so members,
# steps and storms all differ without a new random field for each message.
# --------------------------------------------------------------------------

TEX_SHAPE = (720, 1440)      # texture torus, in 0.25-degree pixels
TEX_OFFSET_STEP = 20         # texture offsets are multiples of every grid stride (1, 2, 4, 10)
TEX_MAX_HX = 60.0            # widest storm half-width, degrees of longitude
TEX_MAX_HY = 20.0            # tallest storm half-height, degrees of latitude

# Textures: (spectral slope beta, log-normal sigma, threshold in units of the median, seed tag).
TEX_KINDS = {
    "conv": (2.2, 1.25, 0.55, 1),    # convective: rough and patchy (a third of it is dry)
    "strat": (2.8, 0.80, 0.35, 2),   # frontal / stratiform: smoother (a tenth of it is dry)
}

# Storm populations: name -> (new storms per day, latitude model, half-width lon (deg at the
# equator), half-height (deg), mean amount at the centre (mm), sweep (h), rain duration D (h),
# direction (deg, 0 = east), direction spread, texture).
RAIN_TYPES = {
    "trop": (90, ("band", 5.0, 9.0, 25.0), (3.0, 8.0), (2.0, 5.0), 8.0, (3.0, 9.0), (4.0, 12.0), 180.0, 45.0, "conv"),
    "mid": (70, ("storm-track", 28.0, 68.0), (7.0, 18.0), (3.0, 7.0), 6.0, (9.0, 24.0), (9.0, 24.0), 20.0, 40.0,
            "strat"),
    "embedded": (60, ("storm-track", 25.0, 60.0), (2.0, 5.0), (1.5, 3.5), 6.0, (3.0, 9.0), (4.0, 10.0), 20.0, 60.0,
                 "conv"),
    "light": (110, ("cos", 80.0), (6.0, 17.0), (3.5, 10.0), 1.0, (9.0, 30.0), (12.0, 30.0), 0.0, 180.0, "strat"),
    "drizzle": (80, ("cos", 85.0), (10.0, 28.0), (6.0, 13.0), 0.2, (12.0, 36.0), (12.0, 24.0), 0.0, 180.0, "strat"),
}
# --rain-size heavy: a wet day, more and stronger storms.
RAIN_SIZE = {"normal": (1.0, 1.0), "heavy": (1.6, 1.6)}   # (rate factor, amount factor)
# Dataset differences: (rate factor, rate factors by type). IFS rains a little almost everywhere,
# GFS does not. These, with the rates above, set the message sizes (tools/README-gen.md).
RAIN_DATASET = {"gefs": (0.70, {"drizzle": 0.0}), "ecmwf": (0.85, {"drizzle": 2.0, "light": 1.3})}


def spectral_noise(rng, shape, beta):
    """Zero-mean, unit-variance Gaussian noise on a torus with a k**-beta power spectrum."""
    h, w = shape
    ky = np.fft.fftfreq(h)[:, None]
    kx = np.fft.rfftfreq(w)[None, :]
    k2 = kx * kx + ky * ky
    k2[0, 0] = np.inf
    amp = k2 ** (-beta / 4.0)
    spec = amp * (rng.standard_normal(k2.shape) + 1j * rng.standard_normal(k2.shape))
    f = np.fft.irfft2(spec, s=shape)
    f -= f.mean()
    f /= f.std()
    return f


class TexturedRain:
    """Cumulative rain Q(member, t) (int32, 0.01 mm) of the realistic rain model."""

    def __init__(self, dataset, seed, size):
        self.dataset = dataset
        self.ds_code = 1 if dataset == "gefs" else 2
        self.seed = seed
        self.size = size
        self._tex = {}
        self._banks = {}
        self._storms = {}
        self._shared = None
        self._q = {}

    # -- textures ------------------------------------------------------------
    def _texture(self, kind):
        if kind not in self._tex:
            beta, sigma, cut, tag = TEX_KINDS[kind]
            rng = np.random.default_rng([self.seed, self.ds_code, 515151, tag])
            n = spectral_noise(rng, TEX_SHAPE, beta)
            t = np.maximum(np.exp(sigma * n) - cut, 0.0)
            t /= t.mean()
            self._tex[kind] = np.minimum(t, 5.0).astype(np.float32)
        return self._tex[kind]

    def _bank(self, kind, stride, nj, ni):
        """The texture sampled every stride pixels, padded (wrapping) so that any block is a slice."""
        key = (kind, stride)
        if key not in self._banks:
            b = self._texture(kind)[::stride, ::stride]
            ph = min(nj, int(2 * TEX_MAX_HY / (0.25 * stride)) + 3)
            pw = min(ni, int(2 * TEX_MAX_HX / (0.25 * stride)) + 3)
            self._banks[key] = np.pad(b, ((0, ph), (0, pw)), mode="wrap")
        return self._banks[key]

    # -- storms --------------------------------------------------------------
    def _population(self, rng, name, count_scale, amt_scale):
        rate, latm, hxr, hyr, amt, swr, dr, dirm, dirs, tex = RAIN_TYPES[name]
        ds_rate, ds_types = RAIN_DATASET[self.dataset]
        rate *= count_scale * ds_rate * ds_types.get(name, 1.0)
        n = int(round(rate * (HORIZON_H + 48) / 24.0))
        if latm[0] == "band":
            lat = np.clip(rng.normal(latm[1], latm[2], n), -latm[3], latm[3])
        elif latm[0] == "storm-track":
            lat = rng.choice([-1.0, 1.0], n) * rng.uniform(latm[1], latm[2], n)
        else:                                   # uniform in area up to +-latm[1]
            s = math.sin(math.radians(latm[1]))
            lat = np.degrees(np.arcsin(rng.uniform(-s, s, n)))
        lon = rng.uniform(0.0, 360.0, n)
        coslat = np.maximum(np.cos(np.radians(lat)), 0.2)
        hx = np.minimum(rng.uniform(*hxr, n) / coslat, TEX_MAX_HX)
        hy = np.minimum(rng.uniform(*hyr, n), TEX_MAX_HY)
        t0 = rng.uniform(-48.0, HORIZON_H, n)
        sweep = rng.uniform(*swr, n)
        D = rng.uniform(*dr, n)
        amp = amt * amt_scale * rng.lognormal(-0.5 * 0.5 ** 2, 0.5, n)
        ang = np.radians(dirm + rng.uniform(-dirs, dirs, n))
        kind = np.full(n, 0 if tex == "conv" else 1)
        return [lon, lat, hx, hy, t0, sweep, D, amp, np.cos(ang), np.sin(ang), kind]

    def _shared_storms(self):
        """Storms the ensemble shares (members jitter them), and the East Africa events."""
        if self._shared is None:
            rng = np.random.default_rng([self.seed, self.ds_code, 626262])
            cs, ams = RAIN_SIZE[self.size]
            cols = [self._population(rng, name, 0.7 * cs, ams) for name in RAIN_TYPES]
            arr = np.array([np.concatenate(c) for c in zip(*cols)])
            ea = []
            for lo_t, hi_t in ((0, 6), (30, 60), (66, 120), (120, 216)):
                ea.append((rng.uniform(28, 48), rng.uniform(-8, 15), rng.uniform(lo_t, hi_t)))
            self._shared = (arr, ea)
        return self._shared

    def storms(self, member):
        """The member's storms: rows lon, lat, hx, hy, t0, sweep, D, amp, cos, sin, kind, oy, ox, end."""
        if member in self._storms:
            return self._storms[member]
        shared, ea = self._shared_storms()
        rng = np.random.default_rng([self.seed, self.ds_code, 8000 + member])
        arr = shared.copy()
        n = arr.shape[1]
        lead = np.maximum(arr[4], 0.0)
        present = rng.random(n) < 0.85
        arr[0] += rng.normal(0, 1, n) * (0.7 + lead / 60.0)
        arr[1] = np.clip(arr[1] + rng.normal(0, 1, n) * (0.7 + lead / 60.0), -88.0, 88.0)
        arr[4] += rng.normal(0, 1, n) * (1.0 + lead / 48.0)
        arr[7] *= rng.lognormal(0, 0.35, n)
        arr = arr[:, present]
        cs, ams = RAIN_SIZE[self.size]
        own = [self._population(rng, name, 0.3 * cs, ams) for name in RAIN_TYPES]
        own = np.array([np.concatenate(c) for c in zip(*own)])
        evs = []
        for lon0, lat0, t0 in ea:
            if rng.random() < 0.9:
                total = rng.uniform(0, 150) * ams     # mean 24 h total at the centre, mm
                dlon, dlat = rng.normal(0, 1.0, 2)
                evs.append([lon0 + dlon, lat0 + dlat, 4.0, 3.5, t0 + rng.normal(0, 3), 18.0, 6.0, total,
                            1.0, 0.0, 1.0])
        parts = [arr, own] + ([np.array(evs).T] if evs else [])
        arr = np.concatenate(parts, axis=1)
        m = arr.shape[1]
        oy = rng.integers(0, TEX_SHAPE[0] // TEX_OFFSET_STEP, m) * TEX_OFFSET_STEP
        ox = rng.integers(0, TEX_SHAPE[1] // TEX_OFFSET_STEP, m) * TEX_OFFSET_STEP
        end = arr[4] + arr[5] + arr[6]
        arr = np.vstack([arr, oy, ox, end])
        arr = arr[:, np.argsort(arr[4], kind="stable")]
        self._storms[member] = arr
        return arr

    # -- fields --------------------------------------------------------------
    def delta(self, member, t1, t2, gridname, lon_first):
        """Q(t2) - Q(t1) (int32): only storms raining between t1 and t2 contribute."""
        dx = GRIDS[gridname]
        lat, lon = grid_axes(dx, lon_first)
        nj, ni = len(lat), len(lon)
        out = np.zeros((nj, ni), dtype=np.int32)
        if t1 == t2:
            return out
        lo, hi = min(t1, t2), max(t1, t2)
        st = self.storms(member)
        # A storm skipped here has ramp exactly 0 (or exactly 1) at both ends: the one-hour margin
        # is far wider than float32 rounding, so every way of summing Q gives the same integers.
        act = np.nonzero((st[4] - 1.0 < hi) & (st[13] + 1.0 > lo))[0]
        stride = int(round(dx / 0.25))
        banks = (self._bank("conv", stride, nj, ni), self._bank("strat", stride, nj, ni))
        for k in act:
            lon0, lat0, hx, hy, t0, sweep, D, amp, cd, sd, kind, oy, ox, _ = st[:, k]
            # Where t is in the storm's life: 0 before it (ramp exactly 0), 2 after it (exactly 1).
            states = [0 if t < t0 - 0.01 else 2 if t > t0 + sweep + D + 0.01 else 1 for t in (t2, t1)]
            if states[0] == states[1] != 1:
                continue
            r0 = max(0, int(math.ceil((90.0 - (lat0 + hy)) / dx)))
            r1 = min(nj - 1, int(math.floor((90.0 - (lat0 - hy)) / dx)))
            if r1 < r0:
                continue
            c0 = int(math.ceil((lon0 - hx - lon_first) / dx))
            n = min(ni, int(math.floor((lon0 + hx - lon_first) / dx)) - c0 + 1)
            if n <= 0:
                continue
            dyn = ((lat[r0:r1 + 1] - lat0) / hy).astype(np.float32)
            cl = lon_first + dx * (c0 + np.arange(n))
            dxn = ((((cl - lon0 + 180.0) % 360.0) - 180.0) / hx).astype(np.float32)
            env = 1.0 - (dyn[:, None] ** 2 + dxn[None, :] ** 2)
            np.maximum(env, 0.0, out=env)
            env *= env
            by, bx = int(oy) // stride, int(ox) // stride
            a = banks[int(kind)][by:by + (r1 - r0 + 1), bx:bx + n] * env
            a *= np.float32(100.0 * amp)
            # The front reaches a point at t0 + sweep * (1 + proj) / 2 and rains there for D hours.
            ton = np.float32(cd) * dxn[None, :] + np.float32(sd) * dyn[:, None]
            np.maximum(ton, -1.0, out=ton)
            np.minimum(ton, 1.0, out=ton)
            ton += 1.0
            ton *= np.float32(sweep / 2.0)
            ton += np.float32(t0)
            block = None
            for t, sign, state in ((t2, 1, states[0]), (t1, -1, states[1])):
                if state == 0:
                    continue
                if state == 2:                  # the ramp below would be exactly 1
                    q = np.rint(a)
                else:
                    f = np.float32(t) - ton
                    f /= np.float32(D)
                    np.maximum(f, 0.0, out=f)
                    np.minimum(f, 1.0, out=f)
                    f *= a
                    q = np.rint(f, out=f)
                q = q.astype(np.int32)
                if block is None:
                    block = q if sign > 0 else -q
                elif sign > 0:
                    block += q
                else:
                    block -= q
            if block is None:
                continue
            s = c0 % ni
            first = min(n, ni - s)
            out[r0:r1 + 1, s:s + first] += block[:, :first]
            if first < n:
                out[r0:r1 + 1, 0:n - first] += block[:, first:]
        return out

    def Q(self, member, t, gridname, lon_first):
        """Cumulative rain at hour t (int32, 0.01 mm), stepped from the last Q of this member and grid."""
        key = (member, gridname, lon_first)
        tc, qc = self._q.get(key, (0, None))
        if qc is None:
            qc = self.delta(member, 0, t, gridname, lon_first)
        elif t != tc:
            qc = qc + self.delta(member, tc, t, gridname, lon_first)
        self._q[key] = (t, qc)
        return qc


# --------------------------------------------------------------------------
# Scenario files
# --------------------------------------------------------------------------

def load_scenario(path, dataset, members, steps):
    """Return (raw scenario, expanded slot list, dip list, background)."""
    if path is None:
        return None, [], [], "realistic"
    with open(path) as f:
        sc = json.load(f)
    if isinstance(sc, list):
        sc = {"entries": sc}
    background = sc.get("background", "none")
    if background not in ("none", "realistic"):
        raise SystemExit("scenario: background must be \"none\" or \"realistic\"")
    slots, dips = [], []
    for i, e in enumerate(sc.get("entries", [])):
        where = "scenario entry %d" % i
        ds = e.get("dataset", "both")
        if ds not in ("both", "gefs", "ecmwf"):
            raise SystemExit("%s: dataset must be gefs, ecmwf or both" % where)
        if ds not in ("both", dataset):
            continue
        mem = e.get("member", "all")
        if "mm_by_member" in e:
            mlist = sorted(int(k) for k in e["mm_by_member"])
        elif mem == "all":
            mlist = list(members)
        elif isinstance(mem, list):
            mlist = [int(x) for x in mem]
        elif isinstance(mem, str):
            mlist = parse_int_list(mem, "scenario member")
        else:
            mlist = [int(mem)]
        mlist = [m for m in mlist if m in members]
        box = e.get("box", [-180.0, -90.0, 180.0, 90.0])
        if not (isinstance(box, list) and len(box) == 4 and box[1] <= box[3]):
            raise SystemExit("%s: box must be [lon_min, lat_min, lon_max, lat_max] "
                             "(lon_max < lon_min wraps across 0/180)" % where)
        box = [float(x) for x in box]
        if "dip_at_h" in e:
            if dataset != "ecmwf":
                continue
            t = int(e["dip_at_h"])
            if t not in steps:
                log("warning: %s: dip_at_h=%d is not a generated step" % (where, t))
            if ("mm" in e) == ("below_previous_mm" in e):
                raise SystemExit("%s: a dip needs exactly one of mm, below_previous_mm" % where)
            prev = max([s for s in steps if s < t], default=None)
            if "below_previous_mm" in e and prev is None:
                raise SystemExit("%s: below_previous_mm needs a generated step before %d" % (where, t))
            for m in mlist:
                if "mm" in e:
                    dips.append({"member": m, "dip_at_h": t, "mm": float(e["mm"]), "box": box})
                else:
                    dips.append({"member": m, "dip_at_h": t, "below_previous_mm": float(e["below_previous_mm"]),
                                 "previous_h": prev, "box": box})
            continue
        a, b = int(e["from_h"]), int(e["to_h"])
        if a < 0 or b <= a or a % SLOT_H or b % SLOT_H:
            raise SystemExit("%s: from_h/to_h must be multiples of 3 with from_h < to_h" % where)
        nsl = (b - a) // SLOT_H
        for m in mlist:
            if "mm_per_slot" in e:
                per = [int(round(float(e["mm_per_slot"]) * 100))] * nsl
            else:
                total = e["mm_by_member"][str(m)] if "mm_by_member" in e else e["mm"]
                tot = int(round(float(total) * 100))
                base = tot // nsl
                per = [base] * nsl
                per[-1] += tot - base * nsl     # the slots add up to the total exactly
            if any(q < 0 for q in per):
                raise SystemExit("%s: rain must not be negative (use a dip entry)" % where)
            for k in range(nsl):
                slots.append({"member": m, "from_h": a + SLOT_H * k, "to_h": a + SLOT_H * (k + 1),
                              "mm": per[k] / 100.0, "box": box, "entry": i})
    return sc, slots, dips, background


# --------------------------------------------------------------------------
# GRIB templates
# --------------------------------------------------------------------------

def set_grid(h, dx, lon_first_deg, lon_first_coded):
    lat, lon = grid_axes(dx, lon_first_deg)
    ec.codes_set_long(h, "Ni", len(lon))
    ec.codes_set_long(h, "Nj", len(lat))
    ec.codes_set(h, "latitudeOfFirstGridPointInDegrees", 90.0)
    ec.codes_set(h, "longitudeOfFirstGridPointInDegrees", float(lon_first_coded))
    ec.codes_set(h, "latitudeOfLastGridPointInDegrees", -90.0)
    ec.codes_set(h, "longitudeOfLastGridPointInDegrees", float(lon[-1]))
    ec.codes_set(h, "iDirectionIncrementInDegrees", dx)
    ec.codes_set(h, "jDirectionIncrementInDegrees", dx)
    return len(lat) * len(lon)


def set_level(h, level):
    t1, s1, v1, t2, s2, v2 = LEVELS[level]
    ec.codes_set_long(h, "typeOfFirstFixedSurface", t1)
    ec.codes_set_long(h, "typeOfSecondFixedSurface", t2)
    ec.codes_set_long(h, "scaleFactorOfFirstFixedSurface", s1)
    ec.codes_set_long(h, "scaledValueOfFirstFixedSurface", v1)
    if s2 is None:
        ec.codes_set_missing(h, "scaleFactorOfSecondFixedSurface")
        ec.codes_set_missing(h, "scaledValueOfSecondFixedSurface")
    else:
        ec.codes_set_long(h, "scaleFactorOfSecondFixedSurface", s2)
        ec.codes_set_long(h, "scaledValueOfSecondFixedSurface", v2)


def gefs_template(var, dx, date, cycle):
    name, level, disc, cat, num, stat, D, _ = GEFS_VARS[var]
    h = ec.codes_grib_new_from_samples("GRIB2")
    ec.codes_set_long(h, "discipline", disc)
    ec.codes_set_long(h, "centre", 7)
    ec.codes_set_long(h, "subCentre", 2)
    ec.codes_set_long(h, "tablesVersion", 2)
    ec.codes_set_long(h, "localTablesVersion", 1)
    ec.codes_set_long(h, "significanceOfReferenceTime", 1)
    ec.codes_set_long(h, "productionStatusOfProcessedData", 0)
    ec.codes_set_long(h, "typeOfProcessedData", 4)
    ec.codes_set_long(h, "dataDate", int(date))
    ec.codes_set_long(h, "dataTime", cycle * 100)
    ec.codes_set_long(h, "shapeOfTheEarth", 6)
    npts = set_grid(h, dx, 0.0, 0.0)
    ec.codes_set_long(h, "productDefinitionTemplateNumber", 11 if stat else 1)
    ec.codes_set_long(h, "parameterCategory", cat)
    ec.codes_set_long(h, "parameterNumber", num)
    ec.codes_set_long(h, "typeOfGeneratingProcess", 4)
    ec.codes_set_long(h, "backgroundProcess", 0)
    ec.codes_set_long(h, "generatingProcessIdentifier", 107)
    ec.codes_set_long(h, "hoursAfterDataCutoff", 0)
    ec.codes_set_long(h, "minutesAfterDataCutoff", 0)
    ec.codes_set_long(h, "indicatorOfUnitOfTimeRange", 1)
    set_level(h, level)
    ec.codes_set_long(h, "numberOfForecastsInEnsemble", 30)
    if stat:
        ec.codes_set_long(h, "typeOfStatisticalProcessing", STAT_CODES[stat])
        ec.codes_set_long(h, "typeOfTimeIncrement", 2)
    # A constant placeholder field: sections 5 and 7 are replaced by complex_sd2().
    ec.codes_set_values(h, np.zeros(npts))
    return h


def ecmwf_template(param, dx, date, cycle, kind, tables_version):
    """kind: 'pf', 'cf' (enfo) or 'fc' (oper control)."""
    pid = ECMWF_PARAMS[param][0]
    h = ec.codes_grib_new_from_samples("GRIB2")
    ec.codes_set_long(h, "centre", 98)
    ec.codes_set_long(h, "subCentre", 0)
    ec.codes_set_long(h, "tablesVersion", tables_version)
    ec.codes_set_long(h, "localTablesVersion", 1)
    ec.codes_set_long(h, "significanceOfReferenceTime", 1)
    ec.codes_set_long(h, "productionStatusOfProcessedData", 0)
    ec.codes_set_long(h, "setLocalDefinition", 1)
    ec.codes_set_long(h, "localDefinitionNumber", 1)
    ec.codes_set(h, "class", "od")
    ec.codes_set(h, "type", kind)
    ec.codes_set(h, "stream", "oper" if kind == "fc" else "enfo")
    ec.codes_set(h, "expver", "0001")
    ec.codes_set_long(h, "typeOfProcessedData", {"pf": 4, "cf": 3, "fc": 1}[kind])
    ec.codes_set_long(h, "dataDate", int(date))
    ec.codes_set_long(h, "dataTime", cycle * 100)
    ec.codes_set_long(h, "shapeOfTheEarth", 6)
    # ECMWF codes the first longitude as 180 (i.e. -180) and the last as 179.75.
    npts = set_grid(h, dx, -180.0, 180.0)
    accum = param == "tp"
    if kind == "fc":
        ec.codes_set_long(h, "productDefinitionTemplateNumber", 8 if accum else 0)
    else:
        ec.codes_set_long(h, "productDefinitionTemplateNumber", 11 if accum else 1)
    ec.codes_set_long(h, "paramId", pid)
    ec.codes_set_long(h, "typeOfGeneratingProcess", 2 if kind == "fc" else 4)
    ec.codes_set_long(h, "generatingProcessIdentifier", 154)
    ec.codes_set_long(h, "backgroundProcess", 255)
    ec.codes_set_long(h, "stepUnits", 1)
    if kind != "fc":
        ec.codes_set_long(h, "numberOfForecastsInEnsemble", 51)
        # ECMWF's GRIB2 ENS convention: cf = 1 (unperturbed control), pf = 255 (missing).
        ec.codes_set_long(h, "typeOfEnsembleForecast", 1 if kind == "cf" else 255)
        if kind == "cf":
            ec.codes_set_long(h, "perturbationNumber", 0)
    ec.codes_set_values(h, np.linspace(0.0, 1.0, npts))
    ec.codes_set(h, "packingType", "grid_ccsds")
    return h


# --------------------------------------------------------------------------
# GRIB2 complex packing with second-order spatial differencing (template 5.3)
#
# ecCodes 2.28 writes template 5.3 only with orderOfSpatialDifferencing = 0,
# which is not what NCEP writes (order 2) and not a valid code table 5.6 value.
# So sections 5 and 7 are written here, with numpy, and spliced into a message
# whose other sections ecCodes made.  Groups have a fixed length of 16 values
# (general group splitting with constant lengths is valid GRIB2); every group's
# data is then a whole number of octets.  Values are integers meaning
# ints * 10**-D, binaryScaleFactor is 0, and the reference value is the
# minimum, so decoding is exact (checked against ecCodes and GDAL's g2clib).
# --------------------------------------------------------------------------

CS_GROUP = 16


def bitlen(x):
    """Vectorised int.bit_length() for non-negative int64 arrays below 2**53."""
    x = np.asarray(x, dtype=np.int64)
    e = np.frexp(x.astype(np.float64))[1]
    return np.where(x > 0, e, 0).astype(np.int64)


def pack_fixed(v, nbits):
    """Pack non-negative ints with a fixed bit width, MSB first, zero-padded to an octet."""
    if nbits == 0 or len(v) == 0:
        return b""
    v = np.asarray(v, dtype=np.uint64)
    shifts = np.arange(nbits - 1, -1, -1, dtype=np.uint64)
    bits = ((v[:, None] >> shifts) & np.uint64(1)).astype(np.uint8)
    return np.packbits(bits.ravel()).tobytes()


def sign_magnitude(value, nbytes):
    """A GRIB2 signed integer: sign bit plus magnitude."""
    mag = abs(int(value))
    if mag >= (1 << (8 * nbytes - 1)):
        raise ValueError("value %d does not fit in %d signed octets" % (value, nbytes))
    if value < 0:
        mag |= 1 << (8 * nbytes - 1)
    return mag.to_bytes(nbytes, "big")


def complex_sd2(ints, D):
    """Sections 5 and 7 (templates 5.3/7.3, order 2) for integers meaning ints * 10**-D."""
    x = np.asarray(ints, dtype=np.int64).ravel()
    n = x.size
    ref = int(x.min())
    if abs(ref) >= (1 << 24):
        raise ValueError("reference value %d is not exact in float32" % ref)
    xp = x - ref
    d = np.zeros(n, dtype=np.int64)
    d[2:] = xp[2:] - 2 * xp[1:-1] + xp[:-2]
    bias = int(d[2:].min())
    p = d - bias
    p[:2] = 0
    L = CS_GROUP
    ng = (n + L - 1) // L
    last = n - (ng - 1) * L
    pad = np.zeros(ng * L, dtype=np.int64)
    pad[:n] = p
    g = pad.reshape(ng, L)
    mins = g.min(axis=1)
    maxs = g.max(axis=1)
    if last < L:
        mins[-1] = g[-1, :last].min()
        maxs[-1] = g[-1, :last].max()
    widths = bitlen(maxs - mins)
    stored = g - mins[:, None]
    if last < L:
        stored[-1, last:] = 0
    refbits = max(1, int(bitlen(mins.max())))
    wref = int(widths.min())
    wbits = int(bitlen(widths.max() - wref))
    # The two first values and the bias: unsigned values kept below the sign bit,
    # so that readers that treat them as signed (g2clib) agree with ecCodes.
    need = max(int(bitlen(max(xp[0], xp[1]))) + 1, int(bitlen(abs(bias))) + 1)
    nb = max(1, (need + 7) // 8)
    extras = int(xp[0]).to_bytes(nb, "big") + int(xp[1]).to_bytes(nb, "big") + sign_magnitude(bias, nb)
    nbytes = widths * (L // 8)
    boff = np.cumsum(nbytes) - nbytes
    out = np.zeros(int(nbytes.sum()), dtype=np.uint8)
    for w in np.unique(widths):
        w = int(w)
        if w == 0:
            continue
        sel = np.nonzero(widths == w)[0]
        vals = stored[sel].astype(np.uint32)
        shifts = np.arange(w - 1, -1, -1, dtype=np.uint32)
        bits = ((vals[:, :, None] >> shifts) & np.uint32(1)).astype(np.uint8)
        data = np.packbits(bits.reshape(len(sel), L * w), axis=1)
        out[boff[sel][:, None] + np.arange(L * w // 8)] = data
    used = int((widths[:-1] * L).sum() + widths[-1] * last)
    sec7data = (extras + pack_fixed(mins, refbits) + pack_fixed(widths - wref, wbits)
                + out[:(used + 7) // 8].tobytes())
    sec5 = (struct.pack(">IBIH", 49, 5, n, 3) + struct.pack(">f", float(ref)) + sign_magnitude(0, 2)
            + sign_magnitude(D, 2) + bytes([refbits, 0, 1, 0]) + struct.pack(">f", 9.999e20)
            + b"\xff\xff\xff\xff" + struct.pack(">I", ng) + bytes([wref, wbits]) + struct.pack(">I", L)
            + bytes([1]) + struct.pack(">I", last) + bytes([0, 2, nb]))
    sec7 = struct.pack(">IB", 5 + len(sec7data), 7) + sec7data
    return sec5, sec7


# Variable group lengths, as NCEP's encoder writes them (used by --rain-model realistic).
# NCEP's groups are 1..255 values long (lengths in up to 8 bits; real 0.25 degree messages
# average 36-39 values a group); fixed groups of 16 give about twice as many groups.
VG_START = 8          # groups start this long, then neighbours merge while that saves bits
VG_MAX_LEN = 255      # longest group
VG_OVERHEAD = 16      # estimated bits a group costs besides its values (reference, width, length)


def split_groups(p):
    """Group lengths, minima and maxima for the non-negative ints p: fixed blocks merged pairwise."""
    n = p.size
    L = VG_START
    ng = (n + L - 1) // L
    pad = np.empty(ng * L, dtype=np.int64)
    pad[:n] = p
    pad[n:] = p[-1]                      # edge padding leaves the last block's min/max alone
    g = pad.reshape(ng, L)
    mn = g.min(axis=1)
    mx = g.max(axis=1)
    ln = np.full(ng, L, dtype=np.int64)
    ln[-1] = n - (ng - 1) * L
    for _ in range(200):
        if mn.size < 2:
            break
        w = bitlen(mx - mn)
        mmn = np.minimum(mn[:-1], mn[1:])
        mmx = np.maximum(mx[:-1], mx[1:])
        ml = ln[:-1] + ln[1:]
        gain = VG_OVERHEAD + ln[:-1] * w[:-1] + ln[1:] * w[1:] - ml * bitlen(mmx - mmn)
        # Pick non-adjacent pairs whose gain is a local maximum; ties go to even positions.
        key = np.where((gain > 0) & (ml <= VG_MAX_LEN), 2 * gain + (np.arange(gain.size) % 2 == 0), -1)
        left = np.concatenate(([-2], key[:-1]))
        right = np.concatenate((key[1:], [-2]))
        sel = np.nonzero((key > 0) & (key > left) & (key > right))[0]
        if sel.size == 0:
            break
        mn[sel] = mmn[sel]
        mx[sel] = mmx[sel]
        ln[sel] = ml[sel]
        keep = np.ones(mn.size, dtype=bool)
        keep[sel + 1] = False
        mn, mx, ln = mn[keep], mx[keep], ln[keep]
    return ln, mn, mx


def pack_varwidth(vals, widths):
    """Pack non-negative ints, each with its own bit width, MSB first, one bit stream."""
    sel = widths > 0
    vals = vals[sel].astype(np.uint32)
    widths = widths[sel]
    if vals.size == 0:
        return b""
    ends = np.cumsum(widths)
    out = np.zeros(int(ends[-1]), dtype=np.uint8)
    order = np.argsort(widths, kind="stable")
    counts = np.bincount(widths)
    starts = np.cumsum(counts) - counts
    for w in np.nonzero(counts)[0]:
        w = int(w)
        k = order[starts[w]:starts[w] + counts[w]]
        shifts = np.arange(w - 1, -1, -1, dtype=np.uint32)
        bits = ((vals[k, None] >> shifts) & np.uint32(1)).astype(np.uint8)
        out[(ends[k] - w)[:, None] + np.arange(w)] = bits
    return np.packbits(out).tobytes()


def complex_sd2_var(ints, D):
    """Sections 5 and 7 like complex_sd2, with NCEP-style variable group lengths."""
    x = np.asarray(ints, dtype=np.int64).ravel()
    n = x.size
    ref = int(x.min())
    if abs(ref) >= (1 << 24):
        raise ValueError("reference value %d is not exact in float32" % ref)
    xp = x - ref
    d = np.zeros(n, dtype=np.int64)
    d[2:] = xp[2:] - 2 * xp[1:-1] + xp[:-2]
    bias = int(d[2:].min())
    p = d - bias
    p[:2] = 0
    ln, mins, maxs = split_groups(p)
    ng = ln.size
    widths = bitlen(maxs - mins)
    gid = np.repeat(np.arange(ng), ln)
    refbits = max(1, int(bitlen(mins.max())))
    wref = int(widths.min())
    wbits = int(bitlen(widths.max() - wref))
    lref = int(ln.min())
    lbits = int(bitlen(ln.max() - lref))
    need = max(int(bitlen(max(xp[0], xp[1]))) + 1, int(bitlen(abs(bias))) + 1)
    nb = max(1, (need + 7) // 8)
    extras = int(xp[0]).to_bytes(nb, "big") + int(xp[1]).to_bytes(nb, "big") + sign_magnitude(bias, nb)
    sec7data = (extras + pack_fixed(mins, refbits) + pack_fixed(widths - wref, wbits)
                + pack_fixed(ln - lref, lbits) + pack_varwidth(p - mins[gid], widths[gid]))
    sec5 = (struct.pack(">IBIH", 49, 5, n, 3) + struct.pack(">f", float(ref)) + sign_magnitude(0, 2)
            + sign_magnitude(D, 2) + bytes([refbits, 0, 1, 0]) + struct.pack(">f", 9.999e20)
            + b"\xff\xff\xff\xff" + struct.pack(">I", ng) + bytes([wref, wbits]) + struct.pack(">I", lref)
            + bytes([1]) + struct.pack(">I", int(ln[-1])) + bytes([lbits, 2, nb]))
    sec7 = struct.pack(">IB", 5 + len(sec7data), 7) + sec7data
    return sec5, sec7


def splice_sections(msg, sec5, sec7):
    """Replace sections 5 and 7 of a GRIB2 message and fix its total length."""
    if msg[:4] != b"GRIB" or msg[7] != 2:
        raise ValueError("not a GRIB2 message")
    pos = 16
    body = []
    while msg[pos:pos + 4] != b"7777":
        ln = int.from_bytes(msg[pos:pos + 4], "big")
        num = msg[pos + 4]
        body.append(sec5 if num == 5 else sec7 if num == 7 else msg[pos:pos + ln])
        pos += ln
    body = b"".join(body)
    return msg[:8] + (16 + len(body) + 4).to_bytes(8, "big") + body + b"7777"


def encode_complex(h, ints, D, groups="fixed"):
    """The message of template handle h carrying ints * 10**-D, packed like NCEP does."""
    sec5, sec7 = complex_sd2_var(ints, D) if groups == "variable" else complex_sd2(ints, D)
    return splice_sections(ec.codes_get_message(h), sec5, sec7)


# --------------------------------------------------------------------------
# Configuration shared with worker processes
# --------------------------------------------------------------------------

CFG = None
MODEL = None
TEMPLATES = {}


def init_worker(cfg):
    global CFG, MODEL, TEMPLATES
    CFG = cfg
    MODEL = RainModel(cfg["dataset"], cfg["seed"], cfg["members"], cfg["background"],
                      cfg["scenario_slots"], cfg["dips"], cfg.get("rain_model", "smooth"),
                      cfg.get("rain_size", "normal"))
    TEMPLATES = {}


def gefs_field_ints(var, member, step, dx):
    """Quantised values (int64, units 10**-D) of a non-rain GEFS field."""
    params = GEFS_VARS[var][7]
    D = GEFS_VARS[var][6]
    lat, lon = grid_axes(dx, 0.0)
    key = [CFG["seed"], 1, name_hash(var), member, step]
    v = smooth_field(params, lat, lon, key)
    return np.rint(v * (10.0 ** D)).astype(np.int64)


def gefs_apcp_ints(member, step):
    a, b = gefs_window(step)
    g = CFG["rain_grid"]
    if MODEL.tex is not None:
        return MODEL.window(member, a, b, g, 0.0)
    return MODEL.Q(member, b, g, 0.0) - MODEL.Q(member, a, g, 0.0)


def gefs_var_list(step):
    if CFG["vars"] == "full":
        return GEFS_FULL_F000 if step == 0 else GEFS_FULL_FCST
    return GEFS_APCP_F000 if step == 0 else GEFS_APCP_FCST


def gefs_ftime(var, step):
    stat = GEFS_VARS[var][5]
    if stat:
        a, b = gefs_window(step)
        return wgrib2_range(a, b, stat)
    return "anl" if step == 0 else "%d hour fcst" % step


def gefs_file_task(task):
    member, step, write = task
    cfg = CFG
    msgs, lines = [], []
    offset = 0
    run = "%s%02d" % (cfg["date"], cfg["cycle"])
    ens = "ENS=low-res ctl" if member == 0 else "ENS=+%d" % member
    for n, var in enumerate(gefs_var_list(step), start=1):
        name, level, _, _, _, stat, D, _ = GEFS_VARS[var]
        gname = cfg["rain_grid"] if var == "APCP" else cfg["grid"]
        tkey = ("gefs", var, gname)
        h = TEMPLATES.get(tkey)
        if h is None:
            h = gefs_template(var, GRIDS[gname], cfg["date"], cfg["cycle"])
            TEMPLATES[tkey] = h
        ec.codes_set_long(h, "typeOfProcessedData", 3 if member == 0 else 4)
        ec.codes_set_long(h, "typeOfEnsembleForecast", 1 if member == 0 else 3)
        ec.codes_set_long(h, "perturbationNumber", member)
        if stat:
            a, b = gefs_window(step)
            ec.codes_set(h, "stepRange", "%d-%d" % (a, b))
        else:
            ec.codes_set_long(h, "forecastTime", step)
        if var == "APCP":
            ints = gefs_apcp_ints(member, step)
        else:
            ints = gefs_field_ints(var, member, step, GRIDS[gname])
        groups = "variable" if var == "APCP" and cfg.get("rain_model") == "realistic" else "fixed"
        msg = encode_complex(h, ints, D, groups)
        msgs.append(msg)
        lines.append("%d:%d:d=%s:%s:%s:%s:%s\n" % (n, offset, run, name, level, gefs_ftime(var, step), ens))
        offset += len(msg)
    gpath, ipath = gefs_paths(cfg["date"], cfg["cycle"], member, step)
    out = cfg["out"]
    if write in ("both", "grib"):
        write_file(os.path.join(out, gpath), msgs, cfg["mtime"])
    if write in ("both", "index"):
        write_file(os.path.join(out, ipath), ["".join(lines).encode()], cfg["mtime"])
    return offset


def ecmwf_field(param, member, step, dx):
    params = ECMWF_PARAMS[param][2]
    lat, lon = grid_axes(dx, -180.0)
    key = [CFG["seed"], 2, name_hash(param), member, step]
    return smooth_field(params, lat, lon, key)


def ecmwf_tp_values(member, step):
    g = CFG["grid"]
    q = MODEL.Q(member, step, g, -180.0)
    d = MODEL.dip(member, step, g, -180.0)
    if d is not None:
        q = q - d
    return q.astype(np.float64) / 100000.0      # 0.01 mm -> m


def index_key_order(rng, has_levelist, has_number):
    keys = ["domain", "date", "time", "expver", "class", "type", "stream", "step"]
    if has_levelist:
        keys.append("levelist")
    keys.append("levtype")
    if has_number:
        keys.append("number")
    keys.append("param")
    r = rng.random()
    if r < 0.2:      # ..., "levtype", "step", ...  (seen in real indexes)
        keys.remove("step")
        keys.insert(keys.index("levtype") + 1, "step")
    elif r < 0.3 and has_number:
        keys.remove("step")
        keys.insert(keys.index("number") + 1, "step")
    return keys + ["_offset", "_length"]


def ecmwf_file_task(task):
    step, kind, write = task
    cfg = CFG
    gname = cfg["grid"]
    dx = GRIDS[gname]
    if kind == "oper":
        entries = [(p, "fc", 0) for p in cfg["params"]]
    else:
        mem = [m for m in cfg["members"] if m > 0]
        has_cf = 0 in cfg["members"] and cfg["control_in"] == "cf"
        entries = []
        for p in cfg["params"]:
            if has_cf:
                entries.append((p, "cf", 0))
            entries.extend((p, "pf", m) for m in mem)
    msgs, recs = [], []
    offset = 0
    for param, typ, member in entries:
        tkey = ("ecmwf", param, typ, gname)
        h = TEMPLATES.get(tkey)
        if h is None:
            h = ecmwf_template(param, dx, cfg["date"], cfg["cycle"], typ, cfg["tables_version"])
            TEMPLATES[tkey] = h
        if typ == "pf":
            ec.codes_set_long(h, "perturbationNumber", member)
        if param == "tp":
            ec.codes_set(h, "stepRange", "0-%d" % step if step > 0 else "0")
            vals = ecmwf_tp_values(member, step)
            bits = cfg["tp_bits"]
        else:
            ec.codes_set_long(h, "forecastTime", step)
            vals = ecmwf_field(param, member, step, dx)
            bits = ECMWF_PARAMS[param][1]
        ec.codes_set_long(h, "bitsPerValue", bits)
        ec.codes_set_values(h, vals.ravel())
        msg = ec.codes_get_message(h)
        rec = {"domain": "g", "date": cfg["date"], "time": "%02d00" % cfg["cycle"], "expver": "0001",
               "class": "od", "type": typ, "stream": "oper" if typ == "fc" else "enfo",
               "step": str(step), "levtype": "sfc", "param": param,
               "_offset": offset, "_length": len(msg)}
        if typ == "pf":
            rec["number"] = str(member)
        msgs.append(msg)
        recs.append(rec)
        offset += len(msg)
    rng = np.random.default_rng([cfg["seed"], 2, step, 1 if kind == "enfo" else 2])
    lines = []
    for rec in recs:
        keys = index_key_order(rng, "levelist" in rec, "number" in rec)
        lines.append(json.dumps({k: rec[k] for k in keys if k in rec}) + "\n")
    if cfg["shuffle_index"]:
        perm = rng.permutation(len(lines))
        lines = [lines[i] for i in perm]
    gpath, ipath = ecmwf_paths(cfg["date"], cfg["cycle"], step, kind)
    out = cfg["out"]
    if write in ("both", "grib"):
        write_file(os.path.join(out, gpath), msgs, cfg["mtime"])
    if write in ("both", "index"):
        write_file(os.path.join(out, ipath), ["".join(lines).encode()], cfg["mtime"])
    return offset


# --------------------------------------------------------------------------
# Planning and running a generation
# --------------------------------------------------------------------------

def parse_missing(specs, dataset):
    """Return {file_key: what_is_missing}; file_key is (member, step) or (kind, step)."""
    out = {}
    for spec in specs or []:
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            parts = item.split(":")
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("grib", "index", "both")):
                raise SystemExit("invalid --missing item %r (use MEMBER:STEP[:grib|index])" % item)
            what = parts[2] if len(parts) == 3 else "both"
            who, step = parts[0], int(parts[1])
            if dataset == "gefs":
                key = (int(who), step)
            else:
                if who in ("enfo", "ef"):
                    key = ("enfo", step)
                elif who == "oper":
                    key = ("oper", step)
                else:
                    key = ("ctl" if int(who) == 0 else "enfo", step)
            out[key] = what
    return out


def plan(cfg, missing):
    """List of (task, paths, missing_what) in a deterministic order."""
    items = []
    if cfg["dataset"] == "gefs":
        for m in cfg["members"]:
            for s in cfg["steps"]:
                gpath, ipath = gefs_paths(cfg["date"], cfg["cycle"], m, s)
                items.append(((m, s), {"member": m, "step": s, "grib": gpath, "index": ipath},
                              missing.get((m, s))))
    else:
        kinds = []
        pf_members = [m for m in cfg["members"] if m > 0]
        if pf_members or (0 in cfg["members"] and cfg["control_in"] == "cf"):
            kinds.append("enfo")
        if 0 in cfg["members"] and cfg["control_in"] == "oper":
            kinds.append("oper")
        for s in cfg["steps"]:
            for k in kinds:
                gpath, ipath = ecmwf_paths(cfg["date"], cfg["cycle"], s, k)
                miss = missing.get((k, s))
                if miss is None and k == ("oper" if cfg["control_in"] == "oper" else "enfo"):
                    miss = missing.get(("ctl", s))
                items.append(((s, k), {"kind": k, "step": s, "grib": gpath, "index": ipath}, miss))
    return items


def run_generate(args):
    dataset = args.dataset
    members = parse_int_list(args.members, "member")
    steps = parse_int_list(args.steps, "step")
    maxm = 30 if dataset == "gefs" else 50
    if members and (members[0] < 0 or members[-1] > maxm):
        raise SystemExit("%s members must be within 0-%d" % (dataset, maxm))
    if any(s % SLOT_H for s in steps):
        raise SystemExit("steps must be multiples of 3 hours")
    if steps and steps[-1] > HORIZON_H and args.scenario is None:
        log("note: realistic rain is defined up to %d h; later slots only get scenario rain" % HORIZON_H)
    if not re.fullmatch(r"\d{8}", args.date):
        raise SystemExit("--date must be YYYYMMDD")
    run_dt = dt.datetime.strptime(args.date, "%Y%m%d") + dt.timedelta(hours=args.cycle)
    scenario, slots, dips, background = load_scenario(args.scenario, dataset, members, steps)
    if args.background:
        background = args.background
    cfg = {
        "dataset": dataset, "date": args.date, "cycle": args.cycle, "seed": args.seed,
        "members": members, "steps": steps, "background": background,
        "scenario_slots": slots, "dips": dips, "out": os.path.abspath(args.out),
        "mtime": (run_dt + dt.timedelta(hours=6)).replace(tzinfo=dt.timezone.utc).timestamp()
        if args.mtime == "run" else None,
    }
    # Only a realistic rain model is recorded, so that default runs keep byte-identical truth files.
    if args.rain_model == "realistic":
        cfg.update({"rain_model": "realistic", "rain_size": args.rain_size or "normal"})
    elif args.rain_size:
        raise SystemExit("--rain-size needs --rain-model realistic")
    if dataset == "gefs":
        cfg.update({"grid": args.grid or "0p25", "rain_grid": args.rain_grid or "0p25", "vars": args.vars})
    else:
        ctl = args.control_in
        if ctl == "auto":
            ctl = "oper" if run_dt >= ECMWF_CONTROL_CUTOVER else "cf"
        params = [p.strip() for p in args.params.split(",") if p.strip()]
        for p in params:
            if p not in ECMWF_PARAMS:
                raise SystemExit("unknown ECMWF param %r (known: %s)" % (p, ",".join(ECMWF_PARAMS)))
        tp_bits = args.tp_bits or (24 if args.scenario else 16)
        tables_version = args.tables_version or (32 if run_dt >= dt.datetime(2025, 1, 1) else 27)
        cfg.update({"grid": args.grid or "0p25", "params": params, "control_in": ctl,
                    "shuffle_index": args.shuffle_index, "tp_bits": tp_bits,
                    "tables_version": tables_version})
    missing = parse_missing(args.missing, dataset)
    items = plan(cfg, missing)

    tasks = []
    for key, info, miss in items:
        if miss == "both":
            continue
        # A task is told which part(s) to write: both, or the one that is not missing.
        write = {None: "both", "grib": "index", "index": "grib"}[miss]
        tasks.append(key + (write,))
    t0 = time.time()
    log("gen_mirror: %s %s%02d: %d files to write (%d members, %d steps), %d jobs"
        % (dataset, args.date, args.cycle, len(tasks), len(members), len(steps), args.jobs))
    fn = gefs_file_task if dataset == "gefs" else ecmwf_file_task
    total_bytes = 0
    done = 0
    last = t0
    if args.jobs <= 1:
        init_worker(cfg)
        results = map(fn, tasks)
        pool = None
    else:
        pool = mp.Pool(args.jobs, initializer=init_worker, initargs=(cfg,))
        results = pool.imap(fn, tasks, chunksize=max(1, min(16, len(tasks) // (args.jobs * 8) or 1)))
    for nbytes in results:
        total_bytes += nbytes
        done += 1
        now = time.time()
        if now - last >= 2 or done == len(tasks):
            last = now
            log("  %d/%d files, %.1f MB, %.1fs" % (done, len(tasks), total_bytes / 1e6, now - t0))
    if pool is not None:
        pool.close()
        pool.join()

    # Truth file.
    truth = {
        "generator": "tools/gen_mirror.py", "generator_version": GENERATOR_VERSION,
        "dataset": dataset, "date": args.date, "cycle": args.cycle, "run": "%s%02d" % (args.date, args.cycle),
        "config": {k: v for k, v in cfg.items() if k not in ("out", "scenario_slots", "dips", "mtime")},
        "mtime": cfg["mtime"],
        "rain": {
            "background": background,
            "slot_hours": SLOT_H,
            "units": "mm (= kg m-2)" if dataset == "gefs" else "m of water equivalent in GRIB; slots in mm",
            "scenario_file": os.path.abspath(args.scenario) if args.scenario else None,
            "scenario": scenario,
            "scenario_slots": slots,
            "dips": dips,
        },
        "files": [],
    }
    if dataset == "gefs":
        truth["rain"]["apcp_windows"] = {str(s): list(gefs_window(s)) for s in steps if s > 0}
        truth["rain"]["rule"] = ("APCP at step b covers [a, b] with a = 6*floor((b-1)/6): "
                                 "f003=0-3, f006=0-6, f009=6-9, f012=6-12, ...")
        truth["precision"] = {
            "APCP": "exact: decimalScaleFactor=2, binaryScaleFactor=0; decoded*100 is an integer",
            "other": "exact at each variable's decimalScaleFactor (binaryScaleFactor=0)",
            "packing": "grid_complex_spatial_differencing, order 2, groups of 16, E=0, R=min",
        }
    else:
        truth["rain"]["rule"] = "tp at step t = (sum of slots up to t) / 1000 m; a dip lowers one message only"
        truth["control_in"] = cfg["control_in"]
        truth["precision"] = {
            "tp": "grid_ccsds, decimalScaleFactor=0, bitsPerValue=%d: |decoded - intended| <= "
                  "2**(binaryScaleFactor-1); round(tp*1000, 2) recovers the slot sums in mm "
                  "when bitsPerValue=24" % cfg["tp_bits"],
            "other": "grid_ccsds, bitsPerValue=16, error <= 2**(binaryScaleFactor-1)",
        }
    if cfg.get("rain_model") == "realistic":
        truth["rain"]["model"] = ("realistic (%s): textured storms, sized like real messages; "
                                  "see tools/README-gen.md" % cfg["rain_size"])
        if dataset == "gefs":
            truth["precision"]["packing"] = ("grid_complex_spatial_differencing, order 2, E=0, R=min; APCP in "
                                             "variable-length groups (1-%d values), the other fields in groups "
                                             "of 16" % VG_MAX_LEN)
    for key, info, miss in items:
        info = dict(info)
        info["missing"] = miss
        truth["files"].append(info)
    tpath = os.path.join(cfg["out"], "truth", "%s_%s%02d.json" % (dataset, args.date, args.cycle))
    write_file(tpath, [json.dumps(truth, indent=1).encode() + b"\n"], None)
    dtime = time.time() - t0
    log("gen_mirror: done in %.1fs, %d files, %.1f MB; truth in %s" % (dtime, len(tasks), total_bytes / 1e6, tpath))
    return 0


# --------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------

VERIFY_CFG = None


def init_verify(cfg):
    global VERIFY_CFG
    VERIFY_CFG = cfg
    init_worker(cfg)


def scan_grib(path):
    """List of dicts of keys for every message of a GRIB file, read with ecCodes."""
    out = []
    with open(path, "rb") as f:
        while True:
            h = ec.codes_grib_new_from_file(f)
            if h is None:
                break
            try:
                d = {"offset": ec.codes_get_long(h, "offset"), "totalLength": ec.codes_get_long(h, "totalLength"),
                     "h": h}
                out.append(d)
            except Exception:
                ec.codes_release(h)
                raise
    return out


def gk(h, key, kind=int):
    if not ec.codes_is_defined(h, key):
        return None
    if ec.codes_is_missing(h, key):
        return None
    if kind is int:
        return ec.codes_get_long(h, key)
    if kind is float:
        return ec.codes_get_double(h, key)
    return ec.codes_get_string(h, key)


def verify_gefs_file(info, check_values):
    cfg = CFG
    errs = []
    root = cfg["out"]
    gpath = os.path.join(root, info["grib"])
    ipath = os.path.join(root, info["index"])
    member, step = info["member"], info["step"]
    lines = open(ipath).read()
    if not lines.endswith("\n"):
        errs.append("%s: does not end with a newline" % info["index"])
    lines = lines.splitlines()
    msgs = scan_grib(gpath)
    size = os.path.getsize(gpath)
    try:
        vars_ = gefs_var_list(step)
        if len(lines) != len(msgs) or len(msgs) != len(vars_):
            errs.append("%s: %d idx lines, %d messages, %d expected" % (info["grib"], len(lines), len(msgs), len(vars_)))
            return errs
        run = "%s%02d" % (cfg["date"], cfg["cycle"])
        for i, (line, m, var) in enumerate(zip(lines, msgs, vars_)):
            h = m["h"]
            f = line.split(":")
            if len(f) != 7:
                errs.append("%s line %d: %d fields" % (info["index"], i + 1, len(f)))
                continue
            nxt = int(lines[i + 1].split(":")[1]) if i + 1 < len(lines) else size
            length = nxt - int(f[1])
            if int(f[0]) != i + 1 or int(f[1]) != m["offset"] or length != m["totalLength"]:
                errs.append("%s line %d: offset/length %s/%d vs GRIB %d/%d" % (
                    info["index"], i + 1, f[1], length, m["offset"], m["totalLength"]))
            name, level, disc, cat, num, stat, D, _ = GEFS_VARS[var]
            got = (gk(h, "discipline"), gk(h, "parameterCategory"), gk(h, "parameterNumber"))
            if got != (disc, cat, num) or f[3] != name or f[4] != level:
                errs.append("%s line %d: %s:%s vs GRIB param %s" % (info["index"], i + 1, f[3], f[4], got))
            t1, s1, v1, t2, s2, v2 = LEVELS[level]
            if (gk(h, "typeOfFirstFixedSurface"), gk(h, "typeOfSecondFixedSurface")) != (t1, t2):
                errs.append("%s line %d: level types differ" % (info["index"], i + 1))
            if f[2] != "d=" + run or "%d%02d" % (gk(h, "dataDate"), gk(h, "dataTime") // 100) != run:
                errs.append("%s line %d: run date differs" % (info["index"], i + 1))
            # FTIME from the GRIB keys, the way wgrib2 prints it.
            pdt = gk(h, "productDefinitionTemplateNumber")
            ft = gk(h, "forecastTime")
            if pdt == 11:
                op = {v: k for k, v in STAT_CODES.items()}[gk(h, "typeOfStatisticalProcessing")]
                want = wgrib2_range(ft, ft + gk(h, "lengthOfTimeRange"), op)
                sr = gk(h, "stepRange", str)
                a, b = gefs_window(step)
                if sr != "%d-%d" % (a, b):
                    errs.append("%s line %d: stepRange %s, want %d-%d" % (info["index"], i + 1, sr, a, b))
            else:
                want = "anl" if ft == 0 else "%d hour fcst" % ft
            if f[5] != want or f[5] != gefs_ftime(var, step):
                errs.append("%s line %d: ftime %r, GRIB says %r" % (info["index"], i + 1, f[5], want))
            tef = gk(h, "typeOfEnsembleForecast")
            pn = gk(h, "perturbationNumber")
            want_ens = {0: "ENS=hi-res ctl", 1: "ENS=low-res ctl", 2: "ENS=-%d" % pn, 3: "ENS=+%d" % pn}.get(tef)
            if f[6] != want_ens or pn != member:
                errs.append("%s line %d: %r vs GRIB type %s number %s" % (info["index"], i + 1, f[6], tef, pn))
            if (gk(h, "packingType", str) != "grid_complex_spatial_differencing"
                    or gk(h, "orderOfSpatialDifferencing") != 2 or gk(h, "binaryScaleFactor") != 0):
                errs.append("%s line %d: packing %s order %s" % (info["index"], i + 1, gk(h, "packingType", str),
                                                                gk(h, "orderOfSpatialDifferencing")))
            if check_values:
                vals = ec.codes_get_values(h)
                if var == "APCP":
                    want_i = gefs_apcp_ints(member, step).ravel()
                    D = 2
                else:
                    gname = cfg["grid"]
                    want_i = gefs_field_ints(var, member, step, GRIDS[gname]).ravel()
                scaled = vals * (10.0 ** D)
                if vals.size != want_i.size:
                    errs.append("%s msg %d: %d values, want %d" % (info["grib"], i + 1, vals.size, want_i.size))
                else:
                    # Exact: integer reference value, binaryScaleFactor 0.
                    tol = 1e-6 + 1e-9 * np.abs(want_i)
                    bad = np.abs(scaled - want_i) > tol
                    if bad.any():
                        k = int(np.argmax(bad))
                        errs.append("%s msg %d (%s): %d values differ, e.g. [%d] %r vs %r" % (
                            info["grib"], i + 1, var, int(bad.sum()), k, vals[k], want_i[k] / 10.0 ** D))
        if msgs and msgs[-1]["offset"] + msgs[-1]["totalLength"] != size:
            errs.append("%s: trailing bytes after the last message" % info["grib"])
    finally:
        for m in msgs:
            ec.codes_release(m["h"])
    return errs


def verify_ecmwf_file(info, check_values):
    cfg = CFG
    errs = []
    root = cfg["out"]
    gpath = os.path.join(root, info["grib"])
    ipath = os.path.join(root, info["index"])
    step, kind = info["step"], info["kind"]
    text = open(ipath).read()
    if not text.endswith("\n"):
        errs.append("%s: does not end with a newline" % info["index"])
    recs = []
    for n, line in enumerate(text.splitlines(), start=1):
        r = json.loads(line)
        if json.dumps(r) != line:
            errs.append("%s line %d: not in json.dumps format" % (info["index"], n))
        for k, v in r.items():
            if (k in ("_offset", "_length")) != isinstance(v, int):
                errs.append("%s line %d: key %s has type %s" % (info["index"], n, k, type(v).__name__))
        recs.append(r)
    recs.sort(key=lambda r: r["_offset"])
    msgs = scan_grib(gpath)
    size = os.path.getsize(gpath)
    try:
        if len(recs) != len(msgs):
            errs.append("%s: %d index lines, %d messages" % (info["grib"], len(recs), len(msgs)))
            return errs
        if msgs and msgs[-1]["offset"] + msgs[-1]["totalLength"] != size:
            errs.append("%s: trailing bytes after the last message" % info["grib"])
        run_time = "%02d00" % cfg["cycle"]
        for r, m in zip(recs, msgs):
            h = m["h"]
            where = "%s @%d" % (info["index"], r["_offset"])
            if r["_offset"] != m["offset"] or r["_length"] != m["totalLength"]:
                errs.append("%s: offset/length %d/%d vs GRIB %d/%d" % (where, r["_offset"], r["_length"],
                                                                       m["offset"], m["totalLength"]))
            want = {"domain": "g", "date": cfg["date"], "time": run_time, "expver": "0001", "class": "od",
                    "step": str(step), "levtype": "sfc"}
            for k, v in want.items():
                if r.get(k) != v:
                    errs.append("%s: %s=%r, want %r" % (where, k, r.get(k), v))
            mars = {k: gk(h, k, str) for k in ("class", "type", "stream", "expver", "shortName", "levtype")}
            if (mars["class"], mars["type"], mars["stream"], mars["expver"]) != (
                    r["class"], r["type"], r["stream"], r["expver"]):
                errs.append("%s: mars keys %s vs index %s" % (where, mars, r))
            if mars["shortName"] != r["param"] or mars["levtype"] != r["levtype"]:
                errs.append("%s: shortName %s levtype %s vs index %s %s" % (
                    where, mars["shortName"], mars["levtype"], r["param"], r["levtype"]))
            if str(gk(h, "endStep")) != r["step"]:
                errs.append("%s: endStep %s vs step %s" % (where, gk(h, "endStep"), r["step"]))
            if r["param"] == "tp":
                sr = gk(h, "stepRange", str)
                if sr != ("0-%d" % step if step else "0"):
                    errs.append("%s: tp stepRange %s" % (where, sr))
            if kind == "oper":
                if r["type"] != "fc" or r["stream"] != "oper" or "number" in r:
                    errs.append("%s: oper control must be type fc, stream oper, no number" % where)
                member = 0
            else:
                if r["type"] == "cf":
                    if "number" in r or gk(h, "perturbationNumber") != 0:
                        errs.append("%s: cf must have no number in the index and number 0 in GRIB" % where)
                    member = 0
                else:
                    member = int(r["number"])
                    if gk(h, "perturbationNumber") != member:
                        errs.append("%s: number %s vs GRIB %s" % (where, r["number"], gk(h, "perturbationNumber")))
                if gk(h, "numberOfForecastsInEnsemble") != 51:
                    errs.append("%s: numberOfForecastsInEnsemble %s" % (where, gk(h, "numberOfForecastsInEnsemble")))
            if gk(h, "packingType", str) != "grid_ccsds":
                errs.append("%s: packing %s" % (where, gk(h, "packingType", str)))
            if check_values:
                vals = ec.codes_get_values(h)
                if r["param"] == "tp":
                    want_v = ecmwf_tp_values(member, step).ravel()
                else:
                    want_v = ecmwf_field(r["param"], member, step, GRIDS[cfg["grid"]]).ravel()
                E = gk(h, "binaryScaleFactor")
                tol = 2.0 ** (E - 1) * 1.001 + 1e-12 + 1e-7 * np.abs(want_v).max()
                if gk(h, "bitsPerValue") == 0:
                    tol = 1e-12 + 1e-7 * np.abs(want_v).max()
                if vals.size != want_v.size:
                    errs.append("%s: %d values, want %d" % (where, vals.size, want_v.size))
                else:
                    diff = np.abs(vals - want_v)
                    if diff.max() > tol:
                        k = int(np.argmax(diff))
                        errs.append("%s: %s values differ by up to %g (tol %g), e.g. [%d] %r vs %r" % (
                            where, r["param"], diff.max(), tol, k, vals[k], want_v[k]))
    finally:
        for m in msgs:
            ec.codes_release(m["h"])
    return errs


def verify_task(task):
    info, check_values = task
    try:
        if CFG["dataset"] == "gefs":
            return info["grib"], verify_gefs_file(info, check_values)
        return info["grib"], verify_ecmwf_file(info, check_values)
    except Exception as e:  # report, do not crash the whole verification
        return info["grib"], ["%s: exception %s: %s" % (info["grib"], type(e).__name__, e)]


def grib_ls_check(root, info, dataset):
    """Cross-check offsets/lengths against the grib_ls command-line tool."""
    errs = []
    exe = shutil.which("grib_ls")
    if exe is None:
        return errs
    gpath = os.path.join(root, info["grib"])
    out = subprocess.run([exe, "-p", "offset:i,totalLength,shortName,stepRange,number,packingType", gpath],
                         capture_output=True, text=True, check=False).stdout
    rows = []
    for line in out.splitlines():
        p = line.split()
        if len(p) == 6 and p[0].isdigit() and p[1].isdigit():
            rows.append((int(p[0]), int(p[1]), p[2], p[3], p[4], p[5]))
    text = open(os.path.join(root, info["index"])).read().splitlines()
    if dataset == "gefs":
        offs = [int(l.split(":")[1]) for l in text]
        lens = [b - a for a, b in zip(offs, offs[1:] + [os.path.getsize(gpath)])]
    else:
        recs = sorted((json.loads(l) for l in text), key=lambda r: r["_offset"])
        offs = [r["_offset"] for r in recs]
        lens = [r["_length"] for r in recs]
    if [(r[0], r[1]) for r in rows] != list(zip(offs, lens)):
        errs.append("%s: grib_ls offsets/lengths disagree with the index" % info["grib"])
    return errs


def run_verify(args):
    root = os.path.abspath(args.verify)
    tdir = os.path.join(root, "truth")
    if not os.path.isdir(tdir):
        log("verify: no truth directory in %s" % root)
        return 1
    total_errs = 0
    nfiles = 0
    t0 = time.time()
    for tname in sorted(os.listdir(tdir)):
        if not tname.endswith(".json"):
            continue
        truth = json.load(open(os.path.join(tdir, tname)))
        if truth.get("generator_version") != GENERATOR_VERSION:
            log("verify: %s: generator version %s, this is %s" % (tname, truth.get("generator_version"),
                                                                  GENERATOR_VERSION))
            total_errs += 1
            continue
        cfg = dict(truth["config"])
        cfg["out"] = root
        cfg["scenario_slots"] = truth["rain"]["scenario_slots"]
        cfg["dips"] = truth["rain"]["dips"]
        cfg["mtime"] = truth.get("mtime")
        dataset = cfg["dataset"]
        errs = []
        present = []
        for info in truth["files"]:
            miss = info.get("missing")
            for part in ("grib", "index"):
                p = os.path.join(root, info[part])
                should = miss not in ("both", part)
                if os.path.exists(p) != should:
                    errs.append("%s: %s but expected %s" % (info[part], "present" if os.path.exists(p) else "absent",
                                                            "present" if should else "absent"))
                elif should:
                    st = os.stat(p)
                    if st.st_mode & 0o777 != 0o644:
                        errs.append("%s: mode %o" % (info[part], st.st_mode & 0o777))
            if miss is None:
                present.append(info)
        # Value checks on all files, or on an evenly spread sample.
        nval = len(present) if args.verify_values < 0 else min(args.verify_values, len(present))
        pick = set(np.linspace(0, len(present) - 1, nval).round().astype(int).tolist()) if nval else set()
        tasks = [(info, i in pick) for i, info in enumerate(present)]
        if args.jobs <= 1:
            init_verify(cfg)
            results = map(verify_task, tasks)
            pool = None
        else:
            pool = mp.Pool(args.jobs, initializer=init_verify, initargs=(cfg,))
            results = pool.imap_unordered(verify_task, tasks, chunksize=4)
        for _, e in results:
            errs.extend(e)
        if pool is not None:
            pool.close()
            pool.join()
        for info in present[:3] + present[-2:]:
            errs.extend(grib_ls_check(root, info, dataset))
        # Files in the run's directories that the truth does not know about.
        known = set()
        for info in truth["files"]:
            known.add(os.path.normpath(info["grib"]))
            known.add(os.path.normpath(info["index"]))
        for d in sorted(set(os.path.dirname(i["grib"]) for i in truth["files"])):
            full = os.path.join(root, d)
            if os.path.isdir(full):
                for fn in sorted(os.listdir(full)):
                    rel = os.path.normpath(os.path.join(d, fn))
                    if rel not in known:
                        errs.append("%s: unexpected file" % rel)
        nfiles += len(present)
        for e in errs[:50]:
            log("  " + e)
        if len(errs) > 50:
            log("  ... %d more" % (len(errs) - 50))
        log("verify %s: %d files present, values checked in %d, %d problems" % (tname, len(present), nval, len(errs)))
        total_errs += len(errs)
    log("verify: %s, %d files in %.1fs" % ("OK" if total_errs == 0 else "%d PROBLEMS" % total_errs, nfiles,
                                          time.time() - t0))
    return 0 if total_errs == 0 else 1


# --------------------------------------------------------------------------
# Self-check of the realistic rain model: message sizes against real ones
# --------------------------------------------------------------------------

# Real message lengths (next offset - offset in a real index) that --rain-model realistic is
# calibrated to; tools/README-gen.md tabulates them with more context.
REAL_SIZES = {
    "gefs-0p25-3h": (242336, "test/data/dynamical/gep01.t00z.pgrb2s.0p25.f015.idx, APCP 12-15 h (2025-08-01 00z)"),
    "gefs-0p25-heavy-3h": (370000, "a wet day: about 370 KB, as measured on an independent real-size mirror"),
    "ecmwf-0p25-6h": (653441, "test/data/dynamical/aifs_single_20250301_00z_6h.index, tp step 6 (AIFS 0.25)"),
    "gefs-0p5-6h": (101339, "test/data/dynamical/gec00.t00z.pgrb2a.0p50.f432.idx, APCP 426-432 h"),
}
SIZE_TOLERANCE = 0.15        # the mean generated size must be within 15 % of the real one ...
SIZE_CALIBRATED = ("gefs-0p25-3h", "gefs-0p25-heavy-3h", "ecmwf-0p25-6h")   # ... for these kinds
SELF_CHECK_RUNS = [
    # (label, dataset, cycle, arguments)
    ("normal", "gefs", 0, ["--members", "0-3", "--steps", "0-24/3", "--vars", "apcp", "--grid", "2p5",
                           "--rain-grid", "0p25"]),
    ("heavy", "gefs", 12, ["--members", "0-3", "--steps", "0-12/3", "--vars", "apcp", "--grid", "2p5",
                           "--rain-grid", "0p25", "--rain-size", "heavy"]),
    ("0p5", "gefs", 6, ["--members", "0-3", "--steps", "0-12/6", "--vars", "apcp", "--grid", "2p5",
                        "--rain-grid", "0p5"]),
    ("normal", "ecmwf", 0, ["--members", "0-3", "--steps", "0-24/6", "--grid", "0p25", "--params", "tp"]),
]


def self_check_messages(root, dataset, cycle):
    """(member, step, length, values, E) of every APCP / tp message of a generated run, from the files."""
    out = []
    truth = json.load(open(os.path.join(root, "truth", "%s_20251001%02d.json" % (dataset, cycle))))
    for info in truth["files"]:
        with open(os.path.join(root, info["grib"]), "rb") as f:
            while True:
                h = ec.codes_grib_new_from_file(f)
                if h is None:
                    break
                try:
                    if dataset == "gefs":
                        if (gk(h, "discipline"), gk(h, "parameterCategory"), gk(h, "parameterNumber")) != (0, 1, 8):
                            continue
                        member = gk(h, "perturbationNumber")
                    else:
                        if gk(h, "shortName", str) != "tp":
                            continue
                        member = gk(h, "perturbationNumber") or 0
                    out.append((member, info["step"], gk(h, "totalLength"), ec.codes_get_values(h),
                                gk(h, "binaryScaleFactor")))
                finally:
                    ec.codes_release(h)
    return out


def self_check_kinds(dataset, label):
    """(kind, test on the step) of the messages whose sizes the self-check reports for a run."""
    if dataset == "ecmwf":
        return [("ecmwf-0p25-%dh" % h, lambda s, h=h: s == h) for h in (6, 12, 24)]
    if label == "0p5":
        return [("gefs-0p5-6h", lambda s: s % 6 == 0)]
    tag = "gefs-0p25-" if label == "normal" else "gefs-0p25-heavy-"
    return [(tag + "3h", lambda s: s % 6 == 3), (tag + "6h", lambda s: s % 6 == 0)]


def run_self_check(args):
    """Generate, verify and measure small realistic-rain runs; non-zero exit when a check fails."""
    import tempfile
    keep = args.out is not None
    root = os.path.abspath(args.out) if keep else tempfile.mkdtemp(prefix="gen-sizes-check-")
    problems = []
    rows = []
    t0 = time.time()
    try:
        for label, dataset, cycle, extra in SELF_CHECK_RUNS:
            argv = ["--out", root, "--jobs", str(args.jobs), "--seed", str(args.seed), dataset, "--date", "20251001",
                    "--cycle", str(cycle), "--rain-model", "realistic"] + extra
            if run_generate(build_parser().parse_args(argv)) != 0:
                problems.append("%s %s: generation failed" % (dataset, label))
                continue
            msgs = self_check_messages(root, dataset, cycle)
            by = {(m, s): (n, v, E) for m, s, n, v, E in msgs}
            members = sorted(set(m for m, _, _, _, _ in msgs))
            for m, s, n, v, E in msgs:
                where = "%s %s member %d step %d" % (dataset, label, m, s)
                if np.isnan(v).any() or v.min() < 0:
                    problems.append("%s: NaN or negative values" % where)
                zero = v == 0.0
                if dataset == "gefs":
                    if np.abs(v * 100 - np.rint(v * 100)).max() > 1e-6:
                        problems.append("%s: APCP * 100 is not an integer" % where)
                    if not (0.4 <= zero.mean() <= 0.9):
                        problems.append("%s: %.2f of the values are exact zeros" % (where, zero.mean()))
                elif s > 0:
                    # Exact zeros, and nothing between 0 and half a packing step.
                    if (v[~zero] < 2.0 ** (E - 1)).any() or not (0.05 <= zero.mean() <= 0.6):
                        problems.append("%s: zeros are not exact, or %.2f of them" % (where, zero.mean()))
                elif v.max() != 0.0:
                    problems.append("%s: tp at step 0 is not zero" % where)
            # Accumulations: GEFS 0-6 >= 0-3 (the same bucket); ECMWF tp does not decrease (within packing).
            for m in members:
                for (_, s), (n, v, E) in sorted((k, x) for k, x in by.items() if k[0] == m):
                    prev = by.get((m, s - 3)) if dataset == "gefs" else by.get((m, s - 6))
                    if prev is None:
                        continue
                    if dataset == "gefs" and s % 6 == 0:
                        if (v < prev[1] - 1e-9).any():
                            problems.append("gefs %s member %d: APCP f%03d < f%03d of the same bucket" % (
                                label, m, s, s - 3))
                    elif dataset == "ecmwf":
                        tol = 2.0 ** (E - 1) + 2.0 ** (prev[2] - 1) + 1e-12
                        if (v < prev[1] - tol).any():
                            problems.append("ecmwf member %d: tp at %d h below tp at %d h" % (m, s, s - 6))
            # Sizes by kind of message.
            kinds = self_check_kinds(dataset, label)
            for kind, pick in kinds:
                sizes = np.array([n for m, s, n, v, E in msgs if s > 0 and pick(s)])
                if sizes.size == 0:
                    continue
                real = REAL_SIZES.get(kind)
                rows.append((kind, real, sizes))
                if kind in SIZE_CALIBRATED and abs(sizes.mean() / real[0] - 1) > SIZE_TOLERANCE:
                    problems.append("%s: mean size %.0f is not within %d %% of the real %d" % (
                        kind, sizes.mean(), SIZE_TOLERANCE * 100, real[0]))
        vargs = argparse.Namespace(verify=root, verify_values=-1, jobs=args.jobs)
        if run_verify(vargs) != 0:
            problems.append("--verify found problems")
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    print("%-20s %9s %9s %9s %9s %7s  %s" % ("message", "real", "generated", "min", "max", "diff", "real size from"))
    for kind, real, sizes in rows:
        diff = "%+.1f%%" % (100 * (sizes.mean() / real[0] - 1)) if real else ""
        print("%-20s %9s %9.0f %9d %9d %7s  %s" % (kind, real[0] if real else "-", sizes.mean(), sizes.min(),
                                                   sizes.max(), diff, real[1] if real else "(no real figure)"))
    for p in problems:
        print("PROBLEM: " + p)
    print("self-check: %s in %.1fs" % ("OK" if not problems else "%d problems" % len(problems), time.time() - t0))
    return 0 if not problems else 1


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

EPILOG = """examples:
  gen_mirror.py --out DIR gefs --date 20251001 --cycle 0 --members 0-30 --steps 0-240/3 \\
      --vars apcp --grid 1p0 --rain-grid 0p25
  gen_mirror.py --out DIR ecmwf --date 20251001 --cycle 0 --members 0-50 \\
      --steps 0-144/3,150-360/6 --params tp,2t,msl,10u,10v --shuffle-index
  gen_mirror.py --out DIR gefs ... --scenario tools/gen_scenarios/exceedance.json
  gen_mirror.py --out DIR gefs ... --rain-model realistic [--rain-size heavy]   # real message sizes
  gen_mirror.py --verify DIR          # re-read DIR, compare with DIR/truth/*.json
  gen_mirror.py --self-check          # realistic rain: sizes against real ones, decoded values

Global options (--out, --jobs, --seed, --mtime) may come before or after the dataset.

scenario JSON (see tools/README-gen.md; boxes are [lon_min, lat_min, lon_max, lat_max]):
  {"background": "none",
   "entries": [
     {"member": 3, "from_h": 6, "to_h": 9, "mm": 30.0, "box": [30, -5, 40, 5]},
     {"member": "all", "dataset": "gefs", "from_h": 0, "to_h": 24, "mm": 24.0, "box": [...]},
     {"member": "1-5", "from_h": 0, "to_h": 12, "mm_per_slot": 2.5, "box": [...]},
     {"from_h": 0, "to_h": 24, "mm_by_member": {"1": 10, "2": 60}, "box": [...]},
     {"member": 5, "dataset": "ecmwf", "dip_at_h": 12, "below_previous_mm": 0.3, "box": [...]},
     {"member": 6, "dataset": "ecmwf", "dip_at_h": 12, "mm": 0.5, "box": [...]}]}
"""


def build_parser():
    p = argparse.ArgumentParser(
        prog="gen_mirror.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    p.add_argument("--out", help="mirror root directory (created if needed)")
    p.add_argument("--verify", metavar="DIR", help="verify a generated mirror against DIR/truth/*.json and exit")
    p.add_argument("--self-check", action="store_true",
                   help="generate small realistic-rain runs (into --out DIR, or a temporary directory), check "
                        "their message sizes against the real ones and their decoded values, print the table")
    p.add_argument("--verify-values", type=int, default=-1, metavar="N",
                   help="with --verify: decode and check values in N files per run (default: all)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPU count)")
    p.add_argument("--seed", type=int, default=1, help="random seed; output is deterministic for a seed")
    p.add_argument("--mtime", choices=["run", "now"], default="run",
                   help="file modification time: run time + 6 h (default, deterministic) or now")
    sub = p.add_subparsers(dest="dataset")

    def common(sp, members, steps):
        # The global options are accepted after the dataset name too.
        sp.add_argument("--out", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sp.add_argument("--jobs", type=int, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sp.add_argument("--seed", type=int, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sp.add_argument("--mtime", choices=["run", "now"], default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sp.add_argument("--date", required=True, help="run date YYYYMMDD")
        sp.add_argument("--cycle", type=int, default=0, choices=[0, 6, 12, 18], help="run hour (default 0)")
        sp.add_argument("--members", default=members, help="member list, e.g. 0-30 or 0,1,5 (0 = control)")
        sp.add_argument("--steps", default=steps, help="forecast hours, e.g. 0-240/3 or 0-144/3,150-360/6")
        sp.add_argument("--scenario", help="JSON file with exact, known-answer rain (replaces the realistic rain)")
        sp.add_argument("--background", choices=["none", "realistic"],
                        help="override the rain background (default: realistic, or the scenario's choice)")
        sp.add_argument("--rain-model", choices=["smooth", "realistic"],
                        help="rain background: smooth Gaussian cells (default) or realistic textured storms "
                             "whose messages have the sizes of real ones (GEFS APCP also gets NCEP-style "
                             "variable group lengths)")
        sp.add_argument("--rain-size", choices=["normal", "heavy"],
                        help="with --rain-model realistic: normal (default) or heavy, a wet day")
        sp.add_argument("--missing", action="append", metavar="M:S[:grib|index],...",
                        help="omit files: GEFS MEMBER:STEP; ECMWF enfo:STEP, oper:STEP or MEMBER:STEP "
                             "(0 = the file holding the control); suffix :grib or :index omits one part")

    g = sub.add_parser("gefs", help="NOAA GEFS pgrb2sp25 (noaa-gefs-pds)")
    common(g, "0-30", "0-240/3")
    g.add_argument("--grid", choices=list(GRIDS), help="grid of the non-APCP fields (default 0p25)")
    g.add_argument("--rain-grid", choices=list(GRIDS), help="grid of APCP (default 0p25)")
    g.add_argument("--vars", choices=["full", "apcp"], default="full",
                   help="full: the real 38-message pgrb2s inventory; apcp: TMP, APCP, PRMSL only")

    e = sub.add_parser("ecmwf", help="ECMWF IFS ENS 0p25 enfo-ef (+ oper-fc control) (ecmwf-forecasts)")
    common(e, "0-50", "0-144/3,150-360/6")
    e.add_argument("--grid", choices=list(GRIDS), help="grid of all params (default 0p25)")
    e.add_argument("--params", default=",".join(ECMWF_DEFAULT_PARAMS),
                   help="comma list of params (known: %s)" % ",".join(ECMWF_PARAMS))
    e.add_argument("--control-in", choices=["auto", "cf", "oper"], default="auto",
                   help="where the control goes: cf row in enfo-ef, oper-fc file, or by date (50r1 cutover "
                        "2026-05-12 06z)")
    e.add_argument("--shuffle-index", action="store_true", help="shuffle the line order of .index files")
    e.add_argument("--tp-bits", type=int, help="bitsPerValue of tp (default 16, or 24 with --scenario)")
    e.add_argument("--tables-version", type=int, help="GRIB2 tablesVersion (default 32 from 2025, else 27)")
    return p


def tune_malloc():
    """Keep freed numpy buffers in the heap: glibc otherwise mmaps and unmaps every
    large array, and the page faults make generation several times slower."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 32 * 1024 * 1024)     # M_MMAP_THRESHOLD
        libc.mallopt(-1, 512 * 1024 * 1024)    # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


def main(argv=None):
    tune_malloc()
    p = build_parser()
    args = p.parse_args(argv)
    if args.verify:
        return run_verify(args)
    if args.self_check:
        return run_self_check(args)
    if not args.dataset or not args.out:
        p.error("give --out DIR and a dataset (gefs or ecmwf), or --verify DIR")
    return run_generate(args)


if __name__ == "__main__":
    sys.exit(main())
