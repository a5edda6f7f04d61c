package report

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/internal/sqlitefile"
	"github.com/sgvet/sgvet/reputation"
	"golang.org/x/sync/errgroup"
)

// historySchemaVersion is the schema version of the history file, kept in its user_version.
// Version 1 stored every verdict of every run, and rewrote each rule whole on every run;
// version 2 stored a verdict only when it differed from the one stored before, and kept a
// rule's JSON apart from its sightings, rewritten only when the rule changed, but still
// rewrote the sightings of every rule on every run; version 3 keeps a rule's sightings as
// spans of consecutive runs, so that a run that sees what the run before it saw writes
// no row of its rules, and reads the latest verdicts from a table of hashes.
const historySchemaVersion = 3

// DefaultHistoryKeep is how many runs a history keeps by default: see History.Prune.
const DefaultHistoryKeep = 90

// historyBusyTimeout is how long a connection waits for another connection or process that
// holds the database lock. Recording a large estate for the first time holds the lock for a
// few seconds.
const historyBusyTimeout = 30 * time.Second

// historyBatchRows is how many rows one INSERT statement writes.
const historyBatchRows = 100

// historyCheckEvery is how many iterations a loop of Record that makes no database call
// runs between looks at its context.
const historyCheckEvery = 1024

// historySchema returns the statements that create the tables of schema version
// historySchemaVersion. Times are unix nanoseconds, UTC.
//
// A run is stored once its report is written, with the time it finished (a run stored by
// version 1 may have none). Its seq, which the rules' sightings refer to, is the number of
// the change that first stored it: changes holds, in its one row, how many changes (runs
// stored, runs forgotten) the history has seen, so that a run planned at one count can
// tell, when it is committed, whether the history changed since. A seq is never reused.
//
// A rule's sightings are spans of runs that saw it, each a sequence of runs consecutive in
// the order of (started, id): from the run since to the run until, or to the latest run if
// until is NULL (the span is open). rules holds each rule's latest span, its first sighting
// (first_seen, which outlives the runs it was forgotten with) and the hash of the rule as
// the latest run to see it saw it (0 when unknown); spans holds its earlier spans. A span
// whose since is no stored run began before the oldest stored run: the runs are forgotten
// oldest first. The rule itself is kept in rule_data as the JSON of a collector.Rule, as the
// latest run to see it saw it.
//
// So a run later than every stored run writes a row of rules only for a rule it saw that
// the run before it did not (a span opens, and the rule's latest span, if any, moves to
// spans), for one the run before it saw and it does not (its span closes at that run), and
// for one that changed (its hash, and its JSON in rule_data).
//
// A verdict is stored by the run that got it, with that run's start, when it differs (in
// anything but the time it was checked and whether the cache answered) from the latest
// verdict of the same provider for the same target stored by an earlier run; hash is a hash
// of its fields but those two (0 when unknown). latest_verdicts holds, for each provider and
// target, the pair of a key (a hash of the two) and the hash of the latest verdict stored,
// in 16 bytes, little-endian; the pairs are sorted by key, in buckets by the top bits of the
// key. So a run reads the latest verdicts' hashes in a thousand rows, and rewrites only the
// buckets whose pairs change.
func historySchema() []string {
	return []string{
		historyRunsTable("runs"),
		`CREATE INDEX IF NOT EXISTS runs_started ON runs (started, id)`,
		`CREATE TABLE IF NOT EXISTS changes (n INTEGER NOT NULL)`,
		`INSERT INTO changes (n) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM changes)`,
		historyRulesTable("rules"),
		historySpansTable,
		`CREATE TABLE IF NOT EXISTS rule_data (
			key  TEXT NOT NULL PRIMARY KEY,
			rule TEXT NOT NULL
		) WITHOUT ROWID`,
		historyVerdictsTable("verdicts"),
		`CREATE INDEX IF NOT EXISTS verdicts_run ON verdicts (run)`,
		historyLatestVerdictsTable,
	}
}

// historyRunsTable returns the statement that creates the runs table of schema version 3
// under the given name.
func historyRunsTable(name string) string {
	return `CREATE TABLE IF NOT EXISTS ` + name + ` (
			seq      INTEGER NOT NULL PRIMARY KEY,
			id       TEXT    NOT NULL UNIQUE,
			started  INTEGER NOT NULL,
			finished INTEGER,
			rules    INTEGER NOT NULL DEFAULT 0,
			verdicts INTEGER NOT NULL DEFAULT 0
		)`
}

