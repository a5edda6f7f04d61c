package report

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sgvet/sgvet/collector"
)

// refRule returns an ingress rule of sg-app, TCP 5432, from group id of account owner.
func refRule(id, owner, group string) collector.Rule {
	r := in(id, "tcp", 5432, 5432, "", "from "+group)
	r.ReferencedGroup = &collector.GroupRef{GroupID: group, Account: owner}
	return r
}

func TestBuildCrossAccount(t *testing.T) {
	const (
		member   = "444455556666"
		outsider = "999988887777"
	)
	org := &collector.Organization{ID: "o-a1b2c3d4e5", Accounts: []string{testAccount, member}}
	peered := refRule("sgr-peer", outsider, "sg-peer")
	peered.Direction = collector.Egress
	peered.ReferencedGroup.PeeringID = "pcx-0123456789abcdef0"
	rules := []collector.Rule{
		refRule("sgr-own", testAccount, "sg-db"),
		refRule("sgr-member", member, "sg-mon"),
		refRule("sgr-outsider", outsider, "sg-vendor"),
		refRule("sgr-elb", "amazon-elb", "sg-843f59ed"),
		peered,
	}
	runCases(t, []buildCase{
		{
			name:  "Organization listed",
			rules: rules,
			org:   org,
			want: []want{
				{kind: CrossAccountReference, rule: "sgr-own"},
				{kind: CrossAccountReference, rule: "sgr-member", sev: Info,
					reason: "the rule allows TCP 5432 from group sg-mon of account 444455556666, another account of the Organization o-a1b2c3d4e5"},
				{kind: CrossAccountReference, rule: "sgr-outsider", sev: Medium,
					reason: "the rule allows TCP 5432 from group sg-vendor of account 999988887777, which is not in the Organization o-a1b2c3d4e5: whoever controls account 999988887777 decides which of its network interfaces the rule applies to"},
				{kind: CrossAccountReference, rule: "sgr-elb", sev: Info, reason: "group sg-843f59ed of amazon-elb, an AWS service"},
				{kind: CrossAccountReference, rule: "sgr-peer", sev: Medium,
					reason: "the rule allows TCP 5432 to group sg-peer of account 999988887777 through VPC peering connection pcx-0123456789abcdef0, which is not in the Organization"},
				{kind: StaleSource, rule: "sgr-outsider"},
			},
		},
		{
			name:  "Organization unknown",
			rules: rules,
			want: []want{
				{kind: CrossAccountReference, rule: "sgr-own"},
				{kind: CrossAccountReference, rule: "sgr-member", sev: Low, reason: "whether that account belongs to the Organization is unknown"},
				{kind: CrossAccountReference, rule: "sgr-outsider", sev: Low, reason: "organizations:ListAccounts"},
				{kind: CrossAccountReference, rule: "sgr-elb", sev: Info},
			},
		},
		{
			name:  "no Organization",
			rules: rules,
			org:   &collector.Organization{Accounts: []string{}},
			want: []want{
				{kind: CrossAccountReference, rule: "sgr-member", sev: Medium, reason: "the audited accounts belong to no AWS Organization: whoever controls account 444455556666"},
			},
		},
	})
}

func TestBuildCrossAccountAudited(t *testing.T) {
	const member = "444455556666"
	c := buildCase{
		groups: []collector.Group{group("sg-app", "app", collector.Attached),
			{ID: "sg-mon", Name: "monitoring", Account: member, Region: testRegion, Attached: collector.Attached}},
		rules: []collector.Rule{refRule("sgr-member", member, "sg-mon")},
		org:   &collector.Organization{ID: "o-a1b2c3d4e5", Accounts: []string{testAccount, member}},
	}
	r := Build(c.input())
	checkWants(t, r, []want{{kind: CrossAccountReference, rule: "sgr-member", sev: Info, reason: "account 444455556666 is audited in this run"}})

	// The JSON names the referenced group, its account and whether it is in the
	// Organization.
	f := findFinding(r, CrossAccountReference, "sgr-member", "")
	if f == nil {
		t.Fatal("no cross-account-reference finding")
	}
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	want := `"referenced_group":{"group_id":"sg-mon","account":"444455556666","in_organization":true}`
	if !strings.Contains(string(data), want) {
		t.Errorf("json.Marshal(finding) = %s, want it to contain %s", data, want)
	}
	var back Finding
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if g := back.Ref().ReferencedGroup; g == nil || g.Account != member || g.InOrganization == nil || !*g.InOrganization {
		t.Errorf("json.Unmarshal(%s).Ref().ReferencedGroup = %+v, want account %s in the Organization", data, g, member)
	}
}
