package report

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
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
// version 2 stores a verdict only when it differs from the one stored before, and keeps a
// rule's JSON apart from its sightings, rewritten only when the rule changed.
const historySchemaVersion = 2

// DefaultHistoryKeep is how many runs a history keeps by default: see History.Prune.
const DefaultHistoryKeep = 90

// historyBusyTimeout is how long a connection waits for another connection or process that
// holds the database lock. Recording a large estate holds the lock for a few seconds.
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
// version 1 may have none).
//
// A rule's last_run is the latest run, by start time, that saw it, and last_seen that
// run's start; prev_run and prev_seen are the run that saw it before that one, if known.
// The rule itself is kept in rule_data as the JSON of a collector.Rule, as the latest run
// saw it; rules holds a hash of that JSON (0 when unknown). Every run rewrites the
// sightings of each rule it saw, and so rules holds nothing more.
//
// A verdict is stored by the run that got it, with that run's start, when it differs (in
// anything but the time it was checked and whether the cache answered) from the latest
// verdict of the same provider for the same target stored by an earlier run; hash is the
// hash of its JSON without those two (0 when unknown).
func historySchema() []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS runs (
			id       TEXT    NOT NULL PRIMARY KEY,
			started  INTEGER NOT NULL,
			finished INTEGER,
			rules    INTEGER NOT NULL DEFAULT 0,
			verdicts INTEGER NOT NULL DEFAULT 0
		) WITHOUT ROWID`,
		`CREATE INDEX IF NOT EXISTS runs_started ON runs (started, id)`,
		historyRulesTable("rules"),
		`CREATE TABLE IF NOT EXISTS rule_data (
			key  TEXT NOT NULL PRIMARY KEY,
			rule TEXT NOT NULL
		) WITHOUT ROWID`,
		historyVerdictsTable("verdicts"),
		`CREATE INDEX IF NOT EXISTS verdicts_run ON verdicts (run)`,
	}
}

// historyRulesTable returns the statement that creates the rules table of schema version
// 2 under the given name.
func historyRulesTable(name string) string {
	return `CREATE TABLE IF NOT EXISTS ` + name + ` (
			key        TEXT    NOT NULL PRIMARY KEY,
			first_seen INTEGER NOT NULL,
			last_seen  INTEGER NOT NULL,
			last_run   TEXT    NOT NULL,
			prev_seen  INTEGER,
			prev_run   TEXT,
			hash       INTEGER NOT NULL DEFAULT 0
		) WITHOUT ROWID`
}

// historyVerdictsTable returns the statement that creates the verdicts table of schema
// version 2 under the given name.
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

// historyMigrations returns the statements that bring a file of schema version 1 to
// version 2, in place. Rules keep their sightings and JSON, and get hash 0, so that the
// next run rewrites each once. Of the verdicts, the latest of each provider for each target is
// kept, with hash 0; the verdicts every run stored again are dropped, and their space is
// reused by SQLite as the file grows again.
func historyMigrations() [][]string {
	return [][]string{
		1: {
			`CREATE TABLE rule_data (key TEXT NOT NULL PRIMARY KEY, rule TEXT NOT NULL) WITHOUT ROWID`,
			`INSERT INTO rule_data (key, rule) SELECT key, rule FROM rules`,
			historyRulesTable("rules_v2"),
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
	}
}

// History is the state database of --state FILE: the runs, every rule with its first and
// last sighting, and the verdicts as they changed. Several processes may open it at once;
// each Record, Commit and Prune is one transaction, and Prepare reads in one that blocks no
// writer. A History is safe for concurrent use.
//
// The previous run of a run is the run recorded (by Record or Commit) with the latest start
// before its own, ties broken by id, whichever process recorded it; a prepared run that was
// never committed is no previous run. Runs are expected to be recorded roughly in
// the order they started; a run recorded after a later one sees the rules' history as well
// as the file still holds it.
type History struct {
	db   *sql.DB
	path string
}

// OpenHistory opens the history file at path. If the file does not exist, OpenHistory
// creates it, readable and writable by its owner only, and its parent directories. It
// refuses, without changing it, a file that is not a SQLite database or that holds another
// program's tables. If users other than its owner may read or write the file, OpenHistory
// warns to log, which may be nil, and goes on.
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
	// A run rewrites every rule it saw: statement journals stay in memory, and the page
	// cache may grow to 64 MiB, so that a large run is not written out twice.
	db, err := sqlitefile.Open(ctx, path, sqlitefile.Options{
		Kind:        "history",
		Log:         log,
		BusyTimeout: busyTimeout,
		Pragmas:     []string{"temp_store(MEMORY)", "cache_size(-65536)"},
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
// finished at its start, in one transaction, and returns what the report shows: the previous run's id, each rule's first
// sighting (earlier runs' first_seen for rules seen before, started for new ones), which
// rules are new since the previous run (none on the first run), and which rules the previous
// run had that this one does not.
//
// Rules are identified by RuleKey; of two rules with the same key, the last is kept.
// Every verdict with a provider is stored, known or unknown. Recording a run again, with
// the same start, replaces what was recorded for it and returns the same view.
//
// Once ctx is done, Record returns promptly with an error that wraps the context's cause,
// and leaves the file as it was: the transaction is rolled back, without Record waiting for
// that.
func (h *History) Record(ctx context.Context, runID string, started time.Time, rules []collector.Rule, results []reputation.Result) (*HistoryView, error) {
	run, err := newHistoryRun(ctx, runID, started, rules, results)
	if err == nil {
		view, err := h.record(ctx, run, true, run.start)
		if err == nil {
			return view, nil
		}
	}
	return nil, h.recordError(ctx, runID, err)
}

// Prepare returns what the report of a run (id, started) that saw rules and got results
// shows, as Record does, and changes nothing: the run is stored by the PendingRun's Commit,
// once its report is written. A run that is never committed (its report failed, or the
// process was killed) is no previous run to any other.
//
// Another run committed between Prepare and Commit is not in the view; Commit merges the
// two runs' sightings as Record does for a run recorded late.
//
// Once ctx is done, Prepare returns promptly with an error that wraps the context's cause.
func (h *History) Prepare(ctx context.Context, runID string, started time.Time, rules []collector.Rule, results []reputation.Result) (*HistoryView, *PendingRun, error) {
	run, err := newHistoryRun(ctx, runID, started, rules, results)
	if err == nil {
		var view *HistoryView
		if view, err = h.record(ctx, run, false, 0); err == nil {
			return view, &PendingRun{h: h, run: run}, nil
		}
	}
	return nil, nil, h.recordError(ctx, runID, err)
}

// PendingRun is a run that Prepare has seen and that is not yet stored.
type PendingRun struct {
	h   *History
	run *historyRun
}

// Commit stores the run, finished at finished, as Record does, in one transaction. Once
// ctx is done, Commit returns promptly with an error that wraps the context's cause, and
// leaves the file as it was.
func (p *PendingRun) Commit(ctx context.Context, finished time.Time) error {
	_, err := p.h.record(ctx, p.run, true, sqlitefile.UnixNano(finished))
	if err != nil {
		return p.h.recordError(ctx, p.run.id, err)
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

// historyRule is a row of the rules table, without the rule's JSON.
type historyRule struct {
	firstSeen, lastSeen int64
	lastRun             string
	prevSeen            sql.NullInt64
	prevRun             sql.NullString
	hash                int64
}

// historyRun is a run to record: its rules by key, the last of equal keys winning.
type historyRun struct {
	id      string
	start   int64
	current map[string]collector.Rule
	keys    []string // in the order of the rules
	results []reputation.Result
}

// newHistoryRun returns the run (runID, started) that saw rules and got results.
func newHistoryRun(ctx context.Context, runID string, started time.Time, rules []collector.Rule, results []reputation.Result) (*historyRun, error) {
	if runID == "" {
		return nil, errors.New("empty run id")
	}
	if started.IsZero() {
		return nil, errors.New("no start time")
	}
	run := &historyRun{
		id:      runID,
		start:   sqlitefile.UnixNano(started),
		current: make(map[string]collector.Rule, len(rules)),
		keys:    make([]string, 0, len(rules)),
		results: results,
	}
	for i, r := range rules {
		if err := historyCancelled(ctx, i); err != nil {
			return nil, err
		}
		k := RuleKey(r)
		if _, ok := run.current[k]; !ok {
			run.keys = append(run.keys, k)
		}
		run.current[k] = r
	}
	return run, nil
}

// historyHash returns a hash of data that is never 0, the hash of nothing known.
func historyHash(data []byte) int64 {
	f := fnv.New64a()
	f.Write(data)
	if h := int64(f.Sum64()); h != 0 {
		return h
	}
	return 1
}

// historyBefore reports whether the run (at, id) comes before the run (at2, id2).
func historyBefore(at int64, id string, at2 int64, id2 string) bool {
	return at < at2 || (at == at2 && id < id2)
}

// record computes the view of run and, if write is set, stores the run as finished at
// finished, in one transaction; without write, it reads in a transaction that takes no
// lock and changes nothing.
func (h *History) record(ctx context.Context, run *historyRun, write bool, finished int64) (*HistoryView, error) {
	runID, start, current, keys := run.id, run.start, run.current, run.keys
	tx, err := h.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: !write})
	if err != nil {
		return nil, err
	}
	defer func() {
		// Once ctx is done, database/sql rolls the transaction back; Record does not wait.
		// The statements prepared in the transaction are closed with it.
		if ctx.Err() == nil {
			tx.Rollback()
		}
	}()

	var recorded int64
	switch err := tx.QueryRowContext(ctx, "SELECT started FROM runs WHERE id = ?", runID).Scan(&recorded); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, err
	case recorded != start:
		return nil, fmt.Errorf("the run was recorded with start %s, not %s",
			time.Unix(0, recorded).UTC().Format(time.RFC3339Nano), time.Unix(0, start).UTC().Format(time.RFC3339Nano))
	}

	view := &HistoryView{
		FirstSeen: make(map[string]time.Time, len(keys)),
		New:       make(map[string]bool),
	}
	err = tx.QueryRowContext(ctx, `SELECT id FROM runs
		WHERE started < ?1 OR (started = ?1 AND id < ?2)
		ORDER BY started DESC, id DESC LIMIT 1`, start, runID).Scan(&view.Previous)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	prev := view.Previous

	known, err := historyLoadRules(ctx, tx)
	if err != nil {
		return nil, err
	}

	// Rules this run recorded before and no longer has: the run is recorded again with
	// other rules. Their sighting by this run is undone.
	var undone []string
	n := 0
	for k, row := range known {
		if err := historyCancelled(ctx, n); err != nil {
			return nil, err
		}
		n++
		if _, ok := current[k]; ok {
			continue
		}
		switch {
		case row.lastRun == runID && !row.prevRun.Valid:
			// Only this run saw it.
			undone = append(undone, k)
			delete(known, k)
			continue
		case row.lastRun == runID:
			row.lastRun, row.lastSeen = row.prevRun.String, row.prevSeen.Int64
			row.prevRun, row.prevSeen = sql.NullString{}, sql.NullInt64{}
		case row.prevRun.Valid && row.prevRun.String == runID:
			row.prevRun, row.prevSeen = sql.NullString{}, sql.NullInt64{}
		default:
			continue
		}
		known[k] = row
		if !write {
			continue
		}
		if err := historyWriteRow(ctx, tx, k, row); err != nil {
			return nil, err
		}
	}
	if write {
		if err := historyDelete(ctx, tx, undone); err != nil {
			return nil, err
		}
	}

	ins := newHistoryBatch(tx, `INSERT INTO rules (key, first_seen, last_seen, last_run, prev_seen, prev_run, hash) VALUES `,
		` ON CONFLICT (key) DO UPDATE SET first_seen = excluded.first_seen, last_seen = excluded.last_seen,
		last_run = excluded.last_run, prev_seen = excluded.prev_seen, prev_run = excluded.prev_run,
		hash = excluded.hash`, 7)
	insData := newHistoryBatch(tx, `INSERT INTO rule_data (key, rule) VALUES `,
		` ON CONFLICT (key) DO UPDATE SET rule = excluded.rule`, 2)
	for i, k := range keys {
		if err := historyCancelled(ctx, i); err != nil {
			return nil, err
		}
		row, seen := known[k]
		latest := true // this run is the latest to see the rule: the rule is stored as it saw it
		switch {
		case !seen:
			row = historyRule{firstSeen: start, lastSeen: start, lastRun: runID}
			if prev != "" {
				view.New[k] = true
			}
		case row.lastRun == runID:
			// Recorded again.
			if prev != "" && !(row.prevRun.Valid && row.prevRun.String == prev) {
				view.New[k] = true
			}
		case historyBefore(row.lastSeen, row.lastRun, start, runID):
			if prev != "" && row.lastRun != prev {
				view.New[k] = true
			}
			row.prevRun = sql.NullString{String: row.lastRun, Valid: true}
			row.prevSeen = sql.NullInt64{Int64: row.lastSeen, Valid: true}
			row.lastRun, row.lastSeen = runID, start
		default:
			// A later run is recorded already.
			latest = false
			if prev != "" && !(row.prevRun.Valid && row.prevRun.String == prev) {
				view.New[k] = true
			}
			if !row.prevRun.Valid || historyBefore(row.prevSeen.Int64, row.prevRun.String, start, runID) {
				row.prevRun = sql.NullString{String: runID, Valid: true}
				row.prevSeen = sql.NullInt64{Int64: start, Valid: true}
			}
		}
		row.firstSeen = min(row.firstSeen, start)
		view.FirstSeen[k] = time.Unix(0, row.firstSeen).UTC()

		if !write {
			continue
		}
		if !latest {
			if err := historyWriteRow(ctx, tx, k, row); err != nil {
				return nil, err
			}
			continue
		}
		r := current[k]
		data, err := json.Marshal(&r)
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", k, err)
		}
		hash := historyHash(data)
		if !seen || hash != row.hash {
			if err := insData.add(ctx, k, string(data)); err != nil {
				return nil, err
			}
		}
		if err := ins.add(ctx, k, row.firstSeen, row.lastSeen, row.lastRun, row.prevSeen, row.prevRun, hash); err != nil {
			return nil, err
		}
	}
	if write {
		if err := ins.flush(ctx); err != nil {
			return nil, err
		}
		if err := insData.flush(ctx); err != nil {
			return nil, err
		}
		nverdicts, err := historyWriteVerdicts(ctx, tx, runID, start, run.results)
		if err != nil {
			return nil, err
		}
		wctx, err := historyWriting(ctx)
		if err != nil {
			return nil, err
		}
		_, err = tx.ExecContext(wctx, `INSERT INTO runs (id, started, finished, rules, verdicts) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET finished = excluded.finished, rules = excluded.rules, verdicts = excluded.verdicts`,
			runID, start, finished, len(keys), nverdicts)
		if err != nil {
			return nil, err
		}
	}

	if prev != "" {
		var gone []string
		n = 0
		for k, row := range known {
			if err := historyCancelled(ctx, n); err != nil {
				return nil, err
			}
			n++
			if _, ok := current[k]; !ok && row.lastRun == prev {
				gone = append(gone, k)
			}
		}
		slices.Sort(gone)
		if view.Gone, err = historyGone(ctx, tx, gone, known); err != nil {
			return nil, err
		}
	}
	if !write {
		// Nothing was written: the transaction ends without waiting for anything.
		return view, tx.Rollback()
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return view, nil
}

// historyLoadRules reads every rule's sightings.
func historyLoadRules(ctx context.Context, tx *sql.Tx) (map[string]historyRule, error) {
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM rules").Scan(&n); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, "SELECT key, first_seen, last_seen, last_run, prev_seen, prev_run, hash FROM rules")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	known := make(map[string]historyRule, n)
	for rows.Next() {
		var k string
		var r historyRule
		if err := rows.Scan(&k, &r.firstSeen, &r.lastSeen, &r.lastRun, &r.prevSeen, &r.prevRun, &r.hash); err != nil {
			return nil, err
		}
		known[k] = r
	}
	return known, rows.Err()
}

// historyWriteRow stores the sightings of the rule with key k, keeping its JSON.
func historyWriteRow(ctx context.Context, tx *sql.Tx, k string, r historyRule) error {
	wctx, err := historyWriting(ctx)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(wctx, `UPDATE rules SET first_seen = ?, last_seen = ?, last_run = ?, prev_seen = ?, prev_run = ?
		WHERE key = ?`, r.firstSeen, r.lastSeen, r.lastRun, r.prevSeen, r.prevRun, k)
	return err
}

// historyDelete deletes the rules with the given keys.
func historyDelete(ctx context.Context, tx *sql.Tx, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	for _, table := range []string{"rules", "rule_data"} {
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

// historyWriteVerdicts replaces the verdicts that run (which started at start) stored with
// those of results that differ from the latest verdict an earlier run stored, and returns
// how many verdicts results hold. A verdict without a provider or target is not counted.
func historyWriteVerdicts(ctx context.Context, tx *sql.Tx, run string, start int64, results []reputation.Result) (int, error) {
	wctx, err := historyWriting(ctx)
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(wctx, "DELETE FROM verdicts WHERE run = ?", run); err != nil {
		return 0, err
	}
	latest, err := historyLatestVerdicts(ctx, tx, run, start)
	if err != nil {
		return 0, err
	}
	ins := newHistoryBatch(tx, `INSERT INTO verdicts (provider, target, started, run, status, score, checked_at, hash, verdict) VALUES `,
		` ON CONFLICT (provider, target, started, run) DO UPDATE SET status = excluded.status, score = excluded.score,
		checked_at = excluded.checked_at, hash = excluded.hash, verdict = excluded.verdict`, 9)
	var key []byte
	n := 0
	for i, res := range results {
		if err := historyCancelled(ctx, i); err != nil {
			return 0, err
		}
		for _, v := range res.Verdicts {
			if v.Provider == "" {
				continue
			}
			target := v.Target
			if !target.IsValid() {
				target = res.Target
			}
			if !target.IsValid() {
				continue
			}
			v.Target = target
			n++
			// The time of the check, and whether the cache answered, are no change.
			checked, cached := v.CheckedAt, v.Cached
			v.CheckedAt, v.Cached = time.Time{}, false
			data, err := json.Marshal(&v)
			if err != nil {
				return 0, fmt.Errorf("verdict of %s for %s: %w", v.Provider, target, err)
			}
			hash := historyHash(data)
			key = append(append(append(key[:0], v.Provider...), 0), target.String()...)
			if latest[string(key)] == hash {
				continue
			}
			latest[string(key)] = hash // of two equal verdicts in results, one is stored
			v.CheckedAt, v.Cached = checked, cached
			if data, err = json.Marshal(&v); err != nil {
				return 0, fmt.Errorf("verdict of %s for %s: %w", v.Provider, target, err)
			}
			var score sql.NullInt64
			if v.Score != nil {
				score = sql.NullInt64{Int64: int64(*v.Score), Valid: true}
			}
			if err := ins.add(ctx, v.Provider, target.String(), start, run, string(v.Status), score, sqlitefile.UnixNano(checked), hash, string(data)); err != nil {
				return 0, err
			}
		}
	}
	return n, ins.flush(ctx)
}

// historyLatestVerdicts returns the hash of the latest verdict of each provider for each
// target stored by a run before run (which started at start), by provider, a zero byte and
// target.
func historyLatestVerdicts(ctx context.Context, tx *sql.Tx, run string, start int64) (map[string]int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT provider, target, hash FROM verdicts
		WHERE started < ?1 OR (started = ?1 AND run < ?2)
		ORDER BY provider, target, started, run`, start, run)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	latest := make(map[string]int64)
	var provider, target string
	var hash int64
	for i := 0; rows.Next(); i++ {
		if err := historyCancelled(ctx, i); err != nil {
			return nil, err
		}
		if err := rows.Scan(&provider, &target, &hash); err != nil {
			return nil, err
		}
		latest[provider+"\x00"+target] = hash
	}
	return latest, rows.Err()
}

