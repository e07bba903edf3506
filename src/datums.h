/* Datum builders shared by the SQL areas: arrays, text, timestamps and rows of results. */
#ifndef GIK_DATUMS_H
#define GIK_DATUMS_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "utils/array.h"

#include "core/decoded.h"

/*
 * A new array of 4-byte elements (real or int4) with the given shape, elements not initialised;
 * with nulls, a zeroed NULL bitmap and room for nvalues stored elements. Raises when too large.
 */
extern ArrayType *gik_array_new(Oid elemtype, int ndim, const int *dims, const int *lbs,
								bool nulls, size_t nvalues);

/* real[] from floats, copied once: 2-D [nj][ni] when nj*ni == n, else 1-D. */
extern ArrayType *gik_float_array(const float *values, size_t n, long nj, long ni);

/* float8[] from doubles. */
extern ArrayType *gik_float8_array(const double *values, int n);

/* *value = s as text, or *isnull when s is NULL. */
extern void gik_put_text(Datum *value, bool *isnull, const char *s);

/* UTC timestamp from calendar fields; false when out of range. */
extern bool gik_timestamp_from_parts(int year, int month, int day, int hour, int minute,
									 TimestampTz *out);

/* gik.grid_desc row for a decoded message: the output grid when regular, else the message's own. */
extern Datum gik_grid_desc_datum(TupleDesc tupdesc, const GikDecoded *dec);

/* bytea holding a raster (WKB) of nbands north-up bands; raises when too large for a raster. */
extern bytea *gik_raster_bytea(const GikOutGrid *g, const float *values, int nbands, int srid);

/* The grid's projection or Gaussian description as a text datum; *isnull when it has none. */
extern void gik_grid_proj_datum(const GikGrid *grid, Datum *value, bool *isnull);

#endif
