/* Decode one GRIB message with ecCodes into a float grid. */
#include "decoder/decode.h"

#include <eccodes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "decoder/eccodes_guard.h"
#include "decoder/eccodes_meta.h"

/* Milliseconds on a monotonic clock. */
static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* malloc for the grid planner. */
static void *
plan_alloc(size_t size)
{
	return malloc(size ? size : 1);
}

/* The ecCodes parts of a decode, each run under the assertion guard; what they allocate stays reachable. */
typedef struct ValuesCall
{
	const void *msg;
	size_t		len;
	GikMeta    *meta;
	codes_handle *h;
	double	   *raw;			/* malloc'd values in scanning order */
	size_t		n;
	GikDecodeStatus status;
	char	   *errbuf;
	size_t		errlen;
} ValuesCall;

/* Open the message, read its grid and how many values it holds. */
static void
open_call(void *arg)
{
	ValuesCall *c = (ValuesCall *) arg;
	long		grid_points;
	int			err;

	c->status = GIK_DECODE_CORRUPT;
	c->h = codes_handle_new_from_message(NULL, c->msg, c->len);
	if (!c->h)
	{
		snprintf(c->errbuf, c->errlen, "ecCodes could not read the message.");
		return;
	}
	gik_meta_read(c->h, c->meta, false);
	grid_points = gik_key_long(c->h, "numberOfDataPoints", -1);
	err = codes_set_double(c->h, "missingValue", NAN);
	if (!err)
		err = codes_get_size(c->h, "values", &c->n);
	if (err)
	{
		snprintf(c->errbuf, c->errlen, "ecCodes could not decode the values: %s.", codes_get_error_message(err));
		return;
	}
	/* a corrupt data representation section can announce any number of values */
	if (grid_points > 0 && (size_t) grid_points != c->n && strcmp(c->meta->grid.grid_type, "sh") != 0)
	{
		snprintf(c->errbuf, c->errlen,
				 "The message has %zu values but its grid has %ld points; it is corrupt.", c->n, grid_points);
		return;
	}
	if (c->n > (size_t) GIK_GRIB_MAX_POINTS)
	{
		snprintf(c->errbuf, c->errlen, "The message has %zu values, more than the %ld one decode may return.",
				 c->n, GIK_GRIB_MAX_POINTS);
		return;
	}
	c->status = GIK_DECODE_OK;
}

/* Decode the values in scanning order. */
static void
values_call(void *arg)
{
	ValuesCall *c = (ValuesCall *) arg;
	int			err;

	c->status = GIK_DECODE_CORRUPT;
	c->raw = malloc(sizeof(double) * (c->n ? c->n : 1));
	if (!c->raw)
	{
		c->status = GIK_DECODE_OUT_OF_MEMORY;
		snprintf(c->errbuf, c->errlen, "Out of memory for %zu values.", c->n);
		return;
	}
	err = codes_get_double_array(c->h, "values", c->raw, &c->n);
	if (err)
	{
		snprintf(c->errbuf, c->errlen, "ecCodes could not decode the values: %s.", codes_get_error_message(err));
		return;
	}
	c->status = GIK_DECODE_OK;
}

/* Run one guarded step; false (status CORRUPT and a sentence) when ecCodes gave up. */
static bool
guarded_step(void (*fn) (void *), ValuesCall *c)
{
	char		what[200];

	if (gik_eccodes_guarded(fn, c, what, sizeof(what)))
		return c->status == GIK_DECODE_OK;
	c->status = GIK_DECODE_CORRUPT;
	snprintf(c->errbuf, c->errlen, "The message is malformed: ecCodes gave up decoding it (%s).", what);
	return false;
}

/* Plan the output of a regular lat/lon or projected grid and check it fits; GIK_DECODE_OK or a failure status. */
static GikDecodeStatus
plan_output(GikDecoded *out, const GikDecodeOptions *opts, size_t n, size_t capacity,
			GikGridPlan *plan, char *errbuf, size_t errlen)
{
	const GikGrid *g = &out->meta.grid;

	/* regular lat/lon and projected grids come out north-up; the others in scanning order */
	out->regular = (gik_grid_is_regular_ll(g) || g->proj.kind != GIK_PROJ_NONE) &&
		g->ni > 0 && g->nj > 0 && (uint64_t) g->ni * (uint64_t) g->nj == (uint64_t) n;
	if (!out->regular)
	{
		if (opts->has_box || opts->lon != GIK_LON_SOURCE)
		{
			snprintf(errbuf, errlen,
					 "Grid type %s is not supported for regions or longitude conventions (it needs regridding first); decode it without them to get its values in scanning order.",
					 out->meta.grid.grid_type[0] ? out->meta.grid.grid_type : "unknown");
			return GIK_DECODE_UNSUPPORTED;
		}
		out->nvalues = n;
	}
	else
	{
		if (!gik_grid_plan(&out->meta.grid, opts->lon, opts->has_box ? &opts->box : NULL,
						   plan_alloc, plan, errbuf, errlen))
			return opts->has_box ? GIK_DECODE_BAD_REGION : GIK_DECODE_CORRUPT;
		out->out = plan->out;
		out->nvalues = (size_t) (plan->out.ni * plan->out.nj);
	}
	if (out->nvalues > capacity)
	{
		snprintf(errbuf, errlen, "The message decodes to %zu values; room was given for %zu.", out->nvalues, capacity);
		return GIK_DECODE_NEED_SPACE;
	}
	return GIK_DECODE_OK;
}

/* Decode a message; see decode.h. */
GikDecodeStatus
gik_decode_message(const void *msg, size_t len, const GikDecodeOptions *opts,
				   GikDecoded *out, float *values, size_t capacity, char *errbuf, size_t errlen)
{
	ValuesCall	c = {msg, len, &out->meta, NULL, NULL, 0, GIK_DECODE_CORRUPT, errbuf, errlen};
	GikGridPlan plan = {0};
	double		t0 = now_ms();
	GikDecodeStatus status;

	memset(out, 0, sizeof(*out));
	switch (gik_grib_sane(msg, len, NULL, errbuf, errlen))
	{
		case GIK_SANE_OK:
			break;
		case GIK_SANE_UNSUPPORTED:
			return GIK_DECODE_UNSUPPORTED;
		default:
			return GIK_DECODE_CORRUPT;
	}
	if (!guarded_step(open_call, &c))
		status = c.status;
	else if ((status = plan_output(out, opts, c.n, capacity, &plan, errbuf, errlen)) == GIK_DECODE_OK &&
			 !guarded_step(values_call, &c))
		status = c.status;
	if (c.h)
		codes_handle_delete(c.h);
	out->decode_ms = now_ms() - t0;
	if (status == GIK_DECODE_OK)
	{
		if (out->regular)
			gik_grid_apply(&plan, c.raw, c.n, NAN, values);
		else
			for (size_t i = 0; i < c.n; i++)
				values[i] = (float) c.raw[i];
	}
	free(plan.col_src);
	free(plan.row_src);
	free(c.raw);
	return status;
}
