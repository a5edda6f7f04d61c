package report

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/reputation"
)

func TestVerdictIndex(t *testing.T) {
	addr := func(s string) reputation.Target { return reputation.AddressTarget(netip.MustParseAddr(s)) }
	prefix := func(s string) reputation.Target { return reputation.PrefixTarget(netip.MustParsePrefix(s)) }
	v := func(provider string) []reputation.Verdict {
		return []reputation.Verdict{{Provider: provider, Status: reputation.Clean}}
	}
	results := []reputation.Result{
		{Target: addr("198.51.100.7"), Verdicts: v("a")},
		{Target: prefix("198.51.100.0/24"), Verdicts: v("b")},
		{Target: addr("2001:db8::1"), Verdicts: v("c")},
		{Target: addr("192.0.2.1"), Verdicts: v("d")},
		{Target: addr("198.51.100.7"), Verdicts: v("e")}, // a second result for one target
	}
	x := newVerdictIndex(results)
	for _, c := range []struct {
		target reputation.Target
		want   []string
	}{
		{addr("198.51.100.7"), []string{"a", "e"}},
		{prefix("198.51.100.0/24"), []string{"b"}},
		{addr("198.51.100.0"), nil}, // the prefix's first address is another target
		{addr("2001:db8::1"), []string{"c"}},
		{addr("192.0.2.1"), []string{"d"}},
		{addr("192.0.2.2"), nil},
	} {
		var got []string
		for _, v := range x.of(c.target) {
			got = append(got, v.Provider)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("verdicts of %s = %v, want %v", c.target, got, c.want)
		}
	}
	if len(results[0].Verdicts) != 1 || results[0].Verdicts[0].Provider != "a" {
		t.Errorf("the results were modified: %+v", results[0])
	}
}

// TestTargets checks that each address or prefix the rules reference is asked about
// once, in address order, found from the rules alone.
func TestTargets(t *testing.T) {
	rule := func(id, cidr string) collector.Rule {
		return collector.Rule{GroupID: "sg-1", ID: id, Direction: collector.Ingress, Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: netip.MustParsePrefix(cidr)}
	}
	c := collector.Collection{Rules: []collector.Rule{
		rule("sgr-1", "41.71.171.51/32"),
		rule("sgr-2", "41.71.171.50/31"), // expanded: .50 and .51, which sgr-1 has too
		rule("sgr-3", "41.71.0.0/16"),    // too wide to expand
		rule("sgr-4", "0.0.0.0/0"),       // the whole internet is not looked up
		rule("sgr-5", "10.0.0.1/32"),     // nor a private address
	}}
	inv := c.Inventory(time.Unix(0, 0), collector.Options{NoPublic: true})
	if inv.Public != nil {
		t.Errorf("Inventory with NoPublic: Public = %v, want nil", inv.Public)
	}
	var got []string
	for _, target := range Targets(inv.Rules, collector.DefaultMaxHostsPerCIDR) {
		got = append(got, target.String())
	}
	if want := []string{"41.71.0.0/16", "41.71.171.50", "41.71.171.51"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Targets = %q, want %q", got, want)
	}
}
