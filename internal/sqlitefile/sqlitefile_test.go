package sqlitefile

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sgvet/sgvet/internal/canceltest"
)

func TestOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a dir", "f?#%.db")
	opts := Options{BusyTimeout: time.Second, Pragmas: []string{"cache_size(-1024)"}, Version: 2,
		Schema: []string{"CREATE TABLE t (x INTEGER)"}}
	db, err := Open(t.Context(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	var mode string
	var busy, cache, version int
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
	if err := db.QueryRow("PRAGMA busy_timeout").Scan(&busy); err != nil || busy != 1000 {
		t.Errorf("busy_timeout = %d, %v; want 1000", busy, err)
	}
	if err := db.QueryRow("PRAGMA cache_size").Scan(&cache); err != nil || cache != -1024 {
		t.Errorf("cache_size = %d, %v; want -1024", cache, err)
	}
	if err := db.QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != 2 {
		t.Errorf("user_version = %d, %v; want 2", version, err)
	}
	db.Close()
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v, %v; want 0600", info.Mode(), err)
	}

	// The same version opens again; an older program refuses the newer file.
	if db, err := Open(t.Context(), path, opts); err != nil {
		t.Errorf("reopen: %v", err)
	} else {
		db.Close()
	}
	opts.Version = 1
	if _, err := Open(t.Context(), path, opts); err == nil || !strings.Contains(err.Error(), "schema version 2 is newer than version 1") {
		t.Errorf("Open with an older schema = %v, want the version refused", err)
	}
}

// testOptions returns the options of a history file of schema version 1.
func testOptions() Options {
	return Options{Kind: "history", BusyTimeout: time.Minute, Version: 1, Schema: []string{"CREATE TABLE runs (id TEXT)"}, Tables: []string{"runs"}}
}

// writeDatabase writes a SQLite database at path, running stmts, and returns its bytes.
func writeDatabase(t *testing.T, path string, stmts ...string) []byte {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range stmts {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// dirNames returns the names of the files in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestOpenRefusesOthersFiles(t *testing.T) {
	random := make([]byte, 8192)
	for i := range random {
		random[i] = byte(rand.N(256))
	}
	tests := []struct {
		name  string
		write func(t *testing.T, path string) []byte // writes the file and returns its bytes
		want  string
	}{
		{
			name:  "text",
			write: func(t *testing.T, path string) []byte { return []byte(strings.Repeat("not a database\n", 100)) },
			want:  "not an sgvet history file: it is not a SQLite database; give another file",
		},
		{
			name:  "one byte",
			write: func(t *testing.T, path string) []byte { return []byte("x") },
			want:  "not an sgvet history file: it is not a SQLite database; give another file",
		},
		{
			name:  "random bytes",
			write: func(t *testing.T, path string) []byte { return random },
			want:  "not an sgvet history file: it is not a SQLite database; give another file",
		},
		{
			name:  "half a header",
			write: func(t *testing.T, path string) []byte { return []byte("SQLite for") },
			want:  "not an sgvet history file: it is not a SQLite database; give another file",
		},
		{
			name: "another program's tables",
			write: func(t *testing.T, path string) []byte {
				return writeDatabase(t, path, "CREATE TABLE users (id INTEGER)", "CREATE TABLE orders (id INTEGER)",
					"INSERT INTO users VALUES (1)")
			},
			want: "not an sgvet history file: it holds other tables (orders, users); give another file",
		},
		{
			name: "another program's tables in write-ahead log mode",
			write: func(t *testing.T, path string) []byte {
				return writeDatabase(t, path, "PRAGMA journal_mode = WAL", "CREATE TABLE users (id INTEGER)")
			},
			want: "not an sgvet history file: it holds other tables (users); give another file",
		},
		{
			name: "another program's many tables",
			write: func(t *testing.T, path string) []byte {
				return writeDatabase(t, path, "CREATE TABLE a (x)", "CREATE TABLE b (x)", "CREATE TABLE c (x)", "CREATE TABLE d (x)",
					`CREATE TABLE "odd, name" (x)`, "CREATE VIEW f AS SELECT 1", "CREATE TABLE g (x)", "CREATE INDEX a_x ON a (x)")
			},
			want: `not an sgvet history file: it holds other tables (a, b, c, d, f and 2 more); give another file`,
		},
		{
			name: "a table with an odd name",
			write: func(t *testing.T, path string) []byte {
				return writeDatabase(t, path, `CREATE TABLE "odd, name" (x)`)
			},
			want: `not an sgvet history file: it holds other tables ("odd, name"); give another file`,
		},
		{
			name: "another program's tables with sgvet's names",
			write: func(t *testing.T, path string) []byte {
				return writeDatabase(t, path, "CREATE TABLE runs (id TEXT)")
			},
			want: "not an sgvet history file: it holds other tables (runs); give another file",
		},
		{
			name: "another kind of sgvet file",
			write: func(t *testing.T, path string) []byte {
				return writeDatabase(t, path, "CREATE TABLE verdicts (x)", "CREATE TABLE usage (x)", "PRAGMA user_version = 1")
			},
			want: "not an sgvet history file: it has no runs table but holds usage, verdicts; give another file",
		},
		{
			name: "another program's newer schema",
			write: func(t *testing.T, path string) []byte {
				return writeDatabase(t, path, "CREATE TABLE accounts (x)", "PRAGMA user_version = 7")
			},
			want: "not an sgvet history file: it has no runs table but holds accounts; give another file",
		},
		{
			name: "newer schema",
			write: func(t *testing.T, path string) []byte {
				return writeDatabase(t, path, "CREATE TABLE runs (id TEXT)", "PRAGMA user_version = 2")
			},
			want: "schema version 2 is newer than version 1, the newest this program knows",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state.db")
			data := tt.write(t, path)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := Open(t.Context(), path, testOptions())
			if err == nil {
				db.Close()
			}
			if err == nil || err.Error() != tt.want {
				t.Errorf("Open(%q) = %v, want %v", tt.name, err, tt.want)
			}
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
				t.Errorf("Open(%q) changed the file: %d bytes, %v; want the %d bytes written", tt.name, len(got), err, len(data))
			}
			if got := dirNames(t, dir); !slices.Equal(got, []string{"state.db"}) {
				t.Errorf("Open(%q) left files %q, want only state.db", tt.name, got)
			}
		})
	}
}

