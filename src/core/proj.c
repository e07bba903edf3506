/* Map projections on a sphere (Snyder, "Map Projections: A Working Manual", 1987), PROJ strings, Gaussian latitudes. */
#include "core/proj.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEG (M_PI / 180.0)

/* Latitudes closer than this to a pole (degrees) cannot be standard parallels. */
#define POLE_TOL 1e-6

const char *
gik_proj_grid_type(GikProjKind kind)
{
	switch (kind)
	{
		case GIK_PROJ_LAMBERT:
			return "lambert";
		case GIK_PROJ_POLAR:
			return "polar_stereographic";
		case GIK_PROJ_MERCATOR:
			return "mercator";
		case GIK_PROJ_NONE:
			break;
	}
	return NULL;
}

/* Lambert cone constant n and F (Snyder 15-3, 15-2 on a sphere). */
static void
lambert_cone(const GikProj *p, double *n, double *F)
{
	double		f1 = p->lat_1 * DEG;
	double		f2 = p->lat_2 * DEG;

	if (fabs(p->lat_1 - p->lat_2) < 1e-10)
		*n = sin(f1);
	else
		*n = log(cos(f1) / cos(f2)) / log(tan(M_PI / 4 + f2 / 2) / tan(M_PI / 4 + f1 / 2));
	*F = cos(f1) * pow(tan(M_PI / 4 + f1 / 2), *n) / *n;
}

bool
gik_proj_valid(const GikProj *p, char *errbuf, size_t errlen)
{
	const char *problem = NULL;

	if (!isfinite(p->lat_0) || !isfinite(p->lon_0) || !isfinite(p->lat_1) || !isfinite(p->lat_2) ||
		!isfinite(p->lat_ts) || !isfinite(p->radius))
		problem = "a parameter is missing or not finite";
	else if (!(p->radius > 1e3 && p->radius < 1e8))
		problem = "the earth radius is not plausible";
	else if (p->kind == GIK_PROJ_LAMBERT &&
			 (fabs(p->lat_1) > 90 - POLE_TOL || fabs(p->lat_2) > 90 - POLE_TOL ||
			  fabs(p->lat_0) > 90 - POLE_TOL || p->lat_1 * p->lat_2 < 0 ||
			  (fabs(p->lat_1 + p->lat_2) < 1e-10)))
		problem = "its standard parallels must be off the poles and on one side of the equator";
	else if (p->kind == GIK_PROJ_MERCATOR && fabs(p->lat_ts) > 90 - POLE_TOL)
		problem = "its latitude of true scale must be off the poles";
	else if (p->kind == GIK_PROJ_POLAR && (fabs(p->lat_0) != 90 || fabs(p->lat_ts) > 90))
		problem = "its pole and latitude of true scale are not valid";
	else if (p->kind == GIK_PROJ_NONE)
		problem = "it is not a projection";
	if (problem == NULL)
	{
		double		n,
					F;

		if (p->kind != GIK_PROJ_LAMBERT)
			return true;
		lambert_cone(p, &n, &F);
		if (isfinite(n) && isfinite(F) && fabs(n) > 1e-10)
			return true;
		problem = "its standard parallels give no cone";
	}
	snprintf(errbuf, errlen, "The %s projection is not usable: %s.",
			 gik_proj_grid_type(p->kind) ? gik_proj_grid_type(p->kind) : "unknown", problem);
	return false;
}

/* Longitude difference lon - lon_0 in radians, in [-pi, pi). */
static double
dlon_rad(double lon, double lon_0)
{
	double		d = fmod(lon - lon_0 + 180.0, 360.0);

	if (d < 0)
		d += 360.0;
	return (d - 180.0) * DEG;
}

/* Polar stereographic scale factor: rho = R * k * tan(pi/4 -+ phi/2), true scale at lat_ts. */
static double
polar_k(const GikProj *p)
{
	return 1.0 + sin(fabs(p->lat_ts) * DEG);
}

void
gik_proj_forward(const GikProj *p, double lon, double lat, double *x, double *y)
{
	double		phi = lat * DEG;
	double		dl = dlon_rad(lon, p->lon_0);
	double		R = p->radius;

	switch (p->kind)
	{
		case GIK_PROJ_LAMBERT:
			{
				double		n,
							F,
							rho,
							rho0;

				lambert_cone(p, &n, &F);
				rho = R * F / pow(tan(M_PI / 4 + phi / 2), n);
				rho0 = R * F / pow(tan(M_PI / 4 + p->lat_0 * DEG / 2), n);
				*x = rho * sin(n * dl);
				*y = rho0 - rho * cos(n * dl);
				return;
			}
		case GIK_PROJ_POLAR:
			{
				bool		south = p->lat_0 < 0;
				double		rho = R * polar_k(p) * tan(M_PI / 4 - (south ? -phi : phi) / 2);

				*x = rho * sin(dl);
				*y = south ? rho * cos(dl) : -rho * cos(dl);
				return;
			}
		case GIK_PROJ_MERCATOR:
			{
				double		k = R * cos(p->lat_ts * DEG);

				*x = k * dl;
				*y = k * log(tan(M_PI / 4 + phi / 2));
				return;
			}
		case GIK_PROJ_NONE:
			break;
	}
	*x = lon;
	*y = lat;
}

