-- Fetching: URL mapping, ranged GET and HEAD from the loopback mirror, errors naming the URL, privileges.
\getenv root GIK_TEST_ROOT
\i :root/test/sql/include/helpers.psql
\set mirror :root/mirror/
\set gefs 's3://noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25/gec00.t00z.pgrb2s.0p25.f003'

-- s3:// maps through gik.s3_endpoint: AWS virtual-host form by default, path style when set.
BEGIN;
SET LOCAL gik.s3_endpoint = '';
SELECT gik.resolve_url('s3://noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25/gep01.t00z.pgrb2s.0p25.f003.idx');
SELECT gik.resolve_url('s3://ecmwf-forecasts/20251001/00z/ifs/0p25/enfo/20251001000000-24h-enfo-ef.index');
SET LOCAL gik.s3_endpoint = 'http://127.0.0.1:9000/';
SELECT gik.resolve_url('s3://noaa-gefs-pds/a/b+c d%.idx');
ROLLBACK;
SELECT gik.resolve_url('gs://gfs-ensemble-forecast-system/gefs.20251001/x.idx');
SELECT gik.resolve_url('file:///var/lib/x.grib2'), gik.resolve_url('/var/lib/x.grib2');
SELECT gik.resolve_url('https://data.ecmwf.int/forecasts/x.index');
SELECT gik.resolve_url('ftp://example.com/x');
SELECT gik.resolve_url('s3:///key');
SELECT gik.resolve_url('http://user:pw@example.com/x');
SELECT gik.resolve_url('s3://bucket/a/../b');
-- http(s) URLs are normalised as servers read them: what is checked against the prefixes is what is sent.
SELECT gik.resolve_url('HTTP://Data.ECMWF.int/forecasts/a/../%7eb.index');
SELECT gik.resolve_url('http://127.0.0.1:18080/noaa-gefs-pds/..%2fecmwf-forecasts/x.index');
SELECT gik.resolve_url('http://127.0.0.1:18080/../x');
SELECT gik.resolve_url('relative/path');

-- Ranged GET over HTTP returns exactly the bytes of the local file.
SELECT encode(gik.fetch_bytes(:'gefs', 0, 4), 'escape') AS magic,
       gik.fetch_bytes(:'gefs', 1000, 5000) = gik.fetch_bytes(:'mirror' || 'noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25/gec00.t00z.pgrb2s.0p25.f003', 1000, 5000) AS same_bytes,
       length(gik.fetch_bytes(:'gefs', 1000, 5000)) AS len;
-- Whole objects and HEAD.
SELECT length(gik.fetch_text(:'gefs' || '.idx')) = (pg_stat_file(:'mirror' || 'noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25/gec00.t00z.pgrb2s.0p25.f003.idx')).size AS idx_whole;
SELECT found, size = (pg_stat_file(:'mirror' || 'noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25/gec00.t00z.pgrb2s.0p25.f003')).size AS size_ok,
       etag IS NOT NULL AS has_etag
FROM gik.file_info(:'gefs');
SELECT found, size, etag FROM gik.file_info('s3://noaa-gefs-pds/no/such/file');
-- Many at once: rows carry their array position; missing ones are flagged with missing_ok.
SELECT ord, found, bytes > 0 AS has_body, attempts
FROM gik.fetch_many(ARRAY[:'gefs' || '.idx', 's3://noaa-gefs-pds/missing.idx', :'gefs' || '.idx'], missing_ok => true)
ORDER BY ord;

-- Errors name the URL and the byte range, with a proper SQLSTATE.
SELECT pg_temp.error_of($$SELECT gik.fetch_text('s3://noaa-gefs-pds/no/such/file.idx')$$);
SELECT pg_temp.error_of(format('SELECT gik.fetch_bytes(%L, 99999999, 10)', :'gefs'));
SELECT pg_temp.error_of(format('SELECT gik.fetch_bytes(%L, -1, 10)', :'gefs'));
SELECT pg_temp.error_of(format('SELECT gik.fetch_bytes(%L, 0, NULL)', :'gefs'));
SELECT pg_temp.error_of($$SELECT gik.fetch_many(ARRAY['s3://noaa-gefs-pds/missing.idx'])$$);
SELECT pg_temp.error_of($$SELECT gik.fetch_text('http://127.0.0.2:1/x')$$);
SELECT pg_temp.error_of($$SELECT gik.fetch_text('https://example.com/x')$$);
SELECT pg_temp.error_of(format('SELECT gik.fetch_text(%L)', :'mirror' || 'does-not-exist'));

-- Only superusers and pg_read_server_files members read server files, even for gik_ingest members.
CREATE ROLE gik_test_nobody IN ROLE gik_ingest;
SET ROLE gik_test_nobody;
SELECT gik.fetch_text('/etc/passwd');
SELECT gik.fetch_bytes('file:///etc/passwd', 0, 10);
SELECT pg_temp.error_of(format('SELECT gik.scan_grib(%L)', :'mirror' || 'noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25/gec00.t00z.pgrb2s.0p25.f003'));
RESET ROLE;
GRANT pg_read_server_files TO gik_test_nobody;
SET ROLE gik_test_nobody;
SELECT length(gik.fetch_bytes(:'mirror' || 'noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25/gec00.t00z.pgrb2s.0p25.f003', 0, 4));
RESET ROLE;
DROP ROLE gik_test_nobody;
