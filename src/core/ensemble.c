/* Ensemble kernels over float grids (see ensemble.h). Pure C, no PostgreSQL headers. */

/*
 * PostgreSQL builds with -O2, where GCC 12 vectorises only loops whose trip count is a known
 * multiple of the vector width. These loops are plain streams over cells, so let the vectoriser
 * use its usual cost model here, and let it compute both sides of a select (no FP traps are
 * used anywhere). NaN semantics are kept: no -ffast-math, no -ffinite-math-only.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize ("tree-vectorize")
#pragma GCC optimize ("vect-cost-model=dynamic")
#pragma GCC optimize ("no-trapping-math")
#endif

#include "core/ensemble.h"

#include <math.h>

/* Cells handled per block, so that a block of the input stays in L1 while thresholds loop. */
#define GIK_ENS_BLOCK 2048

/* Cells transposed at once for percentiles by selection. */
#define GIK_PCT_BLOCK 256

/* Cells sorted at once by the percentile network (a block of 51 members is 26 kB). */
#define GIK_NET_BLOCK 128

/* Largest ensemble sorted by the network; larger ones use per-cell selection. */
#ifndef GIK_NET_MAX_MEMBERS
#define GIK_NET_MAX_MEMBERS 128
#endif

/* Count hits of one threshold over a block of cells. */
static void
exceed_block(const float *restrict x, size_t n, float t, int32_t *restrict hits)
{
	size_t		i;

	for (i = 0; i < n; i++)
		hits[i] += (x[i] >= t);
}

/* Count valid (non-NaN) values over a block of cells. */
static void
valid_block(const float *restrict x, size_t n, int32_t *restrict valid)
{
	size_t		i;

	for (i = 0; i < n; i++)
		valid[i] += (x[i] == x[i]);
}

/* Exceedance counts of one member for every threshold, in cache-sized blocks of cells. */
void
gik_ens_exceed_add(const float *x, size_t ncells, const float *thr, int nthr,
				   int32_t *hits, int32_t *valid)
{
	size_t		b;

	for (b = 0; b < ncells; b += GIK_ENS_BLOCK)
	{
		size_t		n = ncells - b < GIK_ENS_BLOCK ? ncells - b : GIK_ENS_BLOCK;
		int			t;

		valid_block(x + b, n, valid + b);
		for (t = 0; t < nthr; t++)
			exceed_block(x + b, n, thr[t], hits + (size_t) t * ncells + b);
	}
}

/* Probabilities hits / valid per threshold and cell. */
void
gik_ens_exceed_result(const int32_t *hits, const int32_t *valid, size_t ncells, int nthr, float *out)
{
	int			t;

	for (t = 0; t < nthr; t++)
	{
		const int32_t *h = hits + (size_t) t * ncells;
		float	   *o = out + (size_t) t * ncells;
		size_t		i;

		for (i = 0; i < ncells; i++)
			o[i] = valid[i] > 0 ? (float) ((double) h[i] / (double) valid[i]) : NAN;
	}
}

/* Valid member counts per cell. */
void
gik_ens_count_add(const float *x, size_t ncells, int32_t *valid)
{
	valid_block(x, ncells, valid);
}

/* a += b over int32 counters. */
void
gik_ens_counts_merge(int32_t *restrict a, const int32_t *restrict b, size_t n)
{
	size_t		i;

	for (i = 0; i < n; i++)
		a[i] += b[i];
}

/* a += b over doubles. */
void
gik_ens_sums_merge(double *restrict a, const double *restrict b, size_t n)
{
	size_t		i;

	for (i = 0; i < n; i++)
		a[i] += b[i];
}

/* Sum and count of the valid values per cell. */
void
gik_ens_sum_add(const float *restrict x, size_t ncells, int32_t *restrict valid, double *restrict sum)
{
	size_t		i;

	for (i = 0; i < ncells; i++)
	{
		double		v = x[i];
		bool		ok = (v == v);
		double		add = ok ? v : 0.0;

		sum[i] += add;
		valid[i] += ok;
	}
}

