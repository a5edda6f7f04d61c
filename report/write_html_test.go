package report

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/reputation"
)

// scaleReport returns a report of n findings made like those of a large estate: most of
// them stale sources, the rest suspicious sources with two providers' verdicts, exposure
// and unvetted addresses, about one rule in 200 naming a prefix list and one in 1,000
// invalid. Every finding has a rule, an address and an evidence of its own, so that the
// page is as large as such a report can make it.
func scaleReport(n int) *Report {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	accounts := []string{"111122223333", "444455556666"}
	regions := []string{"eu-west-1", "us-east-1", "ap-southeast-2"}
	ports := []string{"22", "443", "3306", "8080", "5432", "80"}
	descriptions := []string{
		"", "", "", "office VPN", "partner NAT", "CI runners",
		"exp 2025-06-30", "contractor Acme - bob (exp 2025-06-30)", "valid until 2027-01-31",
		"temp debug", "John's home", "added 2024-01-10 for the vendor", "Leeds office 3",
		"monitoring probe", "HTTPS from the payment provider",
	}
	r := &Report{
		Schema:  Schema,
		Run:     Run{ID: "20261121T090000Z-5ca1", Started: now, Finished: now.Add(4 * time.Minute), Sources: []string{"aws"}, Regions: regions, Accounts: accounts},
		Summary: Summary{ByKind: map[Kind]int{}, BySeverity: map[Severity]int{}},
	}
	for i := range n {
		addr := netip.AddrFrom4([4]byte{20, byte(i >> 16), byte(i >> 8), byte(i)})
		g := i / 20
		f := Finding{
			Kind: StaleSource, Severity: Low,
			ref: &RuleRef{
				Account: accounts[g%2], Region: regions[g%3],
				GroupID: fmt.Sprintf("sg-%017x", g), GroupName: fmt.Sprintf("app-%d", g),
				RuleID: fmt.Sprintf("sgr-%017x", i), Direction: "ingress", Protocol: "tcp",
				PortRange: ports[i%len(ports)], CIDR: addr.String() + "/32",
				Description: descriptions[i%len(descriptions)],
			},
			FirstSeen: new(now.AddDate(0, 0, -(i % 400))),
		}
		if i%50 == 0 {
			f.Change = New
		}
		verdict := func(provider string, status reputation.Status) reputation.Verdict {
			return reputation.Verdict{Provider: provider, Target: reputation.AddressTarget(addr), Status: status, CheckedAt: now}
		}
		switch k := i % 100; {
		case k < 60:
			switch f.Ref().Description {
			case "":
				f.reasons = []string{"the rule has no description"}
			case "exp 2025-06-30", "contractor Acme - bob (exp 2025-06-30)":
				f.Severity = Medium
				f.reasons = []string{"the description says it expired on 2025-06-30"}
			default:
				f.reasons = []string{fmt.Sprintf("the description has a temporary or personal marker and the rule was first seen %d days ago", 90+i%400)}
			}
		case k < 75:
			f.Kind, f.Severity = SuspiciousSource, High
			bl := verdict("blocklist", reputation.Malicious)
			bl.Evidence = "listed in firehol_level1 as " + addr.String()
			md := verdict("metadefender", reputation.Malicious)
			md.Score, md.Categories, md.Country = new(2), []string{"botnet", "scanner"}, "NL"
			md.Evidence = "listed by 2 of 6 sources: webroot, firehol; see https://metadefender.com/results/ip/" + addr.String()
			f.Verdicts = []reputation.Verdict{md, bl}
			f.reasons = []string{addr.String() + " is malicious according to blocklist: " + bl.Evidence}
		case k < 85:
			f.Kind, f.Severity, f.ref.CIDR = OpenToWorld, Critical, "0.0.0.0/0"
			f.reasons = []string{"SSH (22) is open to the whole internet"}
		case k < 90:
			f.Kind, f.Severity = WideRange, Medium
			f.ref.CIDR = netip.PrefixFrom(addr, 16).Masked().String()
			f.reasons = []string{f.ref.CIDR + " holds 65,536 addresses, more than the 256 vetted one by one; it was checked only against offline lists"}
		case k < 95:
			f.Kind, f.Severity = Unvetted, Info
			md := verdict("metadefender", reputation.Unknown)
			md.Reason = "daily quota of 1000 lookups reached"
			f.Verdicts = []reputation.Verdict{md}
			f.reasons = []string{addr.String() + " was not looked up by any provider"}
		default:
			f.Kind, f.Severity, f.ref.Direction, f.ref.Protocol, f.ref.PortRange, f.ref.CIDR = OpenEgress, Low, "egress", "all", "all", "0.0.0.0/0"
			f.reasons = []string{"all traffic may leave for anywhere on the internet"}
		}
		if i%200 == 7 {
			f.ref.PrefixList = &collector.PrefixListRef{ID: fmt.Sprintf("pl-%017x", i/1000), Name: "partners", Owner: accounts[0], EntryDescription: "partner office " + addr.String()}
		}
		if i%1000 == 9 {
			f.Kind, f.Severity = InvalidRule, High
			f.ref.Invalid = &collector.Invalid{Field: collector.FieldPorts, Text: "70000-80", Reason: "70000 is not a port"}
			f.reasons = []string{"the rule's ports could not be read, so it was not audited"}
		}
		r.Findings = append(r.Findings, f)
		r.Summary.ByKind[f.Kind]++
		r.Summary.BySeverity[f.Severity]++
	}
	return r
}

