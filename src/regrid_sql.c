/* Regridding from SQL: gik.regrid and the session's cache of weights. */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "funcapi.h"
#include "utils/tuplestore.h"

#include "core/proj.h"
#include "core/regrid.h"
#include "args.h"
#include "pg_gik.h"

#include "miscadmin.h"
#include "utils/lsyscache.h"

PG_FUNCTION_INFO_V1(gik_regrid);
PG_FUNCTION_INFO_V1(gik_regrid_cache);

/*
 * Regridding weights, cached per backend: computed once per (source grid, target grid,
 * method) and kept, most recently used first, while their total stays under
 * REGRID_CACHE_BYTES; weights larger than that are used once and dropped.
 */
#define REGRID_CACHE_BYTES ((size_t) 256 * 1024 * 1024)

typedef struct RegridEntry
{
	struct RegridEntry *next;
	char	   *key;
	MemoryContext cxt;			/* holds the key and the weights */
	GikRegridWeights w;
	size_t		bytes;
	int64		uses;
} RegridEntry;

static RegridEntry *regrid_cache = NULL;
static size_t regrid_cache_bytes = 0;

static void *
regrid_alloc(size_t size)
{
	return MemoryContextAllocHuge(CurrentMemoryContext, size ? size : 1);
}

static void
regrid_check(void)
{
	CHECK_FOR_INTERRUPTS();
}

/* A north-up output grid from a grid description (its own layout: no convention, no region). */
static void
outgrid_from_desc(HeapTupleHeader desc, const char *what, GikOutGrid *out)
{
	GikGrid		g;
	GikGridPlan plan;
	char		errbuf[256];

	gik_grid_from_desc(desc, &g);
	if (!gik_grid_plan(&g, GIK_LON_SOURCE, NULL, regrid_alloc, &plan, errbuf, sizeof(errbuf)))
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("the %s grid cannot be regridded", what),
						errdetail("%s", errbuf),
						errhint("Regridding works between regular latitude/longitude and projected grids as gik.decode() lays them out.")));
	*out = plan.out;
}

static void
cache_drop_last(void)
{
	RegridEntry **pp = &regrid_cache;

	while (*pp && (*pp)->next)
		pp = &(*pp)->next;
	if (*pp)
	{
		regrid_cache_bytes -= (*pp)->bytes;
		MemoryContextDelete((*pp)->cxt);
		*pp = NULL;
	}
}

/* The weights for a key, from the cache or computed (and cached when they fit). */
static RegridEntry *
regrid_weights(const char *key, const GikOutGrid *src, const GikOutGrid *dst, GikRegridMethod method, bool *cached)
{
	RegridEntry **pp;
	RegridEntry *e;
	MemoryContext cxt,
				old;
	char		errbuf[256];
	bool		ok;

	for (pp = &regrid_cache; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->key, key) == 0)
		{
			e = *pp;
			*pp = e->next;
			e->next = regrid_cache;
			regrid_cache = e;
			e->uses++;
			*cached = true;
			return e;
		}
	*cached = false;
	cxt = AllocSetContextCreate(TopMemoryContext, "pg_gik regrid weights", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		e = palloc0(sizeof(RegridEntry));
		e->cxt = cxt;
		e->key = pstrdup(key);
		ok = gik_regrid_weights(src, dst, method, regrid_alloc, regrid_check, &e->w, errbuf, sizeof(errbuf));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	if (!ok)
	{
		MemoryContextDelete(cxt);
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("cannot regrid %s", gik_regrid_method_name(method)), errdetail("%s", errbuf)));
	}
	e->bytes = MemoryContextMemAllocated(cxt, true);
	e->uses = 1;
	while (regrid_cache && regrid_cache_bytes + e->bytes > REGRID_CACHE_BYTES)
		cache_drop_last();
	if (e->bytes <= REGRID_CACHE_BYTES)
	{
		e->next = regrid_cache;
		regrid_cache = e;
		regrid_cache_bytes += e->bytes;
	}
	return e;
}

