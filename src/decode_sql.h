/* Helpers shared by the SQL decode functions (single and batch). */
#ifndef GIK_DECODE_SQL_H
#define GIK_DECODE_SQL_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "fmgr.h"
#include "utils/array.h"

#include "core/decode.h"

/* Decode options from (lon text, region gik.bbox) arguments starting at lon_arg. */
extern void gik_decode_options_from_args(FunctionCallInfo fcinfo, int lon_arg, GikDecodeOptions *opts);

/* real[] from floats: 2-D [nj][ni] when nj*ni == n, else 1-D. */
extern ArrayType *gik_float_array(const float *values, size_t n, long nj, long ni);

/* gik.grid_desc row for a decoded message. */
extern Datum gik_grid_desc_datum(TupleDesc tupdesc, const GikDecoded *dec);

/* Raise the error of a failed decode (status not GIK_DECODE_OK) naming the URL and byte range. */
extern void gik_raise_decode_error(const char *url, int64 offset, int64 length,
								   GikDecodeStatus status, const char *why) pg_attribute_noreturn();

#endif
