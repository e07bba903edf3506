/* Fetching URLs from the backend with the libcurl multi interface, and local files. */
#include "postgres.h"

#include <curl/curl.h>
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "core/url.h"
#include "fetch.h"
#include "pg_gik.h"

/* Why a transfer failed for good. */
typedef enum FailKind
{
	FAIL_NONE = 0,
	FAIL_MISSING,				/* 404/410 */
	FAIL_POLICY,				/* URL prefix or address refused */
	FAIL_STATUS,				/* unexpected HTTP status */
	FAIL_NETWORK,				/* connection, timeout or 5xx after retries */
	FAIL_IGNORED_RANGE,			/* 200 with the whole object to a Range request */
	FAIL_WRONG_RANGE,			/* Content-Range not the requested range */
	FAIL_TRUNCATED,				/* fewer bytes than expected */
	FAIL_PAST_END,				/* 416: the range starts beyond the object */
	FAIL_TOO_LARGE,				/* over gik.max_response_size */
	FAIL_TOO_MANY_REDIRECTS,	/* more than 5 redirects */
	FAIL_OOM
} FailKind;

/* State of one request while it is in flight. */
typedef struct Transfer
{
	GikFetch   *fetch;
	int			index;
	char	   *resolved;		/* http(s) URL */
	CURL	   *easy;
	char	   *buf;
	size_t		len;
	size_t		cap;
	long		status;
	int64		range_start;	/* from Content-Range, -1 if absent */
	int64		range_end;
	int64		range_total;
	FailKind	fail;
	char		reason[256];
	char		errbuf[CURL_ERROR_SIZE];
	TimestampTz retry_at;
	bool		waiting;		/* queued for a retry */
	bool		local;			/* a server file, read without libcurl */
	int			redirects;
	MemoryContext cxt;			/* where the caller's results live */
	char	  **prefixes;		/* gik.allowed_url_prefixes, resolved */
	int			nprefixes;
	GikFetchSession *session;
	size_t		reserved;		/* bytes of the session's budget this request holds */
	uint64		started_seq;	/* order of its first start: the oldest transfer may always grow */
	bool		paused;			/* waiting for room in the budget */
} Transfer;

/* An incremental fetch of many requests; see gik_fetch_begin. */
struct GikFetchSession
{
	GikFetch   *fetches;
	int			nfetches;
	Transfer   *xfers;
	int		   *queue;			/* transfers waiting to start (first attempt or retry) */
	int			qlen;
	int			next_local;		/* next request to check for a local file */
	int		   *ready;			/* completed, not yet returned by gik_fetch_next */
	int			nready;
	int			active;
	int			remaining;		/* requests not yet completed */
	int			held;			/* completed, data not yet released */
	int			hold_limit;
	size_t		budget;			/* gik.max_fetch_memory */
	size_t		reserved;		/* bytes held by transfers in flight and data not yet released */
	uint64		next_seq;
	int			paused;
	bool		ended;
	MemoryContextCallback cleanup;
};

/* The oldest transfer in flight: it may grow past the budget, so the session always progresses. */
static bool
is_oldest_active(GikFetchSession *s, const Transfer *t)
{
	for (int i = 0; i < s->nfetches; i++)
		if (s->xfers[i].easy && &s->xfers[i] != t && s->xfers[i].started_seq < t->started_seq)
			return false;
	return true;
}

/* Reserve budget for a transfer to hold need bytes; false when there is no room (never raises). */
static bool
budget_grow(Transfer *t, size_t need)
{
	GikFetchSession *s = t->session;

	if (need <= t->reserved)
		return true;
	if (s->reserved + (need - t->reserved) > s->budget && !is_oldest_active(s, t))
		return false;
	s->reserved += need - t->reserved;
	t->reserved = need;
	return true;
}

/* Give back a transfer's reservation and let paused transfers try again. */
static void
budget_release(GikFetchSession *s, Transfer *t)
{
	s->reserved -= Min(s->reserved, t->reserved);
	t->reserved = 0;
	if (s->paused == 0)
		return;
	s->paused = 0;
	for (int i = 0; i < s->nfetches; i++)
		if (s->xfers[i].paused && s->xfers[i].easy)
		{
			s->xfers[i].paused = false;
			curl_easy_pause(s->xfers[i].easy, CURLPAUSE_CONT);
		}
}

static CURLM *multi_handle = NULL;
static CURL **easy_pool = NULL;
static int	easy_pool_size = 0;
static int	easy_pool_free = 0;
static MemoryContext fetch_cxt = NULL;

/* Create the per-backend multi handle and easy-handle pool on first use. */
static void
ensure_curl(void)
{
	if (multi_handle)
		return;
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
						errmsg("could not initialise libcurl")));
	fetch_cxt = AllocSetContextCreate(TopMemoryContext, "pg_gik fetch", ALLOCSET_SMALL_SIZES);
	multi_handle = curl_multi_init();
	if (!multi_handle)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
						errmsg("could not create a libcurl multi handle")));
}