// historyRulesTable returns the statement that creates the rules table of schema version
// 3 under the given name.
func historyRulesTable(name string) string {
	return `CREATE TABLE IF NOT EXISTS ` + name + ` (
			key        TEXT    NOT NULL PRIMARY KEY,
			first_seen INTEGER NOT NULL,
			hash       INTEGER NOT NULL DEFAULT 0,
			since      INTEGER NOT NULL,
			until      INTEGER
		) WITHOUT ROWID`
}

// historySpansTable is the statement that creates the spans table of schema version 3.
const historySpansTable = `CREATE TABLE IF NOT EXISTS spans (
			key   TEXT    NOT NULL,
			since INTEGER NOT NULL,
			until INTEGER NOT NULL,
			PRIMARY KEY (key, since)
		) WITHOUT ROWID`

// historyLatestVerdictsTable is the statement that creates the latest_verdicts table of
// schema version 3.
const historyLatestVerdictsTable = `CREATE TABLE IF NOT EXISTS latest_verdicts (
			bucket INTEGER NOT NULL PRIMARY KEY,
			pairs  BLOB    NOT NULL
		)`

// historyVerdictsTable returns the statement that creates the verdicts table of schema
// versions 2 and 3 under the given name.
func historyVerdictsTable(name string) string {
	return `CREATE TABLE IF NOT EXISTS ` + name + ` (
			provider   TEXT    NOT NULL,
			target     TEXT    NOT NULL,
			started    INTEGER NOT NULL,
			run        TEXT    NOT NULL,
			status     TEXT    NOT NULL,
			score      INTEGER,
			checked_at INTEGER NOT NULL,
			hash       INTEGER NOT NULL DEFAULT 0,
			verdict    TEXT    NOT NULL,
			PRIMARY KEY (provider, target, started, run)
		) WITHOUT ROWID`
}

// historyMigrations returns the statements that bring a file of an older schema version to
// the next, in place.
//
// From version 1 to 2, rules keep their sightings and JSON, and get hash 0, so that the next
// run rewrites each once. Of the verdicts, the latest of each provider for each target is
// kept, with hash 0; the verdicts every run stored again are dropped, and their space is
// reused by SQLite as the file grows again.
//
// From version 2 to 3, runs are numbered in the order of (started, id), and each rule's
// latest span is made of the two runs version 2 knew to have seen it last, if they are
// consecutive (else the earlier is a span of its own): it is open if the later is the
// latest run. First sightings and rules' JSON are kept; rules and verdicts get hash 0, as
// version 3 hashes them otherwise, and latest_verdicts starts empty: the next run rewrites
// each rule's JSON once and stores each verdict once again.
func historyMigrations() [][]string {
	return [][]string{
		1: {
			`CREATE TABLE rule_data (key TEXT NOT NULL PRIMARY KEY, rule TEXT NOT NULL) WITHOUT ROWID`,
			`INSERT INTO rule_data (key, rule) SELECT key, rule FROM rules`,
			`CREATE TABLE rules_v2 (key TEXT NOT NULL PRIMARY KEY, first_seen INTEGER NOT NULL,
				last_seen INTEGER NOT NULL, last_run TEXT NOT NULL, prev_seen INTEGER, prev_run TEXT,
				hash INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID`,
			`INSERT INTO rules_v2 (key, first_seen, last_seen, last_run, prev_seen, prev_run)
			SELECT key, first_seen, last_seen, last_run, prev_seen, prev_run FROM rules`,
			`DROP TABLE rules`,
			`ALTER TABLE rules_v2 RENAME TO rules`,
			historyVerdictsTable("verdicts_v2"),
			`INSERT INTO verdicts_v2 (provider, target, started, run, status, score, checked_at, verdict)
			SELECT provider, target, started, run, status, score, checked_at, verdict FROM (
				SELECT v.provider, v.target, r.started, v.run, v.status, v.score, v.checked_at, v.verdict,
					row_number() OVER (PARTITION BY v.provider, v.target ORDER BY r.started DESC, v.run DESC) AS n
				FROM verdicts AS v JOIN runs AS r ON r.id = v.run
			) WHERE n = 1`,
			`DROP TABLE verdicts`,
			`ALTER TABLE verdicts_v2 RENAME TO verdicts`,
			`CREATE INDEX IF NOT EXISTS verdicts_run ON verdicts (run)`,
		},
		2: {
			historyRunsTable("runs_v3"),
			`INSERT INTO runs_v3 (seq, id, started, finished, rules, verdicts)
			SELECT row_number() OVER (ORDER BY started, id), id, started, finished, rules, verdicts FROM runs`,
			`CREATE TABLE changes (n INTEGER NOT NULL)`,
			`INSERT INTO changes (n) SELECT count(*) FROM runs_v3`,
			historyRulesTable("rules_v3"),
			`INSERT INTO rules_v3 (key, first_seen, since, until)
			SELECT r.key, r.first_seen,
				CASE WHEN p.seq = l.seq - 1 THEN p.seq ELSE coalesce(l.seq, 0) END,
				CASE WHEN l.seq = (SELECT max(seq) FROM runs_v3) THEN NULL ELSE coalesce(l.seq, 0) END
			FROM rules AS r LEFT JOIN runs_v3 AS l ON l.id = r.last_run LEFT JOIN runs_v3 AS p ON p.id = r.prev_run`,
			historySpansTable,
			`INSERT INTO spans (key, since, until)
			SELECT r.key, p.seq, p.seq
			FROM rules AS r JOIN runs_v3 AS l ON l.id = r.last_run JOIN runs_v3 AS p ON p.id = r.prev_run
			WHERE p.seq < l.seq - 1`,
			`DROP TABLE rules`,
			`ALTER TABLE rules_v3 RENAME TO rules`,
			`DROP TABLE runs`,
			`ALTER TABLE runs_v3 RENAME TO runs`,
			`CREATE INDEX runs_started ON runs (started, id)`,
			`UPDATE verdicts SET hash = 0`,
			historyLatestVerdictsTable,
		},
	}
}

