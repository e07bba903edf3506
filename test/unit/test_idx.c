/* Unit tests of the wgrib2 .idx parser on the real fixtures in test/data and on synthetic lines. */
#include "core/idx.h"
#include "expected_grib.h"
#include "tap.h"

#include <stdio.h>
#include <string.h>

static const char *data_dir;

/* One expected ftime normalisation. */
typedef struct FtimeCase
{
	const char *text;
	bool		valid;
	int32_t		start_min;
	int32_t		end_min;
	GikStat		stat;
} FtimeCase;

/* One expected member normalisation. */
typedef struct MemberCase
{
	const char *text;
	GikMemberKind kind;
	int32_t		number;
} MemberCase;

/* One malformed input and the line the error must name. */
typedef struct BadCase
{
	const char *name;
	const char *text;
	int64_t		file_size;
	int32_t		lineno;
} BadCase;

/* Parse text with the test allocator; reports a diagnostic on failure. */
static bool
parse_text(const char *text, size_t len, int64_t file_size, GikIdxLine **rows, size_t *n)
{
	GikParseError err;

	memset(&err, 0, sizeof(err));
	if (gik_idx_parse(text, len, file_size, test_alloc, rows, n, &err))
		return true;
	tap_diag("parse failed at line %d: %s [%s]", (int) err.lineno, err.message, err.excerpt);
	return false;
}

/* Parse a fixture file; *n = 0 and false when it cannot be read or parsed. */
static bool
parse_fixture(const char *relpath, int64_t file_size, GikIdxLine **rows, size_t *n)
{
	size_t		len;
	char	   *text = test_read_file(data_dir, relpath, &len);

	*rows = NULL;
	*n = 0;
	return text != NULL && parse_text(text, len, file_size, rows, n);
}

/* Check a window against expected values, as one test. */
static void
check_window(GikTimeWindow w, int32_t start, int32_t end, GikStat stat, const char *what)
{
	bool		ok = w.valid && w.start_min == start && w.end_min == end && w.stat == stat;

	tap_ok(ok, "%s window is [%d,%d] %s", what, (int) start, (int) end,
		   gik_stat_name(stat) ? gik_stat_name(stat) : "none");
	if (!ok)
		tap_diag("got valid=%d [%d,%d] stat=%d", w.valid, (int) w.start_min, (int) w.end_min, (int) w.stat);
}

/* Check a member against expected values, as one test. */
static void
check_member(GikMember m, GikMemberKind kind, int32_t number, const char *what)
{
	bool		ok = m.kind == kind && m.number == number;

	tap_ok(ok, "%s member is %s %d", what, gik_member_kind_name(kind), (int) number);
	if (!ok)
		tap_diag("got %s %d", gik_member_kind_name(m.kind), (int) m.number);
}

/* GEFS perturbed member p01 f015: APCP on line 18 and the other statistics. */
static void
test_gep01(void)
{
	GikIdxLine *rows;
	size_t		n;
	size_t		i;
	bool		all_p1 = true;

	tap_ok(parse_fixture("dynamical/gep01.t00z.pgrb2s.0p25.f015.idx", -1, &rows, &n), "gep01 f015 parses");
	if (!tap_is_int((int64_t) n, 38, "gep01 f015 has 38 lines"))
		return;
	tap_is_int(rows[17].lineno, 18, "gep01 row 18 is line 18");
	tap_is_int(rows[17].msg_num, 18, "gep01 line 18 is message 18");
	tap_is_text(rows[17].var.ptr, (size_t) rows[17].var.len, "APCP", "gep01 line 18 var");
	tap_is_text(rows[17].level.ptr, (size_t) rows[17].level.len, "surface", "gep01 line 18 level");
	tap_is_text(rows[17].ftime.ptr, (size_t) rows[17].ftime.len, "12-15 hour acc fcst", "gep01 line 18 ftime");
	tap_is_text(rows[17].extra.ptr, (size_t) rows[17].extra.len, "ENS=+1", "gep01 line 18 extra");
	check_window(rows[17].window, 720, 900, GIK_STAT_ACC, "gep01 line 18");
	check_member(rows[17].member, GIK_MEMBER_PERTURBED, 1, "gep01 line 18");
	tap_is_int(rows[17].offset, 8838298, "gep01 line 18 offset");
	tap_is_int(rows[17].length, 9080634 - 8838298, "gep01 line 18 length is next offset - offset");
	tap_is_int(rows[17].ref_ymdh, 2025080100, "gep01 line 18 d=2025080100");
	check_window(rows[0].window, 900, 900, GIK_STAT_NONE, "gep01 line 1 (15 hour fcst)");
	check_window(rows[12].window, 720, 900, GIK_STAT_MAX, "gep01 line 13 TMAX (12-15 hour max fcst)");
	check_window(rows[13].window, 720, 900, GIK_STAT_MIN, "gep01 line 14 TMIN (12-15 hour min fcst)");
	check_window(rows[18].window, 720, 900, GIK_STAT_AVE, "gep01 line 19 CSNOW (12-15 hour ave fcst)");
	tap_is_int(rows[n - 1].length, -1, "gep01 last length is -1 without a file size");
	for (i = 0; i < n; i++)
		all_p1 &= rows[i].member.kind == GIK_MEMBER_PERTURBED && rows[i].member.number == 1;
	tap_ok(all_p1, "gep01 every line is perturbed member 1");
}

