package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/reputation"
)

// testOwners returns owner ranges of AWS (EC2 in us-east-2, inside AMAZON) and GitHub
// (hooks: the two halves of 140.82.112.0/20), read from files as --owner-ranges reads them.
func testOwners(t *testing.T) *collector.OwnerRanges {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"ip-ranges.json": `{"syncToken": "1", "createDate": "2026-11-29-12-00-00",
			"prefixes": [
				{"ip_prefix": "3.0.0.0/9", "region": "GLOBAL", "service": "AMAZON", "network_border_group": "GLOBAL"},
				{"ip_prefix": "3.16.0.0/14", "region": "us-east-2", "service": "EC2", "network_border_group": "us-east-2"}
			],
			"ipv6_prefixes": []}`,
		"meta.json": `{"verifiable_password_authentication": true, "hooks": ["140.82.112.0/21", "140.82.120.0/21"]}`,
		"cloud.json": `{"syncToken": "1", "creationTime": "2026-11-29T00:00:00",
			"prefixes": [{"ipv4Prefix": "34.64.0.0/16", "service": "Google Cloud", "scope": "asia-northeast3"}]}`,
	}
	var specs []string
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		specs = append(specs, path)
	}
	o, err := collector.LoadOwnerRanges(specs...)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestBuildOwners(t *testing.T) {
	owners := testOwners(t)
	rules := []collector.Rule{
		in("sgr-ec2", "tcp", 22, 22, "3.16.5.7/32", "build agent"),
		in("sgr-hooks", "tcp", 443, 443, "140.82.112.0/20", "github webhooks"),
		in("sgr-wide", "tcp", 443, 443, "140.82.0.0/16", "github and more"),
		// Inside ranges that AWS and Google hand out to their customers: still wide.
		in("sgr-amazon", "tcp", 443, 443, "3.64.0.0/12", "aws"),
		in("sgr-ec2", "tcp", 443, 443, "3.16.0.0/16", "ec2"),
		in("sgr-gcp", "tcp", 443, 443, "34.64.0.0/20", "gcp"),
	}
	listed := results(verdict("blocklist", "3.16.5.7", reputation.Malicious, "listed"))
	runCases(t, []buildCase{
		{
			name: "owner ranges", rules: rules, results: listed, opts: Options{}, owners: owners,
			want: []want{
				{kind: SuspiciousSource, rule: "sgr-ec2", sev: Critical, reason: "3.16.5.7/32 is in AWS's published range 3.16.0.0/14 (EC2, us-east-2)"},
				{kind: KnownServiceRange, rule: "sgr-hooks", sev: Info,
					reason: "140.82.112.0/20 lies wholly inside the ranges GitHub publishes for hooks: a known service range, not an unknown wide range; check that the rule is meant for GitHub hooks"},
				{kind: WideRange, rule: "sgr-hooks"},
				{kind: WideRange, rule: "sgr-wide", sev: Medium},
				{kind: KnownServiceRange, rule: "sgr-wide"},
				{kind: WideRange, rule: "sgr-amazon", sev: Medium, reason: "3.64.0.0/12 is in AWS's published range 3.0.0.0/9 (AMAZON, GLOBAL)"},
				{kind: KnownServiceRange, rule: "sgr-amazon"},
				{kind: WideRange, rule: "sgr-ec2", sev: Medium, reason: "3.16.0.0/16 is in AWS's published range 3.16.0.0/14 (EC2, us-east-2)"},
				{kind: KnownServiceRange, rule: "sgr-ec2"},
				{kind: WideRange, rule: "sgr-gcp", sev: Medium},
				{kind: KnownServiceRange, rule: "sgr-gcp"},
			},
		},
		{
			name: "no owner ranges", rules: rules, results: listed,
			want: []want{
				{kind: WideRange, rule: "sgr-hooks", sev: Medium},
				{kind: KnownServiceRange, rule: "sgr-hooks"},
			},
		},
	})

	// The JSON carries the owner, and reads back.
	r := Build(buildCase{rules: rules, results: listed, owners: owners}.input())
	for _, c := range []struct {
		kind       Kind
		rule, want string
	}{
		{SuspiciousSource, "sgr-ec2", `"owner":{"name":"AWS","service":"EC2","region":"us-east-2","prefix":"3.16.0.0/14"}`},
		{KnownServiceRange, "sgr-hooks", `"owner":{"name":"GitHub","service":"hooks","prefix":"140.82.112.0/20"}`},
	} {
		f := findFinding(r, c.kind, c.rule, "")
		if f == nil {
			t.Fatalf("no %s finding for %s", c.kind, c.rule)
		}
		data, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), c.want) {
			t.Errorf("json.Marshal(%s finding) = %s, want it to contain %s", c.kind, data, c.want)
		}
		var back Finding
		if err := json.Unmarshal(data, &back); err != nil || back.Owner() == nil || *back.Owner() != *f.Owner() {
			t.Errorf("json.Unmarshal(%s) owner = %+v, %v; want %+v", data, back.Owner(), err, f.Owner())
		}
	}
}
