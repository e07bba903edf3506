/*
 * Unit tests of output grids: scanning modes, longitude conventions, boxes, coordinates,
 * checked on synthetic grids with exact expectations and on the real GRIB files in
 * test/data against ecCodes' own coordinates of every point.
 */
#include "core/grid.h"
#include "decoder/eccodes_meta.h"
#include "tap.h"

#include <eccodes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Scanning mode bits (GRIB2 flag table 3.4). */
#define SCAN_I_NEG 0x80
#define SCAN_J_POS 0x40
#define SCAN_J_CONSECUTIVE 0x20

/* Synthetic values encode their message position as j * VALUE_J + i (exact in float). */
#define VALUE_J 10000

static const char *data_dir;

/* The grids of the brief: GEFS/GFS 0.25 and 0.5, ECMWF 0.25 and 0.4, GFS-Wave Atlantic 0.16. */
static GikGrid gefs25, ecmwf25, ecmwf40, gefs50, gfswave;

/* A GikGrid as gik_meta_read fills it. */
static GikGrid
make_grid(const char *type, long ni, long nj, double lat_first, double lon_first,
		  double lat_last, double lon_last, double di, double dj, long mode)
{
	GikGrid		g;

	memset(&g, 0, sizeof(g));
	snprintf(g.grid_type, sizeof(g.grid_type), "%s", type);
	g.ni = ni;
	g.nj = nj;
	g.num_points = ni * nj;
	g.lat_first = lat_first;
	g.lon_first = lon_first;
	g.lat_last = lat_last;
	g.lon_last = lon_last;
	g.di = di;
	g.dj = dj;
	g.scanning_mode = mode;
	g.i_scans_negatively = (mode & SCAN_I_NEG) != 0;
	g.j_scans_positively = (mode & SCAN_J_POS) != 0;
	g.j_points_consecutive = (mode & SCAN_J_CONSECUTIVE) != 0;
	return g;
}

/* A box from west, south, east, north. */
static GikBox
make_box(double lon_min, double lat_min, double lon_max, double lat_max)
{
	GikBox		b = {lon_min, lat_min, lon_max, lat_max};

	return b;
}

/* Report a double equal to an expected one within 1e-9. */
static bool
is_num(double got, double expected, const char *fmt, ...)
{
	char		what[256];
	va_list		ap;
	bool		ok = fabs(got - expected) <= 1e-9;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	tap_ok(ok, "%s", what);
	if (!ok)
		tap_diag("got %.12g, expected %.12g", got, expected);
	return ok;
}

/* Plan with test_alloc; a diagnostic on failure. */
static bool
plan(const GikGrid *g, GikLonConvention conv, const GikBox *box, GikGridPlan *p)
{
	char		err[512];

	if (gik_grid_plan(g, conv, box, test_alloc, p, err, sizeof(err)))
		return true;
	tap_diag("plan failed: %s", err);
	return false;
}

/* Plan that must fail; the error sentence goes to err. */
static bool
plan_fails(const GikGrid *g, GikLonConvention conv, const GikBox *box, char *err, size_t errlen)
{
	GikGridPlan p;

	err[0] = '\0';
	return !gik_grid_plan(g, conv, box, test_alloc, &p, err, errlen);
}

/* x shifted by a multiple of 360 into [0, 360). */
static double
wrap360(double x)
{
	return x - 360.0 * floor(x / 360.0);
}

/* Message index of (i, j) in the grid's storage order. */
static size_t
message_index(const GikGrid *g, long i, long j)
{
	return g->j_points_consecutive ? (size_t) (i * g->nj + j) : (size_t) (j * g->ni + i);
}

/* Values in message order with value = j * VALUE_J + i. */
static double *
position_values(const GikGrid *g)
{
	double	   *v = test_alloc(sizeof(double) * (size_t) (g->ni * g->nj));
	long		i;
	long		j;

	for (j = 0; j < g->nj; j++)
		for (i = 0; i < g->ni; i++)
			v[message_index(g, i, j)] = (double) (j * VALUE_J + i);
	return v;
}

/*
 * Apply a plan to position values and check every output cell against geography: its
 * lat/lon (gik_grid_lats/lons) must be where the message's own description puts the
 * point its value came from (lat_first -/+ j*dj, lon_first +/- i*di, modulo 360).
 */
static bool
cells_match_geography(const GikGrid *g, const GikGridPlan *p, double tol, const char *label)
{
	double	   *values = position_values(g);
	float	   *out = test_alloc(sizeof(float) * (size_t) (p->out.ni * p->out.nj));
	double	   *lats = test_alloc(sizeof(double) * (size_t) p->out.nj);
	double	   *lons = test_alloc(sizeof(double) * (size_t) p->out.ni);
	double		dj = g->j_scans_positively ? g->dj : -g->dj;
	double		di = g->i_scans_negatively ? -g->di : g->di;
	long		r;
	long		c;

	gik_grid_apply(p, values, (size_t) (g->ni * g->nj), -1.0, out);
	gik_outgrid_lats(&p->out, lats);
	gik_outgrid_lons(&p->out, lons);
	for (r = 0; r < p->out.nj; r++)
		for (c = 0; c < p->out.ni; c++)
		{
			double		v = out[r * p->out.ni + c];
			long		j = (long) v / VALUE_J;
			long		i = (long) v % VALUE_J;
			double		dlon = wrap360(g->lon_first + i * di - lons[c] + 180.0) - 180.0;

			if (fabs(g->lat_first + j * dj - lats[r]) > tol || fabs(dlon) > tol)
			{
				tap_ok(false, "%s: every cell holds the value of its own point", label);
				tap_diag("cell (%ld, %ld) at %.6f, %.6f holds message point i=%ld j=%ld",
						 r, c, lats[r], lons[c], i, j);
				return false;
			}
		}
	return tap_ok(true, "%s: every cell holds the value of its own point", label);
}

