package report

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sgvet/sgvet/collector"
)

func TestBuildAttribution(t *testing.T) {
	since := testNow.Add(-collector.CloudTrailWindow)
	added := testNow.Add(-10 * 24 * time.Hour)
	modified := testNow.Add(-2 * 24 * time.Hour)
	role := "arn:aws:iam::111122223333:role/Admin (session alice@example.com)"
	rules := []collector.Rule{
		in("sgr-new", "tcp", 22, 22, "0.0.0.0/0", "temp debugging"),
		in("sgr-old", "tcp", 3389, 3389, "0.0.0.0/0", "contractor rdp"),
		in("sgr-old-web", "tcp", 443, 443, "81.2.69.142/32", "contractor portal"),
	}
	elsewhere := rule("sg-app", "sgr-elsewhere", collector.Ingress, "tcp", 22, 22, "0.0.0.0/0", "temp")
	elsewhere.Region = "us-west-2"
	rules = append(rules, elsewhere)
	c := buildCase{rules: rules}
	in := c.input()
	in.Inventory.RuleChanges = collector.Attributions{
		"sgr-new": {
			Added:    &collector.RuleChange{RuleID: "sgr-new", Event: collector.EventAuthorizeIngress, Principal: role, At: added},
			Modified: &collector.RuleChange{RuleID: "sgr-new", Event: collector.EventModifyRules, Principal: "arn:aws:iam::111122223333:user/bob", At: modified},
		},
	}
	in.Inventory.CloudTrail = &collector.TrailCoverage{Since: since, Until: testNow.Add(time.Minute), Regions: []collector.AccountRegion{{Account: testAccount, Region: testRegion}}}
	r := Build(in)
	checkReport(t, r)
	checkWants(t, r, []want{
		{kind: OpenToWorld, rule: "sgr-new", sev: Critical,
			reason: "added by " + role + " on 2026-11-11 (CloudTrail); last modified by arn:aws:iam::111122223333:user/bob on 2026-11-19 (CloudTrail)"},
		// Added ten days ago: "temp" is not stale yet.
		{kind: StaleSource, rule: "sgr-new"},
		// No event in the 90 days: older than that, so the marker makes it stale.
		{kind: StaleSource, rule: "sgr-old-web", sev: Low,
			reason: `the description says "contractor" and the rule is older than 90 days (no CloudTrail event added it since 2026-08-23)`},
		// CloudTrail was not read in us-west-2: its age is unknown.
		{kind: StaleSource, rule: "sgr-elsewhere"},
	})
	// Within a severity, the oldest rule first: sgr-old (before the window) before sgr-new.
	var order []string
	for _, f := range r.Findings {
		if f.Kind == OpenToWorld && f.Severity == Critical {
			order = append(order, f.Ref().RuleID)
		}
	}
	if strings.Join(order, " ") != "sgr-old sgr-new sgr-elsewhere" {
		t.Errorf("critical open-to-world findings in the order %q, want sgr-old sgr-new sgr-elsewhere", order)
	}

	for _, tc := range []struct{ rule, want, not string }{
		{"sgr-new", `"added_by":"` + role + `","added_at":"2026-11-11T09:00:00Z","modified_by":"arn:aws:iam::111122223333:user/bob","modified_at":"2026-11-19T09:00:00Z"`, `"added_before"`},
		{"sgr-old", `"added_by":null,"added_at":null,"added_before":"2026-08-23T09:00:00Z"`, `"modified_`},
		{"sgr-elsewhere", `"added_by":null,"added_at":null}`, `"added_before"`},
	} {
		f := findFinding(r, OpenToWorld, tc.rule, "")
		data, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), tc.want) || strings.Contains(string(data), tc.not) {
			t.Errorf("json.Marshal(finding on %s) = %s, want %s and no %s", tc.rule, data, tc.want, tc.not)
		}
		var back Finding
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		if again, _ := json.Marshal(&back); string(again) != string(data) {
			t.Errorf("JSON round trip of the finding on %s:\n got %s\nwant %s", tc.rule, again, data)
		}
	}
}

// A rule that no event names, of a group created in the window (as the outbound rule EC2
// gives every new group), was added with its group, not before the window.
func TestBuildAttributionGroupCreated(t *testing.T) {
	created := testNow.Add(-5 * 24 * time.Hour)
	c := buildCase{rules: []collector.Rule{out("sgr-egress", "all", -1, -1, "0.0.0.0/0", "")}}
	in := c.input()
	in.Inventory.RuleChanges = collector.Attributions{
		"sg-app": {Added: &collector.RuleChange{GroupID: "sg-app", Event: "CreateSecurityGroup", Principal: "arn:aws:iam::111122223333:user/bob", At: created}},
	}
	in.Inventory.CloudTrail = &collector.TrailCoverage{Since: testNow.Add(-collector.CloudTrailWindow), Until: testNow,
		Regions: []collector.AccountRegion{{Account: testAccount, Region: testRegion}}}
	r := Build(in)
	checkWants(t, r, []want{{kind: OpenEgress, rule: "sgr-egress", sev: Low, reason: "added by arn:aws:iam::111122223333:user/bob on 2026-11-16 (CloudTrail)"}})
	data, err := json.Marshal(findFinding(r, OpenEgress, "sgr-egress", ""))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), `"added_before"`) || !strings.Contains(string(data), `"added_at":"2026-11-16T09:00:00Z"`) {
		t.Errorf("json.Marshal(finding) = %s, want added_at the group's creation and no added_before", data)
	}
}

// A rule that no CloudTrail event added is older than the window, unless the history saw
// it appear (it is new since the previous run): then its first sighting is its age. A
// first sighting alone, such as the history's first run gives every rule, does not say
// that it appeared then.
func TestBuildAttributionHistoryFirst(t *testing.T) {
	rules := []collector.Rule{in("sgr-seen", "tcp", 443, 443, "81.2.69.142/32", "contractor portal")}
	appeared := func(rules []collector.Rule) *HistoryView {
		h := firstSeen("2026-11-14")(rules)
		for _, r := range rules {
			h.New[RuleKey(r)] = true
		}
		return h
	}
	coverage := &collector.TrailCoverage{Since: testNow.Add(-collector.CloudTrailWindow), Until: testNow,
		Regions: []collector.AccountRegion{{Account: testAccount, Region: testRegion}}}
	older := want{kind: StaleSource, rule: "sgr-seen", sev: Low, reason: "older than 90 days (no CloudTrail event added it since 2026-08-23)"}
	for _, tc := range []struct {
		name    string
		history func([]collector.Rule) *HistoryView
		want    want
	}{
		{"no history", nil, older},
		{"first seen, as on the history's first run", firstSeen("2026-11-21"), older},
		{"new since the previous run", appeared, want{kind: StaleSource, rule: "sgr-seen"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := buildCase{rules: rules, history: tc.history}.input()
			in.Inventory.CloudTrail = coverage
			checkWants(t, Build(in), []want{tc.want})
		})
	}
}
