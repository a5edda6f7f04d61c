package collector_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/internal/motoserver"
)

// refusingSTS refuses to assume any role of one account, as AWS does when the role's trust
// policy does not name the caller. moto accepts every role, so this fake stands in for the
// refusal; every other call goes to moto.
type refusingSTS struct {
	stscreds.AssumeRoleAPIClient
	account string
}

func (f refusingSTS) AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, opts ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	if strings.Contains(aws.ToString(in.RoleArn), ":"+f.account+":") {
		return nil, &smithy.OperationError{ServiceID: "STS", OperationName: "AssumeRole",
			Err: &smithy.GenericAPIError{Code: "AccessDenied", Message: "not authorized to perform: sts:AssumeRole on resource: " + aws.ToString(in.RoleArn)}}
	}
	return f.AssumeRoleAPIClient.AssumeRole(ctx, in, opts...)
}

func TestAccountsSourceOrganization(t *testing.T) {
	srv := motoserver.Require(t, moto)
	ctx := t.Context()
	caller, members := srv.Organization(t, 3)
	regions := []string{"eu-west-1", "us-east-1"}
	refused := members[2]
	seeded := srv.SeedAccounts(t, caller, append([]string{caller}, members...), regions)

	org, err := collector.ListOrganization(ctx, organizations.NewFromConfig(srv.AWSConfig(t, "us-east-1")))
	if err != nil {
		t.Fatal(err)
	}
	accounts := org.Accounts
	want := slices.Sorted(slices.Values(append([]string{caller}, members...)))
	if !slices.Equal(accounts, want) || !strings.HasPrefix(org.ID, "o-") {
		t.Fatalf("ListOrganization = %+v, want id o-... and accounts %v", org, want)
	}

	base := srv.AWSConfig(t, "us-east-1")
	stsAPI := refusingSTS{AssumeRoleAPIClient: sts.NewFromConfig(base), account: refused}
	src := collector.AccountsSource{
		Accounts: accounts,
		Source: func(ctx context.Context, account string) (collector.AWSSource, error) {
			cfg := base.Copy()
			if account != caller {
				creds, err := collector.AssumeRole(ctx, stsAPI, "arn:aws:iam::"+account+":role/audit", "the-id")
				if err != nil {
					return collector.AWSSource{}, err
				}
				cfg.Credentials = creds
			}
			return collector.AWSSource{Regions: regions, Client: func(region string) collector.EC2API {
				return ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.Region = region })
			}}, nil
		},
	}
	c, err := src.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inv := c.Inventory(time.Now(), collector.Options{})

	if len(inv.Skipped) != 1 || inv.Skipped[0].Account != refused || inv.Skipped[0].Region != "" ||
		!strings.Contains(inv.Skipped[0].Reason, "AccessDenied") || !strings.Contains(inv.Skipped[0].Reason, "arn:aws:iam::"+refused+":role/audit") {
		t.Errorf("Collect: skipped = %+v, want account %s refusing its role", inv.Skipped, refused)
	}
	var wantRules []string
	for _, r := range seeded {
		if !strings.HasPrefix(r, refused+" ") {
			wantRules = append(wantRules, r)
		}
	}
	if got := motoserver.SeededRules(inv.Rules); !slices.Equal(got, wantRules) {
		t.Errorf("Collect: rules\n  %q\nwant\n  %q", got, wantRules)
	}
	wantAccounts := slices.DeleteFunc(slices.Clone(want), func(a string) bool { return a == refused })
	if !slices.Equal(inv.Accounts, wantAccounts) {
		t.Errorf("Collect: accounts = %v, want %v", inv.Accounts, wantAccounts)
	}
	if !slices.Equal(inv.Regions, regions) {
		t.Errorf("Collect: regions = %v, want %v", inv.Regions, regions)
	}
	var groups []string
	for _, g := range inv.Groups {
		if strings.HasPrefix(g.Name, "app-") {
			groups = append(groups, g.Account+" "+g.Region+" "+g.Name)
		}
	}
	var wantGroups []string
	for i, a := range append([]string{caller}, members...) {
		for j, r := range regions {
			if a != refused {
				wantGroups = append(wantGroups, fmt.Sprintf("%s %s app-%d-%d", a, r, i, j))
			}
		}
	}
	slices.Sort(wantGroups)
	if !slices.Equal(groups, wantGroups) {
		t.Errorf("Collect: groups\n  %q\nwant\n  %q", groups, wantGroups)
	}
}

// gatedEC2 counts the DescribeSecurityGroups calls in flight (one per region being read) and
// holds each until limit of them are in flight, so that a bound that lets more regions
// through shows as a count above limit. The gate opens after a generous timeout too, so
// that the test cannot hang.
type gatedEC2 struct {
	collector.EC2API
	g *gate
}

type gate struct {
	limit    int
	mu       sync.Mutex
	inFlight int
	most     int
	open     chan struct{}
}

