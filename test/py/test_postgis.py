"""pg_gik_postgis rasters compared with GDAL's reading of the same GRIB messages.

GDAL 3.6 (gdal-bin) reads GRIB2 complex packing, JPEG 2000 and simple packing, but not CCSDS, so
the comparison uses GDAS, GEFS (real and generated) and GFS-Wave messages; ECMWF (CCSDS) rasters are
checked against ecCodes in test_decode.py and for geometry here. GDAL's GRIB driver moves longitudes
past 180 to -180..180 (GRIB_ADJUST_LONGITUDE_RANGE: a global 0..359.75 grid is rolled to start at
-180, a grid coded from 310 starts at -50), so each raster is compared in the pg_gik longitude
convention that gives GDAL's origin (source, -180..180 or 0..360; one of them must), and then its
geotransform must be GDAL's exactly: the upper-left corner half a cell north-west of the first cell
centre, the pixel size the grid increment.

GDAL 3.6 places grids stored east to west (scanning modes 128 and 192) at the wrong longitude (its
geotransform is one or more cells west), so generated messages are compared in modes 0, 32 and 64.
GDAL also converts units (K to degrees C) unless GRIB_NORMALIZE_UNITS=NO, which is set here.

GDAL is run through its command line tools (Debian's gdal-bin, the GDAL PostGIS links): gdal_translate -of VRT
for the size, geotransform and nodata, gdal_translate -ot Float64 -of ENVI for a band's values (the same numbers
as ReadAsArray). Debian's python3-gdal is built for Python 3.11 only, and the suite runs in the project's 3.12 venv.
"""
import os
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import psycopg2
import pytest

from conftest import HTTP, MIRROR, connect, mirror_path, query, scalar, with_postgis
from test_decode import make_message, messages

GDAL_CONFIG = ["--config", "GRIB_NORMALIZE_UNITS", "NO"]  # GDAL would turn kelvin into degrees Celsius

GEFS = "s3://noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25/gep01.t00z.pgrb2s.0p25.f024"


@pytest.fixture(scope="module")
def conn(db_setup):
    c = with_postgis(connect())
    with c.cursor() as cur:
        cur.execute("SET postgis.gdal_enabled_drivers = 'PNG'")
    yield c
    c.close()


def parse_raster_wkb(b):
    """RFC2 raster WKB (as ST_AsBinary gives it) -> (header dict, [band arrays], [nodata values])."""
    b = bytes(b)
    assert b[0] == 1, "expected little endian"
    version, nbands, sx, sy, ipx, ipy, kx, ky, srid, w, h = struct.unpack_from("<HHddddddiHH", b, 1)
    head = dict(version=version, nbands=nbands, scalex=sx, scaley=sy, upperleftx=ipx, upperlefty=ipy,
                skewx=kx, skewy=ky, srid=srid, width=w, height=h)
    pos, bands, nodata = 61, [], []
    for _ in range(nbands):
        flags = b[pos]
        assert flags & 0x0F == 10, "expected 32BF"
        nodata.append(struct.unpack_from("<f", b, pos + 1)[0] if flags & 0x40 else None)
        pos += 5
        bands.append(np.frombuffer(b, "<f4", w * h, pos).reshape(h, w))
        pos += 4 * w * h
    assert pos == len(b)
    return head, bands, nodata


def raster(conn, sql, params):
    return parse_raster_wkb(scalar(conn, f"SELECT ST_AsBinary(({sql}))", params))


def raster_like_gdal(conn, url, off, n, gt):
    """gik.decode_raster() in the longitude convention whose upper-left corner is GDAL's."""
    for conv in ("source", "-180..180", "0..360"):
        x0 = scalar(conn, "SELECT ST_UpperLeftX(gik.decode_raster(%s, %s, %s, %s))", (url, off, n, conv))
        if abs(x0 - gt[0]) < 1e-9:
            return conv, raster(conn, "gik.decode_raster(%s, %s, %s, %s)", (url, off, n, conv))
    pytest.fail(f"no longitude convention gives GDAL's origin {gt[0]} for {url} {off}")


