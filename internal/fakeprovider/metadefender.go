package fakeprovider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	mdBulkMax       = 50
	mdDefaultLimit  = 4000
	mdQuotaCounter  = "reputation_api"
	mdInterval      = "86400"
	mdThrottleLimit = 9
)

// MetaDefender starts a double of OPSWAT MetaDefender Cloud API v4 IP reputation:
// GET /v4/ip/{ip} and the bulk POST /v4/ip/ (also /v4/ip) with {"address":[...]}.
//
// The key travels in the apikey header. Listed addresses get one source per category with
// status 1, the category as assessment and a detect_time; other sources have status 5 or 0
// and an empty assessment. Status "suspicious" is treated as "malicious" (MetaDefender has
// no such notion); "riot" as clean. Unknown addresses are answered 200 with detected_by 0.
//
// Undocumented behaviour, chosen here: the bulk reply lists the addresses in reverse request
// order, so clients must match by address; a bulk request with any malformed or
// non-routable address is refused whole with that address's 400 (400180 or 400185); throttle
// replies carry Retry-After (suppress with Options.NoRetryAfter).
//
// Replies after authentication carry X-RateLimit-For, -Interval, -Limit, -Remaining,
// -Reset-In ("<n>s") and -Used. Quota counts addresses answered; with Options.Quota 0 the
// limit reported is 4000 and nothing is refused.
func MetaDefender(t testing.TB, o Options) *Server {
	t.Helper()
	return start(t, o, service{base: "/v4", addresses: mdAddresses, handle: (*Server).metaDefender})
}

type mdError struct {
	Error mdErrorBody `json:"error"`
}

type mdErrorBody struct {
	Code     int      `json:"code"`
	Messages []string `json:"messages"`
}

// mdThrottleError is the newer envelope of the throttling page, with messages as a string.
type mdThrottleError struct {
	Error struct {
		Name     string `json:"name"`
		Messages string `json:"messages"`
		Code     int    `json:"code"`
		Status   int    `json:"status"`
	} `json:"error"`
}

func mdErr(code int, msg string) mdError {
	return mdError{mdErrorBody{Code: code, Messages: []string{msg}}}
}

type mdBulkRequest struct {
	Address []string `json:"address"`
}

// mdRoute tells single from bulk lookups; ip is the path's address for a single one.
func mdRoute(r *http.Request) (bulk bool, ip string, ok bool) {
	switch {
	case r.Method == http.MethodPost && (r.URL.Path == "/v4/ip" || r.URL.Path == "/v4/ip/"):
		return true, "", true
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v4/ip/") && len(r.URL.Path) > len("/v4/ip/"):
		return false, strings.TrimPrefix(r.URL.Path, "/v4/ip/"), true
	}
	return false, "", false
}

func mdAddresses(r *http.Request, body []byte) []string {
	bulk, ip, ok := mdRoute(r)
	switch {
	case !ok:
		return nil
	case !bulk:
		return []string{ip}
	}
	var req mdBulkRequest
	if json.Unmarshal(body, &req) != nil {
		return nil
	}
	return req.Address
}

func (s *Server) metaDefender(w http.ResponseWriter, r *http.Request, body []byte, seq int) {
	switch s.fault(seq) {
	case failFault:
		writeJSON(w, http.StatusServiceUnavailable, mdErr(503000, "External service is not reachable"))
		return
	case throttleFault:
		s.mdHeaders(w, s.state(mdQuotaCounter, mdDefaultLimit))
		s.retryAfter(w, s.opts.RetryAfter, true)
		writeJSON(w, http.StatusTooManyRequests, mdThrottle())
		return
	}
	if s.checkKey(r.Header.Get("apikey")) != keyOK {
		writeJSON(w, http.StatusUnauthorized, mdErr(401006, "Invalid API key"))
		return
	}
	bulk, ip, ok := mdRoute(r)
	if !ok {
		writeJSON(w, http.StatusNotFound, mdErr(404000, "Endpoint not found"))
		return
	}
	if ok, wait := s.allow(); !ok {
		s.mdHeaders(w, s.state(mdQuotaCounter, mdDefaultLimit))
		s.retryAfter(w, wait, true)
		writeJSON(w, http.StatusTooManyRequests, mdThrottle())
		return
	}
	var asked []string
	if bulk {
		var req mdBulkRequest
		switch {
		case len(bytes.TrimSpace(body)) == 0:
			s.mdReject(w, http.StatusBadRequest, mdErr(400025, "Payload is missing or empty"))
			return
		case json.Unmarshal(body, &req) != nil:
			s.mdReject(w, http.StatusBadRequest, mdErr(400021, "Body parsing failed"))
			return
		case len(req.Address) == 0:
			s.mdReject(w, http.StatusBadRequest, mdErr(400025, "Payload is missing or empty"))
			return
		case len(req.Address) > mdBulkMax:
			s.mdReject(w, http.StatusBadRequest, mdErr(400184, "Exceeded maximum allowed"))
			return
		}
		asked = req.Address
	} else {
		asked = []string{ip}
	}
	addrs := make([]netip.Addr, len(asked))
	for i, raw := range asked {
		a, ok := parseAddr(raw)
		if !ok {
			s.mdReject(w, http.StatusBadRequest, mdErr(400180, "Invalid format of input. Provide IPv4 or IPv6."))
			return
		}
		if !routable(a) {
			s.mdReject(w, http.StatusBadRequest, mdErr(400185, "The address is not a routable IP"))
			return
		}
		addrs[i] = a
	}
	ok, st := s.charge(mdQuotaCounter, len(addrs), mdDefaultLimit)
	s.mdHeaders(w, st)
	if !ok {
		writeJSON(w, http.StatusTooManyRequests, mdErr(429000, "API key limit exceeded; retry after the limit is reset"))
		return
	}
	now := s.now()
	if !bulk {
		s.writeOK(w, s.mdLookup(addrs[0], now))
		return
	}
	data := make([]mdLookup, 0, len(addrs))
	for _, a := range slices.Backward(addrs) {
		data = append(data, s.mdLookup(a, now))
	}
	s.writeOK(w, struct {
		Data []mdLookup `json:"data"`
	}{data})
}