/* Degrees in [-180, 180). */
static double
lon_180(double lon)
{
	double		d = fmod(lon + 180.0, 360.0);

	return (d < 0 ? d + 360.0 : d) - 180.0;
}

void
gik_proj_inverse(const GikProj *p, double x, double y, double *lon, double *lat)
{
	double		R = p->radius;

	switch (p->kind)
	{
		case GIK_PROJ_LAMBERT:
			{
				double		n,
							F,
							rho0,
							rho,
							theta,
							s;

				lambert_cone(p, &n, &F);
				s = n < 0 ? -1.0 : 1.0;
				rho0 = R * F / pow(tan(M_PI / 4 + p->lat_0 * DEG / 2), n);
				rho = s * sqrt(x * x + (rho0 - y) * (rho0 - y));
				theta = atan2(s * x, s * (rho0 - y));
				*lat = rho == 0 ? s * 90.0 : (2 * atan(pow(R * F / rho, 1 / n)) - M_PI / 2) / DEG;
				*lon = lon_180(p->lon_0 + theta / n / DEG);
				return;
			}
		case GIK_PROJ_POLAR:
			{
				bool		south = p->lat_0 < 0;
				double		rho = sqrt(x * x + y * y);
				double		c = 2 * atan(rho / (R * polar_k(p)));
				double		phi = M_PI / 2 - c;

				*lat = (south ? -phi : phi) / DEG;
				*lon = lon_180(p->lon_0 + (rho == 0 ? 0 : atan2(x, south ? y : -y) / DEG));
				return;
			}
		case GIK_PROJ_MERCATOR:
			{
				double		k = R * cos(p->lat_ts * DEG);

				*lat = (2 * atan(exp(y / k)) - M_PI / 2) / DEG;
				*lon = lon_180(p->lon_0 + x / k / DEG);
				return;
			}
		case GIK_PROJ_NONE:
			break;
	}
	*lon = x;
	*lat = y;
}

/* Append printf output to out at *pos; false when it does not fit. */
static bool put(char *out, size_t outlen, size_t *pos, const char *fmt,...) __attribute__((format(printf, 4, 5)));

static bool
put(char *out, size_t outlen, size_t *pos, const char *fmt,...)
{
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(out + *pos, outlen - *pos, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t) n >= outlen - *pos)
		return false;
	*pos += (size_t) n;
	return true;
}

bool
gik_proj_string(const GikGrid *grid, char *out, size_t outlen)
{
	const GikProj *p = &grid->proj;
	size_t		pos = 0;
	bool		ok = true;

	if (outlen == 0)
		return false;
	out[0] = '\0';
	switch (p->kind)
	{
		case GIK_PROJ_LAMBERT:
			ok = put(out, outlen, &pos, "+proj=lcc +lat_0=%.17g +lon_0=%.17g +lat_1=%.17g +lat_2=%.17g",
					 p->lat_0, lon_180(p->lon_0), p->lat_1, p->lat_2);
			break;
		case GIK_PROJ_POLAR:
			ok = put(out, outlen, &pos, "+proj=stere +lat_0=%.17g +lat_ts=%.17g +lon_0=%.17g",
					 p->lat_0, p->lat_ts, lon_180(p->lon_0));
			break;
		case GIK_PROJ_MERCATOR:
			ok = put(out, outlen, &pos, "+proj=merc +lat_ts=%.17g +lon_0=%.17g", p->lat_ts, lon_180(p->lon_0));
			break;
		case GIK_PROJ_NONE:
			if (grid->gauss_n <= 0)
				return false;
			ok = put(out, outlen, &pos, "+proj=gik_gaussian +N=%ld", grid->gauss_n);
			if (ok && grid->gauss_rows == -1)
				ok = put(out, outlen, &pos, " +pl=octahedral");
			for (long r = 0; ok && r < grid->gauss_rows; r++)
				ok = put(out, outlen, &pos, r == 0 ? " +pl=%ld" : ",%ld", gik_reduced_row_points(grid, r));
			if (!ok)
				out[0] = '\0';
			return ok;
	}
	ok = ok && put(out, outlen, &pos, " +x_0=0 +y_0=0 +R=%.17g +units=m +no_defs", p->radius);
	if (!ok)
		out[0] = '\0';
	return ok;
}

/* The value of "+key=" in text, or NULL. */
static const char *
find_key(const char *text, const char *key)
{
	size_t		klen = strlen(key);

	for (const char *s = text; (s = strstr(s, key)) != NULL; s += klen)
		if ((s == text || s[-1] == ' ') && s[klen] == '=')
			return s + klen + 1;
	return NULL;
}

