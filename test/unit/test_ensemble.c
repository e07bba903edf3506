/* Unit tests of the ensemble kernels: exceedance, counts, means, extremes, moments, percentiles, arithmetic. */
#include "core/ensemble.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Same float, NaN equal to NaN. */
static bool
same_float(float a, float b)
{
	return (isnan(a) && isnan(b)) || a == b;
}

/* Relative closeness of two doubles, NaN equal to NaN. */
static bool
close_to(double a, double b, double rel)
{
	if (isnan(a) || isnan(b))
		return isnan(a) && isnan(b);
	return fabs(a - b) <= rel * fmax(1.0, fmax(fabs(a), fabs(b)));
}

/* Deterministic pseudo-random numbers (xorshift64*), so failures reproduce. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

/* Next pseudo-random 64-bit value. */
static uint64_t
rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

/* Uniform in [0, 1). */
static double
rng_unit(void)
{
	return (double) (rng_next() >> 11) / 9007199254740992.0;
}

/* Exceedance uses >=, leaves NaN out of the denominator and gives NaN without valid members. */
static void
test_exceedance(void)
{
	const float m0[4] = {1, 2, NAN, NAN};
	const float m1[4] = {2, 2, 7, NAN};
	const float m2[4] = {3, NAN, 1, NAN};
	const float thr[2] = {2, 5};
	int32_t		hits[8] = {0};
	int32_t		valid[4] = {0};
	float		p[8];
	const float want[8] = {2.0f / 3, 1, 0.5f, NAN, 0, 0, 0.5f, NAN};
	int			i;
	bool		ok = true;

	gik_ens_exceed_add(m0, 4, thr, 2, hits, valid);
	gik_ens_exceed_add(m1, 4, thr, 2, hits, valid);
	gik_ens_exceed_add(m2, 4, thr, 2, hits, valid);
	tap_ok(valid[0] == 3 && valid[1] == 2 && valid[2] == 2 && valid[3] == 0, "valid counts skip NaN");
	tap_ok(hits[0] == 2 && hits[1] == 2 && hits[2] == 1 && hits[3] == 0, "a value equal to the threshold counts");
	gik_ens_exceed_result(hits, valid, 4, 2, p);
	for (i = 0; i < 8; i++)
		ok = ok && same_float(p[i], want[i]);
	tap_ok(ok, "probabilities are hits / valid, NaN without valid members");
	tap_ok(p[0] == (float) (2.0 / 3.0), "probability is the float of k / n computed in double");
}

/* Exceedance over more cells than one block, against a direct count. */
static void
test_exceedance_blocks(void)
{
	size_t		n = 5000;
	int			nm = 7;
	const float thr[3] = {0.25f, 0.5f, 0.75f};
	float	   *x = malloc(sizeof(float) * n * nm);
	int32_t    *hits = calloc(3 * n, sizeof(int32_t));
	int32_t    *valid = calloc(n, sizeof(int32_t));
	bool		ok = true;
	size_t		i;
	int			m,
				t;

	for (i = 0; i < n * nm; i++)
		x[i] = rng_unit() < 0.1 ? NAN : (float) ((int) (rng_unit() * 8) / 8.0);
	for (m = 0; m < nm; m++)
		gik_ens_exceed_add(x + (size_t) m * n, n, thr, 3, hits, valid);
	for (i = 0; i < n && ok; i++)
		for (t = 0; t < 3; t++)
		{
			int			h = 0,
						v = 0;

			for (m = 0; m < nm; m++)
			{
				float		xv = x[(size_t) m * n + i];

				v += !isnan(xv);
				h += !isnan(xv) && xv >= thr[t];
			}
			ok = ok && hits[(size_t) t * n + i] == h && valid[i] == v;
		}
	tap_ok(ok, "exceedance counts over %zu cells match a direct count", n);
	free(x);
	free(hits);
	free(valid);
}

