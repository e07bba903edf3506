"""Regridding (gik.regrid and gik.exceedance's target =>) against independent numpy computations on the
same fields: bilinear by np.interp along each axis (periodic in longitude, pyproj for a projected source),
conservative from numpy's own overlap areas on the sphere; conservative keeps totals."""

import eccodes as ec
import numpy as np
import pyproj
import pytest

from conftest import DATA, HTTP, connect, query, with_postgis

GDAS = (f"{HTTP}/fixtures/grib-rs/gdas.t12z.pgrb2.0p25.f000.12", 0, 305744)       # 0.25 global, 1440 x 721
EC04 = (f"{HTTP}/fixtures/grib-rs/20240101000000-0h-oper-fc.grib2.0-10", 0, 205483)  # 0.4 global, 900 x 451


def ll(ni, nj, lat_first, lon_first, d):
    """A north-up regular lat/lon grid description (SQL literal and numpy axes)."""
    sql = f"ROW('regular_ll', {ni}, {nj}, {lat_first}, {lon_first}, {lat_first - (nj - 1) * d}, " \
          f"{lon_first + (ni - 1) * d}, {d}, {d}, 0, NULL)::gik.grid_desc"
    return sql, lat_first - d * np.arange(nj), lon_first + d * np.arange(ni), d


@pytest.fixture(scope="module")
def conn(db_setup):
    c = connect()
    yield c
    c.close()


@pytest.fixture(scope="module")
def raster_conn(db_setup):
    """A connection with pg_gik_postgis, for the tests that compare with a raster's georeferencing."""
    c = with_postgis(connect())
    yield c
    c.close()


def decoded(conn, ref):
    """(values, grid, row latitudes, column longitudes, increment) of a decode."""
    url, off, n = ref
    vals, g, lats, lons, d = query(conn, "SELECT gik.decode(%s, %s, %s), g::text, gik.grid_lats(g), gik.grid_lons(g), (g).di "
                                         "FROM gik.grid(%s, %s, %s) g", (url, off, n, url, off, n))[0]
    return np.array(vals, dtype=np.float64), g, np.array(lats), np.array(lons), d


def regrid(conn, vals_sql_src, target_sql, method, params=()):
    return np.array(query(conn, f"SELECT gik.regrid({vals_sql_src}, {target_sql}, %s)", (*params, method))[0][0],
                    dtype=np.float64)


def bilinear_numpy(vals, lats, lons, t_lats, t_lons):
    """Separable bilinear: along longitude (periodic) per source row, then along latitude per column."""
    rows = np.array([np.interp(t_lons, lons, row, period=360.0) for row in vals])
    order = np.argsort(lats)
    out = np.empty((len(t_lats), len(t_lons)))
    for c in range(len(t_lons)):
        out[:, c] = np.interp(t_lats, lats[order], rows[order, c], left=np.nan, right=np.nan)
    return out


def lat_weights(s_lats, s_d, t_lats, t_d):
    lo = lambda lat, d: np.clip(lat - d / 2, -90, 90)
    hi = lambda lat, d: np.clip(lat + d / 2, -90, 90)
    top = np.minimum(hi(t_lats, t_d)[:, None], hi(s_lats, s_d)[None, :])
    bot = np.maximum(lo(t_lats, t_d)[:, None], lo(s_lats, s_d)[None, :])
    return np.where(top > bot, np.sin(np.radians(top)) - np.sin(np.radians(bot)), 0.0)


def lon_weights(s_lons, s_d, t_lons, t_d):
    rel = (s_lons[None, :] - t_lons[:, None] + 180.0) % 360.0 - 180.0    # source centre from target centre
    over = np.minimum(t_d / 2, rel + s_d / 2) - np.maximum(-t_d / 2, rel - s_d / 2)
    return np.radians(np.clip(over, 0, None))


def conservative_numpy(vals, s_lats, s_lons, s_d, t_lats, t_lons, t_d):
    wy, wx = lat_weights(s_lats, s_d, t_lats, t_d), lon_weights(s_lons, s_d, t_lons, t_d)
    m = ~np.isnan(vals)
    return (wy @ np.where(m, vals, 0) @ wx.T) / (wy @ m.astype(float) @ wx.T)