/* Take an easy handle from the pool (kept per backend so connections are reused). */
static CURL *
take_easy(void)
{
	CURL	   *easy;

	if (easy_pool_free > 0)
	{
		easy = easy_pool[--easy_pool_free];
		curl_easy_reset(easy);
		return easy;
	}
	easy = curl_easy_init();
	if (!easy)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
						errmsg("could not create a libcurl handle")));
	return easy;
}

/* Return an easy handle to the pool. */
static void
give_easy(CURL *easy)
{
	if (easy_pool_free == easy_pool_size)
	{
		int			newsize = Max(16, easy_pool_size * 2);

		easy_pool = easy_pool ? repalloc(easy_pool, newsize * sizeof(CURL *))
			: MemoryContextAlloc(fetch_cxt, newsize * sizeof(CURL *));
		easy_pool_size = newsize;
	}
	easy_pool[easy_pool_free++] = easy;
}

/* Record a permanent failure with a reason. */
static void
set_fail(Transfer *t, FailKind kind, const char *reason)
{
	if (t->fail != FAIL_NONE)
		return;
	t->fail = kind;
	strlcpy(t->reason, reason, sizeof(t->reason));
}

/* Size cap in bytes. */
static size_t
max_response_bytes(void)
{
	return (size_t) gik_max_response_mb * 1024 * 1024;
}

/* Grow t->buf to hold at least need bytes without raising errors (called from libcurl). */
static bool
grow_buffer(Transfer *t, size_t need)
{
	size_t		newcap;
	char	   *newbuf;

	if (need <= t->cap)
		return true;
	newcap = Max(need, Max((size_t) 65536, t->cap * 2));
	newcap = Min(newcap, Max(need, max_response_bytes()));
	newbuf = MemoryContextAllocExtended(CurrentMemoryContext, newcap,
										MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
	if (!newbuf)
		return false;
	if (t->len > 0)
		memcpy(newbuf, t->buf, t->len);
	if (t->buf)
		pfree(t->buf);
	t->buf = newbuf;
	t->cap = newcap;
	return true;
}

/* libcurl write callback: append body bytes; never raises. */
static size_t
write_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	Transfer   *t = (Transfer *) userdata;
	size_t		n = size * nmemb;
	GikFetch   *f = t->fetch;

	if (t->status == 0)
		curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->status);
	if (t->status < 200 || t->status >= 300)
		return n;				/* error bodies are discarded */

	if (f->mode == GIK_FETCH_RANGE)
	{
		if (t->status == 200 && (f->offset != 0 || t->len + n > (size_t) f->length))
		{
			set_fail(t, FAIL_IGNORED_RANGE,
					 "The server ignored the Range header and sent the whole object.");
			return 0;
		}
		if (t->len + n > (size_t) f->length)
		{
			set_fail(t, FAIL_WRONG_RANGE, "The server sent more bytes than the requested range.");
			return 0;
		}
	}
	if (t->len + n > max_response_bytes())
	{
		set_fail(t, FAIL_TOO_LARGE, "The response is larger than gik.max_response_size.");
		return 0;
	}
	if (!budget_grow(t, t->len + n))
	{
		t->paused = true;		/* delivered again once there is room */
		t->session->paused++;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (!grow_buffer(t, t->len + n))
	{
		set_fail(t, FAIL_OOM, "Out of memory while receiving the response.");
		return 0;
	}
	memcpy(t->buf + t->len, ptr, n);
	t->len += n;
	return n;
}

/* Parse "bytes a-b/total" (total may be "*"). */
static void
parse_content_range(Transfer *t, const char *value, size_t len)
{
	char		tmp[128];
	long long	a,
				b;
	char		total[32];

	if (len >= sizeof(tmp))
		return;
	memcpy(tmp, value, len);
	tmp[len] = '\0';
	if (sscanf(tmp, "bytes %lld-%lld/%31s", &a, &b, total) == 3)
	{
		t->range_start = a;
		t->range_end = b;
		t->range_total = (total[0] == '*') ? -1 : strtoll(total, NULL, 10);
	}
}

/* The value of a header line named name (with its colon, any case), without leading spaces or CR/LF; NULL for another header. */
static const char *
header_value(const char *line, size_t n, const char *name, size_t *vlen)
{
	size_t		nlen = strlen(name);
	const char *value;

	if (n <= nlen || pg_strncasecmp(line, name, nlen) != 0)
		return NULL;
	value = line + nlen;
	while (*value == ' ')
		value++;
	*vlen = n - (value - line);
	while (*vlen > 0 && (value[*vlen - 1] == '\r' || value[*vlen - 1] == '\n'))
		(*vlen)--;
	return value;
}

