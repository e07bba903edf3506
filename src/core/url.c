/* URL mapping and network policy checks. */
#include "core/url.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Store a reason for rejecting a URL and return GIK_URL_INVALID. */
static GikUrlKind
invalid(GikAllocFn alloc, char **resolved, const char *reason)
{
	*resolved = gik_strndup(alloc, reason, strlen(reason));
	return GIK_URL_INVALID;
}

/* True for RFC 3986 unreserved characters and '/'. */
static bool
is_key_char(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
}

/* True for RFC 3986 unreserved characters: ALPHA, DIGIT, '-', '.', '_', '~'. */
static bool
is_unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* True for characters a path may hold as they are (RFC 3986 pchar without '%', and '/'). */
static bool
is_path_char(unsigned char c)
{
	return c < 0x80 && (is_unreserved(c) || strchr("!$&'()*+,;=:@/", c) != NULL);
}

/* Value of a hex digit, or -1. */
static int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (unsigned char) tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Store a reason for refusing a URL and return false. */
static bool
refuse(GikAllocFn alloc, char **out, const char *reason)
{
	*out = gik_strndup(alloc, reason, strlen(reason));
	return false;
}

/*
 * Append one path segment (seg[0..len), already decoded) to the path built in out[0..*n),
 * resolving "." and ".." as RFC 3986 section 5.2.4 does; last: no segment follows.
 * Returns NULL, or a reason when ".." would climb above the root.
 */
static const char *
append_segment(char *out, size_t *n, const char *seg, size_t len, bool last)
{
	if (len == 1 && seg[0] == '.')
	{
		if (last)
			out[(*n)++] = '/';
		return NULL;
	}
	if (len == 2 && seg[0] == '.' && seg[1] == '.')
	{
		if (*n == 0)
			return "The URL's path climbs above the root with a \"..\" segment.";
		while (*n > 0 && out[*n - 1] != '/')
			(*n)--;
		(*n)--;					/* the '/' before the segment removed */
		if (last)
			out[(*n)++] = '/';
		return NULL;
	}
	out[(*n)++] = '/';
	memcpy(out + *n, seg, len);
	*n += len;
	return NULL;
}

/* Normalise an http(s) URL; see url.h. */
bool
gik_url_normalize(const char *url, GikAllocFn alloc, char **out)
{
	size_t		scheme_len;
	const char *auth;
	const char *path;
	const char *query;
	const char *frag;
	size_t		auth_len;
	char	   *buf;
	size_t		n = 0;
	size_t		path_start;
	size_t		path_len = 0;
	char	   *seg;
	size_t		seg_len = 0;

	if (url == NULL || *url == '\0')
		return refuse(alloc, out, "The URL is empty.");
	for (const unsigned char *p = (const unsigned char *) url; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == ' ')
			return refuse(alloc, out, "The URL holds spaces or control characters.");
	if (strncasecmp(url, "http://", 7) == 0)
		scheme_len = 4;
	else if (strncasecmp(url, "https://", 8) == 0)
		scheme_len = 5;
	else
		return refuse(alloc, out, "Only http:// and https:// URLs are fetched over the network.");
	auth = url + scheme_len + 3;
	auth_len = strcspn(auth, "/?#");
	path = auth + auth_len;
	frag = path + strcspn(path, "#");
	query = path + strcspn(path, "?#");
	if (auth_len == 0)
		return refuse(alloc, out, "The URL names no host.");
	if (memchr(auth, '@', auth_len))
		return refuse(alloc, out, "Credentials in URLs are not accepted.");
	if (memchr(auth, '%', auth_len) || memchr(auth, '\\', auth_len))
		return refuse(alloc, out, "The URL's host holds a percent sign or a backslash.");

	/* scheme and host in lower case; a path percent-encodes at most 3 octets per octet */
	buf = alloc(scheme_len + 3 + auth_len + 3 * (size_t) (query - path) + 2 + (size_t) (frag - query) + 1);
	for (size_t i = 0; i < scheme_len + 3 + auth_len; i++)
		buf[n++] = (char) tolower((unsigned char) url[i]);
	path_start = n;
	seg = alloc(3 * (size_t) (query - path) + 1);
	/* the path, segment by segment: unreserved escapes decoded, other escapes in upper case */
	for (const char *p = *path == '/' ? path + 1 : path; p <= query; p++)
	{
		unsigned char c = p < query ? (unsigned char) *p : '\0';
		const char *problem;

		if (p == query || c == '/')
		{
			if (seg_len >= 2 && seg[0] == '.' && (seg[1] == ';' || (seg[1] == '.' && seg_len >= 3 && seg[2] == ';')))
				return refuse(alloc, out, "The URL holds a \".;\" or \"..;\" path segment, which some servers read as \".\" or \"..\".");
			if ((problem = append_segment(buf + path_start, &path_len, seg, seg_len, p == query)) != NULL)
				return refuse(alloc, out, problem);
			seg_len = 0;
			continue;
		}
		if (c == '\\')
			return refuse(alloc, out, "The URL holds a backslash in its path.");
		if (c == '%')
		{
			int			hi = p + 1 < query ? hex_value((unsigned char) p[1]) : -1;
			int			lo = hi >= 0 && p + 2 < query ? hex_value((unsigned char) p[2]) : -1;
			unsigned char v;

			if (lo < 0)
				return refuse(alloc, out, "The URL holds a malformed percent escape.");
			v = (unsigned char) (hi * 16 + lo);
			p += 2;
			if (v == '/' || v == '\\')
				return refuse(alloc, out, "The URL holds an encoded \"/\" or \"\\\" (%2F or %5C), which servers may read as a path separator.");
			if (v == 0)
				return refuse(alloc, out, "The URL holds an encoded NUL (%00).");
			if (is_unreserved(v))
				seg[seg_len++] = (char) v;
			else
				seg_len += (size_t) snprintf(seg + seg_len, 4, "%%%02X", v);
		}
		else if (is_path_char(c))
			seg[seg_len++] = (char) c;
		else
			seg_len += (size_t) snprintf(seg + seg_len, 4, "%%%02X", c);
	}
	n = path_start + path_len;
	if (path_len == 0)
		buf[n++] = '/';			/* an empty path is "/" */
	/* the query as it is; the fragment is not sent */
	memcpy(buf + n, query, (size_t) (frag - query));
	n += (size_t) (frag - query);
	buf[n] = '\0';
	*out = buf;
	return true;
}

