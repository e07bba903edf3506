/* NOAA wgrib2 inventory (.idx) parser: pure C, no PostgreSQL headers. */
#ifndef GIK_CORE_IDX_H
#define GIK_CORE_IDX_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#include "core/common.h"

/* One inventory line. String fields point into the parsed buffer (not NUL-terminated). */
typedef struct GikIdxLine
{
	int32_t		lineno;			/* 1-based line number in the input */
	int32_t		msg_num;		/* N of N or N.M */
	int32_t		sub_num;		/* M of N.M, 0 when absent */
	int64_t		offset;
	int64_t		length;			/* next distinct offset - offset; -1 when unknown */
	int32_t		ref_ymdh;		/* d=YYYYMMDDHH as an integer */
	GikSpan		var;
	GikSpan		level;
	GikSpan		ftime;
	GikSpan		extra;			/* 7th field and anything after it, may be empty */
	GikTimeWindow window;		/* normalised ftime (valid=false if not understood) */
	GikMember	member;			/* normalised ENS= / ens mean / ens spread */
} GikIdxLine;

/*
 * Parse a whole inventory. Empty input (or only blank lines) gives *nlines = 0.
 * file_size >= 0 gives the last message its length; otherwise it stays -1.
 * Lines are returned in input order; lengths use the next distinct larger offset.
 * A line longer than GIK_INDEX_MAX_LINE bytes, or a VAR, LEVEL, FTIME or EXTRA field longer
 * than GIK_INDEX_MAX_FIELD bytes (common.h), is malformed like any other bad line.
 * Returns true on success; on failure fills *err and returns false.
 */
extern bool gik_idx_parse(const char *buf, size_t len, int64_t file_size,
						  GikAllocFn alloc, GikIdxLine **lines, size_t *nlines,
						  GikParseError *err);

/* Receives each parsed line, in input order, once its length is known. */
typedef void (*GikIdxEmitFn) (const GikIdxLine *line, void *arg);

/*
 * Parse an inventory without holding all its lines: each line is passed to emit
 * as soon as the next larger offset (or the end) gives its length. On failure,
 * lines before the bad one may already have been emitted. Otherwise as gik_idx_parse.
 */
extern bool gik_idx_parse_stream(const char *buf, size_t len, int64_t file_size,
								 GikAllocFn alloc, GikIdxEmitFn emit, void *arg,
								 GikParseError *err);

/* Normalise a wgrib2 ftime string ("anl", "6 hour fcst", "0-6 hour acc fcst", ...). */
extern GikTimeWindow gik_idx_parse_ftime(const char *s, size_t len);

/*
 * Normalise the 7th field ("ENS=+3", "ENS=low-res ctl", "ens mean", "") or the
 * whole EXTRA text (colon-separated; the first field naming a member wins).
 * ENS=-N gives PERTURBED N (the sign is dropped).
 */
extern GikMember gik_idx_parse_member(const char *s, size_t len);

#endif
