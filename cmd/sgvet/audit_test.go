package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgvet/sgvet/internal/fakeprovider"
	"github.com/sgvet/sgvet/report"
)

// exampleArgs is the README's main command.
var exampleArgs = []string{"audit",
	"--input", "../../examples/security-groups.json",
	"--input", "../../examples/network-interfaces.json",
	"--input", "../../examples/prefix-lists.json",
	"--blocklist", "../../examples/blocklist.netset"}

func decodeReport(t *testing.T, out string) report.Report {
	t.Helper()
	var r report.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out)
	}
	return r
}

// findings returns the findings of kind about the rule with cidr in group name.
func findings(r report.Report, kind report.Kind, group, cidr string) []report.Finding {
	var out []report.Finding
	for _, f := range r.Findings {
		if f.Kind == kind && (group == "" || f.Ref().GroupName == group) && (cidr == "" || f.Ref().CIDR == cidr) {
			out = append(out, f)
		}
	}
	return out
}

func TestAuditExample(t *testing.T) {
	isolateAWS(t)
	isolateProviders(t)
	res := sgvet(t, "", append(exampleArgs, "--no-cache", "--format", "json")...)
	if res.code != exitFindings {
		t.Fatalf("exit %d, want %d; stderr: %s", res.code, exitFindings, res.stderr)
	}
	r := decodeReport(t, res.stdout)
	if r.Schema != report.Schema || r.Run.ID == "" || r.Run.Finished.Before(r.Run.Started) {
		t.Errorf("run = %+v", r.Run)
	}
	// AWS holds no rule it cannot parse, so the example, printed by the aws CLI, has no
	// invalid rule; it is one account whose rules name only its own groups; and known service
	// ranges need --owner-ranges (TestAuditOwnerRanges).
	for _, k := range report.Kinds {
		if r.Summary.ByKind[k] == 0 && k != report.InvalidRule && k != report.CrossAccountReference && k != report.KnownServiceRange {
			t.Errorf("the example shows no %s finding", k)
		}
	}
	checks := []struct {
		kind        report.Kind
		group, cidr string
		severity    report.Severity
	}{
		{report.SuspiciousSource, "egress-restricted", "85.25.199.246/32", report.Critical},
		{report.OpenToWorld, "launch-wizard-1", "0.0.0.0/0", report.Critical},
		{report.StaleSource, "mongo", "24.48.0.1/32", report.Medium},
		{report.WideRange, "partner-api", "151.101.0.0/16", report.Medium},
	}
	for _, c := range checks {
		fs := findings(r, c.kind, c.group, c.cidr)
		if len(fs) == 0 || fs[0].Severity != c.severity || len(fs[0].Reasons()) == 0 {
			t.Errorf("%s in %s for %s = %+v, want one at %s with reasons", c.kind, c.group, c.cidr, fs, c.severity)
		}
	}

	// Every format renders the example.
	for _, format := range report.Formats {
		res := sgvet(t, "", append(exampleArgs, "--no-cache", "--format", format)...)
		if res.code != exitFindings || len(res.stdout) == 0 {
			t.Errorf("--format %s: exit %d, %d bytes; stderr: %s", format, res.code, len(res.stdout), res.stderr)
		}
	}
}

