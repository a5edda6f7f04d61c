package reputation

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sgvet/sgvet/internal/canceltest"
	"github.com/sgvet/sgvet/internal/processtest"
	"github.com/sgvet/sgvet/internal/sqlitefile"
)

// cacheNow is the time the cache tests run at.
var cacheNow = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

// testBusyTimeout is how long a test's connection waits for a lock: the tests make many
// connections and processes compete for one file, and a busy machine may starve one of them
// for longer than a user's run would wait.
const testBusyTimeout = 5 * time.Minute

func openTestCache(t testing.TB, path string) *Cache {
	t.Helper()
	c, err := openCache(t.Context(), path, nil, testBusyTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

func mustTarget(t testing.TB, s string) Target {
	t.Helper()
	target, err := ParseTarget(s)
	if err != nil {
		t.Fatal(err)
	}
	return target
}

func TestCacheRoundTrip(t *testing.T) {
	zone := time.FixedZone("UTC+10", 10*60*60)
	tests := []struct {
		name string
		v    Verdict
	}{
		{"ipv4 every field", Verdict{
			Provider:   "abuseipdb",
			Target:     mustTarget(t, "203.0.113.7"),
			Status:     Malicious,
			Score:      score(97),
			Categories: []string{"botnet", "scanner"},
			Country:    "NL",
			Evidence:   "reported 212 times by 40 users",
			CheckedAt:  cacheNow.Add(-time.Hour),
		}},
		{"ipv6 zero score", Verdict{
			Provider:  "abuseipdb",
			Target:    mustTarget(t, "2001:db8::1"),
			Status:    Clean,
			Score:     score(0),
			CheckedAt: cacheNow.In(zone),
		}},
		{"prefix no score", Verdict{
			Provider:   "spamhaus-drop",
			Target:     mustTarget(t, "198.51.100.0/24"),
			Status:     Suspicious,
			Categories: []string{"hijacked"},
			Evidence:   "listed in DROP as SBL123456",
			CheckedAt:  cacheNow.Add(-time.Nanosecond),
		}},
		{"ipv6 prefix", Verdict{
			Provider:  "spamhaus-drop",
			Target:    mustTarget(t, "2001:db8:1::/48"),
			Status:    Clean,
			CheckedAt: cacheNow,
		}},
		{"cached flag on input", Verdict{
			Provider:  "virustotal",
			Target:    mustTarget(t, "192.0.2.1"),
			Status:    Clean,
			CheckedAt: cacheNow,
			Cached:    true,
		}},
	}
	c := openTestCache(t, filepath.Join(t.TempDir(), "cache.db"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			if err := c.Put(ctx, []Verdict{tt.v}); err != nil {
				t.Fatal(err)
			}
			got, err := c.Get(ctx, tt.v.Provider, []Target{tt.v.Target}, 24*time.Hour, cacheNow)
			if err != nil {
				t.Fatal(err)
			}
			v, ok := got[tt.v.Target]
			if !ok || len(got) != 1 {
				t.Fatalf("Get = %v, want the verdict for %s only", got, tt.v.Target)
			}
			if !v.Cached {
				t.Error("Cached = false, want true")
			}
			if !v.CheckedAt.Equal(tt.v.CheckedAt) {
				t.Errorf("CheckedAt = %v, want %v", v.CheckedAt, tt.v.CheckedAt)
			}
			want := tt.v
			want.Cached = true
			want.CheckedAt = v.CheckedAt
			if !reflect.DeepEqual(v, want) {
				t.Errorf("Get = %+v, want %+v", v, want)
			}
			if tt.v.Score != nil && v.Score == tt.v.Score {
				t.Error("Score shares its pointer with the stored verdict")
			}
		})
	}
}

func TestCacheGetMany(t *testing.T) {
	ctx := t.Context()
	c := openTestCache(t, filepath.Join(t.TempDir(), "cache.db"))
	const n = 2*cacheChunk + 17
	targets := make([]Target, n)
	var verdicts []Verdict
	for i := range targets {
		targets[i] = AddressTarget(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
		if i%3 != 0 {
			verdicts = append(verdicts, Verdict{Provider: "p", Target: targets[i], Status: Clean, CheckedAt: cacheNow})
		}
	}
	// Another provider's verdict for the same target is not this provider's.
	verdicts = append(verdicts, Verdict{Provider: "q", Target: targets[0], Status: Malicious, CheckedAt: cacheNow})
	if err := c.Put(ctx, verdicts); err != nil {
		t.Fatal(err)
	}
	ask := append(append([]Target{{}}, targets...), targets[:10]...) // an invalid target and duplicates
	got, err := c.Get(ctx, "p", ask, time.Hour, cacheNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(verdicts)-1 {
		t.Errorf("Get returned %d verdicts, want %d", len(got), len(verdicts)-1)
	}
	for i, target := range targets {
		if _, ok := got[target]; ok != (i%3 != 0) {
			t.Errorf("Get returned a verdict for %s: %v, want %v", target, ok, i%3 != 0)
		}
	}
}

func TestCacheSkipsUnstorable(t *testing.T) {
	target := mustTarget(t, "192.0.2.1")
	tests := []struct {
		name string
		v    Verdict
	}{
		{"unknown", unknown("p", target, cacheNow, "timeout")},
		{"empty status", Verdict{Provider: "p", Target: target, CheckedAt: cacheNow}},
		{"invalid target", Verdict{Provider: "p", Status: Clean, CheckedAt: cacheNow}},
		{"zero time", Verdict{Provider: "p", Target: target, Status: Clean}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			c := openTestCache(t, filepath.Join(t.TempDir(), "cache.db"))
			if err := c.Put(ctx, []Verdict{tt.v}); err != nil {
				t.Fatal(err)
			}
			var rows int
			if err := c.db.QueryRowContext(ctx, "SELECT count(*) FROM verdicts").Scan(&rows); err != nil {
				t.Fatal(err)
			}
			if rows != 0 {
				t.Errorf("%d rows stored, want none", rows)
			}
		})
	}

	// An Unknown verdict does not replace a known one either.
	ctx := t.Context()
	c := openTestCache(t, filepath.Join(t.TempDir(), "cache.db"))
	clean := Verdict{Provider: "p", Target: target, Status: Clean, CheckedAt: cacheNow.Add(-time.Hour)}
	if err := c.Put(ctx, []Verdict{clean, unknown("p", target, cacheNow, "timeout")}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, "p", []Target{target}, 24*time.Hour, cacheNow)
	if err != nil {
		t.Fatal(err)
	}
	if got[target].Status != Clean {
		t.Errorf("Get = %v, want the clean verdict", got)
	}
}

func TestCacheTTL(t *testing.T) {
	target := mustTarget(t, "192.0.2.1")
	checked := cacheNow.Add(-2 * time.Hour)
	tests := []struct {
		name string
		ttl  time.Duration
		now  time.Time
		hit  bool
	}{
		{"fresh", 3 * time.Hour, cacheNow, true},
		{"exactly ttl old", 2 * time.Hour, cacheNow, true},
		{"expired", 2*time.Hour - time.Nanosecond, cacheNow, false},
		{"expired long ago", time.Hour, cacheNow.AddDate(1, 0, 0), false},
		{"ttl 0 disables", 0, cacheNow, false},
		{"negative ttl disables", -time.Hour, cacheNow, false},
		{"longest ttl", time.Duration(1<<63 - 1), cacheNow, true},
		{"checked after now", time.Hour, checked.Add(-time.Minute), true},
	}
	c := openTestCache(t, filepath.Join(t.TempDir(), "cache.db"))
	if err := c.Put(t.Context(), []Verdict{{Provider: "p", Target: target, Status: Clean, CheckedAt: checked}}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Get(t.Context(), "p", []Target{target}, tt.ttl, tt.now)
			if err != nil {
				t.Fatal(err)
			}
			if _, hit := got[target]; hit != tt.hit {
				t.Errorf("hit = %v, want %v", hit, tt.hit)
			}
		})
	}
}