def areas(lats, lons, d):
    return np.outer(lat_weights(lats, d, lats, d).diagonal(), np.full(len(lons), np.radians(d)))


@pytest.mark.parametrize("target", [ll(360, 180, 89.5, 0.5, 1.0), ll(144, 73, 90, -180, 2.5), ll(41, 31, 50, -10.3, 0.7)],
                         ids=["1deg-offset", "2.5deg-180", "regional-0.7"])
def test_bilinear_matches_numpy(conn, target):
    vals, g, lats, lons, _ = decoded(conn, GDAS)
    sql, t_lats, t_lons, _ = target
    got = regrid(conn, "gik.decode(%s, %s, %s), %s::gik.grid_desc", sql, "bilinear", (*GDAS, g))
    want = bilinear_numpy(vals, lats, lons, t_lats, t_lons)
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.nanmax(np.abs(want)))


@pytest.mark.parametrize("src,target", [(GDAS, ll(720, 361, 90, 0, 0.5)), (GDAS, ll(360, 180, 89.5, -179.5, 1.0)),
                                        (EC04, ll(1440, 721, 90, -180, 0.25)), (EC04, ll(720, 361, 90, 0, 0.5))],
                         ids=["0.25-to-0.5", "0.25-to-1-offset", "0.4-to-0.25", "0.4-to-0.5"])
def test_conservative_matches_numpy_and_keeps_totals(conn, src, target):
    vals, g, lats, lons, d = decoded(conn, src)
    sql, t_lats, t_lons, t_d = target
    got = regrid(conn, "gik.decode(%s, %s, %s), %s::gik.grid_desc", sql, "conservative", (*src, g))
    want = conservative_numpy(vals, lats, lons, d, t_lats, t_lons, t_d)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * np.nanmax(np.abs(want)))
    # global fields without missing values: the area-weighted total is kept
    mass_src = (vals * areas(lats, lons, d)).sum()
    mass_dst = (got * areas(t_lats, t_lons, t_d)).sum()
    assert mass_dst == pytest.approx(mass_src, rel=1e-6)


def test_bilinear_from_a_projected_grid_matches_pyproj(raster_conn):
    """HRRR's Lambert projection (values = index in scanning order, so bilinear in index space is exact)."""
    path = str(DATA / "generated/hrrr_like_lambert.grib2")
    n = (DATA / "generated/hrrr_like_lambert.grib2").stat().st_size
    vals, g, proj, x0, y0, d = query(raster_conn, "SELECT gik.decode(%s, 0, %s), g::text, (g).proj, ST_UpperLeftX(r), ST_UpperLeftY(r), (g).di "
                                           "FROM gik.grid(%s, 0, %s) g, gik.decode_raster(%s, 0, %s) r",
                                     (path, n, path, n, path, n))[0]
    vals = np.array(vals, dtype=np.float64)
    sql, t_lats, t_lons, _ = ll(50, 25, 38.1, -107.0, 0.04)
    got = regrid(raster_conn, "gik.decode(%s, 0, %s), %s::gik.grid_desc", sql, "bilinear", (path, n, g))
    crs = pyproj.CRS.from_proj4(proj)
    tr = pyproj.Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True)
    lon2, lat2 = np.meshgrid(t_lons, t_lats)
    x, y = tr.transform(lon2, lat2)
    fc, fr = (x - (x0 + d / 2)) / d, ((y0 - d / 2) - y) / d
    nj, ni = vals.shape
    rows = np.array([np.interp(fc.ravel(), np.arange(ni), row, left=np.nan, right=np.nan) for row in vals])
    want = np.array([np.interp(fr.ravel()[k], np.arange(nj), rows[:, k], left=np.nan, right=np.nan)
                     for k in range(fr.size)]).reshape(got.shape)
    assert 0 < np.isnan(want).sum() < want.size          # the target reaches past the source
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.nanmax(want))


