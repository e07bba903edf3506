/*
 * Ensemble aggregates over real[] grids (exceedance probability, count, mean, min, max, standard
 * deviation, percentiles, weighted sum).
 *
 * Every aggregate keeps an EnsState (internal) in the aggregate memory context: per-cell counters
 * and double accumulators, never the members' grids, except for percentiles, which must keep
 * them. One combine, serial and deserial function serves all of them, so they all run as
 * parallel aggregates. The numeric kernels live in core/ensemble.c.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "core/ensemble.h"
#include "args.h"
#include "datums.h"
#include "pg_gik.h"

PG_FUNCTION_INFO_V1(gik_ens_exceedance_transfn);
PG_FUNCTION_INFO_V1(gik_ens_percentile_transfn);
PG_FUNCTION_INFO_V1(gik_grid_sum_transfn);
PG_FUNCTION_INFO_V1(gik_ens_combinefn);
PG_FUNCTION_INFO_V1(gik_ens_serialfn);
PG_FUNCTION_INFO_V1(gik_ens_deserialfn);

/* What an aggregate state accumulates. */
typedef enum EnsKind
{
	ENS_EXCEED = 1,				/* valid + hits per threshold */
	ENS_COUNT,					/* valid */
	ENS_MEAN,					/* valid + sum */
	ENS_MIN,					/* running minimum */
	ENS_MAX,					/* running maximum */
	ENS_MOMENTS,				/* valid + mean + m2 (Welford) */
	ENS_SUM,					/* weighted sum */
	ENS_PERCENTILE				/* every member's grid */
} EnsKind;

#define ENS_KIND_LAST ENS_PERCENTILE

/* Aggregate state shared by every ensemble aggregate; which buffers are used depends on kind. */
typedef struct EnsState
{
	EnsKind		kind;
	int			ndim;
	int			dims[MAXDIM];
	int			lbs[MAXDIM];
	int64		ncells;
	int			nparams;		/* thresholds (EXCEED) or fractions (PERCENTILE) */
	double	   *params;
	float	   *thr;			/* params as float, for EXCEED */
	int32	   *valid;			/* [ncells]: EXCEED, COUNT, MEAN, MOMENTS */
	int32	   *hits;			/* [nparams * ncells]: EXCEED */
	double	   *acc;			/* [ncells]: sum (MEAN, SUM) or mean (MOMENTS) */
	double	   *m2;				/* [ncells]: MOMENTS */
	float	   *ext;			/* [ncells]: MIN, MAX */
	float	  **members;		/* [nmembers][ncells]: PERCENTILE */
	int			nmembers;
	int			maxmembers;
	float	   *scratch;		/* [ncells]: a grid with NULL elements, turned into NaN */
} EnsState;

/* One accumulator buffer of a state: where its pointer is, element size and count. */
typedef struct EnsBuf
{
	void	  **ptr;
	size_t		elem;
	size_t		count;
} EnsBuf;

/* SQL names of the aggregates, for messages. */
static const char *const ens_kind_names[] = {
	NULL, "gik.ens_exceedance", "gik.ens_count", "gik.ens_mean", "gik.ens_min", "gik.ens_max",
	"gik.ens_stddev", "gik.grid_sum", "gik.ens_percentile"
};

/* The accumulator buffers of a state, by kind; returns how many there are. */
static int
ens_buffers(EnsState *st, EnsBuf *bufs)
{
	size_t		n = (size_t) st->ncells;
	int			k = 0;

	switch (st->kind)
	{
		case ENS_EXCEED:
			bufs[k++] = (EnsBuf) {(void **) &st->valid, sizeof(int32), n};
			bufs[k++] = (EnsBuf) {(void **) &st->hits, sizeof(int32), n * (size_t) st->nparams};
			break;
		case ENS_COUNT:
			bufs[k++] = (EnsBuf) {(void **) &st->valid, sizeof(int32), n};
			break;
		case ENS_MEAN:
			bufs[k++] = (EnsBuf) {(void **) &st->valid, sizeof(int32), n};
			bufs[k++] = (EnsBuf) {(void **) &st->acc, sizeof(double), n};
			break;
		case ENS_MIN:
		case ENS_MAX:
			bufs[k++] = (EnsBuf) {(void **) &st->ext, sizeof(float), n};
			break;
		case ENS_MOMENTS:
			bufs[k++] = (EnsBuf) {(void **) &st->valid, sizeof(int32), n};
			bufs[k++] = (EnsBuf) {(void **) &st->acc, sizeof(double), n};
			bufs[k++] = (EnsBuf) {(void **) &st->m2, sizeof(double), n};
			break;
		case ENS_SUM:
			bufs[k++] = (EnsBuf) {(void **) &st->acc, sizeof(double), n};
			break;
		case ENS_PERCENTILE:
			break;
	}
	return k;
}