func TestCacheKeepsNewer(t *testing.T) {
	target := mustTarget(t, "192.0.2.1")
	at := func(d time.Duration, s Status) Verdict {
		return Verdict{Provider: "p", Target: target, Status: s, CheckedAt: cacheNow.Add(d)}
	}
	tests := []struct {
		name string
		puts [][]Verdict
		want Verdict
	}{
		{"newer replaces older", [][]Verdict{{at(-2*time.Hour, Clean)}, {at(-time.Hour, Malicious)}}, at(-time.Hour, Malicious)},
		{"older does not replace newer", [][]Verdict{{at(-time.Hour, Malicious)}, {at(-2*time.Hour, Clean)}}, at(-time.Hour, Malicious)},
		{"same time replaces", [][]Verdict{{at(-time.Hour, Clean)}, {at(-time.Hour, Suspicious)}}, at(-time.Hour, Suspicious)},
		{"older later in one batch", [][]Verdict{{at(-time.Hour, Malicious), at(-2*time.Hour, Clean)}}, at(-time.Hour, Malicious)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			c := openTestCache(t, filepath.Join(t.TempDir(), "cache.db"))
			for _, batch := range tt.puts {
				if err := c.Put(ctx, batch); err != nil {
					t.Fatal(err)
				}
			}
			got, err := c.Get(ctx, "p", []Target{target}, 24*time.Hour, cacheNow)
			if err != nil {
				t.Fatal(err)
			}
			v := got[target]
			if v.Status != tt.want.Status || !v.CheckedAt.Equal(tt.want.CheckedAt) {
				t.Errorf("Get = %s at %v, want %s at %v", v.Status, v.CheckedAt, tt.want.Status, tt.want.CheckedAt)
			}
		})
	}
}