/* libcurl header callback: Content-Range and ETag; never raises. */
static size_t
read_header(char *buffer, size_t size, size_t nitems, void *userdata)
{
	Transfer   *t = (Transfer *) userdata;
	size_t		n = size * nitems;
	size_t		vlen;
	const char *value;

	if ((value = header_value(buffer, n, "content-range:", &vlen)) != NULL)
		parse_content_range(t, value, vlen);
	else if (t->fetch->etag == NULL && (value = header_value(buffer, n, "etag:", &vlen)) != NULL)
	{
		t->fetch->etag = MemoryContextAllocExtended(CurrentMemoryContext, vlen + 1, MCXT_ALLOC_NO_OOM);
		if (t->fetch->etag)
		{
			memcpy(t->fetch->etag, value, vlen);
			t->fetch->etag[vlen] = '\0';
		}
	}
	return n;
}

/* libcurl progress callback: abort on query cancel or backend termination. */
static int
check_cancel(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	return (QueryCancelPending || ProcDiePending) ? 1 : 0;
}

/*
 * libcurl socket callback: refuse loopback, private and link-local addresses not in
 * gik.allowed_addresses before connecting. It sees the address curl is about to connect to,
 * so a host name that resolves to an internal address (DNS rebinding) is refused as well.
 */
static curl_socket_t
open_checked_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
	Transfer   *t = (Transfer *) clientp;
	char		ip[INET6_ADDRSTRLEN] = "?";

	if (addr->family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *) &addr->addr)->sin_addr, ip, sizeof(ip));
	else if (addr->family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &addr->addr)->sin6_addr, ip, sizeof(ip));
	if ((addr->family != AF_INET && addr->family != AF_INET6) ||
		(gik_address_is_internal(ip) && !gik_address_in_list(ip, gik_allowed_addresses)))
	{
		char		reason[256];

		snprintf(reason, sizeof(reason),
				 "The server address %s is loopback, private or link-local and not in gik.allowed_addresses; no connection was made.",
				 ip);
		set_fail(t, FAIL_POLICY, reason);
		return CURL_SOCKET_BAD;
	}
	return socket(addr->family, addr->socktype, addr->protocol);
}

/* Configure an easy handle for one attempt of a transfer. */
static void
setup_easy(Transfer *t)
{
	GikFetch   *f = t->fetch;
	CURL	   *e = t->easy;

	curl_easy_setopt(e, CURLOPT_URL, t->resolved);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);	/* redirects are followed by judge_attempt */
	curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);	/* send the path exactly as gik_url_normalize checked it */
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_USERAGENT, "pg_gik/0.1");
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long) gik_connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) gik_request_timeout_ms);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, gik_ssl_verify ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, gik_ssl_verify ? 2L : 0L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, read_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, check_cancel);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_checked_socket);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
	curl_easy_setopt(e, CURLOPT_PRIVATE, t);
	curl_easy_setopt(e, CURLOPT_FILETIME, 1L);	/* Last-Modified, for the object's identity */
	/* a HEAD has no body: a 500 MB GRIB file's Content-Length is not a response of 500 MB */
	if (f->mode == GIK_FETCH_HEAD)
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	else
		curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) max_response_bytes());
	if (f->mode == GIK_FETCH_RANGE)
	{
		char		range[64];

		snprintf(range, sizeof(range), INT64_FORMAT "-" INT64_FORMAT,
				 f->offset, f->offset + f->length - 1);
		curl_easy_setopt(e, CURLOPT_RANGE, range);
		if (!grow_buffer(t, (size_t) f->length))
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
							errmsg("out of memory for a range of " INT64_FORMAT " bytes", f->length)));
	}
}

/* Reset per-attempt state before a (re)try. */
static void
reset_attempt(Transfer *t)
{
	t->len = 0;
	t->status = 0;
	t->range_start = t->range_end = t->range_total = -1;
	t->fail = FAIL_NONE;
	t->reason[0] = '\0';
	t->errbuf[0] = '\0';
	t->waiting = false;
}

/* True for libcurl results worth retrying. */
static bool
curl_code_retryable(CURLcode code)
{
	switch (code)
	{
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_CONNECT:
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
		case CURLE_SSL_CONNECT_ERROR:
			return true;
		default:
			return false;
	}
}

/* Requested byte range as text, for error details. */
static char *
range_text(GikFetch *f)
{
	if (f->mode == GIK_FETCH_RANGE)
		return psprintf("bytes " INT64_FORMAT "-" INT64_FORMAT " (" INT64_FORMAT " bytes)",
						f->offset, f->offset + f->length - 1, f->length);
	return pstrdup(f->mode == GIK_FETCH_HEAD ? "HEAD request" : "whole object");
}