// History is the state database of --state FILE: the runs, every rule with its first
// sighting and the spans of runs that saw it, and the verdicts as they changed. Several
// processes may open it at once; each Record, Commit and Prune is one transaction, and
// Prepare reads in one that blocks no writer. A History is safe for concurrent use.
//
// The previous run of a run is the run recorded (by Record or Commit) with the latest start
// before its own, ties broken by id, whichever process recorded it; a prepared run that was
// never committed is no previous run. Runs are expected to be recorded roughly in the order
// they started: a run later than every recorded run reads each rule's latest sighting and
// the hashes of the latest verdicts, and writes only what changed since the run before it.
// A run recorded late, before a later one, or recorded again, reads every rule's sightings
// and every verdict, and so costs more, though it too writes only what changed; it sees
// runs forgotten by Prune as one run before the oldest kept.
type History struct {
	db   *sql.DB
	path string
}

// OpenHistory opens the history file at path. If the file does not exist, OpenHistory
// creates it, readable and writable by its owner only, and its parent directories. It
// refuses, without changing it, a file that is not a SQLite database or that holds another
// program's tables. A file of an older schema version is migrated in place. If users other
// than its owner may read or write the file, OpenHistory warns to log, which may be nil,
// and goes on.
//
// Each connection waits up to 30 seconds for a lock another connection or process holds;
// the wait of a call, OpenHistory's too, ends when the call's context is done.
func OpenHistory(ctx context.Context, path string, log *slog.Logger) (*History, error) {
	h, err := openHistory(ctx, path, log, historyBusyTimeout)
	if err != nil {
		return nil, fmt.Errorf("open history %s: %w", path, err)
	}
	return h, nil
}

// openHistory opens the history file at path, each connection waiting up to busyTimeout
// for a lock.
func openHistory(ctx context.Context, path string, log *slog.Logger, busyTimeout time.Duration) (*History, error) {
	// The first run writes every rule: statement journals stay in memory, and the page
	// cache may grow to 64 MiB, so that a large run is not written out twice. Every run
	// reads every rule, once per process: the file is read through a memory map of up to 1
	// GiB rather than into pages the cache allocates one by one, which for 300,000 rules
	// takes a second.
	db, err := sqlitefile.Open(ctx, path, sqlitefile.Options{
		Kind:        "history",
		Log:         log,
		BusyTimeout: busyTimeout,
		Pragmas:     []string{"temp_store(MEMORY)", "cache_size(-65536)", "mmap_size(1073741824)"},
		Version:     historySchemaVersion,
		Schema:      historySchema(),
		Migrations:  historyMigrations(),
		Tables:      []string{"runs", "rules", "verdicts"},
	})
	if err != nil {
		return nil, err
	}
	return &History{db: db, path: path}, nil
}

// Close closes the history file.
func (h *History) Close() error {
	if err := h.db.Close(); err != nil {
		return fmt.Errorf("close history %s: %w", h.path, err)
	}
	return nil
}

