/* Minimal TAP producer and test helpers for the pure-C core unit tests. */
#include "tap.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef GIK_TEST_DATA_DIR
#define GIK_TEST_DATA_DIR "test/data"
#endif

static int	tests_run = 0;
static int	tests_failed = 0;

/* Header of one remembered allocation, sized to keep the payload max-aligned. */
typedef union Allocation
{
	union Allocation *next;
	max_align_t align;
} Allocation;

static Allocation *allocations = NULL;

/* Print "ok N - description" or "not ok N - description". */
static bool
report(bool ok, const char *fmt, va_list ap)
{
	tests_run++;
	if (!ok)
		tests_failed++;
	printf("%sok %d - ", ok ? "" : "not ", tests_run);
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	return ok;
}

/* Report one test; returns ok. */
bool
tap_ok(bool ok, const char *fmt, ...)
{
	va_list		ap;

	va_start(ap, fmt);
	report(ok, fmt, ap);
	va_end(ap);
	return ok;
}

/* Report equality of two integers. */
bool
tap_is_int(int64_t got, int64_t expected, const char *fmt, ...)
{
	va_list		ap;
	bool		ok = got == expected;

	va_start(ap, fmt);
	report(ok, fmt, ap);
	va_end(ap);
	if (!ok)
		tap_diag("got %" PRId64 ", expected %" PRId64, got, expected);
	return ok;
}

/* Report equality of a (ptr, len) text with a C string. */
bool
tap_is_text(const char *got, size_t got_len, const char *expected, const char *fmt, ...)
{
	va_list		ap;
	bool		ok;

	if (got == NULL || expected == NULL)
		ok = got == NULL && expected == NULL;
	else
		ok = strlen(expected) == got_len && memcmp(got, expected, got_len) == 0;
	va_start(ap, fmt);
	report(ok, fmt, ap);
	va_end(ap);
	if (!ok)
		tap_diag("got \"%.*s\", expected \"%s\"", got ? (int) got_len : 6,
				 got ? got : "(null)", expected ? expected : "(null)");
	return ok;
}

/* Report a skipped test. */
void
tap_skip(const char *reason, const char *fmt, ...)
{
	va_list		ap;

	tests_run++;
	printf("ok %d - ", tests_run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf(" # SKIP %s\n", reason);
}

/* Print a diagnostic line. */
void
tap_diag(const char *fmt, ...)
{
	va_list		ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* Print the plan and free test allocations; returns the exit code. */
int
tap_done(void)
{
	test_alloc_reset();
	printf("1..%d\n", tests_run);
	if (tests_failed > 0)
		tap_diag("%d of %d tests failed", tests_failed, tests_run);
	return tests_failed > 0 ? 1 : 0;
}

/* Allocator for the code under test: malloc, remembered for test_alloc_reset. */
void *
test_alloc(size_t size)
{
	Allocation *a = malloc(sizeof(Allocation) + size);

	if (a == NULL)
	{
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	a->next = allocations;
	allocations = a;
	return (char *) a + sizeof(Allocation);
}

/* Free everything test_alloc returned so far. */
void
test_alloc_reset(void)
{
	while (allocations != NULL)
	{
		Allocation *next = allocations->next;

		free(allocations);
		allocations = next;
	}
}

/* Directory of the real fixtures. */
const char *
test_data_dir(int argc, char **argv)
{
	const char *env = getenv("GIK_TEST_DATA");

	if (argc > 1)
		return argv[1];
	if (env != NULL && env[0] != '\0')
		return env;
	return GIK_TEST_DATA_DIR;
}

/* Read a whole file with test_alloc; NULL if it cannot be read. */
char *
test_read_file(const char *data_dir, const char *relpath, size_t *len)
{
	char		path[4096];
	FILE	   *f;
	long		size;
	char	   *buf = NULL;

	*len = 0;
	if (relpath[0] == '/')
		snprintf(path, sizeof(path), "%s", relpath);
	else
		snprintf(path, sizeof(path), "%s/%s", data_dir, relpath);
	if ((f = fopen(path, "rb")) == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0)
	{
		buf = test_alloc((size_t) size + 1);
		if (fread(buf, 1, (size_t) size, f) != (size_t) size)
			buf = NULL;
		else
		{
			buf[size] = '\0';
			*len = (size_t) size;
		}
	}
	fclose(f);
	if (buf == NULL)
		tap_diag("cannot read %s", path);
	return buf;
}
