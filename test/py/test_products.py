"""Products built after ingestion: definitions, a partial run built once it has enough members and rebuilt
when it completes, failures logged with their SQLSTATE without blocking ingestion, stored values against
gik.exceedance and numpy (ecCodes reading the GRIB files), the raster tables GDAL's PostGISRaster driver
opens, and the GeoTIFF export GDAL reads back."""
import os
import shutil
import subprocess

import numpy as np
import pytest

from conftest import connect, query, scalar
from test_analytics import EAST_AFRICA, gefs_total
from test_operations import IDX_DIR, RUN, call_latest
from test_ingest import TEMPLATE, scratch_run  # noqa: F401 - fixture
from test_postgis import gdal_band, gdal_info

DS = "prod_gefs"
BOX = "gik.bbox(%s, %s, %s, %s)" % EAST_AFRICA


@pytest.fixture(scope="module")
def pg(db_setup):
    c = connect()
    with c.cursor() as cur:
        cur.execute("SET client_min_messages = warning")
        for ext in ("postgis", "postgis_raster", "pg_gik_postgis"):
            cur.execute(f"CREATE EXTENSION IF NOT EXISTS {ext}")
    yield c
    c.close()


def to_np(v):
    return np.array(v, dtype=np.float64)


def define(db, name, min_members, region=BOX, statistics="{exceedance,mean,p90,max}"):
    query(db, "SET client_min_messages = warning")
    query(db, f"SELECT gik.define_product(%s, '{{{DS}}}', '0-24/12', '{{1,5}}', {region}, %s,"
              " min_members => %s)", (name, statistics, min_members))


def numpy_totals(members, a, b):
    return np.stack([gefs_total("20251001", m, a, b, EAST_AFRICA) for m in members])


@pytest.fixture
def published(pg, scratch_run):
    """The scratch GEFS run published in two goes: member 2's 18 h and 24 h files come later."""
    root, base = scratch_run
    query(pg, "SELECT gik.drop_dataset(%s)", (DS,))
    query(pg, "SELECT gik.define_dataset(%s, 'idx', %s, '{0}', gik.step_list('0-24/6'), members => '{0,1,2}',"
              " member_tokens => '{gec00,gep01,gep02}', variables => '{APCP}', precip_variable => 'APCP',"
              " precip_level => 'surface')", (DS, TEMPLATE.format(base=base)))
    query(pg, "DELETE FROM gik.product_def WHERE name LIKE 'prod_%%'")
    held = root / "held"
    held.mkdir()
    d = root / IDX_DIR
    for f in [*d.glob("gep02.*.f018*"), *d.glob("gep02.*.f024*")]:
        shutil.move(str(f), held / f.name)

    def publish_rest():
        for f in held.iterdir():
            shutil.move(str(f), d / f.name)
    yield publish_rest
    query(pg, "DELETE FROM gik.product_def WHERE name LIKE 'prod_%%'")
    query(pg, "SELECT gik.drop_dataset(%s)", (DS,))


def stored(db, name, run=None):
    return query(db, "SELECT versions, complete, window_start, window_end, statistic, threshold, members_used,"
                     " members_missing, vals, grid FROM gik.product(%s, %s) ORDER BY window_start, statistic, threshold",
                 (name, run))


