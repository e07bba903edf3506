/* Fetching URLs from the backend: ranged GET, whole GET and HEAD over libcurl, or local files. */
#ifndef GIK_FETCH_H
#define GIK_FETCH_H

#include "postgres.h"

typedef enum GikFetchMode
{
	GIK_FETCH_WHOLE,			/* GET the whole object */
	GIK_FETCH_RANGE,			/* GET bytes offset .. offset+length-1 */
	GIK_FETCH_HEAD				/* size and etag only */
} GikFetchMode;

/* One request and its result. Results are allocated in the caller's memory context. */
typedef struct GikFetch
{
	/* set by the caller */
	const char *url;			/* as the user wrote it (s3://, https://, file://, /path) */
	GikFetchMode mode;
	int64		offset;
	int64		length;
	bool		missing_ok;		/* 404/410 or a missing file sets missing instead of raising */
	bool		unavailable_ok; /* 5xx/429 or no connection after the retries sets unavailable instead */

	/* results */
	char	   *data;			/* body (NULL for HEAD or missing) */
	int64		size;			/* bytes in data */
	int64		file_size;		/* object size, -1 when the server did not say */
	char	   *etag;			/* ETag header or local mtime+size, NULL if unknown */
	int64		last_modified;	/* Last-Modified (or local mtime) in Unix seconds, -1 if unknown */
	bool		missing;
	bool		unavailable;
	char	   *failure;		/* why a missing or unavailable request failed: "HTTP status 503", ... */
	int			attempts;		/* requests made, retries included */
} GikFetch;

/* Called in the calling backend as each request completes; it may raise errors. */
typedef void (*GikFetchDoneFn) (GikFetch *fetch, int index, void *arg);

/*
 * Run all requests, at most gik.max_connections at once, retrying server errors
 * and failed connections. Raises an error naming the URL for the first request
 * that fails for good. done (may be NULL) is called once per request that
 * completes, in completion order.
 */
extern void gik_fetch_all(GikFetch *fetches, int nfetches, GikFetchDoneFn done, void *arg);

/* An incremental fetch, for callers that consume results while transfers go on. */
typedef struct GikFetchSession GikFetchSession;

/*
 * Validate URLs and permissions and queue the requests. Transfers are released
 * when the current memory context is reset (so also on error) or by gik_fetch_end.
 */
extern GikFetchSession *gik_fetch_begin(GikFetch *fetches, int nfetches);

/*
 * Drive transfers until one request completes and return its index; -1 when all
 * are done; -2 when max_wait_ms (>= 0) passed first. Raises on a permanent failure
 * or on query cancel.
 */
extern int	gik_fetch_next(GikFetchSession *session, long max_wait_ms);

/* gik_fetch_next that also returns -2 as soon as one of fds (e.g. decoder pipes) is readable. */
extern int	gik_fetch_next_or(GikFetchSession *session, long max_wait_ms, const int *fds, int nfds);

/*
 * Keep at most limit completed requests whose data the caller has not released;
 * no new transfer starts beyond that. Default: no limit.
 */
extern void gik_fetch_set_hold_limit(GikFetchSession *session, int limit);

/* Free a completed request's data and count it as released. */
extern void gik_fetch_release(GikFetchSession *session, int index);

/* Stop the remaining transfers (idempotent). */
extern void gik_fetch_end(GikFetchSession *session);

/* Fetch one request (convenience wrapper around gik_fetch_all). */
extern void gik_fetch_one(GikFetch *fetch);

/* Raise an error unless the current user may read server files. */
extern void gik_check_local_file_access(const char *url);

/* True when gik.allowed_url_prefixes lets a URL (s3://, gs://, http(s)://) be fetched; server files are
 * governed by the server-file permission instead and count as allowed here. Invalid URLs are errors. */
extern bool gik_fetch_url_allowed(const char *url);

#endif
