/*
 * GRIB message framing for editions 1 and 2.
 *
 * GRIB2: section 0 is "GRIB", 2 reserved bytes, discipline, edition (2) and
 * an 8-byte big-endian total length. GRIB1: "GRIB", a 3-byte total length
 * and the edition (1). A GRIB1 message over 2^23 bytes may use ECMWF's
 * large-message convention, decoded here the way ecCodes' read_GRIB does:
 * when the top bit of the 3-byte length is set and section 4's own 3-byte
 * length is below 120, the total is (length & 0x7fffff) * 120 - sec4len + 4.
 * Every message ends with "7777".
 */
#include "core/grib_frame.h"

#include <stdbool.h>

#include "core/octets.h"

#define GRIB1_HEADER 8			/* section 0 of GRIB1 */
#define GRIB2_HEADER 16			/* section 0 of GRIB2 */
#define TRAILER 4				/* "7777" */
#define GRIB1_LARGE_FLAG 0x800000u

/*
 * Total length of a GRIB1 message using ECMWF's large-message convention:
 * walk sections 1 (flags at octet 8), 2 and 3 (when flagged) to section 4's length.
 */
static GikFrameStatus
grib1_large_length(const GikOctets *b, uint64_t coded, uint64_t *total)
{
	uint64_t	pos = GRIB1_HEADER;
	uint64_t	sec4len;
	unsigned	flags;

	if (!gik_octets_fits(b, pos, 8))
		return GIK_FRAME_TOO_SHORT;
	flags = gik_octets_u8(b, pos + 7);
	pos += gik_octets_be(b, pos, 3);	/* section 1 */
	if ((flags & 0x80) && gik_octets_fits(b, pos, 3))
		pos += gik_octets_be(b, pos, 3);	/* section 2, grid description */
	if ((flags & 0x40) && gik_octets_fits(b, pos, 3))
		pos += gik_octets_be(b, pos, 3);	/* section 3, bitmap */
	if (!gik_octets_fits(b, pos, 3))
		return GIK_FRAME_TOO_SHORT;
	sec4len = gik_octets_be(b, pos, 3);
	if (sec4len >= 120)
	{
		*total = coded;
		return GIK_FRAME_OK;
	}
	*total = (coded & (GRIB1_LARGE_FLAG - 1)) * 120;
	if (*total < sec4len + GRIB1_HEADER)
		return GIK_FRAME_LENGTH_MISMATCH;
	*total = *total - sec4len + 4;
	if (pos + 3 + TRAILER > *total)
		return GIK_FRAME_LENGTH_MISMATCH;	/* section 4 would start past the message's own end */
	return GIK_FRAME_OK;
}

/*
 * Decode section 0 at the start of b: "GRIB", edition, total length.
 * Sets *edition when "GRIB" is present and *total when the status is OK.
 */
static GikFrameStatus
read_section0(const GikOctets *b, uint64_t *total, int *edition)
{
	uint64_t	coded;

	if (!gik_octets_fits(b, 0, 4))
		return GIK_FRAME_TOO_SHORT;
	if (!gik_octets_equal(b, 0, "GRIB", 4))
		return GIK_FRAME_NO_GRIB;
	if (!gik_octets_fits(b, 0, GRIB1_HEADER))
		return GIK_FRAME_TOO_SHORT;
	*edition = (int) gik_octets_u8(b, 7);
	if (*edition == 1)
	{
		coded = gik_octets_be(b, 4, 3);
		if (coded & GRIB1_LARGE_FLAG)
			return grib1_large_length(b, coded, total);
		*total = coded;
	}
	else if (*edition == 2)
	{
		if (!gik_octets_fits(b, 0, GRIB2_HEADER))
			return GIK_FRAME_TOO_SHORT;
		*total = gik_octets_be(b, 8, 8);
	}
	else
		return GIK_FRAME_BAD_EDITION;
	if (*total < (uint64_t) ((*edition == 1 ? GRIB1_HEADER : GRIB2_HEADER) + TRAILER))
		return GIK_FRAME_LENGTH_MISMATCH;
	return GIK_FRAME_OK;
}

/* True when "7777" ends the first end octets of b. */
static bool
has_trailer(const GikOctets *b, uint64_t end)
{
	return end >= TRAILER && gik_octets_fits(b, end - TRAILER, TRAILER) &&
		gik_octets_equal(b, end - TRAILER, "7777", TRAILER);
}

/* Check that buf[0..len) is exactly one GRIB message; see grib_frame.h. */
GikFrameStatus
gik_grib_check(const unsigned char *buf, size_t len, uint64_t *total_len, int *edition)
{
	bool		overrun = false;
	GikOctets	b = gik_octets(buf, len, &overrun);
	uint64_t	total = 0;
	int			ed = 0;
	GikFrameStatus status = read_section0(&b, &total, &ed);

	if (status != GIK_FRAME_OK)
		total = 0;
	if (total_len)
		*total_len = total;
	if (edition)
		*edition = ed;
	if (status != GIK_FRAME_OK)
		return status;
	if (total != len)
		return GIK_FRAME_LENGTH_MISMATCH;
	if (!has_trailer(&b, total))
		return GIK_FRAME_NO_7777;
	return GIK_FRAME_OK;
}

/* Full sentence describing a frame status. */
const char *
gik_frame_status_text(GikFrameStatus status)
{
	switch (status)
	{
		case GIK_FRAME_OK:
			return "The byte range is one complete GRIB message.";
		case GIK_FRAME_TOO_SHORT:
			return "The byte range is shorter than a GRIB header and trailer.";
		case GIK_FRAME_NO_GRIB:
			return "The byte range does not start with \"GRIB\".";
		case GIK_FRAME_BAD_EDITION:
			return "The GRIB edition number is neither 1 nor 2.";
		case GIK_FRAME_LENGTH_MISMATCH:
			return "The GRIB total length in section 0 differs from the length of the byte range.";
		case GIK_FRAME_NO_7777:
			return "The byte range does not end with \"7777\".";
	}
	return "The GRIB frame status is unknown.";
}

/* Find the next complete message at or after pos; see grib_frame.h. */
int
gik_grib_next(const unsigned char *buf, size_t len, size_t pos,
			  uint64_t *msg_off, uint64_t *msg_len)
{
	bool		overrun = false;
	GikOctets	b = gik_octets(buf, len, &overrun);

	for (uint64_t at = gik_octets_find(&b, pos, "GRIB", 4); at < len; at = gik_octets_find(&b, at + 1, "GRIB", 4))
	{
		GikOctets	rest = gik_octets_cut(&b, at, len - at);
		uint64_t	total = 0;
		int			edition = 0;

		if (read_section0(&rest, &total, &edition) == GIK_FRAME_OK && has_trailer(&rest, total))
		{
			*msg_off = at;
			*msg_len = total;
			return 1;
		}
	}
	return 0;
}
