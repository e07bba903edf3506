/* SQL glue for grids beyond regular lat/lon: projection text, Gaussian coordinates, regridding. */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "core/proj.h"
#include "regrid_sql.h"

void
gik_grid_proj_datum(const GikGrid *grid, Datum *value, bool *isnull)
{
	char		text[GIK_PROJ_STRING_MAX];

	*isnull = !gik_proj_string(grid, text, sizeof(text));
	if (!*isnull)
		*value = CStringGetTextDatum(text);
}

void
gik_grid_proj_from_text(const char *text, GikGrid *grid)
{
	char		errbuf[256];

	if (!gik_proj_parse(text, grid, errbuf, sizeof(errbuf)))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("grid description has an invalid proj"),
						errdetail("%s", errbuf)));
}

bool
gik_grid_is_gaussian(const GikGrid *grid)
{
	return grid->gauss_n > 0 &&
		(strcmp(grid->grid_type, "regular_gg") == 0 || strcmp(grid->grid_type, "reduced_gg") == 0);
}

/* float8[] of n doubles. */
static ArrayType *
float8_array(const double *v, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = Float8GetDatum(v[i]);
	return construct_array(d, n, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
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

ArrayType *
gik_gaussian_coords(const GikGrid *grid, bool lats)
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
			return float8_array(glats + r0, (int) nr);
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
			return float8_array(lons, (int) grid->ni);
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
		return float8_array(out, (int) total);
	}
}
