/* Bounded reads of octets (GRIB framing and structure checks): pure C, no PostgreSQL headers. */
#ifndef GIK_CORE_OCTETS_H
#define GIK_CORE_OCTETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A view of len octets at p. Every read names an offset and a size and first checks that
 * offset + size <= len, without overflow. A read that does not fit touches no memory,
 * returns 0 and sets *overrun; views cut from a view share its overrun flag. So code that
 * reads only through views never reads outside them, and learns of every read that did
 * not fit by looking at one flag.
 */
typedef struct GikOctets
{
	const unsigned char *p;
	uint64_t	len;
	bool	   *overrun;		/* never NULL */
} GikOctets;

/* A view of p[0..len) whose failed reads set *overrun (which must not be NULL). */
extern GikOctets gik_octets(const void *p, uint64_t len, bool *overrun);

/* True when n octets at off lie inside the view; sets nothing. */
static inline bool
gik_octets_fits(const GikOctets *o, uint64_t off, uint64_t n)
{
	return off <= o->len && n <= o->len - off;
}

/* The n octets at off as a view of their own; an empty view (and *overrun set) when they do not fit. */
extern GikOctets gik_octets_cut(const GikOctets *o, uint64_t off, uint64_t n);

/* Octet at off. */
extern unsigned gik_octets_u8(const GikOctets *o, uint64_t off);

/* Big-endian unsigned integer of n octets (0 <= n <= 8) at off. */
extern uint64_t gik_octets_be(const GikOctets *o, uint64_t off, int n);

/*
 * Unsigned integer of nbits bits (0 <= nbits <= 32) at bit offset bit, most significant bit first;
 * 0 (and *overrun set) when they lie outside. Inline: structure checks read one per packed group.
 */
static inline uint64_t
gik_octets_bits(const GikOctets *o, uint64_t bit, int nbits)
{
	uint64_t	v = 0;
	uint64_t	first;
	uint64_t	last;

	if (nbits == 0)
		return 0;
	if (nbits < 0 || nbits > 32 || bit > UINT64_MAX - (uint64_t) nbits ||
		!gik_octets_fits(o, bit >> 3, ((bit + (uint64_t) nbits - 1) >> 3) - (bit >> 3) + 1))
	{
		*o->overrun = true;
		return 0;
	}
	first = bit >> 3;
	last = bit + (uint64_t) nbits - 1;
	for (uint64_t b = first; b <= last >> 3; b++)
		v = (v << 8) | o->p[b];
	v >>= 7 - (last & 7);
	return v & ((UINT64_C(1) << nbits) - 1);
}

/* Number of set bits among the first nbits bits. */
extern uint64_t gik_octets_popcount(const GikOctets *o, uint64_t nbits);

/* True when the n octets at off equal s[0..n); false (and *overrun set) when they do not fit. */
extern bool gik_octets_equal(const GikOctets *o, uint64_t off, const void *s, size_t n);

/* Offset of the first occurrence of s[0..n) (n >= 1) at or after from, lying inside the view; o->len when none. */
extern uint64_t gik_octets_find(const GikOctets *o, uint64_t from, const void *s, size_t n);

#endif
