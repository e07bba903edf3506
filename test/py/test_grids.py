"""Projected and Gaussian grids: values north-up, every cell's coordinates against ecCodes' own
latitudes and longitudes, rasters against GDAL's georeferencing of the same message, and boxes."""
import json
import subprocess

import eccodes as ec
import numpy as np
import psycopg2
import pytest

from conftest import DATA, connect, with_postgis


# (file under test/data, message number): what it is
PROJECTED = {
    ("generated/hrrr_like_lambert.grib2", 0): "Lambert, HRRR's projection, stored south to north",
    ("cfgrib/lambert_grid.grib", 0): "real GRIB1 Lambert 475 x 475 (cfgrib sample data)",
    ("generated/polar_north.grib2", 0): "north polar stereographic",
    ("generated/polar_south.grib2", 0): "south polar stereographic",
    ("generated/mercator.grib2", 0): "Mercator across 180 degrees",
    ("cfgrib/ds.waveh.5.grib", 0): "real GRIB2 Mercator 2517 x 1793, boustrophedon rows (cfgrib sample data)",
}
GAUSSIAN = ["generated/reduced_gg_n32.grib2", "generated/octahedral_o32.grib2", "cfgrib/reduced_gg.grib",
            "generated/regular_gg_n32.grib2", "cfgrib/regular_gg_sfc.grib"]


def message(rel, k=0):
    """(path, offset, length, eccodes handle) of message k of a fixture."""
    path = DATA / rel
    with open(path, "rb") as f:
        for _ in range(k + 1):
            h = ec.codes_grib_new_from_file(f)
    return str(path), int(ec.codes_get(h, "offset")), int(ec.codes_get(h, "totalLength")), h


def north_up(h, arr, boustrophedon=True):
    """An array in scanning order laid out north-up, west to east, from ecCodes' scanning flags.
    ecCodes 2.28 gives coordinates of boustrophedon grids without reversing odd rows: boustrophedon=False."""
    ni = ec.codes_get(h, "Nx") if ec.codes_is_defined(h, "Nx") else ec.codes_get(h, "Ni")
    nj = ec.codes_get(h, "Ny") if ec.codes_is_defined(h, "Ny") else ec.codes_get(h, "Nj")
    a = np.asarray(arr, dtype=float).reshape(nj, ni).copy()
    if boustrophedon and ec.codes_is_defined(h, "alternativeRowScanning") and ec.codes_get(h, "alternativeRowScanning"):
        a[1::2] = a[1::2, ::-1]
    if ec.codes_get(h, "iScansNegatively"):
        a = a[:, ::-1]
    if ec.codes_get(h, "jScansPositively"):
        a = a[::-1]
    return a


def values_nan(h):
    """ecCodes' values with missing points as NaN."""
    v = ec.codes_get_values(h).astype(float)
    if ec.codes_get(h, "bitmapPresent") or ec.codes_get(h, "numberOfMissing") > 0:
        v[v == ec.codes_get(h, "missingValue")] = np.nan
    return v


