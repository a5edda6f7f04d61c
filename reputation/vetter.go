package reputation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
)

// Policy is what a Vetter keeps to for one provider. The zero value asks as fast as the
// provider answers, once per batch, with no daily limit and no cache.
type Policy struct {
	// DailyQuota is the most targets the provider is asked about per UTC day (a bulk
	// request of 50 addresses counts 50); 0 means no limit. With a Cache the count is kept
	// in its file, so it holds across runs and processes.
	DailyQuota int
	// CacheTTL is how long the provider's verdicts are reused; 0 disables caching for it.
	CacheTTL time.Duration
	// Rate is the most requests per second sent to the provider, retries included, shared
	// by every worker and every Vet call; 0 means no limit. Burst is how many may go at
	// once (at least 1). A service that throttles slows the rate for the rest of the run.
	Rate  float64
	Burst int
	// Retries is how many times a request that may succeed on a second try (a 5xx, a reset
	// connection, a timeout) is retried; 0 means none. A request that times out is sent at
	// most max(Retries, 1) times in all, so a silent service costs at most Timeout times
	// that. Throttling is waited out within the run's patience, whatever Retries says.
	Retries int
	// RetryWait is the first wait before a retry, doubled for each retry up to
	// MaxRetryWait; 0 means one second and 30 seconds.
	RetryWait    time.Duration
	MaxRetryWait time.Duration
}

// DefaultPatience is Options.Patience when it is zero.
const DefaultPatience = 2 * time.Minute

