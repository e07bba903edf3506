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
#include <stdio.h>

#include "core/grib_frame.h"
#include "core/octets.h"

#define MISSING_U32 0xFFFFFFFFu
#define MISSING_U16 0xFFFFu
#define TRAILER 4

typedef unsigned long long ull;	/* for printf */

/* True once a read of the message did not fit in its view (see octets.h). */
static bool
overran(const GikOctets *o)
{
	return *o->overrun;
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

/*
 * Values of a spherical harmonic field of truncation J, K, M: (J+1)(J+2) for the triangular
 * truncation ecCodes decodes, an upper bound for the others; more than GIK_GRIB_MAX_POINTS
 * (without overflow) when the largest parameter is absurd.
 */
static uint64_t
spectral_values(uint64_t j, uint64_t k, uint64_t m)
{
	uint64_t	t = j > k ? j : k;

	t = t > m ? t : m;
	return t > 100000 ? (uint64_t) GIK_GRIB_MAX_POINTS + 1 : (t + 1) * (t + 2);
}

/* A GRIB2 field as its sections 3, 5 and 6 describe it. */
typedef struct Field2
{
	bool		has_grid;
	uint64_t	points;			/* section 3: number of data points */
	uint64_t	spectral;		/* section 3, spherical harmonic grids: values by truncation, else 0 */
	bool		has_drs;
	GikOctets	drs;			/* section 5 */
	uint64_t	coded;			/* section 5: number of coded values */
	int			bitmap;			/* -1: no section 6 yet, 0: none, 1: bitmap */
	bool		has_bitmap_bits;
	GikOctets	bitmap_bits;	/* octets after the header of the last bitmap defined */
	uint64_t	bitmap_nbits;
} Field2;

/* Octets of grid templates 3.0, 3.1, 3.10, 3.20, 3.30 and 3.40, before the optional list of row lengths. */
static uint64_t
grid_template_octets(uint64_t template)
{
	switch (template)
	{
		case 0:
		case 10:
		case 40:
			return 72;
		case 1:
			return 84;
		case 20:
			return 65;
		case 30:
			return 81;
		default:
			return 0;
	}
}

/* Section 3: number of data points, and Ni x Nj or the row lengths when the template has them. */
static bool
grib2_grid(const GikOctets *s, Field2 *f, char *errbuf, size_t errlen)
{
	uint64_t	template;
	uint64_t	template_end;
	unsigned	list_octets;
	uint64_t	ni;
	uint64_t	nj;

	f->points = gik_octets_be(s, 6, 4);	/* octets 7-10 */
	list_octets = gik_octets_u8(s, 10);	/* octet 11 */
	template = gik_octets_be(s, 12, 2);	/* octets 13-14 */
	if (overran(s))
		return fail(errbuf, errlen, "Its grid definition section is %llu octets long, too short for its header.", (ull) s->len);
	f->has_grid = true;
	f->spectral = 0;
	if (f->points > GIK_GRIB_MAX_POINTS)
		return fail(errbuf, errlen, "It declares %llu grid points, more than the %ld pg_gik accepts.",
					(ull) f->points, GIK_GRIB_MAX_POINTS);
	if (template >= 50 && template <= 53)
	{
		/* spherical harmonics: J, K, M at octets 15-18, 19-22, 23-26 */
		f->spectral = spectral_values(gik_octets_be(s, 14, 4), gik_octets_be(s, 18, 4), gik_octets_be(s, 22, 4));
		if (overran(s))
			return fail(errbuf, errlen, "Its grid definition section is %llu octets long, too short for grid template 3.%llu.",
						(ull) s->len, (ull) template);
		if (f->spectral > GIK_GRIB_MAX_POINTS)
			return fail(errbuf, errlen, "Its spherical harmonic truncation declares more than the %ld values pg_gik accepts.",
						GIK_GRIB_MAX_POINTS);
		return true;
	}
	/* lat/lon, rotated, Mercator, polar stereographic, Lambert, Gaussian: Ni (Nx) at 31-34, Nj (Ny) at 35-38 */
	template_end = grid_template_octets(template);
	if (template_end == 0)
		return true;
	if (s->len < template_end)
		return fail(errbuf, errlen, "Its grid definition section is %llu octets long, too short for grid template 3.%llu.",
					(ull) s->len, (ull) template);
	ni = gik_octets_be(s, 30, 4);
	nj = gik_octets_be(s, 34, 4);
	if (list_octets == 0)
	{
		if (ni == MISSING_U32 || nj == MISSING_U32 || ni * nj != f->points)
			return fail(errbuf, errlen, "Its grid of %llu x %llu points declares %llu data points.",
						(ull) ni, (ull) nj, (ull) f->points);
	}
	else if ((template == 0 || template == 40) && ni == MISSING_U32 && gik_octets_u8(s, 11) == 1)
	{
		/* reduced grid: one row length per parallel after the template */
		uint64_t	sum = 0;

		if (list_octets > 4 || !gik_octets_fits(s, template_end, nj * list_octets))
			return fail(errbuf, errlen, "Its list of %llu row lengths of %u octets does not fit in its grid definition section.",
						(ull) nj, list_octets);
		for (uint64_t j = 0; j < nj; j++)
			sum += gik_octets_be(s, template_end + j * list_octets, (int) list_octets);
		if (sum != f->points)
			return fail(errbuf, errlen, "Its row lengths add up to %llu points but it declares %llu data points.",
						(ull) sum, (ull) f->points);
	}
	if (overran(s))
		return fail(errbuf, errlen, "Its grid definition section is %llu octets long, too short for grid template 3.%llu.",
					(ull) s->len, (ull) template);
	return true;
}

/* Section 6: a bitmap must hold a bit for every grid point. */
static bool
grib2_bitmap(const GikOctets *s, Field2 *f, char *errbuf, size_t errlen)
{
	unsigned	indicator = gik_octets_u8(s, 5);

	if (overran(s))
		return fail(errbuf, errlen, "Its bitmap section is %llu octets long, too short for its header.", (ull) s->len);
	if (indicator == 255)
		f->bitmap = 0;
	else if (indicator == 254)
	{
		if (!f->has_bitmap_bits)
			return fail(errbuf, errlen, "Its bitmap section refers to a previous bitmap that the message does not have.");
		f->bitmap = 1;
	}
	else if (indicator == 0)
	{
		f->bitmap = 1;
		f->has_bitmap_bits = true;
		f->bitmap_bits = gik_octets_cut(s, 6, s->len - 6);
		f->bitmap_nbits = f->bitmap_bits.len * 8;
	}
	else
		return fail(errbuf, errlen, "Its bitmap section uses predefined bitmap %u, which pg_gik does not read.", indicator);
	return true;
}

/*
 * Complex packing (templates 5.2 and 5.3): after the spatial differencing descriptors (5.3),
 * section 7 holds the groups' reference values, widths and lengths, each padded to an octet,
 * then the packed values. The group lengths must add up to the coded values and everything
 * must fit in the section. drs holds at least 47 (5.2) or 49 (5.3) octets.
 */
static bool
grib2_complex(const GikOctets *drs, int template, uint64_t coded, const GikOctets *data,
			  char *errbuf, size_t errlen)
{
	unsigned	bits = gik_octets_u8(drs, 19);	/* octet 20 */
	uint64_t	groups = gik_octets_be(drs, 31, 4);	/* octets 32-35 */
	unsigned	width_ref = gik_octets_u8(drs, 35);
	unsigned	width_bits = gik_octets_u8(drs, 36);
	uint64_t	length_ref = gik_octets_be(drs, 37, 4);
	unsigned	length_incr = gik_octets_u8(drs, 41);
	uint64_t	last_length = gik_octets_be(drs, 42, 4);
	unsigned	length_bits = gik_octets_u8(drs, 46);
	uint64_t	pos = 0;
	uint64_t	width_pos;
	uint64_t	length_pos;
	uint64_t	values = 0;
	uint64_t	value_bits = 0;

	if (overran(drs))
		return fail(errbuf, errlen, "Its data representation section is %llu octets long, too short for template 5.%d.",
					(ull) drs->len, template);
	if (bits > 64 || width_bits > 32 || length_bits > 32)
		return fail(errbuf, errlen, "Its complex packing uses %u-bit values, %u-bit group widths and %u-bit group lengths; at most 64, 32 and 32 are possible.",
					bits, width_bits, length_bits);
	if (groups > coded || (groups == 0 && coded > 0 && bits > 0))
		return fail(errbuf, errlen, "Its complex packing splits %llu values into %llu groups.", (ull) coded, (ull) groups);
	if (template == 3)
	{
		unsigned	order = gik_octets_u8(drs, 47);	/* octet 48 */
		unsigned	octets = gik_octets_u8(drs, 48);	/* octet 49 */

		if (overran(drs))
			return fail(errbuf, errlen, "Its data representation section is %llu octets long, too short for template 5.%d.",
						(ull) drs->len, template);
		/* order 0: no differencing and no descriptors */
		if (order > 2 || (order > 0 && (octets < 1 || octets > 8)))
			return fail(errbuf, errlen, "Its spatial differencing of order %u with %u-octet descriptors is not valid.", order, octets);
		if (order > 0)
			pos = (uint64_t) octets * (uint64_t) (order + 1);
	}
	pos += packed_octets(groups, (uint64_t) bits);	/* group reference values */
	width_pos = pos;
	pos += packed_octets(groups, (uint64_t) width_bits);
	length_pos = pos;
	pos += packed_octets(groups, (uint64_t) length_bits);
	if (pos > data->len)
		return fail(errbuf, errlen, "Its data section holds %llu octets, fewer than the %llu that describe its %llu groups.",
					(ull) data->len, (ull) pos, (ull) groups);
	for (uint64_t g = 0; g < groups; g++)
	{
		uint64_t	width = (uint64_t) width_ref + gik_octets_bits(data, width_pos * 8 + g * width_bits, (int) width_bits);
		uint64_t	length = g + 1 == groups ? last_length :
			length_ref + (uint64_t) length_incr * gik_octets_bits(data, length_pos * 8 + g * length_bits, (int) length_bits);

		if (width > 64)
			return fail(errbuf, errlen, "Its complex packing has a group of %llu-bit values.", (ull) width);
		values += length;
		if (values > coded)
			break;
		value_bits += width * length;
	}
	if (overran(data))
		return fail(errbuf, errlen, "Its data section holds %llu octets, fewer than the %llu that describe its %llu groups.",
					(ull) data->len, (ull) pos, (ull) groups);
	if (values != coded)
		return fail(errbuf, errlen, "Its %llu groups hold %s%llu values but it codes %llu.",
					(ull) groups, values > coded ? "more than " : "", (ull) values, (ull) coded);
	if (pos + (value_bits + 7) / 8 > data->len)
		return fail(errbuf, errlen, "Its data section holds %llu octets, fewer than the %llu its groups need.",
					(ull) data->len, (ull) (pos + (value_bits + 7) / 8));
	return true;
}

/*
 * Section 7 against the field's sections 3, 5 and 6: counts agree and the packing fits.
 * *values receives an upper bound of the values ecCodes returns for the field, 0 when the
 * packing is one whose count pg_gik does not know.
 */
static bool
grib2_field(const Field2 *f, const GikOctets *data, bool deep, uint64_t *values, char *errbuf, size_t errlen)
{
	uint64_t	expected;
	int			template;
	unsigned	bits;

	*values = 0;
	if (!f->has_grid || !f->has_drs || f->bitmap < 0)
		return fail(errbuf, errlen, "Its data section is not preceded by grid definition, data representation and bitmap sections.");
	if (f->bitmap)
	{
		if (f->bitmap_nbits < f->points)
			return fail(errbuf, errlen, "Its bitmap holds %llu bits for %llu grid points.",
						(ull) f->bitmap_nbits, (ull) f->points);
		expected = gik_octets_popcount(&f->bitmap_bits, f->points);
		if (f->coded != expected)
			return fail(errbuf, errlen, "Its bitmap and its data representation section disagree: the bitmap marks %llu points present, section 5 codes %llu values.",
						(ull) expected, (ull) f->coded);
	}
	else if (f->coded != f->points)
		return fail(errbuf, errlen, "Its grid and its data representation section disagree: the grid has %llu points, section 5 codes %llu values.",
					(ull) f->points, (ull) f->coded);

	template = (int) gik_octets_be(&f->drs, 9, 2);	/* octets 10-11 */
	switch (template)
	{
		case 0:					/* simple packing */
		case 2:					/* complex packing */
		case 3:					/* complex packing and spatial differencing */
		case 40:				/* JPEG 2000 */
		case 41:				/* PNG */
		case 42:				/* CCSDS */
			if (f->drs.len < (template == 3 ? 49u : template == 2 ? 47u : template == 42 ? 25u : 21u))
				return fail(errbuf, errlen, "Its data representation section is %llu octets long, too short for template 5.%d.",
							(ull) f->drs.len, template);
			bits = gik_octets_u8(&f->drs, 19);	/* octet 20 */
			if (bits > 64)
				return fail(errbuf, errlen, "It packs values in %u bits; at most 64 are possible.", bits);
			break;
		case 4:					/* IEEE floats: 1 single, 2 double precision */
			bits = gik_octets_u8(&f->drs, 11);
			if (overran(&f->drs) || (bits != 1 && bits != 2))
				return fail(errbuf, errlen, "Its IEEE packing does not give a precision of 32 or 64 bits.");
			if (f->coded * (bits == 1 ? 4 : 8) > data->len)
				return fail(errbuf, errlen, "Its data section holds %llu octets, fewer than its %llu IEEE values need.",
							(ull) data->len, (ull) f->coded);
			*values = f->points;
			return true;
		case 50:				/* spherical harmonics, simple and complex packing: (J+1)(J+2) values */
		case 51:
			*values = f->spectral > f->points ? f->spectral : f->points;
			return true;
		case 61:				/* simple packing with logarithmic preprocessing */
			*values = f->points;
			return true;
		default:
			return true;
	}
	*values = f->points;
	if (template == 0 && packed_octets(f->coded, (uint64_t) bits) > data->len)
		return fail(errbuf, errlen, "Its data section holds %llu octets, fewer than the %llu its %llu values of %u bits need.",
					(ull) data->len, (ull) packed_octets(f->coded, (uint64_t) bits), (ull) f->coded, bits);
	if ((template == 40 || template == 41) && bits > 0 && f->coded > 0 && data->len < 12)
		return fail(errbuf, errlen, "Its data section holds %llu octets, too few for a %s stream.",
					(ull) data->len, template == 40 ? "JPEG 2000" : "PNG");
	if ((template == 2 || template == 3) && deep)
		return grib2_complex(&f->drs, template, f->coded, data, errbuf, errlen);
	if (template == 42 && bits > 0)
	{
		unsigned	block = gik_octets_u8(&f->drs, 22);	/* octet 23 */
		uint64_t	interval = gik_octets_be(&f->drs, 23, 2);	/* octets 24-25 */

		if (bits > 32 || (block != 8 && block != 16 && block != 32 && block != 64) || interval < 1 || interval > 4096)
			return fail(errbuf, errlen, "Its CCSDS parameters (%u-bit values, block size %u, reference sample interval %llu) are not valid.",
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
grib2_product(const GikOctets *s, char *errbuf, size_t errlen)
{
	uint64_t	nv = gik_octets_be(s, 5, 2);	/* octets 6-7 */
	int			template = (int) gik_octets_be(s, 7, 2);	/* octets 8-9 */
	uint64_t	need;
	int			n_octet = 0;	/* 0-based position of n, the number of time ranges */

	if (overran(s))
		return fail(errbuf, errlen, "Its product definition section is %llu octets long, too short for its header.", (ull) s->len);
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
	if (n_octet > 0 && gik_octets_fits(s, (uint64_t) n_octet, 1))
	{
		unsigned	n = gik_octets_u8(s, (uint64_t) n_octet);

		if (n == 0)
			return fail(errbuf, errlen, "Its product template 4.%d gives no time range.", template);
		need += 12 * (uint64_t) (n - 1);
	}
	if (need + 4 * nv > s->len)
		return fail(errbuf, errlen, "Its product definition section is %llu octets long, too short for template 4.%d and %llu vertical coordinates.",
					(ull) s->len, template, (ull) nv);
	return true;
}

/* Walk a GRIB2 message's sections (m: the message without its trailer) and check each field. */
static bool
grib2_sane(const GikOctets *m, bool deep, uint64_t *points, char *errbuf, size_t errlen)
{
	uint64_t	pos = 16;
	Field2		f = {.bitmap = -1};
	int			fields = 0;
	bool		known = true;

	*points = 0;
	while (pos < m->len)
	{
		uint64_t	slen;
		unsigned	number;
		GikOctets	s;
		GikOctets	data;
		uint64_t	values;

		if (!gik_octets_fits(m, pos, 5))
			return fail(errbuf, errlen, "A section header at octet %llu runs into the end of the message.", (ull) pos + 1);
		slen = gik_octets_be(m, pos, 4);
		number = gik_octets_u8(m, pos + 4);
		if (slen < 5 || !gik_octets_fits(m, pos, slen))
			return fail(errbuf, errlen, "Section %u at octet %llu is %llu octets long, past the end of the message.",
						number, (ull) pos + 1, (ull) slen);
		s = gik_octets_cut(m, pos, slen);
		switch (number)
		{
			case 1:
			case 2:
				break;
			case 3:
				if (!grib2_grid(&s, &f, errbuf, errlen))
					return false;
				break;
			case 4:
				if (!grib2_product(&s, errbuf, errlen))
					return false;
				break;
			case 5:
				/* octets 6-9: coded values; 10-11: the template, read by grib2_field */
				if (!gik_octets_fits(&s, 0, 11))
					return fail(errbuf, errlen, "Its data representation section is %llu octets long, too short for its header.", (ull) slen);
				f.coded = gik_octets_be(&s, 5, 4);
				f.has_drs = true;
				f.drs = s;
				if (f.coded > GIK_GRIB_MAX_POINTS)
					return fail(errbuf, errlen, "It declares %llu coded values, more than the %ld pg_gik accepts.",
								(ull) f.coded, GIK_GRIB_MAX_POINTS);
				break;
			case 6:
				if (!grib2_bitmap(&s, &f, errbuf, errlen))
					return false;
				break;
			case 7:
				data = gik_octets_cut(&s, 5, slen - 5);
				if (!grib2_field(&f, &data, deep, &values, errbuf, errlen))
					return false;
				known = known && values > 0;
				*points = values > *points ? values : *points;
				fields++;
				f.has_drs = false;
				f.bitmap = -1;
				break;
			default:
				return fail(errbuf, errlen, "It has a section numbered %u at octet %llu.", number, (ull) pos + 1);
		}
		pos += slen;
	}
	if (fields == 0)
		return fail(errbuf, errlen, "It has no data section.");
	if (!known)
		*points = 0;
	return true;
}

/* Most grid points of a predefined GRIB1 grid (no GDS) that ecCodes knows: grids 61-64, 91 x 46. */
#define GRIB1_PREDEFINED_MAX_POINTS 4186

/* Read a GRIB1 section's 3-octet length at pos; false when it is below min_len or runs past the message. */
static bool
grib1_section(const GikOctets *m, uint64_t pos, uint64_t min_len, GikOctets *s)
{
	uint64_t	slen;

	if (!gik_octets_fits(m, pos, 3))
		return false;
	slen = gik_octets_be(m, pos, 3);
	if (slen < min_len || !gik_octets_fits(m, pos, slen))
		return false;
	*s = gik_octets_cut(m, pos, slen);
	return true;
}

/* What GRIB1 sections 2 and 3 say about the number of values. */
typedef struct Grid1
{
	bool		has_gds;
	bool		points_known;	/* a grid type whose points pg_gik counts */
	uint64_t	points;
	uint64_t	spectral;		/* GDS type 50: values by truncation, else 0 */
	uint64_t	row_points;		/* the row lengths ecCodes reads, added up (0 without them) */
	bool		has_bitmap;
	uint64_t	bitmap_nbits;	/* bits ecCodes reads from the bitmap */
	uint64_t	present;		/* set bits among the first points bits */
} Grid1;

/*
 * GRIB1 GDS: points of the common grid types, the row lengths of a reduced grid. Octet 5
 * gives where the vertical coordinates (octet 4 of them, 4 octets each) and then the row
 * lengths start, 1-based, or 255 for neither; ecCodes 2.28 moves to that octet even past the
 * GDS (not back before the end of the 32-octet common part), and reads the row lengths (Nj of
 * 2 octets) whenever they fit in the GDS, whatever Ni.
 */
static bool
grib1_grid(const GikOctets *s, Grid1 *g, char *errbuf, size_t errlen)
{
	unsigned	nv = gik_octets_u8(s, 3);	/* octet 4 */
	unsigned	pv_pl = gik_octets_u8(s, 4);	/* octet 5 */
	unsigned	type = gik_octets_u8(s, 5);	/* octet 6: data representation type */
	uint64_t	ni = gik_octets_be(s, 6, 2);
	uint64_t	nj = gik_octets_be(s, 8, 2);
	uint64_t	list = pv_pl == 255 || pv_pl < 33 ? 32 : (uint64_t) pv_pl - 1;	/* where the coordinates start, not before octet 33 */
	bool		pl_present;
	uint64_t	pl_sum = 0;

	g->has_gds = true;
	if (nv == 0 && !gik_octets_fits(s, list, 0))
		return fail(errbuf, errlen, "Its grid description section of %llu octets places its row lengths (octet 5) at octet %u, past its end.",
					(ull) s->len, pv_pl);
	if ((pv_pl == 0 && nv > 0) || !gik_octets_fits(s, list, 4 * (uint64_t) nv))
		return fail(errbuf, errlen, "Its %u vertical coordinates at octet %u do not fit in its grid description section of %llu octets.",
					nv, pv_pl, (ull) s->len);
	list += 4 * (uint64_t) nv;	/* where the row lengths start */
	/* ecCodes reads row lengths from octet 33 when octet 5 is 0 too: count them into the size bound */
	pl_present = pv_pl != 255 && s->len > list && gik_octets_fits(s, list, 2 * nj);
	if (pl_present)
		for (uint64_t j = 0; j < nj; j++)
			pl_sum += gik_octets_be(s, list + 2 * j, 2);
	g->row_points = pl_sum;
	/* lat/lon, Mercator, Lambert, Gaussian, polar stereographic, rotated lat/lon and Gaussian */
	if (type == 0 || type == 1 || type == 3 || type == 4 || type == 5 || type == 10 || type == 14)
	{
		if (ni != MISSING_U16 && nj != MISSING_U16)
		{
			g->points = ni * nj;
			g->points_known = true;
		}
		else if (ni == MISSING_U16 && nj != MISSING_U16 && type != 1 && type != 3 && type != 5 && pv_pl != 255 && pv_pl > 0)
		{
			/* reduced (rotated) lat/lon or Gaussian grid */
			if (!pl_present && nj > 0)
				return fail(errbuf, errlen, "Its list of %llu row lengths does not fit in its grid description section.", (ull) nj);
			g->points = pl_sum;
			g->points_known = true;
		}
	}
	else if (type == 50)
	{
		/* spherical harmonics: J, K, M at octets 7-8, 9-10, 11-12 */
		g->spectral = spectral_values(ni, nj, gik_octets_be(s, 10, 2));
		if (g->spectral > GIK_GRIB_MAX_POINTS)
			return fail(errbuf, errlen, "Its spherical harmonic truncation declares more than the %ld values pg_gik accepts.",
						GIK_GRIB_MAX_POINTS);
	}
	if (overran(s))
		return fail(errbuf, errlen, "Its grid description section does not fit in the message.");
	return true;
}

/* GRIB1 BMS: an explicit bitmap holding a bit for every grid point. */
static bool
grib1_bitmap(const GikOctets *s, Grid1 *g, char *errbuf, size_t errlen)
{
	unsigned	unused = gik_octets_u8(s, 3);	/* octet 4: unused bits at the end */
	uint64_t	table = gik_octets_be(s, 4, 2);
	GikOctets	bits = gik_octets_cut(s, 6, s->len - 6);

	if (overran(s))
		return fail(errbuf, errlen, "Its bitmap section does not fit in the message.");
	if (table != 0)
		return fail(errbuf, errlen, "Its bitmap section uses a predefined bitmap, which pg_gik does not read.");
	g->bitmap_nbits = bits.len * 8 > unused ? bits.len * 8 - unused : 0;
	if (g->points_known && g->bitmap_nbits < g->points)
		return fail(errbuf, errlen, "Its bitmap holds %llu bits for %llu grid points.", (ull) g->bitmap_nbits, (ull) g->points);
	g->has_bitmap = true;
	if (g->points_known)
		g->present = gik_octets_popcount(&bits, g->points);
	return true;
}

/* The larger of a and b. */
static uint64_t
max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/*
 * Upper bound of the values ecCodes 2.28 returns for a GRIB1 field (its "values" key), from
 * what the GDS and BMS said and the BDS (flags at octet 4, bits per value at octet 11); 0
 * when it cannot be known from the bytes. ecCodes counts a field in one of these ways,
 * depending on flags it reads in several places: the grid's points, one value per bitmap
 * bit, the values the BDS holds at its bits per value (plus the real part of simple
 * spherical harmonics; a BDS padded to an even length may hold one or two more values than
 * the grid has points), (J+1)(J+2) for spherical harmonics, a predefined grid's points
 * without a GDS. The bound is the largest of those the bytes give; when the grid's points
 * are not known and neither a bitmap nor bits per value give a count (a constant field on
 * a grid type pg_gik does not count, a constant dummy field, matrix values), it is 0.
 */
static uint64_t
grib1_values(const Grid1 *g, unsigned bds_flags, bool dummy, unsigned bits, uint64_t bds_len)
{
	uint64_t	v = g->points_known ? g->points : 0;
	bool		known = g->points_known || g->spectral > 0 || !g->has_gds;

	if ((bds_flags & 0x30) == 0x10)
		return 0;				/* a matrix of values at each point */
	if (!g->has_gds)
		v = max_u64(v, GRIB1_PREDEFINED_MAX_POINTS);
	v = max_u64(v, g->spectral);
	if (g->row_points > 0)
	{
		v = max_u64(v, g->row_points);
		known = true;
	}
	if (dummy)
		return known ? v : 0;	/* binary scale factor -32767: the grid's points, whatever the BDS holds */
	if (g->has_bitmap)
	{
		v = max_u64(v, g->bitmap_nbits);
		known = true;
	}
	if (bits > 0)
	{
		/* as ecCodes counts them: the BDS after octet 11 less its unused bits (octet 4, low half) */
		uint64_t	room = (bds_len - 11) * 8;

		room = room > (bds_flags & 0x0F) ? (room - (bds_flags & 0x0F)) / bits : 0;
		v = max_u64(v, room + ((bds_flags & 0x80) ? 1 : 0));
		known = true;
	}
	return known ? v : 0;
}

/*
 * GRIB1 (m: the message without its trailer): PDS, GDS and BMS lengths; grid points of the
 * common grid types; a bitmap covers the grid; simple packing has room for its values;
 * second-order packing is refused.
 */
static bool
grib1_sane(const GikOctets *m, bool large, uint64_t *points, bool *unsupported, char *errbuf, size_t errlen)
{
	uint64_t	pos = 8;
	GikOctets	s;
	Grid1		g = {0};
	unsigned	flags;
	unsigned	bds_flags;
	unsigned	bits;
	uint64_t	slen;

	*points = 0;
	if (!grib1_section(m, pos, 28, &s))
		return fail(errbuf, errlen, "Its product definition section does not fit in the message.");
	flags = gik_octets_u8(&s, 7);	/* octet 8: GDS 0x80, BMS 0x40, the other bits reserved */
	if (flags & 0x3F)
		return fail(errbuf, errlen, "Its product definition section sets reserved flag bits (0x%02x).", flags);
	pos += s.len;
	if (flags & 0x80)
	{
		if (!grib1_section(m, pos, 32, &s))
			return fail(errbuf, errlen, "Its grid description section does not fit in the message.");
		if (!grib1_grid(&s, &g, errbuf, errlen))
			return false;
		pos += s.len;
	}
	if (flags & 0x40)
	{
		if (!grib1_section(m, pos, 6, &s))
			return fail(errbuf, errlen, "Its bitmap section does not fit in the message.");
		if (!grib1_bitmap(&s, &g, errbuf, errlen))
			return false;
		pos += s.len;
	}
	if (g.points > GIK_GRIB_MAX_POINTS || g.row_points > GIK_GRIB_MAX_POINTS)
		return fail(errbuf, errlen, "It declares %llu grid points, more than the %ld pg_gik accepts.",
					(ull) max_u64(g.points, g.row_points), GIK_GRIB_MAX_POINTS);
	if (!gik_octets_fits(m, pos, 11))
		return fail(errbuf, errlen, "Its binary data section does not fit in the message.");
	slen = gik_octets_be(m, pos, 3);
	if (large && slen < 120)
		slen = m->len - pos;	/* large message: the BDS runs to the trailer */
	if (slen < 11 || !gik_octets_fits(m, pos, slen))
		return fail(errbuf, errlen, "Its binary data section is %llu octets long, past the end of the message.", (ull) slen);
	s = gik_octets_cut(m, pos, slen);
	bds_flags = gik_octets_u8(&s, 3);	/* octet 4: spherical harmonics 0x80, second order 0x40 */
	bits = gik_octets_u8(&s, 10);	/* octet 11 */
	if (bits > 64)
		return fail(errbuf, errlen, "It packs values in %u bits; at most 64 are possible.", bits);
	if (!(bds_flags & 0xC0) && g.points_known)
	{
		uint64_t	values = g.has_bitmap ? g.present : g.points;

		if (11 + packed_octets(values, (uint64_t) bits) > slen)
			return fail(errbuf, errlen, "Its binary data section holds %llu octets, fewer than the %llu its %llu values of %u bits need.",
						(ull) slen, (ull) (11 + packed_octets(values, (uint64_t) bits)), (ull) values, bits);
	}
	else if ((bds_flags & 0xC0) == 0x40)
	{
		/* ecCodes 2.28 reads past the message on corrupt second-order group data; pg_gik cannot check it all */
		*unsupported = true;
		return fail(errbuf, errlen, "It uses GRIB1 second-order packing, which pg_gik does not decode.");
	}
	/* octets 5-6, sign and magnitude: a binary scale factor of -32767 marks a constant dummy field */
	*points = grib1_values(&g, bds_flags, gik_octets_be(&s, 4, 2) == 0xFFFF, bits, slen);
	if (overran(m))
		return fail(errbuf, errlen, "Its binary data section is %llu octets long, too short for its header.", (ull) slen);
	return true;
}

/* Check one framed message, walking complex packing's groups when deep. */
static GikSanity
check_message(const unsigned char *msg, size_t len, bool deep, GikGribShape *shape, char *errbuf, size_t errlen)
{
	int			edition = 0;
	bool		unsupported = false;
	bool		overrun = false;
	uint64_t	points = 0;
	GikFrameStatus status = gik_grib_check(msg, len, NULL, &edition);
	GikOctets	body;
	bool		ok;

	if (shape)
	{
		shape->edition = edition;
		shape->points = 0;
	}
	if (status != GIK_FRAME_OK)
	{
		fail(errbuf, errlen, "%s", gik_frame_status_text(status));
		return GIK_SANE_CORRUPT;
	}
	body = gik_octets(msg, len - TRAILER, &overrun);
	if (edition == 2)
		ok = grib2_sane(&body, deep, &points, errbuf, errlen);
	else
		ok = grib1_sane(&body, (gik_octets_u8(&body, 4) & 0x80) != 0, &points, &unsupported, errbuf, errlen);
	/* a read past a section that no check above reported still refuses the message */
	if (ok && overrun)
		ok = fail(errbuf, errlen, "It is shorter than the sections it declares.");
	if (!ok)
		return unsupported ? GIK_SANE_UNSUPPORTED : GIK_SANE_CORRUPT;
	if (shape)
		shape->points = points;
	return GIK_SANE_OK;
}

/* Check one framed message; see grib_sanity.h. */
GikSanity
gik_grib_sane(const unsigned char *msg, size_t len, GikGribShape *shape, char *errbuf, size_t errlen)
{
	return check_message(msg, len, true, shape, errbuf, errlen);
}

/* The checks that bound a message's size; see grib_sanity.h. */
GikSanity
gik_grib_shape(const unsigned char *msg, size_t len, GikGribShape *shape, char *errbuf, size_t errlen)
{
	return check_message(msg, len, false, shape, errbuf, errlen);
}