/* The aggregate memory context, or an error when called as a plain function. */
static MemoryContext
ens_agg_context(FunctionCallInfo fcinfo, const char *fname)
{
	MemoryContext aggcxt;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("%s called in non-aggregate context", fname),
						errdetail("This function is the transition step of an aggregate and cannot be called directly.")));
	return aggcxt;
}

/* Text "[nj][ni]" of a shape, for messages. */
static char *
ens_shape_text(int ndim, const int *dims)
{
	StringInfoData s;
	int			i;

	initStringInfo(&s);
	for (i = 0; i < ndim; i++)
		appendStringInfo(&s, "[%d]", dims[i]);
	if (ndim == 0)
		appendStringInfoString(&s, "[]");
	return s.data;
}

/* Bytes of a float4 or int4 result array with extra leading dimension(s), or an error if too large. */
static void
ens_check_result_size(const char *fname, int64 ncells, int64 planes)
{
	uint64		bytes = (uint64) ncells * (uint64) planes * 4 + ARR_OVERHEAD_NONULLS(MAXDIM);

	if (bytes > MaxAllocSize)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("result of %s would be too large: %lld cells times %lld planes", fname,
							   (long long) ncells, (long long) planes),
						errdetail("An array cannot exceed 1 GB."),
						errhint("Aggregate a smaller region or fewer thresholds or fractions at once.")));
}

/*
 * A grid argument, checked to be a real[] with at least one cell. With copycxt, the grid is
 * detoasted (or copied) straight into that context, to be kept: one copy, not two.
 */
static ArrayType *
ens_grid_arg(FunctionCallInfo fcinfo, int argno, const char *fname, MemoryContext copycxt)
{
	ArrayType  *grid;

	if (copycxt != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(copycxt);

		grid = DatumGetArrayTypePCopy(PG_GETARG_DATUM(argno));
		MemoryContextSwitchTo(old);
	}
	else
		grid = PG_GETARG_ARRAYTYPE_P(argno);

	if (ARR_ELEMTYPE(grid) != FLOAT4OID)
		ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
						errmsg("%s expects real[] grids", fname),
						errdetail("The grid has element type %s.", format_type_be(ARR_ELEMTYPE(grid)))));
	if (ARR_NDIM(grid) == 0 || ArrayGetNItems(ARR_NDIM(grid), ARR_DIMS(grid)) == 0)
		ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
						errmsg("empty grid in %s", fname),
						errdetail("Every grid must have at least one cell; skip missing members with NULL instead.")));
	return grid;
}

/*
 * A new state of a kind in the aggregate context, shaped like grid, with zeroed buffers; planes is
 * the number of thresholds or fractions (the result's leading dimension), 0 for other kinds.
 */
static EnsState *
ens_state_new(MemoryContext aggcxt, EnsKind kind, ArrayType *grid, int planes)
{
	EnsState   *st = MemoryContextAllocZero(aggcxt, sizeof(EnsState));
	int			ndim = ARR_NDIM(grid);
	EnsBuf		bufs[4];
	int			nb;
	int			i;

	st->kind = kind;
	st->ndim = ndim;
	memcpy(st->dims, ARR_DIMS(grid), sizeof(int) * ndim);
	memcpy(st->lbs, ARR_LBOUND(grid), sizeof(int) * ndim);
	st->ncells = ArrayGetNItems(ndim, ARR_DIMS(grid));
	ens_check_result_size(ens_kind_names[kind], st->ncells, Max(planes, 1));
	if (planes > 0 && ndim >= MAXDIM)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("grid of %s has too many dimensions: %d", ens_kind_names[kind], ndim),
						errdetail("The result adds a leading dimension, and arrays have at most %d.", MAXDIM)));
	st->nparams = planes;
	nb = ens_buffers(st, bufs);
	for (i = 0; i < nb; i++)
		*bufs[i].ptr = MemoryContextAllocExtended(aggcxt, bufs[i].elem * bufs[i].count,
												  MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	if (kind == ENS_MIN || kind == ENS_MAX)
	{
		int64		c;

		for (c = 0; c < st->ncells; c++)
			st->ext[c] = NAN;
	}
	return st;
}

