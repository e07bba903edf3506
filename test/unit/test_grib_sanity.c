/*
 * Unit tests of gik_grib_sane: real messages made by ecCodes 2.28 from its samples (and the GRIB
 * fixtures in test/data) pass and declare the size ecCodes decodes; the same messages with one
 * section cut short are refused with the sentence for that section, and nothing reads past it
 * (run under make sanitize, or the decode fuzz harness, to see reads).
 */
#include "core/grib_sanity.h"
#include "expected_grib.h"
#include "tap.h"

#include <dirent.h>
#include <eccodes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *data_dir;

/* Big-endian integer of n octets. */
static uint64_t
get_be(const unsigned char *p, int n)
{
	uint64_t	v = 0;

	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* Store v big-endian in n octets. */
static void
put_be(unsigned char *p, int n, uint64_t v)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char) v;
}

/*
 * A message from an ecCodes sample, repacked with 16-bit values (a ramp; every 7th point
 * missing when bitmap) and packing (NULL: the sample's).
 */
static unsigned char *
sample_message(const char *sample, const char *packing, bool bitmap, size_t *len)
{
	codes_handle *h = codes_grib_handle_new_from_samples(NULL, sample);
	size_t		n = 0;
	double	   *v;
	const void *msg;
	unsigned char *out;

	if (h == NULL)
	{
		tap_diag("no ecCodes sample %s", sample);
		*len = 0;
		return NULL;
	}
	codes_get_size(h, "values", &n);
	v = malloc(sizeof(double) * n);
	for (size_t i = 0; i < n; i++)
		v[i] = (bitmap && i % 7 == 0) ? 9999 : 250 + (double) (i % 37) * 0.5 + (double) i * 1e-3;
	if (bitmap)
	{
		codes_set_double(h, "missingValue", 9999);
		codes_set_long(h, "bitmapPresent", 1);
	}
	codes_set_long(h, "bitsPerValue", 16);
	codes_set_double_array(h, "values", v, n);
	free(v);
	/* ecCodes cannot repack a constant field: the packing changes once the values are set */
	if (packing)
	{
		size_t		plen = strlen(packing);

		if (codes_set_string(h, "packingType", packing, &plen) != 0)
			tap_diag("ecCodes could not repack %s as %s", sample, packing);
	}
	codes_get_message(h, &msg, len);
	out = test_alloc(*len);
	memcpy(out, msg, *len);
	codes_handle_delete(h);
	return out;
}

/* Offset of the first GRIB2 section numbered number, or 0. */
static size_t
section2_at(const unsigned char *m, size_t len, int number)
{
	for (size_t pos = 16; pos + 5 <= len - 4; pos += get_be(m + pos, 4))
		if (m[pos + 4] == number)
			return pos;
		else if (get_be(m + pos, 4) < 5)
			break;
	return 0;
}

/* Offset of GRIB1 section 1 (PDS), 2 (GDS), 3 (BMS) or 4 (BDS), or 0 when absent. */
static size_t
section1_at(const unsigned char *m, int which)
{
	size_t		pos = 8;
	int			flags = m[15];

	for (int s = 1; s < which; s++)
		if (s == 1 || (s == 2 && (flags & 0x80)) || (s == 3 && (flags & 0x40)))
			pos += get_be(m + pos, 3);
	if ((which == 2 && !(flags & 0x80)) || (which == 3 && !(flags & 0x40)))
		return 0;
	return pos;
}

/*
 * A copy of message m whose section at pos (length field of lenbytes octets) keeps only its
 * first keep octets; the section and total lengths are rewritten to fit.
 */
static unsigned char *
cut_section(const unsigned char *m, size_t len, size_t pos, int lenbytes, size_t keep, size_t *out_len)
{
	size_t		slen = get_be(m + pos, lenbytes);
	size_t		drop = slen - keep;
	unsigned char *out = test_alloc(len);

	memcpy(out, m, pos + keep);
	memcpy(out + pos + keep, m + pos + slen, len - pos - slen);
	*out_len = len - drop;
	put_be(out + pos, lenbytes, keep);
	if (m[7] == 2)
		put_be(out + 8, 8, *out_len);
	else
		put_be(out + 4, 3, *out_len);
	return out;
}

/* A GRIB2 message with section number cut to keep octets. */
static unsigned char *
cut2(const unsigned char *m, size_t len, int number, size_t keep, size_t *out_len)
{
	return cut_section(m, len, section2_at(m, len, number), 4, keep, out_len);
}