// Record stores a run (id, started) with the rules it saw and the verdicts it got, as
// finished at its start, in one transaction, and returns what the report shows: the
// previous run's id, each rule's first sighting (earlier runs' first_seen for rules seen
// before, started for new ones), which rules are new since the previous run (none on the
// first run), and which rules the previous run had that this one does not.
//
// Rules are identified by RuleKey; of two rules with the same key, the last is kept.
// Every verdict with a provider is stored, known or unknown. Recording a run again, with
// the same start, replaces what was recorded for it and returns the same view.
//
// Once ctx is done, Record returns promptly with an error that wraps the context's cause,
// and leaves the file as it was: the transaction is rolled back, without Record waiting for
// that.
func (h *History) Record(ctx context.Context, runID string, started time.Time, rules []collector.Rule, results []reputation.Result) (*HistoryView, error) {
	run, err := newHistoryRun(runID, started, rules, results)
	if err == nil {
		var plan *historyPlan
		if plan, err = h.commit(ctx, run, nil, run.start); err == nil {
			return plan.view, nil
		}
	}
	return nil, h.recordError(ctx, runID, err)
}

// Prepare returns what the report of a run (id, started) that saw rules and got results
// shows, as Record does, and changes nothing: the run is stored by the PendingRun's Commit,
// once its report is written. A run that is never committed (its report failed, or the
// process was killed) is no previous run to any other.
//
// Prepare also works out what Commit is to write. Another run committed between Prepare and
// Commit is not in the view; Commit then works it out again, and merges the two runs'
// sightings as Record does for a run recorded late.
//
// Once ctx is done, Prepare returns promptly with an error that wraps the context's cause.
func (h *History) Prepare(ctx context.Context, runID string, started time.Time, rules []collector.Rule, results []reputation.Result) (*HistoryView, *PendingRun, error) {
	run, err := newHistoryRun(runID, started, rules, results)
	if err == nil {
		var plan *historyPlan
		if plan, err = h.plan(ctx, run); err == nil {
			return plan.view, &PendingRun{h: h, plan: plan}, nil
		}
	}
	return nil, nil, h.recordError(ctx, runID, err)
}

// PendingRun is a run that Prepare has seen and that is not yet stored.
type PendingRun struct {
	h    *History
	plan *historyPlan
}

// Commit stores the run, finished at finished, as Record does, in one transaction. Once
// ctx is done, Commit returns promptly with an error that wraps the context's cause, and
// leaves the file as it was.
func (p *PendingRun) Commit(ctx context.Context, finished time.Time) error {
	_, err := p.h.commit(ctx, p.plan.run, p.plan, sqlitefile.UnixNano(finished))
	if err != nil {
		return p.h.recordError(ctx, p.plan.run.id, err)
	}
	return nil
}

// recordError wraps err, an error of recording run id, or the cause of ctx if ctx is done.
func (h *History) recordError(ctx context.Context, runID string, err error) error {
	if ctx.Err() != nil {
		// Whatever failed (a statement interrupted, or one that found the transaction
		// rolled back already), the context ended the run.
		err = context.Cause(ctx)
	}
	return fmt.Errorf("record run %s in history %s: %w", runID, h.path, err)
}

// historyCancelled returns the cause of ctx if it is done, looking at ctx only on the first
// of every historyCheckEvery iterations of a loop, i counting from 0.
func historyCancelled(ctx context.Context, i int) error {
	if i%historyCheckEvery != 0 {
		return nil
	}
	return context.Cause(ctx)
}

// historyWriting returns the context under which a statement of Record's transaction that
// writes is to run, or the cause of ctx if ctx is done.
//
// Such a statement, once begun, runs to its end, which is soon: each writes one row, a
// batch of historyBatchRows rows, or deletes the verdicts of one run. SQLite, interrupted
// in the middle of a statement that writes, would roll the whole transaction back before
// the statement returned, which for a run of 200,000 rules takes about a second, the caller
// waiting. Once ctx is done, database/sql rolls the transaction back on a goroutine of its
// own, and Record returns at its next look at ctx without waiting for that.
func historyWriting(ctx context.Context) (context.Context, error) {
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return context.WithoutCancel(ctx), nil
}

// historyRun is a run to record: its rules by key, the last of equal keys winning, and its
// verdicts.
type historyRun struct {
	id      string
	start   int64
	rules   []collector.Rule
	results []reputation.Result

	// Set by digest.
	keys     []string            // the rules' keys, each once, in the order of the rules
	last     []int               // for each of keys, the index in rules of the last rule with that key
	hashes   []int64             // for each of keys, the hash of that rule
	index    map[string]int      // the index in keys of each key
	verdicts []historyVerdictRef // the verdicts with a provider and a target, by key
}