/* Raise the error for a transfer that failed for good. */
static void
raise_failure(Transfer *t)
{
	GikFetch   *f = t->fetch;
	char	   *what = range_text(f);

	switch (t->fail)
	{
		case FAIL_MISSING:
			ereport(ERROR, (errcode(ERRCODE_UNDEFINED_FILE),
							errmsg("could not fetch \"%s\": not found (HTTP %ld)", f->url, t->status),
							errdetail("Requested %s of %s.", what, t->resolved)));
			break;
		case FAIL_POLICY:
			ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
							errmsg("fetching \"%s\" is not allowed", f->url),
							errdetail("%s", t->reason),
							errhint("A superuser can extend gik.allowed_url_prefixes or gik.allowed_addresses.")));
			break;
		case FAIL_IGNORED_RANGE:
		case FAIL_WRONG_RANGE:
		case FAIL_TRUNCATED:
			ereport(ERROR, (errcode(ERRCODE_PROTOCOL_VIOLATION),
							errmsg("could not fetch \"%s\": %s", f->url,
								   t->fail == FAIL_IGNORED_RANGE ? "server ignored the byte range" :
								   t->fail == FAIL_WRONG_RANGE ? "server sent a different byte range" :
								   "response was truncated"),
							errdetail("Requested %s of %s. %s", what, t->resolved, t->reason)));
			break;
		case FAIL_PAST_END:
			ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
							errmsg("could not fetch \"%s\": byte range beyond the end of the object", f->url),
							errdetail("Requested %s of %s.", what, t->resolved),
							errhint("The index is stale or wrong: the file may have been replaced after it was indexed.")));
			break;
		case FAIL_TOO_LARGE:
			ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							errmsg("could not fetch \"%s\": response larger than %d MB", f->url,
								   gik_max_response_mb),
							errdetail("Requested %s of %s.", what, t->resolved),
							errhint("A superuser can raise gik.max_response_size.")));
			break;
		case FAIL_TOO_MANY_REDIRECTS:
			ereport(ERROR, (errcode(ERRCODE_PROTOCOL_VIOLATION),
							errmsg("could not fetch \"%s\": too many redirects", f->url),
							errdetail("%s", t->reason)));
			break;
		case FAIL_OOM:
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
							errmsg("out of memory while fetching \"%s\"", f->url),
							errdetail("Requested %s of %s.", what, t->resolved)));
			break;
		case FAIL_STATUS:
			ereport(ERROR, (errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
							errmsg("could not fetch \"%s\": HTTP status %ld", f->url, t->status),
							errdetail("Requested %s of %s.", what, t->resolved)));
			break;
		case FAIL_NETWORK:
		default:
			ereport(ERROR, (errcode(ERRCODE_CONNECTION_FAILURE),
							errmsg("could not fetch \"%s\": %s", f->url, t->reason),
							errdetail("Requested %s of %s after %d attempt%s.", what, t->resolved,
									  f->attempts, f->attempts == 1 ? "" : "s")));
			break;
	}
}

/* What to do after an attempt. */
typedef enum Outcome
{
	OUTCOME_DONE,				/* success, missing, or t->fail set */
	OUTCOME_RETRY,				/* transient failure: try again after a backoff */
	OUTCOME_REDIRECT			/* t->resolved now holds the checked redirect target */
} Outcome;

/*
 * Follow a redirect by hand so its target is checked before any connection is made: the
 * target is normalised like a request URL, and the normalised URL is checked and fetched.
 */
static Outcome
follow_redirect(Transfer *t)
{
	char	   *target = NULL;
	char	   *normalised;
	char		reason[256];

	curl_easy_getinfo(t->easy, CURLINFO_REDIRECT_URL, &target);
	if (!target)
	{
		set_fail(t, FAIL_STATUS, "Redirect without a Location.");
		return OUTCOME_DONE;
	}
	if (++t->redirects > 5)
	{
		snprintf(reason, sizeof(reason), "The server redirected more than 5 times; the last redirect was to %.180s.", target);
		set_fail(t, FAIL_TOO_MANY_REDIRECTS, reason);
		return OUTCOME_DONE;
	}
	if (!gik_url_normalize(target, gik_core_alloc, &normalised))
	{
		snprintf(reason, sizeof(reason), "The redirect target %.120s is refused: %s", target, normalised);
		set_fail(t, FAIL_POLICY, reason);
		return OUTCOME_DONE;
	}
	if (!gik_url_has_prefix(normalised, t->prefixes, t->nprefixes))
	{
		snprintf(reason, sizeof(reason), "The redirect target %.180s is not under gik.allowed_url_prefixes.", normalised);
		set_fail(t, FAIL_POLICY, reason);
		return OUTCOME_DONE;
	}
	t->resolved = MemoryContextStrdup(t->cxt, normalised);
	return OUTCOME_REDIRECT;
}

