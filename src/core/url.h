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
 * Map a user URL to what is fetched: an http(s) URL or a local path.
 * s3://bucket/key goes to https://bucket.s3.amazonaws.com/key when s3_endpoint
 * is empty, else to s3_endpoint/bucket/key; gs://bucket/key to gs_endpoint/bucket/key.
 * Characters outside RFC 3986's unreserved set and '/' are percent-encoded in keys.
 * Returns the kind; *resolved is allocated with alloc. On GIK_URL_INVALID,
 * *resolved holds a full-sentence reason.
 */
extern GikUrlKind gik_url_resolve(const char *url, const char *s3_endpoint,
								  const char *gs_endpoint, GikAllocFn alloc,
								  char **resolved);

/*
 * Map a comma-separated prefix list with gik_url_resolve (blank and invalid
 * entries are dropped). Returns the number of prefixes in *out.
 */
extern int	gik_url_resolve_prefixes(const char *prefixes, const char *s3_endpoint,
									 const char *gs_endpoint, GikAllocFn alloc, char ***out);

/* True when url starts with one of the resolved prefixes; allocates nothing. */
extern bool gik_url_has_prefix(const char *url, char *const *prefixes, int nprefixes);

/* True for loopback, private, link-local, CGNAT, unspecified, multicast and such addresses (v4 and v6). */
extern bool gik_address_is_internal(const char *ip);

/* True when ip matches one of the comma-separated addresses or CIDR blocks. */
extern bool gik_address_in_list(const char *ip, const char *list);

#endif
