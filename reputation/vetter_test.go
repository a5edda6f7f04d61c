package reputation

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// scripted is a Provider whose answers the test decides, with the request's context and
// the number of the call, counting its lookups and the most in flight at once. It takes
// IPv4 targets only.
type scripted struct {
	name  string
	batch int
	// answer returns the verdicts for one lookup, or an error; nil answers clean.
	answer func(ctx context.Context, call int, targets []Target) (Answer, error)

	mu          sync.Mutex
	calls       [][]Target
	inFlight    int
	maxInFlight int
}

func (s *scripted) Name() string   { return s.name }
func (s *scripted) BatchSize() int { return s.batch }
func (s *scripted) Supports(t Target) error {
	if t.Addr().Is6() {
		return fmt.Errorf("%s: IPv4 only: %w", t, ErrUnsupported)
	}
	return nil
}

func (s *scripted) Lookup(ctx context.Context, targets []Target) (Answer, error) {
	s.mu.Lock()
	call := len(s.calls)
	s.calls = append(s.calls, slices.Clone(targets))
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	if s.answer != nil {
		return s.answer(ctx, call, targets)
	}
	return cleanAnswer(s.name, targets), nil
}

func (s *scripted) lookups() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

func (s *scripted) mostInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInFlight
}

func cleanAnswer(name string, targets []Target) Answer {
	var a Answer
	for _, t := range targets {
		a.Verdicts = append(a.Verdicts, Verdict{Provider: name, Target: t, Status: Clean, CheckedAt: time.Now()})
	}
	return a
}

func addrs(n int) []Target {
	out := make([]Target, n)
	for i := range out {
		out[i] = AddressTarget(netip.AddrFrom4([4]byte{85, 25, byte(i >> 8), byte(i)}))
	}
	return out
}

func statuses(results []Result, provider int) map[Status]int {
	out := map[Status]int{}
	for _, r := range results {
		out[r.Verdicts[provider].Status]++
	}
	return out
}

func TestVetBatchesDeduplicatesAndKeepsOrder(t *testing.T) {
	p := &scripted{name: "bulk", batch: 50}
	targets := addrs(120)
	targets = append(targets, targets[:10]...) // repeats are asked once
	v := NewVetter([]Provider{p}, Options{Workers: 3})
	results, err := v.Vet(t.Context(), targets)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 120 {
		t.Fatalf("Vet returned %d results, want 120", len(results))
	}
	for i, r := range results {
		if r.Target != targets[i] {
			t.Fatalf("result %d is for %s, want %s", i, r.Target, targets[i])
		}
		if got := r.Verdicts[0]; got.Status != Clean || got.Provider != "bulk" || got.Target != r.Target {
			t.Fatalf("verdict %d = %+v, want clean from bulk for %s", i, got, r.Target)
		}
	}
	if got := p.lookups(); got != 3 {
		t.Errorf("lookups = %d, want 3 (ceil(120/50))", got)
	}
	if st := v.Stats()[0]; st.Lookups != 3 || st.Answered != 120 || st.Unknown != 0 {
		t.Errorf("Stats = %+v, want 3 lookups, 120 answered", st)
	}
}

func TestVetUnsupportedAndMissingAreUnknown(t *testing.T) {
	p := &scripted{name: "v4", batch: 10, answer: func(_ context.Context, _ int, targets []Target) (Answer, error) {
		return cleanAnswer("v4", targets[1:]), nil // the first target is left out of the reply
	}}
	six := AddressTarget(netip.MustParseAddr("2a03:2880:f10c:83:face:b00c::25de"))
	targets := append(addrs(3), six)
	results, err := NewVetter([]Provider{p}, Options{}).Vet(t.Context(), targets)
	if err != nil {
		t.Fatal(err)
	}
	want := []Status{Unknown, Clean, Clean, Unknown}
	for i, r := range results {
		if got := r.Verdicts[0]; got.Status != want[i] || (got.Status == Unknown && got.Reason == "") {
			t.Errorf("verdict for %s = %s (%q), want %s with a reason", r.Target, got.Status, got.Reason, want[i])
		}
	}
	if p.lookups() != 1 {
		t.Errorf("lookups = %d, want 1: the IPv6 address is never sent", p.lookups())
	}
}

