package report

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/reputation"
)

const (
	testAccount = "111122223333"
	testRegion  = "eu-west-1"
)

// testNow is the time the tests judge staleness at.
var testNow = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

// group returns a group of the test account and region.
func group(id, name string, attached collector.Attachment) collector.Group {
	return collector.Group{ID: id, Name: name, VPC: "vpc-1", Account: testAccount, Region: testRegion, Attached: attached}
}

// rule returns a rule of group groupID; cidr may be empty (for a group reference or a
// prefix list, set afterwards).
func rule(groupID, id string, dir collector.Direction, proto string, from, to int32, cidr, desc string) collector.Rule {
	r := collector.Rule{
		Account: testAccount, Region: testRegion, GroupID: groupID, ID: id,
		Direction: dir, Protocol: proto, FromPort: from, ToPort: to, Description: desc,
	}
	if cidr != "" {
		r.CIDR = collector.Normalize(netip.MustParsePrefix(cidr))
	}
	return r
}

// in returns an ingress rule of group sg-app.
func in(id, proto string, from, to int32, cidr, desc string) collector.Rule {
	return rule("sg-app", id, collector.Ingress, proto, from, to, cidr, desc)
}

// out returns an egress rule of group sg-app.
func out(id, proto string, from, to int32, cidr, desc string) collector.Rule {
	return rule("sg-app", id, collector.Egress, proto, from, to, cidr, desc)
}

// verdict returns provider's verdict on target.
func verdict(provider, target string, status reputation.Status, text string) reputation.Verdict {
	t, err := reputation.ParseTarget(target)
	if err != nil {
		panic(err)
	}
	v := reputation.Verdict{Provider: provider, Target: t, Status: status, CheckedAt: testNow}
	if status == reputation.Unknown {
		v.Reason = text
	} else {
		v.Evidence = text
	}
	return v
}

// results gathers verdicts into one Result per target, in the order of first appearance.
func results(vs ...reputation.Verdict) []reputation.Result {
	var out []reputation.Result
	for _, v := range vs {
		i := slices.IndexFunc(out, func(r reputation.Result) bool { return r.Target == v.Target })
		if i < 0 {
			out = append(out, reputation.Result{Target: v.Target})
			i = len(out) - 1
		}
		out[i].Verdicts = append(out[i].Verdicts, v)
	}
	return out
}

// day parses a YYYY-MM-DD date, UTC.
func day(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

// firstSeen returns a history that first saw every rule on the given day.
func firstSeen(date string) func([]collector.Rule) *HistoryView {
	return func(rules []collector.Rule) *HistoryView {
		h := &HistoryView{Previous: "run-1", FirstSeen: map[string]time.Time{}, New: map[string]bool{}}
		for _, r := range rules {
			h.FirstSeen[RuleKey(r)] = day(date)
		}
		return h
	}
}

// want is a finding a case expects, or (with no severity) one it must not produce.
type want struct {
	kind Kind
	// rule is the rule id; for a finding about a whole group it is empty and group names it.
	rule, group string
	sev         Severity // empty: no such finding
	reason      string   // a part of one of the reasons
}

// buildCase is the input of one Build case.
type buildCase struct {
	name    string
	groups  []collector.Group // nil: sg-app, attached
	rules   []collector.Rule
	results []reputation.Result
	history func([]collector.Rule) *HistoryView
	opts    Options
	// org is the Organization the collection listed; nil when it is unknown.
	org *collector.Organization
	// owners label addresses with the published range they are in.
	owners *collector.OwnerRanges
	want   []want
}

// input returns the Input of c, its inventory built as in production.
func (c buildCase) input() Input {
	groups := c.groups
	if groups == nil {
		groups = []collector.Group{group("sg-app", "app", collector.Attached)}
	}
	inv := collector.Collection{Sources: []string{"test"}, Regions: []string{testRegion}, Groups: groups, Rules: c.rules, Organization: c.org}.
		Inventory(testNow, collector.Options{MaxHostsPerCIDR: c.opts.MaxHostsPerCIDR})
	in := Input{Inventory: inv, Results: c.results, Options: c.opts, Now: testNow, Owners: c.owners}
	if c.history != nil {
		in.History = c.history(inv.Rules)
	}
	return in
}

// findFinding returns the finding of kind k about rule (or, when rule is empty, about
// group), or nil.
func findFinding(r *Report, k Kind, rule, group string) *Finding {
	for i := range r.Findings {
		f := &r.Findings[i]
		if f.Kind == k && f.Ref().RuleID == rule && (rule != "" || f.Ref().GroupID == group) {
			return f
		}
	}
	return nil
}

// checkWants checks the findings that ws expect or forbid.
func checkWants(t *testing.T, r *Report, ws []want) {
	t.Helper()
	for _, w := range ws {
		subject := w.rule
		if subject == "" {
			subject = w.group
		}
		f := findFinding(r, w.kind, w.rule, w.group)
		switch {
		case w.sev == "" && f != nil:
			t.Errorf("Build(...): finding %s for %s = %s %q, want none", w.kind, subject, f.Severity, f.Reasons())
		case w.sev == "":
		case f == nil:
			t.Errorf("Build(...): finding %s for %s = none, want %s (findings: %s)", w.kind, subject, w.sev, findingList(r))
		case f.Severity != w.sev:
			t.Errorf("Build(...): finding %s for %s = %s %q, want %s", w.kind, subject, f.Severity, f.Reasons(), w.sev)
		case w.reason != "" && !slices.ContainsFunc(f.Reasons(), func(s string) bool { return strings.Contains(s, w.reason) }):
			t.Errorf("Build(...): finding %s for %s = reasons %q, want one containing %q", w.kind, subject, f.Reasons(), w.reason)
		}
	}
}

// findingList lists the findings of r in short, for failure messages.
func findingList(r *Report) string {
	var parts []string
	for _, f := range r.Findings {
		parts = append(parts, fmt.Sprintf("%s/%s/%s", f.Kind, f.Severity, cmp.Or(f.Ref().RuleID, f.Ref().GroupID)))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// checkReport checks what every report must be: known kinds and severities, reasons for
// every finding, findings in order, every kind and severity counted.
func checkReport(t *testing.T, r *Report) {
	t.Helper()
	if r.Schema != Schema {
		t.Errorf("Build(...).Schema = %q, want %q", r.Schema, Schema)
	}
	for _, f := range r.Findings {
		if !slices.Contains(Kinds, f.Kind) || !slices.Contains(Severities, f.Severity) {
			t.Errorf("Build(...): finding %s for %s has severity %q", f.Kind, cmp.Or(f.Ref().RuleID, f.Ref().GroupID), f.Severity)
		}
		if len(f.Reasons()) == 0 || slices.Contains(f.Reasons(), "") {
			t.Errorf("Build(...): finding %s for %s has reasons %q, want some, none empty", f.Kind, cmp.Or(f.Ref().RuleID, f.Ref().GroupID), f.Reasons())
		}
	}
	if !slices.IsSortedFunc(r.Findings, func(a, b Finding) int { return compareFindings(&a, &b) }) {
		t.Errorf("Build(...): findings not sorted: %s", findingList(r))
	}
	for _, k := range Kinds {
		if _, ok := r.Summary.ByKind[k]; !ok {
			t.Errorf("Build(...).Summary.ByKind has no %s", k)
		}
	}
	for _, s := range Severities {
		if _, ok := r.Summary.BySeverity[s]; !ok {
			t.Errorf("Build(...).Summary.BySeverity has no %s", s)
		}
	}
}

func runCases(t *testing.T, cases []buildCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Build(c.input())
			checkReport(t, r)
			checkWants(t, r, c.want)
		})
	}
}

func TestBuildSuspiciousSource(t *testing.T) {
	const md = "metadefender"
	listed := "listed by 2 of 6 sources: webroot, firehol"
	runCases(t, []buildCase{
		{
			name:    "egress tcp 443 to malicious 85.25.199.246",
			rules:   []collector.Rule{out("sgr-1", "tcp", 443, 443, "85.25.199.246/32", "telemetry endpoint")},
			results: results(verdict(md, "85.25.199.246", reputation.Malicious, listed)),
			want:    []want{{kind: SuspiciousSource, rule: "sgr-1", sev: Critical, reason: "85.25.199.246 is malicious according to metadefender: " + listed}},
		},
		{
			name:    "ingress tcp 22 from malicious 94.73.144.9",
			rules:   []collector.Rule{in("sgr-1", "tcp", 22, 22, "94.73.144.9/32", "vendor")},
			results: results(verdict(md, "94.73.144.9", reputation.Malicious, listed), verdict("blocklist", "94.73.144.9", reputation.Clean, "")),
			want:    []want{{kind: SuspiciousSource, rule: "sgr-1", sev: Critical, reason: "94.73.144.9 is malicious according to metadefender"}},
		},
		{
			name:    "ingress tcp 3000-3400 from malicious 94.73.144.9 includes 3306",
			rules:   []collector.Rule{in("sgr-1", "tcp", 3000, 3400, "94.73.144.9/32", "app")},
			results: results(verdict(md, "94.73.144.9", reputation.Malicious, listed)),
			want:    []want{{kind: SuspiciousSource, rule: "sgr-1", sev: Critical}},
		},
		{
			name:    "ingress all protocols from malicious 94.73.144.9",
			rules:   []collector.Rule{in("sgr-1", "all", -1, -1, "94.73.144.9/32", "app")},
			results: results(verdict(md, "94.73.144.9", reputation.Malicious, listed)),
			want:    []want{{kind: SuspiciousSource, rule: "sgr-1", sev: Critical}},
		},
		{
			name:    "ingress tcp 443 from malicious 185.50.196.126",
			rules:   []collector.Rule{in("sgr-1", "tcp", 443, 443, "185.50.196.126/32", "vendor support")},
			results: results(verdict(md, "185.50.196.126", reputation.Malicious, listed)),
			want:    []want{{kind: SuspiciousSource, rule: "sgr-1", sev: High, reason: "185.50.196.126 is malicious"}},
		},
		{
			name:  "ingress tcp 22 from suspicious 24.48.0.1",
			rules: []collector.Rule{in("sgr-1", "tcp", 22, 22, "24.48.0.1/32", "office")},
			results: results(
				verdict("abuseipdb", "24.48.0.1", reputation.Suspicious, "confidence 40%"),
				verdict(md, "24.48.0.1", reputation.Clean, ""),
			),
			want: []want{{kind: SuspiciousSource, rule: "sgr-1", sev: Medium, reason: "24.48.0.1 is suspicious according to abuseipdb: confidence 40%"}},
		},
		{
			name:  "egress tcp 443 to suspicious 24.48.0.1",
			rules: []collector.Rule{out("sgr-1", "tcp", 443, 443, "24.48.0.1/32", "api")},
			results: results(
				verdict("abuseipdb", "24.48.0.1", reputation.Suspicious, "confidence 40%"),
			),
			want: []want{{kind: SuspiciousSource, rule: "sgr-1", sev: Medium}},
		},
		{
			name:    "ingress tcp 443 from clean 24.48.0.1",
			rules:   []collector.Rule{in("sgr-1", "tcp", 443, 443, "24.48.0.1/32", "office")},
			results: results(verdict(md, "24.48.0.1", reputation.Clean, "")),
			want:    []want{{kind: SuspiciousSource, rule: "sgr-1"}, {kind: Unvetted, rule: "sgr-1"}},
		},
		{
			name:  "ingress tcp 443 from 94.73.144.8/29 with one malicious and one suspicious address",
			rules: []collector.Rule{in("sgr-1", "tcp", 443, 443, "94.73.144.8/29", "partner")},
			results: results(
				verdict(md, "94.73.144.10", reputation.Suspicious, "one source"),
				verdict(md, "94.73.144.9", reputation.Malicious, listed),
			),
			want: []want{
				{kind: SuspiciousSource, rule: "sgr-1", sev: High, reason: "94.73.144.9 is malicious"},
				{kind: SuspiciousSource, rule: "sgr-1", sev: High, reason: "94.73.144.10 is suspicious"},
				// The other six addresses have no result.
				{kind: Unvetted, rule: "sgr-1", sev: Info, reason: "6 addresses, 94.73.144.8, 94.73.144.11, 94.73.144.12 and 3 more, were not looked up by any provider"},
			},
		},
		{
			name:    "ingress tcp 443 from 151.101.0.0/16 listed by prefix",
			rules:   []collector.Rule{in("sgr-1", "tcp", 443, 443, "151.101.0.0/16", "CDN")},
			results: results(verdict("blocklist", "151.101.0.0/16", reputation.Malicious, "listed in drop as 151.101.4.0/24")),
			want: []want{
				{kind: SuspiciousSource, rule: "sgr-1", sev: High, reason: "151.101.0.0/16 is malicious according to blocklist"},
				{kind: WideRange, rule: "sgr-1", sev: Medium, reason: "only against offline lists"},
			},
		},
		{
			name: "prefix list entries 85.25.199.246/32 and 24.48.0.1/32 of one rule id",
			rules: func() []collector.Rule {
				a := in("sgr-pl", "tcp", 22, 22, "85.25.199.246/32", "")
				b := in("sgr-pl", "tcp", 22, 22, "24.48.0.1/32", "")
				a.PrefixList = &collector.PrefixListRef{ID: "pl-1", EntryDescription: "partner"}
				b.PrefixList = &collector.PrefixListRef{ID: "pl-1", EntryDescription: "office"}
				return []collector.Rule{a, b}
			}(),
			results: results(
				verdict(md, "85.25.199.246", reputation.Malicious, listed),
				verdict(md, "24.48.0.1", reputation.Clean, ""),
			),
			want: []want{{kind: SuspiciousSource, rule: "sgr-pl", sev: Critical, reason: "85.25.199.246 is malicious"}},
		},
	})
}

