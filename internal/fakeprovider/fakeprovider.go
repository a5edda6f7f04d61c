// Package fakeprovider serves test doubles of the reputation services sgvet asks, on loopback,
// following each service's documented wire format, rate-limit headers and errors.
//
// Each constructor (MetaDefender, AbuseIPDB, VirusTotal, GreyNoise) starts an
// httptest server that is closed when the test ends, and returns a Server whose
// URL is the base URL a client for that service is configured with.
//
// Every request goes through the same steps, in this order:
//
//  1. it is recorded (Requests, Count);
//  2. it waits Options.Delay, or until the client gives up or the test ends;
//  3. scripted faults: the first Options.Fail requests get the service's 5xx, the
//     next Options.Throttle requests its throttle 429;
//  4. authentication (the service's 401);
//  5. routing (the service's 404 for an unknown path);
//  6. rate enforcement (Options.Rate, Options.Burst);
//  7. validation of the address (the service's 400 or 422);
//  8. the daily quota (Options.Quota);
//  9. the answer.
//
// Requests (with Count), Connections and MaxInFlight tell a test what a client sent and how:
// how many TCP connections it opened, and how many requests it had in flight at once.
//
// Only requests that reach step 9 are charged to the quota. Scripted faults and
// 401s do not take a token from the rate bucket.
package fakeprovider

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Listing statuses.
const (
	statusClean      = "clean"
	statusMalicious  = "malicious"
	statusSuspicious = "suspicious"
	statusRIOT       = "riot"
)

// Listing is what a double knows about one address.
type Listing struct {
	// Status is "malicious", "suspicious", "clean" (the default when empty) or "riot"
	// (GreyNoise: a known benign business service; the other services treat it as clean,
	// AbuseIPDB also answers isWhitelisted true).
	Status string
	// Categories are, for MetaDefender, one listing source per category, with the category
	// as that source's assessment; for AbuseIPDB, one report per category, with the category
	// as the report's comment; for VirusTotal, the tags.
	Categories []string
	// Country is the ISO 3166 alpha-2 country code; empty means "NL".
	Country string
	// Score is the AbuseIPDB abuseConfidenceScore and the VirusTotal malicious engine count
	// (the suspicious engine count for Status "suspicious"). Zero means a default for the
	// status (AbuseIPDB: malicious 90, suspicious 40; VirusTotal: malicious 5, suspicious 2).
	// MetaDefender ignores it: its detected_by is the number of listing sources.
	Score int
	// Name is the GreyNoise name: the RIOT service name or the actor ("unknown" when empty).
	Name string
	// Unobserved makes GreyNoise answer its 404 "not observed" body and VirusTotal its 404
	// NotFoundError.
	Unobserved bool
	// Tor is the AbuseIPDB isTor flag.
	Tor bool
	// Reputation, if set, is the VirusTotal community reputation; by default it is -2 per
	// malicious engine, -1 when suspicious, 0 when clean.
	Reputation *int
}

// Options configures a double.
type Options struct {
	// Key is the API key the service accepts; any other key, or a missing one, gets the
	// service's 401. Empty means any non-empty key is accepted; a missing key still gets
	// the 401, except for GreyNoise, whose community API allows unauthenticated calls.
	Key string
	// Listings are keyed by address. Keys and asked addresses are both compared in
	// canonical netip form. An address not in the map is clean and never reported:
	// MetaDefender detected_by 0, AbuseIPDB score 0 with no reports, VirusTotal no
	// detections, GreyNoise its 404 "not observed".
	Listings map[string]Listing
	// Rate, if > 0, makes the service enforce Rate requests per second with burst Burst
	// (default 1): a request beyond it gets the service's throttle 429 and is counted in
	// Throttled.
	Rate  float64
	Burst int
	// Quota, if > 0, is the daily quota. MetaDefender counts every address answered (a bulk
	// of 50 counts 50, and a bulk that would cross the quota is refused whole); the others
	// count answered requests (AbuseIPDB per endpoint, as it documents per-endpoint limits).
	// When spent, requests get the service's quota 429.
	Quota int
	// QuotaReset is the time from the first request until the quota resets (default 1h).
	// The window then restarts, as MetaDefender documents; it drives the reset headers.
	QuotaReset time.Duration
	// Fail makes the first Fail requests answer the service's 5xx.
	Fail int
	// Throttle makes the next Throttle requests (after Fail) answer the service's throttle
	// 429 with Retry-After: RetryAfter seconds (default 1).
	Throttle   int
	RetryAfter int
	// NoRetryAfter leaves the Retry-After header out of throttle replies of the services that
	// do not document one (MetaDefender, VirusTotal, GreyNoise). AbuseIPDB documents it and
	// always sends it.
	NoRetryAfter bool
	// Malformed makes successful (2xx) replies carry a truncated JSON body.
	Malformed bool
	// Delay makes every reply wait this long first. A request whose client gives up, or that
	// is still waiting when the test ends, is aborted without a reply.
	Delay time.Duration
	// Now is the clock for headers, bodies, the rate bucket and the quota window; default
	// time.Now.
	Now func() time.Time
}