/* GFS f006 (first 100 lines): duplicate APCP / ACPCP descriptors are both kept. */
static void
test_gfs_duplicates(void)
{
	GikIdxLine *rows;
	size_t		n;

	tap_ok(parse_fixture("kerchunk/gfs.t00z.pgrb2.0p25.f006.test-limit-100.idx", -1, &rows, &n),
		   "gfs f006 test-limit-100 parses");
	if (!tap_is_int((int64_t) n, 100, "gfs f006 has 100 lines"))
		return;
	tap_is_int(rows[0].offset, 367869364, "gfs f006 first offset");
	tap_is_text(rows[95].var.ptr, (size_t) rows[95].var.len, "APCP", "gfs f006 line 96 is APCP");
	tap_is_text(rows[96].var.ptr, (size_t) rows[96].var.len, "APCP", "gfs f006 line 97 is APCP too");
	tap_is_int(rows[95].offset, 425825980, "gfs f006 first APCP offset");
	tap_is_int(rows[96].offset, 426180378, "gfs f006 second APCP offset (distinct)");
	tap_is_int(rows[95].length, 426180378 - 425825980, "gfs f006 first APCP length");
	tap_is_int(rows[96].length, 426534776 - 426180378, "gfs f006 second APCP length");
	check_window(rows[95].window, 0, 360, GIK_STAT_ACC, "gfs f006 first APCP");
	check_window(rows[96].window, 0, 360, GIK_STAT_ACC, "gfs f006 second APCP");
	tap_is_text(rows[97].var.ptr, (size_t) rows[97].var.len, "ACPCP", "gfs f006 line 98 is ACPCP");
	tap_ok(rows[97].offset != rows[98].offset, "gfs f006 the two ACPCP lines have distinct offsets");
	check_member(rows[95].member, GIK_MEMBER_NONE, -1, "gfs f006 APCP (empty 7th field)");
	tap_is_int(rows[95].extra.len, 0, "gfs f006 7th field is empty");
}

/* HRRR: local "var discipline=..." names, "0-0 day ... fcst" windows. */
static void
test_hrrr(void)
{
	GikIdxLine *rows;
	size_t		n;

	tap_ok(parse_fixture("kerchunk/hrrr.t01z.wrfsubhf00.grib2.idx", -1, &rows, &n), "hrrr subh f00 parses");
	if (tap_is_int((int64_t) n, 49, "hrrr subh f00 has 49 lines"))
	{
		tap_is_text(rows[2].var.ptr, (size_t) rows[2].var.len,
					"var discipline=0 center=7 local_table=1 parmcat=16 parm=201", "hrrr line 3 local var name");
		tap_is_text(rows[2].level.ptr, (size_t) rows[2].level.len, "entire atmosphere", "hrrr line 3 level");
		check_window(rows[2].window, 0, 0, GIK_STAT_NONE, "hrrr line 3 (anl)");
		tap_is_int(rows[2].offset, 797270, "hrrr line 3 offset");
		tap_is_int(rows[2].length, 1279418 - 797270, "hrrr line 3 length");
		check_window(rows[18].window, 0, 0, GIK_STAT_AVE, "hrrr line 19 WIND (0-0 day ave fcst)");
		check_window(rows[25].window, 0, 0, GIK_STAT_ACC, "hrrr line 26 APCP (0-0 day acc fcst)");
		tap_is_int(rows[25].length, 25267745 - 25267533, "hrrr line 26 length");
	}
	tap_ok(parse_fixture("dynamical/hrrr.t00z.wrfsfcf00.grib2.idx", -1, &rows, &n), "hrrr sfc f00 (2025) parses");
	if (tap_is_int((int64_t) n, 170, "hrrr sfc f00 has 170 lines"))
	{
		tap_is_text(rows[37].var.ptr, (size_t) rows[37].var.len, "MAXUVV", "hrrr line 38 var");
		tap_is_text(rows[37].level.ptr, (size_t) rows[37].level.len, "100-1000 mb above ground", "hrrr line 38 level");
		check_window(rows[37].window, 0, 0, GIK_STAT_MAX, "hrrr line 38 (0-0 day max fcst)");
	}
}

