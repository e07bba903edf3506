/* Output grids: north-up orientation, longitude conventions, regions and coordinates. Pure C. */
#ifndef GIK_CORE_GRID_H
#define GIK_CORE_GRID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"
#include "core/grib_meta.h"
#include "core/proj.h"

/* Longitude convention of output columns. */
typedef enum GikLonConvention
{
	GIK_LON_SOURCE = 0,			/* as the message has it */
	GIK_LON_180,				/* first column in [-180, 180) */
	GIK_LON_360					/* first column in [0, 360) */
} GikLonConvention;

/* A lon/lat box in degrees. lon_min > lon_max means the box crosses the 180th meridian. */
typedef struct GikBox
{
	double		lon_min;
	double		lat_min;
	double		lon_max;
	double		lat_max;
} GikBox;

/* A decoded grid: rows north to south, columns west to east, cell centres in degrees. */
typedef struct GikOutGrid
{
	long		ni;				/* columns */
	long		nj;				/* rows */
	double		lat_first;		/* centre of the first (northernmost) row */
	double		lat_last;		/* centre of the last row */
	double		lon_first;		/* centre of the first (westernmost) column, in the chosen convention */
	double		lon_last;		/* lon_first + (ni-1)*di: may pass 180 or 360 when columns cross the seam */
	double		di;				/* > 0 */
	double		dj;				/* > 0 (metres on a projected grid) */
	bool		global_lon;		/* the source grid wraps around the globe */
	GikProj		proj;			/* projected grids (proj.kind != GIK_PROJ_NONE); lat/lon_first/last then
								 * give the north-west and south-east cell centres */
	double		x_first;		/* projected: x and y (metres) of the north-west cell centre */
	double		y_first;
	GikLonConvention lon;		/* projected: convention of the longitudes reported */
} GikOutGrid;

/* Which message values land in which output cell. */
typedef struct GikGridPlan
{
	GikOutGrid	out;
	long		src_ni;
	long		src_nj;
	int32_t    *col_src;		/* [out.ni]: column index in the message's own i order */
	int32_t    *row_src;		/* [out.nj]: row index in the message's own j order */
	bool		j_consecutive;	/* message stores columns contiguously */
	bool		alternate_rows; /* odd message rows run the other way */
	bool		has_mask;		/* projected with a box: cells whose centres are outside become NaN */
	GikBox		mask;
} GikGridPlan;

/*
 * Plan the output grid of a regular lat/lon or projected (Lambert, polar stereographic,
 * Mercator) message for a longitude convention and an
 * optional box (NULL: the whole grid). A cell is inside the box when its centre is
 * (boundaries included, to 1e-9 degrees). Returns false and a full sentence in errbuf
 * for unsupported grids or a box with no cell.
 *
 * Any scanning mode is accepted. A grid is global when ni * di is 360 to within a
 * thousandth of a cell (a repeated seam column, (ni-1) * di = 360, is dropped); its
 * columns then roll so the first one is the smallest centre >= -180 (GIK_LON_180),
 * >= 0 (GIK_LON_360) or the message's own westernmost column (GIK_LON_SOURCE, where
 * ECMWF's 180..179.75 means -180..179.75). A box starts at its west edge and may wrap
 * around a global grid. Columns of other grids keep their order: lon_first only moves
 * by 360 into the convention's range, and a box that meets them in two separate runs
 * is an error. di and dj come from the end points when they agree with the stated
 * increments (GRIB rounds increments, e.g. 1/6 to 0.166667).
 *
 * A projected grid comes out north-up in its own projection (rows of falling y, columns
 * of rising x). A box keeps the smallest rectangle of cells holding every cell whose
 * centre lies inside it; the other cells of that rectangle become NaN. The longitude
 * convention only changes the longitudes reported.
 *
 * On success the arrays come from alloc; on failure nothing needs freeing except, after
 * an allocation failure, whichever of col_src and row_src is not NULL.
 */
extern bool gik_grid_plan(const GikGrid *src, GikLonConvention conv, const GikBox *box,
						  GikAllocFn alloc, GikGridPlan *plan, char *errbuf, size_t errlen);

/*
 * Fill out[nj * ni] (row-major, north-up) from values decoded in the message's scanning
 * order; values equal to missing_value become NaN, and so do cells whose message index
 * is nvalues or more (a short values array is never read past its end).
 */
extern void gik_grid_apply(const GikGridPlan *plan, const double *values, size_t nvalues,
						   double missing_value, float *out);

/* True when the grid came from a projected message. */
extern bool gik_outgrid_projected(const GikOutGrid *grid);

/* Longitude and latitude of cell (row, col) of a projected output grid, longitude in its convention. */
extern void gik_outgrid_cell_lonlat(const GikOutGrid *grid, long row, long col, double *lon, double *lat);

/* Latitudes of the rows (nj values) and longitudes of the columns (ni values) of a regular lat/lon output grid. */
extern void gik_outgrid_lats(const GikOutGrid *grid, double *lats);
extern void gik_outgrid_lons(const GikOutGrid *grid, double *lons);

/*
 * Parse "source", "-180..180"/"180"/"-180", "0..360"/"360"/"0" (any case, surrounding
 * spaces ignored); false when not recognised.
 */
extern bool gik_lon_convention_parse(const char *s, GikLonConvention *conv);

#endif
