package collector_test

import (
	"slices"
	"testing"
	"time"

	"github.com/sgvet/sgvet/collector"
)

// TestInventoryKeepsOwnRuleChanges: of the rule changes read (log files of an organization
// trail hold those of other accounts too), the inventory keeps those of its own rules and
// groups.
func TestInventoryKeepsOwnRuleChanges(t *testing.T) {
	added := func(rule, group, event string) collector.RuleHistory {
		return collector.RuleHistory{Added: &collector.RuleChange{RuleID: rule, GroupID: group, Event: event, Principal: "bob", At: trailNow}}
	}
	c := collector.Collection{
		Groups: []collector.Group{{ID: "sg-1", Account: account, Region: region}},
		Rules: []collector.Rule{{ID: "sgr-own", GroupID: "sg-1", Account: account, Region: region, Direction: collector.Ingress,
			Protocol: "tcp", FromPort: 22, ToPort: 22}},
		RuleChanges: collector.Attributions{
			"sgr-own":   added("sgr-own", "sg-1", collector.EventAuthorizeIngress),
			"sg-1":      added("", "sg-1", collector.EventCreateGroup),
			"sgr-other": added("sgr-other", "sg-9", collector.EventAuthorizeIngress),
			"sg-9":      added("", "sg-9", collector.EventCreateGroup),
		},
	}
	inv := c.Inventory(time.Now(), collector.Options{})
	var got []string
	for id := range inv.RuleChanges {
		got = append(got, id)
	}
	slices.Sort(got)
	if want := []string{"sg-1", "sgr-own"}; !slices.Equal(got, want) {
		t.Errorf("Inventory().RuleChanges holds %v, want %v", got, want)
	}
}

// TestInventorySortsForLookups: Inventory sorts the Organization's accounts and the
// CloudTrail coverage, given in any order, so that Has and Covers, which search them,
// find every one.
func TestInventorySortsForLookups(t *testing.T) {
	accounts := []string{"999988887777", "111122223333", "555566667777", "444455556666"}
	regions := []collector.AccountRegion{{"444455556666", "us-east-1"}, {"111122223333", "eu-west-1"},
		{"111122223333", "ap-south-1"}, {"999988887777", "eu-west-1"}}
	c := collector.Collection{
		Organization: &collector.Organization{Accounts: slices.Clone(accounts)},
		CloudTrail:   &collector.TrailCoverage{Regions: slices.Clone(regions)},
	}
	inv := c.Inventory(time.Now(), collector.Options{})
	if got := inv.Organization.Accounts; !slices.IsSorted(got) {
		t.Errorf("Inventory().Organization.Accounts = %v, want them sorted", got)
	}
	for _, a := range accounts {
		if !inv.Organization.Has(a) {
			t.Errorf("Has(%q) = false, want true", a)
		}
	}
	if inv.Organization.Has("222233334444") {
		t.Error(`Has("222233334444") = true, want false`)
	}
	for _, r := range regions {
		if !inv.CloudTrail.Covers(r.Account, r.Region) {
			t.Errorf("Covers(%q, %q) = false, want true", r.Account, r.Region)
		}
	}
	for _, r := range []collector.AccountRegion{{"111122223333", "us-east-1"}, {"444455556666", "eu-west-1"}} {
		if inv.CloudTrail.Covers(r.Account, r.Region) {
			t.Errorf("Covers(%q, %q) = true, want false", r.Account, r.Region)
		}
	}
	var none *collector.TrailCoverage
	if none.Covers("111122223333", "eu-west-1") {
		t.Error("Covers of nil coverage = true, want false")
	}
}
