/*
 * Map projections of GRIB grids (Lambert conformal, polar stereographic, Mercator on a
 * sphere), their PROJ strings, and Gaussian latitudes. Pure C.
 */
#ifndef GIK_CORE_PROJ_H
#define GIK_CORE_PROJ_H

#include <stdbool.h>
#include <stddef.h>

#include "core/grib_meta.h"

/* Longest PROJ or Gaussian description gik_proj_string writes (pl of GIK_GAUSS_PL_MAX rows). */
#define GIK_PROJ_STRING_MAX (160 + 6 * GIK_GAUSS_PL_MAX)

/* Map name of a projection kind for grid_type ("lambert", ...), or NULL. */
extern const char *gik_proj_grid_type(GikProjKind kind);

/*
 * Check a projection's parameters (finite, radius > 0, parallels off the poles, a
 * Lambert cone that exists); false with a sentence in errbuf.
 */
extern bool gik_proj_valid(const GikProj *p, char *errbuf, size_t errlen);

/* lon/lat (degrees) to projected x/y (metres). */
extern void gik_proj_forward(const GikProj *p, double lon, double lat, double *x, double *y);

/* Projected x/y (metres) to lon/lat (degrees, lon in [-180, 180)). */
extern void gik_proj_inverse(const GikProj *p, double x, double y, double *lon, double *lat);

/*
 * The grid's description as text: a PROJ string ("+proj=lcc ... +R=... +units=m +no_defs")
 * for projected grids; "+proj=gik_gaussian +N=48" for Gaussian grids, with "+pl=a,b,..." (the
 * northern rows) for reduced ones. Returns false (writes "") for other grids.
 */
extern bool gik_proj_string(const GikGrid *grid, char *out, size_t outlen);

/*
 * Parse what gik_proj_string wrote into grid (proj, gauss_n, pl_half); grid_type tells which
 * kind is expected. False with a sentence in errbuf for text that is not such a description.
 */
extern bool gik_proj_parse(const char *text, GikGrid *grid, char *errbuf, size_t errlen);

/*
 * Gaussian latitudes (degrees, north to south) of the 2n rows of a Gaussian grid with n
 * parallels between a pole and the equator, to 1e-12 degrees. lats holds 2n values.
 */
extern void gik_gaussian_lats(long n, double *lats);

/* Points of row r (0 = northernmost of 2*gauss_n) of a reduced Gaussian grid; 0 when unknown. */
extern long gik_reduced_row_points(const GikGrid *grid, long r);

#endif