/* A GRIB1 message with section which (1-4) cut to keep octets. */
static unsigned char *
cut1(const unsigned char *m, size_t len, int which, size_t keep, size_t *out_len)
{
	return cut_section(m, len, section1_at(m, which), 3, keep, out_len);
}

/* gik_grib_sane gives status and, when refused, exactly the sentence expected. */
static void
expect(const unsigned char *m, size_t len, GikSanity status, const char *sentence, const char *what)
{
	char		err[512] = "";
	GikGribShape shape = {-1, 12345};
	GikSanity	got = gik_grib_sane(m, len, &shape, err, sizeof(err));

	if (!tap_is_int(got, status, "%s: status", what))
		tap_diag("error: %s", err);
	if (sentence)
		tap_is_text(err, strlen(err), sentence, "%s: sentence", what);
	if (status != GIK_SANE_OK)
		tap_ok(shape.points == 0, "%s: no size declared on failure", what);
}

/* m is refused as corrupt with a sentence that starts and ends as given (numbers that depend on ecCodes' packing between). */
static void
check_sentence(const unsigned char *m, size_t len, const char *start, const char *end, const char *what)
{
	char		err[512] = "";
	size_t		n;

	tap_is_int(gik_grib_sane(m, len, NULL, err, sizeof(err)), GIK_SANE_CORRUPT, "%s: refused", what);
	n = strlen(err);
	if (!tap_ok(strncmp(err, start, strlen(start)) == 0 && n >= strlen(end) && strcmp(err + n - strlen(end), end) == 0,
				"%s: sentence \"%s...%s\"", what, start, end))
		tap_diag("got: %s", err);
}

/* Number of values ecCodes returns for the first field of m, or -1 when it cannot say. */
static int64_t
eccodes_values(const unsigned char *m, size_t len)
{
	codes_handle *h = codes_handle_new_from_message(NULL, m, len);
	size_t		n = 0;
	int			err;

	if (h == NULL)
		return -1;
	err = codes_get_size(h, "values", &n);
	codes_handle_delete(h);
	return err ? -1 : (int64_t) n;
}

/* Check m passes, and that its declared size bounds (or equals) what ecCodes decodes. */
static void
check_shape(const unsigned char *m, size_t len, int64_t expected_points, const char *what)
{
	char		err[512] = "";
	GikGribShape shape = {0, 0};
	int64_t		n = eccodes_values(m, len);

	if (!tap_is_int(gik_grib_sane(m, len, &shape, err, sizeof(err)), GIK_SANE_OK, "%s passes", what))
		tap_diag("error: %s", err);
	tap_is_int(shape.edition, m[7], "%s: edition", what);
	if (expected_points >= 0)
		tap_is_int((int64_t) shape.points, expected_points, "%s: declared points", what);
	if (!tap_ok(shape.points == 0 ? true : (int64_t) shape.points >= n, "%s: points bound what ecCodes decodes", what))
		tap_diag("points %llu, ecCodes %lld values", (unsigned long long) shape.points, (long long) n);
	{
		GikGribShape quick = {0, 0};

		tap_ok(gik_grib_shape(m, len, &quick, err, sizeof(err)) == GIK_SANE_OK &&
			   quick.points == shape.points && quick.edition == shape.edition,
			   "%s: the backend's shape check agrees (%llu points)", what, (unsigned long long) quick.points);
	}
}

