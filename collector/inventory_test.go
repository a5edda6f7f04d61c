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
