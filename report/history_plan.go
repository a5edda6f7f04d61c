package report

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sgvet/sgvet/internal/sqlitefile"
	"github.com/sgvet/sgvet/reputation"
	"golang.org/x/sync/errgroup"
)

// historyRunRef is a stored run, or the run being recorded.
type historyRunRef struct {
	seq   int64
	id    string
	start int64
}

// historyRunCmp orders runs by start, ties broken by id.
func historyRunCmp(a, b historyRunRef) int {
	return cmp.Or(cmp.Compare(a.start, b.start), strings.Compare(a.id, b.id))
}

// historyRuleRow is a row of rules, as read or to write, with the rule its ref is to
// describe: rule is its index in the run's keys, or -1 to keep the ref stored.
type historyRuleRow struct {
	key             string
	firstSeen, hash int64
	since           int64
	until           sql.NullInt64
	rule            int
}

// historySpanRow is a row of spans to write.
type historySpanRow struct {
	key          string
	since, until int64
}

// historyVerdictRef is a verdict of the run, with a provider and a target: the one numbered
// verdict of the result numbered result, with its key in latest_verdicts and its hash.
type historyVerdictRef struct {
	key             uint64
	hash            int64
	result, verdict int32
}

// historyLatest is a pair of latest_verdicts: the key of a provider and target, and the hash
// of the latest verdict stored for them.
type historyLatest struct {
	key  uint64
	hash int64
}

// historyBucketRow is a row of latest_verdicts to write.
type historyBucketRow struct {
	bucket int64
	pairs  []byte
}

// historyGoneRef is a rule the previous run had that the run does not, with its first and
// last sightings.
type historyGoneRef struct {
	key                 string
	firstSeen, lastSeen int64
}

// historyPlan is what recording a run shows (view) and what it writes: the rows that change.
type historyPlan struct {
	run     *historyRun
	ref     historyRunRef // the run's row, with its seq
	view    *HistoryView
	changes int64 // the count of changes the history had when the plan was made
	replace bool  // verdicts are stored under the run's id, and are replaced

	rules       []historyRuleRow
	spanKeys    []string // rules whose earlier spans are replaced by those of theirs in spans
	spans       []historySpanRow
	forget      []string // rules that only this run saw, and that it no longer sees
	newVerdicts []historyVerdictRef
	buckets     []historyBucketRow
}

// historyRollback rolls tx back, unless ctx is done: database/sql then rolls it back on a
// goroutine of its own, and the caller does not wait. The statements prepared in the
// transaction are closed with it.
func historyRollback(ctx context.Context, tx *sql.Tx) {
	if ctx.Err() == nil {
		tx.Rollback()
	}
}

// plan works out what recording run shows and writes, in a transaction that takes no lock
// and changes nothing.
func (h *History) plan(ctx context.Context, run *historyRun) (*historyPlan, error) {
	tx, err := h.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer historyRollback(ctx, tx)
	plan, err := historyPlanRun(ctx, tx, run)
	if err != nil {
		return nil, err
	}
	// Nothing was written: the transaction ends without waiting for anything.
	return plan, tx.Rollback()
}

// commit stores run, finished at finished, in one transaction, and returns the plan it
// followed: plan if the history has not changed since it was made, else a new one.
func (h *History) commit(ctx context.Context, run *historyRun, plan *historyPlan, finished int64) (*historyPlan, error) {
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer historyRollback(ctx, tx)
	if plan != nil {
		changes, err := historyChanges(ctx, tx)
		if err != nil {
			return nil, err
		}
		if changes != plan.changes {
			plan = nil
		}
	}
	if plan == nil {
		if plan, err = historyPlanRun(ctx, tx, run); err != nil {
			return nil, err
		}
	}
	if err := plan.write(ctx, tx, finished); err != nil {
		return nil, err
	}
	return plan, tx.Commit()
}

