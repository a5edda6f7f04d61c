package fakeprovider

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	mdKey = "md-test-key"
	abKey = "ab-test-key"
	vtKey = "vt-test-key"
	gnKey = "gn-test-key"
)

// epoch is the start of every test clock.
func epoch() time.Time { return time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC) }

// clock is a settable clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: epoch()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// reply is a response with its body read.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

func send(t *testing.T, method, u string, header map[string]string, body string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

func get(t *testing.T, u string, header map[string]string) reply {
	t.Helper()
	return send(t, http.MethodGet, u, header, "")
}

// rawHeaderNames sends a GET over a plain connection and returns the response's header
// names exactly as written on the wire.
func rawHeaderNames(t *testing.T, u string, header map[string]string) []string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", pu.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", pu.RequestURI(), pu.Host)
	for k, v := range header {
		fmt.Fprintf(&req, "%s: %s\r\n", k, v)
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(conn, req.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	var names []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return names
		}
		name, _, _ := strings.Cut(line, ":")
		names = append(names, name)
	}
}

func wantStatus(t *testing.T, r reply, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; body %s", r.Status, status, r.Body)
	}
}

func wantBody(t *testing.T, r reply, body string) {
	t.Helper()
	if got := strings.TrimSpace(string(r.Body)); got != body {
		t.Fatalf("body\n%s\nwant\n%s", got, body)
	}
}

func wantJSONType(t *testing.T, r reply) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// ---------------------------------------------------------------------------------------
// MetaDefender

func mdHeader() map[string]string { return map[string]string{"apikey": mdKey} }

func TestMetaDefenderAuth(t *testing.T) {
	s := MetaDefender(t, Options{Key: mdKey})
	for _, tc := range []struct {
		name   string
		header map[string]string
		status int
	}{
		{"missing", nil, http.StatusUnauthorized},
		{"wrong", map[string]string{"apikey": "nope"}, http.StatusUnauthorized},
		{"authorization header is not the key header", map[string]string{"Authorization": mdKey}, http.StatusUnauthorized},
		{"right", mdHeader(), http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, s.URL+"/ip/8.8.8.8", tc.header)
			wantStatus(t, r, tc.status)
			wantJSONType(t, r)
			if tc.status == http.StatusUnauthorized {
				wantBody(t, r, `{"error":{"code":401006,"messages":["Invalid API key"]}}`)
			}
		})
	}
	reqs := s.Requests()
	if len(reqs) != 4 || s.Count() != 4 {
		t.Fatalf("recorded %d requests, count %d; want 4", len(reqs), s.Count())
	}
	last := reqs[3]
	if last.Method != http.MethodGet || last.Path != "/v4/ip/8.8.8.8" || last.Header.Get("apikey") != mdKey ||
		!reflect.DeepEqual(last.Addresses, []string{"8.8.8.8"}) {
		t.Fatalf("recorded %+v", last)
	}
}

func TestMetaDefenderAnyKey(t *testing.T) {
	s := MetaDefender(t, Options{})
	wantStatus(t, get(t, s.URL+"/ip/8.8.8.8", map[string]string{"apikey": "whatever"}), http.StatusOK)
	wantStatus(t, get(t, s.URL+"/ip/8.8.8.8", nil), http.StatusUnauthorized)
}

type mdReply struct {
	Address       string `json:"address"`
	LookupResults struct {
		StartTime  string `json:"start_time"`
		DetectedBy int    `json:"detected_by"`
		Sources    []struct {
			Provider   string `json:"provider"`
			Assessment string `json:"assessment"`
			DetectTime string `json:"detect_time"`
			UpdateTime string `json:"update_time"`
			Status     int    `json:"status"`
		} `json:"sources"`
	} `json:"lookup_results"`
	GeoInfo struct {
		Country struct {
			Code string `json:"code"`
			Name string `json:"name"`
		} `json:"country"`
	} `json:"geo_info"`
}

func TestMetaDefenderSingle(t *testing.T) {
	clk := newClock()
	s := MetaDefender(t, Options{Key: mdKey, Now: clk.Now, Listings: map[string]Listing{
		"85.25.199.246":  {Status: "malicious", Categories: []string{"scanner", "botnet, c2"}, Country: "DE"},
		"94.73.144.9":    {Status: "suspicious"},
		"185.50.196.126": {Status: "riot"},
		"2001:db8::7":    {Status: "malicious", Categories: []string{"spam"}},
	}})
	for _, tc := range []struct {
		addr        string
		detected    []string // assessments of the status-1 sources
		country     string
		countryName string
	}{
		{"85.25.199.246", []string{"scanner", "botnet, c2"}, "DE", "Germany"},
		{"94.73.144.9", []string{"suspicious"}, "NL", "Netherlands"},
		{"185.50.196.126", nil, "NL", "Netherlands"},
		{"8.8.8.8", nil, "NL", "Netherlands"},
		{"2001:db8::7", []string{"spam"}, "NL", "Netherlands"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			r := get(t, s.URL+"/ip/"+tc.addr, mdHeader())
			wantStatus(t, r, http.StatusOK)
			wantJSONType(t, r)
			m := r.json(t)
			if got := keys(m); !reflect.DeepEqual(got, []string{"address", "geo_info", "lookup_results"}) {
				t.Errorf("keys %v", got)
			}
			geo := m["geo_info"].(map[string]any)
			if got := keys(geo); !reflect.DeepEqual(got, []string{"city", "continent", "country", "location", "registered_country", "subdivisions"}) {
				t.Errorf("geo_info keys %v", got)
			}
			var d mdReply
			if err := json.Unmarshal(r.Body, &d); err != nil {
				t.Fatal(err)
			}
			if d.Address != tc.addr || d.LookupResults.StartTime != "2024-05-01T10:00:00.000Z" {
				t.Errorf("address %q start_time %q", d.Address, d.LookupResults.StartTime)
			}
			if d.GeoInfo.Country.Code != tc.country || d.GeoInfo.Country.Name != tc.countryName {
				t.Errorf("country %+v", d.GeoInfo.Country)
			}
			var listed []string
			statuses := map[int]bool{}
			for _, src := range d.LookupResults.Sources {
				statuses[src.Status] = true
				if src.Provider == "" || src.UpdateTime == "" {
					t.Errorf("source %+v lacks provider or update_time", src)
				}
				if src.Status == 1 {
					listed = append(listed, src.Assessment)
					if src.DetectTime == "" {
						t.Errorf("listed source %+v has no detect_time", src)
					}
				} else if src.Assessment != "" || src.DetectTime != "" {
					t.Errorf("unlisted source %+v has an assessment or detect_time", src)
				}
			}
			if !slices.Equal(listed, tc.detected) || d.LookupResults.DetectedBy != len(tc.detected) {
				t.Errorf("listed %q detected_by %d, want %q", listed, d.LookupResults.DetectedBy, tc.detected)
			}
			if !statuses[0] || !statuses[5] {
				t.Errorf("unlisted sources should use both status 0 and 5, got %v", statuses)
			}
		})
	}
}