func TestVetAuthErrorStopsTheProvider(t *testing.T) {
	p := &scripted{name: "keyed", batch: 1, answer: func(context.Context, int, []Target) (Answer, error) {
		return Answer{}, &AuthError{Provider: "keyed", KeyEnv: "KEYED_API_KEY", Status: 401, Message: "Invalid API key"}
	}}
	other := &scripted{name: "other", batch: 1}
	v := NewVetter([]Provider{p, other}, Options{Workers: 1})
	results, err := v.Vet(t.Context(), addrs(20))
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(results, 0); got[Unknown] != 20 {
		t.Errorf("keyed statuses = %v, want 20 unknown", got)
	}
	if got := statuses(results, 1); got[Clean] != 20 {
		t.Errorf("other statuses = %v, want 20 clean: one provider's failure is not another's", got)
	}
	if p.lookups() != 1 {
		t.Errorf("keyed was asked %d times after a 401, want 1", p.lookups())
	}
	st := v.Stats()[0]
	if st.Stopped == "" || !contains(st.Stopped, "KEYED_API_KEY") {
		t.Errorf("Stopped = %q, want the reason naming KEYED_API_KEY", st.Stopped)
	}
	if r := results[5].Verdicts[0].Reason; !contains(r, "KEYED_API_KEY") {
		t.Errorf("Reason = %q, want it to name the key variable", r)
	}
}

func TestVetQuota(t *testing.T) {
	tests := []struct {
		name     string
		patience time.Duration
		reset    time.Duration
		want     map[Status]int
		lookups  int
	}{
		// The quota resets within the patience: the provider waits, then answers everything.
		{"pause", time.Minute, 50 * time.Millisecond, map[Status]int{Clean: 10}, 11},
		// It resets later than the run will wait: the rest is unknown, asked no more.
		{"stop", time.Minute, time.Hour, map[Status]int{Clean: 4, Unknown: 6}, 5},
		{"no reset given", time.Minute, 0, map[Status]int{Clean: 4, Unknown: 6}, 5},
		// It keeps refusing after each short reset: the batch waits a few times, then stops.
		{"refused after resets", time.Minute, -10 * time.Millisecond, map[Status]int{Clean: 4, Unknown: 6}, 5 + maxPauses},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var once sync.Once
			p := &scripted{name: "q", batch: 1}
			p.answer = func(_ context.Context, call int, targets []Target) (Answer, error) {
				if tc.reset < 0 && call >= 4 {
					return Answer{}, &QuotaError{Provider: "q", Reset: time.Now().Add(-tc.reset)}
				}
				if call == 4 {
					err := error(nil)
					once.Do(func() {
						var reset time.Time
						if tc.reset > 0 {
							reset = time.Now().Add(tc.reset)
						}
						err = &QuotaError{Provider: "q", Reset: reset}
					})
					if err != nil {
						return Answer{}, err
					}
				}
				return cleanAnswer("q", targets), nil
			}
			v := NewVetter([]Provider{p}, Options{Workers: 1, Patience: tc.patience, Now: time.Now})
			results, err := v.Vet(t.Context(), addrs(10))
			if err != nil {
				t.Fatal(err)
			}
			if got := statuses(results, 0); !equalCounts(got, tc.want) {
				t.Errorf("statuses = %v, want %v", got, tc.want)
			}
			if p.lookups() != tc.lookups {
				t.Errorf("lookups = %d, want %d", p.lookups(), tc.lookups)
			}
		})
	}
}

func TestVetRemainingZeroPausesBeforeThe429(t *testing.T) {
	p := &scripted{name: "hdr", batch: 1}
	p.answer = func(_ context.Context, call int, targets []Target) (Answer, error) {
		a := cleanAnswer("hdr", targets)
		a.Quota = Quota{Known: true, Remaining: 2 - call, Reset: time.Now().Add(time.Hour)}
		return a, nil
	}
	results, err := NewVetter([]Provider{p}, Options{Workers: 1, Patience: time.Second}).Vet(t.Context(), addrs(5))
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(results, 0); got[Clean] != 3 || got[Unknown] != 2 {
		t.Errorf("statuses = %v, want 3 clean then 2 unknown once the service says 0 remain", got)
	}
	if p.lookups() != 3 {
		t.Errorf("lookups = %d, want 3", p.lookups())
	}
}

