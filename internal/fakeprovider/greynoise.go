package fakeprovider

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	gnPrefix       = "/v3/community/"
	gnDefaultLimit = 100
)

// GreyNoise starts a double of the GreyNoise Community API: GET /v3/community/{ip}, with
// Server.URL the bare server address.
//
// The key travels in the key header. With Options.Key empty it is optional, as the
// community API allows unauthenticated calls. With Options.Key set, a missing or wrong key
// gets 401 {"message":"Unauthorized"} (the 401 body is not documented).
//
// Status "malicious" answers 200 noise true, classification malicious, link
// https://viz.greynoise.io/ip/<ip>; "riot" answers riot true, classification benign, link
// https://viz.greynoise.io/riot/<ip>; "suspicious" answers noise true, classification
// unknown. Any other address (not in the map, clean, or Unobserved) gets the documented
// 404 "not observed" body. IPv6, invalid and non-routable addresses get the documented 400.
// Options.Fail answers the documented 500.
//
// Quota, rate enforcement and Options.Throttle 429s carry the documented plan body, with
// the limit of Options.Quota (100 when 0) and plan "unauthenticated" when no key was sent,
// "community" otherwise (the plan name of keyed 429s is not documented). No rate-limit
// headers are documented, so none are sent; Retry-After is sent only on Options.Throttle
// replies (suppress with Options.NoRetryAfter).
func GreyNoise(t testing.TB, o Options) *Server {
	t.Helper()
	return start(t, o, service{addresses: gnAddresses, handle: (*Server).greyNoise})
}

type gnMessage struct {
	Message string `json:"message"`
}

type gnLimit struct {
	Plan      string `json:"plan"`
	RateLimit string `json:"rate-limit"`
	PlanURL   string `json:"plan_url"`
	Message   string `json:"message"`
}

type gnRecord struct {
	IP             string `json:"ip"`
	Noise          bool   `json:"noise"`
	RIOT           bool   `json:"riot"`
	Classification string `json:"classification"`
	Name           string `json:"name"`
	Link           string `json:"link"`
	LastSeen       string `json:"last_seen"`
	Message        string `json:"message"`
}

type gnNotFound struct {
	IP      string `json:"ip"`
	Noise   bool   `json:"noise"`
	RIOT    bool   `json:"riot"`
	Message string `json:"message"`
}

func gnIP(r *http.Request) (string, bool) {
	ip, ok := strings.CutPrefix(r.URL.Path, gnPrefix)
	return ip, ok && ip != "" && r.Method == http.MethodGet
}

func gnAddresses(r *http.Request, _ []byte) []string {
	if ip, ok := gnIP(r); ok {
		return []string{ip}
	}
	return nil
}

func (s *Server) gnLimitBody(r *http.Request) gnLimit {
	limit := s.opts.Quota
	if limit <= 0 {
		limit = gnDefaultLimit
	}
	plan := "unauthenticated"
	if r.Header.Get("key") != "" {
		plan = "community"
	}
	return gnLimit{
		Plan:      plan,
		RateLimit: fmt.Sprintf("%d-lookups/day", limit),
		PlanURL:   "https://greynoise.io/pricing",
		Message: fmt.Sprintf("You have hit your daily rate limit of %d requests per day. "+
			"Please create a free account or upgrade your plan at https://greynoise.io/pricing.", limit),
	}
}

func (s *Server) greyNoise(w http.ResponseWriter, r *http.Request, _ []byte, seq int) {
	switch s.fault(seq) {
	case failFault:
		writeJSON(w, http.StatusInternalServerError, gnMessage{"Encountered error while performing request"})
		return
	case throttleFault:
		s.retryAfter(w, s.opts.RetryAfter, true)
		writeJSON(w, http.StatusTooManyRequests, s.gnLimitBody(r))
		return
	}
	if key := r.Header.Get("key"); s.opts.Key != "" && key != s.opts.Key {
		writeJSON(w, http.StatusUnauthorized, gnMessage{"Unauthorized"})
		return
	}
	raw, ok := gnIP(r)
	if !ok {
		writeJSON(w, http.StatusNotFound, gnMessage{"Not Found"})
		return
	}
	if ok, _ := s.allow(); !ok {
		writeJSON(w, http.StatusTooManyRequests, s.gnLimitBody(r))
		return
	}
	a, ok := parseAddr(raw)
	if !ok || !a.Is4() || !routable(a) {
		writeJSON(w, http.StatusBadRequest, gnMessage{"Request is not a valid routable IPv4 address"})
		return
	}
	if ok, _ := s.charge("community", 1, gnDefaultLimit); !ok {
		writeJSON(w, http.StatusTooManyRequests, s.gnLimitBody(r))
		return
	}
	ip := a.String()
	l, _ := s.listing(a)
	name := l.Name
	if name == "" {
		name = "unknown"
	}
	rec := gnRecord{
		IP:       ip,
		Name:     name,
		Link:     "https://viz.greynoise.io/ip/" + ip,
		LastSeen: s.now().Add(-24 * time.Hour).UTC().Format(time.DateOnly),
		Message:  "Success",
	}
	found := true
	switch {
	case l.Unobserved:
		found = false
	case l.status() == statusMalicious:
		rec.Noise, rec.Classification = true, "malicious"
	case l.status() == statusSuspicious:
		rec.Noise, rec.Classification = true, "unknown"
	case l.status() == statusRIOT:
		rec.RIOT, rec.Classification = true, "benign"
		rec.Link = "https://viz.greynoise.io/riot/" + ip
	default:
		found = false
	}
	if !found {
		writeJSON(w, http.StatusNotFound, gnNotFound{
			IP:      ip,
			Message: "IP not observed scanning the internet or contained in RIOT data set.",
		})
		return
	}
	s.writeOK(w, rec)
}