// TestBuildSuspiciousEntry checks that only the prefix list entry holding the bad address
// is reported, and that each finding keeps its own CIDR. The entries share their rule id;
// the /16 is vetted as a whole, so its addresses are not its own.
func TestBuildSuspiciousEntry(t *testing.T) {
	var rules []collector.Rule
	for _, e := range []string{"85.25.199.246/32", "24.48.0.1/32", "85.25.0.0/16"} {
		r := in("sgr-pl", "tcp", 22, 22, e, "")
		r.PrefixList = &collector.PrefixListRef{ID: "pl-1", EntryDescription: "partner"}
		rules = append(rules, r)
	}
	c := buildCase{
		rules: rules,
		results: results(
			verdict("blocklist", "85.25.199.246", reputation.Malicious, "listed"),
			verdict("blocklist", "24.48.0.1", reputation.Clean, ""),
			verdict("blocklist", "85.25.0.0/16", reputation.Clean, ""),
		),
	}
	r := Build(c.input())
	var cidrs []string
	for _, f := range r.Findings {
		if f.Kind == SuspiciousSource {
			cidrs = append(cidrs, f.Ref().CIDR)
		}
	}
	if want := []string{"85.25.199.246/32"}; !slices.Equal(cidrs, want) {
		t.Errorf("Build(prefix list entries): suspicious-source CIDRs = %q, want %q", cidrs, want)
	}
}

func TestBuildSuspiciousVerdicts(t *testing.T) {
	// Every address of 24.48.0.0/24 is malicious by one provider and clean by another.
	var vs []reputation.Verdict
	for a, i := netip.MustParseAddr("24.48.0.0"), 0; i < 256; a, i = a.Next(), i+1 {
		vs = append(vs, verdict("metadefender", a.String(), reputation.Malicious, "listed by 1 of 6 sources"))
		vs = append(vs, verdict("blocklist", a.String(), reputation.Clean, ""))
	}
	c := buildCase{rules: []collector.Rule{in("sgr-1", "tcp", 443, 443, "24.48.0.0/24", "partner NAT")}, results: results(vs...)}
	r := Build(c.input())
	f := findFinding(r, SuspiciousSource, "sgr-1", "")
	if f == nil {
		t.Fatalf("Build(24.48.0.0/24 all malicious): finding %s for sgr-1 = none, want one", SuspiciousSource)
	}
	if len(f.Verdicts) != maxAddressesShown {
		t.Errorf("Build(24.48.0.0/24 all malicious): finding %s for sgr-1 = %d verdicts, want %d", f.Kind, len(f.Verdicts), maxAddressesShown)
	}
	for _, v := range f.Verdicts {
		if v.Status != reputation.Malicious {
			t.Errorf("Build(24.48.0.0/24 all malicious): finding %s for sgr-1 has verdict %s by %s, want only bad ones", f.Kind, v.Status, v.Provider)
		}
	}
	if last, want := f.Reasons()[len(f.Reasons())-1], "and 246 more addresses in the rule are listed as malicious or suspicious"; last != want {
		t.Errorf("Build(24.48.0.0/24 all malicious): finding %s for sgr-1 = last reason %q, want %q", f.Kind, last, want)
	}
	if n := r.Summary.ByKind[SuspiciousSource]; n != 1 {
		t.Errorf("Build(24.48.0.0/24 all malicious): %d suspicious-source findings, want 1", n)
	}

	// Malicious addresses come before the suspicious ones, whatever their order.
	vs = vs[:0]
	for a, i := netip.MustParseAddr("24.48.0.0"), 0; i < 256; a, i = a.Next(), i+1 {
		status := reputation.Suspicious
		if i == 200 {
			status = reputation.Malicious
		}
		vs = append(vs, verdict("abuseipdb", a.String(), status, ""))
	}
	c.results = results(vs...)
	r = Build(c.input())
	f = findFinding(r, SuspiciousSource, "sgr-1", "")
	if f == nil || f.Severity != High || f.Verdicts[0].Target.String() != "24.48.0.200" {
		t.Errorf("Build(24.48.0.0/24 one malicious): finding %s for sgr-1 = %+v, want high, 24.48.0.200 first", SuspiciousSource, f)
	}
}

func TestBuildUnvetted(t *testing.T) {
	runCases(t, []buildCase{
		{
			name:  "ingress tcp 22 from 24.48.0.1 with no result",
			rules: []collector.Rule{in("sgr-1", "tcp", 22, 22, "24.48.0.1/32", "office")},
			want:  []want{{kind: Unvetted, rule: "sgr-1", sev: Info, reason: "24.48.0.1 was not looked up by any provider"}},
		},
		{
			name:  "ingress tcp 22 from 2a02:8010:6a2f::17 every provider unknown",
			rules: []collector.Rule{in("sgr-1", "tcp", 22, 22, "2a02:8010:6a2f::17/128", "office")},
			results: results(
				verdict("blocklist", "2a02:8010:6a2f::17", reputation.Unknown, "no loaded list has IPv6 entries"),
				verdict("metadefender", "2a02:8010:6a2f::17", reputation.Unknown, "daily quota of 1000 lookups reached"),
			),
			want: []want{{kind: Unvetted, rule: "sgr-1", sev: Info, reason: "no provider could vet 2a02:8010:6a2f::17 (blocklist: no loaded list has IPv6 entries; metadefender: daily quota"}},
		},
		{
			name:  "ingress tcp 22 from 24.48.0.1 one unknown one clean",
			rules: []collector.Rule{in("sgr-1", "tcp", 22, 22, "24.48.0.1/32", "office")},
			results: results(
				verdict("blocklist", "24.48.0.1", reputation.Clean, ""),
				verdict("metadefender", "24.48.0.1", reputation.Unknown, "timeout"),
			),
			want: []want{{kind: Unvetted, rule: "sgr-1"}},
		},
		{
			name:  "ingress tcp 443 from 0.0.0.0/0 and ::/0",
			rules: []collector.Rule{in("sgr-1", "tcp", 443, 443, "0.0.0.0/0", "web"), in("sgr-2", "tcp", 443, 443, "::/0", "web")},
			want:  []want{{kind: Unvetted, rule: "sgr-1"}, {kind: Unvetted, rule: "sgr-2"}},
		},
		{
			name: "egress tcp 443 to AWS-managed prefix list",
			rules: func() []collector.Rule {
				r := out("sgr-1", "tcp", 443, 443, "", "")
				r.PrefixList = &collector.PrefixListRef{ID: "pl-s3", Name: "com.amazonaws.eu-west-1.s3", Owner: "AWS", AWSManaged: true}
				return []collector.Rule{r}
			}(),
			want: []want{{kind: Unvetted, rule: "sgr-1"}, {kind: StaleSource, rule: "sgr-1"}},
		},
		{
			name:  "ingress tcp 22 from 10.0.0.0/8",
			rules: []collector.Rule{in("sgr-1", "tcp", 22, 22, "10.0.0.0/8", "")},
			want:  []want{{kind: Unvetted, rule: "sgr-1"}, {kind: StaleSource, rule: "sgr-1"}, {kind: WideRange, rule: "sgr-1"}},
		},
	})
}

func TestBuildStaleSource(t *testing.T) {
	type staleCase struct {
		desc     string
		seen     string               // first seen in the history; empty: no history
		attached collector.Attachment // the zero value stands for Attached here
		unknown  bool                 // the group's attachment is unknown
		opts     Options
		sev      Severity // empty: no stale-source finding
		reason   string
	}
	cases := []staleCase{
		{desc: "exp 2025-06-30", sev: Medium, reason: "the description says it expired on 2025-06-30"},
		{desc: "exp: 2025-06-30", sev: Medium, reason: "expired on 2025-06-30"},
		{desc: "Exp. 2025-06-30", sev: Medium, reason: "expired on 2025-06-30"},
		{desc: "expires=2025-06-30", sev: Medium, reason: "expired on 2025-06-30"},
		{desc: "expires 2025/06/30", sev: Medium, reason: "expired on 2025-06-30"},
		{desc: "expires on 2025-6-30", sev: Medium, reason: "expired on 2025-06-30"},
		{desc: "expiry: 2025-06-30", sev: Medium, reason: "expired on 2025-06-30"},
		{desc: "until 2025-06-30", sev: Medium, reason: "expired on 2025-06-30"},
		{desc: "vendor support valid until 2025-06-30", sev: Medium, reason: "expired on 2025-06-30"},
		{desc: "audit access through 2025-06-30", sev: Medium, reason: "expired on 2025-06-30"},
		{desc: "audit access thru 2025-06-30", sev: Medium, reason: "expired on 2025-06-30"},
		{desc: "contractor Acme - bob (exp 2025-06-30)", sev: Medium, reason: "expired on 2025-06-30"},
		{desc: "exp 2026-11-20", sev: Medium, reason: "expired on 2026-11-20"},
		{desc: "exp 2026-11-21"},       // today: not passed yet
		{desc: "exp 2027-01-31"},       // future
		{desc: "exp 2025-02-30"},       // no such day
		{desc: "migrated 2025-06-30"},  // not an expiry, no marker
		{desc: "ticket exp2025-06-30"}, // not a word before the date
		{desc: "exp 2025-06-30 renewed until 2027-01-31"},
		{desc: "contractor Acme - bob (exp 2025-06-30)", attached: collector.Unattached, sev: Medium, reason: "the group is attached to no network interface"},

		{desc: "temp access", seen: "2026-04-21", sev: Low, reason: `the description says "temp" and the rule is 214 days old (first seen 2026-04-21)`},
		{desc: "TEMP access", seen: "2026-04-21", sev: Low, reason: `"temp"`},
		{desc: "temp-access", seen: "2026-04-21", sev: Low, reason: `"temp"`},
		{desc: "hotel wifi, contractor", seen: "2026-04-21", sev: Low, reason: `the description says "contractor" and "hotel" and the rule is 214 days old`},
		{desc: "temp access", seen: "2026-10-01"},
		{desc: "temp access"},
		{desc: "temp added 2024-01-10", sev: Low, reason: `the description says "temp" and the rule is 1046 days old (its description is dated 2024-01-10)`},
		{desc: "temp added 2024-01-10", seen: "2026-10-01", sev: Low, reason: "(its description is dated 2024-01-10)"},
		{desc: "temp added 2026-11-01"},
		{desc: "temp until 2027-01-31", seen: "2026-04-21", sev: Low, reason: "first seen 2026-04-21"},
		{desc: "temp until 2025-01-31", sev: Medium, reason: "expired on 2025-01-31"},
		{desc: "John's laptop", seen: "2026-04-21", sev: Low, reason: `the description says "John's"`},
		{desc: "Zoë’s laptop", seen: "2026-04-21", sev: Low, reason: `"Zoë’s"`},
		{desc: "John's laptop"},
		{desc: "Let's keep this", seen: "2026-04-21"},
		{desc: "AWS's range", seen: "2026-04-21"},
		{desc: "attempt 3", seen: "2026-04-21"},
		{desc: "office VPN", seen: "2020-01-01"},
		{desc: "oncall laptop", seen: "2026-04-21", opts: Options{Markers: []string{"OnCall"}}, sev: Low, reason: `"oncall"`},
		{desc: "temp access", seen: "2026-04-21", opts: Options{Markers: []string{"oncall"}}},
		{desc: "temp access", seen: "2026-10-01", opts: Options{StaleAfter: 30 * 24 * time.Hour}, sev: Low, reason: "51 days old"},

		{desc: "", sev: Low, reason: "the rule has no description"},
		{desc: "  \t", sev: Low, reason: "the rule has no description"},
		{desc: "office VPN", attached: collector.Unattached, sev: Low, reason: "the group is attached to no network interface"},
		{desc: "office VPN", unknown: true},
	}
	for _, c := range cases {
		name := fmt.Sprintf("%q", c.desc)
		if c.seen != "" {
			name += " first seen " + c.seen
		}
		attached := cmp.Or(c.attached, collector.Attached)
		if c.unknown {
			attached = collector.AttachmentUnknown
		}
		if attached != collector.Attached {
			name += " attached " + attached.String()
		}
		if c.opts.Markers != nil || c.opts.StaleAfter != 0 {
			name += fmt.Sprintf(" markers %q stale after %s", c.opts.Markers, c.opts.StaleAfter)
		}
		t.Run(name, func(t *testing.T) {
			bc := buildCase{
				groups: []collector.Group{group("sg-app", "app", attached)},
				rules:  []collector.Rule{in("sgr-1", "tcp", 22, 22, "24.48.0.1/32", c.desc)},
				opts:   c.opts,
			}
			if c.seen != "" {
				bc.history = firstSeen(c.seen)
			}
			r := Build(bc.input())
			checkReport(t, r)
			checkWants(t, r, []want{{kind: StaleSource, rule: "sgr-1", sev: c.sev, reason: c.reason}})
			if f := findFinding(r, StaleSource, "sgr-1", ""); f != nil && f.Ref().Description != c.desc {
				t.Errorf("Build(...): finding %s for sgr-1 = description %q, want %q", f.Kind, f.Ref().Description, c.desc)
			}
		})
	}
}