// htmlScalePage names a file to write a page of htmlScaleFindings findings to, for
// scripts/html-scale.sh to time in a browser.
var (
	htmlScalePage     = flag.String("html-scale-page", "", "write an HTML report of -html-scale-findings findings to this file")
	htmlScaleFindings = flag.Int("html-scale-findings", 100_000, "the number of findings of the -html-scale-page report")
)

// TestWriteHTMLScalePage writes the page that -html-scale-page asks for.
func TestWriteHTMLScalePage(t *testing.T) {
	if *htmlScalePage == "" {
		t.Skip("no -html-scale-page")
	}
	out := renderFormat(t, "html", WriterOptions{}, scaleReport(*htmlScaleFindings))
	if err := os.WriteFile(*htmlScalePage, out, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d findings, %d bytes", *htmlScaleFindings, len(out))
}

func TestWriteHTML(t *testing.T) {
	r := reportFixture()
	out := string(renderFormat(t, "html", WriterOptions{}, r))
	if strings.Contains(out, "<script>alert(1)</script>") {
		t.Error("HTML has the description's script unescaped")
	}
	if strings.Contains(out, "\x1b") {
		t.Error("HTML has a terminal escape")
	}
	external := regexp.MustCompile(`(?i)\b(src|href|action|formaction|srcset|poster|data|xlink:href|background)\s*=\s*["']?\s*(https?:|//)`)
	if m := external.FindString(out); m != "" {
		t.Errorf("HTML refers to an external resource: %s", m)
	}
	for _, bad := range []string{"@import", "url(", "<link", "<img", "<iframe", "<object", "<embed", "<base", "eval(", "innerhtml", "new function"} {
		if strings.Contains(strings.ToLower(out), bad) {
			t.Errorf("HTML has %q", bad)
		}
	}
	if want := fmt.Sprintf("<h2 id=\"findings-title\">Findings (%d)</h2>", len(r.Findings)); !strings.Contains(out, want) {
		t.Errorf("HTML does not count the findings: no %s", want)
	}

	// Without a script, the page says that the list needs one, and shows no empty table
	// nor controls that do nothing.
	if !regexp.MustCompile(`<noscript><p class="noscript">The list of findings needs JavaScript\.`).MatchString(out) {
		t.Error("HTML does not say that the findings need JavaScript")
	}
	for _, el := range []string{`<form class="controls" id="controls" hidden>`, `<div class="scroll" id="findings-view" hidden>`, `<p class="more" id="more" hidden>`} {
		if !strings.Contains(out, el) {
			t.Errorf("HTML lacks %s: it should be hidden until the script shows it", el)
		}
	}

	// The policy allows exactly the page's style sheet and script; the data block is not
	// a script, and the policy needs no exception for it.
	csp := regexp.MustCompile(`<meta http-equiv="Content-Security-Policy" content="([^"]*)">`).FindStringSubmatch(out)
	if csp == nil {
		t.Fatal("HTML has no Content-Security-Policy")
	}
	policy := html.UnescapeString(csp[1])
	if !strings.Contains(policy, "default-src 'none'") {
		t.Errorf("policy %q does not default to none", policy)
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "unsafe-hashes", "nonce-", "strict-dynamic", "data:", "blob:", "http"} {
		if strings.Contains(policy, bad) {
			t.Errorf("policy %q allows %s", policy, bad)
		}
	}
	for _, el := range []struct{ tag, directive string }{{"style", "style-src"}, {"script", "script-src"}} {
		blocks := regexp.MustCompile(`(?s)<`+el.tag+`>(.*?)</`+el.tag+`>`).FindAllStringSubmatch(out, -1)
		if len(blocks) != 1 {
			t.Fatalf("HTML has %d <%s> elements, want 1", len(blocks), el.tag)
		}
		sum := sha256.Sum256([]byte(blocks[0][1]))
		want := el.directive + " 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		if !strings.Contains(policy, want) {
			t.Errorf("policy %q lacks %q", policy, want)
		}
	}
	if n := strings.Count(strings.ToLower(out), "<script"); n != 2 {
		t.Errorf("HTML has %d script elements, want 2 (the script and the data block)", n)
	}

	// The chart has a bar per severity, the longest for the most findings.
	bars := regexp.MustCompile(`<rect class="bar sev-(\w+)" x="\d+" y="\d+" width="(\d+)"`).FindAllStringSubmatch(out, -1)
	if len(bars) != len(Severities) {
		t.Fatalf("chart has %d bars, want %d", len(bars), len(Severities))
	}
	if bars[2][1] != "medium" || bars[2][2] != strconv.Itoa(chartBarMax) {
		t.Errorf("medium bar = %q, want the longest (%d)", bars[2][0], chartBarMax)
	}
}

