/* PostGIS raster well-known binary (RFC2) writer for float grids. Pure C. */
#ifndef GIK_CORE_RASTER_WKB_H
#define GIK_CORE_RASTER_WKB_H

#include <stddef.h>

#include "core/grid.h"

/* RFC2 stores width and height as uint16: callers check ni and nj against this. */
#define GIK_RASTER_MAX_DIM 65535

/* Bytes needed for a raster of nbands 32BF bands of ni x nj pixels. */
extern size_t gik_raster_wkb_size(long ni, long nj, int nbands);

/*
 * Write an RFC2 raster (little endian, version 0): nbands bands of 32BF pixels with
 * nodata NaN, values[b * nj * ni + row * ni + col] row-major north-up as in GikOutGrid.
 * The geotransform puts the upper-left corner half a cell north-west of the first
 * cell centre (x_first, y_first in metres on a projected grid), scale (di, -dj), no skew, SRID srid. grid->ni and grid->nj must not
 * exceed GIK_RASTER_MAX_DIM; out holds gik_raster_wkb_size(ni, nj, nbands) bytes.
 */
extern void gik_raster_wkb_write(const GikOutGrid *grid, const float *values, int nbands,
								 int srid, unsigned char *out);

#endif