func TestMetaDefenderBulk(t *testing.T) {
	s := MetaDefender(t, Options{Key: mdKey, Listings: map[string]Listing{
		"85.25.199.246": {Status: "malicious", Categories: []string{"scanner"}},
	}})
	asked := []string{"8.8.8.8", "85.25.199.246", "94.73.144.9", "2001:4860:4860::8888"}
	body, _ := json.Marshal(map[string]any{"address": asked})
	for _, path := range []string{"/ip/", "/ip"} {
		t.Run(path, func(t *testing.T) {
			r := send(t, http.MethodPost, s.URL+path, map[string]string{"apikey": mdKey, "Content-Type": "application/json"}, string(body))
			wantStatus(t, r, http.StatusOK)
			var d struct {
				Data []mdReply `json:"data"`
			}
			if err := json.Unmarshal(r.Body, &d); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, x := range d.Data {
				got = append(got, x.Address)
				if want := 0; x.Address == "85.25.199.246" {
					if x.LookupResults.DetectedBy != 1 {
						t.Errorf("85.25.199.246 detected_by %d", x.LookupResults.DetectedBy)
					}
				} else if x.LookupResults.DetectedBy != want {
					t.Errorf("%s detected_by %d", x.Address, x.LookupResults.DetectedBy)
				}
			}
			want := slices.Clone(asked)
			slices.Reverse(want)
			if !slices.Equal(got, want) {
				t.Errorf("order %v, want %v (reversed)", got, want)
			}
		})
	}
	if got := s.Requests()[0].Addresses; !slices.Equal(got, asked) {
		t.Errorf("recorded addresses %v", got)
	}

	var fifty, fiftyOne []string
	for i := range 51 {
		a := fmt.Sprintf("85.25.199.%d", i+1)
		fiftyOne = append(fiftyOne, a)
		if i < 50 {
			fifty = append(fifty, a)
		}
	}
	bulk := func(addrs []string) string {
		b, _ := json.Marshal(map[string]any{"address": addrs})
		return string(b)
	}
	for _, tc := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"fifty", bulk(fifty), http.StatusOK, ""},
		{"fifty-one", bulk(fiftyOne), http.StatusBadRequest, `{"error":{"code":400184,"messages":["Exceeded maximum allowed"]}}`},
		{"no body", "", http.StatusBadRequest, `{"error":{"code":400025,"messages":["Payload is missing or empty"]}}`},
		{"empty list", `{"address":[]}`, http.StatusBadRequest, `{"error":{"code":400025,"messages":["Payload is missing or empty"]}}`},
		{"not JSON", `{"address":`, http.StatusBadRequest, `{"error":{"code":400021,"messages":["Body parsing failed"]}}`},
		{"malformed address", bulk([]string{"8.8.8.8", "8.8.8"}), http.StatusBadRequest, `{"error":{"code":400180,"messages":["Invalid format of input. Provide IPv4 or IPv6."]}}`},
		{"private address", bulk([]string{"8.8.8.8", "10.1.2.3"}), http.StatusBadRequest, `{"error":{"code":400185,"messages":["The address is not a routable IP"]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := send(t, http.MethodPost, s.URL+"/ip/", mdHeader(), tc.body)
			wantStatus(t, r, tc.status)
			wantJSONType(t, r)
			if tc.want != "" {
				wantBody(t, r, tc.want)
			}
			if r.Header.Get("X-RateLimit-For") != "reputation_api" {
				t.Errorf("no rate-limit headers on a %d", r.Status)
			}
		})
	}
}

func TestMetaDefenderInvalidSingle(t *testing.T) {
	s := MetaDefender(t, Options{Key: mdKey})
	for _, tc := range []struct{ addr, want string }{
		{"not-an-ip", `{"error":{"code":400180,"messages":["Invalid format of input. Provide IPv4 or IPv6."]}}`},
		{"127.0.0.1", `{"error":{"code":400185,"messages":["The address is not a routable IP"]}}`},
		{"192.168.1.10", `{"error":{"code":400185,"messages":["The address is not a routable IP"]}}`},
		{"fe80::1", `{"error":{"code":400185,"messages":["The address is not a routable IP"]}}`},
		{"100.64.0.1", `{"error":{"code":400185,"messages":["The address is not a routable IP"]}}`},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			r := get(t, s.URL+"/ip/"+tc.addr, mdHeader())
			wantStatus(t, r, http.StatusBadRequest)
			wantBody(t, r, tc.want)
		})
	}
}

func TestMetaDefenderQuota(t *testing.T) {
	clk := newClock()
	s := MetaDefender(t, Options{Key: mdKey, Quota: 5, QuotaReset: time.Hour, Now: clk.Now})
	check := func(r reply, status, remaining, used int, resetIn string) {
		t.Helper()
		wantStatus(t, r, status)
		for name, want := range map[string]string{
			"X-RateLimit-For":       "reputation_api",
			"X-RateLimit-Interval":  "86400",
			"X-RateLimit-Limit":     "5",
			"X-RateLimit-Remaining": strconv.Itoa(remaining),
			"X-RateLimit-Used":      strconv.Itoa(used),
			"X-RateLimit-Reset-In":  resetIn,
		} {
			if got := r.Header.Get(name); got != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
	}
	bulk3 := `{"address":["8.8.8.8","85.25.199.246","94.73.144.9"]}`
	check(send(t, http.MethodPost, s.URL+"/ip/", mdHeader(), bulk3), 200, 2, 3, "3600s")
	clk.Advance(10 * time.Minute)
	r := send(t, http.MethodPost, s.URL+"/ip/", mdHeader(), bulk3)
	check(r, 429, 2, 3, "3000s")
	wantBody(t, r, `{"error":{"code":429000,"messages":["API key limit exceeded; retry after the limit is reset"]}}`)
	check(get(t, s.URL+"/ip/8.8.8.8", mdHeader()), 200, 1, 4, "3000s")
	check(get(t, s.URL+"/ip/8.8.8.8", mdHeader()), 200, 0, 5, "3000s")
	r = get(t, s.URL+"/ip/8.8.8.8", mdHeader())
	check(r, 429, 0, 5, "3000s")
	wantBody(t, r, `{"error":{"code":429000,"messages":["API key limit exceeded; retry after the limit is reset"]}}`)
	if s.Throttled() != 0 {
		t.Errorf("quota 429s counted as throttled: %d", s.Throttled())
	}
	clk.Advance(50 * time.Minute)
	check(get(t, s.URL+"/ip/8.8.8.8", mdHeader()), 200, 4, 1, "3600s")

	names := rawHeaderNames(t, s.URL+"/ip/8.8.8.8", mdHeader())
	for _, want := range []string{"X-RateLimit-For", "X-RateLimit-Interval", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset-In", "X-RateLimit-Used"} {
		if !slices.Contains(names, want) {
			t.Errorf("header %s not written with its documented name; got %v", want, names)
		}
	}
}

func TestMetaDefenderNoQuota(t *testing.T) {
	s := MetaDefender(t, Options{Key: mdKey})
	get(t, s.URL+"/ip/8.8.8.8", mdHeader())
	r := send(t, http.MethodPost, s.URL+"/ip/", mdHeader(), `{"address":["8.8.8.8","8.8.4.4"]}`)
	if r.Header.Get("X-RateLimit-Limit") != "4000" || r.Header.Get("X-RateLimit-Remaining") != "3997" || r.Header.Get("X-RateLimit-Used") != "3" {
		t.Errorf("headers %v", r.Header)
	}
}

func TestMetaDefenderRate(t *testing.T) {
	clk := newClock()
	s := MetaDefender(t, Options{Key: mdKey, Rate: 0.5, Burst: 2, Now: clk.Now})
	for range 2 {
		wantStatus(t, get(t, s.URL+"/ip/8.8.8.8", mdHeader()), http.StatusOK)
	}
	r := get(t, s.URL+"/ip/8.8.8.8", mdHeader())
	wantStatus(t, r, http.StatusTooManyRequests)
	wantBody(t, r, `{"error":{"name":"ClientError","messages":"Your request has been throttled, maximum requests per hour: 9 for free users","code":429001,"status":429}}`)
	if r.Header.Get("Retry-After") != "2" || r.Header.Get("X-RateLimit-For") != "reputation_api" {
		t.Errorf("headers %v", r.Header)
	}
	if s.Throttled() != 1 {
		t.Errorf("Throttled() = %d, want 1", s.Throttled())
	}
	clk.Advance(2 * time.Second)
	wantStatus(t, get(t, s.URL+"/ip/8.8.8.8", mdHeader()), http.StatusOK)
	wantStatus(t, get(t, s.URL+"/ip/8.8.8.8", mdHeader()), http.StatusTooManyRequests)
	if s.Throttled() != 2 {
		t.Errorf("Throttled() = %d, want 2", s.Throttled())
	}
	// Requests and 429s are dated on the double's clock.
	start := epoch()
	if got, want := s.ThrottledAt(), []time.Time{start, start.Add(2 * time.Second)}; !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Errorf("ThrottledAt() = %v, want %v", got, want)
	}
	var at []time.Time
	for _, r := range s.Requests() {
		at = append(at, r.At)
	}
	if want := []time.Time{start, start, start, start.Add(2 * time.Second), start.Add(2 * time.Second)}; !slices.EqualFunc(at, want, time.Time.Equal) {
		t.Errorf("Requests() arrived at %v, want %v", at, want)
	}
}

func TestMetaDefenderFailThrottle(t *testing.T) {
	for _, noRetry := range []bool{false, true} {
		t.Run(fmt.Sprint("NoRetryAfter=", noRetry), func(t *testing.T) {
			s := MetaDefender(t, Options{Key: mdKey, Fail: 2, Throttle: 1, RetryAfter: 7, NoRetryAfter: noRetry})
			for range 2 {
				r := get(t, s.URL+"/ip/8.8.8.8", mdHeader())
				wantStatus(t, r, http.StatusServiceUnavailable)
				wantBody(t, r, `{"error":{"code":503000,"messages":["External service is not reachable"]}}`)
			}
			r := get(t, s.URL+"/ip/8.8.8.8", mdHeader())
			wantStatus(t, r, http.StatusTooManyRequests)
			wantBody(t, r, `{"error":{"name":"ClientError","messages":"Your request has been throttled, maximum requests per hour: 9 for free users","code":429001,"status":429}}`)
			ra, has := r.Header["Retry-After"]
			if noRetry && has {
				t.Errorf("Retry-After %v sent with NoRetryAfter", ra)
			}
			if !noRetry && r.Header.Get("Retry-After") != "7" {
				t.Errorf("Retry-After %q, want 7", r.Header.Get("Retry-After"))
			}
			wantStatus(t, get(t, s.URL+"/ip/8.8.8.8", mdHeader()), http.StatusOK)
			if s.Throttled() != 0 {
				t.Errorf("scripted throttles counted: %d", s.Throttled())
			}
		})
	}
}

func TestMetaDefenderMalformedAndSetListing(t *testing.T) {
	s := MetaDefender(t, Options{Key: mdKey, Malformed: true})
	r := get(t, s.URL+"/ip/8.8.8.8", mdHeader())
	wantStatus(t, r, http.StatusOK)
	if json.Valid(r.Body) || len(r.Body) == 0 {
		t.Errorf("body should be truncated JSON: %s", r.Body)
	}

	s = MetaDefender(t, Options{Key: mdKey})
	s.SetListing("85.25.199.246", Listing{Status: "malicious", Categories: []string{"a", "b", "c", "d", "e", "f", "g"}})
	var d mdReply
	if err := json.Unmarshal(get(t, s.URL+"/ip/85.25.199.246", mdHeader()).Body, &d); err != nil {
		t.Fatal(err)
	}
	if d.LookupResults.DetectedBy != 7 || len(d.LookupResults.Sources) < 9 {
		t.Errorf("detected_by %d over %d sources", d.LookupResults.DetectedBy, len(d.LookupResults.Sources))
	}
	s.SetListing("85.25.199.246", Listing{})
	if err := json.Unmarshal(get(t, s.URL+"/ip/85.25.199.246", mdHeader()).Body, &d); err != nil {
		t.Fatal(err)
	}
	if d.LookupResults.DetectedBy != 0 {
		t.Errorf("detected_by %d after clearing", d.LookupResults.DetectedBy)
	}
}

func TestDelayHonoursCancellation(t *testing.T) {
	for name, start := range map[string]func(testing.TB, Options) *Server{
		"MetaDefender": MetaDefender, "AbuseIPDB": AbuseIPDB, "VirusTotal": VirusTotal, "GreyNoise": GreyNoise,
	} {
		t.Run(name, func(t *testing.T) {
			s := start(t, Options{Delay: time.Hour})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			go func() {
				// The client gives up once the double holds its request.
				for s.Count() == 0 {
					time.Sleep(time.Millisecond)
				}
				cancel()
			}()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/whatever", nil)
			// Do returns only because the double lets the request go when the client gives
			// up: with the hour's delay, the test would hang otherwise.
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				t.Fatalf("got %d, want the client's cancellation", resp.StatusCode)
			}
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v", err)
			}
			if s.Count() != 1 {
				t.Errorf("Count() = %d", s.Count())
			}
		})
	}

	// A request still waiting when the test ends must not hold up the server's shutdown:
	// with the hour's delay, the test would hang.
	t.Run("shutdown", func(t *testing.T) {
		s := GreyNoise(t, Options{Delay: time.Hour})
		go func() {
			resp, err := http.Get(s.URL + "/v3/community/8.8.8.8")
			if err == nil {
				resp.Body.Close()
			}
		}()
		for s.Count() == 0 {
			time.Sleep(time.Millisecond)
		}
	})

	s := VirusTotal(t, Options{Delay: 30 * time.Millisecond})
	began := time.Now()
	wantStatus(t, get(t, s.URL+"/ip_addresses/8.8.8.8", map[string]string{"x-apikey": "k"}), http.StatusOK)
	if d := time.Since(began); d < 30*time.Millisecond {
		t.Errorf("reply after %v, want at least the delay", d)
	}
}

// ---------------------------------------------------------------------------------------
// AbuseIPDB

func abHeader() map[string]string {
	return map[string]string{"Key": abKey, "Accept": "application/json"}
}

const abAuthBody = `{"errors":[{"detail":"Authentication failed. Your API key is either missing, incorrect, or revoked. Note: The APIv2 key differs from the APIv1 key.","status":401}]}`

func TestAbuseIPDBAuthAndAccept(t *testing.T) {
	s := AbuseIPDB(t, Options{Key: abKey})
	check := s.URL + "/check?ipAddress=8.8.8.8&maxAgeInDays=30"
	for _, tc := range []struct {
		name   string
		url    string
		header map[string]string
		status int
		html   bool
		body   string
	}{
		{"right key", check, abHeader(), 200, false, ""},
		{"missing key", check, map[string]string{"Accept": "application/json"}, 401, false, abAuthBody},
		{"wrong key", check, map[string]string{"Key": "nope", "Accept": "application/json"}, 401, false, abAuthBody},
		{"key in query", check + "&key=" + abKey, map[string]string{"Accept": "application/json"}, 200, false, ""},
		{"no Accept, success", check, map[string]string{"Key": abKey}, 406, true, ""},
		{"no Accept, bad key", check, map[string]string{"Key": "nope"}, 401, true, ""},
		{"Accept */*", check, map[string]string{"Key": abKey, "Accept": "*/*"}, 406, true, ""},
		{"Accept with parameters", check, map[string]string{"Key": abKey, "Accept": "application/json; charset=utf-8"}, 200, false, ""},
		{"unknown endpoint", s.URL + "/nope", abHeader(), 404, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, tc.url, tc.header)
			wantStatus(t, r, tc.status)
			ct := r.Header.Get("Content-Type")
			if tc.html {
				if !strings.HasPrefix(ct, "text/html") || !strings.Contains(string(r.Body), "<html") {
					t.Errorf("want an HTML page, got %q %s", ct, r.Body)
				}
				return
			}
			wantJSONType(t, r)
			if tc.body != "" {
				wantBody(t, r, tc.body)
			}
		})
	}
}

func TestAbuseIPDBCheck(t *testing.T) {
	clk := newClock()
	s := AbuseIPDB(t, Options{Key: abKey, Now: clk.Now, Listings: map[string]Listing{
		"85.25.199.246":  {Status: "malicious", Categories: []string{"sshd brute force", "port scan"}, Country: "DE"},
		"94.73.144.9":    {Status: "suspicious", Score: 33, Tor: true},
		"185.50.196.126": {Status: "malicious", Score: 87},
		"8.8.8.8":        {Status: "riot"},
	}})
	base := []string{"abuseConfidenceScore", "countryCode", "domain", "hostnames", "ipAddress", "ipVersion", "isPublic",
		"isTor", "isWhitelisted", "isp", "lastReportedAt", "numDistinctUsers", "totalReports", "usageType"}
	verboseKeys := append(slices.Clone(base), "countryName", "reports")
	slices.Sort(verboseKeys)
	for _, tc := range []struct {
		addr        string
		verbose     bool
		score       int
		reports     int
		public      bool
		tor         bool
		whitelisted any
		country     any
	}{
		{"85.25.199.246", false, 90, 2, true, false, false, "DE"},
		{"85.25.199.246", true, 90, 2, true, false, false, "DE"},
		{"94.73.144.9", true, 33, 1, true, true, false, "NL"},
		{"185.50.196.126", false, 87, 1, true, false, false, "NL"},
		{"8.8.8.8", false, 0, 0, true, false, true, "NL"},
		{"9.9.9.9", true, 0, 0, true, false, nil, "NL"},
		{"127.0.0.2", false, 0, 0, false, false, nil, nil},
		{"10.20.30.40", true, 0, 0, false, false, nil, nil},
		{"2001:4860:4860::8888", false, 0, 0, true, false, nil, "NL"},
	} {
		t.Run(fmt.Sprintf("%s verbose=%v", tc.addr, tc.verbose), func(t *testing.T) {
			u := s.URL + "/check?maxAgeInDays=90&ipAddress=" + url.QueryEscape(tc.addr)
			if tc.verbose {
				u += "&verbose"
			}
			r := get(t, u, abHeader())
			wantStatus(t, r, http.StatusOK)
			wantJSONType(t, r)
			d := r.json(t)["data"].(map[string]any)
			want := base
			if tc.verbose {
				want = verboseKeys
			}
			if got := keys(d); !slices.Equal(got, want) {
				t.Fatalf("keys %v\nwant %v", got, want)
			}
			version := 4.0
			if strings.Contains(tc.addr, ":") {
				version = 6
			}
			if d["ipAddress"] != tc.addr || d["ipVersion"] != version || d["isPublic"] != tc.public ||
				d["abuseConfidenceScore"] != float64(tc.score) || d["totalReports"] != float64(tc.reports) ||
				d["isTor"] != tc.tor || d["isWhitelisted"] != tc.whitelisted || d["countryCode"] != tc.country {
				t.Errorf("data %v", d)
			}
			if tc.score > 0 {
				if d["lastReportedAt"] != "2024-05-01T09:00:00+00:00" {
					t.Errorf("lastReportedAt %v", d["lastReportedAt"])
				}
				if tc.public && d["usageType"] != "Data Center/Web Hosting/Transit" || d["isp"] != "Example Hosting LLC" {
					t.Errorf("usageType %v isp %v", d["usageType"], d["isp"])
				}
			} else if d["lastReportedAt"] != nil {
				t.Errorf("lastReportedAt %v for a never-reported address", d["lastReportedAt"])
			}
			if tc.verbose {
				reports := d["reports"].([]any)
				if len(reports) != tc.reports {
					t.Fatalf("%d reports, want %d", len(reports), tc.reports)
				}
				if tc.addr == "85.25.199.246" {
					if d["countryName"] != "Germany" || reports[0].(map[string]any)["comment"] != "sshd brute force" {
						t.Errorf("countryName %v reports %v", d["countryName"], reports)
					}
				}
			}
		})
	}
}

func TestAbuseIPDBValidation(t *testing.T) {
	s := AbuseIPDB(t, Options{Key: abKey})
	maxAge := `{"errors":[{"detail":"The max age in days must be between 1 and 365.","status":422,"source":{"parameter":"maxAgeInDays"}}]}`
	badIP := `{"errors":[{"detail":"The ip address must be a valid IP address.","status":422,"source":{"parameter":"ipAddress"}}]}`
	for _, tc := range []struct {
		name, query string
		status      int
		body        string
	}{
		{"max age 0", "/check?ipAddress=8.8.8.8&maxAgeInDays=0", 422, maxAge},
		{"max age 366", "/check?ipAddress=8.8.8.8&maxAgeInDays=366", 422, maxAge},
		{"max age text", "/check?ipAddress=8.8.8.8&maxAgeInDays=week", 422, maxAge},
		{"max age 365", "/check?ipAddress=8.8.8.8&maxAgeInDays=365", 200, ""},
		{"max age default", "/check?ipAddress=8.8.8.8", 200, ""},
		{"bad ip", "/check?ipAddress=8.8.8.256", 422, badIP},
		{"cidr as ip", "/check?ipAddress=8.8.8.0/24", 422, badIP},
		{"no ip", "/check", 422, `{"errors":[{"detail":"The ip address field is required.","status":422,"source":{"parameter":"ipAddress"}}]}`},
		{"block too wide", "/check-block?network=85.25.198.0/23", 422, `{"errors":[{"detail":"The network must be a /24 or smaller.","status":422,"source":{"parameter":"network"}}]}`},
		{"block invalid", "/check-block?network=85.25.199.0", 422, `{"errors":[{"detail":"The network must be a valid CIDR notation.","status":422,"source":{"parameter":"network"}}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, s.URL+tc.query, abHeader())
			wantStatus(t, r, tc.status)
			wantJSONType(t, r)
			if tc.body != "" {
				wantBody(t, r, tc.body)
			}
		})
	}
}