/* Output grid dimensions, first/last coordinates and the first/last source columns. */
static void
check_out(const GikGridPlan *p, const char *label, long ni, long nj, double lon_first,
		  double lon_last, double lat_first, double lat_last, long col_first, long col_last)
{
	tap_ok(p->out.ni == ni && p->out.nj == nj, "%s: %ld x %ld cells (got %ld x %ld)",
		   label, ni, nj, p->out.ni, p->out.nj);
	is_num(p->out.lon_first, lon_first, "%s: lon_first %g", label, lon_first);
	is_num(p->out.lon_last, lon_last, "%s: lon_last %g", label, lon_last);
	is_num(p->out.lat_first, lat_first, "%s: lat_first %g", label, lat_first);
	is_num(p->out.lat_last, lat_last, "%s: lat_last %g", label, lat_last);
	tap_ok(p->out.ni > 0 && p->col_src[0] == col_first && p->col_src[p->out.ni - 1] == col_last,
		   "%s: source columns %ld..%ld (got %d..%d)", label, col_first, col_last,
		   p->out.ni > 0 ? p->col_src[0] : -1, p->out.ni > 0 ? p->col_src[p->out.ni - 1] : -1);
}

/* Whole global grids in each convention. */
static void
test_global(void)
{
	GikGridPlan p;

	if (plan(&gefs25, GIK_LON_SOURCE, NULL, &p))
	{
		check_out(&p, "GEFS 0.25 source", 1440, 721, 0, 359.75, 90, -90, 0, 1439);
		tap_ok(p.out.global_lon && p.out.di == 0.25 && p.out.dj == 0.25, "GEFS 0.25 is global, 0.25 x 0.25");
		tap_ok(p.row_src[0] == 0 && p.row_src[720] == 720, "GEFS 0.25 rows keep their order");
	}
	if (plan(&gefs25, GIK_LON_180, NULL, &p))
	{
		check_out(&p, "GEFS 0.25 -180..180", 1440, 721, -180, 179.75, 90, -90, 720, 719);
		cells_match_geography(&gefs25, &p, 1e-9, "GEFS 0.25 -180..180");
	}
	if (plan(&gefs25, GIK_LON_360, NULL, &p))
		check_out(&p, "GEFS 0.25 0..360", 1440, 721, 0, 359.75, 90, -90, 0, 1439);

	if (plan(&ecmwf25, GIK_LON_SOURCE, NULL, &p))
	{
		check_out(&p, "ECMWF 0.25 source (180 means -180)", 1440, 721, -180, 179.75, 90, -90, 0, 1439);
		tap_ok(p.out.global_lon, "ECMWF 0.25 is global");
	}
	if (plan(&ecmwf25, GIK_LON_180, NULL, &p))
		check_out(&p, "ECMWF 0.25 -180..180", 1440, 721, -180, 179.75, 90, -90, 0, 1439);
	if (plan(&ecmwf25, GIK_LON_360, NULL, &p))
	{
		check_out(&p, "ECMWF 0.25 0..360", 1440, 721, 0, 359.75, 90, -90, 720, 719);
		cells_match_geography(&ecmwf25, &p, 1e-9, "ECMWF 0.25 0..360");
	}

	if (plan(&ecmwf40, GIK_LON_SOURCE, NULL, &p))
		check_out(&p, "ECMWF 0.4 source", 900, 451, -180, 179.6, 90, -90, 0, 899);
	if (plan(&ecmwf40, GIK_LON_360, NULL, &p))
	{
		check_out(&p, "ECMWF 0.4 0..360", 900, 451, 0, 359.6, 90, -90, 450, 449);
		cells_match_geography(&ecmwf40, &p, 1e-9, "ECMWF 0.4 0..360");
	}

	if (plan(&gefs50, GIK_LON_180, NULL, &p))
	{
		check_out(&p, "GEFS 0.5 -180..180", 720, 361, -180, 179.5, 90, -90, 360, 359);
		cells_match_geography(&gefs50, &p, 1e-9, "GEFS 0.5 -180..180");
	}
}

