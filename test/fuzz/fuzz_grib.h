/*
 * Shared by the harnesses that hand GRIB bytes to ecCodes (fuzz_decode.c, fuzz_meta.c):
 * the input is framed as one message and placed right before an inaccessible page.
 */
#ifndef GIK_FUZZ_GRIB_H
#define GIK_FUZZ_GRIB_H

#include <eccodes.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/grib_frame.h"
#include "fuzz_util.h"

/* A framed message: msg[0..size) ends where a PROT_NONE page begins. */
typedef struct FzGrib
{
	unsigned char *msg;
	size_t		size;
	unsigned char *map;
	size_t		maplen;
	uint8_t		octet5;			/* GRIB2's reserved octets 5-6 as the input had them (0 for GRIB1) */
	uint8_t		octet6;
} FzGrib;

/* ecCodes' own messages: dropped (the backend sends them to DEBUG1). */
static void
fz_eccodes_quiet(const codes_context *c, int level, const char *msg)
{
}

/*
 * Frame data as one GRIB message: section 0's length and the trailing "7777" are set to fit
 * the input, so mutations reach the sections inside; GRIB2's reserved octets 5-6 are cleared.
 * ecCodes is not built with ASan: the guard page makes any read past the message fault.
 * Returns false when the input does not start with "GRIB" and edition 1 or 2.
 */
static inline bool
fz_grib_frame(const uint8_t *data, size_t size, FzGrib *g)
{
	size_t		page = (size_t) sysconf(_SC_PAGESIZE);
	size_t		body = (size + page - 1) / page * page;

	if (size < 24 || memcmp(data, "GRIB", 4) != 0 || (data[7] != 1 && data[7] != 2) ||
		(data[7] == 1 && size >= ((size_t) 1 << 23)))
		return false;
	codes_context_set_logging_proc(codes_context_get_default(), fz_eccodes_quiet);
	g->map = mmap(NULL, body + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	FZ_CHECK(g->map != MAP_FAILED && mprotect(g->map + body, page, PROT_NONE) == 0);
	g->maplen = body + page;
	g->size = size;
	g->msg = g->map + body - size;
	memcpy(g->msg, data, size);
	g->octet5 = g->octet6 = 0;
	if (data[7] == 2)
	{
		g->octet5 = g->msg[4];
		g->octet6 = g->msg[5];
		g->msg[4] = g->msg[5] = 0;
		for (int i = 0; i < 8; i++)
			g->msg[8 + i] = (unsigned char) ((uint64_t) size >> (8 * (7 - i)));
	}
	else
	{
		g->msg[4] = (unsigned char) (size >> 16);
		g->msg[5] = (unsigned char) (size >> 8);
		g->msg[6] = (unsigned char) size;
	}
	memcpy(g->msg + size - 4, "7777", 4);
	FZ_CHECK(gik_grib_check(g->msg, size, NULL, NULL) == GIK_FRAME_OK);
	return true;
}

/* Unmap a framed message. */
static inline void
fz_grib_free(FzGrib *g)
{
	munmap(g->map, g->maplen);
}

#endif
