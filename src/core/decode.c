/* Decode one GRIB message with ecCodes into a float grid. */
#include "core/decode.h"

#include <eccodes.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Milliseconds on a monotonic clock. */
static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/*
 * ecCodes reacts to some malformed messages (e.g. complex packing whose group lengths
 * overrun the field) with a failed assertion, which by default calls abort() and takes
 * the whole server down. While a decode runs in this thread, a failed assertion jumps
 * back into gik_decode_message instead, which reports the message as malformed. Outside
 * a decode the default behaviour (print and abort) is kept.
 */
static __thread jmp_buf *assert_jump = NULL;
static __thread char assert_text[200];
static pthread_once_t assert_once = PTHREAD_ONCE_INIT;

/* ecCodes assertion handler: leave the current decode, or abort as ecCodes would. */
static void
on_eccodes_assertion(const char *message)
{
	if (assert_jump != NULL)
	{
		snprintf(assert_text, sizeof(assert_text), "%s", message);
		longjmp(*assert_jump, 1);
	}
	fprintf(stderr, "%s\n", message);
	abort();
}

/* Install the assertion handler (once per process). */
static void
install_assertion_handler(void)
{
	codes_set_codes_assertion_failed_proc(on_eccodes_assertion);
}

/*
 * Cross-checks of a GRIB2 message's counts that ecCodes 2.28 trusts when it decodes: a bitmap
 * whose set bits differ from the coded values makes its JPEG 2000 decoder overrun the heap, and
 * simple packing with more coded bits than section 7 holds makes it read past the message.
 * Returns NULL when consistent, else a sentence.
 */
static const char *
grib2_counts_problem(codes_handle *h, const GikMeta *meta, long grid_points)
{
	long		coded = -1;
	long		bits = -1;
	long		sec7 = -1;

	if (meta->edition != 2 || grid_points <= 0 || codes_get_long(h, "numberOfValues", &coded) != 0 || coded < 0)
		return NULL;
	if (meta->bitmap_present && coded + meta->missing_count != grid_points)
		return "Its bitmap and its data representation section disagree on how many values are coded";
	if (!meta->bitmap_present && coded != grid_points)
		return "Its data representation section codes a number of values other than its grid's";
	if (strcmp(meta->packing_type, "grid_simple") == 0 &&
		codes_get_long(h, "bitsPerValue", &bits) == 0 && codes_get_long(h, "section7Length", &sec7) == 0 &&
		(double) coded * (double) bits > 8.0 * (double) (sec7 - 5))
		return "Its data section is shorter than its coded values need";
	return NULL;
}

/* A long key, or dflt when it is not defined or is missing. */
static long
key_long(codes_handle *h, const char *key, long dflt)
{
	long		v;
	int			err = 0;

	if (!codes_is_defined(h, key) || codes_is_missing(h, key, &err) || err ||
		codes_get_long(h, key, &v) != CODES_SUCCESS)
		return dflt;
	return v;
}

/* A double key, or NaN when it is not defined or is missing. */
static double
key_double(codes_handle *h, const char *key)
{
	double		v;
	int			err = 0;

	if (!codes_is_defined(h, key) || codes_is_missing(h, key, &err) || err ||
		codes_get_double(h, key, &v) != CODES_SUCCESS)
		return NAN;
	return v;
}

/*
 * What a decode needs of the message: its grid, edition, packing and bitmap. The rest of GikMeta
 * (names, units, levels, steps) is left empty: those keys are ecCodes concepts, and looking them up
 * costs several milliseconds per message, more than decoding a small field.
 */
static void
decode_meta(codes_handle *h, GikMeta *meta)
{
	GikGrid    *g = &meta->grid;
	size_t		len;

	memset(meta, 0, sizeof(*meta));
	meta->param_id = -1;
	meta->level = -1;
	meta->data_date = -1;
	meta->data_time = -1;
	meta->number = -1;
	meta->edition = key_long(h, "editionNumber", -1);
	len = sizeof(meta->packing_type);
	if (codes_get_string(h, "packingType", meta->packing_type, &len) != CODES_SUCCESS)
		meta->packing_type[0] = '\0';
	meta->bits_per_value = key_long(h, "bitsPerValue", -1);
	meta->bitmap_present = key_long(h, "bitmapPresent", 0) != 0;
	meta->missing_count = meta->bitmap_present ? key_long(h, "numberOfMissing", 0) : 0;

	len = sizeof(g->grid_type);
	if (codes_get_string(h, "gridType", g->grid_type, &len) != CODES_SUCCESS)
		g->grid_type[0] = '\0';
	g->ni = key_long(h, "Ni", -1);
	g->nj = key_long(h, "Nj", -1);
	g->num_points = key_long(h, "numberOfValues", -1);
	if (g->num_points < 0)
		g->num_points = key_long(h, "numberOfDataPoints", -1);
	g->lat_first = key_double(h, "latitudeOfFirstGridPointInDegrees");
	g->lon_first = key_double(h, "longitudeOfFirstGridPointInDegrees");
	g->lat_last = key_double(h, "latitudeOfLastGridPointInDegrees");
	g->lon_last = key_double(h, "longitudeOfLastGridPointInDegrees");
	g->di = key_double(h, "iDirectionIncrementInDegrees");
	g->dj = key_double(h, "jDirectionIncrementInDegrees");
	g->scanning_mode = key_long(h, "scanningMode", 0);
	g->i_scans_negatively = key_long(h, "iScansNegatively", 0) != 0;
	g->j_scans_positively = key_long(h, "jScansPositively", 0) != 0;
	g->j_points_consecutive = key_long(h, "jPointsAreConsecutive", 0) != 0;
}

