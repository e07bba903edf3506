/* Unit tests of the ECMWF .index parser on the real AIFS index and on synthetic lines. */
#include "core/ecmwf_index.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AIFS_INDEX "dynamical/aifs_single_20250301_00z_0h.index"

static const char *data_dir;

/* One malformed input and the line the error must name. */
typedef struct BadCase
{
	const char *name;
	const char *text;
	int32_t		lineno;
} BadCase;

/* Parse text with the test allocator; reports a diagnostic on failure. */
static bool
parse_text(const char *text, size_t len, GikEcIndexLine **rows, size_t *n)
{
	GikParseError err;

	memset(&err, 0, sizeof(err));
	*n = 0;
	if (gik_ecindex_parse(text, len, test_alloc, NULL, rows, n, &err))
		return true;
	tap_diag("parse failed at line %d: %s [%s]", (int) err.lineno, err.message, err.excerpt);
	return false;
}

/* True when two C strings are equal or both NULL. */
static bool
same_text(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* True when two parsed lines carry the same values (line numbers aside). */
static bool
same_line(const GikEcIndexLine *a, const GikEcIndexLine *b)
{
	return a->offset == b->offset && a->length == b->length && same_text(a->param, b->param) &&
		same_text(a->levtype, b->levtype) && same_text(a->levelist, b->levelist) &&
		same_text(a->date, b->date) && same_text(a->time, b->time) && same_text(a->step, b->step) &&
		same_text(a->type, b->type) && same_text(a->stream, b->stream) && same_text(a->klass, b->klass) &&
		same_text(a->expver, b->expver) && same_text(a->domain, b->domain) && a->number == b->number &&
		a->window.valid == b->window.valid && a->window.start_min == b->window.start_min &&
		a->window.end_min == b->window.end_min && a->member.kind == b->member.kind &&
		a->member.number == b->member.number;
}

/* The real AIFS index: count, the tp line, sorted output, key-order variation. */
static void
test_aifs(void)
{
	size_t		len;
	char	   *text = test_read_file(data_dir, AIFS_INDEX, &len);
	GikEcIndexLine *rows;
	size_t		n = 0;
	size_t		i;
	const GikEcIndexLine *tp = NULL;
	bool		sorted = true;
	bool		all_control = true;

	tap_ok(text != NULL && parse_text(text, len, &rows, &n), "aifs index parses");
	if (!tap_is_int((int64_t) n, 106, "aifs index has 106 lines"))
		return;
	for (i = 0; i < n; i++)
	{
		if (strcmp(rows[i].param, "tp") == 0)
			tp = &rows[i];
		if (i > 0)
			sorted &= rows[i].offset >= rows[i - 1].offset;
		all_control &= rows[i].member.kind == GIK_MEMBER_CONTROL && rows[i].member.number == 0;
	}
	tap_ok(sorted, "aifs rows are sorted by offset");
	tap_ok(all_control, "aifs oper fc rows without number are the control");
	if (tap_ok(tp != NULL, "aifs has a tp line"))
	{
		tap_is_int(tp->offset, 64717380, "aifs tp offset");
		tap_is_int(tp->length, 224, "aifs tp length");
		tap_is_int(tp->lineno, 88, "aifs tp is line 88");
		tap_ok(same_text(tp->levtype, "sfc") && tp->levelist == NULL, "aifs tp is sfc with no levelist");
		tap_ok(same_text(tp->date, "20250301") && same_text(tp->time, "0000") && same_text(tp->step, "0"),
			   "aifs tp date, time and step");
		tap_ok(same_text(tp->type, "fc") && same_text(tp->stream, "oper") && same_text(tp->klass, "ai") &&
			   same_text(tp->expver, "0001") && same_text(tp->domain, "g"),
			   "aifs tp type, stream, class, expver, domain");
		tap_ok(tp->number == -1, "aifs tp has no number");
		tap_ok(tp->window.valid && tp->window.start_min == 0 && tp->window.end_min == 0 &&
			   tp->window.stat == GIK_STAT_NONE, "aifs tp step 0 is the window [0,0] with stat none");
	}
	tap_ok(rows[0].offset == 0 && rows[0].length == 691563 && same_text(rows[0].param, "vsw") &&
		   same_text(rows[0].levelist, "1") && same_text(rows[0].levtype, "sol"),
		   "aifs first line: vsw sol level 1 at 0 (+691563)");
}

/* The real file already mixes key orders; a line with reversed keys parses the same. */
static void
test_key_order(void)
{
	static const char text[] =
		"{\"domain\": \"g\", \"date\": \"20250301\", \"time\": \"0000\", \"expver\": \"0001\", \"class\": \"ai\", "
		"\"type\": \"fc\", \"stream\": \"oper\", \"levtype\": \"sfc\", \"step\": \"0\", \"param\": \"tp\", "
		"\"_offset\": 64717380, \"_length\": 224}\n"
		"{\"_length\": 224, \"_offset\": 64717380, \"param\": \"tp\", \"step\": \"0\", \"levtype\": \"sfc\", "
		"\"stream\": \"oper\", \"type\": \"fc\", \"class\": \"ai\", \"expver\": \"0001\", \"time\": \"0000\", "
		"\"date\": \"20250301\", \"domain\": \"g\"}\n";
	GikEcIndexLine *rows;
	size_t		n;

	tap_ok(parse_text(text, sizeof(text) - 1, &rows, &n) && n == 2, "reversed key order parses");
	tap_ok(n == 2 && same_line(&rows[0], &rows[1]), "reversed key order gives the same values");
	tap_ok(n == 2 && rows[0].lineno == 1 && rows[1].lineno == 2, "equal offsets keep input order (stable)");
}

/* Shuffled lines of the real index come back sorted and equal to the in-order parse. */
static void
test_shuffled(void)
{
	size_t		len;
	char	   *text = test_read_file(data_dir, AIFS_INDEX, &len);
	const char *starts[128];
	size_t		lens[128];
	size_t		nsrc = 0;
	char	   *shuffled;
	size_t		pos = 0;
	size_t		i;
	GikEcIndexLine *rows;
	GikEcIndexLine *orig;
	size_t		n;
	size_t		norig;
	bool		same = true;

	if (text == NULL)
	{
		tap_ok(false, "aifs index readable for the shuffle test");
		return;
	}
	/* split into lines, then write them back in a fixed permutation (stride 37 mod 106) */
	for (i = 0; i < len && nsrc < 128;)
	{
		const char *nl = memchr(text + i, '\n', len - i);
		size_t		end = nl ? (size_t) (nl - text) : len;

		starts[nsrc] = text + i;
		lens[nsrc++] = end - i;
		i = end + 1;
	}
	shuffled = test_alloc(len + nsrc + 1);
	for (i = 0; i < nsrc; i++)
	{
		size_t		k = (i * 37) % nsrc;

		memcpy(shuffled + pos, starts[k], lens[k]);
		pos += lens[k];
		shuffled[pos++] = '\n';
	}
	tap_ok(parse_text(text, len, &orig, &norig), "aifs in order parses");
	tap_ok(parse_text(shuffled, pos, &rows, &n), "aifs shuffled parses");
	if (!tap_is_int((int64_t) n, (int64_t) norig, "shuffled gives as many rows"))
		return;
	for (i = 0; i < n; i++)
		same &= same_line(&rows[i], &orig[i]);
	tap_ok(same, "shuffled lines come back sorted by offset, equal to the in-order parse");
	tap_ok(rows[0].lineno == (int32_t) ((37 * 0) % nsrc) + 1 && rows[0].offset == 0,
		   "line numbers refer to the shuffled input");
	tap_ok(rows[1].lineno != 2, "second row's line number comes from its shuffled position (%d)", (int) rows[1].lineno);
}

/* Member mapping from type and number, and step windows, on synthetic lines. */
static void
test_members_and_steps(void)
{
	static const char text[] =
		"{\"_offset\": 0, \"_length\": 10, \"param\": \"tp\", \"type\": \"cf\", \"step\": \"6\"}\n"
		"{\"_offset\": 10, \"_length\": 10, \"param\": \"tp\", \"type\": \"cf\", \"number\": \"0\", \"step\": \"0-6\"}\n"
		"{\"_offset\": 20, \"_length\": 10, \"param\": \"tp\", \"type\": \"pf\", \"number\": \"7\", \"step\": \"144\"}\n"
		"{\"_offset\": 30, \"_length\": 10, \"param\": \"tp\", \"type\": \"pf\", \"number\": 50, \"step\": 360}\n"
		"{\"_offset\": 40, \"_length\": 10, \"param\": \"tp\", \"type\": \"fc\", \"stream\": \"oper\", \"step\": \"12-24\"}\n"
		"{\"_offset\": 50, \"_length\": 10, \"param\": \"tp\", \"type\": \"em\", \"step\": \"abc\"}\n"
		"{\"_offset\": 60, \"_length\": 10, \"param\": \"tp\", \"type\": \"es\", \"step\": \"6-0\"}\n"
		"{\"_offset\": 70, \"_length\": 10, \"param\": \"tp\", \"type\": \"pf\"}\n"
		"{\"_offset\": 80, \"_length\": 10, \"param\": \"2t\", \"type\": \"an\"}\n"
		"{\"_offset\": 90, \"_length\": 10, \"param\": \"2t\", \"type\": \"ep\", \"number\": \"3\"}\n"
		"{\"_offset\": 100, \"_length\": 10, \"param\": 167, \"step\": \"0\", \"extra\": [1, {\"a\": null}]}\n";
	static const struct
	{
		GikMemberKind kind;
		int32_t		number;
		bool		valid;
		int32_t		start;
		int32_t		end;
	}			expected[] = {
		{GIK_MEMBER_CONTROL, 0, true, 360, 360},
		{GIK_MEMBER_CONTROL, 0, true, 0, 360},
		{GIK_MEMBER_PERTURBED, 7, true, 8640, 8640},
		{GIK_MEMBER_PERTURBED, 50, true, 21600, 21600},
		{GIK_MEMBER_CONTROL, 0, true, 720, 1440},
		{GIK_MEMBER_MEAN, -1, false, 0, 0},
		{GIK_MEMBER_SPREAD, -1, false, 0, 0},
		{GIK_MEMBER_OTHER, -1, false, 0, 0},
		{GIK_MEMBER_NONE, -1, false, 0, 0},
		{GIK_MEMBER_OTHER, -1, false, 0, 0},
		{GIK_MEMBER_NONE, -1, true, 0, 0},
	};
	static const char *const what[] = {
		"cf without number", "cf number 0, step 0-6", "pf number 7, step 144", "pf number 50 (JSON integer), step 360 (integer)",
		"fc without number (oper control), step 12-24", "em, step abc", "es, step 6-0", "pf without number",
		"an without number", "ep with number", "param as integer, unknown keys ignored"
	};
	GikEcIndexLine *rows;
	size_t		n;
	size_t		i;

	tap_ok(parse_text(text, sizeof(text) - 1, &rows, &n), "synthetic member/step lines parse");
	if (!tap_is_int((int64_t) n, 11, "synthetic member/step lines: 11 rows"))
		return;
	for (i = 0; i < n; i++)
	{
		const GikEcIndexLine *r = &rows[i];
		bool		ok = r->member.kind == expected[i].kind && r->member.number == expected[i].number &&
			r->window.valid == expected[i].valid &&
			(!r->window.valid || (r->window.start_min == expected[i].start &&
								  r->window.end_min == expected[i].end && r->window.stat == GIK_STAT_NONE));

		tap_ok(ok, "%s -> %s %d, window %s [%d,%d]", what[i], gik_member_kind_name(expected[i].kind),
			   (int) expected[i].number, expected[i].valid ? "valid" : "invalid",
			   (int) expected[i].start, (int) expected[i].end);
		if (!ok)
			tap_diag("got %s %d, window valid=%d [%d,%d]", gik_member_kind_name(r->member.kind),
					 (int) r->member.number, r->window.valid, (int) r->window.start_min, (int) r->window.end_min);
	}
	tap_ok(same_text(rows[3].number == 50 ? rows[3].step : NULL, "360"), "integer step is kept as its decimal text");
	tap_ok(same_text(rows[10].param, "167"), "integer param is kept as its decimal text");
	tap_ok(rows[1].number == 0 && rows[0].number == -1, "number is -1 when absent");
}

/* Malformed lines fail with their line number. */
static void
test_malformed(void)
{
	static const BadCase cases[] = {
		{"not JSON", "{\"_offset\": 0, \"_length\": 1, \"param\": \"tp\"}\n{\"_offset\": 1, \"_length\": 1, \"param\": \n", 2},
		{"missing _offset", "\n{\"_length\": 224, \"param\": \"tp\"}\n", 2},
		{"missing _length", "{\"_offset\": 0, \"param\": \"tp\"}\n", 1},
		{"missing param", "{\"_offset\": 0, \"_length\": 1}\n", 1},
		{"_offset as string", "{\"_offset\": \"0\", \"_length\": 1, \"param\": \"tp\"}\n", 1},
		{"_offset negative", "{\"_offset\": -1, \"_length\": 1, \"param\": \"tp\"}\n", 1},
		{"_offset real", "{\"_offset\": 1.5, \"_length\": 1, \"param\": \"tp\"}\n", 1},
		{"_length zero", "{\"_offset\": 0, \"_length\": 0, \"param\": \"tp\"}\n", 1},
		{"param real", "{\"_offset\": 0, \"_length\": 1, \"param\": 1.5}\n", 1},
		{"step null", "{\"_offset\": 0, \"_length\": 1, \"param\": \"tp\", \"step\": null}\n", 1},
		{"number not decimal", "{\"_offset\": 0, \"_length\": 1, \"param\": \"tp\", \"number\": \"x1\"}\n", 1},
		{"number negative", "{\"_offset\": 0, \"_length\": 1, \"param\": \"tp\", \"number\": -3}\n", 1},
		{"duplicate key", "{\"_offset\": 0, \"_offset\": 5, \"_length\": 1, \"param\": \"tp\"}\n", 1},
		{"array, not object", "[1, 2]\n", 1},
		{"two objects on a line", "{\"_offset\": 0, \"_length\": 1, \"param\": \"tp\"} {}\n", 1},
		{"error after CRLF lines", "{\"_offset\": 0, \"_length\": 1, \"param\": \"tp\"}\r\n\r\n{oops}\r\n", 3},
	};
	size_t		i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		GikEcIndexLine *rows;
		size_t		n = 0;
		GikParseError err;
		bool		ok;

		memset(&err, 0, sizeof(err));
		ok = gik_ecindex_parse(cases[i].text, strlen(cases[i].text), test_alloc, NULL, &rows, &n, &err);
		tap_ok(!ok && err.lineno == cases[i].lineno && err.message[0] != '\0' && err.excerpt[0] != '\0',
			   "malformed (%s) fails on line %d", cases[i].name, (int) cases[i].lineno);
		if (ok || err.lineno != cases[i].lineno)
			tap_diag("ok=%d lineno=%d message=%s", ok, (int) err.lineno, err.message);
		else
			tap_diag("%s [%s]", err.message, err.excerpt);
	}
}

