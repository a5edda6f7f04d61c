package vetting

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/sgvet/sgvet/reputation"
)

func TestGathering(t *testing.T) {
	target := func(s string) reputation.Target { return reputation.AddressTarget(netip.MustParseAddr(s)) }
	a, b, c, other := target("198.51.100.1"), target("198.51.100.2"), target("198.51.100.3"), target("203.0.113.9")
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	verdict := func(provider string, t reputation.Target, status reputation.Status, cats ...string) reputation.Verdict {
		// Each string is a fresh copy, as decoding a message makes them.
		return reputation.Verdict{Provider: string([]byte(provider)), Target: t, Status: reputation.Status([]byte(status)),
			Categories: cats, Reason: string([]byte("")), CheckedAt: at}
	}
	g := NewGathering([]reputation.Target{a, b, c, a})
	g.Add([]reputation.Verdict{
		verdict("blocklist", b, reputation.Malicious, string([]byte("botnet"))),
		verdict("metadefender", b, reputation.Malicious, string([]byte("botnet"))),
		verdict("blocklist", a, reputation.Clean),
		verdict("blocklist", other, reputation.Malicious), // not asked about: dropped
	})
	g.Add([]reputation.Verdict{verdict("metadefender", a, reputation.Clean)}) // a's second provider, in another message
	got := g.Results()

	// In the order of the targets, each once; c got no verdict and is left out.
	var order []reputation.Target
	for _, r := range got {
		order = append(order, r.Target)
	}
	if want := []reputation.Target{a, b}; !reflect.DeepEqual(order, want) {
		t.Fatalf("targets = %v, want %v", order, want)
	}
	if n := len(got[0].Verdicts); n != 2 || got[0].Verdicts[0].Provider != "blocklist" || got[0].Verdicts[1].Provider != "metadefender" {
		t.Errorf("verdicts of %s = %+v, want blocklist then metadefender", a, got[0].Verdicts)
	}
	bv := got[1].Verdicts
	if len(bv) != 2 || bv[0].Status != reputation.Malicious || !reflect.DeepEqual(bv[1].Categories, []string{"botnet"}) {
		t.Fatalf("verdicts of %s = %+v", b, bv)
	}
	// Strings many verdicts share are held once.
	same := func(x, y string) bool { return unsafe.StringData(x) == unsafe.StringData(y) }
	if !same(got[0].Verdicts[0].Provider, bv[0].Provider) || !same(string(bv[0].Status), string(bv[1].Status)) {
		t.Error("provider names and statuses are not shared")
	}
	if &bv[0].Categories[0] != &bv[1].Categories[0] {
		t.Error("equal categories are not shared")
	}
	// A shared list of categories cannot be appended to in place.
	if cap(bv[0].Categories) != len(bv[0].Categories) {
		t.Errorf("shared categories have room to grow: cap %d, len %d", cap(bv[0].Categories), len(bv[0].Categories))
	}
}

// TestGatheringPrefersAnswers: of one provider's verdicts on a target given twice, as a
// message delivered twice or vetted twice gives them, an answer replaces a failure
// (unknown), whichever comes first.
func TestGatheringPrefersAnswers(t *testing.T) {
	ts := addresses(2)
	g := NewGathering(ts)
	g.Add(append(verdictsOn(ts[:1], "metadefender", reputation.Unknown), verdictsOn(ts[1:], "metadefender", reputation.Malicious)...))
	g.Add(append(verdictsOn(ts[:1], "metadefender", reputation.Malicious), verdictsOn(ts[1:], "metadefender", reputation.Unknown)...))
	got := g.Results()
	if len(got) != 2 {
		t.Fatalf("Results() = %+v, want both targets", got)
	}
	for _, r := range got {
		if len(r.Verdicts) != 1 || r.Verdicts[0].Status != reputation.Malicious {
			t.Errorf("verdicts of %s = %+v, want metadefender's malicious only", r.Target, r.Verdicts)
		}
	}
}

// TestGatheringSettles checks that, with settle set, a target some provider answered for and
// none called bad keeps one shared bare clean verdict, and that the others keep theirs.
func TestGatheringSettles(t *testing.T) {
	target := func(s string) reputation.Target { return reputation.AddressTarget(netip.MustParseAddr(s)) }
	clean, also, unvetted, bad, late := target("198.51.100.1"), target("198.51.100.2"), target("198.51.100.3"), target("198.51.100.4"), target("198.51.100.5")
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	v := func(provider string, t reputation.Target, status reputation.Status) reputation.Verdict {
		return reputation.Verdict{Provider: provider, Target: t, Status: status, Evidence: "evidence on " + t.String(), CheckedAt: at}
	}
	g := NewGathering([]reputation.Target{clean, also, unvetted, bad, late})
	g.Settle = true
	g.Add([]reputation.Verdict{
		v("metadefender", clean, reputation.Unknown), v("blocklist", clean, reputation.Clean),
		v("blocklist", also, reputation.Clean),
		v("metadefender", unvetted, reputation.Unknown),
		v("blocklist", bad, reputation.Clean), v("metadefender", bad, reputation.Suspicious),
		v("blocklist", late, reputation.Clean),
	})
	g.Add([]reputation.Verdict{v("metadefender", late, reputation.Malicious)}) // after late was settled
	got := map[reputation.Target][]reputation.Verdict{}
	for _, r := range g.Results() {
		got[r.Target] = r.Verdicts
	}
	bare := []reputation.Verdict{{Provider: "blocklist", Status: reputation.Clean}}
	for _, c := range []struct {
		target reputation.Target
		want   []reputation.Verdict
	}{
		{clean, bare},
		{also, bare},
		{unvetted, []reputation.Verdict{v("metadefender", unvetted, reputation.Unknown)}},
		{bad, []reputation.Verdict{v("blocklist", bad, reputation.Clean), v("metadefender", bad, reputation.Suspicious)}},
		{late, append(slices.Clone(bare), v("metadefender", late, reputation.Malicious))},
	} {
		if !reflect.DeepEqual(got[c.target], c.want) {
			t.Errorf("verdicts of %s = %+v, want %+v", c.target, got[c.target], c.want)
		}
	}
	if &got[clean][0] != &got[also][0] {
		t.Error("the settled verdict is not shared")
	}
}

// TestGatheringCopiesKeptRuns checks that verdicts kept from a message live in an array of
// the message's length, not in the decoder's, which has room to spare.
func TestGatheringCopiesKeptRuns(t *testing.T) {
	a, b := reputation.AddressTarget(netip.MustParseAddr("41.71.171.50")), reputation.AddressTarget(netip.MustParseAddr("41.71.171.51"))
	msg := make([]reputation.Verdict, 2, 64)
	msg[0] = reputation.Verdict{Provider: "blocklist", Target: a, Status: reputation.Malicious}
	msg[1] = reputation.Verdict{Provider: "blocklist", Target: b, Status: reputation.Clean}
	g := NewGathering([]reputation.Target{a, b})
	g.Add(msg)
	got := g.Results()
	if len(got) != 2 || got[0].Verdicts[0].Status != reputation.Malicious || got[1].Verdicts[0].Status != reputation.Clean {
		t.Fatalf("results = %+v", got)
	}
	for _, r := range got {
		if &r.Verdicts[0] == &msg[0] || &r.Verdicts[0] == &msg[1] {
			t.Errorf("verdicts of %s are still in the decoder's array", r.Target)
		}
		if cap(r.Verdicts) != len(r.Verdicts) {
			t.Errorf("verdicts of %s: cap %d, len %d; want no room to grow in place", r.Target, cap(r.Verdicts), len(r.Verdicts))
		}
	}
}