// htmlShown is what the page shows of a finding, as report.js reads it from the data block.
type htmlShown struct {
	Severity, Kind, Account, Region, GroupID, GroupName, RuleID, Direction, Ports, CIDR string
	Description, FirstSeen, Change                                                      string
	Reasons, Verdicts                                                                   []string
	PrefixList, Invalid                                                                 []string
}

// htmlDataBlock returns the content of the page's data block, failing t if there is not
// exactly one.
func htmlDataBlock(t *testing.T, page string) string {
	t.Helper()
	const open = `<script type="application/json" id="findings-data">`
	if n := strings.Count(page, open); n != 1 {
		t.Fatalf("HTML has %d data blocks, want 1", n)
	}
	rest := page[strings.Index(page, open)+len(open):]
	end := strings.Index(strings.ToLower(rest), "</script")
	if end < 0 {
		t.Fatal("HTML data block does not end")
	}
	return rest[:end]
}

// htmlShownFindings decodes the page's data block as report.js does.
func htmlShownFindings(t *testing.T, page string) []htmlShown {
	t.Helper()
	var doc struct {
		Strings     []string
		Groups      [][]int
		Verdicts    [][]int
		PrefixLists [][]int
		Invalid     [][]int
		Findings    [][]json.RawMessage
	}
	d := json.NewDecoder(strings.NewReader(htmlDataBlock(t, page)))
	d.DisallowUnknownFields()
	if err := d.Decode(&doc); err != nil {
		t.Fatalf("HTML data block: %v", err)
	}
	texts := func(ns []int) []string {
		var out []string
		for _, n := range ns {
			out = append(out, doc.Strings[n])
		}
		return out
	}
	var shown []htmlShown
	for _, raw := range doc.Findings {
		if len(raw) != 14 {
			t.Fatalf("HTML data block: finding of %d fields, want 14", len(raw))
		}
		var n [12]int
		for i := range n {
			if err := json.Unmarshal(raw[i], &n[i]); err != nil {
				t.Fatalf("HTML data block: field %d: %v", i, err)
			}
		}
		var reasons, verdicts []int
		if err := json.Unmarshal(raw[12], &reasons); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw[13], &verdicts); err != nil {
			t.Fatal(err)
		}
		g := texts(doc.Groups[n[2]])
		s := htmlShown{
			Severity: doc.Strings[n[0]], Kind: doc.Strings[n[1]],
			Account: g[0], Region: g[1], GroupID: g[2], GroupName: g[3],
			RuleID: doc.Strings[n[3]], Direction: doc.Strings[n[4]], Ports: doc.Strings[n[5]],
			CIDR: doc.Strings[n[6]], Description: doc.Strings[n[7]],
			FirstSeen: doc.Strings[n[8]], Change: doc.Strings[n[9]],
			Reasons: texts(reasons),
		}
		for _, v := range verdicts {
			s.Verdicts = append(s.Verdicts, strings.Join(texts(doc.Verdicts[v]), "|"))
		}
		if n[10] > 0 {
			p := doc.PrefixLists[n[10]-1]
			s.PrefixList = append(texts(p[:4]), strconv.Itoa(p[4]))
		}
		if n[11] > 0 {
			s.Invalid = texts(doc.Invalid[n[11]-1])
		}
		shown = append(shown, s)
	}
	return shown
}

