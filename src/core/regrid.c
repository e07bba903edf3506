/* Bilinear and first-order conservative regridding weights between north-up grids. */
#include "core/regrid.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DEG (M_PI / 180.0)

/* Fraction of a cell: a centre this far outside the source's outer centres still counts as on its edge. */
#define EDGE_TOL 1e-9

bool
gik_regrid_method_parse(const char *s, GikRegridMethod *m)
{
	if (s != NULL && strcasecmp(s, "bilinear") == 0)
		*m = GIK_REGRID_BILINEAR;
	else if (s != NULL && strcasecmp(s, "conservative") == 0)
		*m = GIK_REGRID_CONSERVATIVE;
	else
		return false;
	return true;
}

const char *
gik_regrid_method_name(GikRegridMethod m)
{
	return m == GIK_REGRID_CONSERVATIVE ? "conservative" : "bilinear";
}

/* Centre of target cell (r, c) in degrees. */
static void
cell_lonlat(const GikOutGrid *g, long r, long c, double *lon, double *lat)
{
	if (gik_outgrid_projected(g))
		gik_outgrid_cell_lonlat(g, r, c, lon, lat);
	else
	{
		*lon = g->lon_first + c * g->di;
		*lat = g->lat_first - r * g->dj;
	}
}

/* Fractional column and row of lon/lat in the source grid (north-up indices). */
static void
source_position(const GikOutGrid *s, double lon, double lat, double *fc, double *fr)
{
	if (gik_outgrid_projected(s))
	{
		double		x,
					y;

		gik_proj_forward(&s->proj, lon, lat, &x, &y);
		*fc = (x - s->x_first) / s->di;
		*fr = (s->y_first - y) / s->dj;
		/* a Mercator grid may run past 180 degrees from its central meridian */
		if (s->proj.kind == GIK_PROJ_MERCATOR && *fc < -EDGE_TOL)
			*fc += 2 * M_PI * s->proj.radius * cos(s->proj.lat_ts * DEG) / s->di;
		return;
	}
	{
		double		d = lon - s->lon_first;

		d -= 360.0 * floor((d + EDGE_TOL * s->di) / 360.0);	/* eastwards from the first column */
		*fc = d / s->di;
		*fr = (s->lat_first - lat) / s->dj;
	}
}

/* Lower corner index and fraction along one axis of n centres; false when outside (wrap: n centres round the globe). */
static bool
axis_corner(double f, long n, bool wrap, long *i0, long *i1, double *t)
{
	if (wrap)
	{
		f = fmod(f, (double) n);
		if (f < 0)
			f += n;
		*i0 = (long) floor(f);
		if (*i0 >= n)
			*i0 = n - 1;
		*t = f - *i0;
		*i1 = (*i0 + 1) % n;
		return true;
	}
	if (f < -EDGE_TOL || f > (n - 1) + EDGE_TOL)
		return false;
	if (n == 1)
	{
		*i0 = *i1 = 0;
		*t = 0;
		return true;
	}
	*i0 = (long) floor(f);
	if (*i0 < 0)
		*i0 = 0;
	if (*i0 > n - 2)
		*i0 = n - 2;
	*t = fmin(fmax(f - *i0, 0.0), 1.0);
	*i1 = *i0 + 1;
	return true;
}

static bool
alloc_weights(GikRegridWeights *out, int64_t nnz, GikAllocFn alloc, char *errbuf, size_t errlen)
{
	out->start = alloc(sizeof(int64_t) * (size_t) (out->dst_cells + 1));
	out->idx = alloc(sizeof(int32_t) * (size_t) (nnz > 0 ? nnz : 1));
	out->w = alloc(sizeof(double) * (size_t) (nnz > 0 ? nnz : 1));
	if (out->start && out->idx && out->w)
		return true;
	snprintf(errbuf, errlen, "Out of memory for %lld regridding weights.", (long long) nnz);
	return false;
}