// Request is one request a double received.
type Request struct {
	Method string
	// Path is the URL path.
	Path  string
	Query url.Values
	// Header is the request header as received.
	Header http.Header
	Body   []byte
	// Addresses are the addresses asked about, as sent: from the path, the query or the bulk
	// body (AbuseIPDB check-block: the network).
	Addresses []string
	// At is when the request arrived, on the double's clock (Options.Now).
	At time.Time
}

// Server is a running double.
type Server struct {
	// URL is the base URL a client is configured with: MetaDefender "<srv>/v4", AbuseIPDB
	// "<srv>/api/v2", VirusTotal "<srv>/api/v3", GreyNoise "<srv>" (the client appends
	// /v3/community/{ip}).
	URL string

	opts Options
	now  func() time.Time
	done chan struct{} // closed when the test ends

	mu          sync.Mutex
	listings    map[string]Listing
	requests    []Request
	conns       int // connections accepted
	inFlight    int // requests being handled
	maxInFlight int
	throttled   []time.Time // when rate enforcement sent a 429
	tokens      float64
	refilled    time.Time
	used        map[string]int // quota charged per counter
	resetAt     time.Time      // end of the current quota window; zero before the first charge
}

// service is one emulated API.
type service struct {
	base      string // path prefix of Server.URL
	addresses func(r *http.Request, body []byte) []string
	handle    func(s *Server, w http.ResponseWriter, r *http.Request, body []byte, seq int)
}

const maxBody = 1 << 20

func start(t testing.TB, o Options, svc service) *Server {
	t.Helper()
	if o.Burst <= 0 {
		o.Burst = 1
	}
	if o.QuotaReset <= 0 {
		o.QuotaReset = time.Hour
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = 1
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	s := &Server{
		opts:     o,
		now:      now,
		done:     make(chan struct{}),
		listings: make(map[string]Listing, len(o.Listings)),
		used:     make(map[string]int),
		tokens:   float64(o.Burst),
	}
	for k, l := range o.Listings {
		if err := checkListing(l); err != nil {
			t.Fatalf("fakeprovider: listing for %q: %v", k, err)
		}
		s.listings[canonical(k)] = l
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.begin()
		defer s.end()
		body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
		seq := s.record(r, body, svc.addresses(r, body))
		if !s.wait(r.Context()) {
			panic(http.ErrAbortHandler)
		}
		svc.handle(s, w, r, body, seq)
	}))
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
		}
	}
	srv.Start()
	t.Cleanup(func() {
		close(s.done)
		srv.Close()
	})
	s.URL = srv.URL + svc.base
	return s
}

func checkListing(l Listing) error {
	switch l.Status {
	case "", statusClean, statusMalicious, statusSuspicious, statusRIOT:
		return nil
	}
	return fmt.Errorf("unknown status %q (want malicious, suspicious, clean or riot)", l.Status)
}

// canonical returns s in canonical netip form, or s itself when it is not an address.
func canonical(s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.String()
	}
	return s
}

// Requests returns every request received, in order of arrival.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Count returns the number of requests received.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// Connections returns the number of TCP connections the double has accepted.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// MaxInFlight returns the most requests the double was handling at once.
func (s *Server) MaxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInFlight
}

func (s *Server) begin() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
}

func (s *Server) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight--
}

// Throttled returns the number of 429s sent by rate enforcement (Options.Rate); the
// scripted ones of Options.Throttle are not counted.
func (s *Server) Throttled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.throttled)
}

// ThrottledAt returns when, on the double's clock, rate enforcement (Options.Rate) sent
// each of its 429s, in order.
func (s *Server) ThrottledAt() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.throttled)
}

