/* PostGIS raster well-known binary (RFC2) writer for float grids, always little endian. */
#include "core/raster_wkb.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Header: endianness, version, nBands, 6 float64 georeference values, SRID, width, height. */
#define WKB_HEADER_SIZE (1 + 2 + 2 + 6 * 8 + 4 + 2 + 2)

/* Band: pixtype/flags byte and a float32 nodata value, then the pixels. */
#define WKB_BAND_HEADER_SIZE (1 + 4)

#define WKB_NDR 1				/* little endian */
#define WKB_VERSION 0
#define PIXTYPE_32BF 10
#define BAND_HAS_NODATA 0x40

_Static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE 754 float32 and float64 expected");

/* Append an unsigned integer of nbytes bytes, least significant first. */
static unsigned char *
put_le(unsigned char *p, uint64_t v, int nbytes)
{
	int			i;

	for (i = 0; i < nbytes; i++)
		*p++ = (unsigned char) (v >> (8 * i));
	return p;
}

/* Append a float64 in little-endian byte order. */
static unsigned char *
put_f64(unsigned char *p, double v)
{
	uint64_t	bits;

	memcpy(&bits, &v, sizeof(bits));
	return put_le(p, bits, 8);
}

/* Append a float32 in little-endian byte order. */
static unsigned char *
put_f32(unsigned char *p, float v)
{
	uint32_t	bits;

	memcpy(&bits, &v, sizeof(bits));
	return put_le(p, bits, 4);
}

/* Append n float32 pixels in little-endian byte order: a plain copy on little-endian hosts. */
static unsigned char *
put_f32_array(unsigned char *p, const float *v, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(p, v, n * sizeof(float));
	return p + n * sizeof(float);
#else
	size_t		i;

	for (i = 0; i < n; i++)
		p = put_f32(p, v[i]);
	return p;
#endif
}

/* Bytes needed for a raster of nbands 32BF bands of ni x nj pixels. */
size_t
gik_raster_wkb_size(long ni, long nj, int nbands)
{
	return WKB_HEADER_SIZE + (size_t) nbands * (WKB_BAND_HEADER_SIZE + 4 * (size_t) ni * (size_t) nj);
}

/* Write an RFC2 raster of 32BF bands with nodata NaN; see raster_wkb.h. */
void
gik_raster_wkb_write(const GikOutGrid *grid, const float *values, int nbands,
					 int srid, unsigned char *out)
{
	size_t		npixels = (size_t) grid->ni * (size_t) grid->nj;
	unsigned char *p = out;
	int			b;

	*p++ = WKB_NDR;
	p = put_le(p, WKB_VERSION, 2);
	p = put_le(p, (uint64_t) nbands, 2);
	p = put_f64(p, grid->di);	/* scaleX */
	p = put_f64(p, -grid->dj);	/* scaleY: rows run south */
	/* ipX, ipY: west edge of the first column, north edge of the first row (projected: in metres) */
	p = put_f64(p, (gik_outgrid_projected(grid) ? grid->x_first : grid->lon_first) - grid->di / 2);
	p = put_f64(p, (gik_outgrid_projected(grid) ? grid->y_first : grid->lat_first) + grid->dj / 2);
	p = put_f64(p, 0.0);		/* skewX */
	p = put_f64(p, 0.0);		/* skewY */
	p = put_le(p, (uint32_t) srid, 4);
	p = put_le(p, (uint64_t) grid->ni, 2);
	p = put_le(p, (uint64_t) grid->nj, 2);

	for (b = 0; b < nbands; b++)
	{
		*p++ = PIXTYPE_32BF | BAND_HAS_NODATA;
		p = put_f32(p, NAN);
		p = put_f32_array(p, values + (size_t) b * npixels, npixels);
	}
}