func TestAuditExitCodes(t *testing.T) {
	isolateAWS(t)
	isolateProviders(t)
	list := writeFile(t, "list.txt", "94.73.144.0/24\n")
	group := func(cidr, desc string, port int) string {
		return `{"SecurityGroups":[{"GroupId":"sg-1","GroupName":"app","VpcId":"vpc-1","OwnerId":"123456789012",
			"IpPermissions":[{"IpProtocol":"tcp","FromPort":` + itoa(port) + `,"ToPort":` + itoa(port) + `,"IpRanges":[{"CidrIp":"` + cidr + `","Description":"` + desc + `"}]}],
			"IpPermissionsEgress":[]}]}`
	}
	clean := writeFile(t, "clean.json", group("81.2.69.142/32", "office", 443))
	listed := writeFile(t, "listed.json", group("94.73.144.9/32", "office", 443))
	ipv6 := writeFile(t, "v6.json", group("2a02:8010:6a2f::17/128", "office", 443))
	noDescription := writeFile(t, "nodesc.json", group("81.2.69.142/32", "", 443))
	invalidCIDR := writeFile(t, "invalid.json", group("300.1.2.3/32", "office", 443))
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"clean", []string{"--input", clean, "--blocklist", list}, exitOK},
		{"listed", []string{"--input", listed, "--blocklist", list}, exitFindings},
		{"listed below fail-on", []string{"--input", listed, "--blocklist", list, "--fail-on", "critical"}, exitOK},
		{"fail-on none", []string{"--input", listed, "--blocklist", list, "--fail-on", "none"}, exitOK},
		{"low finding, fail-on low", []string{"--input", noDescription, "--blocklist", list, "--fail-on", "low"}, exitFindings},
		{"low finding, fail-on high", []string{"--input", noDescription, "--blocklist", list}, exitOK},
		{"unvetted", []string{"--input", ipv6, "--blocklist", list}, exitIncomplete},
		{"no provider", []string{"--input", clean}, exitIncomplete},
		{"invalid rule", []string{"--input", invalidCIDR, "--blocklist", list}, exitIncomplete},
		{"invalid rule, fail-on low", []string{"--input", invalidCIDR, "--blocklist", list, "--fail-on", "low"}, exitIncomplete},
		{"bad fail-on", []string{"--input", clean, "--fail-on", "severe"}, exitUsage},
		{"bad format", []string{"--input", clean, "--format", "pdf"}, exitUsage},
		{"missing input", []string{"--input", filepath.Join(t.TempDir(), "none.json")}, exitUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"audit", "--no-cache", "--format", "json"}, tc.args...)
			res := sgvet(t, "", args...)
			if res.code != tc.code {
				t.Errorf("sgvet %q exited %d, want %d; stderr: %s\n%s", args, res.code, tc.code, res.stderr, res.stdout)
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestAuditEscapesHostileDescriptions(t *testing.T) {
	isolateAWS(t)
	isolateProviders(t)
	in := writeFile(t, "hostile.json", `{"SecurityGroups":[{"GroupId":"sg-1","GroupName":"app","VpcId":"vpc-1","OwnerId":"123456789012",
		"IpPermissions":[
			{"IpProtocol":"tcp","FromPort":22,"ToPort":22,"IpRanges":[{"CidrIp":"81.2.69.142/32","Description":"<script>alert(1)</script> temp"}]},
			{"IpProtocol":"tcp","FromPort":22,"ToPort":22,"IpRanges":[{"CidrIp":"81.2.69.143/32","Description":"=HYPERLINK(\"http://x\") exp 2025-01-01"}]}],
		"IpPermissionsEgress":[]}]}`)
	html := sgvet(t, "", "audit", "--no-cache", "--input", in, "--format", "html")
	// The page holds the findings in a JSON data block, where encoding/json escapes < and >.
	if strings.Contains(html.stdout, "<script>alert(1)</script>") || !strings.Contains(html.stdout, `\u003cscript\u003ealert(1)\u003c/script\u003e temp`) {
		t.Errorf("HTML does not escape the description")
	}
	csv := sgvet(t, "", "audit", "--no-cache", "--input", in, "--format", "csv")
	if !strings.Contains(csv.stdout, `'=HYPERLINK`) || strings.Contains(csv.stdout, `,=HYPERLINK`) || strings.Contains(csv.stdout, `,"=HYPERLINK`) {
		t.Errorf("CSV does not guard the formula:\n%s", csv.stdout)
	}
}

// TestAuditHistory runs twice over a changing estate with --state: a rule added, a rule
// removed, one kept, whose first sighting is kept.
func TestAuditHistory(t *testing.T) {
	isolateAWS(t)
	isolateProviders(t)
	state := filepath.Join(t.TempDir(), "state.db")
	estate := func(cidrs ...string) string { return sshEstate(t, "temp access", cidrs...) }
	run := func(in string) report.Report {
		res := sgvet(t, "", "audit", "--no-cache", "--input", in, "--state", state, "--format", "json", "--fail-on", "none")
		if res.code != exitIncomplete && res.code != exitOK {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		return decodeReport(t, res.stdout)
	}
	first := run(estate("81.2.69.142/32", "24.48.0.1/32"))
	time.Sleep(10 * time.Millisecond) // the second run starts later
	second := run(estate("81.2.69.142/32", "94.73.144.9/32"))
	if second.Run.Previous != first.Run.ID {
		t.Errorf("previous run = %q, want %q", second.Run.Previous, first.Run.ID)
	}
	if second.Summary.RulesNew != 1 || second.Summary.RulesGone != 1 {
		t.Errorf("summary = %+v, want 1 new and 1 gone", second.Summary)
	}
	if len(second.Gone) != 1 || second.Gone[0].CIDR != "24.48.0.1/32" {
		t.Errorf("gone = %+v, want the rule for 24.48.0.1/32", second.Gone)
	}
	checked := 0
	for _, f := range second.Findings {
		if f.FirstSeen == nil {
			t.Errorf("finding %s for %s has no first sighting", f.Kind, f.Ref().CIDR)
			continue
		}
		switch f.Ref().CIDR {
		case "81.2.69.142/32":
			checked++
			if f.Change != "" || !f.FirstSeen.Equal(first.Run.Started) {
				t.Errorf("kept rule: change %q, first seen %v; want none and the first run's start %v", f.Change, f.FirstSeen, first.Run.Started)
			}
		case "94.73.144.9/32":
			checked++
			if f.Change != report.New || !f.FirstSeen.Equal(second.Run.Started) {
				t.Errorf("added rule: change %q, first seen %v; want new, first seen at the second run's start %v", f.Change, f.FirstSeen, second.Run.Started)
			}
		}
	}
	if checked < 2 {
		t.Errorf("found %d findings for the kept and the added rule, want both (unvetted, as no provider is set)", checked)
	}
}

// TestAuditHistoryFailedReport: a run whose report cannot be written is not recorded, so
// the next run still reports the rule it added as new, since the run before it.
func TestAuditHistoryFailedReport(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full, to fail the report's write:", err)
	}
	isolateAWS(t)
	isolateProviders(t)
	state := filepath.Join(t.TempDir(), "state.db")
	estate := func(cidrs ...string) string { return sshEstate(t, "office", cidrs...) }
	audit := func(in string, more ...string) (result, report.Report) {
		res := sgvet(t, "", append([]string{"audit", "--no-cache", "--input", in, "--state", state, "--format", "json", "--fail-on", "none"}, more...)...)
		if len(more) > 0 {
			return res, report.Report{}
		}
		if res.code != exitIncomplete && res.code != exitOK {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		return res, decodeReport(t, res.stdout)
	}
	_, first := audit(estate("81.2.69.142/32"))
	// The report cannot be written: the disk is full when it is.
	if res, _ := audit(estate("81.2.69.142/32", "94.73.144.9/32"), "--output", "/dev/full"); res.code != exitUsage {
		t.Fatalf("audit --output /dev/full: exit %d, want %d: %s", res.code, exitUsage, res.stderr)
	}
	_, third := audit(estate("81.2.69.142/32", "94.73.144.9/32"))
	if third.Run.Previous != first.Run.ID {
		t.Errorf("previous run = %q, want %q, the last run whose report was written", third.Run.Previous, first.Run.ID)
	}
	if len(third.New) != 1 || third.New[0].CIDR != "94.73.144.9/32" || third.Summary.RulesNew != 1 {
		t.Errorf("new = %+v (%d counted), want the rule for 94.73.144.9/32", third.New, third.Summary.RulesNew)
	}
}

// TestAuditAgainstAWS runs the whole pipeline against moto, a MetaDefender double and a
// blocklist.
func TestAuditAgainstAWS(t *testing.T) {
	srv := useMoto(t)
	isolateProviders(t)
	const region = "ap-southeast-2"
	ctx := context.Background()
	api := ec2.NewFromConfig(srv.AWSConfig(t, region))
	vpc, err := api.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.42.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	sg, err := api.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("jump"), Description: aws.String("jump"), VpcId: vpc.Vpc.VpcId})
	if err != nil {
		t.Fatal(err)
	}
	perm := func(port int32, cidr, desc string) types.IpPermission {
		return types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port),
			IpRanges: []types.IpRange{{CidrIp: aws.String(cidr), Description: aws.String(desc)}}}
	}
	if _, err := api.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: sg.GroupId, IpPermissions: []types.IpPermission{
		perm(22, "85.25.199.246/32", "contractor bob"),
		perm(3389, "0.0.0.0/0", "rdp"),
		perm(443, "81.2.69.142/32", "office"),
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: sg.GroupId, IpPermissions: []types.IpPermission{
		perm(443, "94.73.144.9/32", "telemetry"),
	}}); err != nil {
		t.Fatal(err)
	}

	const key = "md-audit-key"
	t.Setenv("MDCLOUD_APIKEY", key)
	md := fakeprovider.MetaDefender(t, fakeprovider.Options{Key: key, Listings: map[string]fakeprovider.Listing{
		"85.25.199.246": {Status: "malicious", Categories: []string{"botnet"}},
	}})
	cfg := doublesConfig(t, map[string]string{"metadefender": md.URL})
	list := writeFile(t, "list.txt", "94.73.144.0/24\n")
	res := sgvet(t, "", "audit", "--config", cfg, "--regions", region, "--blocklist", list, "--no-cache", "--format", "json")
	if res.code != exitFindings {
		t.Fatalf("exit %d, want %d; stderr: %s", res.code, exitFindings, res.stderr)
	}
	r := decodeReport(t, res.stdout)
	bob := findings(r, report.SuspiciousSource, "jump", "85.25.199.246/32")
	if len(bob) != 1 || bob[0].Severity != report.Critical || len(bob[0].Verdicts) == 0 || bob[0].Verdicts[0].Provider != "metadefender" || !strings.HasPrefix(bob[0].Ref().RuleID, "sgr-") {
		t.Errorf("suspicious-source for 85.25.199.246 = %+v, want one critical with the metadefender verdict", bob)
	}
	egress := findings(r, report.SuspiciousSource, "jump", "94.73.144.9/32")
	if len(egress) != 1 || egress[0].Ref().Direction != "egress" || egress[0].Severity != report.Critical {
		t.Errorf("suspicious-source for the egress to 94.73.144.9 = %+v, want one critical", egress)
	}
	if rdp := findings(r, report.OpenToWorld, "jump", "0.0.0.0/0"); len(rdp) != 1 || rdp[0].Severity != report.Critical {
		t.Errorf("open-to-world for RDP = %+v, want critical", rdp)
	}
	if len(r.Run.Providers) != 2 || r.Run.Providers[0].Provider != "metadefender" || r.Run.Providers[0].Lookups != 1 {
		t.Errorf("providers = %+v, want metadefender with one bulk lookup, then blocklist", r.Run.Providers)
	}
	if r.Run.Regions[0] != region || r.Summary.AddressesVetted != 3 || r.Summary.AddressesUnvetted != 0 {
		t.Errorf("regions %v, summary %+v", r.Run.Regions, r.Summary)
	}
}

