package report

import (
	"testing"

	"github.com/sgvet/sgvet/collector"
)

func TestBuildStaleReferences(t *testing.T) {
	deleted := in("sgr-gone", "tcp", 5432, 5432, "", "from the old app")
	deleted.ReferencedGroup = &collector.GroupRef{GroupID: "sg-old"}
	peered := out("sgr-peer", "tcp", 443, 443, "", "to the partner")
	peered.ReferencedGroup = &collector.GroupRef{GroupID: "sg-far", Account: "999988887777", PeeringID: "pcx-0a1b", PeeringStatus: "deleted"}
	live := in("sgr-live", "tcp", 22, 22, "", "from the bastion")
	live.ReferencedGroup = &collector.GroupRef{GroupID: "sg-bastion"}
	c := buildCase{rules: []collector.Rule{deleted, peered, live}}
	in := c.input()
	in.Inventory.StaleReferences = []collector.StaleReference{
		{Account: testAccount, Region: testRegion, GroupID: "sg-app", Direction: collector.Ingress, Protocol: "tcp", FromPort: 5432, ToPort: 5432,
			Missing: collector.GroupRef{GroupID: "sg-old"}, RuleIDs: []string{"sgr-gone"}},
		{Account: testAccount, Region: testRegion, GroupID: "sg-app", Direction: collector.Egress, Protocol: "tcp", FromPort: 443, ToPort: 443,
			Missing: *peered.ReferencedGroup, RuleIDs: []string{"sgr-peer"}},
	}
	r := Build(in)
	checkReport(t, r)
	checkWants(t, r, []want{
		{kind: StaleSource, rule: "sgr-gone", sev: Low,
			reason: "the rule references group sg-old, which no longer exists: it was deleted; the rule lets in nothing now, but the id may come back to mean something else, so remove it"},
		{kind: StaleSource, rule: "sgr-peer", sev: Low,
			reason: "the rule references group sg-far of account 999988887777, which no longer exists: it was deleted, or the VPC peering connection pcx-0a1b to it is gone (deleted); the rule reaches nothing now"},
		// A stale reference to another account's group is stale, not a cross-account reference.
		{kind: CrossAccountReference, rule: "sgr-peer"},
		{kind: StaleSource, rule: "sgr-live"},
	})
}
