package report

import (
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
const historySchemaVersion = 1

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
// A rule's last_run is the latest run, by start time, that saw it, and last_seen that
// run's start; prev_run and prev_seen are the run that saw it before that one, if known.
// The rule itself is kept as the JSON of a collector.Rule, as the latest run saw it.
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
		`CREATE TABLE IF NOT EXISTS rules (
			key        TEXT    NOT NULL PRIMARY KEY,
			first_seen INTEGER NOT NULL,
			last_seen  INTEGER NOT NULL,
			last_run   TEXT    NOT NULL,
			prev_seen  INTEGER,
			prev_run   TEXT,
			rule       TEXT    NOT NULL
		) WITHOUT ROWID`,
		`CREATE TABLE IF NOT EXISTS verdicts (
			run        TEXT    NOT NULL,
			provider   TEXT    NOT NULL,
			target     TEXT    NOT NULL,
			status     TEXT    NOT NULL,
			score      INTEGER,
			checked_at INTEGER NOT NULL,
			verdict    TEXT    NOT NULL,
			PRIMARY KEY (run, provider, target)
		) WITHOUT ROWID`,
	}
}

// History is the state database of --state FILE: the runs, every rule with its first and
// last sighting, and the verdicts of each run. Several processes may open it at once; each
// Record is one transaction. A History is safe for concurrent use.
//
// The previous run of a run is the run recorded with the latest start before its own, ties
// broken by id, whichever process recorded it. Runs are expected to be recorded roughly in
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

// Record stores a run (id, started) with the rules it saw and the verdicts it got, in one
// transaction, and returns what the report shows: the previous run's id, each rule's first
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
	view, err := h.record(ctx, runID, started, rules, results)
	if err != nil && ctx.Err() != nil {
		// Whatever failed (a statement interrupted, or one that found the transaction
		// rolled back already), the context ended the run.
		err = context.Cause(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("record run %s in history %s: %w", runID, h.path, err)
	}
	return view, nil
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
}

// historyBefore reports whether the run (at, id) comes before the run (at2, id2).
func historyBefore(at int64, id string, at2 int64, id2 string) bool {
	return at < at2 || (at == at2 && id < id2)
}

func (h *History) record(ctx context.Context, runID string, started time.Time, rules []collector.Rule, results []reputation.Result) (*HistoryView, error) {
	if runID == "" {
		return nil, errors.New("empty run id")
	}
	if started.IsZero() {
		return nil, errors.New("no start time")
	}
	start := sqlitefile.UnixNano(started)

	// The rules of this run by key, the last of equal keys winning.
	current := make(map[string]collector.Rule, len(rules))
	keys := make([]string, 0, len(rules))
	for i, r := range rules {
		if err := historyCancelled(ctx, i); err != nil {
			return nil, err
		}
		k := RuleKey(r)
		if _, ok := current[k]; !ok {
			keys = append(keys, k)
		}
		current[k] = r
	}

	tx, err := h.db.BeginTx(ctx, nil)
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
			time.Unix(0, recorded).UTC().Format(time.RFC3339Nano), started.UTC().Format(time.RFC3339Nano))
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
		if err := historyWriteRow(ctx, tx, k, row); err != nil {
			return nil, err
		}
	}
	if err := historyDelete(ctx, tx, undone); err != nil {
		return nil, err
	}

	ins := newHistoryBatch(tx, `INSERT INTO rules (key, first_seen, last_seen, last_run, prev_seen, prev_run, rule) VALUES `,
		` ON CONFLICT (key) DO UPDATE SET first_seen = excluded.first_seen, last_seen = excluded.last_seen,
		last_run = excluded.last_run, prev_seen = excluded.prev_seen, prev_run = excluded.prev_run,
		rule = excluded.rule`, 7)
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

		if !latest {
			if err := historyWriteRow(ctx, tx, k, row); err != nil {
				return nil, err
			}
			continue
		}
		data, err := json.Marshal(current[k])
		if err != nil {
			return nil, fmt.Errorf("rule %s: %w", k, err)
		}
		if err := ins.add(ctx, k, row.firstSeen, row.lastSeen, row.lastRun, row.prevSeen, row.prevRun, string(data)); err != nil {
			return nil, err
		}
	}
	if err := ins.flush(ctx); err != nil {
		return nil, err
	}

	nverdicts, err := historyWriteVerdicts(ctx, tx, runID, results)
	if err != nil {
		return nil, err
	}
	wctx, err := historyWriting(ctx)
	if err != nil {
		return nil, err
	}
	_, err = tx.ExecContext(wctx, `INSERT INTO runs (id, started, rules, verdicts) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET rules = excluded.rules, verdicts = excluded.verdicts`,
		runID, start, len(keys), nverdicts)
	if err != nil {
		return nil, err
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
	rows, err := tx.QueryContext(ctx, "SELECT key, first_seen, last_seen, last_run, prev_seen, prev_run FROM rules")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	known := make(map[string]historyRule, n)
	for rows.Next() {
		var k string
		var r historyRule
		if err := rows.Scan(&k, &r.firstSeen, &r.lastSeen, &r.lastRun, &r.prevSeen, &r.prevRun); err != nil {
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
	stmt, err := tx.PrepareContext(ctx, "DELETE FROM rules WHERE key = ?")
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
	return nil
}

// historyWriteVerdicts replaces the verdicts of run with those in results, and returns how
// many it stored. A verdict without a provider is not stored.
func historyWriteVerdicts(ctx context.Context, tx *sql.Tx, run string, results []reputation.Result) (int, error) {
	wctx, err := historyWriting(ctx)
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(wctx, "DELETE FROM verdicts WHERE run = ?", run); err != nil {
		return 0, err
	}
	ins := newHistoryBatch(tx, `INSERT INTO verdicts (run, provider, target, status, score, checked_at, verdict) VALUES `,
		` ON CONFLICT (run, provider, target) DO UPDATE SET status = excluded.status, score = excluded.score,
		checked_at = excluded.checked_at, verdict = excluded.verdict`, 7)
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
			data, err := json.Marshal(v)
			if err != nil {
				return 0, fmt.Errorf("verdict of %s for %s: %w", v.Provider, target, err)
			}
			var score sql.NullInt64
			if v.Score != nil {
				score = sql.NullInt64{Int64: int64(*v.Score), Valid: true}
			}
			if err := ins.add(ctx, run, v.Provider, target.String(), string(v.Status), score, sqlitefile.UnixNano(v.CheckedAt), string(data)); err != nil {
				return 0, err
			}
			n++
		}
	}
	return n, ins.flush(ctx)
}

// historyGone returns the gone rules with the given keys, in that order.
func historyGone(ctx context.Context, tx *sql.Tx, keys []string, known map[string]historyRule) ([]GoneRule, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	stmt, err := tx.PrepareContext(ctx, "SELECT rule FROM rules WHERE key = ?")
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
