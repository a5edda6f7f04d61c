package reputation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sgvet/sgvet/internal/fakeprovider"
)

// The tests in this file put every client through the replies a service gives on a bad
// day: redirects, refused keys, services that cannot be reached or do not answer, replies
// about other addresses, replies that say nothing, quotas and throttling with odd headers,
// oversized and trickling bodies, and keys echoed back. They assert by counting requests,
// never by timing them.

// basePaths are the API roots of the services, under a test server's URL.
var basePaths = map[string]string{
	"metadefender": "/v4",
	"abuseipdb":    "/api/v2",
	"virustotal":   "/api/v3",
	"greynoise":    "",
}

// at returns the client's configuration for a recorder standing in for its service.
func (c client) at(srv *recorder) ServiceConfig {
	return serviceConfig(srv.url+basePaths[c.name], c.env)
}

// clientNamed returns the entry of clients for a provider.
func clientNamed(t *testing.T, name string) client {
	t.Helper()
	for _, c := range clients {
		if c.name == name {
			return c
		}
	}
	t.Fatalf("no client %q", name)
	return client{}
}

// recorded is one request a recorder received.
type recorded struct {
	method string
	uri    string
	header http.Header
	body   []byte
}

// replyFunc answers a request whose body has already been read.
type replyFunc func(w http.ResponseWriter, r *http.Request, body []byte)

// recorder is a loopback HTTP server that records every connection and request it receives
// before answering with its replyFunc.
type recorder struct {
	url  string // base URL: scheme://host:port
	addr string // host:port

	mu    sync.Mutex
	conns int
	reqs  []recorded
}

func newRecorder(t *testing.T, reply replyFunc) *recorder { return startRecorder(t, reply, false) }

func newTLSRecorder(t *testing.T, reply replyFunc) *recorder { return startRecorder(t, reply, true) }

func startRecorder(t *testing.T, reply replyFunc, withTLS bool) *recorder {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, recorded{method: r.Method, uri: r.URL.RequestURI(), header: r.Header.Clone(), body: body})
		rec.mu.Unlock()
		if reply != nil {
			reply(w, r, body)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			rec.mu.Lock()
			rec.conns++
			rec.mu.Unlock()
		}
	}
	// Failed TLS handshakes and aborted replies are expected here.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if withTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	rec.url = srv.URL
	rec.addr = srv.Listener.Addr().String()
	return rec
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.reqs)
}

func (rec *recorder) connections() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.conns
}

func (rec *recorder) requests() []recorded {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]recorded(nil), rec.reqs...)
}

