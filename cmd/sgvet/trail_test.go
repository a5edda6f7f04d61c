package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/internal/fakecloudtrail"
	"github.com/sgvet/sgvet/report"
)

// trailEstate makes, in moto's us-east-1, a group with two ingress rules whose
// descriptions mark them temporary, and returns their ids: the first was added ten days
// ago (by the event the test gives CloudTrail), the second earlier than CloudTrail's 90 days.
func trailEstate(t *testing.T, srv interface {
	AWSConfig(testing.TB, string) aws.Config
}) (group, recent, old string) {
	api := ec2.NewFromConfig(srv.AWSConfig(t, "us-east-1"))
	g, err := api.CreateSecurityGroup(t.Context(), &ec2.CreateSecurityGroupInput{GroupName: aws.String("vendor"), Description: aws.String("vendor")})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, cidr := range []string{"81.2.69.142/32", "81.2.69.143/32"} {
		out, err := api.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{GroupId: g.GroupId, IpPermissions: []types.IpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443),
			IpRanges: []types.IpRange{{CidrIp: aws.String(cidr), Description: aws.String("temp vendor access")}},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, aws.ToString(out.SecurityGroupRules[0].SecurityGroupRuleId))
	}
	return aws.ToString(g.GroupId), ids[0], ids[1]
}

// staleFindings returns the stale-source findings of a JSON report by rule id.
func staleFindings(t *testing.T, out string) map[string]report.Finding {
	t.Helper()
	found := map[string]report.Finding{}
	for _, f := range decodeReport(t, out).Findings {
		if f.Kind == report.StaleSource {
			found[f.Ref().RuleID] = f
		}
	}
	return found
}

// TestAuditAttribution: CloudTrail's LookupEvents (a fake: moto has none) says who added a
// rule, and a rule no event added in 90 days is older than that, which makes its
// temporary marker stale; log files do the same for accounts where LookupEvents is not
// allowed; a refusal is unknown context, not a failed run.
func TestAuditAttribution(t *testing.T) {
	srv := useMoto(t)
	isolateProviders(t)
	group, recent, old := trailEstate(t, srv)
	who := fakecloudtrail.AssumedRole("123456789012", "Admin", "alice@example.com")
	added := time.Now().UTC().Add(-10 * 24 * time.Hour).Truncate(time.Second)
	event := fakecloudtrail.AuthorizeIngressEvent(fakecloudtrail.Call{Region: "us-east-1", Account: "123456789012", Who: who, At: added, GroupID: group, RuleIDs: []string{recent}})
	list := writeFile(t, "drop.txt", "192.0.2.0/24\n")
	audit := func(t *testing.T, extra ...string) result {
		t.Helper()
		args := append([]string{"audit", "--no-cache", "--providers", "blocklist", "--blocklist", list, "--fail-on", "none",
			"--regions", "us-east-1", "--format", "json"}, extra...)
		res := sgvet(t, "", args...)
		if res.code != exitOK && res.code != exitIncomplete {
			t.Fatalf("sgvet %q: exit %d; stderr: %s", args, res.code, res.stderr)
		}
		return res
	}
	principal := "arn:aws:iam::123456789012:role/Admin (session alice@example.com)"

	t.Run("LookupEvents", func(t *testing.T) {
		ct := useCloudTrail(t, fakecloudtrail.Options{PageSize: 1}, event)
		res := audit(t)
		found := staleFindings(t, res.stdout)
		// The group is attached to nothing, which is a stale-source reason of its own.
		if f := found[recent]; slices.ContainsFunc(f.Reasons(), func(s string) bool { return strings.Contains(s, "the description says") }) {
			t.Errorf("rule %s, added ten days ago, is stale for its marker: %q", recent, f.Reasons())
		}
		f, ok := found[old]
		if !ok || !slices.ContainsFunc(f.Reasons(), func(s string) bool {
			return strings.Contains(s, "older than 90 days (no CloudTrail event added it since")
		}) {
			t.Errorf("rule %s: stale finding %v, reasons %q; want stale, older than 90 days", old, ok, f.Reasons())
		}
		if !strings.Contains(res.stdout, `"added_by": "`+principal+`"`) {
			t.Errorf("the report does not say %s added %s:\n%s", principal, recent, res.stdout)
		}
		if ct.Calls() == 0 {
			t.Error("CloudTrail was not asked")
		}
	})
	t.Run("refused", func(t *testing.T) {
		useCloudTrail(t, fakecloudtrail.Options{DenyAccess: true}, event)
		res := audit(t)
		r := decodeReport(t, res.stdout)
		if len(r.Run.Unknown) != 1 || r.Run.Unknown[0].Context != "attribution" || r.Run.Unknown[0].Account != "123456789012" ||
			r.Run.Unknown[0].Region != "us-east-1" || !strings.Contains(r.Run.Unknown[0].Reason, "AccessDenied") {
			t.Errorf("unknown_context = %+v, want attribution refused in us-east-1", r.Run.Unknown)
		}
		if f := staleFindings(t, res.stdout)[old]; slices.ContainsFunc(f.Reasons(), func(s string) bool { return strings.Contains(s, "the description says") }) {
			t.Errorf("rule %s is stale for its marker although its age is unknown: %q", old, f.Reasons())
		}
	})
	t.Run("log files", func(t *testing.T) {
		ct := useCloudTrail(t, fakecloudtrail.Options{}, event)
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "123456789012_CloudTrail_us-east-1_20261120T0000Z_a1b2.json"), fakecloudtrail.LogFile(event), 0o644); err != nil {
			t.Fatal(err)
		}
		res := audit(t, "--no-cloudtrail-lookup", "--cloudtrail", dir)
		if !strings.Contains(res.stdout, `"added_by": "`+principal+`"`) || strings.Contains(res.stdout, `"added_before"`) {
			t.Errorf("from the log files, the report should say who added %s, and nothing of the other rule:\n%s", recent, res.stdout)
		}
		if ct.Calls() != 0 {
			t.Errorf("--no-cloudtrail-lookup: CloudTrail was asked %d times", ct.Calls())
		}
	})
	t.Run("no lookup and no log files", func(t *testing.T) {
		useCloudTrail(t, fakecloudtrail.Options{}, event)
		res := audit(t, "--no-cloudtrail-lookup")
		checkAttributionUnknown(t, decodeReport(t, res.stdout), "--no-cloudtrail-lookup")
	})
	t.Run("bad log file", func(t *testing.T) {
		bad := writeFile(t, "trail.json", `{"Records": [{"eventName": "AuthorizeSecurityGroupIngress",`)
		args := []string{"audit", "--no-cache", "--regions", "us-east-1", "--cloudtrail", bad}
		res := sgvet(t, "", args...)
		if res.code != exitUsage || !strings.Contains(res.stderr, "--cloudtrail") || !strings.Contains(res.stderr, "trail.json") {
			t.Errorf("sgvet %q: exit %d, stderr %q; want %d naming --cloudtrail and the file", args, res.code, res.stderr, exitUsage)
		}
	})
}

