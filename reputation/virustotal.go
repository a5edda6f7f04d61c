package reputation

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// VirusTotalThresholds are the counts of engines from which an address is malicious
// (engines saying malicious) or suspicious (engines saying malicious or suspicious), and
// the community reputation from which engines alone make it no worse than suspicious.
type VirusTotalThresholds struct {
	Malicious  int
	Suspicious int
	// TrustedReputation: an address whose community reputation is at least this is at
	// most suspicious, however many engines flag it. Popular public resolvers and CDNs are
	// flagged by a few engines each while the community vouches for them. 0 turns it off.
	TrustedReputation int
}

// DefaultVirusTotalThresholds: two engines saying malicious make it malicious, one engine
// saying malicious or suspicious makes it suspicious, and a community reputation of +50 or
// more caps the verdict at suspicious.
var DefaultVirusTotalThresholds = VirusTotalThresholds{Malicious: 2, Suspicious: 1, TrustedReputation: 50}

// virusTotalMinuteQuota is how long VirusTotal's QuotaExceededError is waited out: the
// public API counts 4 requests a minute, and the error does not say which of its minute,
// daily or monthly quotas is spent. If it comes again after the wait, it is the daily or
// monthly one, and the provider stops.
const virusTotalMinuteQuota = time.Minute

// VirusTotal asks VirusTotal (API v3) about one address per request.
type VirusTotal struct {
	svc        *service
	thresholds VirusTotalThresholds
	// quotaRefused is set by a QuotaExceededError and cleared by an answer: a second one in
	// a row, after the minute was waited out, means a daily or monthly quota is spent.
	quotaRefused atomic.Bool
}

// NewVirusTotal returns a VirusTotal client. The key travels in the x-apikey header.
func NewVirusTotal(cfg ServiceConfig, th VirusTotalThresholds) *VirusTotal {
	if th == (VirusTotalThresholds{}) {
		th = DefaultVirusTotalThresholds
	}
	v := &VirusTotal{thresholds: th}
	v.svc = newService("virustotal", "x-apikey", cfg, virusTotalMessage)
	v.svc.spent = func(r *reply) bool {
		return virusTotalCode(r.body) == "QuotaExceededError" && v.quotaRefused.Load()
	}
	v.svc.throttleWait = func(r *reply) time.Duration {
		if virusTotalCode(r.body) == "QuotaExceededError" {
			return virusTotalMinuteQuota
		}
		return 0
	}
	return v
}

// Name returns "virustotal".
func (v *VirusTotal) Name() string { return v.svc.name }

// BatchSize returns 1: the public API has no bulk lookup.
func (v *VirusTotal) BatchSize() int { return 1 }

// Supports accepts IPv4 and IPv6 addresses, not prefixes.
func (v *VirusTotal) Supports(t Target) error { return addressesOnly(t) }