// writeReply writes a reply with headers set under exactly the names given.
func writeReply(w http.ResponseWriter, status int, header map[string]string, body string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	for k, v := range header {
		h[k] = []string{v}
	}
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// askedAddrs returns what a request asks about: the addresses of a MetaDefender bulk body,
// AbuseIPDB's ipAddress or network, or the last element of the path.
func askedAddrs(r *http.Request, body []byte) (addrs []string, bulk bool) {
	if r.Method == http.MethodPost {
		var req struct {
			Address []string `json:"address"`
		}
		_ = json.Unmarshal(body, &req)
		return req.Address, true
	}
	q := r.URL.Query()
	switch {
	case q.Get("ipAddress") != "":
		return []string{q.Get("ipAddress")}, false
	case q.Get("network") != "":
		return []string{q.Get("network")}, false
	}
	return []string{path.Base(r.URL.Path)}, false
}

// answering replies 200 with record's answer about each address asked; a MetaDefender bulk
// gets {"data":[...]}.
func answering(record func(addr string) string) replyFunc {
	return func(w http.ResponseWriter, r *http.Request, body []byte) {
		addrs, bulk := askedAddrs(r, body)
		if !bulk {
			writeReply(w, http.StatusOK, nil, record(addrs[0]))
			return
		}
		recs := make([]string, len(addrs))
		for i, a := range addrs {
			recs[i] = record(a)
		}
		writeReply(w, http.StatusOK, nil, `{"data":[`+strings.Join(recs, ",")+`]}`)
	}
}

const mdCleanSources = `[{"provider":"webroot.com","assessment":"","detect_time":"","update_time":"2024-05-01T07:00:00.000000Z","status":5},` +
	`{"provider":"spamhaus.org","assessment":"","detect_time":"","update_time":"2024-05-01T07:00:00.000000Z","status":0}]`

func mdRecord(addr, sources string) string {
	return fmt.Sprintf(`{"address":%q,"lookup_results":{"start_time":"2024-05-01T10:00:00.000Z","detected_by":0,"sources":%s},`+
		`"geo_info":{"country":{"code":"NL","name":"Netherlands"}}}`, addr, sources)
}

func abuseRecord(addr string, confidence int) string {
	return fmt.Sprintf(`{"data":{"ipAddress":%q,"isPublic":true,"ipVersion":4,"isWhitelisted":null,"abuseConfidenceScore":%d,`+
		`"countryCode":"NL","usageType":"Data Center/Web Hosting/Transit","isp":"Example Hosting LLC","domain":"example-hosting.test",`+
		`"hostnames":[],"isTor":false,"totalReports":0,"numDistinctUsers":0,"lastReportedAt":null}}`, addr, confidence)
}

func vtStats(harmless, malicious, suspicious, undetected, timeout int) string {
	return fmt.Sprintf(`{"harmless":%d,"malicious":%d,"suspicious":%d,"undetected":%d,"timeout":%d}`,
		harmless, malicious, suspicious, undetected, timeout)
}

func vtRecord(id, stats string, reputation int) string {
	return fmt.Sprintf(`{"data":{"id":%q,"type":"ip_address","links":{"self":"https://www.virustotal.com/api/v3/ip_addresses/%s"},`+
		`"attributes":{"as_owner":"EXAMPLE-AS","asn":64500,"country":"NL","network":"85.25.0.0/16","last_analysis_stats":%s,`+
		`"last_analysis_results":{},"reputation":%d,"tags":[]}}}`, id, id, stats, reputation)
}

func gnRecord(ip, classification string) string {
	return fmt.Sprintf(`{"ip":%q,"noise":true,"riot":false,"classification":%q,"name":"unknown",`+
		`"link":"https://viz.greynoise.io/ip/%s","last_seen":"2024-04-29","message":"Success"}`, ip, classification, ip)
}

// cleanRecord is a provider's 200 record saying addr is clean.
func cleanRecord(provider string) func(addr string) string {
	switch provider {
	case "metadefender":
		return func(a string) string { return mdRecord(a, mdCleanSources) }
	case "abuseipdb":
		return func(a string) string { return abuseRecord(a, 0) }
	case "virustotal":
		return func(a string) string { return vtRecord(a, vtStats(60, 0, 0, 30, 0), 0) }
	}
	return func(a string) string {
		return fmt.Sprintf(`{"ip":%q,"noise":false,"riot":true,"classification":"benign","name":"Example Public DNS",`+
			`"link":"https://viz.greynoise.io/riot/%s","last_seen":"2024-04-30","message":"Success"}`, a, a)
	}
}

// throttleBodies are each service's 429 bodies that ask to slow down without saying that
// the quota is spent.
var throttleBodies = map[string]string{
	"metadefender": `{"error":{"name":"ClientError","messages":"Your request has been throttled, maximum requests per hour: 9 for free users","code":429001,"status":429}}`,
	"abuseipdb":    `{"errors":[{"detail":"Too Many Attempts.","status":429}]}`,
	"virustotal":   `{"error":{"code":"TooManyRequestsError","message":"Too many requests"}}`,
	"greynoise":    `{"message":"Too many requests"}`,
}

// unknownWith checks that every target got an Unknown verdict from the provider at index
// provider, with a reason containing each of parts.
func unknownWith(t *testing.T, results []Result, provider int, parts ...string) {
	t.Helper()
	bad := 0
	for _, r := range results {
		vd := r.Verdicts[provider]
		// The verdict names its provider; the reason does not repeat it.
		ok := vd.Status == Unknown && vd.Reason != "" && !strings.HasPrefix(vd.Reason, vd.Provider+":")
		for _, p := range parts {
			ok = ok && strings.Contains(vd.Reason, p)
		}
		if !ok {
			bad++
			if bad <= 3 {
				t.Errorf("verdict(%s) = %s %q, want unknown with a reason containing %q", r.Target, vd.Status, vd.Reason, parts)
			}
		}
	}
	if bad > 3 {
		t.Errorf("... and %d more such verdicts", bad-3)
	}
}

// vetAll vets targets with p alone, under testPolicy unless opts has policies, and fails
// the test on an error.
func vetAll(t *testing.T, p Provider, opts Options, ts []Target) ([]Result, *Vetter) {
	t.Helper()
	if opts.Policies == nil {
		opts.Policies = map[string]Policy{p.Name(): testPolicy}
	}
	v := NewVetter([]Provider{p}, opts)
	results, err := v.Vet(t.Context(), ts)
	if err != nil {
		t.Fatalf("Vet: %v", err)
	}
	if len(results) != len(ts) {
		t.Fatalf("Vet returned %d results, want %d", len(results), len(ts))
	}
	return results, v
}

// TestRedirectToAnotherHost checks that a redirect to another host is never followed: the
// other host receives nothing, one request reaches the service in the whole run, every
// verdict is Unknown naming where the redirect pointed, and the provider stops.
func TestRedirectToAnotherHost(t *testing.T) {
	type route struct {
		name   string
		client string
		batch  int
		method string
	}
	routes := []route{
		{"metadefender GET", "metadefender", 1, http.MethodGet},
		{"metadefender bulk POST", "metadefender", 0, http.MethodPost},
		{"abuseipdb", "abuseipdb", 0, http.MethodGet},
		{"virustotal", "virustotal", 0, http.MethodGet},
		{"greynoise", "greynoise", 0, http.MethodGet},
	}
	for _, rt := range routes {
		for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
			t.Run(fmt.Sprintf("%s %d", rt.name, code), func(t *testing.T) {
				c := clientNamed(t, rt.client)
				elsewhere := newRecorder(t, answering(cleanRecord(c.name)))
				srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
					w.Header().Set("Location", elsewhere.url+r.URL.RequestURI())
					w.WriteHeader(code)
				})
				cfg := c.at(srv)
				cfg.BatchSize = rt.batch
				results, v := vetAll(t, c.new(cfg), Options{Workers: 4}, addrs(200))

				if n, conns := elsewhere.count(), elsewhere.connections(); n != 0 || conns != 0 {
					t.Errorf("the redirect's host received %d requests on %d connections, want none: %+v", n, conns, elsewhere.requests())
				}
				if n := srv.count(); n != 1 {
					t.Errorf("Vet(200 addresses) sent %d requests, want 1", n)
				}
				if reqs := srv.requests(); len(reqs) > 0 && reqs[0].method != rt.method {
					t.Errorf("request = %s %s, want %s", reqs[0].method, reqs[0].uri, rt.method)
				}
				unknownWith(t, results, 0, elsewhere.addr)
				if st := v.Stats()[0]; !strings.Contains(st.Stopped, elsewhere.addr) {
					t.Errorf("Stats().Stopped = %q, want the provider stopped naming %s", st.Stopped, elsewhere.addr)
				}
			})
		}
	}
}

