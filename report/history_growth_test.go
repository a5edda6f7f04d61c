package report

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkHistoryGrowth records a run of 300,000 rules, each with one verdict, then, each
// iteration, a run that sees the same estate, as sgvet audit does: Prepare, then Commit. It
// reports how much an unchanged run adds to the file once the write-ahead log is
// checkpointed, on average (bytes-added/op) and at most (max-bytes-added), the size after
// the first run (bytes-first), and the time of Prepare and of Commit (ms-prepare,
// ms-commit); ns/op is their sum. scripts/bench-history.sh runs it.
func BenchmarkHistoryGrowth(b *testing.B) {
	rules, results := historyBenchEstate(300_000, 300_000)
	path := filepath.Join(b.TempDir(), "state.db")
	h := openTestHistory(b, path)
	ctx := b.Context()
	size := func() int64 {
		b.Helper()
		if _, err := h.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			b.Fatal(err)
		}
		info, err := os.Stat(path)
		if err != nil {
			b.Fatal(err)
		}
		return info.Size()
	}
	if _, err := h.Record(ctx, "run-0", historyT0, rules, results); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	first := size()
	b.StartTimer()
	var prepare, commit time.Duration
	last, largest := first, int64(0)
	n := 0
	for b.Loop() {
		n++
		at := historyT0.Add(time.Duration(n) * time.Hour)
		start := time.Now()
		_, pending, err := h.Prepare(ctx, "run-"+strconv.Itoa(n), at, rules, results)
		if err != nil {
			b.Fatal(err)
		}
		prepared := time.Now()
		if err := pending.Commit(ctx, at.Add(time.Minute)); err != nil {
			b.Fatal(err)
		}
		prepare += prepared.Sub(start)
		commit += time.Since(prepared)
		b.StopTimer()
		s := size()
		largest = max(largest, s-last)
		last = s
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(prepare.Milliseconds())/float64(n), "ms-prepare")
	b.ReportMetric(float64(commit.Milliseconds())/float64(n), "ms-commit")
	b.ReportMetric(float64(last-first)/float64(n), "bytes-added/op")
	b.ReportMetric(float64(largest), "max-bytes-added")
	b.ReportMetric(float64(first), "bytes-first")
}