/* Counts, sums, means and extremes skip NaN; merges give the single-pass result. */
static void
test_mean_extremes(void)
{
	const float a[3] = {1, NAN, -2};
	const float b[3] = {4, NAN, NAN};
	int32_t		n[3] = {0},
				n2[3] = {0};
	double		s[3] = {0},
				s2[3] = {0};
	float		mean[3];
	float		mn[3] = {NAN, NAN, NAN},
				mx[3] = {NAN, NAN, NAN},
				mx2[3] = {NAN, NAN, NAN};
	int32_t		c[3] = {0};

	gik_ens_sum_add(a, 3, n, s);
	gik_ens_sum_add(b, 3, n2, s2);
	gik_ens_counts_merge(n, n2, 3);
	gik_ens_sums_merge(s, s2, 3);
	gik_ens_mean_result(n, s, 3, mean);
	tap_ok(mean[0] == 2.5f && isnan(mean[1]) && mean[2] == -2.0f, "mean skips NaN, NaN without valid values");

	gik_ens_count_add(a, 3, c);
	gik_ens_count_add(b, 3, c);
	tap_ok(c[0] == 2 && c[1] == 0 && c[2] == 1, "count of valid members");

	gik_ens_extreme_add(b, 3, false, mn);
	gik_ens_extreme_add(a, 3, false, mn);
	tap_ok(mn[0] == 1 && isnan(mn[1]) && mn[2] == -2, "minimum skips NaN, also when the first value is NaN");
	gik_ens_extreme_add(a, 3, true, mx);
	gik_ens_extreme_add(b, 3, true, mx2);
	gik_ens_extreme_merge(mx, mx2, 3, true);
	tap_ok(mx[0] == 4 && isnan(mx[1]) && mx[2] == -2, "merged maximum");
}

/* Welford and Chan's merge agree with a two-pass standard deviation. */
static void
test_moments(void)
{
	enum
	{
		NC = 64, NM = 40
	};
	static float x[NM][NC];
	int32_t		n[NC] = {0},
				na[NC] = {0},
				nb[NC] = {0};
	double		mean[NC] = {0},
				m2[NC] = {0},
				ma[NC] = {0},
				m2a[NC] = {0},
				mb[NC] = {0},
				m2b[NC] = {0};
	float		sd1[NC],
				sd0[NC],
				sdm[NC];
	bool		ok = true;
	int			i,
				m;

	for (m = 0; m < NM; m++)
		for (i = 0; i < NC; i++)
			x[m][i] = rng_unit() < 0.2 ? NAN : (float) (1e4 + rng_unit() * 3);
	for (m = 0; m < NM; m++)
	{
		x[m][0] = NAN;			/* no valid value */
		x[m][1] = m == 5 ? 3.0f : NAN;	/* one valid value */
		x[m][2] = 7.25f;		/* constant */
	}
	for (m = 0; m < NM; m++)
	{
		gik_ens_moments_add(x[m], NC, n, mean, m2);
		if (m % 3 == 0)
			gik_ens_moments_add(x[m], NC, na, ma, m2a);
		else
			gik_ens_moments_add(x[m], NC, nb, mb, m2b);
	}
	gik_ens_moments_merge(na, ma, m2a, nb, mb, m2b, NC);
	gik_ens_stddev_result(n, m2, NC, 1, sd1);
	gik_ens_stddev_result(n, m2, NC, 0, sd0);
	gik_ens_stddev_result(na, m2a, NC, 1, sdm);

	for (i = 0; i < NC; i++)
	{
		double		s = 0,
					ss = 0;
		int			k = 0;

		for (m = 0; m < NM; m++)
			if (!isnan(x[m][i]))
			{
				s += x[m][i];
				k++;
			}
		for (m = 0; m < NM; m++)
			if (!isnan(x[m][i]))
				ss += (x[m][i] - s / k) * (x[m][i] - s / k);
		ok = ok && close_to(sd1[i], k > 1 ? (float) sqrt(ss / (k - 1)) : NAN, 1e-6);
		ok = ok && close_to(sd0[i], k > 0 ? (float) sqrt(ss / k) : NAN, 1e-6);
		ok = ok && close_to(sdm[i], sd1[i], 1e-6) && na[i] == n[i];
	}
	tap_ok(ok, "Welford and merged moments match two passes (values near 1e4, spread 3)");
	tap_ok(isnan(sd1[0]) && isnan(sd0[0]), "no valid value: NaN");
	tap_ok(isnan(sd1[1]) && sd0[1] == 0.0f, "one valid value: NaN with n - 1, 0 with n");
	tap_ok(sd1[2] == 0.0f && sd0[2] == 0.0f, "constant cell: 0");
}

/* qsort comparison of floats. */
static int
cmp_float(const void *a, const void *b)
{
	float		x = *(const float *) a;
	float		y = *(const float *) b;

	return (x > y) - (x < y);
}

/*
 * Percentiles of nm members over nc cells (sorting network up to 128 members, selection above)
 * equal percentiles of fully sorted values; cells get a NaN share from 0 to 100 %, many ties.
 */