// TestBuildStaleAtAnyAge: StaleAtAnyAge makes a marked rule stale on the day it is first
// seen, while a StaleAfter of 0 still means DefaultStaleAfter.
func TestBuildStaleAtAnyAge(t *testing.T) {
	cases := []struct {
		staleAfter time.Duration
		firstSeen  time.Time
		reason     string // of the stale-source finding; "" for none
	}{
		{StaleAtAnyAge, testNow, `the description says "temp" and the rule is 0 days old (first seen 2026-11-21)`},
		{StaleAtAnyAge, testNow.Add(-time.Minute), `the rule is 0 days old`},
		{0, testNow, ""},
		{0, testNow.Add(-DefaultStaleAfter), ""},
		{0, testNow.Add(-DefaultStaleAfter - time.Minute), `the rule is 90 days old`},
		{time.Hour, testNow.Add(-time.Hour), ""},
		{time.Hour, testNow.Add(-time.Hour - time.Minute), `the rule is 0 days old`},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("stale after %s, %s old", c.staleAfter, testNow.Sub(c.firstSeen)), func(t *testing.T) {
			bc := buildCase{
				rules: []collector.Rule{in("sgr-1", "tcp", 22, 22, "24.48.0.1/32", "temp access")},
				opts:  Options{StaleAfter: c.staleAfter},
				history: func(rules []collector.Rule) *HistoryView {
					return &HistoryView{Previous: "run-1", FirstSeen: map[string]time.Time{RuleKey(rules[0]): c.firstSeen}, New: map[string]bool{}}
				},
			}
			r := Build(bc.input())
			checkReport(t, r)
			w := want{kind: StaleSource, rule: "sgr-1", reason: c.reason}
			if c.reason != "" {
				w.sev = Low
			}
			checkWants(t, r, []want{w})
		})
	}
}

func TestBuildStaleRules(t *testing.T) {
	runCases(t, []buildCase{
		{
			name: "198.144.120.77/32 inside 198.144.120.0/24 on tcp 443",
			rules: []collector.Rule{
				in("sgr-range", "tcp", 443, 443, "198.144.120.0/24", "partner NAT range"),
				in("sgr-host", "tcp", 443, 443, "198.144.120.77/32", "partner NAT primary"),
			},
			want: []want{
				{kind: StaleSource, rule: "sgr-host", sev: Low, reason: "redundant: rule sgr-range allows 198.144.120.0/24 on the same ports"},
				{kind: StaleSource, rule: "sgr-range"},
			},
		},
		{
			name: "198.144.120.77/32 on tcp 443 inside 198.144.120.0/24 on every tcp port",
			rules: []collector.Rule{
				in("sgr-range", "tcp", 0, 65535, "198.144.120.0/24", "partner NAT range"),
				in("sgr-host", "tcp", 443, 443, "198.144.120.77/32", "partner NAT primary"),
			},
			want: []want{{kind: StaleSource, rule: "sgr-host", sev: Low, reason: "redundant: rule sgr-range allows 198.144.120.0/24 on ports all, which include these"}},
		},
		{
			name: "24.48.0.1/32 twice on tcp 22",
			rules: []collector.Rule{
				in("sgr-a", "tcp", 22, 22, "24.48.0.1/32", "desk"),
				in("sgr-b", "tcp", 22, 22, "24.48.0.1/32", "desk again"),
			},
			want: []want{{kind: StaleSource, rule: "sgr-a"}, {kind: StaleSource, rule: "sgr-b"}},
		},
		{
			name: "24.48.0.1/32 on tcp 22 inside 24.48.0.0/24 on tcp 20-21 and 23-25",
			rules: []collector.Rule{
				in("sgr-low", "tcp", 20, 21, "24.48.0.0/24", "office"),
				in("sgr-high", "tcp", 23, 25, "24.48.0.0/24", "office"),
				in("sgr-host", "tcp", 22, 22, "24.48.0.1/32", "desk"),
			},
			want: []want{{kind: StaleSource, rule: "sgr-host"}},
		},
		{
			name: "24.48.0.1/32 inside 24.48.0.0/24 and 0.0.0.0/0 names the narrower",
			rules: []collector.Rule{
				in("sgr-world", "tcp", 22, 22, "0.0.0.0/0", "anywhere"),
				in("sgr-range", "tcp", 22, 22, "24.48.0.0/24", "office"),
				in("sgr-host", "tcp", 22, 22, "24.48.0.1/32", "desk"),
			},
			want: []want{
				{kind: StaleSource, rule: "sgr-host", sev: Low, reason: "redundant: rule sgr-range allows 24.48.0.0/24"},
				{kind: StaleSource, rule: "sgr-range", sev: Low, reason: "redundant: rule sgr-world allows 0.0.0.0/0"},
				{kind: StaleSource, rule: "sgr-world"},
			},
		},
		{
			name: "24.48.0.1/32 on tcp 22 beside 24.48.0.0/24 on tcp 443, udp 22, egress, another group",
			groups: []collector.Group{
				group("sg-app", "app", collector.Attached),
				group("sg-other", "other", collector.Attached),
			},
			rules: []collector.Rule{
				in("sgr-443", "tcp", 443, 443, "24.48.0.0/24", "office"),
				in("sgr-udp", "udp", 22, 22, "24.48.0.0/24", "office"),
				out("sgr-out", "tcp", 22, 22, "24.48.0.0/24", "office"),
				rule("sg-other", "sgr-other", collector.Ingress, "tcp", 22, 22, "24.48.0.0/24", "office"),
				in("sgr-host", "tcp", 22, 22, "24.48.0.1/32", "desk"),
			},
			want: []want{{kind: StaleSource, rule: "sgr-host"}},
		},
		{
			name: "icmp type 8 from 24.48.0.1/32 inside icmp all from 24.48.0.0/24",
			rules: []collector.Rule{
				in("sgr-range", "icmp", -1, -1, "24.48.0.0/24", "office"),
				in("sgr-host", "icmp", 8, -1, "24.48.0.1/32", "desk"),
			},
			want: []want{{kind: StaleSource, rule: "sgr-host", sev: Low, reason: "redundant: rule sgr-range"}},
		},
		{
			name: "no description on 10.0.0.0/8, a group reference and an AWS-managed prefix list",
			rules: func() []collector.Rule {
				ref := in("sgr-ref", "tcp", 22, 22, "", "")
				ref.ReferencedGroup = &collector.GroupRef{GroupID: "sg-bastion"}
				pl := out("sgr-pl", "tcp", 443, 443, "", "")
				pl.PrefixList = &collector.PrefixListRef{ID: "pl-s3", Owner: "AWS", AWSManaged: true}
				return []collector.Rule{in("sgr-private", "tcp", 22, 22, "10.0.0.0/8", ""), ref, pl}
			}(),
			want: []want{{kind: StaleSource, rule: "sgr-private"}, {kind: StaleSource, rule: "sgr-ref"}, {kind: StaleSource, rule: "sgr-pl"}},
		},
		{
			name:   "no description on 0.0.0.0/0 in an unattached group",
			groups: []collector.Group{group("sg-app", "app", collector.Unattached)},
			rules:  []collector.Rule{in("sgr-world", "tcp", 443, 443, "0.0.0.0/0", "")},
			want:   []want{{kind: StaleSource, rule: "sgr-world"}, {kind: OpenToWorld, rule: "sgr-world", sev: Low}},
		},
		{
			name: "customer prefix list entry 24.48.0.1/32 described only in the list",
			rules: func() []collector.Rule {
				r := in("sgr-pl", "tcp", 22, 22, "24.48.0.1/32", "")
				r.PrefixList = &collector.PrefixListRef{ID: "pl-1", EntryDescription: "contractor exp 2025-06-30"}
				return []collector.Rule{r}
			}(),
			want: []want{{kind: StaleSource, rule: "sgr-pl", sev: Medium, reason: "expired on 2025-06-30"}},
		},
		{
			name: "customer prefix list entry 24.48.0.1/32 marked temp in the rule and dated in the list",
			rules: func() []collector.Rule {
				r := in("sgr-pl", "tcp", 22, 22, "24.48.0.1/32", "temp")
				r.PrefixList = &collector.PrefixListRef{ID: "pl-1", EntryDescription: "added 2024-01-10"}
				return []collector.Rule{r}
			}(),
			want: []want{{kind: StaleSource, rule: "sgr-pl", sev: Low, reason: "(its description is dated 2024-01-10)"}},
		},
	})
}

