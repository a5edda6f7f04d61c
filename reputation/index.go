package reputation

import "slices"

// ResultIndex finds results by target. It holds the results' indexes sorted by target,
// four bytes a result, where a map by target would take some sixty: an audit of a million
// addresses has a million results.
type ResultIndex struct {
	results []Result
	order   []int32
}

// NewResultIndex indexes results. It does not modify them; their targets must not change
// while the index is used (their verdicts may).
func NewResultIndex(results []Result) ResultIndex {
	x := ResultIndex{results: results, order: make([]int32, len(results))}
	for i := range x.order {
		x.order[i] = int32(i)
	}
	slices.SortStableFunc(x.order, func(i, j int32) int { return results[i].Target.Compare(results[j].Target) })
	return x
}

// Lookup returns the indexes of the results whose target is t, in the order of the
// results. The slice is the index's own: it is not to be modified.
func (x ResultIndex) Lookup(t Target) []int32 {
	lo, _ := slices.BinarySearchFunc(x.order, t, func(i int32, t Target) int { return x.results[i].Target.Compare(t) })
	hi := lo
	for hi < len(x.order) && x.results[x.order[hi]].Target == t {
		hi++
	}
	return x.order[lo:hi:hi]
}
