package vetting

import (
	"slices"
	"strings"
	"sync/atomic"

	"github.com/sgvet/sgvet/reputation"
)

// Gathering collects the verdicts of a run's messages by target, in the order of the
// targets, holding as little as it can: a million addresses make a million results.
type Gathering struct {
	out   []reputation.Result
	index reputation.ResultIndex
	// strings and categories hold one copy of each provider name, status, country, reason
	// and list of categories that decoding made many of.
	strings    map[string]string
	categories map[string][]string
	// Settle is set when nothing will show the verdicts on a target that a provider
	// answered for and none called malicious or suspicious: a report shows the verdicts of
	// bad and unvetted addresses only, and only the history stores the others. Such a
	// target's verdicts are then replaced by one bare clean verdict, held once per
	// provider in settled, so that an estate of a million clean addresses does not keep a
	// million verdicts.
	Settle  bool
	settled map[string][]reputation.Verdict
	// kept lists the runs of the message being added that are filed as they are.
	kept []keptRun
	// wanted counts the distinct targets, answered those with verdicts.
	wanted   int64
	answered atomic.Int64
}

// NewGathering returns the gathering of the verdicts on targets, which it keeps.
func NewGathering(targets []reputation.Target) *Gathering {
	g := &Gathering{
		out:        make([]reputation.Result, len(targets)),
		strings:    map[string]string{},
		categories: map[string][]string{},
	}
	for i, t := range targets {
		g.out[i].Target = t
	}
	g.index = reputation.NewResultIndex(g.out)
	for i := range g.out {
		if found, _ := g.find(g.out[i].Target); int(found) == i {
			g.wanted++
		}
	}
	return g
}

// Missing returns how many of the targets have no verdict yet. It may be called while
// another goroutine adds verdicts.
func (g *Gathering) Missing() int { return int(g.wanted - g.answered.Load()) }

// find returns the index in out of target t, and false if the run did not ask about t. Of
// a target given twice the first is found; the second, which gets no verdict, is left out
// of the results.
func (g *Gathering) find(t reputation.Target) (int32, bool) {
	found := g.index.Lookup(t)
	if len(found) == 0 {
		return 0, false
	}
	return found[0], true
}

// Add files the verdicts of one message. A target's verdicts that are next to each other
// in the message are kept in one array of the message's length, not copied one by one (the
// decoder's own array has room to spare); verdicts on a target the run did not ask about
// are dropped, and so is a verdict on a target that already has one of its provider, unless
// that one is unknown and this one is not, which then replaces it: a message delivered
// twice, or vetted twice, adds nothing but the answer of a provider that failed the first
// time.
func (g *Gathering) Add(vs []reputation.Verdict) {
	g.kept = g.kept[:0]
	for start := 0; start < len(vs); {
		end := start + 1
		for end < len(vs) && vs[end].Target == vs[start].Target {
			end++
		}
		run := vs[start:end:end]
		for i := range run {
			g.intern(&run[i])
		}
		if i, ok := g.find(run[0].Target); ok {
			r := &g.out[i]
			if r.Verdicts == nil {
				r.Verdicts = run
				g.kept = append(g.kept, keptRun{result: i, start: start, end: end})
				g.answered.Add(1)
			} else {
				r.Verdicts = mergeVerdicts(r.Verdicts, run)
			}
			if g.Settle {
				g.settleVerdicts(r)
			}
		}
		start = end
	}
	// The runs still held in vs move to an array of its length.
	var own []reputation.Verdict
	for _, k := range g.kept {
		r := &g.out[k.result]
		if len(r.Verdicts) == 0 || &r.Verdicts[0] != &vs[k.start] {
			continue // settled, or appended to since
		}
		if own == nil {
			own = make([]reputation.Verdict, len(vs))
			copy(own, vs)
		}
		r.Verdicts = own[k.start:k.end:k.end]
	}
}

// mergeVerdicts appends to have the verdicts of run whose provider has none in have, and
// puts the known verdicts of run in place of their provider's unknown ones in have, in a
// copy of have: its array may be shared.
func mergeVerdicts(have, run []reputation.Verdict) []reputation.Verdict {
	for _, v := range run {
		i := slices.IndexFunc(have, func(h reputation.Verdict) bool { return h.Provider == v.Provider })
		switch {
		case i < 0:
			have = append(have, v)
		case !have[i].Known() && v.Known():
			have = slices.Clone(have)
			have[i] = v
		}
	}
	return have
}

// keptRun is a target's run of verdicts in a message: the result it was filed under, and
// where it is in the message.
type keptRun struct {
	result     int32
	start, end int
}

// settleVerdicts replaces the verdicts of r by one bare clean verdict of the first provider
// that answered, if some provider answered and none called r's target malicious or
// suspicious. The verdict is shared, and full: a verdict added later is appended to a copy.
func (g *Gathering) settleVerdicts(r *reputation.Result) {
	if reputation.Worst(r.Verdicts) != reputation.Clean {
		return // none known, or some bad
	}
	provider := r.Verdicts[slices.IndexFunc(r.Verdicts, reputation.Verdict.Known)].Provider
	vs, ok := g.settled[provider]
	if !ok {
		if g.settled == nil {
			g.settled = map[string][]reputation.Verdict{}
		}
		vs = []reputation.Verdict{{Provider: provider, Status: reputation.Clean}}
		g.settled[provider] = vs
	}
	r.Verdicts = vs
}

// intern replaces the strings of v that many verdicts share with one copy of each.
func (g *Gathering) intern(v *reputation.Verdict) {
	for _, s := range []*string{&v.Provider, &v.Country, &v.Reason} {
		*s = g.string(*s)
	}
	v.Status = reputation.Status(g.string(string(v.Status)))
	if len(v.Categories) > 0 {
		k := strings.Join(v.Categories, "\x00")
		if c, ok := g.categories[k]; ok {
			v.Categories = c
		} else if len(g.categories) < maxInterned {
			g.categories[k] = slices.Clip(v.Categories)
		}
	}
}

// maxInterned bounds how many strings a gathering holds one copy of: a provider whose
// reasons name each address would otherwise fill it with strings no other verdict has.
const maxInterned = 4096

// string returns the copy of s that the gathering holds, holding s if it has room.
func (g *Gathering) string(s string) string {
	if c, ok := g.strings[s]; ok || s == "" {
		return c
	}
	if len(g.strings) < maxInterned {
		g.strings[s] = s
	}
	return s
}

// Results returns the targets that got verdicts, with their verdicts, in the order of
// the targets.
func (g *Gathering) Results() []reputation.Result {
	out := g.out[:0]
	for _, r := range g.out {
		if len(r.Verdicts) > 0 {
			out = append(out, r)
		}
	}
	clear(g.out[len(out):])
	g.index = reputation.ResultIndex{}
	return out
}