// TestRedirectWithinTheService checks that a redirect to another path of the same host is
// followed, with the method and body kept where the status says so.
func TestRedirectWithinTheService(t *testing.T) {
	type route struct {
		name   string
		client string
		batch  int
		n      int // addresses asked
		code   int
	}
	var routes []route
	for _, c := range clients {
		for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect} {
			routes = append(routes, route{fmt.Sprintf("%s GET %d", c.name, code), c.name, 1, 1, code})
		}
	}
	// A 301 or 302 turns a POST into a GET without a body; only 307 and 308 keep a bulk.
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		routes = append(routes, route{fmt.Sprintf("metadefender bulk POST %d", code), "metadefender", 0, 3, code})
	}
	for _, rt := range routes {
		t.Run(rt.name, func(t *testing.T) {
			c := clientNamed(t, rt.client)
			answer := answering(cleanRecord(c.name))
			srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
				if strings.HasPrefix(r.URL.Path, "/moved/") {
					answer(w, r, body)
					return
				}
				w.Header().Set("Location", "/moved"+r.URL.RequestURI())
				w.WriteHeader(rt.code)
			})
			cfg := c.at(srv)
			cfg.BatchSize = rt.batch
			results, v := vetAll(t, c.new(cfg), Options{Workers: 4}, addrs(rt.n))
			for _, r := range results {
				if vd := r.Verdicts[0]; vd.Status != Clean {
					t.Errorf("verdict(%s) = %s %q, want clean: a redirect within the service is followed", r.Target, vd.Status, vd.Reason)
				}
			}
			reqs := srv.requests()
			if len(reqs) != 2 {
				t.Fatalf("requests = %d, want the redirect and the request it named", len(reqs))
			}
			if !strings.HasPrefix(reqs[1].uri, "/moved/") || reqs[1].method != reqs[0].method || !bytes.Equal(reqs[1].body, reqs[0].body) {
				t.Errorf("redirected request = %s %s %q, want %s /moved%s %q", reqs[1].method, reqs[1].uri, reqs[1].body, reqs[0].method, reqs[0].uri, reqs[0].body)
			}
			if st := v.Stats()[0]; st.Stopped != "" {
				t.Errorf("Stats().Stopped = %q, want the provider still running", st.Stopped)
			}
		})
	}
}

// TestWrongKeyCostsOneRequest checks that a refused key costs one request in a whole run of
// many addresses and workers.
func TestWrongKeyCostsOneRequest(t *testing.T) {
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			srv := c.start(t, fakeprovider.Options{Key: "the-right-key"})
			results, v := vetAll(t, c.new(serviceConfig(srv.URL, c.env)), Options{Workers: 4}, addrs(200))
			if n := srv.Count(); n != 1 {
				t.Errorf("Vet(200 addresses) with a wrong key sent %d requests, want 1", n)
			}
			unknownWith(t, results, 0, "401", c.env)
			if st := v.Stats()[0]; !strings.Contains(st.Stopped, c.env) || strings.HasPrefix(st.Stopped, c.name+":") {
				t.Errorf("Stats().Stopped = %q, want the provider stopped naming %s, without its own name in front", st.Stopped, c.env)
			}
		})
	}
}

// TestMetaDefenderAddressBlocked checks MetaDefender's 403002: the caller's address is
// blocked, so the reason says so rather than blaming the key.
func TestMetaDefenderAddressBlocked(t *testing.T) {
	srv := newRecorder(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		writeReply(w, http.StatusForbidden, nil, `{"success":false,"error":{"code":403002,"messages":["Your ip is blocked because of abuse"]}}`)
	})
	results, v := vetAll(t, NewMetaDefender(serviceConfig(srv.url+"/v4", "MDCLOUD_APIKEY")), Options{Workers: 4}, addrs(200))
	if n := srv.count(); n != 1 {
		t.Errorf("Vet(200 addresses) sent %d requests, want 1", n)
	}
	unknownWith(t, results, 0, "IP address", "blocked")
	for _, r := range results[:1] {
		if reason := r.Verdicts[0].Reason; strings.Contains(reason, "MDCLOUD_APIKEY") || strings.Contains(reason, "check") {
			t.Errorf("Reason = %q, want no advice to check MDCLOUD_APIKEY: the address is blocked, not the key", reason)
		}
	}
	if st := v.Stats()[0]; st.Stopped == "" {
		t.Errorf("Stats().Stopped is empty, want the provider stopped")
	}
}

