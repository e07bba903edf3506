/*
 * Time gik_idx_parse on a large .idx file and print lines per second.
 *
 * Two figures, each the best of RUNS:
 *  - warm: the output memory is kept between runs and handed out again (as a
 *    reused heap or memory context would), so it times the parser itself
 *    (the first run sizes the arena);
 *  - cold: a fresh malloc per run, freed after it, so each run also pays the
 *    kernel's page faults for the output array (about 128 bytes per line).
 */
#include "core/idx.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* A bump arena that keeps its block between runs. */
typedef struct Arena
{
	char	   *base;
	size_t		size;
	size_t		used;
} Arena;

static Arena arena;
static void *cold_blocks[64];
static int	cold_nblocks = 0;

/* Stop on allocation failure. */
static void
out_of_memory(void)
{
	fprintf(stderr, "parse_idx_c: out of memory\n");
	exit(2);
}

/* Cold allocator: plain malloc, remembered so the run can free it afterwards. */
static void *
cold_alloc(size_t size)
{
	void	   *p = malloc(size);

	if (p == NULL || cold_nblocks == (int) (sizeof(cold_blocks) / sizeof(cold_blocks[0])))
		out_of_memory();
	cold_blocks[cold_nblocks++] = p;
	return p;
}

/* Free what the cold allocator handed out. */
static void
cold_free_all(void)
{
	while (cold_nblocks > 0)
		free(cold_blocks[--cold_nblocks]);
}

/* Bytes the warm arena could not hold in the last run (spilled to malloc). */
static size_t warm_spill = 0;

/* Warm allocator: bump-allocate from the retained block; what does not fit spills to malloc. */
static void *
warm_alloc(size_t size)
{
	size_t		need = (size + 15) & ~(size_t) 15;
	void	   *p;

	if (arena.used + need > arena.size)
	{
		warm_spill += need;
		return cold_alloc(size);
	}
	p = arena.base + arena.used;
	arena.used += need;
	return p;
}

/* After a warm run: grow the arena to hold everything the run asked for, so later runs fit. */
static void
warm_after_run(void)
{
	if (warm_spill > 0)
	{
		arena.size = arena.used + warm_spill;
		free(arena.base);
		arena.base = malloc(arena.size);
		if (arena.base == NULL)
			out_of_memory();
		warm_spill = 0;
	}
	cold_free_all();
}

/* Monotonic time in seconds. */
static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec * 1e-9;
}

/* Read a whole file into a malloc'd buffer; NULL on failure. */
static char *
read_all(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf = NULL;
	long		size;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
		(buf = malloc((size_t) size + 1)) != NULL)
	{
		if (fread(buf, 1, (size_t) size, f) == (size_t) size)
			*len = (size_t) size;
		else
		{
			free(buf);
			buf = NULL;
		}
	}
	fclose(f);
	return buf;
}

/* Best time of runs parses with the given allocator; exits on a parse error. */
static double
best_time(const char *buf, size_t len, int runs, GikAllocFn alloc, void (*after_run) (void), size_t *nlines)
{
	double		best = 1e30;
	int			r;

	for (r = 0; r < runs; r++)
	{
		GikIdxLine *lines;
		GikParseError err;
		double		t0 = now_seconds();
		double		elapsed;

		arena.used = 0;
		if (!gik_idx_parse(buf, len, -1, alloc, &lines, nlines, &err))
		{
			fprintf(stderr, "line %d: %s [%s]\n", (int) err.lineno, err.message, err.excerpt);
			exit(1);
		}
		elapsed = now_seconds() - t0;
		if (elapsed < best)
			best = elapsed;
		if (after_run)
			after_run();
	}
	return best;
}

/* Usage: parse_idx_c FILE.idx [RUNS]. */
int
main(int argc, char **argv)
{
	size_t		len = 0;
	size_t		nlines = 0;
	char	   *buf;
	int			runs = argc > 2 ? atoi(argv[2]) : 5;
	double		warm;
	double		cold;

	if (argc < 2 || runs < 1 || (buf = read_all(argv[1], &len)) == NULL)
	{
		fprintf(stderr, "usage: parse_idx_c FILE.idx [RUNS]\n");
		return 2;
	}
	warm = best_time(buf, len, runs + 1, warm_alloc, warm_after_run, &nlines);	/* +1: first run sizes the arena */
	cold = best_time(buf, len, runs, cold_alloc, cold_free_all, &nlines);
	printf("gik_idx_parse: %zu lines, %.1f MB, sizeof(GikIdxLine) = %zu\n",
		   nlines, (double) len / 1e6, sizeof(GikIdxLine));
	printf("gik_idx_parse warm (output memory reused), best of %d: %.4f s, %.2f M lines/s\n",
		   runs, warm, (double) nlines / warm / 1e6);
	printf("gik_idx_parse cold (fresh malloc per run), best of %d: %.4f s, %.2f M lines/s\n",
		   runs, cold, (double) nlines / cold / 1e6);
	free(arena.base);
	free(buf);
	return 0;
}