// TestOfflineAuditWritesNoCache: with only offline lists there is nothing to cache or count,
// so no cache file appears in the user's cache directory.
func TestOfflineAuditWritesNoCache(t *testing.T) {
	isolateAWS(t)
	isolateProviders(t)
	res := sgvet(t, "", append(exampleArgs, "--format", "json")...)
	if res.code != exitFindings {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	dir, _ := os.UserCacheDir()
	if _, err := os.Stat(filepath.Join(dir, "sgvet")); !os.IsNotExist(err) {
		t.Errorf("the offline audit created %s (err %v)", filepath.Join(dir, "sgvet"), err)
	}
}

// TestAuditNeverPrintsTheKey audits the example with a canary key that one service refuses
// and another accepts, with debug logging, in every format, and looks for the key.
func TestAuditNeverPrintsTheKey(t *testing.T) {
	isolateAWS(t)
	isolateProviders(t)
	const canary = "canaryKey-audit-5b1d-DO-NOT-PRINT"
	t.Setenv("MDCLOUD_APIKEY", canary)
	t.Setenv("VT_API_KEY", canary)
	cfg := doublesConfig(t, map[string]string{
		"metadefender": fakeprovider.MetaDefender(t, fakeprovider.Options{Key: "other", Listings: lookupListings}).URL,
		"virustotal":   fakeprovider.VirusTotal(t, fakeprovider.Options{Key: canary, Listings: lookupListings}).URL,
	})
	state := filepath.Join(t.TempDir(), "state.db")
	for _, format := range report.Formats {
		res := sgvet(t, "", append(exampleArgs, "--config", cfg, "--cache", filepath.Join(t.TempDir(), "c.db"),
			"--state", state, "--log-level", "debug", "--format", format)...)
		if res.code != exitFindings || !strings.Contains(res.stderr, "MDCLOUD_APIKEY") {
			t.Errorf("--format %s: exit %d, stderr %q; want 1 and the refused key's variable named", format, res.code, res.stderr)
		}
		if strings.Contains(res.stdout+res.stderr, canary) {
			t.Errorf("--format %s: the output contains the key", format)
		}
	}
	db, _ := os.ReadFile(state)
	if strings.Contains(string(db), canary) {
		t.Error("the history file contains the key")
	}
}

// TestAuditChecksItsFilesFirst: a --state, --output or --blocklist that cannot be used is an
// error before any provider is asked, and a file that was only probed is not left behind.
func TestAuditChecksItsFilesFirst(t *testing.T) {
	isolateAWS(t)
	isolateProviders(t)
	const key = "md-key-checks-first"
	t.Setenv("MDCLOUD_APIKEY", key)
	md := fakeprovider.MetaDefender(t, fakeprovider.Options{Key: key})
	cfg := doublesConfig(t, map[string]string{"metadefender": md.URL})
	dir := t.TempDir()
	notDB := writeFile(t, "state.db", "not a database")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"state", []string{"--state", notDB}, "--state: open history " + notDB},
		{"output", []string{"--output", filepath.Join(dir, "missing", "report.json")}, "--output " + filepath.Join(dir, "missing", "report.json") + ": cannot create a file in " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{"blocklist", []string{"--blocklist", filepath.Join(dir, "none.netset")}, "none.netset"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"audit", "--config", cfg, "--no-cache", "--input", "../../examples/security-groups.json"}, tc.args...)
			res := sgvet(t, "", args...)
			if res.code != exitUsage || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", res.code, res.stderr, exitUsage, tc.want)
			}
		})
	}
	if md.Count() != 0 {
		t.Errorf("MetaDefender was asked %d times before the bad input was found", md.Count())
	}

	out := filepath.Join(dir, "report.json")
	if res := sgvet(t, "", "audit", "--input", "../../examples/security-groups.json", "--output", out, "--state", notDB); res.code != exitUsage {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed audit left %s behind (err %v)", out, err)
	}
}