/* Error unless a grid has the state's shape. */
static void
ens_check_shape(const EnsState *st, int ndim, const int *dims)
{
	if (ndim != st->ndim || memcmp(dims, st->dims, sizeof(int) * ndim) != 0)
		ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
						errmsg("grid shape %s differs from %s in %s", ens_shape_text(ndim, dims),
							   ens_shape_text(st->ndim, st->dims), ens_kind_names[st->kind]),
						errdetail("All grids aggregated together must have the same dimensions; the first grid fixes them."),
						errhint("Group by the grid's shape, or regrid the members to one grid first.")));
}

/* Write the ncells elements of a grid with NULL elements to dst, NULL as NaN. */
static void
ens_fill_nan_for_null(float *dst, ArrayType *grid, int64 ncells)
{
	const float *src = (const float *) ARR_DATA_PTR(grid);
	bits8	   *bitmap = ARR_NULLBITMAP(grid);
	int64		i;

	for (i = 0; i < ncells; i++)
		dst[i] = (bitmap[i >> 3] & (1 << (i & 7))) ? *src++ : NAN;
}

/* The cells of a grid as floats; NULL elements become NaN in the state's scratch buffer. */
static const float *
ens_values(EnsState *st, ArrayType *grid, MemoryContext aggcxt)
{
	if (!ARR_HASNULL(grid))
		return (const float *) ARR_DATA_PTR(grid);
	if (st->scratch == NULL)
		st->scratch = MemoryContextAllocHuge(aggcxt, sizeof(float) * (size_t) st->ncells);
	ens_fill_nan_for_null(st->scratch, grid, st->ncells);
	return st->scratch;
}

/* The thresholds (real[]) or fractions (float8[]) argument of an aggregate: not NULL, not empty, no NULL element. */
static ArrayType *
ens_param_array(FunctionCallInfo fcinfo, int argno, EnsKind kind, int *n)
{
	const char *what = kind == ENS_EXCEED ? "thresholds" : "fractions";
	ArrayType  *a;

	if (PG_ARGISNULL(argno))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("%s of %s must not be null", what, ens_kind_names[kind]),
						errdetail("%s", kind == ENS_EXCEED ?
								  "Pass the thresholds as a non-empty real[], the same in every row." :
								  "Pass the fractions as a non-empty float8[] of values in [0, 1], the same in every row.")));
	a = PG_GETARG_ARRAYTYPE_P(argno);
	*n = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	if (*n == 0 || array_contains_nulls(a))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s of %s must be a non-empty array without NULL elements", what, ens_kind_names[kind]),
						errdetail("The %s array has %d elements%s.", what, *n,
								  *n > 0 ? ", some of them NULL" : "")));
	return a;
}

/* Thresholds from a real[] argument: at least one, no NULL, no NaN. */
static const float *
ens_thresholds_arg(FunctionCallInfo fcinfo, int argno, int *n)
{
	const float *v = (const float *) ARR_DATA_PTR(ens_param_array(fcinfo, argno, ENS_EXCEED, n));

	for (int i = 0; i < *n; i++)
		if (isnan(v[i]))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("threshold %d of gik.ens_exceedance is NaN", i + 1),
							errdetail("No value is greater than or equal to NaN, so the probability would always be 0.")));
	return v;
}

/* Fractions from a float8[] argument: at least one, no NULL, each in [0, 1]. */
static const double *
ens_fractions_arg(FunctionCallInfo fcinfo, int argno, int *n)
{
	const double *v = (const double *) ARR_DATA_PTR(ens_param_array(fcinfo, argno, ENS_PERCENTILE, n));

	for (int i = 0; i < *n; i++)
		if (!(v[i] >= 0.0 && v[i] <= 1.0))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("fraction %d of gik.ens_percentile is out of range: %g", i + 1, v[i]),
							errdetail("Fractions are between 0 and 1: 0.9 is the 90th percentile.")));
	return v;
}

/* Store the parameters of a new state, or check they are the ones it started with. */
static void
ens_params(EnsState *st, MemoryContext aggcxt, const float *fv, const double *dv, int n)
{
	int			i;

	if (st->params == NULL)
	{
		st->nparams = n;
		st->params = MemoryContextAlloc(aggcxt, sizeof(double) * n);
		for (i = 0; i < n; i++)
			st->params[i] = fv != NULL ? (double) fv[i] : dv[i];
		if (st->kind == ENS_EXCEED)
		{
			st->thr = MemoryContextAlloc(aggcxt, sizeof(float) * n);
			for (i = 0; i < n; i++)
				st->thr[i] = (float) st->params[i];
		}
		return;
	}
	for (i = 0; i < n && n == st->nparams; i++)
		if (st->params[i] != (fv != NULL ? (double) fv[i] : dv[i]))
			break;
	if (n != st->nparams || i < n)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s of %s changed within a group",
							   st->kind == ENS_EXCEED ? "thresholds" : "fractions", ens_kind_names[st->kind]),
						errdetail("Every row of a group must pass the same %s; the first row's are used for the whole group.",
								  st->kind == ENS_EXCEED ? "thresholds" : "fractions")));
}

