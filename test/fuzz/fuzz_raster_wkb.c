/*
 * Raster WKB writer: gik_raster_wkb_write from a fuzzed GikOutGrid, band count, SRID and
 * pixels, into a buffer of exactly gik_raster_wkb_size bytes (ASan catches any write past
 * it). The output is read back as RFC2: header fields, then each band's pixtype, nodata
 * and pixels, ending exactly at the computed size.
 */
#include "core/raster_wkb.h"
#include "fuzz_util.h"

#include <math.h>

#define MAX_PIXELS ((size_t) 1 << 14)	/* per band: keeps an input fast; width or height may still be 65535 */

/* Read a little-endian unsigned integer of n bytes at *p and advance. */
static uint64_t
get_le(const unsigned char **p, int n)
{
	uint64_t	v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | (*p)[i];
	*p += n;
	return v;
}

/* Read a float64 and compare with the expected value bit for bit (any NaN matches a NaN). */
static int
same_f64(const unsigned char **p, double expected)
{
	uint64_t	bits = get_le(p, 8);
	double		got;

	memcpy(&got, &bits, 8);
	return memcmp(&got, &expected, 8) == 0 || (isnan(got) && isnan(expected));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FzReader	r = {data, size};
	GikOutGrid	g = {0};
	int			nbands = (int) (fz_uint(&r, 1) % 5);
	int			srid = (int) fz_uint(&r, 4);
	size_t		npix;
	size_t		nvals;
	size_t		wkb_size;
	float	   *vals;
	unsigned char *wkb;
	const unsigned char *p;

	g.ni = (long) (fz_uint(&r, 2) % (GIK_RASTER_MAX_DIM + 1));
	g.nj = (long) (fz_uint(&r, 2) % (GIK_RASTER_MAX_DIM + 1));
	if ((size_t) g.ni * (size_t) g.nj > MAX_PIXELS)
		g.nj = (long) (MAX_PIXELS / (size_t) g.ni);
	g.di = fz_double(&r, 0.25);
	g.dj = fz_double(&r, 0.25);
	g.lon_first = fz_double(&r, 0.25);
	g.lat_first = fz_double(&r, 0.25);
	npix = (size_t) g.ni * (size_t) g.nj;
	nvals = npix * (size_t) nbands;
	vals = malloc(sizeof(float) * (nvals ? nvals : 1));
	fz_bytes(&r, vals, sizeof(float) * nvals);

	wkb_size = gik_raster_wkb_size(g.ni, g.nj, nbands);
	FZ_CHECK(wkb_size == 61 + (size_t) nbands * (5 + 4 * npix));
	wkb = malloc(wkb_size);
	gik_raster_wkb_write(&g, vals, nbands, srid, wkb);

	p = wkb;
	FZ_CHECK(get_le(&p, 1) == 1 && get_le(&p, 2) == 0 && get_le(&p, 2) == (uint64_t) nbands);
	FZ_CHECK(same_f64(&p, g.di) && same_f64(&p, -g.dj));
	FZ_CHECK(same_f64(&p, g.lon_first - g.di / 2) && same_f64(&p, g.lat_first + g.dj / 2));
	FZ_CHECK(same_f64(&p, 0.0) && same_f64(&p, 0.0));
	FZ_CHECK(get_le(&p, 4) == (uint32_t) srid && get_le(&p, 2) == (uint64_t) g.ni &&
			 get_le(&p, 2) == (uint64_t) g.nj);
	for (int b = 0; b < nbands; b++)
	{
		uint32_t	nodata = (uint32_t) (get_le(&p, 1) == 0x4a ? get_le(&p, 4) : 0);
		float		f;

		memcpy(&f, &nodata, 4);
		FZ_CHECK(isnan(f));
		FZ_CHECK(memcmp(p, vals + (size_t) b * npix, 4 * npix) == 0);
		p += 4 * npix;
	}
	FZ_CHECK(p == wkb + wkb_size);
	free(wkb);
	free(vals);
	return 0;
}
