/*
 * Structural checks of one GRIB message from its bytes, before ecCodes reads it.
 *
 * GRIB2: section 0 is 16 octets; then sections 1-7 follow, each opening with a 4-octet
 * length and a 1-octet number; sections 2-7 (or 3-7, 4-7) repeat for further fields.
 * GRIB1: section 0 is 8 octets; then the PDS, the GDS and BMS when the PDS flags them
 * (octet 8), and the BDS, each opening with a 3-octet length.
 * Octets in comments are numbered from 1 as in the WMO tables; offsets in code from 0.
 */
#include "core/grib_sanity.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "core/grib_frame.h"

#define MISSING_U32 0xFFFFFFFFu
#define MISSING_U16 0xFFFFu
#define TRAILER 4

typedef unsigned long long ull;	/* for printf */

/* Big-endian unsigned integer of n octets (n <= 8). */
static uint64_t
read_be(const unsigned char *p, int n)
{
	uint64_t	v = 0;

	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Unsigned integer of nbits (<= 32) bits at bit offset pos of p, most significant bit first. */
static uint64_t
read_bits(const unsigned char *p, uint64_t pos, int nbits)
{
	uint64_t	v = 0;
	uint64_t	last;

	if (nbits == 0)
		return 0;
	last = pos + (uint64_t) nbits - 1;
	for (uint64_t b = pos >> 3; b <= last >> 3; b++)
		v = (v << 8) | p[b];
	v >>= 7 - (last & 7);
	return v & ((UINT64_C(1) << nbits) - 1);
}

/* Set bits among the first nbits bits of a bitmap. */
static uint64_t
count_set_bits(const unsigned char *bits, uint64_t nbits)
{
	uint64_t	n = 0;

	for (uint64_t i = 0; i < nbits / 8; i++)
		n += (uint64_t) __builtin_popcount(bits[i]);
	if (nbits % 8)
		n += (uint64_t) __builtin_popcount(bits[nbits / 8] >> (8 - nbits % 8));
	return n;
}

/* Octets holding count values of nbits bits each (count <= GIK_GRIB_MAX_POINTS, nbits <= 64). */
static uint64_t
packed_octets(uint64_t count, uint64_t nbits)
{
	return (count * nbits + 7) / 8;
}

/* Write a sentence to errbuf and return false. */
static bool __attribute__((format(printf, 3, 4)))
fail(char *errbuf, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
	return false;
}

/* A GRIB2 field as its sections 3, 5 and 6 describe it. */
typedef struct Field2
{
	bool		has_grid;
	uint64_t	points;			/* section 3: number of data points */
	const unsigned char *drs;	/* section 5, or NULL */
	uint64_t	drs_len;
	uint64_t	coded;			/* section 5: number of coded values */
	int			bitmap;			/* -1: no section 6 yet, 0: none, 1: bitmap */
	const unsigned char *bitmap_bits;
	uint64_t	bitmap_nbits;
} Field2;

/* Grid templates 3.0 (lat/lon) and 3.40 (Gaussian): 72 octets, then the optional list of row lengths. */
#define GRID_TEMPLATE_END 72

/* Section 3: number of data points, and Ni x Nj or the row lengths when the template has them. */
static bool
grib2_grid(const unsigned char *s, uint64_t slen, Field2 *f, char *errbuf, size_t errlen)
{
	uint64_t	template;
	int			list_octets;
	uint64_t	ni;
	uint64_t	nj;

	if (slen < 14)
		return fail(errbuf, errlen, "Its grid definition section is %llu octets long, too short for its header.", (ull) slen);
	f->has_grid = true;
	f->points = read_be(s + 6, 4);	/* octets 7-10 */
	list_octets = s[10];		/* octet 11 */
	template = read_be(s + 12, 2);	/* octets 13-14 */
	if (f->points > GIK_GRIB_MAX_POINTS)
		return fail(errbuf, errlen, "It declares %llu grid points, more than the %ld pg_gik accepts.",
					(ull) f->points, GIK_GRIB_MAX_POINTS);
	/* lat/lon, rotated, Mercator, polar stereographic, Lambert, Gaussian: Ni (Nx) at 31-34, Nj (Ny) at 35-38 */
	if (template != 0 && template != 1 && template != 10 && template != 20 && template != 30 && template != 40)
		return true;
	if (slen < 38)
		return fail(errbuf, errlen, "Its grid definition section is %llu octets long, too short for grid template 3.%llu.",
					(ull) slen, (ull) template);
	ni = read_be(s + 30, 4);
	nj = read_be(s + 34, 4);
	if (list_octets == 0)
	{
		if (ni == MISSING_U32 || nj == MISSING_U32 || ni * nj != f->points)
			return fail(errbuf, errlen, "Its grid of %llu x %llu points declares %llu data points.",
						(ull) ni, (ull) nj, (ull) f->points);
	}
	else if ((template == 0 || template == 40) && ni == MISSING_U32 && s[11] == 1)
	{
		/* reduced grid: one row length per parallel after the template */
		uint64_t	sum = 0;

		if (list_octets > 4 || nj > (slen - GRID_TEMPLATE_END) / (uint64_t) list_octets)
			return fail(errbuf, errlen, "Its list of %llu row lengths of %d octets does not fit in its grid definition section.",
						(ull) nj, list_octets);
		for (uint64_t j = 0; j < nj; j++)
			sum += read_be(s + GRID_TEMPLATE_END + j * list_octets, list_octets);
		if (sum != f->points)
			return fail(errbuf, errlen, "Its row lengths add up to %llu points but it declares %llu data points.",
						(ull) sum, (ull) f->points);
	}
	return true;
}

/* Section 6: a bitmap must hold a bit for every grid point. */
static bool
grib2_bitmap(const unsigned char *s, uint64_t slen, Field2 *f, char *errbuf, size_t errlen)
{
	int			indicator;

	if (slen < 6)
		return fail(errbuf, errlen, "Its bitmap section is %llu octets long, too short for its header.", (ull) slen);
	indicator = s[5];
	if (indicator == 255)
		f->bitmap = 0;
	else if (indicator == 254)
	{
		if (f->bitmap_bits == NULL)
			return fail(errbuf, errlen, "Its bitmap section refers to a previous bitmap that the message does not have.");
		f->bitmap = 1;
	}
	else if (indicator == 0)
	{
		f->bitmap = 1;
		f->bitmap_bits = s + 6;
		f->bitmap_nbits = (slen - 6) * 8;
	}
	else
		return fail(errbuf, errlen, "Its bitmap section uses predefined bitmap %d, which pg_gik does not read.", indicator);
	return true;
}

/*
 * Complex packing (templates 5.2 and 5.3): after the spatial differencing descriptors (5.3),
 * section 7 holds the groups' reference values, widths and lengths, each padded to an octet,
 * then the packed values. The group lengths must add up to the coded values and everything
 * must fit in the section.
 */
static bool
grib2_complex(const unsigned char *drs, uint64_t drs_len, int template, uint64_t coded,
			  const unsigned char *data, uint64_t data_len, char *errbuf, size_t errlen)
{
	int			bits = drs[19];	/* octet 20 */
	uint64_t	groups = read_be(drs + 31, 4);	/* octets 32-35 */
	int			width_ref = drs[35];
	int			width_bits = drs[36];
	uint64_t	length_ref = read_be(drs + 37, 4);
	int			length_incr = drs[41];
	uint64_t	last_length = read_be(drs + 42, 4);
	int			length_bits = drs[46];
	uint64_t	pos = 0;
	uint64_t	width_pos;
	uint64_t	length_pos;
	uint64_t	values = 0;
	uint64_t	value_bits = 0;

	if (bits > 64 || width_bits > 32 || length_bits > 32)
		return fail(errbuf, errlen, "Its complex packing uses %d-bit values, %d-bit group widths and %d-bit group lengths; at most 64, 32 and 32 are possible.",
					bits, width_bits, length_bits);
	if (groups > coded || (groups == 0 && coded > 0 && bits > 0))
		return fail(errbuf, errlen, "Its complex packing splits %llu values into %llu groups.", (ull) coded, (ull) groups);
	if (template == 3)
	{
		int			order = drs[47];	/* octet 48 */
		int			octets = drs[48];	/* octet 49 */

		/* order 0: no differencing and no descriptors */
		if (order > 2 || (order > 0 && (octets < 1 || octets > 8)))
			return fail(errbuf, errlen, "Its spatial differencing of order %d with %d-octet descriptors is not valid.", order, octets);
		if (order > 0)
			pos = (uint64_t) octets * (uint64_t) (order + 1);
	}
	pos += packed_octets(groups, (uint64_t) bits);	/* group reference values */
	width_pos = pos;
	pos += packed_octets(groups, (uint64_t) width_bits);
	length_pos = pos;
	pos += packed_octets(groups, (uint64_t) length_bits);
	if (pos > data_len)
		return fail(errbuf, errlen, "Its data section holds %llu octets, fewer than the %llu that describe its %llu groups.",
					(ull) data_len, (ull) pos, (ull) groups);
	for (uint64_t g = 0; g < groups; g++)
	{
		uint64_t	width = (uint64_t) width_ref + read_bits(data + width_pos, g * width_bits, width_bits);
		uint64_t	length = g + 1 == groups ? last_length :
			length_ref + (uint64_t) length_incr * read_bits(data + length_pos, g * length_bits, length_bits);

		if (width > 64)
			return fail(errbuf, errlen, "Its complex packing has a group of %llu-bit values.", (ull) width);
		values += length;
		if (values > coded)
			break;
		value_bits += width * length;
	}
	if (values != coded)
		return fail(errbuf, errlen, "Its %llu groups hold %s%llu values but it codes %llu.",
					(ull) groups, values > coded ? "more than " : "", (ull) values, (ull) coded);
	if (pos + (value_bits + 7) / 8 > data_len)
		return fail(errbuf, errlen, "Its data section holds %llu octets, fewer than the %llu its groups need.",
					(ull) data_len, (ull) (pos + (value_bits + 7) / 8));
	(void) drs_len;
	return true;
}

/* Section 7 against the field's sections 3, 5 and 6: counts agree and the packing fits. */
static bool
grib2_field(const Field2 *f, const unsigned char *data, uint64_t data_len, char *errbuf, size_t errlen)
{
	uint64_t	expected;
	int			template;
	int			bits;

	if (!f->has_grid || f->drs == NULL || f->bitmap < 0)
		return fail(errbuf, errlen, "Its data section is not preceded by grid definition, data representation and bitmap sections.");
	if (f->bitmap)
	{
		if (f->bitmap_nbits < f->points)
			return fail(errbuf, errlen, "Its bitmap holds %llu bits for %llu grid points.",
						(ull) f->bitmap_nbits, (ull) f->points);
		expected = count_set_bits(f->bitmap_bits, f->points);
		if (f->coded != expected)
			return fail(errbuf, errlen, "Its bitmap and its data representation section disagree: the bitmap marks %llu points present, section 5 codes %llu values.",
						(ull) expected, (ull) f->coded);
	}
	else if (f->coded != f->points)
		return fail(errbuf, errlen, "Its grid and its data representation section disagree: the grid has %llu points, section 5 codes %llu values.",
					(ull) f->points, (ull) f->coded);

	template = (int) read_be(f->drs + 9, 2);	/* octets 10-11 */
	switch (template)
	{
		case 0:					/* simple packing */
		case 2:					/* complex packing */
		case 3:					/* complex packing and spatial differencing */
		case 40:				/* JPEG 2000 */
		case 41:				/* PNG */
		case 42:				/* CCSDS */
			if (f->drs_len < (template == 3 ? 49u : template == 2 ? 47u : template == 42 ? 25u : 21u))
				return fail(errbuf, errlen, "Its data representation section is %llu octets long, too short for template 5.%d.",
							(ull) f->drs_len, template);
			bits = f->drs[19];	/* octet 20 */
			if (bits > 64)
				return fail(errbuf, errlen, "It packs values in %d bits; at most 64 are possible.", bits);
			break;
		case 4:					/* IEEE floats: 1 single, 2 double precision */
			if (f->drs_len < 12 || (f->drs[11] != 1 && f->drs[11] != 2))
				return fail(errbuf, errlen, "Its IEEE packing does not give a precision of 32 or 64 bits.");
			if (f->coded * (f->drs[11] == 1 ? 4 : 8) > data_len)
				return fail(errbuf, errlen, "Its data section holds %llu octets, fewer than its %llu IEEE values need.",
							(ull) data_len, (ull) f->coded);
			return true;
		default:
			return true;
	}
	if (template == 0 && packed_octets(f->coded, (uint64_t) bits) > data_len)
		return fail(errbuf, errlen, "Its data section holds %llu octets, fewer than the %llu its %llu values of %d bits need.",
					(ull) data_len, (ull) packed_octets(f->coded, (uint64_t) bits), (ull) f->coded, bits);
	if ((template == 40 || template == 41) && bits > 0 && f->coded > 0 && data_len < 12)
		return fail(errbuf, errlen, "Its data section holds %llu octets, too few for a %s stream.",
					(ull) data_len, template == 40 ? "JPEG 2000" : "PNG");
	if (template == 2 || template == 3)
		return grib2_complex(f->drs, f->drs_len, template, f->coded, data, data_len, errbuf, errlen);
	if (template == 42 && bits > 0)
	{
		int			block = f->drs[22];	/* octet 23 */
		uint64_t	interval = read_be(f->drs + 23, 2);	/* octets 24-25 */

		if (bits > 32 || (block != 8 && block != 16 && block != 32 && block != 64) || interval < 1 || interval > 4096)
			return fail(errbuf, errlen, "Its CCSDS parameters (%d-bit values, block size %d, reference sample interval %llu) are not valid.",
						bits, block, (ull) interval);
	}
	return true;
}

/*
 * GRIB2 section 4: the product template and the NV vertical coordinates after it fit in the
 * section. Fixed sizes of the templates ensembles use (4.0-4.2, and 4.8, 4.11, 4.12 with their
 * n time ranges); other templates must at least leave room for the coordinates.
 */
static bool
grib2_product(const unsigned char *s, uint64_t slen, char *errbuf, size_t errlen)
{
	uint64_t	nv;
	int			template;
	uint64_t	need;
	int			n_octet = 0;	/* 0-based position of n, the number of time ranges */

	if (slen < 9)
		return fail(errbuf, errlen, "Its product definition section is %llu octets long, too short for its header.", (ull) slen);
	nv = read_be(s + 5, 2);		/* octets 6-7 */
	template = (int) read_be(s + 7, 2);	/* octets 8-9 */
	switch (template)
	{
		case 0:
			need = 34;
			break;
		case 1:
			need = 37;
			break;
		case 2:
			need = 36;
			break;
		case 8:
			need = 58, n_octet = 41;
			break;
		case 11:
			need = 61, n_octet = 44;
			break;
		case 12:
			need = 60, n_octet = 43;
			break;
		default:
			need = 9;
	}
	if (n_octet > 0 && slen > (uint64_t) n_octet)
	{
		if (s[n_octet] == 0)
			return fail(errbuf, errlen, "Its product template 4.%d gives no time range.", template);
		need += 12 * (uint64_t) (s[n_octet] - 1);
	}
	if (need + 4 * nv > slen)
		return fail(errbuf, errlen, "Its product definition section is %llu octets long, too short for template 4.%d and %llu vertical coordinates.",
					(ull) slen, template, (ull) nv);
	return true;
}

/* Walk a GRIB2 message's sections and check each field. */
static bool
grib2_sane(const unsigned char *msg, size_t len, char *errbuf, size_t errlen)
{
	uint64_t	end = len - TRAILER;
	uint64_t	pos = 16;
	Field2		f = {.bitmap = -1};
	int			fields = 0;

	while (pos < end)
	{
		const unsigned char *s = msg + pos;
		uint64_t	slen;
		int			number;

		if (end - pos < 5)
			return fail(errbuf, errlen, "A section header at octet %llu runs into the end of the message.", (ull) pos + 1);
		slen = read_be(s, 4);
		number = s[4];
		if (slen < 5 || slen > end - pos)
			return fail(errbuf, errlen, "Section %d at octet %llu is %llu octets long, past the end of the message.",
						number, (ull) pos + 1, (ull) slen);
		switch (number)
		{
			case 1:
			case 2:
				break;
			case 3:
				if (!grib2_grid(s, slen, &f, errbuf, errlen))
					return false;
				break;
			case 4:
				if (!grib2_product(s, slen, errbuf, errlen))
					return false;
				break;
			case 5:
				if (slen < 11)
					return fail(errbuf, errlen, "Its data representation section is %llu octets long, too short for its header.", (ull) slen);
				f.drs = s;
				f.drs_len = slen;
				f.coded = read_be(s + 5, 4);	/* octets 6-9 */
				if (f.coded > GIK_GRIB_MAX_POINTS)
					return fail(errbuf, errlen, "It declares %llu coded values, more than the %ld pg_gik accepts.",
								(ull) f.coded, GIK_GRIB_MAX_POINTS);
				break;
			case 6:
				if (!grib2_bitmap(s, slen, &f, errbuf, errlen))
					return false;
				break;
			case 7:
				if (!grib2_field(&f, s + 5, slen - 5, errbuf, errlen))
					return false;
				fields++;
				f.drs = NULL;
				f.bitmap = -1;
				break;
			default:
				return fail(errbuf, errlen, "It has a section numbered %d at octet %llu.", number, (ull) pos + 1);
		}
		pos += slen;
	}
	if (fields == 0)
		return fail(errbuf, errlen, "It has no data section.");
	return true;
}

/*
 * GRIB1: PDS, GDS and BMS lengths; grid points of the common grid types; a bitmap covers the
 * grid; simple packing has room for its values; second-order packing's offsets lie in the BDS.
 */
static bool
grib1_sane(const unsigned char *msg, size_t len, bool *unsupported, char *errbuf, size_t errlen)
{
	uint64_t	end = len - TRAILER;
	uint64_t	pos = 8;
	uint64_t	slen;
	uint64_t	points = 0;
	bool		points_known = false;
	bool		has_bitmap = false;
	uint64_t	present = 0;
	int			flags;
	int			bds_flags;
	int			bits;

	if (end - pos < 8 || (slen = read_be(msg + pos, 3)) < 28 || slen > end - pos)
		return fail(errbuf, errlen, "Its product definition section does not fit in the message.");
	flags = msg[pos + 7];		/* octet 8: GDS 0x80, BMS 0x40, the other bits reserved */
	if (flags & 0x3F)
		return fail(errbuf, errlen, "Its product definition section sets reserved flag bits (0x%02x).", flags);
	pos += slen;
	if (flags & 0x80)
	{
		const unsigned char *s = msg + pos;
		int			type;
		uint64_t	ni;
		uint64_t	nj;

		if (end - pos < 3 || (slen = read_be(s, 3)) < 32 || slen > end - pos)
			return fail(errbuf, errlen, "Its grid description section does not fit in the message.");
		type = s[5];			/* octet 6: data representation type */
		ni = read_be(s + 6, 2);
		nj = read_be(s + 8, 2);
		/* lat/lon, Mercator, Lambert, Gaussian, polar stereographic, rotated lat/lon and Gaussian */
		if (type == 0 || type == 1 || type == 3 || type == 4 || type == 5 || type == 10 || type == 14)
		{
			if (ni != MISSING_U16 && nj != MISSING_U16)
			{
				points = ni * nj;
				points_known = true;
			}
			else if (ni == MISSING_U16 && nj != MISSING_U16 && (type == 0 || type == 4) && s[4] != 255 && s[4] > 0)
			{
				/* reduced grid: row lengths after the vertical coordinates (octet 5 is 1-based) */
				uint64_t	list = (uint64_t) (s[4] - 1) + 4 * (uint64_t) s[3];

				if (list + 2 * nj > slen)
					return fail(errbuf, errlen, "Its list of %llu row lengths does not fit in its grid description section.", (ull) nj);
				for (uint64_t j = 0; j < nj; j++)
					points += read_be(s + list + 2 * j, 2);
				points_known = true;
			}
		}
		pos += slen;
	}
	if (flags & 0x40)
	{
		const unsigned char *s = msg + pos;
		uint64_t	nbits;

		if (end - pos < 6 || (slen = read_be(s, 3)) < 6 || slen > end - pos)
			return fail(errbuf, errlen, "Its bitmap section does not fit in the message.");
		if (read_be(s + 4, 2) != 0)
			return fail(errbuf, errlen, "Its bitmap section uses a predefined bitmap, which pg_gik does not read.");
		nbits = (slen - 6) * 8;
		nbits = nbits > s[3] ? nbits - s[3] : 0;	/* octet 4: unused bits at the end */
		if (points_known && nbits < points)
			return fail(errbuf, errlen, "Its bitmap holds %llu bits for %llu grid points.", (ull) nbits, (ull) points);
		has_bitmap = true;
		if (points_known)
			present = count_set_bits(s + 6, points);
		pos += slen;
	}
	if (points > GIK_GRIB_MAX_POINTS)
		return fail(errbuf, errlen, "It declares %llu grid points, more than the %ld pg_gik accepts.",
					(ull) points, GIK_GRIB_MAX_POINTS);
	if (end - pos < 11)
		return fail(errbuf, errlen, "Its binary data section does not fit in the message.");
	slen = read_be(msg + pos, 3);
	if ((msg[4] & 0x80) && slen < 120)
		slen = end - pos;		/* large message: the BDS runs to the trailer */
	if (slen < 11 || slen > end - pos)
		return fail(errbuf, errlen, "Its binary data section is %llu octets long, past the end of the message.", (ull) slen);
	bds_flags = msg[pos + 3];	/* octet 4: spherical harmonics 0x80, second order 0x40 */
	bits = msg[pos + 10];		/* octet 11 */
	if (bits > 64)
		return fail(errbuf, errlen, "It packs values in %d bits; at most 64 are possible.", bits);
	if (!(bds_flags & 0xC0) && points_known)
	{
		uint64_t	values = has_bitmap ? present : points;

		if (11 + packed_octets(values, (uint64_t) bits) > slen)
			return fail(errbuf, errlen, "Its binary data section holds %llu octets, fewer than the %llu its %llu values of %d bits need.",
						(ull) slen, (ull) (11 + packed_octets(values, (uint64_t) bits)), (ull) values, bits);
	}
	else if ((bds_flags & 0xC0) == 0x40)
	{
		/* ecCodes 2.28 reads past the message on corrupt second-order group data; pg_gik cannot check it all */
		*unsupported = true;
		return fail(errbuf, errlen, "It uses GRIB1 second-order packing, which pg_gik does not decode.");
	}
	return true;
}

/* Check one framed message; see grib_sanity.h. */
GikSanity
gik_grib_sane(const unsigned char *msg, size_t len, char *errbuf, size_t errlen)
{
	int			edition = 0;
	bool		unsupported = false;
	GikFrameStatus status = gik_grib_check(msg, len, NULL, &edition);

	if (status != GIK_FRAME_OK)
	{
		fail(errbuf, errlen, "%s", gik_frame_status_text(status));
		return GIK_SANE_CORRUPT;
	}
	if (edition == 2 ? grib2_sane(msg, len, errbuf, errlen) : grib1_sane(msg, len, &unsupported, errbuf, errlen))
		return GIK_SANE_OK;
	return unsupported ? GIK_SANE_UNSUPPORTED : GIK_SANE_CORRUPT;
}
