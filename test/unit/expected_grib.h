/*
 * Message offsets and lengths of the real GRIB fixtures in test/data, as
 * reported by ecCodes 2.28: grib_ls -p offset:i,totalLength:i FILE
 */
#ifndef GIK_TEST_EXPECTED_GRIB_H
#define GIK_TEST_EXPECTED_GRIB_H

#include <stddef.h>
#include <stdint.h>

typedef struct ExpectedGribFile
{
	const char *path;			/* relative to test/data */
	int64_t		file_size;		/* stat -c %s */
	size_t		nmessages;
	int64_t		offsets[19];
	int64_t		lengths[19];
} ExpectedGribFile;

static const ExpectedGribFile expected_gfswave __attribute__((unused)) = {
	"gribberish/gfswave.t18z.atlocn.0p16.f001.grib2", 690200, 19,
	{0, 41723, 100527, 142623, 184546, 213376, 247367, 301077, 325418, 354938,
	379958, 399643, 426713, 462071, 495044, 520862, 559540, 612119, 657151},
	{41723, 58804, 42096, 41923, 28830, 33991, 53710, 24341, 29520, 25020,
	19685, 27070, 35358, 32973, 25818, 38678, 52579, 45032, 33049}
};

static const ExpectedGribFile expected_grib_files[] __attribute__((unused)) = {
	{"grib-rs/20240101000000-0h-oper-fc.grib2.0-10", 2014943, 10,
		{0, 205483, 427603, 427827, 640309, 878511, 1154549, 1358817, 1562823, 1799100},
	{205483, 222120, 224, 212482, 238202, 276038, 204268, 204006, 236277, 215843}},
	{"grib-rs/gdas.t12z.pgrb2.0p25.f000.12", 305744, 1, {0}, {305744}},
	{"gribberish/ecmwf-ifs-oper-surface.grib2", 2139606, 5,
		{0, 111849, 1130291, 1419502, 1603950},
	{111849, 1018442, 289211, 184448, 535656}},
	{"kerchunk/gec00_20250101_00_soilw.grib", 95343, 1, {0}, {95343}},
};

#endif
