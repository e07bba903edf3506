#!/usr/bin/python3
"""Draw stored pg_gik products as maps a forecaster reads at a glance: the colour classes of the field,
coastlines and country borders (gik_map.country, Natural Earth: data/boundaries/), a legend of the
classes, missing data in grey, a title naming the datasets, run, window and threshold, and a
latitude/longitude graticule. One PNG per stored grid, plus a .json beside it that says where the map
and the legend are in the image (for tests and for placing the maps in other documents).

Runs on Debian's Python (python3-matplotlib, python3-psycopg2, python3-numpy); connects with the libpq
environment (PGHOST, PGDATABASE, ...) or --dsn.
  tools/product_map.py --product east_africa_rain --out-dir maps/            every grid of the newest run
  tools/product_map.py --product east_africa_rain --window-start 24 --threshold 50 --out p.png --palette wmo
"""
import argparse
import json
import math
import pathlib
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import psycopg2  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

# Probability classes in % and amounts in mm, with palettes like ECMWF's and WMO's exceedance charts.
PROB_CLASSES = [0, 10, 25, 50, 75, 90, 100]
AMOUNT_CLASSES = [0, 1, 5, 10, 20, 50, 100, 200]
PALETTES = {
    "ecmwf": ["#ffffff", "#b7e4a5", "#4cb84c", "#2c7fb8", "#253494", "#8c2d9c"],
    "wmo": ["#ffffff", "#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"],
    "blues": ["#ffffff", "#c6dbef", "#6baed6", "#2171b5", "#08519c", "#08306b"],
    "rain": ["#ffffff", "#c7e9f1", "#7fcdbb", "#41b6c4", "#2c7fb8", "#253494", "#7a0177"],
}
MISSING = "#a0a0a0"
COAST = "#000000"
BORDER = "#404040"
FIG_PX = (1000, 800)
DPI = 100


def colours(palette, n):
    """n colours of a palette: the palette's own when it has n, else sampled evenly from it."""
    base = PALETTES[palette]
    if len(base) == n:
        return base
    return [base[round(i * (len(base) - 1) / max(n - 1, 1))] for i in range(n)]


def hours(v):
    return f"{v:g}"


def title_of(row, datasets):
    init = row["init_time"].strftime("%Y-%m-%d %Hz")
    vers = ", ".join(f"v{v}" for v in row["versions"])
    what = (f"P(precipitation ≥ {row['threshold']:g} mm)" if row["statistic"] == "exceedance"
            else {"mean": "ensemble mean", "min": "ensemble minimum", "max": "ensemble maximum"}.get(
                row["statistic"], f"ensemble {row['statistic']}") + " precipitation (mm)")
    miss = " (partial run)" if not row["complete"] else ""
    return (f"{' + '.join(datasets)} — run {init} ({vers}){miss}\n"
            f"{what}, {hours(row['window_start'])}–{hours(row['window_end'])} h · "
            f"{row['members_used']} of {row['members_expected']} members")


def geometries(cur, box, shift):
    """Country outlines and the coastline (outline of their union) clipped to box, as lists of (x, y) lines."""
    geo = "ST_ShiftLongitude(geom)" if shift else "geom"
    cur.execute(f"""
        WITH env AS (SELECT ST_MakeEnvelope(%s, %s, %s, %s, 4326) AS e),
        c AS (SELECT {geo} AS g FROM gik_map.country, env WHERE {geo} && env.e)
        SELECT 'border', ST_AsGeoJSON(ST_Intersection(ST_Boundary(c.g), env.e), 4) FROM c, env
        UNION ALL
        SELECT 'coast', ST_AsGeoJSON(ST_Intersection(ST_Boundary(u.g), env.e), 4)
        FROM (SELECT ST_Union(c.g) AS g FROM c) u, env""", box)
    out = {"border": [], "coast": []}
    for kind, gj in cur.fetchall():
        if gj is None:
            continue
        g = json.loads(gj)
        parts = {"LineString": [g.get("coordinates")], "MultiLineString": g.get("coordinates"),
                 "GeometryCollection": [p["coordinates"] for p in g.get("geometries", []) if p["type"] == "LineString"]}
        out[kind] += [np.array(p) for p in parts.get(g["type"], []) if p and len(p) > 1]
    return out


