/*
 * Grids from SQL without fetching: the output grid of decode options, row and column
 * coordinates, raster WKB of any north-up grid, and element-wise arithmetic on real[] grids.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "core/ensemble.h"
#include "core/grid.h"
#include "core/proj.h"
#include "args.h"
#include "datums.h"
#include "pg_gik.h"

PG_FUNCTION_INFO_V1(gik_output_grid);
PG_FUNCTION_INFO_V1(gik_grid_wkb);
PG_FUNCTION_INFO_V1(gik_grid_clip);
PG_FUNCTION_INFO_V1(gik_grid_band);

/* Plan a source grid description for a convention and region; raises when unsupported. */
static void
plan_from_desc(FunctionCallInfo fcinfo, GikGridPlan *plan, GikDecoded *as_decoded)
{
	GikDecodeOptions opts;
	char		errbuf[256];

	gik_decode_options_from_args(fcinfo, 1, &opts);
	memset(as_decoded, 0, sizeof(*as_decoded));
	gik_grid_from_desc(PG_GETARG_HEAPTUPLEHEADER(0), &as_decoded->meta.grid);
	if (!gik_grid_is_regular_ll(&as_decoded->meta.grid) && as_decoded->meta.grid.proj.kind == GIK_PROJ_NONE)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("grid type %s is not supported for regions, longitude conventions or coordinates",
							   as_decoded->meta.grid.grid_type),
						errdetail("Regular latitude/longitude and projected grids (with their proj) are supported; Gaussian grids have coordinates only, without lon or region.")));
	if (!gik_grid_plan(&as_decoded->meta.grid, opts.lon, opts.has_box ? &opts.box : NULL,
					   gik_core_alloc, plan, errbuf, sizeof(errbuf)))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("cannot lay out this grid as asked"),
						errdetail("%s", errbuf)));
	as_decoded->regular = true;
	as_decoded->out = plan->out;
}

/* gik.output_grid(grid gik.grid_desc, lon, region): the grid a decode with these options returns, without fetching. */
Datum
gik_output_grid(PG_FUNCTION_ARGS)
{
	GikGridPlan plan;
	GikDecoded	as_decoded;
	TupleDesc	tupdesc;

	if (gik_required_null(fcinfo, 1))
		PG_RETURN_NULL();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	plan_from_desc(fcinfo, &plan, &as_decoded);
	PG_RETURN_DATUM(gik_grid_desc_datum(tupdesc, &as_decoded));
}

/* Rows of the global Gaussian latitudes that lie between the grid's first and last latitude. */
static void
gaussian_rows(const GikGrid *grid, const double *glats, long *first, long *count)
{
	double		north = fmax(grid->lat_first, grid->lat_last);
	double		south = fmin(grid->lat_first, grid->lat_last);
	long		r0 = -1,
				r1 = -2;

	for (long r = 0; r < 2 * grid->gauss_n; r++)
		if (glats[r] <= north + 1e-3 && glats[r] >= south - 1e-3)
		{
			if (r0 < 0)
				r0 = r;
			r1 = r;
		}
	*first = r0 < 0 ? 0 : r0;
	*count = r1 - r0 + 1;
}

