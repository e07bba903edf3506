/* pg_gik: module entry point, gik.* settings and the allocator handed to src/core. */
#include "postgres.h"

#include <limits.h>
#include <malloc.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "utils/guc.h"

#include "pg_gik.h"

PG_MODULE_MAGIC;

bool		gik_preloaded = false;
char	   *gik_s3_endpoint = NULL;
char	   *gik_gs_endpoint = NULL;
char	   *gik_allowed_url_prefixes = NULL;
char	   *gik_allowed_addresses = NULL;
char	   *gik_mirrors = NULL;
int			gik_min_members = 1;
bool		gik_ssl_verify = true;
int			gik_max_connections = 16;
int			gik_connect_timeout_ms = 10000;
int			gik_request_timeout_ms = 120000;
int			gik_fetch_retries = 3;
int			gik_retry_backoff_ms = 200;
int			gik_max_response_mb = 256;
int			gik_max_fetch_memory_mb = 512;
int			gik_max_index_mb = 64;
int			gik_decode_threads = 2;
int			gik_merge_gap_bytes = 0;
bool		gik_record_grib_identity = true;
int			gik_decoder_memory_limit_mb = 2048;
int			gik_decoder_timeout_ms = 60000;
int			gik_max_message_points = 30000000;
int			gik_max_call_decoded_mb = 16384;

void		_PG_init(void);

void *
gik_core_alloc(size_t size)
{
	return MemoryContextAllocHuge(CurrentMemoryContext, size);
}

/*
 * Define the gik.* settings. Only a library loaded by shared_preload_libraries defines them
 * before any session can set them: loaded later, the placeholder a session set at connection
 * (PGOPTIONS) has already replaced the superuser's value, so nothing that fetches trusts them.
 */
