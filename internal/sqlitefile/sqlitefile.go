// Package sqlitefile opens the SQLite files that several sgvet processes may share at
// once (the verdict cache and the history), with the pure-Go driver.
package sqlitefile

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
)

// Options describe a file.
type Options struct {
	// Kind is what the file is to sgvet, as errors and warnings name it: "history" or
	// "cache".
	Kind string
	// Log receives the warning that other users may read or write the file; nil discards
	// it.
	Log *slog.Logger
	// BusyTimeout is how long a connection waits for a lock another connection or process
	// holds.
	BusyTimeout time.Duration
	// Pragmas are further pragmas every connection runs, e.g. "temp_store(MEMORY)".
	Pragmas []string
	// Version is the schema version, kept in the file's user_version; Schema holds the
	// statements that create it.
	Version int
	Schema  []string
	// Migrations[v] holds the statements that bring a file of schema version v to version
	// v+1, for v from 1 to Version-1. An older file is migrated in place, in one
	// transaction, when it is opened; one whose migration is missing is refused.
	Migrations [][]string
	// Tables are the tables every version of the schema has: a file of sgvet's that lacks
	// one is another kind of sgvet file (a cache given for a history), and is refused.
	Tables []string
}

// Open opens the file at path, creating it and its parent directories if they do not exist,
// readable and writable by the owner only. Every connection waits up to the busy timeout
// for a lock, and begins its transactions immediately, taking the write lock at BEGIN: a
// transaction that took a read lock first could not upgrade it, without waiting, once
// another process had written. The file is put in write-ahead log mode, so that readers
// never wait for a writer, and its schema is created, or checked to be one this program
// knows.
//
// A file that is not empty and is not sgvet's is refused before anything in it changes: one
// that is not a SQLite database, and one whose schema version is 0 but that holds tables.
// An existing file that users other than its owner may read or write is used, with a
// warning to opts.Log.
//
// A wait for a lock, in Open and in every call on the database it returns, ends when the
// call's context is done, with the context's error: the driver ends a statement's wait (from
// modernc.org/sqlite v1.61.0), and the pragmas of a new connection run under the context of
// the call that needs it.
func Open(ctx context.Context, path string, opts Options) (*sql.DB, error) {
	if path == "" {
		return nil, errors.New("empty path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	// SQLite would create the file with the umask's permissions; create it first so that
	// only the owner may read it. SQLite gives its journal files the same permissions.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err == nil {
		err = checkHeader(f, opts.Kind)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	dsn, err := dataSource(path, opts)
	if err != nil {
		return nil, err
	}
	base, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(connector{
		Connector: base,
		pragmas:   append([]string{"synchronous(NORMAL)"}, opts.Pragmas...),
	})
	if err := setUp(ctx, db, opts); err != nil {
		db.Close()
		return nil, err
	}
	warnShared(opts, path, info.Mode())
	return db, nil
}

// header begins every SQLite database file.
const header = "SQLite format 3\x00"

// checkHeader refuses the file f unless it is empty or begins as a SQLite database does.
// SQLite itself would take a file of one byte for an empty database, and overwrite it.
//
// The header never changes once written, and a file being created by another process is
// empty until the first page, which holds the header, is written whole.
func checkHeader(f *os.File, kind string) error {
	buf := make([]byte, len(header))
	n, err := io.ReadFull(f, buf)
	switch {
	case n == 0 && errors.Is(err, io.EOF):
		return nil
	case err != nil && !errors.Is(err, io.ErrUnexpectedEOF):
		return err
	case n < len(header) || string(buf) != header:
		return notSgvet(kind, "it is not a SQLite database")
	}
	return nil
}

// notSgvet returns the error that refuses a file of kind that is not sgvet's, saying why.
func notSgvet(kind, why string) error {
	return fmt.Errorf("not an sgvet %sfile: %s; give another file", kindPrefix(kind), why)
}

// kindPrefix returns kind followed by a space, or nothing if kind is empty.
func kindPrefix(kind string) string {
	if kind == "" {
		return ""
	}
	return kind + " "
}

// warnShared warns, on systems where file modes control access, when mode lets users
// other than the owner read or write the file at path.
func warnShared(opts Options, path string, mode os.FileMode) {
	if opts.Log == nil || runtime.GOOS == "windows" || mode.Perm()&0o077 == 0 {
		return
	}
	what := "file"
	if opts.Kind != "" {
		what = opts.Kind + " file"
	}
	opts.Log.Warn("the "+what+" may be read or written by other users",
		"file", path, "mode", fmt.Sprintf("%#o", mode.Perm()), "hint", "chmod 600 "+shellQuote(path))
}

// shellQuote returns s as a POSIX shell reads it as one word.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:,@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// dataSource returns the data source name of the file at path. The driver sets the busy
// timeout on every connection it opens, before anything else.
func dataSource(path string, opts Options) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a volume name, as in C:/dir
	}
	q := fmt.Sprintf("_pragma=busy_timeout(%d)&_txlock=immediate", opts.BusyTimeout.Milliseconds())
	u := url.URL{Scheme: "file", Path: p, RawQuery: q}
	return u.String(), nil
}