/*
 * Common start of a transition: the state (created from the first grid) and the grid, or NULL
 * when the grid is NULL and the row is skipped.
 */
static ArrayType *
ens_trans_begin(FunctionCallInfo fcinfo, EnsKind kind, int planes, EnsState **stp,
				MemoryContext *aggcxtp)
{
	const char *fname = ens_kind_names[kind];
	MemoryContext aggcxt = ens_agg_context(fcinfo, fname);
	EnsState   *st = PG_ARGISNULL(0) ? NULL : (EnsState *) PG_GETARG_POINTER(0);
	ArrayType  *grid;

	*aggcxtp = aggcxt;
	*stp = st;
	if (PG_ARGISNULL(1))
		return NULL;
	grid = ens_grid_arg(fcinfo, 1, fname, kind == ENS_PERCENTILE ? aggcxt : NULL);
	if (st == NULL)
		st = *stp = ens_state_new(aggcxt, kind, grid, planes);
	else
		ens_check_shape(st, ARR_NDIM(grid), ARR_DIMS(grid));
	return grid;
}

/* Common start of a transition, giving the grid's cells as floats (NULL: skip the row). */
static const float *
ens_trans_values(FunctionCallInfo fcinfo, EnsKind kind, EnsState **stp)
{
	MemoryContext aggcxt;
	ArrayType  *grid = ens_trans_begin(fcinfo, kind, 0, stp, &aggcxt);

	return grid != NULL ? ens_values(*stp, grid, aggcxt) : NULL;
}

#define ENS_RETURN_STATE(st) \
	do { if ((st) == NULL) PG_RETURN_NULL(); PG_RETURN_POINTER(st); } while (0)

/* The state unchanged, for a row that adds nothing (NULL grid or weight; its other arguments are not read). */
static Datum
ens_skip_row(FunctionCallInfo fcinfo, EnsKind kind)
{
	ens_agg_context(fcinfo, ens_kind_names[kind]);
	ENS_RETURN_STATE(PG_ARGISNULL(0) ? NULL : (EnsState *) PG_GETARG_POINTER(0));
}

/* gik.ens_exceedance transition: count members >= each threshold and valid members, per cell. */
Datum
gik_ens_exceedance_transfn(PG_FUNCTION_ARGS)
{
	EnsState   *st;
	MemoryContext aggcxt;
	ArrayType  *grid;
	const float *thr;
	const float *x;
	int			nthr;

	if (PG_ARGISNULL(1))
		return ens_skip_row(fcinfo, ENS_EXCEED);
	thr = ens_thresholds_arg(fcinfo, 2, &nthr);
	grid = ens_trans_begin(fcinfo, ENS_EXCEED, nthr, &st, &aggcxt);
	ens_params(st, aggcxt, thr, NULL, nthr);
	x = ens_values(st, grid, aggcxt);
	gik_ens_exceed_add(x, (size_t) st->ncells, st->thr, st->nparams, st->hits, st->valid);
	PG_RETURN_POINTER(st);
}

/* Add one grid to a count, mean, minimum, maximum or moments state (NULL grid: skip the row). */
static Datum
ens_accumulate(FunctionCallInfo fcinfo, EnsKind kind)
{
	EnsState   *st;
	const float *x = ens_trans_values(fcinfo, kind, &st);
	size_t		n = x != NULL ? (size_t) st->ncells : 0;

	if (x == NULL)
		ENS_RETURN_STATE(st);
	switch (kind)
	{
		case ENS_COUNT:
			gik_ens_count_add(x, n, st->valid);
			break;
		case ENS_MEAN:
			gik_ens_sum_add(x, n, st->valid, st->acc);
			break;
		case ENS_MIN:
		case ENS_MAX:
			gik_ens_extreme_add(x, n, kind == ENS_MAX, st->ext);
			break;
		case ENS_MOMENTS:
			gik_ens_moments_add(x, n, st->valid, st->acc, st->m2);
			break;
		default:
			elog(ERROR, "ensemble state kind %d has its own transition", kind);
	}
	PG_RETURN_POINTER(st);
}

