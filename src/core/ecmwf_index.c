/*
 * ECMWF open-data .index parser: one JSON object per line, read with jansson.
 *
 * Values that should be strings may also be JSON integers: they are kept as
 * their decimal text ("step": 6 becomes "6"). Reals, booleans, null, arrays
 * and objects are rejected. Unknown keys are ignored.
 */
#include "core/ecmwf_index.h"

#include <inttypes.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A string-valued key and where its copy goes in GikEcIndexLine. */
typedef struct StringKey
{
	const char *key;
	size_t		field;			/* offsetof the const char * member */
} StringKey;

static const StringKey string_keys[] = {
	{"param", offsetof(GikEcIndexLine, param)},
	{"levtype", offsetof(GikEcIndexLine, levtype)},
	{"levelist", offsetof(GikEcIndexLine, levelist)},
	{"date", offsetof(GikEcIndexLine, date)},
	{"time", offsetof(GikEcIndexLine, time)},
	{"step", offsetof(GikEcIndexLine, step)},
	{"type", offsetof(GikEcIndexLine, type)},
	{"stream", offsetof(GikEcIndexLine, stream)},
	{"class", offsetof(GikEcIndexLine, klass)},
	{"expver", offsetof(GikEcIndexLine, expver)},
	{"domain", offsetof(GikEcIndexLine, domain)},
};

/* Read an integer key no smaller than min; fills msg and returns false if missing or wrong. */
static bool
get_integer(json_t *obj, const char *key, json_int_t min, int64_t *out,
			char *msg, size_t msg_size)
{
	json_t	   *value = json_object_get(obj, key);

	if (value == NULL || !json_is_integer(value) || json_integer_value(value) < min)
	{
		snprintf(msg, msg_size, "Expected \"%s\" as a JSON integer of at least %" JSON_INTEGER_FORMAT
				 "%s.", key, min, value == NULL ? ", but the key is missing" : "");
		return false;
	}
	*out = (int64_t) json_integer_value(value);
	return true;
}

/* Copy a string-valued key (or an integer as its decimal text) of at most GIK_INDEX_MAX_FIELD bytes; NULL when absent. */
static bool
get_text(json_t *obj, const char *key, GikAllocFn alloc, const char **out,
		 char *msg, size_t msg_size)
{
	json_t	   *value = json_object_get(obj, key);
	char		digits[32];

	*out = NULL;
	if (value == NULL)
		return true;
	if (json_is_string(value))
	{
		if (json_string_length(value) > GIK_INDEX_MAX_FIELD)
		{
			snprintf(msg, msg_size, "Expected \"%s\" to be at most %d bytes long, but it is %zu bytes long.",
					 key, GIK_INDEX_MAX_FIELD, json_string_length(value));
			return false;
		}
		*out = gik_strndup(alloc, json_string_value(value), json_string_length(value));
	}
	else if (json_is_integer(value))
	{
		int			n = snprintf(digits, sizeof(digits), "%" JSON_INTEGER_FORMAT,
								 json_integer_value(value));

		*out = gik_strndup(alloc, digits, (size_t) n);
	}
	else
	{
		snprintf(msg, msg_size, "Expected \"%s\" to be a JSON string or integer.", key);
		return false;
	}
	return true;
}

/* Parse "number" text into *number (-1 when absent); false if it is not a decimal integer. */
static bool
parse_number(const char *text, int32_t *number, char *msg, size_t msg_size)
{
	const char *p = text;
	const char *end;
	uint64_t	value;

	*number = -1;
	if (text == NULL)
		return true;
	end = text + strlen(text);
	if (!gik_parse_decimal(&p, end, INT32_MAX, &value) || p != end)
	{
		snprintf(msg, msg_size, "Expected \"number\" to be a decimal integer from 0 to 2^31-1.");
		return false;
	}
	*number = (int32_t) value;
	return true;
}

/* Normalise "step": "N" gives [N, N] hours, "A-B" gives [A, B] hours, in minutes; else invalid. */
static GikTimeWindow
window_from_step(const char *step)
{
	GikTimeWindow window = {false, 0, 0, GIK_STAT_NONE};
	const char *p = step;
	const char *end;
	uint64_t	start;
	uint64_t	stop;

	if (step == NULL)
		return window;
	end = step + strlen(step);
	if (!gik_parse_decimal(&p, end, INT32_MAX / 60, &start))
		return window;
	stop = start;
	if (p < end && *p == '-')
	{
		p++;
		if (!gik_parse_decimal(&p, end, INT32_MAX / 60, &stop))
			return window;
	}
	if (p != end || stop < start)
		return window;
	window.valid = true;
	window.start_min = (int32_t) start * 60;
	window.end_min = (int32_t) stop * 60;
	return window;
}

/*
 * Member from "type" and "number": cf is the control; fc and pf are the
 * control with number 0 and perturbed N with number N >= 1; fc without a
 * number is the control (oper-fc after IFS 50r1), pf without one is OTHER;
 * em / es are mean / spread. Other types are OTHER with a number, else NONE.
 */
