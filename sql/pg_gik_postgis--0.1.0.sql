-- pg_gik_postgis: PostGIS rasters from pg_gik grids (see issue 3).
\echo Use "CREATE EXTENSION pg_gik_postgis" to load this file. \quit