/* Transitions of gik.ens_count, ens_mean, ens_min, ens_max, and ens_stddev / ens_stddev_pop (Welford). */
GIK_SQL_FORWARD(gik_ens_count_transfn, ens_accumulate, ENS_COUNT);
GIK_SQL_FORWARD(gik_ens_mean_transfn, ens_accumulate, ENS_MEAN);
GIK_SQL_FORWARD(gik_ens_min_transfn, ens_accumulate, ENS_MIN);
GIK_SQL_FORWARD(gik_ens_max_transfn, ens_accumulate, ENS_MAX);
GIK_SQL_FORWARD(gik_ens_moments_transfn, ens_accumulate, ENS_MOMENTS);

/* gik.grid_sum transition: acc += weight * grid; a NULL grid or NULL weight skips the row. */
Datum
gik_grid_sum_transfn(PG_FUNCTION_ARGS)
{
	EnsState   *st;
	const float *x;
	double		w = 1.0;

	if (PG_NARGS() > 2)
	{
		if (PG_ARGISNULL(2))
			return ens_skip_row(fcinfo, ENS_SUM);
		w = PG_GETARG_FLOAT8(2);
		if (isnan(w))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("weight of gik.grid_sum is NaN"),
							errdetail("A NaN weight would make every cell NaN.")));
	}
	x = ens_trans_values(fcinfo, ENS_SUM, &st);
	if (x != NULL)
		gik_grid_wsum_add(x, (size_t) st->ncells, w, st->acc);
	ENS_RETURN_STATE(st);
}

/* gik.ens_percentile transition: keep a copy of the grid (NULL elements as NaN). */
Datum
gik_ens_percentile_transfn(PG_FUNCTION_ARGS)
{
	EnsState   *st;
	MemoryContext aggcxt;
	ArrayType  *grid;
	const double *fr;
	int			nfrac;
	float	   *copy;

	if (PG_ARGISNULL(1))
		return ens_skip_row(fcinfo, ENS_PERCENTILE);
	fr = ens_fractions_arg(fcinfo, 2, &nfrac);
	grid = ens_trans_begin(fcinfo, ENS_PERCENTILE, nfrac, &st, &aggcxt);
	ens_params(st, aggcxt, NULL, fr, nfrac);

	if (st->nmembers == st->maxmembers)
	{
		int			newmax = st->maxmembers == 0 ? 64 : st->maxmembers * 2;

		if (st->members == NULL)
			st->members = MemoryContextAlloc(aggcxt, sizeof(float *) * newmax);
		else
			st->members = repalloc(st->members, sizeof(float *) * newmax);
		st->maxmembers = newmax;
	}
	/* grid is already our own copy in aggcxt: keep its cells, or convert NULL elements */
	if (ARR_HASNULL(grid))
	{
		copy = MemoryContextAllocHuge(aggcxt, sizeof(float) * (size_t) st->ncells);
		ens_fill_nan_for_null(copy, grid, st->ncells);
		pfree(grid);
	}
	else
		copy = (float *) ARR_DATA_PTR(grid);
	st->members[st->nmembers++] = copy;
	PG_RETURN_POINTER(st);
}

/* A new float4 or int4 array (elements not initialised) with an optional leading dimension of size lead. */
static ArrayType *
ens_new_array(const EnsState *st, Oid elemtype, int lead)
{
	int			ndim = st->ndim + (lead > 0 ? 1 : 0);
	int			dims[MAXDIM];
	int			lbs[MAXDIM];
	int			off = lead > 0 ? 1 : 0;

	ens_check_result_size(ens_kind_names[st->kind], st->ncells, lead > 0 ? lead : 1);
	if (lead > 0)
	{
		dims[0] = lead;
		lbs[0] = 1;
	}
	memcpy(dims + off, st->dims, sizeof(int) * st->ndim);
	memcpy(lbs + off, st->lbs, sizeof(int) * st->ndim);
	return gik_array_new(elemtype, ndim, dims, lbs, false, (size_t) st->ncells * (size_t) (lead > 0 ? lead : 1));
}

/*
 * The result of an ensemble aggregate from its state: [nthresholds][...grid] probabilities,
 * int[] counts, [nfractions][...grid] percentiles, or a real[] grid; ddof is the degrees of
 * freedom a standard deviation removes.
 */