def test_products_follow_ingestion(pg, published):
    define(pg, "prod_two", 2)
    define(pg, "prod_three", 3)
    # a region without a cell of the grid: this product fails (22023) and must not stop the others
    define(pg, "prod_broken", 2, region="gik.bbox(10.01, 10.01, 10.02, 10.02)", statistics="{exceedance}")

    notices = call_latest(pg, DS)
    assert query(pg, "SELECT status, version FROM gik.run JOIN gik.dataset USING (dataset_id) WHERE name = %s",
                 (DS,)) == [("partial", 1)]
    log = dict(query(pg, "SELECT p.name, l.status || ' ' || l.windows_built || '/' || l.windows_waiting || ' '"
                         " || coalesce(l.sqlstate, '-') || ' ' || l.versions::text"
                         " FROM gik.product_log l JOIN gik.product_def p USING (product_id)"))
    assert log == {"prod_two": "complete 2/0 - {1}", "prod_three": "partial 1/1 - {1}",
                   "prod_broken": "failed 0/0 22023 {1}"}, (log, notices)
    assert any("prod_broken at 2025-10-01 00z: failed (22023)" in n for n in notices), notices
    assert scalar(pg, "SELECT count(*) FROM gik.product_result r JOIN gik.product_def p USING (product_id)"
                      " WHERE p.name = 'prod_broken'") == 0

    # the partial run: 0-12 h from 3 members, 12-24 h from the 2 that have it
    rows = stored(pg, "prod_two")
    assert [(r[2], r[3], r[4], r[5], r[6], r[1]) for r in rows] == [
        (0, 12, "exceedance", 1, 3, False), (0, 12, "exceedance", 5, 3, False), (0, 12, "max", None, 3, False),
        (0, 12, "mean", None, 3, False), (0, 12, "p90", None, 3, False),
        (12, 24, "exceedance", 1, 2, False), (12, 24, "exceedance", 5, 2, False), (12, 24, "max", None, 2, False),
        (12, 24, "mean", None, 2, False), (12, 24, "p90", None, 2, False)]
    assert {tuple(r[7]) for r in rows} == {(f"{DS}:2",), ()}
    assert {tuple(r[7]) for r in rows if r[2] == 12} == {(f"{DS}:2",)}
    check_values(pg, rows, {0: [0, 1, 2], 12: [0, 1]})
    assert [(r[2], r[6]) for r in stored(pg, "prod_three") if r[4] == "exceedance"] == [(0, 3), (0, 3)]

    # a second call with nothing new builds nothing again (the failure waits for its retry)
    n_log = scalar(pg, "SELECT count(*) FROM gik.product_log")
    call_latest(pg, DS)
    assert scalar(pg, "SELECT count(*) FROM gik.product_log") == n_log + 0
    assert query(pg, "SELECT product, reason FROM gik.products_due(%s, retry_after => '0')", ([DS],)) == \
        [("prod_broken", "retry after 1 failures")]

    # the rest is published: the run completes (version 2) and every product is rebuilt from 3 members
    published()
    call_latest(pg, DS)
    assert query(pg, "SELECT status, version FROM gik.run JOIN gik.dataset USING (dataset_id) WHERE name = %s",
                 (DS,)) == [("complete", 2)]
    for name in ("prod_two", "prod_three"):
        rows = stored(pg, name)
        assert {(r[0][0], r[1], r[6]) for r in rows} == {(2, True, 3)}, name
        assert {r[2] for r in rows} == {0, 12}
        check_values(pg, rows, {0: [0, 1, 2], 12: [0, 1, 2]})
    # the first version's grids stay readable
    assert {r[6] for r in stored(pg, "prod_two") if r[0] == [2]} == {3}
    assert scalar(pg, "SELECT count(*) FROM gik.product_result r JOIN gik.product_def p USING (product_id)"
                      " WHERE p.name = 'prod_two' AND versions = '{1}'") == 10


def check_values(db, rows, members_of):
    """Each stored grid equals gik.exceedance now and numpy on the members' totals read with ecCodes."""
    for versions, _, a, b, stat, thr, used, _, vals, grid in rows:
        got = to_np(vals)
        totals = numpy_totals(members_of[a], int(a), int(b))
        assert used == len(members_of[a])
        if stat == "exceedance":
            want = (totals >= np.float32(thr)).mean(axis=0)
        elif stat == "mean":
            want = totals.mean(axis=0)
        elif stat == "max":
            want = totals.max(axis=0)
        else:
            want = np.percentile(totals, 90, axis=0)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4, err_msg=f"{stat} {thr} {a}-{b}")
    # exceedance: the same values as gik.exceedance gives for this run now (when it is the current version)
    cur = scalar(db, "SELECT version FROM gik.run JOIN gik.dataset USING (dataset_id) WHERE name = %s", (DS,))
    for versions, _, a, b, stat, thr, used, _, vals, grid in rows:
        if stat == "exceedance" and versions == [cur]:
            with db.cursor() as c:
                c.execute("SET gik.min_members = 1")
            direct = scalar(db, f"SELECT probability FROM gik.exceedance(%s, %s, %s, %s, %s, {BOX})"
                                " WHERE threshold = %s", (DS, RUN, a, b, [thr], thr))
            np.testing.assert_array_equal(to_np(vals), to_np(direct))