static bool
bilinear(const GikOutGrid *s, const GikOutGrid *d, GikAllocFn alloc, GikCheckFn check,
		 GikRegridWeights *out, char *errbuf, size_t errlen)
{
	bool		wrap = !gik_outgrid_projected(s) && s->global_lon;
	int64_t		k = 0;

	if (!alloc_weights(out, 4 * (int64_t) out->dst_cells, alloc, errbuf, errlen))
		return false;
	for (long r = 0; r < d->nj; r++)
	{
		if (check)
			check();
		for (long c = 0; c < d->ni; c++)
		{
			double		lon,
						lat,
						fc,
						fr,
						tc,
						tr;
			long		c0,
						c1,
						r0,
						r1;

			out->start[r * d->ni + c] = k;
			cell_lonlat(d, r, c, &lon, &lat);
			source_position(s, lon, lat, &fc, &fr);
			if (!axis_corner(fc, s->ni, wrap, &c0, &c1, &tc) || !axis_corner(fr, s->nj, false, &r0, &r1, &tr))
				continue;
			{
				long		cells[4] = {r0 * s->ni + c0, r0 * s->ni + c1, r1 * s->ni + c0, r1 * s->ni + c1};
				double		ws[4] = {(1 - tc) * (1 - tr), tc * (1 - tr), (1 - tc) * tr, tc * tr};

				for (int j = 0; j < 4; j++)
				{
					out->idx[k] = (int32_t) cells[j];
					out->w[k++] = ws[j];
				}
			}
		}
	}
	out->start[out->dst_cells] = k;
	out->nnz = k;
	return true;
}

/* 1-D overlaps: for target index t, pairs (source index, weight) in [start[t], start[t+1]). */
typedef struct Overlaps
{
	long	   *start;
	long	   *src;
	double	   *w;
	long		n;
} Overlaps;

/* Latitude bands: weight sin(top) - sin(bottom) of the overlap (area per radian of longitude). */
static bool
lat_overlaps(const GikOutGrid *s, const GikOutGrid *d, GikAllocFn alloc, Overlaps *o)
{
	long		cap = d->nj * 2 + s->nj * 2 + 8;
	long		n = 0;

	o->start = alloc(sizeof(long) * (size_t) (d->nj + 1));
	o->src = alloc(sizeof(long) * (size_t) cap);
	o->w = alloc(sizeof(double) * (size_t) cap);
	if (!o->start || !o->src || !o->w)
		return false;
	for (long t = 0; t < d->nj; t++)
	{
		double		tlat = d->lat_first - t * d->dj;
		double		thi = fmin(90.0, tlat + d->dj / 2),
					tlo = fmax(-90.0, tlat - d->dj / 2);

		o->start[t] = n;
		for (long j = 0; j < s->nj; j++)
		{
			double		slat = s->lat_first - j * s->dj;
			double		hi = fmin(thi, fmin(90.0, slat + s->dj / 2));
			double		lo = fmax(tlo, fmax(-90.0, slat - s->dj / 2));

			if (hi <= lo)
				continue;
			if (n == cap)
				return false;
			o->src[n] = j;
			o->w[n++] = sin(hi * DEG) - sin(lo * DEG);
		}
	}
	o->start[d->nj] = n;
	o->n = n;
	return true;
}

/* Longitude intervals, compared modulo 360: weight the overlap in radians. */
static bool
lon_overlaps(const GikOutGrid *s, const GikOutGrid *d, GikAllocFn alloc, Overlaps *o)
{
	long		cap = 3 * (d->ni * 2 + s->ni * 2) + 8;
	long		n = 0;

	o->start = alloc(sizeof(long) * (size_t) (d->ni + 1));
	o->src = alloc(sizeof(long) * (size_t) cap);
	o->w = alloc(sizeof(double) * (size_t) cap);
	if (!o->start || !o->src || !o->w)
		return false;
	for (long t = 0; t < d->ni; t++)
	{
		double		tlon = d->lon_first + t * d->di;
		double		tlo = tlon - d->di / 2,
					thi = tlon + d->di / 2;

		o->start[t] = n;
		for (long i = 0; i < s->ni; i++)
		{
			double		slon = s->lon_first + i * s->di;
			double		sum = 0;

			/* the source cell shifted by whole turns towards the target */
			double		shift = 360.0 * round((tlon - slon) / 360.0);

			for (int k = -1; k <= 1; k++)
			{
				double		lo = fmax(tlo, slon + shift + 360.0 * k - s->di / 2);
				double		hi = fmin(thi, slon + shift + 360.0 * k + s->di / 2);

				if (hi > lo)
					sum += (hi - lo) * DEG;
			}
			if (sum <= 0)
				continue;
			if (n == cap)
				return false;
			o->src[n] = i;
			o->w[n++] = sum;
		}
	}
	o->start[d->ni] = n;
	o->n = n;
	return true;
}