func TestAbuseIPDBCheckBlock(t *testing.T) {
	clk := newClock()
	s := AbuseIPDB(t, Options{Key: abKey, Now: clk.Now, Listings: map[string]Listing{
		"85.25.199.246": {Status: "malicious", Score: 75, Country: "DE"},
		"85.25.199.7":   {Status: "suspicious"},
		"85.25.199.8":   {}, // clean: not reported
		"94.73.144.9":   {Status: "malicious"},
	}})
	r := get(t, s.URL+"/check-block?network="+url.QueryEscape("85.25.199.99/24")+"&maxAgeInDays=30", abHeader())
	wantStatus(t, r, http.StatusOK)
	wantBody(t, r, `{"data":{"networkAddress":"85.25.199.0","netmask":"255.255.255.0","minAddress":"85.25.199.1","maxAddress":"85.25.199.254","numPossibleHosts":254,"addressSpaceDesc":"Internet","reportedAddress":[`+
		`{"ipAddress":"85.25.199.7","numReports":1,"mostRecentReport":"2024-05-01T09:00:00+00:00","abuseConfidenceScore":40,"countryCode":"NL"},`+
		`{"ipAddress":"85.25.199.246","numReports":1,"mostRecentReport":"2024-05-01T09:00:00+00:00","abuseConfidenceScore":75,"countryCode":"DE"}]}}`)
	if got := s.Requests()[0].Addresses; !slices.Equal(got, []string{"85.25.199.99/24"}) {
		t.Errorf("recorded addresses %v", got)
	}
	r = get(t, s.URL+"/check-block?network=127.0.0.1/24", abHeader())
	wantStatus(t, r, http.StatusOK)
	d := r.json(t)["data"].(map[string]any)
	if d["addressSpaceDesc"] != "Loopback" || len(d["reportedAddress"].([]any)) != 0 {
		t.Errorf("data %v", d)
	}
	r = get(t, s.URL+"/check-block?network=94.73.144.9/32", abHeader())
	d = r.json(t)["data"].(map[string]any)
	if d["minAddress"] != "94.73.144.9" || d["maxAddress"] != "94.73.144.9" || d["numPossibleHosts"] != 1.0 || len(d["reportedAddress"].([]any)) != 1 {
		t.Errorf("data %v", d)
	}
	if r.Header.Get("X-RateLimit-Limit") != "100" || r.Header.Get("X-RateLimit-Remaining") != "97" {
		t.Errorf("check-block limit headers %v", r.Header)
	}
}

