package collector_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/sgvet/sgvet/collector"
)

// benchmarkRules makes n rules shaped like a large estate: mostly single public IPv4
// addresses, with IPv6 addresses, private ranges, small and wide public prefixes, /0, and
// many addresses repeated across groups.
func benchmarkRules(n int) []collector.Rule {
	rng := rand.New(rand.NewPCG(1, 2))
	rules := make([]collector.Rule, n)
	for i := range rules {
		var cidr string
		switch k := rng.IntN(100); {
		case k < 60: // public /32, a third of them repeated elsewhere in the estate
			cidr = fmt.Sprintf("%d.%d.%d.%d/32", 1+rng.IntN(9), rng.IntN(256), rng.IntN(256), rng.IntN(256))
			if k < 20 {
				cidr = fmt.Sprintf("8.8.%d.%d/32", rng.IntN(4), rng.IntN(256))
			}
		case k < 72:
			cidr = fmt.Sprintf("2600:1f18:%x::%x/128", rng.IntN(65536), rng.IntN(65536))
		case k < 87:
			cidr = fmt.Sprintf("10.%d.%d.0/24", rng.IntN(256), rng.IntN(256))
		case k < 90:
			cidr = fmt.Sprintf("52.%d.%d.%d/29", rng.IntN(256), rng.IntN(256), rng.IntN(32)*8)
		case k < 95:
			cidr = fmt.Sprintf("52.%d.0.0/16", rng.IntN(256))
		default:
			cidr = "0.0.0.0/0"
		}
		rules[i] = collector.Rule{
			GroupID: fmt.Sprintf("sg-%05d", i/5), ID: fmt.Sprintf("sgr-%06d", i),
			Direction: collector.Ingress, Protocol: "tcp", FromPort: 22, ToPort: 22,
			CIDR: collector.Normalize(netip.MustParsePrefix(cidr)),
		}
	}
	return rules
}

// BenchmarkPublicSources measures classification and deduplication of 100,000 rules.
func BenchmarkPublicSources(b *testing.B) {
	const n = 100_000
	rules := benchmarkRules(n)
	b.ReportAllocs()
	var out []collector.PublicSource
	for b.Loop() {
		out = collector.PublicSources(rules, collector.Options{})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/rule")
	b.ReportMetric(float64(len(out)), "sources")
}

// BenchmarkInventory measures the whole assembly of an inventory of 100,000 rules:
// deduplication of rules, sorting, and the public sources.
func BenchmarkInventory(b *testing.B) {
	const n = 100_000
	c := collector.Collection{Rules: benchmarkRules(n)}
	b.ReportAllocs()
	for b.Loop() {
		c.Inventory(time.Now(), collector.Options{})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/rule")
}