// connector opens connections and runs pragmas on each, so that they hold for every
// connection in the pool. Most pragmas read the schema, which waits for a lock while a
// writer in rollback journal mode holds it; the driver would run the pragmas of the data
// source name with nothing to end that wait but the busy timeout. connector runs them
// under the context of the call that needs the connection.
type connector struct {
	driver.Connector
	pragmas []string // as in Options.Pragmas
}

// Connect opens a connection and runs the pragmas on it.
func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	exec, ok := conn.(driver.ExecerContext)
	if !ok {
		conn.Close()
		return nil, errors.New("the driver's connection cannot run statements with a context")
	}
	for _, p := range c.pragmas {
		if _, err := exec.ExecContext(ctx, "PRAGMA "+p, nil); err != nil {
			conn.Close()
			return nil, fmt.Errorf("pragma %s: %w", p, err)
		}
	}
	return conn, nil
}

// setUp checks that the file is sgvet's, puts it in write-ahead log mode and creates or
// checks the schema. The journal mode belongs to the file, not to a connection, so it is set
// here once. Converting a new file takes an exclusive lock without waiting for it, so two
// processes opening a new file at once can find it busy: setUp tries again until the busy
// timeout has passed.
func setUp(ctx context.Context, db *sql.DB, opts Options) error {
	deadline := time.Now().Add(opts.BusyTimeout)
	delay := time.Millisecond
	for {
		// The file is checked before anything in it changes. Where the file system cannot
		// share the log's index between processes, the file stays in its rollback journal
		// mode, which is slower but as safe.
		_, err := checkVersion(ctx, db, opts)
		if err == nil {
			var mode string
			err = db.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode)
		}
		if err == nil {
			err = migrate(ctx, db, opts)
		}
		if err == nil || !IsBusy(err) || time.Now().After(deadline) {
			return err
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// querier is a database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// tablesNamed is how many of a foreign file's tables its refusal names.
const tablesNamed = 5

// checkVersion returns the file's schema version, kept in its user_version. It refuses a
// version newer than opts.Version, and a file of version 0 that holds tables or views: a
// database of another program. One statement reads both, so that it sees the file before
// or after another process created the schema, never in between.
func checkVersion(ctx context.Context, q querier, opts Options) (int, error) {
	rows, err := q.QueryContext(ctx, `SELECT v.user_version, s.name
		FROM pragma_user_version AS v LEFT JOIN sqlite_schema AS s ON s.type IN ('table', 'view')
		ORDER BY s.name`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	version := 0
	var tables []string
	for rows.Next() {
		var name sql.NullString
		if err := rows.Scan(&version, &name); err != nil {
			return 0, err
		}
		if name.Valid {
			tables = append(tables, name.String)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	var missing []string
	for _, t := range opts.Tables {
		if !slices.Contains(tables, t) {
			missing = append(missing, t)
		}
	}
	switch {
	case version > 0 && len(missing) > 0 && (version <= opts.Version || len(missing) == len(opts.Tables)):
		holds := "no table"
		if len(tables) > 0 {
			holds = listNames(tables)
		}
		return 0, notSgvet(opts.Kind, fmt.Sprintf("it has no %s table but holds %s", listNames(missing), holds))
	case version > opts.Version:
		return 0, fmt.Errorf("schema version %d is newer than version %d, the newest this program knows", version, opts.Version)
	case version == 0 && len(tables) > 0:
		return 0, notSgvet(opts.Kind, "it holds other tables ("+listNames(tables)+")")
	}
	return version, nil
}

// listNames returns up to tablesNamed of names, separated by commas, each quoted if it is
// not plain text.
func listNames(names []string) string {
	var b strings.Builder
	for i, name := range names {
		if i == tablesNamed {
			fmt.Fprintf(&b, " and %d more", len(names)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		if strings.IndexFunc(name, func(r rune) bool { return !strconv.IsGraphic(r) || r == ',' || r == ' ' }) >= 0 {
			name = strconv.Quote(name)
		}
		b.WriteString(name)
	}
	return b.String()
}

// migrate creates the schema, or brings an older one to opts.Version, or checks that the
// file's schema is one this program knows.
func migrate(ctx context.Context, db *sql.DB, opts Options) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	version, err := checkVersion(ctx, tx, opts)
	if err != nil {
		return err
	}
	if version == opts.Version {
		return tx.Commit()
	}
	if version == 0 {
		for _, stmt := range opts.Schema {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return err
			}
		}
	}
	for v := max(version, 1); version > 0 && v < opts.Version; v++ {
		if v >= len(opts.Migrations) || len(opts.Migrations[v]) == 0 {
			return fmt.Errorf("schema version %d is older than version %d, and this program cannot migrate it; start a new %sfile", version, opts.Version, kindPrefix(opts.Kind))
		}
		for _, stmt := range opts.Migrations[v] {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("migrate schema version %d to %d: %w", v, v+1, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", opts.Version)); err != nil {
		return err
	}
	return tx.Commit()
}

// IsBusy reports whether err is SQLite's SQLITE_BUSY, possibly extended.
func IsBusy(err error) bool {
	const sqliteBusy = 5
	var coded interface{ Code() int }
	return errors.As(err, &coded) && coded.Code()&0xff == sqliteBusy
}

// UnixNano returns t in unix nanoseconds, clamped to the range of an int64 (the years 1678
// to 2262), as the files store times.
func UnixNano(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}
