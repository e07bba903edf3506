"""gik.decode / gik.decode_batch compared with ecCodes (and cfgrib), element by element.

Every message of every real GRIB fixture and of generated GEFS (complex packing) and ECMWF (CCSDS)
files goes the full path: a reference (url, offset, length) -> an HTTP Range request to the loopback
nginx -> ecCodes inside the backend -> real[] north-up. The expected grid is built here from ecCodes'
own latitudes and longitudes of every point, never from an assumed scanning order. Also: every packing
ecCodes can write, GRIB1, all scanning modes, regions across 0 and 180 degrees in both conventions, stale
references, corrupt messages, memory over 10,000 decodes, cancellation and batch fetch planning.

Run with the project venv's Python inside the run_tests.sh cluster (PG* set, mirror served).
"""
import json
import os
import pathlib
import re
import shutil
import struct
import time
import urllib.request

import eccodes as ec
import numpy as np
import psycopg2
import pytest

from conftest import FAULT, HTTP, MIRROR, connect, grib_keys, mirror_path, pg_error, query, scalar

FIXTURES = {
    # relative path under mirror/fixtures: what it is
    "grib-rs/20240101000000-0h-oper-fc.grib2.0-10": "ECMWF 0.4 CCSDS, with a 224-byte constant tp",
    "gribberish/ecmwf-ifs-oper-surface.grib2": "ECMWF 0.25 CCSDS",
    "grib-rs/gdas.t12z.pgrb2.0p25.f000.12": "GDAS 0.25 complex packing",
    "kerchunk/gec00_20250101_00_soilw.grib": "GEFS 0.5 complex packing with bitmap",
    "gribberish/gfswave.t18z.atlocn.0p16.f001.grib2": "GFS-Wave 0.16 JPEG 2000 with bitmap, regional",
    "generated/scan_ineg_jpos.grib2": "simple packing, scanning mode 192, bitmap",
    "generated/lambert.grib2": "Lambert conformal (north-up; test_grids.py checks its coordinates)",
}
GEFS = "s3://noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25/gep01.t00z.pgrb2s.0p25.f024"
GEFS_RAIN = "s3://noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25/gec00.t00z.pgrb2s.0p25.f{:03d}"
ENS = "s3://ecmwf-forecasts/20251001/00z/ifs/0p25/enfo/20251001000000-24h-enfo-ef"
OPER = "s3://ecmwf-forecasts/20260601/12z/ifs/0p25/oper/20260601120000-12h-oper-fc"
TOL = 1e-6  # degrees: coordinates from ecCodes and pg_gik agree to this, plus drift (see assert_coords)


# ---------------------------------------------------------------- helpers

def parse_array_send(b):
    """A real[] in binary send format (array_send) as a float32 ndarray with its shape."""
    b = bytes(b)
    ndim, _flags, _oid = struct.unpack_from(">iiI", b, 0)
    if ndim == 0:
        return np.zeros(0, np.float32)
    dims = [struct.unpack_from(">ii", b, 12 + 8 * k)[0] for k in range(ndim)]
    n = int(np.prod(dims))
    rec = np.frombuffer(b, dtype=[("len", ">i4"), ("v", ">f4")], count=n, offset=12 + 8 * ndim)
    assert (rec["len"] == 4).all(), "NULL elements in a decoded array"
    return rec["v"].astype(np.float32).reshape(dims)


def box_sql(box):
    return "NULL" if box is None else "gik.bbox(%s, %s, %s, %s)" % tuple(float(x) for x in box)


def decode(conn, url, off, length, lon="source", box=None):
    """gik.decode() as a float32 array."""
    b = scalar(conn, f"SELECT array_send(gik.decode(%s, %s, %s, %s, {box_sql(box)}))", (url, off, length, lon))
    return parse_array_send(b)


def grid(conn, url, off, length, lon="source", box=None):
    """gik.grid() as a dict, plus its row latitudes and column longitudes."""
    with conn.cursor() as cur:
        cur.execute(f"SELECT (g).*, gik.grid_lats(g), gik.grid_lons(g) "
                    f"FROM gik.grid(%s, %s, %s, %s, {box_sql(box)}) g", (url, off, length, lon))
        row = cur.fetchone()
        names = [d.name for d in cur.description]
    d = dict(zip(names[:-2], row[:-2]))
    d["lats"], d["lons"] = np.array(row[-2]), np.array(row[-1])
    return d


def messages(path):
    """(offset, length) of every message in a local GRIB file, per ecCodes."""
    return grib_keys(path, ("offset", "totalLength"))


def eccodes_message(data):
    """ecCodes' view of one message: values (NaN where the bitmap says missing), lats, lons, keys."""
    h = ec.codes_new_from_message(bytes(data))
    try:
        vals = ec.codes_get_double_array(h, "values")
        if ec.codes_get(h, "bitmapPresent"):
            vals = np.where(ec.codes_get_long_array(h, "bitmap") == 0, np.nan, vals)
        info = {"values": vals, "grid_type": ec.codes_get(h, "gridType"), "edition": ec.codes_get(h, "edition")}
        if info["grid_type"] == "regular_ll":
            info["lats"] = ec.codes_get_double_array(h, "latitudes")
            info["lons"] = ec.codes_get_double_array(h, "longitudes")
            for k in ("longitudeOfFirstGridPointInDegrees", "longitudeOfLastGridPointInDegrees", "iScansNegatively",
                      "Ni", "Nj"):
                info[k] = ec.codes_get(h, k)
        return info
    finally:
        ec.codes_release(h)