def lon_diff(a, b):
    return np.abs((np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0)


@pytest.fixture(scope="module")
def conn(db_setup):
    c = connect()
    yield c
    c.close()


@pytest.fixture(scope="module")
def raster_conn(db_setup):
    """A connection with pg_gik_postgis, for the raster tests."""
    c = with_postgis(connect())
    yield c
    c.close()


@pytest.mark.parametrize("rel,k", list(PROJECTED), ids=[f"{r}#{k}" for r, k in PROJECTED])
def test_projected_values_and_coordinates_match_eccodes(conn, rel, k):
    path, off, length, h = message(rel, k)
    with conn.cursor() as cur:
        cur.execute("SELECT g, gik.decode(%s, %s, %s), gik.grid_lats(g), gik.grid_lons(g) "
                    "FROM gik.grid(%s, %s, %s) g", (path, off, length, path, off, length))
        grid, vals, lats, lons = cur.fetchone()
    vals, lats, lons = (np.array(x, dtype=float) for x in (vals, lats, lons))
    want_vals = north_up(h, values_nan(h))
    want_lats = north_up(h, ec.codes_get_array(h, "latitudes"), boustrophedon=False)
    want_lons = north_up(h, ec.codes_get_array(h, "longitudes"), boustrophedon=False)
    if ec.codes_is_defined(h, "alternativeRowScanning") and ec.codes_get(h, "alternativeRowScanning"):
        # odd rows run east to west: un-reversing them must give a smooth field (wave heights)
        plain = north_up(h, values_nan(h), boustrophedon=False)
        assert np.nanmean(np.abs(np.diff(vals, axis=0))) < 0.1 * np.nanmean(np.abs(np.diff(plain, axis=0)))
    assert vals.shape == want_vals.shape == lats.shape == lons.shape
    np.testing.assert_allclose(vals, want_vals, rtol=1e-6, atol=1e-6 * np.nanmax(np.abs(want_vals)))
    assert np.abs(lats - want_lats).max() < 1e-5, "latitudes differ from ecCodes'"
    assert lon_diff(lons, want_lons).max() < 1e-5, "longitudes differ from ecCodes'"
    assert grid.startswith("(" + ec.codes_get(h, "gridType") + ",")
    ec.codes_release(h)


def gdal_georef(path, off, length, tmp_path):
    """GDAL's geotransform and PROJ string of the message alone (GDAL stops at trailing bytes)."""
    one = tmp_path / "one.grib"
    with open(path, "rb") as f:
        f.seek(off)
        one.write_bytes(f.read(length))
    info = json.loads(subprocess.run(["gdalinfo", "-json", str(one)], check=True, capture_output=True, text=True).stdout)
    proj = subprocess.run(["gdalsrsinfo", "-o", "proj4", str(one)], check=True, capture_output=True, text=True).stdout
    return info["size"], info["geoTransform"], proj.strip()


def proj_params(s):
    out = {}
    for tok in s.split():
        key, _, val = tok.lstrip("+").partition("=")
        try:
            out[key] = float(val)
        except ValueError:
            out[key] = val
    return out


@pytest.mark.parametrize("rel,k", list(PROJECTED), ids=[f"{r}#{k}" for r, k in PROJECTED])
def test_projected_raster_matches_gdal(raster_conn, rel, k, tmp_path):
    path, off, length, h = message(rel, k)
    ec.codes_release(h)
    size, gt, gdal_proj = gdal_georef(path, off, length, tmp_path)
    with raster_conn.cursor() as cur:
        cur.execute("SELECT ST_Width(r), ST_Height(r), ST_UpperLeftX(r), ST_UpperLeftY(r), ST_ScaleX(r), ST_ScaleY(r), "
                    "ST_SRID(r) FROM gik.decode_raster(%s, %s, %s) r", (path, off, length))
        w, hgt, ulx, uly, sx, sy, srid = cur.fetchone()
        cur.execute("SELECT proj4text FROM spatial_ref_sys WHERE srid = %s AND auth_name = 'pg_gik'", (srid,))
        proj = cur.fetchone()[0]
    assert [w, hgt] == size
    assert 990000 <= srid <= 998998
    ours, theirs = proj_params(proj), proj_params(gdal_proj)
    assert ours["proj"] == theirs["proj"]
    for key in ("lat_0", "lat_1", "lat_2", "lat_ts", "R"):
        if key in theirs:
            assert ours[key] == pytest.approx(theirs[key], abs=1e-6), key
    # GDAL's GRIB driver keeps the radius it reads as given: compare the rest when it agrees
    assert lon_diff(ours["lon_0"], theirs["lon_0"]) < 1e-9
    # the corner: GDAL computes it with PROJ; allow a thousandth of a cell
    assert sx == pytest.approx(gt[1], rel=1e-9) and sy == pytest.approx(gt[5], rel=1e-9)
    assert abs(ulx - gt[0]) < 1e-3 * abs(sx) and abs(uly - gt[3]) < 1e-3 * abs(sy)
    # the SRID rule is stable: the same projection gets the same SRID again
    with raster_conn.cursor() as cur:
        cur.execute("SELECT gik.proj_srid(%s)", (proj,))
        assert cur.fetchone()[0] == srid


def test_scanning_mode_0_follows_wmo_with_pyproj(raster_conn):
    """Rows north to south from the first point, as WMO's scanning mode 0 says. ecCodes 2.28 and GDAL 3.6
    both lay projected grids stored north to south out northwards from the first point (and disagree with
    each other on Mercator), so PROJ itself (pyproj) on the message's own parameters is the oracle here."""
    import pyproj

    path, off, length, h = message("generated/lambert.grib2")
    ni, nj, dx, dy = (ec.codes_get(h, k) for k in ("Nx", "Ny", "DxInMetres", "DyInMetres"))
    crs = pyproj.CRS.from_dict({"proj": "lcc", "lat_0": ec.codes_get(h, "LaDInDegrees"),
                                "lon_0": ec.codes_get(h, "LoVInDegrees"), "lat_1": ec.codes_get(h, "Latin1InDegrees"),
                                "lat_2": ec.codes_get(h, "Latin2InDegrees"), "R": ec.codes_get(h, "radius")})
    tr = pyproj.Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True)
    x0, y0 = tr.transform(ec.codes_get(h, "longitudeOfFirstGridPointInDegrees"),
                          ec.codes_get(h, "latitudeOfFirstGridPointInDegrees"))
    xs, ys = np.meshgrid(x0 + dx * np.arange(ni), y0 - dy * np.arange(nj))
    want_lons, want_lats = tr.transform(xs, ys, direction="INVERSE")
    values = ec.codes_get_values(h).reshape(nj, ni)
    ec.codes_release(h)
    with raster_conn.cursor() as cur:
        cur.execute("SELECT gik.decode(%s, %s, %s), gik.grid_lats(g), gik.grid_lons(g), ST_UpperLeftX(r), ST_UpperLeftY(r) "
                    "FROM gik.grid(%s, %s, %s) g, gik.decode_raster(%s, %s, %s) r", (path, off, length) * 3)
        vals, lats, lons, ulx, uly = cur.fetchone()
    np.testing.assert_array_equal(np.array(vals), values)
    assert np.abs(np.array(lats) - want_lats).max() < 1e-9
    assert lon_diff(np.array(lons), want_lons).max() < 1e-9
    assert (ulx, uly) == pytest.approx((x0 - dx / 2, y0 + dy / 2), abs=1e-6)


