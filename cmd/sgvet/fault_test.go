package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/sgvet/sgvet/collector"
)

// faultProxy passes requests to moto, but answers those that match (at most times of
// them, or all when times is 0) with an error, as AWS answers what moto cannot be made to:
// throttling, and refusals by IAM (moto accepts every role and every caller).
type faultProxy struct {
	// match reports whether a request, whose body is body, is to be answered with the
	// error.
	match func(r *http.Request, body string) bool
	times int
	// status, contentType and body are the error's.
	status      int
	contentType string
	body        string

	mu      sync.Mutex
	refused int
}

// frontMoto serves, until the test ends, a proxy in front of moto at target, and returns
// its URL. Each request's body is read and given to answer, which may answer the request
// itself (and returns true) or leave it to moto.
func frontMoto(t *testing.T, target string, answer func(w http.ResponseWriter, r *http.Request, body []byte) bool) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	// A call that its caller gives up (a long poll, a canceled run) is no error worth a line.
	proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) { w.WriteHeader(http.StatusBadGateway) }
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if !answer(w, r, body) {
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(front.Close)
	return front.URL
}

// start serves the proxy, in front of moto at target, until the test ends, and returns its
// URL.
func (p *faultProxy) start(t *testing.T, target string) string {
	return frontMoto(t, target, func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		if !p.match(r, string(body)) {
			return false
		}
		p.mu.Lock()
		refuse := p.times == 0 || p.refused < p.times
		if refuse {
			p.refused++
		}
		p.mu.Unlock()
		if refuse {
			w.Header().Set("Content-Type", p.contentType)
			w.WriteHeader(p.status)
			io.WriteString(w, p.body)
		}
		return refuse
	})
}

// refusals returns how many requests the proxy answered with its error.
func (p *faultProxy) refusals() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

// queryAction returns a faultProxy match for calls of action in the query protocol (EC2,
// STS) whose form also holds each of params.
func queryAction(action string, params ...string) func(*http.Request, string) bool {
	return func(_ *http.Request, body string) bool {
		form, err := url.ParseQuery(body)
		if err != nil || form.Get("Action") != action {
			return false
		}
		for _, p := range params {
			k, v, _ := strings.Cut(p, "=")
			if form.Get(k) != v {
				return false
			}
		}
		return true
	}
}

// TestGroupsSlowsWhenThrottled: calls that AWS throttles are retried in the adaptive retry
// mode, and the region is collected rather than skipped.
func TestGroupsSlowsWhenThrottled(t *testing.T) {
	srv := useMoto(t)
	// EC2's answer to calls over an account's rate.
	p := &faultProxy{
		match: queryAction("DescribeSecurityGroupRules"), times: 2,
		status: http.StatusServiceUnavailable, contentType: "text/xml",
		body: `<?xml version="1.0" encoding="UTF-8"?>` +
			`<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors>` +
			`<RequestID>0b9c6e1f-throttled</RequestID></Response>`,
	}
	t.Setenv("AWS_ENDPOINT_URL", p.start(t, srv.URL))
	t.Setenv("AWS_MAX_ATTEMPTS", "5")
	res := sgvet(t, "", "groups", "--regions", "us-east-1", "--format", "json")
	if res.code != 0 {
		t.Fatalf("exit %d, want 0; stderr: %s", res.code, res.stderr)
	}
	var inv collector.Inventory
	if err := json.Unmarshal([]byte(res.stdout), &inv); err != nil {
		t.Fatal(err)
	}
	if len(inv.Skipped) != 0 || len(inv.Regions) != 1 {
		t.Errorf("regions %v, skipped %+v; want us-east-1 collected", inv.Regions, inv.Skipped)
	}
	if n := p.refusals(); n != p.times {
		t.Errorf("the proxy throttled %d calls, want %d", n, p.times)
	}
}

// TestLoadAWSConfigRetryMode: the adaptive retry mode is the default, and AWS_RETRY_MODE
// still chooses another.
func TestLoadAWSConfigRetryMode(t *testing.T) {
	tests := []struct {
		env  string
		want aws.RetryMode
	}{
		{"", aws.RetryModeAdaptive},
		{"standard", aws.RetryModeStandard},
		{"adaptive", aws.RetryModeAdaptive},
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			isolateAWS(t)
			if tc.env != "" {
				t.Setenv("AWS_RETRY_MODE", tc.env)
			}
			cfg, err := loadAWSConfig(t.Context(), defaultConfig(), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.RetryMode != tc.want {
				t.Errorf("loadAWSConfig with AWS_RETRY_MODE=%q: RetryMode = %q, want %q", tc.env, cfg.RetryMode, tc.want)
			}
		})
	}
}
