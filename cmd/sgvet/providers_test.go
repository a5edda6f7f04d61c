package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sgvet/sgvet/internal/fakeprovider"
)

// manyAddresses writes describe-security-groups output with one group allowing n distinct
// public addresses on 443, and returns its path.
func manyAddresses(t testing.TB, n int) string {
	t.Helper()
	var ranges []string
	for i := range n {
		ranges = append(ranges, fmt.Sprintf(`{"CidrIp":"51.%d.%d.%d/32","Description":"office"}`, 15+i/62500, i/250%250, i%250+1))
	}
	return writeFile(t, "groups.json", `{"SecurityGroups":[{"GroupId":"sg-1","GroupName":"app","VpcId":"vpc-1","OwnerId":"123456789012",
		"IpPermissions":[{"IpProtocol":"tcp","FromPort":443,"ToPort":443,"IpRanges":[`+strings.Join(ranges, ",")+`]}],
		"IpPermissionsEgress":[]}]}`)
}

// TestAuditRefusedKeyCostsOneRequest: whatever the number of addresses and workers, a key
// the service refuses is sent once.
func TestAuditRefusedKeyCostsOneRequest(t *testing.T) {
	isolateAWS(t)
	isolateProviders(t)
	t.Setenv("MDCLOUD_APIKEY", "wrong-md-key-123456")
	t.Setenv("ABUSEIPDB_API_KEY", "wrong-abuseipdb-key-123456")
	md := fakeprovider.MetaDefender(t, fakeprovider.Options{Key: "right-md-key"})
	ab := fakeprovider.AbuseIPDB(t, fakeprovider.Options{Key: "right-abuseipdb-key"})
	cfg := doublesConfig(t, map[string]string{"metadefender": md.URL, "abuseipdb": ab.URL})
	res := sgvet(t, "", "audit", "--config", cfg, "--no-cache", "--workers", "8", "--format", "json",
		"--input", manyAddresses(t, 300))
	if res.code != exitIncomplete {
		t.Errorf("exit %d, want %d (nothing vetted); stderr %q", res.code, exitIncomplete, res.stderr)
	}
	for name, srv := range map[string]*fakeprovider.Server{"metadefender": md, "abuseipdb": ab} {
		if srv.Count() != 1 {
			t.Errorf("%s was sent %d requests, want 1", name, srv.Count())
		}
	}
	if n := strings.Count(res.stderr, "provider stopped"); n != 2 {
		t.Errorf("stderr has %d lines about a stopped provider, want 2 (one each):\n%s", n, res.stderr)
	}
}

// fakeLatency is how long a double takes to answer, so that requests overlap.
const fakeLatency = 20 * time.Millisecond

// TestAuditWorkersAreRequestsInFlight: --workers N means N requests in flight to each
// provider, on at most N connections, however the audit spreads its work.
func TestAuditWorkersAreRequestsInFlight(t *testing.T) {
	isolateAWS(t)
	isolateProviders(t)
	const key = "abuseipdb-key-in-flight"
	t.Setenv("ABUSEIPDB_API_KEY", key)
	input := manyAddresses(t, 60)
	for _, workers := range []int{1, 4} {
		t.Run(fmt.Sprint(workers), func(t *testing.T) {
			ab := fakeprovider.AbuseIPDB(t, fakeprovider.Options{Key: key, Delay: fakeLatency})
			cfg := doublesConfig(t, map[string]string{"abuseipdb": ab.URL}, "daily_quota: 0")
			res := sgvet(t, "", "audit", "--config", cfg, "--no-cache", "--workers", fmt.Sprint(workers), "--input", input)
			if res.code != exitOK {
				t.Fatalf("exit %d; stderr %q", res.code, res.stderr)
			}
			if ab.Count() != 60 {
				t.Errorf("requests = %d, want 60", ab.Count())
			}
			if got := ab.MaxInFlight(); got > workers {
				t.Errorf("requests in flight = %d, want at most --workers %d", got, workers)
			}
			if got := ab.Connections(); got > workers {
				t.Errorf("connections = %d, want at most --workers %d", got, workers)
			}
		})
	}
}

// TestAuditUnreachableProvider: a provider that cannot be reached is stopped after its
// first attempt, with one line saying why, and the audit carries on with the others.
func TestAuditUnreachableProvider(t *testing.T) {
	isolateAWS(t)
	isolateProviders(t)
	t.Setenv("MDCLOUD_APIKEY", "md-key-unreachable")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String() + "/v4"
	l.Close()
	cfg := doublesConfig(t, map[string]string{"metadefender": refused})
	list := writeFile(t, "list.txt", "51.15.0.7\n")
	res := sgvet(t, "", "audit", "--config", cfg, "--no-cache", "--format", "json",
		"--blocklist", list, "--input", manyAddresses(t, 300))
	if res.code != exitFindings {
		t.Errorf("exit %d, want %d: the blocklist still finds 51.15.0.7; stderr %q", res.code, exitFindings, res.stderr)
	}
	if n := strings.Count(res.stderr, "cannot be reached"); n != 1 {
		t.Errorf("stderr says %d times that the provider cannot be reached, want once:\n%s", n, res.stderr)
	}
	r := decodeReport(t, res.stdout)
	if r.Summary.AddressesUnvetted != 0 || len(findings(r, "suspicious-source", "app", "51.15.0.7/32")) != 1 {
		t.Errorf("summary = %+v; want every address vetted by the blocklist and 51.15.0.7 suspicious", r.Summary)
	}
}
