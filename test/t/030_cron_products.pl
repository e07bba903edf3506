# Products after scheduled ingestion with the real pg_cron: a job calls gik.ingest_latest every minute;
# once it has ingested the run, the products of that run are stored with the members they were built
# from and the values gik.exceedance gives, published as raster tables; a run with a member missing
# builds the products whose minimum it meets and leaves the others waiting.
# (A partial run completed later, and the values against numpy: test/py/test_products.py.)
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $http = $ENV{GIK_HTTP};
plan skip_all => 'GIK_HTTP is not set (run through run_tests.sh)' unless $http;

my $node = PostgreSQL::Test::Cluster->new('cron_products');
$node->init;
my $host = $node->host;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'pg_cron,pg_gik'
cron.database_name = 'postgres'
cron.host = '$host'
gik.s3_endpoint = '$http'
gik.allowed_url_prefixes = 's3://noaa-gefs-pds/,$http/'
gik.allowed_addresses = '127.0.0.1'
timezone = 'UTC'
});
$node->start;
$node->safe_psql('postgres', q{
SET client_min_messages = warning;
CREATE EXTENSION pg_gik; CREATE EXTENSION pg_cron;
CREATE EXTENSION postgis; CREATE EXTENSION postgis_raster; CREATE EXTENSION pg_gik_postgis;
});

# The generated GEFS run of 2025-10-01 00z, 6-hourly to 24 h: three members, and a fourth (gep03) that the
# mirror does not have, in a second dataset whose run therefore stays partial.
$node->safe_psql('postgres', q{
SELECT gik.define_dataset(name, 'idx',
    's3://noaa-gefs-pds/gefs.{date}/{cycle}/atmos/pgrb2sp25/{member}.t{cycle}z.pgrb2s.0p25.f{step3}',
    '{0}', gik.step_list('0-24/6'), members => m, member_tokens => t, variables => '{APCP}',
    precip_variable => 'APCP', precip_level => 'surface')
FROM (VALUES ('cronp_gefs', '{0,1,2}'::int[], '{gec00,gep01,gep02}'::text[]),
             ('cronp_four', '{0,1,2,3}', '{gec00,gep01,gep02,gep03}')) AS d(name, m, t);
SELECT gik.define_product('cronp_day1', '{cronp_gefs}', '0-24/12', '{1,5}', gik.bbox(21, -12, 53, 23),
                          '{exceedance,mean}');
SELECT gik.define_product('cronp_three', '{cronp_four}', '0-24', '{1}', gik.bbox(21, -12, 53, 23), min_members => 3);
SELECT gik.define_product('cronp_all', '{cronp_four}', '0-24', '{1}', gik.bbox(21, -12, 53, 23), min_members => 4);
});

my @jobs = map {
	$node->safe_psql('postgres',
		"SELECT cron.schedule('gik-$_', '* * * * *', \$\$CALL gik.ingest_latest('$_', as_of => '2025-10-01 07:00+00')\$\$)")
} ('cronp_gefs', 'cronp_four');
ok($node->poll_query_until('postgres',
	"SELECT count(DISTINCT jobid) = 2 FROM cron.job_run_details WHERE jobid IN ($jobs[0], $jobs[1]) AND status = 'succeeded'"),
	'pg_cron ran the ingestion jobs')
  or diag($node->safe_psql('postgres', 'SELECT * FROM cron.job_run_details'));
$node->safe_psql('postgres', q{SELECT cron.unschedule(jobid) FROM cron.job});

is($node->safe_psql('postgres', q{
SELECT string_agg(name || ':' || status || ':v' || version, ' ' ORDER BY name)
FROM gik.run JOIN gik.dataset USING (dataset_id) WHERE name LIKE 'cronp_%'}),
	'cronp_four:partial:v1 cronp_gefs:complete:v1', 'the job ingested both runs');
is($node->safe_psql('postgres', q{
SELECT string_agg(p.name || ':' || l.status || ':' || l.windows_built || '/' || l.windows_waiting, ' ' ORDER BY p.name)
FROM gik.product_log l JOIN gik.product_def p USING (product_id)}),
	'cronp_all:waiting:0/1 cronp_day1:complete:2/0 cronp_three:complete:1/0',
	'each product was built once after its run, or waits for members');
is($node->safe_psql('postgres', q{
SELECT string_agg(format('%s-%s %s %s %s/%s %s', window_start, window_end, statistic, threshold, members_used,
                         members_expected, versions), '; ')
FROM gik.product('cronp_day1')}),
	'0-12 exceedance 1 3/3 {1}; 0-12 exceedance 5 3/3 {1}; 0-12 mean  3/3 {1}; '
	. '12-24 exceedance 1 3/3 {1}; 12-24 exceedance 5 3/3 {1}; 12-24 mean  3/3 {1}',
	'the stored grids of the run, with the members used');
is($node->safe_psql('postgres', q{
SELECT count(*) FILTER (WHERE p.vals = e.probability) || '/' || count(*)
FROM gik.product('cronp_day1', statistic => 'exceedance') p
CROSS JOIN LATERAL gik.exceedance('cronp_gefs', p.init_time, p.window_start, p.window_end, ARRAY[p.threshold],
                                  gik.bbox(21, -12, 53, 23)) e}),
	'4/4', 'their values are those of gik.exceedance');
is($node->safe_psql('postgres', q{
SELECT members_used || ' ' || members_missing::text FROM gik.product('cronp_three')}),
	'3 {cronp_four:3}', 'the partial run built the product whose minimum it meets, naming the missing member');
is($node->safe_psql('postgres', q{
SELECT count(*) || ' ' || bool_and(ST_Value(x.rast, 60, 60) IS NOT DISTINCT FROM (r.vals)[60][60])
FROM gik_products.cronp_day1 x JOIN gik.product_result r ON r.result_id = x.rid}),
	'6 true', 'and every grid is in the product\'s raster table');
is($node->safe_psql('postgres', q{SELECT count(*) FROM raster_columns WHERE r_table_schema = 'gik_products'}),
	'2', 'raster_columns lists the raster tables');

$node->stop;
done_testing();