func TestBuildExposure(t *testing.T) {
	runCases(t, []buildCase{
		{
			name:  "ingress tcp 22 from 0.0.0.0/0",
			rules: []collector.Rule{in("sgr-1", "tcp", 22, 22, "0.0.0.0/0", "")},
			want:  []want{{kind: OpenToWorld, rule: "sgr-1", sev: Critical, reason: "SSH (22) is open to the whole internet"}},
		},
		{
			name:  "ingress tcp 3389 from ::/0",
			rules: []collector.Rule{in("sgr-1", "tcp", 3389, 3389, "::/0", "")},
			want:  []want{{kind: OpenToWorld, rule: "sgr-1", sev: Critical, reason: "RDP (3389)"}},
		},
		{
			name:  "ingress udp 11211 from 0.0.0.0/0",
			rules: []collector.Rule{in("sgr-1", "udp", 11211, 11211, "0.0.0.0/0", "")},
			want:  []want{{kind: OpenToWorld, rule: "sgr-1", sev: Critical, reason: "Memcached (UDP 11211)"}},
		},
		{
			name:  "ingress tcp 20-25 from 0.0.0.0/0",
			rules: []collector.Rule{in("sgr-1", "tcp", 20, 25, "0.0.0.0/0", "")},
			want:  []want{{kind: OpenToWorld, rule: "sgr-1", sev: Critical, reason: "TCP ports 20-25 are open to the whole internet, including SSH (22), Telnet (23)"}},
		},
		{
			name:  "ingress tcp 1-10000 from 0.0.0.0/0",
			rules: []collector.Rule{in("sgr-1", "tcp", 1, 10000, "0.0.0.0/0", "")},
			want:  []want{{kind: OpenToWorld, rule: "sgr-1", sev: Critical, reason: "and 20 more administration or database ports"}},
		},
		{
			name: "ingress tcp 80 and 443 from 0.0.0.0/0 and ::/0",
			rules: []collector.Rule{
				in("sgr-80", "tcp", 80, 80, "0.0.0.0/0", ""),
				in("sgr-443", "tcp", 443, 443, "0.0.0.0/0", "HTTPS from anywhere"),
				in("sgr-443v6", "tcp", 443, 443, "::/0", ""),
			},
			want: []want{
				{kind: OpenToWorld, rule: "sgr-80", sev: Low, reason: "HTTP (80) is open to the whole internet"},
				{kind: OpenToWorld, rule: "sgr-443", sev: Low, reason: "HTTPS (443)"},
				{kind: OpenToWorld, rule: "sgr-443v6", sev: Low},
			},
		},
		{
			name:  "ingress tcp 80-443 from 0.0.0.0/0",
			rules: []collector.Rule{in("sgr-1", "tcp", 80, 443, "0.0.0.0/0", "")},
			want:  []want{{kind: OpenToWorld, rule: "sgr-1", sev: Critical, reason: "TCP ports 80-443 are open to the whole internet, including Microsoft RPC (135), NetBIOS (139)"}},
		},
		{
			name:  "ingress tcp 8000-8010 from 0.0.0.0/0",
			rules: []collector.Rule{in("sgr-1", "tcp", 8000, 8010, "0.0.0.0/0", "")},
			want:  []want{{kind: OpenToWorld, rule: "sgr-1", sev: High, reason: "TCP ports 8000-8010 are open to the whole internet"}},
		},
		{
			name:  "ingress all from 0.0.0.0/0",
			rules: []collector.Rule{in("sgr-1", "all", -1, -1, "0.0.0.0/0", "")},
			want:  []want{{kind: OpenToWorld, rule: "sgr-1", sev: Critical, reason: "every protocol and port is open to the whole internet, including SSH (22)"}},
		},
		{
			name:  "ingress tcp 0-65535 from 0.0.0.0/0",
			rules: []collector.Rule{in("sgr-1", "tcp", 0, 65535, "0.0.0.0/0", "")},
			want:  []want{{kind: OpenToWorld, rule: "sgr-1", sev: Critical, reason: "every TCP port is open to the whole internet, including SSH (22)"}},
		},
		{
			name:  "ingress udp -1 from ::/0",
			rules: []collector.Rule{in("sgr-1", "udp", -1, -1, "::/0", "")},
			want:  []want{{kind: OpenToWorld, rule: "sgr-1", sev: Critical, reason: "every UDP port is open to the whole internet, including SSH (UDP 22)"}},
		},
		{
			name:  "ingress all from 0.0.0.0/0 with no administration or database ports",
			rules: []collector.Rule{in("sgr-1", "all", -1, -1, "0.0.0.0/0", "")},
			opts:  Options{AdminPorts: []uint16{}, DatabasePorts: []uint16{}},
			want:  []want{{kind: OpenToWorld, rule: "sgr-1", sev: High, reason: "every protocol and port is open to the whole internet"}},
		},
		{
			name:  "ingress udp 80 from 0.0.0.0/0",
			rules: []collector.Rule{in("sgr-1", "udp", 80, 80, "0.0.0.0/0", "")},
			want:  []want{{kind: OpenToWorld, rule: "sgr-1", sev: High, reason: "UDP port 80 is open to the whole internet, and it is not a public web port"}},
		},
		{
			name:  "ingress udp 443 from 0.0.0.0/0",
			rules: []collector.Rule{in("sgr-1", "udp", 443, 443, "0.0.0.0/0", "")},
			want:  []want{{kind: OpenToWorld, rule: "sgr-1", sev: Low, reason: "HTTP/3 (QUIC) (UDP 443) is open to the whole internet, as a public web server needs"}},
		},
		{
			name: "ingress tcp 4333, 8443, 443 and 22 from 0.0.0.0/0 with 4333 a database port and 8443 the only web port",
			rules: []collector.Rule{
				in("sgr-4333", "tcp", 4333, 4333, "0.0.0.0/0", ""),
				in("sgr-8443", "tcp", 8443, 8443, "0.0.0.0/0", ""),
				in("sgr-443", "tcp", 443, 443, "0.0.0.0/0", ""),
				in("sgr-22", "tcp", 22, 22, "0.0.0.0/0", ""),
			},
			opts: Options{DatabasePorts: []uint16{4333}, WebPorts: []ProtoPort{{"tcp", 8443}}},
			want: []want{
				{kind: OpenToWorld, rule: "sgr-4333", sev: Critical, reason: "mSQL (4333) is open to the whole internet"},
				{kind: OpenToWorld, rule: "sgr-8443", sev: Low, reason: "TCP port 8443 is open to the whole internet, as a public web server needs"},
				{kind: OpenToWorld, rule: "sgr-443", sev: High, reason: "not a public web port"},
				{kind: OpenToWorld, rule: "sgr-22", sev: Critical, reason: "SSH (22)"},
			},
		},
		{
			name:  "ingress tcp 8443 from 0.0.0.0/0",
			rules: []collector.Rule{in("sgr-1", "tcp", 8443, 8443, "0.0.0.0/0", "")},
			want:  []want{{kind: OpenToWorld, rule: "sgr-1", sev: High, reason: "TCP port 8443 is open to the whole internet"}},
		},
		{
			name:  "ingress protocol 47 from 0.0.0.0/0",
			rules: []collector.Rule{in("sgr-1", "47", -1, -1, "0.0.0.0/0", "")},
			want:  []want{{kind: OpenToWorld, rule: "sgr-1", sev: High, reason: "IP protocol 47"}},
		},
		{
			name: "ingress tcp 22 from 24.48.0.1/32 and egress tcp 22 to 0.0.0.0/0",
			rules: []collector.Rule{
				in("sgr-1", "tcp", 22, 22, "24.48.0.1/32", "office"),
				out("sgr-2", "tcp", 22, 22, "0.0.0.0/0", ""),
			},
			want: []want{{kind: OpenToWorld, rule: "sgr-1"}, {kind: OpenToWorld, rule: "sgr-2"}, {kind: OpenEgress, rule: "sgr-2"}},
		},
		{
			name: "ingress icmp from 0.0.0.0/0 and ::/0",
			rules: []collector.Rule{
				in("sgr-echo", "icmp", 8, -1, "0.0.0.0/0", "ping from anywhere"),
				in("sgr-all", "icmp", -1, -1, "0.0.0.0/0", ""),
				in("sgr-echo6", "icmpv6", 128, -1, "::/0", ""),
				in("sgr-unreachable", "icmp", 3, 4, "0.0.0.0/0", "path MTU"),
				in("sgr-reply", "icmp", 0, -1, "0.0.0.0/0", "echo replies"),
				in("sgr-reply6", "icmpv6", 129, -1, "::/0", "echo replies"),
			},
			want: []want{
				{kind: ICMPOpen, rule: "sgr-echo", sev: Medium, reason: "ICMP echo requests (ping) are allowed from the whole internet"},
				{kind: OpenToWorld, rule: "sgr-echo"},
				{kind: ICMPOpen, rule: "sgr-all", sev: Medium, reason: "every ICMP type"},
				{kind: ICMPOpen, rule: "sgr-echo6", sev: Medium, reason: "ICMPv6 echo"},
				{kind: ICMPOpen, rule: "sgr-unreachable"},
				{kind: OpenToWorld, rule: "sgr-unreachable"},
				{kind: ICMPOpen, rule: "sgr-reply"},
				{kind: ICMPOpen, rule: "sgr-reply6"},
			},
		},
		{
			name: "egress to 0.0.0.0/0 and ::/0",
			rules: []collector.Rule{
				out("sgr-all", "all", -1, -1, "0.0.0.0/0", ""),
				out("sgr-all6", "all", -1, -1, "::/0", ""),
				out("sgr-tcp", "tcp", 0, 65535, "0.0.0.0/0", ""),
				out("sgr-443", "tcp", 443, 443, "0.0.0.0/0", ""),
				out("sgr-host", "all", -1, -1, "24.48.0.1/32", "backup"),
				out("sgr-icmp", "icmp", -1, -1, "0.0.0.0/0", ""),
			},
			results: results(verdict("blocklist", "24.48.0.1", reputation.Clean, "")),
			want: []want{
				{kind: OpenEgress, rule: "sgr-all", sev: Low, reason: "all traffic may leave for anywhere on the internet"},
				{kind: OpenEgress, rule: "sgr-all6", sev: Low},
				{kind: OpenEgress, rule: "sgr-tcp", sev: Low, reason: "every TCP port"},
				{kind: OpenEgress, rule: "sgr-443"},
				{kind: OpenEgress, rule: "sgr-host"},
				{kind: OpenEgress, rule: "sgr-icmp"},
			},
		},
		{
			name: "ingress tcp 443 from 151.101.0.0/16, 2a01:4f8:c17:1b2a::/64 and 24.48.0.0/24",
			rules: []collector.Rule{
				in("sgr-16", "tcp", 443, 443, "151.101.0.0/16", "CDN origin pull"),
				in("sgr-64", "tcp", 443, 443, "2a01:4f8:c17:1b2a::/64", "IPv6 customers"),
				in("sgr-24", "tcp", 443, 443, "24.48.0.0/24", "office"),
			},
			want: []want{
				{kind: WideRange, rule: "sgr-16", sev: Medium, reason: "151.101.0.0/16 holds 65,536 addresses, more than the 256 vetted one by one; it was not vetted"},
				{kind: Unvetted, rule: "sgr-16", sev: Info, reason: "151.101.0.0/16 was not looked up"},
				{kind: WideRange, rule: "sgr-64", sev: Medium, reason: "holds 2^64 addresses"},
				{kind: WideRange, rule: "sgr-24"},
			},
		},
		{
			name:  "ingress tcp 443 from 24.48.0.0/24 with at most 16 hosts per CIDR",
			rules: []collector.Rule{in("sgr-24", "tcp", 443, 443, "24.48.0.0/24", "office")},
			results: results(
				verdict("blocklist", "24.48.0.0/24", reputation.Clean, ""),
				verdict("metadefender", "24.48.0.0/24", reputation.Unknown, "prefixes are not supported"),
			),
			opts: Options{MaxHostsPerCIDR: 16},
			want: []want{
				{kind: WideRange, rule: "sgr-24", sev: Medium, reason: "24.48.0.0/24 holds 256 addresses, more than the 16 vetted one by one; it was checked only against offline lists"},
				{kind: Unvetted, rule: "sgr-24"},
			},
		},
	})
}

// invalid marks r as the collector marks a rule whose ports or protocol it cannot read.
func invalid(r collector.Rule, field collector.RuleField, text string) collector.Rule {
	r.Invalid = &collector.Invalid{Field: field, Text: text, Reason: "cannot be read"}
	return r
}