/* malloc for the grid planner: decode threads must not use palloc. */
static void *
plan_alloc(size_t size)
{
	return malloc(size ? size : 1);
}

/* Decode a message. */
int
gik_decode_message(const void *msg, size_t len, const GikDecodeOptions *opts,
				   GikDecoded *out, char *errbuf, size_t errlen)
{
	codes_handle *volatile h = NULL;
	double	   *volatile raw = NULL;
	size_t		n = 0;
	long		grid_points = -1;
	const char *problem;
	int			err;
	double		t0 = now_ms();
	jmp_buf		jump;

	memset(out, 0, sizeof(*out));
	pthread_once(&assert_once, install_assertion_handler);
	if (setjmp(jump) != 0)
	{
		/* an ecCodes assertion failed inside this decode; ecCodes' scratch buffers of the call are lost */
		assert_jump = NULL;
		if (h)
			codes_handle_delete(h);
		free(raw);
		snprintf(errbuf, errlen, "The message is malformed: ecCodes gave up decoding it (%s).", assert_text);
		return 1;
	}
	assert_jump = &jump;
	h = codes_handle_new_from_message(NULL, msg, len);
	if (!h)
	{
		assert_jump = NULL;
		snprintf(errbuf, errlen, "ecCodes could not read the message.");
		return 1;
	}
	decode_meta(h, &out->meta);
	if (codes_get_long(h, "numberOfDataPoints", &grid_points) != 0)
		grid_points = -1;
	if ((problem = grib2_counts_problem(h, &out->meta, grid_points)) != NULL)
	{
		assert_jump = NULL;
		codes_handle_delete(h);
		snprintf(errbuf, errlen, "The message is corrupt: %s.", problem);
		return 1;
	}
	err = codes_set_double(h, "missingValue", NAN);
	if (!err)
		err = codes_get_size(h, "values", &n);
	/* a corrupt data representation section can announce any number of values */
	if (!err && grid_points > 0 && (size_t) grid_points != n && strcmp(out->meta.grid.grid_type, "sh") != 0)
	{
		assert_jump = NULL;
		codes_handle_delete(h);
		snprintf(errbuf, errlen,
				 "The message has %zu values but its grid has %ld points; it is corrupt.", n, grid_points);
		return 1;
	}
	if (!err && n > GIK_DECODE_MAX_VALUES)
	{
		assert_jump = NULL;
		codes_handle_delete(h);
		snprintf(errbuf, errlen, "The message has %zu values, more than the %zu one decode may return.",
				 n, GIK_DECODE_MAX_VALUES);
		return 1;
	}
	if (!err)
	{
		raw = malloc(sizeof(double) * (n ? n : 1));
		if (!raw)
			err = CODES_OUT_OF_MEMORY;
	}
	if (!err)
		err = codes_get_double_array(h, "values", raw, &n);
	assert_jump = NULL;
	codes_handle_delete(h);
	out->decode_ms = now_ms() - t0;
	if (err)
	{
		free(raw);
		snprintf(errbuf, errlen, "ecCodes could not decode the values: %s.", codes_get_error_message(err));
		return 1;
	}

	out->regular = gik_grid_is_regular_ll(&out->meta.grid) &&
		out->meta.grid.ni > 0 && out->meta.grid.nj > 0 &&
		(uint64_t) out->meta.grid.ni * (uint64_t) out->meta.grid.nj == (uint64_t) n;
	if (!out->regular && (opts->has_box || opts->lon != GIK_LON_SOURCE))
	{
		free(raw);
		snprintf(errbuf, errlen,
				 "Grid type %s is not supported for regions or longitude conventions; decode it without them to get its values in scanning order.",
				 out->meta.grid.grid_type[0] ? out->meta.grid.grid_type : "unknown");
		return 1;
	}
	if (out->regular)
	{
		GikGridPlan plan;

		if (!gik_grid_plan(&out->meta.grid, opts->lon, opts->has_box ? &opts->box : NULL,
						   plan_alloc, &plan, errbuf, errlen))
		{
			free(raw);
			return 1;
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
		return 1;
	}
	return 0;
}

/* Free a decoded message's values. */
void
gik_decoded_free(GikDecoded *decoded)
{
	free(decoded->values);
	decoded->values = NULL;
}
