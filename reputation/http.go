package reputation

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ServiceConfig is what every reputation service's client needs. Pacing, retries and
// quotas are the Vetter's (see Policy).
type ServiceConfig struct {
	// BaseURL is the service's API root, e.g. "https://api.metadefender.com/v4".
	BaseURL string
	// Key is the API key. It is sent only in the service's key header, only to the host of
	// BaseURL, never in a URL, and never appears in a log line, an error or a verdict.
	Key string
	// KeyEnv names the environment variable the key came from, for error messages.
	KeyEnv string
	// BatchSize is the most targets one request asks about, for services with a bulk
	// endpoint; 0 means the service's maximum.
	BatchSize int
	// Timeout bounds each request, from dialling to the last byte of the reply; 0 means 30
	// seconds.
	Timeout time.Duration
	// Conns is the number of connections kept open to the service for reuse: the number of
	// requests the Vetter has in flight to it (Options.Workers). 0 means 4.
	Conns int
	// Log receives debug lines about requests; nil discards them.
	Log *slog.Logger
	// Now is the clock for check times and quota resets; nil means time.Now.
	Now func() time.Time
	// Transport is the HTTP transport; nil means a pooled one sized by Conns.
	Transport http.RoundTripper
}

// maxBody bounds what is read of a reply.
const maxBody = 8 << 20

// maxWait caps any wait a service asks for, so that an absurd Retry-After or reset cannot
// overflow a duration; any such wait is far beyond a run's patience anyway.
const maxWait = 366 * 24 * time.Hour

// service is the HTTP side shared by the clients of the reputation services: the key
// header, one request per Lookup, redirects refused across hosts, bounded replies, and
// the reading of rate-limit headers and error bodies into the errors the Vetter branches
// on.
type service struct {
	name      string
	base      string
	key       string
	keyHeader string
	keyEnv    string
	client    *http.Client
	log       *slog.Logger
	now       func() time.Time
	// message extracts the service's explanation from an error body.
	message func(body []byte) string
	// spent reports whether a 429's body says the quota is spent rather than that the
	// client is going too fast, as the service words it; a 429 that leaves no request in
	// X-RateLimit-Remaining is spent whatever its body says. Nil means the body never says.
	spent func(r *reply) bool
	// throttleWait is how long a throttling 429 asks to wait when the service says so in
	// its own way; nil means Retry-After only.
	throttleWait func(r *reply) time.Duration
	// addressBlocked reports whether a 403 refuses the caller's address, not the key.
	addressBlocked func(body []byte) bool
}