def gdal_info(path):
    """GDAL's description of a file: size, geotransform (None without one) and each band's nodata (None without one).
    Read from gdal_translate's VRT, which prints the geotransform in 17 digits (gdalinfo -json rounds it to 16)."""
    out = subprocess.run(["gdal_translate", "-q", *GDAL_CONFIG, "-of", "VRT", str(path), "/vsistdout/"],
                         check=True, capture_output=True, text=True)
    vrt = ET.fromstring(out.stdout)
    gt = vrt.findtext("GeoTransform")
    return {"size": (int(vrt.get("rasterXSize")), int(vrt.get("rasterYSize"))),
            "geotransform": tuple(float(v) for v in gt.split(",")) if gt else None,
            "nodata": [None if b.findtext("NoDataValue") is None else float(b.findtext("NoDataValue"))
                       for b in vrt.iter("VRTRasterBand")]}


def gdal_band(path, info, band):
    """One band's values as GDAL reads them, in float64: gdal_translate to a raw ENVI file, read with numpy."""
    out = path.parent / f"{path.name}.b{band}.envi"
    subprocess.run(["gdal_translate", "-q", *GDAL_CONFIG, "-b", str(band), "-ot", "Float64", "-of", "ENVI",
                    str(path), str(out)], check=True, capture_output=True)
    try:
        hdr = dict(line.split(" = ", 1) for line in out.with_suffix(".hdr").read_text().splitlines() if " = " in line)
        dtype = ">f8" if hdr["byte order"].strip() == "1" else "<f8"
        width, height = info["size"]
        return np.fromfile(out, dtype).reshape(height, width).astype(np.float64)
    finally:
        for f in path.parent.glob(f"{out.stem}.*"):
            f.unlink()


def gdal_read(tmp_path, data, name="m.grib2"):
    """GDAL's geotransform, array (NaN where GDAL says nodata) and size for one message."""
    path = tmp_path / name
    path.write_bytes(data)
    info = gdal_info(path)
    arr = gdal_band(path, info, 1)
    nd = info["nodata"][0]
    if nd is not None:
        arr[arr == nd] = np.nan
    return info["geotransform"], arr


def gdal_cases(conn):
    """(id, url, local bytes of the file, offset, length) of every message GDAL can read."""
    cases = []
    for rel in ("grib-rs/gdas.t12z.pgrb2.0p25.f000.12", "kerchunk/gec00_20250101_00_soilw.grib",
                "gribberish/gfswave.t18z.atlocn.0p16.f001.grib2"):
        path = MIRROR / "fixtures" / rel
        for k, (off, n) in enumerate(messages(path)):
            cases.append((f"{rel.split('/')[-1]}#{k + 1}", f"{HTTP}/fixtures/{rel}", path, off, n))
    rows = query(conn, "SELECT byte_offset, byte_length, variable FROM gik.parse_idx(gik.fetch_text(%s), "
                       "(gik.file_info(%s)).size, %s) ORDER BY byte_offset", (GEFS + ".idx", GEFS, GEFS))
    for off, n, var in rows[::5] + [r for r in rows if r[2] == "APCP"]:
        cases.append((f"gefs {var}", GEFS, mirror_path(GEFS), off, n))
    return cases


def assert_matches_gdal(head, band, gt, arr):
    """Geotransform, size and every pixel (nodata included) agree with GDAL."""
    assert (head["width"], head["height"]) == (arr.shape[1], arr.shape[0])
    assert head["upperleftx"] == pytest.approx(gt[0], abs=1e-9)
    assert head["upperlefty"] == pytest.approx(gt[3], abs=1e-9)
    assert head["scalex"] == pytest.approx(gt[1], rel=1e-12)
    assert head["scaley"] == pytest.approx(gt[5], rel=1e-12)
    assert head["skewx"] == gt[2] == 0 and head["skewy"] == gt[4] == 0
    assert np.array_equal(np.isnan(band), np.isnan(arr))
    ok = ~np.isnan(arr)
    # GDAL's g2clib unpacks in float32 arithmetic, ecCodes in double: equal to float32 precision
    np.testing.assert_allclose(band[ok], arr[ok], rtol=2e-7, atol=1e-6 * np.nanmax(np.abs(arr)))


def test_rasters_match_gdal(conn, tmp_path):
    """Every GDAL-readable message: raster geometry and pixels equal GDAL's."""
    cases = gdal_cases(conn)
    assert len(cases) >= 25
    for name, url, path, off, n in cases:
        with open(path, "rb") as f:
            f.seek(off)
            data = f.read(n)
        gt, arr = gdal_read(tmp_path, data)
        _, (head, bands, nodata) = raster_like_gdal(conn, url, off, n, gt)
        assert head["nbands"] == 1 and head["srid"] == 4326 and np.isnan(nodata[0]), name
        assert_matches_gdal(head, bands[0], gt, arr)


