package reputation

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sgvet/sgvet/internal/fakeprovider"
)

const testKey = "test-key-3f9a1c"

// serviceConfig is a client configuration for a double. The timeout is long: a test must
// not fail because a busy machine answers slowly.
func serviceConfig(url, env string) ServiceConfig {
	return ServiceConfig{BaseURL: url, Key: testKey, KeyEnv: env, Timeout: time.Minute}
}

// testPolicy retries twice, quickly.
var testPolicy = Policy{Retries: 2, RetryWait: 10 * time.Millisecond, MaxRetryWait: time.Second}

func target(s string) Target {
	t, err := ParseTarget(s)
	if err != nil {
		panic(err)
	}
	return t
}

func targets(ss ...string) []Target {
	out := make([]Target, len(ss))
	for i, s := range ss {
		out[i] = target(s)
	}
	return out
}

// vetOne vets targets with one provider and returns its verdicts, by target.
// Without policies in opts, the provider gets testPolicy.
func vetOne(t *testing.T, p Provider, opts Options, ts []Target) (map[string]Verdict, *Vetter) {
	t.Helper()
	results, v := vetAll(t, p, opts, ts)
	out := map[string]Verdict{}
	for _, r := range results {
		out[r.Target.String()] = r.Verdicts[0]
	}
	return out, v
}

type want struct {
	status   Status
	score    int // -1: no score
	evidence string
	category string
}

func check(t *testing.T, got map[string]Verdict, wants map[string]want) {
	t.Helper()
	for addr, w := range wants {
		v, ok := got[addr]
		if !ok {
			t.Errorf("no verdict for %s", addr)
			continue
		}
		if v.Status != w.status {
			t.Errorf("verdict(%s) = %s (%s%s), want %s", addr, v.Status, v.Evidence, v.Reason, w.status)
		}
		switch {
		case w.score < 0 && v.Score != nil:
			t.Errorf("score(%s) = %d, want none", addr, *v.Score)
		case w.score >= 0 && (v.Score == nil || *v.Score != w.score):
			t.Errorf("score(%s) = %v, want %d", addr, v.Score, w.score)
		}
		if text := v.Evidence + v.Reason; !strings.Contains(text, w.evidence) {
			t.Errorf("evidence(%s) = %q, want it to contain %q", addr, text, w.evidence)
		}
		if w.category != "" && !contains(strings.Join(v.Categories, ","), w.category) {
			t.Errorf("categories(%s) = %v, want %q", addr, v.Categories, w.category)
		}
		if v.CheckedAt.IsZero() || v.Provider == "" {
			t.Errorf("verdict(%s) lacks a provider or check time: %+v", addr, v)
		}
	}
}

// keyOnlyInHeader checks that the key travelled in header and nowhere else.
func keyOnlyInHeader(t *testing.T, srv *fakeprovider.Server, header string) {
	t.Helper()
	for _, r := range srv.Requests() {
		if got := r.Header.Get(header); got != testKey {
			t.Errorf("%s %s: header %s = %q, want the key", r.Method, r.Path, header, got)
		}
		if strings.Contains(r.Path+r.Query.Encode()+string(r.Body), testKey) {
			t.Errorf("%s %s: the key is in the URL or body", r.Method, r.Path)
		}
	}
}

var listings = map[string]fakeprovider.Listing{
	"85.25.199.246":  {Status: "malicious", Categories: []string{"botnet", "scanner"}, Country: "DE"},
	"94.73.144.9":    {Status: "malicious", Categories: []string{"c2"}, Score: 9, Tor: true},
	"185.50.196.126": {Status: "suspicious", Score: 1},
	"8.8.8.8":        {Status: "riot", Name: "Google Public DNS"},
}