/* Mean of the valid values per cell. */
void
gik_ens_mean_result(const int32_t *valid, const double *sum, size_t ncells, float *out)
{
	size_t		i;

	for (i = 0; i < ncells; i++)
		out[i] = valid[i] > 0 ? (float) (sum[i] / (double) valid[i]) : NAN;
}

/* Running minimum of the valid values; a NaN accumulator takes the first valid value. */
static void
min_add(const float *restrict x, size_t n, float *restrict acc)
{
	size_t		i;

	for (i = 0; i < n; i++)
	{
		float		a = acc[i];
		float		v = x[i];

		acc[i] = (v < a || a != a) ? v : a;
	}
}

/* Running maximum of the valid values; a NaN accumulator takes the first valid value. */
static void
max_add(const float *restrict x, size_t n, float *restrict acc)
{
	size_t		i;

	for (i = 0; i < n; i++)
	{
		float		a = acc[i];
		float		v = x[i];

		acc[i] = (v > a || a != a) ? v : a;
	}
}

/* Running minimum or maximum per cell. */
void
gik_ens_extreme_add(const float *x, size_t ncells, bool want_max, float *acc)
{
	if (want_max)
		max_add(x, ncells, acc);
	else
		min_add(x, ncells, acc);
}

/* Merge of two running extremes. */
void
gik_ens_extreme_merge(float *acc, const float *other, size_t ncells, bool want_max)
{
	gik_ens_extreme_add(other, ncells, want_max, acc);
}

/* Welford's update with one member; cells where the member is NaN are left as they are. */
void
gik_ens_moments_add(const float *restrict x, size_t ncells, int32_t *restrict n,
					double *restrict mean, double *restrict m2)
{
	size_t		i;

	for (i = 0; i < ncells; i++)
	{
		double		v = x[i];
		bool		ok = (v == v);
		int32_t		c = n[i] + ok;
		double		mu0 = mean[i];
		double		d = v - mu0;
		double		mu = mu0 + d / (double) (c > 0 ? c : 1);
		double		dm2 = d * (v - mu);

		m2[i] += ok ? dm2 : 0.0;
		mean[i] = ok ? mu : mu0;
		n[i] = c;
	}
}

/* Chan, Golub and LeVeque's pairwise merge of count, mean and m2. */
void
gik_ens_moments_merge(int32_t *restrict n, double *restrict mean, double *restrict m2,
					  const int32_t *restrict n2, const double *restrict mean2,
					  const double *restrict m2_2, size_t ncells)
{
	size_t		i;

	for (i = 0; i < ncells; i++)
	{
		double		na = n[i];
		double		nb = n2[i];
		double		nt = na + nb;
		double		delta = mean2[i] - mean[i];

		if (nb == 0)
			continue;
		if (na == 0)
		{
			n[i] = n2[i];
			mean[i] = mean2[i];
			m2[i] = m2_2[i];
			continue;
		}
		mean[i] += delta * (nb / nt);
		m2[i] += m2_2[i] + delta * delta * (na * nb / nt);
		n[i] += n2[i];
	}
}

/* Standard deviation with ddof degrees of freedom removed. */
void
gik_ens_stddev_result(const int32_t *n, const double *m2, size_t ncells, int ddof, float *out)
{
	size_t		i;

	for (i = 0; i < ncells; i++)
	{
		int64_t		dof = (int64_t) n[i] - ddof;

		out[i] = dof > 0 && n[i] > 0 ? (float) sqrt((m2[i] > 0 ? m2[i] : 0.0) / (double) dof) : NAN;
	}
}

/* Weighted element-wise sum; NaN propagates. */
void
gik_grid_wsum_add(const float *restrict x, size_t ncells, double w, double *restrict acc)
{
	size_t		i;

	for (i = 0; i < ncells; i++)
		acc[i] += w * (double) x[i];
}