@pytest.mark.parametrize("rel,box", [
    ("generated/hrrr_like_lambert.grib2", (-106.5, 37.3, -105.5, 38.0)),
    ("generated/polar_north.grib2", (-160.0, 57.5, -155.0, 59.5)),
    ("generated/polar_south.grib2", (64.0, -56.0, 68.0, -54.0)),
    ("generated/mercator.grib2", (175.0, 10.0, -170.0, 18.0)),       # crosses 180 degrees
])
def test_box_selects_cells_whose_centres_are_inside(conn, rel, box):
    path, off, length, h = message(rel)
    with conn.cursor() as cur:
        cur.execute("SELECT gik.decode(%s, %s, %s, 'source', gik.bbox(%s, %s, %s, %s))", (path, off, length, *box))
        got = np.array(cur.fetchone()[0], dtype=float)
    vals = north_up(h, values_nan(h))
    lats = north_up(h, ec.codes_get_array(h, "latitudes"), boustrophedon=False)
    lons = north_up(h, ec.codes_get_array(h, "longitudes"), boustrophedon=False)
    ec.codes_release(h)
    lon_min, lat_min, lon_max, lat_max = box
    width = (lon_max - lon_min) % 360.0
    lons = np.where(np.abs(lons - 360.0) < 1e-9, 0.0, lons)
    inside = (lats >= lat_min) & (lats <= lat_max) & (((lons - lon_min) % 360.0) <= width)
    rows, cols = np.nonzero(inside)
    assert rows.size > 0 and not inside.all()
    sub = slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)
    want = np.where(inside[sub], vals[sub], np.nan)
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[~np.isnan(got)], want[~np.isnan(want)], rtol=1e-6)


