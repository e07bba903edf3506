/*
 * Unit tests of map projections (Snyder's worked examples, round trips, PROJ strings), Gaussian
 * latitudes (closed forms) and regridding weights (identity, exact bilinear, conservation).
 */
#include "core/proj.h"
#include "core/regrid.h"
#include "tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEGR (M_PI / 180.0)

static int	checks = 0;

static void
count_check(void)
{
	checks++;
}

static GikProj
proj(GikProjKind kind, double lat_0, double lon_0, double lat_1, double lat_2, double lat_ts, double radius)
{
	GikProj		p = {kind, lat_0, lon_0, lat_1, lat_2, lat_ts, radius};

	return p;
}

static bool
near(double a, double b, double tol)
{
	return fabs(a - b) <= tol;
}

/* Snyder (1987), numerical examples for the sphere, scaled from R = 1 to R = 1e6 metres. */
static void
test_snyder_examples(void)
{
	GikProj		lcc = proj(GIK_PROJ_LAMBERT, 23, -96, 33, 45, 33, 1e6);
	GikProj		merc = proj(GIK_PROJ_MERCATOR, 0, -180, 0, 0, 0, 1e6);
	double		x,
				y,
				lon,
				lat;

	gik_proj_forward(&lcc, -75, 35, &x, &y);
	tap_ok(near(x, 296678.5, 0.1) && near(y, 246211.2, 0.1), "Lambert conformal, Snyder p. 295: x %.1f y %.1f", x, y);
	gik_proj_inverse(&lcc, x, y, &lon, &lat);
	tap_ok(near(lon, -75, 1e-9) && near(lat, 35, 1e-9), "Lambert inverse returns (-75, 35): (%.12f, %.12f)", lon, lat);
	gik_proj_forward(&merc, -75, 35, &x, &y);
	tap_ok(near(x, 1832595.7, 0.1) && near(y, 652836.6, 0.1), "Mercator, Snyder p. 266: x %.1f y %.1f", x, y);
}

static void
test_round_trips(void)
{
	GikProj		ps[] = {
		proj(GIK_PROJ_LAMBERT, 38.5, 262.5, 38.5, 38.5, 38.5, 6371229),	/* HRRR */
		proj(GIK_PROJ_LAMBERT, -30, 135, -20, -40, -20, 6371229),	/* southern cone */
		proj(GIK_PROJ_POLAR, 90, 249, 60, 60, 60, 6371229),
		proj(GIK_PROJ_POLAR, -90, 100, -60, -60, -60, 6371229),
		proj(GIK_PROJ_MERCATOR, 0, 0, 20, 20, 20, 6371229),
	};
	char		errbuf[256];

	for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++)
	{
		double		worst = 0;
		bool		south = ps[k].kind == GIK_PROJ_POLAR ? ps[k].lat_0 < 0 : ps[k].lat_1 < 0;

		tap_ok(gik_proj_valid(&ps[k], errbuf, sizeof(errbuf)), "%s %zu is valid", gik_proj_grid_type(ps[k].kind), k);
		for (double lat = 5; lat <= 80; lat += 7.5)
			for (double lon = -175; lon < 180; lon += 12.5)
			{
				double		x,
							y,
							lo,
							la,
							phi = south ? -lat : lat;

				gik_proj_forward(&ps[k], lon, phi, &x, &y);
				gik_proj_inverse(&ps[k], x, y, &lo, &la);
				worst = fmax(worst, fmax(fabs(la - phi), fabs(fmod(lo - lon + 540.0, 360.0) - 180.0)));
			}
		tap_ok(worst < 1e-9, "%s %zu: forward then inverse within %.1e degrees", gik_proj_grid_type(ps[k].kind), k, worst);
	}
}