func newService(name, keyHeader string, cfg ServiceConfig, message func([]byte) string) *service {
	s := &service{
		name:      name,
		base:      strings.TrimRight(cfg.BaseURL, "/"),
		key:       cfg.Key,
		keyHeader: keyHeader,
		keyEnv:    cfg.KeyEnv,
		log:       cfg.Log,
		now:       cfg.Now,
		message:   message,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	transport := cfg.Transport
	if transport == nil {
		conns := cfg.Conns
		if conns <= 0 {
			conns = 4
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		// One connection per request in flight, each kept for the next request: without
		// this, requests beyond the default two idle connections per host each pay a new
		// TCP and TLS handshake.
		t.MaxIdleConnsPerHost = conns
		t.MaxConnsPerHost = conns
		transport = t
	}
	s.client = &http.Client{Transport: transport, Timeout: timeout, CheckRedirect: s.checkRedirect}
	return s
}

// origin returns scheme://host:port, with the scheme's default port made explicit.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return strings.ToLower(u.Scheme) + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// checkRedirect follows a redirect only within the service's own scheme, host and port.
// Go's client would forward the key header to any host, with a Referer naming the
// address asked about and, on a 307, the bulk body.
func (s *service) checkRedirect(req *http.Request, via []*http.Request) error {
	if origin(req.URL) != origin(via[0].URL) {
		status := 0
		if req.Response != nil {
			status = req.Response.StatusCode
		}
		return &RedirectError{Provider: s.name, From: via[0].URL.Host, To: req.URL.Host, Status: status}
	}
	if len(via) >= 5 {
		return fmt.Errorf("stopped after %d redirects", len(via))
	}
	return nil
}

// reply is a successful or unsuccessful HTTP answer, read in full.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request and returns the reply if its status is 2xx or one of also. Any
// other status becomes an *AuthError, *QuotaError, *ThrottleError or *StatusError; no
// reply at all a *NetworkError or *RedirectError. The body read is bounded by maxBody and,
// with the rest of the request, by the timeout; the key is removed from it.
func (s *service) do(ctx context.Context, method, path string, query url.Values, body []byte, also ...int) (*reply, error) {
	u := s.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %w", s.name, redact(err, s.key))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sgvet")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.key != "" {
		req.Header.Set(s.keyHeader, s.key)
	}
	if wrote, ok := ctx.Value(wroteKey{}).(func(time.Time)); ok {
		req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { wrote(time.Now()) },
		}))
	}
	s.log.Debug("request", "provider", s.name, "method", method, "path", path)
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, s.transportError(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, s.transportError(fmt.Errorf("read reply: %w", err))
	}
	if len(data) > maxBody {
		return nil, fmt.Errorf("%s: reply larger than %d MiB (HTTP %d); not read", s.name, maxBody>>20, resp.StatusCode)
	}
	r := &reply{status: resp.StatusCode, header: resp.Header, body: s.redactBody(data)}
	if resp.StatusCode/100 == 2 {
		return r, nil
	}
	for _, code := range also {
		if resp.StatusCode == code {
			return r, nil
		}
	}
	return r, s.statusError(r)
}

// wroteKey is the context key of the function a request calls once it has been written to
// its connection: the Vetter paces a provider's requests by when they actually left.
type wroteKey struct{}

// withWrote returns ctx carrying f, to be called when a request is written.
func withWrote(ctx context.Context, f func(time.Time)) context.Context {
	return context.WithValue(ctx, wroteKey{}, f)
}

// transportError classifies an error of the HTTP client: a refused redirect, or a
// *NetworkError without the request's URL.
func (s *service) transportError(err error) error {
	var redirect *RedirectError
	if errors.As(err, &redirect) {
		return redirect
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err // its text repeats the URL, which says nothing the provider's name does not
	}
	e := &NetworkError{Provider: s.name, Err: redact(err, s.key)}
	var (
		dns     *net.DNSError
		netErr  net.Error
		certErr *tls.CertificateVerificationError
		header  tls.RecordHeaderError
		alert   tls.AlertError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &dns),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.As(err, &certErr), errors.As(err, &header), errors.As(err, &alert),
		errors.As(err, &unknown), errors.As(err, &host), errors.As(err, &invalid):
		e.Unreachable = true
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		e.Timeout = true
	}
	return e
}

// statusError turns an unsuccessful reply into the error the Vetter branches on.
func (s *service) statusError(r *reply) error {
	msg := ""
	if s.message != nil {
		msg = s.message(r.body)
	}
	msg = oneLine(msg, s.key)
	if strings.HasPrefix(msg, "<") {
		msg = "" // an HTML error page says nothing useful on one line
	}
	switch r.status {
	case http.StatusUnauthorized, http.StatusForbidden:
		blocked := s.addressBlocked != nil && s.addressBlocked(r.body)
		return &AuthError{Provider: s.name, KeyEnv: s.keyEnv, Status: r.status, Message: msg, AddressBlocked: blocked}
	case http.StatusTooManyRequests:
		now := s.now()
		if s.quotaSpent(r) {
			return &QuotaError{Provider: s.name, Reset: resetOf(r.header, now), Message: msg}
		}
		wait, _ := retryAfter(r.header, now)
		if wait == 0 && s.throttleWait != nil {
			wait = s.throttleWait(r)
		}
		return &ThrottleError{Provider: s.name, Wait: wait, Message: msg}
	}
	return &StatusError{Provider: s.name, Status: r.status, Message: msg}
}

// quotaSpent reports whether a 429 says the quota is spent.
func (s *service) quotaSpent(r *reply) bool {
	if n, ok := remaining(r.header); ok && n <= 0 {
		return true
	}
	return s.spent != nil && s.spent(r)
}

