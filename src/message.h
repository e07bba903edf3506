/* One referenced GRIB message: fetched and its framing checked, for every function that reads fetched bytes. */
#ifndef GIK_MESSAGE_H
#define GIK_MESSAGE_H

#include "postgres.h"

#include "fmgr.h"

#include "fetch.h"

/* Raise a stale-index error unless buf[0..len) is exactly one GRIB message. */
extern void gik_check_grib_range(const char *url, int64 offset, const unsigned char *buf, size_t len);

/* Fetch the message that arguments 0-2 (url, byte_offset, byte_length) name and check its framing. */
extern void gik_fetch_message_arg(FunctionCallInfo fcinfo, GikFetch *f);

#endif
