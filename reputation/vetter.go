package reputation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Policy is what a Vetter keeps to for one provider.
type Policy struct {
	// DailyQuota is the most targets the provider is asked about per UTC day (a bulk
	// request of 50 addresses counts 50); 0 means no limit. With a Cache the count is kept
	// in its file, so it holds across runs and processes.
	DailyQuota int
	// CacheTTL is how long the provider's verdicts are reused; 0 disables caching for it.
	CacheTTL time.Duration
}

// Options configure a Vetter. The zero value is usable: four workers per provider, no
// cache, no patience for quota resets.
type Options struct {
	// Workers is the number of concurrent requests to each provider; 0 means 4. The
	// provider's own rate limiter, shared by all of them, sets the pace.
	Workers int
	// Cache stores and reuses verdicts; nil means none.
	Cache *Cache
	// Policies holds each provider's policy by name.
	Policies map[string]Policy
	// Patience is the longest a provider whose quota is spent is paused, waiting for the
	// quota to reset. A reset further away stops the provider for the run.
	Patience time.Duration
	// Log receives one line when a provider stops, and debug lines; nil discards them.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Vetter asks every provider about every target. Its methods are safe for concurrent use;
// the state of each provider (paused, stopped, quota used) is shared by every call.
type Vetter struct {
	members  []*member
	workers  int
	cache    *Cache
	log      *slog.Logger
	now      func() time.Time
	patience time.Duration
}

// member is one provider with its policy and its state for the run.
type member struct {
	p      Provider
	policy Policy

	mu          sync.Mutex
	stopped     string // why the provider answers nothing more in this run
	pausedUntil time.Time
	failures    int    // requests failed in a row
	usedDay     string // UTC day of used, when there is no cache
	used        int
	stats       ProviderStats
}

// ProviderStats counts what a Vetter did with one provider.
type ProviderStats struct {
	Provider string `json:"provider"`
	// Lookups is the number of requests made to the provider.
	Lookups int `json:"lookups"`
	// Answered is the number of targets the provider answered for in those requests.
	Answered int `json:"answered"`
	// CacheHits is the number of targets answered from the cache.
	CacheHits int `json:"cache_hits"`
	// Unknown is the number of targets left Unknown, for any reason.
	Unknown int `json:"unknown"`
	// Errors is the number of requests that failed.
	Errors int `json:"errors"`
	// Stopped says why the provider stopped answering during the run, if it did.
	Stopped string `json:"stopped,omitempty"`
}

// Result is every provider's verdict on one target, in the order of the Vetter's providers.
type Result struct {
	Target   Target    `json:"target"`
	Verdicts []Verdict `json:"verdicts"`
}

// NewVetter returns a Vetter over providers, asked in that order.
func NewVetter(providers []Provider, opts Options) *Vetter {
	v := &Vetter{
		workers:  opts.Workers,
		cache:    opts.Cache,
		log:      opts.Log,
		now:      opts.Now,
		patience: opts.Patience,
	}
	if v.workers <= 0 {
		v.workers = 4
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if v.now == nil {
		v.now = time.Now
	}
	for _, p := range providers {
		m := &member{p: p, policy: opts.Policies[p.Name()]}
		m.stats.Provider = p.Name()
		v.members = append(v.members, m)
	}
	return v
}

// Providers returns the names of the providers, in order.
func (v *Vetter) Providers() []string {
	names := make([]string, len(v.members))
	for i, m := range v.members {
		names[i] = m.p.Name()
	}
	return names
}

// Stats returns what the Vetter has done so far with each provider, in order.
func (v *Vetter) Stats() []ProviderStats {
	out := make([]ProviderStats, len(v.members))
	for i, m := range v.members {
		m.mu.Lock()
		out[i] = m.stats
		m.mu.Unlock()
	}
	return out
}

// Vet asks every provider about targets and returns one Result per distinct target, in the
// order of first appearance, each with one verdict per provider. Cached verdicts are reused;
// targets a provider does not support, or could not answer for, are Unknown with a reason.
// Vet returns an error only when ctx ends, promptly; verdicts received by then are cached.
func (v *Vetter) Vet(ctx context.Context, targets []Target) ([]Result, error) {
	seen := make(map[Target]bool, len(targets))
	var uniq []Target
	for _, t := range targets {
		if !seen[t] {
			seen[t] = true
			uniq = append(uniq, t)
		}
	}
	results := make([]Result, len(uniq))
	for i, t := range uniq {
		results[i] = Result{Target: t, Verdicts: make([]Verdict, len(v.members))}
	}
	g, gctx := errgroup.WithContext(ctx)
	for pi, m := range v.members {
		g.Go(func() error {
			return v.vetWith(gctx, m, uniq, func(i int, vd Verdict) { results[i].Verdicts[pi] = vd })
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return results, nil
}

// vetWith asks one provider about targets, calling set once for each target's index.
func (v *Vetter) vetWith(ctx context.Context, m *member, targets []Target, set func(int, Verdict)) error {
	name := m.p.Name()
	now := v.now().UTC()
	var pending []int
	for i, t := range targets {
		if err := m.p.Supports(t); err != nil {
			set(i, unknown(name, t, now, err.Error()))
			m.count(func(s *ProviderStats) { s.Unknown++ })
			continue
		}
		pending = append(pending, i)
	}
	if v.cache != nil && m.policy.CacheTTL > 0 && len(pending) > 0 {
		asked := make([]Target, len(pending))
		for j, i := range pending {
			asked[j] = targets[i]
		}
		hits, err := v.cache.Get(ctx, name, asked, m.policy.CacheTTL, now)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			v.log.Warn("cache unreadable; asking the provider", "provider", name, "err", err)
		}
		left := pending[:0]
		for _, i := range pending {
			if vd, ok := hits[targets[i]]; ok {
				set(i, vd)
				continue
			}
			left = append(left, i)
		}
		m.count(func(s *ProviderStats) { s.CacheHits += len(pending) - len(left) })
		pending = left
	}
	if len(pending) == 0 {
		return nil
	}

	size := max(m.p.BatchSize(), 1)
	batches := make(chan []int)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(batches)
		for start := 0; start < len(pending); start += size {
			select {
			case batches <- pending[start:min(start+size, len(pending))]:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	workers := min(v.workers, (len(pending)+size-1)/size)
	for range workers {
		g.Go(func() error {
			for batch := range batches {
				asked := make([]Target, len(batch))
				for j, i := range batch {
					asked[j] = targets[i]
				}
				verdicts, err := v.lookup(gctx, m, asked)
				if err != nil {
					return err
				}
				for j, i := range batch {
					set(i, verdicts[j])
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// lookup asks one provider about one batch and returns one verdict per target, in order.
// The error is only ever ctx's.
func (v *Vetter) lookup(ctx context.Context, m *member, batch []Target) ([]Verdict, error) {
	name := m.p.Name()
	out := make([]Verdict, len(batch))
	fill := func(from int, reason string) {
		at := v.now().UTC()
		for j := from; j < len(batch); j++ {
			out[j] = unknown(name, batch[j], at, reason)
		}
		m.count(func(s *ProviderStats) { s.Unknown += len(batch) - from })
	}
	if reason := m.stoppedReason(); reason != "" {
		fill(0, reason)
		return out, nil
	}
	granted, err := v.reserve(ctx, m, len(batch))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		fill(0, "daily quota could not be counted: "+err.Error())
		return out, nil
	}
	if granted < len(batch) {
		reason := fmt.Sprintf("daily quota of %d lookups reached", m.policy.DailyQuota)
		v.report(m, reason) // the lookups already granted still go ahead
		fill(granted, reason)
	}
	asked := batch[:granted]
	if len(asked) == 0 {
		return out, nil
	}

	for pauses := 0; ; pauses++ {
		if err := v.waitPause(ctx, m); err != nil {
			return nil, err
		}
		if reason := m.stoppedReason(); reason != "" {
			fill(0, reason)
			return out, nil
		}
		ans, err := m.p.Lookup(ctx, asked)
		m.count(func(s *ProviderStats) { s.Lookups++ })
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var (
			auth  *AuthError
			quota *QuotaError
		)
		switch {
		case errors.As(err, &auth):
			v.stop(m, auth.Error())
			m.count(func(s *ProviderStats) { s.Errors++ })
			fill(0, auth.Error())
			return out, nil
		case errors.As(err, &quota):
			if pauses >= maxPauses {
				v.stop(m, fmt.Sprintf("%s; still refused after %d waits for the reset", quota.Error(), maxPauses))
			} else if v.pause(m, quota.Reset, quota.Error()) {
				continue
			}
			m.count(func(s *ProviderStats) { s.Errors++ })
			fill(0, m.stoppedReason())
			return out, nil
		case err != nil:
			v.log.Warn("lookup failed", "provider", name, "targets", len(asked), "err", err)
			failures := 0
			m.count(func(s *ProviderStats) {
				s.Errors++
				m.failures++
				failures = m.failures
			})
			if failures >= maxFailures {
				v.stop(m, fmt.Sprintf("%s; stopped after %d failed requests in a row", err, maxFailures))
			}
			fill(0, err.Error())
			return out, nil
		}
		m.count(func(*ProviderStats) { m.failures = 0 })

		got := make(map[Target]Verdict, len(ans.Verdicts))
		for _, vd := range ans.Verdicts {
			got[vd.Target] = vd
		}
		var answered []Verdict
		missing := 0
		at := v.now().UTC()
		for j, t := range asked {
			vd, ok := got[t]
			if !ok {
				vd = unknown(name, t, at, "not in the provider's reply")
				missing++
			}
			vd.Provider, vd.Target = name, t
			out[j] = vd
			if vd.Known() {
				answered = append(answered, vd)
			}
		}
		m.count(func(s *ProviderStats) {
			s.Answered += len(asked) - missing
			s.Unknown += len(asked) - len(answered)
		})
		if v.cache != nil && m.policy.CacheTTL > 0 && len(answered) > 0 {
			if err := v.cache.Put(ctx, answered); err != nil && ctx.Err() == nil {
				v.log.Warn("verdicts not cached", "provider", name, "err", err)
			}
		}
		if q := ans.Quota; q.Known && q.Remaining <= 0 {
			v.pause(m, q.Reset, name+": quota exhausted")
		}
		return out, nil
	}
}

// maxFailures is how many requests in a row, each already retried, may fail before the
// provider stops for the run: an unreachable service is not asked about every batch.
const maxFailures = 3

// maxPauses is how many times one batch waits for a quota reset before the provider stops.
const maxPauses = 3

// reserve takes n lookups from the provider's daily quota and returns how many it got.
func (v *Vetter) reserve(ctx context.Context, m *member, n int) (int, error) {
	limit := m.policy.DailyQuota
	if limit <= 0 {
		return n, nil
	}
	now := v.now().UTC()
	if v.cache != nil {
		return v.cache.Reserve(ctx, m.p.Name(), n, limit, now)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if day := now.Format(time.DateOnly); m.usedDay != day {
		m.usedDay, m.used = day, 0
	}
	granted := max(min(n, limit-m.used), 0)
	m.used += granted
	return granted, nil
}

// pause holds the provider until reset when that is within the run's patience and reports
// true; otherwise it stops the provider for the run and reports false.
func (v *Vetter) pause(m *member, reset time.Time, why string) bool {
	now := v.now()
	if reset.IsZero() {
		v.stop(m, why+"; the service did not say when it resets")
		return false
	}
	if wait := reset.Sub(now); wait > v.patience {
		v.stop(m, fmt.Sprintf("%s; it resets in %s, beyond the patience of %s", why, wait.Round(time.Second), v.patience))
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if reset.After(m.pausedUntil) {
		m.pausedUntil = reset
		v.log.Info("provider paused until its quota resets", "provider", m.p.Name(), "until", reset.UTC().Format(time.RFC3339))
	}
	return true
}

// waitPause waits until the provider is no longer paused.
func (v *Vetter) waitPause(ctx context.Context, m *member) error {
	for {
		m.mu.Lock()
		until := m.pausedUntil
		m.mu.Unlock()
		d := until.Sub(v.now())
		if d <= 0 {
			return ctx.Err()
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// stop makes the provider answer Unknown for the rest of the run, logging why once.
func (v *Vetter) stop(m *member, reason string) {
	m.mu.Lock()
	if m.stopped == "" {
		m.stopped = reason
	}
	m.mu.Unlock()
	v.report(m, reason)
}

// report records and logs, once, why the provider stopped answering.
func (v *Vetter) report(m *member, reason string) {
	m.mu.Lock()
	first := m.stats.Stopped == ""
	if first {
		m.stats.Stopped = reason
	}
	m.mu.Unlock()
	if first {
		v.log.Error("provider stopped for this run", "provider", m.p.Name(), "reason", reason)
	}
}

func (m *member) stoppedReason() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stopped
}

func (m *member) count(f func(*ProviderStats)) {
	m.mu.Lock()
	f(&m.stats)
	m.mu.Unlock()
}
