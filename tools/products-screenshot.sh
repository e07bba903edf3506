#!/usr/bin/env bash
# docs/img/products-gdal.png: what QGIS draws from the database, rendered by GDAL alone (no QGIS on the
# build machines): a product's raster table through GDAL's PostGISRaster driver, coloured with the
# ECMWF-like probability classes, and gik_map.country's outlines burnt over it from the same database.
# Usage: tools/products-screenshot.sh PRODUCT [WINDOW_START] [THRESHOLD]   (libpq environment: PGHOST, PGDATABASE, ...)
set -euo pipefail
product=${1:?product}; ws=${2:-0}; thr=${3:-25}
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
db="host=${PGHOST:-localhost} port=${PGPORT:-5432} dbname=${PGDATABASE:-$USER} user=${PGUSER:-$USER}"
rid=$(psql -XAt -v ON_ERROR_STOP=1 -c "SELECT rid FROM gik_products.$product WHERE window_start = $ws AND threshold = $thr
                                       ORDER BY init_time DESC, rid DESC LIMIT 1")
[ -n "$rid" ] || { echo "no grid of $product at window start $ws, threshold $thr" >&2; exit 1; }
# probability classes 0-10-25-50-75-90-100 %, nodata grey (tools/product_map.py's "ecmwf" palette)
cat >"$tmp/classes.clr" <<CLR
1.0 140 45 156
0.9 37 52 148
0.75 44 127 184
0.5 76 184 76
0.25 183 228 165
0.1 255 255 255
0 255 255 255
nv 160 160 160
CLR
gdaldem color-relief -q -nearest_color_entry \
  "PG:$db schema=gik_products table=$product column=rast where='rid=$rid' mode=2" "$tmp/classes.clr" "$tmp/c.tif"
gdal_translate -q -outsize 400% 400% -r nearest "$tmp/c.tif" "$tmp/big.tif"
gdal_rasterize -q -b 1 -b 2 -b 3 -burn 0 -burn 0 -burn 0 \
  -sql "SELECT ST_Boundary(geom) AS g FROM gik_map.country" "PG:$db" "$tmp/big.tif"
gdal_translate -q -of PNG "$tmp/big.tif" docs/img/products-gdal.png
rm -f docs/img/products-gdal.png.aux.xml
echo docs/img/products-gdal.png
