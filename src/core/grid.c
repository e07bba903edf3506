/* Output grids for regular lat/lon messages: north-up rows, west-to-east columns, regions. */
#include "core/grid.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Degrees: box edges and convention bounds include what lies this close to them. */
#define DEG_TOL 1e-9

/* True when the grid is projected and has the numbers a plan needs. */
bool
gik_grid_is_projected(const GikGrid *grid)
{
	return grid->proj.kind != GIK_PROJ_NONE && grid->ni > 0 && grid->nj > 0 &&
		isfinite(grid->di) && isfinite(grid->dj) && grid->di > 0 && grid->dj > 0 &&
		isfinite(grid->lat_first) && isfinite(grid->lon_first);
}

/* True when the grid is a regular latitude/longitude grid. */
bool
gik_grid_is_regular_ll(const GikGrid *grid)
{
	return strcmp(grid->grid_type, "regular_ll") == 0 && grid->ni > 0 && grid->nj > 0 &&
		!isnan(grid->di) && !isnan(grid->dj);
}

/*
 * Degrees: an increment may differ this much from the one its end points imply
 * (GRIB1 rounds increments to millidegrees, GRIB2 to microdegrees).
 */
#define INC_TOL 5e-4

/* Fraction of a cell: n * di this close to 360 makes a grid global. */
#define GLOBAL_TOL 1e-3

/* Index limit: cell counts computed from doubles are clamped to it before conversion. */
#define INDEX_LIMIT 1e15

/*
 * The source grid in canonical order: column k (west to east) lies at west + k*di,
 * row k (north to south) at north - k*dj.
 */
typedef struct CanonGrid
{
	long		ni;
	long		nj;
	double		west;			/* westernmost column, as the message means it */
	double		north;			/* northernmost row */
	double		di;
	double		dj;
	long		period;			/* columns per 360 degrees for a global grid, else 0 */
	bool		i_neg;			/* canonical column k is message column ni-1-k */
	bool		j_pos;			/* canonical row k is message row nj-1-k */
} CanonGrid;

/* Result of selecting the cells of a box. */
typedef enum Selection
{
	SEL_OK,
	SEL_EMPTY,
	SEL_SPLIT					/* two separate runs of columns of a non-global grid */
} Selection;

/* lon shifted by a multiple of 360 into [lower, lower + 360), up to DEG_TOL. */
static double
wrap_from(double lon, double lower)
{
	return lon - 360.0 * floor((lon - lower + DEG_TOL) / 360.0);
}

/* Smallest cell index whose offset k*d is at least deg (minus DEG_TOL). */
static long
cells_ceil(double deg, double d)
{
	double		k = ceil((deg - DEG_TOL) / d);

	return (long) fmax(-INDEX_LIMIT, fmin(INDEX_LIMIT, k));
}

/* Largest cell index whose offset k*d is at most deg (plus DEG_TOL). */
static long
cells_floor(double deg, double d)
{
	double		k = floor((deg + DEG_TOL) / d);

	return (long) fmax(-INDEX_LIMIT, fmin(INDEX_LIMIT, k));
}

/* The increment that the span between n points implies, when it is positive and agrees with the stated one. */
static double
refine_increment(double stated, double span, long n)
{
	double		implied;

	if (n < 2)
		return stated;
	implied = span / (double) (n - 1);
	return implied > 0 && fabs(implied - stated) <= INC_TOL ? implied : stated;
}

/* Columns per 360 degrees when the grid wraps around the globe (a repeated seam column allowed), else 0. */
static long
global_period(long ni, double di)
{
	if (fabs(ni * di - 360.0) <= GLOBAL_TOL * di)
		return ni;
	if (ni > 1 && fabs((ni - 1) * di - 360.0) <= GLOBAL_TOL * di)
		return ni - 1;
	return 0;
}

