/* Types shared by the pure-C core (no PostgreSQL headers). */
#ifndef GIK_CORE_COMMON_H
#define GIK_CORE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

/* Allocator supplied by the caller: palloc in the backend, malloc in unit tests. */
typedef void *(*GikAllocFn) (size_t size);

/* A slice of the input buffer. */
typedef struct GikSpan
{
	const char *ptr;
	int32_t		len;
} GikSpan;

/* Statistical process of a field over its time window. */
typedef enum GikStat
{
	GIK_STAT_NONE = 0,			/* instantaneous */
	GIK_STAT_ACC,
	GIK_STAT_AVE,
	GIK_STAT_MAX,
	GIK_STAT_MIN
} GikStat;

/* Forecast time normalised to minutes since the reference time. */
typedef struct GikTimeWindow
{
	bool		valid;			/* false when the text was not understood */
	int32_t		start_min;		/* window start; equals end_min for instants */
	int32_t		end_min;
	GikStat		stat;
} GikTimeWindow;

/* Kind of ensemble member a message belongs to. */
typedef enum GikMemberKind
{
	GIK_MEMBER_NONE = 0,		/* deterministic, no ensemble information */
	GIK_MEMBER_CONTROL,			/* number 0 */
	GIK_MEMBER_PERTURBED,		/* number N >= 1 */
	GIK_MEMBER_MEAN,
	GIK_MEMBER_SPREAD,
	GIK_MEMBER_OTHER			/* recognised as ensemble info, kind unknown */
} GikMemberKind;

typedef struct GikMember
{
	GikMemberKind kind;
	int32_t		number;			/* 0 for control, N for perturbed, -1 otherwise */
} GikMember;

/* Parse failure: where and why. */
typedef struct GikParseError
{
	int32_t		lineno;			/* 1-based */
	char		excerpt[81];	/* start of the offending line, NUL-terminated */
	char		message[160];	/* what was expected, a full sentence */
} GikParseError;

/*
 * Longest descriptor field of an index line, in bytes: the idx VAR, LEVEL, FTIME and EXTRA
 * fields, every string value of an ECMWF .index line. Real ones are far shorter (HRRR's
 * "var discipline=0 center=7 local_table=1 parmcat=16 parm=201" is 55 bytes, GEFS's
 * "entire atmosphere (considered as a single layer)" 48); a longer one is a malformed line,
 * refused with its line number before it reaches a catalog index.
 */
#define GIK_INDEX_MAX_FIELD 255

/* Longest line of an index, in bytes, without its line end ("\n" or "\r\n"). */
#define GIK_INDEX_MAX_LINE 65536

/* Fill err with a line number, an excerpt of the line and a message. */
extern void gik_parse_error_set(GikParseError *err, int32_t lineno,
								const char *line, size_t line_len,
								const char *message);

/* Name of a statistical process ("acc", "ave", "max", "min") or NULL for none. */
extern const char *gik_stat_name(GikStat stat);

/* Name of a member kind ("control", "perturbed", "mean", "spread", ...). */
extern const char *gik_member_kind_name(GikMemberKind kind);

/* Cursor over the lines of a buffer; lineno counts every line, blank ones too. */
typedef struct GikLineCursor
{
	const char *pos;			/* start of the next line */
	const char *end;			/* end of the buffer */
	int32_t		lineno;			/* 1-based number of the line last returned */
} GikLineCursor;

/* Start a line cursor at the beginning of buf[0..len). */
static inline void
gik_line_cursor_init(GikLineCursor *cur, const char *buf, size_t len)
{
	cur->pos = buf;
	cur->end = len > 0 ? buf + len : buf;
	cur->lineno = 0;
}

/* Next line without its "\n" or "\r\n"; false at the end of the buffer. */
static inline bool
gik_line_next(GikLineCursor *cur, const char **line, size_t *line_len)
{
	const char *start = cur->pos;
	const char *nl;
	size_t		n;

	if (start >= cur->end)
		return false;
	nl = memchr(start, '\n', (size_t) (cur->end - start));
	n = nl != NULL ? (size_t) (nl - start) : (size_t) (cur->end - start);
	cur->pos = nl != NULL ? nl + 1 : cur->end;
	if (n > 0 && start[n - 1] == '\r')
		n--;
	cur->lineno++;
	*line = start;
	*line_len = n;
	return true;
}

/* True when a line holds only spaces, tabs and carriage returns (or nothing). */
static inline bool
gik_line_is_blank(const char *line, size_t len)
{
	size_t		i;

	for (i = 0; i < len; i++)
		if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
			return false;
	return true;
}

/* True for an ASCII decimal digit. */
static inline bool
gik_is_digit(char c)
{
	return (unsigned char) (c - '0') <= 9;
}

/*
 * Number of leading ASCII digits (0..8) in 8 bytes loaded little-endian.
 * A digit byte maps to 0x33; a carry from "+ 6" only starts at a byte >= 0xFA,
 * which is itself a non-digit, so the leading run is always exact.
 */
static inline int
gik_leading_digits(uint64_t word)
{
	uint64_t	x = ((word & 0xF0F0F0F0F0F0F0F0u) |
					 (((word + 0x0606060606060606u) & 0xF0F0F0F0F0F0F0F0u) >> 4)) ^
		0x3333333333333333u;

	return x == 0 ? 8 : __builtin_ctzll(x) >> 3;
}

/* Value of 8 digit bytes loaded little-endian (first digit lowest; 0x00 bytes count as 0). */
static inline uint64_t
gik_eight_digits_value(uint64_t word)
{
	word = ((word & 0x0F0F0F0F0F0F0F0Fu) * 2561) >> 8;
	word = ((word & 0x00FF00FF00FF00FFu) * 6553601) >> 16;
	return ((word & 0x0000FFFF0000FFFFu) * 42949672960001u) >> 32;
}

/*
 * Parse one or more decimal digits at *p, no larger than max; advance *p on success.
 * More than 19 digits fail (the uint64_t accumulator could overflow). On
 * little-endian machines up to eight digits are converted per step.
 */
static inline bool
gik_parse_decimal(const char **p, const char *end, uint64_t max, uint64_t *out)
{
	static const uint64_t pow10[9] = {
		1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000
	};
	const char *s = *p;
	uint64_t	v = 0;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	while (end - s >= 8)
	{
		uint64_t	word;
		int			k;

		memcpy(&word, s, 8);
		k = gik_leading_digits(word);
		if (k > 0)
			v = v * pow10[k] + gik_eight_digits_value(word << (8 * (8 - k)));
		s += k;
		if (k < 8)
			break;
	}
#endif
	while (s < end && gik_is_digit(*s))
		v = v * 10 + (uint64_t) (*s++ - '0');
	if (s == *p || s - *p > 19 || v > max)
		return false;
	*p = s;
	*out = v;
	return true;
}

/* Number of lines in buf[0..len): one per "\n", plus a last line without one. */
extern size_t gik_count_lines(const char *buf, size_t len);

/* s[0..len) as a NUL-terminated string made with the caller's allocator. */
static inline char *
gik_strndup(GikAllocFn alloc, const char *s, size_t len)
{
	char	   *out = alloc(len + 1);

	memcpy(out, s, len);
	out[len] = '\0';
	return out;
}

#endif