func TestOpenAdoptsEmptyFiles(t *testing.T) {
	tests := []struct {
		name  string
		write func(t *testing.T, path string)
	}{
		{"no file", func(t *testing.T, path string) {}},
		{"empty file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"database without tables", func(t *testing.T, path string) {
			writeDatabase(t, path, "CREATE TABLE gone (x)", "DROP TABLE gone")
		}},
		{"older schema", func(t *testing.T, path string) {
			writeDatabase(t, path, "CREATE TABLE runs (id TEXT)", "PRAGMA user_version = 1")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			tt.write(t, path)
			opts := testOptions()
			opts.Version = 2
			opts.Schema = []string{"CREATE TABLE IF NOT EXISTS runs (id TEXT)"}
			opts.Migrations = [][]string{1: {"CREATE INDEX runs_id ON runs (id)"}}
			db, err := Open(t.Context(), path, opts)
			if err != nil {
				t.Fatalf("Open(%q) = %v, want no error", tt.name, err)
			}
			defer db.Close()
			var version int
			var mode string
			if err := db.QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != 2 {
				t.Errorf("Open(%q): user_version = %d, %v; want 2", tt.name, version, err)
			}
			if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
				t.Errorf("Open(%q): journal_mode = %q, %v; want wal", tt.name, mode, err)
			}
		})
	}
}

// recorder is a slog.Handler that keeps the records it is given.
type recorder struct{ records []slog.Record }

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.records = append(r.records, rec)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// attrs returns the level, message and attributes of rec as text.
func attrs(rec slog.Record) string {
	s := fmt.Sprintf("%s %q", rec.Level, rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		s += fmt.Sprintf(" %s=%q", a.Key, a.Value.String())
		return true
	})
	return s
}

func TestOpenWarnsOfSharedFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes do not control access")
	}
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		mode os.FileMode // 0: no file
		hint string      // empty: no warning
	}{
		{"new file", filepath.Join(dir, "new.db"), 0, ""},
		{"owner only", filepath.Join(dir, "owner.db"), 0o600, ""},
		{"group reads", filepath.Join(dir, "group.db"), 0o640, "chmod 600 " + filepath.Join(dir, "group.db")},
		{"others write", filepath.Join(dir, "others.db"), 0o602, "chmod 600 " + filepath.Join(dir, "others.db")},
		{"everyone reads", filepath.Join(dir, "world.db"), 0o644, "chmod 600 " + filepath.Join(dir, "world.db")},
		{"name a shell splits", filepath.Join(dir, "it's mine.db"), 0o660,
			"chmod 600 '" + strings.ReplaceAll(filepath.Join(dir, "it's mine.db"), "'", `'\''`) + "'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.mode != 0 {
				writeDatabase(t, tt.path, "CREATE TABLE runs (id TEXT)", "PRAGMA user_version = 1")
				if err := os.Chmod(tt.path, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			var rec recorder
			opts := testOptions()
			opts.Log = slog.New(&rec)
			db, err := Open(t.Context(), tt.path, opts)
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			var got, want []string
			for _, r := range rec.records {
				got = append(got, attrs(r))
			}
			if tt.hint != "" {
				want = []string{fmt.Sprintf("WARN %q file=%q mode=%q hint=%q", "the history file may be read or written by other users",
					tt.path, fmt.Sprintf("%#o", tt.mode), tt.hint)}
			}
			if !slices.Equal(got, want) {
				t.Errorf("Open(%q) logged %q, want %q", tt.path, got, want)
			}
		})
	}
}

func TestOpenWithoutLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	writeDatabase(t, path, "CREATE TABLE runs (id TEXT)", "PRAGMA user_version = 1")
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	db, err := Open(t.Context(), path, testOptions())
	if err != nil {
		t.Fatalf("Open(%q) without a logger = %v, want no error", path, err)
	}
	db.Close()
}

// holdLock opens the file at path on a connection of its own, runs begin on it, and keeps
// the lock that takes until the test ends.
func holdLock(t *testing.T, path, begin string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(t.Context(), begin); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.ExecContext(context.Background(), "ROLLBACK")
		conn.Close()
		db.Close()
	})
}

func TestOpenCancelledWhileLocked(t *testing.T) {
	opts := testOptions()
	opts.BusyTimeout = 10 * time.Minute
	tests := []struct {
		name  string
		setUp func(t *testing.T, path string) // makes the file and holds its lock
	}{
		// Creating or checking the schema waits for the write lock.
		{"write lock on an sgvet file", func(t *testing.T, path string) {
			db, err := Open(t.Context(), path, opts)
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			holdLock(t, path, "BEGIN IMMEDIATE")
		}},
		// The switch to write-ahead logging finds the file busy at once, and is tried again.
		{"write lock on a new file", func(t *testing.T, path string) { holdLock(t, path, "BEGIN IMMEDIATE") }},
		// Reading the file waits for the lock of a writer in rollback journal mode.
		{"exclusive lock on a new file", func(t *testing.T, path string) { holdLock(t, path, "BEGIN EXCLUSIVE") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			tt.setUp(t, path)
			err := canceltest.Run(t, "Open", func(ctx context.Context) error {
				db, err := Open(ctx, path, opts)
				if err == nil {
					db.Close()
				}
				return err
			})
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Open(%q) = %v, want %v", tt.name, err, context.Canceled)
			}
		})
	}
}

func TestUnixNano(t *testing.T) {
	tests := []struct {
		t    time.Time
		want int64
	}{
		{time.Unix(0, 42), 42},
		{time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), math.MinInt64},
		{time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), math.MaxInt64},
	}
	for _, tc := range tests {
		if got := UnixNano(tc.t); got != tc.want {
			t.Errorf("UnixNano(%v) = %d, want %d", tc.t, got, tc.want)
		}
	}
}

func TestOpenMigrates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.db")
	v1 := Options{Kind: "history", BusyTimeout: time.Second, Version: 1, Tables: []string{"t"},
		Schema: []string{"CREATE TABLE t (x INTEGER)"}}
	db, err := Open(t.Context(), path, v1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO t VALUES (1), (2)"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	// A version 3 that cannot migrate from 2 refuses the file, leaving it as it was.
	v3 := v1
	v3.Version = 3
	v3.Schema = []string{"CREATE TABLE t (x INTEGER, y INTEGER, z INTEGER)"}
	v3.Migrations = [][]string{1: {"ALTER TABLE t ADD COLUMN y INTEGER NOT NULL DEFAULT 7"}}
	if _, err := Open(t.Context(), path, v3); err == nil || !strings.Contains(err.Error(), "start a new history file") {
		t.Errorf("Open(version 1 file) without a migration from 2 = %v, want it refused", err)
	}
	// The migrations run in order, from the file's version, in place.
	v3.Migrations = append(v3.Migrations, []string{"ALTER TABLE t ADD COLUMN z INTEGER", "UPDATE t SET z = x * y"})
	db, err = Open(t.Context(), path, v3)
	if err != nil {
		t.Fatalf("Open(version 1 file) = %v, want it migrated", err)
	}
	defer db.Close()
	var version, sum int
	if err := db.QueryRow("PRAGMA user_version").Scan(&version); err != nil || version != 3 {
		t.Errorf("user_version = %d, %v; want 3", version, err)
	}
	if err := db.QueryRow("SELECT sum(z) FROM t").Scan(&sum); err != nil || sum != 21 {
		t.Errorf("sum(z) = %d, %v; want 21", sum, err)
	}
}