/* A polygon in the cylindrical equal-area plane: x = longitude (radians), y = sin(latitude). */
#define POLY_MAX 16

typedef struct Poly
{
	int			n;
	double		x[POLY_MAX];
	double		y[POLY_MAX];
} Poly;

/* Keep the part of p on one side of an axis-parallel line (Sutherland-Hodgman). */
static void
clip_edge(const Poly *p, Poly *out, bool on_x, double v, bool keep_above)
{
	out->n = 0;
	for (int i = 0; i < p->n; i++)
	{
		int			j = (i + 1) % p->n;
		double		ai = on_x ? p->x[i] : p->y[i];
		double		aj = on_x ? p->x[j] : p->y[j];
		bool		in_i = keep_above ? ai >= v : ai <= v;
		bool		in_j = keep_above ? aj >= v : aj <= v;

		if (in_i && out->n < POLY_MAX)
		{
			out->x[out->n] = p->x[i];
			out->y[out->n++] = p->y[i];
		}
		if (in_i != in_j && out->n < POLY_MAX)
		{
			double		t = (v - ai) / (aj - ai);

			out->x[out->n] = p->x[i] + t * (p->x[j] - p->x[i]);
			out->y[out->n++] = p->y[i] + t * (p->y[j] - p->y[i]);
		}
	}
}

/* Area of p inside the rectangle [x0, x1] x [y0, y1]. */
static double
clipped_area(const Poly *p, double x0, double x1, double y0, double y1)
{
	Poly		a,
				b;
	double		area = 0;

	clip_edge(p, &a, true, x0, true);
	clip_edge(&a, &b, true, x1, false);
	clip_edge(&b, &a, false, y0, true);
	clip_edge(&a, &b, false, y1, false);
	for (int i = 0; i < b.n; i++)
	{
		int			j = (i + 1) % b.n;

		area += b.x[i] * b.y[j] - b.x[j] * b.y[i];
	}
	return fabs(area) / 2;
}

typedef struct Triple
{
	int32_t		dst;
	int32_t		src;
	double		w;
} Triple;

/* Where a projected source cell lies: its polygon and the target rows and (unwrapped) columns it may touch. */
typedef struct CellSpan
{
	Poly		p;
	double		west;			/* the target's west edge, shifted into the cell's turn */
	long		c0,
				c1,
				r0,
				r1;
} CellSpan;

static void
cell_span(const GikOutGrid *s, const GikOutGrid *d, long r, long c, CellSpan *cs)
{
	static const double cx[4] = {-0.5, 0.5, 0.5, -0.5},
				cy[4] = {-0.5, -0.5, 0.5, 0.5};
	double		clon,
				clat,
				lon_min = 1e9,
				lon_max = -1e9,
				lat_min = 90,
				lat_max = -90;
	double		west = d->lon_first - d->di / 2;

	gik_proj_inverse(&s->proj, s->x_first + c * s->di, s->y_first - r * s->dj, &clon, &clat);
	cs->p.n = 4;
	for (int q = 0; q < 4; q++)
	{
		double		lon,
					lat;

		gik_proj_inverse(&s->proj, s->x_first + (c + cx[q]) * s->di, s->y_first - (r + cy[q]) * s->dj, &lon, &lat);
		lon = clon + remainder(lon - clon, 360.0);
		lon_min = fmin(lon_min, lon);
		lon_max = fmax(lon_max, lon);
		lat_min = fmin(lat_min, lat);
		lat_max = fmax(lat_max, lat);
		cs->p.x[q] = lon * DEG;
		cs->p.y[q] = sin(lat * DEG);
	}
	cs->west = west + 360.0 * floor((lon_min - west) / 360.0);
	cs->c0 = (long) floor((lon_min - cs->west) / d->di);
	cs->c1 = (long) floor((lon_max - cs->west) / d->di);
	cs->r0 = (long) floor((d->lat_first + d->dj / 2 - lat_max) / d->dj);
	cs->r1 = (long) floor((d->lat_first + d->dj / 2 - lat_min) / d->dj);
	cs->r0 = cs->r0 < 0 ? 0 : cs->r0;
	cs->r1 = cs->r1 > d->nj - 1 ? d->nj - 1 : cs->r1;
}