/*
 * Every string value may hold GIK_INDEX_MAX_FIELD bytes; one byte more fails on its line
 * (the second), with the key named. "number" is checked for length before it is parsed.
 */
static void
test_field_limits(void)
{
	static const char *const keys[] = {"param", "levtype", "levelist", "date", "time", "step", "type",
	"stream", "class", "expver", "domain", "number"};
	static const char first[] = "{\"_offset\": 0, \"_length\": 10, \"param\": \"tp\"}\n";

	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
		for (int extra = 0; extra <= 1; extra++)
		{
			size_t		vlen = GIK_INDEX_MAX_FIELD + (size_t) extra;
			size_t		cap = sizeof(first) + vlen + 200;
			char	   *text = test_alloc(cap);
			char	   *value = test_alloc(vlen + 1);
			GikEcIndexLine *rows;
			size_t		n = 0;
			GikParseError err = {0};
			bool		ok;
			char		expected[200];
			bool		is_number = strcmp(keys[k], "number") == 0;

			memset(value, is_number ? '0' : 'v', vlen);
			value[vlen - 1] = '7';
			value[vlen] = '\0';
			snprintf(text, cap, "%s{\"_offset\": 10, \"_length\": 5, %s\"%s\": \"%s\"}\n", first,
					 strcmp(keys[k], "param") == 0 ? "" : "\"param\": \"2t\", ", keys[k], value);
			ok = gik_ecindex_parse(text, strlen(text), test_alloc, NULL, &rows, &n, &err);
			if (!extra && is_number)
			{
				/* not refused for its length: 255 digits are no decimal integer below 2^31 */
				tap_ok(!ok && err.lineno == 2 && strcmp(err.message, "Expected \"number\" to be a decimal integer from 0 to 2^31-1.") == 0,
					   "\"number\" of %d digits is refused as a number, not for its length", GIK_INDEX_MAX_FIELD);
				continue;
			}
			if (!extra)
			{
				tap_ok(ok && n == 2, "\"%s\" of %d bytes parses", keys[k], GIK_INDEX_MAX_FIELD);
				if (!ok)
					tap_diag("%s", err.message);
				continue;
			}
			snprintf(expected, sizeof(expected), "Expected \"%s\" to be at most %d bytes long, but it is %d bytes long.",
					 keys[k], GIK_INDEX_MAX_FIELD, GIK_INDEX_MAX_FIELD + 1);
			tap_ok(!ok && err.lineno == 2, "\"%s\" of %d bytes fails on line 2 (got %d)", keys[k], GIK_INDEX_MAX_FIELD + 1, (int) err.lineno);
			tap_is_text(err.message, strlen(err.message), expected, "\"%s\" too long: the sentence names the key", keys[k]);
		}
}