/* Check a source grid and describe it in canonical order; false with a sentence in errbuf. */
static bool
canon_from_source(const GikGrid *src, CanonGrid *c, char *errbuf, size_t errlen)
{
	double		west_end;
	double		east_end;
	double		south;
	double		span;

	if (strcmp(src->grid_type, "regular_ll") != 0)
	{
		snprintf(errbuf, errlen,
				 "Grid type %s is not supported for regions, longitude conventions or rasters; "
				 "decode it without them to get its values in scanning order.",
				 src->grid_type[0] ? src->grid_type : "unknown");
		return false;
	}
	if (!gik_grid_is_regular_ll(src) || !(src->di > 0) || !(src->dj > 0) ||
		!isfinite(src->di) || !isfinite(src->dj) ||
		src->ni > INT32_MAX || src->nj > INT32_MAX ||
		!isfinite(src->lon_first) || !isfinite(src->lon_last) ||
		!isfinite(src->lat_first) || !isfinite(src->lat_last))
	{
		snprintf(errbuf, errlen,
				 "The regular_ll grid has no usable geometry (Ni=%ld, Nj=%ld, increments %g and %g degrees).",
				 src->ni, src->nj, src->di, src->dj);
		return false;
	}

	c->ni = src->ni;
	c->nj = src->nj;
	c->i_neg = src->i_scans_negatively;
	c->j_pos = src->j_scans_positively;

	/* columns: the message's west end may be written in the other convention (ECMWF: 180 for -180) */
	west_end = c->i_neg ? src->lon_last : src->lon_first;
	east_end = c->i_neg ? src->lon_first : src->lon_last;
	span = east_end - west_end;
	if (span < -DEG_TOL)
	{
		west_end -= 360.0;
		span += 360.0;
	}
	c->di = refine_increment(src->di, span, c->ni);
	c->period = global_period(c->ni, c->di);
	if (c->period > 0)
		c->di = 360.0 / (double) c->period;
	c->west = west_end;

	/* rows */
	c->north = c->j_pos ? src->lat_last : src->lat_first;
	south = c->j_pos ? src->lat_first : src->lat_last;
	if (c->north < south - DEG_TOL)
	{
		snprintf(errbuf, errlen,
				 "The grid's latitudes run from %g to %g, which contradicts its scanning mode %ld.",
				 src->lat_first, src->lat_last, src->scanning_mode);
		return false;
	}
	c->dj = refine_increment(src->dj, c->north - south, c->nj);
	return true;
}

/* Eastward extent of a box's longitudes, 0..360: lon_min > lon_max crosses the 180th meridian. */
static double
box_width(const GikBox *box)
{
	double		w = box->lon_max - box->lon_min;

	if (w < -DEG_TOL)
		w = wrap_from(w, 0.0);
	return fmin(fmax(w, 0.0), 360.0);
}

/* Check a box's numbers; false with a sentence naming it. */
static bool
box_valid(const GikBox *box, char *errbuf, size_t errlen)
{
	const char *problem = NULL;

	if (!isfinite(box->lon_min) || !isfinite(box->lon_max) ||
		!isfinite(box->lat_min) || !isfinite(box->lat_max))
		problem = "every bound must be a finite number of degrees";
	else if (box->lat_min > box->lat_max)
		problem = "its southern latitude is north of its northern one";
	if (problem == NULL)
		return true;
	snprintf(errbuf, errlen, "Box lon %g..%g, lat %g..%g is not valid: %s.",
			 box->lon_min, box->lon_max, box->lat_min, box->lat_max, problem);
	return false;
}

/* Rows (canonical, north to south) whose centres lie in the box's latitudes; false when none. */
static bool
select_rows(const CanonGrid *c, const GikBox *box, long *first, long *count)
{
	long		lo = 0;
	long		hi = c->nj - 1;

	if (box != NULL)
	{
		long		box_lo = cells_ceil(c->north - box->lat_max, c->dj);
		long		box_hi = cells_floor(c->north - box->lat_min, c->dj);

		lo = box_lo > lo ? box_lo : lo;
		hi = box_hi < hi ? box_hi : hi;
	}
	*first = lo;
	*count = hi - lo + 1;
	return *count > 0;
}

