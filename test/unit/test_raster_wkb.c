/* Unit tests of the PostGIS raster WKB writer: exact bytes against what PostGIS itself writes. */
#include "core/raster_wkb.h"
#include "tap.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/*
 * A 3 x 2 raster with two 32BF bands (nodata NaN, one NaN pixel), upper-left corner
 * 9.875, 51.125, pixels 0.25 x -0.25, SRID 4326, as PostGIS 3 (postgresql-15-postgis-3)
 * writes it:
 *
 * SELECT encode(ST_AsBinary(r), 'hex') FROM (SELECT ST_SetValues(ST_SetValues(
 *   ST_AddBand(ST_AddBand(ST_MakeEmptyRaster(3, 2, 9.875, 51.125, 0.25, -0.25, 0, 0, 4326),
 *     1, '32BF', 0, 'NaN'::float8), 2, '32BF', 0, 'NaN'::float8),
 *   1, 1, 1, ARRAY[[1.5, 2.5, 3.5], [4.5, 5.5, 6.5]]::float8[]),
 *   2, 1, 1, ARRAY[[-1, 0.125, 1e6], [NULL, 7, -2.25]]::float8[]) AS r) s;
 */
static const char POSTGIS_3X2_2BANDS[] =
	"01" "0000" "0200"
	"000000000000d03f" "000000000000d0bf" "0000000000c02340" "0000000000904940"
	"0000000000000000" "0000000000000000" "e6100000" "0300" "0200"
	"4a" "0000c07f" "0000c03f" "00002040" "00006040" "00009040" "0000b040" "0000d040"
	"4a" "0000c07f" "000080bf" "0000003e" "00247449" "0000c07f" "0000e040" "000010c0";

/* Lower-case hex of n bytes into text (2n + 1 chars). */
static void
to_hex(const unsigned char *bytes, size_t n, char *text)
{
	size_t		i;

	for (i = 0; i < n; i++)
		sprintf(text + 2 * i, "%02x", bytes[i]);
	text[2 * n] = '\0';
}

/* The 3 x 2, 2-band raster is byte for byte what PostGIS writes. */
static void
test_matches_postgis(void)
{
	GikOutGrid	grid = {.ni = 3, .nj = 2, .lat_first = 51, .lat_last = 50.75, .lon_first = 10,
	.lon_last = 10.5, .di = 0.25, .dj = 0.25, .global_lon = false};
	float		values[12] = {1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f, -1, 0.125f, 1e6f, NAN, 7, -2.25f};
	size_t		size = gik_raster_wkb_size(3, 2, 2);
	unsigned char wkb[256];
	char		hex[2 * sizeof(wkb) + 1];

	tap_is_int((int64_t) size, 61 + 2 * (1 + 4 + 6 * 4), "size of a 3 x 2 raster with 2 bands");
	memset(wkb, 0xee, sizeof(wkb));
	gik_raster_wkb_write(&grid, values, 2, 4326, wkb);
	to_hex(wkb, size, hex);
	tap_is_text(hex, strlen(hex), POSTGIS_3X2_2BANDS, "3 x 2 raster, 2 bands, equals PostGIS's ST_AsBinary");
	tap_ok(wkb[size] == 0xee, "nothing is written past the size");
}

/* Header fields of a larger raster: corner half a cell north-west, negative y scale, SRID, sizes. */
static void
test_header(void)
{
	GikOutGrid	grid = {.ni = 129, .nj = 141, .lat_first = 23, .lat_last = -12, .lon_first = 21,
	.lon_last = 53, .di = 0.25, .dj = 0.25, .global_lon = true};
	size_t		size = gik_raster_wkb_size(129, 141, 1);
	float	   *values = test_alloc(sizeof(float) * 129 * 141);
	unsigned char *wkb = test_alloc(size);
	double		d[6];
	int32_t		srid;
	uint16_t	dims[2];
	float		nodata;
	float		last;
	size_t		k;

	for (k = 0; k < 129 * 141; k++)
		values[k] = (float) k;
	gik_raster_wkb_write(&grid, values, 1, 4326, wkb);
	/* the test host is little endian, so the fields can be read back with memcpy */
	memcpy(d, wkb + 5, sizeof(d));
	memcpy(&srid, wkb + 53, 4);
	memcpy(dims, wkb + 57, 4);
	memcpy(&nodata, wkb + 62, 4);
	memcpy(&last, wkb + size - 4, 4);
	tap_is_int((int64_t) size, 61 + 1 + 4 + 129 * 141 * 4, "size of a 129 x 141 raster with 1 band");
	tap_ok(wkb[0] == 1 && wkb[1] == 0 && wkb[2] == 0 && wkb[3] == 1 && wkb[4] == 0,
		   "little endian, version 0, 1 band");
	tap_ok(d[0] == 0.25 && d[1] == -0.25 && d[2] == 20.875 && d[3] == 23.125 && d[4] == 0 && d[5] == 0,
		   "scale 0.25 x -0.25, upper left 20.875, 23.125, no skew (got %g %g %g %g %g %g)",
		   d[0], d[1], d[2], d[3], d[4], d[5]);
	tap_ok(srid == 4326 && dims[0] == 129 && dims[1] == 141, "SRID 4326, 129 x 141");
	tap_ok(wkb[61] == 0x4a && isnan(nodata), "band is 32BF with nodata NaN");
	tap_ok(last == (float) (129 * 141 - 1), "last pixel is the last value");
}

/* A raster without bands is just the header. */
static void
test_no_band(void)
{
	GikOutGrid	grid = {.ni = 1, .nj = 1, .lat_first = 0, .lat_last = 0, .lon_first = 0,
	.lon_last = 0, .di = 1, .dj = 1, .global_lon = false};
	unsigned char wkb[61];

	tap_is_int((int64_t) gik_raster_wkb_size(1, 1, 0), 61, "a raster without bands is 61 bytes");
	gik_raster_wkb_write(&grid, NULL, 0, 0, wkb);
	tap_ok(wkb[3] == 0 && wkb[4] == 0 && wkb[57] == 1 && wkb[59] == 1, "0 bands, 1 x 1");
}

int
main(void)
{
	test_matches_postgis();
	test_header();
	test_no_band();
	return tap_done();
}
