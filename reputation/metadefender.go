package reputation

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// MetaDefenderMaxBatch is the most addresses MetaDefender Cloud's bulk lookup accepts.
const MetaDefenderMaxBatch = 50

// MetaDefender asks OPSWAT MetaDefender Cloud (API v4) about addresses: GET /ip/{ip} for one,
// POST /ip/ with up to 50 for more. An address is malicious when any source lists it.
type MetaDefender struct {
	svc   *service
	batch int
}

// NewMetaDefender returns a MetaDefender client. The key travels in the apikey header.
func NewMetaDefender(cfg ServiceConfig) *MetaDefender {
	batch := cfg.BatchSize
	if batch <= 0 || batch > MetaDefenderMaxBatch {
		batch = MetaDefenderMaxBatch
	}
	svc := newService("metadefender", "apikey", cfg, metaDefenderMessage)
	// Only 429000, or no request left, means the key's quota is spent. 429001 is throttling,
	// even though its X-RateLimit-Reset-In counts down the day's window.
	svc.spent = func(r *reply) bool { return metaDefenderCode(r.body) == 429000 }
	svc.addressBlocked = func(body []byte) bool { return metaDefenderCode(body) == 403002 }
	return &MetaDefender{svc: svc, batch: batch}
}

// Name returns "metadefender".
func (m *MetaDefender) Name() string { return m.svc.name }

// BatchSize returns the most addresses one bulk request carries.
func (m *MetaDefender) BatchSize() int { return m.batch }

// Supports accepts IPv4 and IPv6 addresses, not prefixes.
func (m *MetaDefender) Supports(t Target) error { return addressesOnly(t) }

// Lookup asks about targets with one request: a single lookup for one address, the bulk
// lookup for more.
func (m *MetaDefender) Lookup(ctx context.Context, targets []Target) (Answer, error) {
	var (
		r   *reply
		err error
	)
	if len(targets) == 1 {
		r, err = m.svc.do(ctx, http.MethodGet, "/ip/"+targets[0].Addr().String(), nil, nil)
	} else {
		body := struct {
			Address []string `json:"address"`
		}{Address: make([]string, len(targets))}
		for i, t := range targets {
			body.Address[i] = t.Addr().String()
		}
		data, _ := json.Marshal(body)
		r, err = m.svc.do(ctx, http.MethodPost, "/ip/", nil, data)
	}
	if err != nil {
		return Answer{}, err
	}
	var results []mdResult
	if len(targets) == 1 {
		var one mdResult
		err = json.Unmarshal(r.body, &one)
		results = append(results, one)
	} else {
		var bulk struct {
			Data []mdResult `json:"data"`
		}
		err = json.Unmarshal(r.body, &bulk)
		results = bulk.Data
	}
	if err != nil {
		return Answer{}, fmt.Errorf("metadefender: malformed reply: %w", err)
	}
	now := m.svc.now().UTC()
	want := make(map[Target]bool, len(targets))
	for _, t := range targets {
		want[t] = true
	}
	// The bulk reply's order is not documented: match each result by its address. A result
	// about an address not asked is dropped: it must not be reported as an answer.
	var verdicts []Verdict
	foreign := 0
	for _, res := range results {
		t, err := ParseTarget(res.Address)
		if err != nil || !want[t] || !t.IsAddress() {
			foreign++
			continue
		}
		delete(want, t)
		verdicts = append(verdicts, res.verdict(t, now))
	}
	if foreign > 0 {
		for _, t := range targets {
			if want[t] {
				verdicts = append(verdicts, unknown(m.Name(), t, now, "the reply is about another address than the one asked"))
			}
		}
	}
	return m.svc.answer(r, verdicts...)
}

