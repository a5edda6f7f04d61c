package report

import (
	"slices"

	"github.com/sgvet/sgvet/reputation"
)

// verdictIndex finds every provider's verdicts on a target among the results.
type verdictIndex struct {
	results []reputation.Result
	index   reputation.ResultIndex
	// merged holds the verdicts of each target that more than one result has, joined in
	// the order of the results, once asked for.
	merged map[reputation.Target][]reputation.Verdict
}

// newVerdictIndex indexes results, which it does not modify.
func newVerdictIndex(results []reputation.Result) verdictIndex {
	return verdictIndex{results: results, index: reputation.NewResultIndex(results)}
}

// of returns every provider's verdicts on t.
func (x *verdictIndex) of(t reputation.Target) []reputation.Verdict {
	found := x.index.Lookup(t)
	switch len(found) {
	case 0:
		return nil
	case 1:
		return x.results[found[0]].Verdicts
	}
	if vs, ok := x.merged[t]; ok {
		return vs
	}
	var vs []reputation.Verdict
	for _, i := range found {
		vs = append(vs, x.results[i].Verdicts...)
	}
	if x.merged == nil {
		x.merged = map[reputation.Target][]reputation.Verdict{}
	}
	x.merged[t] = slices.Clip(vs)
	return x.merged[t]
}
