/*
 * ECMWF .index parser: gik_ecindex_parse on arbitrary text. Invariants on success: lines
 * sorted by offset, stable (line numbers increase among equal offsets), each line number
 * used once, _offset >= 0, _length >= 1, param present, strings NUL-terminated and at most
 * GIK_INDEX_MAX_FIELD bytes, steps and members consistent.
 */
#include "core/ecmwf_index.h"
#include "fuzz_util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	GikEcIndexLine *rows;
	size_t		n;
	GikParseError err = {0};
	size_t		nlines = gik_count_lines((const char *) data, size);

	if (!gik_ecindex_parse((const char *) data, size, fz_alloc, NULL, &rows, &n, &err))
	{
		FZ_CHECK(err.lineno >= 1 && (size_t) err.lineno <= nlines && err.message[0] != '\0');
		fz_free_all();
		return 0;
	}
	FZ_CHECK(n <= nlines);
	for (size_t i = 0; i < n; i++)
	{
		const GikEcIndexLine *r = &rows[i];
		const char *const strs[] = {r->param, r->levtype, r->levelist, r->date, r->time, r->step,
		r->type, r->stream, r->klass, r->expver, r->domain};

		FZ_CHECK(r->lineno >= 1 && (size_t) r->lineno <= nlines);
		FZ_CHECK(r->offset >= 0 && r->length >= 1 && r->param != NULL && r->number >= -1);
		for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
			FZ_CHECK(strs[k] == NULL || (strlen(strs[k]) < size && strlen(strs[k]) <= GIK_INDEX_MAX_FIELD));
		FZ_CHECK(!r->window.valid || (r->step != NULL && r->window.start_min <= r->window.end_min));
		FZ_CHECK(r->member.kind != GIK_MEMBER_PERTURBED || r->member.number == r->number);
		if (i > 0)
			FZ_CHECK(r->offset > rows[i - 1].offset ||
					 (r->offset == rows[i - 1].offset && r->lineno > rows[i - 1].lineno));
		for (size_t j = 0; j < i; j++)
			FZ_CHECK(rows[j].lineno != r->lineno);
	}
	fz_free_all();
	return 0;
}