/* Lines may hold GIK_INDEX_MAX_LINE bytes (unknown keys are not limited); a longer one fails on its line. */
static void
test_line_limit(void)
{
	static const char first[] = "{\"_offset\": 0, \"_length\": 10, \"param\": \"tp\"}\n";
	static const char open[] = "{\"_offset\": 10, \"_length\": 5, \"param\": \"2t\", \"comment\": \"";

	for (int over = 0; over <= 1; over++)
	{
		size_t		line = GIK_INDEX_MAX_LINE + (size_t) over;
		size_t		len = sizeof(first) - 1 + line + 1;
		char	   *text = test_alloc(len + 1);
		size_t		pos = sizeof(first) - 1;
		GikEcIndexLine *rows;
		size_t		n = 0;
		GikParseError err = {0};
		bool		ok;

		memcpy(text, first, pos);
		memcpy(text + pos, open, sizeof(open) - 1);
		memset(text + pos + sizeof(open) - 1, 'c', line - (sizeof(open) - 1) - 2);
		memcpy(text + pos + line - 2, "\"}\n", 3);
		ok = gik_ecindex_parse(text, len, test_alloc, NULL, &rows, &n, &err);
		if (!over)
			tap_ok(ok && n == 2, "a line of %d bytes with a long unknown key parses", GIK_INDEX_MAX_LINE);
		else
		{
			char		expected[200];

			snprintf(expected, sizeof(expected), "Expected lines of at most %d bytes, but this one is %d bytes long.",
					 GIK_INDEX_MAX_LINE, GIK_INDEX_MAX_LINE + 1);
			tap_ok(!ok && err.lineno == 2, "a line of %d bytes fails on line 2", GIK_INDEX_MAX_LINE + 1);
			tap_is_text(err.message, strlen(err.message), expected, "a line too long: the sentence");
		}
		if (!ok && !over)
			tap_diag("%s", err.message);
	}
}

