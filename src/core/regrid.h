/*
 * Regridding between north-up grids: bilinear (source regular lat/lon or projected) and
 * first-order conservative (to regular lat/lon), as sparse weights computed
 * once per grid pair and applied to any number of fields. Pure C.
 */
#ifndef GIK_CORE_REGRID_H
#define GIK_CORE_REGRID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/common.h"
#include "core/grid.h"

typedef enum GikRegridMethod
{
	GIK_REGRID_BILINEAR = 1,
	GIK_REGRID_CONSERVATIVE = 2
} GikRegridMethod;

/* Called between rows of work; may not return (the backend's interrupt check). */
typedef void (*GikCheckFn) (void);

/* Target cell k takes sum(w[j] * src[idx[j]]) for j in [start[k], start[k+1]), over non-NaN sources. */
typedef struct GikRegridWeights
{
	GikRegridMethod method;
	long		src_cells;
	long		dst_cells;
	int64_t    *start;			/* [dst_cells + 1] */
	int32_t    *idx;			/* [nnz] source cells, row-major north-up */
	double	   *w;				/* [nnz] */
	int64_t		nnz;
} GikRegridWeights;

/* "bilinear" or "conservative" (any case); false when not recognised. */
extern bool gik_regrid_method_parse(const char *s, GikRegridMethod *m);
extern const char *gik_regrid_method_name(GikRegridMethod m);

/*
 * Weights from src to dst (north-up output grids as gik_grid_plan makes them).
 *
 * Bilinear: each target cell centre is located in the source grid (in its projection for a
 * projected source; across the seam of a global lat/lon source) and takes the four
 * surrounding cell centres' values with bilinear weights; a target centre outside the
 * source's centres gets none (NaN). Conservative: the target must be regular lat/lon; each
 * target cell takes every source cell it overlaps, weighted by the overlap's area on the
 * sphere (cells bounded half-way between centres, clipped at the poles; a projected source
 * cell is the quadrilateral of its corners, edges straight in the equal-area plane).
 *
 * Arrays come from alloc; check runs between rows. False with a sentence in errbuf.
 */
extern bool gik_regrid_weights(const GikOutGrid *src, const GikOutGrid *dst, GikRegridMethod method,
							   GikAllocFn alloc, GikCheckFn check, GikRegridWeights *out,
							   char *errbuf, size_t errlen);

/*
 * Apply weights to one field: bilinear gives NaN when any of its sources is NaN;
 * conservative averages over the overlapping sources that are not NaN (NaN when none).
 */
extern void gik_regrid_apply(const GikRegridWeights *w, const float *src, float *dst);

/* Bytes the weights occupy. */
extern size_t gik_regrid_weights_bytes(const GikRegridWeights *w);

#endif