def test_conservative_from_a_projected_grid_matches_sampling(raster_conn):
    """HRRR's projection to 0.1 degrees: against numpy averaging 24 x 24 samples per source cell, each
    weighted by its area on the sphere (pyproj's areal scale factor), into the target cell it falls in."""
    path = str(DATA / "generated/hrrr_like_lambert.grib2")
    n = (DATA / "generated/hrrr_like_lambert.grib2").stat().st_size
    vals, g, proj, x0, y0, d = query(raster_conn, "SELECT gik.decode(%s, 0, %s), g::text, (g).proj, ST_UpperLeftX(r), ST_UpperLeftY(r), (g).di "
                                           "FROM gik.grid(%s, 0, %s) g, gik.decode_raster(%s, 0, %s) r",
                                     (path, n, path, n, path, n))[0]
    vals = np.array(vals, dtype=np.float64) ** 1.5 / 100      # not linear: averaging must weigh right
    sql, t_lats, t_lons, t_d = ll(22, 12, 38.15, -107.1, 0.1)
    got = np.array(query(raster_conn, f"SELECT gik.regrid(%s::real[], %s::gik.grid_desc, {sql}, 'conservative')",
                         (vals.astype(np.float32).tolist(), g))[0][0], dtype=np.float64)
    k = 24
    nj, ni = vals.shape
    sub = (np.arange(k) + 0.5) / k
    xs = x0 + d * (np.arange(ni)[:, None] + sub[None, :]).ravel()
    ys = y0 - d * (np.arange(nj)[:, None] + sub[None, :]).ravel()
    X, Y = np.meshgrid(xs, ys)
    p = pyproj.Proj(proj)
    lon, lat = p(X, Y, inverse=True)
    w = 1.0 / p.get_factors(lon, lat).areal_scale
    v = np.repeat(np.repeat(vals, k, axis=0), k, axis=1)
    r = np.floor((t_lats[0] + t_d / 2 - lat) / t_d).astype(int)
    c = np.floor((lon - (t_lons[0] - t_d / 2)) / t_d).astype(int)
    ok = (r >= 0) & (r < len(t_lats)) & (c >= 0) & (c < len(t_lons))
    num = np.zeros((len(t_lats), len(t_lons)))
    den = np.zeros_like(num)
    np.add.at(num, (r[ok], c[ok]), (w * v)[ok])
    np.add.at(den, (r[ok], c[ok]), w[ok])
    want = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    covered = den > 0.98 * np.nanmax(den)                 # target cells wholly inside the source
    assert covered.sum() > 50 and np.isnan(got).sum() > 0
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got[covered], want[covered], rtol=2e-3)


def test_weights_are_cached_per_grid_pair(conn):
    vals, g, *_ = decoded(conn, EC04)
    sql, *_ = ll(90, 46, 90, 0, 4.0)
    for _ in range(3):
        regrid(conn, "gik.decode(%s, %s, %s), %s::gik.grid_desc", sql, "conservative", (*EC04, g))
    rows = query(conn, "SELECT method, source_cells, target_cells, uses FROM gik.regrid_cache() "
                       "WHERE source_cells = 900 * 451 AND target_cells = 90 * 46")
    assert rows == [("conservative", 900 * 451, 90 * 46, 3)]


def test_bad_method_and_shape_are_rejected(conn):
    from conftest import pg_error
    sql, *_ = ll(4, 3, 2, 0, 1.0)
    e = pg_error(conn, f"SELECT gik.regrid('{{{{1,2}},{{3,4}}}}'::real[], {sql}, {sql}, 'nearest')")
    assert e.pgcode == "22023" and "nearest" in e.pgerror
    e = pg_error(conn, f"SELECT gik.regrid('{{{{1,2}},{{3,4}}}}'::real[], {sql}, {sql}, 'bilinear')")
    assert e.pgcode == "2202E" and "real[3][4]" in e.pgerror
    lam = "ROW('lambert', 5, 4, 30, 250, NULL, NULL, 100000, 100000, 0, '+proj=lcc +lat_0=38.5 +lon_0=-97.5 +lat_1=38.5 +lat_2=38.5 +x_0=0 +y_0=0 +R=6367470 +units=m +no_defs')::gik.grid_desc"
    e = pg_error(conn, f"SELECT gik.regrid(array_fill(1::real, ARRAY[3, 4]), {sql}, {lam}, 'conservative')")
    assert e.pgcode == "0A000" and "use bilinear" in e.pgerror


