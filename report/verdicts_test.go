package report

import (
	"net/netip"
	"reflect"
	"testing"

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
