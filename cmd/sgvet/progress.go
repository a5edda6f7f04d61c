package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/sgvet/sgvet/reputation"
)

// vetProgress redraws one line on a terminal while a Vetter works: addresses vetted so far
// out of the total (an address counts as vetted once every provider has answered or given
// up on it), each provider's request rate and cache hits, and the time left.
type vetProgress struct {
	w       io.Writer
	vetter  *reputation.Vetter
	total   int
	started time.Time
	stop    chan struct{}
	wg      sync.WaitGroup
}

// startVetProgress shows progress on w every half second until the returned function is
// called. w nil (stderr is not a terminal) shows nothing.
func startVetProgress(w io.Writer, v *reputation.Vetter, targets int) func() {
	if w == nil || targets == 0 {
		return func() {}
	}
	p := &vetProgress{w: w, vetter: v, total: targets, started: time.Now(), stop: make(chan struct{})}
	p.wg.Go(func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
				p.draw()
			}
		}
	})
	return func() {
		close(p.stop)
		p.wg.Wait()
		p.draw()
		fmt.Fprintln(p.w)
	}
}

func (p *vetProgress) draw() {
	elapsed := time.Since(p.started)
	verdicts := 0
	stats := p.vetter.Stats()
	var parts []string
	for _, s := range stats {
		verdicts += s.Answered + s.CacheHits + s.Unknown
		part := s.Provider
		if s.Provider != "blocklist" { // offline: no requests
			part += fmt.Sprintf(" %.1f req/s", float64(s.Lookups)/max(elapsed.Seconds(), 0.001))
		}
		if s.CacheHits > 0 {
			part += fmt.Sprintf(", %d cached", s.CacheHits)
		}
		if s.Stopped != "" {
			part += ", stopped"
		}
		parts = append(parts, part)
	}
	done := min(verdicts/max(len(stats), 1), p.total)
	left := "-"
	if done > 0 && done < p.total {
		left = (time.Duration(float64(elapsed) / float64(done) * float64(p.total-done))).Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "\r\x1b[Kvetting: %d/%d addresses; %s; %s left", done, p.total, strings.Join(parts, "; "), left)
}
