package fakeprovider

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const vtPrefix = "/api/v3/ip_addresses/"

// VirusTotal starts a double of VirusTotal API v3: GET /api/v3/ip_addresses/{ip}.
//
// The key travels in the x-apikey header. Errors use the documented envelope
// {"error":{"code":...,"message":...}}: 401 AuthenticationRequiredError for a missing key,
// WrongCredentialsError for a wrong one, 404 NotFoundError for a Listing with Unobserved,
// 429 QuotaExceededError when Options.Quota is spent, 429 TooManyRequestsError for rate
// enforcement and Options.Throttle, 503 TransientError for Options.Fail. No rate-limit
// headers are documented, so none are sent; Retry-After is sent only on Options.Throttle
// replies (suppress with Options.NoRetryAfter).
//
// Undocumented behaviour, chosen here: an invalid IP literal gets 400 InvalidArgumentError;
// private and other non-routable addresses are answered like any other (clean unless
// listed); an unknown path gets 404 NotFoundError.
//
// The report's last_analysis_results has one entry per engine, and its categories add up
// to last_analysis_stats.
func VirusTotal(t testing.TB, o Options) *Server {
	t.Helper()
	return start(t, o, service{base: "/api/v3", addresses: vtAddresses, handle: (*Server).virusTotal})
}

type vtError struct {
	Error vtErrorBody `json:"error"`
}

type vtErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func vtErr(code, msg string) vtError { return vtError{vtErrorBody{code, msg}} }

func vtIP(r *http.Request) (string, bool) {
	ip, ok := strings.CutPrefix(r.URL.Path, vtPrefix)
	return ip, ok && ip != "" && r.Method == http.MethodGet
}

func vtAddresses(r *http.Request, _ []byte) []string {
	if ip, ok := vtIP(r); ok {
		return []string{ip}
	}
	return nil
}

func (s *Server) virusTotal(w http.ResponseWriter, r *http.Request, _ []byte, seq int) {
	switch s.fault(seq) {
	case failFault:
		writeJSON(w, http.StatusServiceUnavailable, vtErr("TransientError", "Transient error, please retry later"))
		return
	case throttleFault:
		s.retryAfter(w, s.opts.RetryAfter, true)
		writeJSON(w, http.StatusTooManyRequests, vtErr("TooManyRequestsError", "Too many requests"))
		return
	}
	switch s.checkKey(r.Header.Get("x-apikey")) {
	case keyMissing:
		writeJSON(w, http.StatusUnauthorized, vtErr("AuthenticationRequiredError", "X-Apikey header is missing"))
		return
	case keyWrong:
		writeJSON(w, http.StatusUnauthorized, vtErr("WrongCredentialsError", "The provided API key is incorrect."))
		return
	}
	raw, ok := vtIP(r)
	if !ok {
		writeJSON(w, http.StatusNotFound, vtErr("NotFoundError", "Resource not found."))
		return
	}
	if ok, _ := s.allow(); !ok {
		writeJSON(w, http.StatusTooManyRequests, vtErr("TooManyRequestsError", "Too many requests"))
		return
	}
	a, ok := parseAddr(raw)
	if !ok {
		writeJSON(w, http.StatusBadRequest, vtErr("InvalidArgumentError", fmt.Sprintf("%q is not a valid IP address", raw)))
		return
	}
	if ok, _ := s.charge("ip_addresses", 1, 0); !ok {
		writeJSON(w, http.StatusTooManyRequests, vtErr("QuotaExceededError",
			"You have exceeded one of your quotas (minute, daily or monthly). Daily quotas are reset every day at 00:00 UTC."))
		return
	}
	l, _ := s.listing(a)
	if l.Unobserved {
		writeJSON(w, http.StatusNotFound, vtErr("NotFoundError", fmt.Sprintf("IP address %q not found", raw)))
		return
	}
	s.writeOK(w, struct {
		Data vtObject `json:"data"`
	}{vtReport(a, l, s.now())})
}

type vtObject struct {
	ID         string            `json:"id"`
	Type       string            `json:"type"`
	Links      map[string]string `json:"links"`
	Attributes vtAttributes      `json:"attributes"`
}

type vtAttributes struct {
	ASOwner                  string              `json:"as_owner"`
	ASN                      int                 `json:"asn"`
	Continent                string              `json:"continent"`
	Country                  string              `json:"country"`
	Network                  string              `json:"network"`
	RegionalInternetRegistry string              `json:"regional_internet_registry"`
	JARM                     string              `json:"jarm"`
	FirstSeenDate            int64               `json:"first_seen_date"`
	LastAnalysisDate         int64               `json:"last_analysis_date"`
	LastModificationDate     int64               `json:"last_modification_date"`
	LastAnalysisStats        vtStats             `json:"last_analysis_stats"`
	LastAnalysisResults      map[string]vtEngine `json:"last_analysis_results"`
	Reputation               int                 `json:"reputation"`
	TotalVotes               vtVotes             `json:"total_votes"`
	Tags                     []string            `json:"tags"`
	Whois                    string              `json:"whois"`
	WhoisDate                int64               `json:"whois_date"`
}