// countingDialer dials with dial and counts every attempt.
type countingDialer struct {
	dials atomic.Int32
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (d *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d.dials.Add(1)
	return d.dial(ctx, network, addr)
}

// transport is an HTTP transport that dials only through d and uses no proxy.
func (d *countingDialer) transport() *http.Transport {
	return &http.Transport{DialContext: d.DialContext, Proxy: nil}
}

// TestUnreachable checks that a service that cannot be reached costs one attempt in the
// whole run, whatever the retries, and that another provider still answers everything.
func TestUnreachable(t *testing.T) {
	type setup func(t *testing.T, base string) (url string, d *countingDialer)
	tests := []struct {
		name  string
		setup setup
	}{
		{"name does not resolve", func(_ *testing.T, base string) (string, *countingDialer) {
			d := &countingDialer{dial: func(_ context.Context, _, addr string) (net.Conn, error) {
				host, _, _ := net.SplitHostPort(addr)
				return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
			}}
			return "http://api.sgvet.invalid" + base, d
		}},
		{"connection refused", func(t *testing.T, base string) (string, *countingDialer) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			l.Close()
			return "http://" + addr + base, &countingDialer{dial: (&net.Dialer{}).DialContext}
		}},
		{"certificate not trusted", func(t *testing.T, base string) (string, *countingDialer) {
			srv := newTLSRecorder(t, nil)
			t.Cleanup(func() {
				if n := srv.count(); n != 0 {
					t.Errorf("the untrusted server received %d requests, want none", n)
				}
			})
			return srv.url + base, &countingDialer{dial: (&net.Dialer{}).DialContext}
		}},
	}
	for _, c := range clients {
		for _, tc := range tests {
			t.Run(c.name+"/"+tc.name, func(t *testing.T) {
				url, d := tc.setup(t, basePaths[c.name])
				cfg := serviceConfig(url, c.env)
				cfg.Transport = d.transport()
				p := c.new(cfg)
				other := &scripted{name: "other", batch: 1}
				v := NewVetter([]Provider{p, other}, Options{Workers: 4, Policies: map[string]Policy{p.Name(): testPolicy}})
				results, err := v.Vet(t.Context(), addrs(200))
				if err != nil {
					t.Fatalf("Vet: %v", err)
				}
				if n := d.dials.Load(); n != 1 {
					t.Errorf("Vet(200 addresses) dialled %d times, want 1", n)
				}
				unknownWith(t, results, 0, "cannot be reached")
				if st := v.Stats()[0]; !strings.Contains(st.Stopped, "cannot be reached") {
					t.Errorf("Stats().Stopped = %q, want the provider stopped as unreachable", st.Stopped)
				}
				if got := statuses(results, 1); got[Clean] != 200 {
					t.Errorf("other provider's statuses = %v, want 200 clean", got)
				}
				for _, r := range results[:1] {
					if strings.Contains(r.Verdicts[0].Reason, testKey) {
						t.Errorf("Reason = %q contains the key", r.Verdicts[0].Reason)
					}
				}
			})
		}
	}
}

// TestSilentServiceCostsRetriesOncePerRun checks that a service that accepts requests and
// never answers is sent max(Retries, 1) requests in the whole run, not per batch.
func TestSilentServiceCostsRetriesOncePerRun(t *testing.T) {
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			srv := newRecorder(t, func(_ http.ResponseWriter, r *http.Request, _ []byte) {
				select {
				case <-r.Context().Done():
				case <-t.Context().Done():
				}
			})
			cfg := c.at(srv)
			cfg.Timeout = 100 * time.Millisecond // the server never answers
			p := c.new(cfg)
			pol := Policy{Retries: 3, RetryWait: 10 * time.Millisecond}
			results, v := vetAll(t, p, Options{Workers: 4, Policies: map[string]Policy{p.Name(): pol}}, addrs(200))
			// Counted by the client: under load, a request can time out before the server
			// has seen it.
			if n := v.Stats()[0].Lookups; n != max(pol.Retries, 1) || srv.count() > n {
				t.Errorf("Vet(200 addresses) sent %d requests (%d seen), want %d", n, srv.count(), max(pol.Retries, 1))
			}
			unknownWith(t, results, 0, "Timeout")
			if st := v.Stats()[0]; st.Stopped == "" {
				t.Errorf("Stats().Stopped is empty, want the provider stopped")
			}
		})
	}
}

// foreign is the documentation range that replies about other addresses name; no target
// of these tests lies in it.
const foreign = "198.51.100."