// mdReject writes a 400 after authentication, with the rate-limit headers.
func (s *Server) mdReject(w http.ResponseWriter, status int, body mdError) {
	s.mdHeaders(w, s.state(mdQuotaCounter, mdDefaultLimit))
	writeJSON(w, status, body)
}

func mdThrottle() mdThrottleError {
	var e mdThrottleError
	e.Error.Name = "ClientError"
	e.Error.Messages = fmt.Sprintf("Your request has been throttled, maximum requests per hour: %d for free users", mdThrottleLimit)
	e.Error.Code = 429001
	e.Error.Status = http.StatusTooManyRequests
	return e
}

func (s *Server) mdHeaders(w http.ResponseWriter, st quotaState) {
	h := w.Header()
	setHeader(h, "X-RateLimit-For", mdQuotaCounter)
	setHeader(h, "X-RateLimit-Interval", mdInterval)
	setHeader(h, "X-RateLimit-Limit", strconv.Itoa(st.Limit))
	setHeader(h, "X-RateLimit-Remaining", strconv.Itoa(st.Remaining))
	setHeader(h, "X-RateLimit-Reset-In", strconv.Itoa(st.ResetIn)+"s")
	setHeader(h, "X-RateLimit-Used", strconv.Itoa(st.Used))
	setHeader(h, "X-Authenticated", "by apikey")
	setHeader(h, "X-Account-Type", "other")
}

type mdLookup struct {
	Address       string    `json:"address"`
	LookupResults mdResults `json:"lookup_results"`
	GeoInfo       mdGeo     `json:"geo_info"`
}

type mdResults struct {
	StartTime  string     `json:"start_time"`
	DetectedBy int        `json:"detected_by"`
	Sources    []mdSource `json:"sources"`
}

type mdSource struct {
	Provider   string `json:"provider"`
	Assessment string `json:"assessment"`
	DetectTime string `json:"detect_time"`
	UpdateTime string `json:"update_time"`
	Status     int    `json:"status"`
}

type mdCode struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

type mdGeo struct {
	Continent         mdCode     `json:"continent"`
	Country           mdCode     `json:"country"`
	City              mdCode     `json:"city"`
	Location          mdLocation `json:"location"`
	RegisteredCountry mdCode     `json:"registered_country"`
	Subdivisions      []mdCode   `json:"subdivisions"`
}

type mdLocation struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
}

// mdProviders are the sources every lookup lists, listed ones first.
func mdProviders() []string {
	return []string{"webroot.com", "spamhaus.org", "feodotracker.abuse.ch", "blocklist.de", "dshield.org", "isc.sans.edu"}
}

func (s *Server) mdLookup(a netip.Addr, now time.Time) mdLookup {
	l, _ := s.listing(a)
	var listed []string
	switch l.status() {
	case statusMalicious, statusSuspicious:
		listed = l.Categories
		if len(listed) == 0 {
			listed = []string{l.status()}
		}
	}
	providers := mdProviders()
	for i := len(providers); i < len(listed)+2; i++ {
		providers = append(providers, fmt.Sprintf("feed%d.example.net", i+1))
	}
	updated := now.Add(-3 * time.Hour).UTC().Format("2006-01-02T15:04:05.000000Z")
	detected := now.Add(-50 * time.Hour).UTC().Format("2006-01-02T15:04:05.000000Z")
	sources := make([]mdSource, len(providers))
	for i, p := range providers {
		src := mdSource{Provider: p, UpdateTime: updated}
		switch {
		case i < len(listed):
			src.Status = 1
			src.Assessment = listed[i]
			src.DetectTime = detected
		case (i-len(listed))%2 == 0:
			src.Status = 5
		default:
			src.Status = 0
		}
		sources[i] = src
	}
	code := l.country()
	c := lookupCountry(code)
	country := mdCode{Code: code, Name: c.Name}
	return mdLookup{
		Address: a.String(),
		LookupResults: mdResults{
			StartTime:  now.UTC().Format("2006-01-02T15:04:05.000Z"),
			DetectedBy: len(listed),
			Sources:    sources,
		},
		GeoInfo: mdGeo{
			Continent:         mdCode{Code: c.Continent, Name: c.ContinentName},
			Country:           country,
			City:              mdCode{},
			Location:          mdLocation{Latitude: c.Lat, Longitude: c.Long},
			RegisteredCountry: country,
			Subdivisions:      []mdCode{},
		},
	}
}
