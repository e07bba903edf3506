/*
 * Decode wrapper: each input is framed as one GRIB message (fuzz_grib.h), accepted by
 * gik_grib_check as the backend requires, then decoded with gik_decode_message, the decoder
 * program's own call, into a buffer of the size the message declares. GRIB2's
 * reserved octets 5-6 choose the longitude convention and a box. Invariants: a decode
 * either fails with a sentence or returns the values its output grid describes; it never writes
 * more values than it was given room for (it asks for more instead, at most GIK_GRIB_MAX_POINTS),
 * and a message gik_grib_sane refuses is not decoded.
 */
#include <stdlib.h>

#include "decoder/decode.h"
#include "fuzz_grib.h"

static const GikBox boxes[] = {
	{21, -12, 53, 23}, {-10, 30, 40, 70}, {170, -10, -170, 10}, {-1, -1, 1, 1},
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FzGrib		g;
	GikDecodeOptions opts = {GIK_LON_SOURCE, false, {0}};
	GikDecoded	dec;
	GikGribShape shape;
	GikSanity	sane;
	char		errbuf[512] = "";
	char		sane_err[512] = "";

	if (!fz_grib_frame(data, size, &g))
		return 0;
	opts.lon = (GikLonConvention) (g.octet5 % 3);
	opts.has_box = g.octet6 & 1;
	opts.box = boxes[(g.octet6 >> 1) % 4];
	sane = gik_grib_sane(g.msg, g.size, &shape, sane_err, sizeof(sane_err));
	FZ_CHECK(sane == GIK_SANE_OK ? shape.edition == g.msg[7] : (sane_err[0] != '\0' && shape.points == 0));
	{
		/* as the backend does: room for the declared points, or ask the decoder when it is not known */
		size_t		capacity = shape.points > 0 ? (size_t) shape.points : 1;
		float	   *values = malloc(sizeof(float) * capacity);
		GikDecodeStatus st = gik_decode_message(g.msg, g.size, &opts, &dec, values, capacity, errbuf, sizeof(errbuf));

		if (st == GIK_DECODE_NEED_SPACE)
		{
			/* the declared size is an estimate for the grids pg_gik knows; the backend bounds the announced one */
			FZ_CHECK(dec.nvalues > capacity && dec.nvalues <= (size_t) GIK_GRIB_MAX_POINTS);
			capacity = dec.nvalues;
			free(values);
			values = malloc(sizeof(float) * capacity);
			st = gik_decode_message(g.msg, g.size, &opts, &dec, values, capacity, errbuf, sizeof(errbuf));
		}
		if (st == GIK_DECODE_OK)
		{
			FZ_CHECK(sane == GIK_SANE_OK);
			FZ_CHECK(dec.nvalues <= capacity);
			if (dec.regular)
				FZ_CHECK(dec.nvalues == (size_t) dec.out.ni * (size_t) dec.out.nj && dec.out.ni > 0 && dec.out.nj > 0);
			else
				FZ_CHECK(!opts.has_box && opts.lon == GIK_LON_SOURCE);
		}
		else
			FZ_CHECK(errbuf[0] != '\0');
		free(values);
	}
	fz_grib_free(&g);
	return 0;
}