// TestRepliesAboutAnotherAddress checks that a reply about another address than the one
// asked answers nothing, and that the other address reaches no verdict.
func TestRepliesAboutAnotherAddress(t *testing.T) {
	checkBlock := func(network, reported string) replyFunc {
		return func(w http.ResponseWriter, _ *http.Request, _ []byte) {
			writeReply(w, http.StatusOK, nil, fmt.Sprintf(`{"data":{"networkAddress":%q,"netmask":"255.255.255.0",`+
				`"minAddress":"85.25.199.1","maxAddress":"85.25.199.254","numPossibleHosts":254,"addressSpaceDesc":"Internet",`+
				`"reportedAddress":[{"ipAddress":"85.25.199.7","numReports":1,"mostRecentReport":"2024-04-30T22:01:09+00:00","abuseConfidenceScore":0,"countryCode":"DE"},`+
				`{"ipAddress":%q,"numReports":12,"mostRecentReport":"2024-04-30T22:01:09+00:00","abuseConfidenceScore":100,"countryCode":"RU"}]}}`,
				network, reported))
		}
	}
	listed := `[{"provider":"spamhaus.org","assessment":"botnet","detect_time":"2024-04-29T08:00:00.000000Z","update_time":"2024-05-01T07:00:00.000000Z","status":1}]`
	tests := []struct {
		name    string
		client  string
		batch   int
		targets []Target
		reply   replyFunc
		// answered are targets the reply did answer for.
		answered []string
	}{
		{"abuseipdb check ipAddress", "abuseipdb", 0, addrs(3),
			answering(func(string) string { return abuseRecord(foreign+"77", 100) }), nil},
		{"metadefender GET address", "metadefender", 1, addrs(3),
			answering(func(string) string { return mdRecord(foreign+"77", listed) }), nil},
		{"metadefender bulk addresses not asked", "metadefender", 0, addrs(3),
			func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				writeReply(w, http.StatusOK, nil, `{"data":[`+mdRecord(foreign+"77", listed)+`,`+mdRecord(foreign+"78", listed)+`,`+mdRecord(foreign+"79", listed)+`]}`)
			}, nil},
		{"metadefender bulk one address not asked", "metadefender", 0, addrs(3),
			func(w http.ResponseWriter, r *http.Request, body []byte) {
				asked, _ := askedAddrs(r, body)
				recs := []string{mdRecord(foreign+"77", listed)}
				for _, a := range asked[1:] {
					recs = append(recs, mdRecord(a, mdCleanSources))
				}
				writeReply(w, http.StatusOK, nil, `{"data":[`+strings.Join(recs, ",")+`]}`)
			}, []string{"85.25.0.1", "85.25.0.2"}},
		{"abuseipdb check-block reportedAddress outside", "abuseipdb", 0, targets("85.25.199.0/24"),
			checkBlock("85.25.199.0", foreign+"77"), nil},
		{"abuseipdb check-block networkAddress", "abuseipdb", 0, targets("85.25.199.0/24"),
			checkBlock(foreign+"0", foreign+"77"), nil},
		{"greynoise ip", "greynoise", 0, addrs(3),
			answering(func(string) string { return gnRecord(foreign+"77", "malicious") }), nil},
		{"virustotal data.id", "virustotal", 0, addrs(3),
			answering(func(string) string { return vtRecord(foreign+"77", vtStats(50, 30, 2, 12, 0), -40) }), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := clientNamed(t, tc.client)
			srv := newRecorder(t, tc.reply)
			cfg := c.at(srv)
			cfg.BatchSize = tc.batch
			results, _ := vetAll(t, c.new(cfg), Options{Workers: 4}, tc.targets)
			if srv.count() == 0 {
				t.Fatalf("no request was sent")
			}
			for _, r := range results {
				vd := r.Verdicts[0]
				switch answered := contains(strings.Join(tc.answered, ","), r.Target.String()); {
				case answered && vd.Status != Clean:
					t.Errorf("verdict(%s) = %s %q, want clean: the reply answered for it", r.Target, vd.Status, vd.Reason)
				case !answered && (vd.Status != Unknown || vd.Reason == ""):
					t.Errorf("verdict(%s) = %s (%s), want unknown with a reason", r.Target, vd.Status, vd.Evidence)
				}
				if text := vd.Evidence + " " + vd.Reason + " " + strings.Join(vd.Categories, " ") + " " + vd.Country; strings.Contains(text, foreign) {
					t.Errorf("verdict(%s) = %q, want nothing about the other address", r.Target, text)
				}
			}
		})
	}
}