SLACK = 1e-3  # degrees: box edges and seams include centres this close (ecCodes' coordinates drift, see assert_coords)


def wrap(lon, lower):
    """Longitudes shifted by multiples of 360 into [lower, lower + 360), up to SLACK."""
    return lower + np.mod(np.asarray(lon) - lower + SLACK, 360.0) - SLACK


def expected_grid(info, conv="source", box=None):
    """North-up output expected for a regular_ll message, from ecCodes' per-point coordinates.

    Returns (row latitudes, column longitudes, values[nj][ni]), or None when the box holds no cell
    centre. Rows run north to south. Columns run
    eastwards from the first selected centre: the convention's lower bound for a whole global grid, the
    grid's own west end for a regional grid, the box's west edge for a region; longitudes stay
    continuous across the seam, and the first one is in the convention's range.
    """
    lats, lons, vals = info["lats"], info["lons"], info["values"]
    first, last = info["longitudeOfFirstGridPointInDegrees"], info["longitudeOfLastGridPointInDegrees"]
    west, east = (last, first) if info["iScansNegatively"] else (first, last)
    if west > east:
        west -= 360.0
    ulon = np.unique(np.round(wrap(lons, west), 6))
    step = np.median(np.diff(ulon)) if ulon.size > 1 else 360.0
    is_global = abs(ulon.size * step - 360.0) < 1e-3 * step
    lower = {"source": west, "-180..180": -180.0, "0..360": 0.0}[conv]
    if box is None:
        start, width = (lower if is_global else west), 360.0 - step / 2
    else:
        start, width = box[0], box[2] - box[0]
        width = min(width, 360.0) if width >= -1e-9 else np.mod(width, 360.0)
    off = np.round(wrap(lons, start) - start, 6)  # eastward distance from the start, in [0, 360)
    sel = off <= width + SLACK
    if box is not None:
        sel &= (lats >= box[1] - SLACK) & (lats <= box[3] + SLACK)
    if not sel.any():
        return None
    ucol = np.unique(off[sel])
    urow = np.unique(np.round(lats[sel], 6))[::-1]
    out = np.full((urow.size, ucol.size), np.nan, dtype=np.float32)
    out[np.searchsorted(-urow, -np.round(lats[sel], 6)), np.searchsorted(ucol, off[sel])] = vals[sel].astype(np.float32)
    assert urow.size * ucol.size == sel.sum(), "the selected points are not a full grid"
    lon_first = wrap(start + ucol[0], lower)
    return urow, lon_first + (ucol - ucol[0]), out