/*
 * True when an s3:// or gs:// bucket/key holds a "." or ".." segment, plain or
 * percent-encoded. Only '/' ends a segment: '?' and '#' are percent-encoded into the key.
 */
static bool
has_dot_segment(const char *path)
{
	const char *delims = "/";
	const char *seg = path;

	while (seg && *seg)
	{
		const char *end = strpbrk(seg, delims);
		size_t		len = end ? (size_t) (end - seg) : strlen(seg);

		if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
			return true;
		if ((len == 3 && strncasecmp(seg, "%2e", 3) == 0) ||
			(len == 4 && (strncasecmp(seg, ".%2e", 4) == 0 || strncasecmp(seg, "%2e.", 4) == 0)) ||
			(len == 6 && strncasecmp(seg, "%2e%2e", 6) == 0))
			return true;
		if (!end || *end != '/')
			break;
		seg = end + 1;
	}
	return false;
}

/* Map bucket/key onto endpoint (path style) or the AWS virtual-host form. */
static GikUrlKind
map_bucket(const char *rest, const char *endpoint, bool aws_default,
		   GikAllocFn alloc, char **resolved)
{
	const char *slash = strchr(rest, '/');
	size_t		bucket_len = slash ? (size_t) (slash - rest) : strlen(rest);
	const char *key = slash ? slash + 1 : "";
	size_t		ep_len = endpoint ? strlen(endpoint) : 0;
	size_t		cap;
	char	   *out;
	size_t		n;

	if (bucket_len == 0)
		return invalid(alloc, resolved, "The URL names no bucket.");
	for (size_t i = 0; i < bucket_len; i++)
		if (!(isalnum((unsigned char) rest[i]) || rest[i] == '-' || rest[i] == '.' || rest[i] == '_'))
			return invalid(alloc, resolved, "Bucket names hold only letters, digits, '-', '.' and '_'.");
	while (ep_len > 0 && endpoint[ep_len - 1] == '/')
		ep_len--;

	cap = ep_len + bucket_len + 3 * strlen(key) + 64;
	out = alloc(cap);
	if (ep_len == 0 && aws_default)
		n = (size_t) snprintf(out, cap, "https://%.*s.s3.amazonaws.com/", (int) bucket_len, rest);
	else
		n = (size_t) snprintf(out, cap, "%.*s/%.*s/", (int) ep_len, endpoint, (int) bucket_len, rest);
	for (const unsigned char *p = (const unsigned char *) key; *p; p++)
	{
		if (is_key_char(*p))
			out[n++] = (char) *p;
		else
			n += (size_t) snprintf(out + n, cap - n, "%%%02X", *p);
	}
	out[n] = '\0';
	/* the endpoint comes from a setting: the mapped URL is normalised like any other */
	return gik_url_normalize(out, alloc, resolved) ? GIK_URL_HTTP : GIK_URL_INVALID;
}