/* Judge a finished attempt; sets t->fail when the request failed for good. */
static Outcome
judge_attempt(Transfer *t, CURLcode code)
{
	GikFetch   *f = t->fetch;

	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->status);
	if (t->fail != FAIL_NONE)
		return OUTCOME_DONE;
	if (code != CURLE_OK)
	{
		char		reason[256];

		if (code == CURLE_ABORTED_BY_CALLBACK)
			return OUTCOME_DONE;		/* cancel; handled by the caller */
		if (code == CURLE_FILESIZE_EXCEEDED)
		{
			set_fail(t, FAIL_TOO_LARGE, "The response is larger than gik.max_response_size.");
			return OUTCOME_DONE;
		}
		snprintf(reason, sizeof(reason), "%s",
				 t->errbuf[0] ? t->errbuf : curl_easy_strerror(code));
		if (curl_code_retryable(code) && f->attempts <= gik_fetch_retries)
			return OUTCOME_RETRY;
		set_fail(t, code == CURLE_PARTIAL_FILE ? FAIL_TRUNCATED : FAIL_NETWORK, reason);
		return OUTCOME_DONE;
	}
	if (t->status == 301 || t->status == 302 || t->status == 303 || t->status == 307 || t->status == 308)
		return follow_redirect(t);
	if (t->status == 404 || t->status == 410)
	{
		set_fail(t, FAIL_MISSING, "Not found.");
		return OUTCOME_DONE;
	}
	if (t->status == 416)
	{
		set_fail(t, FAIL_PAST_END, "The byte range starts beyond the end of the object.");
		return OUTCOME_DONE;
	}
	if (t->status >= 500 || t->status == 429)
	{
		char		reason[64];

		if (f->attempts <= gik_fetch_retries)
			return OUTCOME_RETRY;
		snprintf(reason, sizeof(reason), "HTTP status %ld", t->status);
		set_fail(t, FAIL_NETWORK, reason);
		return OUTCOME_DONE;
	}
	if (t->status < 200 || t->status >= 300)
	{
		set_fail(t, FAIL_STATUS, "Unexpected status.");
		return OUTCOME_DONE;
	}
	if (f->mode == GIK_FETCH_RANGE)
	{
		if (t->status == 206 && (t->range_start != f->offset ||
								 t->range_end != f->offset + f->length - 1))
		{
			char		reason[160];

			snprintf(reason, sizeof(reason), "The server answered with bytes " INT64_FORMAT "-" INT64_FORMAT ".",
					 t->range_start, t->range_end);
			set_fail(t, FAIL_WRONG_RANGE, reason);
			return OUTCOME_DONE;
		}
		if (t->len != (size_t) f->length)
		{
			char		reason[160];

			if (f->attempts <= gik_fetch_retries && t->range_total < 0)
				return OUTCOME_RETRY;
			snprintf(reason, sizeof(reason), "Received %zu of " INT64_FORMAT " bytes%s.", t->len, f->length,
					 (t->range_total >= 0 && f->offset + f->length > t->range_total) ?
					 "; the range goes past the end of the object" : "");
			set_fail(t, FAIL_TRUNCATED, reason);
			return OUTCOME_DONE;
		}
		f->file_size = t->range_total;
	}
	else if (f->mode == GIK_FETCH_HEAD)
	{
		curl_off_t	cl = -1;

		curl_easy_getinfo(t->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
		f->file_size = cl;
	}
	else
		f->file_size = (int64) t->len;
	{
		curl_off_t	filetime = -1;

		if (curl_easy_getinfo(t->easy, CURLINFO_FILETIME_T, &filetime) == CURLE_OK && filetime >= 0)
			f->last_modified = (int64) filetime;
	}
	return OUTCOME_DONE;
}

/* Read a local file for a request (privileged roles only). */
static void
fetch_local(GikFetch *f, const char *path)
{
	int			fd;
	struct stat st;

	f->attempts = 1;
	fd = open(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		if (errno == ENOENT && f->missing_ok)
		{
			f->missing = true;
			f->failure = pstrdup("No such file.");
			return;
		}
		ereport(ERROR, (errcode_for_file_access(),
						errmsg("could not open \"%s\": %m", f->url)));
	}
	PG_TRY();
	{
		if (fstat(fd, &st) < 0)
			ereport(ERROR, (errcode_for_file_access(),
							errmsg("could not stat \"%s\": %m", f->url)));
		if (S_ISDIR(st.st_mode))
			ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
							errmsg("\"%s\" is a directory", f->url)));
		f->file_size = (int64) st.st_size;
		f->etag = psprintf("\"%lx-%lx\"", (unsigned long) st.st_mtime, (unsigned long) st.st_size);
		f->last_modified = (int64) st.st_mtime;
		if (f->mode != GIK_FETCH_HEAD)
		{
			int64		start = f->mode == GIK_FETCH_RANGE ? f->offset : 0;
			int64		want = f->mode == GIK_FETCH_RANGE ? f->length : f->file_size;
			int64		got = 0;

			if ((size_t) want > max_response_bytes())
				ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
								errmsg("could not read \"%s\": larger than %d MB", f->url, gik_max_response_mb),
								errhint("A superuser can raise gik.max_response_size.")));
			f->data = MemoryContextAllocHuge(CurrentMemoryContext, Max(want, 1));
			while (got < want)
			{
				ssize_t		r = pread(fd, f->data + got, (size_t) (want - got), (off_t) (start + got));

				if (r < 0)
					ereport(ERROR, (errcode_for_file_access(),
									errmsg("could not read \"%s\": %m", f->url)));
				if (r == 0)
					ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
									errmsg("could not read \"%s\": file too short", f->url),
									errdetail("Requested bytes " INT64_FORMAT "-" INT64_FORMAT " but the file has "
											  INT64_FORMAT " bytes.", start, start + want - 1, f->file_size)));
				got += r;
			}
			f->size = want;
		}
	}
	PG_FINALLY();
	{
		close(fd);
	}
	PG_END_TRY();
}

