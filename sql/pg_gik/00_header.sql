-- pg_gik: chunk references to GRIB archives from their index files.
-- This file is assembled from sql/pg_gik/*.sql by the Makefile.

\echo Use "CREATE EXTENSION pg_gik" to load this file. \quit
