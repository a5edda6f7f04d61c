package main

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sgvet/sgvet/internal/fakeprovider"
)

// These benchmarks run whole audits against provider doubles and report what a user would
// measure. Run them one at a time with -benchtime 1x; see the README.

// BenchmarkAuditAtStrictRate audits 1,000 addresses with AbuseIPDB against a double that
// enforces 5 requests a second with a burst of 1, sgvet configured at exactly that rate.
// It reports the addresses answered per second as a share of the rate, the 429s the double
// sent, the connections opened per 1,000 requests, and the exit code.
func BenchmarkAuditAtStrictRate(b *testing.B) {
	const (
		rate = 5
		n    = 1000
	)
	isolateAWS(b)
	isolateProviders(b)
	const key = "abuseipdb-key-strict-rate"
	b.Setenv("ABUSEIPDB_API_KEY", key)
	input := manyAddresses(b, n)
	for b.Loop() {
		ab := fakeprovider.AbuseIPDB(b, fakeprovider.Options{Key: key, Rate: rate, Burst: 1, Quota: 1 << 30})
		cfg := doublesConfig(b, map[string]string{"abuseipdb": ab.URL}, fmt.Sprintf("rate: %d/s", rate), "daily_quota: 0")
		start := time.Now()
		res := sgvet(b, "", "audit", "--config", cfg, "--no-cache", "--input", input)
		elapsed := time.Since(start)
		b.ReportMetric(float64(n)/elapsed.Seconds()/rate, "share-of-R")
		b.ReportMetric(float64(ab.Throttled()), "429s")
		b.ReportMetric(float64(ab.Connections())*1000/float64(ab.Count()), "conns/1000req")
		b.ReportMetric(float64(res.code), "exit")
	}
}

// BenchmarkAuditInFlight audits 256 addresses with AbuseIPDB against a double that takes
// 50ms to answer, at several --workers, and reports the most requests the double had in
// flight at once and the connections it accepted.
func BenchmarkAuditInFlight(b *testing.B) {
	isolateAWS(b)
	isolateProviders(b)
	const key = "abuseipdb-key-in-flight"
	b.Setenv("ABUSEIPDB_API_KEY", key)
	input := manyAddresses(b, 256)
	for _, workers := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			for b.Loop() {
				ab := fakeprovider.AbuseIPDB(b, fakeprovider.Options{Key: key, Delay: 50 * time.Millisecond, Quota: 1 << 30})
				cfg := doublesConfig(b, map[string]string{"abuseipdb": ab.URL}, "daily_quota: 0")
				if res := sgvet(b, "", "audit", "--config", cfg, "--no-cache", "--workers", fmt.Sprint(workers), "--input", input); res.code != exitOK {
					b.Fatalf("exit %d: %s", res.code, res.stderr)
				}
				b.ReportMetric(float64(ab.MaxInFlight()), "in-flight")
				b.ReportMetric(float64(ab.Connections()), "conns")
			}
		})
	}
}

// BenchmarkAuditCache audits 10,000 addresses with AbuseIPDB against a double that answers
// at once, without the cache and with a new (cold) cache file, so that the cost of
// writing the verdicts shows as the difference between the two.
func BenchmarkAuditCache(b *testing.B) {
	isolateAWS(b)
	isolateProviders(b)
	const key = "abuseipdb-key-cold-cache"
	b.Setenv("ABUSEIPDB_API_KEY", key)
	input := manyAddresses(b, 10000)
	ab := fakeprovider.AbuseIPDB(b, fakeprovider.Options{Key: key, Quota: 1 << 30})
	// No rate worth the name: the run goes as fast as the double answers.
	cfg := doublesConfig(b, map[string]string{"abuseipdb": ab.URL}, "daily_quota: 0", "rate: 1000000/s")
	for _, cache := range []string{"none", "cold"} {
		b.Run(cache, func(b *testing.B) {
			for b.Loop() {
				args := []string{"audit", "--config", cfg, "--input", input}
				if cache == "none" {
					args = append(args, "--no-cache")
				} else {
					args = append(args, "--cache", filepath.Join(b.TempDir(), "verdicts.db"))
				}
				if res := sgvet(b, "", args...); res.code != exitOK {
					b.Fatalf("exit %d: %s", res.code, res.stderr)
				}
			}
		})
	}
}