// remaining reads X-RateLimit-Remaining.
func remaining(h http.Header) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(h.Get("X-RateLimit-Remaining")))
	return n, err == nil
}

// quota reads a reply's rate-limit headers.
func (s *service) quota(r *reply) Quota { return quotaOf(r.header, s.now()) }

// quotaOf reads the rate-limit headers the services send: X-RateLimit-Remaining, and when
// the quota resets (see resetOf).
func quotaOf(h http.Header, now time.Time) Quota {
	var q Quota
	q.Remaining, q.Known = remaining(h)
	q.Reset = resetOf(h, now)
	return q
}

// resetOf returns when a quota resets, by the first of these that names a time after now:
// Retry-After (seconds or an HTTP date), X-RateLimit-Reset-In ("3600s", MetaDefender) and
// X-RateLimit-Reset (Unix time, AbuseIPDB). A time already past is never waited for: with
// none in the future, resetOf returns zero.
func resetOf(h http.Header, now time.Time) time.Time {
	if d, ok := retryAfter(h, now); ok && d > 0 {
		return now.Add(d)
	}
	if d, ok := seconds(h.Get("X-RateLimit-Reset-In")); ok && d > 0 {
		return now.Add(d)
	}
	if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			if t := time.Unix(min(n, now.Add(maxWait).Unix()), 0); t.After(now) {
				return t
			}
		}
	}
	return time.Time{}
}

// seconds parses "3600s", "3600" or "1.5s", capped at maxWait.
func seconds(v string) (time.Duration, bool) {
	v = strings.TrimSuffix(strings.TrimSpace(v), "s")
	if v == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || math.IsNaN(f) {
		return 0, false
	}
	if f >= maxWait.Seconds() {
		return maxWait, true
	}
	return time.Duration(f * float64(time.Second)), true
}

// retryAfter reads Retry-After, in seconds or as an HTTP date, capped at maxWait; a date
// already past is a wait of zero.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if d, ok := seconds(v); ok {
		return d, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxWait), true
	}
	return 0, false
}

// minRedacted is the shortest key redact and oneLine look for. The services' keys are tens
// of characters long; a key of a few letters would match ordinary words and mangle every
// message, while it could only appear in one by chance.
const minRedacted = 8

// redact removes the key from an error's text, should a transport ever include it.
func redact(err error, key string) error {
	if len(key) < minRedacted || !strings.Contains(err.Error(), key) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), key, "[redacted]"))
}

// redactBody removes the key from a reply, should the service echo it: nothing read from a
// reply may carry it into a verdict, the cache or the history.
func (s *service) redactBody(body []byte) []byte {
	if len(s.key) < minRedacted || !bytes.Contains(body, []byte(s.key)) {
		return body
	}
	return bytes.ReplaceAll(body, []byte(s.key), []byte("[redacted]"))
}

// answer is a Lookup's answer of verdicts read from r: without the key, with the quota r
// reports.
func (s *service) answer(r *reply, vs ...Verdict) (Answer, error) {
	return Answer{Verdicts: s.scrub(vs), Quota: s.quota(r)}, nil
}

// scrub removes the key from every text of a verdict, also where the reply escaped it in a
// way redactBody could not see.
func (s *service) scrub(vs []Verdict) []Verdict {
	if len(s.key) < minRedacted {
		return vs
	}
	clean := func(t string) string { return strings.ReplaceAll(t, s.key, "[redacted]") }
	for i := range vs {
		v := &vs[i]
		v.Evidence, v.Reason, v.Country = clean(v.Evidence), clean(v.Reason), clean(v.Country)
		for j, c := range v.Categories {
			v.Categories[j] = clean(c)
		}
	}
	return vs
}

// oneLine makes a service's message fit one log line, without the key and control characters.
func oneLine(msg, key string) string {
	if len(key) >= minRedacted {
		msg = strings.ReplaceAll(msg, key, "[redacted]")
	}
	msg = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, msg)
	msg = strings.TrimSpace(msg)
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return msg
}