// wantShown is what the page should show of f.
func wantShown(f Finding) htmlShown {
	s := htmlShown{
		Severity: string(f.Severity), Kind: string(f.Kind),
		Account: f.Ref().Account, Region: f.Ref().Region, GroupID: f.Ref().GroupID, GroupName: f.Ref().GroupName,
		RuleID: f.Ref().RuleID, Direction: f.Ref().Direction, Ports: protoPorts(f.Ref().Protocol, f.Ref().PortRange),
		CIDR: f.Ref().CIDR, Description: f.Ref().Description, FirstSeen: dateOf(f.FirstSeen),
		Change: string(f.Change), Reasons: f.Reasons(),
	}
	for _, v := range f.Verdicts {
		checked := "checked " + timeText(v.CheckedAt)
		if v.Cached {
			checked += ", from the cache"
		}
		detail := strings.Join(v.Categories, ", ")
		if v.Country != "" {
			detail += "; " + v.Country
		}
		s.Verdicts = append(s.Verdicts, strings.Join([]string{verdictClass(v.Status), verdictText(v), detail, v.Evidence, checked}, "|"))
	}
	if p := f.Ref().PrefixList; p != nil {
		managed := "0"
		if p.AWSManaged {
			managed = "1"
		}
		s.PrefixList = []string{p.ID, p.Name, p.EntryDescription, p.Unresolved, managed}
	}
	if inv := f.Ref().Invalid; inv != nil {
		s.Invalid = []string{inv.Field.String(), inv.Text, inv.Reason}
	}
	// Every text is shown on one line.
	v := reflect.ValueOf(&s).Elem()
	for i := range v.NumField() {
		switch x := v.Field(i).Addr().Interface().(type) {
		case *string:
			*x = OneLine(*x)
		case *[]string:
			if *x != nil {
				*x = oneLines(*x)
			}
		}
	}
	return s
}

// TestWriteHTMLData checks that the data block holds everything the page shows of every
// finding, in report order (the most serious first).
func TestWriteHTMLData(t *testing.T) {
	r := reportFixture()
	r.Findings = append(r.Findings,
		Finding{Kind: StaleSource, Severity: Low, ref: &RuleRef{
			Account: "111111111111", Region: "eu-west-1", GroupID: "sg-0a1b2c3d4e5f60718", GroupName: "bastion",
			RuleID: "sgr-0aa11bb22cc33dd4c", Direction: "ingress", Protocol: "tcp", PortRange: "443",
			CIDR: "198.51.100.64/27", Description: "partners",
			PrefixList: &collector.PrefixListRef{ID: "pl-0123456789abcdef0", Name: "partner-offices", Owner: "111111111111", EntryDescription: "Leeds office (temp)"},
		}, reasons: []string{"the prefix list entry's description has a temporary marker (temp)"}},
		Finding{Kind: InvalidRule, Severity: High, ref: &RuleRef{
			Account: "222222222222", Region: "us-east-1", GroupID: "sg-01234567890abcdef", GroupName: "partners",
			RuleID: "sgr-01234567890abcdf1", Direction: "ingress", Protocol: "tcp", PortRange: "",
			CIDR: "10.0.0.0/8", Invalid: &collector.Invalid{Field: collector.FieldPorts, Text: "70000-80", Reason: "70000 is not a port"},
		}, reasons: []string{"the rule's ports could not be read"}},
		Finding{Kind: OpenToWorld, Severity: High, ref: &RuleRef{
			Account: "222222222222", Region: "us-east-1", GroupID: "sg-01234567890abcdef",
			RuleID: "sgr-01234567890abcdf2", Direction: "ingress", Protocol: "tcp", PortRange: "9200",
			CIDR: "pl-aws0000000000000", PrefixList: &collector.PrefixListRef{ID: "pl-aws0000000000000", AWSManaged: true, Unresolved: "the list's entries could not be read"},
		}, reasons: []string{"an AWS-managed prefix list is allowed to 9200"}},
	)
	out := string(renderFormat(t, "html", WriterOptions{}, r))
	var want []htmlShown
	for _, g := range groupBySeverity(r.Findings) {
		for _, f := range g.Findings {
			want = append(want, wantShown(f))
		}
	}
	got := htmlShownFindings(t, out)
	if len(got) != len(want) {
		t.Fatalf("HTML data block has %d findings, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("HTML data block finding %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}

// TestWriteHTMLHostileText checks that no text of a report can end the data block, open
// a comment or a script in it, or reach the page unescaped.
func TestWriteHTMLHostileText(t *testing.T) {
	hostile := []string{
		"</script><script>alert(1)</script>",
		"</SCRIPT ><script>alert(1)//",
		"<!--<script>",
		"-->]]>\"}]}",
		"a\u2028b\u2029c",
		"<img src=x onerror=alert(1)>&amp;",
	}
	for _, h := range hostile {
		t.Run(h, func(t *testing.T) {
			r := reportFixture()
			f := &r.Findings[0]
			f.ref.Description, f.ref.GroupName, f.ref.RuleID, f.ref.CIDR = h, h, h, h
			f.reasons = []string{h}
			f.Verdicts[0].Evidence = h
			f.Verdicts[0].Categories = []string{h}
			f.ref.PrefixList = &collector.PrefixListRef{ID: h, Name: h, EntryDescription: h, Unresolved: h}
			f.ref.Invalid = &collector.Invalid{Field: collector.FieldCIDR, Text: h, Reason: h}
			r.Run.ID, r.Run.Sources = h, []string{h}
			out := string(renderFormat(t, "html", WriterOptions{}, r))

			block := htmlDataBlock(t, out)
			for _, bad := range []string{"<", ">", "&", "\u2028", "\u2029"} {
				if strings.Contains(block, bad) {
					t.Errorf("HTML data block has %q", bad)
				}
			}
			if n := strings.Count(strings.ToLower(out), "<script"); n != 2 {
				t.Errorf("HTML has %d script elements, want 2", n)
			}
			if strings.Contains(out, "<!--") || strings.Contains(out, "<img") {
				t.Error("HTML has the text unescaped")
			}
			got := htmlShownFindings(t, out)
			if want := wantShown(*f); !reflect.DeepEqual(got[0], want) {
				t.Errorf("HTML data block finding 0:\n got %+v\nwant %+v", got[0], want)
			}
		})
	}
}

// htmlSizeLimit is the most bytes a page of 100,000 findings may take.
const htmlSizeLimit = 15_000_000

func TestWriteHTMLSize(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a report of 100,000 findings")
	}
	r := scaleReport(100_000)
	var b bytes.Buffer
	if err := (htmlWriter{}).Write(&b, r); err != nil {
		t.Fatal(err)
	}
	if b.Len() >= htmlSizeLimit {
		t.Errorf("Write(html) of 100,000 findings: %d bytes, want under %d", b.Len(), htmlSizeLimit)
	}
	if !json.Valid([]byte(htmlDataBlock(t, b.String()))) {
		t.Error("Write(html) of 100,000 findings: the data block is not JSON")
	}
}

func BenchmarkWriteHTML(b *testing.B) {
	for _, n := range []int{24_000, 100_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			r := scaleReport(n)
			var out bytes.Buffer
			for b.Loop() {
				out.Reset()
				if err := (htmlWriter{}).Write(&out, r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out.Len()), "bytes")
		})
	}
}

