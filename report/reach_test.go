package report

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/reputation"
)

// reachGroup returns group id as the collector describes a group whose reachability is
// known (reachable set) or not (nil).
func reachGroup(id string, attached collector.Attachment, reachable *bool) collector.Group {
	g := group(id, id, attached)
	g.Reachable = reachable
	if reachable != nil && *reachable {
		g.Exposure = []collector.InterfaceRef{
			{ID: "eni-0a", Kind: "instance", InstanceID: "i-0a", PublicIP: netip.MustParseAddr("54.160.10.1"), Reason: "public IPv4 address"},
			{ID: "eni-0b", Kind: "load-balancer", LoadBalancer: "app/web/50dc", PublicIP: netip.MustParseAddr("54.160.10.2"), AllocationID: "eipalloc-1", Reason: "Elastic IP"},
		}
		g.Exposed = 5
	}
	return g
}

func TestBuildReachability(t *testing.T) {
	yes, no := true, false
	groups := []collector.Group{
		reachGroup("sg-public", collector.Attached, &yes),
		reachGroup("sg-private", collector.Attached, &no),
		reachGroup("sg-idle", collector.Unattached, &no),
		reachGroup("sg-unknown", collector.AttachmentUnknown, nil),
	}
	var rules []collector.Rule
	for _, g := range []string{"sg-public", "sg-private", "sg-idle", "sg-unknown"} {
		rules = append(rules,
			rule(g, g+"-ssh", collector.Ingress, "tcp", 22, 22, "0.0.0.0/0", "ssh"),
			rule(g, g+"-bad", collector.Ingress, "tcp", 443, 443, "94.73.144.9/32", "vendor"),
			rule(g, g+"-c2", collector.Egress, "tcp", 443, 443, "85.25.199.246/32", "telemetry"))
	}
	c := buildCase{
		groups: groups, rules: rules,
		results: results(verdict("blocklist", "94.73.144.9", reputation.Malicious, "listed"),
			verdict("blocklist", "85.25.199.246", reputation.Malicious, "listed")),
	}
	r := Build(c.input())
	checkReport(t, r)
	private := "no network interface of the group is reachable from the internet"
	checkWants(t, r, []want{
		{kind: OpenToWorld, rule: "sg-public-ssh", sev: Critical,
			reason: "exposed: instance i-0a (eni-0a, public IP 54.160.10.1); load-balancer app/web/50dc (eni-0b, Elastic IP 54.160.10.2); and 3 more interfaces"},
		{kind: OpenToWorld, rule: "sg-private-ssh", sev: High, reason: private + " (none has a public IPv4 address, an Elastic IP, or an IPv6 address routed to an internet gateway): high rather than critical"},
		{kind: OpenToWorld, rule: "sg-idle-ssh", sev: Critical},
		{kind: OpenToWorld, rule: "sg-unknown-ssh", sev: Critical},
		{kind: SuspiciousSource, rule: "sg-public-bad", sev: High, reason: "exposed: "},
		{kind: SuspiciousSource, rule: "sg-private-bad", sev: Medium, reason: "medium rather than high"},
		{kind: SuspiciousSource, rule: "sg-unknown-bad", sev: High},
		// Egress to a malicious address is as serious from a private group.
		{kind: SuspiciousSource, rule: "sg-private-c2", sev: Critical},
	})
	for _, f := range r.Findings {
		if f.Kind == StaleSource || f.Ref().Direction != "ingress" {
			continue
		}
		if strings.HasPrefix(f.Ref().RuleID, "sg-unknown") && slices.ContainsFunc(f.Reasons(), func(s string) bool { return strings.Contains(s, "reachable from the internet") }) {
			t.Errorf("finding %s on %s: reasons %q speak of reachability, which is unknown", f.Kind, f.Ref().RuleID, f.Reasons())
		}
	}
	// The sentences that say the context are made as they are asked for: a finding holds
	// only its own.
	if f := findFinding(r, OpenToWorld, "sg-public-ssh", ""); f == nil || len(f.reasons) != 1 || len(f.Reasons()) != 2 {
		t.Errorf("finding on sg-public-ssh holds reasons %q, shows %q; want 1 held, 2 shown", f.reasons, f.Reasons())
	}
	// Two findings on sg-public's ingress rules are on a reachable group.
	if got := r.Summary.FindingsReachable; got != 2 {
		t.Errorf("Summary.FindingsReachable = %d, want 2 (%s)", got, findingList(r))
	}
	// Reachable first within a severity: sg-public's critical SSH before the others.
	if f := r.Findings[0]; f.Ref().RuleID != "sg-public-ssh" {
		t.Errorf("first finding = %s %s on %s, want open-to-world on sg-public-ssh (%s)", f.Severity, f.Kind, f.Ref().RuleID, findingList(r))
	}
	// Among the high findings: the reachable group's, then those whose reachability is
	// unknown or that are attached to nothing, then the private group's.
	var high []string
	for _, f := range r.Findings {
		if f.Severity == High {
			high = append(high, f.Ref().RuleID)
		}
	}
	if want := []string{"sg-public-bad", "sg-idle-bad", "sg-unknown-bad", "sg-private-ssh"}; !slices.Equal(high, want) {
		t.Errorf("high findings in the order %q, want %q", high, want)
	}

	// The JSON: reachable true, false or null on ingress findings, absent on egress ones.
	wantJSON := map[string]string{
		"sg-public-ssh":  `"reachable":true,"exposure":[{"id":"eni-0a","kind":"instance","instance_id":"i-0a","public_ip":"54.160.10.1","reason":"public IPv4 address"}`,
		"sg-private-ssh": `"reachable":false`,
		"sg-unknown-ssh": `"reachable":null`,
	}
	for _, f := range r.Findings {
		data, err := json.Marshal(&f)
		if err != nil {
			t.Fatal(err)
		}
		id := f.Ref().RuleID
		if w, ok := wantJSON[id]; ok && f.Kind == OpenToWorld && !strings.Contains(string(data), w) {
			t.Errorf("json.Marshal(%s on %s) = %s, want it to contain %s", f.Kind, id, data, w)
		}
		if f.Ref().Direction == "egress" && strings.Contains(string(data), `"reachable"`) {
			t.Errorf("json.Marshal(%s on %s) = %s, want no reachable on an egress finding", f.Kind, id, data)
		}
		var back Finding
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		if again, _ := json.Marshal(&back); string(again) != string(data) {
			t.Errorf("JSON round trip of %s on %s:\n got %s\nwant %s", f.Kind, id, again, data)
		}
	}
}