/* Latitudes (lats true) or longitudes of a Gaussian grid: rows/columns (regular_gg) or every point (reduced_gg). */
static ArrayType *
gaussian_coords(const GikGrid *grid, bool lats)
{
	long		nrows = 2 * grid->gauss_n;
	double	   *glats = palloc(sizeof(double) * nrows);
	long		r0,
				nr;
	bool		reduced = strcmp(grid->grid_type, "reduced_gg") == 0;

	if (!isfinite(grid->lat_first) || !isfinite(grid->lat_last) || !isfinite(grid->lon_first))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("the %s grid has no usable geometry", grid->grid_type)));
	gik_gaussian_lats(grid->gauss_n, glats);
	gaussian_rows(grid, glats, &r0, &nr);
	if (!reduced)
	{
		if (grid->ni <= 0 || !(grid->di > 0) || nr != grid->nj)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("the regular_gg grid's rows do not match its Gaussian latitudes"),
							errdetail("N=%ld gives %ld rows from %g to %g; the grid has %ld.",
									  grid->gauss_n, nr, grid->lat_first, grid->lat_last, grid->nj)));
		if (lats)
			return gik_float8_array(glats + r0, (int) nr);
		{
			double	   *lons = palloc(sizeof(double) * grid->ni);
			double		di = grid->di;

			/* GRIB rounds the increment (2.8125 to 2.813): take it from the span or the globe */
			if (fabs(grid->ni * di - 360.0) < di)
				di = 360.0 / grid->ni;
			else if (grid->ni > 1 && isfinite(grid->lon_last) && grid->lon_last > grid->lon_first)
				di = (grid->lon_last - grid->lon_first) / (grid->ni - 1);
			for (long c = 0; c < grid->ni; c++)
				lons[c] = grid->lon_first + c * di;
			return gik_float8_array(lons, (int) grid->ni);
		}
	}
	if (grid->gauss_rows == 0 || nr != nrows)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("coordinates of this reduced Gaussian grid are not available"),
						errdetail("Only global octahedral grids and global grids of at most %d northern rows carry their row lengths (pl).",
								  GIK_GAUSS_PL_MAX)));
	{
		long		total = 0;
		double	   *out;
		long		k = 0;

		for (long r = 0; r < nrows; r++)
			total += gik_reduced_row_points(grid, r);
		if (grid->num_points > 0 && total != grid->num_points)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("the reduced Gaussian grid's rows hold %ld points, not %ld", total, grid->num_points)));
		if (total > (long) (MaxAllocSize / sizeof(double)))
			ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("too many points: %ld", total)));
		out = palloc(sizeof(double) * Max(total, 1));
		for (long r = 0; r < nrows; r++)
		{
			long		pts = gik_reduced_row_points(grid, r);

			for (long c = 0; c < pts; c++)
				out[k++] = lats ? glats[r] : grid->lon_first + 360.0 * (double) c / (double) pts;
		}
		return gik_float8_array(out, (int) total);
	}
}

/*
 * Coordinates of a Gaussian grid (rows or points, without lon or region) or of a projected
 * grid (float8[nj][ni], north-up, after the region); NULL for a regular lat/lon grid.
 */