// Options configure a Vetter. The zero value is usable: four requests in flight per
// provider, no cache, the default patience.
type Options struct {
	// Workers is the most requests in flight to each provider, across every Vet call; 0
	// means 4. The provider's rate, shared by all of them, sets the pace.
	Workers int
	// Cache stores and reuses verdicts; nil means none.
	Cache *Cache
	// Policies holds each provider's policy by name.
	Policies map[string]Policy
	// Patience is the longest one batch of targets waits for a provider, retry waits,
	// throttling and quota resets together; 0 means DefaultPatience. A provider that would
	// need longer stops for the run.
	Patience time.Duration
	// Log receives one line when a provider stops, and debug lines; nil discards them.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Vetter asks every provider about every target. Its methods are safe for concurrent use;
// the state of each provider (pace, pause, stop, quota used) is shared by every call.
//
// A provider stops for the run when its key is refused, its quota is spent beyond the
// patience, it redirects to another host, it cannot be reached, or its requests fail
// three times in a row. From then on it is sent nothing: requests waiting for its rate
// limiter or for a free worker are dropped, and requests in flight are cancelled. Until a
// provider has replied once in a run, only one request at a time is sent to it, so that a
// wrong key, a wrong address or a service that does not answer costs one request, not one
// per worker.
type Vetter struct {
	members  []*member
	cache    *Cache
	log      *slog.Logger
	now      func() time.Time
	patience time.Duration
	workers  int
}

// member is one provider with its policy and its state for the run.
type member struct {
	p           Provider
	policy      Policy
	limiter     *rate.Limiter // nil: no limit
	slots       chan struct{} // one per request in flight
	probe       chan struct{} // held by the one request sent before the provider has replied
	paceMu      sync.Mutex
	lastSent    time.Time       // when the last request left pace
	lastWritten atomic.Int64    // when the last request was written, in Unix nanoseconds
	done        context.Context // ends when the provider stops; its cause says why
	stop        context.CancelCauseFunc

	mu           sync.Mutex
	replied      bool // the provider has sent an HTTP reply in this run
	pausedUntil  time.Time
	failures     int // requests failed in a row
	throttles    int // throttling replies in a row
	lastSlowdown time.Time
	usedDay      string // UTC day of used, when there is no cache
	used         int
	stats        ProviderStats
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
	// Throttled is the number of replies that asked sgvet to slow down.
	Throttled int `json:"throttled,omitempty"`
	// Stopped says why the provider stopped answering during the run, if it did.
	Stopped string `json:"stopped,omitempty"`
	// PausedUntil is when requests to the provider go on again, after a throttled reply or
	// while a quota resets; it is only for progress, and not in reports.
	PausedUntil time.Time `json:"-"`
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
	if v.patience <= 0 {
		v.patience = DefaultPatience
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if v.now == nil {
		v.now = time.Now
	}
	for _, p := range providers {
		pol := opts.Policies[p.Name()]
		if pol.RetryWait <= 0 {
			pol.RetryWait = time.Second
		}
		if pol.MaxRetryWait <= 0 {
			pol.MaxRetryWait = 30 * time.Second
		}
		m := &member{
			p:      p,
			policy: pol,
			slots:  make(chan struct{}, v.workers),
			probe:  make(chan struct{}, 1),
		}
		// The provider's lifetime is the Vetter's: it ends only when the provider stops.
		m.done, m.stop = context.WithCancelCause(context.Background())
		if pol.Rate > 0 {
			m.limiter = rate.NewLimiter(rate.Limit(pol.Rate), max(pol.Burst, 1))
		}
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
		out[i].PausedUntil = m.pausedUntil
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
	unanswered := func(idx []int, reason string) {
		at := v.now().UTC()
		for _, i := range idx {
			set(i, unknown(name, targets[i], at, reason))
		}
		m.count(func(s *ProviderStats) { s.Unknown += len(idx) })
	}
	if reason := m.stoppedReason(); reason != "" {
		unanswered(pending, reason)
		return nil
	}

	// The day's quota is taken for every target at once, and what was not sent is given
	// back at the end: two writes per call, not two per request.
	q, err := v.reserve(ctx, m, len(pending))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		unanswered(pending, "daily quota could not be counted: "+err.Error())
		return nil
	}
	if q.granted < len(pending) {
		reason := fmt.Sprintf("daily quota of %d lookups reached", m.policy.DailyQuota)
		v.report(m, reason) // the lookups already granted still go ahead
		unanswered(pending[q.granted:], reason)
		pending = pending[:q.granted]
	}
	var sent atomic.Int64 // targets in requests sent
	puts := v.newCacheWriter(m)
	defer func() {
		v.release(m, q, q.granted-int(sent.Load()))
		puts.flush(ctx)
	}()
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
	// Each worker here waits for one of the provider's slots, which every Vet call shares.
	workers := min(v.workers, (len(pending)+size-1)/size)
	for range workers {
		g.Go(func() error {
			for batch := range batches {
				asked := make([]Target, len(batch))
				for j, i := range batch {
					asked[j] = targets[i]
				}
				verdicts, wasSent, err := v.lookup(gctx, m, asked)
				if wasSent {
					sent.Add(int64(len(batch)))
				}
				if err != nil {
					return err
				}
				for j, i := range batch {
					set(i, verdicts[j])
				}
				puts.add(gctx, verdicts)
			}
			return nil
		})
	}
	return g.Wait()
}

// lookup asks one provider about one batch and returns one verdict per target, in order,
// and whether a request was sent. The error is only ever ctx's.
func (v *Vetter) lookup(ctx context.Context, m *member, batch []Target) ([]Verdict, bool, error) {
	name := m.p.Name()
	// Requests are cancelled when ctx ends or when the provider stops, whichever is first.
	rctx, cancel := context.WithCancelCause(ctx)
	unwatch := context.AfterFunc(m.done, func() { cancel(context.Cause(m.done)) })
	ans, sent, err := v.ask(rctx, m, batch)
	unwatch()
	cancel(nil)
	if ctx.Err() != nil {
		return nil, sent, ctx.Err()
	}
	out := make([]Verdict, len(batch))
	if err != nil {
		at := v.now().UTC()
		for j, t := range batch {
			out[j] = unknown(name, t, at, err.Error())
		}
		m.count(func(s *ProviderStats) { s.Unknown += len(batch) })
		return out, sent, nil
	}

	got := make(map[Target]Verdict, len(ans.Verdicts))
	for _, vd := range ans.Verdicts {
		got[vd.Target] = vd
	}
	missing, known := 0, 0
	at := v.now().UTC()
	for j, t := range batch {
		vd, ok := got[t]
		if !ok {
			vd = unknown(name, t, at, "not in the provider's reply")
			missing++
		}
		vd.Provider, vd.Target = name, t
		out[j] = vd
		if vd.Known() {
			known++
		}
	}
	m.count(func(s *ProviderStats) {
		s.Answered += len(batch) - missing
		s.Unknown += len(batch) - known
	})
	if q := ans.Quota; q.Known && q.Remaining <= 0 {
		v.quotaSpent(m, q.Reset, name+": quota exhausted", v.patience)
	}
	return out, sent, nil
}

// maxFailures is how many requests in a row, each already retried, may fail before the
// provider stops for the run: an unreachable service is not asked about every batch.
const maxFailures = 3

// maxPauses is how many times one batch waits for a quota reset before the provider stops.
const maxPauses = 3

// ask sends one batch to the provider until it answers, retrying, waiting out throttling
// and quota resets within the patience. It reports whether a request was sent. Its error
// is the reason the batch is unanswered: the provider stopped, or the request failed.
func (v *Vetter) ask(ctx context.Context, m *member, batch []Target) (Answer, bool, error) {
	select {
	case m.slots <- struct{}{}:
	case <-ctx.Done():
		return Answer{}, false, context.Cause(ctx)
	}
	defer func() { <-m.slots }()

	probing, err := m.enter(ctx)
	if err != nil {
		return Answer{}, false, err
	}
	defer func() {
		if probing {
			<-m.probe
		}
	}()

	budget := v.patience // what is left of the patience for this batch
	sent := false
	attempts, pauses := 0, 0
	var last error // why the previous attempt failed
	for {
		if err := v.waitPause(ctx, m, &budget); err != nil {
			return Answer{}, sent, err
		}
		// The first attempt waits its turn; a retry's wait for the rate is patience spent.
		retryBudget := &budget
		if last == nil {
			retryBudget = nil
		}
		if err := m.pace(ctx, retryBudget); err != nil {
			if errors.Is(err, errOutOfPatience) {
				return Answer{}, sent, v.outOfPatience(m, last)
			}
			return Answer{}, sent, causeOr(ctx, err)
		}
		// The provider may have stopped while this request waited: its cancellation of ctx
		// can arrive a moment later than the stop itself.
		if err := context.Cause(m.done); err != nil {
			return Answer{}, sent, err
		}
		sent = true
		ans, err := m.p.Lookup(withWrote(ctx, m.wrote), batch)
		m.count(func(s *ProviderStats) { s.Lookups++ })
		if err == nil {
			m.succeeded()
			return ans, sent, nil
		}
		if ctx.Err() != nil {
			return Answer{}, sent, context.Cause(ctx)
		}
		last = err

		var (
			auth     *AuthError
			redirect *RedirectError
			quota    *QuotaError
			throttle *ThrottleError
			network  *NetworkError
		)
		if errors.As(err, &auth) || errors.As(err, &redirect) {
			m.count(func(s *ProviderStats) { s.Errors++ })
			return Answer{}, sent, v.stop(m, err.Error())
		}
		// Once the provider has replied, other requests may go; but only once this reply has
		// been acted on, so that a reply that stops the provider stops them too.
		letOthersGo := func() {
			if replied(err) {
				m.setReplied()
			}
			if probing && m.hasReplied() {
				<-m.probe
				probing = false
			}
		}
		switch {
		case errors.As(err, &quota):
			m.count(func(s *ProviderStats) { s.Errors++ })
			pauses++
			if pauses > maxPauses {
				return Answer{}, sent, v.stop(m, fmt.Sprintf("%s; still refused after %d waits for the reset", quota, maxPauses))
			}
			if err := v.quotaSpent(m, quota.Reset, quota.Error(), budget); err != nil {
				return Answer{}, sent, err
			}
			letOthersGo()

		case errors.As(err, &throttle):
			wait := m.slowDown(throttle.Wait, v.now())
			if wait > budget {
				return Answer{}, sent, v.outOfPatience(m, throttle)
			}
			m.pause(v.now().Add(wait))
			letOthersGo()

		case errors.As(err, &network) && network.Unreachable && !m.hasReplied():
			m.count(func(s *ProviderStats) { s.Errors++ })
			return Answer{}, sent, v.stop(m, fmt.Sprintf("%s: cannot be reached: %v", network.Provider, network.Err))

		case retryable(err):
			letOthersGo()
			attempts++
			limit := m.policy.Retries + 1
			d := m.policy.backoff(attempts)
			if errors.As(err, &network) && network.Timeout {
				// A request that timed out has waited long enough: it is retried at once,
				// and sent Retries times in all.
				limit, d = max(m.policy.Retries, 1), 0
			}
			if attempts < limit {
				if d <= budget {
					v.log.Debug("retrying", "provider", m.p.Name(), "in", d, "err", err)
					if err := sleep(ctx, d); err != nil {
						return Answer{}, sent, err
					}
					budget -= d
					continue
				}
			}
			return Answer{}, sent, v.failed(m, err)

		default: // an answer that is not one: a 4xx, a malformed or oversized reply
			letOthersGo()
			return Answer{}, sent, v.failed(m, err)
		}
	}
}

// errOutOfPatience is pace's error for a retry that would wait longer for the rate than is
// left of the batch's patience.
var errOutOfPatience = errors.New("out of patience")

// outOfPatience ends a batch whose retry would wait beyond the patience, after err: a
// provider still throttling stops for the run; any other failure counts as one.
func (v *Vetter) outOfPatience(m *member, err error) error {
	var throttle *ThrottleError
	if errors.As(err, &throttle) {
		return v.stop(m, fmt.Sprintf("%s; still throttled after waiting the patience of %s", throttle, v.patience))
	}
	return v.failed(m, err)
}

// enter lets a request go: at once when the provider has replied in this run, otherwise
// only once it holds the probe, which the caller then gives back. Until the provider has
// replied, its requests go one at a time.
func (m *member) enter(ctx context.Context) (probing bool, err error) {
	if m.hasReplied() {
		return false, nil
	}
	select {
	case m.probe <- struct{}{}:
	case <-ctx.Done():
		return false, context.Cause(ctx)
	}
	if m.hasReplied() {
		<-m.probe
		return false, nil
	}
	return true, nil
}

// replied reports whether err carries an HTTP reply from the service: anything but a
// network error.
func replied(err error) bool {
	var network *NetworkError
	return !errors.As(err, &network)
}

// retryable reports whether a failed request may succeed if sent again.
func retryable(err error) bool {
	var (
		network *NetworkError
		status  *StatusError
	)
	return errors.As(err, &network) || errors.As(err, &status) && status.Temporary()
}

// failed counts a batch the provider could not answer and returns the reason. A provider
// that has never replied in this run, or has failed maxFailures times in a row, stops.
func (v *Vetter) failed(m *member, err error) error {
	m.mu.Lock()
	m.stats.Errors++
	m.failures++
	failures, hasReplied := m.failures, m.replied
	m.mu.Unlock()
	switch {
	case !hasReplied:
		return v.stop(m, fmt.Sprintf("%v; the provider has not answered in this run", err))
	case failures >= maxFailures:
		return v.stop(m, fmt.Sprintf("%v; stopped after %d failed requests in a row", err, maxFailures))
	}
	v.log.Warn("lookup failed", "provider", m.p.Name(), "err", err)
	return err
}

// quotaSpent pauses the provider until reset when that is within wait and returns nil;
// otherwise it stops the provider for the run and returns why.
func (v *Vetter) quotaSpent(m *member, reset time.Time, why string, wait time.Duration) error {
	now := v.now()
	if reset.IsZero() {
		return v.stop(m, why+"; the service did not say when it resets")
	}
	if d := reset.Sub(now); d > wait {
		return v.stop(m, fmt.Sprintf("%s; it resets in %s, beyond the patience of %s", why, d.Round(time.Second), v.patience))
	}
	if m.pause(reset) {
		v.log.Info("provider paused until its quota resets", "provider", m.p.Name(), "until", reset.UTC().Format(time.RFC3339))
	}
	return nil
}

// waitPause waits while the provider is paused, taking the time from budget. A pause
// longer than what is left of the budget stops the provider.
func (v *Vetter) waitPause(ctx context.Context, m *member, budget *time.Duration) error {
	for {
		m.mu.Lock()
		until := m.pausedUntil
		m.mu.Unlock()
		d := until.Sub(v.now())
		if d <= 0 {
			return nil
		}
		if d > *budget {
			return v.stop(m, fmt.Sprintf("%s: paused for longer than the patience of %s", m.p.Name(), v.patience))
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
		*budget -= d
	}
}

// sleep waits d, or until ctx ends, returning its cause.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// causeOr returns ctx's cause when it has ended, else err.
func causeOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

// stoppedError is the cause with which a stopped provider's requests are cancelled.
type stoppedError struct{ reason string }

func (e *stoppedError) Error() string { return e.reason }

// stop makes the provider answer Unknown for the rest of the run, cancels its requests in
// flight and in waiting, logs why once, and returns the reason as an error.
func (v *Vetter) stop(m *member, reason string) error {
	m.stop(&stoppedError{reason})
	err := context.Cause(m.done) // the first reason, if the provider had already stopped
	v.report(m, err.Error())
	return err
}

// report records and logs, once, why the provider stopped answering. The stats name the
// provider, so the reason does not start with its name.
func (v *Vetter) report(m *member, reason string) {
	reason = withoutProvider(m.p.Name(), reason)
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

// stoppedReason says why the provider stopped for the run, or "" while it goes on.
func (m *member) stoppedReason() string {
	if err := context.Cause(m.done); err != nil {
		return err.Error()
	}
	return ""
}

func (m *member) hasReplied() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.replied
}

func (m *member) setReplied() {
	m.mu.Lock()
	m.replied = true
	m.mu.Unlock()
}

// pause holds every request to the provider until t, and reports whether that moved the
// pause later.
func (m *member) pause(t time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t.After(m.pausedUntil) {
		m.pausedUntil = t
		return true
	}
	return false
}

// succeeded records an answer: the failure and throttle counts start again.
func (m *member) succeeded() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.replied = true
	m.failures, m.throttles = 0, 0
}

// paceSpare is the share of the interval pace keeps spare: requests leave no closer than
// the rate's interval plus 0.5%, so that one that reaches the service a moment later than
// the next one is still not early.
const paceSpare = 1.005

// pace waits until the provider's rate lets a request go. With a burst of 1 it also keeps
// the rate's interval since the previous request actually went: the limiter spaces the
// times requests may go, but a request that wakes late would otherwise be followed by one
// that leaves on time, and a service as strict as the rate would see the two too close.
//
// With a budget (a retry), the wait for the rate is taken from it, and a wait longer than
// the budget is not made: pace returns errOutOfPatience.
func (m *member) pace(ctx context.Context, budget *time.Duration) error {
	if m.limiter == nil {
		return nil
	}
	r := m.limiter.Reserve()
	d := r.Delay()
	if budget != nil && d > *budget {
		r.Cancel()
		return errOutOfPatience
	}
	if err := sleep(ctx, d); err != nil {
		r.Cancel()
		return err
	}
	if budget != nil {
		*budget -= d
	}
	if m.limiter.Burst() > 1 {
		return nil
	}
	m.paceMu.Lock()
	defer m.paceMu.Unlock()
	interval := time.Duration(paceSpare * float64(time.Second) / float64(m.limiter.Limit()))
	for {
		// The previous request counts from when it left, or from when it was written to
		// its connection, if that was later.
		last := m.lastSent
		if written := time.Unix(0, m.lastWritten.Load()); written.After(last) {
			last = written
		}
		d := time.Until(last.Add(interval))
		if d <= 0 {
			break
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	m.lastSent = time.Now()
	return nil
}

// wrote records that a request to the provider was written to its connection.
func (m *member) wrote(at time.Time) {
	for {
		old := m.lastWritten.Load()
		if at.UnixNano() <= old || m.lastWritten.CompareAndSwap(old, at.UnixNano()) {
			return
		}
	}
}

// slowdownStep and slowdownSpare are how much each throttling reply lowers the provider's
// rate: by 1%, or by as much as leaves 2ms more between requests, whichever is more (at
// most by half). A service as strict as the rate refuses a request that reaches it a
// moment early; the way there varies by a millisecond or more, and at high rates 1% is
// less than that.
const (
	slowdownStep  = 0.01
	slowdownSpare = 2 * time.Millisecond
)

// slower returns the rate after a throttling reply at limit.
func slower(limit rate.Limit) rate.Limit {
	cut := max(slowdownStep, slowdownSpare.Seconds()*float64(limit))
	return limit * rate.Limit(1-min(cut, 0.5))
}

// slowDown records a throttling reply and returns how long to wait before the next
// request: what the service asked, or a backoff. It lowers the provider's rate for the
// rest of the run, never below 1/64 of the configured rate; replies within a second of
// each other count once.
func (m *member) slowDown(asked time.Duration, now time.Time) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.throttles++
	m.stats.Throttled++
	if m.limiter != nil && now.Sub(m.lastSlowdown) >= time.Second {
		m.lastSlowdown = now
		m.limiter.SetLimit(max(slower(m.limiter.Limit()), rate.Limit(m.policy.Rate)/64))
	}
	if asked > 0 {
		return asked
	}
	return m.policy.backoff(m.throttles)
}

// backoff is the wait before retry number n (from 1): RetryWait doubled n-1 times, at most
// MaxRetryWait.
func (p Policy) backoff(n int) time.Duration {
	d := p.RetryWait << min(max(n-1, 0), 20)
	if d <= 0 || d > p.MaxRetryWait {
		d = p.MaxRetryWait
	}
	return d
}

func (m *member) count(f func(*ProviderStats)) {
	m.mu.Lock()
	f(&m.stats)
	m.mu.Unlock()
}

// reservation is part of a provider's daily quota taken for one Vet call.
type reservation struct {
	granted int
	day     string
}

// reserve takes n lookups from the provider's daily quota and returns how many it got.
func (v *Vetter) reserve(ctx context.Context, m *member, n int) (reservation, error) {
	limit := m.policy.DailyQuota
	if limit <= 0 {
		return reservation{granted: n}, nil
	}
	now := v.now().UTC()
	r := reservation{day: cacheDay(now)}
	if v.cache != nil {
		granted, err := v.cache.Reserve(ctx, m.p.Name(), n, limit, now)
		r.granted = granted
		return r, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.usedDay != r.day {
		m.usedDay, m.used = r.day, 0
	}
	r.granted = max(min(n, limit-m.used), 0)
	m.used += r.granted
	return r, nil
}

// release gives back n lookups of a reservation that were never sent.
func (v *Vetter) release(m *member, r reservation, n int) {
	if n <= 0 || m.policy.DailyQuota <= 0 {
		return
	}
	if v.cache != nil {
		// Also when the run is being cancelled: the count must not keep what was not sent.
		if err := v.cache.Release(context.Background(), m.p.Name(), n, r.day); err != nil {
			v.log.Warn("unused quota not given back", "provider", m.p.Name(), "err", err)
		}
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.usedDay == r.day {
		m.used = max(m.used-n, 0)
	}
}

// cacheWriter gathers one Vet call's verdicts of one provider and writes them to the cache
// in a few transactions, not one per request.
type cacheWriter struct {
	v  *Vetter
	m  *member
	mu sync.Mutex
	vs []Verdict
}

// cacheBatch is how many verdicts are written in one transaction.
const cacheBatch = 256

func (v *Vetter) newCacheWriter(m *member) *cacheWriter { return &cacheWriter{v: v, m: m} }

func (w *cacheWriter) enabled() bool { return w.v.cache != nil && w.m.policy.CacheTTL > 0 }

// add keeps verdicts, writing them once enough have gathered. The cache keeps only the
// known ones.
func (w *cacheWriter) add(ctx context.Context, verdicts []Verdict) {
	if w.enabled() {
		w.write(ctx, verdicts, cacheBatch)
	}
}

// flush writes what is left.
func (w *cacheWriter) flush(ctx context.Context) {
	if w.enabled() {
		w.write(ctx, nil, 1)
	}
}

// write adds verdicts to those kept, and stores what is kept once it holds least or more,
// also when ctx has ended: answers already paid for are kept. The cache's busy timeout
// bounds the write.
func (w *cacheWriter) write(ctx context.Context, verdicts []Verdict, least int) {
	w.mu.Lock()
	w.vs = append(w.vs, verdicts...)
	var batch []Verdict
	if len(w.vs) >= least {
		batch, w.vs = w.vs, nil
	}
	w.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	if err := w.v.cache.Put(context.WithoutCancel(ctx), batch); err != nil {
		w.v.log.Warn("verdicts not cached", "provider", w.m.p.Name(), "err", err)
	}
}