def draw(row, datasets, palette, classes, geo, out):
    g = row["grid"]
    vals = np.array(row["vals"], dtype=np.float64)
    prob = row["statistic"] == "exceedance"
    if prob:
        vals = vals * 100.0
    classes = classes or (PROB_CLASSES if prob else AMOUNT_CLASSES)
    ncls = len(classes) - 1
    cmap = ListedColormap(colours(palette or ("ecmwf" if prob else "rain"), ncls))
    cmap.set_bad(MISSING)
    cmap.set_over(cmap.colors[-1])
    norm = BoundaryNorm(classes, ncls)
    west, north = g["lon_first"] - g["di"] / 2, g["lat_first"] + g["dj"] / 2
    east, south = west + g["ni"] * g["di"], north - g["nj"] * g["dj"]

    fig = plt.figure(figsize=(FIG_PX[0] / DPI, FIG_PX[1] / DPI), dpi=DPI)
    ax = fig.add_axes([0.08, 0.2, 0.88, 0.68])
    ax.imshow(np.ma.masked_invalid(vals), extent=(west, east, south, north), origin="upper", cmap=cmap, norm=norm,
              interpolation="nearest")
    for line in geo["border"]:
        ax.plot(line[:, 0], line[:, 1], color=BORDER, lw=0.7)
    for line in geo["coast"]:
        ax.plot(line[:, 0], line[:, 1], color=COAST, lw=1.3)
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    ax.set_aspect(1 / math.cos(math.radians((north + south) / 2)), adjustable="box", anchor="C")
    step = 5 if max(east - west, north - south) <= 60 else 10
    ax.set_xticks(np.arange(math.ceil(west / step) * step, east + 1e-9, step))
    ax.set_yticks(np.arange(math.ceil(south / step) * step, north + 1e-9, step))
    ax.set_xticklabels([f"{abs(x):g}°{'E' if 0 < x < 180 else 'W' if x < 0 or x > 180 else ''}"
                        for x in ax.get_xticks()])
    ax.set_yticklabels([f"{abs(y):g}°{'N' if y > 0 else 'S' if y < 0 else ''}" for y in ax.get_yticks()])
    ax.grid(True, color="#808080", lw=0.4, ls="--")
    ax.set_title(title_of(row, datasets), fontsize=12)

    cax = fig.add_axes([0.2, 0.07, 0.6, 0.035])
    cb = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), cax=cax, orientation="horizontal",
                      ticks=classes, spacing="uniform", extend="neither" if prob else "max")
    cb.set_label("probability (%)" if prob else "precipitation (mm)")
    cb.ax.set_xticklabels([f"{c:g}" for c in classes])
    fig.legend(handles=[Patch(facecolor=MISSING, edgecolor="k", label="no data")], loc="lower right",
               bbox_to_anchor=(0.97, 0.045), frameon=False)
    fig.savefig(out, dpi=DPI)

    def px(a):
        # display coordinates (origin bottom left) -> image pixels (origin top left)
        b = a.get_window_extent()
        return [b.x0, FIG_PX[1] - b.y1, b.x1, FIG_PX[1] - b.y0]
    meta = {"size": FIG_PX, "map_px": px(ax), "map_lonlat": [west, south, east, north], "legend_px": px(cax),
            "classes": classes, "colours": list(cmap.colors), "missing": MISSING, "coast": COAST, "border": BORDER}
    plt.close(fig)
    pathlib.Path(f"{out}.json").write_text(json.dumps(meta))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--product", required=True)
    ap.add_argument("--run", help="init time (default: the newest stored)")
    ap.add_argument("--window-start", type=float)
    ap.add_argument("--statistic")
    ap.add_argument("--threshold", type=float)
    ap.add_argument("--palette", choices=sorted(PALETTES), help="default: the product's (gik.product_def.palette)")
    ap.add_argument("--classes", help="class bounds, e.g. 0,5,20,50,80,100 (%% for probabilities, mm for amounts)")
    ap.add_argument("--out", help="one PNG (the arguments must select one grid)")
    ap.add_argument("--out-dir", help="one PNG per selected grid, named after the product, window and statistic")
    ap.add_argument("--dsn", default="")
    a = ap.parse_args()
    if bool(a.out) == bool(a.out_dir):
        ap.error("give --out or --out-dir")
    conn = psycopg2.connect(a.dsn)
    cur = conn.cursor()
    cur.execute("SELECT datasets, palette, classes FROM gik.product_def WHERE name = %s", (a.product,))
    d = cur.fetchone()
    if d is None:
        sys.exit(f"product_map: product {a.product!r} does not exist (gik.product_def)")
    datasets, palette, classes = d
    palette = a.palette or (palette if palette in PALETTES else None)
    classes = [float(c) for c in a.classes.split(",")] if a.classes else classes
    cur.execute("SELECT init_time, versions, complete, window_start, window_end, statistic, threshold,"
                " to_jsonb(grid), vals, members_used, members_expected FROM gik.product(%s, %s, %s, %s, %s)",
                (a.product, a.run, a.window_start, a.statistic, a.threshold))
    keys = ["init_time", "versions", "complete", "window_start", "window_end", "statistic", "threshold", "grid",
            "vals", "members_used", "members_expected"]
    rows = [dict(zip(keys, r)) for r in cur.fetchall()]
    if not rows:
        sys.exit(f"product_map: nothing stored for {a.product!r} with these arguments (CALL gik.build_products())")
    if a.out and len(rows) > 1:
        sys.exit(f"product_map: {len(rows)} grids match; name --window-start, --statistic and --threshold")
    g = rows[0]["grid"]
    west, north = g["lon_first"] - g["di"] / 2, g["lat_first"] + g["dj"] / 2
    box = (west, north - g["nj"] * g["dj"], west + g["ni"] * g["di"], north)
    geo = geometries(cur, box, shift=box[2] > 180)
    for r in rows:
        if a.out:
            out = a.out
        else:
            tag = r["statistic"] + (f"_{r['threshold']:g}mm" if r["threshold"] is not None else "")
            out = str(pathlib.Path(a.out_dir) / f"{a.product}_{hours(r['window_start'])}-{hours(r['window_end'])}h_{tag}.png")
        draw(r, datasets, palette, classes, geo, out)
        print(out)


if __name__ == "__main__":
    main()