func TestAbuseIPDBQuota(t *testing.T) {
	clk := newClock()
	s := AbuseIPDB(t, Options{Key: abKey, Quota: 3, Now: clk.Now})
	reset := strconv.FormatInt(epoch().Add(time.Hour).Unix(), 10)
	for i, want := range []string{"2", "1", "0"} {
		r := get(t, s.URL+"/check?ipAddress=8.8.8.8", abHeader())
		wantStatus(t, r, http.StatusOK)
		if r.Header.Get("X-RateLimit-Limit") != "3" || r.Header.Get("X-RateLimit-Remaining") != want || r.Header.Get("X-RateLimit-Reset") != reset {
			t.Errorf("request %d: headers %v", i+1, r.Header)
		}
		if _, ok := r.Header["Retry-After"]; ok {
			t.Errorf("Retry-After on a 200")
		}
	}
	clk.Advance(15 * time.Minute)
	r := get(t, s.URL+"/check?ipAddress=8.8.8.8", abHeader())
	wantStatus(t, r, http.StatusTooManyRequests)
	wantJSONType(t, r)
	wantBody(t, r, `{"errors":[{"detail":"Daily rate limit of 3 requests exceeded for this endpoint. See headers for additional details.","status":429}]}`)
	if r.Header.Get("X-RateLimit-Remaining") != "0" || r.Header.Get("X-RateLimit-Reset") != reset || r.Header.Get("Retry-After") != "2700" {
		t.Errorf("429 headers %v", r.Header)
	}
	// The quota is per endpoint.
	wantStatus(t, get(t, s.URL+"/check-block?network=85.25.199.0/24", abHeader()), http.StatusOK)
	// Without Accept the 429 is an HTML page.
	r = get(t, s.URL+"/check?ipAddress=8.8.8.8", map[string]string{"Key": abKey})
	if r.Status != http.StatusNotAcceptable || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Errorf("no Accept: %d %q", r.Status, r.Header.Get("Content-Type"))
	}
	names := rawHeaderNames(t, s.URL+"/check-block?network=85.25.199.0/24", abHeader())
	for _, want := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
		if !slices.Contains(names, want) {
			t.Errorf("header %s not written with its documented name; got %v", want, names)
		}
	}
}