// newHistoryRun returns the run (runID, started) that saw rules and got results.
func newHistoryRun(runID string, started time.Time, rules []collector.Rule, results []reputation.Result) (*historyRun, error) {
	if runID == "" {
		return nil, errors.New("empty run id")
	}
	if started.IsZero() {
		return nil, errors.New("no start time")
	}
	return &historyRun{id: runID, start: sqlitefile.UnixNano(started), rules: rules, results: results}, nil
}

// digest works out, unless it has already, what the history compares of the run: the key
// and hash of each rule, and the key and hash of each verdict. It needs nothing the history
// holds, and runs while the history is read.
func (r *historyRun) digest(ctx context.Context) error {
	if r.index != nil {
		return nil
	}
	index := make(map[string]int, len(r.rules))
	r.keys = make([]string, 0, len(r.rules))
	r.last = make([]int, 0, len(r.rules))
	for i := range r.rules {
		if err := historyCancelled(ctx, i); err != nil {
			return err
		}
		k := RuleKey(r.rules[i])
		if j, ok := index[k]; ok {
			r.last[j] = i
			continue
		}
		index[k] = len(r.keys)
		r.keys = append(r.keys, k)
		r.last = append(r.last, i)
	}
	var f historyHasher
	r.hashes = make([]int64, len(r.keys))
	for j := range r.keys {
		if err := historyCancelled(ctx, j); err != nil {
			return err
		}
		r.hashes[j] = f.rule(r.rule(j))
	}
	if err := r.digestVerdicts(ctx, &f); err != nil {
		return err
	}
	r.index = index
	return nil
}

// digestVerdicts works out the key and hash of each verdict with a provider and a target,
// and sorts them by key; for one key, they stay in the order of the results, so that each
// is compared with the one before it.
func (r *historyRun) digestVerdicts(ctx context.Context, f *historyHasher) error {
	r.verdicts = make([]historyVerdictRef, 0, len(r.results))
	for i := range r.results {
		if err := historyCancelled(ctx, i); err != nil {
			return err
		}
		res := &r.results[i]
		for n := range res.Verdicts {
			v := &res.Verdicts[n]
			target := historyVerdictTarget(res, v)
			if v.Provider == "" || !target.IsValid() {
				continue
			}
			key := f.verdictKey(v.Provider, target)
			r.verdicts = append(r.verdicts, historyVerdictRef{key, f.verdict(v, target), int32(i), int32(n)})
		}
	}
	slices.SortFunc(r.verdicts, func(a, b historyVerdictRef) int {
		return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.result, b.result), cmp.Compare(a.verdict, b.verdict))
	})
	return nil
}

// rule returns the rule kept for the key keys[j].
func (r *historyRun) rule(j int) *collector.Rule {
	return &r.rules[r.last[j]]
}

// historyHasher hashes the fields fed to it: it gathers them, each string after its length,
// and hashes them 8 bytes at a time. The hash is the same in every process, as it is stored.
//
// Rules and verdicts are hashed field by field, not as their JSON, so that a run that
// changes nothing marshals nothing: TestHistoryHashesEveryField checks that every field
// counts.
type historyHasher struct{ buf []byte }

// str feeds s, after its length.
func (f *historyHasher) str(s string) {
	f.buf = binary.AppendUvarint(f.buf, uint64(len(s)))
	f.buf = append(f.buf, s...)
}

// int feeds n.
func (f *historyHasher) int(n int64) {
	f.buf = binary.AppendVarint(f.buf, n)
}

// bool feeds b.
func (f *historyHasher) bool(b bool) {
	n := int64(0)
	if b {
		n = 1
	}
	f.int(n)
}

// prefix feeds p: its address's length in bits (0 for the zero Prefix), its address and its
// length.
func (f *historyHasher) prefix(p netip.Prefix) {
	a := p.Addr()
	f.int(int64(a.BitLen()))
	f.buf, _ = a.AppendBinary(f.buf)
	f.int(int64(p.Bits()))
}

// sum returns the hash of what was fed, which is never 0, the hash of nothing known, and
// forgets it. Each 8 bytes go through a step that, whatever the state, gives another state
// for other bytes, and the state through the finalizer of MurmurHash3.
func (f *historyHasher) sum() uint64 {
	const m = 0x9e3779b97f4a7c15
	b := f.buf
	h := uint64(len(b)) * m
	for ; len(b) >= 8; b = b[8:] {
		h = bits.RotateLeft64((h^binary.LittleEndian.Uint64(b))*m, 31)
	}
	var tail [8]byte
	copy(tail[:], b)
	h = bits.RotateLeft64((h^binary.LittleEndian.Uint64(tail[:]))*m, 31)
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	f.buf = f.buf[:0]
	return max(h, 1)
}

