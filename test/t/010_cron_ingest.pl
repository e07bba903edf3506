# Scheduled ingestion with the real pg_cron: a job calls gik.ingest_latest every minute against the
# loopback mirror; the first run ingests, the second finds nothing new; a failing job is logged, not lost.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $http = $ENV{GIK_HTTP};
plan skip_all => 'GIK_HTTP is not set (run through run_tests.sh)' unless $http;

my $node = PostgreSQL::Test::Cluster->new('cron');
$node->init;
my $host = $node->host;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_cron,pg_gik'
cron.database_name = 'postgres'
cron.host = '$host'
gik.s3_endpoint = '$http'
gik.allowed_url_prefixes = 's3://noaa-gefs-pds/,s3://ecmwf-forecasts/,$http/'
gik.allowed_addresses = '127.0.0.1'
timezone = 'UTC'
});
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION pg_gik; CREATE EXTENSION pg_cron;');
isnt($node->safe_psql('postgres', "SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'"), '',
	'pg_cron is installed');

# 3 members of the generated GEFS run of 2025-10-01 00z, 6-hourly to 24 h, APCP only; and a dataset whose
# upstream may not be reached (outside gik.allowed_url_prefixes).
$node->safe_psql('postgres', q{
SELECT gik.define_dataset('cron_gefs', 'idx',
    's3://noaa-gefs-pds/gefs.{date}/{cycle}/atmos/pgrb2sp25/{member}.t{cycle}z.pgrb2s.0p25.f{step3}',
    '{0}', gik.step_list('0-24/6'), members => '{0,1,2}', member_tokens => '{gec00,gep01,gep02}',
    variables => '{APCP}');
SELECT gik.define_dataset('cron_down', 'idx', 'https://example.com/{date}/{cycle}/x.f{step3}', '{0}', '{0,6}');
});

# Every minute (the most pg_cron does); as_of pins "now" to the mirror's date, and recheck makes the
# second call re-read the run, so that the log shows it unchanged.
my $gefs_job = $node->safe_psql('postgres', q{
SELECT cron.schedule('gik-cron-gefs', '* * * * *',
    $$CALL gik.ingest_latest('cron_gefs', as_of => '2025-10-01 07:00+00', recheck => '1 day')$$)});
my $down_job = $node->safe_psql('postgres', q{
SELECT cron.schedule('gik-cron-down', '* * * * *', $$CALL gik.ingest_latest('cron_down', as_of => '2025-10-01 07:00+00')$$)});
ok($gefs_job > 0 && $down_job > 0, 'jobs scheduled');

sub succeeded_runs
{
	my ($job, $n) = @_;
	return $node->poll_query_until('postgres',
		"SELECT count(*) >= $n FROM cron.job_run_details WHERE jobid = $job AND status = 'succeeded'");
}

ok(succeeded_runs($gefs_job, 1), 'pg_cron ran the ingestion job')
  or diag($node->safe_psql('postgres', 'SELECT * FROM cron.job_run_details'));
is($node->safe_psql('postgres', q{
SELECT status || ' v' || version || ' ' || files_found || '/' || files_expected || ' files ' || refs || ' refs'
FROM gik.run JOIN gik.dataset USING (dataset_id) WHERE name = 'cron_gefs'}),
	'complete v1 15/15 files 12 refs', 'the scheduled call ingested the run');
is($node->safe_psql('postgres', q{SELECT count(*) FROM gik.chunk_ref WHERE dataset = 'cron_gefs'}),
	'12', 'its references are readable');
is($node->safe_psql('postgres', q{
SELECT reason || ':' || status || ':' || outcome || ':' || username
FROM gik.ingest_log JOIN gik.dataset USING (dataset_id) WHERE name = 'cron_gefs' ORDER BY log_id LIMIT 1}),
	'published:complete:new version:' . $node->safe_psql('postgres', 'SELECT current_user'),
	'the first attempt is logged as a new version, made by the scheduling user');

ok(succeeded_runs($gefs_job, 2), 'pg_cron ran the job a second time');
is($node->safe_psql('postgres', q{
SELECT string_agg(outcome, ',' ORDER BY log_id)
FROM (SELECT log_id, outcome FROM gik.ingest_log JOIN gik.dataset USING (dataset_id)
      WHERE name = 'cron_gefs' ORDER BY log_id LIMIT 2) l}),
	'new version,unchanged', 'the second scheduled call found the run unchanged');
is($node->safe_psql('postgres', q{
SELECT r.version || ' ' || (SELECT count(*) FROM gik.run_version v WHERE v.run_id = r.run_id)
FROM gik.run r JOIN gik.dataset USING (dataset_id) WHERE name = 'cron_gefs'}),
	'1 1', 'and added no version');

# The failing job: pg_cron sees a successful call, the failure is in gik.ingest_log and gik.ingest_health.
ok(succeeded_runs($down_job, 1), 'the failing job ran');
is($node->safe_psql('postgres', q{
SELECT reason || ':' || status || ':' || sqlstate FROM gik.ingest_log JOIN gik.dataset USING (dataset_id)
WHERE name = 'cron_down' ORDER BY log_id LIMIT 1}),
	'probe:failed:42501', 'its failure is logged with its SQLSTATE');
is($node->safe_psql('postgres', q{
SELECT state || ' ' || (consecutive_failures > 0) FROM gik.ingest_health WHERE dataset = 'cron_down'}),
	'failing true', 'gik.ingest_health reports it');
is($node->safe_psql('postgres', q{SELECT count(*) FROM gik.ingest_log WHERE status = 'running'}),
	'0', 'no attempt is left running');

$node->safe_psql('postgres', q{SELECT cron.unschedule(jobid) FROM cron.job});
$node->stop;
done_testing();
