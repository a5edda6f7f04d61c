package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// report expands prefixes by the max_hosts_per_cidr the inventory was collected with, so
// that the verdicts on the addresses of a prefix larger than the default are found, and
// refuses a configuration file that sets another value.
func TestReportUsesInventoryMaxHosts(t *testing.T) {
	q := relSetup(t, 30*time.Second, 5)
	in := writeFile(t, "wide.json", `{"SecurityGroups":[{"GroupId":"sg-1","GroupName":"app","VpcId":"vpc-1","OwnerId":"123456789012",
		"IpPermissions":[{"IpProtocol":"tcp","FromPort":443,"ToPort":443,"IpRanges":[{"CidrIp":"94.73.144.0/22","Description":"office"}]}],
		"IpPermissionsEgress":[]}]}`)
	list := writeFile(t, "list.txt", "94.73.145.9\n")
	wide := writeFile(t, "wide.yaml", "max_hosts_per_cidr: 4096\n")
	narrow := writeFile(t, "narrow.yaml", "max_hosts_per_cidr: 256\n")

	inventory := filepath.Join(t.TempDir(), "run.json")
	if res := relRun(t, "collect", "--config", wide, "--input", in, "--inventory", inventory, "--queue-url", q.lookups); res.code != 0 {
		t.Fatalf("sgvet collect = exit %d; stderr %q", res.code, res.stderr)
	}
	work := relRun(t, "work", "--queue-url", q.lookups, "--results-url", q.results,
		"--providers", "blocklist", "--blocklist", list, "--no-cache", "--idle-exit", "2s")
	if work.code != 0 {
		t.Fatalf("sgvet work = exit %d; stderr %q", work.code, work.stderr)
	}

	refused := relRun(t, "report", "--inventory", inventory, "--results-url", q.results, "--config", narrow, "--wait", "1s")
	if refused.code != exitUsage || !strings.Contains(refused.stderr, "max_hosts_per_cidr is 256") || !strings.Contains(refused.stderr, "4096") {
		t.Errorf("sgvet report --config %s = exit %d, stderr %q; want exit 2 naming max_hosts_per_cidr and 4096", narrow, refused.code, refused.stderr)
	}

	res := relRun(t, "report", "--inventory", inventory, "--results-url", q.results, "--wait", "1m", "-f", "json", "--fail-on", "none")
	findings, summary := relFindings(t, "sgvet report", res)
	if s, _ := summary.(map[string]any); s["addresses_unvetted"] != 0.0 || s["addresses_total"] != 1024.0 {
		t.Errorf("sgvet report summary = %v, want the /22's 1024 addresses, every one vetted", summary)
	}
	suspicious := false
	for _, f := range findings {
		f, _ := f.(map[string]any)
		suspicious = suspicious || f["kind"] == "suspicious-source" && f["cidr"] == "94.73.144.0/22"
	}
	if !suspicious {
		t.Errorf("sgvet report has no suspicious-source finding on 94.73.144.0/22, whose 94.73.145.9 is listed: %v", findings)
	}
}