func TestAbuseIPDBRateFailThrottle(t *testing.T) {
	clk := newClock()
	s := AbuseIPDB(t, Options{Key: abKey, Rate: 1, Now: clk.Now})
	wantStatus(t, get(t, s.URL+"/check?ipAddress=8.8.8.8", abHeader()), http.StatusOK)
	r := get(t, s.URL+"/check?ipAddress=8.8.8.8", abHeader())
	wantStatus(t, r, http.StatusTooManyRequests)
	wantBody(t, r, `{"errors":[{"detail":"Too Many Attempts.","status":429}]}`)
	if r.Header.Get("Retry-After") != "1" || r.Header.Get("X-RateLimit-Remaining") != "999" {
		t.Errorf("headers %v", r.Header)
	}
	if s.Throttled() != 1 {
		t.Errorf("Throttled() = %d", s.Throttled())
	}

	s = AbuseIPDB(t, Options{Key: abKey, Fail: 1, Throttle: 2, RetryAfter: 3, NoRetryAfter: true})
	r = get(t, s.URL+"/check?ipAddress=8.8.8.8", abHeader())
	wantStatus(t, r, http.StatusServiceUnavailable)
	wantJSONType(t, r)
	if e := r.json(t)["errors"].([]any)[0].(map[string]any); e["status"] != 503.0 || e["detail"] == "" {
		t.Errorf("503 body %s", r.Body)
	}
	for range 2 {
		r = get(t, s.URL+"/check?ipAddress=8.8.8.8", abHeader())
		wantStatus(t, r, http.StatusTooManyRequests)
		if r.Header.Get("Retry-After") != "3" {
			t.Errorf("Retry-After %q: AbuseIPDB documents it, NoRetryAfter must not drop it", r.Header.Get("Retry-After"))
		}
	}
	wantStatus(t, get(t, s.URL+"/check?ipAddress=8.8.8.8", abHeader()), http.StatusOK)
	if s.Throttled() != 0 {
		t.Errorf("Throttled() = %d", s.Throttled())
	}

	s = AbuseIPDB(t, Options{Key: abKey, Malformed: true})
	r = get(t, s.URL+"/check?ipAddress=8.8.8.8", abHeader())
	if r.Status != http.StatusOK || json.Valid(r.Body) {
		t.Errorf("Malformed: %d %s", r.Status, r.Body)
	}
}