/* A number after "+key="; false when absent or not a number. */
static bool
key_number(const char *text, const char *key, double *v)
{
	const char *s = find_key(text, key);
	char	   *end;

	if (s == NULL)
		return false;
	*v = strtod(s, &end);
	return end != s && (*end == '\0' || *end == ' ' || *end == ',') && isfinite(*v);
}

bool
gik_proj_parse(const char *text, GikGrid *grid, char *errbuf, size_t errlen)
{
	GikProj    *p = &grid->proj;
	const char *name = find_key(text, "+proj");
	bool		ok = false;
	double		v;

	memset(p, 0, sizeof(*p));
	grid->gauss_n = 0;
	grid->gauss_rows = 0;
	if (name != NULL && strncmp(name, "lcc ", 4) == 0)
	{
		p->kind = GIK_PROJ_LAMBERT;
		ok = key_number(text, "+lat_0", &p->lat_0) && key_number(text, "+lon_0", &p->lon_0) &&
			key_number(text, "+lat_1", &p->lat_1) && key_number(text, "+lat_2", &p->lat_2) &&
			key_number(text, "+R", &p->radius);
	}
	else if (name != NULL && strncmp(name, "stere ", 6) == 0)
	{
		p->kind = GIK_PROJ_POLAR;
		ok = key_number(text, "+lat_0", &p->lat_0) && key_number(text, "+lat_ts", &p->lat_ts) &&
			key_number(text, "+lon_0", &p->lon_0) && key_number(text, "+R", &p->radius);
	}
	else if (name != NULL && strncmp(name, "merc ", 5) == 0)
	{
		p->kind = GIK_PROJ_MERCATOR;
		ok = key_number(text, "+lat_ts", &p->lat_ts) && key_number(text, "+lon_0", &p->lon_0) &&
			key_number(text, "+R", &p->radius);
	}
	else if (name != NULL && strncmp(name, "gik_gaussian ", 13) == 0)
	{
		const char *pl = find_key(text, "+pl");

		ok = key_number(text, "+N", &v) && v >= 1 && v <= 100000 && v == floor(v);
		grid->gauss_n = ok ? (long) v : 0;
		if (ok && pl != NULL && strncmp(pl, "octahedral", 10) == 0)
			grid->gauss_rows = -1;
		else if (ok && pl != NULL)
		{
			const char *s = pl;
			long		prev = 0;

			while (ok && grid->gauss_rows < GIK_GAUSS_PL_MAX && grid->gauss_rows < grid->gauss_n)
			{
				char	   *end;
				long		n = strtol(s, &end, 10);

				ok = end != s && n > 0 && n >= prev && n - prev <= 255;
				if (ok)
				{
					grid->pl_step[grid->gauss_rows++] = (uint8_t) (n - prev);
					prev = n;
				}
				s = end;
				if (*end != ',')
					break;
				s = end + 1;
			}
			ok = ok && grid->gauss_rows == grid->gauss_n && (*s == '\0' || *s == ' ');
		}
		if (ok)
			return true;
	}
	if (ok && gik_proj_valid(p, errbuf, errlen))
		return true;
	if (ok)
		return false;
	snprintf(errbuf, errlen, "\"%.80s%s\" is not a grid projection that pg_gik writes (a PROJ string of +proj=lcc, stere or merc with +R, or +proj=gik_gaussian).",
			 text, strlen(text) > 80 ? "..." : "");
	return false;
}

void
gik_gaussian_lats(long n, double *lats)
{
	long		nlat = 2 * n;

	/* roots of the Legendre polynomial P_2n, by Newton from Tricomi's estimate; mirror to the south */
	for (long i = 0; i < n; i++)
	{
		double		z = cos(M_PI * (i + 0.75) / (nlat + 0.5));

		for (int it = 0; it < 100; it++)
		{
			double		p0 = 1.0,
						p1 = z,
						dp,
						dz;

			for (long k = 2; k <= nlat; k++)
			{
				double		p2 = ((2.0 * k - 1) * z * p1 - (k - 1.0) * p0) / k;

				p0 = p1;
				p1 = p2;
			}
			dp = nlat * (z * p1 - p0) / (z * z - 1.0);
			dz = p1 / dp;
			z -= dz;
			if (fabs(dz) < 1e-16)
				break;
		}
		lats[i] = asin(z) / DEG;
		lats[nlat - 1 - i] = -lats[i];
	}
}

long
gik_reduced_row_points(const GikGrid *grid, long r)
{
	long		n = grid->gauss_n;
	long		k;

	if (n <= 0 || r < 0 || r >= 2 * n)
		return 0;
	k = r < n ? r : 2 * n - 1 - r;	/* the southern half mirrors the northern */
	if (grid->gauss_rows == -1)
		return 20 + 4 * k;
	if (k >= grid->gauss_rows)
		return 0;
	{
		long		pts = 0;

		for (long i = 0; i <= k; i++)
			pts += grid->pl_step[i];
		return pts;
	}
}