/* double to float, element by element. */
void
gik_grid_to_float(const double *restrict acc, size_t ncells, float *restrict out)
{
	size_t		i;

	for (i = 0; i < ncells; i++)
		out[i] = (float) acc[i];
}

/* Swap two floats. */
static inline void
fswap(float *a, float *b)
{
	float		t = *a;

	*a = *b;
	*b = t;
}

/* Sort a few floats (no NaN) in place by insertion. */
static void
insertion_sort(float *v, int n)
{
	int			i;

	for (i = 1; i < n; i++)
	{
		float		x = v[i];
		int			j = i - 1;

		while (j >= 0 && v[j] > x)
		{
			v[j + 1] = v[j];
			j--;
		}
		v[j + 1] = x;
	}
}

/*
 * Put the k-th smallest of v[0..n-1] (no NaN) at v[k], with no larger value before it and no
 * smaller one after it (Hoare's selection, median-of-three pivots; small ranges are sorted).
 */
static void
select_kth(float *v, int n, int k)
{
	int			lo = 0;
	int			hi = n - 1;

	while (hi - lo > 16)
	{
		int			mid = lo + (hi - lo) / 2;
		float		pivot;
		int			i,
					j;

		if (v[mid] < v[lo])
			fswap(&v[mid], &v[lo]);
		if (v[hi] < v[lo])
			fswap(&v[hi], &v[lo]);
		if (v[hi] < v[mid])
			fswap(&v[hi], &v[mid]);
		pivot = v[mid];
		i = lo;
		j = hi;
		while (i <= j)
		{
			while (v[i] < pivot)
				i++;
			while (v[j] > pivot)
				j--;
			if (i <= j)
			{
				fswap(&v[i], &v[j]);
				i++;
				j--;
			}
		}
		/* now v[lo..j] <= pivot <= v[i..hi], and v[j+1..i-1] == pivot */
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			return;
	}
	insertion_sort(v + lo, hi - lo + 1);
}

/* numpy's _lerp: a + (b - a) * g, computed from b's side when g >= 0.5. */
static inline double
lerp(double a, double b, double g)
{
	double		diff = b - a;

	return g >= 0.5 ? b - diff * (1.0 - g) : a + diff * g;
}

/* Percentile of already sorted values, numpy's 'linear' method. */
double
gik_percentile_sorted(const float *v, int n, double f)
{
	double		h = f * (double) (n - 1);
	double		fl = floor(h);
	int			lo = (int) fl;
	int			hi;

	if (lo < 0)
		lo = 0;
	if (lo > n - 1)
		lo = n - 1;
	hi = lo + 1 < n ? lo + 1 : n - 1;
	return lerp(v[lo], v[hi], h - fl);
}

/*
 * Value of rank r among v[0..n-1], where v[0..*done-1] are already final (sorted and no larger
 * than the rest); ranks must be asked in non-decreasing order.
 */
static inline float
rank_value(float *v, int n, int r, int *done)
{
	if (r >= *done)
	{
		select_kth(v + *done, n - *done, r - *done);
		*done = r + 1;
	}
	return v[r];
}

/* Order of fraction indexes by increasing fraction (insertion sort: there are few). */
static void
order_fractions(const double *fractions, int nfrac, int *order)
{
	int			i;

	for (i = 0; i < nfrac; i++)
	{
		int			j = i - 1;

		while (j >= 0 && fractions[order[j]] > fractions[i])
		{
			order[j + 1] = order[j];
			j--;
		}
		order[j + 1] = i;
	}
}

