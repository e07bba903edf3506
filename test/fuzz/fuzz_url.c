/*
 * URL mapping and network policy: the input holds newline-separated fields
 * url, s3_endpoint, gs_endpoint, prefix list, ip, address list. Invariants: a mapped URL
 * is its own prefix; a mapped s3:// or gs:// key holds only unreserved characters, '/'
 * and %XX escapes and no dot segment; every mapped prefix list entry is non-empty; an
 * address matches itself; an address-list entry only matches when it is an address or
 * a CIDR block with a decimal prefix length in range.
 */
#include "core/url.h"
#include "fuzz_util.h"

#include <arpa/inet.h>
#include <ctype.h>

/* True when the key part of a mapped bucket URL is well formed. */
static int
key_well_formed(const char *key)
{
	for (const char *p = key; *p; p++)
	{
		if (*p == '%')
		{
			if (!isxdigit((unsigned char) p[1]) || !isxdigit((unsigned char) p[2]))
				return 0;
			p += 2;
		}
		else if (!isalnum((unsigned char) *p) && !strchr("-._~/", *p))
			return 0;
	}
	return strstr(key, "/../") == NULL && strstr(key, "/./") == NULL &&
		strncmp(key, "../", 3) != 0 && strncmp(key, "./", 2) != 0 &&
		strcmp(key, "..") != 0 && strcmp(key, ".") != 0;
}

/* Where the key starts in the mapping of an s3:// or gs:// URL. */
static const char *
mapped_key(const char *url, const char *endpoint, const char *resolved)
{
	size_t		bucket_len = strcspn(url + 5, "/");
	size_t		ep_len = strlen(endpoint);

	while (ep_len > 0 && endpoint[ep_len - 1] == '/')
		ep_len--;
	if (ep_len == 0 && url[0] == 's')
	{
		FZ_CHECK(strncmp(resolved, "https://", 8) == 0 &&
				 strncmp(resolved + 8 + bucket_len, ".s3.amazonaws.com/", 18) == 0);
		return resolved + 8 + bucket_len + 18;
	}
	FZ_CHECK(strncmp(resolved, endpoint, ep_len) == 0 && resolved[ep_len + 1 + bucket_len] == '/');
	return resolved + ep_len + 1 + bucket_len + 1;
}

/* True when a trimmed list entry is an address, or an address / a prefix length in range. */
static int
entry_well_formed(const char *e, size_t len)
{
	char		buf[64];
	char	   *slash;
	unsigned char tmp[16];
	int			v4;
	long		bits;

	if (len == 0 || len >= sizeof(buf))
		return 0;
	memcpy(buf, e, len);
	buf[len] = '\0';
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	v4 = inet_pton(AF_INET, buf, tmp) == 1;
	if (!v4 && inet_pton(AF_INET6, buf, tmp) != 1)
		return 0;
	if (!slash)
		return 1;
	if (slash[1] == '\0' || strspn(slash + 1, "0123456789") != strlen(slash + 1) || strlen(slash + 1) > 3)
		return 0;
	bits = strtol(slash + 1, NULL, 10);
	return bits <= (v4 ? 32 : 128);
}

/* Check every entry of an address list on its own. */
static void
check_list_entries(const char *ip, const char *list)
{
	const char *p = list;

	for (;;)
	{
		const char *comma = strchr(p, ',');
		size_t		len = comma ? (size_t) (comma - p) : strlen(p);
		char	   *entry = fz_alloc(len + 1);
		char	   *s = entry;

		memcpy(entry, p, len);
		entry[len] = '\0';
		while (isspace((unsigned char) *s))
			s++;
		len = strlen(s);
		while (len > 0 && isspace((unsigned char) s[len - 1]))
			len--;
		if (gik_address_in_list(ip, entry))
			FZ_CHECK(entry_well_formed(s, len));
		if (!comma)
			break;
		p = comma + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FzReader	r = {data, size};
	const char *url = fz_field(&r, '\n');
	const char *s3 = fz_field(&r, '\n');
	const char *gs = fz_field(&r, '\n');
	const char *prefix_list = fz_field(&r, '\n');
	const char *ip = fz_field(&r, '\n');
	const char *addr_list = fz_field(&r, '\n');
	char	   *resolved = NULL;
	char	  **prefixes = NULL;
	GikUrlKind	kind = gik_url_resolve(url, s3, gs, fz_alloc, &resolved);
	int			n;
	unsigned char tmp[16];

	FZ_CHECK(resolved != NULL && resolved[0] != '\0');
	if (kind == GIK_URL_FILE)
		FZ_CHECK(resolved[0] == '/');
	if (kind == GIK_URL_HTTP)
	{
		FZ_CHECK(gik_url_has_prefix(resolved, &resolved, 1));
		if (strncmp(url, "s3://", 5) == 0 || strncmp(url, "gs://", 5) == 0)
			FZ_CHECK(key_well_formed(mapped_key(url, url[0] == 's' ? s3 : gs, resolved)));
	}

	n = gik_url_resolve_prefixes(prefix_list, s3, gs, fz_alloc, &prefixes);
	FZ_CHECK(n >= 0 && prefixes != NULL);
	for (int i = 0; i < n; i++)
		FZ_CHECK(prefixes[i][0] != '\0' && gik_url_has_prefix(prefixes[i], &prefixes[i], 1));
	gik_url_has_prefix(resolved, prefixes, n);

	gik_address_is_internal(ip);
	gik_address_in_list(ip, addr_list);
	if (inet_pton(AF_INET, ip, tmp) == 1 || inet_pton(AF_INET6, ip, tmp) == 1)
	{
		if (strlen(ip) < 64)
			FZ_CHECK(gik_address_in_list(ip, ip));
	}
	check_list_entries(ip, addr_list);
	fz_free_all();
	return 0;
}
