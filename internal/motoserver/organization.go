package motoserver

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/sgvet/sgvet/collector"
)

// Organization wipes the emulator's state, makes the account of AWSConfig's credentials
// the management account of a new Organization with the given number of member accounts,
// and returns the management account's id and the members' ids, in order of creation.
func (s *Server) Organization(t testing.TB, members int) (string, []string) {
	t.Helper()
	ctx := t.Context()
	if err := s.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	api := organizations.NewFromConfig(s.AWSConfig(t, "us-east-1"))
	org, err := api.CreateOrganization(ctx, &organizations.CreateOrganizationInput{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range members {
		out, err := api.CreateAccount(ctx, &organizations.CreateAccountInput{
			AccountName: aws.String(fmt.Sprintf("member-%d", i+1)),
			Email:       aws.String(fmt.Sprintf("member-%d@example.com", i+1)),
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, aws.ToString(out.CreateAccountStatus.AccountId))
	}
	return aws.ToString(org.Organization.MasterAccountId), ids
}

// AccountConfig returns AWSConfig(t, region) with the credentials of role in account,
// assumed by the management account: moto keeps each account's resources apart, so the
// configuration sees those of account.
func (s *Server) AccountConfig(t testing.TB, region, account, role string) aws.Config {
	t.Helper()
	cfg := s.AWSConfig(t, region)
	arn := fmt.Sprintf("arn:aws:iam::%s:role/%s", account, role)
	cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(cfg), arn))
	return cfg
}

// SeedAccounts creates, in each account and region, a group app-I-J (I the account's
// index, J the region's) with one ingress rule from 198.51.100.(10I+J) on port 22, through
// the account's own credentials (the role "audit" in accounts other than caller). It
// returns the group's rules, its egress rule included, as "account region group direction
// rule-id", sorted.
func (s *Server) SeedAccounts(t testing.TB, caller string, accounts, regions []string) []string {
	t.Helper()
	var rules []string
	for i, account := range accounts {
		for j, region := range regions {
			cfg := s.AWSConfig(t, region)
			if account != caller {
				cfg = s.AccountConfig(t, region, account, "audit")
			}
			api := ec2.NewFromConfig(cfg)
			name := fmt.Sprintf("app-%d-%d", i, j)
			g, err := api.CreateSecurityGroup(t.Context(), &ec2.CreateSecurityGroupInput{GroupName: aws.String(name), Description: aws.String(name)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := api.AuthorizeSecurityGroupIngress(t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{
				GroupId: g.GroupId, IpPermissions: []types.IpPermission{{
					IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
					IpRanges: []types.IpRange{{CidrIp: aws.String(fmt.Sprintf("198.51.100.%d/32", 10*i+j)), Description: aws.String("ssh")}},
				}},
			}); err != nil {
				t.Fatal(err)
			}
			// The group's rules: the ingress rule, and the egress rule every new group has.
			out, err := api.DescribeSecurityGroupRules(t.Context(), &ec2.DescribeSecurityGroupRulesInput{
				Filters: []types.Filter{{Name: aws.String("group-id"), Values: []string{aws.ToString(g.GroupId)}}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(out.SecurityGroupRules) != 2 {
				t.Fatalf("group %s of account %s has %d rules, want 2", name, account, len(out.SecurityGroupRules))
			}
			for _, r := range out.SecurityGroupRules {
				dir := "ingress"
				if aws.ToBool(r.IsEgress) {
					dir = "egress"
				}
				rules = append(rules, fmt.Sprintf("%s %s %s %s %s", account, region, name, dir, aws.ToString(r.SecurityGroupRuleId)))
			}
		}
	}
	slices.Sort(rules)
	return rules
}

// SeededRules returns, of rules, those of the groups SeedAccounts made, described as it
// describes them, sorted.
func SeededRules(rules []collector.Rule) []string {
	var out []string
	for _, r := range rules {
		if strings.HasPrefix(r.GroupName, "app-") {
			out = append(out, fmt.Sprintf("%s %s %s %s %s", r.Account, r.Region, r.GroupName, r.Direction, r.ID))
		}
	}
	slices.Sort(out)
	return out
}
