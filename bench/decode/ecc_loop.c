/*
 * The raw ecCodes peer of gik.decode: for each message of a list, codes_handle_new_from_message
 * on bytes already in memory, codes_get_size + codes_get_double_array of "values", delete. No
 * fetch, no orientation, no output array. Files are read into memory before timing.
 *
 * glibc gives big freed blocks back to the kernel (heap trim, mmap), and ecCodes allocates and
 * clears tens of megabytes per 0.25-degree complex-packed field, so a short process pays page
 * faults on every decode (about ten times the decode itself). A long-lived backend keeps that
 * memory, so by default this loop does too (mallopt below): that is the fastest raw ecCodes.
 * Set ECC_LOOP_GLIBC_DEFAULTS=1 to measure with glibc's defaults instead.
 *
 * Usage: ecc_loop LIST REPS   (LIST: lines "path<TAB>offset<TAB>length")
 * Prints one JSON object: messages, best pass in ms, ms per message, CPU ms per message, checksum.
 * Build: gcc -O2 -o ecc_loop ecc_loop.c $(pkg-config --cflags --libs eccodes)
 */
#include <eccodes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct Msg
{
	const unsigned char *bytes;
	size_t		len;
} Msg;

typedef struct File
{
	char		path[4096];
	unsigned char *data;
	size_t		size;
} File;

/* Milliseconds on a clock. */
static double
ms(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The whole file, read once (cached by path: the list repeats files). */
static File *
load(File *files, int *nfiles, const char *path)
{
	FILE	   *f;

	for (int i = 0; i < *nfiles; i++)
		if (strcmp(files[i].path, path) == 0)
			return &files[i];
	f = fopen(path, "rb");
	if (!f)
	{
		perror(path);
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	files[*nfiles].size = (size_t) ftell(f);
	fseek(f, 0, SEEK_SET);
	files[*nfiles].data = malloc(files[*nfiles].size);
	if (fread(files[*nfiles].data, 1, files[*nfiles].size, f) != files[*nfiles].size)
	{
		perror(path);
		exit(1);
	}
	fclose(f);
	snprintf(files[*nfiles].path, sizeof(files[*nfiles].path), "%s", path);
	return &files[(*nfiles)++];
}

int
main(int argc, char **argv)
{
	FILE	   *list;
	char		path[4096];
	long long	off,
				len;
	int			reps = argc > 2 ? atoi(argv[2]) : 3;
	int			nmsgs = 0,
				nfiles = 0;
	Msg		   *msgs = calloc(100000, sizeof(Msg));
	File	   *files = calloc(10000, sizeof(File));
	double		best = 1e300,
				best_cpu = 1e300,
				checksum = 0;

	if (!getenv("ECC_LOOP_GLIBC_DEFAULTS"))
	{
		mallopt(M_MMAP_THRESHOLD, 256 * 1024 * 1024);
		mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
	}
	if (argc < 2 || !(list = fopen(argv[1], "r")))
	{
		fprintf(stderr, "usage: ecc_loop LIST [REPS]\n");
		return 2;
	}
	while (fscanf(list, "%4095s\t%lld\t%lld", path, &off, &len) == 3)
	{
		File	   *f = load(files, &nfiles, path);

		msgs[nmsgs].bytes = f->data + off;
		msgs[nmsgs].len = (size_t) len;
		nmsgs++;
	}
	fclose(list);

	for (int r = 0; r < reps; r++)
	{
		double		t0 = ms(CLOCK_MONOTONIC),
					c0 = ms(CLOCK_PROCESS_CPUTIME_ID),
					t,
					c;

		for (int i = 0; i < nmsgs; i++)
		{
			codes_handle *h = codes_handle_new_from_message(NULL, msgs[i].bytes, msgs[i].len);
			size_t		n = 0;
			double	   *v;

			if (!h || codes_get_size(h, "values", &n) != 0)
			{
				fprintf(stderr, "message %d: ecCodes failed\n", i);
				return 1;
			}
			v = malloc(sizeof(double) * n);
			if (codes_get_double_array(h, "values", v, &n) != 0)
			{
				fprintf(stderr, "message %d: ecCodes failed to decode\n", i);
				return 1;
			}
			checksum += v[n / 2];
			free(v);
			codes_handle_delete(h);
		}
		t = ms(CLOCK_MONOTONIC) - t0;
		c = ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
		if (t < best)
			best = t;
		if (c < best_cpu)
			best_cpu = c;
	}
	printf("{\"messages\": %d, \"best_ms\": %.3f, \"ms_per_msg\": %.4f, \"cpu_ms_per_msg\": %.4f, \"checksum\": %.6g}\n",
		   nmsgs, best, best / nmsgs, best_cpu / nmsgs, checksum);
	return 0;
}
