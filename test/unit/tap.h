/* Minimal TAP producer and test helpers for the pure-C core unit tests. */
#ifndef GIK_TEST_TAP_H
#define GIK_TEST_TAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Report one test; returns ok. */
extern bool tap_ok(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Report equality of two integers, with a diagnostic on failure. */
extern bool tap_is_int(int64_t got, int64_t expected, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Report equality of a (ptr, len) text with a C string, with a diagnostic on failure. */
extern bool tap_is_text(const char *got, size_t got_len, const char *expected, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Report a skipped test. */
extern void tap_skip(const char *reason, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Print a diagnostic line ("# ..."). */
extern void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print the plan and free test allocations; returns the process exit code. */
extern int	tap_done(void);

/* Allocator for the code under test: malloc, remembered so tap_done() can free it. */
extern void *test_alloc(size_t size);

/* Free everything test_alloc returned so far. */
extern void test_alloc_reset(void);

/* Directory of the real fixtures: argv[1], else $GIK_TEST_DATA, else the compiled-in default. */
extern const char *test_data_dir(int argc, char **argv);

/* Read a whole file (path relative to the data dir) with test_alloc; NULL if it cannot be read. */
extern char *test_read_file(const char *data_dir, const char *relpath, size_t *len);

#endif