def assert_coords(got, want):
    """Coordinates agree to TOL plus 5e-7 degrees per step from the first: GRIB2 rounds increments to
    microdegrees (1/6 becomes 0.166667) and ecCodes steps with the rounded increment, while pg_gik
    takes the increment from the end points (exactly 1/6)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=TOL + 5e-7 * max(got.size - 1, 0), rtol=0)


def assert_same_grid(got, exp):
    """Equal shapes, equal NaN positions, equal float32 values."""
    assert got.shape == exp.shape
    assert np.array_equal(np.isnan(got), np.isnan(exp))
    assert np.array_equal(got[~np.isnan(got)], exp[~np.isnan(exp)])


def fixture_refs():
    """(id, url, local path, offset, length) of every message of every fixture."""
    out = []
    for rel in FIXTURES:
        path = MIRROR / "fixtures" / rel
        for k, (off, length) in enumerate(messages(path)):
            out.append(pytest.param(f"{HTTP}/fixtures/{rel}", path, off, length, id=f"{rel.split('/')[-1]}#{k + 1}"))
    return out


@pytest.fixture(scope="module")
def conn(db_setup):
    c = connect()
    yield c
    c.close()


@pytest.fixture(scope="module")
def scratch():
    """A directory nginx serves (mirror/scratch/...), removed afterwards."""
    d = MIRROR / "scratch" / f"decode-{os.getpid()}"
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d.parent, 0o755)
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def scratch_url(path):
    return f"{HTTP}/{pathlib.Path(path).relative_to(MIRROR)}"


def idx_refs(conn, url):
    """References of a generated GEFS file from its .idx, as gik parses it."""
    return query(conn, "SELECT byte_offset, byte_length, variable || ':' || level FROM "
                       "gik.parse_idx(gik.fetch_text(%s), (gik.file_info(%s)).size, %s) ORDER BY byte_offset",
                 (url + ".idx", url, url))


def index_refs(conn, url):
    """References of a generated ECMWF file from its .index."""
    return query(conn, "SELECT byte_offset, byte_length, param || ':' || coalesce(number::text, 'cf') FROM "
                       "gik.parse_ecmwf_index(gik.fetch_text(%s), %s) ORDER BY byte_offset",
                 (url + ".index", url + ".grib2"))


def check_message(conn, url, data, off, length, convs=("source",)):
    """Decode one message through gik and compare with ecCodes in the given conventions."""
    info = eccodes_message(data)
    if info["grid_type"] != "regular_ll":
        got = decode(conn, url, off, length)
        assert got.size == info["values"].size
        exp = info["values"].astype(np.float32).reshape(got.shape)  # scanning order
        assert_same_grid(got, exp)
        return info
    for conv in convs:
        got = decode(conn, url, off, length, conv)
        lats, lons, exp = expected_grid(info, conv)
        assert_same_grid(got, exp)
        g = grid(conn, url, off, length, conv)
        assert (g["nj"], g["ni"]) == exp.shape
        assert_coords(g["lats"], lats)
        assert_coords(g["lons"], lons)
        assert g["lat_first"] == pytest.approx(lats[0], abs=TOL) and g["lon_first"] == pytest.approx(lons[0], abs=TOL)
    return info


# ---------------------------------------------------------------- every message of every fixture

@pytest.mark.parametrize("url,path,off,length", fixture_refs())
def test_fixture_message_matches_eccodes(conn, url, path, off, length):
    with open(path, "rb") as f:
        f.seek(off)
        data = f.read(length)
    info = check_message(conn, url, data, off, length, convs=("source", "-180..180", "0..360"))
    if info.get("Ni", 0) * info.get("Nj", 0) > 500000:
        return
    # NaN positions are ecCodes' missing points: their count is numberOfMissing.
    got = decode(conn, url, off, length)
    assert np.isnan(got).sum() == np.isnan(info["values"]).sum()


def test_generated_gefs_messages_match_eccodes(conn):
    """All 38 messages of a generated GEFS member file (complex packing; APCP at 0.25 degrees)."""
    refs = idx_refs(conn, GEFS)
    assert len(refs) == 38
    data = mirror_path(GEFS).read_bytes()
    for off, length, name in refs:
        check_message(conn, GEFS, data[off:off + length], off, length,
                      convs=("source", "-180..180") if name.startswith("APCP") else ("source",))


def test_generated_ecmwf_messages_match_eccodes(conn):
    """All messages of a generated ECMWF enfo-ef file and of an oper-fc control file (CCSDS)."""
    for url in (ENS, OPER):
        refs = index_refs(conn, url)
        assert refs
        data = mirror_path(url + ".grib2").read_bytes()
        for off, length, _ in refs:
            check_message(conn, url + ".grib2", data[off:off + length], off, length, convs=("source", "0..360"))


def test_cfgrib_agrees(conn, tmp_path):
    """cfgrib (xarray) reads the same values as gik for complex, JPEG 2000 and CCSDS messages."""
    import xarray as xr
    cases = [(f"{HTTP}/fixtures/grib-rs/gdas.t12z.pgrb2.0p25.f000.12", MIRROR / "fixtures/grib-rs/gdas.t12z.pgrb2.0p25.f000.12", 0),
             (f"{HTTP}/fixtures/kerchunk/gec00_20250101_00_soilw.grib", MIRROR / "fixtures/kerchunk/gec00_20250101_00_soilw.grib", 0),
             (f"{HTTP}/fixtures/gribberish/gfswave.t18z.atlocn.0p16.f001.grib2", MIRROR / "fixtures/gribberish/gfswave.t18z.atlocn.0p16.f001.grib2", 4),
             (f"{HTTP}/fixtures/gribberish/ecmwf-ifs-oper-surface.grib2", MIRROR / "fixtures/gribberish/ecmwf-ifs-oper-surface.grib2", 3)]
    refs = idx_refs(conn, GEFS)
    apcp = [r for r in refs if r[2].startswith("APCP")][0]
    cases.append((GEFS, mirror_path(GEFS), ("at", apcp[0], apcp[1])))
    for url, path, which in cases:
        if isinstance(which, tuple):
            off, length = which[1], which[2]
        else:
            off, length = messages(path)[which]
        one = tmp_path / f"m{off}.grib2"
        with open(path, "rb") as f:
            f.seek(off)
            one.write_bytes(f.read(length))
        ds = xr.open_dataset(one, engine="cfgrib", backend_kwargs={"indexpath": ""})
        var = list(ds.data_vars)[0]
        vals = ds[var].values.astype(np.float32)
        lats = ds["latitude"].values
        ds.close()
        got = decode(conn, url, off, length)
        if lats[0] < lats[-1]:
            vals = vals[::-1]
        assert_same_grid(got, vals)


# ---------------------------------------------------------------- packings, editions, scanning modes

SAMPLE2 = "/usr/share/eccodes/samples/GRIB2.tmpl"
SAMPLE1 = "/usr/share/eccodes/samples/GRIB1.tmpl"


def storage_order(ni, nj, west, north, di, dj, scanning_mode):
    """(lat, lon) of each stored value for a scanning mode, by the GRIB rules (not by ecCodes)."""
    i_neg, j_pos, j_cons = bool(scanning_mode & 128), bool(scanning_mode & 64), bool(scanning_mode & 32)
    lon_i = [west + (ni - 1 - i if i_neg else i) * di for i in range(ni)]
    lat_j = [north - (nj - 1 - j if j_pos else j) * dj for j in range(nj)]
    if j_cons:
        return [(lat_j[j], lon_i[i]) for i in range(ni) for j in range(nj)]
    return [(lat_j[j], lon_i[i]) for j in range(nj) for i in range(ni)]


def field(lat, lon):
    """A value that identifies its point: 1000 + 10 * lat + lon / 10 (lon in 0..360)."""
    return 1000.0 + 10.0 * lat + (lon % 360.0) / 10.0


def make_message(packing="grid_simple", ni=72, nj=37, bitmap=False, scanning_mode=0, grib1=False,
                 lon0=0.0, lat_north=90.0, lat_south=-90.0, seed=0, noise=True):
    """A regular lat/lon message written by ecCodes. Values are field(lat, lon), plus noise unless
    noise=False; with a bitmap, points are missing where lat + (lon mod 360) is a multiple of 25 and, with
    noise, at random."""
    with open(SAMPLE1 if grib1 else SAMPLE2, "rb") as f:
        h = ec.codes_grib_new_from_file(f)
    try:
        di = 360.0 / ni
        dj = (lat_north - lat_south) / (nj - 1)
        i_neg, j_pos, j_cons = bool(scanning_mode & 128), bool(scanning_mode & 64), bool(scanning_mode & 32)
        west, east = lon0, lon0 + (ni - 1) * di
        for key, val in [("Ni", ni), ("Nj", nj), ("iScansNegatively", int(i_neg)), ("jScansPositively", int(j_pos)),
                         ("jPointsAreConsecutive", int(j_cons)),
                         ("latitudeOfFirstGridPointInDegrees", lat_south if j_pos else lat_north),
                         ("latitudeOfLastGridPointInDegrees", lat_north if j_pos else lat_south),
                         ("longitudeOfFirstGridPointInDegrees", (east if i_neg else west) % 360),
                         ("longitudeOfLastGridPointInDegrees", (west if i_neg else east) % 360),
                         ("iDirectionIncrementInDegrees", di), ("jDirectionIncrementInDegrees", dj),
                         ("bitsPerValue", 16)]:
            ec.codes_set(h, key, val)
        points = storage_order(ni, nj, west, lat_north, di, dj, scanning_mode)
        vals = np.array([field(la, lo) for la, lo in points])
        rng = np.random.default_rng(seed)
        if noise:
            vals += 10 * rng.random(vals.size)
        if bitmap:
            ec.codes_set(h, "bitmapPresent", 1)
            missing = np.array([round(la + lo % 360) % 25 == 0 for la, lo in points])
            if noise:
                missing |= rng.random(vals.size) < 0.2
            vals[missing] = ec.codes_get(h, "missingValue")
        ec.codes_set_values(h, vals)
        if packing != "grid_simple":
            ec.codes_set(h, "packingType", packing)
        return ec.codes_get_message(h)
    finally:
        ec.codes_release(h)


PACKINGS = ["grid_simple", "grid_complex", "grid_complex_spatial_differencing", "grid_ccsds", "grid_jpeg",
            "grid_png", "grid_ieee", "grid_second_order"]


@pytest.mark.parametrize("packing", PACKINGS)
@pytest.mark.parametrize("bitmap", [False, True])
def test_packings(conn, scratch, packing, bitmap):
    msg = make_message(packing, bitmap=bitmap, seed=len(packing))
    path = scratch / f"pack_{packing}_{int(bitmap)}.grib2"
    path.write_bytes(msg)
    check_message(conn, scratch_url(path), msg, 0, len(msg), convs=("source", "-180..180"))


def test_grib1_simple(conn, scratch):
    msg = make_message(grib1=True, bitmap=True)
    path = scratch / "grib1.grib"
    path.write_bytes(msg)
    assert eccodes_message(msg)["edition"] == 1
    check_message(conn, scratch_url(path), msg, 0, len(msg), convs=("source", "-180..180"))


@pytest.mark.parametrize("mode", [0, 64, 128, 192, 32, 96, 160, 224])
def test_scanning_modes(conn, scratch, mode):
    """Every combination of i direction, j direction and j-consecutive points, on a grid crossing 0 degrees:
    compared with ecCodes' coordinates, and with the same field stored in the default order (mode 0)."""
    kw = dict(ni=36, nj=19, bitmap=True, lon0=-50.0, lat_north=60.0, lat_south=-30.0, noise=False)
    msg = make_message("grid_simple", scanning_mode=mode, **kw)
    path = scratch / f"scan_{mode}.grib2"
    path.write_bytes(msg)
    url = scratch_url(path)
    check_message(conn, url, msg, 0, len(msg), convs=("source", "-180..180", "0..360"))
    ref = make_message("grid_simple", scanning_mode=0, **kw)
    ref_path = scratch / "scan_ref.grib2"
    ref_path.write_bytes(ref)
    for conv in ("source", "0..360"):
        got = decode(conn, url, 0, len(msg), conv)
        assert_same_grid(got, decode(conn, scratch_url(ref_path), 0, len(ref), conv))
        g = grid(conn, url, 0, len(msg), conv)
        lat, lon = np.meshgrid(g["lats"], g["lons"], indexing="ij")
        want = field(lat, lon)
        ok = ~np.isnan(got)
        np.testing.assert_allclose(got[ok], want[ok], atol=0.01)
        assert np.array_equal(~ok, np.round(lat + lon % 360) % 25 == 0)