static bool
check_percentiles(int nm, size_t nc)
{
	enum
	{
		NF = 6
	};
	const double fr[NF] = {0.9, 0.1, 0.5, 0, 1, 0.5};
	float	  **members = malloc(sizeof(float *) * nm);
	float	   *out = malloc(sizeof(float) * NF * nc);
	float	   *v = malloc(sizeof(float) * nm);
	bool		ok;
	size_t		i;
	int			m,
				k;

	for (m = 0; m < nm; m++)
	{
		members[m] = malloc(sizeof(float) * nc);
		for (i = 0; i < nc; i++)
		{
			double		r = rng_unit();

			if (rng_unit() < (double) (i % 11) / 10.0)
				members[m][i] = NAN;
			else
				members[m][i] = i % 3 == 0 ? (float) (int) (r * 5) : (float) (r * 100 - 50);
		}
	}
	ok = gik_ens_percentile((const float *const *) members, nm, nc, fr, NF, out, test_alloc);
	for (i = 0; i < nc && ok; i++)
	{
		int			n = 0;

		for (m = 0; m < nm; m++)
			if (!isnan(members[m][i]))
				v[n++] = members[m][i];
		qsort(v, n, sizeof(float), cmp_float);
		for (k = 0; k < NF; k++)
		{
			float		want = n > 0 ? (float) gik_percentile_sorted(v, n, fr[k]) : NAN;

			if (!same_float(out[(size_t) k * nc + i], want))
			{
				tap_diag("%d members, cell %zu, fraction %g: got %g, want %g (n=%d)", nm, i, fr[k],
						 out[(size_t) k * nc + i], want, n);
				ok = false;
			}
		}
	}
	for (m = 0; m < nm; m++)
		free(members[m]);
	free(members);
	free(out);
	free(v);
	return ok;
}

/* Percentiles for ensembles of every size from 1 to 64, 51 on many cells, and large ones. */
static void
test_percentiles(void)
{
	bool		ok = true;
	int			nm;

	for (nm = 1; nm <= 64; nm++)
		ok = ok && check_percentiles(nm, 300);
	tap_ok(ok, "sorting network gives the sorted-order percentiles for 1 to 64 members");
	tap_ok(check_percentiles(51, 5000), "51 members over 5000 cells (several blocks)");
	tap_ok(check_percentiles(128, 700) && check_percentiles(129, 700) && check_percentiles(300, 400),
		   "128 members (network), 129 and 300 members (selection)");

	{
		const float s4[4] = {1, 2, 3, 4};
		const float s1[1] = {7};

		tap_ok(close_to(gik_percentile_sorted(s4, 4, 0.1), 1.3, 1e-12) &&
			   close_to(gik_percentile_sorted(s4, 4, 0.9), 3.7, 1e-12) &&
			   gik_percentile_sorted(s4, 4, 0.5) == 2.5 && gik_percentile_sorted(s4, 4, 1) == 4,
			   "numpy 'linear' method on 1..4");
		tap_ok(gik_percentile_sorted(s1, 1, 0.3) == 7, "one value is every percentile");
	}
}

/* Weighted sums propagate NaN; scalar operations and clipping keep NaN. */
static void
test_arithmetic(void)
{
	const float a[3] = {1.5f, NAN, 4};
	const float b[3] = {0.5f, 2, 1};
	double		acc[3] = {0};
	float		out[3];
	const float c[5] = {-1, 0.5f, 2, NAN, -INFINITY};
	float		o5[5];

	gik_grid_wsum_add(a, 3, 1.0, acc);
	gik_grid_wsum_add(b, 3, -1.0, acc);
	gik_grid_to_float(acc, 3, out);
	tap_ok(out[0] == 1.0f && isnan(out[1]) && out[2] == 3.0f, "weighted sum a - b, NaN propagates");

	gik_grid_scalar_op(GIK_GRID_MUL, a, 3, 1000, out);
	tap_ok(out[0] == 1500 && isnan(out[1]) && out[2] == 4000, "multiply by a scalar");
	gik_grid_scalar_op(GIK_GRID_ADD, a, 3, 0.25, out);
	tap_ok(out[0] == 1.75f && isnan(out[1]) && out[2] == 4.25f, "add a scalar");
	gik_grid_scalar_op(GIK_GRID_SUB, a, 3, 1, out);
	tap_ok(out[0] == 0.5f && isnan(out[1]) && out[2] == 3, "subtract a scalar");

	gik_grid_clip_range(c, 5, 0, INFINITY, o5);
	tap_ok(o5[0] == 0 && o5[1] == 0.5f && o5[2] == 2 && isnan(o5[3]) && o5[4] == 0, "clip below 0");
	memcpy(o5, c, sizeof(o5));
	gik_grid_clip_range(o5, 5, 0, 1, o5);
	tap_ok(o5[0] == 0 && o5[1] == 0.5f && o5[2] == 1 && isnan(o5[3]) && o5[4] == 0, "clip to [0, 1] in place");
}

int
main(void)
{
	test_exceedance();
	test_exceedance_blocks();
	test_mean_extremes();
	test_moments();
	test_percentiles();
	test_arithmetic();
	return tap_done();
}