/* Raise an error unless the current user may read server files. */
void
gik_check_local_file_access(const char *url)
{
	if (!superuser() && !has_privs_of_role(GetUserId(), ROLE_PG_READ_SERVER_FILES))
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("permission denied to read server file \"%s\"", url),
						errdetail("Only superusers and members of pg_read_server_files may read files on the database server.")));
}

/* Finish a transfer's result: hand over the body and mark missing. */
static void
complete_transfer(Transfer *t)
{
	GikFetch   *f = t->fetch;

	if ((t->fail == FAIL_MISSING && f->missing_ok) || (t->fail == FAIL_NETWORK && f->unavailable_ok))
	{
		f->missing = t->fail == FAIL_MISSING;
		f->unavailable = t->fail == FAIL_NETWORK;
		f->failure = MemoryContextStrdup(t->cxt, t->reason);
		f->data = NULL;
		f->size = 0;
		budget_release(t->session, t);
		return;
	}
	if (f->mode != GIK_FETCH_HEAD)
	{
		f->data = t->buf ? t->buf : palloc(1);
		f->size = (int64) t->len;
		t->buf = NULL;
	}
}

/* Milliseconds until a time (0 if past). */
static long
ms_until(TimestampTz when)
{
	return TimestampDifferenceMilliseconds(GetCurrentTimestamp(), when);
}

/* Remove in-flight transfers from the multi handle and return their easy handles. */
static void
session_release(GikFetchSession *s)
{
	if (s->ended)
		return;
	s->ended = true;
	for (int i = 0; i < s->nfetches; i++)
		if (s->xfers[i].easy)
		{
			curl_multi_remove_handle(multi_handle, s->xfers[i].easy);
			give_easy(s->xfers[i].easy);
			s->xfers[i].easy = NULL;
		}
}

/* Memory-context reset callback: release transfers when the caller's context goes away (also on error). */
static void
session_release_callback(void *arg)
{
	session_release((GikFetchSession *) arg);
}

/* True when gik.allowed_url_prefixes lets url be fetched (server files: see gik_check_local_file_access). */
bool
gik_fetch_url_allowed(const char *url)
{
	char	  **prefixes;
	int			nprefixes;
	char	   *resolved;
	GikUrlKind	kind = gik_url_resolve(url, gik_s3_endpoint, gik_gs_endpoint, gik_core_alloc, &resolved);

	if (kind == GIK_URL_INVALID)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid URL \"%s\"", url),
						errdetail("%s", resolved)));
	if (kind == GIK_URL_FILE)
		return true;
	nprefixes = gik_url_resolve_prefixes(gik_allowed_url_prefixes, gik_s3_endpoint, gik_gs_endpoint,
										 gik_core_alloc, &prefixes);
	return gik_url_has_prefix(resolved, prefixes, nprefixes);
}

