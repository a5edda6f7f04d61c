package reputation

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// VirusTotalThresholds are the counts of engines from which an address is malicious
// (engines saying malicious) or suspicious (engines saying malicious or suspicious).
type VirusTotalThresholds struct {
	Malicious  int
	Suspicious int
}

// DefaultVirusTotalThresholds: two engines saying malicious make it malicious, one engine
// saying malicious or suspicious makes it suspicious.
var DefaultVirusTotalThresholds = VirusTotalThresholds{Malicious: 2, Suspicious: 1}

// VirusTotal asks VirusTotal (API v3) about one address per request.
type VirusTotal struct {
	svc        *service
	thresholds VirusTotalThresholds
}

// NewVirusTotal returns a VirusTotal client. The key travels in the x-apikey header.
func NewVirusTotal(cfg ServiceConfig, th VirusTotalThresholds) *VirusTotal {
	if th == (VirusTotalThresholds{}) {
		th = DefaultVirusTotalThresholds
	}
	svc := newService("virustotal", "x-apikey", cfg, virusTotalMessage)
	svc.spent = func(body []byte) bool { return virusTotalCode(body) == "QuotaExceededError" }
	return &VirusTotal{svc: svc, thresholds: th}
}

// Name returns "virustotal".
func (v *VirusTotal) Name() string { return v.svc.name }

// BatchSize returns 1: the public API has no bulk lookup.
func (v *VirusTotal) BatchSize() int { return 1 }

// Supports accepts IPv4 and IPv6 addresses, not prefixes.
func (v *VirusTotal) Supports(t Target) error { return addressesOnly(t) }

// Lookup asks about the one target. An address VirusTotal has never seen (404
// NotFoundError) is clean.
func (v *VirusTotal) Lookup(ctx context.Context, targets []Target) (Answer, error) {
	if len(targets) != 1 {
		return Answer{}, fmt.Errorf("virustotal: one target per lookup, got %d", len(targets))
	}
	t := targets[0]
	r, err := v.svc.do(ctx, http.MethodGet, "/ip_addresses/"+t.Addr().String(), nil, nil, http.StatusNotFound)
	if err != nil {
		return Answer{}, err
	}
	now := v.svc.now().UTC()
	if r.status == http.StatusNotFound {
		if code := virusTotalCode(r.body); code != "NotFoundError" {
			return Answer{}, &StatusError{Provider: v.Name(), Status: r.status, Message: oneLine(virusTotalMessage(r.body), v.svc.key)}
		}
		return Answer{Verdicts: []Verdict{{Provider: v.Name(), Target: t, Status: Clean, Score: score(0),
			Evidence: "not known to VirusTotal", CheckedAt: now}}}, nil
	}
	var body struct {
		Data *struct {
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
	if body.Data == nil || body.Data.Attributes.LastAnalysisStats == nil {
		return Answer{}, fmt.Errorf("virustotal: malformed reply: no last_analysis_stats")
	}
	at := body.Data.Attributes
	st := at.LastAnalysisStats
	out := Verdict{Provider: v.Name(), Target: t, CheckedAt: now, Score: score(st.Malicious), Country: at.Country}
	switch {
	case st.Malicious >= v.thresholds.Malicious:
		out.Status = Malicious
	case st.Malicious+st.Suspicious >= v.thresholds.Suspicious:
		out.Status = Suspicious
	default:
		out.Status = Clean
	}
	engines := st.Harmless + st.Malicious + st.Suspicious + st.Undetected + st.Timeout
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
	ev = append(ev, fmt.Sprintf("community reputation %d", at.Reputation))
	if at.ASOwner != "" {
		ev = append(ev, "AS "+at.ASOwner)
	}
	out.Evidence = strings.Join(ev, "; ")
	out.Categories = at.Tags
	return Answer{Verdicts: []Verdict{out}}, nil
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