// ---------------------------------------------------------------------------------------
// VirusTotal

func vtHeader() map[string]string { return map[string]string{"x-apikey": vtKey} }

type vtReply struct {
	Data struct {
		ID         string            `json:"id"`
		Type       string            `json:"type"`
		Links      map[string]string `json:"links"`
		Attributes struct {
			ASOwner           string         `json:"as_owner"`
			ASN               int            `json:"asn"`
			Country           string         `json:"country"`
			Network           string         `json:"network"`
			LastAnalysisStats map[string]int `json:"last_analysis_stats"`
			Results           map[string]struct {
				Category   string `json:"category"`
				EngineName string `json:"engine_name"`
			} `json:"last_analysis_results"`
			Reputation int            `json:"reputation"`
			TotalVotes map[string]int `json:"total_votes"`
			Tags       []string       `json:"tags"`
		} `json:"attributes"`
	} `json:"data"`
}

func TestVirusTotalAuth(t *testing.T) {
	s := VirusTotal(t, Options{Key: vtKey})
	for _, tc := range []struct {
		name   string
		header map[string]string
		status int
		body   string
	}{
		{"missing", nil, 401, `{"error":{"code":"AuthenticationRequiredError","message":"X-Apikey header is missing"}}`},
		{"wrong", map[string]string{"x-apikey": "nope"}, 401, `{"error":{"code":"WrongCredentialsError","message":"The provided API key is incorrect."}}`},
		{"right", vtHeader(), 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, s.URL+"/ip_addresses/8.8.8.8", tc.header)
			wantStatus(t, r, tc.status)
			wantJSONType(t, r)
			if tc.body != "" {
				wantBody(t, r, tc.body)
			}
		})
	}
}

func TestVirusTotalReport(t *testing.T) {
	s := VirusTotal(t, Options{Key: vtKey, Listings: map[string]Listing{
		"85.25.199.246":  {Status: "malicious", Score: 7, Categories: []string{"scanner"}, Country: "DE"},
		"94.73.144.9":    {Status: "suspicious", Score: 3},
		"185.50.196.126": {Status: "malicious", Score: 60},
		"198.51.100.1":   {Unobserved: true},
	}})
	for _, tc := range []struct {
		addr                  string
		malicious, suspicious int
		negative              bool
		tags                  []string
		country               string
	}{
		{"85.25.199.246", 7, 0, true, []string{"scanner"}, "DE"},
		{"94.73.144.9", 0, 3, true, []string{}, "NL"},
		{"185.50.196.126", 60, 0, true, []string{}, "NL"},
		{"8.8.8.8", 0, 0, false, []string{}, "NL"},
		{"10.0.0.1", 0, 0, false, []string{}, "NL"},
		{"2001:4860:4860::8888", 0, 0, false, []string{}, "NL"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			r := get(t, s.URL+"/ip_addresses/"+tc.addr, vtHeader())
			wantStatus(t, r, http.StatusOK)
			wantJSONType(t, r)
			if _, ok := r.Header["Retry-After"]; ok {
				t.Error("Retry-After on a 200")
			}
			var d vtReply
			if err := json.Unmarshal(r.Body, &d); err != nil {
				t.Fatal(err)
			}
			a := d.Data.Attributes
			if d.Data.ID != tc.addr || d.Data.Type != "ip_address" ||
				d.Data.Links["self"] != "https://www.virustotal.com/api/v3/ip_addresses/"+tc.addr {
				t.Errorf("id %q type %q links %v", d.Data.ID, d.Data.Type, d.Data.Links)
			}
			if a.ASOwner == "" || a.ASN == 0 || a.Network == "" || a.Country != tc.country {
				t.Errorf("as_owner %q asn %d network %q country %q", a.ASOwner, a.ASN, a.Network, a.Country)
			}
			st := a.LastAnalysisStats
			for _, k := range []string{"harmless", "malicious", "suspicious", "undetected", "timeout"} {
				if _, ok := st[k]; !ok || len(st) != 5 {
					t.Errorf("stats %v lack %s or have extra keys", st, k)
				}
			}
			if st["malicious"] != tc.malicious || st["suspicious"] != tc.suspicious {
				t.Errorf("stats %v", st)
			}
			counts := map[string]int{}
			for name, e := range a.Results {
				counts[e.Category]++
				if e.EngineName != name {
					t.Errorf("engine %q named %q", name, e.EngineName)
				}
			}
			for _, c := range []string{"harmless", "malicious", "suspicious", "undetected", "timeout"} {
				if counts[c] != st[c] {
					t.Errorf("%d %s results, stats say %d", counts[c], c, st[c])
				}
			}
			if (a.Reputation < 0) != tc.negative || (!tc.negative && a.Reputation != 0) {
				t.Errorf("reputation %d", a.Reputation)
			}
			if !slices.Equal(a.Tags, tc.tags) || a.Tags == nil {
				t.Errorf("tags %v", a.Tags)
			}
			if _, ok := a.TotalVotes["malicious"]; !ok {
				t.Errorf("total_votes %v", a.TotalVotes)
			}
		})
	}
	for _, tc := range []struct {
		addr   string
		status int
		body   string
	}{
		{"198.51.100.1", 404, `{"error":{"code":"NotFoundError","message":"IP address \"198.51.100.1\" not found"}}`},
		{"8.8.8.888", 400, `{"error":{"code":"InvalidArgumentError","message":"\"8.8.8.888\" is not a valid IP address"}}`},
	} {
		r := get(t, s.URL+"/ip_addresses/"+tc.addr, vtHeader())
		wantStatus(t, r, tc.status)
		wantBody(t, r, tc.body)
	}
}

