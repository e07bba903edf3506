/* Helpers shared by the SQL decode functions (single and batch). */
#ifndef GIK_DECODE_SQL_H
#define GIK_DECODE_SQL_H

#include "postgres.h"

#include "access/tupdesc.h"
#include "fmgr.h"
#include "utils/array.h"

#include "core/decoded.h"

/* Decode options from (lon text, region gik.bbox) arguments starting at lon_arg. */
extern void gik_decode_options_from_args(FunctionCallInfo fcinfo, int lon_arg, GikDecodeOptions *opts);

/* A grid from a gik.grid_desc value (its proj parsed; raises on a bad proj). */
extern void gik_grid_from_desc(HeapTupleHeader desc, GikGrid *g);

/* gik.grid_desc row for a decoded message. */
extern Datum gik_grid_desc_datum(TupleDesc tupdesc, const GikDecoded *dec);

#endif
