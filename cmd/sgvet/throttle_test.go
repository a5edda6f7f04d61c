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

// throttlingProxy passes requests to moto, but answers the first times calls of action
// with EC2's RequestLimitExceeded, as AWS does when an account's calls exceed its rate.
// moto never throttles, so this proxy stands in for AWS's throttling.
type throttlingProxy struct {
	action  string
	mu      sync.Mutex
	times   int
	refused int
}

func (p *throttlingProxy) handler(t *testing.T, target string) http.Handler {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if strings.Contains(string(body), "Action="+p.action+"&") {
			p.mu.Lock()
			refuse := p.refused < p.times
			if refuse {
				p.refused++
			}
			p.mu.Unlock()
			if refuse {
				w.Header().Set("Content-Type", "text/xml")
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>`+
					`<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors>`+
					`<RequestID>0b9c6e1f-throttled</RequestID></Response>`)
				return
			}
		}
		proxy.ServeHTTP(w, r)
	})
}

// TestGroupsSlowsWhenThrottled: calls that AWS throttles are retried in the adaptive retry
// mode, and the region is collected rather than skipped.
func TestGroupsSlowsWhenThrottled(t *testing.T) {
	srv := useMoto(t)
	p := &throttlingProxy{action: "DescribeSecurityGroupRules", times: 2}
	front := httptest.NewServer(p.handler(t, srv.URL))
	defer front.Close()
	t.Setenv("AWS_ENDPOINT_URL", front.URL)
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
	if p.refused != p.times {
		t.Errorf("the proxy throttled %d calls, want %d", p.refused, p.times)
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
