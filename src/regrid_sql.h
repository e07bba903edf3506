/* SQL glue for grids beyond regular lat/lon: projection text, Gaussian coordinates, regridding. */
#ifndef GIK_REGRID_SQL_H
#define GIK_REGRID_SQL_H

#include "postgres.h"

#include "utils/array.h"

#include "core/grib_meta.h"

/* The grid's projection or Gaussian description as a text datum; *isnull when it has none. */
extern void gik_grid_proj_datum(const GikGrid *grid, Datum *value, bool *isnull);

/* Read a grid description's proj text into grid (raises naming the text when it is not valid). */
extern void gik_grid_proj_from_text(const char *text, GikGrid *grid);

/* True when the grid is a Gaussian grid (regular_gg, reduced_gg) that has coordinates. */
extern bool gik_grid_is_gaussian(const GikGrid *grid);

/* Latitudes (lats true) or longitudes of a Gaussian grid: rows/columns (regular_gg) or every point (reduced_gg). */
extern ArrayType *gik_gaussian_coords(const GikGrid *grid, bool lats);

#endif