/* True when a URL names a file on the database server. */
bool
gik_url_is_server_file(const char *url)
{
	return url[0] == '/' || strncmp(url, "file://", 7) == 0;
}

/* Map a user URL to an http(s) URL or a local path. */
GikUrlKind
gik_url_resolve(const char *url, const char *s3_endpoint, const char *gs_endpoint,
				GikAllocFn alloc, char **resolved)
{
	if (url == NULL || *url == '\0')
		return invalid(alloc, resolved, "The URL is empty.");
	for (const unsigned char *p = (const unsigned char *) url; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == ' ')
			return invalid(alloc, resolved, "The URL holds spaces or control characters.");

	if (strncmp(url, "s3://", 5) == 0)
	{
		if (has_dot_segment(url + 5))
			return invalid(alloc, resolved, "The URL holds a \".\" or \"..\" path segment.");
		return map_bucket(url + 5, s3_endpoint, true, alloc, resolved);
	}
	if (strncmp(url, "gs://", 5) == 0)
	{
		if (has_dot_segment(url + 5))
			return invalid(alloc, resolved, "The URL holds a \".\" or \"..\" path segment.");
		return map_bucket(url + 5, gs_endpoint, false, alloc, resolved);
	}
	if (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0)
		return gik_url_normalize(url, alloc, resolved) ? GIK_URL_HTTP : GIK_URL_INVALID;
	if (strncmp(url, "file://", 7) == 0)
	{
		const char *path = url + 7;

		if (strncmp(path, "localhost/", 10) == 0)
			path += 9;
		if (*path != '/')
			return invalid(alloc, resolved, "file:// URLs must name an absolute path on this server.");
		*resolved = gik_strndup(alloc, path, strlen(path));
		return GIK_URL_FILE;
	}
	if (url[0] == '/')
	{
		*resolved = gik_strndup(alloc, url, strlen(url));
		return GIK_URL_FILE;
	}
	return invalid(alloc, resolved,
				   "Supported URLs are s3://, gs://, http://, https://, file:// and absolute paths.");
}

/* Length of "scheme://authority" at the start of url, 0 if there is none. */
static size_t
origin_length(const char *url)
{
	const char *sep = strstr(url, "://");
	const char *end;

	if (!sep)
		return 0;
	end = strpbrk(sep + 3, "/?#");
	return end ? (size_t) (end - url) : strlen(url);
}

/* True when url starts with prefix; the origin compares without case and a prefix must end on a boundary. */
static bool
url_has_prefix(const char *url, const char *prefix, size_t prefix_len)
{
	size_t		origin = origin_length(prefix);
	size_t		url_len = strlen(url);
	char		next;

	if (prefix_len == 0 || url_len < prefix_len)
		return false;
	if (origin > prefix_len)
		origin = prefix_len;
	if (strncasecmp(url, prefix, origin) != 0 ||
		strncmp(url + origin, prefix + origin, prefix_len - origin) != 0)
		return false;
	if (prefix[prefix_len - 1] == '/')
		return true;
	next = url[prefix_len];
	return next == '\0' || next == '/' || next == '?' || next == '#';
}

/* Map a comma-separated prefix list to resolved prefixes. */
int
gik_url_resolve_prefixes(const char *prefixes, const char *s3_endpoint, const char *gs_endpoint,
						 GikAllocFn alloc, char ***out)
{
	const char *p = prefixes;
	int			n = 0;
	int			cap = 1;

	for (const char *c = prefixes ? prefixes : ""; *c; c++)
		cap += (*c == ',');
	*out = alloc(sizeof(char *) * (size_t) cap);
	while (p && *p)
	{
		const char *comma = strchr(p, ',');
		size_t		len = comma ? (size_t) (comma - p) : strlen(p);
		char	   *mapped;

		while (len > 0 && isspace((unsigned char) *p))
			p++, len--;
		while (len > 0 && isspace((unsigned char) p[len - 1]))
			len--;
		if (len > 0 &&
			gik_url_resolve(gik_strndup(alloc, p, len), s3_endpoint, gs_endpoint, alloc, &mapped) == GIK_URL_HTTP)
			(*out)[n++] = mapped;
		if (!comma)
			break;
		p = comma + 1;
	}
	return n;
}