// sshEstate writes describe-security-groups output with one group that allows SSH from
// each of cidrs, with description, and returns its path.
func sshEstate(t *testing.T, description string, cidrs ...string) string {
	t.Helper()
	var ranges []string
	for _, c := range cidrs {
		ranges = append(ranges, `{"CidrIp":"`+c+`","Description":"`+description+`"}`)
	}
	return writeFile(t, "sg.json", `{"SecurityGroups":[{"GroupId":"sg-1","GroupName":"app","VpcId":"vpc-1","OwnerId":"123456789012",
		"IpPermissions":[{"IpProtocol":"tcp","FromPort":22,"ToPort":22,"IpRanges":[`+strings.Join(ranges, ",")+`]}],"IpPermissionsEgress":[]}]}`)
}

// TestAuditOwnerRanges: with --owner-ranges, the example's GitHub range is a known service
// range rather than a wide range, and its other findings name the range (report's
// TestBuildOwners covers the labels in full); a file of no known format, or a plain list
// without a name, stops the audit before anything is read.
func TestAuditOwnerRanges(t *testing.T) {
	isolateProviders(t)
	owners := "../../collector/testdata/owners/"
	args := append(slices.Clone(exampleArgs), "--no-cache", "--format", "json", "--fail-on", "none",
		"--owner-ranges", owners+"github-meta.json", "--owner-ranges", owners+"aws-ip-ranges.json")
	res := sgvet(t, "", args...)
	if res.code != exitOK && res.code != exitIncomplete {
		t.Fatalf("exit %d; stderr: %s", res.code, res.stderr)
	}
	r := decodeReport(t, res.stdout)
	var known, wideGitHub, labelled int
	for _, f := range r.Findings {
		ref := f.Ref()
		switch {
		case f.Kind == report.KnownServiceRange && ref.CIDR == "140.82.112.0/20":
			known++
			if o := f.Owner(); o == nil || o.Name != "GitHub" || f.Severity != report.Info {
				t.Errorf("known-service-range on %s: severity %s, owner %+v; want info, GitHub", ref.CIDR, f.Severity, o)
			}
		case f.Kind == report.WideRange && ref.CIDR == "140.82.112.0/20":
			wideGitHub++
		case ref.CIDR == "140.82.112.0/20":
			if o := f.Owner(); o == nil || o.Name != "GitHub" || !slices.ContainsFunc(f.Reasons(), func(s string) bool {
				return strings.Contains(s, "140.82.112.0/20 is in GitHub's published range 140.82.112.0/20 (hooks)")
			}) {
				t.Errorf("%s finding on %s: owner %+v, reasons %q; want GitHub's, named in a reason", f.Kind, ref.CIDR, o, f.Reasons())
			}
			labelled++
		}
	}
	if known == 0 || wideGitHub != 0 || labelled == 0 {
		t.Errorf("findings on 140.82.112.0/20: %d known-service-range, %d wide-range, %d others; want some, none, some",
			known, wideGitHub, labelled)
	}

	plain := writeFile(t, "ips-v4", "173.245.48.0/20\n103.21.244.0/22\n")
	notRanges := writeFile(t, "ranges.json", `{"prefixes": [{"cidr": "192.0.2.0/24"}]}`)
	for _, tc := range []struct{ spec, want string }{
		{plain, "ips-v4"},
		{notRanges, "ranges.json"},
		{filepath.Join(t.TempDir(), "missing.json"), "missing.json"},
	} {
		args := append(slices.Clone(exampleArgs), "--no-cache", "--owner-ranges", tc.spec)
		res := sgvet(t, "", args...)
		if res.code != exitUsage || !strings.Contains(res.stderr, "--owner-ranges") || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("--owner-ranges %s: exit %d, stderr %q; want %d, naming the flag and %s", tc.spec, res.code, res.stderr, exitUsage, tc.want)
		}
	}
	// A plain list is taken with a name.
	args = append(slices.Clone(exampleArgs), "--no-cache", "--fail-on", "none", "--owner-ranges", "cloudflare="+plain)
	if res := sgvet(t, "", args...); res.code != exitOK && res.code != exitIncomplete {
		t.Errorf("--owner-ranges cloudflare=FILE: exit %d; stderr: %s", res.code, res.stderr)
	}
}