func TestCacheDamagedRowIsMiss(t *testing.T) {
	ctx := t.Context()
	c := openTestCache(t, filepath.Join(t.TempDir(), "cache.db"))
	good := mustTarget(t, "192.0.2.1")
	if err := c.Put(ctx, []Verdict{{Provider: "p", Target: good, Status: Clean, CheckedAt: cacheNow}}); err != nil {
		t.Fatal(err)
	}
	damaged := []struct{ target, verdict string }{
		{"192.0.2.2", `{"provider":"p","target":"192.0.2.2","verdict":"clean"`},
		{"192.0.2.3", `not json`},
		{"192.0.2.4", `{"provider":"p","target":"192.0.2.99","verdict":"clean"}`},
		{"192.0.2.5", `{"provider":"other","target":"192.0.2.5","verdict":"clean"}`},
		{"192.0.2.6", `{"provider":"p","target":"192.0.2.6","verdict":"unknown"}`},
		{"192.0.2.7", `{"provider":"p","target":"192.0.2.7","verdict":"clean","checked_at":"yesterday"}`},
	}
	targets := []Target{good}
	for _, d := range damaged {
		if _, err := c.db.ExecContext(ctx, "INSERT INTO verdicts VALUES ('p', ?, ?, ?)", d.target, cacheNow.UnixNano(), d.verdict); err != nil {
			t.Fatal(err)
		}
		targets = append(targets, mustTarget(t, d.target))
	}
	got, err := c.Get(ctx, "p", targets, time.Hour, cacheNow)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[good]; !ok || len(got) != 1 {
		t.Errorf("Get = %v, want the verdict for %s only", got, good)
	}
}

