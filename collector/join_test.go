package collector

import (
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