/* Percentiles of one cell from its valid values v[0..n-1] (reordered in place). */
static void
cell_percentiles(float *v, int n, const double *fractions, const int *order, int nfrac,
				 float *out, size_t stride)
{
	int			done = 0;
	int			k;

	if (n == 0)
	{
		for (k = 0; k < nfrac; k++)
			out[(size_t) k * stride] = NAN;
		return;
	}
	for (k = 0; k < nfrac; k++)
	{
		int			q = order[k];
		double		h = fractions[q] * (double) (n - 1);
		double		fl = floor(h);
		int			lo = (int) fl;
		int			hi;
		double		a,
					b;

		if (lo < 0)
			lo = 0;
		if (lo > n - 1)
			lo = n - 1;
		hi = lo + 1 < n ? lo + 1 : n - 1;
		a = rank_value(v, n, lo, &done);
		b = rank_value(v, n, hi, &done);
		out[(size_t) q * stride] = (float) lerp(a, b, h - fl);
	}
}

/* Percentiles by selection: transpose blocks of cells to per-cell member lists, select ranks. */
static bool
percentile_select(const float *const *members, int nmembers, size_t ncells,
				  const double *fractions, int nfrac, const int *order, float *out, GikAllocFn alloc)
{
	float	   *buf = alloc(sizeof(float) * (size_t) GIK_PCT_BLOCK * (size_t) nmembers);
	int		   *cnt = alloc(sizeof(int) * GIK_PCT_BLOCK);
	size_t		b;

	if (buf == NULL || cnt == NULL)
		return false;
	for (b = 0; b < ncells; b += GIK_PCT_BLOCK)
	{
		size_t		nb = ncells - b < GIK_PCT_BLOCK ? ncells - b : GIK_PCT_BLOCK;
		size_t		i;
		int			m;

		memset(cnt, 0, sizeof(int) * nb);
		for (m = 0; m < nmembers; m++)
		{
			const float *src = members[m] + b;

			for (i = 0; i < nb; i++)
			{
				float		v = src[i];

				if (v == v)
					buf[i * (size_t) nmembers + (size_t) cnt[i]++] = v;
			}
		}
		for (i = 0; i < nb; i++)
			cell_percentiles(buf + i * (size_t) nmembers, cnt[i], fractions, order, nfrac,
							 out + b + i, ncells);
	}
	return true;
}

/*
 * Comparators of Batcher's odd-even merge sort for n inputs (the network for the next power of
 * two, without the comparators that touch an index >= n: padding there with +Inf would make them
 * no-ops). Fills pairs[2 * k] < pairs[2 * k + 1] when pairs is not NULL; returns the count.
 */
static size_t
batcher_network(int n, int *pairs)
{
	size_t		count = 0;
	int			p,
				k,
				j,
				i;

	for (p = 1; p < n; p <<= 1)
		for (k = p; k >= 1; k >>= 1)
			for (j = k % p; j + k < n; j += 2 * k)
				for (i = 0; i < k && i + j + k < n; i++)
					if ((i + j) / (2 * p) == (i + j + k) / (2 * p))
					{
						if (pairs != NULL)
						{
							pairs[2 * count] = i + j;
							pairs[2 * count + 1] = i + j + k;
						}
						count++;
					}
	return count;
}

/* One comparator applied to a block of cells at once: lo[i] = min, hi[i] = max (no NaN). */
static inline void
compare_exchange(float *restrict lo, float *restrict hi, size_t n)
{
	size_t		i;

	for (i = 0; i < n; i++)
	{
		float		a = lo[i];
		float		b = hi[i];
		bool		less = a < b;
		float		mn = less ? a : b;
		float		mx = less ? b : a;

		lo[i] = mn;				/* (storing through locals lets GCC if-convert) */
		hi[i] = mx;
	}
}

/*
 * Percentiles by a sorting network run across a block of cells at once (SIMD lanes are cells, no
 * branches). NaN becomes +Inf, so each cell's n valid values end up sorted in rows 0..n-1.
 */
