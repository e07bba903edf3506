/* Structural checks of one GRIB message before ecCodes reads it: pure C, no PostgreSQL headers. */
#ifndef GIK_CORE_GRIB_SANITY_H
#define GIK_CORE_GRIB_SANITY_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Most grid points (or coded values) a message may declare: 10^8, four times the largest
 * operational grids (MRMS 0.01 degree CONUS, 24.5 million points). A corrupt or hostile
 * message can claim billions of points in a few bytes, and ecCodes allocates them.
 */
#define GIK_GRIB_MAX_POINTS 100000000L

typedef enum GikSanity
{
	GIK_SANE_OK = 0,
	GIK_SANE_CORRUPT,			/* structure inconsistent: ecCodes would misbehave */
	GIK_SANE_UNSUPPORTED		/* valid perhaps, but a kind ecCodes cannot read safely (GRIB1 second order) */
} GikSanity;

/*
 * Check msg[0..len), one framed GRIB message (gik_grib_check), from its bytes: sections lie
 * within the message, point counts are bounded and agree (grid, bitmap, coded values), and
 * the data section holds what its packing needs. ecCodes 2.28 trusts these and reads past
 * the message, overruns its buffers or allocates gigabytes when they are wrong.
 * Returns GIK_SANE_OK, else another status with a full sentence in errbuf.
 */
extern GikSanity gik_grib_sane(const unsigned char *msg, size_t len, char *errbuf, size_t errlen);

#endif