/* Field values that depend only on where a point is: the same place gives the same value. */
static double *
geographic_values(const GikGrid *g)
{
	double	   *v = test_alloc(sizeof(double) * (size_t) (g->ni * g->nj));
	long		i;
	long		j;

	for (j = 0; j < g->nj; j++)
		for (i = 0; i < g->ni; i++)
		{
			double		lat = g->lat_first - j * g->dj;
			double		lon = wrap360(g->lon_first + i * g->di);

			v[message_index(g, i, j)] = round((lat + 90) * 4) * VALUE_J + round(lon * 4);
		}
	return v;
}

/* One box on the GEFS-style and ECMWF-style grids gives the same cells, coordinates and values. */
static void
check_same_box(const GikBox *box, GikLonConvention conv, const char *label, long ni, long nj)
{
	GikGridPlan pg;
	GikGridPlan pe;
	size_t		n;
	float	   *out_g;
	float	   *out_e;
	double	   *lat_g;
	double	   *lat_e;
	double	   *lon_g;
	double	   *lon_e;

	if (!plan(&gefs25, conv, box, &pg) || !plan(&ecmwf25, conv, box, &pe))
	{
		tap_ok(false, "%s: both grids plan", label);
		return;
	}
	tap_ok(pg.out.ni == ni && pg.out.nj == nj && pe.out.ni == ni && pe.out.nj == nj,
		   "%s: %ld x %ld cells on both grids (got %ld x %ld and %ld x %ld)", label, ni, nj,
		   pg.out.ni, pg.out.nj, pe.out.ni, pe.out.nj);
	if (pg.out.ni != pe.out.ni || pg.out.nj != pe.out.nj)
		return;
	n = (size_t) (pg.out.ni * pg.out.nj);
	out_g = test_alloc(sizeof(float) * n);
	out_e = test_alloc(sizeof(float) * n);
	lat_g = test_alloc(sizeof(double) * (size_t) pg.out.nj);
	lat_e = test_alloc(sizeof(double) * (size_t) pg.out.nj);
	lon_g = test_alloc(sizeof(double) * (size_t) pg.out.ni);
	lon_e = test_alloc(sizeof(double) * (size_t) pg.out.ni);
	gik_grid_apply(&pg, geographic_values(&gefs25), (size_t) (1440 * 721), 9999, out_g);
	gik_grid_apply(&pe, geographic_values(&ecmwf25), (size_t) (1440 * 721), 9999, out_e);
	gik_outgrid_lats(&pg.out, lat_g);
	gik_outgrid_lats(&pe.out, lat_e);
	gik_outgrid_lons(&pg.out, lon_g);
	gik_outgrid_lons(&pe.out, lon_e);
	tap_ok(memcmp(lat_g, lat_e, sizeof(double) * (size_t) pg.out.nj) == 0 &&
		   memcmp(lon_g, lon_e, sizeof(double) * (size_t) pg.out.ni) == 0,
		   "%s: same lats and lons arrays on both grids", label);
	tap_ok(memcmp(out_g, out_e, sizeof(float) * n) == 0, "%s: same values on both grids", label);
}

/* East Africa selects the same 129 x 141 cell centres from GEFS and ECMWF grids. */
static void
test_east_africa(void)
{
	GikBox		ea = make_box(21, -12, 53, 23);
	GikBox		ea_shifted = make_box(21 + 360, -12, 53 - 360, 23);
	GikGridPlan p;
	double		lats[141];
	double		lons[129];

	if (plan(&gefs25, GIK_LON_SOURCE, &ea, &p))
	{
		check_out(&p, "East Africa on GEFS", 129, 141, 21, 53, 23, -12, 84, 212);
		gik_outgrid_lats(&p.out, lats);
		gik_outgrid_lons(&p.out, lons);
		tap_ok(lats[0] == 23 && lats[1] == 22.75 && lats[140] == -12 && lons[0] == 21 &&
			   lons[1] == 21.25 && lons[128] == 53, "East Africa lats 23..-12 and lons 21..53 by 0.25");
		tap_ok(p.row_src[0] == 268 && p.row_src[140] == 408, "East Africa rows 268..408");
	}
	if (plan(&ecmwf25, GIK_LON_SOURCE, &ea, &p))
		check_out(&p, "East Africa on ECMWF", 129, 141, 21, 53, 23, -12, 804, 932);
	check_same_box(&ea, GIK_LON_SOURCE, "East Africa source", 129, 141);
	check_same_box(&ea, GIK_LON_180, "East Africa -180..180", 129, 141);
	check_same_box(&ea, GIK_LON_360, "East Africa 0..360", 129, 141);
	check_same_box(&ea_shifted, GIK_LON_180, "East Africa given as 381..-307", 129, 141);
}