static void
test_proj_strings(void)
{
	GikGrid		g,
				back;
	char		text[GIK_PROJ_STRING_MAX];
	char		errbuf[256];
	const char *bad[] = {"+proj=lcc +lat_0=1", "+proj=utm +zone=33", "+proj=lcc +lat_0=38 +lon_0=1 +lat_1=90 +lat_2=90 +R=6e6",
	"+proj=gik_gaussian +N=2 +pl=1,2,3", "+proj=merc +lat_ts=20 +lon_0=0 +R=abc"};

	memset(&g, 0, sizeof(g));
	g.proj = proj(GIK_PROJ_LAMBERT, 38.5, 262.5, 38.5, 38.5, 38.5, 6371229);
	tap_ok(gik_proj_string(&g, text, sizeof(text)), "a Lambert grid has a PROJ string");
	tap_is_text(text, strlen(text), "+proj=lcc +lat_0=38.5 +lon_0=-97.5 +lat_1=38.5 +lat_2=38.5 +x_0=0 +y_0=0 +R=6371229 +units=m +no_defs",
				"HRRR's PROJ string is GDAL's");
	memset(&back, 0, sizeof(back));
	tap_ok(gik_proj_parse(text, &back, errbuf, sizeof(errbuf)) && back.proj.kind == GIK_PROJ_LAMBERT &&
		   back.proj.lon_0 == -97.5 && back.proj.radius == 6371229, "it parses back");
	memset(&g, 0, sizeof(g));
	g.gauss_n = 3;
	g.gauss_rows = 3;
	g.pl_step[0] = 20;
	g.pl_step[1] = 7;
	g.pl_step[2] = 0;
	tap_ok(gik_proj_string(&g, text, sizeof(text)), "a reduced Gaussian grid has a description");
	tap_is_text(text, strlen(text), "+proj=gik_gaussian +N=3 +pl=20,27,27", "its pl are the row lengths");
	tap_ok(gik_proj_parse(text, &back, errbuf, sizeof(errbuf)) && back.gauss_n == 3 &&
		   gik_reduced_row_points(&back, 4) == 27 && gik_reduced_row_points(&back, 5) == 20, "it parses back, mirrored south");
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		tap_ok(!gik_proj_parse(bad[k], &back, errbuf, sizeof(errbuf)) && errbuf[0], "rejected: %s (%s)", bad[k], errbuf);
}

static void
test_gaussian(void)
{
	double		l1[2],
				l2[4];

	gik_gaussian_lats(1, l1);
	tap_ok(near(l1[0], asin(1 / sqrt(3.0)) * 180 / M_PI, 1e-12) && l1[1] == -l1[0], "N=1: +-asin(1/sqrt 3)");
	gik_gaussian_lats(2, l2);
	tap_ok(near(l2[0], asin(sqrt(3.0 / 7 + 2.0 / 7 * sqrt(6.0 / 5))) * 180 / M_PI, 1e-12) &&
		   near(l2[1], asin(sqrt(3.0 / 7 - 2.0 / 7 * sqrt(6.0 / 5))) * 180 / M_PI, 1e-12), "N=2: roots of P4");
}

static GikOutGrid
llgrid(long ni, long nj, double lat_first, double lon_first, double d, bool global)
{
	GikOutGrid	g;

	memset(&g, 0, sizeof(g));
	g.ni = ni;
	g.nj = nj;
	g.lat_first = lat_first;
	g.lon_first = lon_first;
	g.di = g.dj = d;
	g.lat_last = lat_first - (nj - 1) * d;
	g.lon_last = lon_first + (ni - 1) * d;
	g.global_lon = global;
	return g;
}

