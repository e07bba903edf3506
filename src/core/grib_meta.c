/* GRIB message metadata and grid description read with ecCodes. */
#include "core/grib_meta.h"

#include <eccodes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Read a string key, or leave "" when it is not defined. */
static void
get_string(codes_handle *h, const char *key, char *out, size_t outlen)
{
	size_t		len = outlen;

	if (codes_get_string(h, key, out, &len) != CODES_SUCCESS)
		out[0] = '\0';
}

/* Read a long key, or return dflt when it is not defined or missing. */
static long
get_long(codes_handle *h, const char *key, long dflt)
{
	long		v;
	int			err = 0;

	if (!codes_is_defined(h, key) || codes_is_missing(h, key, &err) || err)
		return dflt;
	if (codes_get_long(h, key, &v) != CODES_SUCCESS)
		return dflt;
	return v;
}

/* Read a double key, or NaN when it is not defined or missing. */
static double
get_double(codes_handle *h, const char *key)
{
	double		v;
	int			err = 0;

	if (!codes_is_defined(h, key) || codes_is_missing(h, key, &err) || err)
		return NAN;
	if (codes_get_double(h, key, &v) != CODES_SUCCESS)
		return NAN;
	return v;
}

/*
 * True when the bitmap section holds a bit for every grid point. ecCodes 2.28 counts missing
 * points (numberOfMissing) over numberOfDataPoints bits without checking, past the message's end.
 */
static bool
bitmap_covers_grid(codes_handle *h, long edition)
{
	long		section_len = get_long(h, edition == 1 ? "section3Length" : "section6Length", -1);
	long		unused = edition == 1 ? get_long(h, "numberOfUnusedBitsAtEndOfSection3", 0) : 0;
	long		points = get_long(h, "numberOfDataPoints", -1);

	return section_len > 6 && points >= 0 && (section_len - 6) * 8 - unused >= points;
}

/* Read metadata from a handle. */
int
gik_meta_from_handle(void *handle, GikMeta *meta)
{
	codes_handle *h = (codes_handle *) handle;
	GikGrid    *g = &meta->grid;

	memset(meta, 0, sizeof(*meta));
	meta->edition = get_long(h, "editionNumber", -1);
	get_string(h, "shortName", meta->short_name, sizeof(meta->short_name));
	get_string(h, "name", meta->name, sizeof(meta->name));
	get_string(h, "units", meta->units, sizeof(meta->units));
	meta->param_id = get_long(h, "paramId", -1);
	get_string(h, "typeOfLevel", meta->type_of_level, sizeof(meta->type_of_level));
	meta->level = get_long(h, "level", -1);
	get_string(h, "stepRange", meta->step_range, sizeof(meta->step_range));
	get_string(h, "stepType", meta->step_type, sizeof(meta->step_type));
	meta->data_date = get_long(h, "dataDate", -1);
	meta->data_time = get_long(h, "dataTime", -1);
	meta->number = get_long(h, "number", -1);
	get_string(h, "packingType", meta->packing_type, sizeof(meta->packing_type));
	meta->bits_per_value = get_long(h, "bitsPerValue", -1);
	meta->bitmap_present = get_long(h, "bitmapPresent", 0) != 0;
	if (meta->bitmap_present && !bitmap_covers_grid(h, meta->edition))
		return CODES_WRONG_BITMAP_SIZE;
	meta->missing_count = get_long(h, "numberOfMissing", 0);

	get_string(h, "gridType", g->grid_type, sizeof(g->grid_type));
	g->ni = get_long(h, "Ni", -1);
	g->nj = get_long(h, "Nj", -1);
	g->num_points = get_long(h, "numberOfValues", -1);
	if (g->num_points < 0)
		g->num_points = get_long(h, "numberOfDataPoints", -1);
	g->lat_first = get_double(h, "latitudeOfFirstGridPointInDegrees");
	g->lon_first = get_double(h, "longitudeOfFirstGridPointInDegrees");
	g->lat_last = get_double(h, "latitudeOfLastGridPointInDegrees");
	g->lon_last = get_double(h, "longitudeOfLastGridPointInDegrees");
	g->di = get_double(h, "iDirectionIncrementInDegrees");
	g->dj = get_double(h, "jDirectionIncrementInDegrees");
	g->scanning_mode = get_long(h, "scanningMode", 0);
	g->i_scans_negatively = get_long(h, "iScansNegatively", 0) != 0;
	g->j_scans_positively = get_long(h, "jScansPositively", 0) != 0;
	g->j_points_consecutive = get_long(h, "jPointsAreConsecutive", 0) != 0;
	return 0;
}

/* Read metadata from one complete message in memory. */
int
gik_meta_from_message(const void *msg, size_t len, GikMeta *meta, char *errbuf, size_t errlen)
{
	codes_handle *h = codes_handle_new_from_message(NULL, msg, len);
	int			err;

	if (!h)
	{
		snprintf(errbuf, errlen, "ecCodes could not read the message.");
		return CODES_INVALID_MESSAGE;
	}
	err = gik_meta_from_handle(h, meta);
	codes_handle_delete(h);
	if (err)
		snprintf(errbuf, errlen, "ecCodes: %s.", codes_get_error_message(err));
	return err;
}

/* True when the grid is a regular latitude/longitude grid. */
bool
gik_grid_is_regular_ll(const GikGrid *grid)
{
	return strcmp(grid->grid_type, "regular_ll") == 0 && grid->ni > 0 && grid->nj > 0 &&
		!isnan(grid->di) && !isnan(grid->dj);
}
