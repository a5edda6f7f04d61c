package reputation

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// blocklistBogons4 are the IPv4 ranges that are not public addresses.
var blocklistBogons4 = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("224.0.0.0/3"),
}

func blocklistPublic4(p netip.Prefix) bool {
	for _, b := range blocklistBogons4 {
		if b.Overlaps(p) {
			return false
		}
	}
	return true
}

// blocklistBenchTargets returns n public IPv4 targets of the given prefix lengths, the
// same on every run: half of them inside random entries of l, half anywhere.
func blocklistBenchTargets(l *Blocklist, n, minBits, maxBits int) []Target {
	rng := rand.New(rand.NewPCG(20240501, 6273))
	var public []netip.Prefix
	for _, e := range l.entries {
		if e.prefix.Addr().Is4() && blocklistPublic4(e.prefix) {
			public = append(public, e.prefix)
		}
	}
	targets := make([]Target, 0, n)
	for len(targets) < n {
		bits := minBits + rng.IntN(maxBits-minBits+1)
		v := rng.Uint32()
		if len(targets)%2 == 0 && len(public) > 0 {
			e := public[rng.IntN(len(public))]
			b := e.Addr().As4()
			base := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			v = base | v&(1<<(32-e.Bits())-1)
		}
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), bits).Masked()
		if blocklistPublic4(p) {
			targets = append(targets, PrefixTarget(p))
		}
	}
	return targets
}

func blocklistHitRatio(p *BlocklistProvider, targets []Target) float64 {
	hits := 0
	for _, t := range targets {
		if len(p.Match(t)) > 0 {
			hits++
		}
	}
	return float64(hits) / float64(len(targets))
}

// BenchmarkBlocklistMatch checks single public IPv4 addresses against the FireHOL level 1
// list; an op is one check.
func BenchmarkBlocklistMatch(b *testing.B) {
	p := NewBlocklistProvider(loadBlocklistFireHOL(b))
	targets := blocklistBenchTargets(p.lists[0], 1<<12, 32, 32)
	mask := len(targets) - 1

	b.Run("AppendMatches", func(b *testing.B) {
		buf := make([]BlocklistMatch, 0, 8)
		n := 0
		for b.Loop() {
			buf = p.AppendMatches(buf[:0], targets[n&mask])
			n++
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "checks/s")
		b.ReportMetric(blocklistHitRatio(p, targets), "hits/check")
	})
	b.Run("Match", func(b *testing.B) {
		n := 0
		for b.Loop() {
			p.Match(targets[n&mask])
			n++
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "checks/s")
	})
	b.Run("Lookup", func(b *testing.B) {
		// An op is one batch of BatchSize targets.
		batch := targets[:p.BatchSize()]
		ctx := context.Background()
		n := 0
		for b.Loop() {
			if _, err := p.Lookup(ctx, batch); err != nil {
				b.Fatal(err)
			}
			n += len(batch)
		}
		b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "checks/s")
	})
}

// BenchmarkBlocklistMatchPrefix checks public IPv4 prefixes from /16 to /30 for overlap with
// the FireHOL level 1 list; an op is one check.
func BenchmarkBlocklistMatchPrefix(b *testing.B) {
	p := NewBlocklistProvider(loadBlocklistFireHOL(b))
	targets := blocklistBenchTargets(p.lists[0], 1<<12, 16, 30)
	mask := len(targets) - 1
	buf := make([]BlocklistMatch, 0, 64)
	n := 0
	for b.Loop() {
		buf = p.AppendMatches(buf[:0], targets[n&mask])
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "checks/s")
	b.ReportMetric(blocklistHitRatio(p, targets), "hits/check")
}
