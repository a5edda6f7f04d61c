package fakeprovider

import (
	"fmt"
	"html"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	abuseCheck           = "check"
	abuseCheckBlock      = "check-block"
	abuseDefaultMaxAge   = 30
	abuseMaxBlockHostBit = 8 // a /24 for IPv4, a /120 for IPv6
)

// abuseDefaultLimit returns the free daily limit of an endpoint.
func abuseDefaultLimit(endpoint string) int {
	if endpoint == abuseCheckBlock {
		return 100
	}
	return 1000
}

// AbuseIPDB starts a double of AbuseIPDB API v2: GET /api/v2/check and
// GET /api/v2/check-block.
//
// The key travels in the Key header (the documented key query parameter is also accepted;
// tests can see where it travelled in Requests). Requests must ask for JSON with
// Accept: application/json, judged as the service's framework does (the first media type
// of Accept names JSON). Without it every error is an HTML page (text/html) with the same
// status, and a reply that would succeed is refused with a 406 HTML page, so a client that
// forgets the header fails loudly.
//
// 2xx and 429 replies carry X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset
// (epoch); 429s also Retry-After. The quota is per endpoint (check, check-block), as the
// service documents; with Options.Quota 0 the limits reported are the free 1000 and 100.
//
// Undocumented behaviour, chosen here: a network wider than /24 (or /120 for IPv6) gets
// 422 "The network must be a /24 or smaller."; an invalid network 422 "The network must be a
// valid CIDR notation."; rate enforcement and Options.Throttle 429s carry
// {"errors":[{"detail":"Too Many Attempts.","status":429}]}, the service framework's
// throttle message; Options.Fail 503s a JSON:API errors body.
func AbuseIPDB(t testing.TB, o Options) *Server {
	t.Helper()
	return start(t, o, service{base: "/api/v2", addresses: abuseAddresses, handle: (*Server).abuseIPDB})
}

type abuseErrors struct {
	Errors []abuseError `json:"errors"`
}

type abuseError struct {
	Detail string       `json:"detail"`
	Status int          `json:"status"`
	Source *abuseSource `json:"source,omitempty"`
}

type abuseSource struct {
	Parameter string `json:"parameter"`
}

func abuseErr(status int, detail, param string) abuseErrors {
	e := abuseError{Detail: detail, Status: status}
	if param != "" {
		e.Source = &abuseSource{Parameter: param}
	}
	return abuseErrors{[]abuseError{e}}
}

func abuseEndpoint(r *http.Request) string {
	switch r.URL.Path {
	case "/api/v2/check", "/api/v2/check/":
		return abuseCheck
	case "/api/v2/check-block", "/api/v2/check-block/":
		return abuseCheckBlock
	}
	return ""
}

func abuseAddresses(r *http.Request, _ []byte) []string {
	q := r.URL.Query()
	switch abuseEndpoint(r) {
	case abuseCheck:
		if q.Has("ipAddress") {
			return []string{q.Get("ipAddress")}
		}
	case abuseCheckBlock:
		if q.Has("network") {
			return []string{q.Get("network")}
		}
	}
	return nil
}

// wantsJSON reports whether the first media type of Accept names JSON.
func wantsJSON(r *http.Request) bool {
	first, _, _ := strings.Cut(r.Header.Get("Accept"), ",")
	mt, _, err := mime.ParseMediaType(strings.TrimSpace(first))
	return err == nil && (strings.Contains(mt, "/json") || strings.Contains(mt, "+json"))
}

// abuseFail writes an error reply: JSON:API errors, or an HTML page when the client did not
// ask for JSON.
func abuseFail(w http.ResponseWriter, r *http.Request, body abuseErrors) {
	status := body.Errors[0].Status
	if !wantsJSON(r) {
		abuseHTML(w, status, body.Errors[0].Detail)
		return
	}
	writeJSON(w, status, body)
}