// Lookup asks about the one target. An address VirusTotal has never seen (404
// NotFoundError) is clean: no engine or user has ever reported it. An address no engine
// has analysed (empty last_analysis_stats) is unknown.
func (v *VirusTotal) Lookup(ctx context.Context, targets []Target) (Answer, error) {
	if len(targets) != 1 {
		return Answer{}, fmt.Errorf("virustotal: one target per lookup, got %d", len(targets))
	}
	t := targets[0]
	r, err := v.svc.do(ctx, http.MethodGet, "/ip_addresses/"+t.Addr().String(), nil, nil, http.StatusNotFound)
	if r != nil {
		v.quotaRefused.Store(r.status == http.StatusTooManyRequests && virusTotalCode(r.body) == "QuotaExceededError")
	}
	if err != nil {
		return Answer{}, err
	}
	now := v.svc.now().UTC()
	if r.status == http.StatusNotFound {
		if code := virusTotalCode(r.body); code != "NotFoundError" {
			return Answer{}, &StatusError{Provider: v.Name(), Status: r.status, Message: oneLine(virusTotalMessage(r.body), v.svc.key)}
		}
		return Answer{Verdicts: []Verdict{{Provider: v.Name(), Target: t, Status: Clean, Score: score(0),
			Evidence: "not known to VirusTotal: never analysed or reported", CheckedAt: now}}}, nil
	}
	var body struct {
		Data *struct {
			ID         string `json:"id"`
			Attributes struct {
				ASOwner           string `json:"as_owner"`
				Country           string `json:"country"`
				Network           string `json:"network"`
				LastAnalysisStats *struct {
					Harmless   int `json:"harmless"`
					Malicious  int `json:"malicious"`
					Suspicious int `json:"suspicious"`
					Undetected int `json:"undetected"`
					Timeout    int `json:"timeout"`
				} `json:"last_analysis_stats"`
				LastAnalysisResults map[string]struct {
					Category string `json:"category"`
					Result   string `json:"result"`
				} `json:"last_analysis_results"`
				Reputation int      `json:"reputation"`
				Tags       []string `json:"tags"`
			} `json:"attributes"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		return Answer{}, fmt.Errorf("virustotal: malformed reply: %w", err)
	}
	if body.Data == nil {
		return v.svc.answer(r, unknown(v.Name(), t, now, "the reply carries no data"))
	}
	if id, err := netip.ParseAddr(body.Data.ID); err != nil || id.Unmap() != t.Addr() {
		return v.svc.answer(r, unknown(v.Name(), t, now, "the reply is about another address than the one asked"))
	}
	at := body.Data.Attributes
	st := at.LastAnalysisStats
	if st == nil {
		return v.svc.answer(r, unknown(v.Name(), t, now, "the reply carries no last_analysis_stats"))
	}
	engines := st.Harmless + st.Malicious + st.Suspicious + st.Undetected + st.Timeout
	if engines == 0 {
		return v.svc.answer(r, unknown(v.Name(), t, now, "no engine has analysed the address"))
	}
	out := Verdict{Provider: v.Name(), Target: t, CheckedAt: now, Score: score(st.Malicious), Country: at.Country}
	trusted := v.thresholds.TrustedReputation > 0 && at.Reputation >= v.thresholds.TrustedReputation
	switch {
	case st.Malicious >= v.thresholds.Malicious && !trusted:
		out.Status = Malicious
	case st.Malicious+st.Suspicious >= v.thresholds.Suspicious:
		out.Status = Suspicious
	default:
		out.Status = Clean
	}
	ev := []string{fmt.Sprintf("%d of %d engines malicious, %d suspicious", st.Malicious, engines, st.Suspicious)}
	var flagged []string
	for name, res := range at.LastAnalysisResults {
		if res.Category == "malicious" || res.Category == "suspicious" {
			flagged = append(flagged, name+": "+res.Result)
		}
	}
	sort.Strings(flagged)
	if len(flagged) > 5 {
		flagged = append(flagged[:5], fmt.Sprintf("and %d more", len(flagged)-5))
	}
	if len(flagged) > 0 {
		ev = append(ev, "("+strings.Join(flagged, ", ")+")")
	}
	if trusted && st.Malicious >= v.thresholds.Malicious {
		ev = append(ev, fmt.Sprintf("community reputation %+d, at least %+d: at most suspicious", at.Reputation, v.thresholds.TrustedReputation))
	} else {
		ev = append(ev, fmt.Sprintf("community reputation %d", at.Reputation))
	}
	if at.ASOwner != "" {
		ev = append(ev, "AS "+at.ASOwner)
	}
	out.Evidence = strings.Join(ev, "; ")
	out.Categories = at.Tags
	return v.svc.answer(r, out)
}

func virusTotalCode(body []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Error.Code
}

// virusTotalMessage reads VirusTotal's error envelope.
func virusTotalMessage(body []byte) string {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return strings.TrimSpace(string(body))
	}
	if e.Error.Code == "" {
		return e.Error.Message
	}
	return e.Error.Code + ": " + e.Error.Message
}