// rule returns the hash of every field of r.
func (f *historyHasher) rule(r *collector.Rule) int64 {
	for _, s := range [...]string{r.Account, r.Region, r.VPC, r.GroupID, r.GroupName, r.ID, string(r.Direction), r.Protocol} {
		f.str(s)
	}
	f.int(int64(r.FromPort))
	f.int(int64(r.ToPort))
	f.prefix(r.CIDR)
	f.bool(r.Invalid != nil)
	if i := r.Invalid; i != nil {
		f.str(string(i.Field))
		f.str(i.Text)
		f.str(i.Reason)
	}
	f.bool(r.PrefixList != nil)
	if l := r.PrefixList; l != nil {
		for _, s := range [...]string{l.ID, l.Name, l.Owner, l.EntryDescription, l.Unresolved} {
			f.str(s)
		}
		f.bool(l.AWSManaged)
	}
	f.bool(r.ReferencedGroup != nil)
	if g := r.ReferencedGroup; g != nil {
		for _, s := range [...]string{g.GroupID, g.Account, g.VPC, g.PeeringID, g.PeeringStatus} {
			f.str(s)
		}
	}
	f.str(r.Description)
	f.int(int64(r.Attached))
	return int64(f.sum())
}

// verdict returns the hash of every field of v, target standing for its target, but the
// time it was checked and whether the cache answered, which are no change.
func (f *historyHasher) verdict(v *reputation.Verdict, target reputation.Target) int64 {
	f.str(v.Provider)
	f.prefix(target.Prefix)
	f.str(string(v.Status))
	f.bool(v.Score != nil)
	if v.Score != nil {
		f.int(int64(*v.Score))
	}
	f.int(int64(len(v.Categories)))
	for _, c := range v.Categories {
		f.str(c)
	}
	f.str(v.Country)
	f.str(v.Evidence)
	f.str(v.Reason)
	return int64(f.sum())
}

// verdictKey returns the key of provider's verdicts for target in latest_verdicts: a hash of
// the two. Two pairs with the same key are told apart by their verdicts' hashes, which hash
// the provider and target too: each then has its verdicts stored again, which is harmless
// and, with 64 bits, as good as never happens.
func (f *historyHasher) verdictKey(provider string, target reputation.Target) uint64 {
	f.str(provider)
	f.prefix(target.Prefix)
	return f.sum()
}

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

