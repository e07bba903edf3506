/*
 * NOAA .idx parser: gik_idx_parse and gik_idx_parse_stream on arbitrary text, with no file
 * size, a file size just past the last offset, one at it (an error) and one from the input.
 * Invariants: both entry points agree; line numbers increase, offsets never decrease; a
 * length is the next distinct offset minus the offset, or -1 for the last offset without
 * a file size; spans lie inside the buffer.
 */
#include "core/idx.h"
#include "fuzz_util.h"

/* Lines gik_idx_parse_stream emitted. */
typedef struct Emitted
{
	GikIdxLine *rows;
	size_t		n;
} Emitted;

/* GikIdxEmitFn collecting into an Emitted sized for every line. */
static void
collect(const GikIdxLine *line, void *arg)
{
	Emitted    *e = arg;

	e->rows[e->n++] = *line;
}

/* True when span lies inside buf[0..len). */
static int
span_inside(GikSpan s, const char *buf, size_t len)
{
	return s.len >= 0 && s.ptr >= buf && s.ptr + s.len <= buf + len;
}

/* Check one successful parse's lines against every invariant. */
static void
check_lines(const GikIdxLine *rows, size_t n, const char *buf, size_t len, int64_t file_size)
{
	size_t		nlines = gik_count_lines(buf, len);

	for (size_t i = 0; i < n; i++)
	{
		const GikIdxLine *r = &rows[i];
		size_t		j = i + 1;

		FZ_CHECK(r->lineno >= 1 && (size_t) r->lineno <= nlines);
		FZ_CHECK(r->offset >= 0 && r->msg_num >= 0 && r->sub_num >= 0);
		FZ_CHECK(span_inside(r->var, buf, len) && span_inside(r->level, buf, len) &&
				 span_inside(r->ftime, buf, len) && span_inside(r->extra, buf, len));
		FZ_CHECK(r->var.len <= GIK_INDEX_MAX_FIELD && r->level.len <= GIK_INDEX_MAX_FIELD &&
				 r->ftime.len <= GIK_INDEX_MAX_FIELD && r->extra.len <= GIK_INDEX_MAX_FIELD);
		FZ_CHECK(!r->window.valid || r->window.start_min <= r->window.end_min);
		FZ_CHECK(r->member.kind != GIK_MEMBER_PERTURBED || r->member.number >= 1);
		if (i > 0)
			FZ_CHECK(r->lineno > rows[i - 1].lineno && r->offset >= rows[i - 1].offset);
		while (j < n && rows[j].offset == r->offset)
			j++;
		if (j < n)
			FZ_CHECK(r->length == rows[j].offset - r->offset && r->length > 0);
		else if (file_size < 0)
			FZ_CHECK(r->length == -1);
		else
			FZ_CHECK(r->length == file_size - r->offset && r->length > 0);
	}
}

/* Parse with both entry points and compare; returns whether parsing succeeded. */
static int
parse_both(const char *buf, size_t len, int64_t file_size, GikIdxLine **rows, size_t *n)
{
	GikParseError err1 = {0};
	GikParseError err2 = {0};
	Emitted		e = {fz_alloc(sizeof(GikIdxLine) * (gik_count_lines(buf, len) + 1)), 0};
	int			ok = gik_idx_parse(buf, len, file_size, fz_alloc, rows, n, &err1);

	FZ_CHECK(gik_idx_parse_stream(buf, len, file_size, fz_alloc, collect, &e, &err2) == ok);
	if (!ok)
	{
		FZ_CHECK(err1.lineno == err2.lineno && strcmp(err1.message, err2.message) == 0);
		FZ_CHECK(err1.message[0] != '\0' && strlen(err1.excerpt) <= 80);
		return 0;
	}
	FZ_CHECK(e.n == *n);
	for (size_t i = 0; i < e.n; i++)
		FZ_CHECK(e.rows[i].lineno == (*rows)[i].lineno && e.rows[i].offset == (*rows)[i].offset &&
				 e.rows[i].length == (*rows)[i].length);
	check_lines(*rows, *n, buf, len, file_size);
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *) data;
	GikIdxLine *rows;
	size_t		n;
	uint64_t	h = 1469598103934665603u;	/* FNV-1a of the input chooses the extra file sizes */

	for (size_t i = 0; i < size; i++)
		h = (h ^ data[i]) * 1099511628211u;
	if (parse_both(buf, size, -1, &rows, &n) && n > 0)
	{
		int64_t		last = rows[n - 1].offset;
		int64_t		any = (int64_t) h;
		int64_t		past = (int64_t) (h % 4096);

		if (last < INT64_MAX)
			FZ_CHECK(parse_both(buf, size, last + 1 + (past < INT64_MAX - last ? past : 0), &rows, &n));
		FZ_CHECK(!parse_both(buf, size, last, &rows, &n));
		FZ_CHECK(parse_both(buf, size, any, &rows, &n) == (any < 0 || any > last));
	}
	else
		parse_both(buf, size, (int64_t) h, &rows, &n);
	fz_free_all();
	return 0;
}