func TestProsePieces(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []htmlPiece
	}{
		{"", nil},
		{"office vpn", []htmlPiece{{Text: "office vpn"}}},
		{"prefix list pl-e1950a249cd095fc8", []htmlPiece{{Text: "prefix list "}, {Text: "pl-e1950a249cd095fc8", Keep: true}}},
		{"41.71.171.50/32 is listed in sg-1 and sg-2 now", []htmlPiece{
			{Text: "41.71.171.50/32", Keep: true}, {Text: " is listed in "}, {Text: "sg-1", Keep: true},
			{Text: " and "}, {Text: "sg-2", Keep: true}, {Text: " now"}}},
		{"two  spaces", []htmlPiece{{Text: "two  spaces"}}},
	} {
		if got := prosePieces(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("prosePieces(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestWriteHTMLAccounts(t *testing.T) {
	const (
		counts = `<tr><td>222222222222</td><td class="num">2</td><td class="num">0</td><td class="num">0</td><td class="num">2</td><td class="num">0</td><td class="num">0</td></tr>`
		filter = `<select id="filter-account"><option value="">all</option><option>111111111111</option><option>222222222222</option></select>`
	)
	for _, tt := range []struct {
		name string
		r    *Report
		want bool
	}{
		{"one account", oneAccountFixture(), false},
		{"two accounts", reportFixture(), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := string(renderFormat(t, "html", WriterOptions{}, tt.r))
			if got := strings.Contains(out, counts); got != tt.want {
				t.Errorf("Write(html, %q) counts 222222222222's findings = %v, want %v", tt.name, got, tt.want)
			}
			if got := strings.Contains(out, filter); got != tt.want {
				t.Errorf("Write(html, %q) has the account filter = %v, want %v", tt.name, got, tt.want)
			}
			if got := strings.Contains(out, `id="filter-account"`); got != tt.want {
				t.Errorf("Write(html, %q) has a filter-account element = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}