// TestBuildInvalidRules checks that a rule whose CIDR, ports or protocol could not be read
// yields an invalid-rule finding and none about what it would allow.
func TestBuildInvalidRules(t *testing.T) {
	md := "metadefender"
	runCases(t, []buildCase{
		{
			name:  "ingress tcp 70000-80 from 0.0.0.0/0",
			rules: []collector.Rule{invalid(in("sgr-1", "tcp", 70000, 80, "0.0.0.0/0", ""), collector.FieldPorts, "70000-80")},
			want:  []want{{kind: OpenToWorld, rule: "sgr-1"}, {kind: InvalidRule, rule: "sgr-1", sev: Info, reason: `the ports "70000-80" could not be parsed (cannot be read)`}},
		},
		{
			name:  "ingress tcpx 22 from ::/0",
			rules: []collector.Rule{invalid(in("sgr-1", "tcpx", 22, 22, "::/0", ""), collector.FieldProtocol, "tcpx")},
			want:  []want{{kind: OpenToWorld, rule: "sgr-1"}, {kind: InvalidRule, rule: "sgr-1", sev: Info, reason: `the protocol "tcpx" could not be parsed`}},
		},
		{
			name:  "egress tcp -1 to 0.0.0.0/0",
			rules: []collector.Rule{invalid(out("sgr-1", "tcp", -1, -1, "0.0.0.0/0", ""), collector.FieldPorts, "-1")},
			want:  []want{{kind: OpenEgress, rule: "sgr-1"}},
		},
		{
			name:  "ingress icmp type 8 code 300 from 0.0.0.0/0",
			rules: []collector.Rule{invalid(in("sgr-1", "icmp", 8, 300, "0.0.0.0/0", ""), collector.FieldPorts, "type 8 code 300")},
			want:  []want{{kind: ICMPOpen, rule: "sgr-1"}},
		},
		{
			name:    "ingress tcp 90-80 from 85.25.199.246/32, malicious",
			rules:   []collector.Rule{invalid(in("sgr-1", "tcp", 90, 80, "85.25.199.246/32", ""), collector.FieldPorts, "90-80")},
			results: results(verdict(md, "85.25.199.246", reputation.Malicious, "listed")),
			want:    []want{{kind: SuspiciousSource, rule: "sgr-1"}, {kind: StaleSource, rule: "sgr-1"}, {kind: Unvetted, rule: "sgr-1"}, {kind: InvalidRule, rule: "sgr-1", sev: Info}},
		},
		{
			name:  "ingress tcp 20-70000 from 151.101.0.0/16",
			rules: []collector.Rule{invalid(in("sgr-1", "tcp", 20, 70000, "151.101.0.0/16", ""), collector.FieldPorts, "20-70000")},
			want:  []want{{kind: WideRange, rule: "sgr-1"}, {kind: Unvetted, rule: "sgr-1"}},
		},
		{
			name: "24.48.0.1/32 on tcp 22 inside 24.48.0.0/24 on tcp 0-70000",
			rules: []collector.Rule{
				invalid(in("sgr-range", "tcp", 0, 70000, "24.48.0.0/24", "partner range"), collector.FieldPorts, "0-70000"),
				in("sgr-host", "tcp", 22, 22, "24.48.0.1/32", "partner host"),
			},
			results: results(verdict(md, "24.48.0.1", reputation.Clean, "")),
			want:    []want{{kind: StaleSource, rule: "sgr-host"}, {kind: StaleSource, rule: "sgr-range"}},
		},
	})
}

func TestBuildDefaultGroup(t *testing.T) {
	self := func(groupID string) collector.Rule {
		r := rule(groupID, "sgr-self", collector.Ingress, "all", -1, -1, "", "")
		r.ReferencedGroup = &collector.GroupRef{GroupID: groupID, Account: testAccount}
		return r
	}
	egress := func(groupID string) collector.Rule {
		return rule(groupID, "sgr-egress", collector.Egress, "all", -1, -1, "0.0.0.0/0", "")
	}
	runCases(t, []buildCase{
		{
			name:   "unattached default group with the default rules",
			groups: []collector.Group{group("sg-def", "default", collector.Unattached)},
			rules:  []collector.Rule{self("sg-def"), egress("sg-def")},
			want:   []want{{kind: DefaultGroupInUse, group: "sg-def", sev: Low, reason: "still has the rules AWS gives every default group"}},
		},
		{
			name:   "default group of unknown attachment with the default rules",
			groups: []collector.Group{group("sg-def", "default", collector.AttachmentUnknown)},
			rules:  []collector.Rule{self("sg-def"), egress("sg-def")},
			want:   []want{{kind: DefaultGroupInUse, group: "sg-def", sev: Low, reason: "whether the group is attached to network interfaces is unknown"}},
		},
		{
			name:   "unattached default group without rules",
			groups: []collector.Group{group("sg-def", "default", collector.Unattached)},
			want:   []want{{kind: DefaultGroupInUse, group: "sg-def"}},
		},
		{
			name:   "unattached default group with only an invalid rule",
			groups: []collector.Group{group("sg-def", "default", collector.Unattached)},
			rules:  []collector.Rule{invalid(rule("sg-def", "sgr-bad", collector.Ingress, "tcp", 90, 80, "81.2.69.142/32", ""), collector.FieldPorts, "90-80")},
			want:   []want{{kind: DefaultGroupInUse, group: "sg-def"}, {kind: InvalidRule, rule: "sgr-bad", sev: Info}},
		},
		{
			name:   "attached default group with the default rules",
			groups: []collector.Group{group("sg-def", "default", collector.Attached)},
			rules:  []collector.Rule{self("sg-def"), egress("sg-def")},
			want:   []want{{kind: DefaultGroupInUse, group: "sg-def", sev: Medium, reason: "the default group is attached to network interfaces"}},
		},
		{
			name:   "attached default group without rules",
			groups: []collector.Group{group("sg-def", "default", collector.Attached)},
			want:   []want{{kind: DefaultGroupInUse, group: "sg-def", sev: Medium}},
		},
		{
			name:   "unattached default group with ingress tcp 22 from 81.2.69.142/32",
			groups: []collector.Group{group("sg-def", "default", collector.Unattached)},
			rules:  []collector.Rule{self("sg-def"), egress("sg-def"), rule("sg-def", "sgr-ssh", collector.Ingress, "tcp", 22, 22, "81.2.69.142/32", "John's home")},
			want:   []want{{kind: DefaultGroupInUse, group: "sg-def", sev: Medium, reason: "ingress rule sgr-ssh allows TCP 22 from 81.2.69.142/32"}},
		},
		{
			name:   "unattached default group with egress tcp 443 to 0.0.0.0/0 only",
			groups: []collector.Group{group("sg-def", "default", collector.Unattached)},
			rules:  []collector.Rule{self("sg-def"), rule("sg-def", "sgr-https", collector.Egress, "tcp", 443, 443, "0.0.0.0/0", "")},
			want:   []want{{kind: DefaultGroupInUse, group: "sg-def", sev: Medium, reason: "egress rule sgr-https allows TCP 443 to 0.0.0.0/0"}},
		},
		{
			name:   "unattached default group referencing another group",
			groups: []collector.Group{group("sg-def", "default", collector.Unattached), group("sg-app", "app", collector.Attached)},
			rules: func() []collector.Rule {
				r := self("sg-def")
				r.ReferencedGroup.GroupID = "sg-app"
				return []collector.Rule{r}
			}(),
			want: []want{{kind: DefaultGroupInUse, group: "sg-def", sev: Medium, reason: "from " + testAccount + "/sg-app"}},
		},
		{
			name:   "attached group named app",
			groups: []collector.Group{group("sg-app", "app", collector.Attached)},
			rules:  []collector.Rule{rule("sg-app", "sgr-ssh", collector.Ingress, "tcp", 22, 22, "81.2.69.142/32", "office")},
			want:   []want{{kind: DefaultGroupInUse, group: "sg-app"}},
		},
	})

	c := buildCase{
		groups: []collector.Group{group("sg-def", "default", collector.Attached)},
		rules:  []collector.Rule{self("sg-def"), rule("sg-def", "sgr-ssh", collector.Ingress, "tcp", 22, 22, "81.2.69.142/32", "")},
	}
	f := findFinding(Build(c.input()), DefaultGroupInUse, "", "sg-def")
	if f == nil {
		t.Fatalf("Build(default group): finding %s for sg-def = none, want one", DefaultGroupInUse)
	}
	ref := f.Ref()
	got := fmt.Sprint(f.Kind, f.Severity, RuleRef{Account: ref.Account, Region: ref.Region, GroupID: ref.GroupID, GroupName: ref.GroupName, RuleID: ref.RuleID, Direction: ref.Direction, Protocol: ref.Protocol, PortRange: ref.PortRange, CIDR: ref.CIDR})
	want := fmt.Sprint(DefaultGroupInUse, Medium, RuleRef{Account: testAccount, Region: testRegion, GroupID: "sg-def", GroupName: "default"})
	if got != want || len(f.Reasons()) != 3 {
		t.Errorf("Build(default group): finding %s for sg-def = %s %q, want %s with 3 reasons", f.Kind, got, f.Reasons(), want)
	}
}

func TestBuildFindingFields(t *testing.T) {
	desc := `<script>alert(1)</script> =HYPERLINK("x") temp`
	c := buildCase{
		rules:   []collector.Rule{in("sgr-1", "tcp", 8000, 8080, "85.25.199.246/32", desc)},
		results: results(verdict("metadefender", "85.25.199.246", reputation.Malicious, "listed")),
		history: firstSeen("2026-01-02"),
	}
	r := Build(c.input())
	f := findFinding(r, SuspiciousSource, "sgr-1", "")
	if f == nil {
		t.Fatalf("Build(...): finding %s for sgr-1 = none, want one", SuspiciousSource)
	}
	got := []string{f.Ref().Account, f.Ref().Region, f.Ref().GroupID, f.Ref().GroupName, f.Ref().RuleID, f.Ref().Direction, f.Ref().Protocol, f.Ref().PortRange, f.Ref().CIDR, f.Ref().Description}
	want := []string{testAccount, testRegion, "sg-app", "app", "sgr-1", "ingress", "tcp", "8000-8080", "85.25.199.246/32", desc}
	if !slices.Equal(got, want) {
		t.Errorf("Build(...): finding %s for sgr-1 = fields %q, want %q", f.Kind, got, want)
	}
	if f.FirstSeen == nil || !f.FirstSeen.Equal(day("2026-01-02")) {
		t.Errorf("Build(...): finding %s for sgr-1 = first seen %v, want 2026-01-02", f.Kind, f.FirstSeen)
	}
	if f.Change != "" {
		t.Errorf("Build(...): finding %s for sgr-1 = change %q, want none", f.Kind, f.Change)
	}
	if len(f.Verdicts) != 1 || f.Verdicts[0].Provider != "metadefender" {
		t.Errorf("Build(...): finding %s for sgr-1 = verdicts %+v, want metadefender's", f.Kind, f.Verdicts)
	}
	s := findFinding(r, StaleSource, "sgr-1", "")
	if s == nil || s.FirstSeen == nil || s.FirstSeen == f.FirstSeen {
		t.Errorf("Build(...): finding %s for sgr-1 = %+v, want one with its own first seen", StaleSource, s)
	}

	// A rule naming a prefix list that could not be expanded shows the list as its CIDR.
	pl := rule("sg-def", "sgr-pl", collector.Ingress, "tcp", 22, 22, "", "")
	pl.PrefixList = &collector.PrefixListRef{ID: "pl-corp", Unresolved: "not expanded"}
	c = buildCase{groups: []collector.Group{group("sg-def", "default", collector.Unattached)}, rules: []collector.Rule{pl}}
	r = Build(c.input())
	if f := findFinding(r, DefaultGroupInUse, "", "sg-def"); f == nil || !strings.Contains(strings.Join(f.Reasons(), " "), "from pl-corp") {
		t.Errorf("Build(prefix list rule): finding %s for sg-def = %+v, want a reason naming pl-corp", DefaultGroupInUse, f)
	}
}