func TestMetaDefender(t *testing.T) {
	srv := fakeprovider.MetaDefender(t, fakeprovider.Options{Key: testKey, Listings: listings})
	md := NewMetaDefender(serviceConfig(srv.URL, "MDCLOUD_APIKEY"))

	// One address: the single lookup.
	got, _ := vetOne(t, md, Options{}, targets("85.25.199.246"))
	check(t, got, map[string]want{"85.25.199.246": {Malicious, 2, "listed by 2 of", "botnet"}})
	if r := srv.Requests()[0]; r.Method != "GET" || r.Path != "/v4/ip/85.25.199.246" {
		t.Errorf("single lookup = %s %s, want GET /v4/ip/85.25.199.246", r.Method, r.Path)
	}
	if got["85.25.199.246"].Country != "DE" {
		t.Errorf("country = %q, want DE", got["85.25.199.246"].Country)
	}

	// A bulk mixing listed and clean addresses, answered in another order.
	ts := targets("85.25.199.246", "94.73.144.9", "1.1.1.1", "2a03:2880:f10c:83:face:b00c:0:25de", "185.50.196.126")
	for i := range 55 {
		ts = append(ts, AddressTarget(netip.AddrFrom4([4]byte{51, 15, 0, byte(i)})))
	}
	before := srv.Count()
	got, v := vetOne(t, md, Options{}, ts)
	check(t, got, map[string]want{
		"85.25.199.246":                      {Malicious, 2, "botnet", "scanner"},
		"94.73.144.9":                        {Malicious, 1, "c2", "c2"},
		"185.50.196.126":                     {Malicious, 1, "listed by 1", ""},
		"1.1.1.1":                            {Clean, 0, "listed by none", ""},
		"2a03:2880:f10c:83:face:b00c:0:25de": {Clean, 0, "listed by none", ""},
		"51.15.0.54":                         {Clean, 0, "listed by none", ""},
	})
	if n := srv.Count() - before; n != 2 {
		t.Errorf("60 addresses took %d requests, want 2 bulk requests", n)
	}
	if st := v.Stats()[0]; st.Lookups != 2 || st.Answered != 60 {
		t.Errorf("Stats = %+v, want 2 lookups answering 60", st)
	}
	last := srv.Requests()[srv.Count()-1]
	if last.Method != "POST" || last.Path != "/v4/ip/" || len(last.Addresses) > MetaDefenderMaxBatch {
		t.Errorf("bulk lookup = %s %s with %d addresses, want POST /v4/ip/ with at most 50", last.Method, last.Path, len(last.Addresses))
	}
	keyOnlyInHeader(t, srv, "apikey")

	// A prefix is never sent.
	got, _ = vetOne(t, md, Options{}, targets("85.25.0.0/16"))
	check(t, got, map[string]want{"85.25.0.0/16": {Unknown, -1, "single addresses only", ""}})
}

func TestAbuseIPDB(t *testing.T) {
	srv := fakeprovider.AbuseIPDB(t, fakeprovider.Options{Key: testKey, Listings: listings})
	a := NewAbuseIPDB(serviceConfig(srv.URL, "ABUSEIPDB_API_KEY"), AbuseIPDBConfig{})
	got, _ := vetOne(t, a, Options{Workers: 2}, targets("85.25.199.246", "94.73.144.9", "185.50.196.126", "1.1.1.1", "2a03:2880:f10c:83:face:b00c:0:25de", "85.25.199.0/24", "85.25.0.0/16"))
	check(t, got, map[string]want{
		"85.25.199.246":                      {Malicious, 90, "Data Center/Web Hosting/Transit", ""},
		"94.73.144.9":                        {Clean, 9, "Tor exit node", "tor"},
		"185.50.196.126":                     {Clean, 1, "confidence 1%", ""},
		"1.1.1.1":                            {Clean, 0, "confidence 0%, 0 reports", ""},
		"2a03:2880:f10c:83:face:b00c:0:25de": {Clean, 0, "ISP", ""},
		"85.25.199.0/24":                     {Malicious, 90, "85.25.199.246 (90%)", ""},
		"85.25.0.0/16":                       {Unknown, -1, "/24 or longer", ""},
	})
	keyOnlyInHeader(t, srv, "Key")
	for _, r := range srv.Requests() {
		if r.Header.Get("Accept") != "application/json" {
			t.Errorf("%s: Accept = %q, want application/json", r.Path, r.Header.Get("Accept"))
		}
		if r.Path == "/api/v2/check" && r.Query.Get("ipAddress") == "" {
			t.Errorf("check without ipAddress: %v", r.Query)
		}
	}

	// Thresholds are configurable.
	strict := NewAbuseIPDB(serviceConfig(srv.URL, "ABUSEIPDB_API_KEY"), AbuseIPDBConfig{Thresholds: AbuseIPDBThresholds{Malicious: 95, Suspicious: 5}})
	got, _ = vetOne(t, strict, Options{}, targets("85.25.199.246", "94.73.144.9"))
	check(t, got, map[string]want{"85.25.199.246": {Suspicious, 90, "", ""}, "94.73.144.9": {Suspicious, 9, "", ""}})
}