# ---------------------------------------------------------------- regions

REGIONS = [(-10, -5, 10, 5), (350, -5, 10, 5), (170, -5, -170, 5), (170, -5, 190, 5), (-190, -20, -170, 0),
           (21, -12, 53, 23), (-180, -90, 180, 90), (0, 89, 359.9, 90), (40.1, 10.1, 40.2, 10.2), (359.8, 0, 0.2, 0.3)]


@pytest.mark.parametrize("rel,off,length", [("grib-rs/gdas.t12z.pgrb2.0p25.f000.12", 0, 305744),
                                            ("gribberish/ecmwf-ifs-oper-surface.grib2", 1419502, 184448),
                                            ("grib-rs/20240101000000-0h-oper-fc.grib2.0-10", 0, 205483)],
                         ids=["gefs-like 0..360", "ecmwf-like -180..180 0.25", "ecmwf 0.4"])
def test_regions_both_conventions(conn, rel, off, length):
    """Regions across 0 and 180 degrees, in every convention, against a numpy selection on ecCodes' coordinates."""
    url = f"{HTTP}/fixtures/{rel}"
    with open(MIRROR / "fixtures" / rel, "rb") as f:
        f.seek(off)
        info = eccodes_message(f.read(length))
    for box in REGIONS:
        for conv in ("source", "-180..180", "0..360"):
            want = expected_grid(info, conv, box)
            if want is None:
                with pytest.raises(psycopg2.Error, match="contains no grid cell centre"):
                    decode(conn, url, off, length, conv, box)
                continue
            lats, lons, exp = want
            got = decode(conn, url, off, length, conv, box)
            assert_same_grid(got, exp)
            g = grid(conn, url, off, length, conv, box)
            assert_coords(g["lats"], lats)
            assert_coords(g["lons"], lons)