/* GEFS mean and control: "ens mean" and "ENS=low-res ctl". */
static void
test_gefs_mean_control(void)
{
	GikIdxLine *rows;
	size_t		n;
	size_t		i;
	bool		all;

	tap_ok(parse_fixture("dynamical/geavg.t00z.pgrb2s.0p25.f000.idx", -1, &rows, &n), "geavg parses");
	if (tap_is_int((int64_t) n, 26, "geavg has 26 lines"))
	{
		for (all = true, i = 0; i < n; i++)
			all &= rows[i].member.kind == GIK_MEMBER_MEAN && rows[i].member.number == -1;
		tap_ok(all, "geavg every line is the ensemble mean");
		tap_is_text(rows[13].var.ptr, (size_t) rows[13].var.len, "TMAX", "geavg line 14 var");
		check_window(rows[13].window, 0, 0, GIK_STAT_MAX, "geavg line 14 (0-0 day max fcst)");
		check_window(rows[14].window, 0, 0, GIK_STAT_MIN, "geavg line 15 (0-0 day min fcst)");
	}
	tap_ok(parse_fixture("dynamical/gec00.t00z.pgrb2a.0p50.f432.idx", -1, &rows, &n), "gec00 f432 parses");
	if (tap_is_int((int64_t) n, 85, "gec00 f432 has 85 lines"))
	{
		for (all = true, i = 0; i < n; i++)
			all &= rows[i].member.kind == GIK_MEMBER_CONTROL && rows[i].member.number == 0;
		tap_ok(all, "gec00 every line is the control (ENS=low-res ctl)");
		check_window(rows[0].window, 432 * 60, 432 * 60, GIK_STAT_NONE, "gec00 line 1 (432 hour fcst)");
		check_window(rows[65].window, 426 * 60, 432 * 60, GIK_STAT_MIN, "gec00 line 66 (426-432 hour min fcst)");
	}
}

/* Every real .idx fixture parses, with one row per line and every ftime understood. */
static void
test_all_fixtures(void)
{
	static const struct
	{
		const char *path;
		size_t		lines;
	}			fixtures[] = {
		{"dynamical/geavg.t00z.pgrb2s.0p25.f000.idx", 26},
		{"dynamical/gec00.t00z.pgrb2a.0p50.f432.idx", 85},
		{"dynamical/gep01.t00z.pgrb2s.0p25.f015.idx", 38},
		{"dynamical/gfs.t00z.pgrb2.0p25.f000.idx", 696},
		{"dynamical/hrrr.t00z.wrfsfcf00.grib2.idx", 170},
		{"gribberish/gfswave.t18z.atlocn.0p16.f001.grib2.idx", 19},
		{"kerchunk/gfs.t00z.pgrb2.0p25.f000.idx", 696},
		{"kerchunk/gfs.t00z.pgrb2.0p25.f006.test-limit-100.idx", 100},
		{"kerchunk/gfs.t06z.pgrb2.0p25.f021.idx", 743},
		{"kerchunk/hrrr.t01z.wrfsfcf00.grib2.idx", 170},
		{"kerchunk/hrrr.t01z.wrfsubhf00.grib2.idx", 49},
	};
	size_t		f;

	for (f = 0; f < sizeof(fixtures) / sizeof(fixtures[0]); f++)
	{
		GikIdxLine *rows;
		size_t		n;
		size_t		i;
		size_t		unknown = 0;
		size_t		bad_lengths = 0;

		parse_fixture(fixtures[f].path, -1, &rows, &n);
		tap_is_int((int64_t) n, (int64_t) fixtures[f].lines, "%s: %zu lines", fixtures[f].path, fixtures[f].lines);
		for (i = 0; i < n; i++)
		{
			unknown += !rows[i].window.valid;
			if (i + 1 < n)
				bad_lengths += rows[i].length != rows[i + 1].offset - rows[i].offset || rows[i].length <= 0;
		}
		tap_is_int((int64_t) unknown, 0, "%s: every ftime normalised", fixtures[f].path);
		tap_is_int((int64_t) bad_lengths, 0, "%s: lengths are offset differences", fixtures[f].path);
		test_alloc_reset();
	}
}

