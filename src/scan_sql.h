/* Fetching one referenced GRIB message and checking its framing, for every function that reads fetched bytes. */
#ifndef GIK_SCAN_SQL_H
#define GIK_SCAN_SQL_H

#include "postgres.h"

#include "fmgr.h"

#include "fetch.h"

/* Raise a stale-index error unless buf[0..len) is exactly one GRIB message. */
extern void gik_check_grib_range(const char *url, int64 offset, const unsigned char *buf, size_t len);

/* Fetch the message that arguments 0-2 (url, byte_offset, byte_length) name and check its framing. */
extern void gik_fetch_message_arg(FunctionCallInfo fcinfo, GikFetch *f);

#endif
