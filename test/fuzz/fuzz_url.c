/*
 * URL mapping and network policy: the input holds newline-separated fields
 * url, s3_endpoint, gs_endpoint, prefix list, ip, address list. Invariants: a mapped URL
 * is its own prefix and is normalised (normalising it again changes nothing; its path has
 * no dot segment, no escape of an unreserved character, of '/', '\' or NUL, no lower-case
 * escape and no backslash; it has no fragment); the url field normalised on its own gives
 * the same as when it is resolved; a mapped s3:// or gs:// key holds only unreserved
 * characters, '/' and %XX escapes and no dot segment; every mapped prefix list entry is
 * non-empty and normalised; an address matches itself; an address-list entry only
 * matches when it is an address or a CIDR block with a decimal prefix length in range.
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

/* Where the key starts in the mapping of an s3:// or gs:// URL: after what the bucket alone maps to. */
static const char *
mapped_key(const char *url, const char *s3, const char *gs, const char *resolved)
{
	size_t		bucket_len = strcspn(url + 5, "/");
	char	   *bucket_url = fz_alloc(bucket_len + 6);
	char	   *base;

	memcpy(bucket_url, url, 5 + bucket_len);
	bucket_url[5 + bucket_len] = '\0';
	FZ_CHECK(gik_url_resolve(bucket_url, s3, gs, fz_alloc, &base) == GIK_URL_HTTP);
	FZ_CHECK(strncmp(resolved, base, strlen(base)) == 0);
	return resolved + strlen(base);
}

/* True when a normalised http(s) URL is in normal form (see gik_url_normalize). */
static int
normal_form(const char *url)
{
	const char *path = strchr(strstr(url, "://") + 3, '/');
	size_t		path_len;
	char	   *again;

	if (strchr(url, '#') != NULL || path == NULL)
		return 0;
	path_len = strcspn(path, "?");
	for (size_t i = 0; i < path_len; i++)
	{
		const char *seg = path + i + 1;
		size_t		seg_len = strcspn(seg, "/?");

		if (path[i] == '\\')
			return 0;
		if (path[i] == '%')
		{
			int			v;

			if (i + 2 >= path_len || !isxdigit((unsigned char) path[i + 1]) || !isxdigit((unsigned char) path[i + 2]) ||
				islower((unsigned char) path[i + 1]) || islower((unsigned char) path[i + 2]))
				return 0;
			v = (int) strtol((char[]) {path[i + 1], path[i + 2], 0}, NULL, 16);
			if (v == '/' || v == '\\' || v == 0 || isalnum(v) || strchr("-._~", v))
				return 0;
		}
		if (path[i] == '/' && ((seg_len == 1 && seg[0] == '.') || (seg_len == 2 && seg[0] == '.' && seg[1] == '.')))
			return 0;
	}
	return gik_url_normalize(url, fz_alloc, &again) && strcmp(again, url) == 0;
}

/*
 * The path a server such as nginx serves for an http(s) URL: every escape decoded, '\\'
 * taken as '/', repeated slashes merged, "." and ".." resolved (".." at the root stays there).
 */
static char *
server_path(const char *url)
{
	const char *p = strchr(strstr(url, "://") + 3, '/');
	size_t		len = p ? strcspn(p, "?#") : 0;
	char	   *d = fz_alloc(len + 1);
	char	   *out = fz_alloc(len + 2);
	size_t		dn = 0;
	size_t		n = 0;
	bool		dir = true;		/* the path ends with '/' (or a dot segment) */

	for (size_t i = 0; i < len; i++)
	{
		char		c = p[i];

		if (c == '%' && i + 2 < len && isxdigit((unsigned char) p[i + 1]) && isxdigit((unsigned char) p[i + 2]))
		{
			c = (char) strtol((char[]) {p[i + 1], p[i + 2], 0}, NULL, 16);
			i += 2;
		}
		d[dn++] = c == '\\' ? '/' : c;
	}
	d[dn] = '\0';
	out[n++] = '/';
	for (size_t i = 0; i < dn;)
	{
		size_t		seg = strcspn(d + i, "/") < dn - i ? strcspn(d + i, "/") : dn - i;

		if (seg == 0 || (seg == 1 && d[i] == '.'))
			dir = true;
		else if (seg == 2 && d[i] == '.' && d[i + 1] == '.')
		{
			if (n > 1)
				n--;			/* the '/' after the last segment */
			while (n > 1 && out[n - 1] != '/')
				n--;
			dir = true;
		}
		else
		{
			memcpy(out + n, d + i, seg);
			n += seg;
			out[n++] = '/';
			dir = false;
		}
		i += seg + 1;
	}
	if (!dir && n > 1 && (dn == 0 || d[dn - 1] != '/'))
		n--;					/* no '/' after the last segment */
	out[n] = '\0';
	return out;
}

/* When url passes prefix, the path the server serves for url lies under the one it serves for the prefix. */
static void
check_server_view(const char *url, const char *prefix)
{
	char	   *u = server_path(url);
	char	   *pre = server_path(prefix);
	size_t		plen = strlen(pre);

	FZ_CHECK(strncmp(u, pre, plen) == 0 && (pre[plen - 1] == '/' || u[plen] == '\0' || u[plen] == '/'));
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
		FZ_CHECK(normal_form(resolved));
		if (strncmp(url, "s3://", 5) == 0 || strncmp(url, "gs://", 5) == 0)
			FZ_CHECK(key_well_formed(mapped_key(url, s3, gs, resolved)));
	}
	if (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0)
	{
		char	   *normalised = NULL;
		bool		ok = gik_url_normalize(url, fz_alloc, &normalised);

		FZ_CHECK(normalised != NULL && normalised[0] != '\0');
		FZ_CHECK(ok == (kind == GIK_URL_HTTP) && (!ok || strcmp(normalised, resolved) == 0));
	}

	n = gik_url_resolve_prefixes(prefix_list, s3, gs, fz_alloc, &prefixes);
	FZ_CHECK(n >= 0 && prefixes != NULL);
	for (int i = 0; i < n; i++)
		FZ_CHECK(prefixes[i][0] != '\0' && gik_url_has_prefix(prefixes[i], &prefixes[i], 1) && normal_form(prefixes[i]));
	if (kind == GIK_URL_HTTP)
		for (int i = 0; i < n; i++)
			if (gik_url_has_prefix(resolved, &prefixes[i], 1))
				check_server_view(resolved, prefixes[i]);

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