/* GFS-Wave f001: all 19 lengths equal ecCodes' totalLength once the file size is known. */
static void
test_gfswave_lengths(void)
{
	const ExpectedGribFile *grib = &expected_gfswave;
	GikIdxLine *rows;
	size_t		n;
	size_t		i;
	size_t		mismatches = 0;

	tap_ok(parse_fixture("gribberish/gfswave.t18z.atlocn.0p16.f001.grib2.idx", grib->file_size, &rows, &n),
		   "gfswave idx parses with the file size");
	if (!tap_is_int((int64_t) n, 19, "gfswave idx has 19 lines"))
		return;
	for (i = 0; i < n; i++)
	{
		if (rows[i].offset != grib->offsets[i] || rows[i].length != grib->lengths[i])
		{
			tap_diag("line %zu: offset %lld length %lld, expected %lld %lld", i + 1,
					 (long long) rows[i].offset, (long long) rows[i].length,
					 (long long) grib->offsets[i], (long long) grib->lengths[i]);
			mismatches++;
		}
	}
	tap_is_int((int64_t) mismatches, 0, "gfswave: all 19 offsets and lengths equal ecCodes' offset/totalLength");
	tap_is_int(rows[18].length, 33049, "gfswave last length comes from the file size");
	check_window(rows[0].window, 60, 60, GIK_STAT_NONE, "gfswave line 1 (1 hour fcst)");
	tap_is_text(rows[8].level.ptr, (size_t) rows[8].level.len, "1 in sequence", "gfswave line 9 level");

	tap_ok(parse_fixture("gribberish/gfswave.t18z.atlocn.0p16.f001.grib2.idx", -1, &rows, &n),
		   "gfswave idx parses without a file size");
	tap_is_int(n > 0 ? rows[n - 1].length : 0, -1, "gfswave last length is -1 without a file size");
	tap_is_int(n > 1 ? rows[n - 2].length : 0, 45032, "gfswave second-to-last length is still known");
}

/* N.M sub-messages share the parent's full range. */
static void
test_submessages(void)
{
	static const char text[] =
		"1:0:d=2024010100:HGT:500 mb:anl:\n"
		"2.1:100:d=2024010100:UGRD:10 m above ground:anl:\n"
		"2.2:100:d=2024010100:VGRD:10 m above ground:anl:\n"
		"3:250:d=2024010100:TMP:2 m above ground:anl:\n"
		"4.1:400:d=2024010100:UGRD:850 mb:anl:\n"
		"4.2:400:d=2024010100:VGRD:850 mb:anl:\n";
	GikIdxLine *rows;
	size_t		n;

	tap_ok(parse_text(text, sizeof(text) - 1, 1000, &rows, &n), "sub-messages parse");
	if (!tap_is_int((int64_t) n, 6, "sub-messages: 6 rows"))
		return;
	tap_ok(rows[1].msg_num == 2 && rows[1].sub_num == 1 && rows[2].msg_num == 2 && rows[2].sub_num == 2,
		   "sub-messages: N.M split into msg_num and sub_num");
	tap_ok(rows[0].sub_num == 0, "sub-messages: plain N has sub_num 0");
	tap_is_int(rows[1].length, 150, "sub-message 2.1 gets the parent's range");
	tap_is_int(rows[2].length, 150, "sub-message 2.2 gets the parent's range");
	tap_is_int(rows[0].length, 100, "message 1 ends at the next distinct offset");
	tap_is_int(rows[4].length, 600, "sub-message 4.1 at the last offset gets file_size - offset");
	tap_is_int(rows[5].length, 600, "sub-message 4.2 at the last offset gets file_size - offset");
}