@pytest.mark.parametrize("rel", GAUSSIAN)
def test_gaussian_values_and_coordinates_match_eccodes(conn, rel):
    path, off, length, h = message(rel)
    with conn.cursor() as cur:
        cur.execute("SELECT gik.decode(%s, %s, %s), gik.grid_lats(g), gik.grid_lons(g) FROM gik.grid(%s, %s, %s) g",
                    (path, off, length, path, off, length))
        vals, lats, lons = (np.array(x, dtype=float) for x in cur.fetchone())
    want_lats = ec.codes_get_array(h, "latitudes")
    want_lons = ec.codes_get_array(h, "longitudes")
    values = ec.codes_get_values(h)
    if ec.codes_get(h, "gridType") == "regular_gg":
        ni = ec.codes_get(h, "Ni")
        want_lats, want_lons = want_lats[::ni], want_lons[:ni]
    np.testing.assert_allclose(vals.ravel(), values, rtol=1e-6, atol=1e-6 * np.abs(values).max())
    assert lats.shape == want_lats.shape and lons.shape == want_lons.shape
    assert np.abs(lats - want_lats).max() < 1e-6
    assert lon_diff(lons, want_lons).max() < 1e-6
    ec.codes_release(h)


def test_reduced_gaussian_raster_says_it_needs_regridding(raster_conn):
    path, off, length, h = message("cfgrib/reduced_gg.grib")
    ec.codes_release(h)
    with raster_conn.cursor() as cur:
        with pytest.raises(psycopg2.Error) as e:
            cur.execute("SELECT gik.decode_raster(%s, %s, %s)", (path, off, length))
    assert e.value.pgcode == "0A000"
    assert "needs regridding" in e.value.diag.message_detail


def test_bad_proj_text_is_rejected_with_its_text(conn):
    with conn.cursor() as cur:
        with pytest.raises(psycopg2.Error) as e:
            cur.execute("SELECT gik.grid_lats(ROW('lambert', 2, 2, 40, -100, NULL, NULL, 3000, 3000, 0, "
                        "'+proj=lcc +lat_1=abc')::gik.grid_desc)")
    assert e.value.pgcode == "22023"
    assert "+proj=lcc +lat_1=abc" in e.value.diag.message_detail


def test_grid_raster_of_a_projected_grid_needs_its_srid(raster_conn):
    path, off, length, h = message("generated/hrrr_like_lambert.grib2")
    ec.codes_release(h)
    with raster_conn.cursor() as cur:
        cur.execute("SELECT ST_UpperLeftX(r), ST_UpperLeftY(r), ST_SRID(r) FROM gik.decode_raster(%s, %s, %s) r", (path, off, length))
        want = cur.fetchone()
        cur.execute("SELECT ST_UpperLeftX(r), ST_UpperLeftY(r), ST_SRID(r) FROM gik.grid(%s, %s, %s) g, "
                    "gik.grid_raster(gik.decode(%s, %s, %s), g, gik.proj_srid((g).proj)) r", (path, off, length) * 2)
        got = cur.fetchone()
        # the description's corner goes through lon/lat and back: equal to a micrometre
        assert got[2] == want[2] and got[:2] == pytest.approx(want[:2], abs=1e-6)
        with pytest.raises(psycopg2.Error) as e:
            cur.execute("SELECT gik.grid_raster(gik.decode(%s, %s, %s), g) FROM gik.grid(%s, %s, %s) g", (path, off, length) * 2)
    assert e.value.pgcode == "22023" and "proj_srid" in e.value.diag.message_hint