// TestNoAnswerIsNeverClean checks that replies which say nothing about an address are
// Unknown, and that nothing of them is cached: a second run asks again.
func TestNoAnswerIsNeverClean(t *testing.T) {
	fixed := func(body string) replyFunc {
		return func(w http.ResponseWriter, _ *http.Request, _ []byte) { writeReply(w, http.StatusOK, nil, body) }
	}
	tests := []struct {
		name    string
		client  string
		batch   int
		targets []Target
		reply   replyFunc
	}{
		{"metadefender bulk older shape", "metadefender", 0, addrs(3), answering(func(a string) string {
			return fmt.Sprintf(`{"success":true,"data":{"address":%q,"start_time":"2024-05-01T10:00:00.000Z","detected_by":0,`+
				`"scan_results":[{"source":"webroot.com","results":[{"alternativeid":"","assessment":"","confident":0,"detecttime":"","updatetime":"2024-05-01T07:00:00.000Z","result":"unknown"}]}]}}`, a)
		})},
		{"metadefender bulk older shape with address", "metadefender", 0, addrs(3), answering(func(a string) string {
			return fmt.Sprintf(`{"address":%q,"success":true,"data":{"address":%q,"detected_by":0,"scan_results":[]}}`, a, a)
		})},
		{"metadefender GET no sources", "metadefender", 1, addrs(2), answering(func(a string) string { return mdRecord(a, `[]`) })},
		{"metadefender bulk no sources", "metadefender", 0, addrs(3), answering(func(a string) string { return mdRecord(a, `[]`) })},
		{"metadefender bulk sources null", "metadefender", 0, addrs(3), answering(func(a string) string { return mdRecord(a, `null`) })},
		{"metadefender every source failed", "metadefender", 0, addrs(3), answering(func(a string) string {
			return mdRecord(a, `[{"provider":"webroot.com","assessment":"","detect_time":"","update_time":"","status":3}]`)
		})},
		{"virustotal stats all zero", "virustotal", 0, addrs(3), answering(func(a string) string { return vtRecord(a, vtStats(0, 0, 0, 0, 0), 0) })},
		{"virustotal no stats", "virustotal", 0, addrs(3), answering(func(a string) string {
			return fmt.Sprintf(`{"data":{"id":%q,"type":"ip_address","attributes":{"reputation":0}}}`, a)
		})},
		{"abuseipdb check data {}", "abuseipdb", 0, addrs(3), fixed(`{"data":{}}`)},
		{"abuseipdb check-block data {}", "abuseipdb", 0, targets("85.25.199.0/24", "85.25.200.0/24"), fixed(`{"data":{}}`)},
		{"abuseipdb check-block data []", "abuseipdb", 0, targets("85.25.199.0/24", "85.25.200.0/24"), fixed(`{"data":[]}`)},
		{"abuseipdb check-block data null", "abuseipdb", 0, targets("85.25.199.0/24", "85.25.200.0/24"), fixed(`{"data":null}`)},
		{"abuseipdb check-block no data", "abuseipdb", 0, targets("85.25.199.0/24", "85.25.200.0/24"), fixed(`{}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := clientNamed(t, tc.client)
			srv := newRecorder(t, tc.reply)
			cfg := c.at(srv)
			cfg.BatchSize = tc.batch
			p := c.new(cfg)
			cache := openTestCache(t, filepath.Join(t.TempDir(), "cache.db"))
			pol := testPolicy
			pol.CacheTTL = time.Hour
			opts := Options{Workers: 4, Cache: cache, Policies: map[string]Policy{p.Name(): pol}}

			results, _ := vetAll(t, p, opts, tc.targets)
			unknownWith(t, results, 0)
			first := srv.count()
			if first == 0 {
				t.Fatalf("no request was sent")
			}
			hits, err := cache.Get(t.Context(), p.Name(), tc.targets, time.Hour, time.Now())
			if err != nil || len(hits) != 0 {
				t.Errorf("Cache.Get = %v, %v, want nothing stored", hits, err)
			}
			results, _ = vetAll(t, p, opts, tc.targets)
			unknownWith(t, results, 0)
			if srv.count() == first {
				t.Errorf("a second run sent no request, want the service asked again")
			}
		})
	}
}

// raceWidener is a Vetter clock that holds its first call after the service's first reply
// until a further request reaches the service, or at most a moment. The Vetter reads its
// clock when it decides what a reply means (a pause, a stop); holding that call widens the
// moment between the reply and the decision, in which no other request may go out, so that
// a request sent in it shows in every run rather than in a few. With a Vetter that decides
// before it lets another request go, the clock holds nothing back but that moment.
type raceWidener struct {
	replied atomic.Bool // the service has been asked once
	held    atomic.Bool // the one call has been held
	next    chan struct{}
	once    sync.Once
}

func newRaceWidener() *raceWidener { return &raceWidener{next: make(chan struct{})} }

// request is called by the service for each request it receives, before it replies.
func (c *raceWidener) request() {
	if !c.replied.CompareAndSwap(false, true) {
		c.once.Do(func() { close(c.next) })
	}
}

func (c *raceWidener) now() time.Time {
	if c.replied.Load() && c.held.CompareAndSwap(false, true) {
		t := time.NewTimer(100 * time.Millisecond)
		defer t.Stop()
		select {
		case <-c.next:
		case <-t.C:
		}
	}
	return time.Now()
}

// abuseIPDBDailyLimit runs 20 addresses with 4 workers against AbuseIPDB's documented
// daily-limit 429, whose X-RateLimit-Reset lies in the past while Retry-After is hours
// ahead, and returns the results, the Vetter and the requests sent. With widen, the
// Vetter's clock is a raceWidener.
func abuseIPDBDailyLimit(t *testing.T, widen bool) ([]Result, *Vetter, int) {
	clock := newRaceWidener()
	srv := newRecorder(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		clock.request()
		writeReply(w, http.StatusTooManyRequests, map[string]string{
			"X-RateLimit-Limit":     "1000",
			"X-RateLimit-Remaining": "0",
			"X-RateLimit-Reset":     "1545973200",
			"Retry-After":           "29241",
		}, `{"errors":[{"detail":"Daily rate limit of 1000 requests exceeded for this endpoint. See headers for additional details.","status":429}]}`)
	})
	opts := Options{Workers: 4, Patience: 2 * time.Minute}
	if widen {
		opts.Now = clock.now
	}
	p := NewAbuseIPDB(serviceConfig(srv.url+"/api/v2", "ABUSEIPDB_API_KEY"), AbuseIPDBConfig{})
	results, v := vetAll(t, p, opts, addrs(20))
	return results, v, srv.count()
}

// TestAbuseIPDBDailyLimit checks that AbuseIPDB's documented daily-limit 429 stops the
// provider with the reset, hours ahead, named beyond the patience; the past reset epoch is
// not waited for.
func TestAbuseIPDBDailyLimit(t *testing.T) {
	results, v, _ := abuseIPDBDailyLimit(t, false)
	unknownWith(t, results, 0, "beyond the patience")
	st := v.Stats()[0]
	if !strings.Contains(st.Stopped, "beyond the patience") || strings.Contains(st.Stopped, "2018") {
		t.Errorf("Stats().Stopped = %q, want the reset, hours ahead, beyond the patience", st.Stopped)
	}
}

// TestAbuseIPDBDailyLimitCostsOneRequest checks that the daily-limit 429 costs one request
// in the whole run.
func TestAbuseIPDBDailyLimitCostsOneRequest(t *testing.T) {
	if _, _, n := abuseIPDBDailyLimit(t, true); n != 1 {
		t.Errorf("Vet(20 addresses) sent %d requests, want 1", n)
	}
}

// TestMetaDefenderThrottling checks that MetaDefender's 429001 is throttling, waited out,
// not a spent quota, although its X-RateLimit-Reset-In counts down the day.
func TestMetaDefenderThrottling(t *testing.T) {
	exact := func(t *testing.T) (string, func() int) {
		var mu sync.Mutex
		throttled := false
		clean := answering(cleanRecord("metadefender"))
		srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
			mu.Lock()
			first := !throttled
			throttled = true
			mu.Unlock()
			if first {
				writeReply(w, http.StatusTooManyRequests, map[string]string{
					"X-RateLimit-Remaining": "3000",
					"X-RateLimit-Reset-In":  "86400s",
				}, throttleBodies["metadefender"])
				return
			}
			clean(w, r, body)
		})
		return srv.url + "/v4", srv.count
	}
	double := func(t *testing.T) (string, func() int) {
		srv := fakeprovider.MetaDefender(t, fakeprovider.Options{Key: testKey, Throttle: 1, NoRetryAfter: true})
		return srv.URL, srv.Count
	}
	tests := []struct {
		name  string
		start func(t *testing.T) (string, func() int)
	}{
		{"429001 with the day's headers", exact},
		{"fakeprovider", double},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url, count := tc.start(t)
			results, v := vetAll(t, NewMetaDefender(serviceConfig(url, "MDCLOUD_APIKEY")), Options{Workers: 4}, addrs(200))
			if got := statuses(results, 0); got[Clean] != 200 {
				t.Errorf("statuses = %v, want 200 clean after the throttle", got)
			}
			st := v.Stats()[0]
			if st.Stopped != "" || st.Throttled < 1 {
				t.Errorf("Stats() = %+v, want throttled at least once and not stopped", st)
			}
			if n := count(); n != 5 {
				t.Errorf("requests = %d, want 5: the throttled one and 4 bulks", n)
			}
		})
	}
}

// retryAfterBeyondPatience runs 200 addresses, four bulks for MetaDefender, with 4 workers
// through each client against a 429 whose Retry-After, in seconds or
// as a date, asks for a wait beyond the patience. It checks that every verdict is Unknown
// and the provider stops; with widen, with a raceWidener as the Vetter's clock, that the
// 429 cost exactly one request.
func retryAfterBeyondPatience(t *testing.T, widen bool) {
	tests := []struct {
		name       string
		retryAfter func() string
		patience   time.Duration
	}{
		{"Retry-After 1e12", func() string { return "1e12" }, 0},
		{"Retry-After a date 20s ahead, patience 1s", func() string {
			return time.Now().Add(20 * time.Second).UTC().Format(http.TimeFormat)
		}, time.Second},
	}
	for _, c := range clients {
		for _, tc := range tests {
			t.Run(c.name+"/"+tc.name, func(t *testing.T) {
				clock := newRaceWidener()
				srv := newRecorder(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
					clock.request()
					writeReply(w, http.StatusTooManyRequests, map[string]string{"Retry-After": tc.retryAfter()}, throttleBodies[c.name])
				})
				opts := Options{Workers: 4, Patience: tc.patience}
				if widen {
					opts.Now = clock.now
				}
				p := c.new(c.at(srv))
				results, v := vetAll(t, p, opts, addrs(200))
				unknownWith(t, results, 0)
				if st := v.Stats()[0]; st.Stopped == "" {
					t.Errorf("Stats().Stopped is empty, want the provider stopped")
				}
				if n := srv.count(); widen && n != 1 {
					t.Errorf("Vet(200 addresses) sent %d requests, want 1", n)
				}
			})
		}
	}
}

// TestRetryAfterBeyondPatience checks that a 429 asking for a wait beyond the patience
// stops the provider, and that the run returns.
func TestRetryAfterBeyondPatience(t *testing.T) { retryAfterBeyondPatience(t, false) }

// TestRetryAfterBeyondPatienceCostsOneRequest checks that such a 429 costs one request in
// the whole run.
func TestRetryAfterBeyondPatienceCostsOneRequest(t *testing.T) {
	retryAfterBeyondPatience(t, true)
}

// TestOversizedReply checks that a reply beyond the read limit is not read.
func TestOversizedReply(t *testing.T) {
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			srv := newRecorder(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusOK)
				io.WriteString(w, `{"data":{"pad":"`)
				w.Write(bytes.Repeat([]byte("a"), 9<<20))
				io.WriteString(w, `"}}`)
			})
			results, _ := vetAll(t, c.new(c.at(srv)), Options{}, addrs(1))
			unknownWith(t, results, 0, "larger than 8 MiB")
			if n := srv.count(); n != 1 {
				t.Errorf("requests = %d, want 1: an oversized reply is not retried", n)
			}
		})
	}
}