func TestBuildHistory(t *testing.T) {
	rules := []collector.Rule{
		in("sgr-old", "tcp", 22, 22, "0.0.0.0/0", ""),
		in("sgr-new", "tcp", 3389, 3389, "0.0.0.0/0", ""),
	}
	gone := []GoneRule{{RuleRef: RuleRef{Account: testAccount, Region: testRegion, GroupID: "sg-app", RuleID: "sgr-gone", CIDR: "24.48.0.1/32"}, FirstSeen: day("2026-01-01"), LastSeen: day("2026-11-20")}}
	c := buildCase{
		rules: rules,
		history: func(rs []collector.Rule) *HistoryView {
			h := &HistoryView{Previous: "run-41", FirstSeen: map[string]time.Time{}, New: map[string]bool{}, Gone: gone}
			for _, r := range rs {
				if r.ID == "sgr-new" {
					h.FirstSeen[RuleKey(r)] = testNow
					h.New[RuleKey(r)] = true
				} else {
					h.FirstSeen[RuleKey(r)] = day("2026-03-01")
				}
			}
			return h
		},
	}
	r := Build(c.input())
	checkReport(t, r)
	for _, tc := range []struct {
		rule   string
		seen   time.Time
		change Change
	}{
		{"sgr-old", day("2026-03-01"), ""},
		{"sgr-new", testNow, New},
	} {
		f := findFinding(r, OpenToWorld, tc.rule, "")
		switch {
		case f == nil:
			t.Errorf("Build(...): finding %s for %s = none, want one", OpenToWorld, tc.rule)
		case f.FirstSeen == nil || !f.FirstSeen.Equal(tc.seen) || f.Change != tc.change:
			t.Errorf("Build(...): finding %s for %s = first seen %v change %q, want %v %q", f.Kind, tc.rule, f.FirstSeen, f.Change, tc.seen, tc.change)
		}
	}
	if r.Run.Previous != "run-41" {
		t.Errorf("Build(...).Run.Previous = %q, want run-41", r.Run.Previous)
	}
	if len(r.Gone) != 1 || r.Gone[0].RuleID != "sgr-gone" {
		t.Errorf("Build(...).Gone = %+v, want %+v", r.Gone, gone)
	}
	if r.Summary.RulesNew != 1 || r.Summary.RulesGone != 1 {
		t.Errorf("Build(...).Summary rules new, gone = %d, %d, want 1, 1", r.Summary.RulesNew, r.Summary.RulesGone)
	}

	// Without a history, nothing is dated, new or gone.
	c.history = nil
	r = Build(c.input())
	for _, f := range r.Findings {
		if f.FirstSeen != nil || f.Change != "" {
			t.Errorf("Build(no history): finding %s for %s = first seen %v change %q, want none", f.Kind, f.Ref().RuleID, f.FirstSeen, f.Change)
		}
	}
	if r.Gone == nil || len(r.Gone) != 0 || r.Run.Previous != "" || r.Summary.RulesNew != 0 || r.Summary.RulesGone != 0 {
		t.Errorf("Build(no history) = gone %v, previous %q, summary %+v, want an empty gone list", r.Gone, r.Run.Previous, r.Summary)
	}
}

func TestBuildSummary(t *testing.T) {
	c := buildCase{
		groups: []collector.Group{group("sg-app", "app", collector.Attached)},
		rules: []collector.Rule{
			in("sgr-bad", "tcp", 22, 22, "85.25.199.246/32", "partner"),
			in("sgr-clean", "tcp", 443, 443, "94.73.144.9/32", "partner"),
			in("sgr-unknown", "tcp", 443, 443, "2a02:8010:6a2f::17/128", "partner"),
			in("sgr-wide", "tcp", 443, 443, "151.101.0.0/16", "CDN"),
			in("sgr-world", "tcp", 80, 80, "0.0.0.0/0", "web"),
			in("sgr-private", "tcp", 443, 443, "10.0.0.0/8", "VPC"),
		},
		results: results(
			verdict("blocklist", "85.25.199.246", reputation.Malicious, "listed"),
			verdict("blocklist", "94.73.144.9", reputation.Clean, ""),
			verdict("blocklist", "2a02:8010:6a2f::17", reputation.Unknown, "no loaded list has IPv6 entries"),
			verdict("blocklist", "151.101.0.0/16", reputation.Clean, ""),
		),
	}
	r := Build(c.input())
	checkReport(t, r)
	got := r.Summary
	if got.AddressesTotal != 4 || got.AddressesVetted != 3 || got.AddressesUnvetted != 1 {
		t.Errorf("Build(...).Summary addresses total, vetted, unvetted = %d, %d, %d, want 4, 3, 1", got.AddressesTotal, got.AddressesVetted, got.AddressesUnvetted)
	}
	wantKinds := map[Kind]int{SuspiciousSource: 1, StaleSource: 0, OpenToWorld: 1, WideRange: 1, OpenEgress: 0, ICMPOpen: 0, DefaultGroupInUse: 0, CrossAccountReference: 0, UnusedGroup: 0, RuleQuota: 0, KnownServiceRange: 0, Unvetted: 1, InvalidRule: 0}
	if fmt.Sprint(got.ByKind) != fmt.Sprint(wantKinds) {
		t.Errorf("Build(...).Summary.ByKind = %v, want %v", got.ByKind, wantKinds)
	}
	wantSev := map[Severity]int{Critical: 1, High: 0, Medium: 1, Low: 1, Info: 1}
	if fmt.Sprint(got.BySeverity) != fmt.Sprint(wantSev) {
		t.Errorf("Build(...).Summary.BySeverity = %v, want %v", got.BySeverity, wantSev)
	}
	if !r.Incomplete() {
		t.Errorf("Build(...).Incomplete() = false, want true")
	}
	if !slices.Equal(r.Run.Sources, []string{"test"}) || !slices.Equal(r.Run.Regions, []string{testRegion}) || !slices.Equal(r.Run.Accounts, []string{testAccount}) {
		t.Errorf("Build(...).Run = %+v, want the inventory's sources, regions and accounts", r.Run)
	}

	empty := Build(Input{Now: testNow})
	checkReport(t, empty)
	if empty.Findings == nil || len(empty.Findings) != 0 || empty.Summary.AddressesTotal != 0 || empty.Run.Skipped == nil {
		t.Errorf("Build(empty) = %+v, want no findings and empty lists", empty)
	}
}