/* GRIB2 grid definition sections cut short: the header, the template, the row lengths. */
static void
test_grib2_grid(void)
{
	size_t		len,
				n;
	unsigned char *ll = sample_message("regular_ll_sfc_grib2", NULL, false, &len);
	unsigned char *m;
	size_t		rlen;
	unsigned char *red = sample_message("reduced_gg_pl_32_grib2", NULL, false, &rlen);

	check_shape(ll, len, 496, "regular_ll_sfc_grib2 (16 bits)");
	m = cut2(ll, len, 3, 13, &n);
	expect(m, n, GIK_SANE_CORRUPT, "Its grid definition section is 13 octets long, too short for its header.", "grid section of 13 octets");
	m = cut2(ll, len, 3, 60, &n);
	expect(m, n, GIK_SANE_CORRUPT, "Its grid definition section is 60 octets long, too short for grid template 3.0.", "grid section shorter than template 3.0");
	m = cut2(ll, len, 3, 71, &n);
	expect(m, n, GIK_SANE_CORRUPT, "Its grid definition section is 71 octets long, too short for grid template 3.0.", "grid section one octet short of template 3.0");

	check_shape(red, rlen, 6114, "reduced_gg_pl_32_grib2 (16 bits)");
	m = cut2(red, rlen, 3, 198, &n);
	expect(m, n, GIK_SANE_CORRUPT, "Its list of 64 row lengths of 2 octets does not fit in its grid definition section.",
		   "reduced grid: last row length cut off");
	m = cut2(red, rlen, 3, 72, &n);
	expect(m, n, GIK_SANE_CORRUPT, "Its list of 64 row lengths of 2 octets does not fit in its grid definition section.",
		   "reduced grid: no row lengths at all");
	/* the input of the fuzz finding: a 61-octet reduced grid (slen - 72 underflowed) */
	m = cut2(red, rlen, 3, 61, &n);
	expect(m, n, GIK_SANE_CORRUPT, "Its grid definition section is 61 octets long, too short for grid template 3.40.",
		   "reduced grid section shorter than template 3.40");
}

/* GRIB2 product, data representation, bitmap and data sections cut short. */
static void
test_grib2_sections(void)
{
	size_t		len,
				n,
				clen,
				slen,
				blen,
				ilen;
	unsigned char *ll = sample_message("regular_ll_sfc_grib2", NULL, false, &len);
	unsigned char *cx = sample_message("regular_ll_sfc_grib2", "grid_complex", false, &clen);
	unsigned char *sd = sample_message("regular_ll_sfc_grib2", "grid_complex_spatial_differencing", false, &slen);
	unsigned char *bm = sample_message("regular_ll_sfc_grib2", NULL, true, &blen);
	unsigned char *ie = sample_message("regular_ll_sfc_grib2", "grid_ieee", false, &ilen);
	unsigned char *m;
	size_t		data;

	m = cut2(ll, len, 4, 33, &n);
	expect(m, n, GIK_SANE_CORRUPT, "Its product definition section is 33 octets long, too short for template 4.0 and 0 vertical coordinates.",
		   "product section one octet short");
	m = cut2(ll, len, 4, 8, &n);
	expect(m, n, GIK_SANE_CORRUPT, "Its product definition section is 8 octets long, too short for its header.", "product section of 8 octets");

	m = cut2(ll, len, 5, 10, &n);
	expect(m, n, GIK_SANE_CORRUPT, "Its data representation section is 10 octets long, too short for its header.", "DRS of 10 octets");
	m = cut2(ll, len, 5, 20, &n);
	expect(m, n, GIK_SANE_CORRUPT, "Its data representation section is 20 octets long, too short for template 5.0.", "simple-packing DRS of 20 octets");

	check_shape(cx, clen, 496, "complex packing (5.2)");
	m = cut2(cx, clen, 5, 46, &n);
	expect(m, n, GIK_SANE_CORRUPT, "Its data representation section is 46 octets long, too short for template 5.2.", "complex DRS one octet short");
	check_shape(sd, slen, 496, "complex packing with spatial differencing (5.3)");
	m = cut2(sd, slen, 5, 48, &n);
	expect(m, n, GIK_SANE_CORRUPT, "Its data representation section is 48 octets long, too short for template 5.3.", "5.3 DRS one octet short");

	/* complex packing, section 7 cut: first inside the group descriptors, then inside the packed values */
	data = get_be(cx + section2_at(cx, clen, 7), 4) - 5;
	m = cut2(cx, clen, 7, 5 + 3, &n);
	check_sentence(m, n, "Its data section holds 3 octets, fewer than the ", " groups.", "complex data section of 3 octets (group descriptors)");
	/* ecCodes 2.28 leaves some 80 octets unused after the packed values: cut half of them off */
	m = cut2(cx, clen, 7, 5 + data / 2, &n);
	check_sentence(m, n, "Its data section holds ", " its groups need.", "complex data section cut to half");
	data = get_be(sd + section2_at(sd, slen, 7), 4) - 5;
	m = cut2(sd, slen, 7, 5 + data / 2, &n);
	check_sentence(m, n, "Its data section holds ", " its groups need.", "5.3 data section cut to half");
	m = cut2(ll, len, 7, 5 + 991, &n);
	expect(m, n, GIK_SANE_CORRUPT, "Its data section holds 991 octets, fewer than the 992 its 496 values of 16 bits need.",
		   "simple-packing data section one octet short");

	/* a bitmap of 496 bits is 62 octets after its 6-octet header */
	check_shape(bm, blen, 496, "simple packing with a bitmap");
	m = cut2(bm, blen, 6, 67, &n);
	expect(m, n, GIK_SANE_CORRUPT, "Its bitmap holds 488 bits for 496 grid points.", "bitmap one octet short");
	m = cut2(bm, blen, 6, 5, &n);
	expect(m, n, GIK_SANE_CORRUPT, "Its bitmap section is 5 octets long, too short for its header.", "bitmap section of 5 octets");

	check_shape(ie, ilen, 496, "IEEE packing (5.4)");
	m = cut2(ie, ilen, 5, 11, &n);
	expect(m, n, GIK_SANE_CORRUPT, "Its IEEE packing does not give a precision of 32 or 64 bits.", "IEEE DRS without its precision octet");
}

