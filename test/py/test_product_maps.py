"""Product maps (tools/product_map.py, run on Debian's Python with matplotlib) read back with GDAL: the
image size, the legend's colour classes, and the coastline drawn where Natural Earth puts it (Somalia's
easternmost point, Cape Guardafui / Ras Hafun) and not in the sea east of it."""
import json
import pathlib
import subprocess

import numpy as np

from conftest import query, scalar
from test_ingest import scratch_run  # noqa: F401 - fixture
from test_products import DS, define, pg, published  # noqa: F401 - fixtures
from test_operations import call_latest

TOP = pathlib.Path(__file__).resolve().parents[2]
BOUNDARIES = TOP / "data" / "boundaries" / "ne_110m_countries.sql"
RENDER = ["/usr/bin/python3", str(TOP / "tools" / "product_map.py")]


def png_rgb(path):
    """The PNG's pixels as GDAL reads them: uint8 [height][width][3]."""
    out = path.with_suffix(".raw")
    subprocess.run(["gdal_translate", "-q", "-of", "ENVI", "-b", "1", "-b", "2", "-b", "3", "-ot", "Byte",
                    "-co", "INTERLEAVE=BIP", str(path), str(out)], check=True, capture_output=True)
    info = json.loads(subprocess.run(["gdalinfo", "-json", str(path)], check=True, capture_output=True,
                                     text=True).stdout)
    w, h = info["size"]
    return np.fromfile(out, np.uint8).reshape(h, w, 3)


def hex_rgb(c):
    return tuple(int(c[i:i + 2], 16) for i in (1, 3, 5))


def near(img, x, y, rgb, r=2):
    """Whether a pixel of colour rgb lies within r pixels of (x, y)."""
    win = img[int(round(y)) - r:int(round(y)) + r + 1, int(round(x)) - r:int(round(x)) + r + 1]
    return bool((win == np.array(rgb, np.uint8)).all(axis=2).any())


def to_px(meta, lon, lat):
    x0, y0, x1, y1 = meta["map_px"]
    west, south, east, north = meta["map_lonlat"]
    return x0 + (lon - west) / (east - west) * (x1 - x0), y0 + (north - lat) / (north - south) * (y1 - y0)


def test_map_has_legend_and_coastline(pg, published, tmp_path):  # noqa: F811 - fixtures
    published()
    with pg.cursor() as cur:
        cur.execute(BOUNDARIES.read_text())
        cur.execute("RESET standard_conforming_strings")
    define(pg, "prod_map", 1, statistics="{exceedance}")
    call_latest(pg, DS)
    assert scalar(pg, "SELECT count(*) FROM gik.product('prod_map')") == 4
    out = tmp_path / "map.png"
    subprocess.run([*RENDER, "--product", "prod_map", "--window-start", "0", "--threshold", "1", "--out", str(out)],
                   check=True, capture_output=True)
    meta = json.loads(pathlib.Path(f"{out}.json").read_text())
    img = png_rgb(out)
    assert img.shape == (800, 1000, 3) and meta["size"] == [1000, 800]

    # the legend shows every class colour, in order from left to right
    lx0, ly0, lx1, ly1 = (int(round(v)) for v in meta["legend_px"])
    row = img[(ly0 + ly1) // 2, lx0 + 2:lx1 - 2]
    seen = []
    for px in map(tuple, row):
        if not seen or seen[-1] != px:
            seen.append(px)
    classes = [hex_rgb(c) for c in meta["colours"]]
    assert [c for c in seen if c in classes] == classes, seen

    # Somalia's easternmost point is on the coastline; 1 degree east of it is open sea
    lon, lat = query(pg, "SELECT ST_X(p), ST_Y(p) FROM (SELECT (dp).geom AS p FROM (SELECT ST_DumpPoints(geom) AS dp"
                         " FROM gik_map.country WHERE name = 'Somalia') d ORDER BY ST_X((dp).geom) DESC LIMIT 1) x")[0]
    assert 50.5 < lon < 51.5 and 10 < lat < 12.5, (lon, lat)
    coast = hex_rgb(meta["coast"])
    assert near(img, *to_px(meta, lon, lat), coast)
    assert not near(img, *to_px(meta, lon + 1, lat), coast, r=4)
    # and the Red Sea coast near Port Sudan (37.2E 19.6N)
    assert any(near(img, *to_px(meta, x, 19.6), coast, r=1) for x in np.arange(36.5, 38.5, 0.1))

    # a title naming the dataset, run, window and threshold is drawn above the map
    top = img[:int(meta["map_px"][1]) - 5]
    assert (top < 100).all(axis=2).sum() > 500

    # missing data (NaN cells: here the 10 x 10 north-west cells of the stored grid) is drawn grey, not as a class
    query(pg, "UPDATE gik.product_result r SET vals[1:10][1:10] = array_fill('NaN'::real, '{10,10}')"
              " FROM gik.product_def p WHERE p.product_id = r.product_id AND p.name = 'prod_map'"
              " AND r.window_start = 0 AND r.threshold = 1")
    subprocess.run([*RENDER, "--product", "prod_map", "--window-start", "0", "--threshold", "1", "--out", str(out)],
                   check=True, capture_output=True)
    img = png_rgb(out)
    west, south, east, north = meta["map_lonlat"]
    grey = hex_rgb(meta["missing"])
    assert near(img, *to_px(meta, west + 1.25, north - 1.25), grey, r=0)
    assert not near(img, *to_px(meta, west + 1.25, north - 4), grey, r=3)