def test_regenerate_on_demand_and_read(pg, published):
    published()
    call_latest(pg, DS)
    define(pg, "prod_backfill", 1, statistics="{exceedance}")
    assert scalar(pg, "SELECT count(*) FROM gik.product('prod_backfill')") == 0
    query(pg, "CALL gik.build_products('prod_backfill', since => %s)", ("2025-09-01",))
    rows = stored(pg, "prod_backfill")
    assert [(r[2], r[5]) for r in rows] == [(0, 1), (0, 5), (12, 1), (12, 5)]
    first = scalar(pg, "SELECT min(result_id) FROM gik.product_result r JOIN gik.product_def p USING (product_id)"
                       " WHERE p.name = 'prod_backfill'")
    query(pg, "CALL gik.build_products('prod_backfill', init_time => %s, force => true)", (RUN,))
    assert scalar(pg, "SELECT min(result_id) FROM gik.product_result r JOIN gik.product_def p USING (product_id)"
                      " WHERE p.name = 'prod_backfill'") > first
    assert [r[8] for r in stored(pg, "prod_backfill")] == [r[8] for r in rows]
    # one grid by window and threshold; errors name the product
    assert scalar(pg, "SELECT count(*) FROM gik.product('prod_backfill', window_start => 12, threshold => 5)") == 1
    with pytest.raises(Exception, match='product "prod_nothing" does not exist'):
        query(pg, "SELECT * FROM gik.product('prod_nothing')")
    pg.rollback() if not pg.autocommit else None


def gdal_pg(db, table, where):
    """A PostGISRaster connection string for one row of a raster table of this test's database."""
    dsn = db.get_dsn_parameters()
    host = dsn.get("host") or os.environ.get("PGHOST", "")
    return (f"PG:host={host} port={dsn['port']} dbname={dsn['dbname']} user={dsn['user']}"
            f" schema=gik_products table={table} column=rast where='{where}' mode=2")


def test_raster_table_and_geotiff_open_in_gdal(pg, published, tmp_path):
    published()
    define(pg, "prod_raster", 1, statistics="{exceedance,mean}")
    call_latest(pg, DS)
    cols = query(pg, "SELECT srid, scale_x, scale_y, num_bands, pixel_types, nodata_values, same_alignment"
                     " FROM raster_columns WHERE r_table_schema = 'gik_products' AND r_table_name = 'prod_raster'")
    assert cols == [(4326, 0.25, -0.25, 1, ["32BF"], [float("nan")], True)] or \
        (cols and cols[0][:5] == (4326, 0.25, -0.25, 1, ["32BF"]) and np.isnan(cols[0][5][0]) and cols[0][6])
    rid, vals, grid = query(pg, "SELECT x.rid, r.vals, r.grid FROM gik_products.prod_raster x"
                                " JOIN gik.product_result r ON r.result_id = x.rid"
                                " WHERE x.window_start = 12 AND x.threshold = 5")[0]
    direct = to_np(scalar(pg, f"SELECT probability FROM gik.exceedance(%s, %s, 12, 24, '{{5}}', {BOX})", (DS, RUN)))
    assert np.array_equal(to_np(vals), direct)
    lon0, lat0 = EAST_AFRICA[0], EAST_AFRICA[3]
    want_gt = (lon0 - 0.125, 0.25, 0.0, lat0 + 0.125, 0.0, -0.25)

    # GDAL's PostGISRaster driver opens the table's row
    src = gdal_pg(pg, "prod_raster", f"rid={rid}")
    out = subprocess.run(["gdalinfo", src], capture_output=True, text=True)
    assert out.returncode == 0 and "Driver: PostGISRaster" in out.stdout, out.stderr
    vrt = tmp_path / "pg.tif"
    subprocess.run(["gdal_translate", "-q", "-of", "GTiff", src, str(vrt)], check=True, capture_output=True)
    info = gdal_info(vrt)
    assert info["geotransform"] == pytest.approx(want_gt)
    np.testing.assert_array_equal(gdal_band(vrt, info, 1).astype(np.float32), direct.astype(np.float32))

    # GeoTIFF export: float32, georeferenced, the same values
    query(pg, "SET postgis.gdal_enabled_drivers = 'GTiff'")
    tif = tmp_path / "p.tif"
    tif.write_bytes(bytes(scalar(pg, "SELECT gik.product_geotiff('prod_raster', window_start => 12, threshold => 5)")))
    info = gdal_info(tif)
    assert info["size"] == (direct.shape[1], direct.shape[0])
    assert info["geotransform"] == pytest.approx(want_gt)
    gi = subprocess.run(["gdalinfo", str(tif)], capture_output=True, text=True, check=True).stdout
    assert "Type=Float32" in gi and "EPSG\",4326" in gi, gi
    np.testing.assert_array_equal(gdal_band(tif, info, 1).astype(np.float32), direct.astype(np.float32))
    with pytest.raises(Exception, match="several grids"):
        query(pg, "SELECT gik.product_geotiff('prod_raster', window_start => 12)")
