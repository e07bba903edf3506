/*
 * Shared by the libFuzzer harnesses of src/core: a malloc arena standing in for the
 * backend's memory context, a byte reader for structured inputs, and a check macro.
 */
#ifndef GIK_FUZZ_UTIL_H
#define GIK_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Abort (a libFuzzer crash) with the failed invariant when cond is false. */
#define FZ_CHECK(cond) \
	do { if (!(cond)) { fprintf(stderr, "invariant failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); abort(); } } while (0)

/* Allocations larger than this fail (return NULL), as a very large palloc would raise. */
#define FZ_ALLOC_LIMIT ((size_t) 64 << 20)

static void **fz_blocks;
static size_t fz_nblocks;
static size_t fz_capblocks;

/* GikAllocFn: malloc, remembered until fz_free_all() (a memory context reset). */
static inline void *
fz_alloc(size_t size)
{
	void	   *p;

	if (size > FZ_ALLOC_LIMIT)
		return NULL;
	if (fz_nblocks == fz_capblocks)
	{
		fz_capblocks = fz_capblocks ? 2 * fz_capblocks : 64;
		fz_blocks = realloc(fz_blocks, fz_capblocks * sizeof(void *));
		FZ_CHECK(fz_blocks != NULL);
	}
	p = malloc(size ? size : 1);
	FZ_CHECK(p != NULL);
	fz_blocks[fz_nblocks++] = p;
	return p;
}

/* Free everything fz_alloc returned; called at the end of every input. */
static inline void
fz_free_all(void)
{
	while (fz_nblocks > 0)
		free(fz_blocks[--fz_nblocks]);
	free(fz_blocks);
	fz_blocks = NULL;
	fz_capblocks = 0;
}

/* Reads fixed-size fields from the front of a fuzz input; zeros once it runs out. */
typedef struct FzReader
{
	const uint8_t *p;
	size_t		left;
} FzReader;

/* Copy the next n bytes into out (zero-filled past the end of the input). */
static inline void
fz_bytes(FzReader *r, void *out, size_t n)
{
	size_t		k = n < r->left ? n : r->left;

	memset(out, 0, n);
	memcpy(out, r->p, k);
	r->p += k;
	r->left -= k;
}

/* Next unsigned integer of n (1, 2, 4 or 8) bytes, little endian. */
static inline uint64_t
fz_uint(FzReader *r, size_t n)
{
	uint8_t		b[8];
	uint64_t	v = 0;

	fz_bytes(r, b, n);
	while (n-- > 0)
		v = (v << 8) | b[n];
	return v;
}

/* A double: a raw 8-byte pattern (NaN, inf, huge) when the selector's low bit is set, else k * step. */
static inline double
fz_double(FzReader *r, double step)
{
	double		d;

	if (fz_uint(r, 1) & 1)
	{
		fz_bytes(r, &d, sizeof(d));
		return d;
	}
	return (double) (int32_t) fz_uint(r, 4) * step;
}

/* A NUL-terminated copy of the next field of the input, up to sep or the end (malloc'd via the arena). */
static inline char *
fz_field(FzReader *r, uint8_t sep)
{
	const uint8_t *end = memchr(r->p, sep, r->left);
	size_t		n = end ? (size_t) (end - r->p) : r->left;
	char	   *s = fz_alloc(n + 1);

	memcpy(s, r->p, n);
	s[n] = '\0';
	r->p += end ? n + 1 : n;
	r->left -= end ? n + 1 : n;
	return s;
}

#endif