static Datum
ens_final(FunctionCallInfo fcinfo, int ddof)
{
	EnsState   *st = PG_ARGISNULL(0) ? NULL : (EnsState *) PG_GETARG_POINTER(0);
	ArrayType  *a;
	float	   *out;
	size_t		n;

	if (st == NULL)
		PG_RETURN_NULL();
	n = (size_t) st->ncells;
	a = ens_new_array(st, st->kind == ENS_COUNT ? INT4OID : FLOAT4OID,
					  st->kind == ENS_EXCEED || st->kind == ENS_PERCENTILE ? st->nparams : 0);
	out = (float *) ARR_DATA_PTR(a);
	switch (st->kind)
	{
		case ENS_EXCEED:
			gik_ens_exceed_result(st->hits, st->valid, n, st->nparams, out);
			break;
		case ENS_COUNT:
			memcpy(ARR_DATA_PTR(a), st->valid, sizeof(int32) * n);
			break;
		case ENS_MEAN:
			gik_ens_mean_result(st->valid, st->acc, n, out);
			break;
		case ENS_MIN:
		case ENS_MAX:
			memcpy(out, st->ext, sizeof(float) * n);
			break;
		case ENS_MOMENTS:
			gik_ens_stddev_result(st->valid, st->m2, n, ddof, out);
			break;
		case ENS_SUM:
			gik_grid_to_float(st->acc, n, out);
			break;
		case ENS_PERCENTILE:
			if (!gik_ens_percentile((const float *const *) st->members, st->nmembers, n,
									st->params, st->nparams, out, gik_core_alloc))
				ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
								errmsg("out of memory in gik.ens_percentile"),
								errdetail("The per-cell scratch space could not be allocated.")));
			break;
	}
	PG_RETURN_ARRAYTYPE_P(a);
}

/* Results; ens_stddev is the sample standard deviation (n - 1), ens_stddev_pop the population's (n). */
GIK_SQL_FORWARD(gik_ens_exceedance_finalfn, ens_final, 0);
GIK_SQL_FORWARD(gik_ens_count_finalfn, ens_final, 0);
GIK_SQL_FORWARD(gik_ens_mean_finalfn, ens_final, 0);
GIK_SQL_FORWARD(gik_ens_extreme_finalfn, ens_final, 0);	/* ens_min and ens_max */
GIK_SQL_FORWARD(gik_ens_stddev_finalfn, ens_final, 1);
GIK_SQL_FORWARD(gik_ens_stddev_pop_finalfn, ens_final, 0);
GIK_SQL_FORWARD(gik_grid_sum_finalfn, ens_final, 0);
GIK_SQL_FORWARD(gik_ens_percentile_finalfn, ens_final, 0);

/* A copy of a state (shape, parameters and buffers) in another memory context. */
static EnsState *
ens_state_copy(const EnsState *src, MemoryContext cxt)
{
	EnsState   *st = MemoryContextAllocZero(cxt, sizeof(EnsState));
	EnsBuf		sb[4],
				db[4];
	int			nb;
	int			i;

	memcpy(st, src, sizeof(EnsState));
	st->scratch = NULL;
	st->members = NULL;
	st->nmembers = st->maxmembers = 0;
	st->params = NULL;
	st->thr = NULL;
	if (src->nparams > 0)
	{
		st->params = MemoryContextAlloc(cxt, sizeof(double) * src->nparams);
		memcpy(st->params, src->params, sizeof(double) * src->nparams);
	}
	if (src->thr != NULL)
	{
		st->thr = MemoryContextAlloc(cxt, sizeof(float) * src->nparams);
		memcpy(st->thr, src->thr, sizeof(float) * src->nparams);
	}
	nb = ens_buffers((EnsState *) src, sb);
	ens_buffers(st, db);
	for (i = 0; i < nb; i++)
	{
		*db[i].ptr = MemoryContextAllocHuge(cxt, sb[i].elem * sb[i].count);
		memcpy(*db[i].ptr, *sb[i].ptr, sb[i].elem * sb[i].count);
	}
	return st;
}

/*
 * Copy the member grids of src to the end of dst's list. src's grids are not freed: they may
 * point inside detoasted arrays, and their context goes away soon anyway.
 */