func TestVetDailyQuotaIsNeverExceeded(t *testing.T) {
	for _, withCache := range []bool{false, true} {
		t.Run(fmt.Sprintf("cache=%v", withCache), func(t *testing.T) {
			opts := Options{Workers: 4, Policies: map[string]Policy{"bulk": {DailyQuota: 120}}}
			if withCache {
				opts.Cache = openTestCache(t, filepath.Join(t.TempDir(), "v.db"))
			}
			p := &scripted{name: "bulk", batch: 50}
			v := NewVetter([]Provider{p}, opts)
			results, err := v.Vet(t.Context(), addrs(200))
			if err != nil {
				t.Fatal(err)
			}
			asked := 0
			for _, c := range p.calls {
				asked += len(c)
			}
			if asked != 120 {
				t.Errorf("asked about %d addresses, want exactly the quota of 120", asked)
			}
			if got := statuses(results, 0); got[Clean] != 120 || got[Unknown] != 80 {
				t.Errorf("statuses = %v, want 120 clean, 80 unknown", got)
			}
			// A second run on the same day asks nothing more.
			if _, err := v.Vet(t.Context(), addrs(300)[200:]); err != nil {
				t.Fatal(err)
			}
			if countTargets(p.calls) != 120 {
				t.Errorf("a second run asked about %d addresses in all, want still 120", countTargets(p.calls))
			}
		})
	}
}

func countTargets(calls [][]Target) int {
	n := 0
	for _, c := range calls {
		n += len(c)
	}
	return n
}

func TestVetCache(t *testing.T) {
	c := openTestCache(t, filepath.Join(t.TempDir(), "v.db"))
	p := &scripted{name: "bulk", batch: 50}
	failing := &scripted{name: "down", batch: 50, answer: func(context.Context, int, []Target) (Answer, error) {
		return Answer{}, &StatusError{Provider: "down", Status: 503}
	}}
	opts := Options{Cache: c, Policies: map[string]Policy{"bulk": {CacheTTL: time.Hour}, "down": {CacheTTL: time.Hour}}}
	targets := addrs(100)
	if _, err := NewVetter([]Provider{p, failing}, opts).Vet(t.Context(), targets); err != nil {
		t.Fatal(err)
	}
	first, firstDown := p.lookups(), failing.lookups()
	v := NewVetter([]Provider{p, failing}, opts)
	results, err := v.Vet(t.Context(), targets)
	if err != nil {
		t.Fatal(err)
	}
	if p.lookups() != first {
		t.Errorf("a warm cache still made %d lookups", p.lookups()-first)
	}
	if failing.lookups() == firstDown {
		t.Errorf("unknown verdicts were cached: the failing provider was not asked again")
	}
	for _, r := range results {
		if !r.Verdicts[0].Cached || r.Verdicts[0].Status != Clean {
			t.Fatalf("verdict = %+v, want a cached clean one", r.Verdicts[0])
		}
	}
	if st := v.Stats()[0]; st.CacheHits != 100 || st.Lookups != 0 {
		t.Errorf("Stats = %+v, want 100 cache hits and no lookups", st)
	}
}

func TestVetStopsWhenCancelled(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1000)
	p := &scripted{name: "slow", batch: 1}
	p.answer = func(ctx context.Context, _ int, targets []Target) (Answer, error) {
		started <- struct{}{}
		select {
		case <-ctx.Done():
			return Answer{}, ctx.Err()
		case <-release:
			return cleanAnswer("slow", targets), nil
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := NewVetter([]Provider{p}, Options{Workers: 2}).Vet(ctx, addrs(1000))
		done <- err
	}()
	<-started // a request is in flight
	cancel()
	// Vet must return while the provider still holds its request: the test would hang
	// otherwise.
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Vet = %v, want context.Canceled", err)
	}
	close(release)
}