/* Boxes across 0 and 180 degrees, given in either convention, on both grids. */
static void
test_seam_boxes(void)
{
	GikBox		across0[] = {make_box(-10, -5, 10, 5), make_box(350, -5, 10, 5)};
	GikBox		across180[] = {make_box(170, -5, -170, 5), make_box(170, -5, 190, 5)};
	GikGridPlan p;
	int			k;

	for (k = 0; k < 2; k++)
	{
		const GikBox *b = &across0[k];
		char		label[64];

		snprintf(label, sizeof(label), "box %g..%g", b->lon_min, b->lon_max);
		if (plan(&gefs25, GIK_LON_180, b, &p))
			check_out(&p, "GEFS -180..180 across 0", 81, 41, -10, 10, 5, -5, 1400, 40);
		if (plan(&gefs25, GIK_LON_360, b, &p))
			check_out(&p, "GEFS 0..360 across 0", 81, 41, 350, 370, 5, -5, 1400, 40);
		if (plan(&gefs25, GIK_LON_SOURCE, b, &p))
		{
			check_out(&p, "GEFS source across 0 (0..360)", 81, 41, 350, 370, 5, -5, 1400, 40);
			cells_match_geography(&gefs25, &p, 1e-9, "GEFS source across 0");
		}
		if (plan(&ecmwf25, GIK_LON_SOURCE, b, &p))
		{
			check_out(&p, "ECMWF source across 0 (-180..180)", 81, 41, -10, 10, 5, -5, 680, 760);
			cells_match_geography(&ecmwf25, &p, 1e-9, "ECMWF source across 0");
		}
		if (plan(&ecmwf25, GIK_LON_360, b, &p))
			check_out(&p, "ECMWF 0..360 across 0", 81, 41, 350, 370, 5, -5, 680, 760);
		check_same_box(b, GIK_LON_180, label, 81, 41);
	}
	for (k = 0; k < 2; k++)
	{
		const GikBox *b = &across180[k];
		char		label[64];

		snprintf(label, sizeof(label), "box %g..%g", b->lon_min, b->lon_max);
		if (plan(&gefs25, GIK_LON_180, b, &p))
		{
			check_out(&p, "GEFS -180..180 across 180", 81, 41, 170, 190, 5, -5, 680, 760);
			cells_match_geography(&gefs25, &p, 1e-9, "GEFS -180..180 across 180");
		}
		if (plan(&gefs25, GIK_LON_360, b, &p))
			check_out(&p, "GEFS 0..360 across 180", 81, 41, 170, 190, 5, -5, 680, 760);
		if (plan(&ecmwf25, GIK_LON_180, b, &p))
		{
			check_out(&p, "ECMWF -180..180 across 180", 81, 41, 170, 190, 5, -5, 1400, 40);
			cells_match_geography(&ecmwf25, &p, 1e-9, "ECMWF -180..180 across 180");
		}
		if (plan(&ecmwf25, GIK_LON_SOURCE, b, &p))
			check_out(&p, "ECMWF source across 180", 81, 41, 170, 190, 5, -5, 1400, 40);
		check_same_box(b, GIK_LON_360, label, 81, 41);
	}
}

/* Boxes at the edges: the whole circle, one meridian, a box wider than 360. */
static void
test_box_edges(void)
{
	GikBox		whole = make_box(-180, -90, 180, 90);
	GikBox		wider = make_box(-200, -90, 300, 90);
	GikBox		meridian = make_box(0, 0, 0, 0);
	GikBox		between = make_box(0.1, 0.1, 0.2, 0.2);
	GikBox		rounding = make_box(-171.2, 86.4, -170, 89.6);
	GikGridPlan p;
	char		err[512];

	if (plan(&gefs25, GIK_LON_180, &whole, &p))
		check_out(&p, "box -180..180 on GEFS takes each column once", 1440, 721, -180, 179.75, 90, -90, 720, 719);
	if (plan(&ecmwf25, GIK_LON_SOURCE, &wider, &p))
		check_out(&p, "box -200..300 on ECMWF takes each column once", 1440, 721, 160, 519.75, 90, -90, 1360, 1359);
	if (plan(&ecmwf25, GIK_LON_360, &meridian, &p))
		check_out(&p, "box 0..0 x 0..0 is one cell", 1, 1, 0, 0, 0, 0, 720, 720);
	/* (-171.2 + 180) / 0.4 is 22.00000000000003 and (90 - 86.4) / 0.4 is 8.999999999999986 */
	if (plan(&ecmwf40, GIK_LON_SOURCE, &rounding, &p))
		check_out(&p, "box edges on 0.4 centres are inside despite rounding", 4, 9, -171.2, -170, 89.6, 86.4, 22, 25);
	tap_ok(plan_fails(&gefs25, GIK_LON_SOURCE, &between, err, sizeof(err)) &&
		   strstr(err, "Box lon 0.1..0.2, lat 0.1..0.2 contains no grid cell centre") != NULL,
		   "a box between cell centres is an error naming the box: %s", err);
}

