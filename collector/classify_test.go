package collector

import (
	"math"
	"net/netip"
	"strings"
	"testing"
)

// naiveSpecial is the reference for Special: a scan of the whole table for the longest
// range that contains the whole of the masked prefix a/bits.
func naiveSpecial(a netip.Addr, bits int) (SpecialRange, bool) {
	best, found := SpecialRange{}, false
	for _, r := range specialRanges {
		if r.Prefix.Addr().BitLen() != a.BitLen() || r.Prefix.Bits() > bits || !r.Prefix.Contains(a) {
			continue
		}
		if !found || r.Prefix.Bits() > best.Prefix.Bits() {
			best, found = r, true
		}
	}
	return best, found
}

// lastAddr returns the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	if p.Addr().Is4() {
		b := p.Addr().As4()
		for i := p.Bits(); i < 32; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		return netip.AddrFrom4(b)
	}
	b := p.Addr().As16()
	for i := p.Bits(); i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom16(b)
}

func TestSpecialTable(t *testing.T) {
	seen := make(map[netip.Prefix]bool)
	for _, r := range specialRanges {
		if !r.Prefix.IsValid() || r.Prefix != r.Prefix.Masked() {
			t.Errorf("range %v is not a valid masked prefix", r.Prefix)
		}
		if seen[r.Prefix] {
			t.Errorf("range %v is listed twice", r.Prefix)
		}
		seen[r.Prefix] = true
		if r.Name == "" {
			t.Errorf("range %v has no name", r.Prefix)
		}
		if !strings.HasPrefix(r.RFC, "RFC ") {
			t.Errorf("range %v cites %q, want an RFC", r.Prefix, r.RFC)
		}
	}
}

// TestSpecialRangeEdges checks the first and last address of every range of the table, and
// the addresses just outside them, against the reference scan; and that every range is its
// own most specific range.
func TestSpecialRangeEdges(t *testing.T) {
	for _, r := range specialRanges {
		first, last := r.Prefix.Addr(), lastAddr(r.Prefix)
		t.Run(r.Prefix.String(), func(t *testing.T) {
			got, ok := Special(r.Prefix)
			if Normalize(r.Prefix) != r.Prefix {
				// ::ffff:0:0/96 is the IPv4 world once normalized.
				if ok || !IsWorld(r.Prefix) {
					t.Errorf("Special(%q) = %v, %v, want not special and world", r.Prefix, got, ok)
				}
			} else if !ok || got != r {
				t.Errorf("Special(%q) = %v, %v, want %v", r.Prefix, got, ok, r)
			}
			for _, a := range []netip.Addr{first, last} {
				if _, ok := SpecialAddr(a); !ok {
					t.Errorf("SpecialAddr(%q) = not special, want special", a)
				}
			}
			for _, a := range []netip.Addr{first, last, first.Prev(), last.Next()} {
				if !a.IsValid() {
					continue // below 0.0.0.0 or above the last address of the family
				}
				u := a.Unmap()
				want, wantOK := naiveSpecial(u, u.BitLen())
				if got, ok := SpecialAddr(a); got != want || ok != wantOK {
					t.Errorf("SpecialAddr(%q) = %v, %v, want %v, %v", a, got, ok, want, wantOK)
				}
				p := netip.PrefixFrom(a, a.BitLen())
				if got, ok := Special(p); got != want || ok != wantOK {
					t.Errorf("Special(%q) = %v, %v, want %v, %v", p, got, ok, want, wantOK)
				}
			}
		})
	}
}

// TestSpecialAddrSweep compares SpecialAddr with the reference scan at the first and last
// address of every IPv4 /16 and every IPv6 /16.
func TestSpecialAddrSweep(t *testing.T) {
	for i := range 1 << 16 {
		hi, lo := byte(i>>8), byte(i)
		for _, a := range []netip.Addr{
			netip.AddrFrom4([4]byte{hi, lo, 0, 0}),
			netip.AddrFrom4([4]byte{hi, lo, 255, 255}),
			netip.AddrFrom16([16]byte{hi, lo}),
			netip.AddrFrom16([16]byte{hi, lo, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255}),
		} {
			u := a.Unmap()
			want, wantOK := naiveSpecial(u, u.BitLen())
			if got, ok := SpecialAddr(a); got != want || ok != wantOK {
				t.Errorf("SpecialAddr(%q) = %v, %v, want %v, %v", a, got, ok, want, wantOK)
			}
		}
	}
}

