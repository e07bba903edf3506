/*
 * NOAA wgrib2 inventory (.idx) parser.
 *
 * One pass over the buffer with memchr, no allocation besides the output
 * array (sized by counting lines first), hand-written digit loops.
 * Lengths come from a backward pass: offsets are non-decreasing, so each
 * line's length is the next distinct larger offset minus its own.
 */
#include "core/idx.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define IDX_FIELDS "N:OFFSET:d=YYYYMMDDHH:VAR:LEVEL:FTIME"

static const char MSG_NUMBER[] =
"Expected the message number N (or N.M) as a decimal integer below 2^31 in the first field of " IDX_FIELDS ".";
static const char MSG_OFFSET[] =
"Expected the byte OFFSET as a decimal integer below 2^63 in the second field of " IDX_FIELDS ".";
static const char MSG_NEGATIVE[] =
"Expected a byte OFFSET that is not negative in the second field.";
static const char MSG_DATE[] =
"Expected the third field to be d= followed by exactly 10 digits (YYYYMMDDHH).";
static const char MSG_DATE_RANGE[] =
"Expected a reference time d=YYYYMMDDHH before the year 2148.";
static const char MSG_FIELDS[] =
"Expected at least 6 colon-separated fields: " IDX_FIELDS ".";
static const char MSG_TOO_MANY_LINES[] =
"Expected fewer than 2^31 lines in one inventory.";

/* Derived-forecast texts wgrib2 prints (besides "ens mean" and "ens spread"). */
static const char *const derived_fcst_texts[] = {
	"wt ens mean", "ens std dev", "cluster std dev", "normalized ens std dev",
	"normalized cluster std dev", "ens large anom index", "unwt ens mean",
	"unwt cluster mean", "25%-75% range", "min all members", "max all members",
	"unwt mode all members", "10% all members", "50% all members",
	"90% all members", "stat. weight for each members",
	"percentile from climate distribution",
	"deviation of ens mean from daily climo", "extreme forecast index",
	"equally weighted mean", "5% all members", "25% all members",
	"75% all members", "95% all members", "unknown derived fcst"
};

/* Time units wgrib2 writes in ftime. */
typedef enum TimeUnit
{
	UNIT_SEC,
	UNIT_MIN,
	UNIT_HOUR,
	UNIT_DAY
} TimeUnit;