func abuseHTML(w http.ResponseWriter, status int, detail string) {
	page := fmt.Sprintf(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>%d %s | AbuseIPDB</title>
</head>
<body>
<h1>%d %s</h1>
<p>%s</p>
</body>
</html>
`, status, http.StatusText(status), status, http.StatusText(status), html.EscapeString(detail))
	w.Header().Set("Content-Type", "text/html; charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(status)
	w.Write([]byte(page))
}

func (s *Server) abuseHeaders(w http.ResponseWriter, st quotaState) {
	h := w.Header()
	setHeader(h, "X-RateLimit-Limit", strconv.Itoa(st.Limit))
	setHeader(h, "X-RateLimit-Remaining", strconv.Itoa(st.Remaining))
	setHeader(h, "X-RateLimit-Reset", strconv.FormatInt(st.ResetAt.Unix(), 10))
}

func (s *Server) abuseIPDB(w http.ResponseWriter, r *http.Request, _ []byte, seq int) {
	endpoint := abuseEndpoint(r)
	counter := endpoint
	if counter == "" {
		counter = abuseCheck
	}
	switch s.fault(seq) {
	case failFault:
		abuseFail(w, r, abuseErr(http.StatusServiceUnavailable, "The service is temporarily unavailable. Please try again later.", ""))
		return
	case throttleFault:
		s.abuseHeaders(w, s.state(counter, abuseDefaultLimit(counter)))
		s.retryAfter(w, s.opts.RetryAfter, false)
		abuseFail(w, r, abuseErr(http.StatusTooManyRequests, "Too Many Attempts.", ""))
		return
	}
	key := r.Header.Get("Key")
	if key == "" {
		key = r.URL.Query().Get("key")
	}
	if s.checkKey(key) != keyOK {
		abuseFail(w, r, abuseErr(http.StatusUnauthorized, "Authentication failed. Your API key is either missing, incorrect, or revoked. Note: The APIv2 key differs from the APIv1 key.", ""))
		return
	}
	if endpoint == "" {
		abuseFail(w, r, abuseErr(http.StatusNotFound, "The requested endpoint does not exist.", ""))
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		abuseFail(w, r, abuseErr(http.StatusMethodNotAllowed, "The "+r.Method+" method is not supported for this route.", ""))
		return
	}
	if ok, wait := s.allow(); !ok {
		s.abuseHeaders(w, s.state(counter, abuseDefaultLimit(counter)))
		s.retryAfter(w, wait, false)
		abuseFail(w, r, abuseErr(http.StatusTooManyRequests, "Too Many Attempts.", ""))
		return
	}
	q := r.URL.Query()
	if q.Has("maxAgeInDays") {
		n, err := strconv.Atoi(q.Get("maxAgeInDays"))
		if err != nil || n < 1 || n > 365 {
			abuseFail(w, r, abuseErr(http.StatusUnprocessableEntity, "The max age in days must be between 1 and 365.", "maxAgeInDays"))
			return
		}
	}
	var reply func(now time.Time) any
	switch endpoint {
	case abuseCheck:
		raw := q.Get("ipAddress")
		if raw == "" {
			abuseFail(w, r, abuseErr(http.StatusUnprocessableEntity, "The ip address field is required.", "ipAddress"))
			return
		}
		a, ok := parseAddr(raw)
		if !ok {
			abuseFail(w, r, abuseErr(http.StatusUnprocessableEntity, "The ip address must be a valid IP address.", "ipAddress"))
			return
		}
		verbose := q.Has("verbose")
		reply = func(now time.Time) any { return s.abuseCheck(a, verbose, now) }
	case abuseCheckBlock:
		raw := q.Get("network")
		if raw == "" {
			abuseFail(w, r, abuseErr(http.StatusUnprocessableEntity, "The network field is required.", "network"))
			return
		}
		p, err := netip.ParsePrefix(raw)
		if err != nil {
			abuseFail(w, r, abuseErr(http.StatusUnprocessableEntity, "The network must be a valid CIDR notation.", "network"))
			return
		}
		if p.Addr().BitLen()-p.Bits() > abuseMaxBlockHostBit {
			abuseFail(w, r, abuseErr(http.StatusUnprocessableEntity, "The network must be a /24 or smaller.", "network"))
			return
		}
		reply = func(now time.Time) any { return s.abuseCheckBlock(p.Masked(), now) }
	}
	if !wantsJSON(r) {
		abuseHTML(w, http.StatusNotAcceptable, "This API answers JSON only; send Accept: application/json.")
		return
	}
	ok, st := s.charge(counter, 1, abuseDefaultLimit(counter))
	s.abuseHeaders(w, st)
	if !ok {
		s.retryAfter(w, st.ResetIn, false)
		abuseFail(w, r, abuseErr(http.StatusTooManyRequests,
			fmt.Sprintf("Daily rate limit of %d requests exceeded for this endpoint. See headers for additional details.", st.Limit), ""))
		return
	}
	s.writeOK(w, struct {
		Data any `json:"data"`
	}{reply(s.now())})
}

// abuseCheckData is the data of a /check reply, as AbuseIPDB sends it without verbose.
type abuseCheckData struct {
	IPAddress            string   `json:"ipAddress"`
	IsPublic             bool     `json:"isPublic"`
	IPVersion            int      `json:"ipVersion"`
	IsWhitelisted        *bool    `json:"isWhitelisted"`
	AbuseConfidenceScore int      `json:"abuseConfidenceScore"`
	CountryCode          *string  `json:"countryCode"`
	UsageType            *string  `json:"usageType"`
	ISP                  string   `json:"isp"`
	Domain               *string  `json:"domain"`
	Hostnames            []string `json:"hostnames"`
	IsTor                bool     `json:"isTor"`
	TotalReports         int      `json:"totalReports"`
	NumDistinctUsers     int      `json:"numDistinctUsers"`
	LastReportedAt       *string  `json:"lastReportedAt"`
}

// abuseCheckVerbose adds the keys only verbose replies carry.
type abuseCheckVerbose struct {
	abuseCheckData
	CountryName *string       `json:"countryName"`
	Reports     []abuseReport `json:"reports"`
}

type abuseReport struct {
	ReportedAt          string `json:"reportedAt"`
	Comment             string `json:"comment"`
	Categories          []int  `json:"categories"`
	ReporterID          int    `json:"reporterId"`
	ReporterCountryCode string `json:"reporterCountryCode"`
	ReporterCountryName string `json:"reporterCountryName"`
}

// abuseScore returns the abuseConfidenceScore of l.
func abuseScore(l Listing) int {
	if l.Score > 0 {
		return min(l.Score, 100)
	}
	switch l.status() {
	case statusMalicious:
		return 90
	case statusSuspicious:
		return 40
	}
	return 0
}

// abuseComments returns one comment per report of l; none when its score is 0.
func abuseComments(l Listing) []string {
	if abuseScore(l) == 0 {
		return nil
	}
	if len(l.Categories) > 0 {
		return l.Categories
	}
	return []string{"Malicious activity reported."}
}

func ptr[T any](v T) *T { return &v }

func (s *Server) abuseCheck(a netip.Addr, verbose bool, now time.Time) any {
	l, _ := s.listing(a)
	public := routable(a)
	score := abuseScore(l)
	comments := abuseComments(l)
	version := 4
	if a.Is6() && !a.Is4In6() {
		version = 6
	}
	d := abuseCheckVerbose{
		abuseCheckData: abuseCheckData{
			IPAddress:            a.String(),
			IsPublic:             public,
			IPVersion:            version,
			AbuseConfidenceScore: score,
			Hostnames:            []string{},
			IsTor:                l.Tor,
			TotalReports:         len(comments),
			NumDistinctUsers:     len(comments),
		},
		Reports: []abuseReport{},
	}
	switch {
	case l.status() == statusRIOT:
		d.IsWhitelisted = ptr(true)
	case score > 0:
		d.IsWhitelisted = ptr(false)
	}
	if public {
		c := l.country()
		d.CountryCode = ptr(c)
		d.CountryName = ptr(lookupCountry(c).Name)
		d.UsageType = ptr("Data Center/Web Hosting/Transit")
		d.ISP = "Example Hosting LLC"
		d.Domain = ptr("example-hosting.test")
		if score > 0 {
			d.Hostnames = []string{"host-" + strings.NewReplacer(".", "-", ":", "-").Replace(a.String()) + ".example-hosting.test"}
		}
	} else {
		d.UsageType = ptr("Reserved")
	}
	if score > 0 {
		last := now.Add(-time.Hour)
		d.LastReportedAt = ptr(offsetTime(last))
		for i, c := range comments {
			d.Reports = append(d.Reports, abuseReport{
				ReportedAt:          offsetTime(last.Add(-time.Duration(i) * 7 * time.Hour)),
				Comment:             c,
				Categories:          []int{14, 18},
				ReporterID:          4200 + i,
				ReporterCountryCode: "DE",
				ReporterCountryName: "Germany",
			})
		}
	}
	if verbose {
		return d
	}
	return d.abuseCheckData
}

type abuseBlockData struct {
	NetworkAddress   string              `json:"networkAddress"`
	Netmask          string              `json:"netmask"`
	MinAddress       string              `json:"minAddress"`
	MaxAddress       string              `json:"maxAddress"`
	NumPossibleHosts int                 `json:"numPossibleHosts"`
	AddressSpaceDesc string              `json:"addressSpaceDesc"`
	ReportedAddress  []abuseBlockAddress `json:"reportedAddress"`
}

type abuseBlockAddress struct {
	IPAddress            string  `json:"ipAddress"`
	NumReports           int     `json:"numReports"`
	MostRecentReport     string  `json:"mostRecentReport"`
	AbuseConfidenceScore int     `json:"abuseConfidenceScore"`
	CountryCode          *string `json:"countryCode"`
}

// abuseCheckBlock answers for the masked prefix p, as the documented 127.0.0.1/24 sample
// does: min and max exclude the network and broadcast addresses.
func (s *Server) abuseCheckBlock(p netip.Prefix, now time.Time) abuseBlockData {
	network := p.Addr()
	hostBits := network.BitLen() - p.Bits()
	last := lastAddr(p)
	minA, maxA, hosts := network, last, 1<<hostBits
	if hostBits >= 2 {
		minA, maxA, hosts = network.Next(), last.Prev(), hosts-2
	}
	mask := net.CIDRMask(p.Bits(), network.BitLen())
	maskAddr, _ := netip.AddrFromSlice(mask)
	d := abuseBlockData{
		NetworkAddress:   network.String(),
		Netmask:          maskAddr.String(),
		MinAddress:       minA.String(),
		MaxAddress:       maxA.String(),
		NumPossibleHosts: hosts,
		AddressSpaceDesc: addressSpace(network),
		ReportedAddress:  []abuseBlockAddress{},
	}
	for _, al := range s.listingsIn(p) {
		n := len(abuseComments(al.listing))
		if n == 0 {
			continue
		}
		var cc *string
		if routable(al.addr) {
			cc = ptr(al.listing.country())
		}
		d.ReportedAddress = append(d.ReportedAddress, abuseBlockAddress{
			IPAddress:            al.addr.String(),
			NumReports:           n,
			MostRecentReport:     offsetTime(now.Add(-time.Hour)),
			AbuseConfidenceScore: abuseScore(al.listing),
			CountryCode:          cc,
		})
	}
	return d
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func addressSpace(a netip.Addr) string {
	switch {
	case a.IsLoopback():
		return "Loopback"
	case a.IsPrivate():
		return "Private"
	case routable(a):
		return "Internet"
	}
	return "Reserved"
}