func TestVirusTotalLimits(t *testing.T) {
	s := VirusTotal(t, Options{Key: vtKey, Quota: 2})
	for range 2 {
		wantStatus(t, get(t, s.URL+"/ip_addresses/8.8.8.8", vtHeader()), http.StatusOK)
	}
	r := get(t, s.URL+"/ip_addresses/8.8.8.8", vtHeader())
	wantStatus(t, r, http.StatusTooManyRequests)
	wantBody(t, r, `{"error":{"code":"QuotaExceededError","message":"You have exceeded one of your quotas (minute, daily or monthly). Daily quotas are reset every day at 00:00 UTC."}}`)
	for name := range r.Header {
		if strings.HasPrefix(strings.ToLower(name), "x-ratelimit") || name == "Retry-After" {
			t.Errorf("undocumented header %s", name)
		}
	}

	clk := newClock()
	s = VirusTotal(t, Options{Key: vtKey, Rate: 4.0 / 60, Burst: 4, Now: clk.Now})
	for range 4 {
		wantStatus(t, get(t, s.URL+"/ip_addresses/8.8.8.8", vtHeader()), http.StatusOK)
	}
	r = get(t, s.URL+"/ip_addresses/8.8.8.8", vtHeader())
	wantStatus(t, r, http.StatusTooManyRequests)
	wantBody(t, r, `{"error":{"code":"TooManyRequestsError","message":"Too many requests"}}`)
	if _, ok := r.Header["Retry-After"]; ok || s.Throttled() != 1 {
		t.Errorf("Retry-After %v, Throttled() %d", r.Header["Retry-After"], s.Throttled())
	}
	clk.Advance(15 * time.Second)
	wantStatus(t, get(t, s.URL+"/ip_addresses/8.8.8.8", vtHeader()), http.StatusOK)

	s = VirusTotal(t, Options{Key: vtKey, Fail: 1, Throttle: 1})
	r = get(t, s.URL+"/ip_addresses/8.8.8.8", vtHeader())
	wantStatus(t, r, http.StatusServiceUnavailable)
	if e := r.json(t)["error"].(map[string]any); e["code"] != "TransientError" {
		t.Errorf("503 body %s", r.Body)
	}
	r = get(t, s.URL+"/ip_addresses/8.8.8.8", vtHeader())
	wantStatus(t, r, http.StatusTooManyRequests)
	if r.Header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q, want the default 1", r.Header.Get("Retry-After"))
	}
	wantStatus(t, get(t, s.URL+"/ip_addresses/8.8.8.8", vtHeader()), http.StatusOK)

	s = VirusTotal(t, Options{Key: vtKey, Malformed: true})
	r = get(t, s.URL+"/ip_addresses/8.8.8.8", vtHeader())
	if r.Status != http.StatusOK || json.Valid(r.Body) {
		t.Errorf("Malformed: %d %s", r.Status, r.Body)
	}
}

// ---------------------------------------------------------------------------------------
// GreyNoise

const gnNotObserved = `{"ip":"%s","noise":false,"riot":false,"message":"IP not observed scanning the internet or contained in RIOT data set."}`

func TestGreyNoiseLookups(t *testing.T) {
	clk := newClock()
	s := GreyNoise(t, Options{Now: clk.Now, Listings: map[string]Listing{
		"85.25.199.246":  {Status: "malicious"},
		"94.73.144.9":    {Status: "suspicious", Name: "Example Scanner"},
		"8.8.8.8":        {Status: "riot", Name: "Google Public DNS"},
		"185.50.196.126": {Status: "malicious", Unobserved: true},
		"9.9.9.9":        {Status: "clean"},
	}})
	const notRoutable = `{"message":"Request is not a valid routable IPv4 address"}`
	for _, tc := range []struct {
		addr   string
		status int
		body   string
	}{
		{"85.25.199.246", 200, `{"ip":"85.25.199.246","noise":true,"riot":false,"classification":"malicious","name":"unknown","link":"https://viz.greynoise.io/ip/85.25.199.246","last_seen":"2024-04-30","message":"Success"}`},
		{"94.73.144.9", 200, `{"ip":"94.73.144.9","noise":true,"riot":false,"classification":"unknown","name":"Example Scanner","link":"https://viz.greynoise.io/ip/94.73.144.9","last_seen":"2024-04-30","message":"Success"}`},
		{"8.8.8.8", 200, `{"ip":"8.8.8.8","noise":false,"riot":true,"classification":"benign","name":"Google Public DNS","link":"https://viz.greynoise.io/riot/8.8.8.8","last_seen":"2024-04-30","message":"Success"}`},
		{"185.50.196.126", 404, fmt.Sprintf(gnNotObserved, "185.50.196.126")},
		{"9.9.9.9", 404, fmt.Sprintf(gnNotObserved, "9.9.9.9")},
		{"1.1.1.1", 404, fmt.Sprintf(gnNotObserved, "1.1.1.1")},
		{"2001:4860:4860::8888", 400, notRoutable},
		{"::ffff:8.8.8.8", 400, notRoutable},
		{"192.168.0.1", 400, notRoutable},
		{"not-an-ip", 400, notRoutable},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			r := get(t, s.URL+"/v3/community/"+tc.addr, nil)
			wantStatus(t, r, tc.status)
			wantJSONType(t, r)
			wantBody(t, r, tc.body)
		})
	}
	last := s.Requests()[s.Count()-1]
	if last.Path != "/v3/community/not-an-ip" || !slices.Equal(last.Addresses, []string{"not-an-ip"}) {
		t.Errorf("recorded %+v", last)
	}
}

