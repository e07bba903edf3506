/* Helpers shared by the pure-C core: parse errors, enum names, line counting. */
#include "core/common.h"

#include <stdio.h>
#include <string.h>

/* Fill err with a line number, a printable excerpt of the line and a message. */
void
gik_parse_error_set(GikParseError *err, int32_t lineno,
					const char *line, size_t line_len,
					const char *message)
{
	size_t		max_excerpt = sizeof(err->excerpt) - 1;
	size_t		n = line_len < max_excerpt ? line_len : max_excerpt;
	size_t		i;

	if (err == NULL)
		return;
	err->lineno = lineno;
	for (i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) line[i];

		err->excerpt[i] = (c >= 0x20 && c < 0x7f) ? (char) c : '?';
	}
	err->excerpt[n] = '\0';
	snprintf(err->message, sizeof(err->message), "%s", message ? message : "");
}

/* Name of a statistical process, or NULL for an instantaneous field. */
const char *
gik_stat_name(GikStat stat)
{
	switch (stat)
	{
		case GIK_STAT_ACC:
			return "acc";
		case GIK_STAT_AVE:
			return "ave";
		case GIK_STAT_MAX:
			return "max";
		case GIK_STAT_MIN:
			return "min";
		case GIK_STAT_NONE:
			break;
	}
	return NULL;
}

/* Name of a member kind, as stored in the catalog. */
const char *
gik_member_kind_name(GikMemberKind kind)
{
	switch (kind)
	{
		case GIK_MEMBER_NONE:
			return "none";
		case GIK_MEMBER_CONTROL:
			return "control";
		case GIK_MEMBER_PERTURBED:
			return "perturbed";
		case GIK_MEMBER_MEAN:
			return "mean";
		case GIK_MEMBER_SPREAD:
			return "spread";
		case GIK_MEMBER_OTHER:
			return "other";
	}
	return "other";
}

/* Number of lines in buf[0..len): one per '\n', plus a last line without one. */
size_t
gik_count_lines(const char *buf, size_t len)
{
	const char *p = buf;
	const char *end = len > 0 ? buf + len : buf;
	size_t		count = 0;

	while (p < end)
	{
		const char *nl = memchr(p, '\n', (size_t) (end - p));

		count++;
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return count;
}