static ArrayType *
gaussian_or_projected_coords(FunctionCallInfo fcinfo, bool want_lats)
{
	GikGrid		g;
	GikGridPlan plan;
	GikDecoded	as_decoded;
	Datum	   *d;
	int			dims[2];
	int			lbs[2] = {1, 1};
	size_t		k = 0;

	gik_grid_from_desc(PG_GETARG_HEAPTUPLEHEADER(0), &g);
	if (gik_grid_is_gaussian(&g))
	{
		if ((PG_NARGS() > 1 && !PG_ARGISNULL(1) && strcmp(text_to_cstring(PG_GETARG_TEXT_PP(1)), "source") != 0) ||
			(PG_NARGS() > 2 && !PG_ARGISNULL(2)))
			ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							errmsg("a %s grid takes no longitude convention or region", g.grid_type),
							errdetail("Regrid it to a regular grid first.")));
		return gaussian_coords(&g, want_lats);
	}
	if (g.proj.kind == GIK_PROJ_NONE)
		return NULL;
	plan_from_desc(fcinfo, &plan, &as_decoded);
	if ((size_t) plan.out.ni * (size_t) plan.out.nj > MaxAllocSize / sizeof(Datum))
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("the grid is too large for coordinates")));
	d = palloc(sizeof(Datum) * (size_t) plan.out.ni * (size_t) plan.out.nj);
	for (long r = 0; r < plan.out.nj; r++)
	{
		CHECK_FOR_INTERRUPTS();
		for (long c = 0; c < plan.out.ni; c++)
		{
			double		lon,
						lat;

			gik_outgrid_cell_lonlat(&plan.out, r, c, &lon, &lat);
			d[k++] = Float8GetDatum(want_lats ? lat : lon);
		}
	}
	dims[0] = (int) plan.out.nj;
	dims[1] = (int) plan.out.ni;
	return construct_md_array(d, NULL, 2, dims, lbs, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/* Latitudes of the rows (north to south) or longitudes of the columns (west to east) of a planned grid. */
static Datum
grid_axis(FunctionCallInfo fcinfo, bool lats)
{
	GikGridPlan plan;
	GikDecoded	as_decoded;
	long		n;
	double	   *v;
	ArrayType  *coords;

	if (gik_required_null(fcinfo, 1))
		PG_RETURN_NULL();
	if ((coords = gaussian_or_projected_coords(fcinfo, lats)) != NULL)
		PG_RETURN_ARRAYTYPE_P(coords);
	plan_from_desc(fcinfo, &plan, &as_decoded);
	n = lats ? plan.out.nj : plan.out.ni;
	v = palloc(sizeof(double) * Max(n, 1));
	if (lats)
		gik_outgrid_lats(&plan.out, v);
	else
		gik_outgrid_lons(&plan.out, v);
	PG_RETURN_ARRAYTYPE_P(gik_float8_array(v, (int) n));
}

/* gik.grid_lats(grid, lon, region): row latitudes, north to south; gik.grid_lons: column longitudes, west to east. */
GIK_SQL_FORWARD(gik_grid_lats, grid_axis, true);
GIK_SQL_FORWARD(gik_grid_lons, grid_axis, false);

/* gik.grid_wkb(vals real[], grid gik.grid_desc, srid): any north-up grid (or stack of grids) as raster WKB. */
Datum
gik_grid_wkb(PG_FUNCTION_ARGS)
{
	ArrayType  *vals = PG_GETARG_ARRAYTYPE_P(0);
	GikGrid		g;
	GikOutGrid	out;
	int			nbands;
	int			ndim = ARR_NDIM(vals);
	int		   *dims = ARR_DIMS(vals);
	float	   *data;
	int			n;

	if (ARR_ELEMTYPE(vals) != FLOAT4OID)
		ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH), errmsg("grid values must be real[]")));
	gik_grid_from_desc(PG_GETARG_HEAPTUPLEHEADER(1), &g);
	if ((!gik_grid_is_regular_ll(&g) && g.proj.kind == GIK_PROJ_NONE) || g.scanning_mode != 0)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("only north-up regular latitude/longitude and projected grids become rasters"),
						errdetail("The grid is %s with scanning mode %ld.", g.grid_type, g.scanning_mode)));
	if (ndim < 2 || ndim > 3 || dims[ndim - 1] != g.ni || dims[ndim - 2] != g.nj)
		ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
						errmsg("grid values do not match the grid description"),
						errdetail("Expected [%ld][%ld] or [bands][%ld][%ld] values for a %ld x %ld grid.",
								  g.nj, g.ni, g.nj, g.ni, g.ni, g.nj)));
	nbands = ndim == 3 ? dims[0] : 1;
	n = ArrayGetNItems(ndim, dims);
	if (ARR_HASNULL(vals))
	{
		bits8	   *bitmap = ARR_NULLBITMAP(vals);
		float	   *src = (float *) ARR_DATA_PTR(vals);

		data = palloc(sizeof(float) * n);
		for (int i = 0; i < n; i++)
			data[i] = (bitmap[i / 8] & (1 << (i % 8))) ? *src++ : NAN;
	}
	else
		data = (float *) ARR_DATA_PTR(vals);
	memset(&out, 0, sizeof(out));
	if (g.proj.kind != GIK_PROJ_NONE)
	{
		GikGridPlan plan;
		char		errbuf[256];

		if (!gik_grid_plan(&g, GIK_LON_SOURCE, NULL, gik_core_alloc, &plan, errbuf, sizeof(errbuf)))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("cannot lay out this grid as asked"), errdetail("%s", errbuf)));
		if (PG_GETARG_INT32(2) == 4326)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("a %s grid's raster is in metres, not in SRID 4326", g.grid_type),
							errhint("Pass srid => gik.proj_srid((grid).proj) (pg_gik_postgis).")));
		PG_RETURN_BYTEA_P(gik_raster_bytea(&plan.out, data, nbands, PG_GETARG_INT32(2)));
	}
	out.ni = g.ni;
	out.nj = g.nj;
	out.lat_first = g.lat_first;
	out.lon_first = g.lon_first;
	out.lat_last = g.lat_last;
	out.lon_last = g.lon_last;
	out.di = g.di;
	out.dj = g.dj;
	PG_RETURN_BYTEA_P(gik_raster_bytea(&out, data, nbands, PG_GETARG_INT32(2)));
}

/* A copy of a real[] argument to change in place (NULL elements stay NULL). */
static ArrayType *
grid_copy_arg(FunctionCallInfo fcinfo, int argno, size_t *nvalues)
{
	ArrayType  *in = PG_GETARG_ARRAYTYPE_P(argno);
	ArrayType  *out;
	int			nitems = ArrayGetNItems(ARR_NDIM(in), ARR_DIMS(in));
	size_t		n = (size_t) nitems;

	if (ARR_ELEMTYPE(in) != FLOAT4OID)
		ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
						errmsg("grid arithmetic expects a real[] grid"),
						errdetail("The grid has element type %s.", format_type_be(ARR_ELEMTYPE(in)))));
	out = (ArrayType *) palloc(VARSIZE(in));
	memcpy(out, in, VARSIZE(in));
	if (ARR_HASNULL(in))
	{
		bits8	   *bitmap = ARR_NULLBITMAP(in);
		int			i;

		n = 0;
		for (i = 0; i < nitems; i++)
			n += (bitmap[i >> 3] >> (i & 7)) & 1;
	}
	*nvalues = n;				/* non-NULL values are stored contiguously */
	return out;
}