/* GRIB1 PDS, GDS, BMS and BDS cut short. */
static void
test_grib1(void)
{
	size_t		len,
				n,
				rlen,
				blen;
	unsigned char *ll = sample_message("regular_ll_sfc_grib1", NULL, false, &len);
	unsigned char *red = sample_message("reduced_gg_pl_32_grib1", NULL, false, &rlen);
	unsigned char *bm = sample_message("regular_ll_sfc_grib1", NULL, true, &blen);
	unsigned char *m;
	size_t		bds;

	check_shape(ll, len, 496, "regular_ll_sfc_grib1 (16 bits)");
	m = cut1(ll, len, 1, 27, &n);
	expect(m, n, GIK_SANE_CORRUPT, "Its product definition section does not fit in the message.", "GRIB1 PDS of 27 octets");
	m = cut1(ll, len, 2, 31, &n);
	expect(m, n, GIK_SANE_CORRUPT, "Its grid description section does not fit in the message.", "GRIB1 GDS of 31 octets");
	bds = get_be(ll + section1_at(ll, 4), 3);
	m = cut1(ll, len, 4, bds - 2, &n);
	check_sentence(m, n, "Its binary data section holds ", " octets, fewer than the 1003 its 496 values of 16 bits need.", "GRIB1 BDS two octets short");
	m = cut1(ll, len, 4, 10, &n);
	expect(m, n, GIK_SANE_CORRUPT, "Its binary data section does not fit in the message.", "GRIB1 BDS of 10 octets");

	/* octet 5 of the GDS: ecCodes moves to where it points, inside the GDS or not */
	m = test_alloc(len);
	memcpy(m, ll, len);
	m[section1_at(m, 2) + 4] = 60;
	expect(m, len, GIK_SANE_CORRUPT, "Its grid description section of 32 octets places its row lengths (octet 5) at octet 60, past its end.",
		   "GRIB1 GDS pointing past itself");
	m[section1_at(m, 2) + 4] = 33;
	expect(m, len, GIK_SANE_OK, NULL, "GRIB1 GDS pointing right after itself (no row lengths)");
	m[section1_at(m, 2) + 4] = 255;
	m[section1_at(m, 2) + 3] = 10;
	expect(m, len, GIK_SANE_CORRUPT, "Its 10 vertical coordinates at octet 255 do not fit in its grid description section of 32 octets.",
		   "GRIB1 GDS with vertical coordinates it does not hold");

	check_shape(red, rlen, 6114, "reduced_gg_pl_32_grib1 (16 bits)");
	m = cut1(red, rlen, 2, get_be(red + section1_at(red, 2), 3) - 2, &n);
	expect(m, n, GIK_SANE_CORRUPT, "Its list of 64 row lengths does not fit in its grid description section.", "GRIB1 reduced grid: last row length cut off");

	check_shape(bm, blen, 496, "regular_ll_sfc_grib1 with a bitmap");
	m = cut1(bm, blen, 3, get_be(bm + section1_at(bm, 3), 3) - 2, &n);
	check_sentence(m, n, "Its bitmap holds ", " bits for 496 grid points.", "GRIB1 bitmap two octets short");
	m = cut1(bm, blen, 3, 5, &n);
	expect(m, n, GIK_SANE_CORRUPT, "Its bitmap section does not fit in the message.", "GRIB1 BMS of 5 octets");
}

