package reputation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"golang.org/x/time/rate"
)

// ServiceConfig is what every reputation service's client needs.
type ServiceConfig struct {
	// BaseURL is the service's API root, e.g. "https://api.metadefender.com/v4".
	BaseURL string
	// Key is the API key. It is sent only in the service's key header, never in a URL, and
	// never appears in a log line or an error.
	Key string
	// KeyEnv names the environment variable the key came from, for error messages.
	KeyEnv string
	// Rate is the requests per second the client allows itself, shared by every goroutine
	// using the client; 0 means no limit. Burst is the limiter's burst (at least 1).
	Rate  float64
	Burst int
	// BatchSize is the most targets one request asks about, for services with a bulk
	// endpoint; 0 means the service's maximum.
	BatchSize int
	// Timeout bounds each HTTP attempt; 0 means 30 seconds.
	Timeout time.Duration
	// Retries is how many times a connection error, 5xx or 429 is retried; negative means
	// none. MaxRetryWait is the longest a retry waits, also for a Retry-After; a 429 that
	// asks for longer is not retried but reported as a *QuotaError. 0 means 30 seconds.
	Retries      int
	MaxRetryWait time.Duration
	// RetryWaitMin is the first backoff; 0 means one second.
	RetryWaitMin time.Duration
	// Log receives debug lines about requests and retries; nil discards them.
	Log *slog.Logger
	// Now is the clock for check times and quota resets; nil means time.Now.
	Now func() time.Time
	// Transport is the HTTP transport; nil means a pooled default.
	Transport http.RoundTripper
}

// maxBody bounds what is read of a reply.
const maxBody = 8 << 20

// service is the HTTP side shared by the clients of the reputation services: one rate
// limiter for every request and retry, the retry policy, the key header, and the reading of
// rate-limit headers and error bodies.
type service struct {
	name      string
	base      string
	key       string
	keyHeader string
	keyEnv    string
	limiter   *rate.Limiter
	client    *retryablehttp.Client
	log       *slog.Logger
	now       func() time.Time
	// message extracts the service's explanation from an error body.
	message func(body []byte) string
	// spent reports whether a 429's body says the quota is spent rather than that the
	// client is going too fast; such a 429 is not retried. Nil means never.
	spent func(body []byte) bool
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
	limit, burst := rate.Inf, max(cfg.Burst, 1)
	if cfg.Rate > 0 {
		limit = rate.Limit(cfg.Rate)
	}
	s.limiter = rate.NewLimiter(limit, burst)

	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	maxWait := cfg.MaxRetryWait
	if maxWait <= 0 {
		maxWait = 30 * time.Second
	}
	waitMin := cfg.RetryWaitMin
	if waitMin <= 0 {
		waitMin = time.Second
	}
	transport := cfg.Transport
	if transport == nil {
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	c := retryablehttp.NewClient()
	c.HTTPClient = &http.Client{Transport: transport, Timeout: timeout}
	c.Logger = nil
	c.RetryMax = max(cfg.Retries, 0)
	c.RetryWaitMin = min(waitMin, maxWait)
	c.RetryWaitMax = maxWait
	c.CheckRetry = s.retryPolicy(maxWait)
	c.Backoff = backoff(s.now)
	c.ErrorHandler = retryablehttp.PassthroughErrorHandler
	c.PrepareRetry = func(req *http.Request) error {
		s.log.Debug("retrying", "provider", name, "method", req.Method, "path", req.URL.Path)
		return s.limiter.Wait(req.Context())
	}
	s.client = c
	return s
}

// reply is a successful or unsuccessful HTTP answer, read in full.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends one request, waiting for the limiter first, and returns the reply if its status
// is 2xx or one of also. Any other status becomes an *AuthError, *QuotaError or *StatusError.
func (s *service) do(ctx context.Context, method, path string, query url.Values, body []byte, also ...int) (*reply, error) {
	u := s.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rawBody any
	if body != nil {
		rawBody = body
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, method, u, rawBody)
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %w", s.name, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sgvet")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.key != "" {
		req.Header.Set(s.keyHeader, s.key)
	}
	if err := s.limiter.Wait(ctx); err != nil {
		return nil, err
	}
	s.log.Debug("request", "provider", s.name, "method", method, "path", path)
	resp, err := s.client.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, fmt.Errorf("%s: %w", s.name, redact(err, s.key))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, fmt.Errorf("%s: read reply: %w", s.name, redact(err, s.key))
	}
	r := &reply{status: resp.StatusCode, header: resp.Header, body: data}
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
		return &AuthError{Provider: s.name, KeyEnv: s.keyEnv, Status: r.status, Message: msg}
	case http.StatusTooManyRequests:
		return &QuotaError{Provider: s.name, Reset: quotaOf(r.header, s.now()).Reset, Message: msg}
	}
	return &StatusError{Provider: s.name, Status: r.status, Message: msg}
}