/* Validate and queue requests; nothing is transferred until gik_fetch_next. */
GikFetchSession *
gik_fetch_begin(GikFetch *fetches, int nfetches)
{
	GikFetchSession *s = palloc0(sizeof(GikFetchSession));
	char	  **prefixes;
	int			nprefixes;

	if (!gik_preloaded)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("pg_gik fetches nothing unless it is in shared_preload_libraries"),
						errdetail("Loaded later, its superuser-only settings (gik.allowed_url_prefixes, gik.s3_endpoint, ...) "
								  "may have been replaced by a session's own values when it connected."),
						errhint("Add pg_gik to shared_preload_libraries in postgresql.conf and restart the server.")));
	ensure_curl();
	nprefixes = gik_url_resolve_prefixes(gik_allowed_url_prefixes, gik_s3_endpoint, gik_gs_endpoint,
										 gik_core_alloc, &prefixes);
	s->fetches = fetches;
	s->nfetches = nfetches;
	s->xfers = palloc0(sizeof(Transfer) * Max(nfetches, 1));
	s->queue = palloc(sizeof(int) * Max(nfetches, 1));
	s->ready = palloc(sizeof(int) * Max(nfetches, 1));
	for (int i = 0; i < nfetches; i++)
	{
		GikFetch   *f = &fetches[i];
		Transfer   *t = &s->xfers[i];
		GikUrlKind	kind;

		f->data = NULL;
		f->size = 0;
		f->file_size = -1;
		f->etag = NULL;
		f->last_modified = -1;
		f->missing = false;
		f->unavailable = false;
		f->failure = NULL;
		f->attempts = 0;
		t->fetch = f;
		t->index = i;
		t->cxt = CurrentMemoryContext;
		t->prefixes = prefixes;
		t->nprefixes = nprefixes;
		t->session = s;
		if (f->mode == GIK_FETCH_RANGE && (f->offset < 0 || f->length <= 0 || f->offset > PG_INT64_MAX - f->length))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("invalid byte range for \"%s\": offset " INT64_FORMAT ", length " INT64_FORMAT,
								   f->url, f->offset, f->length),
							errdetail("The offset must be zero or more, the length more than zero, and their sum a 64-bit integer.")));
		if (f->mode == GIK_FETCH_RANGE && (uint64) f->length > max_response_bytes())
			ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
							errmsg("byte range of " INT64_FORMAT " bytes of \"%s\" is larger than gik.max_response_size (%d MB)",
								   f->length, f->url, gik_max_response_mb),
							errdetail("Nothing was fetched."),
							errhint("A superuser can raise gik.max_response_size.")));
		kind = gik_url_resolve(f->url, gik_s3_endpoint, gik_gs_endpoint, gik_core_alloc, &t->resolved);
		if (kind == GIK_URL_INVALID)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("invalid URL \"%s\"", f->url),
							errdetail("%s", t->resolved)));
		if (kind == GIK_URL_FILE)
		{
			gik_check_local_file_access(f->url);
			t->local = true;
		}
		else if (!gik_url_has_prefix(t->resolved, prefixes, nprefixes))
			ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
							errmsg("fetching \"%s\" is not allowed", f->url),
							errdetail("The URL %s is not under gik.allowed_url_prefixes.", t->resolved),
							errhint("A superuser can extend gik.allowed_url_prefixes.")));
		else
			s->queue[s->qlen++] = i;
	}
	s->remaining = nfetches;
	s->hold_limit = INT_MAX;
	s->budget = (size_t) gik_max_fetch_memory_mb * 1024 * 1024;
	s->cleanup.func = session_release_callback;
	s->cleanup.arg = s;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &s->cleanup);
	return s;
}

/* Start queued transfers whose retry time has come; returns the wait until the next retry, at most max_ms. */
static long
start_queued(GikFetchSession *s, long max_ms)
{
	int			kept = 0;
	long		wait_ms = max_ms;

	for (int k = 0; k < s->qlen; k++)
	{
		Transfer   *t = &s->xfers[s->queue[k]];

		size_t		need = t->fetch->mode == GIK_FETCH_RANGE ? (size_t) t->fetch->length : 0;

		if (s->active >= gik_max_connections || s->active + s->held >= s->hold_limit ||
			(t->waiting && ms_until(t->retry_at) > 0) ||
			(need > 0 && s->reserved + need > s->budget && s->reserved > 0))
		{
			if (t->waiting)
				wait_ms = Min(wait_ms, Max(1, ms_until(t->retry_at)));
			s->queue[kept++] = s->queue[k];
			continue;
		}
		reset_attempt(t);
		if (t->started_seq == 0)
			t->started_seq = ++s->next_seq;
		s->reserved += need - Min(need, t->reserved);
		t->reserved = Max(t->reserved, need);
		t->easy = take_easy();
		setup_easy(t);
		t->fetch->attempts++;
		curl_multi_add_handle(multi_handle, t->easy);
		s->active++;
	}
	s->qlen = kept;
	return wait_ms;
}

/* Handle libcurl's finished transfers: retry, complete, or raise the first permanent failure. */
static void
collect_finished(GikFetchSession *s)
{
	CURLMsg    *msg;
	int			msgs_left;

	while ((msg = curl_multi_info_read(multi_handle, &msgs_left)) != NULL)
	{
		Transfer   *t;
		Outcome		outcome;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t);
		curl_multi_remove_handle(multi_handle, t->easy);
		s->active--;
		if (msg->data.result == CURLE_ABORTED_BY_CALLBACK && t->fail == FAIL_NONE)
		{
			give_easy(t->easy);
			t->easy = NULL;
			CHECK_FOR_INTERRUPTS();
			ereport(ERROR, (errcode(ERRCODE_QUERY_CANCELED), errmsg("fetch cancelled")));
		}
		outcome = judge_attempt(t, msg->data.result);
		if (outcome == OUTCOME_REDIRECT)
		{
			give_easy(t->easy);
			t->easy = NULL;
			t->waiting = false;
			t->fetch->attempts--;	/* a redirect is not a retry */
			s->queue[s->qlen++] = t->index;
			continue;
		}
		if (outcome == OUTCOME_RETRY)
		{
			long		delay = (long) gik_retry_backoff_ms << Min(t->fetch->attempts - 1, 10);

			give_easy(t->easy);
			t->easy = NULL;
			t->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), delay);
			t->waiting = true;
			s->queue[s->qlen++] = t->index;
			continue;
		}
		give_easy(t->easy);
		t->easy = NULL;
		if (t->fail != FAIL_NONE && !(t->fail == FAIL_MISSING && t->fetch->missing_ok)
			&& !(t->fail == FAIL_NETWORK && t->fetch->unavailable_ok))
			raise_failure(t);
		complete_transfer(t);
		s->ready[s->nready++] = t->index;
	}
}

