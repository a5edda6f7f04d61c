package motoserver

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/sts"
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
