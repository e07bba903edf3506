/*
 * The decode floor: raw ecCodes time to decode a list of GRIB messages already in local files
 * (codes_handle_new_from_message + codes_get_double_array), one core, no fetching.
 * Input lines on stdin: PATH OFFSET LENGTH. Prints the total decode seconds and the count.
 */
#include <eccodes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Seconds on a monotonic clock. */
static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Decode every message listed on stdin and time only the ecCodes calls. */
int
main(void)
{
	char		path[4096];
	long long	off,
				len;
	double		total = 0;
	int			n = 0;

	while (scanf("%4095s %lld %lld", path, &off, &len) == 3)
	{
		FILE	   *f = fopen(path, "rb");
		unsigned char *buf = malloc((size_t) len);
		codes_handle *h;
		size_t		count = 0;
		double	   *values;
		double		t0;

		if (!f || !buf || fseeko(f, off, SEEK_SET) != 0 || fread(buf, 1, (size_t) len, f) != (size_t) len)
		{
			fprintf(stderr, "cannot read %s at %lld\n", path, off);
			return 1;
		}
		fclose(f);
		t0 = now();
		h = codes_handle_new_from_message(NULL, buf, (size_t) len);
		codes_get_size(h, "values", &count);
		values = malloc(count * sizeof(double));
		codes_get_double_array(h, "values", values, &count);
		codes_handle_delete(h);
		total += now() - t0;
		free(values);
		free(buf);
		n++;
	}
	printf("%.4f %d\n", total, n);
	return 0;
}