/* True when s[0..n) equals the NUL-terminated word. */
static inline bool
span_equals(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* True when s[0..n) starts with the NUL-terminated prefix. */
static inline bool
span_has_prefix(const char *s, size_t n, const char *prefix)
{
	size_t		plen = strlen(prefix);

	return n >= plen && memcmp(s, prefix, plen) == 0;
}

/* Advance *p past the expected character c; false if it is not there. */
static inline bool
expect_char(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return false;
	(*p)++;
	return true;
}

/* Advance *p to the next space (or end) and return the length of the word passed. */
static inline size_t
take_word(const char **p, const char *end)
{
	const char *start = *p;

	while (*p < end && **p != ' ')
		(*p)++;
	return (size_t) (*p - start);
}

/* Recognise a wgrib2 time-unit word ("sec", "min", "hour", "day"). */
static inline bool
unit_from_word(const char *w, size_t n, TimeUnit *unit)
{
	if (n == 4 && memcmp(w, "hour", 4) == 0)
		*unit = UNIT_HOUR;
	else if (n == 3 && memcmp(w, "min", 3) == 0)
		*unit = UNIT_MIN;
	else if (n == 3 && memcmp(w, "day", 3) == 0)
		*unit = UNIT_DAY;
	else if (n == 3 && memcmp(w, "sec", 3) == 0)
		*unit = UNIT_SEC;
	else
		return false;
	return true;
}

/* Recognise a statistical-process word ("acc", "ave", "max", "min"). */
static inline bool
stat_from_word(const char *w, size_t n, GikStat *stat)
{
	if (n != 3)
		return false;
	if (memcmp(w, "acc", 3) == 0)
		*stat = GIK_STAT_ACC;
	else if (memcmp(w, "ave", 3) == 0)
		*stat = GIK_STAT_AVE;
	else if (memcmp(w, "max", 3) == 0)
		*stat = GIK_STAT_MAX;
	else if (memcmp(w, "min", 3) == 0)
		*stat = GIK_STAT_MIN;
	else
		return false;
	return true;
}

/* Convert a count of units to minutes; false on overflow or a fraction of a minute. */
static inline bool
to_minutes(uint64_t value, TimeUnit unit, int32_t *minutes)
{
	static const uint64_t per_unit[] = {0, 1, 60, 1440};

	if (unit == UNIT_SEC)
	{
		if (value % 60 != 0)
			return false;
		value /= 60;
	}
	else
		value *= per_unit[unit];	/* value < 2^31, so no uint64 overflow */
	if (value > INT32_MAX)
		return false;
	*minutes = (int32_t) value;
	return true;
}

/*
 * Normalise a wgrib2 ftime: "anl", "N unit fcst", "A-B unit stat fcst" with
 * unit sec|min|hour|day and stat acc|ave|max|min. "A-B unit fcst" (NCEP
 * TMAX/TMIN with a missing statistic) gives the window with stat NONE.
 * Anything else ("@" repeats, "anl" averages, months) gives valid = false.
 */
GikTimeWindow
gik_idx_parse_ftime(const char *s, size_t len)
{
	GikTimeWindow window = {false, 0, 0, GIK_STAT_NONE};
	const char *p = s;
	const char *end = s + len;
	const char *word;
	size_t		word_len;
	uint64_t	start;
	uint64_t	stop;
	bool		is_range = false;
	TimeUnit	unit;
	GikStat		stat = GIK_STAT_NONE;

	if (len == 3 && memcmp(s, "anl", 3) == 0)
	{
		window.valid = true;
		return window;
	}
	if (!gik_parse_decimal(&p, end, INT32_MAX, &start))
		return window;
	stop = start;
	if (p < end && *p == '-')
	{
		p++;
		if (!gik_parse_decimal(&p, end, INT32_MAX, &stop))
			return window;
		is_range = true;
	}
	if (!is_range && end - p == 10 && memcmp(p, " hour fcst", 10) == 0)
		unit = UNIT_HOUR;		/* fast path: "N hour fcst" */
	else if (is_range && end - p == 14 && memcmp(p, " hour ", 6) == 0 &&
			 stat_from_word(p + 6, 3, &stat) && memcmp(p + 9, " fcst", 5) == 0)
		unit = UNIT_HOUR;		/* fast path: "A-B hour stat fcst" */
	else
	{
		stat = GIK_STAT_NONE;
		if (!expect_char(&p, end, ' '))
			return window;
		word = p;
		word_len = take_word(&p, end);
		if (!unit_from_word(word, word_len, &unit) || !expect_char(&p, end, ' '))
			return window;
		word = p;
		word_len = take_word(&p, end);
		if (is_range && stat_from_word(word, word_len, &stat))
		{
			if (!expect_char(&p, end, ' '))
				return window;
			word = p;
			word_len = take_word(&p, end);
		}
		if (word_len != 4 || memcmp(word, "fcst", 4) != 0 || p != end)
			return window;
	}
	if (!to_minutes(start, unit, &window.start_min) ||
		!to_minutes(stop, unit, &window.end_min) ||
		window.end_min < window.start_min)
	{
		window.start_min = window.end_min = 0;
		return window;
	}
	window.stat = stat;
	window.valid = true;
	return window;
}

/* Normalise the text after "ENS=": +N / -N perturbed, low-res / hi-res control. */
static GikMember
member_from_ens(const char *s, size_t n)
{
	GikMember	member = {GIK_MEMBER_OTHER, -1};
	const char *p = s + 1;
	uint64_t	number;

	if (n >= 2 && (s[0] == '+' || s[0] == '-') &&
		gik_parse_decimal(&p, s + n, INT32_MAX, &number) && p == s + n && number >= 1)
	{
		member.kind = GIK_MEMBER_PERTURBED;
		member.number = (int32_t) number;
	}
	else if (span_equals(s, n, "low-res ctl") || span_equals(s, n, "hi-res ctl"))
	{
		member.kind = GIK_MEMBER_CONTROL;
		member.number = 0;
	}
	return member;
}

/* Normalise one colon-free field of the EXTRA text. */
static GikMember
member_from_field(const char *s, size_t n)
{
	GikMember	member = {GIK_MEMBER_NONE, -1};
	size_t		i;

	if (n == 0)
		return member;
	if (span_has_prefix(s, n, "ENS="))
		return member_from_ens(s + 4, n - 4);
	if (span_equals(s, n, "ens mean"))
		member.kind = GIK_MEMBER_MEAN;
	else if (span_equals(s, n, "ens spread"))
		member.kind = GIK_MEMBER_SPREAD;
	else if (span_has_prefix(s, n, "MM-ENS="))
		member.kind = GIK_MEMBER_OTHER;
	else
	{
		for (i = 0; i < sizeof(derived_fcst_texts) / sizeof(derived_fcst_texts[0]); i++)
			if (span_equals(s, n, derived_fcst_texts[i]))
				member.kind = GIK_MEMBER_OTHER;
	}
	return member;
}

/*
 * Normalise ensemble information: the 7th field, or the whole EXTRA text
 * (colon-separated fields; the first one that names a member wins).
 * ENS=-N (NCEP's negatively perturbed member) gives PERTURBED N: the sign is dropped.
 */
GikMember
gik_idx_parse_member(const char *s, size_t len)
{
	GikMember	member = {GIK_MEMBER_NONE, -1};
	const char *end = s + len;

	while (len > 0 && s < end)
	{
		const char *colon = memchr(s, ':', (size_t) (end - s));
		const char *field_end = colon ? colon : end;

		member = member_from_field(s, (size_t) (field_end - s));
		if (member.kind != GIK_MEMBER_NONE || colon == NULL)
			break;
		s = colon + 1;
	}
	return member;
}

/* Make a span of [start, stop). */
static inline GikSpan
make_span(const char *start, const char *stop)
{
	GikSpan		span;

	span.ptr = start;
	span.len = (int32_t) (stop - start);
	return span;
}

/* Parse "d=YYYYMMDDHH" at *p into *ymdh; returns an error message or NULL. */
static inline const char *
parse_ref_time(const char **p, const char *end, int32_t *ymdh)
{
	const char *s = *p;
	const char *digits = s + 2;
	uint64_t	value;

	if (end - s < 12 || s[0] != 'd' || s[1] != '=')
		return MSG_DATE;
	if (!gik_parse_decimal(&digits, s + 12, UINT64_MAX, &value) || digits != s + 12 ||
		(digits < end && *digits != ':'))
		return MSG_DATE;
	if (value > INT32_MAX)
		return MSG_DATE_RANGE;
	*ymdh = (int32_t) value;
	*p = digits;
	return NULL;
}

/* NULL when span is at most GIK_INDEX_MAX_FIELD bytes long; else a sentence naming the field, in msg. */
static const char *
check_field_length(GikSpan span, const char *name, char *msg, size_t msg_size)
{
	if (span.len <= GIK_INDEX_MAX_FIELD)
		return NULL;
	snprintf(msg, msg_size, "Expected the %s field to be at most %d bytes long, but it is %d bytes long.",
			 name, GIK_INDEX_MAX_FIELD, (int) span.len);
	return msg;
}

/*
 * Parse one non-blank line of at most GIK_INDEX_MAX_LINE bytes into row (all but lineno and
 * length); returns an error message (static, or written to buf) or NULL.
 */
static inline const char *
parse_idx_line(const char *p, size_t len, GikIdxLine *row, char *buf, size_t buf_size)
{
	const char *end = p + len;
	const char *colon;
	const char *msg;
	uint64_t	value;

	if (!gik_parse_decimal(&p, end, INT32_MAX, &value))
		return MSG_NUMBER;
	row->msg_num = (int32_t) value;
	row->sub_num = 0;
	if (p < end && *p == '.')
	{
		p++;
		if (!gik_parse_decimal(&p, end, INT32_MAX, &value))
			return MSG_NUMBER;
		row->sub_num = (int32_t) value;
	}
	if (p >= end)
		return MSG_FIELDS;
	if (!expect_char(&p, end, ':'))
		return MSG_NUMBER;

	if (p < end && *p == '-')
		return MSG_NEGATIVE;
	if (!gik_parse_decimal(&p, end, INT64_MAX, &value))
		return MSG_OFFSET;
	row->offset = (int64_t) value;
	if (p >= end)
		return MSG_FIELDS;
	if (!expect_char(&p, end, ':'))
		return MSG_OFFSET;

	if ((msg = parse_ref_time(&p, end, &row->ref_ymdh)) != NULL)
		return msg;
	if (!expect_char(&p, end, ':'))
		return MSG_FIELDS;

	if ((colon = memchr(p, ':', (size_t) (end - p))) == NULL)
		return MSG_FIELDS;
	row->var = make_span(p, colon);
	p = colon + 1;
	if ((colon = memchr(p, ':', (size_t) (end - p))) == NULL)
		return MSG_FIELDS;
	row->level = make_span(p, colon);
	p = colon + 1;
	if ((colon = memchr(p, ':', (size_t) (end - p))) != NULL)
	{
		row->ftime = make_span(p, colon);
		row->extra = make_span(colon + 1, end);
	}
	else
	{
		row->ftime = make_span(p, end);
		row->extra = make_span(end, end);
	}
	if ((msg = check_field_length(row->var, "VAR", buf, buf_size)) != NULL ||
		(msg = check_field_length(row->level, "LEVEL", buf, buf_size)) != NULL ||
		(msg = check_field_length(row->ftime, "FTIME", buf, buf_size)) != NULL ||
		(msg = check_field_length(row->extra, "EXTRA", buf, buf_size)) != NULL)
		return msg;
	row->window = gik_idx_parse_ftime(row->ftime.ptr, (size_t) row->ftime.len);
	row->member = gik_idx_parse_member(row->extra.ptr, (size_t) row->extra.len);
	return NULL;
}

/* Check that row's offset may follow prev's; fills msg and returns false if not. */
static bool
check_offset_order(const GikIdxLine *prev, const GikIdxLine *row,
				   char *msg, size_t msg_size)
{
	if (row->offset > prev->offset)
		return true;
	if (row->offset < prev->offset)
	{
		snprintf(msg, msg_size,
				 "Expected non-decreasing offsets, but offset %" PRId64
				 " is smaller than %" PRId64 " on line %d.",
				 row->offset, prev->offset, (int) prev->lineno);
		return false;
	}
	if (row->msg_num == prev->msg_num)
		return true;
	snprintf(msg, msg_size,
			 "Expected an offset above %" PRId64 " (line %d); only N.M sub-messages"
			 " of the same message N may share an offset.",
			 prev->offset, (int) prev->lineno);
	return false;
}

/* Find the text of line lineno again, for an error excerpt. */
static void
find_line(const char *buf, size_t len, int32_t lineno, const char **line, size_t *line_len)
{
	GikLineCursor cur;

	*line = buf;
	*line_len = 0;
	gik_line_cursor_init(&cur, buf, len);
	while (gik_line_next(&cur, line, line_len))
		if (cur.lineno == lineno)
			return;
}

/* Lines read but not yet emitted: they share one offset and wait for the next larger one. */
typedef struct PendingRows
{
	GikIdxLine *rows;
	size_t		n;
	size_t		cap;
	GikAllocFn	alloc;
} PendingRows;

/* Add a row to the pending set. */
static void
pending_push(PendingRows *p, const GikIdxLine *row)
{
	if (p->n == p->cap)
	{
		size_t		cap = p->cap ? p->cap * 2 : 8;
		GikIdxLine *rows = p->alloc(cap * sizeof(GikIdxLine));

		if (p->n)
			memcpy(rows, p->rows, p->n * sizeof(GikIdxLine));
		p->rows = rows;			/* the old block belongs to the caller's allocator */
		p->cap = cap;
	}
	p->rows[p->n++] = *row;
}

/* Give every pending row its length (next_start - offset, or -1) and emit them. */
static void
pending_flush(PendingRows *p, int64_t next_start, GikIdxEmitFn emit, void *arg)
{
	for (size_t i = 0; i < p->n; i++)
	{
		p->rows[i].length = next_start < 0 ? -1 : next_start - p->rows[i].offset;
		emit(&p->rows[i], arg);
	}
	p->n = 0;
}

/* Parse an inventory line by line, emitting each line once its length is known; see idx.h. */
bool
gik_idx_parse_stream(const char *buf, size_t len, int64_t file_size, GikAllocFn alloc,
					 GikIdxEmitFn emit, void *arg, GikParseError *err)
{
	PendingRows pending = {NULL, 0, 0, alloc};
	GikIdxLine	row;
	GikIdxLine	prev = {0};
	bool		have_prev = false;
	GikLineCursor cur;
	const char *line;
	size_t		line_len;
	char		msg[sizeof(err->message)];

	gik_line_cursor_init(&cur, buf, len);
	while (gik_line_next(&cur, &line, &line_len))
	{
		const char *problem;

		if (line_len == 0 || (line[0] == ' ' || line[0] == '\t' || line[0] == '\r'))
		{
			if (gik_line_is_blank(line, line_len))
				continue;
		}
		if (cur.lineno == INT32_MAX)
		{
			gik_parse_error_set(err, INT32_MAX, "", 0, MSG_TOO_MANY_LINES);
			return false;
		}
		if (line_len > GIK_INDEX_MAX_LINE)
		{
			snprintf(msg, sizeof(msg), "Expected lines of at most %d bytes, but this one is %zu bytes long.",
					 GIK_INDEX_MAX_LINE, line_len);
			problem = msg;
		}
		else
			problem = parse_idx_line(line, line_len, &row, msg, sizeof(msg));
		if (problem != NULL)
		{
			gik_parse_error_set(err, cur.lineno, line, line_len, problem);
			return false;
		}
		row.lineno = cur.lineno;
		if (have_prev && !check_offset_order(&prev, &row, msg, sizeof(msg)))
		{
			gik_parse_error_set(err, cur.lineno, line, line_len, msg);
			return false;
		}
		if (have_prev && row.offset > prev.offset)
			pending_flush(&pending, row.offset, emit, arg);
		pending_push(&pending, &row);
		prev = row;
		have_prev = true;
	}

	if (have_prev && file_size >= 0 && file_size <= prev.offset)
	{
		snprintf(msg, sizeof(msg),
				 "File size %" PRId64 " is not beyond the last offset %" PRId64
				 "; expected the file to extend past the start of its last message.",
				 file_size, prev.offset);
		find_line(buf, len, prev.lineno, &line, &line_len);
		gik_parse_error_set(err, prev.lineno, line, line_len, msg);
		return false;
	}
	pending_flush(&pending, file_size, emit, arg);
	return true;
}

/* Output array of gik_idx_parse while it is filled. */
typedef struct LineArray
{
	GikIdxLine *rows;
	size_t		n;
} LineArray;

/* Append one emitted line to a LineArray sized for every line. */
static void
append_line(const GikIdxLine *line, void *arg)
{
	LineArray  *a = (LineArray *) arg;

	a->rows[a->n++] = *line;
}

/* Parse a whole inventory into an array; see idx.h. */
bool
gik_idx_parse(const char *buf, size_t len, int64_t file_size,
			  GikAllocFn alloc, GikIdxLine **lines, size_t *nlines,
			  GikParseError *err)
{
	size_t		capacity = gik_count_lines(buf, len);
	LineArray	out = {NULL, 0};

	*lines = NULL;
	*nlines = 0;
	if (capacity > INT32_MAX)
	{
		gik_parse_error_set(err, INT32_MAX, "", 0, MSG_TOO_MANY_LINES);
		return false;
	}
	if (capacity > 0)
		out.rows = alloc(capacity * sizeof(GikIdxLine));
	if (!gik_idx_parse_stream(buf, len, file_size, alloc, append_line, &out, err))
		return false;
	*lines = out.rows;
	*nlines = out.n;
	return true;
}