type vtStats struct {
	Harmless   int `json:"harmless"`
	Malicious  int `json:"malicious"`
	Suspicious int `json:"suspicious"`
	Undetected int `json:"undetected"`
	Timeout    int `json:"timeout"`
}

type vtEngine struct {
	Category   string `json:"category"`
	EngineName string `json:"engine_name"`
	Method     string `json:"method"`
	Result     string `json:"result"`
}

type vtVotes struct {
	Harmless  int `json:"harmless"`
	Malicious int `json:"malicious"`
}

// vtEngines are the engine names of a report; more are made up when a Score needs them.
func vtEngines() []string {
	return []string{
		"Abusix", "ADMINUSLabs", "AlienVault", "alphaMountain.ai", "Antiy-AVL", "AutoShun",
		"Avira", "BitDefender", "Bkav", "BlockList", "Certego", "CRDF", "CyRadar", "Cyble",
		"DNS8", "Dr.Web", "Emsisoft", "ESET", "Forcepoint ThreatSeeker", "Fortinet", "G-Data",
		"GreenSnow", "Kaspersky", "Lionic", "MalwareURL", "Netcraft", "OpenPhish", "PhishTank",
		"Quttera", "SOCRadar", "Sophos", "Spam404", "Sucuri SiteCheck", "ThreatHive",
		"Trustwave", "URLhaus", "Webroot", "Yandex Safebrowsing", "ZeroCERT", "benkow.cc",
	}
}

func vtReport(a netip.Addr, l Listing, now time.Time) vtObject {
	var malicious, suspicious, reputation int
	var votes vtVotes
	switch l.status() {
	case statusMalicious:
		malicious = l.Score
		if malicious <= 0 {
			malicious = 5
		}
		reputation = -2 * malicious
		votes.Malicious = 1
	case statusSuspicious:
		suspicious = l.Score
		if suspicious <= 0 {
			suspicious = 2
		}
		reputation = -1
	}
	if l.Reputation != nil {
		reputation = *l.Reputation
	}
	engines := vtEngines()
	for i := len(engines); i < malicious+suspicious+10; i++ {
		engines = append(engines, fmt.Sprintf("Engine%03d", i+1))
	}
	results := make(map[string]vtEngine, len(engines))
	var stats vtStats
	rest := len(engines) - malicious - suspicious
	for i, name := range engines {
		e := vtEngine{EngineName: name, Method: "blacklist"}
		switch {
		case i < malicious:
			e.Category, e.Result = "malicious", "malicious"
			stats.Malicious++
		case i < malicious+suspicious:
			e.Category, e.Result = "suspicious", "suspicious"
			stats.Suspicious++
		case i < malicious+suspicious+rest*2/3:
			e.Category, e.Result = "harmless", "clean"
			stats.Harmless++
		default:
			e.Category, e.Result = "undetected", "unrated"
			stats.Undetected++
		}
		results[name] = e
	}
	tags := l.Categories
	if tags == nil {
		tags = []string{}
	}
	network := netip.PrefixFrom(a, 24)
	if a.Is6() {
		network = netip.PrefixFrom(a, 48)
	}
	code := l.country()
	ip := a.String()
	return vtObject{
		ID:    ip,
		Type:  "ip_address",
		Links: map[string]string{"self": "https://www.virustotal.com/api/v3/ip_addresses/" + ip},
		Attributes: vtAttributes{
			ASOwner:                  "Example Hosting LLC",
			ASN:                      64500,
			Continent:                lookupCountry(code).Continent,
			Country:                  code,
			Network:                  network.Masked().String(),
			RegionalInternetRegistry: "RIPE NCC",
			FirstSeenDate:            now.Add(-400 * 24 * time.Hour).Unix(),
			LastAnalysisDate:         now.Add(-2 * time.Hour).Unix(),
			LastModificationDate:     now.Add(-time.Hour).Unix(),
			LastAnalysisStats:        stats,
			LastAnalysisResults:      results,
			Reputation:               reputation,
			TotalVotes:               votes,
			Tags:                     tags,
			Whois:                    "NetRange: " + network.Masked().String() + "\nOrgName: Example Hosting LLC\n",
			WhoisDate:                now.Add(-30 * 24 * time.Hour).Unix(),
		},
	}
}
