package reputation

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/sgvet/sgvet/internal/fakeprovider"
)

// benchAddrs returns n distinct public IPv4 addresses, shifted by seed so that successive
// runs ask about new ones.
func benchAddrs(n, seed int) []Target {
	out := make([]Target, n)
	for i := range out {
		v := uint32(seed*n + i)
		out[i] = AddressTarget(netip.AddrFrom4([4]byte{51, byte(v >> 16), byte(v >> 8), byte(v)}))
	}
	return out
}

// BenchmarkVetAtServiceRate vets addresses one per request against a double that enforces R
// requests per second with a burst of 1, as strictly as a service may, with the client set
// to exactly R. It reports the rate reached as a share of R, and the 429s the double sent.
func BenchmarkVetAtServiceRate(b *testing.B) {
	const (
		rate = 50.0
		n    = 250
	)
	srv := fakeprovider.AbuseIPDB(b, fakeprovider.Options{Key: testKey, Rate: rate, Burst: 1, Quota: 1 << 30})
	p := NewAbuseIPDB(serviceConfig(srv.URL, "ABUSEIPDB_API_KEY"), AbuseIPDBConfig{})
	v := NewVetter([]Provider{p}, Options{Workers: 8, Policies: map[string]Policy{p.Name(): {Rate: rate, Burst: 1}}})
	var elapsed time.Duration
	seed := 0
	for b.Loop() {
		seed++
		start := time.Now()
		results, err := v.Vet(b.Context(), benchAddrs(n, seed))
		elapsed += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range results {
			if !r.Verdicts[0].Known() {
				b.Fatalf("%s: %s", r.Target, r.Verdicts[0].Reason)
			}
		}
	}
	answered := float64(seed * n)
	b.ReportMetric(answered/elapsed.Seconds(), "answers/s")
	b.ReportMetric(100*answered/elapsed.Seconds()/rate, "%of-R")
	b.ReportMetric(float64(srv.Throttled()), "429s")
}

// BenchmarkMetaDefenderBulk vets N uncached addresses and reports the requests made, which
// should be ceil(N/50).
func BenchmarkMetaDefenderBulk(b *testing.B) {
	const n = 1000
	srv := fakeprovider.MetaDefender(b, fakeprovider.Options{Key: testKey, Quota: 1 << 30})
	md := NewMetaDefender(serviceConfig(srv.URL, "MDCLOUD_APIKEY"))
	v := NewVetter([]Provider{md}, Options{Workers: 4})
	seed := 0
	for b.Loop() {
		seed++
		if _, err := v.Vet(b.Context(), benchAddrs(n, seed)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(srv.Count())/float64(seed), "requests/op")
	b.ReportMetric(n, "addresses/op")
}

// BenchmarkVetWarmCache vets addresses every one of which is cached, and reports the
// requests made (none) and the time per address.
func BenchmarkVetWarmCache(b *testing.B) {
	const n = 10000
	cache, err := OpenCache(b.Context(), filepath.Join(b.TempDir(), "verdicts.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer cache.Close()
	srv := fakeprovider.MetaDefender(b, fakeprovider.Options{Key: testKey, Quota: 1 << 30})
	md := NewMetaDefender(serviceConfig(srv.URL, "MDCLOUD_APIKEY"))
	opts := Options{Cache: cache, Policies: map[string]Policy{"metadefender": {CacheTTL: time.Hour}}}
	addrs := benchAddrs(n, 1)
	if _, err := NewVetter([]Provider{md}, opts).Vet(b.Context(), addrs); err != nil {
		b.Fatal(err)
	}
	cold := srv.Count()
	for b.Loop() {
		if _, err := NewVetter([]Provider{md}, opts).Vet(b.Context(), addrs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(srv.Count()-cold), "warm-requests")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/address")
}