void
_PG_init(void)
{
	gik_preloaded = process_shared_preload_libraries_in_progress;
	DefineCustomStringVariable("gik.s3_endpoint",
							   "Endpoint that s3://bucket/key URLs are mapped to.",
							   "Empty means the AWS virtual-host form https://bucket.s3.amazonaws.com/key; "
							   "a URL such as http://127.0.0.1:9000 gives the path-style form endpoint/bucket/key.",
							   &gik_s3_endpoint, "", PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("gik.gs_endpoint",
							   "Endpoint that gs://bucket/key URLs are mapped to (path style).",
							   NULL, &gik_gs_endpoint, "https://storage.googleapis.com",
							   PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("gik.allowed_url_prefixes",
							   "Comma-separated URL prefixes that fetches may reach.",
							   "s3:// and gs:// prefixes are mapped like request URLs. Every request and every redirect is checked.",
							   &gik_allowed_url_prefixes,
							   "s3://noaa-gefs-pds/,s3://ecmwf-forecasts/,s3://noaa-gfs-bdp-pds/,s3://noaa-hrrr-bdp-pds/,"
							   "https://noaa-gefs-pds.s3.amazonaws.com/,https://ecmwf-forecasts.s3.amazonaws.com/,"
							   "https://noaa-gfs-bdp-pds.s3.amazonaws.com/,https://noaa-hrrr-bdp-pds.s3.amazonaws.com/,"
							   "https://data.ecmwf.int/forecasts/,"
							   "https://storage.googleapis.com/gfs-ensemble-forecast-system/,"
							   "https://storage.googleapis.com/global-forecast-system/,"
							   "https://storage.googleapis.com/high-resolution-rapid-refresh/,"
							   "https://storage.googleapis.com/ecmwf-open-data/,"
							   "https://noaagefs.blob.core.windows.net/gefs/,https://noaagfs.blob.core.windows.net/gfs/,"
							   "https://noaahrrr.blob.core.windows.net/hrrr/,https://ai4edataeuwest.blob.core.windows.net/ecmwf/,"
							   "https://nomads.ncep.noaa.gov/pub/data/nccf/com/",
							   PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("gik.mirrors",
							   "Comma-separated names of the mirrors (gik.mirror) that ingestion tries, in this order.",
							   "Empty tries every mirror of a URL's bucket by priority; a mirror not named is not used. "
							   "Which URLs may be fetched at all is still gik.allowed_url_prefixes.",
							   &gik_mirrors, "", PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("gik.min_members",
							"Fewest ensemble members an ensemble product (gik.exceedance) may be computed from.",
							"With fewer members covering the window (files or members missing from a run), the product "
							"is an error instead of a probability from a smaller ensemble.",
							&gik_min_members, 1, 1, 100000, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("gik.allowed_addresses",
							   "Comma-separated IP addresses or CIDR blocks that may be reached although they are "
							   "loopback, private or link-local.",
							   NULL, &gik_allowed_addresses, "", PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("gik.ssl_verify",
							 "Verify TLS certificates and host names.",
							 NULL, &gik_ssl_verify, true, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("gik.max_connections",
							"Concurrent HTTP transfers per call.",
							NULL, &gik_max_connections, 16, 1, 256, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("gik.connect_timeout",
							"Time allowed to connect to a server.",
							NULL, &gik_connect_timeout_ms, 10000, 100, 600000, PGC_USERSET,
							GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("gik.request_timeout",
							"Time allowed for one transfer, connection included.",
							NULL, &gik_request_timeout_ms, 120000, 100, 3600000, PGC_USERSET,
							GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("gik.fetch_retries",
							"Retries after a server error (5xx, 429) or a failed connection.",
							NULL, &gik_fetch_retries, 3, 0, 10, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("gik.retry_backoff",
							"First retry delay; it doubles on every further retry.",
							NULL, &gik_retry_backoff_ms, 200, 0, 60000, PGC_USERSET,
							GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("gik.max_response_size",
							"Largest response body accepted from one request.",
							NULL, &gik_max_response_mb, 256, 1, 1024, PGC_SUSET,
							GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomIntVariable("gik.max_fetch_memory",
							"Most memory one call holds in responses, in flight and not yet consumed.",
							"Requests wait for room; they do not fail. One response may exceed it when nothing else is in flight.",
							&gik_max_fetch_memory_mb, 512, 16, 65536, PGC_SUSET,
							GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomIntVariable("gik.max_index_size",
							"Largest index file (.idx or .index) that is parsed.",
							NULL, &gik_max_index_mb, 64, 1, 1024, PGC_SUSET,
							GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomIntVariable("gik.decode_threads",
							"Decoder processes that decode GRIB messages in parallel for this session.",
							NULL, &gik_decode_threads, 2, 1, 64, PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("gik.merge_gap",
							"Ranges in the same file closer than this are fetched in one request.",
							NULL, &gik_merge_gap_bytes, 0, 0, 16 * 1024 * 1024, PGC_USERSET,
							GUC_UNIT_BYTE, NULL, NULL, NULL);

	DefineCustomBoolVariable("gik.record_grib_identity",
							 "Record each GRIB file's size, ETag and Last-Modified at ingestion (a HEAD request per file).",
							 "Exports write them into virtual references so that readers can refuse a replaced file.",
							 &gik_record_grib_identity, true, PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("gik.decoder_memory_limit",
							"Address space each decoder process may use.",
							"A decoder that needs more fails the message with an out-of-memory error; the server is unaffected.",
							&gik_decoder_memory_limit_mb, 2048, 64, 65536, PGC_SUSET,
							GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomIntVariable("gik.decoder_timeout",
							"Longest time a decoder process may spend on one message.",
							NULL, &gik_decoder_timeout_ms, 60000, 100, 3600000, PGC_SUSET,
							GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("gik.max_message_points",
							"Most grid points a message may declare to be decoded.",
							"Larger messages are refused before anything is allocated for them.",
							&gik_max_message_points, 30000000, 1, 1000000000, PGC_SUSET,
							0, NULL, NULL, NULL);
	DefineCustomIntVariable("gik.max_call_decoded_size",
							"Most bytes of values one call may decode.",
							NULL, &gik_max_call_decoded_mb, 16384, 1, INT_MAX, PGC_SUSET,
							GUC_UNIT_MB, NULL, NULL, NULL);

	MarkGUCPrefixReserved("gik");

	/*
	 * Every decoded message becomes a field-sized array. With glibc's defaults each comes
	 * from fresh mmap()ed pages, and the page faults cost more than the copy; keep such
	 * blocks in the heap for reuse instead.
	 */
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 128 * 1024 * 1024);
}
