-- gik.parse_idx on every real NOAA inventory fixture, plus synthetic edge cases.
\getenv root GIK_TEST_ROOT
\set data :root/test/data/
SET client_min_messages = warning;
SET timezone = 'UTC';

-- Every real fixture parses: line counts, and only the last line lacks a length without the file size.
SELECT f AS fixture, count(*) AS lines, count(*) - count(byte_length) AS no_length,
       count(DISTINCT byte_offset) AS offsets, min(ref_time) AS ref_time,
       count(step_start) AS understood_ftimes
FROM unnest(ARRAY['dynamical/gep01.t00z.pgrb2s.0p25.f015.idx', 'dynamical/geavg.t00z.pgrb2s.0p25.f000.idx',
                  'dynamical/gec00.t00z.pgrb2a.0p50.f432.idx', 'dynamical/gfs.t00z.pgrb2.0p25.f000.idx',
                  'dynamical/hrrr.t00z.wrfsfcf00.grib2.idx', 'kerchunk/gfs.t00z.pgrb2.0p25.f000.idx',
                  'kerchunk/gfs.t06z.pgrb2.0p25.f021.idx', 'kerchunk/gfs.t00z.pgrb2.0p25.f006.test-limit-100.idx',
                  'kerchunk/hrrr.t01z.wrfsfcf00.grib2.idx', 'kerchunk/hrrr.t01z.wrfsubhf00.grib2.idx',
                  'gribberish/gfswave.t18z.atlocn.0p16.f001.grib2.idx']) AS f
CROSS JOIN LATERAL gik.parse_idx(pg_read_file(:'data' || f)) AS l
GROUP BY f ORDER BY f;

-- GEFS member: instant, max and acc windows, ENS=+1; the last line has no length without a file size.
SELECT lineno, msg_num, byte_offset, byte_length, ref_time, variable, level, ftime, extra,
       step_start, step_end, stat, member, member_kind
FROM gik.parse_idx(pg_read_file(:'data' || 'dynamical/gep01.t00z.pgrb2s.0p25.f015.idx'))
WHERE lineno IN (1, 13, 14, 18, 19, 27, 38) ORDER BY lineno;

-- With the file size, the last line gets its length.
SELECT lineno, byte_offset, byte_length
FROM gik.parse_idx(pg_read_file(:'data' || 'dynamical/gep01.t00z.pgrb2s.0p25.f015.idx'), 17500000)
WHERE lineno = 38;

-- GEFS ensemble mean (f000: anl and 0-0 day max/min) and the 0.5 degree control (low-res ctl).
SELECT lineno, variable, level, ftime, extra, step_start, step_end, stat, member, member_kind
FROM gik.parse_idx(pg_read_file(:'data' || 'dynamical/geavg.t00z.pgrb2s.0p25.f000.idx'))
WHERE lineno IN (1, 14, 15, 21) ORDER BY lineno;
SELECT lineno, variable, level, ftime, extra, step_start, step_end, stat, member, member_kind
FROM gik.parse_idx(pg_read_file(:'data' || 'dynamical/gec00.t00z.pgrb2a.0p50.f432.idx'))
WHERE lineno IN (1, 2) ORDER BY lineno;
SELECT DISTINCT ftime, step_start, step_end, stat
FROM gik.parse_idx(pg_read_file(:'data' || 'dynamical/gec00.t00z.pgrb2a.0p50.f432.idx'))
ORDER BY 1;

-- GFS f006: duplicate descriptors are kept as distinct messages (keyed by offset).
SELECT lineno, msg_num, byte_offset, byte_length, variable, level, ftime, step_start, step_end, stat, extra, member
FROM gik.parse_idx(pg_read_file(:'data' || 'kerchunk/gfs.t00z.pgrb2.0p25.f006.test-limit-100.idx'))
WHERE variable IN ('APCP', 'ACPCP') ORDER BY lineno;

