/* Datum builders shared by the SQL areas. */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/memutils.h"

#include "core/proj.h"
#include "core/raster_wkb.h"
#include "datums.h"

ArrayType *
gik_array_new(Oid elemtype, int ndim, const int *dims, const int *lbs, bool nulls, size_t nvalues)
{
	size_t		nitems = 1;
	Size		overhead;
	Size		size;
	ArrayType  *a;

	for (int i = 0; i < ndim; i++)
		nitems *= (size_t) dims[i];
	overhead = nulls ? ARR_OVERHEAD_WITHNULLS(ndim, nitems) : ARR_OVERHEAD_NONULLS(ndim);
	if (nvalues > MaxAllocSize / 4 || !AllocSizeIsValid(overhead + nvalues * 4))
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("a grid of %zu values is too large for one array", nvalues)));
	size = overhead + nvalues * 4;
	a = (ArrayType *) palloc(size);	/* the caller fills every element */
	memset(a, 0, overhead);
	SET_VARSIZE(a, size);
	a->ndim = ndim;
	a->dataoffset = nulls ? overhead : 0;
	a->elemtype = elemtype;
	memcpy(ARR_DIMS(a), dims, sizeof(int) * ndim);
	memcpy(ARR_LBOUND(a), lbs, sizeof(int) * ndim);
	return a;
}

ArrayType *
gik_float_array(const float *values, size_t n, long nj, long ni)
{
	int			lbs[2] = {1, 1};
	int			dims[2];
	ArrayType  *a;

	if (n > MaxAllocSize / sizeof(float))
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("a grid of %zu values is too large for one array", n)));
	if (nj > 0 && ni > 0 && (size_t) (nj * ni) == n)
	{
		dims[0] = (int) nj;
		dims[1] = (int) ni;
		a = gik_array_new(FLOAT4OID, 2, dims, lbs, false, n);
	}
	else
	{
		dims[0] = (int) n;
		a = gik_array_new(FLOAT4OID, 1, dims, lbs, false, n);
	}
	memcpy(ARR_DATA_PTR(a), values, n * sizeof(float));
	return a;
}

ArrayType *
gik_float8_array(const double *values, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Float8GetDatum(values[i]);
	return construct_array(d, n, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

void
gik_put_text(Datum *value, bool *isnull, const char *s)
{
	if (s)
		*value = CStringGetTextDatum(s);
	else
		*isnull = true;
}

bool
gik_timestamp_from_parts(int year, int month, int day, int hour, int minute, TimestampTz *out)
{
	if (month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 ||
		minute < 0 || minute > 59 || !IS_VALID_JULIAN(year, month, day))
		return false;
	*out = ((TimestampTz) (date2j(year, month, day) - POSTGRES_EPOCH_JDATE)) * USECS_PER_DAY +
		(TimestampTz) hour * USECS_PER_HOUR + (TimestampTz) minute * USECS_PER_MINUTE;
	return true;
}

Datum
gik_grid_desc_datum(TupleDesc tupdesc, const GikDecoded *dec)
{
	Datum		v[11];
	bool		n[11] = {0};
	const GikGrid *src = &dec->meta.grid;

	v[0] = CStringGetTextDatum(src->grid_type[0] ? src->grid_type : "unknown");
	if (dec->regular)
	{
		const GikOutGrid *g = &dec->out;

		v[1] = Int32GetDatum((int32) g->ni);
		v[2] = Int32GetDatum((int32) g->nj);
		v[3] = Float8GetDatum(g->lat_first);
		v[4] = Float8GetDatum(g->lon_first);
		v[5] = Float8GetDatum(g->lat_last);
		v[6] = Float8GetDatum(g->lon_last);
		v[7] = Float8GetDatum(g->di);
		v[8] = Float8GetDatum(g->dj);
		v[9] = Int32GetDatum(0);
		n[10] = true;
		if (gik_outgrid_projected(g))
		{
			GikGrid		pg = {.proj = g->proj};

			gik_grid_proj_datum(&pg, &v[10], &n[10]);
		}
	}
	else
	{
		double		f[6] = {src->lat_first, src->lon_first, src->lat_last, src->lon_last, src->di, src->dj};

		v[1] = Int32GetDatum((int32) src->ni);
		n[1] = src->ni < 0;
		v[2] = Int32GetDatum((int32) src->nj);
		n[2] = src->nj < 0;
		for (int i = 0; i < 6; i++)
		{
			v[3 + i] = Float8GetDatum(f[i]);
			n[3 + i] = isnan(f[i]);
		}
		v[9] = Int32GetDatum((int32) src->scanning_mode);
		gik_grid_proj_datum(src, &v[10], &n[10]);
	}
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), v, n));
}

bytea *
gik_raster_bytea(const GikOutGrid *g, const float *values, int nbands, int srid)
{
	size_t		size;
	bytea	   *out;

	if (g->ni > 65535 || g->nj > 65535)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("a raster of %ld x %ld pixels is too large", g->ni, g->nj),
						errdetail("PostGIS rasters have at most 65535 pixels per side.")));
	size = gik_raster_wkb_size(g->ni, g->nj, nbands);
	if (!AllocSizeIsValid(size + VARHDRSZ))
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("a raster of %zu bytes is too large", size)));
	out = palloc(size + VARHDRSZ);
	SET_VARSIZE(out, size + VARHDRSZ);
	gik_raster_wkb_write(g, values, nbands, srid, (unsigned char *) VARDATA(out));
	return out;
}

/* A grid's projection or Gaussian description as a text datum; *isnull when it has none. */
void
gik_grid_proj_datum(const GikGrid *grid, Datum *value, bool *isnull)
{
	char		text[GIK_PROJ_STRING_MAX];

	*isnull = !gik_proj_string(grid, text, sizeof(text));
	if (!*isnull)
		*value = CStringGetTextDatum(text);
}
