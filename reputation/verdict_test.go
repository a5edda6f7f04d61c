package reputation

import (
	"net/netip"
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
