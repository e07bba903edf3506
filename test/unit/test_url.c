/*
 * Unit tests of URL normalisation and the allow-list (core/url.h): the forms that let a URL
 * pass a prefix and then reach outside it on the server (encoded dots and slashes, dot
 * segments, backslashes) are refused or normalised to where the server would go; the real
 * NOAA and ECMWF URLs come out unchanged.
 */
#include "core/url.h"
#include "tap.h"

#include <string.h>

#define MIRROR "http://127.0.0.1:18080/noaa-gefs-pds/"

/* gik_url_normalize gives expected (NULL: refuses it, with the sentence expected_reason when not NULL). */
static void
check_norm(const char *url, const char *expected, const char *expected_reason)
{
	char	   *out = NULL;
	bool		ok = gik_url_normalize(url, test_alloc, &out);

	if (expected)
	{
		if (tap_ok(ok, "normalise %s", url))
			tap_is_text(out, strlen(out), expected, "normalise %s: result", url);
		else
			tap_diag("refused: %s", out);
	}
	else
	{
		if (!tap_ok(!ok, "refuse %s", url))
			tap_diag("normalised to %s", out);
		else if (expected_reason)
			tap_is_text(out, strlen(out), expected_reason, "refuse %s: reason", url);
	}
}

/* True when url, resolved as a request URL, passes the allow-list prefixes. */
static bool
allowed(const char *url, const char *prefix_list)
{
	char	  **prefixes;
	int			n = gik_url_resolve_prefixes(prefix_list, "http://127.0.0.1:18080/", "", test_alloc, &prefixes);
	char	   *resolved;

	return gik_url_resolve(url, "http://127.0.0.1:18080/", "", test_alloc, &resolved) == GIK_URL_HTTP &&
		gik_url_has_prefix(resolved, prefixes, n);
}

/* The attack forms against an allow-list of one bucket on the mirror. */
static void
test_attacks(void)
{
	static const char *const attacks[] = {
		MIRROR "..%2fecmwf-forecasts/x.index",
		MIRROR "..%2Fecmwf-forecasts/x.index",
		MIRROR "%2e%2e%2fecmwf-forecasts/x.index",
		MIRROR ".%2E%2Fecmwf-forecasts/x.index",
		MIRROR "%2e%2e/ecmwf-forecasts/x.index",
		MIRROR ".%2e/ecmwf-forecasts/x.index",
		MIRROR "%2E./ecmwf-forecasts/x.index",
		MIRROR "../ecmwf-forecasts/x.index",
		MIRROR "./../ecmwf-forecasts/x.index",
		MIRROR "a/../../ecmwf-forecasts/x.index",
		MIRROR "..%5cecmwf-forecasts/x.index",
		MIRROR "..\\ecmwf-forecasts/x.index",
		MIRROR "..;/ecmwf-forecasts/x.index",
		MIRROR "x%00/../../ecmwf-forecasts/x.index",
		MIRROR "..",
		"http://127.0.0.1:18080/noaa-gefs-pds%2f../ecmwf-forecasts/x.index",
		"http://127.0.0.1:18080/noaa-gefs-pds-evil/x.index",
		"http://127.0.0.1:18080/NOAA-GEFS-PDS/x.index",
		"http://127.0.0.1:18080@evil.example/noaa-gefs-pds/x.index",
	};

	for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++)
		tap_ok(!allowed(attacks[i], MIRROR), "not under %s: %s", MIRROR, attacks[i]);
	/* the fragment is dropped: what is left is the bucket's root, which is allowed */
	tap_ok(allowed(MIRROR "#/../../ecmwf-forecasts/x.index", MIRROR), "a fragment never reaches the server");

	check_norm(MIRROR "..%2fecmwf-forecasts/x.index", NULL,
			   "The URL holds an encoded \"/\" or \"\\\" (%2F or %5C), which servers may read as a path separator.");
	check_norm(MIRROR "%2e%2e%2fecmwf-forecasts/x.index", NULL, NULL);
	check_norm(MIRROR ".%2E%2Fecmwf-forecasts/x.index", NULL, NULL);
	check_norm(MIRROR "..%5Cecmwf-forecasts/x.index", NULL, NULL);
	check_norm(MIRROR "..\\ecmwf-forecasts/x.index", NULL, "The URL holds a backslash in its path.");
	check_norm(MIRROR "x%00.idx", NULL, "The URL holds an encoded NUL (%00).");
	check_norm(MIRROR "..;/x", NULL, "The URL holds a \".;\" or \"..;\" path segment, which some servers read as \".\" or \"..\".");
	check_norm(MIRROR ".;x/y", NULL, NULL);
	check_norm("http://h/../x", NULL, "The URL's path climbs above the root with a \"..\" segment.");
	check_norm("http://h/a/../../x", NULL, NULL);
	check_norm("http://h/%2e%2e/x", NULL, NULL);
	check_norm("http://h/x%zz", NULL, "The URL holds a malformed percent escape.");
	check_norm("http://h/x%2", NULL, NULL);
	check_norm("http://h/x%", NULL, NULL);
	check_norm("http://h%2e/x", NULL, "The URL's host holds a percent sign or a backslash.");
	check_norm("http://h\\@evil/x", NULL, NULL);
	check_norm("http://u:p@h/x", NULL, "Credentials in URLs are not accepted.");
	check_norm("http:///x", NULL, "The URL names no host.");
	check_norm("ftp://h/x", NULL, "Only http:// and https:// URLs are fetched over the network.");
	check_norm("http://h/a b", NULL, "The URL holds spaces or control characters.");
	check_norm("", NULL, "The URL is empty.");

	/* dot segments are resolved (not refused) where they stay below the root: the result is what the server serves */
	check_norm(MIRROR "../ecmwf-forecasts/x.index", "http://127.0.0.1:18080/ecmwf-forecasts/x.index", NULL);
	check_norm(MIRROR "%2e%2e/ecmwf-forecasts/x.index", "http://127.0.0.1:18080/ecmwf-forecasts/x.index", NULL);
	check_norm(MIRROR ".%2E/ecmwf-forecasts/x.index", "http://127.0.0.1:18080/ecmwf-forecasts/x.index", NULL);
	check_norm("http://h/a/./b/../c/./d.idx", "http://h/a/c/d.idx", NULL);
	check_norm("http://h/a/b/..", "http://h/a/", NULL);
	check_norm("http://h/a/b/.", "http://h/a/b/", NULL);
	check_norm("http://h/a//../b", "http://h/a/b", NULL);
	check_norm("http://h/a/..%2e/b", "http://h/a/.../b", NULL);
}

