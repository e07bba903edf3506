#!/usr/bin/env bash
# Regenerate data/boundaries/ne_110m_countries.sql, the country polygons the product maps draw
# (coastlines and borders), from Natural Earth 1:110m Admin 0 Countries (public domain) as the
# geopandas 0.14.4 wheel on PyPI ships it (geopandas/datasets/naturalearth_lowres, 177 countries;
# see data/boundaries/SOURCES.md). Needs pip and GDAL's ogr2ogr. Load the result with
#   psql -v ON_ERROR_STOP=1 -f data/boundaries/ne_110m_countries.sql      (needs the postgis extension)
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 -m pip download -q --no-deps geopandas==0.14.4 -d "$tmp"
(cd "$tmp" && unzip -q geopandas-0.14.4-py3-none-any.whl 'geopandas/datasets/naturalearth_lowres/*')
shp=$tmp/geopandas/datasets/naturalearth_lowres/naturalearth_lowres.shp
out=data/boundaries/ne_110m_countries.sql
{
  echo "-- Natural Earth 1:110m Admin 0 Countries (public domain, naturalearthdata.com), as shipped in the"
  echo "-- geopandas 0.14.4 wheel (naturalearth_lowres.shp sha256 $(sha256sum "$shp" | cut -d' ' -f1))."
  echo "-- Made by tools/make-boundaries.sh; see data/boundaries/SOURCES.md. Table gik_map.country (EPSG:4326)."
  echo "CREATE SCHEMA IF NOT EXISTS gik_map;"
  ogr2ogr -f PGDump /vsistdout/ "$shp" -nln country -nlt MULTIPOLYGON -select name,iso_a3,continent \
    -lco SCHEMA=gik_map -lco CREATE_SCHEMA=OFF -lco GEOMETRY_NAME=geom -lco FID=country_id -lco SPATIAL_INDEX=GIST \
    -lco DROP_TABLE=IF_EXISTS -lco SRID=4326
  echo "COMMENT ON TABLE gik_map.country IS 'Country polygons of Natural Earth 1:110m Admin 0 Countries (public domain), for the coastlines and borders of product maps; loaded from data/boundaries/ne_110m_countries.sql.';"
  echo "GRANT USAGE ON SCHEMA gik_map TO PUBLIC;"
  echo "GRANT SELECT ON gik_map.country TO PUBLIC;"
} >"$out"
echo "wrote $out"
