/*
 * GRIB framing: gik_grib_check on the whole input, then a gik_grib_next scan as
 * gik.scan_grib does it. Invariants: an accepted buffer starts with "GRIB", ends with
 * "7777" and has the length it states; every message the scan finds lies inside the
 * buffer, after the previous one, and is itself accepted by gik_grib_check.
 */
#include "core/grib_frame.h"
#include "fuzz_util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t	total = 0;
	int			edition = 0;
	uint64_t	off;
	uint64_t	len;
	size_t		pos = 0;
	GikFrameStatus st = gik_grib_check(data, size, &total, &edition);

	FZ_CHECK(gik_frame_status_text(st)[0] != '\0');
	if (st == GIK_FRAME_OK)
		FZ_CHECK(total == size && size >= 8 && memcmp(data, "GRIB", 4) == 0 &&
				 memcmp(data + size - 4, "7777", 4) == 0 && (edition == 1 || edition == 2));
	else if (st == GIK_FRAME_TOO_SHORT || st == GIK_FRAME_NO_GRIB || st == GIK_FRAME_BAD_EDITION)
		FZ_CHECK(total == 0);

	while (gik_grib_next(data, size, pos, &off, &len))
	{
		FZ_CHECK(off >= pos && len <= size && off <= size - len);
		FZ_CHECK(gik_grib_check(data + off, len, &total, &edition) == GIK_FRAME_OK && total == len);
		pos = (size_t) (off + len);
	}
	return 0;
}
