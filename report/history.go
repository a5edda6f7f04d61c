package report

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/internal/sqlitefile"
	"github.com/sgvet/sgvet/reputation"
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
// oldest first. What a report shows of the rule (its RuleRef), as the latest run to see it
// saw it, is kept in the ref column of rules: see historyRuleData. Only gone rules are
// described from it; a rule migrated from version 1 or 2 may have there the JSON of a whole
// collector.Rule instead, until a run sees it.
//
// So a run later than every stored run writes a row of rules only for a rule it saw that
// the run before it did not (a span opens, and the rule's latest span, if any, moves to
// spans), for one the run before it saw and it does not (its span closes at that run), and
// for one that changed (its hash and ref).
//
// A verdict is stored by the run that got it, with that run's start, when it differs (in
// anything but the time it was checked and whether the cache answered) from the latest
// verdict of the same provider for the same target stored by an earlier run; hash is a hash
// of its fields but those two (0 when unknown). latest_verdicts holds, for each provider and
// target, the pair of a key (a hash of the two) and the hash of the latest verdict stored,
// in 16 bytes, little-endian; the pairs are sorted by key, in buckets by the top bits of the
// key. So a run reads the latest verdicts' hashes in a thousand rows, and rewrites only the
// buckets whose pairs change.
//
// A verdict's provider, target, status, score (NULL if it has none) and checked_at are
// columns of its row; its JSON (verdict) holds, as historyVerdictData, the rest of it, under
// the names of reputation.Verdict's JSON. So a reader rebuilds the verdict by unmarshalling
// the JSON into a reputation.Verdict and setting those fields from the columns, all but
// checked_at when the JSON has it. A verdict stored by version 1 or 2 has its whole JSON
// there, which reads the same way.
//
// A verdict names the run that stored it by its id (run), which outlives the run: the
// latest verdicts of a forgotten run are kept. forgotten_runs holds the ids of the runs
// forgotten whose verdicts are still stored, so that the runs whose verdicts are stored are
// found without an index of verdicts by run, which would take a tenth of the file: a run
// not in runs and not in forgotten_runs stored none.
func historySchema() []string {
	return []string{
		historyRunsTable("runs"),
		`CREATE INDEX IF NOT EXISTS runs_started ON runs (started, id)`,
		`CREATE TABLE IF NOT EXISTS changes (n INTEGER NOT NULL)`,
		`INSERT INTO changes (n) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM changes)`,
		historyRulesTable("rules"),
		historySpansTable,
		historyVerdictsTable("verdicts"),
		historyForgottenRunsTable,
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
// 3 under the given name. ref comes last: reading the sightings of every rule, as each run
// does, reads nothing of it.
func historyRulesTable(name string) string {
	return `CREATE TABLE IF NOT EXISTS ` + name + ` (
			key        TEXT    NOT NULL PRIMARY KEY,
			first_seen INTEGER NOT NULL,
			hash       INTEGER NOT NULL DEFAULT 0,
			since      INTEGER NOT NULL,
			until      INTEGER,
			ref        TEXT
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

// historyForgottenRunsTable is the statement that creates the forgotten_runs table of
// schema version 3.
const historyForgottenRunsTable = `CREATE TABLE IF NOT EXISTS forgotten_runs (
			id TEXT NOT NULL PRIMARY KEY
		) WITHOUT ROWID`

// historyFillForgottenRuns is the statement that adds to forgotten_runs the ids of the runs
// not stored whose verdicts are. It reads every verdict.
const historyFillForgottenRuns = `INSERT OR IGNORE INTO forgotten_runs (id)
			SELECT DISTINCT run FROM verdicts WHERE run NOT IN (SELECT id FROM runs)`

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
// latest run. First sightings and rules' JSON are kept, the JSON of rule_data moving to
// the ref column of rules; rules and verdicts get hash 0, as
// version 3 hashes them otherwise, and latest_verdicts starts empty: the next run rewrites
// each rule's JSON once and stores each verdict once again. The index of verdicts by run
// gives way to forgotten_runs.
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
			`INSERT INTO rules_v3 (key, first_seen, since, until, ref)
			SELECT r.key, r.first_seen,
				CASE WHEN p.seq = l.seq - 1 THEN p.seq ELSE coalesce(l.seq, 0) END,
				CASE WHEN l.seq = (SELECT max(seq) FROM runs_v3) THEN NULL ELSE coalesce(l.seq, 0) END,
				d.rule
			FROM rules AS r LEFT JOIN runs_v3 AS l ON l.id = r.last_run LEFT JOIN runs_v3 AS p ON p.id = r.prev_run
			LEFT JOIN rule_data AS d ON d.key = r.key`,
			historySpansTable,
			`INSERT INTO spans (key, since, until)
			SELECT r.key, p.seq, p.seq
			FROM rules AS r JOIN runs_v3 AS l ON l.id = r.last_run JOIN runs_v3 AS p ON p.id = r.prev_run
			WHERE p.seq < l.seq - 1`,
			`DROP TABLE rules`,
			`DROP TABLE rule_data`,
			`ALTER TABLE rules_v3 RENAME TO rules`,
			`DROP TABLE runs`,
			`ALTER TABLE runs_v3 RENAME TO runs`,
			`CREATE INDEX runs_started ON runs (started, id)`,
			`UPDATE verdicts SET hash = 0`,
			historyLatestVerdictsTable,
			`DROP INDEX verdicts_run`,
			historyForgottenRunsTable,
			historyFillForgottenRuns,
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
	stmt, err := tx.PrepareContext(ctx, "SELECT ref FROM rules WHERE key = ?")
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

// historyRuleData is what the ref column of rules holds of a rule, as JSON: the fields of
// its RuleRef that its key (see RuleKey) does not give back, under one-letter names, the
// empty ones left out. Key holds the account, region, group id, rule id and CIDR only when
// the key does not split back into them, which it does unless one of the first four holds
// a "|". A rule of the benchmark's estate takes about 60 bytes, where the JSON of its
// collector.Rule took about 270.
type historyRuleData struct {
	historyRuleRef
	Key *[5]string `json:"k,omitempty"`
}

// historyRuleRef is a RuleRef, field for field, so that one converts to the other, with
// the names historyRuleData gives its fields in JSON; the fields the key holds are left
// out.
type historyRuleRef struct {
	Account         string                   `json:"-"`
	Region          string                   `json:"-"`
	GroupID         string                   `json:"-"`
	GroupName       string                   `json:"n,omitempty"`
	RuleID          string                   `json:"-"`
	Direction       string                   `json:"d,omitempty"`
	Protocol        string                   `json:"p,omitempty"`
	PortRange       string                   `json:"r,omitempty"`
	CIDR            string                   `json:"-"`
	Description     string                   `json:"s,omitempty"`
	PrefixList      *collector.PrefixListRef `json:"l,omitempty"`
	ReferencedGroup *collector.GroupRef      `json:"g,omitempty"`
	Invalid         *collector.Invalid       `json:"i,omitempty"`
}

// historyKeyFields returns the account, region, group id, rule id and CIDR that the key k
// gives, empty where it has too few parts.
func historyKeyFields(k string) [5]string {
	var f [5]string
	copy(f[:], strings.SplitN(k, "|", len(f)))
	return f
}

// historyRuleJSON returns what the ref column of rules holds of r, whose key is k.
func historyRuleJSON(k string, r *collector.Rule) ([]byte, error) {
	ref := refOf(r)
	d := historyRuleData{historyRuleRef: historyRuleRef(ref)}
	if f := [5]string{ref.Account, ref.Region, ref.GroupID, ref.RuleID, ref.CIDR}; f != historyKeyFields(k) {
		d.Key = &f
	}
	return json.Marshal(&d)
}

// historyGoneRule describes the rule stored as data under key k: a historyRuleData, or the
// JSON of a collector.Rule, which versions 1 and 2 stored and which alone has a group_id.
// If data does not decode, or there is none, what the key says is used.
func historyGoneRule(k string, data []byte) GoneRule {
	var whole struct {
		GroupID *string `json:"group_id"`
	}
	if json.Unmarshal(data, &whole) == nil && whole.GroupID != nil {
		var r collector.Rule
		if json.Unmarshal(data, &r) == nil {
			return GoneRule{RuleRef: refOf(&r)}
		}
	}
	var d historyRuleData
	if json.Unmarshal(data, &d) != nil {
		d = historyRuleData{}
	}
	f := historyKeyFields(k)
	if d.Key != nil {
		f = *d.Key
	}
	ref := RuleRef(d.historyRuleRef)
	ref.Account, ref.Region, ref.GroupID, ref.RuleID, ref.CIDR = f[0], f[1], f[2], f[3], f[4]
	return GoneRule{RuleRef: ref}
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
// Pruning after each run forgets one run at a time, and costs a scan of the rules and two
// of the verdicts only when it forgets one. Once ctx is done, Prune returns promptly with an error that wraps the
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
	if err := historyDelete(ctx, tx, forgotten, "rules", "spans"); err != nil {
		return 0, err
	}
	if _, err := historyExec(ctx, tx, "DELETE FROM spans WHERE until NOT IN (SELECT seq FROM runs)"); err != nil {
		return 0, err
	}
	if _, err := historyExec(ctx, tx, "UPDATE changes SET n = n + 1"); err != nil {
		return 0, err
	}
	_, err = historyExec(ctx, tx, `DELETE FROM verdicts WHERE (started < ?1 OR (started = ?1 AND run < ?2)) AND EXISTS (
			SELECT 1 FROM verdicts AS w WHERE w.provider = verdicts.provider AND w.target = verdicts.target
			AND (w.started > verdicts.started OR (w.started = verdicts.started AND w.run > verdicts.run))
			AND (w.started < ?1 OR (w.started = ?1 AND w.run <= ?2)))`, cut.start, cut.id)
	if err != nil {
		return 0, err
	}
	// The runs forgotten may have left verdicts, and the verdicts deleted may have been the
	// last of a run forgotten before.
	for _, stmt := range []string{`DELETE FROM forgotten_runs`, historyFillForgottenRuns} {
		if _, err := historyExec(ctx, tx, stmt); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return int(n), nil
}