static GikMember
member_from_type(const char *type, int32_t number)
{
	GikMember	member = {GIK_MEMBER_NONE, -1};

	if (type != NULL && strcmp(type, "cf") == 0)
		member.kind = GIK_MEMBER_CONTROL;
	else if (type != NULL && (strcmp(type, "fc") == 0 || strcmp(type, "pf") == 0))
	{
		if (number >= 1)
			member.kind = GIK_MEMBER_PERTURBED;
		else if (number == 0 || strcmp(type, "fc") == 0)
			member.kind = GIK_MEMBER_CONTROL;
		else
			member.kind = GIK_MEMBER_OTHER;
	}
	else if (type != NULL && strcmp(type, "em") == 0)
		member.kind = GIK_MEMBER_MEAN;
	else if (type != NULL && strcmp(type, "es") == 0)
		member.kind = GIK_MEMBER_SPREAD;
	else if (number >= 0)
		member.kind = GIK_MEMBER_OTHER;

	if (member.kind == GIK_MEMBER_CONTROL)
		member.number = 0;
	else if (member.kind == GIK_MEMBER_PERTURBED)
		member.number = number;
	return member;
}

/* Fill row from one decoded JSON value; fills msg and returns false on a problem. */
static bool
fill_row(json_t *obj, GikAllocFn alloc, GikEcIndexLine *row, char *msg, size_t msg_size)
{
	const char *number_text;
	size_t		i;

	if (!json_is_object(obj))
	{
		snprintf(msg, msg_size, "Expected a JSON object on each line.");
		return false;
	}
	if (!get_integer(obj, "_offset", 0, &row->offset, msg, msg_size) ||
		!get_integer(obj, "_length", 1, &row->length, msg, msg_size))
		return false;
	for (i = 0; i < sizeof(string_keys) / sizeof(string_keys[0]); i++)
	{
		const char **field = (const char **) ((char *) row + string_keys[i].field);

		if (!get_text(obj, string_keys[i].key, alloc, field, msg, msg_size))
			return false;
	}
	if (row->param == NULL)
	{
		snprintf(msg, msg_size, "Expected a \"param\" key on each line.");
		return false;
	}
	if (!get_text(obj, "number", alloc, &number_text, msg, msg_size) ||
		!parse_number(number_text, &row->number, msg, msg_size))
		return false;
	row->window = window_from_step(row->step);
	row->member = member_from_type(row->type, row->number);
	return true;
}

/* Parse one non-blank line into row; fills msg and returns false on a problem. */
static bool
parse_index_line(const char *line, size_t len, GikAllocFn alloc,
				 GikEcIndexLine *row, char *msg, size_t msg_size)
{
	json_error_t json_err;
	json_t	   *obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &json_err);
	bool		ok;

	if (obj == NULL)
	{
		snprintf(msg, msg_size, "Expected one JSON object per line (%.100s).", json_err.text);
		return false;
	}
	ok = fill_row(obj, alloc, row, msg, msg_size);
	json_decref(obj);
	return ok;
}

/* Order lines by offset, then by line number (which makes the sort stable). */
static int
compare_offset_lineno(const void *a, const void *b)
{
	const GikEcIndexLine *x = a;
	const GikEcIndexLine *y = b;

	if (x->offset != y->offset)
		return x->offset < y->offset ? -1 : 1;
	return (x->lineno > y->lineno) - (x->lineno < y->lineno);
}

/* True when rows are already in non-decreasing offset order. */
static bool
is_sorted_by_offset(const GikEcIndexLine *rows, size_t n)
{
	size_t		i;

	for (i = 1; i < n; i++)
		if (rows[i].offset < rows[i - 1].offset)
			return false;
	return true;
}

/* Parse a whole .index buffer; see ecmwf_index.h. */
bool
gik_ecindex_parse(const char *buf, size_t len, GikAllocFn alloc, GikEcIndexCheckFn check,
				  GikEcIndexLine **lines, size_t *nlines,
				  GikParseError *err)
{
	size_t		capacity = gik_count_lines(buf, len);
	GikEcIndexLine *rows = NULL;
	size_t		n = 0;
	GikLineCursor cur;
	const char *line;
	size_t		line_len;
	char		msg[sizeof(err->message)];

	*lines = NULL;
	*nlines = 0;
	if (capacity > INT32_MAX)
	{
		gik_parse_error_set(err, INT32_MAX, "", 0, "Expected fewer than 2^31 lines in one index.");
		return false;
	}
	if (capacity > 0)
		rows = alloc(capacity * sizeof(GikEcIndexLine));

	gik_line_cursor_init(&cur, buf, len);
	while (gik_line_next(&cur, &line, &line_len))
	{
		if (check && (cur.lineno & 1023) == 0)
			check();
		if (gik_line_is_blank(line, line_len))
			continue;
		memset(&rows[n], 0, sizeof(GikEcIndexLine));
		rows[n].lineno = cur.lineno;
		if (line_len > GIK_INDEX_MAX_LINE)
		{
			snprintf(msg, sizeof(msg), "Expected lines of at most %d bytes, but this one is %zu bytes long.",
					 GIK_INDEX_MAX_LINE, line_len);
			gik_parse_error_set(err, cur.lineno, line, line_len, msg);
			return false;
		}
		if (!parse_index_line(line, line_len, alloc, &rows[n], msg, sizeof(msg)))
		{
			gik_parse_error_set(err, cur.lineno, line, line_len, msg);
			return false;
		}
		n++;
	}
	if (!is_sorted_by_offset(rows, n))
		qsort(rows, n, sizeof(GikEcIndexLine), compare_offset_lineno);
	*lines = rows;
	*nlines = n;
	return true;
}