func TestVirusTotal(t *testing.T) {
	ls := map[string]fakeprovider.Listing{
		"85.25.199.246":  {Status: "malicious", Score: 6, Categories: []string{"c2"}},
		"94.73.144.9":    {Status: "malicious", Score: 1},
		"185.50.196.126": {Status: "suspicious", Score: 2},
		"51.15.0.1":      {Unobserved: true},
	}
	srv := fakeprovider.VirusTotal(t, fakeprovider.Options{Key: testKey, Listings: ls})
	vt := NewVirusTotal(serviceConfig(srv.URL, "VT_API_KEY"), VirusTotalThresholds{})
	got, _ := vetOne(t, vt, Options{Workers: 2}, targets("85.25.199.246", "94.73.144.9", "185.50.196.126", "51.15.0.1", "1.1.1.1"))
	check(t, got, map[string]want{
		"85.25.199.246":  {Malicious, 6, "6 of", "c2"},
		"94.73.144.9":    {Suspicious, 1, "community reputation", ""},
		"185.50.196.126": {Suspicious, 0, "2 suspicious", ""},
		"51.15.0.1":      {Clean, 0, "not known to VirusTotal", ""},
		"1.1.1.1":        {Clean, 0, "0 of", ""},
	})
	keyOnlyInHeader(t, srv, "x-apikey")
}

func TestGreyNoise(t *testing.T) {
	srv := fakeprovider.GreyNoise(t, fakeprovider.Options{Key: testKey, Listings: listings})
	g := NewGreyNoise(serviceConfig(srv.URL, "GREYNOISE_API_KEY"))
	got, _ := vetOne(t, g, Options{Workers: 2}, targets("85.25.199.246", "8.8.8.8", "185.50.196.126", "1.1.1.1", "2a03:2880:f10c:83:face:b00c:0:25de"))
	check(t, got, map[string]want{
		"85.25.199.246":                      {Malicious, -1, "classified malicious", "scanner"},
		"8.8.8.8":                            {Clean, -1, "Google Public DNS", "business-service"},
		"185.50.196.126":                     {Suspicious, -1, "observed scanning", "scanner"},
		"1.1.1.1":                            {Clean, -1, "not observed", ""},
		"2a03:2880:f10c:83:face:b00c:0:25de": {Unknown, -1, "IPv4 only", ""},
	})
	if srv.Count() != 4 {
		t.Errorf("requests = %d, want 4: IPv6 is never sent", srv.Count())
	}
	keyOnlyInHeader(t, srv, "key")

	// Without a key, the community API still answers.
	keyless := fakeprovider.GreyNoise(t, fakeprovider.Options{Listings: listings})
	cfg := serviceConfig(keyless.URL, "GREYNOISE_API_KEY")
	cfg.Key = ""
	got, _ = vetOne(t, NewGreyNoise(cfg), Options{}, targets("85.25.199.246"))
	check(t, got, map[string]want{"85.25.199.246": {Malicious, -1, "", ""}})
	if h := keyless.Requests()[0].Header; h.Get("key") != "" {
		t.Errorf("keyless request sent a key header %q", h.Get("key"))
	}
}