// historyChanges returns the count of changes the history has seen.
func historyChanges(ctx context.Context, tx *sql.Tx) (int64, error) {
	var n int64
	err := tx.QueryRowContext(ctx, "SELECT n FROM changes").Scan(&n)
	return n, err
}

// historyPlanRun reads the history in tx and works out what recording run shows and writes.
// The run is digested meanwhile, on a goroutine of its own.
func historyPlanRun(ctx context.Context, tx *sql.Tx, run *historyRun) (*historyPlan, error) {
	var digest errgroup.Group
	digest.Go(func() error { return run.digest(ctx) })
	p, err := historyPlanDigesting(ctx, tx, run, digest.Wait)
	// The digest writes to run: it is over before the plan is used or dropped.
	if derr := digest.Wait(); err == nil {
		err = derr
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// historyPlanDigesting is historyPlanRun, digested waiting for the run's digest. A run later
// than every stored run is planned from each rule's latest span and the table of latest
// verdicts; any other, from everything the history holds.
func historyPlanDigesting(ctx context.Context, tx *sql.Tx, run *historyRun, digested func() error) (*historyPlan, error) {
	changes, err := historyChanges(ctx, tx)
	if err != nil {
		return nil, err
	}
	stored, err := historyStoredRun(ctx, tx, run)
	if err != nil {
		return nil, err
	}
	head, err := historyHead(ctx, tx)
	if err != nil {
		return nil, err
	}
	p := &historyPlan{
		run:     run,
		ref:     historyRunRef{seq: changes + 1, id: run.id, start: run.start},
		changes: changes,
		view:    &HistoryView{FirstSeen: make(map[string]time.Time, len(run.rules)), New: make(map[string]bool)},
	}
	newest, err := historyNewest(ctx, tx, p.ref, stored, head)
	var gone []historyGoneRef
	switch {
	case err != nil:
	case newest:
		gone, err = p.planNewest(ctx, tx, head, digested)
	default:
		gone, err = p.planAnywhere(ctx, tx, stored, digested)
	}
	if err == nil {
		p.view.Gone, err = historyGone(ctx, tx, gone)
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// historyNewest reports whether the run ref is later than every stored run, head being the
// latest of those (nil if there is none), and new: not stored (stored is nil), nor the id of
// a forgotten run that left its latest verdicts (in forgotten_runs).
func historyNewest(ctx context.Context, tx *sql.Tx, ref historyRunRef, stored, head *historyRunRef) (bool, error) {
	if stored != nil || (head != nil && historyRunCmp(*head, ref) > 0) {
		return false, nil
	}
	var newest bool
	err := tx.QueryRowContext(ctx, "SELECT NOT EXISTS (SELECT 1 FROM forgotten_runs WHERE id = ?)", ref.id).Scan(&newest)
	return newest, err
}

// historyStoredRun returns the stored run with the id of run, nil if there is none, or an
// error if it started at another time.
func historyStoredRun(ctx context.Context, tx *sql.Tx, run *historyRun) (*historyRunRef, error) {
	r := historyRunRef{id: run.id}
	switch err := tx.QueryRowContext(ctx, "SELECT seq, started FROM runs WHERE id = ?", run.id).Scan(&r.seq, &r.start); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, err
	case r.start != run.start:
		return nil, fmt.Errorf("the run was recorded with start %s, not %s",
			time.Unix(0, r.start).UTC().Format(time.RFC3339Nano), time.Unix(0, run.start).UTC().Format(time.RFC3339Nano))
	}
	return &r, nil
}

// historyHead returns the latest stored run, nil if there is none.
func historyHead(ctx context.Context, tx *sql.Tx) (*historyRunRef, error) {
	var r historyRunRef
	err := tx.QueryRowContext(ctx, "SELECT seq, id, started FROM runs ORDER BY started DESC, id DESC LIMIT 1").Scan(&r.seq, &r.id, &r.start)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// planNewest plans a run later than every stored run, head being the latest of those (nil
// if there is none), once digested returns, and returns the rules gone since head. It reads
// each rule's latest span, open if head saw the rule, and latest_verdicts.
func (p *historyPlan) planNewest(ctx context.Context, tx *sql.Tx, head *historyRunRef, digested func() error) ([]historyGoneRef, error) {
	rows, err := historyLoadRules(ctx, tx, len(p.run.rules))
	if err != nil {
		return nil, err
	}
	latest, err := historyLoadLatest(ctx, tx)
	if err == nil {
		err = digested()
	}
	if err != nil {
		return nil, err
	}
	gone, err := p.planNewestRules(ctx, head, rows)
	if err != nil {
		return nil, err
	}
	updated, err := p.planVerdicts(ctx, latest)
	if err != nil {
		return nil, err
	}
	p.planBuckets(latest, updated)
	return gone, nil
}

// historyLoadRules reads every row of rules, of which there are about n.
func historyLoadRules(ctx context.Context, tx *sql.Tx, n int) ([]historyRuleRow, error) {
	rules := make([]historyRuleRow, 0, n)
	err := historyEachRow(ctx, tx, "SELECT key, first_seen, hash, since, until FROM rules", func(rows *sql.Rows) error {
		r := historyRuleRow{rule: -1}
		err := rows.Scan(&r.key, &r.firstSeen, &r.hash, &r.since, &r.until)
		rules = append(rules, r)
		return err
	})
	return rules, err
}

// planNewestRules plans the rules of a run later than every stored run, head being the
// latest of those, rows being those of rules. A rule the run sees whose span is open, and
// that did not change, is not written.
func (p *historyPlan) planNewestRules(ctx context.Context, head *historyRunRef, rows []historyRuleRow) ([]historyGoneRef, error) {
	run := p.run
	if head != nil {
		p.view.Previous = head.id
	}
	known := make([]bool, len(run.keys))
	var gone []historyGoneRef
	for i, r := range rows {
		if err := historyCancelled(ctx, i); err != nil {
			return nil, err
		}
		open := head != nil && !r.until.Valid
		j, seen := run.index[r.key]
		switch {
		case seen:
			known[j] = true
			if !open {
				// Back after runs that did not see it: its latest span becomes an earlier
				// one, and a span opens.
				p.spans = append(p.spans, historySpanRow{r.key, r.since, r.until.Int64})
				r.since, r.until = p.ref.seq, sql.NullInt64{}
				if head != nil {
					p.view.New[r.key] = true
				}
			}
			p.seen(j, r, !open, true)
		case open:
			// Gone: its span closes at head.
			r.until = sql.NullInt64{Int64: head.seq, Valid: true}
			p.rules = append(p.rules, r)
			gone = append(gone, historyGoneRef{r.key, r.firstSeen, head.start})
		}
	}
	for j, k := range run.keys {
		if known[j] {
			continue
		}
		if head != nil {
			p.view.New[k] = true
		}
		p.seen(j, historyRuleRow{key: k, firstSeen: run.start, since: p.ref.seq}, true, true)
	}
	return gone, nil
}

// seen completes r, the row of the rule keys[j], which the run saw, and plans to write it if
// changed, or if its first sighting changes, or if the run is the latest to see the rule
// (latest) and saw it changed: the rule's JSON is then written too.
func (p *historyPlan) seen(j int, r historyRuleRow, changed, latest bool) {
	run := p.run
	if run.start < r.firstSeen {
		r.firstSeen, changed = run.start, true
	}
	p.view.FirstSeen[r.key] = time.Unix(0, r.firstSeen).UTC()
	r.rule = -1
	if hash := run.hashes[j]; latest && hash != r.hash {
		r.hash, r.rule, changed = hash, j, true
	}
	if changed {
		p.rules = append(p.rules, r)
	}
}

// historySpan is a span of runs that saw a rule, from and to being positions in the order of
// the runs; -1 stands for runs forgotten, before the oldest stored.
type historySpan struct{ from, to int }

// historyRuleSpans is what the history holds of a rule: its first sighting, its hash, and
// its spans in order.
type historyRuleSpans struct {
	firstSeen, hash int64
	spans           []historySpan
}

// planAnywhere plans a run recorded again (stored is its earlier record), or before a later
// run, or under the id of a forgotten run, once digested returns, and returns the rules gone
// since the run before it. It reads every rule's spans, as positions in the order of the
// runs, puts the run in its place, and writes the rules whose spans or first sighting
// changed, or that the run is the latest to see and saw changed; and it reads every verdict.
func (p *historyPlan) planAnywhere(ctx context.Context, tx *sql.Tx, stored *historyRunRef, digested func() error) ([]historyGoneRef, error) {
	if stored != nil {
		p.ref = *stored
	}
	runs, err := historyLoadRuns(ctx, tx)
	if err != nil {
		return nil, err
	}
	at, found := slices.BinarySearchFunc(runs, p.ref, historyRunCmp)
	if !found {
		runs = slices.Insert(runs, at, p.ref)
	}
	if at > 0 {
		p.view.Previous = runs[at-1].id
	}
	known, err := historyLoadSpans(ctx, tx, runs)
	if err == nil {
		err = digested()
	}
	if err != nil {
		return nil, err
	}
	var gone []historyGoneRef
	i := 0
	plan := func(k string, st *historyRuleSpans) error {
		if err := historyCancelled(ctx, i); err != nil {
			return err
		}
		i++
		if g := p.planRule(k, st, runs, at); g != nil {
			gone = append(gone, *g)
		}
		return nil
	}
	for k, st := range known {
		if err := plan(k, st); err != nil {
			return nil, err
		}
	}
	for _, k := range p.run.keys {
		if _, ok := known[k]; ok {
			continue
		}
		if err := plan(k, &historyRuleSpans{firstSeen: p.run.start}); err != nil {
			return nil, err
		}
	}
	return gone, p.planVerdictsAnywhere(ctx, tx)
}

// planRule plans the rule with key k, which the history holds as st (with no spans if it
// holds nothing), for the run at position at of runs, and returns it if it is gone since
// the run before. A rule that no stored run sees any more is forgotten, as Prune forgets it.
func (p *historyPlan) planRule(k string, st *historyRuleSpans, runs []historyRunRef, at int) *historyGoneRef {
	j, seen := p.run.index[k]
	spans := slices.DeleteFunc(historySpansAt(st.spans, at, seen), func(s historySpan) bool { return s.to < 0 })
	if len(spans) == 0 {
		p.forget = append(p.forget, k)
		return nil
	}
	seqAt := func(i int) int64 {
		if i < 0 {
			return 0 // no run: before the oldest stored
		}
		return runs[i].seq
	}
	last := spans[len(spans)-1]
	r := historyRuleRow{key: k, firstSeen: st.firstSeen, hash: st.hash, since: seqAt(last.from), rule: -1}
	if last.to < len(runs)-1 {
		r.until = sql.NullInt64{Int64: seqAt(last.to), Valid: true}
	}
	n := len(st.spans)
	changed := n == 0 || st.spans[n-1] != last
	if earlier := spans[:len(spans)-1]; !slices.Equal(st.spans[:max(n-1, 0)], earlier) {
		p.spanKeys = append(p.spanKeys, k)
		for _, s := range earlier {
			p.spans = append(p.spans, historySpanRow{k, seqAt(s.from), seqAt(s.to)})
		}
	}
	before := at > 0 && historyCovers(spans, at-1)
	if seen {
		if at > 0 && !before {
			p.view.New[k] = true
		}
		p.seen(j, r, changed, last.to == at)
		return nil
	}
	if changed {
		p.rules = append(p.rules, r)
	}
	if before {
		return &historyGoneRef{k, r.firstSeen, runs[at-1].start}
	}
	return nil
}

// historySpansAt returns spans, which are in order, changed so that they cover position at
// if seen, and do not if not: a span that covers it is split, and spans that meet are
// joined.
func historySpansAt(spans []historySpan, at int, seen bool) []historySpan {
	out := make([]historySpan, 0, len(spans)+1)
	add := func(s historySpan) {
		switch n := len(out); {
		case s.from > s.to:
		case n > 0 && out[n-1].to+1 >= s.from:
			out[n-1].to = max(out[n-1].to, s.to)
		default:
			out = append(out, s)
		}
	}
	placed := !seen
	for _, s := range spans {
		if !placed && at < s.from {
			add(historySpan{at, at})
			placed = true
		}
		add(historySpan{s.from, min(s.to, at-1)})
		if !placed && at <= s.to {
			add(historySpan{at, at})
			placed = true
		}
		add(historySpan{max(s.from, at+1), s.to})
	}
	if !placed {
		add(historySpan{at, at})
	}
	return out
}

// historyCovers reports whether one of spans covers position at.
func historyCovers(spans []historySpan, at int) bool {
	return slices.ContainsFunc(spans, func(s historySpan) bool { return s.from <= at && at <= s.to })
}

// historyLoadRuns reads the stored runs, in order.
func historyLoadRuns(ctx context.Context, tx *sql.Tx) ([]historyRunRef, error) {
	var runs []historyRunRef
	err := historyEachRow(ctx, tx, "SELECT seq, id, started FROM runs ORDER BY started, id", func(rows *sql.Rows) error {
		var r historyRunRef
		err := rows.Scan(&r.seq, &r.id, &r.start)
		runs = append(runs, r)
		return err
	})
	return runs, err
}

// historyLoadSpans reads every rule's first sighting, hash and spans, by key. runs are the
// stored runs in order, with the run being recorded: the end of a span that is none of them
// is -1, before the oldest, and an open span ends at the last, the latest stored run (the
// run is recorded late, or again).
func historyLoadSpans(ctx context.Context, tx *sql.Tx, runs []historyRunRef) (map[string]*historyRuleSpans, error) {
	pos := make(map[int64]int, len(runs))
	for i, r := range runs {
		pos[r.seq] = i
	}
	at := func(seq int64) int {
		if i, ok := pos[seq]; ok {
			return i
		}
		return -1
	}
	known := make(map[string]*historyRuleSpans)
	err := historyEachRow(ctx, tx, "SELECT key, first_seen, hash, since, until FROM rules", func(rows *sql.Rows) error {
		var k string
		var since int64
		var until sql.NullInt64
		st := &historyRuleSpans{}
		if err := rows.Scan(&k, &st.firstSeen, &st.hash, &since, &until); err != nil {
			return err
		}
		to := len(runs) - 1
		if until.Valid {
			to = at(until.Int64)
		}
		st.spans = []historySpan{{at(since), to}}
		known[k] = st
		return nil
	})
	if err == nil {
		err = historyEachRow(ctx, tx, "SELECT key, since, until FROM spans", func(rows *sql.Rows) error {
			var k string
			var since, until int64
			if err := rows.Scan(&k, &since, &until); err != nil {
				return err
			}
			if st := known[k]; st != nil {
				st.spans = append(st.spans, historySpan{at(since), at(until)})
			}
			return nil
		})
	}
	if err != nil {
		return nil, err
	}
	for _, st := range known {
		slices.SortFunc(st.spans, func(a, b historySpan) int { return cmp.Or(cmp.Compare(a.from, b.from), cmp.Compare(a.to, b.to)) })
	}
	return known, nil
}

// historyEachRow calls row for each row of query, looking at ctx every so often.
func historyEachRow(ctx context.Context, tx *sql.Tx, query string, row func(*sql.Rows) error) error {
	rows, err := tx.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for i := 0; rows.Next(); i++ {
		if err := historyCancelled(ctx, i); err != nil {
			return err
		}
		if err := row(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// historyVerdictTarget returns the target of v, a verdict of res: its own, else that of res.
func historyVerdictTarget(res *reputation.Result, v *reputation.Verdict) reputation.Target {
	if v.Target.IsValid() {
		return v.Target
	}
	return res.Target
}

// planVerdicts plans to store each verdict of the run that differs from the latest verdict
// of its provider for its target, whose hash latest holds, and returns latest with the
// verdicts stored. Of two equal verdicts in the run's results, one is stored.
//
// The run's verdicts, sorted by key, are merged with latest, which is sorted by key, so
// that a run of 300,000 verdicts looks none up in a map.
func (p *historyPlan) planVerdicts(ctx context.Context, latest []historyLatest) ([]historyLatest, error) {
	out := make([]historyLatest, 0, len(latest))
	i := 0
	for n, v := range p.run.verdicts {
		if err := historyCancelled(ctx, n); err != nil {
			return nil, err
		}
		for ; i < len(latest) && latest[i].key <= v.key; i++ {
			out = append(out, latest[i])
		}
		switch last := len(out) - 1; {
		case last >= 0 && out[last].key == v.key && out[last].hash == v.hash:
			continue
		case last >= 0 && out[last].key == v.key:
			out[last].hash = v.hash
		default:
			out = append(out, historyLatest{v.key, v.hash})
		}
		p.newVerdicts = append(p.newVerdicts, v)
	}
	return append(out, latest[i:]...), nil
}

// planVerdictsAnywhere plans the verdicts of a run recorded again or late: they are compared
// with the latest stored by a run before it, and latest_verdicts is worked out again from
// every verdict stored.
func (p *historyPlan) planVerdictsAnywhere(ctx context.Context, tx *sql.Tx) error {
	before := make(map[uint64]int64) // the latest hash stored by a run before this one
	heads := make(map[uint64]int64)  // the latest hash stored by another run
	later := make(map[uint64]bool)   // whether a later run stored one
	var f historyHasher
	err := historyEachRow(ctx, tx, "SELECT provider, target, started, run, hash FROM verdicts ORDER BY provider, target, started, run",
		func(rows *sql.Rows) error {
			var provider, text string
			var r historyRunRef
			var hash int64
			if err := rows.Scan(&provider, &text, &r.start, &r.id, &hash); err != nil {
				return err
			}
			if r.id == p.run.id {
				// The run's own are replaced.
				p.replace = true
				return nil
			}
			target, err := reputation.ParseTarget(text)
			if err != nil {
				// No verdict of a run has that target.
				return nil
			}
			key := f.verdictKey(provider, target)
			if historyRunCmp(r, p.ref) < 0 {
				before[key] = hash
			} else {
				later[key] = true
			}
			heads[key] = hash
			return nil
		})
	if err != nil {
		return err
	}
	if _, err := p.planVerdicts(ctx, historyLatestOf(before)); err != nil {
		return err
	}
	for _, v := range p.newVerdicts {
		if !later[v.key] {
			heads[v.key] = v.hash
		}
	}
	stored, err := historyLoadLatest(ctx, tx)
	if err != nil {
		return err
	}
	p.planBuckets(stored, historyLatestOf(heads))
	return nil
}

// historyLatestOf returns the pairs of m, sorted by key.
func historyLatestOf(m map[uint64]int64) []historyLatest {
	pairs := make([]historyLatest, 0, len(m))
	for key, hash := range m {
		pairs = append(pairs, historyLatest{key, hash})
	}
	slices.SortFunc(pairs, func(a, b historyLatest) int { return cmp.Compare(a.key, b.key) })
	return pairs
}

// historyBucketBits is how many of the top bits of a key make the bucket of latest_verdicts
// that holds it: a change of one verdict in an estate of 300,000 targets rewrites a bucket of
// about 300 pairs.
const historyBucketBits = 10

// historyPairSize is the size of a pair in a bucket of latest_verdicts.
const historyPairSize = 16

// historyBucket returns the bucket of key.
func historyBucket(key uint64) int64 {
	return int64(key >> (64 - historyBucketBits))
}

// historyLoadLatest reads the pairs of latest_verdicts, sorted by key.
func historyLoadLatest(ctx context.Context, tx *sql.Tx) ([]historyLatest, error) {
	var latest []historyLatest
	err := historyEachRow(ctx, tx, "SELECT pairs FROM latest_verdicts ORDER BY bucket", func(rows *sql.Rows) error {
		var b sql.RawBytes
		if err := rows.Scan(&b); err != nil {
			return err
		}
		latest = slices.Grow(latest, len(b)/historyPairSize)
		for ; len(b) >= historyPairSize; b = b[historyPairSize:] {
			latest = append(latest, historyLatest{binary.LittleEndian.Uint64(b), int64(binary.LittleEndian.Uint64(b[8:]))})
		}
		return nil
	})
	return latest, err
}

// planBuckets plans to write the buckets of latest_verdicts whose pairs differ between
// stored and latest, both sorted by key.
func (p *historyPlan) planBuckets(stored, latest []historyLatest) {
	end := func(pairs []historyLatest, bucket int64) int {
		n, _ := slices.BinarySearchFunc(pairs, bucket+1, func(l historyLatest, b int64) int { return cmp.Compare(historyBucket(l.key), b) })
		return n
	}
	for len(stored) > 0 || len(latest) > 0 {
		bucket := int64(1) << historyBucketBits
		if len(stored) > 0 {
			bucket = historyBucket(stored[0].key)
		}
		if len(latest) > 0 {
			bucket = min(bucket, historyBucket(latest[0].key))
		}
		i, j := end(stored, bucket), end(latest, bucket)
		if !slices.Equal(stored[:i], latest[:j]) {
			pairs := make([]byte, 0, j*historyPairSize)
			for _, l := range latest[:j] {
				pairs = binary.LittleEndian.AppendUint64(pairs, l.key)
				pairs = binary.LittleEndian.AppendUint64(pairs, uint64(l.hash))
			}
			p.buckets = append(p.buckets, historyBucketRow{bucket, pairs})
		}
		stored, latest = stored[i:], latest[j:]
	}
}

// write writes the plan in tx, the run finished at finished.
func (p *historyPlan) write(ctx context.Context, tx *sql.Tx, finished int64) error {
	run := p.run
	_, err := historyExec(ctx, tx, `INSERT INTO runs (seq, id, started, finished, rules, verdicts) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (seq) DO UPDATE SET finished = excluded.finished, rules = excluded.rules, verdicts = excluded.verdicts`,
		p.ref.seq, run.id, run.start, finished, len(run.keys), len(run.verdicts))
	if err == nil {
		_, err = historyExec(ctx, tx, "UPDATE changes SET n = ?", p.changes+1)
	}
	if err == nil {
		err = historyDelete(ctx, tx, p.forget, "rules", "spans")
	}
	if err == nil {
		err = historyDelete(ctx, tx, p.spanKeys, "spans")
	}
	if err == nil {
		err = p.writeRules(ctx, tx)
	}
	if err == nil {
		err = p.writeVerdicts(ctx, tx)
	}
	if err == nil {
		ins := newHistoryBatch(tx, `INSERT INTO latest_verdicts (bucket, pairs) VALUES `,
			` ON CONFLICT (bucket) DO UPDATE SET pairs = excluded.pairs`, 2)
		for _, b := range p.buckets {
			if err = ins.add(ctx, b.bucket, b.pairs); err != nil {
				return err
			}
		}
		err = ins.flush(ctx)
	}
	return err
}

// writeRules writes the plan's rows of spans and rules.
func (p *historyPlan) writeRules(ctx context.Context, tx *sql.Tx) error {
	spans := newHistoryBatch(tx, `INSERT INTO spans (key, since, until) VALUES `,
		` ON CONFLICT (key, since) DO UPDATE SET until = excluded.until`, 3)
	for _, s := range p.spans {
		if err := spans.add(ctx, s.key, s.since, s.until); err != nil {
			return err
		}
	}
	if err := spans.flush(ctx); err != nil {
		return err
	}
	rules := newHistoryBatch(tx, `INSERT INTO rules (key, first_seen, hash, since, until, ref) VALUES `,
		` ON CONFLICT (key) DO UPDATE SET first_seen = excluded.first_seen, hash = excluded.hash,
		since = excluded.since, until = excluded.until, ref = coalesce(excluded.ref, ref)`, 6)
	for i, r := range p.rules {
		if err := historyCancelled(ctx, i); err != nil {
			return err
		}
		var ref sql.NullString
		if r.rule >= 0 {
			js, err := historyRuleJSON(r.key, p.run.rule(r.rule))
			if err != nil {
				return fmt.Errorf("rule %s: %w", r.key, err)
			}
			ref = sql.NullString{String: string(js), Valid: true}
		}
		if err := rules.add(ctx, r.key, r.firstSeen, r.hash, r.since, r.until, ref); err != nil {
			return err
		}
	}
	return rules.flush(ctx)
}

// historyVerdictData is what the verdict column of verdicts holds of a verdict, as JSON:
// the fields of reputation.Verdict that are not columns of the row, under the same names.
// CheckedAt is there only when the column checked_at, in unix nanoseconds, does not give it
// back: the zero time, or one too far from 1970.
type historyVerdictData struct {
	Categories []string   `json:"categories,omitempty"`
	Country    string     `json:"country,omitempty"`
	Evidence   string     `json:"evidence,omitempty"`
	Reason     string     `json:"reason,omitempty"`
	CheckedAt  *time.Time `json:"checked_at,omitempty"`
	Cached     bool       `json:"cached,omitempty"`
}

// newHistoryVerdictData returns what the verdict column holds of v, whose checked_at column
// holds checkedAt.
func newHistoryVerdictData(v *reputation.Verdict, checkedAt int64) *historyVerdictData {
	d := &historyVerdictData{Categories: v.Categories, Country: v.Country, Evidence: v.Evidence, Reason: v.Reason, Cached: v.Cached}
	if !time.Unix(0, checkedAt).Equal(v.CheckedAt) {
		d.CheckedAt = &v.CheckedAt
	}
	return d
}

// writeVerdicts stores the plan's verdicts, replacing those the run stored before.
func (p *historyPlan) writeVerdicts(ctx context.Context, tx *sql.Tx) error {
	run := p.run
	if p.replace {
		// The run is stored, or is so now: its id leaves forgotten_runs if it was there.
		for _, stmt := range []string{"DELETE FROM verdicts WHERE run = ?", "DELETE FROM forgotten_runs WHERE id = ?"} {
			if _, err := historyExec(ctx, tx, stmt, run.id); err != nil {
				return err
			}
		}
	}
	ins := newHistoryBatch(tx, `INSERT INTO verdicts (provider, target, started, run, status, score, checked_at, hash, verdict) VALUES `,
		` ON CONFLICT (provider, target, started, run) DO UPDATE SET status = excluded.status, score = excluded.score,
		checked_at = excluded.checked_at, hash = excluded.hash, verdict = excluded.verdict`, 9)
	for i, w := range p.newVerdicts {
		if err := historyCancelled(ctx, i); err != nil {
			return err
		}
		res := &run.results[w.result]
		v := &res.Verdicts[w.verdict]
		target := historyVerdictTarget(res, v)
		checkedAt := sqlitefile.UnixNano(v.CheckedAt)
		js, err := json.Marshal(newHistoryVerdictData(v, checkedAt))
		if err != nil {
			return fmt.Errorf("verdict of %s for %s: %w", v.Provider, target, err)
		}
		var score sql.NullInt64
		if v.Score != nil {
			score = sql.NullInt64{Int64: int64(*v.Score), Valid: true}
		}
		err = ins.add(ctx, v.Provider, target.String(), run.start, run.id, string(v.Status), score,
			checkedAt, w.hash, string(js))
		if err != nil {
			return err
		}
	}
	return ins.flush(ctx)
}
