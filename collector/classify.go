package collector

import (
	"cmp"
	"encoding/binary"
	"math"
	"net/netip"
	"slices"
)

// SpecialRange is one entry of the IANA IPv4 or IPv6 Special-Purpose Address Registry
// (or of the multicast / unallocated space the tool also treats as not public).
type SpecialRange struct {
	Prefix netip.Prefix
	Name   string // as the registry names it, e.g. "Private-Use", "Shared Address Space"
	RFC    string // e.g. "RFC 1918"
}

// notGlobalUnicast is the Name of the ranges that cover the IPv6 space outside 2000::/3.
const notGlobalUnicast = "Not global unicast (outside 2000::/3)"

// specialRanges lists every entry of the IANA IPv4 Special-Purpose Address Registry
// (iana-ipv4-special-registry) and IANA IPv6 Special-Purpose Address Registry
// (iana-ipv6-special-registry), plus the IPv4 and IPv6 multicast blocks and the IPv6
// space outside 2000::/3.
//
// Some registry entries are marked "Globally Reachable: True" (the PCP and TURN anycast
// addresses, AS112, AMT, ORCHIDv2, DETs, 64:ff9b::/96). The project treats every registry
// range as not public regardless: an address that a security group opens to one of them is
// not an address of the open Internet that the rule's author meant to reach, so all of them
// are special here.
//
// Entries may nest (192.0.0.9/32 lies in 192.0.0.0/24); lookups return the most specific.
// The table is never modified.
var specialRanges = []SpecialRange{
	// IANA IPv4 Special-Purpose Address Registry.
	{netip.MustParsePrefix("0.0.0.0/8"), "This network", "RFC 791, Section 3.2"},
	{netip.MustParsePrefix("0.0.0.0/32"), "This host on this network", "RFC 1122, Section 3.2.1.3"},
	{netip.MustParsePrefix("10.0.0.0/8"), "Private-Use", "RFC 1918"},
	{netip.MustParsePrefix("100.64.0.0/10"), "Shared Address Space", "RFC 6598"},
	{netip.MustParsePrefix("127.0.0.0/8"), "Loopback", "RFC 1122, Section 3.2.1.3"},
	{netip.MustParsePrefix("169.254.0.0/16"), "Link Local", "RFC 3927"},
	{netip.MustParsePrefix("172.16.0.0/12"), "Private-Use", "RFC 1918"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF Protocol Assignments", "RFC 6890, Section 2.1"},
	{netip.MustParsePrefix("192.0.0.0/29"), "IPv4 Service Continuity Prefix", "RFC 7335"},
	{netip.MustParsePrefix("192.0.0.8/32"), "IPv4 dummy address", "RFC 7600"},
	{netip.MustParsePrefix("192.0.0.9/32"), "Port Control Protocol Anycast", "RFC 7723"},
	{netip.MustParsePrefix("192.0.0.10/32"), "Traversal Using Relays around NAT Anycast", "RFC 8155"},
	{netip.MustParsePrefix("192.0.0.170/32"), "NAT64/DNS64 Discovery", "RFC 8880, RFC 7050 Section 2.2"},
	{netip.MustParsePrefix("192.0.0.171/32"), "NAT64/DNS64 Discovery", "RFC 8880, RFC 7050 Section 2.2"},
	{netip.MustParsePrefix("192.0.2.0/24"), "Documentation (TEST-NET-1)", "RFC 5737"},
	{netip.MustParsePrefix("192.31.196.0/24"), "AS112-v4", "RFC 7535"},
	{netip.MustParsePrefix("192.52.193.0/24"), "AMT", "RFC 7450"},
	{netip.MustParsePrefix("192.88.99.0/24"), "Deprecated (6to4 Relay Anycast)", "RFC 7526"},
	{netip.MustParsePrefix("192.88.99.2/32"), "6a44-relay anycast address", "RFC 6751"},
	{netip.MustParsePrefix("192.168.0.0/16"), "Private-Use", "RFC 1918"},
	{netip.MustParsePrefix("192.175.48.0/24"), "Direct Delegation AS112 Service", "RFC 7534"},
	{netip.MustParsePrefix("198.18.0.0/15"), "Benchmarking", "RFC 2544"},
	{netip.MustParsePrefix("198.51.100.0/24"), "Documentation (TEST-NET-2)", "RFC 5737"},
	{netip.MustParsePrefix("203.0.113.0/24"), "Documentation (TEST-NET-3)", "RFC 5737"},
	{netip.MustParsePrefix("240.0.0.0/4"), "Reserved", "RFC 1112, Section 4"},
	{netip.MustParsePrefix("255.255.255.255/32"), "Limited Broadcast", "RFC 8190, RFC 919 Section 7"},
	// IANA IPv4 Multicast Address Space Registry.
	{netip.MustParsePrefix("224.0.0.0/4"), "Multicast", "RFC 5771"},

	// IANA IPv6 Special-Purpose Address Registry.
	{netip.MustParsePrefix("::1/128"), "Loopback Address", "RFC 4291"},
	{netip.MustParsePrefix("::/128"), "Unspecified Address", "RFC 4291"},
	// Normalize turns every prefix inside ::ffff:0:0/96 into IPv4 and no shorter prefix fits
	// in it, so this entry is never returned; it is listed because the registry lists it.
	{netip.MustParsePrefix("::ffff:0:0/96"), "IPv4-mapped Address", "RFC 4291"},
	{netip.MustParsePrefix("64:ff9b::/96"), "IPv4-IPv6 Translation", "RFC 6052"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "Local-Use IPv4/IPv6 Translation", "RFC 8215"},
	{netip.MustParsePrefix("100::/64"), "Discard-Only Address Block", "RFC 6666"},
	{netip.MustParsePrefix("100:0:0:1::/64"), "Dummy IPv6 Prefix", "RFC 9780"},
	{netip.MustParsePrefix("2001::/23"), "IETF Protocol Assignments", "RFC 2928"},
	{netip.MustParsePrefix("2001::/32"), "TEREDO", "RFC 4380, RFC 8190"},
	{netip.MustParsePrefix("2001:1::1/128"), "Port Control Protocol Anycast", "RFC 7723"},
	{netip.MustParsePrefix("2001:1::2/128"), "Traversal Using Relays around NAT Anycast", "RFC 8155"},
	{netip.MustParsePrefix("2001:1::3/128"), "DNS-SD Service Registration Protocol Anycast", "RFC 9665"},
	{netip.MustParsePrefix("2001:2::/48"), "Benchmarking", "RFC 5180"},
	{netip.MustParsePrefix("2001:3::/32"), "AMT", "RFC 7450"},
	{netip.MustParsePrefix("2001:4:112::/48"), "AS112-v6", "RFC 7535"},
	{netip.MustParsePrefix("2001:10::/28"), "Deprecated (previously ORCHID)", "RFC 4843"},
	{netip.MustParsePrefix("2001:20::/28"), "ORCHIDv2", "RFC 7343"},
	{netip.MustParsePrefix("2001:30::/28"), "Drone Remote ID Protocol Entity Tags (DETs) Prefix", "RFC 9374"},
	{netip.MustParsePrefix("2001:db8::/32"), "Documentation", "RFC 3849"},
	{netip.MustParsePrefix("2002::/16"), "6to4", "RFC 3056"},
	{netip.MustParsePrefix("2620:4f:8000::/48"), "Direct Delegation AS112 Service", "RFC 7534"},
	{netip.MustParsePrefix("3fff::/20"), "Documentation", "RFC 9637"},
	{netip.MustParsePrefix("5f00::/16"), "Segment Routing (SRv6) SIDs", "RFC 9602"},
	{netip.MustParsePrefix("fc00::/7"), "Unique-Local", "RFC 4193, RFC 8190"},
	{netip.MustParsePrefix("fe80::/10"), "Link-Local Unicast", "RFC 4291"},
	// IPv6 multicast (RFC 4291 Section 2.7).
	{netip.MustParsePrefix("ff00::/8"), "Multicast", "RFC 4291, Section 2.7"},
	// Only 2000::/3 is allocated as global unicast (RFC 4291 Section 2.4, IANA IPv6 Address
	// Space registry). These three prefixes are exactly its complement without ::/0: a
	// prefix lies outside 2000::/3 if and only if one of them contains it.
	{netip.MustParsePrefix("::/3"), notGlobalUnicast, "RFC 4291, Section 2.4"},
	{netip.MustParsePrefix("4000::/2"), notGlobalUnicast, "RFC 4291, Section 2.4"},
	{netip.MustParsePrefix("8000::/1"), notGlobalUnicast, "RFC 4291, Section 2.4"},
}

// rangeIndex holds, for each family and each value of an address's first byte, the
// entries of specialRanges that contain some address starting with that byte, most
// specific (longest prefix) first.
type rangeIndex struct {
	v4, v6 [256][]indexEntry
}

// indexEntry is a range of specialRanges in the form lookup compares fastest: its first
// address and mask as two 64-bit halves of the 16-byte form (IPv4 as ::ffff:a.b.c.d).
type indexEntry struct {
	hi, lo         uint64
	maskHi, maskLo uint64
	bits           int // prefix length in the range's own family
	r              *SpecialRange
}

// specialIndex is computed once from specialRanges at package initialization and only
// read afterwards.
var specialIndex = newRangeIndex(specialRanges)

func newRangeIndex(ranges []SpecialRange) *rangeIndex {
	var idx rangeIndex
	for i := range ranges {
		r := &ranges[i]
		p := r.Prefix.Masked()
		hi, lo := halves(p.Addr())
		n := p.Bits() // length in the 16-byte form
		buckets, first := &idx.v6, p.Addr().As16()[0]
		if p.Addr().Is4() {
			n += 96
			buckets, first = &idx.v4, p.Addr().As4()[0]
		}
		e := indexEntry{
			hi:     hi,
			lo:     lo,
			maskHi: ^uint64(0) << (64 - min(n, 64)),
			maskLo: ^uint64(0) << (128 - max(n, 64)),
			bits:   p.Bits(),
			r:      r,
		}
		last := first
		if p.Bits() < 8 {
			last = first | byte(0xff>>p.Bits())
		}
		for b := int(first); b <= int(last); b++ {
			buckets[b] = append(buckets[b], e)
		}
	}
	longestFirst := func(a, b indexEntry) int { return cmp.Compare(b.bits, a.bits) }
	for i := range idx.v4 {
		slices.SortStableFunc(idx.v4[i], longestFirst)
		slices.SortStableFunc(idx.v6[i], longestFirst)
	}
	return &idx
}

// halves returns the 16-byte form of a as two big-endian 64-bit halves.
func halves(a netip.Addr) (hi, lo uint64) {
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

// Normalize returns p masked to its prefix length (Masked), with an IPv4-mapped IPv6
// prefix (::ffff:a.b.c.d/n with n >= 96) turned into the IPv4 prefix a.b.c.d/(n-96).
// An invalid prefix is returned unchanged.
func Normalize(p netip.Prefix) netip.Prefix {
	if !p.IsValid() {
		return p
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

// Special reports the special-purpose range that contains the whole of p (after Normalize),
// if there is one. A prefix that only overlaps a special range (e.g. 192.0.0.0/16, which
// holds 192.0.0.0/24 but also public space) is not special.
func Special(p netip.Prefix) (SpecialRange, bool) {
	p = Normalize(p)
	if !p.IsValid() {
		return SpecialRange{}, false
	}
	if r := lookup(p.Addr(), p.Bits()); r != nil {
		return *r, true
	}
	return SpecialRange{}, false
}

// SpecialAddr is Special for a single address (IPv4-mapped addresses are unmapped first).
func SpecialAddr(a netip.Addr) (SpecialRange, bool) {
	a = a.WithZone("").Unmap()
	if !a.IsValid() {
		return SpecialRange{}, false
	}
	if r := lookup(a, a.BitLen()); r != nil {
		return *r, true
	}
	return SpecialRange{}, false
}

// lookup returns the most specific range that contains the masked prefix a/bits, or nil.
// Any range that contains the prefix contains a, so it is in the bucket of a's first byte.
// It returns a pointer into the read-only table: returning the 64-byte struct by value
// from here made every call about twice as slow.
func lookup(a netip.Addr, bits int) *SpecialRange {
	var bucket []indexEntry
	if a.Is4() {
		bucket = specialIndex.v4[a.As4()[0]]
	} else {
		bucket = specialIndex.v6[a.As16()[0]]
	}
	if len(bucket) == 0 {
		return nil
	}
	hi, lo := halves(a)
	for i := range bucket {
		if e := &bucket[i]; e.bits <= bits && hi&e.maskHi == e.hi && lo&e.maskLo == e.lo {
			return e.r
		}
	}
	return nil
}

// IsWorld reports whether p (after Normalize) is 0.0.0.0/0 or ::/0.
func IsWorld(p netip.Prefix) bool {
	p = Normalize(p)
	return p.IsValid() && p.Bits() == 0
}

// Size returns the number of addresses in p, saturating at math.MaxUint64 (IPv6 /0../64).
// It returns 0 for an invalid prefix.
func Size(p netip.Prefix) uint64 {
	if !p.IsValid() {
		return 0
	}
	host := p.Addr().BitLen() - p.Bits()
	if host >= 64 {
		return math.MaxUint64
	}
	return 1 << host
}