// quota reads a reply's rate-limit headers.
func (s *service) quota(r *reply) Quota { return quotaOf(r.header, s.now()) }

// quotaOf reads the rate-limit headers the services send: X-RateLimit-Remaining, and the
// reset as X-RateLimit-Reset-In ("3600s", MetaDefender), X-RateLimit-Reset (Unix time,
// AbuseIPDB) or Retry-After (seconds or an HTTP date).
func quotaOf(h http.Header, now time.Time) Quota {
	var q Quota
	if v := h.Get("X-RateLimit-Remaining"); v != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			q.Known, q.Remaining = true, n
		}
	}
	if d, ok := seconds(h.Get("X-RateLimit-Reset-In")); ok {
		q.Reset = now.Add(d)
	} else if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			q.Reset = time.Unix(n, 0)
		}
	}
	if q.Reset.IsZero() {
		if d, ok := retryAfter(h, now); ok {
			q.Reset = now.Add(d)
		}
	}
	return q
}

// seconds parses "3600s", "3600" or "1.5s".
func seconds(v string) (time.Duration, bool) {
	v = strings.TrimSuffix(strings.TrimSpace(v), "s")
	if v == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}

// retryAfter reads Retry-After, in seconds or as an HTTP date.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if d, ok := seconds(v); ok {
		return d, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// wait is how long a 429 asks the client to wait: Retry-After, or, when the reply says no
// request is left, until the quota resets.
func wait(resp *http.Response, now time.Time) (time.Duration, bool) {
	if d, ok := retryAfter(resp.Header, now); ok {
		return d, true
	}
	if q := quotaOf(resp.Header, now); q.Known && q.Remaining <= 0 && !q.Reset.IsZero() {
		return max(q.Reset.Sub(now), 0), true
	}
	return 0, false
}

// retryPolicy retries connection errors, 5xx except 501, and a 429 that asks for no longer
// than maxWait and does not say the quota is spent. It never retries other statuses: 400,
// 401, 403, 404, 422 are answers, not accidents.
func (s *service) retryPolicy(maxWait time.Duration) retryablehttp.CheckRetry {
	return func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if err != nil {
			return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
		}
		switch {
		case resp.StatusCode == http.StatusTooManyRequests:
			if d, ok := wait(resp, s.now()); ok {
				return d <= maxWait, nil
			}
			return !s.quotaSpent(resp), nil
		case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
			return true, nil
		}
		return false, nil
	}
}

// quotaSpent reads a 429's body, leaving it readable, and asks the service whether it says
// the quota is spent.
func (s *service) quotaSpent(resp *http.Response) bool {
	if s.spent == nil || resp.Body == nil {
		return false
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return err == nil && s.spent(body)
}

// backoff waits as long as a 429 or 503 asks, else exponentially from min to max.
func backoff(now func() time.Time) retryablehttp.Backoff {
	return func(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
		if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
			if d, ok := wait(resp, now()); ok {
				return min(d, hi)
			}
		}
		d := lo << min(attempt, 20)
		if d <= 0 || d > hi {
			d = hi
		}
		return d
	}
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