/*
 * Conservative from a projected source to a regular lat/lon target: each source cell is the
 * quadrilateral of its corners, with straight edges in the cylindrical equal-area plane (exact
 * in area for the target's cells; for the source's, the error is that of a chord over one cell).
 * A first pass bounds the number of overlaps, the second computes them.
 */
static bool
conservative_projected(const GikOutGrid *s, const GikOutGrid *d, GikAllocFn alloc, GikCheckFn check,
					   GikRegridWeights *out, char *errbuf, size_t errlen)
{
	size_t		cap = 0,
				n = 0;
	Triple	   *t;
	int64_t    *fill;
	CellSpan	cs;

	for (long r = 0; r < s->nj; r++)
	{
		if (check)
			check();
		for (long c = 0; c < s->ni; c++)
		{
			cell_span(s, d, r, c, &cs);
			if (cs.r1 >= cs.r0 && cs.c1 >= cs.c0)
				cap += (size_t) (cs.r1 - cs.r0 + 1) * (size_t) (cs.c1 - cs.c0 + 1);
		}
	}
	t = alloc(sizeof(Triple) * (cap ? cap : 1));
	if (t == NULL)
	{
		snprintf(errbuf, errlen, "Out of memory for %zu conservative regridding overlaps.", cap);
		return false;
	}
	for (long r = 0; r < s->nj; r++)
	{
		if (check)
			check();
		for (long c = 0; c < s->ni; c++)
		{
			cell_span(s, d, r, c, &cs);
			for (long tr = cs.r0; tr <= cs.r1; tr++)
			{
				double		tlat = d->lat_first - tr * d->dj;
				double		y0 = sin(fmax(-90.0, tlat - d->dj / 2) * DEG),
							y1 = sin(fmin(90.0, tlat + d->dj / 2) * DEG);

				for (long tc = cs.c0; tc <= cs.c1; tc++)
				{
					long		col = d->global_lon ? ((tc % d->ni) + d->ni) % d->ni : tc;
					double		x0 = (cs.west + tc * d->di) * DEG;
					double		w;

					if (col < 0 || col >= d->ni)
						continue;
					w = clipped_area(&cs.p, x0, x0 + d->di * DEG, y0, y1);
					if (w <= 0)
						continue;
					t[n].dst = (int32_t) (tr * d->ni + col);
					t[n].src = (int32_t) (r * s->ni + c);
					t[n++].w = w;
				}
			}
		}
	}
	if (!alloc_weights(out, (int64_t) n, alloc, errbuf, errlen) ||
		(fill = alloc(sizeof(int64_t) * (size_t) (out->dst_cells + 1))) == NULL)
	{
		snprintf(errbuf, errlen, "Out of memory for %zu conservative regridding weights.", n);
		return false;
	}
	/* counting sort by target cell */
	memset(out->start, 0, sizeof(int64_t) * (size_t) (out->dst_cells + 1));
	for (size_t i = 0; i < n; i++)
		out->start[t[i].dst + 1]++;
	for (long i = 0; i < out->dst_cells; i++)
		out->start[i + 1] += out->start[i];
	memcpy(fill, out->start, sizeof(int64_t) * (size_t) (out->dst_cells + 1));
	for (size_t i = 0; i < n; i++)
	{
		int64_t		k = fill[t[i].dst]++;

		out->idx[k] = t[i].src;
		out->w[k] = t[i].w;
	}
	out->nnz = (int64_t) n;
	return true;
}