@pytest.mark.parametrize("packing,mode,grib1", [
    ("grid_simple", 0, False), ("grid_simple", 32, False), ("grid_simple", 64, False), ("grid_complex", 0, False),
    ("grid_complex_spatial_differencing", 0, False), ("grid_jpeg", 0, False), ("grid_png", 0, False),
    ("grid_ieee", 0, False), ("grid_simple", 0, True)])
def test_generated_messages_match_gdal(conn, tmp_path, packing, mode, grib1):
    """Messages written by ecCodes in every packing GDAL reads, with a bitmap, across 0 degrees."""
    msg = make_message(packing, ni=36, nj=19, bitmap=True, scanning_mode=mode, grib1=grib1, lon0=-50.0,
                       lat_north=60.0, lat_south=-30.0, seed=mode + 1)
    scratch = MIRROR / "scratch" / f"postgis-{os.getpid()}"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        path = scratch / "m.grib"
        path.write_bytes(msg)
        os.chmod(scratch, 0o755)
        gt, arr = gdal_read(tmp_path, msg)
        _, (head, bands, _) = raster_like_gdal(conn, f"{HTTP}/{path.relative_to(MIRROR)}", 0, len(msg), gt)
        assert_matches_gdal(head, bands[0], gt, arr)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def test_st_value_equals_gdal_pixel(conn, tmp_path):
    """ST_Value at points (cell centres, near corners, both conventions) is GDAL's pixel under the point."""
    rng = np.random.default_rng(11)
    for rel, off, n in [("grib-rs/gdas.t12z.pgrb2.0p25.f000.12", 0, 305744),
                        ("gribberish/gfswave.t18z.atlocn.0p16.f001.grib2", 184546, 28830),
                        ("kerchunk/gec00_20250101_00_soilw.grib", 0, 95343)]:
        url = f"{HTTP}/fixtures/{rel}"
        with open(MIRROR / "fixtures" / rel, "rb") as f:
            f.seek(off)
            gt, arr = gdal_read(tmp_path, f.read(n))
        h, w = arr.shape
        # points strictly inside pixels (never on an edge): centre +- up to 0.45 of a cell
        cols = rng.integers(0, w, 300)
        rows = rng.integers(0, h, 300)
        xs = gt[0] + (cols + 0.5 + rng.uniform(-0.45, 0.45, 300)) * gt[1]
        ys = gt[3] + (rows + 0.5 + rng.uniform(-0.45, 0.45, 300)) * gt[5]
        for conv, shift in [("-180..180", 0.0), ("0..360", 360.0)]:
            got = query(conn, "SELECT ST_Value(r, ST_SetSRID(ST_Point(x, y), 4326), false) "
                              "FROM gik.decode_raster(%s, %s, %s, %s) r, unnest(%s::float8[], %s::float8[]) WITH ORDINALITY p(x, y, k) "
                              "ORDER BY k", (url, off, n, conv, [float(x + (shift if x < 0 else 0)) for x in xs],
                                             [float(y) for y in ys]))
            got = np.array([np.nan if v[0] is None else v[0] for v in got])
            want = arr[rows, cols]
            assert np.array_equal(np.isnan(got), np.isnan(want)), (rel, conv)
            ok = ~np.isnan(want)
            np.testing.assert_allclose(got[ok], want[ok], rtol=2e-7, atol=1e-6 * np.nanmax(np.abs(arr)))


def test_region_raster_is_gdal_window(conn, tmp_path):
    """A region raster (East Africa; a box across 0 degrees) is the matching window of GDAL's array."""
    url = f"{HTTP}/fixtures/grib-rs/gdas.t12z.pgrb2.0p25.f000.12"
    gt, arr = gdal_read(tmp_path, (MIRROR / "fixtures/grib-rs/gdas.t12z.pgrb2.0p25.f000.12").read_bytes())
    for box in [(21, -12, 53, 23), (-10, -5, 10, 5), (-30.1, 60.3, -29.9, 60.6)]:
        head, bands, _ = raster(conn, "gik.decode_raster(%s, 0, 305744, '-180..180', gik.bbox(%s, %s, %s, %s))",
                                (url, *box))
        c0 = round((head["upperleftx"] - gt[0]) / gt[1])
        r0 = round((head["upperlefty"] - gt[3]) / gt[5])
        assert head["upperleftx"] == pytest.approx(gt[0] + c0 * gt[1], abs=1e-9)
        assert head["upperlefty"] == pytest.approx(gt[3] + r0 * gt[5], abs=1e-9)
        # the box's edges are inside the first and last pixels
        assert head["upperleftx"] <= box[0] < head["upperleftx"] + gt[1]
        assert head["upperlefty"] >= box[3] > head["upperlefty"] + gt[5]
        window = arr[r0:r0 + head["height"], c0:c0 + head["width"]]
        np.testing.assert_array_equal(bands[0], window.astype(np.float32))