// client builds each provider's client for a double.
type client struct {
	name  string
	env   string
	start func(testing.TB, fakeprovider.Options) *fakeprovider.Server
	new   func(ServiceConfig) Provider
}

var clients = []client{
	{"metadefender", "MDCLOUD_APIKEY", fakeprovider.MetaDefender, func(c ServiceConfig) Provider { return NewMetaDefender(c) }},
	{"abuseipdb", "ABUSEIPDB_API_KEY", fakeprovider.AbuseIPDB, func(c ServiceConfig) Provider { return NewAbuseIPDB(c, AbuseIPDBConfig{}) }},
	{"virustotal", "VT_API_KEY", fakeprovider.VirusTotal, func(c ServiceConfig) Provider { return NewVirusTotal(c, VirusTotalThresholds{}) }},
	{"greynoise", "GREYNOISE_API_KEY", fakeprovider.GreyNoise, func(c ServiceConfig) Provider { return NewGreyNoise(c) }},
}

// TestServiceFailures runs every client through the failures its service documents.
func TestServiceFailures(t *testing.T) {
	four := targets("85.25.199.246", "94.73.144.9", "185.50.196.126", "1.1.1.1")
	for _, c := range clients {
		t.Run(c.name+"/wrong key", func(t *testing.T) {
			srv := c.start(t, fakeprovider.Options{Key: "the-right-key", Listings: listings})
			got, v := vetOne(t, c.new(serviceConfig(srv.URL, c.env)), Options{Workers: 4}, four)
			for addr, vd := range got {
				if vd.Status != Unknown || !strings.Contains(vd.Reason, c.env) || !strings.Contains(vd.Reason, "401") {
					t.Errorf("verdict(%s) = %s %q, want unknown naming %s and the 401", addr, vd.Status, vd.Reason, c.env)
				}
			}
			if srv.Count() != 1 {
				t.Errorf("requests = %d, want 1: a 401 is neither retried nor repeated", srv.Count())
			}
			// The stats name the provider; the reason does not repeat it.
			if st := v.Stats()[0]; strings.HasPrefix(st.Stopped, c.name+":") || !strings.Contains(st.Stopped, c.env) {
				t.Errorf("Stopped = %q, want it to name %s, and not start with %s", st.Stopped, c.env, c.name)
			}
		})
		t.Run(c.name+"/5xx then success", func(t *testing.T) {
			srv := c.start(t, fakeprovider.Options{Key: testKey, Listings: listings, Fail: 2})
			got, _ := vetOne(t, c.new(serviceConfig(srv.URL, c.env)), Options{}, four[:1])
			if got["85.25.199.246"].Status != Malicious {
				t.Errorf("verdict = %+v, want malicious after two retries", got["85.25.199.246"])
			}
			if srv.Count() != 3 {
				t.Errorf("requests = %d, want 3", srv.Count())
			}
		})
		t.Run(c.name+"/5xx beyond the retries", func(t *testing.T) {
			srv := c.start(t, fakeprovider.Options{Key: testKey, Listings: listings, Fail: 10})
			got, v := vetOne(t, c.new(serviceConfig(srv.URL, c.env)), Options{}, four[:1])
			if vd := got["85.25.199.246"]; vd.Status != Unknown || !strings.Contains(vd.Reason, "HTTP 5") {
				t.Errorf("verdict = %s %q, want unknown with the HTTP status", vd.Status, vd.Reason)
			}
			if srv.Count() != 3 || v.Stats()[0].Errors != 1 {
				t.Errorf("requests = %d, errors = %d, want 3 attempts and 1 error", srv.Count(), v.Stats()[0].Errors)
			}
		})
		t.Run(c.name+"/429 with Retry-After", func(t *testing.T) {
			srv := c.start(t, fakeprovider.Options{Key: testKey, Listings: listings, Throttle: 1, RetryAfter: 1})
			start := time.Now()
			got, _ := vetOne(t, c.new(serviceConfig(srv.URL, c.env)), Options{}, four[:1])
			if got["85.25.199.246"].Status != Malicious {
				t.Errorf("verdict = %+v, want malicious after the throttle", got["85.25.199.246"])
			}
			if srv.Count() != 2 {
				t.Errorf("requests = %d, want 2", srv.Count())
			}
			if d := time.Since(start); d < 900*time.Millisecond {
				t.Errorf("retried after %s, want Retry-After's 1s honoured", d)
			}
		})
		t.Run(c.name+"/quota spent part-way", func(t *testing.T) {
			srv := c.start(t, fakeprovider.Options{Key: testKey, Listings: listings, Quota: 2, QuotaReset: time.Hour})
			cfg := serviceConfig(srv.URL, c.env)
			cfg.BatchSize = 1 // MetaDefender counts addresses: ask one at a time
			// VirusTotal's quota error may be its minute quota, waited out within the
			// patience; a patience shorter than that minute stops it at once.
			got, v := vetOne(t, c.new(cfg), Options{Workers: 1, Patience: 10 * time.Second}, four)
			counts := map[Status]int{}
			for _, vd := range got {
				counts[vd.Status]++
			}
			if counts[Unknown] != 2 {
				t.Errorf("verdicts = %v, want 2 answered, then 2 unknown", counts)
			}
			st := v.Stats()[0]
			if !strings.Contains(strings.ToLower(st.Stopped), "quota") {
				t.Errorf("Stopped = %q, want the quota named", st.Stopped)
			}
			if srv.Count() > 3 {
				t.Errorf("requests = %d, want no more than one refused request after the quota", srv.Count())
			}
		})
		t.Run(c.name+"/malformed body", func(t *testing.T) {
			srv := c.start(t, fakeprovider.Options{Key: testKey, Listings: listings, Malformed: true})
			got, _ := vetOne(t, c.new(serviceConfig(srv.URL, c.env)), Options{}, four[:2])
			for addr, vd := range got {
				if vd.Status != Unknown || !strings.Contains(vd.Reason, "malformed") {
					t.Errorf("verdict(%s) = %s %q, want unknown: malformed reply", addr, vd.Status, vd.Reason)
				}
			}
		})
		t.Run(c.name+"/slower than the timeout", func(t *testing.T) {
			srv := c.start(t, fakeprovider.Options{Key: testKey, Listings: listings, Delay: 2 * time.Second})
			cfg := serviceConfig(srv.URL, c.env)
			cfg.Timeout = 100 * time.Millisecond
			p := c.new(cfg)
			pol := testPolicy
			pol.Retries = 1
			got, _ := vetOne(t, p, Options{Policies: map[string]Policy{p.Name(): pol}}, four[:1])
			if vd := got["85.25.199.246"]; vd.Status != Unknown || !strings.Contains(vd.Reason, "Timeout") {
				t.Errorf("verdict = %s %q, want unknown with the timeout", vd.Status, vd.Reason)
			}
		})
	}
}