func TestCacheReserve(t *testing.T) {
	type step struct {
		n, limit int
		now      time.Time
		want     int
	}
	day1 := time.Date(2025, 3, 14, 23, 59, 59, 999999999, time.UTC)
	day2 := day1.Add(time.Nanosecond)
	// 09:00 on 15 March in UTC+10 is 23:00 on 14 March in UTC.
	day1East := time.Date(2025, 3, 15, 9, 0, 0, 0, time.FixedZone("UTC+10", 10*60*60))
	tests := []struct {
		name  string
		steps []step
		used  map[time.Time]int
	}{
		{"within limit", []step{{3, 10, day1, 3}, {7, 10, day1, 7}, {1, 10, day1, 0}}, map[time.Time]int{day1: 10}},
		{"partial grant", []step{{8, 10, day1, 8}, {5, 10, day1, 2}, {5, 10, day1, 0}}, map[time.Time]int{day1: 10}},
		{"nothing asked", []step{{0, 10, day1, 0}, {-1, 10, day1, 0}}, map[time.Time]int{day1: 0}},
		{"unlimited records usage", []step{{500, 0, day1, 500}, {7, -1, day1, 7}}, map[time.Time]int{day1: 507}},
		{"lower limit after use", []step{{8, 10, day1, 8}, {1, 5, day1, 0}}, map[time.Time]int{day1: 8}},
		{"day rollover", []step{{10, 10, day1, 10}, {1, 10, day1, 0}, {10, 10, day2, 10}, {1, 10, day2, 0}},
			map[time.Time]int{day1: 10, day2: 10, day2.AddDate(0, 0, 1): 0}},
		{"UTC day of a zoned time", []step{{4, 10, day1East, 4}, {10, 10, day1, 6}}, map[time.Time]int{day1: 10, day2: 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			c := openTestCache(t, filepath.Join(t.TempDir(), "cache.db"))
			for i, s := range tt.steps {
				got, err := c.Reserve(ctx, "p", s.n, s.limit, s.now)
				if err != nil {
					t.Fatal(err)
				}
				if got != s.want {
					t.Errorf("step %d: Reserve(%d, limit %d) = %d, want %d", i, s.n, s.limit, got, s.want)
				}
			}
			for now, want := range tt.used {
				got, err := c.Used(ctx, "p", now)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("Used(%v) = %d, want %d", now, got, want)
				}
			}
			if got, err := c.Used(ctx, "other", day1); err != nil || got != 0 {
				t.Errorf("Used of another provider = %d, %v, want 0", got, err)
			}
		})
	}
}

