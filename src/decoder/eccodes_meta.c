/* GRIB message metadata and grid description read with ecCodes. */
#include "decoder/eccodes_meta.h"

#include <eccodes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "decoder/eccodes_guard.h"
#include "core/grib_sanity.h"

/* True when the key is defined and not missing. */
static bool
key_present(codes_handle *h, const char *key)
{
	int			err = 0;

	return codes_is_defined(h, key) && !codes_is_missing(h, key, &err) && !err;
}

/* A long key, or dflt when it is not defined or is missing. */
long
gik_key_long(void *handle, const char *key, long dflt)
{
	codes_handle *h = (codes_handle *) handle;
	long		v;

	if (!key_present(h, key) || codes_get_long(h, key, &v) != CODES_SUCCESS)
		return dflt;
	return v;
}

/* A double key, or NaN when it is not defined or is missing. */
double
gik_key_double(void *handle, const char *key)
{
	codes_handle *h = (codes_handle *) handle;
	double		v;

	if (!key_present(h, key) || codes_get_double(h, key, &v) != CODES_SUCCESS)
		return NAN;
	return v;
}

/* A string key, or "" when it is not defined. */
void
gik_key_string(void *handle, const char *key, char *out, size_t outlen)
{
	size_t		len = outlen;

	if (codes_get_string((codes_handle *) handle, key, out, &len) != CODES_SUCCESS)
		out[0] = '\0';
}

/* Projection parameters of a Lambert, polar stereographic or Mercator grid; Dx, Dy (metres) into di, dj. */
static void
read_projection(void *h, GikGrid *g)
{
	GikProj    *p = &g->proj;
	bool		south = (gik_key_long(h, "projectionCentreFlag", 0) & 0x80) != 0;

	if (strcmp(g->grid_type, "lambert") == 0)
	{
		p->kind = GIK_PROJ_LAMBERT;
		p->lat_0 = gik_key_double(h, "LaDInDegrees");
		p->lon_0 = gik_key_double(h, "LoVInDegrees");
		p->lat_1 = gik_key_double(h, "Latin1InDegrees");
		p->lat_2 = gik_key_double(h, "Latin2InDegrees");
		p->lat_ts = p->lat_1;
		if (isnan(p->lat_0))
			p->lat_0 = p->lat_1;
	}
	else if (strcmp(g->grid_type, "polar_stereographic") == 0)
	{
		p->kind = GIK_PROJ_POLAR;
		p->lat_0 = south ? -90.0 : 90.0;
		p->lat_ts = gik_key_double(h, "LaDInDegrees");
		if (isnan(p->lat_ts))
			p->lat_ts = south ? -60.0 : 60.0;	/* GRIB1 fixes true scale at 60 degrees */
		p->lon_0 = gik_key_double(h, "orientationOfTheGridInDegrees");
		p->lat_1 = p->lat_2 = p->lat_ts;
	}
	else if (strcmp(g->grid_type, "mercator") == 0)
	{
		p->kind = GIK_PROJ_MERCATOR;
		p->lat_ts = gik_key_double(h, "LaDInDegrees");
		p->lat_0 = p->lon_0 = 0.0;
		p->lat_1 = p->lat_2 = p->lat_ts;
	}
	else
		return;
	/* only a spherical earth is supported: an oblate one leaves the radius NaN, which plans reject */
	p->radius = gik_key_long(h, "earthIsOblate", 0) ? NAN : gik_key_double(h, "radius");
	if (g->ni < 0)
		g->ni = gik_key_long(h, "Nx", -1);
	if (g->nj < 0)
		g->nj = gik_key_long(h, "Ny", -1);
	g->di = gik_key_double(h, p->kind == GIK_PROJ_MERCATOR ? "DiInMetres" : "DxInMetres");
	g->dj = gik_key_double(h, p->kind == GIK_PROJ_MERCATOR ? "DjInMetres" : "DyInMetres");
}

/* Gaussian grids: N, and for reduced ones the points of the northern rows (when symmetric and few enough). */
static void
read_gaussian(void *h, GikGrid *g)
{
	long		pl[2 * 1280];
	size_t		npl = 0;
	bool		octahedral = true;

	if (strcmp(g->grid_type, "regular_gg") != 0 && strcmp(g->grid_type, "reduced_gg") != 0)
		return;
	g->gauss_n = gik_key_long(h, "N", 0);
	if (g->gauss_n <= 0 || g->gauss_n > 100000)
	{
		g->gauss_n = 0;
		return;
	}
	if (strcmp(g->grid_type, "reduced_gg") != 0 || codes_get_size((codes_handle *) h, "pl", &npl) != CODES_SUCCESS ||
		npl != (size_t) (2 * g->gauss_n))
		return;
	if (npl > sizeof(pl) / sizeof(pl[0]))
	{
		g->gauss_rows = gik_key_long(h, "isOctahedral", 0) == 1 ? -1 : 0;
		return;
	}
	if (codes_get_long_array((codes_handle *) h, "pl", pl, &npl) != CODES_SUCCESS || npl != (size_t) (2 * g->gauss_n))
		return;
	for (long r = 0; r < g->gauss_n; r++)
	{
		if (pl[r] <= 0 || pl[r] != pl[npl - 1 - r])
			return;				/* a sub-area or asymmetric grid: no coordinates */
		octahedral = octahedral && pl[r] == 20 + 4 * r;
	}
	if (octahedral)
	{
		g->gauss_rows = -1;
		return;
	}
	if (g->gauss_n > GIK_GAUSS_PL_MAX)
		return;
	for (long r = 0; r < g->gauss_n; r++)
	{
		long		step = pl[r] - (r > 0 ? pl[r - 1] : 0);

		if (step < 0 || step > 255)
			return;
		g->pl_step[r] = (uint8_t) step;
	}
	g->gauss_rows = g->gauss_n;
}

