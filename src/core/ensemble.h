/*
 * Ensemble kernels over float grids: exceedance counts, counts, sums, extremes, Welford moments,
 * percentiles and element-wise scalar arithmetic. Pure C, no PostgreSQL headers.
 *
 * Grids are flat float arrays of ncells values; NaN marks a missing cell. Accumulators live in
 * caller buffers, so the same kernels serve the backend aggregates and the unit tests.
 */
#ifndef GIK_CORE_ENSEMBLE_H
#define GIK_CORE_ENSEMBLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "core/common.h"

/* Element-wise operation of a grid with a scalar. */
typedef enum GikGridOp
{
	GIK_GRID_ADD = 0,
	GIK_GRID_SUB,
	GIK_GRID_MUL
} GikGridOp;

/*
 * Exceedance: for every threshold t and cell i, hits[t * ncells + i] += (x[i] >= thr[t]), and
 * valid[i] += (x[i] is not NaN). A NaN value never counts as a hit nor as a valid member.
 */
extern void gik_ens_exceed_add(const float *x, size_t ncells, const float *thr, int nthr,
							   int32_t *hits, int32_t *valid);

/* Exceedance probabilities out[t * ncells + i] = hits / valid as float, NaN where valid is 0. */
extern void gik_ens_exceed_result(const int32_t *hits, const int32_t *valid, size_t ncells,
								  int nthr, float *out);

/* Count of valid (non-NaN) members per cell: valid[i] += (x[i] is not NaN). */
extern void gik_ens_count_add(const float *x, size_t ncells, int32_t *valid);

/* Element-wise a[i] += b[i] over n int32 counters (merging counts of two partial states). */
extern void gik_ens_counts_merge(int32_t *a, const int32_t *b, size_t n);

/* Element-wise a[i] += b[i] over n doubles (merging sums of two partial states). */
extern void gik_ens_sums_merge(double *a, const double *b, size_t n);

/* Sum of valid values per cell: valid[i] += 1 and sum[i] += x[i] where x[i] is not NaN. */
extern void gik_ens_sum_add(const float *x, size_t ncells, int32_t *valid, double *sum);

/* Mean per cell out[i] = sum[i] / valid[i] as float, NaN where valid is 0. */
extern void gik_ens_mean_result(const int32_t *valid, const double *sum, size_t ncells, float *out);

/* Running minimum (want_max false) or maximum of valid values; acc starts as all NaN. */
extern void gik_ens_extreme_add(const float *x, size_t ncells, bool want_max, float *acc);

/* Merge two running extremes (the same rule as gik_ens_extreme_add). */
extern void gik_ens_extreme_merge(float *acc, const float *other, size_t ncells, bool want_max);

/*
 * Welford update of count, mean and sum of squared deviations (m2) per cell with the valid
 * values of x. All three start at zero.
 */
extern void gik_ens_moments_add(const float *x, size_t ncells, int32_t *n, double *mean, double *m2);

/* Chan et al. merge of a second set of moments into the first. */
extern void gik_ens_moments_merge(int32_t *n, double *mean, double *m2,
								  const int32_t *n2, const double *mean2, const double *m2_2,
								  size_t ncells);

/* Standard deviation sqrt(m2 / (n - ddof)) as float; NaN where n - ddof <= 0. */
extern void gik_ens_stddev_result(const int32_t *n, const double *m2, size_t ncells, int ddof,
								  float *out);

/* Weighted sum acc[i] += w * x[i]; a NaN value makes the cell NaN for good. */
extern void gik_grid_wsum_add(const float *x, size_t ncells, double w, double *acc);

/* Cast a double grid to float. */
extern void gik_grid_to_float(const double *acc, size_t ncells, float *out);

/*
 * Percentiles per cell over nmembers grids, NaN values skipped, linear interpolation between
 * the closest ranks exactly like numpy.percentile's default method: with n valid values sorted
 * as v[0..n-1] and h = f * (n - 1), the result is v[floor(h)] + (h - floor(h)) * (v[floor(h)+1]
 * - v[floor(h)]). fractions are in [0, 1]; out[k * ncells + i] is fraction k of cell i, NaN
 * where a cell has no valid value. Scratch space comes from alloc; returns false when it
 * cannot be allocated.
 */
extern bool gik_ens_percentile(const float *const *members, int nmembers, size_t ncells,
							   const double *fractions, int nfrac, float *out, GikAllocFn alloc);

/* The value at fraction f of n sorted values v[0..n-1] (n >= 1), numpy's 'linear' method. */
extern double gik_percentile_sorted(const float *v, int n, double f);

/* out[i] = x[i] op s, computed in double and rounded to float; NaN stays NaN. out may be x. */
extern void gik_grid_scalar_op(GikGridOp op, const float *x, size_t n, double s, float *out);

/*
 * out[i] = x[i] limited to [lo, hi]; use -INFINITY / INFINITY for no bound. NaN stays NaN.
 * out may be x.
 */
extern void gik_grid_clip_range(const float *x, size_t n, double lo, double hi, float *out);

#endif
