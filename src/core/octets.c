/* Bounded reads of octets: every read checks its offset and size against the view first. */
#include "core/octets.h"

#include <string.h>

/* A view of p[0..len). */
GikOctets
gik_octets(const void *p, uint64_t len, bool *overrun)
{
	GikOctets	o = {(const unsigned char *) p, len, overrun};

	return o;
}

/* Mark a read that did not fit and return false. */
static bool
overran(const GikOctets *o)
{
	*o->overrun = true;
	return false;
}

/* True when n octets at off fit; otherwise marks the overrun. */
static bool
check(const GikOctets *o, uint64_t off, uint64_t n)
{
	return gik_octets_fits(o, off, n) || overran(o);
}

/* The n octets at off as a view. */
GikOctets
gik_octets_cut(const GikOctets *o, uint64_t off, uint64_t n)
{
	GikOctets	sub = {o->p, 0, o->overrun};

	if (check(o, off, n))
	{
		sub.p = o->p + off;
		sub.len = n;
	}
	return sub;
}

/* Octet at off, 0 when it lies outside. */
unsigned
gik_octets_u8(const GikOctets *o, uint64_t off)
{
	return check(o, off, 1) ? o->p[off] : 0;
}

/* Big-endian unsigned integer of n octets at off, 0 when they lie outside. */
uint64_t
gik_octets_be(const GikOctets *o, uint64_t off, int n)
{
	uint64_t	v = 0;

	if (n < 0 || n > 8 || !check(o, off, (uint64_t) n))
	{
		overran(o);
		return 0;
	}
	for (int i = 0; i < n; i++)
		v = (v << 8) | o->p[off + (uint64_t) i];
	return v;
}

/* Set bits among the first nbits bits; 0 when the view holds fewer bits. */
uint64_t
gik_octets_popcount(const GikOctets *o, uint64_t nbits)
{
	uint64_t	n = 0;
	uint64_t	whole = nbits / 8;

	if (!check(o, 0, whole + (nbits % 8 != 0)))
		return 0;
	for (uint64_t i = 0; i < whole; i++)
		n += (uint64_t) __builtin_popcount(o->p[i]);
	if (nbits % 8)
		n += (uint64_t) __builtin_popcount(o->p[whole] >> (8 - nbits % 8));
	return n;
}

/* True when the n octets at off equal s. */
bool
gik_octets_equal(const GikOctets *o, uint64_t off, const void *s, size_t n)
{
	return check(o, off, n) && memcmp(o->p + off, s, n) == 0;
}

/* First occurrence of s[0..n) at or after from; o->len when there is none. */
uint64_t
gik_octets_find(const GikOctets *o, uint64_t from, const void *s, size_t n)
{
	const unsigned char first = *(const unsigned char *) s;

	if (n == 0)
		return o->len;
	while (gik_octets_fits(o, from, n))
	{
		const unsigned char *hit = memchr(o->p + from, first, (size_t) (o->len - from - n + 1));

		if (hit == NULL)
			break;
		from = (uint64_t) (hit - o->p);
		if (memcmp(hit, s, n) == 0)
			return from;
		from++;
	}
	return o->len;
}
