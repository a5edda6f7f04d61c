package reputation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
)

// AbuseIPDBThresholds are the confidence scores (0 to 100) from which an address is
// malicious or suspicious.
type AbuseIPDBThresholds struct {
	Malicious  int
	Suspicious int
}

// DefaultAbuseIPDBThresholds: 75 and up is malicious, 25 and up suspicious.
var DefaultAbuseIPDBThresholds = AbuseIPDBThresholds{Malicious: 75, Suspicious: 25}

// AbuseIPDB asks AbuseIPDB (API v2): /check for an address, /check-block for a prefix no
// larger than MaxBlockBits allows.
type AbuseIPDB struct {
	svc        *service
	thresholds AbuseIPDBThresholds
	maxAge     int
	blockBits  int
	// blockSpent is set once check-block's own daily quota (100 on a free account) is
	// spent: prefixes are then unknown without a request, while check goes on.
	blockSpent atomic.Bool
}

// AbuseIPDBConfig is what AbuseIPDB needs besides the ServiceConfig.
type AbuseIPDBConfig struct {
	Thresholds AbuseIPDBThresholds
	// MaxAgeDays is how far back reports count, 1 to 365; 0 means 30.
	MaxAgeDays int
	// BlockPrefix is the shortest IPv4 prefix length /check-block is asked about (24 for a
	// free account, 16 for paid plans); 0 means 24, negative disables /check-block.
	BlockPrefix int
}

// NewAbuseIPDB returns an AbuseIPDB client. The key travels in the Key header.
func NewAbuseIPDB(cfg ServiceConfig, ac AbuseIPDBConfig) *AbuseIPDB {
	if ac.Thresholds == (AbuseIPDBThresholds{}) {
		ac.Thresholds = DefaultAbuseIPDBThresholds
	}
	if ac.MaxAgeDays <= 0 {
		ac.MaxAgeDays = 30
	}
	if ac.BlockPrefix == 0 {
		ac.BlockPrefix = 24
	}
	svc := newService("abuseipdb", "Key", cfg, abuseIPDBMessage)
	// The daily limit's 429 says so and leaves no request; any other 429 is throttling.
	svc.spent = func(r *reply) bool {
		return strings.Contains(strings.ToLower(abuseIPDBMessage(r.body)), "daily rate limit")
	}
	return &AbuseIPDB{
		svc:        svc,
		thresholds: ac.Thresholds,
		maxAge:     ac.MaxAgeDays,
		blockBits:  ac.BlockPrefix,
	}
}

// Name returns "abuseipdb".
func (a *AbuseIPDB) Name() string { return a.svc.name }

// BatchSize returns 1: AbuseIPDB has no bulk check.
func (a *AbuseIPDB) BatchSize() int { return 1 }

// Supports accepts addresses, and IPv4 prefixes of BlockPrefix bits or more.
func (a *AbuseIPDB) Supports(t Target) error {
	if t.IsAddress() {
		return nil
	}
	switch {
	case a.blockBits < 0:
		return unsupported("prefix %s: check-block is turned off", t)
	case !t.Addr().Is4() || t.Bits() < a.blockBits:
		return unsupported("prefix %s: check-block is configured for IPv4 prefixes of /%d or longer", t, a.blockBits)
	case a.blockSpent.Load():
		return unsupported("prefix %s: check-block's daily quota is spent", t)
	}
	return nil
}

// Lookup checks the one target.
func (a *AbuseIPDB) Lookup(ctx context.Context, targets []Target) (Answer, error) {
	if len(targets) != 1 {
		return Answer{}, fmt.Errorf("abuseipdb: one target per lookup, got %d", len(targets))
	}
	t := targets[0]
	if t.IsAddress() {
		return a.check(ctx, t)
	}
	return a.checkBlock(ctx, t)
}