static bool
conservative(const GikOutGrid *s, const GikOutGrid *d, GikAllocFn alloc, GikCheckFn check,
			 GikRegridWeights *out, char *errbuf, size_t errlen)
{
	Overlaps	rows,
				cols;
	int64_t		nnz = 0,
				k = 0;

	if (gik_outgrid_projected(d))
	{
		snprintf(errbuf, errlen,
				 "Conservative regridding needs a regular latitude/longitude target grid; use bilinear for a projected target.");
		return false;
	}
	if (gik_outgrid_projected(s))
		return conservative_projected(s, d, alloc, check, out, errbuf, errlen);
	if (!lat_overlaps(s, d, alloc, &rows) || !lon_overlaps(s, d, alloc, &cols))
	{
		snprintf(errbuf, errlen, "Out of memory for conservative regridding overlaps.");
		return false;
	}
	for (long r = 0; r < d->nj; r++)
		nnz += (int64_t) (rows.start[r + 1] - rows.start[r]) * (int64_t) cols.n;
	if (!alloc_weights(out, nnz, alloc, errbuf, errlen))
		return false;
	for (long r = 0; r < d->nj; r++)
	{
		if (check)
			check();
		for (long c = 0; c < d->ni; c++)
		{
			out->start[r * d->ni + c] = k;
			for (long a = rows.start[r]; a < rows.start[r + 1]; a++)
				for (long b = cols.start[c]; b < cols.start[c + 1]; b++)
				{
					out->idx[k] = (int32_t) (rows.src[a] * s->ni + cols.src[b]);
					out->w[k++] = rows.w[a] * cols.w[b];
				}
		}
	}
	out->start[out->dst_cells] = k;
	out->nnz = k;
	return true;
}

bool
gik_regrid_weights(const GikOutGrid *src, const GikOutGrid *dst, GikRegridMethod method,
				   GikAllocFn alloc, GikCheckFn check, GikRegridWeights *out,
				   char *errbuf, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (src->ni <= 0 || src->nj <= 0 || dst->ni <= 0 || dst->nj <= 0 ||
		!(src->di > 0) || !(src->dj > 0) || !(dst->di > 0) || !(dst->dj > 0) ||
		(double) src->ni * (double) src->nj > INT32_MAX || (double) dst->ni * (double) dst->nj > INT32_MAX)
	{
		snprintf(errbuf, errlen, "Regridding needs two north-up grids with cells (source %ld x %ld, target %ld x %ld).",
				 src->ni, src->nj, dst->ni, dst->nj);
		return false;
	}
	out->method = method;
	out->src_cells = src->ni * src->nj;
	out->dst_cells = dst->ni * dst->nj;
	if (method == GIK_REGRID_CONSERVATIVE)
		return conservative(src, dst, alloc, check, out, errbuf, errlen);
	return bilinear(src, dst, alloc, check, out, errbuf, errlen);
}

void
gik_regrid_apply(const GikRegridWeights *w, const float *src, float *dst)
{
	for (long t = 0; t < w->dst_cells; t++)
	{
		double		sum = 0,
					wsum = 0;
		int64_t		j0 = w->start[t],
					j1 = w->start[t + 1];
		bool		any_nan = false;

		for (int64_t j = j0; j < j1; j++)
		{
			float		v = src[w->idx[j]];

			if (isnan(v))
			{
				any_nan = any_nan || w->w[j] > 0;
				continue;
			}
			sum += w->w[j] * v;
			wsum += w->w[j];
		}
		if (j0 == j1 || wsum <= 0 || (any_nan && w->method == GIK_REGRID_BILINEAR))
			dst[t] = NAN;
		else
			dst[t] = (float) (w->method == GIK_REGRID_CONSERVATIVE ? sum / wsum : sum);
	}
}

size_t
gik_regrid_weights_bytes(const GikRegridWeights *w)
{
	return sizeof(int64_t) * (size_t) (w->dst_cells + 1) + (sizeof(int32_t) + sizeof(double)) * (size_t) w->nnz;
}