/*
 * Columns (canonical) whose centres lie on the arc from west_edge eastwards over width
 * degrees: one run west to east, wrapping around a global grid.
 */
static Selection
select_cols(const CanonGrid *c, double west_edge, double width, long *first, long *count)
{
	double		start = wrap_from(west_edge, c->west) - c->west;	/* in [-DEG_TOL, 360) */
	long		lo = cells_ceil(start, c->di);
	long		hi = cells_floor(start + width, c->di);
	long		wrap_hi;

	if (c->period > 0)
	{
		*first = (lo % c->period + c->period) % c->period;
		*count = hi - lo + 1 < c->period ? hi - lo + 1 : c->period;
		return *count > 0 ? SEL_OK : SEL_EMPTY;
	}

	/*
	 * a non-global grid: the arc may also reach its western columns after passing 360.
	 * DEG_TOL spans several columns when di is tiny: keep lo on the grid, as hi.
	 */
	lo = lo > 0 ? lo : 0;
	hi = hi < c->ni - 1 ? hi : c->ni - 1;
	wrap_hi = cells_floor(start + width - 360.0, c->di);
	wrap_hi = wrap_hi < c->ni - 1 ? wrap_hi : c->ni - 1;
	if (wrap_hi >= 0 && lo <= hi && wrap_hi + 1 < lo)
		return SEL_SPLIT;
	if (wrap_hi >= 0)
	{
		*first = 0;
		*count = (lo <= hi && hi > wrap_hi ? hi : wrap_hi) + 1;
	}
	else
	{
		*first = lo;
		*count = hi - lo + 1;
	}
	return *count > 0 ? SEL_OK : SEL_EMPTY;
}

/* Lower bound of a convention's longitudes; the source's own start from its westernmost column. */
static double
convention_lower(const CanonGrid *c, GikLonConvention conv)
{
	switch (conv)
	{
		case GIK_LON_180:
			return -180.0;
		case GIK_LON_360:
			return 0.0;
		case GIK_LON_SOURCE:
			break;
	}
	return c->west;
}

/* Write the "box selects nothing usable" sentence for a box and a grid. */
static void
box_error(const CanonGrid *c, const GikBox *box, Selection why, char *errbuf, size_t errlen)
{
	snprintf(errbuf, errlen,
			 why == SEL_SPLIT ?
			 "Box lon %g..%g, lat %g..%g covers two separate parts of the grid (lon %g..%g, lat %g..%g); split it into two boxes." :
			 "Box lon %g..%g, lat %g..%g contains no grid cell centre; the grid covers lon %g..%g, lat %g..%g.",
			 box->lon_min, box->lon_max, box->lat_min, box->lat_max,
			 c->west, c->west + (c->ni - 1) * c->di,
			 c->north - (c->nj - 1) * c->dj, c->north);
}

/* True when lon/lat lies in the box (edges included, longitudes in either convention). */
static bool
box_contains(const GikBox *box, double lon, double lat)
{
	if (lat < box->lat_min - DEG_TOL || lat > box->lat_max + DEG_TOL)
		return false;
	return wrap_from(lon, box->lon_min) - box->lon_min <= box_width(box) + DEG_TOL;
}

/* A longitude in a convention (the source convention keeps [-180, 180)). */
static double
lon_in(double lon, GikLonConvention conv)
{
	return wrap_from(lon, conv == GIK_LON_360 ? 0.0 : -180.0);
}

bool
gik_outgrid_projected(const GikOutGrid *grid)
{
	return grid->proj.kind != GIK_PROJ_NONE;
}

void
gik_outgrid_cell_lonlat(const GikOutGrid *grid, long row, long col, double *lon, double *lat)
{
	gik_proj_inverse(&grid->proj, grid->x_first + col * grid->di, grid->y_first - row * grid->dj, lon, lat);
	*lon = lon_in(*lon, grid->lon);
}