// checkAttributionUnknown fails t unless r lists attribution as unknown once, for the
// whole run (no account, no region), with a reason that says why and names --cloudtrail.
func checkAttributionUnknown(t *testing.T, r report.Report, why string) {
	t.Helper()
	var found []collector.UnknownContext
	for _, u := range r.Run.Unknown {
		if u.Context == collector.ContextAttribution {
			found = append(found, u)
		}
	}
	if len(found) != 1 || found[0].Account != "" || found[0].Region != "" ||
		!strings.Contains(found[0].Reason, why) || !strings.Contains(found[0].Reason, "--cloudtrail") {
		t.Errorf("unknown_context = %+v, want attribution unknown for the run, saying %q and naming --cloudtrail", r.Run.Unknown, why)
	}
}

// TestAuditAttributionOfInputFiles: input files say nothing of who added the rules, which
// the report lists as unknown unless CloudTrail's log files are given.
func TestAuditAttributionOfInputFiles(t *testing.T) {
	isolateAWS(t)
	isolateProviders(t)
	args := append(slices.Clone(exampleArgs), "--no-cache", "--format", "json", "--fail-on", "none")
	res := sgvet(t, "", args...)
	if res.code != exitOK && res.code != exitIncomplete {
		t.Fatalf("sgvet %q: exit %d; stderr: %s", args, res.code, res.stderr)
	}
	checkAttributionUnknown(t, decodeReport(t, res.stdout), "input files")

	logs := t.TempDir()
	if err := os.WriteFile(filepath.Join(logs, "trail.json"), fakecloudtrail.LogFile(), 0o644); err != nil {
		t.Fatal(err)
	}
	args = append(args, "--cloudtrail", logs)
	res = sgvet(t, "", args...)
	if res.code != exitOK && res.code != exitIncomplete {
		t.Fatalf("sgvet %q: exit %d; stderr: %s", args, res.code, res.stderr)
	}
	for _, u := range decodeReport(t, res.stdout).Run.Unknown {
		if u.Context == collector.ContextAttribution {
			t.Errorf("with --cloudtrail, unknown_context lists %+v", u)
		}
	}
}
