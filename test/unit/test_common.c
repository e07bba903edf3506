/* Unit tests of the shared core helpers: parse errors, names, line cursor, decimal parsing. */
#include "core/common.h"
#include "tap.h"

#include <string.h>

/* Excerpts are cut at 80 bytes and non-printable bytes become '?'. */
static void
test_parse_error(void)
{
	GikParseError err;
	char		long_line[200];
	char		long_message[300];

	memset(long_line, 'x', sizeof(long_line));
	memset(long_message, 'm', sizeof(long_message) - 1);
	long_message[sizeof(long_message) - 1] = '\0';

	gik_parse_error_set(&err, 7, "ab\tc\x01\xff" "d", 7, "Expected something.");
	tap_is_int(err.lineno, 7, "parse error keeps the line number");
	tap_ok(strcmp(err.excerpt, "ab?c??d") == 0, "non-printable bytes become '?' (got \"%s\")", err.excerpt);
	tap_ok(strcmp(err.message, "Expected something.") == 0, "message is copied");

	gik_parse_error_set(&err, 1, long_line, sizeof(long_line), long_message);
	tap_is_int((int64_t) strlen(err.excerpt), 80, "excerpt holds at most 80 bytes");
	tap_is_int((int64_t) strlen(err.message), (int64_t) sizeof(err.message) - 1, "long messages are truncated safely");

	gik_parse_error_set(&err, 3, "", 0, "Empty.");
	tap_ok(err.excerpt[0] == '\0', "empty line gives an empty excerpt");
	gik_parse_error_set(NULL, 3, "x", 1, "ignored");
	tap_ok(true, "NULL error pointer is ignored");
}

/* Names of statistics and member kinds. */
static void
test_names(void)
{
	tap_ok(gik_stat_name(GIK_STAT_NONE) == NULL, "stat NONE has no name");
	tap_ok(strcmp(gik_stat_name(GIK_STAT_ACC), "acc") == 0 && strcmp(gik_stat_name(GIK_STAT_AVE), "ave") == 0 &&
		   strcmp(gik_stat_name(GIK_STAT_MAX), "max") == 0 && strcmp(gik_stat_name(GIK_STAT_MIN), "min") == 0,
		   "stat names are acc, ave, max, min");
	tap_ok(strcmp(gik_member_kind_name(GIK_MEMBER_NONE), "none") == 0 &&
		   strcmp(gik_member_kind_name(GIK_MEMBER_CONTROL), "control") == 0 &&
		   strcmp(gik_member_kind_name(GIK_MEMBER_PERTURBED), "perturbed") == 0 &&
		   strcmp(gik_member_kind_name(GIK_MEMBER_MEAN), "mean") == 0 &&
		   strcmp(gik_member_kind_name(GIK_MEMBER_SPREAD), "spread") == 0 &&
		   strcmp(gik_member_kind_name(GIK_MEMBER_OTHER), "other") == 0,
		   "member kind names");
}

/* Line cursor and line counting agree on "\n", "\r\n", blank lines and a missing final newline. */
static void
test_lines(void)
{
	static const char text[] = "a\r\n\nbb\n  \ncc";
	GikLineCursor cur;
	const char *line;
	size_t		len;
	int			count = 0;
	bool		ok = true;
	static const char *const expected[] = {"a", "", "bb", "  ", "cc"};

	tap_is_int((int64_t) gik_count_lines(text, sizeof(text) - 1), 5, "count_lines counts a last line without newline");
	tap_is_int((int64_t) gik_count_lines("x\n", 2), 1, "count_lines: final newline ends the last line");
	tap_is_int((int64_t) gik_count_lines("", 0), 0, "count_lines: empty buffer has no lines");
	tap_is_int((int64_t) gik_count_lines(NULL, 0), 0, "count_lines: NULL empty buffer has no lines");
	gik_line_cursor_init(&cur, text, sizeof(text) - 1);
	while (gik_line_next(&cur, &line, &len))
	{
		ok &= count < 5 && len == strlen(expected[count]) && memcmp(line, expected[count], len) == 0 &&
			cur.lineno == count + 1;
		count++;
	}
	tap_ok(ok && count == 5, "line cursor strips \\n and \\r\\n and numbers every line");
	tap_ok(gik_line_is_blank("  \t\r", 4) && gik_line_is_blank("", 0) && !gik_line_is_blank(" x", 2),
		   "blank lines are spaces, tabs and CRs only");
}

/* Decimal parsing: bounds, overflow, and digits only. */
static void
test_decimal(void)
{
	static const char big[] = "18446744073709551615";	/* 2^64 - 1: 20 digits */
	static const char max63[] = "9223372036854775807";
	const char *p;
	uint64_t	v = 0;

	p = "123:";
	tap_ok(gik_parse_decimal(&p, p + 4, 1000, &v) && v == 123 && *p == ':', "decimal stops at the first non-digit");
	p = "1001";
	tap_ok(!gik_parse_decimal(&p, p + 4, 1000, &v), "decimal above max fails");
	p = max63;
	tap_ok(gik_parse_decimal(&p, p + strlen(max63), INT64_MAX, &v) && v == (uint64_t) INT64_MAX, "2^63-1 parses");
	p = big;
	tap_ok(!gik_parse_decimal(&p, p + strlen(big), UINT64_MAX, &v), "20-digit numbers fail instead of overflowing");
	p = "x1";
	tap_ok(!gik_parse_decimal(&p, p + 2, 10, &v), "decimal needs a leading digit");
	p = "";
	tap_ok(!gik_parse_decimal(&p, p, 10, &v), "empty text is not a decimal");
}

/* Run the common tests. */
int
main(void)
{
	test_parse_error();
	test_names();
	test_lines();
	test_decimal();
	return tap_done();
}
