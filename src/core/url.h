/* URL mapping (s3://, gs://, file://) and network policy checks: pure C, no PostgreSQL headers. */
#ifndef GIK_CORE_URL_H
#define GIK_CORE_URL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/common.h"

typedef enum GikUrlKind
{
	GIK_URL_INVALID = 0,
	GIK_URL_HTTP,				/* http:// or https://, also s3:// and gs:// once mapped */
	GIK_URL_FILE				/* file:// or an absolute path */
} GikUrlKind;

/*
 * Normalise an http(s) URL the way servers read it, so that what is compared with the
 * allowed prefixes is exactly what is sent: scheme and host in lower case; escapes of
 * unreserved characters (ALPHA, DIGIT, "-._~") decoded, so "%2e" is "."; the other escapes
 * in upper-case hex, and characters a path may not hold as they are (bytes >= 0x80, '"',
 * '<', '>', '^', '`', '{', '|', '}', '[', ']') percent-encoded; "." and ".." segments
 * resolved as RFC 3986 section 5.2.4 does; an empty path becomes "/"; the query kept as it
 * is; the fragment dropped. Refused, because a server may decode them into something else:
 * a ".." above the root, "%2F" and "%5C" (encoded '/' and '\'), a raw '\' in the path,
 * "%00", a malformed escape, ".;" and "..;" segments, a '%' or '\' in the host; also
 * credentials, a missing host, spaces and control characters, other schemes.
 * Request URLs, the allowed prefixes and redirect targets all go through this function.
 * Returns true with the URL in *out (made with alloc), else false with a sentence in *out.
 */
extern bool gik_url_normalize(const char *url, GikAllocFn alloc, char **out);

/*
 * Map a user URL to what is fetched: an http(s) URL or a local path.
 * s3://bucket/key goes to https://bucket.s3.amazonaws.com/key when s3_endpoint
 * is empty, else to s3_endpoint/bucket/key; gs://bucket/key to gs_endpoint/bucket/key.
 * Keys may hold no "." or ".." segment (plain or percent-encoded); their characters
 * outside RFC 3986's unreserved set and '/' are percent-encoded. http(s) URLs, and the
 * http(s) URLs s3:// and gs:// map to, are normalised with gik_url_normalize.
 * Returns the kind; *resolved is allocated with alloc. On GIK_URL_INVALID,
 * *resolved holds a full-sentence reason.
 */
extern GikUrlKind gik_url_resolve(const char *url, const char *s3_endpoint,
								  const char *gs_endpoint, GikAllocFn alloc,
								  char **resolved);

/*
 * Map a comma-separated prefix list with gik_url_resolve, so that prefixes are normalised
 * like request URLs (blank, invalid and file entries are dropped). Returns the number of
 * prefixes in *out.
 */
extern int	gik_url_resolve_prefixes(const char *prefixes, const char *s3_endpoint,
									 const char *gs_endpoint, GikAllocFn alloc, char ***out);

/*
 * True when url (normalised) starts with one of the resolved prefixes at a boundary: the
 * prefix ends with '/', or url continues with '/', '?', '#' or ends; allocates nothing.
 */
extern bool gik_url_has_prefix(const char *url, char *const *prefixes, int nprefixes);

/* True when a URL names a file on the database server: what gik_url_resolve maps to GIK_URL_FILE. */
extern bool gik_url_is_server_file(const char *url);

/* True for loopback, private, link-local, CGNAT, unspecified, multicast and such addresses (v4 and v6). */
extern bool gik_address_is_internal(const char *ip);

/* True when ip matches one of the comma-separated addresses or CIDR blocks. */
extern bool gik_address_in_list(const char *ip, const char *list);

#endif