func (a *AbuseIPDB) check(ctx context.Context, t Target) (Answer, error) {
	q := url.Values{"ipAddress": {t.Addr().String()}, "maxAgeInDays": {strconv.Itoa(a.maxAge)}}
	r, err := a.svc.do(ctx, http.MethodGet, "/check", q, nil)
	if err != nil {
		return Answer{}, err
	}
	var body struct {
		Data *struct {
			IPAddress            string  `json:"ipAddress"`
			AbuseConfidenceScore *int    `json:"abuseConfidenceScore"`
			CountryCode          *string `json:"countryCode"`
			UsageType            *string `json:"usageType"`
			ISP                  string  `json:"isp"`
			Domain               *string `json:"domain"`
			IsTor                bool    `json:"isTor"`
			IsWhitelisted        *bool   `json:"isWhitelisted"`
			TotalReports         int     `json:"totalReports"`
			NumDistinctUsers     int     `json:"numDistinctUsers"`
			LastReportedAt       *string `json:"lastReportedAt"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		return Answer{}, fmt.Errorf("abuseipdb: malformed reply: %w", err)
	}
	d := body.Data
	now := a.svc.now().UTC()
	if d == nil || d.AbuseConfidenceScore == nil {
		return a.svc.answer(r, unknown(a.Name(), t, now, "the reply carries no abuseConfidenceScore"))
	}
	if got, err := netip.ParseAddr(d.IPAddress); err != nil || got.Unmap() != t.Addr() {
		return a.svc.answer(r, unknown(a.Name(), t, now, "the reply is about another address than the one asked"))
	}
	v := Verdict{Provider: a.Name(), Target: t, CheckedAt: now, Score: score(*d.AbuseConfidenceScore)}
	v.Status = a.status(*d.AbuseConfidenceScore)
	if d.CountryCode != nil {
		v.Country = *d.CountryCode
	}
	var ev []string
	ev = append(ev, fmt.Sprintf("confidence %d%%, %s from %s in %d days", *d.AbuseConfidenceScore,
		count(d.TotalReports, "report"), count(d.NumDistinctUsers, "user"), a.maxAge))
	if d.LastReportedAt != nil && *d.LastReportedAt != "" {
		ev = append(ev, "last "+*d.LastReportedAt)
	}
	if d.UsageType != nil && *d.UsageType != "" {
		ev = append(ev, "usage "+*d.UsageType)
	}
	if d.ISP != "" {
		ev = append(ev, "ISP "+d.ISP)
	}
	if d.IsTor {
		ev = append(ev, "Tor exit node")
		v.Categories = append(v.Categories, "tor")
	}
	v.Evidence = strings.Join(ev, "; ")
	return a.svc.answer(r, v)
}

func (a *AbuseIPDB) checkBlock(ctx context.Context, t Target) (Answer, error) {
	q := url.Values{"network": {t.Prefix.String()}, "maxAgeInDays": {strconv.Itoa(a.maxAge)}}
	r, err := a.svc.do(ctx, http.MethodGet, "/check-block", q, nil)
	var spent *QuotaError
	if errors.As(err, &spent) {
		// check-block counts against a quota of its own: its end is not check's.
		a.blockSpent.Store(true)
		return Answer{Verdicts: []Verdict{unknown(a.Name(), t, a.svc.now().UTC(), "check-block's daily quota is spent: "+spent.Error())}}, nil
	}
	if err != nil {
		return Answer{}, err
	}
	var body struct {
		// Data is an object; an empty one, or an empty array, says nothing.
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		return Answer{}, fmt.Errorf("abuseipdb: malformed reply: %w", err)
	}
	now := a.svc.now().UTC()
	var data struct {
		NetworkAddress  *string `json:"networkAddress"`
		Netmask         string  `json:"netmask"`
		ReportedAddress *[]struct {
			IPAddress            string `json:"ipAddress"`
			NumReports           int    `json:"numReports"`
			AbuseConfidenceScore int    `json:"abuseConfidenceScore"`
		} `json:"reportedAddress"`
	}
	if json.Unmarshal(body.Data, &data) != nil || data.NetworkAddress == nil || data.ReportedAddress == nil {
		return a.svc.answer(r, unknown(a.Name(), t, now, "the reply carries no data about the network"))
	}
	if !a.sameNetwork(t, *data.NetworkAddress, data.Netmask) {
		return a.svc.answer(r, unknown(a.Name(), t, now, "the reply is about another network than the one asked"))
	}
	reported := *data.ReportedAddress
	for _, ra := range reported {
		if ip, err := netip.ParseAddr(ra.IPAddress); err != nil || !t.Contains(ip.Unmap()) {
			return a.svc.answer(r, unknown(a.Name(), t, now, "the reply lists an address outside the network asked"))
		}
	}
	v := Verdict{Provider: a.Name(), Target: t, CheckedAt: now}
	worst, worstAddr := 0, ""
	var listed []string
	for _, ra := range reported {
		if ra.AbuseConfidenceScore > worst || worstAddr == "" {
			worst, worstAddr = ra.AbuseConfidenceScore, ra.IPAddress
		}
		if a.status(ra.AbuseConfidenceScore) != Clean {
			listed = append(listed, fmt.Sprintf("%s (%d%%)", ra.IPAddress, ra.AbuseConfidenceScore))
		}
	}
	v.Score = score(worst)
	v.Status = a.status(worst)
	n := len(reported)
	switch {
	case n == 0:
		v.Evidence = fmt.Sprintf("no address reported in %d days", a.maxAge)
	case len(listed) == 0:
		v.Evidence = fmt.Sprintf("%s reported in %d days, highest confidence %d%% (%s)", count(n, "address"), a.maxAge, worst, worstAddr)
	default:
		if len(listed) > 5 {
			listed = append(listed[:5], fmt.Sprintf("and %d more", len(listed)-5))
		}
		v.Evidence = fmt.Sprintf("%s reported in %d days: %s", count(n, "address"), a.maxAge, strings.Join(listed, ", "))
	}
	return a.svc.answer(r, v)
}

// sameNetwork reports whether check-block's networkAddress and netmask (dotted, or a
// prefix length) describe the prefix asked. An absent netmask is not held against it.
func (a *AbuseIPDB) sameNetwork(t Target, network, netmask string) bool {
	addr, err := netip.ParseAddr(network)
	if err != nil || addr.Unmap() != t.Addr() {
		return false
	}
	if netmask == "" {
		return true
	}
	if bits, err := strconv.Atoi(netmask); err == nil {
		return bits == t.Bits()
	}
	mask, err := netip.ParseAddr(netmask)
	if err != nil || !mask.Is4() {
		return false
	}
	ones := netip.AddrFrom4([4]byte{255, 255, 255, 255})
	return mask == netip.PrefixFrom(ones, t.Bits()).Masked().Addr()
}

func (a *AbuseIPDB) status(confidence int) Status {
	switch {
	case confidence >= a.thresholds.Malicious:
		return Malicious
	case confidence >= a.thresholds.Suspicious:
		return Suspicious
	}
	return Clean
}

// abuseIPDBMessage reads AbuseIPDB's JSON:API error envelope.
func abuseIPDBMessage(body []byte) string {
	var e struct {
		Errors []struct {
			Detail string `json:"detail"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil {
		return strings.TrimSpace(string(body))
	}
	var msgs []string
	for _, d := range e.Errors {
		msgs = append(msgs, d.Detail)
	}
	return strings.Join(msgs, "; ")
}

// count writes n and the noun, in the plural unless n is 1.
func count(n int, noun string) string {
	switch {
	case n == 1:
		return "1 " + noun
	case strings.HasSuffix(noun, "s"):
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