func TestCacheReserveConcurrent(t *testing.T) {
	const limit, workers = 150, 8
	path := filepath.Join(t.TempDir(), "cache.db")
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
	)
	for range workers {
		// Each worker has a Cache of its own, with its own connections, as a process would.
		c := openTestCache(t, path)
		wg.Go(func() {
			granted := 0
			for {
				n, err := c.Reserve(t.Context(), "p", 1, limit, cacheNow)
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					break
				}
				granted += n
			}
			mu.Lock()
			total += granted
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != limit {
		t.Errorf("granted %d units in all, want %d", total, limit)
	}
	c := openTestCache(t, path)
	if used, err := c.Used(t.Context(), "p", cacheNow); err != nil || used != limit {
		t.Errorf("Used = %d, %v, want %d", used, err, limit)
	}
}

// The environment variables that make the test binary a cache helper process.
const (
	cacheHelperEnv      = "SGVET_CACHE_HELPER"
	cacheHelperPathEnv  = "SGVET_CACHE_HELPER_PATH"
	cacheHelperIndexEnv = "SGVET_CACHE_HELPER_INDEX"
)

// The parameters of the multi-process tests.
const (
	cacheHelperLimit  = 300
	cacheHelperRounds = 40
	cacheHelperBatch  = 50
)

// TestCacheHelperProcess is not a test: it is the process runCacheHelpers starts. It says
// it is ready and waits for its standard input to close, so that all the helpers start at
// once, then opens the cache file, does what SGVET_CACHE_HELPER says and prints its result.
func TestCacheHelperProcess(t *testing.T) {
	mode := os.Getenv(cacheHelperEnv)
	if mode == "" {
		t.Skip("run by other tests")
	}
	if err := cacheHelper(mode, os.Getenv(cacheHelperPathEnv), os.Getenv(cacheHelperIndexEnv)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func cacheHelper(mode, path, index string) error {
	if err := processtest.Wait(); err != nil {
		return err
	}
	ctx := context.Background()
	c, err := openCache(ctx, path, nil, testBusyTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	switch mode {
	case "reserve":
		granted := 0
		for {
			n, err := c.Reserve(ctx, "p", 1, cacheHelperLimit, cacheNow)
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
			granted += n
		}
		fmt.Printf("granted %d\n", granted)
	case "putget":
		i, err := strconv.Atoi(index)
		if err != nil {
			return err
		}
		for round := range cacheHelperRounds {
			targets := make([]Target, cacheHelperBatch)
			verdicts := make([]Verdict, cacheHelperBatch)
			for j := range targets {
				// Half the targets are this process's own, half are shared by all.
				owner := byte(i)
				if j%2 == 0 {
					owner = 255
				}
				targets[j] = AddressTarget(netip.AddrFrom4([4]byte{10, owner, byte(round), byte(j)}))
				verdicts[j] = Verdict{Provider: "p", Target: targets[j], Status: Clean, CheckedAt: cacheNow.Add(time.Duration(round) * time.Second)}
			}
			if err := c.Put(ctx, verdicts); err != nil {
				return err
			}
			got, err := c.Get(ctx, "p", targets, time.Hour, cacheNow)
			if err != nil {
				return err
			}
			if len(got) != len(targets) {
				return fmt.Errorf("round %d: got %d verdicts, want %d", round, len(got), len(targets))
			}
			if _, err := c.Reserve(ctx, "p", 1, 0, cacheNow); err != nil {
				return err
			}
		}
		fmt.Println("done")
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	return nil
}

// runCacheHelpers runs n helper processes in mode on the cache file at path, all at once,
// and returns what each printed after saying it was ready.
func runCacheHelpers(t *testing.T, mode, path string, n int) []string {
	t.Helper()
	return processtest.Run(t, n, "TestCacheHelperProcess", func(i int) []string {
		return []string{cacheHelperEnv + "=" + mode, cacheHelperPathEnv + "=" + path, cacheHelperIndexEnv + "=" + strconv.Itoa(i)}
	})
}

func TestCacheReserveProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "cache.db")
	total := 0
	for i, out := range runCacheHelpers(t, "reserve", path, 3) {
		var granted int
		if _, err := fmt.Sscanf(out, "granted %d", &granted); err != nil {
			t.Errorf("helper %d printed %q", i, out)
			continue
		}
		t.Logf("helper %d granted %d", i, granted)
		total += granted
	}
	if total != cacheHelperLimit {
		t.Errorf("granted %d units in all, want %d", total, cacheHelperLimit)
	}
}

func TestCachePutGetProcesses(t *testing.T) {
	const n = 3
	path := filepath.Join(t.TempDir(), "cache.db")
	for i, out := range runCacheHelpers(t, "putget", path, n) {
		if !strings.HasPrefix(out, "done") {
			t.Errorf("helper %d printed %q", i, out)
		}
	}
	if t.Failed() {
		return
	}
	ctx := t.Context()
	c := openTestCache(t, path)
	var rows int
	if err := c.db.QueryRowContext(ctx, "SELECT count(*) FROM verdicts").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	// Each process stored half a batch of its own each round, and half of one shared.
	if want := cacheHelperRounds * cacheHelperBatch / 2 * (n + 1); rows != want {
		t.Errorf("%d verdicts stored, want %d", rows, want)
	}
	if used, err := c.Used(ctx, "p", cacheNow); err != nil || used != n*cacheHelperRounds {
		t.Errorf("Used = %d, %v, want %d", used, err, n*cacheHelperRounds)
	}
}

func TestOpenCache(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "cache.db")
	c := openTestCache(t, path)
	for _, p := range []string{path, filepath.Dir(path)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700 | os.ModeDir
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode(), want)
		}
	}
	// Every connection in the pool has the settings of the data source name.
	conns := make([]*sql.Conn, 3)
	for i := range conns {
		conn, err := c.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = conn
		var mode string
		var timeout int
		if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&timeout); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || timeout != int(testBusyTimeout.Milliseconds()) {
			t.Errorf("connection %d: journal mode %q, busy timeout %d ms, want wal and %d ms", i, mode, timeout, testBusyTimeout.Milliseconds())
		}
	}
	for _, conn := range conns {
		conn.Close()
	}

	// A second open of the same file keeps what the first stored.
	target := mustTarget(t, "192.0.2.1")
	if err := c.Put(ctx, []Verdict{{Provider: "p", Target: target, Status: Clean, CheckedAt: cacheNow}}); err != nil {
		t.Fatal(err)
	}
	got, err := openTestCache(t, path).Get(ctx, "p", []Target{target}, time.Hour, cacheNow)
	if err != nil || len(got) != 1 {
		t.Errorf("Get after reopening = %v, %v, want one verdict", got, err)
	}
	// SQLite gives the files of its write-ahead log the mode of the database file.
	for _, p := range []string{path + "-wal", path + "-shm"} {
		if fi, err := os.Stat(p); err != nil {
			t.Error(err)
		} else if fi.Mode() != 0o600 {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode(), os.FileMode(0o600))
		}
	}

	// A name that needs escaping in a URI.
	odd := filepath.Join(dir, "we?ird #dir%41", "cache?.db")
	openTestCache(t, odd)
	if _, err := os.Stat(odd); err != nil {
		t.Error(err)
	}
}