func (f gatedEC2) DescribeSecurityGroups(ctx context.Context, in *ec2.DescribeSecurityGroupsInput, opts ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	g := f.g
	g.mu.Lock()
	g.inFlight++
	g.most = max(g.most, g.inFlight)
	open := g.open
	if g.inFlight >= g.limit {
		close(g.open)
		g.open = make(chan struct{})
	}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.inFlight--
		g.mu.Unlock()
	}()
	select {
	case <-open:
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return f.EC2API.DescribeSecurityGroups(ctx, in, opts...)
}

func TestAccountsSourceConcurrency(t *testing.T) {
	srv := motoserver.Require(t, moto)
	caller, members := srv.Organization(t, 2)
	accounts := append([]string{caller}, members...)
	regions := []string{"eu-west-1", "us-east-1"}
	for _, limit := range []int{1, 2, 3} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			g := &gate{limit: limit, open: make(chan struct{})}
			base := srv.AWSConfig(t, "us-east-1")
			src := collector.AccountsSource{
				Accounts:    accounts,
				Concurrency: limit,
				Source: func(ctx context.Context, account string) (collector.AWSSource, error) {
					cfg := base.Copy()
					if account != caller {
						creds, err := collector.AssumeRole(ctx, sts.NewFromConfig(base), "arn:aws:iam::"+account+":role/audit", "")
						if err != nil {
							return collector.AWSSource{}, err
						}
						cfg.Credentials = creds
					}
					return collector.AWSSource{Regions: regions, Client: func(region string) collector.EC2API {
						return gatedEC2{EC2API: ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.Region = region }), g: g}
					}}, nil
				},
			}
			c, err := src.Collect(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Skipped) != 0 || len(c.Regions) != len(regions) {
				t.Fatalf("Collect: regions %v, skipped %+v; want %v and none", c.Regions, c.Skipped, regions)
			}
			// Six regions in all, held until limit of them are read at once.
			if g.most != limit {
				t.Errorf("Collect with Concurrency %d read %d regions at once, want %d", limit, g.most, limit)
			}
		})
	}
}

// TestListOrganizationNone: an account in no Organization lists one with no accounts.
func TestListOrganizationNone(t *testing.T) {
	srv := motoserver.Require(t, moto)
	if err := srv.Reset(t.Context()); err != nil {
		t.Fatal(err)
	}
	org, err := collector.ListOrganization(t.Context(), organizations.NewFromConfig(srv.AWSConfig(t, "us-east-1")))
	if err != nil {
		t.Fatal(err)
	}
	if org == nil || org.ID != "" || len(org.Accounts) != 0 {
		t.Errorf("ListOrganization = %+v, want no id and no accounts", org)
	}
}

// TestInventoryOrganization: the inventory says, of each rule that names another account's
// group, whether that account is in the Organization, and nothing of the others.
func TestInventoryOrganization(t *testing.T) {
	const own, member, outsider = "111122223333", "444455556666", "999988887777"
	ref := func(id, owner string) collector.Rule {
		return collector.Rule{Account: own, Region: "us-east-1", GroupID: "sg-app", ID: id, Direction: collector.Ingress,
			Protocol: "tcp", FromPort: 22, ToPort: 22, ReferencedGroup: &collector.GroupRef{GroupID: "sg-" + id, Account: owner}}
	}
	rules := func() []collector.Rule {
		return []collector.Rule{ref("own", own), ref("member", member), ref("outsider", outsider), ref("unnamed", "")}
	}
	membership := func(inv *collector.Inventory) string {
		var out []string
		for _, r := range inv.Rules {
			in := "unknown"
			if p := r.ReferencedGroup.InOrganization; p != nil {
				in = fmt.Sprint(*p)
			}
			out = append(out, r.ID+"="+in)
		}
		return strings.Join(out, " ")
	}
	org := &collector.Organization{ID: "o-a1b2c3d4e5", Accounts: []string{member, own}}
	c := collector.Collection{Rules: rules(), Organization: org}
	if !c.ReferencesOtherAccounts() {
		t.Error("ReferencesOtherAccounts = false, want true")
	}
	inv := c.Inventory(time.Now(), collector.Options{})
	if got, want := membership(inv), "member=true outsider=false own=unknown unnamed=unknown"; got != want {
		t.Errorf("Inventory with the Organization: %s, want %s", got, want)
	}
	if inv.Organization != org {
		t.Errorf("Inventory.Organization = %+v, want %+v", inv.Organization, org)
	}
	inv = collector.Collection{Rules: rules()}.Inventory(time.Now(), collector.Options{})
	if got, want := membership(inv), "member=unknown outsider=unknown own=unknown unnamed=unknown"; got != want {
		t.Errorf("Inventory without the Organization: %s, want %s", got, want)
	}
	if (collector.Collection{Rules: rules()[:1]}).ReferencesOtherAccounts() {
		t.Error("ReferencesOtherAccounts of a rule naming its own account's group = true, want false")
	}
}