// TestTricklingReply checks that a reply whose body trickles in forever ends at the
// timeout, and costs max(Retries, 1) requests in the run.
func TestTricklingReply(t *testing.T) {
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			srv := newRecorder(t, func(w http.ResponseWriter, r *http.Request, _ []byte) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusOK)
				rc := http.NewResponseController(w)
				rc.Flush()
				tick := time.NewTicker(50 * time.Millisecond)
				defer tick.Stop()
				for {
					if _, err := io.WriteString(w, " "); err != nil || rc.Flush() != nil {
						return
					}
					select {
					case <-tick.C:
					case <-r.Context().Done():
						return
					case <-t.Context().Done():
						return
					}
				}
			})
			cfg := c.at(srv)
			cfg.Timeout = 200 * time.Millisecond // the body never ends
			results, v := vetAll(t, c.new(cfg), Options{Workers: 4}, addrs(200))
			unknownWith(t, results, 0)
			for _, r := range results[:1] {
				if reason := strings.ToLower(r.Verdicts[0].Reason); !strings.Contains(reason, "timeout") {
					t.Errorf("Reason = %q, want a timeout named", r.Verdicts[0].Reason)
				}
			}
			// Counted by the client: under load, a request can time out before the server
			// has seen it.
			if n, want := v.Stats()[0].Lookups, max(testPolicy.Retries, 1); n != want || srv.count() > n {
				t.Errorf("Vet(200 addresses) sent %d requests (%d seen), want %d", n, srv.count(), want)
			}
			if st := v.Stats()[0]; st.Stopped == "" {
				t.Errorf("Stats().Stopped is empty, want the provider stopped")
			}
		})
	}
}