/* Plan a projected message: north-up in its projection, a box as the rectangle around its cells. */
static bool
plan_projected(const GikGrid *src, GikLonConvention conv, const GikBox *box,
			   GikAllocFn alloc, GikGridPlan *plan, char *errbuf, size_t errlen)
{
	GikOutGrid *o = &plan->out;
	double		x_first,
				y_first,
				x_west,
				y_north;
	long		row0 = 0,
				row1 = src->nj - 1,
				col0 = 0,
				col1 = src->ni - 1;
	long		k;

	if (!gik_grid_is_projected(src) || src->ni > INT32_MAX || src->nj > INT32_MAX)
	{
		snprintf(errbuf, errlen,
				 "The %s grid has no usable geometry (Nx=%ld, Ny=%ld, spacing %g and %g metres, first point %g, %g).",
				 src->grid_type, src->ni, src->nj, src->di, src->dj, src->lat_first, src->lon_first);
		return false;
	}
	if (!gik_proj_valid(&src->proj, errbuf, errlen))
		return false;
	if (box != NULL && !box_valid(box, errbuf, errlen))
		return false;
	gik_proj_forward(&src->proj, src->lon_first, src->lat_first, &x_first, &y_first);
	x_west = src->i_scans_negatively ? x_first - (src->ni - 1) * src->di : x_first;
	y_north = src->j_scans_positively ? y_first + (src->nj - 1) * src->dj : y_first;

	memset(o, 0, sizeof(*o));
	o->proj = src->proj;
	o->di = src->di;
	o->dj = src->dj;
	o->lon = conv;
	o->x_first = x_west;
	o->y_first = y_north;
	if (box != NULL)
	{
		/* the rectangle of rows and columns around every cell whose centre is inside */
		o->ni = src->ni;
		o->nj = src->nj;
		row0 = src->nj;
		row1 = -1;
		col0 = src->ni;
		col1 = -1;
		for (long r = 0; r < src->nj; r++)
			for (long c = 0; c < src->ni; c++)
			{
				double		lon,
							lat;

				gik_outgrid_cell_lonlat(o, r, c, &lon, &lat);
				if (!box_contains(box, lon, lat))
					continue;
				row0 = r < row0 ? r : row0;
				row1 = r > row1 ? r : row1;
				col0 = c < col0 ? c : col0;
				col1 = c > col1 ? c : col1;
			}
		if (row1 < 0)
		{
			snprintf(errbuf, errlen,
					 "Box lon %g..%g, lat %g..%g contains no grid cell centre of the %ld x %ld %s grid.",
					 box->lon_min, box->lon_max, box->lat_min, box->lat_max, src->ni, src->nj, src->grid_type);
			return false;
		}
		plan->has_mask = true;
		plan->mask = *box;
	}
	o->ni = col1 - col0 + 1;
	o->nj = row1 - row0 + 1;
	o->x_first = x_west + col0 * o->di;
	o->y_first = y_north - row0 * o->dj;
	gik_outgrid_cell_lonlat(o, 0, 0, &o->lon_first, &o->lat_first);
	gik_outgrid_cell_lonlat(o, o->nj - 1, o->ni - 1, &o->lon_last, &o->lat_last);

	plan->src_ni = src->ni;
	plan->src_nj = src->nj;
	plan->j_consecutive = src->j_points_consecutive;
	plan->alternate_rows = src->alternate_rows;
	plan->col_src = alloc(sizeof(int32_t) * (size_t) o->ni);
	plan->row_src = alloc(sizeof(int32_t) * (size_t) o->nj);
	if (plan->col_src == NULL || plan->row_src == NULL)
	{
		snprintf(errbuf, errlen, "Out of memory for a %ld x %ld grid plan.", o->ni, o->nj);
		return false;
	}
	for (k = 0; k < o->ni; k++)
		plan->col_src[k] = (int32_t) (src->i_scans_negatively ? src->ni - 1 - (col0 + k) : col0 + k);
	for (k = 0; k < o->nj; k++)
		plan->row_src[k] = (int32_t) (src->j_scans_positively ? src->nj - 1 - (row0 + k) : row0 + k);
	return true;
}