/* Drive transfers until a request completes; returns its index, -1 when all are done, -2 after max_wait_ms. */
int
gik_fetch_next(GikFetchSession *s, long max_wait_ms)
{
	return gik_fetch_next_or(s, max_wait_ms, NULL, 0);
}

/* Wait up to wait_ms for transfers, or for one of fds to be readable; true when one of fds is. */
static bool
wait_transfers_or(GikFetchSession *s, long wait_ms, const int *fds, int nfds)
{
	struct curl_waitfd extra[64];
	int			n = Min(nfds, 64);

	for (int i = 0; i < n; i++)
	{
		extra[i].fd = fds[i];
		extra[i].events = CURL_WAIT_POLLIN;
		extra[i].revents = 0;
	}
	if (s->active > 0 || n > 0)
		curl_multi_poll(multi_handle, extra, (unsigned int) n, (int) wait_ms, NULL);
	else
		pg_usleep(wait_ms * 1000L);
	for (int i = 0; i < n; i++)
		if (extra[i].revents)
			return true;
	return false;
}

/* gik_fetch_next that also returns -2 as soon as one of fds is readable. */
int
gik_fetch_next_or(GikFetchSession *s, long max_wait_ms, const int *fds, int nfds)
{
	TimestampTz deadline = max_wait_ms < 0 ? 0 :
		TimestampTzPlusMilliseconds(GetCurrentTimestamp(), max_wait_ms);

	for (;;)
	{
		int			still_running = 0;
		long		wait_ms;

		if (s->nready > 0)
		{
			s->remaining--;
			s->held++;
			return s->ready[--s->nready];
		}
		/* local files are read one per call, in order */
		while (s->held < s->hold_limit && s->next_local < s->nfetches)
		{
			Transfer   *t = &s->xfers[s->next_local++];

			if (t->local)
			{
				fetch_local(t->fetch, t->resolved);
				t->reserved = (size_t) t->fetch->size;
				s->reserved += t->reserved;
				s->remaining--;
				s->held++;
				return t->index;
			}
		}
		if (s->remaining == 0)
		{
			session_release(s);
			return -1;
		}
		if (s->held >= s->hold_limit && s->active == 0)
		{
			/* the caller must release data first: wait for what it waits on, if anything */
			if (nfds > 0)
				wait_transfers_or(s, max_wait_ms < 0 ? 100 : Min(max_wait_ms, 100), fds, nfds);
			return -2;
		}
		CHECK_FOR_INTERRUPTS();
		wait_ms = start_queued(s, 100);
		curl_multi_perform(multi_handle, &still_running);
		collect_finished(s);
		if (s->nready > 0)
			continue;
		if (max_wait_ms >= 0)
		{
			long		left = ms_until(deadline);

			if (left <= 0)
				return -2;
			wait_ms = Min(wait_ms, left);
		}
		if (wait_transfers_or(s, wait_ms, fds, nfds))
			return -2;
	}
}

/* Limit completed-but-unreleased requests. */
void
gik_fetch_set_hold_limit(GikFetchSession *s, int limit)
{
	s->hold_limit = Max(limit, 1);
}

/* Free a completed request's data and give its memory back to the budget. */
void
gik_fetch_release(GikFetchSession *s, int index)
{
	GikFetch   *f = &s->fetches[index];

	if (f->data)
		pfree(f->data);
	f->data = NULL;
	s->held--;
	budget_release(s, &s->xfers[index]);
}

/* Stop all transfers of a session (idempotent; also runs when the caller's memory context is reset). */
void
gik_fetch_end(GikFetchSession *s)
{
	session_release(s);
}

/* Run all requests with bounded concurrency and retries. */
void
gik_fetch_all(GikFetch *fetches, int nfetches, GikFetchDoneFn done, void *arg)
{
	GikFetchSession *s;
	int			i;

	if (nfetches <= 0)
		return;
	s = gik_fetch_begin(fetches, nfetches);
	PG_TRY();
	{
		while ((i = gik_fetch_next(s, -1)) >= 0)
			if (done)
			{
				done(&fetches[i], i, arg);
				gik_fetch_release(s, i);
			}
	}
	PG_FINALLY();
	{
		gik_fetch_end(s);
	}
	PG_END_TRY();
}

/* Fetch one request. */
void
gik_fetch_one(GikFetch *fetch)
{
	gik_fetch_all(fetch, 1, NULL, NULL);
}
