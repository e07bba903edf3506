/* What a decode is asked for and what it returns: types shared by the backend and the decoder program. */
#ifndef GIK_CORE_DECODED_H
#define GIK_CORE_DECODED_H

#include <stdbool.h>
#include <stddef.h>

#include "core/grib_meta.h"
#include "core/grib_sanity.h"
#include "core/grid.h"

/* Outcome of a decode; the backend maps each to one SQLSTATE (gik_raise_decode_error). */
typedef enum GikDecodeStatus
{
	GIK_DECODE_OK = 0,
	GIK_DECODE_CORRUPT,			/* malformed message, or ecCodes could not decode it */
	GIK_DECODE_UNSUPPORTED,		/* GRIB1 second-order packing; a region or longitude convention on a grid other than regular lat/lon */
	GIK_DECODE_BAD_REGION,		/* the region is not valid or holds no cell of the grid */
	GIK_DECODE_OUT_OF_MEMORY,	/* an allocation failed (the decoder's memory limit) */
	GIK_DECODE_NEED_SPACE,		/* the values need more room than the request gave (decoder to backend only) */
	GIK_DECODE_TOO_LARGE,		/* over gik.max_message_points or gik.max_call_decoded_size */
	GIK_DECODE_CRASHED,			/* the decoder process died on the message */
	GIK_DECODE_TIMEOUT			/* the decoder ran past gik.decoder_timeout */
} GikDecodeStatus;

/* What to decode and how to lay it out. */
typedef struct GikDecodeOptions
{
	GikLonConvention lon;
	bool		has_box;
	GikBox		box;
} GikDecodeOptions;

/* A decoded message: its metadata and layout; the values travel separately. */
typedef struct GikDecoded
{
	GikMeta		meta;			/* grid, edition, packing, bitmap (names, levels, steps not read) */
	bool		regular;		/* values follow out (north-up regular lat/lon) */
	GikOutGrid	out;			/* output grid when regular */
	size_t		nvalues;		/* regular: out.nj * out.ni; otherwise meta.grid.num_points in scanning order */
	double		decode_ms;		/* time spent in ecCodes */
} GikDecoded;

#endif