/* Line endings, blank lines, missing 7th field, extra fields and offsets past 2^31. */
static void
test_layout_variants(void)
{
	static const char crlf[] =
		"1:0:d=2024010100:TMP:2 m above ground:6 hour fcst:ENS=+3\r\n"
		"\r\n"
		"2:5000000000:d=2024010100:RH:2 m above ground:6 hour fcst:ENS=-2\r\n"
		"   \n"
		"3:9000000000:d=2024010100:PRMSL:mean sea level:6 hour fcst";
	static const char extra[] =
		"1:10:d=2024010100:APCP:surface:0-6 hour acc fcst:prob >2.54:prob fcst 5/20:ENS=+7:x=y\n"
		"2:20:d=2024010100:UGRD:entire atmosphere (considered as a single layer):6 hour fcst:\n"
		"3:30:d=2024010100:REFD:1000 m above ground:15 min fcst:\n"
		"4:40:d=2024010100:APCP:surface:0-15 min acc fcst:\n";
	GikIdxLine *rows;
	size_t		n;

	tap_ok(parse_text(crlf, sizeof(crlf) - 1, -1, &rows, &n), "CRLF, blank lines and no final newline parse");
	if (tap_is_int((int64_t) n, 3, "blank lines are skipped"))
	{
		tap_is_int(rows[1].lineno, 3, "line numbers count blank lines");
		tap_is_int(rows[2].lineno, 5, "last line number counts blank lines");
		tap_is_text(rows[0].extra.ptr, (size_t) rows[0].extra.len, "ENS=+3", "CR is stripped from the 7th field");
		check_member(rows[1].member, GIK_MEMBER_PERTURBED, 2, "ENS=-2 (sign dropped)");
		tap_is_int(rows[1].offset, 5000000000LL, "offsets past 2^31 are kept");
		tap_is_int(rows[1].length, 4000000000LL, "lengths past 2^31 are kept");
		tap_is_text(rows[2].ftime.ptr, (size_t) rows[2].ftime.len, "6 hour fcst", "ftime without a trailing colon");
		tap_is_int(rows[2].extra.len, 0, "absent 7th field gives an empty extra");
		check_member(rows[2].member, GIK_MEMBER_NONE, -1, "absent 7th field");
	}
	tap_ok(parse_text(extra, sizeof(extra) - 1, -1, &rows, &n), "extra fields after the 7th parse");
	if (tap_is_int((int64_t) n, 4, "extra fields and sub-hourly lines: 4 rows"))
	{
		tap_is_text(rows[0].extra.ptr, (size_t) rows[0].extra.len,
					"prob >2.54:prob fcst 5/20:ENS=+7:x=y", "extra keeps everything after the 6th colon");
		check_member(rows[0].member, GIK_MEMBER_PERTURBED, 7, "ENS= found in a later extra field");
		tap_is_text(rows[1].level.ptr, (size_t) rows[1].level.len,
					"entire atmosphere (considered as a single layer)", "level with brackets and spaces");
		tap_is_int(rows[0].length, 10, "first row length");
		tap_is_int(rows[1].length, 10, "second row length");
		check_window(rows[2].window, 15, 15, GIK_STAT_NONE, "HRRR sub-hourly line (15 min fcst)");
		check_window(rows[3].window, 0, 15, GIK_STAT_ACC, "HRRR sub-hourly line (0-15 min acc fcst)");
		tap_is_int(rows[3].length, -1, "last row length unknown without a file size");
	}
}

/* Empty and blank-only input give zero rows. */
static void
test_empty(void)
{
	GikIdxLine *rows = (GikIdxLine *) 1;
	size_t		n = 99;

	tap_ok(parse_text("", 0, -1, &rows, &n) && n == 0, "empty input gives 0 lines");
	tap_ok(parse_text(NULL, 0, 100, &rows, &n) && n == 0, "NULL empty input gives 0 lines");
	tap_ok(parse_text("\n\r\n  \n", 6, -1, &rows, &n) && n == 0, "blank lines only give 0 lines");
}

/* Every malformed line fails with its line number. */
static void
test_malformed(void)
{
	static const BadCase cases[] = {
		{"fewer than 6 fields", "1:0:d=2024010100:TMP:2 m above ground:anl:\n2:10:d=2024010100:TMP:anl\n", -1, 2},
		{"only N", "\n\n7\n", -1, 3},
		{"non-numeric N", "x:0:d=2024010100:TMP:surface:anl:\n", -1, 1},
		{"N.M without M", "1.:0:d=2024010100:TMP:surface:anl:\n", -1, 1},
		{"N followed by junk", "1a:0:d=2024010100:TMP:surface:anl:\n", -1, 1},
		{"N too large", "99999999999:0:d=2024010100:TMP:surface:anl:\n", -1, 1},
		{"non-numeric offset", "1:0:d=2024010100:TMP:surface:anl:\n2:abc:d=2024010100:TMP:surface:anl:\n", -1, 2},
		{"empty offset", "1::d=2024010100:TMP:surface:anl:\n", -1, 1},
		{"offset with junk", "1:12x:d=2024010100:TMP:surface:anl:\n", -1, 1},
		{"negative offset", "1:-5:d=2024010100:TMP:surface:anl:\n", -1, 1},
		{"offset overflows int64", "1:99999999999999999999:d=2024010100:TMP:surface:anl:\n", -1, 1},
		{"d= with 9 digits", "1:0:d=202401010:TMP:surface:anl:\n", -1, 1},
		{"d= with 12 digits", "1:0:d=202401010000:TMP:surface:anl:\n", -1, 1},
		{"d= with a letter", "1:0:d=20240101x0:TMP:surface:anl:\n", -1, 1},
		{"no d=", "1:0:2024010100:TMP:surface:anl:\n", -1, 1},
		{"d= beyond int32", "1:0:d=2999010100:TMP:surface:anl:\n", -1, 1},
		{"decreasing offset", "1:100:d=2024010100:TMP:surface:anl:\n\n2:50:d=2024010100:RH:surface:anl:\n", -1, 3},
		{"equal offset, other message", "1:100:d=2024010100:TMP:surface:anl:\n2:100:d=2024010100:RH:surface:anl:\n", -1, 2},
		{"file size equal to last offset", "1:0:d=2024010100:TMP:surface:anl:\n2:100:d=2024010100:RH:surface:anl:\n", 100, 2},
		{"file size below last offset", "1:0:d=2024010100:TMP:surface:anl:\n2:100:d=2024010100:RH:surface:anl:\n\n", 50, 2},
	};
	size_t		i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		GikIdxLine *rows;
		size_t		n = 0;
		GikParseError err;
		bool		ok;

		memset(&err, 0, sizeof(err));
		ok = gik_idx_parse(cases[i].text, strlen(cases[i].text), cases[i].file_size,
						   test_alloc, &rows, &n, &err);
		tap_ok(!ok && err.lineno == cases[i].lineno && err.message[0] != '\0' &&
			   err.message[strlen(err.message) - 1] == '.',
			   "malformed (%s) fails on line %d with a sentence", cases[i].name, (int) cases[i].lineno);
		if (ok || err.lineno != cases[i].lineno)
			tap_diag("ok=%d lineno=%d message=%s", ok, (int) err.lineno, err.message);
		else
			tap_diag("%s [%s]", err.message, err.excerpt);
	}
}