static void
ens_append_members(EnsState *dst, EnsState *src, MemoryContext cxt)
{
	size_t		bytes = sizeof(float) * (size_t) dst->ncells;
	int			need = dst->nmembers + src->nmembers;
	int			i;

	if (need > dst->maxmembers)
	{
		int			newmax = Max(64, dst->maxmembers);

		while (newmax < need)
			newmax *= 2;
		if (dst->members == NULL)
			dst->members = MemoryContextAlloc(cxt, sizeof(float *) * newmax);
		else
			dst->members = repalloc(dst->members, sizeof(float *) * newmax);
		dst->maxmembers = newmax;
	}
	for (i = 0; i < src->nmembers; i++)
	{
		float	   *copy = MemoryContextAllocHuge(cxt, bytes);

		memcpy(copy, src->members[i], bytes);
		dst->members[dst->nmembers++] = copy;
	}
}

/* Error unless two partial states aggregate the same kind, shape and parameters. */
static void
ens_check_compatible(const EnsState *a, const EnsState *b)
{
	if (a->kind != b->kind)
		elog(ERROR, "cannot combine ensemble states of different kinds (%d, %d)", a->kind, b->kind);
	ens_check_shape(a, b->ndim, b->dims);
	if (a->nparams != b->nparams ||
		(a->nparams > 0 && a->params != NULL && b->params != NULL &&
		 memcmp(a->params, b->params, sizeof(double) * a->nparams) != 0))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s of %s changed within a group",
							   a->kind == ENS_EXCEED ? "thresholds" : "fractions", ens_kind_names[a->kind]),
						errdetail("Every row of a group must pass the same %s; the first row's are used for the whole group.",
								  a->kind == ENS_EXCEED ? "thresholds" : "fractions")));
}

/* Combine two partial states of any ensemble aggregate (parallel aggregation). */
Datum
gik_ens_combinefn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = ens_agg_context(fcinfo, "gik.ens_combinefn");
	EnsState   *a = PG_ARGISNULL(0) ? NULL : (EnsState *) PG_GETARG_POINTER(0);
	EnsState   *b = PG_ARGISNULL(1) ? NULL : (EnsState *) PG_GETARG_POINTER(1);
	size_t		n;

	if (b == NULL)
		ENS_RETURN_STATE(a);
	if (a == NULL)
	{
		a = ens_state_copy(b, aggcxt);
		if (b->kind == ENS_PERCENTILE)
			ens_append_members(a, b, aggcxt);
		PG_RETURN_POINTER(a);
	}
	ens_check_compatible(a, b);
	n = (size_t) a->ncells;
	switch (a->kind)
	{
		case ENS_EXCEED:
			gik_ens_counts_merge(a->valid, b->valid, n);
			gik_ens_counts_merge(a->hits, b->hits, n * (size_t) a->nparams);
			break;
		case ENS_COUNT:
			gik_ens_counts_merge(a->valid, b->valid, n);
			break;
		case ENS_MEAN:
			gik_ens_counts_merge(a->valid, b->valid, n);
			gik_ens_sums_merge(a->acc, b->acc, n);
			break;
		case ENS_MIN:
		case ENS_MAX:
			gik_ens_extreme_merge(a->ext, b->ext, n, a->kind == ENS_MAX);
			break;
		case ENS_MOMENTS:
			gik_ens_moments_merge(a->valid, a->acc, a->m2, b->valid, b->acc, b->m2, n);
			break;
		case ENS_SUM:
			gik_ens_sums_merge(a->acc, b->acc, n);
			break;
		case ENS_PERCENTILE:
			ens_append_members(a, b, aggcxt);
			break;
	}
	PG_RETURN_POINTER(a);
}

/* Serialized state header, followed by params[nparams] (double), then the buffers or members. */
typedef struct EnsWire
{
	int32		kind;
	int32		ndim;
	int32		dims[MAXDIM];
	int32		lbs[MAXDIM];
	int64		ncells;
	int32		nparams;
	int32		nmembers;
} EnsWire;

