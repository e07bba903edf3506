/*
 * Arguments of the SQL entry points. A NULL in a required argument gives NULL (or no rows), as
 * a STRICT function would; a NULL in an optional argument means its default.
 */
#ifndef GIK_ARGS_H
#define GIK_ARGS_H

#include "postgres.h"

#include "access/htup.h"
#include "fmgr.h"

#include "core/decoded.h"

/*
 * An SQL entry point that only forwards to impl(fcinfo, arg): the symbol an `AS 'MODULE_PATHNAME',
 * 'name'` binds, for several functions that share one implementation.
 */
#define GIK_SQL_FORWARD(name, impl, arg) \
	PG_FUNCTION_INFO_V1(name); \
	Datum name(PG_FUNCTION_ARGS) { return impl(fcinfo, arg); }

/* True when one of the first n arguments is NULL. */
static inline bool
gik_required_null(FunctionCallInfo fcinfo, int n)
{
	for (int i = 0; i < n && i < PG_NARGS(); i++)
		if (PG_ARGISNULL(i))
			return true;
	return false;
}

/* A bool argument, or dflt when it is NULL or absent. */
static inline bool
gik_arg_bool(FunctionCallInfo fcinfo, int i, bool dflt)
{
	return PG_NARGS() > i && !PG_ARGISNULL(i) ? PG_GETARG_BOOL(i) : dflt;
}

/* An int4 argument, or dflt when it is NULL or absent. */
static inline int32
gik_arg_int32(FunctionCallInfo fcinfo, int i, int32 dflt)
{
	return PG_NARGS() > i && !PG_ARGISNULL(i) ? PG_GETARG_INT32(i) : dflt;
}

/* Decode options from the (lon text, region gik.bbox) arguments at positions lon_arg and lon_arg+1. */
extern void gik_decode_options_from_args(FunctionCallInfo fcinfo, int lon_arg, GikDecodeOptions *opts);

/* The source grid a gik.grid_desc row describes. */
extern void gik_grid_from_desc(HeapTupleHeader desc, GikGrid *g);

/* Read a grid description's proj text into grid (raises naming the text when it is not valid). */
extern void gik_grid_proj_from_text(const char *text, GikGrid *grid);

/* True when the grid is a Gaussian grid (regular_gg, reduced_gg) that has coordinates. */
extern bool gik_grid_is_gaussian(const GikGrid *grid);

#endif
