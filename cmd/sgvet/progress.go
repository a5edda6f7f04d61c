package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/sgvet/sgvet/reputation"
)

// clearLine moves a terminal's cursor to the start of the line and erases the line.
const clearLine = "\r\x1b[K"

// statusLine is a terminal's stderr shared by the log and one progress line: a log line
// written while the progress line is shown clears it first and draws it again after, so
// that the two never land on one line. Its methods may be called from several goroutines.
// A nil *statusLine shows no progress.
type statusLine struct {
	mu    sync.Mutex
	w     io.Writer
	shown string // the progress line on the screen, "" when none
}

// newStatusLine returns the status line of stderr when it is a terminal, and nil otherwise.
func newStatusLine(stderr io.Writer) *statusLine {
	t := terminal(stderr)
	if t == nil {
		return nil
	}
	return &statusLine{w: t}
}

// logWriter returns where the log goes: s, or stderr when s is nil.
func (s *statusLine) logWriter(stderr io.Writer) io.Writer {
	if s == nil {
		return stderr
	}
	return s
}

// Write writes log lines p above the progress line.
func (s *statusLine) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shown != "" {
		if _, err := io.WriteString(s.w, clearLine); err != nil {
			return 0, err
		}
	}
	n, err := s.w.Write(p)
	if err == nil && s.shown != "" {
		_, err = io.WriteString(s.w, s.shown)
	}
	return n, err
}

// show replaces the progress line with line.
func (s *statusLine) show(line string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shown = line
	io.WriteString(s.w, clearLine+line)
}

// done leaves the progress line on the screen as it is and ends it.
func (s *statusLine) done() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shown != "" {
		io.WriteString(s.w, "\n")
		s.shown = ""
	}
}

// vetProgress redraws one line on a terminal while a Vetter works: addresses vetted so far
// out of the total (an address counts as vetted once every provider has answered or given
// up on it), each provider's request rate, cache hits, throttled replies and failed
// requests, whether the service made it pause, and the time left.
type vetProgress struct {
	status  *statusLine
	vetter  *reputation.Vetter
	total   int
	started time.Time
	eta     etaEstimator
	rates   map[string]float64
	stop    chan struct{}
	wg      sync.WaitGroup
}

// startVetProgress shows progress on status every half second until the returned function
// is called. rates are the providers' addressRates. A nil status (stderr is not a
// terminal) shows nothing.
func startVetProgress(status *statusLine, v *reputation.Vetter, targets int, rates map[string]float64) func() {
	if status == nil || targets == 0 {
		return func() {}
	}
	now := time.Now()
	p := &vetProgress{status: status, vetter: v, total: targets, started: now, rates: rates, stop: make(chan struct{})}
	p.wg.Go(func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case t := <-tick.C:
				p.draw(t)
			}
		}
	})
	return func() {
		close(p.stop)
		p.wg.Wait()
		p.draw(time.Now())
		p.status.done()
	}
}

func (p *vetProgress) draw(now time.Time) {
	p.status.show(progressText(p.vetter.Stats(), p.total, now.Sub(p.started), &p.eta, p.rates, now))
}

// addressRates returns, for each online provider with a rate limit, the most addresses
// per second the limit lets through: its rate times its batch size.
func addressRates(p providersConfig) map[string]float64 {
	rates := map[string]float64{}
	for name, s := range map[string]serviceConfig{
		"metadefender": p.MetaDefender, "abuseipdb": p.AbuseIPDB.serviceConfig,
		"virustotal": p.VirusTotal.serviceConfig, "greynoise": p.GreyNoise,
	} {
		if s.Rate > 0 {
			rates[name] = float64(s.Rate) * float64(max(s.BatchSize, 1))
		}
	}
	return rates
}

