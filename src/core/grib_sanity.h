/* Structural checks of one GRIB message before ecCodes reads it: pure C, no PostgreSQL headers. */
#ifndef GIK_CORE_GRIB_SANITY_H
#define GIK_CORE_GRIB_SANITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
 * What a message declares about its size, from its bytes alone.
 *
 * points is an upper bound of the number of values ecCodes 2.28 returns as "values" for the
 * message's first field (missing points included), so that a caller can refuse a message
 * before any decoder allocates memory for it; 0 when it cannot be known from the bytes.
 * - GRIB2: the largest "number of data points" of section 3 over the message's fields (the
 *   check makes the bitmap and the coded values agree with it); for spherical harmonics
 *   (templates 5.50, 5.51) at least (J+1)(J+2). 0 when a field uses a data representation
 *   template whose count pg_gik does not know (other than 5.0, 5.2-5.4, 5.40-5.42, 5.50,
 *   5.51, 5.61).
 * - GRIB1: the largest of the counts ecCodes may use for the field, as far as the bytes give
 *   them: the GDS points (Ni x Nj, or the row lengths of a reduced grid) when pg_gik counts
 *   the grid type, the row lengths ecCodes reads in any case, one value per bitmap bit, the
 *   values that fit in the BDS at its bits per value when bits > 0, (J+1)(J+2) for spherical
 *   harmonics, 4186 (the largest predefined grid) without a GDS. For an ordinary grid that is
 *   Ni x Nj. 0 when none is known (bits 0 on a grid type pg_gik does not count, matrix values).
 * This holds for what ecCodes reads within the sections the message declares, for the grids
 * above; ecCodes can misread a section it sizes from its own tables (an ECMWF local GRIB1 PDS
 * longer than its length, test/fuzz/known/decode/grib1-16gb-allocation) and count GRIB1 grids
 * of other kinds its own way (the decode fuzzer finds Lambert and rotated grids with 0 bits per
 * value that decode to more), and then its counts are not these. So points is the room a decode
 * is first given; a decoder that needs more says so before it writes anything, and the backend
 * holds that count against the same limits (decoder_pool.c).
 * A GRIB2 bound is at most GIK_GRIB_MAX_POINTS; a GRIB1 bound from the bitmap or the BDS is
 * at most 8 values per octet of the message.
 */
typedef struct GikGribShape
{
	int			edition;		/* 1 or 2; 0 when the frame is not GRIB */
	uint64_t	points;			/* see above; 0 on failure */
} GikGribShape;

/*
 * Check msg[0..len), one framed GRIB message (gik_grib_check), from its bytes: sections lie
 * within the message, point counts are bounded and agree (grid, bitmap, coded values), and
 * the data section holds what its packing needs. ecCodes 2.28 trusts these and reads past
 * the message, overruns its buffers or allocates gigabytes when they are wrong. Every read
 * is bounded by the message and its section (core/octets.h).
 * Returns GIK_SANE_OK and fills *shape (when not NULL), else another status with a full
 * sentence in errbuf.
 */
extern GikSanity gik_grib_sane(const unsigned char *msg, size_t len, GikGribShape *shape,
							   char *errbuf, size_t errlen);

/*
 * The same checks but the walk of complex packing's groups through the data section: enough
 * to trust shape (the backend's budgets), a fraction of the time. The decoder program runs the
 * full gik_grib_sane before ecCodes reads a message.
 */
extern GikSanity gik_grib_shape(const unsigned char *msg, size_t len, GikGribShape *shape,
								char *errbuf, size_t errlen);

#endif