func TestOpenCacheErrors(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	newer := filepath.Join(dir, "newer.db")
	db, err := sql.Open("sqlite", newer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", cacheSchemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "app.db")
	if db, err = sql.Open("sqlite", other); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE users (id INTEGER); CREATE TABLE orders (id INTEGER)"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	tests := []struct {
		name, path, want string
	}{
		{"parent is a file", filepath.Join(notDir, "sub", "cache.db"), ""},
		{"path is a file's child", filepath.Join(notDir, "cache.db"), ""},
		{"path is a directory", dir, ""},
		{"newer schema", newer, "newer"},
		{"not a database", garbage, "not an sgvet cache file: it is not a SQLite database; give another file"},
		{"another program's database", other, "not an sgvet cache file: it holds other tables (orders, users); give another file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := OpenCache(t.Context(), tt.path, nil)
			if err == nil {
				c.Close()
				t.Fatal("OpenCache succeeded, want an error")
			}
			if !strings.Contains(err.Error(), "cache "+tt.path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("OpenCache(%q) = %q, want an error naming the path and saying %q", tt.path, err, tt.want)
			}
		})
	}
}

func TestOpenCacheWarnsOfSharedFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes do not control access")
	}
	path := filepath.Join(t.TempDir(), "cache.db")
	openTestCache(t, path)
	if err := os.Chmod(path, 0o660); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	c, err := OpenCache(t.Context(), path, slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	got := strings.TrimSpace(buf.String())
	for _, want := range []string{"level=WARN", "cache file", "file=" + path, "mode=0660", `hint="chmod 600 ` + path + `"`} {
		if strings.Count(got, "\n") != 0 || !strings.Contains(got, want) {
			t.Errorf("OpenCache(%q) logged %q, want one line with %q", path, got, want)
		}
	}
}