/* Scanning modes: j positive (south to north), i negative, j consecutive, all three. */
static void
test_scanning_modes(void)
{
	static const long modes[] = {0, SCAN_J_POS, SCAN_I_NEG, SCAN_J_CONSECUTIVE,
		SCAN_I_NEG | SCAN_J_POS, SCAN_I_NEG | SCAN_J_POS | SCAN_J_CONSECUTIVE};
	GikBox		box = make_box(-75.5, 10.25, -60, 20);
	size_t		k;

	for (k = 0; k < sizeof(modes) / sizeof(modes[0]); k++)
	{
		long		mode = modes[k];
		bool		jpos = (mode & SCAN_J_POS) != 0;
		bool		ineg = (mode & SCAN_I_NEG) != 0;
		GikGrid		g = make_grid("regular_ll", 301, 331, jpos ? 0 : 55, ineg ? 310 : 260,
								  jpos ? 55 : 0, ineg ? 260 : 310, 0.166667, 0.166667, mode);
		double	   *values = position_values(&g);
		GikGridPlan p;
		char		label[64];
		float	   *out;

		snprintf(label, sizeof(label), "GFS-Wave scanning mode %ld", mode);
		if (!plan(&g, GIK_LON_SOURCE, NULL, &p))
			continue;
		check_out(&p, label, 301, 331, 260, 310, 55, 0, ineg ? 300 : 0, ineg ? 0 : 300);
		tap_ok(p.row_src[0] == (jpos ? 330 : 0) && p.row_src[330] == (jpos ? 0 : 330),
			   "%s: rows north-up", label);
		cells_match_geography(&g, &p, 1e-3, label);

		/* the north-west cells hold the message points of that corner */
		out = test_alloc(sizeof(float) * 301 * 331);
		gik_grid_apply(&p, values, (size_t) (301 * 331), -1, out);
		tap_ok(out[0] == (jpos ? 330 : 0) * VALUE_J + (ineg ? 300 : 0) &&
			   out[302] == (jpos ? 329 : 1) * VALUE_J + (ineg ? 299 : 1),
			   "%s: north-west cells hold points (%d, %d) and (%d, %d) (got %.0f, %.0f)", label,
			   ineg ? 300 : 0, jpos ? 330 : 0, ineg ? 299 : 1, jpos ? 329 : 1, out[0], out[302]);

		if (plan(&g, GIK_LON_180, &box, &p))
		{
			check_out(&p, label, 94, 59, -75.5, -60, 20, 10.33333333333, ineg ? 153 : 147, ineg ? 60 : 240);
			cells_match_geography(&g, &p, 1e-3, label);
		}
	}
}

/* A regional grid keeps its columns; conventions shift lon_first; boxes in either convention. */
static void
test_regional(void)
{
	GikBox		box180 = make_box(-95, 10, -60, 30);
	GikBox		box360 = make_box(265, 10, 300, 30);
	GikBox		split = make_box(300, 10, 270, 30);
	GikBox		far = make_box(0, 10, 10, 30);
	GikGrid		across0 = make_grid("regular_ll", 81, 21, 5, 350, 0, 10, 0.25, 0.25, 0);
	GikBox		east_part = make_box(5, -1, 15, 6);
	GikGridPlan p;
	GikGridPlan q;
	char		err[512];

	if (plan(&gfswave, GIK_LON_SOURCE, NULL, &p))
	{
		check_out(&p, "GFS-Wave source", 301, 331, 260, 310, 55, 0, 0, 300);
		tap_ok(!p.out.global_lon, "GFS-Wave is not global");
		is_num(p.out.di, 1.0 / 6, "GFS-Wave di is 1/6 from its end points, not the rounded 0.166667");
		is_num(p.out.dj, 1.0 / 6, "GFS-Wave dj is 1/6 from its end points");
	}
	if (plan(&gfswave, GIK_LON_180, NULL, &p))
		check_out(&p, "GFS-Wave -180..180", 301, 331, -100, -50, 55, 0, 0, 300);
	if (plan(&gfswave, GIK_LON_360, NULL, &p))
		check_out(&p, "GFS-Wave 0..360", 301, 331, 260, 310, 55, 0, 0, 300);
	if (plan(&gfswave, GIK_LON_180, &box180, &p) && plan(&gfswave, GIK_LON_360, &box360, &q))
	{
		check_out(&p, "GFS-Wave box -95..-60", 211, 121, -95, -60, 30, 10, 30, 240);
		check_out(&q, "GFS-Wave box 265..300", 211, 121, 265, 300, 30, 10, 30, 240);
		cells_match_geography(&gfswave, &p, 1e-3, "GFS-Wave box -95..-60");
	}
	if (plan(&across0, GIK_LON_SOURCE, NULL, &p))
		check_out(&p, "regional 350..10 source", 81, 21, -10, 10, 5, 0, 0, 80);
	if (plan(&across0, GIK_LON_360, NULL, &p))
		check_out(&p, "regional 350..10 0..360", 81, 21, 350, 370, 5, 0, 0, 80);
	if (plan(&across0, GIK_LON_360, &east_part, &p))
	{
		check_out(&p, "regional 350..10, box 5..15", 21, 21, 5, 10, 5, 0, 60, 80);
		cells_match_geography(&across0, &p, 1e-9, "regional 350..10, box 5..15");
	}
	tap_ok(plan_fails(&gfswave, GIK_LON_SOURCE, &split, err, sizeof(err)) &&
		   strstr(err, "covers two separate parts of the grid") != NULL,
		   "a box meeting a regional grid twice is an error: %s", err);
	tap_ok(plan_fails(&gfswave, GIK_LON_SOURCE, &far, err, sizeof(err)) &&
		   strstr(err, "Box lon 0..10, lat 10..30 contains no grid cell centre; the grid covers lon 260..310, lat 0..55.") != NULL,
		   "a box outside a regional grid is an error naming both: %s", err);
}