/* A string of n copies of c, made with the test allocator. */
static char *
repeat(char c, size_t n)
{
	char	   *s = test_alloc(n + 1);

	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* Lines emitted by a stream parse, counted. */
static void
count_emitted(const GikIdxLine *line, void *arg)
{
	(void) line;
	(*(size_t *) arg)++;
}

/*
 * Each descriptor field (VAR, LEVEL, FTIME, EXTRA) may hold GIK_INDEX_MAX_FIELD bytes; one
 * byte more fails on its line (the third), by both entry points, with the field named.
 */
static void
test_field_limits(void)
{
	static const char *const names[] = {"VAR", "LEVEL", "FTIME", "EXTRA"};
	static const char head[] = "1:0:d=2024010100:TMP:2 m above ground:anl:\n"
		"2:100:d=2024010100:RH:2 m above ground:anl:\n";

	for (int f = 0; f < 4; f++)
		for (int extra = 0; extra <= 1; extra++)
		{
			char	   *big = repeat(f == 2 ? 'h' : 'x', GIK_INDEX_MAX_FIELD + (size_t) extra);
			size_t		cap = sizeof(head) + GIK_INDEX_MAX_FIELD + 200;
			char	   *text = test_alloc(cap);
			GikIdxLine *rows;
			size_t		n = 0;
			size_t		emitted = 0;
			GikParseError err = {0};
			GikParseError err2 = {0};
			bool		ok;
			bool		ok2;
			char		expected[200];

			snprintf(text, cap, "%s3:200:d=2024010100:%s:%s:%s:%s\n4:300:d=2024010100:UGRD:surface:anl:\n", head,
					 f == 0 ? big : "TMP", f == 1 ? big : "surface", f == 2 ? big : "anl", f == 3 ? big : "ENS=+1");
			ok = gik_idx_parse(text, strlen(text), -1, test_alloc, &rows, &n, &err);
			ok2 = gik_idx_parse_stream(text, strlen(text), -1, test_alloc, count_emitted, &emitted, &err2);
			if (!extra)
			{
				tap_ok(ok && ok2 && n == 4 && emitted == 4, "%s of %d bytes parses", names[f], GIK_INDEX_MAX_FIELD);
				if (ok && n == 4)
					tap_is_int(f == 0 ? rows[2].var.len : f == 1 ? rows[2].level.len : f == 2 ? rows[2].ftime.len : rows[2].extra.len,
							   GIK_INDEX_MAX_FIELD, "%s keeps its %d bytes", names[f], GIK_INDEX_MAX_FIELD);
				continue;
			}
			snprintf(expected, sizeof(expected), "Expected the %s field to be at most %d bytes long, but it is %d bytes long.",
					 names[f], GIK_INDEX_MAX_FIELD, GIK_INDEX_MAX_FIELD + 1);
			tap_ok(!ok && err.lineno == 3, "%s of %d bytes fails on line 3 (got line %d)", names[f], GIK_INDEX_MAX_FIELD + 1, (int) err.lineno);
			tap_is_text(err.message, strlen(err.message), expected, "%s of %d bytes: the sentence names the field", names[f], GIK_INDEX_MAX_FIELD + 1);
			tap_ok(strncmp(err.excerpt, "3:200:d=2024010100:", 19) == 0 && strlen(err.excerpt) == 80, "%s too long: the excerpt is the line's start", names[f]);
			/* streaming: line 1 was emitted when line 2 gave its length; line 2 still waits for line 3's offset */
			tap_ok(!ok2 && err2.lineno == 3 && strcmp(err2.message, err.message) == 0 && emitted == 1,
				   "%s too long, streaming: same error, %zu line emitted before it", names[f], emitted);
		}
}

/* Lines may hold GIK_INDEX_MAX_LINE bytes; a longer one fails on its line, before its fields are read. */
static void
test_line_limit(void)
{
	static const char head[] = "1:0:d=2024010100:TMP:surface:anl:\n";
	size_t		cap = sizeof(head) + GIK_INDEX_MAX_LINE + 16;
	char	   *text = test_alloc(cap);
	size_t		len;
	GikIdxLine *rows;
	size_t		n;
	GikParseError err = {0};
	char		expected[200];

	/* line 2: GIK_INDEX_MAX_LINE bytes, then GIK_INDEX_MAX_LINE + 1 (an EXTRA far over its limit either way) */
	for (int over = 0; over <= 1; over++)
	{
		size_t		pre = strlen("2:10:d=2024010100:TMP:surface:anl:");

		memset(&err, 0, sizeof(err));
		memcpy(text, head, sizeof(head) - 1);
		memcpy(text + sizeof(head) - 1, "2:10:d=2024010100:TMP:surface:anl:", pre);
		memset(text + sizeof(head) - 1 + pre, 'e', GIK_INDEX_MAX_LINE + (size_t) over - pre);
		len = sizeof(head) - 1 + GIK_INDEX_MAX_LINE + (size_t) over;
		memcpy(text + len, "\r\n", 2);
		len += 2;
		tap_ok(!gik_idx_parse(text, len, -1, test_alloc, &rows, &n, &err) && err.lineno == 2,
			   "a line of %d bytes fails on line 2", GIK_INDEX_MAX_LINE + over);
		if (over)
			snprintf(expected, sizeof(expected), "Expected lines of at most %d bytes, but this one is %d bytes long.",
					 GIK_INDEX_MAX_LINE, GIK_INDEX_MAX_LINE + 1);
		else
			snprintf(expected, sizeof(expected), "Expected the EXTRA field to be at most %d bytes long, but it is %zu bytes long.",
					 GIK_INDEX_MAX_FIELD, GIK_INDEX_MAX_LINE - pre);
		tap_is_text(err.message, strlen(err.message), expected, "a line of %d bytes (\\r\\n not counted): %s",
					GIK_INDEX_MAX_LINE + over, over ? "the line is too long" : "its EXTRA field is");
	}
}

/* Equal offsets are accepted for exact duplicate lines (same message number). */
static void
test_exact_duplicates(void)
{
	static const char text[] =
		"1:0:d=2024010100:TMP:surface:anl:\n"
		"1:0:d=2024010100:TMP:surface:anl:\n"
		"2:70:d=2024010100:RH:surface:anl:\n";
	GikIdxLine *rows;
	size_t		n;

	tap_ok(parse_text(text, sizeof(text) - 1, -1, &rows, &n) && n == 3, "exact duplicate lines are accepted");
	tap_ok(n == 3 && rows[0].length == 70 && rows[1].length == 70, "exact duplicates share the range");
}

/* ftime normalisation table. */
static void
test_ftime(void)
{
	static const FtimeCase cases[] = {
		{"anl", true, 0, 0, GIK_STAT_NONE},
		{"6 hour fcst", true, 360, 360, GIK_STAT_NONE},
		{"0 hour fcst", true, 0, 0, GIK_STAT_NONE},
		{"384 hour fcst", true, 23040, 23040, GIK_STAT_NONE},
		{"15 min fcst", true, 15, 15, GIK_STAT_NONE},
		{"2 day fcst", true, 2880, 2880, GIK_STAT_NONE},
		{"120 sec fcst", true, 2, 2, GIK_STAT_NONE},
		{"0-6 hour acc fcst", true, 0, 360, GIK_STAT_ACC},
		{"12-15 hour ave fcst", true, 720, 900, GIK_STAT_AVE},
		{"426-432 hour max fcst", true, 25560, 25920, GIK_STAT_MAX},
		{"426-432 hour min fcst", true, 25560, 25920, GIK_STAT_MIN},
		{"0-15 min acc fcst", true, 0, 15, GIK_STAT_ACC},
		{"45-60 min ave fcst", true, 45, 60, GIK_STAT_AVE},
		{"0-0 day max fcst", true, 0, 0, GIK_STAT_MAX},
		{"0-1 day acc fcst", true, 0, 1440, GIK_STAT_ACC},
		{"1-2 day ave fcst", true, 1440, 2880, GIK_STAT_AVE},
		{"12-15 hour fcst", true, 720, 900, GIK_STAT_NONE},
		{"30 sec fcst", false, 0, 0, GIK_STAT_NONE},
		{"1 month fcst", false, 0, 0, GIK_STAT_NONE},
		{"0-1 year acc fcst", false, 0, 0, GIK_STAT_NONE},
		{"0-6 hour acc@(fcst,dt=1 hour)", false, 0, 0, GIK_STAT_NONE},
		{"2@3 hour ave", false, 0, 0, GIK_STAT_NONE},
		{"12-15 hour ave anl", false, 0, 0, GIK_STAT_NONE},
		{"15-12 hour acc fcst", false, 0, 0, GIK_STAT_NONE},
		{"6 hour acc fcst", false, 0, 0, GIK_STAT_NONE},
		{"0-6 hour rms fcst", false, 0, 0, GIK_STAT_NONE},
		{"99999999999 hour fcst", false, 0, 0, GIK_STAT_NONE},
		{"35791395 hour fcst", false, 0, 0, GIK_STAT_NONE},
		{"6 hour  fcst", false, 0, 0, GIK_STAT_NONE},
		{"6 hour fcst ", false, 0, 0, GIK_STAT_NONE},
		{"6 hour", false, 0, 0, GIK_STAT_NONE},
		{"-6 hour fcst", false, 0, 0, GIK_STAT_NONE},
		{"anl ", false, 0, 0, GIK_STAT_NONE},
		{"", false, 0, 0, GIK_STAT_NONE},
	};
	size_t		i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		GikTimeWindow w = gik_idx_parse_ftime(cases[i].text, strlen(cases[i].text));
		bool		ok = w.valid == cases[i].valid &&
			(!w.valid || (w.start_min == cases[i].start_min && w.end_min == cases[i].end_min &&
						  w.stat == cases[i].stat));

		tap_ok(ok, "ftime \"%s\" -> %s [%d,%d] %s", cases[i].text, cases[i].valid ? "valid" : "not understood",
			   (int) cases[i].start_min, (int) cases[i].end_min,
			   gik_stat_name(cases[i].stat) ? gik_stat_name(cases[i].stat) : "none");
		if (!ok)
			tap_diag("got valid=%d [%d,%d] stat=%d", w.valid, (int) w.start_min, (int) w.end_min, (int) w.stat);
	}
}