def test_regional_grid_regions(conn):
    """A regional grid (GFS-Wave, lon 260..310) with boxes in both conventions, and boxes outside it."""
    rel = "gribberish/gfswave.t18z.atlocn.0p16.f001.grib2"
    url = f"{HTTP}/fixtures/{rel}"
    data = (MIRROR / "fixtures" / rel).read_bytes()[:41723]
    info = eccodes_message(data)
    for box in [(-80, 10, -60, 30), (280, 10, 300, 30), (250, -10, 320, 60), (-100, 0, -50, 55)]:
        for conv in ("source", "-180..180", "0..360"):
            lats, lons, exp = expected_grid(info, conv, box)
            assert_same_grid(decode(conn, url, 0, 41723, conv, box), exp)
            assert_coords(grid(conn, url, 0, 41723, conv, box)["lons"], lons)
    with pytest.raises(psycopg2.Error, match="contains no grid cell centre"):
        decode(conn, url, 0, 41723, "source", (0, 0, 10, 10))


def test_east_africa_same_coordinates(conn):
    """The same box on a GEFS-like grid (0..359.75) and an ECMWF-like grid (-180..179.75): same lats and lons."""
    box = (21, -12, 53, 23)
    a = grid(conn, f"{HTTP}/fixtures/grib-rs/gdas.t12z.pgrb2.0p25.f000.12", 0, 305744, "source", box)
    b = grid(conn, f"{HTTP}/fixtures/gribberish/ecmwf-ifs-oper-surface.grib2", 1419502, 184448, "source", box)
    assert np.array_equal(a["lats"], b["lats"]) and np.array_equal(a["lons"], b["lons"])
    assert (a["ni"], a["nj"]) == (129, 141)
    gefs = [r for r in idx_refs(conn, GEFS) if r[2] == "TMP:2 m above ground"][0]
    ens = [r for r in index_refs(conn, ENS) if r[2] == "2t:1"][0]
    for conv in ("source", "-180..180", "0..360"):
        c = grid(conn, GEFS, gefs[0], gefs[1], conv, box)
        d = grid(conn, ENS + ".grib2", ens[0], ens[1], conv, box)
        assert np.array_equal(c["lats"], d["lats"]) and np.array_equal(c["lons"], d["lons"])
        assert c["lons"][0] == 21 and c["lons"][-1] == 53 and c["lats"][0] == 23 and c["lats"][-1] == -12


# ---------------------------------------------------------------- stale references and corrupt messages

def test_stale_offsets_and_lengths(conn):
    url = f"{HTTP}/fixtures/grib-rs/20240101000000-0h-oper-fc.grib2.0-10"
    for off, length in [(1, 205483), (205483 + 7, 222120), (0, 205482), (0, 205484), (205483, 222120 + 224),
                        (427603, 223), (427600, 224)]:
        e = pg_error(conn, "SELECT gik.decode(%s, %s, %s)", (url, off, length))
        assert e.pgcode == "XX001"
        assert f'bytes {off}-{off + length - 1} of "{url}"' in e.pgerror
        assert "stale" in e.diag.message_hint
    assert scalar(conn, "SELECT 1") == 1


def test_file_replaced_after_ingestion(conn, scratch):
    """References taken from an index, then the file replaced: every decode errors or, where a message of
    the new file happens to sit exactly at the referenced range, decodes that message; never garbage."""
    src = mirror_path(GEFS)
    dst = scratch / "replaced.grib2"
    shutil.copyfile(src, dst)
    url = scratch_url(dst)
    refs = query(conn, "SELECT byte_offset, byte_length FROM gik.parse_idx(gik.fetch_text(%s), "
                       "(gik.file_info(%s)).size, %s)", (f"{HTTP}/noaa-gefs-pds/{src.relative_to(MIRROR / 'noaa-gefs-pds')}.idx",
                                                          url, url))
    assert len(refs) == 38
    for off, length in refs[:3]:
        assert decode(conn, url, off, length).size > 0
    # another member's file of the same step: same fields, different sizes and offsets
    other = mirror_path(GEFS.replace("gep01", "gep02"))
    tmp = scratch / "replaced.tmp"
    shutil.copyfile(other, tmp)
    os.replace(tmp, dst)
    new_msgs = set(messages(dst))
    errors = 0
    for off, length in refs:
        if (off, length) in new_msgs:
            got = decode(conn, url, off, length)
            with open(dst, "rb") as f:
                f.seek(off)
                info = eccodes_message(f.read(length))
            assert_same_grid(got, expected_grid(info)[2])
            continue
        e = pg_error(conn, "SELECT gik.decode(%s, %s, %s)", (url, off, length))
        assert f'"{url}"' in e.pgerror and f"bytes {off}-{off + length - 1}" in e.pgerror, e.pgerror
        errors += 1
    assert errors >= 30
    # the original file rotated by 17 bytes (same size, every offset wrong), then cut short
    blob = src.read_bytes()
    tmp.write_bytes(blob[17:] + blob[:17])
    os.replace(tmp, dst)
    for off, length in refs:
        e = pg_error(conn, "SELECT gik.decode(%s, %s, %s)", (url, off, length))
        assert "are not one GRIB message" in e.pgerror and f"bytes {off}-{off + length - 1}" in e.pgerror
    tmp.write_bytes(blob[:1000])
    os.replace(tmp, dst)
    e = pg_error(conn, "SELECT gik.decode(%s, %s, %s)", (url, refs[-1][0], refs[-1][1]))
    assert url in e.pgerror
    # a batch over the replaced file fails the same way
    e = pg_error(conn, "SELECT count(*) FROM gik.decode_batch(%s::gik.ref[])",
                 ([f"({url},{o},{n})" for o, n in refs[5:8]],))
    assert url in e.pgerror
    assert scalar(conn, "SELECT 1") == 1


