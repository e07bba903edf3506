/* ECMWF open-data .index (JSON lines) parser: pure C with jansson, no PostgreSQL headers. */
#ifndef GIK_CORE_ECMWF_INDEX_H
#define GIK_CORE_ECMWF_INDEX_H

#include "core/common.h"

/* One index line. Strings are NUL-terminated copies made with the caller's allocator; NULL when absent. */
typedef struct GikEcIndexLine
{
	int32_t		lineno;			/* 1-based line number in the input */
	int64_t		offset;			/* _offset */
	int64_t		length;			/* _length */
	const char *param;
	const char *levtype;
	const char *levelist;		/* optional */
	const char *date;			/* YYYYMMDD */
	const char *time;			/* HHMM */
	const char *step;			/* "6" or "0-6" as written */
	const char *type;			/* cf, pf, fc, em, es, ... */
	const char *stream;
	const char *klass;			/* "class" */
	const char *expver;
	const char *domain;
	int32_t		number;			/* -1 when absent */
	GikTimeWindow window;		/* step normalised: "N" -> [N,N] h, "a-b" -> [a,b] h; stat NONE */
	GikMember	member;			/* control (cf, or fc without number), perturbed N, mean (em), spread (es) */
} GikEcIndexLine;

/* Called between lines of a long parse (may be NULL); it may leave the parser with longjmp. */
typedef void (*GikEcIndexCheckFn) (void);

/*
 * Parse a whole .index buffer. Keys may come in any order; lines are returned
 * sorted by _offset (stable for equal offsets). Empty input gives *nlines = 0.
 * A line longer than GIK_INDEX_MAX_LINE bytes, or a string value of a known key (number
 * included) longer than GIK_INDEX_MAX_FIELD bytes (common.h), is a malformed line.
 * check runs every 1024 lines, when no JSON value is alive: everything else comes from alloc,
 * so leaving there loses nothing (the backend checks for cancellation there).
 * Returns true on success; on failure fills *err and returns false.
 */
extern bool gik_ecindex_parse(const char *buf, size_t len, GikAllocFn alloc, GikEcIndexCheckFn check,
							  GikEcIndexLine **lines, size_t *nlines,
							  GikParseError *err);

#endif