/* A global grid written with a repeated seam column (0..360) drops the repeat. */
static void
test_seam_column(void)
{
	GikGrid		g = make_grid("regular_ll", 1441, 721, 90, 0, -90, 360, 0.25, 0.25, 0);
	GikBox		across0 = make_box(-10, -5, 10, 5);
	GikGridPlan p;

	if (plan(&g, GIK_LON_SOURCE, NULL, &p))
		check_out(&p, "0..360 inclusive grid", 1440, 721, 0, 359.75, 90, -90, 0, 1439);
	if (plan(&g, GIK_LON_180, &across0, &p))
		check_out(&p, "0..360 inclusive grid, box -10..10", 81, 41, -10, 10, 5, -5, 1400, 40);
}

/* Missing values become NaN; a short values array gives NaN, never a read past its end. */
static void
test_missing(void)
{
	GikGrid		g = make_grid("regular_ll", 4, 3, 1, 0, -1, 3, 1, 1, 0);
	double		values[12] = {0, 1, 9999, 3, 4, 5, 6, 7, 8, 9999, 10, 11};
	float		out[12];
	GikGridPlan p;

	if (!plan(&g, GIK_LON_SOURCE, NULL, &p))
		return;
	gik_grid_apply(&p, values, 12, 9999, out);
	tap_ok(isnan(out[2]) && isnan(out[9]) && out[0] == 0 && out[11] == 11 && out[8] == 8,
		   "values equal to missing_value become NaN, others are kept");
	gik_grid_apply(&p, values, 12, NAN, out);
	tap_ok(out[2] == 9999 && !isnan(out[9]), "missing_value NaN keeps 9999");
	gik_grid_apply(&p, values, 10, NAN, out);
	tap_ok(out[9] == 9999 && isnan(out[10]) && isnan(out[11]), "cells past nvalues become NaN");
}

/* Unsupported grids, bad boxes and boxes outside the grid. */
static void
test_errors(void)
{
	GikGrid		lambert = make_grid("lambert", 1799, 1059, 21.138, 237.28, 47.84, 299.08, NAN, NAN, 64);
	GikGrid		no_inc = make_grid("regular_ll", 10, 10, 10, 0, 1, 9, NAN, 1, 0);
	GikGrid		contradict = make_grid("regular_ll", 10, 10, 0, 0, 9, 9, 1, 1, 0);
	GikBox		upside = make_box(0, 10, 10, -10);
	GikBox		nan_box = make_box(0, NAN, 10, 10);
	GikBox		north = make_box(0, 91, 10, 95);
	char		err[512];

	tap_ok(plan_fails(&lambert, GIK_LON_SOURCE, NULL, err, sizeof(err)) &&
		   strcmp(err, "Grid type lambert is not supported for regions, longitude conventions or rasters; "
				  "decode it without them to get its values in scanning order.") == 0,
		   "lambert is refused with a sentence: %s", err);
	tap_ok(plan_fails(&no_inc, GIK_LON_SOURCE, NULL, err, sizeof(err)) &&
		   strstr(err, "no usable geometry") != NULL, "a regular_ll grid without increments is refused: %s", err);
	tap_ok(plan_fails(&contradict, GIK_LON_SOURCE, NULL, err, sizeof(err)) &&
		   strstr(err, "contradicts its scanning mode 0") != NULL,
		   "latitudes against the scanning mode are refused: %s", err);
	tap_ok(plan_fails(&gefs25, GIK_LON_SOURCE, &upside, err, sizeof(err)) &&
		   strstr(err, "Box lon 0..10, lat 10..-10 is not valid") != NULL,
		   "lat_min > lat_max is refused naming the box: %s", err);
	tap_ok(plan_fails(&gefs25, GIK_LON_SOURCE, &nan_box, err, sizeof(err)) &&
		   strstr(err, "must be a finite number") != NULL, "a NaN bound is refused: %s", err);
	tap_ok(plan_fails(&gefs25, GIK_LON_180, &north, err, sizeof(err)) &&
		   strstr(err, "Box lon 0..10, lat 91..95 contains no grid cell centre") != NULL,
		   "a box north of the grid is refused: %s", err);
}

/* Convention names. */
static void
test_parse(void)
{
	static const struct
	{
		const char *text;
		bool		ok;
		GikLonConvention conv;
	}			cases[] = {
		{"source", true, GIK_LON_SOURCE}, {" SOURCE ", true, GIK_LON_SOURCE},
		{"-180..180", true, GIK_LON_180}, {"180", true, GIK_LON_180}, {"-180", true, GIK_LON_180},
		{"0..360", true, GIK_LON_360}, {"360", true, GIK_LON_360}, {" 0\t", true, GIK_LON_360},
		{"", false, GIK_LON_SOURCE}, {"east", false, GIK_LON_SOURCE}, {"0..180", false, GIK_LON_SOURCE},
		{"sourcex", false, GIK_LON_SOURCE},
	};
	size_t		k;

	for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
	{
		GikLonConvention conv = GIK_LON_SOURCE;
		bool		ok = gik_lon_convention_parse(cases[k].text, &conv);

		tap_ok(ok == cases[k].ok && (!ok || conv == cases[k].conv), "convention \"%s\" %s",
			   cases[k].text, cases[k].ok ? "parses" : "is refused");
	}
}

