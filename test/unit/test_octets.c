/* Unit tests of the bounded octet reader (core/octets.h): every read that does not fit reads nothing and is reported. */
#include "core/octets.h"
#include "tap.h"

#include <string.h>

/* Reads inside the view return the octets; the flag stays clear. */
static void
test_inside(void)
{
	static const unsigned char bytes[] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x0f};
	bool		overrun = false;
	GikOctets	o = gik_octets(bytes, sizeof(bytes), &overrun);
	GikOctets	sub;

	tap_is_int((int64_t) gik_octets_u8(&o, 0), 0x12, "u8 at 0");
	tap_is_int((int64_t) gik_octets_u8(&o, 8), 0x0f, "u8 at the last octet");
	tap_is_int((int64_t) gik_octets_be(&o, 0, 2), 0x1234, "2-octet big-endian");
	tap_is_int((int64_t) gik_octets_be(&o, 5, 4), (int64_t) 0xbcdef00f, "4-octet big-endian ending at the last octet");
	tap_ok(gik_octets_be(&o, 1, 8) == UINT64_C(0x3456789abcdef00f), "8-octet big-endian");
	tap_is_int((int64_t) gik_octets_be(&o, 9, 0), 0, "0 octets at the end read nothing and fit");
	tap_is_int((int64_t) gik_octets_bits(&o, 4, 8), 0x23, "8 bits across an octet boundary");
	tap_is_int((int64_t) gik_octets_bits(&o, 68, 4), 0xf, "the last 4 bits");
	tap_is_int((int64_t) gik_octets_bits(&o, 0, 32), (int64_t) 0x12345678, "32 bits");
	tap_is_int((int64_t) gik_octets_bits(&o, 3, 32), (int64_t) ((UINT64_C(0x123456789a) >> 5) & 0xffffffffu), "32 bits over five octets");
	tap_is_int((int64_t) gik_octets_popcount(&o, 72), 36, "set bits of the whole view");
	tap_is_int((int64_t) gik_octets_popcount(&o, 3), 0, "set bits among the first 3 bits");
	tap_is_int((int64_t) gik_octets_popcount(&o, 12), 4, "set bits among the first 12 bits");
	tap_ok(gik_octets_equal(&o, 7, "\xf0\x0f", 2), "equal at the end");
	sub = gik_octets_cut(&o, 2, 3);
	tap_ok(sub.len == 3 && gik_octets_u8(&sub, 0) == 0x56 && gik_octets_u8(&sub, 2) == 0x9a, "a cut view reads from its own start");
	tap_ok(!overrun, "no read overran");
}

/* Reads past the end, at absurd offsets or of absurd sizes, return 0 and set the flag. */
static void
test_outside(void)
{
	static const unsigned char bytes[] = {1, 2, 3, 4};
	struct
	{
		const char *what;
		int			kind;
		uint64_t	off;
		int			n;
	}			cases[] = {
		{"u8 one past the end", 0, 4, 0},
		{"u8 at UINT64_MAX", 0, UINT64_MAX, 0},
		{"2 octets over the end", 1, 3, 2},
		{"4 octets at UINT64_MAX - 1 (offset + size overflows)", 1, UINT64_MAX - 1, 4},
		{"9 octets (more than 8)", 1, 0, 9},
		{"a negative size", 1, 0, -1},
		{"bits past the last octet", 2, 30, 4},
		{"bits at UINT64_MAX", 2, UINT64_MAX, 2},
		{"33 bits", 2, 0, 33},
		{"popcount of 33 bits", 3, 33, 0},
		{"popcount of UINT64_MAX bits", 3, UINT64_MAX, 0},
		{"equal past the end", 4, 3, 2},
		{"cut past the end", 5, 2, 3},
		{"cut at UINT64_MAX", 5, UINT64_MAX, 1},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		bool		overrun = false;
		GikOctets	o = gik_octets(bytes, sizeof(bytes), &overrun);
		uint64_t	v = 0;
		GikOctets	sub;

		switch (cases[i].kind)
		{
			case 0:
				v = gik_octets_u8(&o, cases[i].off);
				break;
			case 1:
				v = gik_octets_be(&o, cases[i].off, cases[i].n);
				break;
			case 2:
				v = gik_octets_bits(&o, cases[i].off, cases[i].n);
				break;
			case 3:
				v = gik_octets_popcount(&o, cases[i].off);
				break;
			case 4:
				v = gik_octets_equal(&o, cases[i].off, "\4\4", 2);
				break;
			case 5:
				sub = gik_octets_cut(&o, cases[i].off, 3);
				v = sub.len + gik_octets_u8(&sub, 0);
				break;
		}
		tap_ok(v == 0 && overrun, "%s: reads 0 and reports the overrun", cases[i].what);
	}
}

/* A view cut from another shares its flag; fits() sets nothing. */
static void
test_shared_flag(void)
{
	static const unsigned char bytes[] = {1, 2, 3, 4, 5, 6};
	bool		overrun = false;
	GikOctets	o = gik_octets(bytes, sizeof(bytes), &overrun);
	GikOctets	sub = gik_octets_cut(&o, 2, 2);

	tap_ok(!gik_octets_fits(&sub, 1, 2) && !gik_octets_fits(&o, UINT64_MAX, 1) && gik_octets_fits(&o, 6, 0) && !overrun,
		   "fits() answers without setting the flag, UINT64_MAX offsets included");
	tap_ok(gik_octets_u8(&sub, 2) == 0 && overrun, "a read past a cut view reads 0 (not the parent's next octet) and sets the shared flag");
}

/* find() locates a pattern only where all of it lies inside the view. */
static void
test_find(void)
{
	static const char text[] = "xxGRIBxGRIxGRIB";
	bool		overrun = false;
	GikOctets	o = gik_octets(text, sizeof(text) - 1, &overrun);
	GikOctets	cut = gik_octets_cut(&o, 0, 14);

	tap_is_int((int64_t) gik_octets_find(&o, 0, "GRIB", 4), 2, "first match");
	tap_is_int((int64_t) gik_octets_find(&o, 3, "GRIB", 4), 11, "a partial match is skipped");
	tap_is_int((int64_t) gik_octets_find(&cut, 3, "GRIB", 4), 14, "a match running past the view is not found (returns len)");
	tap_is_int((int64_t) gik_octets_find(&o, UINT64_MAX, "GRIB", 4), 15, "a start past the end finds nothing");
	tap_ok(!overrun, "find sets no flag");
}

int
main(void)
{
	test_inside();
	test_outside();
	test_shared_flag();
	test_find();
	return tap_done();
}
