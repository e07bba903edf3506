# pg_gik's superuser-only settings are trustworthy only when the library is preloaded: a session's
# connection options replace an ALTER SYSTEM value when the library loads later. Without
# shared_preload_libraries pg_gik refuses to fetch; with it, such options fail the connection.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $http = $ENV{GIK_HTTP};
plan skip_all => 'GIK_HTTP is not set (run through run_tests.sh)' unless $http;

my $url = "$http/noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25/gep01.t00z.pgrb2s.0p25.f006.idx";
my $settings = qq{
gik.s3_endpoint = '$http'
gik.allowed_url_prefixes = 's3://noaa-gefs-pds/,$http/'
gik.allowed_addresses = '127.0.0.1'
};

# A cluster without the library preloaded.
my $lazy = PostgreSQL::Test::Cluster->new('lazy');
$lazy->init;
$lazy->append_conf('postgresql.conf', $settings);
$lazy->start;
$lazy->safe_psql('postgres', "CREATE EXTENSION pg_gik; CREATE ROLE member LOGIN; GRANT gik_ingest TO member;");

my ($rc, $out, $err) = $lazy->psql('postgres', "SELECT length(gik.fetch_text('$url'))");
like($err, qr/pg_gik fetches nothing unless it is in shared_preload_libraries/, 'not preloaded: a superuser fetch is refused');
($rc, $out, $err) = $lazy->psql('postgres', "SELECT count(*) FROM gik.parse_idx('1:0:d=2025100100:TMP:2 m above ground:anl:')");
is($out, '1', 'not preloaded: what fetches nothing still works');

# The attack: a member's connection option replaces the configured endpoint once the library loads.
{
	local $ENV{PGOPTIONS} = '-c gik.s3_endpoint=http://attacker.example';
	($rc, $out, $err) = $lazy->psql('postgres', "SELECT length(gik.fetch_text('s3://noaa-gefs-pds/gefs.20251001/00/atmos/pgrb2sp25/gep01.t00z.pgrb2s.0p25.f006.idx'))",
		extra_params => ['-U', 'member']);
	like($err, qr/ERROR:  pg_gik fetches nothing unless/, 'not preloaded: the member\'s session cannot fetch either');
}
$lazy->stop;

# The same cluster, preloaded.
my $node = PostgreSQL::Test::Cluster->new('preloaded');
$node->init;
$node->append_conf('postgresql.conf', $settings . "shared_preload_libraries = 'pg_gik'\n");
$node->start;
$node->safe_psql('postgres', "CREATE EXTENSION pg_gik; CREATE ROLE member LOGIN; GRANT gik_ingest TO member;");
{
	local $ENV{PGOPTIONS} = '-c gik.s3_endpoint=http://attacker.example';
	($rc, $out, $err) = $node->psql('postgres', "SELECT 1", extra_params => ['-U', 'member']);
	like($err, qr/permission denied to set parameter "gik.s3_endpoint"/, 'preloaded: the member\'s option fails the connection');
}
($rc, $out, $err) = $node->psql('postgres', "SELECT gik.resolve_url('s3://noaa-gefs-pds/x')", extra_params => ['-U', 'member']);
is($out, "$http/noaa-gefs-pds/x", 'preloaded: the configured endpoint stays');
($rc, $out, $err) = $node->psql('postgres', "SELECT length(gik.fetch_text('$url')) > 0", extra_params => ['-U', 'member']);
is($out, 't', 'preloaded: the member fetches from the allowed mirror');
$node->stop;

done_testing();