def sections(msg):
    """{section number: (offset, length)} of a GRIB2 message."""
    pos, out = 16, {}
    while pos < len(msg) - 4:
        length, num = struct.unpack(">IB", msg[pos:pos + 5])
        out[num] = (pos, length)
        pos += length
    return out


def corrupt_variants(msg):
    """Messages with valid GRIB/7777 framing and a total length that matches, but garbage inside."""
    rng = np.random.default_rng(7)
    sec = sections(msg)
    out = {}
    b = bytearray(msg)
    b[16:-4] = rng.integers(0, 256, len(msg) - 20, dtype=np.uint8).tobytes()
    out["random interior"] = bytes(b)
    p7, l7 = sec[7]
    b = bytearray(msg)
    b[p7 + 5:p7 + l7] = rng.integers(0, 256, l7 - 5, dtype=np.uint8).tobytes()
    out["random data section"] = bytes(b)
    p5, _ = sec[5]
    b = bytearray(msg)
    b[p5 + 5:p5 + 9] = struct.pack(">I", 99999999)
    out["coded values count"] = bytes(b)
    p3, _ = sec[3]
    b = bytearray(msg)
    b[p3:p3 + 4] = struct.pack(">I", 0x7FFFFFFF)
    out["section 3 length"] = bytes(b)
    return out


def test_corrupt_messages(conn, scratch):
    """Garbage inside a well-framed message is an error naming the URL and range; the backend survives."""
    pid = scalar(conn, "SELECT pg_backend_pid()")
    sources = {"complex": (MIRROR / "fixtures/grib-rs/gdas.t12z.pgrb2.0p25.f000.12").read_bytes(),
               "jpeg": (MIRROR / "fixtures/gribberish/gfswave.t18z.atlocn.0p16.f001.grib2").read_bytes()[:41723],
               "ccsds": (MIRROR / "fixtures/grib-rs/20240101000000-0h-oper-fc.grib2.0-10").read_bytes()[:205483]}
    for kind, msg in sources.items():
        for what, bad in corrupt_variants(msg).items():
            path = scratch / "corrupt.grib2"
            path.write_bytes(bad)
            url = scratch_url(path)
            e = pg_error(conn, "SELECT gik.decode(%s, 0, %s)", (url, len(bad)))
            assert e.pgcode == "XX001", (kind, what, e.pgerror)
            assert f'bytes 0-{len(bad) - 1} of "{url}"' in e.pgerror, (kind, what, e.pgerror)
            assert scalar(conn, "SELECT 1") == 1
            assert scalar(conn, "SELECT pg_backend_pid()") == pid, f"backend restarted after {kind}: {what}"
    # the JPEG 2000 bitmap/count mismatch that made ecCodes 2.28 overrun the heap
    msg = bytearray(sources["jpeg"])
    p5, _ = sections(bytes(msg))[5]
    coded = struct.unpack(">I", msg[p5 + 5:p5 + 9])[0]
    msg[p5 + 5:p5 + 9] = struct.pack(">I", coded - 120)
    path = scratch / "corrupt.grib2"
    path.write_bytes(bytes(msg))
    e = pg_error(conn, "SELECT gik.decode(%s, 0, %s)", (scratch_url(path), len(msg)))
    assert "disagree" in e.diag.message_detail
    assert scalar(conn, "SELECT pg_backend_pid()") == pid


# ---------------------------------------------------------------- memory, cancellation

def rss_kb(pid):
    status = pathlib.Path(f"/proc/{pid}/status").read_text()
    return {k: int(re.search(k + r":\s+(\d+)", status).group(1)) for k in ("VmRSS", "RssAnon", "RssShmem")}