/* grid op scalar for the SQL functions and operators. */
static Datum
grid_scalar(FunctionCallInfo fcinfo, GikGridOp op)
{
	size_t		n;
	ArrayType  *a = grid_copy_arg(fcinfo, 0, &n);
	float	   *v = (float *) ARR_DATA_PTR(a);

	gik_grid_scalar_op(op, v, n, PG_GETARG_FLOAT8(1), v);
	PG_RETURN_ARRAYTYPE_P(a);
}

/* gik.grid_add, grid_sub, grid_mul (real[], float8) and the real[] + - * float8 operators. */
GIK_SQL_FORWARD(gik_grid_add, grid_scalar, GIK_GRID_ADD);
GIK_SQL_FORWARD(gik_grid_sub, grid_scalar, GIK_GRID_SUB);
GIK_SQL_FORWARD(gik_grid_mul, grid_scalar, GIK_GRID_MUL);

/* gik.grid_clip(real[], lo, hi): limit values to [lo, hi]; a NULL bound is no bound. */
Datum
gik_grid_clip(PG_FUNCTION_ARGS)
{
	double		lo = PG_ARGISNULL(1) ? -INFINITY : PG_GETARG_FLOAT8(1);
	double		hi = PG_ARGISNULL(2) ? INFINITY : PG_GETARG_FLOAT8(2);
	ArrayType  *a;
	size_t		n;
	float	   *v;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (isnan(lo) || isnan(hi))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("bounds of gik.grid_clip must not be NaN"),
						errhint("Pass NULL for no bound.")));
	if (lo > hi)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("lower bound of gik.grid_clip is greater than the upper bound: %g > %g", lo, hi),
						errdetail("The lower bound must not exceed the upper bound.")));
	a = grid_copy_arg(fcinfo, 0, &n);
	v = (float *) ARR_DATA_PTR(a);
	gik_grid_clip_range(v, n, lo, hi, v);
	PG_RETURN_ARRAYTYPE_P(a);
}

/* gik.grid_band(grids real[], band int): band n (1-based) of a [bands][nj][ni] stack as a 2-D [nj][ni] grid. */
Datum
gik_grid_band(PG_FUNCTION_ARGS)
{
	ArrayType  *in = PG_GETARG_ARRAYTYPE_P(0);
	int			band = PG_GETARG_INT32(1);
	int		   *dims = ARR_DIMS(in);
	int			lbs[2] = {1, 1};
	int			ncells;
	int			first;
	int			nvalues;
	int			skipped = 0;
	bits8	   *bitmap = ARR_NULLBITMAP(in);
	ArrayType  *out;

	if (ARR_ELEMTYPE(in) != FLOAT4OID || ARR_NDIM(in) != 3)
		ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
						errmsg("gik.grid_band expects a 3-dimensional real[] stack of grids"),
						errdetail("The array has %d dimensions.", ARR_NDIM(in))));
	if (band < 1 || band > dims[0])
		ereport(ERROR, (errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
						errmsg("band %d is outside the stack of %d grids", band, dims[0])));
	ncells = dims[1] * dims[2];
	first = (band - 1) * ncells;
	nvalues = ncells;
	if (bitmap)
	{
		nvalues = 0;
		for (int i = 0; i < first + ncells; i++)
		{
			bool		present = (bitmap[i >> 3] >> (i & 7)) & 1;

			if (i < first)
				skipped += present;
			else
				nvalues += present;
		}
	}
	out = gik_array_new(FLOAT4OID, 2, dims + 1, lbs, bitmap != NULL, (size_t) nvalues);
	if (bitmap)
		array_bitmap_copy(ARR_NULLBITMAP(out), 0, bitmap, first, ncells);
	memcpy(ARR_DATA_PTR(out), (float *) ARR_DATA_PTR(in) + (bitmap ? skipped : first), sizeof(float) * nvalues);
	PG_RETURN_ARRAYTYPE_P(out);
}
