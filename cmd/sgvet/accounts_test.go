package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/internal/motoserver"
	"github.com/sgvet/sgvet/report"
)

// TestGroupsOfAccounts collects an Organization of moto: the caller and three members, two
// regions each, every member's groups created through its role. moto keeps each assumed
// account's resources apart, so each group and rule must come back with its own account.
func TestGroupsOfAccounts(t *testing.T) {
	srv := useMoto(t)
	caller, members := srv.Organization(t, 3)
	regions := []string{"eu-west-1", "us-east-1"}
	all := append([]string{caller}, members...)
	seeded := srv.SeedAccounts(t, caller, all, regions)
	only := func(accounts ...string) []string {
		var out []string
		for _, r := range seeded {
			if slices.Contains(accounts, strings.Fields(r)[0]) {
				out = append(out, r)
			}
		}
		return out
	}
	tests := []struct {
		name     string
		args     []string
		accounts []string
	}{
		{"org", []string{"--org", "--role-name", "audit", "--external-id", "x-1"}, all},
		{"accounts", []string{"--accounts", members[0] + "," + members[2], "--role-name", "audit"}, []string{caller, members[0], members[2]}},
		{"accounts with the caller", []string{"--accounts", caller + "," + members[1], "--role-name", "audit"}, []string{caller, members[1]}},
		{"only the caller needs no role", []string{"--accounts", caller}, []string{caller}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"groups", "--regions", strings.Join(regions, ","), "--format", "json"}, tc.args...)
			res := sgvet(t, "", args...)
			if res.code != 0 {
				t.Fatalf("sgvet %q: exit %d, want 0; stderr: %s", args, res.code, res.stderr)
			}
			var inv collector.Inventory
			if err := json.Unmarshal([]byte(res.stdout), &inv); err != nil {
				t.Fatal(err)
			}
			if got, want := motoserver.SeededRules(inv.Rules), only(tc.accounts...); !slices.Equal(got, want) {
				t.Errorf("sgvet %q: rules\n  %q\nwant\n  %q", args, got, want)
			}
			if want := slices.Sorted(slices.Values(tc.accounts)); !slices.Equal(inv.Accounts, want) {
				t.Errorf("sgvet %q: accounts = %v, want %v", args, inv.Accounts, want)
			}
			for _, g := range inv.Groups {
				if !slices.Contains(tc.accounts, g.Account) {
					t.Errorf("sgvet %q: group %s of account %q, want one of %v", args, g.ID, g.Account, tc.accounts)
				}
			}
			if len(inv.Skipped) != 0 {
				t.Errorf("sgvet %q: skipped = %+v, want none", args, inv.Skipped)
			}
		})
	}
}

// TestGroupsOfAccountsSkipsRegions: a region that refuses is skipped in every account, each
// entry naming its account, and the run exits 3. (TestGroupsOfAccountsRoleRefused skips a
// whole account.)
func TestGroupsOfAccountsSkipsRegions(t *testing.T) {
	srv := useMoto(t)
	caller, members := srv.Organization(t, 1)
	// moto answers 500 for a region it does not know.
	res := sgvet(t, "", "groups", "--org", "--role-name", "audit", "--regions", "us-east-1,xx-nowhere-1", "--format", "json")
	if res.code != exitIncomplete {
		t.Fatalf("exit %d, want %d; stderr: %s", res.code, exitIncomplete, res.stderr)
	}
	var inv collector.Inventory
	if err := json.Unmarshal([]byte(res.stdout), &inv); err != nil {
		t.Fatal(err)
	}
	var skipped []string
	for _, s := range inv.Skipped {
		skipped = append(skipped, s.Account+" "+s.Region)
		if s.Reason == "" {
			t.Errorf("skipped %+v has no reason", s)
		}
	}
	want := []string{caller + " xx-nowhere-1", members[0] + " xx-nowhere-1"}
	if !slices.Equal(skipped, want) {
		t.Errorf("skipped = %q, want %q", skipped, want)
	}
	for _, a := range []string{caller, members[0]} {
		if !strings.Contains(res.stderr, a) {
			t.Errorf("stderr does not name account %s: %s", a, res.stderr)
		}
	}
}

// TestGroupsOfAccountsNeedRole: an account other than the caller's needs --role-name.
func TestGroupsOfAccountsNeedRole(t *testing.T) {
	srv := useMoto(t)
	caller, members := srv.Organization(t, 1)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--accounts", members[0]}, "role_name (--role-name) is needed with --accounts: account " + members[0] + " is not the caller's (" + caller + ")"},
		{[]string{"--org"}, "role_name (--role-name) is needed with --org: account " + members[0] + " is not the caller's (" + caller + ")"},
	}
	for _, tc := range tests {
		args := append([]string{"groups", "--regions", "us-east-1"}, tc.args...)
		res := sgvet(t, "", args...)
		if res.code != exitUsage || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("sgvet %q: exit %d, stderr %q; want %d and %q", args, res.code, res.stderr, exitUsage, tc.want)
		}
	}
}