func TestQuotaHeaders(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		header map[string]string
		want   Quota
	}{
		{map[string]string{"X-RateLimit-Remaining": "3999", "X-RateLimit-Reset-In": "86400s"}, Quota{Known: true, Remaining: 3999, Reset: now.Add(24 * time.Hour)}},
		{map[string]string{"x-ratelimit-remaining": "0", "x-ratelimit-reset-in": "3600"}, Quota{Known: true, Remaining: 0, Reset: now.Add(time.Hour)}},
		{map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1795867200"}, Quota{Known: true, Remaining: 0, Reset: time.Unix(1795867200, 0)}},
		// AbuseIPDB's own example: Retry-After with a reset epoch from 2018. The past is
		// never waited for; Retry-After is.
		{map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1545973200", "Retry-After": "29241"}, Quota{Known: true, Remaining: 0, Reset: now.Add(29241 * time.Second)}},
		{map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1545973200"}, Quota{Known: true, Remaining: 0}},
		{map[string]string{"Retry-After": "30"}, Quota{Reset: now.Add(30 * time.Second)}},
		{map[string]string{"Retry-After": "Sat, 21 Nov 2026 12:01:00 GMT"}, Quota{Reset: now.Add(time.Minute)}},
		{map[string]string{"Retry-After": "Sat, 21 Nov 2026 11:59:00 GMT"}, Quota{}},
		// Absurd values are capped, never overflowed into the past.
		{map[string]string{"Retry-After": "1e12"}, Quota{Reset: now.Add(maxWait)}},
		{map[string]string{"X-RateLimit-Reset-In": "99999999999999999999s"}, Quota{Reset: now.Add(maxWait)}},
		{map[string]string{"X-RateLimit-Reset": "9223372036854775807"}, Quota{Reset: now.Add(maxWait)}},
		{map[string]string{"X-RateLimit-Remaining": "many", "Retry-After": "soon"}, Quota{}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.header), func(t *testing.T) {
			h := make(map[string][]string)
			for k, v := range tc.header {
				h[http.CanonicalHeaderKey(k)] = []string{v}
			}
			if got := quotaOf(h, now); got.Known != tc.want.Known || got.Remaining != tc.want.Remaining || !got.Reset.Equal(tc.want.Reset) {
				t.Errorf("quotaOf(%v) = %+v, want %+v", tc.header, got, tc.want)
			}
		})
	}
}

func TestMetaDefenderMessage(t *testing.T) {
	tests := []struct{ body, want string }{
		{`{"error":{"code":401006,"messages":["Invalid API key"]}}`, "Invalid API key (401006)"},
		{`{"error":{"name":"ClientError","messages":"Your request has been throttled","code":429001,"status":429}}`, "Your request has been throttled (429001)"},
		{`401 Invalid API key`, "401 Invalid API key"},
	}
	for _, tc := range tests {
		if got := metaDefenderMessage([]byte(tc.body)); got != tc.want {
			t.Errorf("metaDefenderMessage(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

func TestErrorsNeverCarryTheKey(t *testing.T) {
	errs := []error{
		&AuthError{Provider: "metadefender", KeyEnv: "MDCLOUD_APIKEY", Status: 401},
		redact(errors.New("Get https://x/?apikey="+testKey+": refused"), testKey),
	}
	for _, err := range errs {
		if strings.Contains(err.Error(), testKey) {
			t.Errorf("error %q contains the key", err)
		}
	}
	// A key too short to be a real one is not looked for: it would mangle ordinary words.
	if got := redact(errors.New("dial tcp: lookup api.example"), "k"); got.Error() != "dial tcp: lookup api.example" {
		t.Errorf("redact with a one-letter key = %q, want the message unchanged", got)
	}
	if got := oneLine("bad key "+testKey+"\n\x1b[31m", testKey); strings.Contains(got, testKey) || strings.ContainsAny(got, "\n\x1b") {
		t.Errorf("oneLine = %q, want no key and no control characters", got)
	}
}

// TestStatusErrors checks how each service's unsuccessful replies are read: what stops the
// provider, what is a spent quota and what is throttling.
func TestStatusErrors(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	cfg := ServiceConfig{BaseURL: "http://127.0.0.1:1", Key: testKey, Now: func() time.Time { return now }}
	services := map[string]*service{
		"metadefender": NewMetaDefender(cfg).svc,
		"abuseipdb":    NewAbuseIPDB(cfg, AbuseIPDBConfig{}).svc,
		"virustotal":   NewVirusTotal(cfg, VirusTotalThresholds{}).svc,
		"greynoise":    NewGreyNoise(cfg).svc,
	}
	const (
		auth     = "auth"
		blocked  = "blocked"
		spent    = "spent"
		throttle = "throttle"
		status   = "status"
	)
	tests := []struct {
		service string
		status  int
		header  map[string]string
		body    string
		want    string
		wait    time.Duration // throttle: the wait asked; spent: until the reset
	}{
		{"metadefender", 401, nil, `{"error":{"code":401006,"messages":["Invalid API key"]}}`, auth, 0},
		{"metadefender", 403, nil, `{"success":false,"error":{"code":403002,"messages":["Your ip is blocked because of abuse"]}}`, blocked, 0},
		{"metadefender", 429, map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-In": "3600s"}, `{"error":{"code":429000,"messages":["API key limit exceeded; retry after the limit is reset"]}}`, spent, time.Hour},
		// Throttling carries the day's counter in X-RateLimit-Reset-In: it is not a reset.
		{"metadefender", 429, map[string]string{"X-RateLimit-Remaining": "3000", "X-RateLimit-Reset-In": "86400s"}, `{"error":{"name":"ClientError","messages":"Your request has been throttled, maximum requests per hour: 9 for free users","code":429001,"status":429}}`, throttle, 0},
		{"metadefender", 429, map[string]string{"Retry-After": "7"}, `{"error":{"code":429002,"messages":["Too many connections"]}}`, throttle, 7 * time.Second},
		{"metadefender", 503, nil, `{"error":{"code":503000,"messages":["External service is not reachable"]}}`, status, 0},
		{"abuseipdb", 401, nil, `{"errors":[{"detail":"Authentication failed.","status":401}]}`, auth, 0},
		{"abuseipdb", 429, map[string]string{"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1545973200", "Retry-After": "29241"}, `{"errors":[{"detail":"Daily rate limit of 1000 requests exceeded for this endpoint. See headers for additional details.","status":429}]}`, spent, 29241 * time.Second},
		{"abuseipdb", 429, map[string]string{"X-RateLimit-Remaining": "40", "Retry-After": "1"}, `{"errors":[{"detail":"Too Many Requests","status":429}]}`, throttle, time.Second},
		{"abuseipdb", 422, nil, `{"errors":[{"detail":"The max age in days must be between 1 and 365.","status":422}]}`, status, 0},
		{"virustotal", 401, nil, `{"error":{"code":"WrongCredentialsError","message":"Wrong API key"}}`, auth, 0},
		{"virustotal", 429, nil, `{"error":{"code":"TooManyRequestsError","message":"Too many requests"}}`, throttle, 0},
		{"virustotal", 429, nil, `{"error":{"code":"QuotaExceededError","message":"Quota exceeded"}}`, throttle, time.Minute},
		{"greynoise", 429, nil, `{"plan":"unauthenticated","rate-limit":"100-lookups/day","plan_url":"https://greynoise.io/pricing","message":"You have hit your daily rate limit of 100 requests per day."}`, spent, 0},
		{"greynoise", 429, map[string]string{"Retry-After": "2"}, `{"message":"slow down"}`, throttle, 2 * time.Second},
		{"greynoise", 500, nil, `{"message":"Encountered error while performing request"}`, status, 0},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %d %s", tc.service, tc.status, tc.body), func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.header {
				h.Set(k, v)
			}
			err := services[tc.service].statusError(&reply{status: tc.status, header: h, body: []byte(tc.body)})
			var (
				a  *AuthError
				q  *QuotaError
				th *ThrottleError
				st *StatusError
			)
			got := ""
			var wait time.Duration
			switch {
			case errors.As(err, &a) && a.AddressBlocked:
				got = blocked
			case errors.As(err, &a):
				got = auth
			case errors.As(err, &q):
				got = spent
				if !q.Reset.IsZero() {
					wait = q.Reset.Sub(now)
				}
			case errors.As(err, &th):
				got, wait = throttle, th.Wait
			case errors.As(err, &st):
				got = status
			}
			if got != tc.want || wait != tc.wait {
				t.Errorf("statusError = %T %v (wait %s), want %s (wait %s)", err, err, wait, tc.want, tc.wait)
			}
			if got == blocked && strings.Contains(err.Error(), "check") {
				t.Errorf("statusError = %q, want no advice to check the key: the address is blocked", err)
			}
		})
	}
}