func TestCacheCancelledWhileLocked(t *testing.T) {
	target := mustTarget(t, "192.0.2.1")
	clean := Verdict{Provider: "p", Target: target, Status: Clean, CheckedAt: cacheNow}
	tests := []struct {
		name string
		call func(ctx context.Context, path string, c *Cache) error
		// readers never wait for the writer: they return at once, cancelled or not
		reads bool
	}{
		{"OpenCache", func(ctx context.Context, path string, _ *Cache) error {
			c, err := openCache(ctx, path, nil, testBusyTimeout)
			if err == nil {
				c.Close()
			}
			return err
		}, false},
		{"Put", func(ctx context.Context, _ string, c *Cache) error {
			return c.Put(ctx, []Verdict{clean})
		}, false},
		{"Reserve", func(ctx context.Context, _ string, c *Cache) error {
			_, err := c.Reserve(ctx, "p", 1, 10, cacheNow)
			return err
		}, false},
		{"Release", func(ctx context.Context, _ string, c *Cache) error {
			return c.Release(ctx, "p", 1, cacheDay(cacheNow))
		}, false},
		{"Purge", func(ctx context.Context, _ string, c *Cache) error {
			_, err := c.Purge(ctx, cacheNow)
			return err
		}, false},
		{"Get", func(ctx context.Context, _ string, c *Cache) error {
			_, err := c.Get(ctx, "p", []Target{target}, time.Hour, cacheNow)
			return err
		}, true},
		{"Used", func(ctx context.Context, _ string, c *Cache) error {
			_, err := c.Used(ctx, "p", cacheNow)
			return err
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cache.db")
			// testBusyTimeout is far longer than canceltest lets a call wait.
			c := openTestCache(t, path)
			holder := openTestCache(t, path)
			tx, err := holder.db.BeginTx(t.Context(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			err = canceltest.Run(t, tt.name, func(ctx context.Context) error { return tt.call(ctx, path, c) })
			if tt.reads && err != nil {
				t.Errorf("%s(%q) = %v, want no error", tt.name, path, err)
			}
			if !tt.reads && !errors.Is(err, context.Canceled) {
				t.Errorf("%s(%q) = %v, want %v", tt.name, path, err, context.Canceled)
			}
		})
	}
}

func TestCachePurge(t *testing.T) {
	ctx := t.Context()
	c := openTestCache(t, filepath.Join(t.TempDir(), "cache.db"))
	var verdicts []Verdict
	for i := range 10 {
		verdicts = append(verdicts, Verdict{
			Provider:  "p",
			Target:    AddressTarget(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})),
			Status:    Clean,
			CheckedAt: cacheNow.Add(-time.Duration(i) * time.Hour),
		})
	}
	if err := c.Put(ctx, verdicts); err != nil {
		t.Fatal(err)
	}
	yesterday := cacheNow.AddDate(0, 0, -1)
	for _, now := range []time.Time{yesterday, cacheNow} {
		if _, err := c.Reserve(ctx, "p", 5, 0, now); err != nil {
			t.Fatal(err)
		}
	}
	n, err := c.Purge(ctx, cacheNow.Add(-4*time.Hour)) // checked 5 to 9 hours ago
	if err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Errorf("Purge = %d, want 5", n)
	}
	targets := make([]Target, len(verdicts))
	for i, v := range verdicts {
		targets[i] = v.Target
	}
	got, err := c.Get(ctx, "p", targets, 24*time.Hour, cacheNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 {
		t.Errorf("%d verdicts left, want 5", len(got))
	}
	if used, _ := c.Used(ctx, "p", cacheNow); used != 5 {
		t.Errorf("Used today = %d, want 5", used)
	}
	if used, _ := c.Used(ctx, "p", yesterday); used != 0 {
		t.Errorf("Used yesterday = %d, want 0", used)
	}
	if n, err := c.Purge(ctx, time.Time{}); err != nil || n != 0 {
		t.Errorf("Purge(zero time) = %d, %v, want 0", n, err)
	}
}

func benchmarkVerdicts(n int) []Verdict {
	verdicts := make([]Verdict, n)
	for i := range verdicts {
		verdicts[i] = Verdict{
			Provider:   "abuseipdb",
			Target:     AddressTarget(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})),
			Status:     Malicious,
			Score:      score(i % 100),
			Categories: []string{"scanner"},
			Country:    "NL",
			Evidence:   "reported 12 times by 4 users",
			CheckedAt:  cacheNow,
		}
	}
	return verdicts
}

