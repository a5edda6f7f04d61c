package sqlitefile

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