/* Legitimate URLs: unchanged, or changed only in case and escapes. */
static void
test_legit(void)
{
	static const char *const same[] = {
		"https://noaa-gefs-pds.s3.amazonaws.com/gefs.20251001/00/atmos/pgrb2sp25/gep01.t00z.pgrb2s.0p25.f003.idx",
		"https://noaa-gefs-pds.s3.amazonaws.com/gefs.20251001/00/atmos/pgrb2sp25/gep01.t00z.pgrb2s.0p25.f003",
		"https://ecmwf-forecasts.s3.amazonaws.com/20251001/00z/ifs/0p25/enfo/20251001000000-24h-enfo-ef.index",
		"https://data.ecmwf.int/forecasts/20251001/00z/ifs/0p25/enfo/20251001000000-24h-enfo-ef.grib2",
		"https://storage.googleapis.com/gfs-ensemble-forecast-system/gefs.20251001/x.idx",
		MIRROR "gefs.20251001/00/atmos/pgrb2sp25/gec00.t00z.pgrb2s.0p25.f003.idx",
		"http://127.0.0.1:18080/noaa-gefs-pds/a%20b+c.idx",
		"http://h/x.idx?X-Amz-Signature=ab%2Fcd&x=../..%2f%zz",
		"http://h/a;b=c/d,e/~f!$&'()*:@x",
		"http://[::1]:8080/x",
		"http://h/",
	};

	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
	{
		char	   *once;
		char	   *twice;

		check_norm(same[i], same[i], NULL);
		if (gik_url_normalize(same[i], test_alloc, &once) && gik_url_normalize(once, test_alloc, &twice))
			tap_ok(strcmp(once, twice) == 0, "normalising twice changes nothing: %s", same[i]);
	}
	tap_ok(allowed(MIRROR "gefs.20251001/00/atmos/pgrb2sp25/gec00.t00z.pgrb2s.0p25.f003.idx", MIRROR), "the mirror's own URLs pass");
	check_norm("HTTPS://Noaa-GEFS-pds.S3.AmazonAWS.com/gefs.20251001/A.idx", "https://noaa-gefs-pds.s3.amazonaws.com/gefs.20251001/A.idx", NULL);
	check_norm("http://h", "http://h/", NULL);
	check_norm("http://h?x=1", "http://h/?x=1", NULL);
	check_norm("http://h/x#frag", "http://h/x", NULL);
	check_norm("http://h/x?q=1#frag", "http://h/x?q=1", NULL);
	check_norm("http://h/%41%7e%2D%5f%2e%30x", "http://h/A~-_.0x", NULL);
	check_norm("http://h/a%3a%2cb%c3%a9", "http://h/a%3A%2Cb%C3%A9", NULL);
	check_norm("http://h/caf\xc3\xa9\"<>^`{|}[]", "http://h/caf%C3%A9%22%3C%3E%5E%60%7B%7C%7D%5B%5D", NULL);
}