/* Serialize a state to bytea (parallel workers send it to the leader). */
Datum
gik_ens_serialfn(PG_FUNCTION_ARGS)
{
	EnsState   *st = (EnsState *) PG_GETARG_POINTER(0);
	EnsWire		w;
	EnsBuf		bufs[4];
	int			nb = ens_buffers(st, bufs);
	uint64		size = VARHDRSZ + sizeof(EnsWire) + sizeof(double) * (uint64) st->nparams;
	size_t		member_bytes = sizeof(float) * (size_t) st->ncells;
	bytea	   *out;
	char	   *p;
	int			i;

	for (i = 0; i < nb; i++)
		size += (uint64) bufs[i].elem * bufs[i].count;
	size += (uint64) member_bytes * (uint64) st->nmembers;
	if (size > MaxAllocSize)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("partial state of %s is too large to pass between parallel workers: %llu bytes",
							   ens_kind_names[st->kind], (unsigned long long) size),
						errdetail("A serialized aggregate state cannot exceed 1 GB."),
						errhint("Disable parallel aggregation for this query with SET max_parallel_workers_per_gather = 0.")));

	memset(&w, 0, sizeof(w));
	w.kind = st->kind;
	w.ndim = st->ndim;
	memcpy(w.dims, st->dims, sizeof(int) * st->ndim);
	memcpy(w.lbs, st->lbs, sizeof(int) * st->ndim);
	w.ncells = st->ncells;
	w.nparams = st->nparams;
	w.nmembers = st->nmembers;

	out = palloc(size);
	SET_VARSIZE(out, size);
	p = VARDATA(out);
	memcpy(p, &w, sizeof(w));
	p += sizeof(w);
	if (st->nparams > 0)
	{
		memcpy(p, st->params, sizeof(double) * st->nparams);
		p += sizeof(double) * st->nparams;
	}
	for (i = 0; i < nb; i++)
	{
		memcpy(p, *bufs[i].ptr, bufs[i].elem * bufs[i].count);
		p += bufs[i].elem * bufs[i].count;
	}
	for (i = 0; i < st->nmembers; i++)
	{
		memcpy(p, st->members[i], member_bytes);
		p += member_bytes;
	}
	PG_RETURN_BYTEA_P(out);
}

/* Rebuild a state from its bytea form, in the current memory context. */
Datum
gik_ens_deserialfn(PG_FUNCTION_ARGS)
{
	bytea	   *in = PG_GETARG_BYTEA_PP(0);
	const char *p = VARDATA_ANY(in);
	size_t		len = VARSIZE_ANY_EXHDR(in);
	EnsState   *st;
	EnsWire		w;
	EnsBuf		bufs[4];
	int			nb;
	size_t		need;
	size_t		member_bytes;
	int			i;

	if (len < sizeof(EnsWire))
		elog(ERROR, "invalid serialized ensemble state: %zu bytes", len);
	memcpy(&w, p, sizeof(w));
	p += sizeof(w);
	if (w.kind < ENS_EXCEED || w.kind > ENS_KIND_LAST || w.ndim < 1 || w.ndim > MAXDIM ||
		w.nparams < 0 || w.nmembers < 0 || w.ncells < 1)
		elog(ERROR, "invalid serialized ensemble state header");

	st = palloc0(sizeof(EnsState));
	st->kind = (EnsKind) w.kind;
	st->ndim = w.ndim;
	memcpy(st->dims, w.dims, sizeof(int) * w.ndim);
	memcpy(st->lbs, w.lbs, sizeof(int) * w.ndim);
	st->ncells = w.ncells;
	st->nparams = w.nparams;
	member_bytes = sizeof(float) * (size_t) st->ncells;

	nb = ens_buffers(st, bufs);
	need = sizeof(w) + sizeof(double) * (size_t) w.nparams + member_bytes * (size_t) w.nmembers;
	for (i = 0; i < nb; i++)
		need += bufs[i].elem * bufs[i].count;
	if (need != len)
		elog(ERROR, "invalid serialized ensemble state: %zu bytes, expected %zu", len, need);

	if (w.nparams > 0)
	{
		st->params = palloc(sizeof(double) * w.nparams);
		memcpy(st->params, p, sizeof(double) * w.nparams);
		p += sizeof(double) * w.nparams;
		if (st->kind == ENS_EXCEED)
		{
			st->thr = palloc(sizeof(float) * w.nparams);
			for (i = 0; i < w.nparams; i++)
				st->thr[i] = (float) st->params[i];
		}
	}
	for (i = 0; i < nb; i++)
	{
		size_t		bytes = bufs[i].elem * bufs[i].count;

		*bufs[i].ptr = palloc_extended(bytes, MCXT_ALLOC_HUGE);
		memcpy(*bufs[i].ptr, p, bytes);
		p += bytes;
	}
	if (w.nmembers > 0)
	{
		st->members = palloc(sizeof(float *) * w.nmembers);
		st->maxmembers = w.nmembers;
		for (i = 0; i < w.nmembers; i++)
		{
			st->members[i] = palloc_extended(member_bytes, MCXT_ALLOC_HUGE);
			memcpy(st->members[i], p, member_bytes);
			p += member_bytes;
		}
		st->nmembers = w.nmembers;
	}
	PG_RETURN_POINTER(st);
}