def test_three_band_grid_raster(conn, tmp_path):
    """gik.grid_raster of real[3][nj][ni] from a batch: three bands, each equal to GDAL's reading."""
    rows = query(conn, "SELECT byte_offset, byte_length FROM gik.parse_idx(gik.fetch_text(%s), "
                       "(gik.file_info(%s)).size, %s) WHERE variable IN ('TMP', 'RH', 'PRMSL') ORDER BY byte_offset",
                 (GEFS + ".idx", GEFS, GEFS))
    assert len(rows) == 3
    refs = [f"({GEFS},{o},{n})" for o, n in rows]
    wkb = scalar(conn, "SELECT ST_AsBinary(gik.grid_raster(array_agg(vals ORDER BY ord), (array_agg(grid))[1])) "
                       "FROM gik.decode_batch(%s::gik.ref[], '-180..180')", (refs,))
    head, bands, nodata = parse_raster_wkb(wkb)
    assert head["nbands"] == 3 and len(bands) == 3
    data = mirror_path(GEFS).read_bytes()
    for k, (o, n) in enumerate(rows):
        gt, arr = gdal_read(tmp_path, data[o:o + n], f"b{k}.grib2")
        assert_matches_gdal(head, bands[k], gt, arr)


def test_png(conn, tmp_path):
    """ST_AsPNG(ST_ColorMap(...)) and gik.grid_png(): valid PNGs GDAL can read back, nodata transparent."""
    url = f"{HTTP}/fixtures/kerchunk/gec00_20250101_00_soilw.grib"
    png = bytes(scalar(conn, "SELECT ST_AsPNG(ST_ColorMap(gik.decode_raster(%s, 0, 95343), 1, 'bluered'))", (url,)))
    png2 = bytes(scalar(conn, "SELECT gik.grid_png(gik.decode(%s, 0, 95343), gik.grid(%s, 0, 95343))", (url, url)))
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png2.startswith(b"\x89PNG\r\n\x1a\n")
    vals = np.array(query(conn, "SELECT gik.decode(%s, 0, 95343)", (url,))[0][0], dtype=np.float32)
    for k, blob in enumerate((png, png2)):
        path = tmp_path / f"p{k}.png"
        path.write_bytes(blob)
        info = gdal_info(path)
        assert (*info["size"], len(info["nodata"])) == (720, 361, 4)
        alpha = gdal_band(path, info, 4)
        # ocean (NaN) is transparent, land opaque
        assert np.array_equal(alpha == 0, np.isnan(vals))
    # the session setting matters: without the PNG driver GDAL output is refused
    with conn.cursor() as cur:
        cur.execute("SET postgis.gdal_enabled_drivers = 'DISABLE_ALL'")
        with pytest.raises(psycopg2.Error, match="GDAL"):
            cur.execute("SELECT gik.grid_png('{{1,2},{3,4}}'::real[], ROW('regular_ll', 2, 2, 1, 0, 0, 1, 1, 1, 0, NULL)::gik.grid_desc)")
        cur.execute("SET postgis.gdal_enabled_drivers = 'PNG'")


def test_ecmwf_raster_geometry(conn):
    """CCSDS (GDAL cannot read it): the geometry follows the same rule, in both conventions."""
    url = f"{HTTP}/fixtures/gribberish/ecmwf-ifs-oper-surface.grib2"
    for conv, x0 in [("source", -180.125), ("-180..180", -180.125), ("0..360", -0.125)]:
        head = query(conn, "SELECT (ST_Metadata(gik.decode_raster(%s, 0, 111849, %s))).*", (url, conv))[0]
        assert head[:6] == (x0, 90.125, 1440, 721, 0.25, -0.25)