def test_memory_flat_over_10000_decodes(conn, scratch):
    """10,000 decodes in one session, about one in six an error, leave the backend's memory flat.

    Bound: after a 1,000-decode warm-up, anonymous RSS (the backend's private heap: palloc and
    ecCodes' malloc) may grow by less than 4 MB over the next 10,000 calls, i.e. a leak of 400 bytes per
    call would fail it. VmRSS also counts shared buffers the backend touches; it gets 8 MB.
    """
    cases = []
    for k, packing in enumerate(["grid_simple", "grid_complex_spatial_differencing", "grid_ccsds", "grid_jpeg"]):
        msg = make_message(packing, ni=72, nj=37, bitmap=k % 2 == 1, seed=k)
        path = scratch / f"mem_{packing}.grib2"
        path.write_bytes(msg)
        cases.append(("SELECT array_length(gik.decode(%s, 0, %s), 1)", (scratch_url(path), len(msg)), None))
        cases.append(("SELECT array_length(gik.decode(%s, 0, %s, '-180..180', gik.bbox(-20, -10, 30, 40)), 1)",
                      (scratch_url(path), len(msg)), None))
    scan = f"{HTTP}/fixtures/generated/scan_ineg_jpos.grib2"
    lambert = f"{HTTP}/fixtures/generated/lambert.grib2"
    cases += [("SELECT array_length(gik.decode(%s, 0, 228), 1)", (scan,), None),
              ("SELECT array_length(gik.decode(%s, 0, 248), 1)", (lambert,), None),
              ("SELECT count(*) FROM gik.decode_batch(ARRAY[(%s, 0, 228), (%s, 0, 228), (%s, 0, 248)]::gik.ref[])",
               (scan, scan, lambert), None),
              # errors: stale range, decode error after ecCodes ran, bad region, corrupt message
              ("SELECT gik.decode(%s, 1, 227)", (scan,), "XX001"),
              ("SELECT gik.decode(%s, 0, 248, 'source', gik.bbox(0, 0, 1, 1))", (lambert,), "22023"),
              ("SELECT gik.decode(%s, 0, 228, 'source', gik.bbox(100, 0, 110, 5))", (scan,), "22023")]
    bad = corrupt_variants(make_message("grid_simple", seed=3))["coded values count"]
    (scratch / "mem_corrupt.grib2").write_bytes(bad)
    cases.append(("SELECT gik.decode(%s, 0, %s)", (scratch_url(scratch / "mem_corrupt.grib2"), len(bad)), "XX001"))
    pid = scalar(conn, "SELECT pg_backend_pid()")

    def run(n):
        errors = 0
        with conn.cursor() as cur:
            for k in range(n):
                sql, params, code = cases[k % len(cases)]
                try:
                    cur.execute(sql, params)
                    cur.fetchall()
                    assert code is None, sql
                except psycopg2.Error as e:
                    assert e.pgcode == code, (sql, e.pgerror)
                    errors += 1
        return errors

    run(1000)
    before = rss_kb(pid)
    t0 = time.monotonic()
    errors = run(10000)
    elapsed = time.monotonic() - t0
    after = rss_kb(pid)
    assert errors >= 2000
    print(f"10,000 decodes ({errors} errors) in {elapsed:.1f}s; RSS kB before {before}, after {after}")
    assert after["RssAnon"] - before["RssAnon"] < 4 * 1024, (before, after)
    assert after["VmRSS"] - before["VmRSS"] < 8 * 1024, (before, after)
    assert elapsed < 120  # about 10 s on an idle 2-core VM


def test_cancel_long_batch(conn):
    """statement_timeout cancels a batch of many global 0.25-degree decodes promptly; the session goes on."""
    rain = []
    for step in range(3, 25, 3):
        url = GEFS_RAIN.format(step)
        rain += [(url.replace("s3://", HTTP + "/"), o, n) for o, n, name in idx_refs(conn, url) if name.startswith("APCP")]
    assert len(rain) == 8
    # 240 decodes of 1440 x 721: the 8 rain messages under 30 distinct URLs each (a query string nginx
    # ignores), so that nothing is de-duplicated; built on the server to keep the statement short
    query(conn, "CREATE TEMP TABLE cancel_refs AS SELECT (u || '?copy=' || k, o, n)::gik.ref AS ref "
                "FROM unnest(%s::text[], %s::int8[], %s::int8[]) r(u, o, n), generate_series(0, 29) k",
          ([r[0] for r in rain], [r[1] for r in rain], [r[2] for r in rain]))
    refs = "(SELECT array_agg(ref) FROM cancel_refs)"
    with conn.cursor() as cur:
        cur.execute("SET statement_timeout = '500ms'")
        t0 = time.monotonic()
        with pytest.raises(psycopg2.extensions.QueryCanceledError):
            cur.execute(f"SELECT count(*) FROM gik.decode_batch({refs})")
        elapsed = time.monotonic() - t0
        cur.execute("RESET statement_timeout")
    assert elapsed < 2.0, elapsed
    assert scalar(conn, "SELECT 1") == 1
    # the threads and transfers of the cancelled batch are gone: a new batch works
    assert scalar(conn, "SELECT count(*) FROM gik.decode_batch((SELECT array_agg(ref) FROM "
                        "(SELECT ref FROM cancel_refs LIMIT 4) s))") == 4
    # single decodes one after the other are cancelled too (each is one short call)
    with conn.cursor() as cur:
        cur.execute("SET statement_timeout = '300ms'")
        t0 = time.monotonic()
        with pytest.raises(psycopg2.extensions.QueryCanceledError):
            cur.execute("SELECT count(gik.decode(ref)) FROM cancel_refs")
        elapsed = time.monotonic() - t0
        cur.execute("RESET statement_timeout")
    assert elapsed < 2.0, elapsed
    assert scalar(conn, "SELECT 1") == 1
    query(conn, "DROP TABLE cancel_refs")


# ---------------------------------------------------------------- batches

