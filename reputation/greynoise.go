package reputation

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// GreyNoise asks the GreyNoise Community API about one IPv4 address per request. The key is
// optional: without one the service answers fewer requests.
type GreyNoise struct {
	svc *service
}

// NewGreyNoise returns a GreyNoise client. The key, if any, travels in the key header.
func NewGreyNoise(cfg ServiceConfig) *GreyNoise {
	svc := newService("greynoise", "key", cfg, greyNoiseMessage)
	svc.spent = greyNoiseSpent
	return &GreyNoise{svc: svc}
}

// Name returns "greynoise".
func (g *GreyNoise) Name() string { return g.svc.name }

// BatchSize returns 1: the Community API has no bulk lookup.
func (g *GreyNoise) BatchSize() int { return 1 }

// Supports accepts IPv4 addresses only.
func (g *GreyNoise) Supports(t Target) error {
	if err := addressesOnly(t); err != nil {
		return err
	}
	if !t.Addr().Is4() {
		return unsupported("%s: the Community API answers for IPv4 only", t)
	}
	return nil
}

// Lookup asks about the one target. Classification malicious is malicious; a RIOT entry (a
// known business service) is clean, with its name; a 404 with the "not observed" body is
// clean: the address was not seen scanning the internet. An address seen scanning whose
// classification is neither benign nor malicious is suspicious.
func (g *GreyNoise) Lookup(ctx context.Context, targets []Target) (Answer, error) {
	if len(targets) != 1 {
		return Answer{}, fmt.Errorf("greynoise: one target per lookup, got %d", len(targets))
	}
	t := targets[0]
	r, err := g.svc.do(ctx, http.MethodGet, "/v3/community/"+t.Addr().String(), nil, nil, http.StatusNotFound)
	if err != nil {
		return Answer{}, err
	}
	var body struct {
		IP             string  `json:"ip"`
		Noise          *bool   `json:"noise"`
		RIOT           *bool   `json:"riot"`
		Classification string  `json:"classification"`
		Name           string  `json:"name"`
		LastSeen       string  `json:"last_seen"`
		Message        *string `json:"message"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || body.Noise == nil || body.RIOT == nil {
		if r.status == http.StatusNotFound {
			// A 404 without the documented body is a wrong URL, not an answer.
			return Answer{}, &StatusError{Provider: g.Name(), Status: r.status, Message: oneLine(greyNoiseMessage(r.body), g.svc.key)}
		}
		if err == nil {
			err = fmt.Errorf("no noise or riot field")
		}
		return Answer{}, fmt.Errorf("greynoise: malformed reply: %w", err)
	}
	now := g.svc.now().UTC()
	if ip, err := netip.ParseAddr(body.IP); err != nil || ip.Unmap() != t.Addr() {
		return g.svc.answer(r, unknown(g.Name(), t, now, "the reply is about another address than the one asked"))
	}
	v := Verdict{Provider: g.Name(), Target: t, CheckedAt: now}
	switch {
	case r.status == http.StatusNotFound:
		v.Status = Clean
		v.Evidence = "not observed scanning the internet, not a known business service"
	case body.Classification == "malicious":
		v.Status = Malicious
		v.Categories = []string{"scanner"}
		v.Evidence = "classified malicious: observed scanning the internet"
	case *body.RIOT:
		v.Status = Clean
		v.Categories = []string{"business-service"}
		v.Evidence = "known business service"
	case *body.Noise && body.Classification == "benign":
		v.Status = Clean
		v.Categories = []string{"scanner"}
		v.Evidence = "observed scanning the internet, classified benign"
	case *body.Noise:
		// Scanning the internet with no known purpose: worth a look in an allow rule.
		v.Status = Suspicious
		v.Categories = []string{"scanner"}
		v.Evidence = "observed scanning the internet, classified " + orUnknown(body.Classification)
	default:
		v.Status = Clean
		v.Evidence = "classified " + orUnknown(body.Classification)
	}
	if body.Name != "" && body.Name != "unknown" {
		v.Evidence += " (" + body.Name + ")"
	}
	if body.LastSeen != "" {
		v.Evidence += "; last seen " + body.LastSeen
	}
	return g.svc.answer(r, v)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// greyNoiseMessage reads GreyNoise's {"message": ...} error body.
func greyNoiseMessage(body []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) != nil {
		return strings.TrimSpace(string(body))
	}
	return e.Message
}

// greyNoiseSpent reports whether a 429 is the plan's limit, whose body names the plan and
// its rate limit, e.g. "100-lookups/day".
func greyNoiseSpent(r *reply) bool {
	var e struct {
		Plan      string `json:"plan"`
		RateLimit string `json:"rate-limit"`
	}
	return json.Unmarshal(r.body, &e) == nil && (e.Plan != "" || e.RateLimit != "")
}