/* gik_url_resolve with this s3 endpoint (gs: Google's) gives kind and expected (the URL or the reason). */
static void
check_resolve(const char *url, const char *s3_endpoint, GikUrlKind kind, const char *expected)
{
	char	   *r = NULL;
	GikUrlKind	got = gik_url_resolve(url, s3_endpoint, "https://storage.googleapis.com", test_alloc, &r);

	tap_is_int(got, kind, "resolve %s (s3 endpoint \"%s\"): kind", url, s3_endpoint);
	tap_is_text(r, strlen(r), expected, "resolve %s: result", url);
}

/* s3:// and gs:// keep their rules, and what they map to is normalised too; so are the prefixes. */
static void
test_mapping_and_prefixes(void)
{
	char	  **prefixes;
	int			n;

	check_resolve("s3://noaa-gefs-pds/gefs.20251001/00/x.idx", "", GIK_URL_HTTP,
				  "https://noaa-gefs-pds.s3.amazonaws.com/gefs.20251001/00/x.idx");
	/* key characters are encoded, the endpoint normalised */
	check_resolve("s3://noaa-gefs-pds/a/b+c%2F..%2e.idx", "HTTP://127.0.0.1:18080/", GIK_URL_HTTP,
				  "http://127.0.0.1:18080/noaa-gefs-pds/a/b%2Bc%252F..%252e.idx");
	check_resolve("s3://b/a/../k", "", GIK_URL_INVALID, "The URL holds a \".\" or \"..\" path segment.");
	check_resolve("s3://b/%2e%2E/k", "", GIK_URL_INVALID, "The URL holds a \".\" or \"..\" path segment.");
	check_resolve("gs://b/x?/../k", "", GIK_URL_INVALID, "The URL holds a \".\" or \"..\" path segment.");
	check_resolve("gs://b/x?y#z", "", GIK_URL_HTTP, "https://storage.googleapis.com/b/x%3Fy%23z");
	check_resolve("s3://b/k", "http://h/p/../", GIK_URL_HTTP, "http://h/b/k");
	check_resolve("s3://b/k", "http://h/../", GIK_URL_INVALID, "The URL's path climbs above the root with a \"..\" segment.");
	check_resolve("http://h/a/../b", "", GIK_URL_HTTP, "http://h/b");
	check_resolve("http://h/a/%2e%2e/b", "", GIK_URL_HTTP, "http://h/b");

	n = gik_url_resolve_prefixes(" HTTP://127.0.0.1:18080/noaa-gefs-pds/./ , http://h/../x/, s3://ecmwf-forecasts/, /tmp/, ",
								 "http://127.0.0.1:18080", "", test_alloc, &prefixes);
	if (tap_is_int(n, 2, "prefixes: one above the root and one path dropped"))
	{
		tap_is_text(prefixes[0], strlen(prefixes[0]), MIRROR, "prefix normalised");
		tap_is_text(prefixes[1], strlen(prefixes[1]), "http://127.0.0.1:18080/ecmwf-forecasts/", "s3:// prefix mapped and normalised");
	}
	tap_ok(allowed("s3://noaa-gefs-pds/x.idx", "HTTP://127.0.0.1:18080/noaa-gefs-pds/./"), "an s3:// URL under a normalised prefix");
	tap_ok(!allowed("s3://noaa-gefs-pds-evil/x.idx", "http://127.0.0.1:18080/noaa-gefs-pds"), "a prefix without '/' ends on a boundary");
	tap_ok(allowed("http://127.0.0.1:18080/noaa-gefs-pds?list", "http://127.0.0.1:18080/noaa-gefs-pds"), "a prefix without '/' allows a query after it");
}

/*
 * A redirect target goes through the same function as a request URL (src/fetch.c,
 * follow_redirect): this is its check, without libcurl.
 */
static void
test_redirect_targets(void)
{
	char	  **prefixes;
	int			n = gik_url_resolve_prefixes(MIRROR, "", "", test_alloc, &prefixes);
	static const char *const targets[] = {
		MIRROR "../ecmwf-forecasts/20251001/x.index",
		MIRROR "..%2fecmwf-forecasts/x.index",
		MIRROR "%2e%2e/ecmwf-forecasts/x.index",
		"http://127.0.0.1:18081/noaa-gefs-pds/x.idx",
		"file:///etc/passwd",
	};

	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
	{
		char	   *t;

		tap_ok(!gik_url_normalize(targets[i], test_alloc, &t) || !gik_url_has_prefix(t, prefixes, n),
			   "redirect to %s refused", targets[i]);
	}
}

int
main(void)
{
	test_attacks();
	test_legit();
	test_mapping_and_prefixes();
	test_redirect_targets();
	test_alloc_reset();
	return tap_done();
}