def batch(conn, refs, lon="source", box=None):
    """gik.decode_batch() rows as {ord: (grid dict, array)}."""
    out = {}
    with conn.cursor() as cur:
        cur.execute(f"SELECT ord, (grid).*, array_send(vals) FROM gik.decode_batch(%s::gik.ref[], %s, {box_sql(box)})",
                    ([f"({u},{o},{n})" for u, o, n in refs], lon))
        names = [d.name for d in cur.description]
        for row in cur.fetchall():
            assert row[0] not in out, "an ord twice"
            out[row[0]] = (dict(zip(names[1:-1], row[1:-1])), parse_array_send(row[-1]))
    return out


def test_batch_equals_single_decodes(conn):
    """Every row of a mixed batch (fixtures, GEFS, ECMWF, repeats, shuffled) equals the single decode."""
    refs = [(GEFS, o, n) for o, n, _ in idx_refs(conn, GEFS)]
    refs += [(ENS + ".grib2", o, n) for o, n, _ in index_refs(conn, ENS)]
    for rel in ("gribberish/gfswave.t18z.atlocn.0p16.f001.grib2", "kerchunk/gec00_20250101_00_soilw.grib",
                "generated/lambert.grib2", "generated/scan_ineg_jpos.grib2"):
        refs += [(f"{HTTP}/fixtures/{rel}", o, n) for o, n in messages(MIRROR / "fixtures" / rel)]
    refs += refs[::7]  # repeats
    rng = np.random.default_rng(3)
    refs = [refs[k] for k in rng.permutation(len(refs))]
    for lon, box in [("source", None), ("-180..180", (-100, 0, 60, 50))]:
        if box is not None:
            refs = [r for r in refs if "lambert" not in r[0]]
        rows = batch(conn, refs, lon, box)
        assert sorted(rows) == list(range(1, len(refs) + 1))
        singles = {}
        for k, ref in enumerate(refs, 1):
            if ref not in singles:
                g = query(conn, f"SELECT grid_type, ni, nj, lat_first, lon_first FROM gik.grid(%s, %s, %s, %s, {box_sql(box)})",
                          (*ref, lon))[0]
                singles[ref] = (decode(conn, *ref, lon, box), dict(zip(("grid_type", "ni", "nj", "lat_first", "lon_first"), g)))
            got_grid, got = rows[k]
            assert_same_grid(got, singles[ref][0])
            for c, v in singles[ref][1].items():
                assert got_grid[c] == v, (ref, c)


def fault_stats():
    with urllib.request.urlopen(FAULT + "/__stats") as r:
        return json.load(r)


def fault_reset():
    with urllib.request.urlopen(FAULT + "/__reset") as r:
        r.read()


def test_batch_dedupe_and_merging(conn):
    """Requests made by a batch, counted by the fault server: repeats are fetched once, touching ranges
    in one request, ranges closer than gik.merge_gap in one request, others apart."""
    refs = [(o, n) for o, n, _ in idx_refs(conn, GEFS)]
    url = FAULT + "/" + str(mirror_path(GEFS).relative_to(MIRROR))
    cases = [("all 38, touching", refs, 0, 1),
             ("all 38 twice", refs + refs, 0, 1),
             ("every other one, gap 0", refs[::2], 0, 19),
             ("every other one, gap 1 MB", refs[::2], 1 << 20, 1),
             ("every third one, gap 1 byte", refs[::3], 1, 13),
             # messages 1 and 3: the gap between them is message 2, merged when merge_gap >= its length
             ("gap = message 2", [refs[0], refs[2]], refs[1][1], 1),
             ("gap = message 2 - 1", [refs[0], refs[2]], refs[1][1] - 1, 2)]
    for name, rs, gap, want in cases:
        fault_reset()
        query(conn, "SET gik.merge_gap = %s", (gap,))
        rows = batch(conn, [(url, o, n) for o, n in rs])
        stats = fault_stats()
        query(conn, "RESET gik.merge_gap")
        assert len(rows) == len(rs), name
        assert stats["total"] == want, (name, stats["total"], stats["requests"][-3:])
    # the rows of merged requests are the single decodes
    one = batch(conn, [(url, o, n) for o, n in refs[::2]])
    for k, (o, n) in enumerate(refs[::2], 1):
        assert_same_grid(one[k][1], decode(conn, GEFS, o, n))


def test_batch_threads_and_connections(conn):
    """Results do not depend on gik.decode_threads or gik.max_connections."""
    refs = [(GEFS, o, n) for o, n, _ in idx_refs(conn, GEFS)][::3] + [(ENS + ".grib2", o, n) for o, n, _ in index_refs(conn, ENS)]
    base = batch(conn, refs)
    assert sorted(base) == list(range(1, len(refs) + 1)) and len(refs) > 20
    for threads, conns in [(1, 1), (4, 2), (8, 16)]:
        query(conn, "SET gik.decode_threads = %s; SET gik.max_connections = %s", (threads, conns))
        rows = batch(conn, refs)
        for k in base:
            assert_same_grid(rows[k][1], base[k][1])
    query(conn, "RESET gik.decode_threads; RESET gik.max_connections")


def test_batch_error_names_reference(conn):
    url = f"{HTTP}/fixtures/grib-rs/20240101000000-0h-oper-fc.grib2.0-10"
    e = pg_error(conn, "SELECT count(*) FROM gik.decode_batch(%s::gik.ref[])",
                 ([f"({url},0,205483)", f"({url},427603,225)"],))
    assert f'bytes 427603-427827 of "{url}"' in e.pgerror
    assert scalar(conn, "SELECT 1") == 1