static void
test_regrid(void)
{
	GikOutGrid	s = llgrid(180, 90, 89, 0, 2, true);
	GikOutGrid	t = llgrid(120, 60, 88.5, -178.5, 3, true);
	GikOutGrid	half = llgrid(360, 180, 89.5, 0.5, 1, true);
	GikRegridWeights w;
	char		errbuf[256];
	float	   *src = malloc(sizeof(float) * 180 * 90),
			   *dst = malloc(sizeof(float) * 360 * 180);
	double		mass_s = 0,
				mass_t = 0,
				worst = 0;

	for (long r = 0; r < 90; r++)
		for (long c = 0; c < 180; c++)
			src[r * 180 + c] = (float) (1 + sin(c * 0.1) * cos(r * 0.07) + (r * 180 + c) % 7);
	tap_ok(gik_regrid_weights(&s, &s, GIK_REGRID_CONSERVATIVE, test_alloc, count_check, &w, errbuf, sizeof(errbuf)),
		   "conservative weights of a grid onto itself");
	gik_regrid_apply(&w, src, dst);
	tap_ok(memcmp(src, dst, sizeof(float) * 180 * 90) == 0 && w.nnz == 180 * 90, "are the identity");
	tap_ok(checks >= 90, "the interrupt check runs between rows (%d)", checks);

	tap_ok(gik_regrid_weights(&s, &t, GIK_REGRID_CONSERVATIVE, test_alloc, NULL, &w, errbuf, sizeof(errbuf)),
		   "conservative 2 to 3 degrees, shifted by 180");
	gik_regrid_apply(&w, src, dst);
	for (long r = 0; r < 90; r++)
		for (long c = 0; c < 180; c++)
			mass_s += src[r * 180 + c] * (sin(fmin(90, 90 - 2 * r) * M_PI / 180) - sin((88 - 2 * r) * M_PI / 180)) * 2;
	for (long r = 0; r < 60; r++)
		for (long c = 0; c < 120; c++)
			mass_t += dst[r * 120 + c] * (sin((90 - 3 * r) * M_PI / 180) - sin((87 - 3 * r) * M_PI / 180)) * 3;
	tap_ok(fabs(mass_t / mass_s - 1) < 1e-6, "keeps the area-weighted total (ratio %.9f)", mass_t / mass_s);

	/* a field linear in longitude (away from the seam) and latitude: bilinear is exact */
	for (long r = 0; r < 90; r++)
		for (long c = 0; c < 180; c++)
			src[r * 180 + c] = (float) (0.5 * (89 - 2 * r) + 0.25 * (2 * c));
	tap_ok(gik_regrid_weights(&s, &half, GIK_REGRID_BILINEAR, test_alloc, NULL, &w, errbuf, sizeof(errbuf)),
		   "bilinear 2 to 1 degree, offset by half a cell");
	gik_regrid_apply(&w, src, dst);
	for (long r = 0; r < 180; r++)
		for (long c = 0; c < 356; c++)
		{
			double		lat = 89.5 - r,
						lon = 0.5 + c;

			if (lat <= 89 && lat >= -89)
				worst = fmax(worst, fabs(dst[r * 360 + c] - (0.5 * lat + 0.25 * lon)));
		}
	tap_ok(worst < 1e-4, "bilinear reproduces a linear field (worst %.2e)", worst);
	tap_ok(isnan(dst[0]) && isnan(dst[179 * 360]), "target rows beyond the source's outer centres are NaN");

	src[0] = NAN;
	tap_ok(gik_regrid_weights(&s, &s, GIK_REGRID_CONSERVATIVE, test_alloc, NULL, &w, errbuf, sizeof(errbuf)), "weights again");
	gik_regrid_apply(&w, src, dst);
	tap_ok(isnan(dst[0]) && !isnan(dst[1]), "a NaN source cell alone gives NaN, its neighbours keep their values");
	{
		/* HRRR's projection, 40 x 30 cells of 3 km, onto a global 0.1 degree grid */
		GikOutGrid	lam;
		GikOutGrid	fine = llgrid(3600, 1800, 89.95, -179.95, 0.1, true);
		double		want = 0,
					got = 0;

		memset(&lam, 0, sizeof(lam));
		lam.proj = proj(GIK_PROJ_LAMBERT, 38.5, 262.5, 38.5, 38.5, 38.5, 6371229);
		lam.ni = 40;
		lam.nj = 30;
		lam.di = lam.dj = 3000;
		lam.x_first = -600000;
		lam.y_first = 50000;
		tap_ok(gik_regrid_weights(&lam, &fine, GIK_REGRID_CONSERVATIVE, test_alloc, NULL, &w, errbuf, sizeof(errbuf)),
			   "conservative from a projected grid");
		/* each source cell's area on the unit sphere from the projection's Jacobian at its centre */
		for (long r = 0; r < lam.nj; r++)
			for (long c = 0; c < lam.ni; c++)
			{
				double		x = lam.x_first + c * lam.di,
							y = lam.y_first - r * lam.dj,
							h = 1.0,
							l0, p0, l1, p1, l2, p2;

				gik_proj_inverse(&lam.proj, x, y, &l0, &p0);
				gik_proj_inverse(&lam.proj, x + h, y, &l1, &p1);
				gik_proj_inverse(&lam.proj, x, y + h, &l2, &p2);
				/* d(lon, sin lat) / d(x, y): the equal-area plane's area per square metre */
				want += fabs((l1 - l0) * DEGR * (sin(p2 * DEGR) - sin(p0 * DEGR)) -
							 (l2 - l0) * DEGR * (sin(p1 * DEGR) - sin(p0 * DEGR))) / (h * h) * lam.di * lam.dj;
			}
		for (int64_t j = 0; j < w.nnz; j++)
			got += w.w[j];
		tap_ok(fabs(got / want - 1) < 1e-6, "its weights add up to the source's area on the sphere (ratio %.9f)", got / want);
		tap_ok(!gik_regrid_weights(&t, &lam, GIK_REGRID_CONSERVATIVE, test_alloc, NULL, &w, errbuf, sizeof(errbuf)) &&
			   strstr(errbuf, "use bilinear") != NULL, "conservative to a projected grid is refused: %s", errbuf);
	}
	free(src);
	free(dst);
}

int
main(int argc, char **argv)
{
	(void) test_data_dir(argc, argv);
	test_snyder_examples();
	test_round_trips();
	test_proj_strings();
	test_gaussian();
	test_regrid();
	test_alloc_reset();
	return tap_done();
}