// SetListing changes what the double knows about addr while it runs. The zero Listing
// makes addr clean. It panics on an unknown Status.
func (s *Server) SetListing(addr string, l Listing) {
	if err := checkListing(l); err != nil {
		panic("fakeprovider: " + err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listings[canonical(addr)] = l
}

// listing returns what the double knows about a, and whether a is in the map.
func (s *Server) listing(a netip.Addr) (Listing, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.listings[a.String()]
	return l, ok
}

// listingsIn returns the listed addresses inside p, in address order.
func (s *Server) listingsIn(p netip.Prefix) []addrListing {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []addrListing
	for k, l := range s.listings {
		a, err := netip.ParseAddr(k)
		if err == nil && p.Contains(a) {
			out = append(out, addrListing{a, l})
		}
	}
	slices.SortFunc(out, func(x, y addrListing) int { return x.addr.Compare(y.addr) })
	return out
}

type addrListing struct {
	addr    netip.Addr
	listing Listing
}

func (s *Server) record(r *http.Request, body []byte, addrs []string) int {
	req := Request{
		Method:    r.Method,
		Path:      r.URL.Path,
		Query:     r.URL.Query(),
		Header:    r.Header.Clone(),
		Body:      body,
		Addresses: addrs,
		At:        s.now(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, req)
	return len(s.requests)
}

// wait sleeps Options.Delay; it reports false when the client or the test gave up first.
func (s *Server) wait(ctx context.Context) bool {
	if s.opts.Delay <= 0 {
		return true
	}
	timer := time.NewTimer(s.opts.Delay)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

type fault int

const (
	noFault fault = iota
	failFault
	throttleFault
)

// fault returns the scripted fault for the seq-th request (1-based).
func (s *Server) fault(seq int) fault {
	switch {
	case seq <= s.opts.Fail:
		return failFault
	case seq <= s.opts.Fail+s.opts.Throttle:
		return throttleFault
	}
	return noFault
}

// allow takes a token from the rate bucket. When there is none it counts a throttled
// request and returns false with the whole seconds until the next token.
func (s *Server) allow() (ok bool, retryAfter int) {
	if s.opts.Rate <= 0 {
		return true, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if !s.refilled.IsZero() {
		if d := now.Sub(s.refilled); d > 0 {
			s.tokens = math.Min(float64(s.opts.Burst), s.tokens+d.Seconds()*s.opts.Rate)
		}
	}
	s.refilled = now
	if s.tokens >= 1 {
		s.tokens--
		return true, 0
	}
	s.throttled = append(s.throttled, now)
	return false, max(1, int(math.Ceil((1-s.tokens)/s.opts.Rate)))
}

// quotaState is a quota counter as the rate-limit headers report it.
type quotaState struct {
	Limit     int
	Used      int
	Remaining int
	ResetAt   time.Time
	ResetIn   int // whole seconds until ResetAt
}

// charge charges cost to counter when the quota allows it. With Options.Quota 0 nothing is
// refused and the state reports defaultLimit. The returned state is after the charge.
func (s *Server) charge(counter string, cost, defaultLimit int) (bool, quotaState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.roll()
	ok := s.opts.Quota <= 0 || s.used[counter]+cost <= s.opts.Quota
	if ok {
		s.used[counter] += cost
	}
	return ok, s.stateLocked(now, counter, defaultLimit)
}

// state returns counter's quota state without charging it.
func (s *Server) state(counter string, defaultLimit int) quotaState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stateLocked(s.roll(), counter, defaultLimit)
}

// roll starts a new quota window when the current one is over, and returns the time. The
// caller holds s.mu.
func (s *Server) roll() time.Time {
	now := s.now()
	if s.resetAt.IsZero() || !now.Before(s.resetAt) {
		if !s.resetAt.IsZero() {
			clear(s.used)
		}
		s.resetAt = now.Add(s.opts.QuotaReset)
	}
	return now
}

func (s *Server) stateLocked(now time.Time, counter string, defaultLimit int) quotaState {
	limit := defaultLimit
	if s.opts.Quota > 0 {
		limit = s.opts.Quota
	}
	used := s.used[counter]
	return quotaState{
		Limit:     limit,
		Used:      used,
		Remaining: max(0, limit-used),
		ResetAt:   s.resetAt,
		ResetIn:   max(0, int(math.Ceil(s.resetAt.Sub(now).Seconds()))),
	}
}

// keyState is the outcome of an API key check.
type keyState int

const (
	keyOK keyState = iota
	keyMissing
	keyWrong
)

func (s *Server) checkKey(got string) keyState {
	switch {
	case got == "":
		return keyMissing
	case s.opts.Key != "" && got != s.opts.Key:
		return keyWrong
	}
	return keyOK
}

// setHeader sets a header under exactly the given name, keeping the documented spelling
// (Header.Set would rewrite "X-RateLimit-Limit" as "X-Ratelimit-Limit").
func setHeader(h http.Header, name, value string) {
	h[name] = []string{value}
}

// writeJSON writes v as a JSON reply with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("fakeprovider: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// writeOK writes v as a 200 reply, truncated when Options.Malformed is set.
func (s *Server) writeOK(w http.ResponseWriter, v any) {
	if !s.opts.Malformed {
		writeJSON(w, http.StatusOK, v)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic("fakeprovider: " + err.Error())
	}
	b = b[:len(b)/2]
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// retryAfter sets Retry-After unless suppressed.
func (s *Server) retryAfter(w http.ResponseWriter, seconds int, optional bool) {
	if optional && s.opts.NoRetryAfter {
		return
	}
	w.Header().Set("Retry-After", strconv.Itoa(seconds))
}

// routable reports whether a is an address a reputation service would look up: a global
// unicast address outside the private, shared (CGNAT), benchmarking and reserved ranges.
// Documentation ranges (RFC 5737, RFC 3849) are accepted, so tests may use them.
func routable(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	for _, p := range [...]string{"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "240.0.0.0/4"} {
		if netip.MustParsePrefix(p).Contains(a) {
			return false
		}
	}
	return true
}

// parseAddr parses an address as the services do: no zones, no surrounding spaces.
func parseAddr(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a, true
}

// status returns l's status, with the default filled in.
func (l Listing) status() string {
	if l.Status == "" {
		return statusClean
	}
	return l.Status
}

// country returns l's country code, with the default filled in.
func (l Listing) country() string {
	if l.Country == "" {
		return "NL"
	}
	return l.Country
}

// offsetTime formats t as the services that write "+00:00" do.
func offsetTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05-07:00")
}
