/* GRIB message metadata read with ecCodes (decoder program only). */
#ifndef GIK_DECODER_ECCODES_META_H
#define GIK_DECODER_ECCODES_META_H

#include <stdbool.h>
#include <stddef.h>

#include "core/grib_meta.h"

/*
 * Read metadata from a handle (codes_handle *). with_names reads the ecCodes concepts too
 * (short name, name, units, parameter, level, step, date, member): they cost several
 * milliseconds per message, more than decoding a small field, so decoding skips them and
 * leaves them empty (-1 for numbers). The message must have passed gik_grib_sane: ecCodes
 * reads some keys (numberOfMissing) without bounds checks.
 */
extern void gik_meta_read(void *handle, GikMeta *meta, bool with_names);

/*
 * Read metadata from one complete message in memory, after gik_grib_sane and under the
 * ecCodes assertion guard. Returns 0 or an ecCodes error code (CODES_INVALID_MESSAGE when
 * the message fails the checks); errbuf receives a full sentence on failure.
 */
extern int	gik_meta_from_message(const void *msg, size_t len, GikMeta *meta,
								  char *errbuf, size_t errlen);

/* Key readers over a handle (codes_handle *): the value, or dflt / NaN / "" when the key is not defined or is missing. */
extern long gik_key_long(void *handle, const char *key, long dflt);
extern double gik_key_double(void *handle, const char *key);
extern void gik_key_string(void *handle, const char *key, char *out, size_t outlen);

#endif