/* Milliseconds on a monotonic clock. */
static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Time of one apply on a rolled 1440 x 721 grid (a diagnostic, not a test). */
static void
time_apply(void)
{
	GikGridPlan p;
	double	   *values = position_values(&gefs25);
	float	   *out = test_alloc(sizeof(float) * 1440 * 721);
	double		best = 1e9;
	int			k;

	if (!plan(&gefs25, GIK_LON_180, NULL, &p))
		return;
	for (k = 0; k < 5; k++)
	{
		double		t0 = now_ms();

		gik_grid_apply(&p, values, 1440 * 721, 9999, out);
		best = fmin(best, now_ms() - t0);
	}
	tap_diag("apply 1440 x 721 rolled: %.2f ms (best of 5)", best);
}

/* True when lon lies on the arc from lon_min eastwards to lon_max, to tol. */
static bool
on_arc(double lon, const GikBox *b, double tol)
{
	double		width = wrap360(b->lon_max - b->lon_min);

	return wrap360(lon - b->lon_min + tol) <= width + 2 * tol;
}

/* ecCodes' own coordinates and values of every point of a message, in message order. */
typedef struct RealPoints
{
	size_t		n;
	double	   *lat;
	double	   *lon;
	double	   *val;
} RealPoints;

/*
 * Check a plan on a real message against ecCodes' coordinates of every point: each output
 * cell's lat/lon is its point's, its value is its point's, and a box holds exactly the
 * points whose coordinates lie in it.
 */
static void
check_real(const RealPoints *pts, const GikGrid *g, GikLonConvention conv, const GikBox *box,
		   double tol, const char *label)
{
	GikGridPlan p;
	float	   *out;
	double	   *lats;
	double	   *lons;
	size_t		inside = 0;
	size_t		k;
	long		r;
	long		c;
	bool		ok = true;

	if (!plan(g, conv, box, &p))
	{
		tap_ok(false, "%s: plan", label);
		return;
	}
	out = test_alloc(sizeof(float) * (size_t) (p.out.ni * p.out.nj));
	lats = test_alloc(sizeof(double) * (size_t) p.out.nj);
	lons = test_alloc(sizeof(double) * (size_t) p.out.ni);
	gik_grid_apply(&p, pts->val, pts->n, NAN, out);
	gik_outgrid_lats(&p.out, lats);
	gik_outgrid_lons(&p.out, lons);
	for (r = 0; r < p.out.nj && ok; r++)
		for (c = 0; c < p.out.ni && ok; c++)
		{
			size_t		idx = message_index(g, p.col_src[c], p.row_src[r]);
			float		v = out[r * p.out.ni + c];

			ok = fabs(pts->lat[idx] - lats[r]) <= tol &&
				fabs(wrap360(pts->lon[idx] - lons[c] + 180) - 180) <= tol &&
				(v == (float) pts->val[idx] || (isnan(v) && isnan(pts->val[idx])));
			if (!ok)
				tap_diag("cell (%ld, %ld) at %.6f, %.6f is point %zu at %.6f, %.6f", r, c,
						 lats[r], lons[c], idx, pts->lat[idx], pts->lon[idx]);
		}
	tap_ok(ok, "%s: every cell has its point's coordinates and value (ecCodes)", label);
	if (box == NULL)
		return;
	for (k = 0; k < pts->n; k++)
		if (pts->lat[k] >= box->lat_min - tol && pts->lat[k] <= box->lat_max + tol &&
			on_arc(pts->lon[k], box, tol))
			inside++;
	tap_ok(inside == (size_t) (p.out.ni * p.out.nj), "%s: the box holds the %zu points inside it (got %ld)",
		   label, inside, p.out.ni * p.out.nj);
}

/* Swap the scanning keys of a handle to mode, with the end points that go with it. */
static void
set_scanning_mode(codes_handle *h, long mode)
{
	double		lat1;
	double		lat2;
	double		lon1;
	double		lon2;

	codes_get_double(h, "latitudeOfFirstGridPointInDegrees", &lat1);
	codes_get_double(h, "latitudeOfLastGridPointInDegrees", &lat2);
	codes_get_double(h, "longitudeOfFirstGridPointInDegrees", &lon1);
	codes_get_double(h, "longitudeOfLastGridPointInDegrees", &lon2);
	codes_set_long(h, "iScansNegatively", (mode & SCAN_I_NEG) != 0);
	codes_set_long(h, "jScansPositively", (mode & SCAN_J_POS) != 0);
	codes_set_long(h, "jPointsAreConsecutive", (mode & SCAN_J_CONSECUTIVE) != 0);
	if (mode & SCAN_J_POS)
	{
		codes_set_double(h, "latitudeOfFirstGridPointInDegrees", lat2);
		codes_set_double(h, "latitudeOfLastGridPointInDegrees", lat1);
	}
	if (mode & SCAN_I_NEG)
	{
		codes_set_double(h, "longitudeOfFirstGridPointInDegrees", lon2);
		codes_set_double(h, "longitudeOfLastGridPointInDegrees", lon1);
	}
}