func BenchmarkCacheGet(b *testing.B) {
	const n = 50000
	ctx := b.Context()
	c := openTestCache(b, filepath.Join(b.TempDir(), "cache.db"))
	verdicts := benchmarkVerdicts(n)
	if err := c.Put(ctx, verdicts); err != nil {
		b.Fatal(err)
	}
	targets := make([]Target, n)
	for i, v := range verdicts {
		targets[i] = v.Target
	}
	for b.Loop() {
		got, err := c.Get(ctx, "abuseipdb", targets, time.Hour, cacheNow)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != n {
			b.Fatalf("Get returned %d verdicts, want %d", len(got), n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/target")
}

func BenchmarkCachePut(b *testing.B) {
	const n = 1000
	ctx := b.Context()
	c := openTestCache(b, filepath.Join(b.TempDir(), "cache.db"))
	verdicts := benchmarkVerdicts(n)
	for b.Loop() {
		// Each round is newer, so that every verdict is written.
		for i := range verdicts {
			verdicts[i].CheckedAt = verdicts[i].CheckedAt.Add(time.Second)
		}
		if err := c.Put(ctx, verdicts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/verdict")
}

func TestCacheIsBusy(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "cache.db")
	c := openTestCache(t, path)
	tx, err := c.db.BeginTx(ctx, nil) // takes the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	other, err := sql.Open("sqlite", path+"?_txlock=immediate") // no busy timeout
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, busy := other.BeginTx(ctx, nil)
	if busy == nil {
		t.Fatal("a second writer began a transaction")
	}
	tests := []struct {
		err  error
		want bool
	}{
		{busy, true},
		{fmt.Errorf("open cache x: %w", busy), true},
		{errors.New("database is locked"), false},
		{sql.ErrNoRows, false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := sqlitefile.IsBusy(tt.err); got != tt.want {
			t.Errorf("IsBusy(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestCacheExpire(t *testing.T) {
	ctx := t.Context()
	c := openTestCache(t, filepath.Join(t.TempDir(), "cache.db"))
	var verdicts []Verdict
	for _, provider := range []string{"p", "q"} {
		for i := range 10 {
			verdicts = append(verdicts, Verdict{
				Provider:  provider,
				Target:    AddressTarget(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})),
				Status:    Clean,
				CheckedAt: cacheNow.Add(-time.Duration(i) * time.Hour),
			})
		}
	}
	if err := c.Put(ctx, verdicts); err != nil {
		t.Fatal(err)
	}
	for _, day := range []time.Time{cacheNow, cacheNow.AddDate(0, 0, -1), cacheNow.AddDate(0, 0, -2)} {
		for _, provider := range []string{"p", "q"} {
			if _, err := c.Reserve(ctx, provider, 1, 100, day); err != nil {
				t.Fatal(err)
			}
		}
	}
	// In batches of 2: the verdicts of p checked more than 4h30m ago (5 of them) go.
	n, err := c.expire(ctx, "p", sqlitefile.UnixNano(cacheNow.Add(-4*time.Hour-30*time.Minute)), cacheDay(cacheNow.AddDate(0, 0, -1)), 2)
	if err != nil || n != 5 {
		t.Errorf("expire(p, 4h30m) = %d, %v; want 5", n, err)
	}
	for _, tt := range []struct {
		provider string
		want     int
	}{{"p", 5}, {"q", 10}} {
		var got int
		if err := c.db.QueryRowContext(ctx, "SELECT count(*) FROM verdicts WHERE provider = ?", tt.provider).Scan(&got); err != nil || got != tt.want {
			t.Errorf("%s verdicts left = %d, %v; want %d", tt.provider, got, err, tt.want)
		}
	}
	var days int
	if err := c.db.QueryRowContext(ctx, "SELECT count(*) FROM usage").Scan(&days); err != nil || days != 5 {
		t.Errorf("usage rows left = %d, %v; want 5 (p's of today and yesterday, q's three)", days, err)
	}
	got, err := c.Get(ctx, "p", []Target{verdicts[4].Target, verdicts[5].Target}, 4*time.Hour+30*time.Minute, cacheNow)
	if err != nil || len(got) != 1 {
		t.Errorf("Get after Expire = %v, %v; want the verdict checked 4h ago", got, err)
	}
	if n, err := c.Expire(ctx, "p", time.Hour, cacheNow); err != nil || n != 3 {
		t.Errorf("Expire(p, 1h) = %d, %v; want 3", n, err)
	}
}
