package report

import (
	"slices"

	"github.com/sgvet/sgvet/reputation"
)

// verdictIndex finds the verdicts of results by target. It holds the results' indexes
// sorted by target, four bytes per result, rather than a map entry per target: an audit of
// a million addresses has a million results.
type verdictIndex struct {
	results []reputation.Result
	order   []int32
	// merged holds the verdicts of each target that more than one result has, joined in
	// the order of the results.
	merged map[reputation.Target][]reputation.Verdict
}

// newVerdictIndex indexes results, which it does not modify.
func newVerdictIndex(results []reputation.Result) verdictIndex {
	x := verdictIndex{results: results, order: make([]int32, len(results))}
	for i := range x.order {
		x.order[i] = int32(i)
	}
	slices.SortStableFunc(x.order, func(i, j int32) int {
		return results[i].Target.Compare(results[j].Target)
	})
	for i := 1; i < len(x.order); i++ {
		prev, cur := &results[x.order[i-1]], &results[x.order[i]]
		if prev.Target != cur.Target {
			continue
		}
		if x.merged == nil {
			x.merged = map[reputation.Target][]reputation.Verdict{}
		}
		vs, ok := x.merged[cur.Target]
		if !ok {
			vs = slices.Clone(prev.Verdicts)
		}
		x.merged[cur.Target] = append(vs, cur.Verdicts...)
	}
	return x
}

// of returns every provider's verdicts on t.
func (x *verdictIndex) of(t reputation.Target) []reputation.Verdict {
	if vs, ok := x.merged[t]; ok {
		return vs
	}
	i, found := slices.BinarySearchFunc(x.order, t, func(i int32, t reputation.Target) int {
		return x.results[i].Target.Compare(t)
	})
	if !found {
		return nil
	}
	return x.results[x.order[i]].Verdicts
}
