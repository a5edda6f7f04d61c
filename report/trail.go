package report

import (
	"fmt"
	"time"

	"github.com/sgvet/sgvet/collector"
)

// ruleTrail is what CloudTrail says of a finding's rule: who added it and when, and its
// last modification; or, when no event in the window added it, that it was added before
// the window began.
type ruleTrail struct {
	collector.RuleHistory
	// Before is set when CloudTrail's events were read from Before on and none added the
	// rule: it is older than that.
	Before time.Time
}

// trailOf returns what CloudTrail says of r, or nil when it says nothing: its events were
// not read for r's region, and no CloudTrail file named r. A rule that no event names, of
// a group whose creation CloudTrail recorded (under the group's id), was added with its
// group: so is the outbound rule EC2 gives every new group.
func (b *builder) trailOf(r *collector.Rule) *ruleTrail {
	h, ok := b.inv.RuleChanges[r.ID]
	if !ok || r.ID == "" {
		h, ok = b.inv.RuleChanges[r.GroupID]
		h.Modified = nil
	}
	covered := b.inv.CloudTrail.Covers(r.Account, r.Region)
	if ok && (h.Added != nil || h.Modified != nil) {
		t := &ruleTrail{RuleHistory: h}
		if h.Added == nil && covered {
			t.Before = b.inv.CloudTrail.Since
		}
		return t
	}
	if !covered {
		return nil
	}
	// Every rule that no event added shares one.
	if b.olderThanTrail == nil {
		b.olderThanTrail = &ruleTrail{Before: b.inv.CloudTrail.Since}
	}
	return b.olderThanTrail
}

// trailReason says who added the rule of t and when, and who modified it last.
func trailReason(t *ruleTrail) (string, bool) {
	if t == nil || t.Added == nil && t.Modified == nil {
		return "", false
	}
	var s string
	if a := t.Added; a != nil {
		s = fmt.Sprintf("added by %s on %s (CloudTrail)", a.Principal, a.At.UTC().Format(time.DateOnly))
	}
	if m := t.Modified; m != nil {
		if s != "" {
			s += "; "
		}
		s += fmt.Sprintf("last modified by %s on %s (CloudTrail)", m.Principal, m.At.UTC().Format(time.DateOnly))
	}
	return s, true
}

// addedSince returns when the rule of t was added, as CloudTrail tells: the time of the
// event that added it, or, when none did in the window, the window's start, before which
// it was added (older is set). Zero when CloudTrail does not tell.
func (t *ruleTrail) addedSince() (at time.Time, older bool) {
	switch {
	case t == nil:
		return time.Time{}, false
	case t.Added != nil:
		return t.Added.At, false
	case !t.Before.IsZero():
		return t.Before, true
	}
	return time.Time{}, false
}
