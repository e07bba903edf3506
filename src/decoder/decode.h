/* Decode one GRIB message with ecCodes into a float grid (decoder program only). */
#ifndef GIK_DECODER_DECODE_H
#define GIK_DECODER_DECODE_H

#include "core/decoded.h"

/*
 * Decode msg[0..len) (one complete GRIB message) with options into values[0..capacity).
 * Missing points (bitmap or missing-value management) become NaN. Regions and longitude
 * conventions need a regular lat/lon grid; without them any grid decodes. The message is
 * checked with gik_grib_sane first, and ecCodes runs under the assertion guard.
 * Returns GIK_DECODE_OK with out->nvalues values written; GIK_DECODE_NEED_SPACE with
 * out->nvalues set when capacity is too small (nothing written); or another status with
 * a full sentence in errbuf.
 */
extern GikDecodeStatus gik_decode_message(const void *msg, size_t len, const GikDecodeOptions *opts,
										  GikDecoded *out, float *values, size_t capacity,
										  char *errbuf, size_t errlen);

#endif
