/* GRIB message framing and integrity checks: pure C, no PostgreSQL headers. */
#ifndef GIK_CORE_GRIB_FRAME_H
#define GIK_CORE_GRIB_FRAME_H

#include <stddef.h>
#include <stdint.h>

typedef enum GikFrameStatus
{
	GIK_FRAME_OK = 0,
	GIK_FRAME_TOO_SHORT,		/* fewer bytes than a GRIB header/trailer */
	GIK_FRAME_NO_GRIB,			/* does not start with "GRIB" */
	GIK_FRAME_BAD_EDITION,		/* edition neither 1 nor 2 */
	GIK_FRAME_LENGTH_MISMATCH,	/* GRIB total length differs from the buffer length */
	GIK_FRAME_NO_7777			/* does not end with "7777" */
} GikFrameStatus;

/*
 * Check that buf[0..len) is exactly one GRIB message: "GRIB" at the start,
 * "7777" at the end, and the total length in section 0 equal to len.
 * *total_len (if not NULL) receives the length read from section 0, or 0.
 */
extern GikFrameStatus gik_grib_check(const unsigned char *buf, size_t len,
									 uint64_t *total_len, int *edition);

/* Full sentence describing a frame status, for error details. */
extern const char *gik_frame_status_text(GikFrameStatus status);

/*
 * Find the next message at or after pos by scanning for "GRIB".
 * Returns 1 and sets *msg_off and *msg_len when a complete message is found,
 * 0 at the end of the buffer.
 */
extern int	gik_grib_next(const unsigned char *buf, size_t len, size_t pos,
						  uint64_t *msg_off, uint64_t *msg_len);

#endif