static bool
percentile_network(const float *const *members, int nmembers, size_t ncells,
				   const double *fractions, int nfrac, float *out, GikAllocFn alloc)
{
	size_t		npairs = batcher_network(nmembers, NULL);
	int		   *pairs = alloc(sizeof(int) * 2 * (npairs > 0 ? npairs : 1));
	float	   *buf = alloc(sizeof(float) * (size_t) GIK_NET_BLOCK * (size_t) nmembers);
	int32_t    *cnt = alloc(sizeof(int32_t) * GIK_NET_BLOCK);
	size_t		b;

	if (pairs == NULL || buf == NULL || cnt == NULL)
		return false;
	batcher_network(nmembers, pairs);
	for (b = 0; b < ncells; b += GIK_NET_BLOCK)
	{
		size_t		nb = ncells - b < GIK_NET_BLOCK ? ncells - b : GIK_NET_BLOCK;
		size_t		i,
					c;
		int			m,
					k;

		memset(cnt, 0, sizeof(int32_t) * nb);
		for (m = 0; m < nmembers; m++)
		{
			const float *restrict src = members[m] + b;
			float	   *restrict row = buf + (size_t) m * GIK_NET_BLOCK;

			for (i = 0; i < nb; i++)
			{
				float		v = src[i];
				bool		ok = (v == v);

				row[i] = ok ? v : INFINITY;
				cnt[i] += ok;
			}
		}
		for (c = 0; c < npairs; c++)
			compare_exchange(buf + (size_t) pairs[2 * c] * GIK_NET_BLOCK,
							 buf + (size_t) pairs[2 * c + 1] * GIK_NET_BLOCK, nb);
		for (k = 0; k < nfrac; k++)
		{
			float	   *o = out + (size_t) k * ncells + b;

			for (i = 0; i < nb; i++)
			{
				int			n = cnt[i];
				double		h,
							fl;
				int			lo,
							hi;

				if (n == 0)
				{
					o[i] = NAN;
					continue;
				}
				h = fractions[k] * (double) (n - 1);
				fl = floor(h);
				lo = (int) fl;
				if (lo > n - 1)
					lo = n - 1;
				hi = lo + 1 < n ? lo + 1 : n - 1;
				o[i] = (float) lerp(buf[(size_t) lo * GIK_NET_BLOCK + i],
									buf[(size_t) hi * GIK_NET_BLOCK + i], h - fl);
			}
		}
	}
	return true;
}

/*
 * Percentiles per cell: a sorting network over blocks of cells for ensembles of up to
 * GIK_NET_MAX_MEMBERS members, per-cell selection for larger ones.
 */
bool
gik_ens_percentile(const float *const *members, int nmembers, size_t ncells,
				   const double *fractions, int nfrac, float *out, GikAllocFn alloc)
{
	int		   *order;

	if (nmembers <= 0 || nfrac <= 0)
		return true;
	if (nmembers <= GIK_NET_MAX_MEMBERS)
		return percentile_network(members, nmembers, ncells, fractions, nfrac, out, alloc);
	order = alloc(sizeof(int) * (size_t) nfrac);
	if (order == NULL)
		return false;
	order_fractions(fractions, nfrac, order);
	return percentile_select(members, nmembers, ncells, fractions, nfrac, order, out, alloc);
}

/* Grid op scalar, element by element. */
void
gik_grid_scalar_op(GikGridOp op, const float *x, size_t n, double s, float *out)
{
	size_t		i;

	switch (op)
	{
		case GIK_GRID_ADD:
			for (i = 0; i < n; i++)
				out[i] = (float) ((double) x[i] + s);
			break;
		case GIK_GRID_SUB:
			for (i = 0; i < n; i++)
				out[i] = (float) ((double) x[i] - s);
			break;
		case GIK_GRID_MUL:
			for (i = 0; i < n; i++)
				out[i] = (float) ((double) x[i] * s);
			break;
	}
}

/* Clip to [lo, hi]; NaN compares false both ways and stays NaN. */
void
gik_grid_clip_range(const float *x, size_t n, double lo, double hi, float *out)
{
	size_t		i;

	for (i = 0; i < n; i++)
	{
		double		v = x[i];

		v = v < lo ? lo : v;
		v = v > hi ? hi : v;
		out[i] = (float) v;
	}
}
