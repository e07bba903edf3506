/* Unit tests of GRIB framing on the real GRIB files in test/data, corrupted copies and GRIB1 headers. */
#include "core/grib_frame.h"
#include "core/idx.h"
#include "expected_grib.h"
#include "tap.h"

#include <stdio.h>
#include <string.h>

static const char *data_dir;

/*
 * First bytes of three GRIB1 messages written by ecCodes 2.28 (python3-eccodes,
 * sample regular_ll_sfc_grib1, Ni x Nj grid, bitsPerValue 16), read with xxd -p:
 * - LARGE: 3000x3000, 18000108 bytes: 3-byte length 0x8249f1 with the top bit set
 *   and section 4 length 16 (< 120), so (0x0249f1 * 120) - 16 + 4 = 18000108;
 * - LARGE_BITMAP: same with bitmapPresent=1, 18945114 bytes: section 3 (bitmap)
 *   of 0x112a8e bytes at 92, section 4 length 10 at 1125098;
 * - TOP_BIT: 3000x2000, 12000108 bytes = 0xb71b6c, a plain length whose top bit
 *   happens to be set (section 4 length 12000012 >= 120).
 * grib_ls -p totalLength:i gave the same totals.
 */
static const char GRIB1_LARGE_HEAD[] =
	"475249428249f101000034806280ff80a70100000703170c000100000000000015000000000000000000"
	"00000000000001010204013030303100000000002000ff000bb80bb8015f90000000800153d9000bb700"
	"010001000000000000001008";
static const char GRIB1_LARGE_BITMAP_HEAD[] =
	"475249428268b401000034806280ffc0a70100000703170c000100000000000015000000000000000000"
	"00000000000001010204013030303100000000002000ff000bb80bb8015f90000000800153d9000bb700"
	"0100010000000000112a8e";
static const char GRIB1_TOP_BIT_HEAD[] =
	"47524942b71b6c01000034806280ff80a70100000703170c000100000000000015000000000000000000"
	"00000000000001010204013030303100000000002000ff000bb807d0015f90000000800157c1000bb700"
	"010001000000000000b71b0c08";

/* Copy hex text into buf at pos. */
static void
put_hex(unsigned char *buf, size_t pos, const char *hex)
{
	size_t		i;

	for (i = 0; hex[2 * i] != '\0'; i++)
	{
		unsigned int byte;

		sscanf(hex + 2 * i, "%2x", &byte);
		buf[pos + i] = (unsigned char) byte;
	}
}

/* A zeroed buffer of size bytes with a GRIB1 header and "7777" at the end. */
static unsigned char *
make_grib1(size_t size, const char *head_hex)
{
	unsigned char *buf = test_alloc(size);

	memset(buf, 0, size);
	put_hex(buf, 0, head_hex);
	memcpy(buf + size - 4, "7777", 4);
	return buf;
}

/* Walk buf with gik_grib_next; compare with the expected messages as one test. */
static void
check_walk(const unsigned char *buf, size_t len, const int64_t *offsets, const int64_t *lengths,
		   size_t expected, const char *what)
{
	size_t		found = 0;
	size_t		mismatches = 0;
	size_t		pos = 0;
	uint64_t	off;
	uint64_t	mlen;

	while (gik_grib_next(buf, len, pos, &off, &mlen))
	{
		if (found >= expected || (int64_t) off != offsets[found] || (int64_t) mlen != lengths[found])
		{
			tap_diag("%s: message %zu at %llu (+%llu) not expected", what, found,
					 (unsigned long long) off, (unsigned long long) mlen);
			mismatches++;
		}
		found++;
		pos = (size_t) (off + mlen);
	}
	tap_ok(found == expected && mismatches == 0, "%s: gik_grib_next finds %zu messages at ecCodes' offsets/lengths",
		   what, expected);
	if (found != expected)
		tap_diag("found %zu", found);
}