func TestGreyNoiseAuth(t *testing.T) {
	open := GreyNoise(t, Options{})
	wantStatus(t, get(t, open.URL+"/v3/community/8.8.8.8", nil), http.StatusNotFound)
	wantStatus(t, get(t, open.URL+"/v3/community/8.8.8.8", map[string]string{"key": "anything"}), http.StatusNotFound)

	keyed := GreyNoise(t, Options{Key: gnKey})
	for _, tc := range []struct {
		name   string
		header map[string]string
		status int
	}{
		{"missing", nil, 401},
		{"wrong", map[string]string{"key": "nope"}, 401},
		{"right", map[string]string{"key": gnKey}, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, keyed.URL+"/v3/community/8.8.8.8", tc.header)
			wantStatus(t, r, tc.status)
			if tc.status == 401 {
				wantBody(t, r, `{"message":"Unauthorized"}`)
			}
		})
	}
}

func TestGreyNoiseLimits(t *testing.T) {
	s := GreyNoise(t, Options{Quota: 2})
	for range 2 {
		wantStatus(t, get(t, s.URL+"/v3/community/8.8.8.8", nil), http.StatusNotFound)
	}
	r := get(t, s.URL+"/v3/community/8.8.8.8", nil)
	wantStatus(t, r, http.StatusTooManyRequests)
	wantBody(t, r, `{"plan":"unauthenticated","rate-limit":"2-lookups/day","plan_url":"https://greynoise.io/pricing","message":"You have hit your daily rate limit of 2 requests per day. Please create a free account or upgrade your plan at https://greynoise.io/pricing."}`)
	// Validation comes before the quota.
	wantStatus(t, get(t, s.URL+"/v3/community/10.0.0.1", nil), http.StatusBadRequest)

	clk := newClock()
	s = GreyNoise(t, Options{Rate: 1, Now: clk.Now})
	wantStatus(t, get(t, s.URL+"/v3/community/8.8.8.8", nil), http.StatusNotFound)
	r = get(t, s.URL+"/v3/community/8.8.8.8", map[string]string{"key": "k"})
	wantStatus(t, r, http.StatusTooManyRequests)
	wantBody(t, r, `{"plan":"community","rate-limit":"100-lookups/day","plan_url":"https://greynoise.io/pricing","message":"You have hit your daily rate limit of 100 requests per day. Please create a free account or upgrade your plan at https://greynoise.io/pricing."}`)
	if s.Throttled() != 1 {
		t.Errorf("Throttled() = %d", s.Throttled())
	}

	s = GreyNoise(t, Options{Fail: 1, Throttle: 1, RetryAfter: 5})
	r = get(t, s.URL+"/v3/community/8.8.8.8", nil)
	wantStatus(t, r, http.StatusInternalServerError)
	wantBody(t, r, `{"message":"Encountered error while performing request"}`)
	r = get(t, s.URL+"/v3/community/8.8.8.8", nil)
	wantStatus(t, r, http.StatusTooManyRequests)
	if r.Header.Get("Retry-After") != "5" {
		t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	wantStatus(t, get(t, s.URL+"/v3/community/8.8.8.8", nil), http.StatusNotFound)

	s = GreyNoise(t, Options{Malformed: true, Listings: map[string]Listing{"8.8.8.8": {Status: "riot"}}})
	r = get(t, s.URL+"/v3/community/8.8.8.8", nil)
	if r.Status != http.StatusOK || json.Valid(r.Body) {
		t.Errorf("Malformed: %d %s", r.Status, r.Body)
	}
}

// ---------------------------------------------------------------------------------------
// Common

func TestConcurrentUse(t *testing.T) {
	s := MetaDefender(t, Options{Key: mdKey, Quota: 100})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			addr := fmt.Sprintf("85.25.199.%d", i+1)
			s.SetListing(addr, Listing{Status: "malicious"})
			r, err := http.NewRequest(http.MethodGet, s.URL+"/ip/"+addr, nil)
			if err != nil {
				t.Error(err)
				return
			}
			r.Header.Set("apikey", mdKey)
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			_ = s.Requests()
			_ = s.Throttled()
		})
	}
	wg.Wait()
	if s.Count() != 20 {
		t.Fatalf("Count() = %d", s.Count())
	}
	r := get(t, s.URL+"/ip/8.8.8.8", mdHeader())
	if r.Header.Get("X-RateLimit-Remaining") != "79" {
		t.Errorf("remaining %q after 21 lookups of 100", r.Header.Get("X-RateLimit-Remaining"))
	}
}

func TestListingValidation(t *testing.T) {
	s := GreyNoise(t, Options{})
	defer func() {
		if recover() == nil {
			t.Error("SetListing accepted an unknown status")
		}
	}()
	s.SetListing("8.8.8.8", Listing{Status: "Malicious"})
}

func TestListingKeysAreCanonical(t *testing.T) {
	s := VirusTotal(t, Options{Key: vtKey, Listings: map[string]Listing{
		"2001:DB8:0:0::1": {Status: "malicious", Score: 4},
	}})
	var d vtReply
	if err := json.Unmarshal(get(t, s.URL+"/ip_addresses/2001:db8::1", vtHeader()).Body, &d); err != nil {
		t.Fatal(err)
	}
	if d.Data.Attributes.LastAnalysisStats["malicious"] != 4 {
		t.Errorf("stats %v", d.Data.Attributes.LastAnalysisStats)
	}
}

func TestConnectionsAndInFlight(t *testing.T) {
	srv := MetaDefender(t, Options{Key: mdKey, Delay: time.Hour})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/ip/1.1.1.1", nil)
			req.Header.Set("apikey", mdKey)
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		})
	}
	// The three requests wait in the double until they are cancelled.
	for srv.MaxInFlight() < 3 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	if got := srv.MaxInFlight(); got != 3 {
		t.Errorf("MaxInFlight() = %d, want 3", got)
	}
	if got := srv.Connections(); got != 3 {
		t.Errorf("Connections() = %d, want 3: one per request in flight", got)
	}

	// A client that keeps one connection opens one.
	quick := MetaDefender(t, Options{Key: mdKey})
	one := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer one.CloseIdleConnections()
	for range 5 {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", quick.URL+"/ip/1.1.1.1", nil)
		req.Header.Set("apikey", mdKey)
		resp, err := one.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if got := quick.Connections(); got != 1 || quick.MaxInFlight() != 1 {
		t.Errorf("sequential requests: Connections() = %d, MaxInFlight() = %d, want 1 and 1", got, quick.MaxInFlight())
	}
}

func TestVirusTotalReputation(t *testing.T) {
	trusted := 134
	srv := VirusTotal(t, Options{Key: vtKey, Listings: map[string]Listing{
		"8.8.8.8":     {Status: "malicious", Score: 4, Reputation: &trusted},
		"94.73.144.9": {Status: "malicious", Score: 4},
	}})
	for addr, want := range map[string]float64{"8.8.8.8": 134, "94.73.144.9": -8} {
		body := get(t, srv.URL+"/ip_addresses/"+addr, vtHeader()).json(t)
		got := body["data"].(map[string]any)["attributes"].(map[string]any)["reputation"]
		if got != want {
			t.Errorf("reputation of %s = %v, want %v", addr, got, want)
		}
	}
}