@pytest.fixture(scope="module")
def runs(db_setup):
    """GEFS and ECMWF clones with one generated run each (0.25 degrees)."""
    c = connect()
    for src, name in (("gefs_0p25", "gefs_rg"), ("ecmwf_ens_0p25", "ecmwf_rg")):
        query(c, "SELECT gik.drop_dataset(%s)", (name,))
        query(c, "SELECT gik.clone_dataset(%s, %s)", (src, name))
    query(c, "SELECT gik.ingest_run('gefs_rg', '2025-10-01 00:00+00', members => '{0,1,2}', steps => gik.step_list('0-24/3'))")
    query(c, "SELECT gik.ingest_run('ecmwf_rg', '2025-10-01 00:00+00', steps => '{0,6,12,18,24}')")
    yield c
    query(c, "SELECT gik.drop_dataset('gefs_rg'), gik.drop_dataset('ecmwf_rg')")
    c.close()


def test_exceedance_regrids_every_member_to_the_target(runs):
    box = "gik.bbox(30, -5, 45, 10)"
    sql, t_lats, t_lons, t_d = ll(15, 15, 9.5, 30.5, 1.0)
    thresholds = [0.5, 5.0, 20.0]
    totals = []
    for ds in ("gefs_rg", "ecmwf_rg"):
        for member, total, g, lats, lons, d in query(
                runs, f"SELECT member, total, grid::text, gik.grid_lats(grid), gik.grid_lons(grid), (grid).di "
                      f"FROM gik.accumulations(%s, '2025-10-01 00:00+00', 0, 24, {box}) WHERE total IS NOT NULL", (ds,)):
            totals.append(conservative_numpy(np.array(total, dtype=np.float64), np.array(lats), np.array(lons), d,
                                             t_lats, t_lons, t_d))
    stack = np.stack(totals).astype(np.float32)
    rows = query(runs, f"SELECT threshold, probability, (grid).ni, (grid).nj, members_used, regrid_method "
                       f"FROM gik.exceedance(ARRAY['gefs_rg', 'ecmwf_rg'], '2025-10-01 00:00+00', 0, 24, %s::real[], "
                       f"{box}, target => {sql})", (thresholds,))
    assert [r[0] for r in rows] == thresholds
    for thr, prob, ni, nj, used, how in rows:
        assert (ni, nj, used, how) == (15, 15, len(totals), "conservative")
        ref = (stack >= np.float32(thr)).sum(axis=0) / len(totals)
        # a member total within float rounding of a threshold may count either way
        near = np.abs(stack - np.float32(thr)).min(axis=0) < 1e-4 * max(thr, 1)
        got = np.array(prob, dtype=np.float32)
        np.testing.assert_allclose(got[~near], ref[~near].astype(np.float32), rtol=0, atol=1e-6)
    assert any(0 < p < 1 for r in rows for p in np.ravel(r[1])), "the test field should have uncertain cells"
    # bilinear when asked, and the method is in the answer
    how = query(runs, f"SELECT DISTINCT regrid_method FROM gik.exceedance('{{gefs_rg,ecmwf_rg}}', '2025-10-01 00:00+00', 0, 24, "
                      f"'{{1}}', {box}, target => {sql}, method => 'bilinear')")
    assert how == [("bilinear",)]
    # no target: no regridding
    assert query(runs, f"SELECT DISTINCT regrid_method FROM gik.exceedance('gefs_rg', '2025-10-01 00:00+00', 0, 24, '{{1}}', {box})") == [(None,)]