/* Every real GRIB file: walk and check every message. */
static void
test_real_files(void)
{
	size_t		f;

	for (f = 0; f < sizeof(expected_grib_files) / sizeof(expected_grib_files[0]) + 1; f++)
	{
		const ExpectedGribFile *e = f == 0 ? &expected_gfswave : &expected_grib_files[f - 1];
		size_t		len;
		unsigned char *buf = (unsigned char *) test_read_file(data_dir, e->path, &len);
		size_t		i;
		size_t		bad = 0;

		if (!tap_is_int((int64_t) len, e->file_size, "%s: file size", e->path))
			continue;
		check_walk(buf, len, e->offsets, e->lengths, e->nmessages, e->path);
		for (i = 0; i < e->nmessages; i++)
		{
			uint64_t	total = 0;
			int			edition = 0;

			if (gik_grib_check(buf + e->offsets[i], (size_t) e->lengths[i], &total, &edition) != GIK_FRAME_OK ||
				total != (uint64_t) e->lengths[i] || edition != 2)
				bad++;
		}
		tap_is_int((int64_t) bad, 0, "%s: gik_grib_check accepts every message (edition 2, total length)", e->path);
		test_alloc_reset();
	}
}

/* Ranges computed from the real GFS-Wave .idx and its file size frame real messages. */
static void
test_idx_ranges_frame(void)
{
	size_t		idx_len;
	size_t		len;
	char	   *idx = test_read_file(data_dir, "gribberish/gfswave.t18z.atlocn.0p16.f001.grib2.idx", &idx_len);
	unsigned char *buf = (unsigned char *) test_read_file(data_dir, expected_gfswave.path, &len);
	GikIdxLine *rows;
	size_t		n = 0;
	size_t		i;
	size_t		bad = 0;
	GikParseError err;

	if (!tap_ok(idx && buf && gik_idx_parse(idx, idx_len, (int64_t) len, test_alloc, &rows, &n, &err) && n == 19,
				"gfswave idx parses with the real file size"))
		return;
	for (i = 0; i < n; i++)
		bad += gik_grib_check(buf + rows[i].offset, (size_t) rows[i].length, NULL, NULL) != GIK_FRAME_OK;
	tap_is_int((int64_t) bad, 0, "every idx range of gfswave is exactly one GRIB message");
	tap_is_int(gik_grib_check(buf + rows[3].offset, (size_t) rows[3].length + 1, NULL, NULL),
			   GIK_FRAME_LENGTH_MISMATCH, "a range one byte too long is a length mismatch (stale index)");
	test_alloc_reset();
}

/* Corrupted copies of real files. */
static void
test_corrupted(void)
{
	const ExpectedGribFile *e = &expected_gfswave;
	size_t		len;
	unsigned char *orig = (unsigned char *) test_read_file(data_dir, e->path, &len);
	unsigned char *copy;
	uint64_t	total;
	int			edition;
	const size_t last = e->nmessages - 1;

	if (!tap_ok(orig != NULL && len == (size_t) e->file_size, "gfswave readable for corruption tests"))
		return;
	copy = test_alloc(len);

	/* first byte changed */
	memcpy(copy, orig, len);
	copy[0] = 'X';
	tap_is_int(gik_grib_check(copy, (size_t) e->lengths[0], NULL, NULL), GIK_FRAME_NO_GRIB,
			   "first byte changed: check says no GRIB");
	check_walk(copy, len, e->offsets + 1, e->lengths + 1, e->nmessages - 1, "first byte changed");

	/* last byte changed */
	memcpy(copy, orig, len);
	copy[len - 1] = '8';
	tap_is_int(gik_grib_check(copy + e->offsets[last], (size_t) e->lengths[last], NULL, NULL), GIK_FRAME_NO_7777,
			   "last byte changed: check says no 7777");
	check_walk(copy, len, e->offsets, e->lengths, e->nmessages - 1, "last byte changed");

	/* truncated */
	memcpy(copy, orig, len);
	tap_is_int(gik_grib_check(copy + e->offsets[last], (size_t) e->lengths[last] - 1, &total, NULL),
			   GIK_FRAME_LENGTH_MISMATCH, "truncated: check says length mismatch");
	tap_is_int((int64_t) total, e->lengths[last], "truncated: total_len still reports section 0's length");
	check_walk(copy, len - 1, e->offsets, e->lengths, e->nmessages - 1, "truncated by one byte");
	check_walk(copy, 100, e->offsets, e->lengths, 0, "truncated to 100 bytes");

	/* length field altered (GRIB2 length is bytes 8..15, big-endian) */
	memcpy(copy, orig, len);
	copy[15] ^= 0x01;
	tap_is_int(gik_grib_check(copy, (size_t) e->lengths[0], &total, &edition), GIK_FRAME_LENGTH_MISMATCH,
			   "length field altered: check says length mismatch");
	tap_ok(total != (uint64_t) e->lengths[0] && edition == 2, "length field altered: total_len is the altered value");
	check_walk(copy, len, e->offsets + 1, e->lengths + 1, e->nmessages - 1, "length field altered");
	copy[15] = orig[15];
	copy[9] = 0xff;				/* length far beyond the buffer */
	tap_is_int(gik_grib_check(copy, (size_t) e->lengths[0], NULL, NULL), GIK_FRAME_LENGTH_MISMATCH,
			   "huge length field: check says length mismatch");
	check_walk(copy, len, e->offsets + 1, e->lengths + 1, e->nmessages - 1, "huge length field");

	/* edition changed */
	memcpy(copy, orig, len);
	copy[7] = 3;
	tap_is_int(gik_grib_check(copy, (size_t) e->lengths[0], NULL, &edition), GIK_FRAME_BAD_EDITION,
			   "edition 3: check says bad edition");
	tap_is_int(edition, 3, "edition 3: edition is reported");
	test_alloc_reset();
}