-- HRRR: local "var discipline=..." names, minute forecasts and day windows.
SELECT lineno, variable, level, ftime, step_start, step_end, stat
FROM gik.parse_idx(pg_read_file(:'data' || 'kerchunk/hrrr.t01z.wrfsfcf00.grib2.idx'))
WHERE variable LIKE 'var %' ORDER BY lineno LIMIT 3;
SELECT DISTINCT ftime, step_start, step_end, stat
FROM gik.parse_idx(pg_read_file(:'data' || 'kerchunk/hrrr.t01z.wrfsubhf00.grib2.idx'))
ORDER BY step_end, ftime;
SELECT DISTINCT ftime, step_start, step_end, stat
FROM gik.parse_idx(pg_read_file(:'data' || 'dynamical/hrrr.t00z.wrfsfcf00.grib2.idx'))
WHERE ftime LIKE '%day%' ORDER BY ftime;

-- GFS f021: 3-hour and run-total windows.
SELECT DISTINCT variable, ftime, step_start, step_end, stat
FROM gik.parse_idx(pg_read_file(:'data' || 'kerchunk/gfs.t06z.pgrb2.0p25.f021.idx'))
WHERE variable IN ('APCP', 'TMAX', 'DSWRF') ORDER BY variable, step_start;

-- GFS-Wave with the real file size: every offset and length equals gik.scan_grib's framing of the GRIB file
-- (test/py/test_oracles.py checks both against ecCodes and grib_ls).
SELECT count(*) AS messages,
       count(*) FILTER (WHERE i.byte_offset = s.byte_offset AND i.byte_length = s.byte_length) AS matching
FROM gik.parse_idx(pg_read_file(:'data' || 'gribberish/gfswave.t18z.atlocn.0p16.f001.grib2.idx'),
                   (pg_stat_file(:'data' || 'gribberish/gfswave.t18z.atlocn.0p16.f001.grib2')).size) i
FULL JOIN gik.scan_grib(:'data' || 'gribberish/gfswave.t18z.atlocn.0p16.f001.grib2') s ON s.msg_num = i.msg_num;

-- Sub-messages N.M share their parent's range; CRLF and a missing final newline are fine.
SELECT lineno, msg_num, sub_num, byte_offset, byte_length, variable, ftime
FROM gik.parse_idx(E'1:0:d=2025010100:TMP:2 m above ground:6 hour fcst:\r\n'
                   '2.1:100:d=2025010100:UGRD:10 m above ground:6 hour fcst:\r\n'
                   '2.2:100:d=2025010100:VGRD:10 m above ground:6 hour fcst:\r\n'
                   '3:250:d=2025010100:PRMSL:mean sea level:6 hour fcst:', 400);

-- Minute, second and day forecasts, and ranges without a statistic.
SELECT ftime, step_start, step_end, stat
FROM gik.parse_idx(E'1:0:d=2025010100:TMP:surface:15 min fcst:\n'
                   '2:10:d=2025010100:TMP:surface:30-45 min ave fcst:\n'
                   '3:20:d=2025010100:APCP:surface:0-1 day acc fcst:\n'
                   '4:30:d=2025010100:TMP:surface:2 day fcst:\n'
                   '5:40:d=2025010100:TMAX:2 m above ground:12-15 hour fcst:\n'
                   '6:50:d=2025010100:TMP:surface:5-6 month ave fcst:\n');

-- Offsets beyond 2^31.
SELECT byte_offset, byte_length FROM gik.parse_idx(E'1:3000000000:d=2025010100:TMP:surface:anl:\n2:3000000500:d=2025010100:TMP:surface:anl:\n');

-- Empty input gives no rows.
SELECT count(*) FROM gik.parse_idx('');
SELECT count(*) FROM gik.parse_idx(E'\n\n');

-- Malformed lines name their line number, and the URL when given.
SELECT * FROM gik.parse_idx(E'1:0:d=2025010100:TMP:surface:anl:\n2:abc:d=2025010100:TMP:surface:anl:\n');
SELECT * FROM gik.parse_idx(E'1:0:d=2025010100:TMP:surface:anl:\n\n3:50:d=20250101:TMP:surface:anl:\n', NULL, 's3://bucket/f.idx');
SELECT * FROM gik.parse_idx(E'1:500:d=2025010100:TMP:surface:anl:\n2:100:d=2025010100:TMP:surface:anl:\n');
SELECT * FROM gik.parse_idx(E'1:0:d=2025010100:TMP\n');
SELECT * FROM gik.parse_idx(E'1:-5:d=2025010100:TMP:surface:anl:\n');
SELECT * FROM gik.parse_idx(E'1:0:d=2025010100:TMP:surface:anl:\n', 0);
