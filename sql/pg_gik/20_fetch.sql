-- Fetching (C, libcurl). Not executable by PUBLIC: see 99_privileges.sql.

-- grant: ingest
CREATE FUNCTION gik.fetch_text(url text) RETURNS text
AS 'MODULE_PATHNAME', 'gik_fetch_text'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.fetch_text(text) IS
'Fetch a whole object (s3://, gs://, http(s)://, file:// or a server path) as text.';

-- grant: ingest
CREATE FUNCTION gik.fetch_bytes(url text, byte_offset int8 DEFAULT NULL, byte_length int8 DEFAULT NULL)
RETURNS bytea
AS 'MODULE_PATHNAME', 'gik_fetch_bytes'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.fetch_bytes(text, int8, int8) IS
'Fetch a byte range with an HTTP Range request (or the whole object when offset and length are NULL).';

-- grant: ingest
CREATE FUNCTION gik.file_info(url text, OUT found bool, OUT size int8, OUT etag text, OUT last_modified timestamptz)
AS 'MODULE_PATHNAME', 'gik_file_info'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.file_info(text) IS
'Size, ETag and Last-Modified of an object from a HEAD request (stat for local files); found is false when it does not exist.';

-- grant: ingest
CREATE FUNCTION gik.fetch_many(urls text[], missing_ok bool DEFAULT false, head bool DEFAULT false,
                               unavailable_ok bool DEFAULT false)
RETURNS TABLE (ord int, url text, found bool, body text, bytes int8, file_size int8, etag text, attempts int,
               last_modified timestamptz, unavailable bool, failure text)
AS 'MODULE_PATHNAME', 'gik_fetch_many'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION gik.fetch_many(text[], bool, bool, bool) IS
'Fetch many whole objects as text (or HEAD them) concurrently, gik.max_connections at a time, with retries; rows come in completion order with ord giving the array position. With missing_ok an object that is not there (404, 410, no such file), with unavailable_ok one whose server kept failing (5xx, 429, no connection, after the retries) is a row with found false (and unavailable true for the second kind) and the reason in failure; otherwise such a failure is an error.';

-- grant: ingest
CREATE FUNCTION gik.url_allowed(url text) RETURNS bool
AS 'MODULE_PATHNAME', 'gik_url_allowed'
LANGUAGE C STRICT STABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.url_allowed(text) IS
'Whether gik.allowed_url_prefixes lets a URL be fetched (s3:// and gs:// mapped as requests are). Server files are governed by the server-file permission instead and count as allowed.';

-- grant: reader
CREATE FUNCTION gik.resolve_url(url text) RETURNS text
AS 'MODULE_PATHNAME', 'gik_resolve_url'
LANGUAGE C STRICT STABLE PARALLEL SAFE;
COMMENT ON FUNCTION gik.resolve_url(text) IS
'What a URL is fetched as under the current settings: s3:// through gik.s3_endpoint (AWS virtual-host form by default), gs:// through gik.gs_endpoint, file:// as a server path.';