// TestAuditOfAccountsListsSkipped: what was skipped in an account is listed, with the
// account, in every format of the report, and the audit exits 3.
func TestAuditOfAccountsListsSkipped(t *testing.T) {
	srv := useMoto(t)
	isolateProviders(t)
	caller, members := srv.Organization(t, 1)
	srv.SeedAccounts(t, caller, []string{caller, members[0]}, []string{"us-east-1"})
	list := writeFile(t, "drop.txt", "192.0.2.0/24\n")
	for _, format := range []string{"table", "json", "csv", "markdown", "html"} {
		t.Run(format, func(t *testing.T) {
			args := []string{"audit", "--no-cache", "--providers", "blocklist", "--blocklist", list, "--fail-on", "none",
				"--org", "--role-name", "audit", "--regions", "us-east-1,xx-nowhere-1", "--format", format}
			res := sgvet(t, "", args...)
			if res.code != exitIncomplete {
				t.Fatalf("sgvet %q: exit %d, want %d; stderr: %s", args, res.code, exitIncomplete, res.stderr)
			}
			for _, account := range []string{caller, members[0]} {
				// How each format writes a skipped region of an account.
				want := map[string]string{
					"table":    "skipped account " + account + ", region xx-nowhere-1: ",
					"csv":      ",skipped," + account + ",xx-nowhere-1,",
					"markdown": "| " + account + " | xx-nowhere-1 |",
					"html":     "account " + account + ", region xx-nowhere-1",
				}[format]
				if format == "json" {
					var rep struct {
						Run struct{ Skipped []collector.Skipped }
					}
					if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
						t.Fatal(err)
					}
					if !slices.ContainsFunc(rep.Run.Skipped, func(s collector.Skipped) bool {
						return s.Account == account && s.Region == "xx-nowhere-1" && s.Reason != ""
					}) {
						t.Errorf("sgvet %q: run.skipped = %+v, want region xx-nowhere-1 of account %s with a reason", args, rep.Run.Skipped, account)
					}
					continue
				}
				if !strings.Contains(res.stdout, want) {
					t.Errorf("sgvet %q: the report does not list region xx-nowhere-1 of account %s as skipped (%q):\n%s", args, account, want, res.stdout)
				}
			}
		})
	}
}

// refuseRole makes STS refuse the role of account, as IAM does when the role's trust
// policy does not name the caller (moto accepts every role): every other call goes to
// moto.
func refuseRole(t *testing.T, srv *motoserver.Server, caller, account, role string) {
	roleARN := "arn:aws:iam::" + account + ":role/" + role
	p := &faultProxy{
		match:  queryAction("AssumeRole", "RoleArn="+roleARN),
		status: http.StatusForbidden, contentType: "text/xml",
		body: `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code>` +
			`<Message>User: arn:aws:iam::` + caller + `:user/auditor is not authorized to perform: sts:AssumeRole on resource: ` + roleARN + `</Message>` +
			`</Error><RequestId>c6104cbe-refused</RequestId></ErrorResponse>`,
	}
	t.Setenv("AWS_ENDPOINT_URL_STS", p.start(t, srv.URL))
}

// TestGroupsOfAccountsRoleRefused: an account whose role cannot be assumed is skipped,
// named, with STS's reason, and the others are collected; the run exits 3.
func TestGroupsOfAccountsRoleRefused(t *testing.T) {
	srv := useMoto(t)
	caller, members := srv.Organization(t, 2)
	seeded := srv.SeedAccounts(t, caller, []string{caller, members[0], members[1]}, []string{"us-east-1"})
	refuseRole(t, srv, caller, members[1], "audit")

	res := sgvet(t, "", "groups", "--org", "--role-name", "audit", "--regions", "us-east-1", "--format", "json")
	if res.code != exitIncomplete {
		t.Fatalf("exit %d, want %d; stderr: %s", res.code, exitIncomplete, res.stderr)
	}
	var inv collector.Inventory
	if err := json.Unmarshal([]byte(res.stdout), &inv); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, r := range seeded {
		if strings.Fields(r)[0] != members[1] {
			want = append(want, r)
		}
	}
	if got := motoserver.SeededRules(inv.Rules); !slices.Equal(got, want) {
		t.Errorf("rules\n  %q\nwant\n  %q", got, want)
	}
	if len(inv.Skipped) != 1 || inv.Skipped[0].Account != members[1] || inv.Skipped[0].Region != "" ||
		!strings.Contains(inv.Skipped[0].Reason, "AccessDenied") || !strings.Contains(inv.Skipped[0].Reason, "role/audit") {
		t.Errorf("skipped = %+v, want account %s alone, with STS's AccessDenied for role/audit", inv.Skipped, members[1])
	}
	if !strings.Contains(res.stderr, "account skipped") || !strings.Contains(res.stderr, members[1]) {
		t.Errorf("stderr does not warn that account %s was skipped: %s", members[1], res.stderr)
	}
}

