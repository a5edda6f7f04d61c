package main

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sgvet/sgvet/reputation"
)

// TestStatusLineLog: a log line written while the progress line is shown clears the
// progress line first and draws it again after, so that no log line starts on it.
func TestStatusLineLog(t *testing.T) {
	var buf strings.Builder
	s := &statusLine{w: &buf}
	log := slog.New(slog.NewTextHandler(s.logWriter(nil), &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	log.Info("before any progress")
	s.show("vetting: 1/3 addresses")
	log.Warn("provider throttled", "provider", "metadefender")
	s.show("vetting: 2/3 addresses")
	s.done()
	log.Info("after")
	want := "level=INFO msg=\"before any progress\"\n" +
		clearLine + "vetting: 1/3 addresses" +
		clearLine + "level=WARN msg=\"provider throttled\" provider=metadefender\n" + "vetting: 1/3 addresses" +
		clearLine + "vetting: 2/3 addresses\n" +
		"level=INFO msg=after\n"
	if got := buf.String(); got != want {
		t.Errorf("stderr =\n%q\nwant\n%q", got, want)
	}
	// Every log line starts at the start of a line: after a line end or a cleared line.
	for _, line := range strings.Split(strings.ReplaceAll(buf.String(), clearLine, "\n"), "\n") {
		if i := strings.Index(line, "level="); i > 0 {
			t.Errorf("a log line lands on the progress line: %q", line)
		}
	}
}

// TestStatusLineConcurrent writes log lines and progress from several goroutines; with
// -race it checks that the writer is synchronised.
func TestStatusLineConcurrent(t *testing.T) {
	var buf strings.Builder
	s := &statusLine{w: &buf}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				if i%2 == 0 {
					s.show(fmt.Sprintf("vetting: %d/400", i*50+j))
				} else {
					fmt.Fprintf(s, "level=INFO msg=%d\n", j)
				}
			}
		})
	}
	wg.Wait()
	s.done()
	for _, line := range strings.Split(strings.ReplaceAll(buf.String(), clearLine, "\n"), "\n") {
		if i := strings.Index(line, "level="); i > 0 {
			t.Fatalf("a log line lands on the progress line: %q", line)
		}
	}
}

func TestNilStatusLine(t *testing.T) {
	var s *statusLine
	s.show("x")
	s.done()
	var buf strings.Builder
	if w := s.logWriter(&buf); w != &buf {
		t.Errorf("nil logWriter(stderr) = %v, want stderr", w)
	}
}

func TestETAEstimator(t *testing.T) {
	start := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	type sample struct {
		sec  float64
		done int
	}
	for _, tt := range []struct {
		name    string
		samples []sample
		total   int
		want    time.Duration
		wantOK  bool
	}{
		{"no data", nil, 100, 0, false},
		{"one sample", []sample{{0, 0}}, 100, 0, false},
		{"too short to tell", []sample{{0, 0}, {0.5, 1}, {1, 1}}, 100, 0, false},
		{"nothing done yet", []sample{{0, 0}, {5, 0}, {10, 0}}, 100, 0, false},
		{"steady", []sample{{0, 0}, {5, 10}, {10, 20}}, 100, 40 * time.Second, true},
		// One slow start (a cache warm-up, the first request waiting for its limiter)
		// does not make the estimate jump: only the last 30 seconds count.
		{"slow start forgotten", []sample{{0, 0}, {60, 1}, {61, 2}, {71, 12}, {81, 22}, {91, 32}}, 100, 68 * time.Second, true},
		// A burst of cache hits at the start does not promise the same pace for the
		// requests that follow.
		{"burst then steady", []sample{{0, 0}, {1, 50}, {40, 60}, {50, 62}, {60, 64}, {70, 66}}, 100, 170 * time.Second, true},
		{"stalled in the window", []sample{{0, 0}, {10, 10}, {45, 10}, {50, 10}}, 100, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var e etaEstimator
			last := start
			for _, s := range tt.samples {
				last = at(s.sec)
				e.add(last, s.done)
			}
			got, ok := e.left(last, tt.total)
			if ok != tt.wantOK || (ok && (got < tt.want-time.Second || got > tt.want+time.Second)) {
				t.Errorf("left(%v) = %v, %v, want %v, %v", tt.samples, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestProgressText(t *testing.T) {
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	stats := []reputation.ProviderStats{{Provider: "metadefender", Lookups: 20, Answered: 15, Unknown: 5, Throttled: 3, Errors: 2, PausedUntil: now.Add(42 * time.Second)}}
	var e etaEstimator
	got := progressText(stats, 100, 10*time.Second, &e, nil, now)
	for _, want := range []string{"vetting: 20/100 addresses", "metadefender 2.0 req/s", "throttled 3 times", "2 failed requests", "paused by the service for 42s", "time left unknown yet"} {
		if !strings.Contains(got, want) {
			t.Errorf("progressText() = %q, want it to say %q", got, want)
		}
	}
}

// TestProgressTextRateLimit: the time left never promises more than the rate limits
// allow, however fast the last seconds went.
func TestProgressTextRateLimit(t *testing.T) {
	start := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name  string
		rates map[string]float64
		want  string
	}{
		{"no limit known", nil, "about 10s left"},
		{"limit slower than the window", map[string]float64{"metadefender": 0.5}, "about 1m40s left"},
		{"limit faster than the window", map[string]float64{"metadefender": 50}, "about 10s left"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var e etaEstimator
			var got string
			for sec := 0; sec <= 10; sec += 5 {
				done := 5 * sec // 5 addresses a second so far
				st := []reputation.ProviderStats{{Provider: "metadefender", Answered: done}}
				got = progressText(st, 100, time.Duration(sec)*time.Second, &e, tt.rates, start.Add(time.Duration(sec)*time.Second))
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("progressText() = %q, want it to say %q", got, tt.want)
			}
		})
	}
}