/* Read metadata from a handle; see grib_meta.h. */
void
gik_meta_read(void *h, GikMeta *meta, bool with_names)
{
	GikGrid    *g = &meta->grid;

	memset(meta, 0, sizeof(*meta));
	meta->edition = gik_key_long(h, "editionNumber", -1);
	meta->param_id = -1;
	meta->level = -1;
	meta->data_date = -1;
	meta->data_time = -1;
	meta->number = -1;
	if (with_names)
	{
		gik_key_string(h, "shortName", meta->short_name, sizeof(meta->short_name));
		gik_key_string(h, "name", meta->name, sizeof(meta->name));
		gik_key_string(h, "units", meta->units, sizeof(meta->units));
		meta->param_id = gik_key_long(h, "paramId", -1);
		gik_key_string(h, "typeOfLevel", meta->type_of_level, sizeof(meta->type_of_level));
		meta->level = gik_key_long(h, "level", -1);
		gik_key_string(h, "stepRange", meta->step_range, sizeof(meta->step_range));
		gik_key_string(h, "stepType", meta->step_type, sizeof(meta->step_type));
		meta->data_date = gik_key_long(h, "dataDate", -1);
		meta->data_time = gik_key_long(h, "dataTime", -1);
		meta->number = gik_key_long(h, "number", -1);
	}
	gik_key_string(h, "packingType", meta->packing_type, sizeof(meta->packing_type));
	meta->bits_per_value = gik_key_long(h, "bitsPerValue", -1);
	meta->bitmap_present = gik_key_long(h, "bitmapPresent", 0) != 0;
	/* without a bitmap, counting missing values may decode the field: only the full description pays for it */
	if (with_names || meta->bitmap_present)
		meta->missing_count = gik_key_long(h, "numberOfMissing", 0);

	gik_key_string(h, "gridType", g->grid_type, sizeof(g->grid_type));
	g->ni = gik_key_long(h, "Ni", -1);
	g->nj = gik_key_long(h, "Nj", -1);
	g->num_points = gik_key_long(h, "numberOfValues", -1);
	if (g->num_points < 0)
		g->num_points = gik_key_long(h, "numberOfDataPoints", -1);
	g->lat_first = gik_key_double(h, "latitudeOfFirstGridPointInDegrees");
	g->lon_first = gik_key_double(h, "longitudeOfFirstGridPointInDegrees");
	g->lat_last = gik_key_double(h, "latitudeOfLastGridPointInDegrees");
	g->lon_last = gik_key_double(h, "longitudeOfLastGridPointInDegrees");
	g->di = gik_key_double(h, "iDirectionIncrementInDegrees");
	g->dj = gik_key_double(h, "jDirectionIncrementInDegrees");
	g->scanning_mode = gik_key_long(h, "scanningMode", 0);
	g->i_scans_negatively = gik_key_long(h, "iScansNegatively", 0) != 0;
	g->j_scans_positively = gik_key_long(h, "jScansPositively", 0) != 0;
	g->j_points_consecutive = gik_key_long(h, "jPointsAreConsecutive", 0) != 0;
	g->alternate_rows = (g->scanning_mode & 0x10) != 0;
	read_projection(h, g);
	read_gaussian(h, g);
}

/* One guarded metadata read. */
typedef struct MetaCall
{
	const void *msg;
	size_t		len;
	GikMeta    *meta;
	codes_handle *h;
} MetaCall;

static void
meta_call(void *arg)
{
	MetaCall   *c = (MetaCall *) arg;

	c->h = codes_handle_new_from_message(NULL, c->msg, c->len);
	if (c->h)
		gik_meta_read(c->h, c->meta, true);
}

/* Read metadata from one complete message in memory; see grib_meta.h. */
int
gik_meta_from_message(const void *msg, size_t len, GikMeta *meta, char *errbuf, size_t errlen)
{
	MetaCall	c = {msg, len, meta, NULL};
	char		what[200];
	bool		finished;

	switch (gik_grib_sane(msg, len, NULL, errbuf, errlen))
	{
		case GIK_SANE_OK:
			break;
		case GIK_SANE_UNSUPPORTED:
			return CODES_NOT_IMPLEMENTED;
		default:
			return CODES_INVALID_MESSAGE;
	}
	finished = gik_eccodes_guarded(meta_call, &c, what, sizeof(what));
	if (c.h)
		codes_handle_delete(c.h);
	if (!finished)
	{
		snprintf(errbuf, errlen, "The message is malformed: ecCodes gave up reading it (%s).", what);
		return CODES_INVALID_MESSAGE;
	}
	if (!c.h)
	{
		snprintf(errbuf, errlen, "ecCodes could not read the message.");
		return CODES_INVALID_MESSAGE;
	}
	return 0;
}