// historyRuleRow is a row of rules, as read or to write, with the rule whose JSON rule_data
// is to hold: rule is its index in the run's keys, or -1 to keep what rule_data holds.
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
	replace bool  // verdicts stored under the run's id are replaced

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
// a forgotten run that left its latest verdicts.
func historyNewest(ctx context.Context, tx *sql.Tx, ref historyRunRef, stored, head *historyRunRef) (bool, error) {
	if stored != nil || (head != nil && historyRunCmp(*head, ref) > 0) {
		return false, nil
	}
	var newest bool
	err := tx.QueryRowContext(ctx, "SELECT NOT EXISTS (SELECT 1 FROM verdicts WHERE run = ?)", ref.id).Scan(&newest)
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
	p.replace = true
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
			target, err := reputation.ParseTarget(text)
			if err != nil || r.id == p.run.id {
				// No verdict of a run has that target; the run's own are replaced.
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
		err = historyDelete(ctx, tx, p.forget, "rules", "rule_data", "spans")
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

// writeRules writes the plan's rows of spans, rules and rule_data.
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
	rules := newHistoryBatch(tx, `INSERT INTO rules (key, first_seen, hash, since, until) VALUES `,
		` ON CONFLICT (key) DO UPDATE SET first_seen = excluded.first_seen, hash = excluded.hash,
		since = excluded.since, until = excluded.until`, 5)
	data := newHistoryBatch(tx, `INSERT INTO rule_data (key, rule) VALUES `,
		` ON CONFLICT (key) DO UPDATE SET rule = excluded.rule`, 2)
	for i, r := range p.rules {
		if err := historyCancelled(ctx, i); err != nil {
			return err
		}
		if err := rules.add(ctx, r.key, r.firstSeen, r.hash, r.since, r.until); err != nil {
			return err
		}
		if r.rule < 0 {
			continue
		}
		js, err := json.Marshal(p.run.rule(r.rule))
		if err != nil {
			return fmt.Errorf("rule %s: %w", r.key, err)
		}
		if err := data.add(ctx, r.key, string(js)); err != nil {
			return err
		}
	}
	if err := rules.flush(ctx); err != nil {
		return err
	}
	return data.flush(ctx)
}

// writeVerdicts stores the plan's verdicts, replacing those the run stored before.
func (p *historyPlan) writeVerdicts(ctx context.Context, tx *sql.Tx) error {
	run := p.run
	if p.replace {
		if _, err := historyExec(ctx, tx, "DELETE FROM verdicts WHERE run = ?", run.id); err != nil {
			return err
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
		v := res.Verdicts[w.verdict]
		v.Target = historyVerdictTarget(res, &v)
		js, err := json.Marshal(&v)
		if err != nil {
			return fmt.Errorf("verdict of %s for %s: %w", v.Provider, v.Target, err)
		}
		var score sql.NullInt64
		if v.Score != nil {
			score = sql.NullInt64{Int64: int64(*v.Score), Valid: true}
		}
		err = ins.add(ctx, v.Provider, v.Target.String(), run.start, run.id, string(v.Status), score,
			sqlitefile.UnixNano(v.CheckedAt), w.hash, string(js))
		if err != nil {
			return err
		}
	}
	return ins.flush(ctx)
}

// historyExec runs a statement of Record's or Prune's transaction that writes.
func historyExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	wctx, err := historyWriting(ctx)
	if err != nil {
		return nil, err
	}
	return tx.ExecContext(wctx, query, args...)
}

// historyDelete deletes the rows with the given keys from each of tables.
func historyDelete(ctx context.Context, tx *sql.Tx, keys []string, tables ...string) error {
	if len(keys) == 0 {
		return nil
	}
	for _, table := range tables {
		stmt, err := tx.PrepareContext(ctx, "DELETE FROM "+table+" WHERE key = ?")
		if err != nil {
			return err
		}
		for _, k := range keys {
			wctx, err := historyWriting(ctx)
			if err != nil {
				return err
			}
			if _, err := stmt.ExecContext(wctx, k); err != nil {
				return err
			}
		}
	}
	return nil
}

// historyGone returns the gone rules, in the order of their keys.
func historyGone(ctx context.Context, tx *sql.Tx, refs []historyGoneRef) ([]GoneRule, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	slices.SortFunc(refs, func(a, b historyGoneRef) int { return strings.Compare(a.key, b.key) })
	stmt, err := tx.PrepareContext(ctx, "SELECT rule FROM rule_data WHERE key = ?")
	if err != nil {
		return nil, err
	}
	gone := make([]GoneRule, 0, len(refs))
	for _, r := range refs {
		var data []byte
		if err := stmt.QueryRowContext(ctx, r.key).Scan(&data); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		g := historyGoneRule(r.key, data)
		g.FirstSeen = time.Unix(0, r.firstSeen).UTC()
		g.LastSeen = time.Unix(0, r.lastSeen).UTC()
		gone = append(gone, g)
	}
	return gone, nil
}

// historyGoneRule describes the rule stored as data under key k. If data does not decode,
// or there is none, what the key says is used.
func historyGoneRule(k string, data []byte) GoneRule {
	var r collector.Rule
	if err := json.Unmarshal(data, &r); err != nil {
		var g GoneRule
		parts := strings.SplitN(k, "|", 5)
		for i, field := range []*string{&g.Account, &g.Region, &g.GroupID, &g.RuleID, &g.CIDR} {
			if i < len(parts) {
				*field = parts[i]
			}
		}
		return g
	}
	return GoneRule{RuleRef: refOf(&r)}
}

// Finish records when the run finished.
func (h *History) Finish(ctx context.Context, runID string, finished time.Time) error {
	res, err := h.db.ExecContext(ctx, "UPDATE runs SET finished = ? WHERE id = ?", sqlitefile.UnixNano(finished), runID)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			err = errors.New("no such run")
		}
	}
	if err != nil {
		return fmt.Errorf("record end of run %s in history %s: %w", runID, h.path, err)
	}
	return nil
}

// historyBatch inserts rows of a fixed number of columns, historyBatchRows to a statement,
// in Record's transaction.
type historyBatch struct {
	tx         *sql.Tx
	head, tail string
	cols       int
	args       []any
	full       *sql.Stmt // the statement for historyBatchRows rows, prepared once, closed with tx
}

func newHistoryBatch(tx *sql.Tx, head, tail string, cols int) *historyBatch {
	return &historyBatch{tx: tx, head: head, tail: tail, cols: cols, args: make([]any, 0, cols*historyBatchRows)}
}

// query returns the statement for n rows.
func (b *historyBatch) query(n int) string {
	row := "(?" + strings.Repeat(", ?", b.cols-1) + ")"
	return b.head + row + strings.Repeat(", "+row, n-1) + b.tail
}