/* Run plans on the first message of a real file, its scanning keys changed to mode. */
static void
test_real_file(const char *relpath, long mode, const GikBox *boxes, int nboxes, double tol)
{
	static const char *conv_names[] = {"source", "-180..180", "0..360"};
	size_t		len;
	char	   *buf = test_read_file(data_dir, relpath, &len);
	codes_handle *h;
	GikMeta		meta;
	RealPoints	pts;
	int			b;
	int			k;

	if (buf == NULL || (h = codes_handle_new_from_message_copy(NULL, buf, len)) == NULL)
	{
		tap_skip("file not readable", "%s", relpath);
		return;
	}
	if (mode != 0)
		set_scanning_mode(h, mode);
	gik_meta_read(h, &meta, true);
	pts.n = (size_t) (meta.grid.ni * meta.grid.nj);
	pts.lat = test_alloc(sizeof(double) * pts.n);
	pts.lon = test_alloc(sizeof(double) * pts.n);
	pts.val = test_alloc(sizeof(double) * pts.n);
	if (codes_grib_get_data(h, pts.lat, pts.lon, pts.val) != 0)
		tap_ok(false, "%s: ecCodes gives the coordinates of every point", relpath);
	else
		for (k = 0; k < 3; k++)
			for (b = -1; b < nboxes; b++)
			{
				char		label[200];
				GikLonConvention conv;

				if (b < 0)
					snprintf(label, sizeof(label), "%s mode %ld %s whole grid", relpath, mode, conv_names[k]);
				else
					snprintf(label, sizeof(label), "%s mode %ld %s box %g..%g, %g..%g", relpath, mode,
							 conv_names[k], boxes[b].lon_min, boxes[b].lon_max, boxes[b].lat_min, boxes[b].lat_max);
				gik_lon_convention_parse(conv_names[k], &conv);
				check_real(&pts, &meta.grid, conv, b < 0 ? NULL : &boxes[b], tol, label);
			}
	codes_handle_delete(h);
	test_alloc_reset();
}

/* Real files: GFS-Wave (also with changed scanning modes), ECMWF 0.25 and 0.4, GDAS, GEFS 0.5. */
static void
test_real(void)
{
	GikBox		global_boxes[] = {make_box(21, -12, 53, 23), make_box(-10, -5, 10, 5),
	make_box(170, 30, -170, 40), make_box(350, 0, 10, 1)};
	/* edges between cell centres: ecCodes sums 0.166667 steps, so its centres drift by 1e-4 */
	GikBox		wave_boxes[] = {make_box(-80.1, 10.1, -60.1, 30.1), make_box(265.05, 0, 300.05, 5.05)};
	static const long modes[] = {SCAN_J_POS, SCAN_I_NEG, SCAN_J_CONSECUTIVE,
	SCAN_I_NEG | SCAN_J_POS | SCAN_J_CONSECUTIVE};
	size_t		k;

	test_real_file("gribberish/gfswave.t18z.atlocn.0p16.f001.grib2", 0, wave_boxes, 2, 1e-3);
	for (k = 0; k < sizeof(modes) / sizeof(modes[0]); k++)
		test_real_file("gribberish/gfswave.t18z.atlocn.0p16.f001.grib2", modes[k], wave_boxes, 2, 1e-3);
	test_real_file("gribberish/ecmwf-ifs-oper-surface.grib2", 0, global_boxes, 4, 1e-6);
	test_real_file("grib-rs/20240101000000-0h-oper-fc.grib2.0-10", 0, global_boxes, 4, 1e-6);
	test_real_file("grib-rs/gdas.t12z.pgrb2.0p25.f000.12", 0, global_boxes, 4, 1e-6);
	test_real_file("kerchunk/gec00_20250101_00_soilw.grib", 0, global_boxes, 4, 1e-6);
}

int
main(int argc, char **argv)
{
	data_dir = test_data_dir(argc, argv);
	gefs25 = make_grid("regular_ll", 1440, 721, 90, 0, -90, 359.75, 0.25, 0.25, 0);
	ecmwf25 = make_grid("regular_ll", 1440, 721, 90, 180, -90, 179.75, 0.25, 0.25, 0);
	ecmwf40 = make_grid("regular_ll", 900, 451, 90, 180, -90, 179.6, 0.4, 0.4, 0);
	gefs50 = make_grid("regular_ll", 720, 361, 90, 0, -90, 359.5, 0.5, 0.5, 0);
	gfswave = make_grid("regular_ll", 301, 331, 55, 260, 0, 310, 0.166667, 0.166667, 0);

	test_global();
	test_east_africa();
	test_seam_boxes();
	test_box_edges();
	test_scanning_modes();
	test_regional();
	test_seam_column();
	test_missing();
	test_errors();
	test_parse();
	time_apply();
	test_alloc_reset();
	test_real();
	return tap_done();
}
