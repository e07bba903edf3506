-- pg_gik_postgis 0.1.0 -> 0.2.0: no schema change (the version follows pg_gik's). Its functions call
-- gik.decode_raster_wkb and gik.grid_wkb, which pg_gik 0.2.0 keeps as they were.
-- test/upgrade/run.sh checks that the result equals a fresh 0.2.0 install.
\echo Use "ALTER EXTENSION pg_gik_postgis UPDATE TO '0.2.0'" to load this file. \quit