// progressText returns the progress line for stats at now, elapsed after the start,
// adding what it counts to eta. rates (addresses per second, by provider) bound the time
// left from below: the estimate never promises more than the rate limits allow. The cache
// is read before any request, so what is left needs requests.
func progressText(stats []reputation.ProviderStats, total int, elapsed time.Duration, eta *etaEstimator, rates map[string]float64, now time.Time) string {
	verdicts := 0
	var parts []string
	var floor time.Duration
	for _, s := range stats {
		verdicts += s.Answered + s.CacheHits + s.Unknown
		if r := rates[s.Provider]; r > 0 && s.Stopped == "" {
			left := max(total-(s.Answered+s.CacheHits+s.Unknown), 0)
			floor = max(floor, time.Duration(float64(left)/r*float64(time.Second)))
		}
		part := s.Provider
		if s.Provider != "blocklist" { // offline: no requests
			part += fmt.Sprintf(" %.1f req/s", float64(s.Lookups)/max(elapsed.Seconds(), 0.001))
		}
		if s.CacheHits > 0 {
			part += fmt.Sprintf(", %d cached", s.CacheHits)
		}
		if s.Throttled > 0 {
			part += fmt.Sprintf(", throttled %s", times(s.Throttled))
		}
		if wait := s.PausedUntil.Sub(now); wait > 0 && s.Stopped == "" {
			part += fmt.Sprintf(", paused by the service for %s", roundLeft(wait))
		}
		if s.Errors > 0 {
			part += fmt.Sprintf(", %d failed requests", s.Errors)
		}
		if s.Stopped != "" {
			part += ", stopped"
		}
		parts = append(parts, part)
	}
	done := min(verdicts/max(len(stats), 1), total)
	eta.add(now, done)
	left := "time left unknown yet"
	switch d, ok := eta.left(now, total); {
	case done >= total:
		left = "done"
	case ok:
		left = "about " + roundLeft(max(d, floor)).String() + " left"
	}
	return fmt.Sprintf("vetting: %d/%d addresses; %s; %s", done, total, strings.Join(parts, "; "), left)
}

// times returns "once", "twice" or "5 times".
func times(n int) string {
	switch n {
	case 1:
		return "once"
	case 2:
		return "twice"
	}
	return fmt.Sprintf("%d times", n)
}

// roundLeft rounds a time left to what is worth showing: seconds under a minute, ten
// seconds under ten minutes, then minutes.
func roundLeft(d time.Duration) time.Duration {
	switch {
	case d < time.Minute:
		return d.Round(time.Second)
	case d < 10*time.Minute:
		return d.Round(10 * time.Second)
	}
	return d.Round(time.Minute)
}

// etaWindow is how far back the rate behind the estimate of the time left looks: long
// enough to smooth out batches and pauses, short enough to follow a provider that slows
// down or stops.
const etaWindow = 30 * time.Second

// etaMinSpan is how much progress the estimator wants to have seen before it says
// anything: a rate over a second or two says little.
const etaMinSpan = 5 * time.Second

// etaEstimator estimates the time left from the progress of the last etaWindow. Times
// are passed in, so it is tested without sleeping. The zero value is ready to use; it is
// not safe for concurrent use.
type etaEstimator struct {
	samples []etaSample
}

type etaSample struct {
	at   time.Time
	done int
}

// add records that done of the work was done at t.
func (e *etaEstimator) add(t time.Time, done int) {
	e.samples = append(e.samples, etaSample{t, done})
	// Keep one sample older than the window, so that the window is always covered.
	cut := 0
	for cut+1 < len(e.samples) && t.Sub(e.samples[cut+1].at) >= etaWindow {
		cut++
	}
	e.samples = e.samples[cut:]
}

// left returns the time left at now to reach total, from the rate over the recorded
// window, and false while it cannot tell: before etaMinSpan of samples, or when nothing
// was done in the window.
func (e *etaEstimator) left(now time.Time, total int) (time.Duration, bool) {
	if len(e.samples) < 2 {
		return 0, false
	}
	first, last := e.samples[0], e.samples[len(e.samples)-1]
	span := last.at.Sub(first.at)
	progress := last.done - first.done
	if span < etaMinSpan || progress <= 0 {
		return 0, false
	}
	rate := float64(progress) / span.Seconds() // per second
	left := time.Duration(float64(total-last.done) / rate * float64(time.Second))
	return max(left-now.Sub(last.at), 0), true
}