/* True when url starts with one of the resolved prefixes. */
bool
gik_url_has_prefix(const char *url, char *const *prefixes, int nprefixes)
{
	for (int i = 0; i < nprefixes; i++)
		if (url_has_prefix(url, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

/* Parse an IPv4 or IPv6 address into 16 bytes (IPv4 as ::ffff:a.b.c.d). */
static bool
parse_ip(const char *ip, unsigned char out[16])
{
	struct in_addr v4;
	struct in6_addr v6;

	if (inet_pton(AF_INET, ip, &v4) == 1)
	{
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &v4, 4);
		return true;
	}
	if (inet_pton(AF_INET6, ip, &v6) == 1)
	{
		memcpy(out, &v6, 16);
		return true;
	}
	return false;
}

/* True when the first bits of a and b agree. */
static bool
same_prefix(const unsigned char *a, const unsigned char *b, int bits)
{
	int			bytes = bits / 8;
	int			rest = bits % 8;

	if (memcmp(a, b, (size_t) bytes) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[bytes] ^ b[bytes]) & (0xff << (8 - rest))) == 0;
}

/* True when addr is in the IPv4 block a.b.c.d/bits (addr in mapped form). */
static bool
in_v4_block(const unsigned char *addr, unsigned char a, unsigned char b, int bits)
{
	unsigned char block[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, 0, 0};

	return same_prefix(addr, block, 96 + bits);
}

/* True for addresses that must not be reached unless allowed explicitly. */
bool
gik_address_is_internal(const char *ip)
{
	unsigned char a[16];
	static const unsigned char zero[16] = {0};
	static const unsigned char loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	static const unsigned char nat64[16] = {0, 0x64, 0xff, 0x9b};

	if (ip == NULL || !parse_ip(ip, a))
		return true;			/* unknown means refuse */
	if (a[10] == 0xff && a[11] == 0xff && memcmp(a, zero, 10) == 0)
		return in_v4_block(a, 0, 0, 8) ||	/* this network */
			in_v4_block(a, 10, 0, 8) ||
			in_v4_block(a, 100, 64, 10) ||	/* carrier-grade NAT */
			in_v4_block(a, 127, 0, 8) ||
			in_v4_block(a, 169, 254, 16) || /* link-local, cloud metadata */
			in_v4_block(a, 172, 16, 12) ||
			in_v4_block(a, 192, 0, 24) ||
			in_v4_block(a, 192, 168, 16) ||
			in_v4_block(a, 198, 18, 15) ||
			in_v4_block(a, 224, 0, 3);	/* multicast and reserved */
	return memcmp(a, zero, 16) == 0 ||
		memcmp(a, loop6, 16) == 0 ||
		(a[0] & 0xfe) == 0xfc ||	/* unique local fc00::/7 */
		(a[0] == 0xfe && (a[1] & 0xc0) == 0x80) ||	/* link-local fe80::/10 */
		a[0] == 0xff ||			/* multicast */
		same_prefix(a, nat64, 96) ||	/* NAT64 can reach internal IPv4 */
		(memcmp(a, zero, 12) == 0);	/* IPv4-compatible */
}

/* True when ip matches an entry of a comma-separated list of addresses or CIDR blocks. */
bool
gik_address_in_list(const char *ip, const char *list)
{
	unsigned char addr[16];
	const char *p = list;

	if (ip == NULL || list == NULL || !parse_ip(ip, addr))
		return false;
	while (*p)
	{
		const char *comma = strchr(p, ',');
		size_t		len = comma ? (size_t) (comma - p) : strlen(p);
		char		entry[64];
		char	   *slash;
		unsigned char net[16];
		int			bits = 128;

		while (len > 0 && isspace((unsigned char) *p))
			p++, len--;
		while (len > 0 && isspace((unsigned char) p[len - 1]))
			len--;
		if (len > 0 && len < sizeof(entry))
		{
			memcpy(entry, p, len);
			entry[len] = '\0';
			slash = strchr(entry, '/');
			if (slash)
				*slash = '\0';
			if (parse_ip(entry, net))
			{
				bool		v4 = strchr(entry, ':') == NULL;

				if (slash)
				{
					/* a prefix length is 1-3 decimal digits, at most 32 (IPv4) or 128 */
					char	   *end;
					long		n = strtol(slash + 1, &end, 10);

					bits = (gik_is_digit(slash[1]) && *end == '\0' && end - slash <= 4 &&
							n <= (v4 ? 32 : 128)) ? (int) n + (v4 ? 96 : 0) : -1;
				}
				if (bits >= 0 && bits <= 128 && same_prefix(addr, net, bits))
					return true;
			}
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	return false;
}