/* Empty input, blank lines and CRLF endings. */
static void
test_empty_and_blank(void)
{
	static const char crlf[] =
		"\r\n  \r\n{\"_offset\": 5, \"_length\": 1, \"param\": \"tp\"}\r\n\r\n"
		"{\"_offset\": 0, \"_length\": 5, \"param\": \"cp\"}";
	GikEcIndexLine *rows;
	size_t		n;

	tap_ok(parse_text("", 0, &rows, &n) && n == 0, "empty input gives 0 lines");
	tap_ok(parse_text(NULL, 0, &rows, &n) && n == 0, "NULL empty input gives 0 lines");
	tap_ok(parse_text("\n \n\t\n", 5, &rows, &n) && n == 0, "blank lines give 0 lines");
	tap_ok(parse_text(crlf, sizeof(crlf) - 1, &rows, &n) && n == 2, "CRLF and a missing final newline parse");
	tap_ok(n == 2 && rows[0].offset == 0 && rows[0].lineno == 5 && rows[1].offset == 5 && rows[1].lineno == 3,
		   "rows sorted by offset keep their own line numbers");
}

/* Run the .index tests. */
int
main(int argc, char **argv)
{
	data_dir = test_data_dir(argc, argv);
	test_aifs();
	test_key_order();
	test_shuffled();
	test_members_and_steps();
	test_malformed();
	test_field_limits();
	test_line_limit();
	test_empty_and_blank();
	return tap_done();
}