func equalCounts(a, b map[Status]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestVetStopsAfterFailuresInARow(t *testing.T) {
	p := &scripted{name: "down", batch: 1, answer: func(context.Context, int, []Target) (Answer, error) {
		return Answer{}, errors.New("dial tcp: lookup api.example: no such host")
	}}
	v := NewVetter([]Provider{p}, Options{Workers: 1})
	results, err := v.Vet(t.Context(), addrs(10))
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(results, 0); got[Unknown] != 10 {
		t.Errorf("statuses = %v, want 10 unknown", got)
	}
	if p.lookups() != maxFailures {
		t.Errorf("lookups = %d, want %d: an unreachable service is not asked about every batch", p.lookups(), maxFailures)
	}
	if st := v.Stats()[0]; !strings.Contains(st.Stopped, "failed requests in a row") || st.Errors != maxFailures {
		t.Errorf("Stats = %+v, want stopped after %d errors", st, maxFailures)
	}

	// A success between failures starts the count again.
	flaky := &scripted{name: "flaky", batch: 1}
	flaky.answer = func(_ context.Context, call int, targets []Target) (Answer, error) {
		if call%2 == 0 {
			return Answer{}, &StatusError{Provider: "flaky", Status: 503}
		}
		return cleanAnswer("flaky", targets), nil
	}
	if _, err := NewVetter([]Provider{flaky}, Options{Workers: 1}).Vet(t.Context(), addrs(10)); err != nil {
		t.Fatal(err)
	}
	if flaky.lookups() != 10 {
		t.Errorf("flaky lookups = %d, want 10: failures with successes between them do not stop it", flaky.lookups())
	}
}

var errKeyRevoked = &AuthError{Provider: "keyed", KeyEnv: "KEYED_API_KEY", Status: 401}

func TestVetStopCancelsRequestsInFlight(t *testing.T) {
	waiting := make(chan struct{}, 3)
	var cancelled sync.WaitGroup
	cancelled.Add(3)
	p := &scripted{name: "keyed", batch: 1}
	p.answer = func(ctx context.Context, call int, targets []Target) (Answer, error) {
		switch {
		case call == 0:
			return cleanAnswer("keyed", targets), nil
		case call <= 3:
			waiting <- struct{}{}
			<-ctx.Done() // the stop must cancel this request
			cancelled.Done()
			return Answer{}, ctx.Err()
		case call == 4:
			for range 3 {
				<-waiting
			}
			return Answer{}, errKeyRevoked
		}
		t.Errorf("call %d after the provider stopped", call)
		return cleanAnswer("keyed", targets), nil
	}
	v := NewVetter([]Provider{p}, Options{Workers: 4})
	results, err := v.Vet(t.Context(), addrs(100))
	if err != nil {
		t.Fatal(err)
	}
	cancelled.Wait()
	if calls := p.lookups(); calls != 5 {
		t.Errorf("calls = %d, want 5: one answer, three cancelled in flight, the 401, and nothing after", calls)
	}
	if got := statuses(results, 0); got[Clean] != 1 || got[Unknown] != 99 {
		t.Errorf("statuses = %v, want 1 clean and 99 unknown", got)
	}
	if r := results[50].Verdicts[0].Reason; !contains(r, "KEYED_API_KEY") {
		t.Errorf("Reason = %q, want the stop's reason", r)
	}
}

func TestVetStopDropsRequestsWaitingForTheRate(t *testing.T) {
	p := &scripted{name: "keyed", batch: 1}
	p.answer = func(_ context.Context, call int, targets []Target) (Answer, error) {
		if call == 1 {
			return Answer{}, errKeyRevoked
		}
		return cleanAnswer("keyed", targets), nil
	}
	// At 1 request a second, the other workers are waiting for the limiter when the 401
	// comes: they must not send.
	v := NewVetter([]Provider{p}, Options{Workers: 4, Policies: map[string]Policy{"keyed": {Rate: 1, Burst: 1}}})
	if _, err := v.Vet(t.Context(), addrs(40)); err != nil {
		t.Fatal(err)
	}
	if calls := p.lookups(); calls != 2 {
		t.Errorf("calls = %d, want 2: requests waiting for the rate are dropped when the provider stops", calls)
	}
}

func TestVetWorkersBoundRequestsAcrossCalls(t *testing.T) {
	p := &scripted{name: "slow", batch: 1}
	p.answer = func(_ context.Context, _ int, targets []Target) (Answer, error) {
		time.Sleep(time.Millisecond) // the service's latency
		return cleanAnswer("slow", targets), nil
	}
	v := NewVetter([]Provider{p}, Options{Workers: 3})
	var g sync.WaitGroup
	for i := range 8 {
		g.Go(func() {
			if _, err := v.Vet(t.Context(), addrs(200)[i*25:(i+1)*25]); err != nil {
				t.Error(err)
			}
		})
	}
	g.Wait()
	if calls, most := p.lookups(), p.mostInFlight(); calls != 200 || most > 3 {
		t.Errorf("calls = %d, most in flight = %d; want 200 and at most 3 (Workers), whatever the number of Vet calls", calls, most)
	}
}

func TestVetThrottlingSlowsAndRetries(t *testing.T) {
	p := &scripted{name: "strict", batch: 1}
	p.answer = func(_ context.Context, call int, targets []Target) (Answer, error) {
		if call == 3 {
			return Answer{}, &ThrottleError{Provider: "strict", Message: "Too Many Attempts."}
		}
		return cleanAnswer("strict", targets), nil
	}
	pol := Policy{Rate: 1000, Burst: 1, RetryWait: time.Millisecond}
	v := NewVetter([]Provider{p}, Options{Workers: 2, Policies: map[string]Policy{"strict": pol}})
	results, err := v.Vet(t.Context(), addrs(10))
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(results, 0); got[Clean] != 10 {
		t.Errorf("statuses = %v, want 10 clean: throttling is waited out, not a stop", got)
	}
	st := v.Stats()[0]
	if st.Stopped != "" || st.Throttled != 1 || st.Lookups != 11 {
		t.Errorf("Stats = %+v, want not stopped, 1 throttled, 11 lookups", st)
	}
	if st.PausedUntil.IsZero() {
		t.Errorf("Stats().PausedUntil is zero, want when the pause after the throttled reply ended")
	}
	if got := v.members[0].limiter.Limit(); got != 500 {
		t.Errorf("rate = %v, want 500: at 1000/s, 2ms more between requests is at most half the rate", got)
	}
}

func TestVetThrottledBeyondThePatience(t *testing.T) {
	p := &scripted{name: "strict", batch: 1}
	p.answer = func(context.Context, int, []Target) (Answer, error) {
		return Answer{}, &ThrottleError{Provider: "strict", Message: "Your request has been throttled"}
	}
	// Backoffs of 20ms, then 40ms: the second would pass the patience of 30ms, whatever
	// the first took.
	pol := Policy{RetryWait: 20 * time.Millisecond, MaxRetryWait: time.Second}
	v := NewVetter([]Provider{p}, Options{Workers: 1, Patience: 30 * time.Millisecond, Policies: map[string]Policy{"strict": pol}})
	results, err := v.Vet(t.Context(), addrs(20))
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(results, 0); got[Unknown] != 20 {
		t.Errorf("statuses = %v, want 20 unknown", got)
	}
	if calls := p.lookups(); calls != 2 {
		t.Errorf("calls = %d, want 2: the throttled request and one retry within the patience", calls)
	}
	if st := v.Stats()[0]; !contains(st.Stopped, "still throttled") {
		t.Errorf("Stopped = %q, want it to say the provider was still throttled", st.Stopped)
	}
}

func TestVetUnreachableOnlyAtTheStartStops(t *testing.T) {
	unreachable := &NetworkError{Provider: "blip", Unreachable: true, Err: errors.New("connect: connection refused")}
	p := &scripted{name: "blip", batch: 1}
	p.answer = func(_ context.Context, call int, targets []Target) (Answer, error) {
		if call == 3 {
			return Answer{}, unreachable // a restart of a service that has answered
		}
		return cleanAnswer("blip", targets), nil
	}
	v := NewVetter([]Provider{p}, Options{Workers: 1, Policies: map[string]Policy{"blip": {Retries: 1, RetryWait: time.Millisecond}}})
	results, err := v.Vet(t.Context(), addrs(10))
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(results, 0); got[Clean] != 10 {
		t.Errorf("statuses = %v, want 10 clean: a refused connection after answers is retried", got)
	}

	down := &scripted{name: "down", batch: 1}
	down.answer = func(context.Context, int, []Target) (Answer, error) { return Answer{}, unreachable }
	v = NewVetter([]Provider{down}, Options{Workers: 4, Policies: map[string]Policy{"down": {Retries: 3}}})
	if _, err := v.Vet(t.Context(), addrs(100)); err != nil {
		t.Fatal(err)
	}
	if calls := down.lookups(); calls != 1 || !contains(v.Stats()[0].Stopped, "cannot be reached") {
		t.Errorf("calls = %d, Stopped = %q; want 1 call and a stop saying it cannot be reached", calls, v.Stats()[0].Stopped)
	}
}

func TestVetGivesBackTheQuotaItDidNotUse(t *testing.T) {
	for _, withCache := range []bool{false, true} {
		t.Run(fmt.Sprintf("cache=%v", withCache), func(t *testing.T) {
			opts := Options{Workers: 1, Policies: map[string]Policy{"keyed": {DailyQuota: 100}}}
			if withCache {
				opts.Cache = openTestCache(t, filepath.Join(t.TempDir(), "v.db"))
			}
			p := &scripted{name: "keyed", batch: 10}
			p.answer = func(_ context.Context, call int, targets []Target) (Answer, error) {
				if call == 1 {
					return Answer{}, errKeyRevoked
				}
				return cleanAnswer("keyed", targets), nil
			}
			v := NewVetter([]Provider{p}, opts)
			if _, err := v.Vet(t.Context(), addrs(60)); err != nil {
				t.Fatal(err)
			}
			used := v.members[0].used
			if withCache {
				var err error
				if used, err = opts.Cache.Used(t.Context(), "keyed", time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			if used != 20 {
				t.Errorf("quota used = %d, want 20: the two batches sent, not the 60 reserved", used)
			}
		})
	}
}

func TestSlower(t *testing.T) {
	tests := []struct{ limit, want rate.Limit }{
		{0.0025, 0.0025 * 0.99}, // 9 an hour: 1%
		{5, 4.95},               // 1% is 2ms at 5/s
		{50, 45},                // 2ms more than 20ms
		{1000, 500},             // at most half
	}
	for _, tc := range tests {
		if got := slower(tc.limit); math.Abs(float64(got-tc.want)) > 1e-9 {
			t.Errorf("slower(%v) = %v, want %v", tc.limit, got, tc.want)
		}
	}
}

func TestVetRetryWaitingForTheRateSpendsPatience(t *testing.T) {
	timeout := &NetworkError{Provider: "silent", Timeout: true, Err: errors.New("Client.Timeout exceeded while awaiting headers")}
	p := &scripted{name: "silent", batch: 1}
	p.answer = func(context.Context, int, []Target) (Answer, error) { return Answer{}, timeout }
	// One request per 100 seconds: a retry would wait far beyond the patience.
	pol := Policy{Rate: 0.01, Burst: 1, Retries: 3, RetryWait: time.Millisecond}
	v := NewVetter([]Provider{p}, Options{Workers: 4, Patience: time.Second, Policies: map[string]Policy{"silent": pol}})
	results, err := v.Vet(t.Context(), addrs(20))
	if err != nil {
		t.Fatal(err)
	}
	if calls := p.lookups(); calls != 1 {
		t.Errorf("calls = %d, want 1: the retry would wait for the rate beyond the patience", calls)
	}
	if got := statuses(results, 0); got[Unknown] != 20 || !contains(v.Stats()[0].Stopped, "has not answered") {
		t.Errorf("statuses = %v, Stopped = %q; want 20 unknown and the provider stopped", got, v.Stats()[0].Stopped)
	}
}
