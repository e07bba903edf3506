/*
 * Grid planner: gik_grid_plan on a fuzzed GikGrid, longitude convention and box, then
 * gik_grid_apply on values 0, 1, 2, ... (each value names its own index) of a fuzzed
 * length. Invariants: every col_src/row_src lies inside the source grid; every output
 * cell holds the value its plan names (or NaN past nvalues or at the missing value); the
 * cells lie inside the box; lon_first lies in the convention's range. The rest of the
 * input is given to gik_lon_convention_parse.
 */
#include "core/grid.h"
#include "fuzz_util.h"

#include <math.h>

#define TOL 1e-6				/* degrees, for the geometric checks on moderate numbers */
#define MAX_CELLS ((size_t) 1 << 17)

static const long extreme[] = {-1, 0, 1, 2, INT32_MAX, (long) INT32_MAX + 1, 1L << 40, INT64_MAX, INT64_MIN};

/* A grid dimension: mostly 0..65535, sometimes an extreme value. */
static long
fz_dim(FzReader *r)
{
	uint8_t		sel = (uint8_t) fz_uint(r, 1);
	long		v = (long) fz_uint(r, 2);

	return sel < 240 ? v : extreme[sel % (sizeof(extreme) / sizeof(extreme[0]))];
}

/* True when lon (degrees) lies on the arc from west eastwards over width degrees. */
static int
on_arc(double lon, double west, double width)
{
	double		d = fmod(lon - west + TOL, 360.0);

	if (d < 0)
		d += 360.0;
	return d <= width + 2 * TOL;
}

/* Geometric checks of a plan, for inputs whose numbers are moderate. */
static void
check_geometry(const GikGridPlan *plan, GikLonConvention conv, const GikBox *box)
{
	const GikOutGrid *o = &plan->out;

	if (conv == GIK_LON_180)
		FZ_CHECK(o->lon_first >= -180 - TOL && o->lon_first < 180 + TOL);
	if (conv == GIK_LON_360)
		FZ_CHECK(o->lon_first >= -TOL && o->lon_first < 360 + TOL);
	if (box == NULL)
		return;
	for (long r = 0; r < o->nj; r++)
	{
		double		lat = o->lat_first - r * o->dj;

		FZ_CHECK(lat >= box->lat_min - TOL && lat <= box->lat_max + TOL);
	}
	for (long c = 0; c < o->ni; c++)
	{
		double		w = box->lon_max - box->lon_min;

		if (w < -1e-9)
			w = fmod(fmod(w, 360.0) + 360.0, 360.0);
		FZ_CHECK(on_arc(o->lon_first + c * o->di, box->lon_min, fmin(w, 360.0)));
	}
}

