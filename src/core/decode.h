/* Decode one GRIB message with ecCodes into a float grid. Pure C, thread-safe, no PostgreSQL headers. */
#ifndef GIK_CORE_DECODE_H
#define GIK_CORE_DECODE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/grib_meta.h"
#include "core/grib_sanity.h"
#include "core/grid.h"

/* Most values one message may decode to (see grib_sanity.h). */
#define GIK_DECODE_MAX_VALUES ((size_t) GIK_GRIB_MAX_POINTS)

/* Outcome of a decode; the SQL glue maps each to one SQLSTATE (gik_raise_decode_error). */
typedef enum GikDecodeStatus
{
	GIK_DECODE_OK = 0,
	GIK_DECODE_CORRUPT,			/* malformed message, or ecCodes could not decode it */
	GIK_DECODE_UNSUPPORTED,		/* GRIB1 second-order packing; a region or longitude convention on a grid other than regular lat/lon */
	GIK_DECODE_BAD_REGION,		/* the region is not valid or holds no cell of the grid */
	GIK_DECODE_OUT_OF_MEMORY
} GikDecodeStatus;

/* What to decode and how to lay it out. */
typedef struct GikDecodeOptions
{
	GikLonConvention lon;
	bool		has_box;
	GikBox		box;
} GikDecodeOptions;

/* A decoded message. values is malloc'd: release with gik_decoded_free. */
typedef struct GikDecoded
{
	GikMeta		meta;			/* grid, edition, packing, bitmap (names, levels, steps not read) */
	bool		regular;		/* values follow out (north-up regular lat/lon) */
	GikOutGrid	out;			/* output grid when regular */
	float	   *values;			/* regular: out.nj * out.ni; otherwise meta.grid.num_points in scanning order */
	size_t		nvalues;
	double		decode_ms;		/* time spent in ecCodes */
} GikDecoded;

/*
 * Decode msg[0..len) (one complete GRIB message, already checked) with options.
 * Missing points (bitmap or missing-value management) become NaN. Regions and
 * longitude conventions need a regular lat/lon grid; without them any grid decodes.
 * The message is checked with gik_grib_sane first, and ecCodes runs under the assertion guard.
 * Returns GIK_DECODE_OK, or another status with a full sentence in errbuf.
 */
extern GikDecodeStatus gik_decode_message(const void *msg, size_t len, const GikDecodeOptions *opts,
							   GikDecoded *out, char *errbuf, size_t errlen);

/* Free what gik_decode_message allocated. */
extern void gik_decoded_free(GikDecoded *decoded);

#endif