type mdResult struct {
	Address string `json:"address"`
	// LookupResults is nil in the older reply shape (success, data, scan_results), which
	// says nothing about the address.
	LookupResults *struct {
		DetectedBy int `json:"detected_by"`
		Sources    []struct {
			Provider   string `json:"provider"`
			Assessment string `json:"assessment"`
			DetectTime string `json:"detect_time"`
			Status     int    `json:"status"`
		} `json:"sources"`
	} `json:"lookup_results"`
	GeoInfo struct {
		Country struct {
			Code string `json:"code"`
			Name string `json:"name"`
		} `json:"country"`
	} `json:"geo_info"`
}

// MetaDefender source statuses.
const (
	mdWhitelisted = 0
	mdBlacklisted = 1
	mdFailed      = 3
)

func (res *mdResult) verdict(t Target, now time.Time) Verdict {
	if res.LookupResults == nil {
		return unknown("metadefender", t, now, "the reply carries no lookup_results: no source answered for the address")
	}
	v := Verdict{Provider: "metadefender", Target: t, CheckedAt: now, Country: res.GeoInfo.Country.Code}
	var listed, categories []string
	failed := 0
	for _, src := range res.LookupResults.Sources {
		switch {
		case src.Status == mdBlacklisted || src.Assessment != "" && src.Status != mdWhitelisted:
			entry := src.Provider
			if src.Assessment != "" {
				entry += " (" + src.Assessment + ")"
			}
			listed = append(listed, entry)
			for c := range strings.SplitSeq(src.Assessment, ",") {
				if c = strings.ToLower(strings.TrimSpace(c)); c != "" && !slices.Contains(categories, c) {
					categories = append(categories, c)
				}
			}
		case src.Status == mdFailed:
			failed++
		}
	}
	detected := max(res.LookupResults.DetectedBy, len(listed))
	v.Score = score(detected)
	sources := len(res.LookupResults.Sources)
	switch {
	case detected > 0:
		v.Status = Malicious
		v.Categories = categories
		switch {
		case len(listed) > 0:
			v.Evidence = fmt.Sprintf("listed by %d of %d sources: %s", detected, sources, strings.Join(listed, ", "))
		case sources > 0:
			v.Evidence = fmt.Sprintf("detected by %d of %d sources", detected, sources)
		default:
			v.Evidence = fmt.Sprintf("detected by %d sources", detected)
		}
	case sources == 0:
		return unknown("metadefender", t, now, "the reply lists no source: no source answered for the address")
	case failed == sources:
		return unknown("metadefender", t, now, fmt.Sprintf("none of %d sources could be checked", sources))
	default:
		v.Status = Clean
		v.Evidence = fmt.Sprintf("listed by none of %d sources", sources)
	}
	if c := res.GeoInfo.Country.Name; c != "" && v.Evidence != "" {
		v.Evidence += "; " + c
	}
	return v
}

// metaDefenderMessage reads MetaDefender's error envelope, whose messages is an array of
// strings or, on newer endpoints, one string.
func metaDefenderMessage(body []byte) string {
	var e struct {
		Error struct {
			Code     int             `json:"code"`
			Messages json.RawMessage `json:"messages"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return strings.TrimSpace(string(body))
	}
	var msgs []string
	var one string
	if json.Unmarshal(e.Error.Messages, &msgs) != nil && json.Unmarshal(e.Error.Messages, &one) == nil {
		msgs = []string{one}
	}
	msg := strings.Join(msgs, "; ")
	if e.Error.Code != 0 {
		msg = fmt.Sprintf("%s (%d)", msg, e.Error.Code)
	}
	return strings.TrimSpace(msg)
}

// addressesOnly is Supports for services that look up single addresses.
func addressesOnly(t Target) error {
	if !t.IsAddress() {
		return unsupported("prefix %s: looks up single addresses only", t)
	}
	return nil
}

// metaDefenderCode returns the error code of an error body: 429000 means the key's limit is
// spent, 429001 throttled, 429002 too many connections, 403002 the caller's address is
// blocked after repeated wrong keys.
func metaDefenderCode(body []byte) int {
	var e struct {
		Error struct {
			Code int `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Error.Code
}