/* A grid description argument as text (the cache key). */
static char *
desc_text(FunctionCallInfo fcinfo, int arg)
{
	Oid			out;
	bool		varlena;

	getTypeOutputInfo(get_fn_expr_argtype(fcinfo->flinfo, arg), &out, &varlena);
	return OidOutputFunctionCall(out, PG_GETARG_DATUM(arg));
}

/* gik.regrid(vals real[], source gik.grid_desc, target gik.grid_desc, method text): vals on target, real[nj][ni]. */
Datum
gik_regrid(PG_FUNCTION_ARGS)
{
	ArrayType  *vals;
	GikOutGrid	src,
				dst;
	GikRegridMethod method = GIK_REGRID_BILINEAR;
	char	   *key;
	RegridEntry *e;
	bool		cached;
	float	   *in;
	float	   *out;
	Datum	   *d;
	int			dims[2];
	int			lbs[2] = {1, 1};
	ArrayType  *result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_NULL();
	vals = PG_GETARG_ARRAYTYPE_P(0);
	if (!PG_ARGISNULL(3) && !gik_regrid_method_parse(text_to_cstring(PG_GETARG_TEXT_PP(3)), &method))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid regridding method \"%s\"", text_to_cstring(PG_GETARG_TEXT_PP(3))),
						errhint("Use 'bilinear' or 'conservative'.")));
	outgrid_from_desc(PG_GETARG_HEAPTUPLEHEADER(1), "source", &src);
	outgrid_from_desc(PG_GETARG_HEAPTUPLEHEADER(2), "target", &dst);
	if (ARR_ELEMTYPE(vals) != FLOAT4OID || ARR_NDIM(vals) != 2 ||
		ARR_DIMS(vals)[0] != src.nj || ARR_DIMS(vals)[1] != src.ni)
		ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
						errmsg("values do not match the source grid"),
						errdetail("Expected real[%ld][%ld].", src.nj, src.ni)));
	key = psprintf("%s|%s|%s", gik_regrid_method_name(method), desc_text(fcinfo, 1), desc_text(fcinfo, 2));
	e = regrid_weights(key, &src, &dst, method, &cached);
	in = palloc(sizeof(float) * (size_t) src.ni * (size_t) src.nj);
	{
		bits8	   *bitmap = ARR_NULLBITMAP(vals);
		float	   *p = (float *) ARR_DATA_PTR(vals);
		size_t		n = (size_t) src.ni * (size_t) src.nj;

		for (size_t i = 0; i < n; i++)
			in[i] = (bitmap == NULL || (bitmap[i / 8] & (1 << (i % 8)))) ? *p++ : NAN;
	}
	out = palloc(sizeof(float) * (size_t) e->w.dst_cells);
	gik_regrid_apply(&e->w, in, out);
	if (!cached && regrid_cache != e)
		MemoryContextDelete(e->cxt);	/* too large to keep */
	d = palloc(sizeof(Datum) * (size_t) dst.ni * (size_t) dst.nj);
	for (long i = 0; i < dst.ni * dst.nj; i++)
		d[i] = Float4GetDatum(out[i]);
	dims[0] = (int) dst.nj;
	dims[1] = (int) dst.ni;
	result = construct_md_array(d, NULL, 2, dims, lbs, FLOAT4OID, 4, true, TYPALIGN_INT);
	PG_RETURN_ARRAYTYPE_P(result);
}

/* gik.regrid_cache(): this session's cached weights. */
Datum
gik_regrid_cache(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (RegridEntry *e = regrid_cache; e; e = e->next)
	{
		Datum		v[5];
		bool		n[5] = {0};

		v[0] = CStringGetTextDatum(gik_regrid_method_name(e->w.method));
		v[1] = Int64GetDatum(e->w.src_cells);
		v[2] = Int64GetDatum(e->w.dst_cells);
		v[3] = Int64GetDatum((int64) e->bytes);
		v[4] = Int64GetDatum(e->uses);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, v, n);
	}
	return (Datum) 0;
}