/* Plan the output grid of a regular lat/lon message; see grid.h. */
bool
gik_grid_plan(const GikGrid *src, GikLonConvention conv, const GikBox *box,
			  GikAllocFn alloc, GikGridPlan *plan, char *errbuf, size_t errlen)
{
	CanonGrid	c;
	double		lower;
	long		row0;
	long		nrows;
	long		col0;
	long		ncols;
	Selection	sel;
	long		k;

	memset(plan, 0, sizeof(*plan));
	if (src->proj.kind != GIK_PROJ_NONE)
		return plan_projected(src, conv, box, alloc, plan, errbuf, errlen);
	if (!canon_from_source(src, &c, errbuf, errlen))
		return false;
	if (box != NULL && !box_valid(box, errbuf, errlen))
		return false;

	/* without a box, take the whole circle from the convention's lower bound */
	lower = convention_lower(&c, conv);
	sel = select_cols(&c, box ? box->lon_min : lower, box ? box_width(box) : 360.0, &col0, &ncols);
	if (sel == SEL_OK && !select_rows(&c, box, &row0, &nrows))
		sel = SEL_EMPTY;
	if (sel != SEL_OK && box == NULL)	/* only rounding of absurd coordinates gets here */
	{
		snprintf(errbuf, errlen, "The regular_ll grid has no usable geometry (longitudes %g..%g, increment %g degrees).",
				 src->lon_first, src->lon_last, src->di);
		return false;
	}
	if (sel != SEL_OK)
	{
		box_error(&c, box, sel, errbuf, errlen);
		return false;
	}

	plan->src_ni = src->ni;
	plan->src_nj = src->nj;
	plan->j_consecutive = src->j_points_consecutive;
	plan->alternate_rows = src->alternate_rows;
	plan->col_src = alloc(sizeof(int32_t) * (size_t) ncols);
	plan->row_src = alloc(sizeof(int32_t) * (size_t) nrows);
	if (plan->col_src == NULL || plan->row_src == NULL)
	{
		snprintf(errbuf, errlen, "Out of memory for a %ld x %ld grid plan.", ncols, nrows);
		return false;
	}
	for (k = 0; k < ncols; k++)
	{
		long		col = c.period > 0 ? (col0 + k) % c.period : col0 + k;

		plan->col_src[k] = (int32_t) (c.i_neg ? c.ni - 1 - col : col);
	}
	for (k = 0; k < nrows; k++)
	{
		long		row = row0 + k;

		plan->row_src[k] = (int32_t) (c.j_pos ? c.nj - 1 - row : row);
	}

	plan->out.ni = ncols;
	plan->out.nj = nrows;
	plan->out.di = c.di;
	plan->out.dj = c.dj;
	plan->out.lon_first = wrap_from(c.west + col0 * c.di, lower);
	plan->out.lon_last = plan->out.lon_first + (ncols - 1) * c.di;
	plan->out.lat_first = c.north - row0 * c.dj;
	plan->out.lat_last = plan->out.lat_first - (nrows - 1) * c.dj;
	plan->out.global_lon = c.period > 0;
	return true;
}

