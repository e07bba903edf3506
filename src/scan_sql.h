/* GRIB range integrity check shared by every function that decodes fetched bytes. */
#ifndef GIK_SCAN_SQL_H
#define GIK_SCAN_SQL_H

#include "postgres.h"

/* Raise a stale-index error unless buf[0..len) is exactly one GRIB message. */
extern void gik_check_grib_range(const char *url, int64 offset, const unsigned char *buf, size_t len);

#endif