func TestSpecialAddr(t *testing.T) {
	tests := []struct {
		in   string
		want string // Name of the range, "" for public
	}{
		// IPv4.
		{"0.0.0.0", "This host on this network"},
		{"0.0.0.1", "This network"},
		{"0.255.255.255", "This network"},
		{"1.0.0.0", ""},
		{"1.1.1.1", ""},
		{"8.8.8.8", ""},
		{"9.255.255.255", ""},
		{"10.0.0.0", "Private-Use"},
		{"10.255.255.255", "Private-Use"},
		{"11.0.0.0", ""},
		{"100.63.255.255", ""},
		{"100.64.0.0", "Shared Address Space"},
		{"100.127.255.255", "Shared Address Space"},
		{"100.128.0.0", ""},
		{"126.255.255.255", ""},
		{"127.0.0.1", "Loopback"},
		{"128.0.0.0", ""},
		{"169.253.255.255", ""},
		{"169.254.169.254", "Link Local"},
		{"169.255.0.0", ""},
		{"172.15.255.255", ""},
		{"172.16.0.0", "Private-Use"},
		{"172.31.255.255", "Private-Use"},
		{"172.32.0.0", ""},
		{"191.255.255.255", ""},
		{"192.0.0.0", "IPv4 Service Continuity Prefix"},
		{"192.0.0.7", "IPv4 Service Continuity Prefix"},
		{"192.0.0.8", "IPv4 dummy address"},
		{"192.0.0.9", "Port Control Protocol Anycast"},
		{"192.0.0.10", "Traversal Using Relays around NAT Anycast"},
		{"192.0.0.11", "IETF Protocol Assignments"},
		{"192.0.0.170", "NAT64/DNS64 Discovery"},
		{"192.0.0.171", "NAT64/DNS64 Discovery"},
		{"192.0.0.255", "IETF Protocol Assignments"},
		{"192.0.1.0", ""},
		{"192.0.2.0", "Documentation (TEST-NET-1)"},
		{"192.0.2.255", "Documentation (TEST-NET-1)"},
		{"192.0.3.0", ""},
		{"192.31.196.1", "AS112-v4"},
		{"192.52.193.1", "AMT"},
		{"192.88.98.255", ""},
		{"192.88.99.1", "Deprecated (6to4 Relay Anycast)"},
		{"192.88.99.2", "6a44-relay anycast address"},
		{"192.88.100.0", ""},
		{"192.167.255.255", ""},
		{"192.168.0.0", "Private-Use"},
		{"192.168.255.255", "Private-Use"},
		{"192.169.0.0", ""},
		{"192.175.48.1", "Direct Delegation AS112 Service"},
		{"198.17.255.255", ""},
		{"198.18.0.0", "Benchmarking"},
		{"198.19.255.255", "Benchmarking"},
		{"198.20.0.0", ""},
		{"198.51.100.1", "Documentation (TEST-NET-2)"},
		{"203.0.112.255", ""},
		{"203.0.113.0", "Documentation (TEST-NET-3)"},
		{"203.0.113.255", "Documentation (TEST-NET-3)"},
		{"203.0.114.0", ""},
		{"223.255.255.255", ""},
		{"224.0.0.0", "Multicast"},
		{"239.255.255.255", "Multicast"},
		{"240.0.0.0", "Reserved"},
		{"255.255.255.254", "Reserved"},
		{"255.255.255.255", "Limited Broadcast"},
		// IPv4-mapped IPv6 addresses are classified as IPv4.
		{"::ffff:10.0.0.1", "Private-Use"},
		{"::ffff:8.8.8.8", ""},
		{"::ffff:255.255.255.255", "Limited Broadcast"},
		// IPv6.
		{"::", "Unspecified Address"},
		{"::1", "Loopback Address"},
		{"::2", notGlobalUnicast},
		{"::a00:1", notGlobalUnicast}, // deprecated IPv4-compatible
		{"64:ff9b::1", "IPv4-IPv6 Translation"},
		{"64:ff9b::a00:1", "IPv4-IPv6 Translation"},
		{"64:ff9b:1::1", "Local-Use IPv4/IPv6 Translation"},
		{"100::1", "Discard-Only Address Block"},
		{"100:0:0:1::1", "Dummy IPv6 Prefix"},
		{"100:0:0:2::", notGlobalUnicast},
		{"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", notGlobalUnicast},
		{"2000::", ""},
		{"2001::", "TEREDO"},
		{"2001:0:ffff::1", "TEREDO"},
		{"2001:1::", "IETF Protocol Assignments"},
		{"2001:1::1", "Port Control Protocol Anycast"},
		{"2001:1::2", "Traversal Using Relays around NAT Anycast"},
		{"2001:1::3", "DNS-SD Service Registration Protocol Anycast"},
		{"2001:1::4", "IETF Protocol Assignments"},
		{"2001:2::1", "Benchmarking"},
		{"2001:2:1::", "IETF Protocol Assignments"},
		{"2001:3::1", "AMT"},
		{"2001:4:112::1", "AS112-v6"},
		{"2001:10::1", "Deprecated (previously ORCHID)"},
		{"2001:20::1", "ORCHIDv2"},
		{"2001:30::1", "Drone Remote ID Protocol Entity Tags (DETs) Prefix"},
		{"2001:40::", "IETF Protocol Assignments"},
		{"2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "IETF Protocol Assignments"},
		{"2001:200::", ""},
		{"2001:4860:4860::8888", ""},
		{"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", ""},
		{"2001:db8::", "Documentation"},
		{"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "Documentation"},
		{"2001:db9::", ""},
		{"2002::", "6to4"},
		{"2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "6to4"},
		{"2003::", ""},
		{"2600:1f18::1", ""},
		{"2606:4700::1111", ""},
		{"2620:4f:7fff:ffff:ffff:ffff:ffff:ffff", ""},
		{"2620:4f:8000::1", "Direct Delegation AS112 Service"},
		{"2620:4f:8001::", ""},
		{"3ffe::1", ""},
		{"3fff::", "Documentation"},
		{"3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "Documentation"},
		{"3fff:1000::", ""},
		{"3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ""},
		{"4000::", notGlobalUnicast},
		{"5f00::1", "Segment Routing (SRv6) SIDs"},
		{"5f01::", notGlobalUnicast},
		{"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", notGlobalUnicast},
		{"fc00::", "Unique-Local"},
		{"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "Unique-Local"},
		{"fe00::", notGlobalUnicast},
		{"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", notGlobalUnicast},
		{"fe80::", "Link-Local Unicast"},
		{"fe80::1%eth0", "Link-Local Unicast"},
		{"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "Link-Local Unicast"},
		{"fec0::1", notGlobalUnicast}, // deprecated site-local
		{"ff02::1", "Multicast"},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "Multicast"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			a := netip.MustParseAddr(tt.in)
			r, ok := SpecialAddr(a)
			if got := r.Name; got != tt.want || ok != (tt.want != "") {
				t.Errorf("SpecialAddr(%q) = %q, %v, want %q", tt.in, got, ok, tt.want)
			}
			if a.Zone() != "" {
				return // a prefix has no zone
			}
			p := netip.PrefixFrom(a, a.BitLen())
			r, ok = Special(p)
			if got := r.Name; got != tt.want || ok != (tt.want != "") {
				t.Errorf("Special(%q) = %q, %v, want %q", p, got, ok, tt.want)
			}
		})
	}
}

func TestSpecialPrefix(t *testing.T) {
	tests := []struct {
		in    string
		want  string // Name of the range, "" for not special
		world bool
	}{
		{"0.0.0.0/0", "", true},
		{"0.0.0.0/1", "", false},
		{"0.0.0.0/8", "This network", false},
		{"0.0.0.0/32", "This host on this network", false},
		{"8.8.8.0/24", "", false},
		{"10.0.0.0/7", "", false},
		{"10.0.0.0/8", "Private-Use", false},
		{"10.1.0.0/16", "Private-Use", false},
		{"10.1.2.3/8", "Private-Use", false}, // host bits set
		{"100.64.0.0/9", "", false},
		{"172.16.0.0/11", "", false},
		{"172.16.0.0/12", "Private-Use", false},
		{"172.31.255.0/24", "Private-Use", false},
		{"192.0.0.0/16", "", false},
		{"192.0.0.0/23", "", false},
		{"192.0.0.0/24", "IETF Protocol Assignments", false},
		{"192.0.0.0/28", "IETF Protocol Assignments", false},
		{"192.0.0.0/29", "IPv4 Service Continuity Prefix", false},
		{"192.0.0.8/31", "IETF Protocol Assignments", false},
		{"192.0.0.170/31", "IETF Protocol Assignments", false},
		{"192.168.0.0/15", "", false},
		{"198.18.0.0/15", "Benchmarking", false},
		{"198.18.0.0/14", "", false},
		{"203.0.113.0/25", "Documentation (TEST-NET-3)", false},
		{"203.0.113.0/23", "", false},
		{"224.0.0.0/3", "", false},
		{"224.0.0.0/4", "Multicast", false},
		{"240.0.0.0/4", "Reserved", false},
		{"255.255.255.254/31", "Reserved", false},
		{"::/0", "", true},
		{"::/1", "", false},
		{"::/2", "", false},
		{"::/3", notGlobalUnicast, false},
		{"::/127", notGlobalUnicast, false},
		{"::ffff:0:0/95", notGlobalUnicast, false},
		{"::ffff:0:0/96", "", true},
		{"::ffff:10.0.0.0/104", "Private-Use", false},
		{"::ffff:203.0.113.0/120", "Documentation (TEST-NET-3)", false},
		{"64:ff9b::/96", "IPv4-IPv6 Translation", false},
		{"2000::/3", "", false},
		{"2001::/16", "", false},
		{"2001::/23", "IETF Protocol Assignments", false},
		{"2001::/31", "IETF Protocol Assignments", false},
		{"2001::/33", "TEREDO", false},
		{"2001:db8::/32", "Documentation", false},
		{"2001:db8::/31", "", false},
		{"2600::/12", "", false},
		{"3fff::/20", "Documentation", false},
		{"3fff::/16", "", false},
		{"4000::/2", notGlobalUnicast, false},
		{"8000::/1", notGlobalUnicast, false},
		{"fc00::/6", notGlobalUnicast, false},
		{"fc00::/7", "Unique-Local", false},
		{"fc00::/8", "Unique-Local", false},
		{"fe80::/64", "Link-Local Unicast", false},
		{"ff00::/8", "Multicast", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p := netip.MustParsePrefix(tt.in)
			r, ok := Special(p)
			if got := r.Name; got != tt.want || ok != (tt.want != "") {
				t.Errorf("Special(%q) = %q, %v, want %q", tt.in, got, ok, tt.want)
			}
			if got := IsWorld(p); got != tt.world {
				t.Errorf("IsWorld(%q) = %v, want %v", tt.in, got, tt.world)
			}
		})
	}
}

func TestSpecialInvalid(t *testing.T) {
	if r, ok := Special(netip.Prefix{}); ok {
		t.Errorf("Special(%q) = %v, %v, want not special", netip.Prefix{}, r, ok)
	}
	if r, ok := SpecialAddr(netip.Addr{}); ok {
		t.Errorf("SpecialAddr(%q) = %v, %v, want not special", netip.Addr{}, r, ok)
	}
	if IsWorld(netip.Prefix{}) {
		t.Errorf("IsWorld(%q) = true, want false", netip.Prefix{})
	}
}

func TestNormalize(t *testing.T) {
	bad := netip.PrefixFrom(netip.MustParseAddr("10.0.0.1"), 33)
	tests := []struct {
		in, want netip.Prefix
	}{
		{netip.MustParsePrefix("203.0.113.7/24"), netip.MustParsePrefix("203.0.113.0/24")},
		{netip.MustParsePrefix("203.0.113.7/32"), netip.MustParsePrefix("203.0.113.7/32")},
		{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("0.0.0.0/0")},
		{netip.MustParsePrefix("::ffff:203.0.113.7/128"), netip.MustParsePrefix("203.0.113.7/32")},
		{netip.MustParsePrefix("::ffff:203.0.113.7/120"), netip.MustParsePrefix("203.0.113.0/24")},
		{netip.MustParsePrefix("::ffff:0:0/96"), netip.MustParsePrefix("0.0.0.0/0")},
		{netip.MustParsePrefix("::ffff:10.0.0.0/104"), netip.MustParsePrefix("10.0.0.0/8")},
		{netip.MustParsePrefix("::ffff:10.0.0.0/95"), netip.MustParsePrefix("::fffe:0:0/95")},
		{netip.MustParsePrefix("2001:db8:1:2:3:4:5:6/80"), netip.MustParsePrefix("2001:db8:1:2:3::/80")},
		{netip.MustParsePrefix("::/0"), netip.MustParsePrefix("::/0")},
		{netip.Prefix{}, netip.Prefix{}},
		{bad, bad},
	}
	for _, tt := range tests {
		t.Run(tt.in.String(), func(t *testing.T) {
			if got := Normalize(tt.in); got != tt.want {
				t.Errorf("Normalize(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestSize(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
	}{
		{"203.0.113.7/32", 1},
		{"203.0.113.0/24", 256},
		{"10.0.0.0/8", 1 << 24},
		{"0.0.0.0/0", 1 << 32},
		{"::ffff:203.0.113.0/120", 256},
		{"2001:db8::1/128", 1},
		{"2001:db8::/120", 256},
		{"2001:db8::/65", 1 << 63},
		{"2001:db8::/64", math.MaxUint64},
		{"2001:db8::/32", math.MaxUint64},
		{"::/0", math.MaxUint64},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := Size(netip.MustParsePrefix(tt.in)); got != tt.want {
				t.Errorf("Size(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
	if got := Size(netip.Prefix{}); got != 0 {
		t.Errorf("Size(%q) = %v, want %v", netip.Prefix{}, got, 0)
	}
}

func FuzzClassify(f *testing.F) {
	for _, s := range []string{
		"10.0.0.0/8",
		"10.1.2.3/16",
		"192.0.0.0/16",
		"192.0.0.170/31",
		"203.0.113.0/25",
		"255.255.255.255/32",
		"0.0.0.0/0",
		"::/0",
		"::ffff:1.2.3.4/128",
		"::ffff:0:0/96",
		"::ffff:10.0.0.0/95",
		"2001:db8::/32",
		"2001:1::1/128",
		"2606:4700::1111/128",
		"fe7f:ffff::/32",
		"ff02::1/128",
		"not a cidr",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			t.Skip()
		}
		n := Normalize(p)
		if !n.IsValid() {
			t.Fatalf("Normalize(%q) = %v, want a valid prefix", p, n)
		}
		if again := Normalize(n); again != n {
			t.Errorf("Normalize(Normalize(%q)) = %v, want %v", p, again, n)
		}
		if n != n.Masked() {
			t.Errorf("Normalize(%q) = %v, want a masked prefix", p, n)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 && !n.Addr().Is4() {
			t.Errorf("Normalize(%q) = %v, want an IPv4 prefix", p, n)
		}
		if Size(n) != Size(p) {
			t.Errorf("Size(%q) = %v, want Size(%q) = %v", n, Size(n), p, Size(p))
		}

		r, ok := Special(p)
		want, wantOK := naiveSpecial(n.Addr(), n.Bits())
		if r != want || ok != wantOK {
			t.Errorf("Special(%q) = %v, %v, want %v, %v", p, r, ok, want, wantOK)
		}
		if IsWorld(p) && ok {
			t.Errorf("Special(%q) = %v, want not special: it is the world", p, r)
		}
		if n.Addr().Is6() && n.Bits() > 0 && !netip.MustParsePrefix("2000::/3").Overlaps(n) && !ok {
			t.Errorf("Special(%q) = not special, want %q", p, notGlobalUnicast)
		}
		if ok {
			for _, a := range []netip.Addr{n.Addr(), lastAddr(n)} {
				ar, aok := SpecialAddr(a)
				if !aok {
					t.Errorf("SpecialAddr(%q) = not special, want special inside Special(%q) = %v", a, p, r)
				}
				if a.Is4In6() {
					// The last address of ::fffe:0:0/95 and its like: SpecialAddr
					// classifies it as IPv4, Special keeps the IPv6 prefix IPv6.
					continue
				}
				if !r.Prefix.Contains(a) || ar.Prefix.Bits() < r.Prefix.Bits() || !r.Prefix.Contains(ar.Prefix.Addr()) {
					t.Errorf("SpecialAddr(%q) = %v, want a range within %v", a, ar, r)
				}
			}
		}
	})
}

func BenchmarkSpecial(b *testing.B) {
	benches := []struct {
		name string
		in   netip.Prefix
	}{
		{"v4-public", netip.MustParsePrefix("8.8.8.8/32")},
		{"v4-private", netip.MustParsePrefix("10.1.2.3/32")},
		{"v4-192-public", netip.MustParsePrefix("192.1.2.3/32")},
		{"v4-prefix", netip.MustParsePrefix("52.95.0.0/16")},
		{"v6-public", netip.MustParsePrefix("2606:4700::1111/128")},
		{"v6-2001-public", netip.MustParsePrefix("2001:4860:4860::8888/128")},
		{"v6-mapped", netip.MustParsePrefix("::ffff:8.8.8.8/128")},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Special(bb.in)
			}
		})
	}
	b.Run("v4-expand-24", func(b *testing.B) {
		// What expanding a /24 costs: SpecialAddr on each of its 256 addresses.
		b.ReportAllocs()
		base := netip.MustParseAddr("52.95.110.0")
		for b.Loop() {
			a := base
			for range 256 {
				SpecialAddr(a)
				a = a.Next()
			}
		}
	})
}