/* Fill the north-up output from values in scanning order; see grid.h. */
void
gik_grid_apply(const GikGridPlan *plan, const double *values, size_t nvalues,
			   double missing_value, float *out)
{
	size_t		col_stride = plan->j_consecutive ? (size_t) plan->src_nj : 1;
	size_t		row_stride = plan->j_consecutive ? 1 : (size_t) plan->src_ni;
	long		ni = plan->out.ni;
	long		r;
	long		c;

	/* runs of output columns that read consecutive source columns (rows stored along i only) */
	struct
	{
		long		dst;
		long		src;
		long		len;
	}			runs[4];
	int			nruns = 0;
	bool		missing_is_nan = isnan(missing_value);	/* NaN never compares equal: plain copy */

	for (c = 0; !plan->j_consecutive && !plan->alternate_rows && c < ni;)
	{
		long		len = 1;

		while (c + len < ni && plan->col_src[c + len] == plan->col_src[c] + len)
			len++;
		if (nruns == (int) (sizeof(runs) / sizeof(runs[0])))
		{
			nruns = 0;			/* unusual column order: take the general path */
			break;
		}
		runs[nruns].dst = c;
		runs[nruns].src = plan->col_src[c];
		runs[nruns].len = len;
		nruns++;
		c += len;
	}

	for (r = 0; r < plan->out.nj; r++)
	{
		size_t		row_base = (size_t) plan->row_src[r] * row_stride;
		float	   *dst = out + (size_t) r * (size_t) ni;

		/*
		 * Rows wholly present and stored along i (the usual case): convert runs of consecutive
		 * source columns with a straight loop; a longitude roll makes two runs.
		 */
		if (nruns > 0 && row_base + (size_t) plan->src_ni <= nvalues)
		{
			for (int k = 0; k < nruns; k++)
			{
				const double *src = values + row_base + (size_t) runs[k].src;
				float	   *d = dst + runs[k].dst;
				long		len = runs[k].len;

				if (missing_is_nan)
					for (long i = 0; i < len; i++)
						d[i] = (float) src[i];
				else
					for (long i = 0; i < len; i++)
						d[i] = src[i] == missing_value ? NAN : (float) src[i];
			}
			continue;
		}
		for (c = 0; c < ni; c++)
		{
			long		col = plan->col_src[c];
			size_t		idx;
			double		v;

			/* boustrophedon: odd rows of the message (rows stored along i) run backwards */
			if (plan->alternate_rows && (plan->row_src[r] & 1))
				col = plan->src_ni - 1 - col;
			idx = row_base + (size_t) col * col_stride;
			v = idx < nvalues ? values[idx] : missing_value;
			dst[c] = v == missing_value ? NAN : (float) v;
		}
	}
	if (plan->has_mask)
		for (r = 0; r < plan->out.nj; r++)
			for (c = 0; c < ni; c++)
			{
				double		lon,
							lat;

				gik_outgrid_cell_lonlat(&plan->out, r, c, &lon, &lat);
				if (!box_contains(&plan->mask, lon, lat))
					out[(size_t) r * (size_t) ni + c] = NAN;
			}
}

/* Latitudes of the rows, north to south. */
void
gik_outgrid_lats(const GikOutGrid *grid, double *lats)
{
	long		r;

	for (r = 0; r < grid->nj; r++)
		lats[r] = grid->lat_first - r * grid->dj;
}

/* Longitudes of the columns, west to east, continuous across 180 or 360. */
void
gik_outgrid_lons(const GikOutGrid *grid, double *lons)
{
	long		c;

	for (c = 0; c < grid->ni; c++)
		lons[c] = grid->lon_first + c * grid->di;
}

/* Parse a longitude convention name, ignoring case and surrounding spaces. */
bool
gik_lon_convention_parse(const char *s, GikLonConvention *conv)
{
	static const struct
	{
		const char *name;
		GikLonConvention conv;
	}			names[] = {
		{"source", GIK_LON_SOURCE},
		{"-180..180", GIK_LON_180}, {"180", GIK_LON_180}, {"-180", GIK_LON_180},
		{"0..360", GIK_LON_360}, {"360", GIK_LON_360}, {"0", GIK_LON_360},
	};
	size_t		len;
	size_t		i;

	if (s == NULL)
		return false;
	while (*s == ' ' || *s == '\t')
		s++;
	len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
	{
		if (strlen(names[i].name) == len && strncasecmp(s, names[i].name, len) == 0)
		{
			*conv = names[i].conv;
			return true;
		}
	}
	return false;
}