// crossAccountRules adds to the caller's us-east-1 a group "shared" with two ingress rules
// on port 5432 that name a group of another account: one of the member's, and one of an
// account outside the Organization. moto looks a referenced group up in the caller's own
// account and keeps the account id it is given, so both rules name "shared" itself, with
// the other account's id; AWS would name the other account's group. It returns the rule
// ids, the member's first.
func crossAccountRules(t *testing.T, srv *motoserver.Server, member, outsider string) (string, string) {
	api := ec2.NewFromConfig(srv.AWSConfig(t, "us-east-1"))
	g, err := api.CreateSecurityGroup(t.Context(), &ec2.CreateSecurityGroupInput{GroupName: aws.String("shared"), Description: aws.String("shared")})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[int32]string{}
	for port, owner := range map[int32]string{5432: member, 5433: outsider} {
		out, err := api.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
			GroupId: g.GroupId, IpPermissions: []types.IpPermission{{
				IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port),
				UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: g.GroupId, UserId: aws.String(owner), Description: aws.String("from " + owner)}},
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		ids[port] = aws.ToString(out.SecurityGroupRules[0].SecurityGroupRuleId)
	}
	return ids[5432], ids[5433]
}

// TestAuditCrossAccountReferences: a rule that names another account's group is a
// cross-account-reference finding that names the account and says whether it belongs to
// the Organization: listed by --org, or, for a single account, listed because a rule names
// another account; unknown when the Organization cannot be listed.
func TestAuditCrossAccountReferences(t *testing.T) {
	srv := useMoto(t)
	isolateProviders(t)
	const outsider = "999988887777"
	_, members := srv.Organization(t, 1)
	memberRule, outsiderRule := crossAccountRules(t, srv, members[0], outsider)
	list := writeFile(t, "drop.txt", "192.0.2.0/24\n")
	audit := func(t *testing.T, extra ...string) (map[string]report.Finding, result) {
		args := append([]string{"audit", "--no-cache", "--providers", "blocklist", "--blocklist", list, "--fail-on", "none",
			"--regions", "us-east-1", "--format", "json"}, extra...)
		res := sgvet(t, "", args...)
		if res.code != 0 {
			t.Fatalf("sgvet %q: exit %d, want 0; stderr: %s", args, res.code, res.stderr)
		}
		var rep report.Report
		if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
			t.Fatal(err)
		}
		found := map[string]report.Finding{}
		for _, f := range rep.Findings {
			if f.Kind == report.CrossAccountReference {
				found[f.Ref().RuleID] = f
			}
		}
		return found, res
	}
	check := func(t *testing.T, found map[string]report.Finding, rule string, sev report.Severity, in *bool, reason string) {
		t.Helper()
		f, ok := found[rule]
		if !ok {
			t.Fatalf("no cross-account-reference finding for %s; found %v", rule, found)
		}
		g := f.Ref().ReferencedGroup
		if f.Severity != sev || g == nil || fmt.Sprint(g.InOrganization != nil && *g.InOrganization) != fmt.Sprint(in != nil && *in) ||
			(g.InOrganization == nil) != (in == nil) || !slices.ContainsFunc(f.Reasons(), func(s string) bool { return strings.Contains(s, reason) }) {
			t.Errorf("finding for %s = %s, referenced group %+v, reasons %q; want %s, in_organization %v, a reason containing %q",
				rule, f.Severity, g, f.Reasons(), sev, in, reason)
		}
	}
	yes, no := true, false
	for _, mode := range [][]string{nil, {"--org", "--role-name", "audit"}} {
		t.Run(fmt.Sprint("listed ", mode), func(t *testing.T) {
			found, _ := audit(t, mode...)
			if len(found) != 2 {
				t.Errorf("%d cross-account-reference findings, want 2", len(found))
			}
			check(t, found, memberRule, report.Info, &yes, "of account "+members[0]+", another account of the Organization o-")
			check(t, found, outsiderRule, report.Medium, &no, "of account "+outsider+", which is not in the Organization o-")
		})
	}
	t.Run("unknown", func(t *testing.T) {
		// A member account may not list the Organization; moto lets every caller.
		p := &faultProxy{
			match: func(r *http.Request, _ string) bool {
				return r.Header.Get("X-Amz-Target") == "AWSOrganizationsV20161128.ListAccounts"
			},
			status: http.StatusBadRequest, contentType: "application/x-amz-json-1.1",
			body: `{"__type":"AccessDeniedException","Message":"You don't have permissions to access this resource."}`,
		}
		t.Setenv("AWS_ENDPOINT_URL_ORGANIZATIONS", p.start(t, srv.URL))
		found, res := audit(t)
		check(t, found, memberRule, report.Low, nil, "whether that account belongs to the Organization is unknown")
		check(t, found, outsiderRule, report.Low, nil, "organizations:ListAccounts")
		if p.refusals() != 1 || !strings.Contains(res.stderr, "AccessDenied") {
			t.Errorf("the proxy refused %d ListAccounts, want 1; stderr should give the reason: %s", p.refusals(), res.stderr)
		}
	})
}