/* A GRIB2 message with two fields: the second field's grid is larger, and it is the size declared. */
static void
test_two_fields(void)
{
	size_t		alen,
				blen;
	unsigned char *a = sample_message("regular_ll_sfc_grib2", NULL, false, &alen);
	unsigned char *b = sample_message("reduced_gg_pl_32_grib2", NULL, false, &blen);
	size_t		b3 = section2_at(b, blen, 3);
	size_t		tail = blen - 4 - b3;	/* sections 3-7 of b */
	size_t		len = alen + tail;
	unsigned char *m = test_alloc(len);

	memcpy(m, a, alen - 4);
	memcpy(m + alen - 4, b + b3, tail);
	memcpy(m + len - 4, "7777", 4);
	put_be(m + 8, 8, len);
	check_shape(m, len, 6114, "two fields (496 then 6114 points)");
	tap_ok(gik_grib_sane(m, len, NULL, NULL, 0) == GIK_SANE_OK, "shape and errbuf may be NULL");
}

/* Every GRIB sample of ecCodes, as shipped (constant fields) and repacked at 16 bits, passes and declares an honest size. */
static void
test_samples(void)
{
	const char *dir = "/usr/share/eccodes/samples";
	DIR		   *d = opendir(dir);
	struct dirent *e;
	int			checked = 0;

	if (d == NULL)
	{
		tap_skip("no ecCodes samples directory", "ecCodes samples");
		return;
	}
	while ((e = readdir(d)) != NULL)
	{
		char		name[256];
		size_t		nl = strlen(e->d_name);
		size_t		len;
		unsigned char *m;

		if (nl < 6 || strcmp(e->d_name + nl - 5, ".tmpl") != 0 || (strstr(e->d_name, "grib") == NULL && strncmp(e->d_name, "GRIB", 4) != 0))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int) (nl - 5), e->d_name);
		for (int repack = 0; repack < 2; repack++)
		{
			char		what[300];

			if (repack)
				m = sample_message(name, NULL, false, &len);
			else
			{
				char		path[512];

				snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
				m = (unsigned char *) test_read_file(data_dir, path, &len);
			}
			if (m == NULL || len < 8 || memcmp(m, "GRIB", 4) != 0)
				continue;
			snprintf(what, sizeof(what), "sample %s%s", name, repack ? " repacked" : "");
			/* a sample file may hold more than its one message */
			check_shape(m, repack ? len : get_be(m + (m[7] == 2 ? 8 : 4), m[7] == 2 ? 8 : 3), -1, what);
			checked++;
		}
		test_alloc_reset();
	}
	closedir(d);
	tap_ok(checked > 100, "%d sample messages checked", checked);
}

/* Every message of the GRIB fixtures passes and declares its number of data points. */
static void
test_fixtures(void)
{
	for (size_t f = 0; f < sizeof(expected_grib_files) / sizeof(expected_grib_files[0]) + 1; f++)
	{
		const ExpectedGribFile *e = f == 0 ? &expected_gfswave : &expected_grib_files[f - 1];
		size_t		len;
		unsigned char *buf = (unsigned char *) test_read_file(data_dir, e->path, &len);

		if (buf == NULL)
		{
			tap_skip("fixture not readable", "%s", e->path);
			continue;
		}
		for (size_t i = 0; i < e->nmessages; i++)
		{
			unsigned char *m = buf + e->offsets[i];
			size_t		mlen = (size_t) e->lengths[i];
			codes_handle *h = codes_handle_new_from_message(NULL, m, mlen);
			long		points = -1;
			char		what[300];

			if (h)
			{
				codes_get_long(h, "numberOfDataPoints", &points);
				codes_handle_delete(h);
			}
			snprintf(what, sizeof(what), "%s message %zu", e->path, i + 1);
			check_shape(m, mlen, points, what);
		}
		test_alloc_reset();
	}
}

/* ecCodes' own messages go nowhere (the test expects it to fail on nothing, but it logs warnings). */
static void
quiet(const codes_context *c, int level, const char *msg)
{
	(void) c;
	(void) level;
	(void) msg;
}

int
main(int argc, char **argv)
{
	data_dir = test_data_dir(argc, argv);
	codes_context_set_logging_proc(codes_context_get_default(), quiet);
	test_grib2_grid();
	test_grib2_sections();
	test_grib1();
	test_two_fields();
	test_alloc_reset();
	test_samples();
	test_fixtures();
	test_alloc_reset();
	return tap_done();
}
