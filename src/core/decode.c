/* Decode one GRIB message with ecCodes into a float grid. */
#include "core/decode.h"

#include <eccodes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/eccodes_guard.h"

/* Milliseconds on a monotonic clock. */
static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* malloc for the grid planner: decode threads must not use palloc. */
static void *
plan_alloc(size_t size)
{
	return malloc(size ? size : 1);
}

/* The ecCodes part of a decode, run under the assertion guard; what it allocates stays reachable. */
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

static void
values_call(void *arg)
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
	if (c->n > GIK_DECODE_MAX_VALUES)
	{
		snprintf(c->errbuf, c->errlen, "The message has %zu values, more than the %zu one decode may return.",
				 c->n, GIK_DECODE_MAX_VALUES);
		return;
	}
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

/* Decode a message; see decode.h. */
GikDecodeStatus
gik_decode_message(const void *msg, size_t len, const GikDecodeOptions *opts,
				   GikDecoded *out, char *errbuf, size_t errlen)
{
	ValuesCall	c = {msg, len, &out->meta, NULL, NULL, 0, GIK_DECODE_CORRUPT, errbuf, errlen};
	char		what[200];
	double		t0 = now_ms();
	double	   *raw;
	size_t		n;

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
	if (!gik_eccodes_guarded(values_call, &c, what, sizeof(what)))
	{
		c.status = GIK_DECODE_CORRUPT;
		snprintf(errbuf, errlen, "The message is malformed: ecCodes gave up decoding it (%s).", what);
	}
	if (c.h)
		codes_handle_delete(c.h);
	out->decode_ms = now_ms() - t0;
	if (c.status != GIK_DECODE_OK)
	{
		free(c.raw);
		return c.status;
	}
	raw = c.raw;
	n = c.n;

	out->regular = gik_grid_is_regular_ll(&out->meta.grid) &&
		out->meta.grid.ni > 0 && out->meta.grid.nj > 0 &&
		(uint64_t) out->meta.grid.ni * (uint64_t) out->meta.grid.nj == (uint64_t) n;
	if (!out->regular && (opts->has_box || opts->lon != GIK_LON_SOURCE))
	{
		free(raw);
		snprintf(errbuf, errlen,
				 "Grid type %s is not supported for regions or longitude conventions; decode it without them to get its values in scanning order.",
				 out->meta.grid.grid_type[0] ? out->meta.grid.grid_type : "unknown");
		return GIK_DECODE_UNSUPPORTED;
	}
	if (out->regular)
	{
		GikGridPlan plan;

		if (!gik_grid_plan(&out->meta.grid, opts->lon, opts->has_box ? &opts->box : NULL,
						   plan_alloc, &plan, errbuf, errlen))
		{
			free(raw);
			return opts->has_box ? GIK_DECODE_BAD_REGION : GIK_DECODE_CORRUPT;
		}
		out->out = plan.out;
		out->nvalues = (size_t) (plan.out.ni * plan.out.nj);
		out->values = malloc(sizeof(float) * (out->nvalues ? out->nvalues : 1));
		if (out->values)
			gik_grid_apply(&plan, raw, n, NAN, out->values);
		free(plan.col_src);
		free(plan.row_src);
	}
	else
	{
		out->nvalues = n;
		out->values = malloc(sizeof(float) * (n ? n : 1));
		if (out->values)
			for (size_t i = 0; i < n; i++)
				out->values[i] = (float) raw[i];
	}
	free(raw);
	if (!out->values)
	{
		snprintf(errbuf, errlen, "Out of memory for %zu decoded values.", out->nvalues);
		return GIK_DECODE_OUT_OF_MEMORY;
	}
	return GIK_DECODE_OK;
}

/* Free a decoded message's values. */
void
gik_decoded_free(GikDecoded *decoded)
{
	free(decoded->values);
	decoded->values = NULL;
}
