#!/usr/bin/perl
# Usage: churn-writer.pl FILE RATE SECONDS NAMESPACE PREFIX
# The churn soak's writer (selftests/e2e/test_churn.sh, make bench): rewrites
# Service "churn"'s EndpointSlice FILE (temp + rename) RATE times a second for
# SECONDS: endpoints PREFIX.1 and PREFIX.2 stay, the third toggles between
# PREFIX.3 and PREFIX.4 (both serve). Prints "writes N", "elapsed S", "last ADDR".
use strict;
use warnings;
use Time::HiRes qw(time sleep);

my ($file, $rate, $secs, $ns, $prefix) = @ARGV;
die "usage: $0 FILE RATE SECONDS NAMESPACE PREFIX\n" unless defined $prefix;
my $fmt = qq({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
 "metadata": {"name": "churn-v4", "namespace": "$ns",
              "labels": {"kubernetes.io/service-name": "churn"}},
 "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
 "endpoints": [{"addresses": ["$prefix.1"], "conditions": {"ready": true}},
               {"addresses": ["$prefix.2"], "conditions": {"ready": true}},
               {"addresses": ["%s"], "conditions": {"ready": true}}]}
);
my ($t0, $n, $addr) = (time, 0, "");
while (time - $t0 < $secs) {
	$addr = $n % 2 ? "$prefix.4" : "$prefix.3";
	open(my $fh, ">", "$file.tmp") or die "$file.tmp: $!";
	printf $fh $fmt, $addr;
	close($fh);
	rename("$file.tmp", $file) or die "rename: $!";
	$n++;
	my $wait = $t0 + $n / $rate - time;
	sleep($wait) if $wait > 0;
}
printf "writes %d\nelapsed %.3f\nlast %s\n", $n, time - $t0, $addr;
