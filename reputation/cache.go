package reputation

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sgvet/sgvet/internal/sqlitefile"
)

// cacheSchemaVersion is the schema version of the cache file, kept in its user_version.
const cacheSchemaVersion = 1

// cacheChunk is how many targets one Get query asks for.
const cacheChunk = 500

// cacheBusyTimeout is how long a connection waits for another connection or process that
// holds the database lock.
const cacheBusyTimeout = 10 * time.Second

// cacheSchema returns the statements that create the tables of schema version
// cacheSchemaVersion. A verdict is stored as JSON, with the time it was checked in unix
// nanoseconds; a day of usage is a UTC date, YYYY-MM-DD.
func cacheSchema() []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS verdicts (
			provider   TEXT    NOT NULL,
			target     TEXT    NOT NULL,
			checked_at INTEGER NOT NULL,
			verdict    TEXT    NOT NULL,
			PRIMARY KEY (provider, target)
		) WITHOUT ROWID`,
		`CREATE INDEX IF NOT EXISTS verdicts_checked_at ON verdicts (checked_at)`,
		`CREATE TABLE IF NOT EXISTS usage (
			provider TEXT    NOT NULL,
			day      TEXT    NOT NULL,
			used     INTEGER NOT NULL,
			PRIMARY KEY (provider, day)
		) WITHOUT ROWID`,
	}
}

// Cache stores verdicts in a SQLite file, keyed by provider and target, so that a second
// run within a provider's time-to-live asks the service nothing. It also counts each
// provider's daily usage, so that several runs on one day keep to the provider's quota.
// Unknown verdicts are never stored. A Cache is safe for concurrent use, and several
// processes may share the file.
type Cache struct {
	db   *sql.DB
	path string
}

// OpenCache opens the cache file at path. If the file does not exist, OpenCache creates it,
// readable and writable by its owner only, and its parent directories. It refuses, without
// changing it, a file that is not a SQLite database or that holds another program's tables.
// If users other than its owner may read or write the file, OpenCache warns to log, which
// may be nil, and goes on.
//
// Each connection waits up to 10 seconds for a lock another connection or process holds;
// the wait of a call, OpenCache's too, ends when the call's context is done.
func OpenCache(ctx context.Context, path string, log *slog.Logger) (*Cache, error) {
	return openCache(ctx, path, log, cacheBusyTimeout)
}

// openCache is OpenCache with the wait for a lock given: tests that make many processes
// compete for the file wait longer than a user would.
func openCache(ctx context.Context, path string, log *slog.Logger, busyTimeout time.Duration) (*Cache, error) {
	db, err := sqlitefile.Open(ctx, path, sqlitefile.Options{
		Kind:        "cache",
		Log:         log,
		BusyTimeout: busyTimeout,
		Version:     cacheSchemaVersion,
		Schema:      cacheSchema(),
		Tables:      []string{"verdicts", "usage"},
	})
	if err != nil {
		return nil, fmt.Errorf("open cache %s: %w", path, err)
	}
	return &Cache{db: db, path: path}, nil
}

// Close closes the cache file.
func (c *Cache) Close() error {
	if err := c.db.Close(); err != nil {
		return fmt.Errorf("close cache %s: %w", c.path, err)
	}
	return nil
}

// Get returns the cached verdicts of provider for targets that were checked no longer than
// ttl before now, keyed by target. A ttl of zero or less disables the cache: Get returns
// nothing. The verdicts returned have Cached set. A stored verdict that cannot be decoded
// is not returned.
func (c *Cache) Get(ctx context.Context, provider string, targets []Target, ttl time.Duration, now time.Time) (map[Target]Verdict, error) {
	found := make(map[Target]Verdict)
	if ttl <= 0 || len(targets) == 0 {
		return found, nil
	}
	oldest := sqlitefile.UnixNano(now.Add(-ttl))

	// Ask for each distinct valid target once.
	wanted := make(map[string]Target, len(targets))
	keys := make([]string, 0, len(targets))
	for _, t := range targets {
		if !t.IsValid() {
			continue
		}
		k := t.String()
		if _, ok := wanted[k]; !ok {
			wanted[k] = t
			keys = append(keys, k)
		}
	}

	var full *sql.Stmt // the query for a whole chunk, prepared once
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	args := make([]any, 0, 2+cacheChunk)
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), cacheChunk)]
		keys = keys[len(chunk):]
		args = append(args[:0], provider, oldest)
		for _, k := range chunk {
			args = append(args, k)
		}
		var rows *sql.Rows
		var err error
		if len(chunk) == cacheChunk {
			if full == nil {
				if full, err = c.db.PrepareContext(ctx, cacheGetQuery(cacheChunk)); err != nil {
					return nil, fmt.Errorf("read cache %s: %w", c.path, err)
				}
			}
			rows, err = full.QueryContext(ctx, args...)
		} else {
			rows, err = c.db.QueryContext(ctx, cacheGetQuery(len(chunk)), args...)
		}
		if err != nil {
			return nil, fmt.Errorf("read cache %s: %w", c.path, err)
		}
		if err := scanVerdicts(rows, provider, wanted, found); err != nil {
			return nil, fmt.Errorf("read cache %s: %w", c.path, err)
		}
	}
	return found, nil
}

// cacheGetQuery returns the query for the verdicts of one provider, checked at or after a
// time, for n targets.
func cacheGetQuery(n int) string {
	return "SELECT target, verdict FROM verdicts WHERE provider = ? AND checked_at >= ? AND target IN (?" +
		strings.Repeat(", ?", n-1) + ")"
}

// scanVerdicts adds the verdicts in rows to found and closes rows. A row that does not
// decode to a known verdict of provider for the target it is stored under is skipped.
func scanVerdicts(rows *sql.Rows, provider string, wanted map[string]Target, found map[Target]Verdict) error {
	defer rows.Close()
	var key string
	var data []byte
	for rows.Next() {
		if err := rows.Scan(&key, &data); err != nil {
			return err
		}
		t, ok := wanted[key]
		if !ok {
			continue
		}
		var v Verdict
		if err := json.Unmarshal(data, &v); err != nil {
			continue
		}
		if !v.Known() || v.Provider != provider || v.Target.String() != key {
			continue
		}
		v.Target = t
		v.Cached = true
		found[t] = v
	}
	return rows.Err()
}

// Put stores the known verdicts among verdicts, in one transaction, each replacing the
// stored verdict of its provider for its target unless that one was checked later.
// Unknown verdicts, and verdicts without a valid target or a time checked, are not stored.
func (c *Cache) Put(ctx context.Context, verdicts []Verdict) error {
	if err := c.put(ctx, verdicts); err != nil {
		return fmt.Errorf("write cache %s: %w", c.path, err)
	}
	return nil
}

func (c *Cache) put(ctx context.Context, verdicts []Verdict) error {
	store := make([]Verdict, 0, len(verdicts))
	for _, v := range verdicts {
		if v.Known() && v.Target.IsValid() && !v.CheckedAt.IsZero() {
			store = append(store, v)
		}
	}
	if len(store) == 0 {
		return nil
	}
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO verdicts (provider, target, checked_at, verdict)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (provider, target) DO UPDATE
		SET checked_at = excluded.checked_at, verdict = excluded.verdict
		WHERE excluded.checked_at >= verdicts.checked_at`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, v := range store {
		v.Cached = false
		data, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("verdict of %s for %s: %w", v.Provider, v.Target, err)
		}
		if _, err := stmt.ExecContext(ctx, v.Provider, v.Target.String(), sqlitefile.UnixNano(v.CheckedAt), string(data)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Reserve takes up to n units of provider's quota for the UTC day of now, never letting
// the day's total exceed limit, and returns how many it took, from 0 to n. A limit of zero
// or less means no limit: Reserve takes n units and records them. Reserve is atomic, also
// between processes sharing the file.
func (c *Cache) Reserve(ctx context.Context, provider string, n, limit int, now time.Time) (int, error) {
	if n <= 0 {
		return 0, nil
	}
	granted, err := c.reserve(ctx, provider, n, limit, cacheDay(now))
	if err != nil {
		return 0, fmt.Errorf("reserve %s quota in cache %s: %w", provider, c.path, err)
	}
	return granted, nil
}

func (c *Cache) reserve(ctx context.Context, provider string, n, limit int, day string) (int, error) {
	// The transaction begins immediately, holding the write lock from the read of the
	// usage to its update.
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	var used int
	err = tx.QueryRowContext(ctx, "SELECT used FROM usage WHERE provider = ? AND day = ?", provider, day).Scan(&used)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	granted := n
	if limit > 0 {
		granted = max(0, min(n, limit-used))
	}
	if granted == 0 {
		return 0, nil
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO usage (provider, day, used) VALUES (?, ?, ?)
		ON CONFLICT (provider, day) DO UPDATE SET used = used + excluded.used`,
		provider, day, granted)
	if err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return granted, nil
}

// Release gives back n units of provider's quota for day (a UTC date, YYYY-MM-DD) that
// were reserved but never used; the count never goes below zero.
func (c *Cache) Release(ctx context.Context, provider string, n int, day string) error {
	if n <= 0 {
		return nil
	}
	_, err := c.db.ExecContext(ctx, "UPDATE usage SET used = MAX(used - ?, 0) WHERE provider = ? AND day = ?", n, provider, day)
	if err != nil {
		return fmt.Errorf("release %s quota in cache %s: %w", provider, c.path, err)
	}
	return nil
}

// Used returns how many units of its quota provider has used on the UTC day of now.
func (c *Cache) Used(ctx context.Context, provider string, now time.Time) (int, error) {
	var used int
	err := c.db.QueryRowContext(ctx, "SELECT used FROM usage WHERE provider = ? AND day = ?", provider, cacheDay(now)).Scan(&used)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read %s quota in cache %s: %w", provider, c.path, err)
	}
	return used, nil
}

// Purge deletes the verdicts checked before the given time and returns how many it
// deleted. It also forgets the usage of UTC days before the day of before.
func (c *Cache) Purge(ctx context.Context, before time.Time) (int64, error) {
	n, err := c.purge(ctx, before)
	if err != nil {
		return 0, fmt.Errorf("purge cache %s: %w", c.path, err)
	}
	return n, nil
}

func (c *Cache) purge(ctx context.Context, before time.Time) (int64, error) {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, "DELETE FROM verdicts WHERE checked_at < ?", sqlitefile.UnixNano(before))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM usage WHERE day < ?", cacheDay(before)); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return n, nil
}

// cacheExpireBatch is how many verdicts one transaction of Expire deletes, so that a
// large purge holds the write lock a moment at a time.
const cacheExpireBatch = 5000

// Expire deletes the verdicts of provider that a Get with ttl at now would no longer
// return (checked before now-ttl), and the provider's usage of UTC days before the day
// before now's, and returns how many verdicts it deleted. It deletes in transactions of a
// few thousand verdicts, so that other processes sharing the file wait for the lock a
// moment at a time; once ctx is done it stops, with the context's error, having deleted
// what the transactions before committed.
func (c *Cache) Expire(ctx context.Context, provider string, ttl time.Duration, now time.Time) (int64, error) {
	n, err := c.expire(ctx, provider, sqlitefile.UnixNano(now.Add(-ttl)), cacheDay(now.AddDate(0, 0, -1)), cacheExpireBatch)
	if err != nil {
		return n, fmt.Errorf("expire %s verdicts in cache %s: %w", provider, c.path, err)
	}
	return n, nil
}

func (c *Cache) expire(ctx context.Context, provider string, before int64, day string, batch int) (int64, error) {
	if _, err := c.db.ExecContext(ctx, "DELETE FROM usage WHERE provider = ? AND day < ?", provider, day); err != nil {
		return 0, err
	}
	var total int64
	for {
		res, err := c.db.ExecContext(ctx, `DELETE FROM verdicts WHERE provider = ?1 AND target IN (
			SELECT target FROM verdicts WHERE provider = ?1 AND checked_at < ?2 LIMIT ?3)`, provider, before, batch)
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += n
		if n < int64(batch) {
			return total, nil
		}
	}
}

// cacheDay returns the UTC date of t, the key of a day's usage.
func cacheDay(t time.Time) string { return t.UTC().Format(time.DateOnly) }