// TestEchoedKeyIsNeverKept checks that a key a service echoes in a reply, plainly or with a
// JSON escape, reaches neither a verdict nor the cache file.
func TestEchoedKeyIsNeverKept(t *testing.T) {
	// Each record carries KEY wherever the client copies text from the reply.
	records := map[string]string{
		"metadefender": `{"address":"ADDR","lookup_results":{"start_time":"2024-05-01T10:00:00.000Z","detected_by":1,"sources":[` +
			`{"provider":"feed.KEY","assessment":"botnet, KEY","detect_time":"2024-04-29T08:00:00.000000Z","update_time":"2024-05-01T07:00:00.000000Z","status":1}]},` +
			`"geo_info":{"country":{"code":"KEY","name":"Land of KEY"}}}`,
		"abuseipdb": `{"data":{"ipAddress":"ADDR","isPublic":true,"ipVersion":4,"isWhitelisted":false,"abuseConfidenceScore":40,` +
			`"countryCode":"KEY","usageType":"Usage KEY","isp":"ISP KEY","domain":"KEY.example","hostnames":["KEY.example"],"isTor":false,` +
			`"totalReports":3,"numDistinctUsers":2,"lastReportedAt":"KEY"}}`,
		"virustotal": `{"data":{"id":"ADDR","type":"ip_address","attributes":{"as_owner":"AS KEY","country":"KEY","network":"85.25.0.0/16",` +
			`"last_analysis_stats":{"harmless":60,"malicious":3,"suspicious":0,"undetected":30,"timeout":0},` +
			`"last_analysis_results":{"Engine KEY":{"category":"malicious","engine_name":"Engine KEY","method":"blacklist","result":"KEY"}},` +
			`"reputation":-10,"tags":["KEY"]}}}`,
		"greynoise": `{"ip":"ADDR","noise":true,"riot":false,"classification":"malicious","name":"Actor KEY",` +
			`"link":"https://viz.greynoise.io/ip/ADDR","last_seen":"KEY","message":"Success"}`,
	}
	keys := map[string]string{
		"plain":   testKey,
		"escaped": fmt.Sprintf(`\u%04x`, testKey[0]) + testKey[1:],
	}
	for _, c := range clients {
		for form, key := range keys {
			t.Run(c.name+"/"+form, func(t *testing.T) {
				srv := newRecorder(t, answering(func(a string) string {
					return strings.NewReplacer("ADDR", a, "KEY", key).Replace(records[c.name])
				}))
				p := c.new(c.at(srv))
				dir := t.TempDir()
				cache := openTestCache(t, filepath.Join(dir, "cache.db"))
				pol := testPolicy
				pol.CacheTTL = time.Hour
				opts := Options{Workers: 4, Cache: cache, Policies: map[string]Policy{p.Name(): pol}}

				asked := 0
				for run := 1; run <= 2; run++ {
					results, _ := vetAll(t, p, opts, addrs(3))
					if run == 1 {
						asked = srv.count()
					}
					for _, r := range results {
						vd := r.Verdicts[0]
						if !vd.Known() {
							t.Errorf("run %d: verdict(%s) = %s %q, want an answer", run, r.Target, vd.Status, vd.Reason)
						}
						if run == 2 && !vd.Cached {
							t.Errorf("run 2: verdict(%s) was not cached", r.Target)
						}
						js, _ := json.Marshal(vd)
						if bytes.Contains(js, []byte(testKey)) {
							t.Errorf("run %d: verdict(%s) = %s, want no key", run, r.Target, js)
						}
					}
				}
				if n := srv.count(); n != asked {
					t.Errorf("requests = %d, want %d: the second run answered from the cache", n, asked)
				}
				if err := cache.Close(); err != nil {
					t.Fatal(err)
				}
				files, err := os.ReadDir(dir)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range files {
					data, err := os.ReadFile(filepath.Join(dir, f.Name()))
					if err != nil {
						t.Fatal(err)
					}
					if bytes.Contains(data, []byte(testKey)) {
						t.Errorf("cache file %s contains the key", f.Name())
					}
				}
			})
		}
	}
}

// TestVirusTotalTrustedReputation checks that a few engines against a strong positive
// community reputation make an address suspicious, not malicious.
func TestVirusTotalTrustedReputation(t *testing.T) {
	const engines = 94
	tests := []struct {
		name       string
		reputation int
		thresholds VirusTotalThresholds
		want       Status
	}{
		{"4 of 94, reputation +134, default thresholds", 134, DefaultVirusTotalThresholds, Suspicious},
		{"4 of 94, reputation -5, default thresholds", -5, DefaultVirusTotalThresholds, Malicious},
		{"4 of 94, reputation +134, TrustedReputation 0", 134, VirusTotalThresholds{Malicious: 2, Suspicious: 1}, Malicious},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRecorder(t, answering(func(a string) string {
				return vtRecord(a, vtStats(engines-4-20, 4, 0, 20, 0), tc.reputation)
			}))
			p := NewVirusTotal(serviceConfig(srv.url+"/api/v3", "VT_API_KEY"), tc.thresholds)
			got, _ := vetOne(t, p, Options{}, targets("85.25.199.246"))
			vd := got["85.25.199.246"]
			if vd.Status != tc.want || vd.Score == nil || *vd.Score != 4 || !strings.Contains(vd.Evidence, "4 of 94") {
				t.Errorf("Lookup(%q) = %s %q, want %s with 4 of 94 engines", tc.name, vd.Status, vd.Evidence, tc.want)
			}
		})
	}
}