/* 7th-field member normalisation table. */
static void
test_member(void)
{
	static const MemberCase cases[] = {
		{"ENS=+1", GIK_MEMBER_PERTURBED, 1},
		{"ENS=+30", GIK_MEMBER_PERTURBED, 30},
		{"ENS=-3", GIK_MEMBER_PERTURBED, 3},
		{"ENS=low-res ctl", GIK_MEMBER_CONTROL, 0},
		{"ENS=hi-res ctl", GIK_MEMBER_CONTROL, 0},
		{"ens mean", GIK_MEMBER_MEAN, -1},
		{"ens spread", GIK_MEMBER_SPREAD, -1},
		{"", GIK_MEMBER_NONE, -1},
		{"ENS=+0", GIK_MEMBER_OTHER, -1},
		{"ENS=+", GIK_MEMBER_OTHER, -1},
		{"ENS=+1x", GIK_MEMBER_OTHER, -1},
		{"ENS=12", GIK_MEMBER_OTHER, -1},
		{"ENS=? table4.6=5 pert=2", GIK_MEMBER_OTHER, -1},
		{"MM-ENS=4", GIK_MEMBER_OTHER, -1},
		{"ens std dev", GIK_MEMBER_OTHER, -1},
		{"90% all members", GIK_MEMBER_OTHER, -1},
		{"prob >2.54", GIK_MEMBER_NONE, -1},
		{"prob >2.54:ENS=+7", GIK_MEMBER_PERTURBED, 7},
		{"ens mean:", GIK_MEMBER_MEAN, -1},
		{"ENS", GIK_MEMBER_NONE, -1},
	};
	size_t		i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char		what[64];

		snprintf(what, sizeof(what), "\"%s\"", cases[i].text);
		check_member(gik_idx_parse_member(cases[i].text, strlen(cases[i].text)),
					 cases[i].kind, cases[i].number, what);
	}
}

/* Run the .idx tests. */
int
main(int argc, char **argv)
{
	data_dir = test_data_dir(argc, argv);
	test_gep01();
	test_gfs_duplicates();
	test_hrrr();
	test_gefs_mean_control();
	test_all_fixtures();
	test_gfswave_lengths();
	test_submessages();
	test_layout_variants();
	test_empty();
	test_malformed();
	test_field_limits();
	test_line_limit();
	test_exact_duplicates();
	test_ftime();
	test_member();
	return tap_done();
}