/* Apply the plan to values 0..nvalues-1 and check each output cell. */
static void
check_apply(const GikGridPlan *plan, size_t nvalues, double missing)
{
	size_t		n_out = (size_t) plan->out.ni * (size_t) plan->out.nj;
	double	   *values = malloc(sizeof(double) * (nvalues ? nvalues : 1));
	float	   *out = malloc(sizeof(float) * (n_out ? n_out : 1));
	size_t		col_stride = plan->j_consecutive ? (size_t) plan->src_nj : 1;
	size_t		row_stride = plan->j_consecutive ? 1 : (size_t) plan->src_ni;

	for (size_t i = 0; i < nvalues; i++)
		values[i] = (double) i;
	gik_grid_apply(plan, values, nvalues, missing, out);
	for (long r = 0; r < plan->out.nj; r++)
		for (long c = 0; c < plan->out.ni; c++)
		{
			size_t		idx = (size_t) plan->row_src[r] * row_stride + (size_t) plan->col_src[c] * col_stride;
			float		v = out[(size_t) r * (size_t) plan->out.ni + (size_t) c];

			if (idx >= nvalues || (double) idx == missing)
				FZ_CHECK(isnan(v));
			else
				FZ_CHECK(v == (float) idx);
		}
	free(values);
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FzReader	r = {data, size};
	GikGrid		g = {0};
	GikBox		box;
	GikGridPlan plan;
	GikLonConvention conv;
	char		errbuf[256];
	uint8_t		flags = (uint8_t) fz_uint(&r, 1);
	uint32_t	nsel;
	int			moderate;

	strcpy(g.grid_type, (flags & 0xc0) == 0xc0 ? "lambert" : "regular_ll");
	g.ni = fz_dim(&r);
	g.nj = fz_dim(&r);
	g.lat_first = fz_double(&r, 0.125);
	g.lon_first = fz_double(&r, 0.125);
	g.lat_last = fz_double(&r, 0.125);
	g.lon_last = fz_double(&r, 0.125);
	g.di = fz_double(&r, 1.0 / 64);
	g.dj = fz_double(&r, 1.0 / 64);
	g.i_scans_negatively = flags & 1;
	g.j_scans_positively = (flags >> 1) & 1;
	g.j_points_consecutive = (flags >> 2) & 1;
	g.scanning_mode = (flags & 7) << 5;
	if (__builtin_mul_overflow(g.ni, g.nj, &g.num_points))
		g.num_points = -1;
	conv = (GikLonConvention) (((flags >> 3) & 3) % 3);
	box.lon_min = fz_double(&r, 0.125);
	box.lat_min = fz_double(&r, 0.125);
	box.lon_max = fz_double(&r, 0.125);
	box.lat_max = fz_double(&r, 0.125);
	nsel = (uint32_t) fz_uint(&r, 4);
	moderate = fabs(g.lat_first) < 1e4 && fabs(g.lat_last) < 1e4 && fabs(g.lon_first) < 1e4 &&
		fabs(g.lon_last) < 1e4 && g.di > 1e-3 && g.dj > 1e-3 && g.di < 1e3 && g.dj < 1e3 &&
		fabs(box.lon_min) < 1e4 && fabs(box.lon_max) < 1e4 && fabs(box.lat_min) < 1e4 && fabs(box.lat_max) < 1e4;

	if (gik_grid_plan(&g, conv, (flags & 0x20) ? &box : NULL, fz_alloc, &plan, errbuf, sizeof(errbuf)))
	{
		FZ_CHECK(plan.out.ni >= 1 && plan.out.nj >= 1 && plan.out.ni <= g.ni && plan.out.nj <= g.nj);
		FZ_CHECK(plan.out.di > 0 && plan.out.dj > 0 && plan.src_ni == g.ni && plan.src_nj == g.nj);
		for (long c = 0; c < plan.out.ni; c++)
			FZ_CHECK(plan.col_src[c] >= 0 && plan.col_src[c] < g.ni);
		for (long k = 0; k < plan.out.nj; k++)
			FZ_CHECK(plan.row_src[k] >= 0 && plan.row_src[k] < g.nj);
		if (moderate)
			check_geometry(&plan, conv, (flags & 0x20) ? &box : NULL);
		if ((size_t) g.ni * (size_t) g.nj <= MAX_CELLS &&
			(size_t) plan.out.ni * (size_t) plan.out.nj <= MAX_CELLS)
		{
			size_t		full = (size_t) g.ni * (size_t) g.nj;
			size_t		nvalues = (flags & 0x10) ? nsel % (full + 1) : full;
			double		missing = (nsel & 1) ? NAN : (double) (nsel % (full + 1));
			double	   *lats = malloc(sizeof(double) * (size_t) plan.out.nj);
			double	   *lons = malloc(sizeof(double) * (size_t) plan.out.ni);

			check_apply(&plan, nvalues, missing);
			gik_outgrid_lats(&plan.out, lats);
			gik_outgrid_lons(&plan.out, lons);
			free(lats);
			free(lons);
		}
	}
	else
		FZ_CHECK(strlen(errbuf) > 0 && strlen(errbuf) < sizeof(errbuf));
	{
		char	   *name = fz_field(&r, 0);

		gik_lon_convention_parse(name, &conv);
	}
	fz_free_all();
	return 0;
}