/* Short buffers and false "GRIB" matches. */
static void
test_short_and_false_matches(void)
{
	size_t		len;
	unsigned char *msg = (unsigned char *) test_read_file(data_dir, "grib-rs/gdas.t12z.pgrb2.0p25.f000.12", &len);
	static const unsigned char junk[] =
		"GRIB"					/* "GRIB" with nothing sensible after it */
		"xxGRIB\0\0\0\2\0\0\0\0\0\0\0\x20"	/* edition 2, length 32: no 7777 there */
		"GRIGRIB\0\0\x01";		/* edition 1, length 1: too small */
	size_t		junk_len = sizeof(junk) - 1;
	unsigned char *buf;
	uint64_t	off = 0;
	uint64_t	mlen = 0;
	uint64_t	total = 99;
	int			found;

	tap_is_int(gik_grib_check((const unsigned char *) "GRI", 3, &total, NULL), GIK_FRAME_TOO_SHORT, "3 bytes: too short");
	tap_is_int((int64_t) total, 0, "too short: total_len is 0");
	tap_is_int(gik_grib_check((const unsigned char *) "GRIB\0\0", 6, NULL, NULL), GIK_FRAME_TOO_SHORT, "6 bytes: too short");
	tap_is_int(gik_grib_check((const unsigned char *) "GRIB\0\0\0\2\0\0", 10, NULL, NULL), GIK_FRAME_TOO_SHORT,
			   "GRIB2 section 0 cut: too short");
	tap_is_int(gik_grib_check((const unsigned char *) "BUFR\0\0\0\2", 8, NULL, NULL), GIK_FRAME_NO_GRIB, "BUFR: no GRIB");
	tap_is_int(gik_grib_check((const unsigned char *) "GRIB\0\0\x0c\1" "7777", 12, NULL, NULL), GIK_FRAME_OK,
			   "12-byte GRIB1 frame (header and trailer only) is well framed");
	tap_is_int(gik_grib_check(NULL, 0, NULL, NULL), GIK_FRAME_TOO_SHORT, "empty buffer: too short");
	tap_ok(gik_grib_next(NULL, 0, 0, &off, &mlen) == 0, "empty buffer: no message");
	tap_ok(gik_grib_next(junk, junk_len, 0, &off, &mlen) == 0, "junk with false GRIB matches only: no message");
	if (!tap_ok(msg != NULL, "gdas message readable"))
		return;
	buf = test_alloc(junk_len + len + junk_len);
	memcpy(buf, junk, junk_len);
	memcpy(buf + junk_len, msg, len);
	memcpy(buf + junk_len + len, junk, junk_len);
	found = gik_grib_next(buf, junk_len + len + junk_len, 0, &off, &mlen);
	tap_ok(found == 1 && off == junk_len && mlen == len,
		   "false GRIB matches before a real message are skipped (found at %llu)", (unsigned long long) off);
	tap_ok(gik_grib_next(buf, junk_len + len + junk_len, (size_t) (off + mlen), &off, &mlen) == 0,
		   "false GRIB matches after the message give no more messages");
	tap_ok(gik_grib_next(buf, junk_len + len + junk_len, junk_len + 1, &off, &mlen) == 0,
		   "starting past a message's start skips it");
	test_alloc_reset();
}