func TestBuildSorting(t *testing.T) {
	groups := []collector.Group{group("sg-b", "b", collector.Attached), group("sg-a", "a", collector.Attached)}
	other := group("sg-a", "a", collector.Attached)
	other.Account = "000011112222"
	groups = append(groups, other)
	r1 := rule("sg-a", "sgr-2", collector.Ingress, "tcp", 22, 22, "0.0.0.0/0", "")
	r2 := rule("sg-a", "sgr-1", collector.Ingress, "tcp", 443, 443, "0.0.0.0/0", "")
	r3 := rule("sg-b", "sgr-3", collector.Ingress, "tcp", 22, 22, "0.0.0.0/0", "")
	r4 := rule("sg-a", "sgr-4", collector.Ingress, "tcp", 22, 22, "0.0.0.0/0", "")
	r4.Account = "000011112222"
	r5 := rule("sg-b", "sgr-5", collector.Egress, "tcp", 443, 443, "85.25.199.246/32", "x")
	r6 := rule("sg-b", "sgr-6", collector.Ingress, "tcp", 8443, 8443, "0.0.0.0/0", "")
	r7 := rule("sg-b", "sgr-7", collector.Ingress, "tcp", 80, 80, "24.48.0.1/32", "x")
	c := buildCase{
		groups:  groups,
		rules:   []collector.Rule{r3, r2, r7, r1, r6, r5, r4},
		results: results(verdict("blocklist", "85.25.199.246", reputation.Malicious, "listed"), verdict("blocklist", "24.48.0.1", reputation.Suspicious, "listed")),
	}
	r := Build(c.input())
	var got []string
	for _, f := range r.Findings {
		got = append(got, fmt.Sprintf("%s %s %s %s", f.Severity, f.Kind, f.Ref().Account, f.Ref().RuleID))
	}
	want := []string{
		"critical suspicious-source 111122223333 sgr-5",
		"critical open-to-world 000011112222 sgr-4",
		"critical open-to-world 111122223333 sgr-2",
		"critical open-to-world 111122223333 sgr-3",
		"high open-to-world 111122223333 sgr-6",
		"medium suspicious-source 111122223333 sgr-7",
		"low open-to-world 111122223333 sgr-1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Build(...) findings =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// exampleInput returns the Input of the example estate, vetted against the example
// blocklist, judged on 2026-11-21.
func exampleInput(t *testing.T) Input {
	t.Helper()
	var files []*collector.File
	for _, name := range []string{"security-groups.json", "network-interfaces.json", "prefix-lists.json"} {
		path := filepath.Join("..", "examples", name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := collector.ParseFile(name, data)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	inv := collector.FromFiles(files).Inventory(testNow, collector.Options{})
	list, err := reputation.LoadBlocklist(filepath.Join("..", "examples", "blocklist.netset"))
	if err != nil {
		t.Fatal(err)
	}
	var targets []reputation.Target
	for _, s := range inv.Public {
		switch s.Kind {
		case collector.KindAddress:
			targets = append(targets, reputation.AddressTarget(s.Address))
		case collector.KindPrefix:
			targets = append(targets, reputation.PrefixTarget(s.CIDR))
		}
	}
	vetter := reputation.NewVetter([]reputation.Provider{reputation.NewBlocklistProvider(list)}, reputation.Options{Now: func() time.Time { return testNow }})
	res, err := vetter.Vet(context.Background(), targets)
	if err != nil {
		t.Fatal(err)
	}
	return Input{Inventory: inv, Results: res, Now: testNow}
}

func TestBuildExampleEstate(t *testing.T) {
	in := exampleInput(t)
	r := Build(in)
	checkReport(t, r)
	// Every kind appears; unvetted too, since the blocklist has no IPv6 entries and the
	// estate has IPv6 sources. Invalid rules are the exception: the example is what the aws
	// CLI printed, and AWS holds no rule it cannot parse (TestBuildInvalidRules and the
	// collector's invalid-cidr fixture cover them). So are cross-account references: the
	// example is one account whose rules name only its own groups (TestBuildCrossAccount
	// covers them), and of known service ranges, which need owner ranges (TestBuildOwners).
	for _, k := range Kinds {
		if r.Summary.ByKind[k] == 0 && k != InvalidRule && k != CrossAccountReference && k != KnownServiceRange {
			t.Errorf("Build(example estate): no %s finding; findings: %s", k, findingList(r))
		}
	}

	idOf := func(groupName string, dir collector.Direction, target, desc string) string {
		for _, rl := range in.Inventory.Rules {
			if rl.GroupName == groupName && rl.Direction == dir && rl.Target() == target && (desc == "" || rl.Description == desc) {
				return rl.ID
			}
		}
		t.Fatalf("example estate: no %s rule of %s for %s", dir, groupName, target)
		return ""
	}
	groupID := func(name string) string {
		for _, g := range in.Inventory.Groups {
			if g.Name == name {
				return g.ID
			}
		}
		t.Fatalf("example estate: no group %s", name)
		return ""
	}
	var defaultVPC, stagingDefault string
	staging := in.Inventory.Groups[slices.IndexFunc(in.Inventory.Groups, func(g collector.Group) bool { return g.Name == "staging-web" })].VPC
	for _, g := range in.Inventory.Groups {
		for _, rl := range in.Inventory.Rules {
			if g.IsDefault() && rl.GroupID == g.ID && rl.Description == "John's home" {
				defaultVPC = g.ID
			}
		}
		if g.IsDefault() && g.VPC == staging {
			stagingDefault = g.ID // untouched: only the rules AWS gives it
		}
	}
	checkWants(t, r, []want{
		{kind: SuspiciousSource, rule: idOf("egress-restricted", collector.Egress, "85.25.199.246/32", ""), sev: Critical, reason: "85.25.199.246 is malicious according to blocklist"},
		{kind: SuspiciousSource, rule: idOf("vendor-access", collector.Ingress, "94.73.144.9/32", ""), sev: Critical},
		{kind: SuspiciousSource, rule: idOf("sftp", collector.Ingress, "41.71.171.50/32", ""), sev: Critical, reason: "41.71.171.0/24"},
		{kind: SuspiciousSource, rule: idOf("vendor-access", collector.Ingress, "185.50.196.126/32", ""), sev: High},
		{kind: StaleSource, rule: idOf("mongo", collector.Ingress, "24.48.0.1/32", "contractor Acme - bob (exp 2025-06-30)"), sev: Medium, reason: "the description says it expired on 2025-06-30"},
		{kind: StaleSource, rule: idOf("windows-jump", collector.Ingress, "82.132.216.17/32", ""), sev: Medium, reason: "expired on 2025-12-31"},
		{kind: StaleSource, rule: idOf("api-partners", collector.Ingress, "198.144.120.77/32", ""), sev: Low, reason: "redundant: rule " + idOf("api-partners", collector.Ingress, "198.144.120.0/24", "") + " allows 198.144.120.0/24 on the same ports"},
		{kind: StaleSource, rule: idOf("staging-db", collector.Ingress, "73.162.0.88/32", ""), sev: Low, reason: "the rule has no description"},
		{kind: OpenToWorld, rule: idOf("launch-wizard-1", collector.Ingress, "0.0.0.0/0", ""), sev: Critical, reason: "SSH (22) is open to the whole internet"},
		{kind: OpenToWorld, rule: idOf("web-alb", collector.Ingress, "0.0.0.0/0", "HTTPS from anywhere"), sev: Low},
		{kind: OpenToWorld, rule: idOf("partner-api", collector.Ingress, "0.0.0.0/0", ""), sev: High, reason: "8443"},
		{kind: OpenToWorld, rule: idOf("legacy-allow-all", collector.Ingress, "0.0.0.0/0", ""), sev: Critical},
		{kind: WideRange, rule: idOf("partner-api", collector.Ingress, "151.101.0.0/16", ""), sev: Medium, reason: "151.101.0.0/16 holds 65,536 addresses"},
		{kind: ICMPOpen, rule: idOf("monitoring", collector.Ingress, "0.0.0.0/0", "ping from anywhere"), sev: Medium},
		{kind: OpenEgress, rule: idOf("web-alb", collector.Egress, "0.0.0.0/0", ""), sev: Low},
		{kind: DefaultGroupInUse, group: defaultVPC, sev: Medium, reason: "allows TCP 22 from 81.2.69.142/32"},
		{kind: DefaultGroupInUse, group: stagingDefault, sev: Low, reason: "still has the rules AWS gives every default group"},
		{kind: UnusedGroup, group: groupID("staging-debug"), sev: Low},
		{kind: UnusedGroup, group: groupID("web-app")}, // attached
		{kind: RuleQuota, group: groupID("payment-webhooks"), sev: Low, reason: "56 of 60 inbound rules"},
		{kind: Unvetted, rule: idOf("vendor-access", collector.Ingress, "2a02:8010:6a2f::17/128", ""), sev: Info, reason: "no loaded list has IPv6 entries"},
		// Private and special-purpose ranges are neither vetted nor stale.
		{kind: StaleSource, rule: idOf("internal-only", collector.Ingress, "172.16.0.0/12", "")},
		{kind: StaleSource, rule: idOf("internal-only", collector.Ingress, "169.254.169.254/32", "")},
	})
	if r.Summary.AddressesUnvetted != 2 || r.Summary.AddressesTotal != len(in.Results) {
		t.Errorf("Build(example estate).Summary = %+v, want 2 unvetted of %d", r.Summary, len(in.Results))
	}
}

func TestAppendRuleKey(t *testing.T) {
	ref := in("sgr-ref", "tcp", 22, 22, "", "")
	ref.ReferencedGroup = &collector.GroupRef{GroupID: "sg-bastion", Account: testAccount}
	pl := out("sgr-pl", "tcp", 443, 443, "", "")
	pl.PrefixList = &collector.PrefixListRef{ID: "pl-s3", AWSManaged: true}
	bad := in("sgr-bad", "tcp", 22, 22, "", "")
	bad.Invalid = &collector.Invalid{Field: collector.FieldCIDR, Text: "300.1.2.3/32", Reason: "bad"}
	for _, r := range []collector.Rule{
		in("sgr-v4", "tcp", 22, 22, "24.48.0.1/32", ""),
		in("sgr-v6", "tcp", 22, 22, "2a02:8010:6a2f::17/128", ""),
		ref, pl, bad,
	} {
		if got, want := string(appendRuleKey(nil, &r)), RuleKey(r); got != want {
			t.Errorf("appendRuleKey(%s) = %q, want RuleKey %q", r.Target(), got, want)
		}
	}
}

// entry returns r as the entry cidr of the customer-managed prefix list pl-0c1 (office-ips)
// described desc.
func entry(r collector.Rule, desc string) collector.Rule {
	r.PrefixList = &collector.PrefixListRef{ID: "pl-0c1", Name: "office-ips", Owner: testAccount, EntryDescription: desc}
	return r
}

// TestBuildPrefixListEntries checks that every finding about an address from a
// customer-managed prefix list names the list and the entry, and says the fix is there.
func TestBuildPrefixListEntries(t *testing.T) {
	const fix = "of prefix list pl-0c1 (office-ips): remove or fix it there"
	runCases(t, []buildCase{
		{
			name:    "entry 85.25.199.246/32, malicious, on tcp 22",
			rules:   []collector.Rule{entry(in("sgr-pl", "tcp", 22, 22, "85.25.199.246/32", "offices"), "Leeds office")},
			results: results(verdict("blocklist", "85.25.199.246", reputation.Malicious, "listed")),
			want: []want{
				{kind: SuspiciousSource, rule: "sgr-pl", sev: Critical, reason: `the address comes from entry "Leeds office" ` + fix},
			},
		},
		{
			name:  "entry 24.48.0.1/32 expired, not looked up",
			rules: []collector.Rule{entry(in("sgr-pl", "tcp", 22, 22, "24.48.0.1/32", ""), "contractor exp 2025-06-30")},
			want: []want{
				{kind: StaleSource, rule: "sgr-pl", sev: Medium, reason: `the address comes from entry "contractor exp 2025-06-30" ` + fix},
				{kind: Unvetted, rule: "sgr-pl", sev: Info, reason: "the address comes from entry"},
			},
		},
		{
			name:  "entry 151.101.0.0/16 without description",
			rules: []collector.Rule{entry(in("sgr-pl", "tcp", 443, 443, "151.101.0.0/16", "offices"), "")},
			want: []want{
				{kind: WideRange, rule: "sgr-pl", sev: Medium, reason: "the range comes from entry 151.101.0.0/16 " + fix},
			},
		},
		{
			name:  "entry 0.0.0.0/0 on tcp 3389",
			rules: []collector.Rule{entry(in("sgr-pl", "tcp", 3389, 3389, "0.0.0.0/0", "offices"), "anywhere (temporary)")},
			want: []want{
				{kind: OpenToWorld, rule: "sgr-pl", sev: Critical, reason: `the range comes from entry "anywhere (temporary)" ` + fix},
			},
		},
		{
			name:  "entry 24.0.0.0/8 on tcp 22",
			rules: []collector.Rule{entry(in("sgr-pl", "tcp", 22, 22, "24.0.0.0/8", "offices"), "ISP range")},
			want: []want{
				{kind: OpenToWorld, rule: "sgr-pl", sev: Critical, reason: `the range comes from entry "ISP range" ` + fix},
			},
		},
		{
			name: "entries 24.48.0.0/24 and 24.48.0.1/32 of one rule on tcp 22",
			rules: []collector.Rule{
				entry(in("sgr-pl", "tcp", 22, 22, "24.48.0.0/24", "offices"), "office"),
				entry(in("sgr-pl", "tcp", 22, 22, "24.48.0.1/32", "offices"), "desk"),
			},
			want: []want{
				{kind: StaleSource, rule: "sgr-pl", sev: Low, reason: `redundant: entry 24.48.0.0/24 ("office") of the same prefix list pl-0c1 includes it`},
			},
		},
	})

	// The finding carries the list, and no reason names the rule as broader than itself.
	c := buildCase{rules: []collector.Rule{
		entry(in("sgr-pl", "tcp", 22, 22, "24.48.0.0/24", "offices"), "office"),
		entry(in("sgr-pl", "tcp", 22, 22, "24.48.0.1/32", "offices"), "desk"),
	}}
	r := Build(c.input())
	for _, f := range r.Findings {
		if f.Ref().PrefixList == nil || f.Ref().PrefixList.ID != "pl-0c1" || f.Ref().PrefixList.EntryDescription == "" {
			t.Errorf("Build(prefix list entries): finding %s for %s = prefix list %+v, want pl-0c1 with its entry", f.Kind, f.Ref().CIDR, f.Ref().PrefixList)
		}
		for _, reason := range f.Reasons() {
			if strings.Contains(reason, "rule sgr-pl") {
				t.Errorf("Build(prefix list entries): finding %s for %s = reason %q, naming its own rule", f.Kind, f.Ref().CIDR, reason)
			}
		}
	}
}

// TestBuildNearWorld checks that ingress prefixes covering much of the public address
// space, alone or together, are rated as the whole internet.
func TestBuildNearWorld(t *testing.T) {
	runCases(t, []buildCase{
		{
			name:  "ingress tcp 22 from 24.0.0.0/8",
			rules: []collector.Rule{in("sgr-8", "tcp", 22, 22, "24.0.0.0/8", "ISP")},
			want: []want{
				{kind: OpenToWorld, rule: "sgr-8", sev: Critical, reason: "SSH (22) is open to 24.0.0.0/8 (near-world)"},
				{kind: OpenToWorld, rule: "sgr-8", sev: Critical, reason: "24.0.0.0/8 holds 16,777,216 addresses: an IPv4 prefix of /8 or wider is near-world"},
				{kind: WideRange, rule: "sgr-8", sev: Medium},
			},
		},
		{
			name:  "ingress tcp 443 from 24.0.0.0/8",
			rules: []collector.Rule{in("sgr-8", "tcp", 443, 443, "24.0.0.0/8", "ISP")},
			want:  []want{{kind: OpenToWorld, rule: "sgr-8", sev: Low, reason: "HTTPS (443) is open to 24.0.0.0/8 (near-world), as a public web server needs"}},
		},
		{
			name:  "ingress tcp 22 from 24.0.0.0/9",
			rules: []collector.Rule{in("sgr-9", "tcp", 22, 22, "24.0.0.0/9", "ISP")},
			want:  []want{{kind: OpenToWorld, rule: "sgr-9"}, {kind: WideRange, rule: "sgr-9", sev: Medium}},
		},
		{
			name:  "egress tcp 22 to 24.0.0.0/8",
			rules: []collector.Rule{out("sgr-8", "tcp", 22, 22, "24.0.0.0/8", "ISP")},
			want:  []want{{kind: OpenToWorld, rule: "sgr-8"}, {kind: OpenEgress, rule: "sgr-8"}},
		},
		{
			name:  "ingress tcp 22 from 2a00::/12",
			rules: []collector.Rule{in("sgr-12", "tcp", 22, 22, "2a00::/12", "RIPE space")},
			want:  []want{{kind: OpenToWorld, rule: "sgr-12", sev: Critical, reason: "an IPv6 prefix of /16 or wider is near-world"}},
		},
		{
			name:  "ingress tcp 22 from 2a00::/17",
			rules: []collector.Rule{in("sgr-17", "tcp", 22, 22, "2a00::/17", "RIPE space")},
			want:  []want{{kind: OpenToWorld, rule: "sgr-17"}},
		},
		{
			name:  "ingress tcp 22 from 24.0.0.0/9 with near-world at /9",
			rules: []collector.Rule{in("sgr-9", "tcp", 22, 22, "24.0.0.0/9", "ISP")},
			opts:  Options{NearWorldIPv4Bits: 9},
			want:  []want{{kind: OpenToWorld, rule: "sgr-9", sev: Critical, reason: "an IPv4 prefix of /9 or wider"}},
		},
		{
			name: "ingress tcp 22 from 0.0.0.0/1 and 128.0.0.0/1",
			rules: []collector.Rule{
				in("sgr-low", "tcp", 22, 22, "0.0.0.0/1", "everyone, low half"),
				in("sgr-high", "tcp", 22, 22, "128.0.0.0/1", "everyone, high half"),
			},
			want: []want{
				{kind: OpenToWorld, rule: "sgr-low", sev: Critical, reason: "with rule sgr-high (128.0.0.0/1) on the same protocol and ports, the group allows every IPv4 address"},
				{kind: OpenToWorld, rule: "sgr-high", sev: Critical, reason: "with rule sgr-low (0.0.0.0/1) on the same protocol and ports, the group allows every IPv4 address"},
			},
		},
		{
			name: "ingress tcp 3306 from 24.0.0.0/9 and 24.128.0.0/9",
			rules: []collector.Rule{
				in("sgr-a", "tcp", 3306, 3306, "24.0.0.0/9", "ISP"),
				in("sgr-b", "tcp", 3306, 3306, "24.128.0.0/9", "ISP"),
			},
			want: []want{
				{kind: OpenToWorld, rule: "sgr-a", sev: Critical, reason: "with rule sgr-b (24.128.0.0/9) on the same protocol and ports, the group allows 16,777,216 IPv4 addresses, as many as an IPv4 /8 or more"},
				{kind: OpenToWorld, rule: "sgr-b", sev: Critical, reason: "MySQL (3306) is open to 24.128.0.0/9 (near-world)"},
			},
		},
		{
			name: "ingress tcp 3306 from 24.0.0.0/9 and 24.0.0.0/10, overlapping",
			rules: []collector.Rule{
				in("sgr-a", "tcp", 3306, 3306, "24.0.0.0/9", "ISP"),
				in("sgr-b", "tcp", 3306, 3306, "24.0.0.0/10", "ISP"),
			},
			want: []want{{kind: OpenToWorld, rule: "sgr-a"}, {kind: OpenToWorld, rule: "sgr-b"}},
		},
		{
			name: "ingress from 24.0.0.0/9 on tcp 22 and 24.128.0.0/9 on tcp 23",
			rules: []collector.Rule{
				in("sgr-a", "tcp", 22, 22, "24.0.0.0/9", "ISP"),
				in("sgr-b", "tcp", 23, 23, "24.128.0.0/9", "ISP"),
			},
			want: []want{{kind: OpenToWorld, rule: "sgr-a"}, {kind: OpenToWorld, rule: "sgr-b"}},
		},
		{
			name: "ingress tcp 22 from 24.0.0.0/9 in one group and 24.128.0.0/9 in another",
			groups: []collector.Group{
				group("sg-app", "app", collector.Attached),
				group("sg-other", "other", collector.Attached),
			},
			rules: []collector.Rule{
				in("sgr-a", "tcp", 22, 22, "24.0.0.0/9", "ISP"),
				rule("sg-other", "sgr-b", collector.Ingress, "tcp", 22, 22, "24.128.0.0/9", "ISP"),
			},
			want: []want{{kind: OpenToWorld, rule: "sgr-a"}, {kind: OpenToWorld, rule: "sgr-b"}},
		},
	})
}

func TestBuildUnusedGroup(t *testing.T) {
	ref := func(groupID, id, target string) collector.Rule {
		r := rule(groupID, id, collector.Ingress, "tcp", 5432, 5432, "", "")
		r.ReferencedGroup = &collector.GroupRef{GroupID: target}
		return r
	}
	runCases(t, []buildCase{
		{
			name:   "unattached group sg-old without references",
			groups: []collector.Group{group("sg-old", "old", collector.Unattached)},
			rules:  []collector.Rule{rule("sg-old", "sgr-1", collector.Ingress, "tcp", 22, 22, "24.48.0.1/32", "office")},
			want:   []want{{kind: UnusedGroup, group: "sg-old", sev: Low, reason: "the group is attached to no network interface and no other group's rules reference it"}},
		},
		{
			name:   "unattached group sg-old without rules",
			groups: []collector.Group{group("sg-old", "old", collector.Unattached)},
			want:   []want{{kind: UnusedGroup, group: "sg-old", sev: Low}},
		},
		{
			name:   "unattached group sg-db referenced by sg-app",
			groups: []collector.Group{group("sg-db", "db", collector.Unattached), group("sg-app", "app", collector.Attached)},
			rules:  []collector.Rule{ref("sg-app", "sgr-1", "sg-db")},
			want:   []want{{kind: UnusedGroup, group: "sg-db"}, {kind: UnusedGroup, group: "sg-app"}},
		},
		{
			name:   "unattached group sg-db referenced only by itself",
			groups: []collector.Group{group("sg-db", "db", collector.Unattached)},
			rules:  []collector.Rule{ref("sg-db", "sgr-1", "sg-db")},
			want:   []want{{kind: UnusedGroup, group: "sg-db", sev: Low}},
		},
		{
			name:   "group sg-old of unknown attachment",
			groups: []collector.Group{group("sg-old", "old", collector.AttachmentUnknown)},
			want:   []want{{kind: UnusedGroup, group: "sg-old"}},
		},
		{
			name:   "unattached default group",
			groups: []collector.Group{group("sg-def", "default", collector.Unattached)},
			want:   []want{{kind: UnusedGroup, group: "sg-def"}},
		},
	})
}

func TestBuildRuleQuota(t *testing.T) {
	// rules returns n rules of sg-app in direction dir, each allowing one address.
	rules := func(dir collector.Direction, n int) []collector.Rule {
		var out []collector.Rule
		for i := range n {
			cidr := netip.PrefixFrom(netip.AddrFrom4([4]byte{24, 48, 1, byte(i)}), 32).String()
			out = append(out, rule("sg-app", fmt.Sprintf("sgr-%s-%02d", dir, i), dir, "tcp", 443, 443, cidr, "partner"))
		}
		return out
	}
	// entries returns n entries of one prefix list rule of sg-app.
	entries := func(n int) []collector.Rule {
		var out []collector.Rule
		for i := range n {
			cidr := netip.PrefixFrom(netip.AddrFrom4([4]byte{24, 48, 2, byte(i)}), 32).String()
			out = append(out, entry(in("sgr-pl", "tcp", 443, 443, cidr, "partners"), "partner"))
		}
		return out
	}
	runCases(t, []buildCase{
		{
			name:  "54 ingress rules",
			rules: rules(collector.Ingress, 54),
			want:  []want{{kind: RuleQuota, group: "sg-app", sev: Low, reason: "54 of 60 inbound rules: "}},
		},
		{
			name:  "53 ingress rules",
			rules: rules(collector.Ingress, 53),
			want:  []want{{kind: RuleQuota, group: "sg-app"}},
		},
		{
			name:  "58 egress rules",
			rules: rules(collector.Egress, 58),
			want:  []want{{kind: RuleQuota, group: "sg-app", sev: Low, reason: "58 of 60 outbound rules"}},
		},
		{
			name:  "30 ingress and 30 egress rules",
			rules: append(rules(collector.Ingress, 30), rules(collector.Egress, 30)...),
			want:  []want{{kind: RuleQuota, group: "sg-app"}},
		},
		{
			name:  "one rule of a prefix list with 60 entries",
			rules: entries(60),
			want:  []want{{kind: RuleQuota, group: "sg-app"}},
		},
		{
			name:  "18 ingress rules with a quota of 20",
			rules: rules(collector.Ingress, 18),
			opts:  Options{RuleQuota: 20},
			want:  []want{{kind: RuleQuota, group: "sg-app", sev: Low, reason: "18 of 20 inbound rules"}},
		},
		{
			name:  "25 ingress rules with a quota of 20",
			rules: rules(collector.Ingress, 25),
			opts:  Options{RuleQuota: 20},
			want:  []want{{kind: RuleQuota, group: "sg-app", sev: Low, reason: "25 inbound rules, more than the quota of 20"}},
		},
	})
}

func TestReportIncomplete(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Report
		want bool
	}{
		{"complete", Report{}, false},
		{"an unvetted address", Report{Summary: Summary{AddressesUnvetted: 1}}, true},
		{"a skipped region", Report{Run: Run{Skipped: []collector.Skipped{{Region: "me-central-1", Reason: "not enabled"}}}}, true},
		{"an invalid rule", Report{Summary: Summary{ByKind: map[Kind]int{InvalidRule: 1}}}, true},
		{"no invalid rule", Report{Summary: Summary{ByKind: map[Kind]int{InvalidRule: 0, OpenToWorld: 3}}}, false},
	} {
		if got := tc.r.Incomplete(); got != tc.want {
			t.Errorf("Report{%s}.Incomplete() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestBuildWithoutPublicSources checks that Build finds each rule's sources from the rule
// itself: sgvet audit drops the inventory's list of public sources before the report is
// built, and the report must be the same.
func TestBuildWithoutPublicSources(t *testing.T) {
	in := exampleInput(t)
	want := Build(in)
	inv := *in.Inventory
	inv.Public = nil
	in.Inventory = &inv
	got := Build(in)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Build without public sources =\n%s\nwant\n%s", findingList(got), findingList(want))
	}
	if want.Summary.AddressesTotal == 0 || want.Summary.AddressesVetted == 0 || want.Summary.AddressesUnvetted == 0 {
		t.Errorf("summary %+v: want vetted and unvetted addresses in the example", want.Summary)
	}
}

// A suspicious-source finding makes the reasons that restate its verdicts as they are
// asked for, unless a verdict does not name its address; either way they read the same,
// and in the same order as the other reasons.
func TestBuildSuspiciousReasons(t *testing.T) {
	bad := []reputation.Verdict{
		verdict("metadefender", "85.25.199.246", reputation.Malicious, "listed by 3 sources"),
		verdict("blocklist", "85.25.199.246", reputation.Suspicious, "listed in firehol_level1 as 85.25.0.0/16"),
	}
	want := []string{
		"85.25.199.246 is malicious according to metadefender: listed by 3 sources",
		"85.25.199.246 is suspicious according to blocklist: listed in firehol_level1 as 85.25.0.0/16",
	}
	unnamed := slices.Clone(bad)
	for i := range unnamed {
		unnamed[i].Target = reputation.Target{}
	}
	for name, res := range map[string][]reputation.Result{
		"verdicts name the address": results(bad...),
		"verdicts name no address":  {{Target: bad[0].Target, Verdicts: unnamed}},
	} {
		t.Run(name, func(t *testing.T) {
			c := buildCase{rules: []collector.Rule{rule("sg-app", "sgr-1", collector.Ingress, "tcp", 443, 443, "85.25.199.246/32", "")}, results: res}
			f := findFinding(Build(c.input()), SuspiciousSource, "sgr-1", "")
			if f == nil {
				t.Fatal("Build(...): no suspicious-source finding")
			}
			if got := f.Reasons(); !slices.Equal(got, want) {
				t.Errorf("Reasons() = %q, want %q", got, want)
			}
			if name != "verdicts name the address" {
				return // a verdict without its address has no JSON
			}
			data, err := json.Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			var back Finding
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatal(err)
			}
			if got, ref := back.Reasons(), back.Ref(); !slices.Equal(got, want) || ref != f.Ref() {
				t.Errorf("JSON round trip = %+v %q, want %+v %q", ref, got, f.Ref(), want)
			}
		})
	}
}

// TestBuildByAccount checks that the summary counts each account's findings by severity,
// and lists an account of the run that has none with zeros.
func TestBuildByAccount(t *testing.T) {
	const other, quiet = "444455556666", "777788889999"
	inAccount := func(account string, r collector.Rule) collector.Rule {
		r.Account = account
		return r
	}
	groupIn := func(account, id string) collector.Group {
		g := group(id, id, collector.Attached)
		g.Account = account
		return g
	}
	inv := collector.Collection{
		Sources: []string{"test"},
		Regions: []string{testRegion},
		Groups:  []collector.Group{group("sg-app", "app", collector.Attached), groupIn(other, "sg-other"), groupIn(quiet, "sg-quiet")},
		Rules: []collector.Rule{
			in("sgr-ssh", "tcp", 22, 22, "0.0.0.0/0", "ssh"),
			in("sgr-wide", "tcp", 443, 443, "151.101.0.0/16", "CDN"),
			inAccount(other, rule("sg-other", "sgr-web", collector.Ingress, "tcp", 80, 80, "0.0.0.0/0", "web")),
			inAccount(other, rule("sg-other", "sgr-rdp", collector.Ingress, "tcp", 3389, 3389, "0.0.0.0/0", "rdp")),
			inAccount(quiet, rule("sg-quiet", "sgr-vpc", collector.Ingress, "tcp", 443, 443, "10.0.0.0/8", "VPC")),
		},
	}.Inventory(testNow, collector.Options{})
	r := Build(Input{Inventory: inv, Results: results(verdict("blocklist", "151.101.0.0/16", reputation.Clean, "")), Now: testNow})
	checkReport(t, r)
	want := map[string]map[Severity]int{
		testAccount: {Critical: 1, High: 0, Medium: 1, Low: 0, Info: 0},
		other:       {Critical: 1, High: 0, Medium: 0, Low: 1, Info: 0},
		quiet:       {Critical: 0, High: 0, Medium: 0, Low: 0, Info: 0},
	}
	if !reflect.DeepEqual(r.Summary.ByAccount, want) {
		t.Errorf("Build(%q).Summary.ByAccount = %v, want %v", inv.Accounts, r.Summary.ByAccount, want)
	}
}
