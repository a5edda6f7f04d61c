package reputation

import (
	"net/netip"
	"slices"
	"testing"
)

func TestTargetCompare(t *testing.T) {
	addr := func(s string) Target { return AddressTarget(netip.MustParseAddr(s)) }
	prefix := func(s string) Target { return PrefixTarget(netip.MustParsePrefix(s)) }
	// In order: by address, IPv4 first, then by prefix length.
	ordered := []Target{
		prefix("10.0.0.0/8"),
		prefix("198.51.100.0/24"),
		addr("198.51.100.0"),
		addr("198.51.100.7"),
		prefix("2001:db8::/32"),
		addr("2001:db8::1"),
	}
	for i, a := range ordered {
		for j, b := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("%s.Compare(%s) = %d, want %d", a, b, got, want)
			}
		}
	}
}

func TestResultIndex(t *testing.T) {
	addr := func(s string) Target { return AddressTarget(netip.MustParseAddr(s)) }
	results := []Result{
		{Target: addr("198.51.100.7")},
		{Target: PrefixTarget(netip.MustParsePrefix("198.51.100.0/24"))},
		{Target: addr("2001:db8::1")},
		{Target: addr("198.51.100.7")}, // a target given twice
	}
	x := NewResultIndex(results)
	for _, c := range []struct {
		target Target
		want   []int32
	}{
		{addr("198.51.100.7"), []int32{0, 3}},
		{PrefixTarget(netip.MustParsePrefix("198.51.100.0/24")), []int32{1}},
		{addr("198.51.100.0"), []int32{}},
		{addr("2001:db8::1"), []int32{2}},
		{addr("2001:db8::2"), []int32{}},
	} {
		if got := x.Lookup(c.target); !slices.Equal(got, c.want) {
			t.Errorf("Lookup(%s) = %v, want %v", c.target, got, c.want)
		}
	}
}