/* GRIB1: ecCodes' own samples, and ECMWF's large-message convention. */
static void
test_grib1(void)
{
	static const char *const samples[] = {
		"/usr/share/eccodes/samples/GRIB1.tmpl",	/* 107 bytes: grib_ls -p totalLength:i */
		"/usr/share/eccodes/samples/regular_ll_sfc_grib1.tmpl"	/* 108 bytes */
	};
	static const int64_t sample_lengths[] = {107, 108};
	size_t		lens[2];
	unsigned char *bufs[2];
	unsigned char *both;
	uint64_t	total;
	int			edition;
	uint64_t	off;
	uint64_t	mlen;
	int			i;
	unsigned char *big;
	GikFrameStatus status;

	for (i = 0; i < 2; i++)
		bufs[i] = (unsigned char *) test_read_file(data_dir, samples[i], &lens[i]);
	if (bufs[0] == NULL || bufs[1] == NULL)
	{
		for (i = 0; i < 4; i++)
			tap_skip("ecCodes samples (libeccodes-data) not installed", "GRIB1 sample test %d", i + 1);
	}
	else
	{
		for (i = 0; i < 2; i++)
			tap_ok(gik_grib_check(bufs[i], lens[i], &total, &edition) == GIK_FRAME_OK && edition == 1 &&
				   (int64_t) total == sample_lengths[i], "GRIB1 sample %s: edition 1, %lld bytes", samples[i],
				   (long long) sample_lengths[i]);
		both = test_alloc(lens[0] + lens[1]);
		memcpy(both, bufs[0], lens[0]);
		memcpy(both + lens[0], bufs[1], lens[1]);
		tap_ok(gik_grib_next(both, lens[0] + lens[1], 0, &off, &mlen) == 1 && off == 0 && mlen == 107,
			   "GRIB1 samples concatenated: first message");
		tap_ok(gik_grib_next(both, lens[0] + lens[1], 107, &off, &mlen) == 1 && off == 107 && mlen == 108,
			   "GRIB1 samples concatenated: second message");
	}
	test_alloc_reset();

	big = make_grib1(18000108, GRIB1_LARGE_HEAD);
	tap_ok(gik_grib_check(big, 18000108, &total, &edition) == GIK_FRAME_OK && total == 18000108 && edition == 1,
		   "large GRIB1 (ECMWF convention, section 4 length 16): 18000108 bytes like ecCodes");
	tap_ok(gik_grib_next(big, 18000108, 0, &off, &mlen) == 1 && off == 0 && mlen == 18000108,
		   "large GRIB1 found by gik_grib_next");
	tap_is_int(gik_grib_check(big, 200, &total, NULL), GIK_FRAME_LENGTH_MISMATCH,
			   "large GRIB1 cut to 200 bytes: length mismatch");
	tap_is_int(gik_grib_check(big, 60, NULL, NULL), GIK_FRAME_TOO_SHORT,
			   "large GRIB1 cut before section 4: too short to find its length");
	test_alloc_reset();

	big = make_grib1(18945114, GRIB1_LARGE_BITMAP_HEAD);
	put_hex(big, 1125098, "00000a");	/* section 4 length after the 1125006-byte bitmap */
	status = gik_grib_check(big, 18945114, &total, &edition);
	tap_ok(status == GIK_FRAME_OK && total == 18945114,
		   "large GRIB1 with a bitmap section: 18945114 bytes like ecCodes (got %llu)", (unsigned long long) total);
	test_alloc_reset();

	big = make_grib1(12000108, GRIB1_TOP_BIT_HEAD);
	tap_ok(gik_grib_check(big, 12000108, &total, &edition) == GIK_FRAME_OK && total == 12000108,
		   "GRIB1 of 12000108 bytes (top length bit set, section 4 >= 120) keeps its plain length");
	test_alloc_reset();
}

/* Every status has a full sentence. */
static void
test_status_text(void)
{
	int			s;
	bool		ok = true;

	for (s = GIK_FRAME_OK; s <= GIK_FRAME_NO_7777; s++)
	{
		const char *text = gik_frame_status_text((GikFrameStatus) s);

		ok &= text != NULL && text[0] >= 'A' && text[0] <= 'Z' && text[strlen(text) - 1] == '.';
	}
	tap_ok(ok, "every frame status has a full-sentence text");
}

/* Run the GRIB framing tests. */
int
main(int argc, char **argv)
{
	data_dir = test_data_dir(argc, argv);
	test_real_files();
	test_idx_ranges_frame();
	test_corrupted();
	test_short_and_false_matches();
	test_grib1();
	test_status_text();
	return tap_done();
}