// add adds one row, writing the batch when it is full.
func (b *historyBatch) add(ctx context.Context, values ...any) error {
	b.args = append(b.args, values...)
	if len(b.args) < b.cols*historyBatchRows {
		return nil
	}
	if b.full == nil {
		var err error
		if b.full, err = b.tx.PrepareContext(ctx, b.query(historyBatchRows)); err != nil {
			return err
		}
	}
	wctx, err := historyWriting(ctx)
	if err != nil {
		return err
	}
	_, err = b.full.ExecContext(wctx, b.args...)
	b.args = b.args[:0]
	return err
}

// flush writes the rows added since the last write.
func (b *historyBatch) flush(ctx context.Context) error {
	if len(b.args) == 0 {
		return nil
	}
	wctx, err := historyWriting(ctx)
	if err != nil {
		return err
	}
	_, err = b.tx.ExecContext(wctx, b.query(len(b.args)/b.cols), b.args...)
	b.args = b.args[:0]
	return err
}

// newRules returns the rules of rules that h calls new, in the order of their keys, with
// their first sighting; of two rules with the same key, the last is kept.
func newRules(rules []collector.Rule, h *HistoryView) []NewRule {
	byKey := make(map[string]int, len(h.New))
	for i := range rules {
		if k := RuleKey(rules[i]); h.New[k] {
			byKey[k] = i
		}
	}
	keys := slices.Sorted(maps.Keys(byKey))
	out := make([]NewRule, 0, len(keys))
	for _, k := range keys {
		out = append(out, NewRule{RuleRef: refOf(&rules[byKey[k]]), FirstSeen: h.FirstSeen[k]})
	}
	return out
}

// Prune forgets all but the newest keep runs, by start, ties broken by id, and returns how
// many runs it forgot; keep 0 or less keeps every run. With the runs go the rules no kept
// run saw, the spans of runs that are all forgotten, and the verdicts a later one replaced
// by a run no later than the oldest kept: the latest verdict of each provider for each
// target is always kept. A rule that comes back after its last sighting was forgotten is
// new again, first seen on its return. A span that began with a forgotten run is kept as
// it is: it began before the oldest kept run.
//
// Pruning after each run forgets one run at a time, and costs a scan of the rules only when
// it forgets one. Once ctx is done, Prune returns promptly with an error that wraps the
// context's cause, and leaves the file as it was.
func (h *History) Prune(ctx context.Context, keep int) (int, error) {
	if keep <= 0 {
		return 0, nil
	}
	n, err := h.prune(ctx, keep)
	if err != nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		return 0, fmt.Errorf("prune history %s: %w", h.path, err)
	}
	return n, nil
}

func (h *History) prune(ctx context.Context, keep int) (int, error) {
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer historyRollback(ctx, tx)
	var cut historyRunRef
	err = tx.QueryRowContext(ctx, "SELECT started, id FROM runs ORDER BY started DESC, id DESC LIMIT 1 OFFSET ?", keep-1).Scan(&cut.start, &cut.id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	res, err := historyExec(ctx, tx, "DELETE FROM runs WHERE started < ?1 OR (started = ?1 AND id < ?2)", cut.start, cut.id)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return 0, err
	}
	// A rule's latest span ends with a forgotten run only if every run that saw it is
	// forgotten.
	var forgotten []string
	err = historyEachRow(ctx, tx, "SELECT key FROM rules WHERE until NOT IN (SELECT seq FROM runs)", func(rows *sql.Rows) error {
		var k string
		err := rows.Scan(&k)
		forgotten = append(forgotten, k)
		return err
	})
	if err != nil {
		return 0, err
	}
	if err := historyDelete(ctx, tx, forgotten, "rules", "rule_data", "spans"); err != nil {
		return 0, err
	}
	if _, err := historyExec(ctx, tx, "DELETE FROM spans WHERE until NOT IN (SELECT seq FROM runs)"); err != nil {
		return 0, err
	}
	if _, err := historyExec(ctx, tx, "UPDATE changes SET n = n + 1"); err != nil {
		return 0, err
	}
	for _, stmt := range []string{
		`DELETE FROM verdicts WHERE (started < ?1 OR (started = ?1 AND run < ?2)) AND EXISTS (
			SELECT 1 FROM verdicts AS w WHERE w.provider = verdicts.provider AND w.target = verdicts.target
			AND (w.started > verdicts.started OR (w.started = verdicts.started AND w.run > verdicts.run))
			AND (w.started < ?1 OR (w.started = ?1 AND w.run <= ?2)))`,
	} {
		if _, err := historyExec(ctx, tx, stmt, cut.start, cut.id); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return int(n), nil
}