// historyGone returns the gone rules with the given keys, in that order.
func historyGone(ctx context.Context, tx *sql.Tx, keys []string, known map[string]historyRule) ([]GoneRule, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	stmt, err := tx.PrepareContext(ctx, "SELECT rule FROM rule_data WHERE key = ?")
	if err != nil {
		return nil, err
	}
	gone := make([]GoneRule, 0, len(keys))
	for _, k := range keys {
		var data []byte
		if err := stmt.QueryRowContext(ctx, k).Scan(&data); err != nil {
			return nil, err
		}
		g := historyGoneRule(k, data)
		g.FirstSeen = time.Unix(0, known[k].firstSeen).UTC()
		g.LastSeen = time.Unix(0, known[k].lastSeen).UTC()
		gone = append(gone, g)
	}
	return gone, nil
}

// historyGoneRule describes the rule stored as data under key k. If data does not decode,
// what the key says is used.
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
// run saw, and the verdicts a later one replaced by a run no later than the oldest kept:
// the latest verdict of each provider for each target is always kept. A rule that comes
// back after its last sighting was forgotten is new again, first seen on its return.
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
	defer func() {
		if ctx.Err() == nil {
			tx.Rollback()
		}
	}()
	var cutStart int64
	var cutID string
	err = tx.QueryRowContext(ctx, "SELECT started, id FROM runs ORDER BY started DESC, id DESC LIMIT 1 OFFSET ?", keep-1).Scan(&cutStart, &cutID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	wctx, err := historyWriting(ctx)
	if err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(wctx, "DELETE FROM runs WHERE started < ?1 OR (started = ?1 AND id < ?2)", cutStart, cutID)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return 0, err
	}
	var forgotten []string
	rows, err := tx.QueryContext(ctx, "SELECT key FROM rules WHERE last_seen < ?1 OR (last_seen = ?1 AND last_run < ?2)", cutStart, cutID)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			rows.Close()
			return 0, err
		}
		forgotten = append(forgotten, k)
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	if err := historyDelete(ctx, tx, forgotten); err != nil {
		return 0, err
	}
	for _, stmt := range []string{
		`DELETE FROM verdicts WHERE (started < ?1 OR (started = ?1 AND run < ?2)) AND EXISTS (
			SELECT 1 FROM verdicts AS w WHERE w.provider = verdicts.provider AND w.target = verdicts.target
			AND (w.started > verdicts.started OR (w.started = verdicts.started AND w.run > verdicts.run))
			AND (w.started < ?1 OR (w.started = ?1 AND w.run <= ?2)))`,
	} {
		if wctx, err = historyWriting(ctx); err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(wctx, stmt, cutStart, cutID); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return int(n), nil
}
