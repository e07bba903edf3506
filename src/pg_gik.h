/* pg_gik: the module's settings, and the allocator the backend hands to src/core. */
#ifndef PG_GIK_H
#define PG_GIK_H

#include "postgres.h"

/* InitMaterializedSRF and MarkGUCPrefixReserved arrived in 15; see docs/architecture-c.md for 16 and 17. */
#if PG_VERSION_NUM < 150000
#error "pg_gik needs PostgreSQL 15 or later"
#endif

#include <stddef.h>

/* Loaded by shared_preload_libraries: only then are the superuser-only settings trustworthy. */
extern bool gik_preloaded;

/* gik.* settings, defined in pg_gik.c */
extern char *gik_s3_endpoint;
extern char *gik_gs_endpoint;
extern char *gik_allowed_url_prefixes;
extern char *gik_allowed_addresses;
extern char *gik_mirrors;
extern int	gik_min_members;
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

/*
 * palloc with the core's allocator signature (GikAllocFn), in the current memory context. Huge
 * requests are allowed: the core sizes its own buffers (percentile scratch grows with members).
 */
extern void *gik_core_alloc(size_t size);

#endif
