/* pg_gik: settings shared by the backend glue files. */
#ifndef PG_GIK_H
#define PG_GIK_H

#include "postgres.h"

/* Loaded by shared_preload_libraries: only then are the superuser-only settings trustworthy. */
extern bool gik_preloaded;

/* gik.* settings, defined in pg_gik.c */
extern char *gik_s3_endpoint;
extern char *gik_gs_endpoint;
extern char *gik_allowed_url_prefixes;
extern char *gik_allowed_addresses;
extern char *gik_mirrors;
extern bool gik_ssl_verify;
extern int	gik_max_connections;
extern int	gik_connect_timeout_ms;
extern int	gik_request_timeout_ms;
extern int	gik_fetch_retries;
extern int	gik_retry_backoff_ms;
extern int	gik_max_response_mb;
extern int	gik_max_fetch_memory_mb;
extern int	gik_max_index_mb;
extern int	gik_decode_threads;
extern int	gik_merge_gap_bytes;
extern int	gik_decoder_memory_limit_mb;
extern int	gik_decoder_timeout_ms;
extern int	gik_max_message_points;
extern int	gik_max_call_decoded_mb;

#endif
