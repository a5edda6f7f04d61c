package collector

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"
)

// TestJoinCollectionsTrailWindow: the CloudTrail window of joined parts is the one they all
// cover, whichever part comes first.
func TestJoinCollectionsTrailWindow(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 6, d, 0, 0, 0, 0, time.UTC) }
	part := func(region string, since, until time.Time) Collection {
		return Collection{Regions: []string{region}, RuleChanges: Attributions{},
			CloudTrail: &TrailCoverage{Since: since, Until: until, Regions: []AccountRegion{{"111122223333", region}}}}
	}
	c := joinCollections([]Collection{
		part("eu-west-1", day(1), day(20)),
		part("us-east-1", day(3), day(25)),
		{Regions: []string{"ap-south-1"}}, // no CloudTrail coverage
		part("us-west-2", day(2), day(18)),
	})
	if c.CloudTrail == nil {
		t.Fatal("joinCollections: no CloudTrail coverage")
	}
	if got := c.CloudTrail; !got.Since.Equal(day(3)) || !got.Until.Equal(day(18)) {
		t.Errorf("joinCollections window = %v to %v, want %v to %v", got.Since, got.Until, day(3), day(18))
	}
	if n := len(c.CloudTrail.Regions); n != 3 {
		t.Errorf("joinCollections covers %d regions, want 3", n)
	}
}

func TestTrailWindow(t *testing.T) {
	now := time.Date(2026, 6, 30, 12, 0, 0, 0, time.UTC)
	since, until := now.Add(-48*time.Hour), now.Add(-24*time.Hour)
	tests := []struct {
		name                 string
		since, until         time.Time
		wantSince, wantUntil time.Time
	}{
		{"both zero", time.Time{}, time.Time{}, now.Add(-CloudTrailWindow), now},
		{"until only", time.Time{}, until, until.Add(-CloudTrailWindow), until},
		{"since only", since, time.Time{}, since, now},
		{"both", since, until, since, until},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotSince, gotUntil := trailWindow(tt.since, tt.until, now)
			if !gotSince.Equal(tt.wantSince) || !gotUntil.Equal(tt.wantUntil) {
				t.Errorf("trailWindow(%v, %v) = %v, %v, want %v, %v", tt.since, tt.until, gotSince, gotUntil, tt.wantSince, tt.wantUntil)
			}
		})
	}
}

// TestTrailLookupWait: an error of the lookup makes the region's attribution unknown, even
// one that wraps context.DeadlineExceeded (an HTTP client's timeout) or comes from a rate
// limiter whose wait would pass the deadline; only the end of the region's context is
// returned.
func TestTrailLookupWait(t *testing.T) {
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	httpTimeout := fmt.Errorf("look up %s events: %w", EventAuthorizeIngress,
		&url.Error{Op: "Post", URL: "https://cloudtrail.eu-west-1.amazonaws.com/", Err: context.DeadlineExceeded})
	tests := []struct {
		name    string
		ctx     context.Context
		err     error
		wantErr bool
	}{
		{"http timeout", t.Context(), httpTimeout, false},
		{"limiter past deadline", t.Context(), errors.New("rate: Wait(n=1) would exceed context deadline"), false},
		{"region context ended", ended, context.Canceled, true},
		{"api error after the region's context ended", ended, errors.New("AccessDeniedException"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := trailLookup{region: "eu-west-1", done: make(chan trailResult, 1), cancel: func() {}}
			lookup.done <- trailResult{err: tt.err}
			var res regionResult
			err := lookup.wait(tt.ctx, &res)
			if tt.wantErr {
				if err == nil {
					t.Errorf("wait(%v) = nil, want the context's error", tt.err)
				}
				return
			}
			if err != nil {
				t.Errorf("wait(%v) = %v, want nil", tt.err, err)
			}
			if len(res.unknown) != 1 || res.unknown[0].Context != ContextAttribution || res.trailRead {
				t.Errorf("wait(%v): unknown %+v, trailRead %v; want attribution unknown", tt.err, res.unknown, res.trailRead)
			}
		})
	}
}
