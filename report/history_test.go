package report

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/internal/canceltest"
	"github.com/sgvet/sgvet/internal/processtest"
	"github.com/sgvet/sgvet/reputation"
)

// historyT0 is the start of the first run in the history tests.
var historyT0 = time.Date(2025, 3, 1, 2, 0, 0, 0, time.UTC)

// historyRuleFor returns an ingress rule on port 22 from cidr, with id n.
func historyRuleFor(n int, cidr string) collector.Rule {
	return collector.Rule{
		Account:     "111122223333",
		Region:      "eu-west-1",
		VPC:         "vpc-1",
		GroupID:     "sg-1",
		GroupName:   "admin",
		ID:          fmt.Sprintf("sgr-%04d", n),
		Direction:   collector.Ingress,
		Protocol:    "tcp",
		FromPort:    22,
		ToPort:      22,
		CIDR:        netip.MustParsePrefix(cidr),
		Description: fmt.Sprintf("rule %d", n),
		Attached:    collector.Attached,
	}
}

func openTestHistory(t testing.TB, path string) *History {
	t.Helper()
	h, err := OpenHistory(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Error(err)
		}
	})
	return h
}

func historyKeys(rules ...collector.Rule) []string {
	keys := make([]string, len(rules))
	for i, r := range rules {
		keys[i] = RuleKey(r)
	}
	return keys
}

func sortedKeys(m map[string]bool) []string {
	var keys []string
	for k, v := range m {
		if v {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func TestHistoryRecord(t *testing.T) {
	a := historyRuleFor(1, "203.0.113.0/24")
	b := historyRuleFor(2, "198.51.100.7/32")
	c := historyRuleFor(3, "2001:db8::/64")
	c.Direction, c.Protocol, c.FromPort, c.ToPort, c.GroupName = collector.Egress, "udp", 5000, 5100, ""
	t1, t2, t3 := historyT0, historyT0.Add(24*time.Hour), historyT0.Add(48*time.Hour)

	goneB := GoneRule{RuleRef: RuleRef{Account: "111122223333", Region: "eu-west-1", GroupID: "sg-1", GroupName: "admin",
		RuleID: "sgr-0002", Direction: "ingress", Protocol: "tcp", PortRange: "22", CIDR: "198.51.100.7/32", Description: "rule 2"},
		FirstSeen: t1, LastSeen: t1}

	// The runs are recorded in order, on one file.
	runs := []struct {
		name      string
		id        string
		started   time.Time
		rules     []collector.Rule
		previous  string
		new       []string
		firstSeen map[string]time.Time
		gone      []GoneRule
	}{
		{
			name:      "first run",
			id:        "run-1",
			started:   t1,
			rules:     []collector.Rule{a, b},
			firstSeen: map[string]time.Time{RuleKey(a): t1, RuleKey(b): t1},
		},
		{
			name:      "one added, one removed, one kept",
			id:        "run-2",
			started:   t2,
			rules:     []collector.Rule{a, c},
			previous:  "run-1",
			new:       historyKeys(c),
			firstSeen: map[string]time.Time{RuleKey(a): t1, RuleKey(c): t2},
			gone:      []GoneRule{goneB},
		},
		{
			name:      "gone and back keeps its first sighting",
			id:        "run-3",
			started:   t3,
			rules:     []collector.Rule{a, b, c},
			previous:  "run-2",
			new:       historyKeys(b),
			firstSeen: map[string]time.Time{RuleKey(a): t1, RuleKey(b): t1, RuleKey(c): t2},
		},
		{
			name:      "everything removed",
			id:        "run-4",
			started:   t3.Add(time.Hour),
			previous:  "run-3",
			firstSeen: map[string]time.Time{},
			gone: []GoneRule{
				{RuleRef: RuleRef{Account: "111122223333", Region: "eu-west-1", GroupID: "sg-1", GroupName: "admin",
					RuleID: "sgr-0001", Direction: "ingress", Protocol: "tcp", PortRange: "22", CIDR: "203.0.113.0/24", Description: "rule 1"},
					FirstSeen: t1, LastSeen: t3},
				{RuleRef: RuleRef{Account: "111122223333", Region: "eu-west-1", GroupID: "sg-1", GroupName: "admin",
					RuleID: "sgr-0002", Direction: "ingress", Protocol: "tcp", PortRange: "22", CIDR: "198.51.100.7/32", Description: "rule 2"},
					FirstSeen: t1, LastSeen: t3},
				{RuleRef: RuleRef{Account: "111122223333", Region: "eu-west-1", GroupID: "sg-1",
					RuleID: "sgr-0003", Direction: "egress", Protocol: "udp", PortRange: "5000-5100", CIDR: "2001:db8::/64", Description: "rule 3"},
					FirstSeen: t2, LastSeen: t3},
			},
		},
	}

	h := openTestHistory(t, filepath.Join(t.TempDir(), "state.db"))
	for _, run := range runs {
		t.Run(run.name, func(t *testing.T) {
			// The start is given in another zone; what comes back is UTC.
			started := run.started.In(time.FixedZone("UTC+2", 2*60*60))
			view, err := h.Record(t.Context(), run.id, started, run.rules, nil)
			if err != nil {
				t.Fatal(err)
			}
			if view.Previous != run.previous {
				t.Errorf("Previous = %q, want %q", view.Previous, run.previous)
			}
			if got := sortedKeys(view.New); !slices.Equal(got, run.new) {
				t.Errorf("New = %q, want %q", got, run.new)
			}
			if !reflect.DeepEqual(view.FirstSeen, run.firstSeen) {
				t.Errorf("FirstSeen = %v, want %v", view.FirstSeen, run.firstSeen)
			}
			if !reflect.DeepEqual(view.Gone, run.gone) {
				t.Errorf("Gone = %+v, want %+v", view.Gone, run.gone)
			}
			if err := h.Finish(t.Context(), run.id, run.started.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// historyCounts returns the number of rows in each table.
func historyCounts(t *testing.T, h *History) map[string]int {
	t.Helper()
	counts := make(map[string]int)
	for _, table := range []string{"runs", "rules", "verdicts"} {
		var n int
		if err := h.db.QueryRowContext(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		counts[table] = n
	}
	return counts
}

func historyResults(at time.Time, targets ...string) []reputation.Result {
	var results []reputation.Result
	for i, s := range targets {
		target, err := reputation.ParseTarget(s)
		if err != nil {
			panic(err)
		}
		score := i
		results = append(results, reputation.Result{Target: target, Verdicts: []reputation.Verdict{
			{Provider: "blocklist", Target: target, Status: reputation.Malicious, Score: &score, Evidence: "listed", CheckedAt: at},
			{Provider: "metadefender", Target: target, Status: reputation.Unknown, Reason: "quota", CheckedAt: at},
			{}, // a provider that did not answer at all is not stored
		}})
	}
	return results
}

func TestHistoryRecordAgain(t *testing.T) {
	a := historyRuleFor(1, "203.0.113.0/24")
	b := historyRuleFor(2, "198.51.100.7/32")
	c := historyRuleFor(3, "192.0.2.0/28")
	t1, t2 := historyT0, historyT0.Add(time.Hour)

	h := openTestHistory(t, filepath.Join(t.TempDir(), "state.db"))
	ctx := t.Context()
	if _, err := h.Record(ctx, "run-1", t1, []collector.Rule{a, b}, historyResults(t1, "203.0.113.1")); err != nil {
		t.Fatal(err)
	}
	rules := []collector.Rule{a, c, c} // a duplicate counts once
	results := historyResults(t2, "203.0.113.1", "2001:db8::1")
	want, err := h.Record(ctx, "run-2", t2, rules, results)
	if err != nil {
		t.Fatal(err)
	}
	// run-2 got the verdicts of run-1 for 203.0.113.1 again, checked later: they are not
	// stored again.
	wantCounts := map[string]int{"runs": 2, "rules": 3, "verdicts": 4}
	if got := historyCounts(t, h); !reflect.DeepEqual(got, wantCounts) {
		t.Fatalf("rows = %v, want %v", got, wantCounts)
	}
	for i := range 2 {
		got, err := h.Record(ctx, "run-2", t2, rules, results)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Record again (%d) = %+v, want %+v", i+1, got, want)
		}
		if got := historyCounts(t, h); !reflect.DeepEqual(got, wantCounts) {
			t.Errorf("rows after recording again = %v, want %v", got, wantCounts)
		}
	}

	var status string
	var score sql.NullInt64
	err = h.db.QueryRowContext(ctx, "SELECT status, score FROM verdicts WHERE run = ? AND provider = ? AND target = ?",
		"run-2", "blocklist", "2001:db8::1").Scan(&status, &score)
	if err != nil || status != "malicious" || score != (sql.NullInt64{Int64: 1, Valid: true}) {
		t.Errorf("stored verdict = %q, %v, %v; want malicious, 1", status, score, err)
	}

	// A later run sees run-2 as recorded the last time.
	got, err := h.Record(ctx, "run-3", t2.Add(time.Hour), []collector.Rule{a}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Previous != "run-2" || len(got.New) != 0 || len(got.Gone) != 1 || got.Gone[0].RuleID != c.ID {
		t.Errorf("run after = %+v, want previous run-2, nothing new, %s gone", got, c.ID)
	}

	// The same id with another start is another run: an error.
	if _, err := h.Record(ctx, "run-2", t2.Add(time.Second), rules, results); err == nil || !strings.Contains(err.Error(), "run-2") {
		t.Errorf("Record with another start: error %v, want one naming run-2", err)
	}
}

func TestHistoryRecordAgainOtherRules(t *testing.T) {
	a := historyRuleFor(1, "203.0.113.0/24")
	b := historyRuleFor(2, "198.51.100.7/32")
	c := historyRuleFor(3, "192.0.2.0/28")
	t1, t2 := historyT0, historyT0.Add(time.Hour)
	h := openTestHistory(t, filepath.Join(t.TempDir(), "state.db"))
	ctx := t.Context()
	if _, err := h.Record(ctx, "run-1", t1, []collector.Rule{a, b}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Record(ctx, "run-2", t2, []collector.Rule{a, b, c}, nil); err != nil {
		t.Fatal(err)
	}
	// Recorded again without b and c: b is gone again, c was never seen.
	view, err := h.Record(ctx, "run-2", t2, []collector.Rule{a}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(view.Gone) != 1 || view.Gone[0].RuleID != b.ID || !view.Gone[0].LastSeen.Equal(t1) {
		t.Errorf("Gone = %+v, want %s last seen %v", view.Gone, b.ID, t1)
	}
	if got := historyCounts(t, h)["rules"]; got != 2 {
		t.Errorf("%d rules stored, want 2", got)
	}
}

func TestHistoryRecordLate(t *testing.T) {
	a := historyRuleFor(1, "203.0.113.0/24")
	t1, t2, t3 := historyT0, historyT0.Add(time.Hour), historyT0.Add(2*time.Hour)
	h := openTestHistory(t, filepath.Join(t.TempDir(), "state.db"))
	ctx := t.Context()
	// The run that started second is recorded first.
	if _, err := h.Record(ctx, "run-2", t2, []collector.Rule{a}, nil); err != nil {
		t.Fatal(err)
	}
	view, err := h.Record(ctx, "run-1", t1, []collector.Rule{a}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if view.Previous != "" || len(view.New) != 0 || !view.FirstSeen[RuleKey(a)].Equal(t1) {
		t.Errorf("late first run = %+v, want no previous, nothing new, first seen %v", view, t1)
	}
	view, err = h.Record(ctx, "run-3", t3, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if view.Previous != "run-2" || len(view.Gone) != 1 || !view.Gone[0].FirstSeen.Equal(t1) || !view.Gone[0].LastSeen.Equal(t2) {
		t.Errorf("third run = %+v, want previous run-2, %s gone, seen from %v to %v", view, a.ID, t1, t2)
	}
}

// TestHistoryRecordLateBetween: a run recorded late, between two recorded runs, is compared
// with the run just before it, whatever later runs saw.
func TestHistoryRecordLateBetween(t *testing.T) {
	a := historyRuleFor(1, "203.0.113.0/24")
	b := historyRuleFor(2, "198.51.100.7/32")
	at := func(hours int) time.Time { return historyT0.Add(time.Duration(hours) * time.Hour) }
	h := openTestHistory(t, filepath.Join(t.TempDir(), "state.db"))
	ctx := t.Context()
	for _, run := range []struct {
		id    string
		hours int
		rules []collector.Rule
	}{{"run-1", 1, []collector.Rule{a, b}}, {"run-3", 3, []collector.Rule{a}}, {"run-4", 4, []collector.Rule{a, b}}} {
		if _, err := h.Record(ctx, run.id, at(run.hours), run.rules, nil); err != nil {
			t.Fatal(err)
		}
	}
	goneB := func(last time.Time) []GoneRule {
		return []GoneRule{{RuleRef: refOf(&b), FirstSeen: at(1), LastSeen: last}}
	}
	tests := []struct {
		id       string
		hours    int
		rules    []collector.Rule
		previous string
		new      []string
		gone     []GoneRule
	}{
		// run-4 saw b later; run-1, just before, saw it too.
		{"run-2", 2, []collector.Rule{a}, "run-1", nil, goneB(at(1))},
		// run-2, just before, did not see b; run-3, just after, did not either.
		{"run-2b", 2, []collector.Rule{a, b}, "run-2", historyKeys(b), nil},
		{"run-5", 5, []collector.Rule{a}, "run-4", nil, goneB(at(4))},
	}
	for _, tt := range tests {
		view, err := h.Record(ctx, tt.id, at(tt.hours), tt.rules, nil)
		if err != nil {
			t.Fatal(err)
		}
		if view.Previous != tt.previous || !slices.Equal(sortedKeys(view.New), tt.new) || !reflect.DeepEqual(view.Gone, tt.gone) {
			t.Errorf("Record(%s) = previous %q, new %q, gone %+v; want %q, %q, %+v", tt.id, view.Previous, sortedKeys(view.New), view.Gone, tt.previous, tt.new, tt.gone)
		}
	}
}

func TestHistoryPreviousTie(t *testing.T) {
	h := openTestHistory(t, filepath.Join(t.TempDir(), "state.db"))
	ctx := t.Context()
	for _, id := range []string{"b", "a", "c"} {
		if _, err := h.Record(ctx, id, historyT0, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	for id, want := range map[string]string{"a": "", "b": "a", "c": "b"} {
		view, err := h.Record(ctx, id, historyT0, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if view.Previous != want {
			t.Errorf("previous of %s = %q, want %q", id, view.Previous, want)
		}
	}
}

func TestHistoryFinish(t *testing.T) {
	h := openTestHistory(t, filepath.Join(t.TempDir(), "state.db"))
	ctx := t.Context()
	if err := h.Finish(ctx, "nope", historyT0); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Finish of an unrecorded run: error %v, want one naming it", err)
	}
	if _, err := h.Record(ctx, "run-1", historyT0, nil, nil); err != nil {
		t.Fatal(err)
	}
	end := historyT0.Add(90 * time.Second)
	if err := h.Finish(ctx, "run-1", end); err != nil {
		t.Fatal(err)
	}
	var finished int64
	if err := h.db.QueryRowContext(ctx, "SELECT finished FROM runs WHERE id = 'run-1'").Scan(&finished); err != nil {
		t.Fatal(err)
	}
	if got := time.Unix(0, finished).UTC(); !got.Equal(end) {
		t.Errorf("finished = %v, want %v", got, end)
	}
}

func TestOpenHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "state.db")
	openTestHistory(t, path)
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
			t.Errorf("mode of %s = %v, want %v", p, fi.Mode(), want)
		}
	}
	// A second handle on the same file finds the schema in place.
	h2, err := OpenHistory(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	h2.Close()
}

func TestOpenHistoryErrors(t *testing.T) {
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
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", historySchemaVersion+1)); err != nil {
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
		{"directory cannot be created", filepath.Join(notDir, "sub", "state.db"), ""},
		{"path is a directory", dir, ""},
		{"newer schema", newer, "newer"},
		{"not a database", garbage, "not an sgvet history file: it is not a SQLite database; give another file"},
		{"another program's database", other, "not an sgvet history file: it holds other tables (orders, users); give another file"},
		{"empty path", "", "empty path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := OpenHistory(t.Context(), tt.path, nil)
			if err == nil {
				h.Close()
				t.Fatalf("OpenHistory(%q) succeeded, want an error", tt.path)
			}
			if !strings.Contains(err.Error(), "history "+tt.path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("OpenHistory(%q) = %q, want an error naming the path and saying %q", tt.path, err, tt.want)
			}
		})
	}
}

func TestOpenHistoryWarnsOfSharedFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes do not control access")
	}
	path := filepath.Join(t.TempDir(), "state.db")
	openTestHistory(t, path)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	h, err := OpenHistory(t.Context(), path, slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	got := strings.TrimSpace(buf.String())
	for _, want := range []string{"level=WARN", "history file", "file=" + path, "mode=0644", `hint="chmod 600 ` + path + `"`} {
		if strings.Count(got, "\n") != 0 || !strings.Contains(got, want) {
			t.Errorf("OpenHistory(%q) logged %q, want one line with %q", path, got, want)
		}
	}
}

func TestHistoryCancelledWhileLocked(t *testing.T) {
	a := historyRuleFor(1, "203.0.113.0/24")
	// Each call would wait for the lock far longer than canceltest lets it.
	const busyTimeout = 10 * time.Minute
	openClose := func(ctx context.Context, path string) error {
		h, err := openHistory(ctx, path, nil, busyTimeout)
		if err == nil {
			h.Close()
		}
		return err
	}
	// In each test, dir holds state.db, a history with one run, and the call is made on
	// that history while the lock of a file in dir is held.
	tests := []struct {
		name string
		lock func(t *testing.T, dir string)
		call func(ctx context.Context, dir string, h *History) error
	}{
		{"OpenHistory", holdHistoryLock, func(ctx context.Context, dir string, _ *History) error {
			return openClose(ctx, filepath.Join(dir, "state.db"))
		}},
		{"OpenHistory of a file being created", holdNewFileLock, func(ctx context.Context, dir string, _ *History) error {
			return openClose(ctx, filepath.Join(dir, "new.db"))
		}},
		{"Record", holdHistoryLock, func(ctx context.Context, _ string, h *History) error {
			_, err := h.Record(ctx, "run-2", historyT0.Add(time.Hour), []collector.Rule{a}, nil)
			return err
		}},
		{"Finish", holdHistoryLock, func(ctx context.Context, _ string, h *History) error {
			return h.Finish(ctx, "run-1", historyT0.Add(time.Minute))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			h, err := openHistory(t.Context(), filepath.Join(dir, "state.db"), nil, busyTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			if _, err := h.Record(t.Context(), "run-1", historyT0, []collector.Rule{a}, nil); err != nil {
				t.Fatal(err)
			}
			before := historyCounts(t, h)
			tt.lock(t, dir)
			err = canceltest.Run(t, tt.name, func(ctx context.Context) error { return tt.call(ctx, dir, h) })
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s(%q) = %v, want %v", tt.name, dir, err, context.Canceled)
			}
			if got := historyCounts(t, h); !reflect.DeepEqual(got, before) {
				t.Errorf("%s(%q) left rows %v, want %v", tt.name, dir, got, before)
			}
		})
	}
}

// holdHistoryLock holds the write lock of the history dir/state.db, on a connection of its
// own, until the test ends.
func holdHistoryLock(t *testing.T, dir string) {
	t.Helper()
	holder := openTestHistory(t, filepath.Join(dir, "state.db"))
	tx, err := holder.db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
}

// holdNewFileLock creates dir/new.db, empty, and holds an exclusive lock on it until the
// test ends, as a process that creates it in rollback journal mode does while it writes.
func holdNewFileLock(t *testing.T, dir string) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, "new.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.ExecContext(t.Context(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.ExecContext(context.Background(), "ROLLBACK") })
}

// lookCounter is a context that counts the calls of its Done and Err methods, and cancels
// itself with cause errLooked on the call numbered cancelAt; never if cancelAt is 0.
type lookCounter struct {
	context.Context
	cancel   context.CancelCauseFunc
	cancelAt int64
	looks    atomic.Int64
}

var errLooked = errors.New("cancelled after so many looks")

func newLookCounter(t *testing.T, cancelAt int64) *lookCounter {
	ctx, cancel := context.WithCancelCause(t.Context())
	t.Cleanup(func() { cancel(nil) })
	return &lookCounter{Context: ctx, cancel: cancel, cancelAt: cancelAt}
}

func (c *lookCounter) look() {
	if c.looks.Add(1) == c.cancelAt {
		c.cancel(errLooked)
	}
}

func (c *lookCounter) Done() <-chan struct{} { c.look(); return c.Context.Done() }
func (c *lookCounter) Err() error            { c.look(); return c.Context.Err() }

// historyTables are the tables of the history, and the columns that order their rows.
var historyTables = map[string]string{
	"runs":            "seq",
	"changes":         "n",
	"rules":           "key",
	"spans":           "key, since",
	"verdicts":        "provider, target, started, run",
	"forgotten_runs":  "id",
	"latest_verdicts": "bucket",
}

// historyDump returns every row of the history, in order.
func historyDump(t *testing.T, h *History) string {
	t.Helper()
	return historyDumpTables(t, h, slices.Sorted(maps.Keys(historyTables))...)
}

// historyDumpTables returns every row of the given tables of the history, in order.
func historyDumpTables(t *testing.T, h *History, tables ...string) string {
	t.Helper()
	var b strings.Builder
	for _, table := range tables {
		rows, err := h.db.QueryContext(t.Context(), "SELECT * FROM "+table+" ORDER BY "+historyTables[table])
		if err != nil {
			t.Fatal(err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		values := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range values {
			ptrs[i] = &values[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			b.WriteString(table)
			for _, v := range values {
				if s, ok := v.(string); ok {
					v = strconv.Quote(s)
				}
				fmt.Fprintf(&b, " %v", v)
			}
			b.WriteString("\n")
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return b.String()
}

func TestHistoryRecordCancelled(t *testing.T) {
	// The first run sees rules 0 to 1,499, the second 500 to 1,999: a third is gone, a
	// third new.
	const nrules = 1500
	rules, results := historyBenchEstate(nrules+nrules/3, nrules/2)
	t1, t2 := historyT0, historyT0.Add(time.Hour)
	prepare := func(t *testing.T) *History {
		h := openTestHistory(t, filepath.Join(t.TempDir(), "state.db"))
		if _, err := h.Record(t.Context(), "run-1", t1, rules[:nrules], results); err != nil {
			t.Fatal(err)
		}
		return h
	}
	record2 := func(ctx context.Context, h *History) (*HistoryView, error) {
		return h.Record(ctx, "run-2", t2, rules[nrules/3:], results[nrules/6:])
	}

	// How often a whole recording of the second run looks at its context, and what it
	// leaves.
	h := prepare(t)
	counter := newLookCounter(t, 0)
	wantView, err := record2(counter, h)
	if err != nil {
		t.Fatal(err)
	}
	looks := counter.looks.Load()
	want := historyDump(t, h)
	t.Logf("a whole recording looks at its context %d times", looks)

	tests := []struct {
		name     string
		cancelAt int64
	}{
		{"at the first look", 1},
		{"after an eighth of the looks", looks / 8},
		{"after a quarter of the looks", looks / 4},
		{"after half the looks", looks / 2},
		{"after three quarters of the looks", looks * 3 / 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := prepare(t)
			before := historyDump(t, h)
			if _, err := record2(newLookCounter(t, tt.cancelAt), h); !errors.Is(err, errLooked) {
				t.Fatalf("Record(%q) = %v, want %v", tt.name, err, errLooked)
			}
			if got := historyDump(t, h); got != before {
				t.Errorf("Record(%q) changed the history:\n%s\nwant\n%s", tt.name, got, before)
			}
			// The transaction is rolled back: the run is recorded as if never tried.
			view, err := record2(t.Context(), h)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(view, wantView) {
				t.Errorf("Record after Record(%q) = %+v, want %+v", tt.name, view, wantView)
			}
			if got := historyDump(t, h); got != want {
				t.Errorf("Record after Record(%q) left the history:\n%s\nwant\n%s", tt.name, got, want)
			}
		})
	}
}

func TestHistoryRecordCancelledBeforeCall(t *testing.T) {
	const nrules = 20_000
	rules, _ := historyBenchEstate(nrules, 0)
	h := openTestHistory(t, filepath.Join(t.TempDir(), "state.db"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	// Indexing the rules would allocate at least one key for each.
	allocs := testing.AllocsPerRun(3, func() {
		if _, err := h.Record(ctx, "run-1", historyT0, rules, nil); !errors.Is(err, context.Canceled) {
			t.Errorf("Record(cancelled) = %v, want %v", err, context.Canceled)
		}
	})
	if allocs > nrules/100 {
		t.Errorf("Record(cancelled) made %v allocations for %d rules, want at most %d", allocs, nrules, nrules/100)
	}
}

// The environment variables that make the test binary a history helper process.
const (
	historyHelperPathEnv  = "SGVET_HISTORY_HELPER_PATH"
	historyHelperIndexEnv = "SGVET_HISTORY_HELPER_INDEX"
)

// The parameters of the multi-process test: each helper records historyHelperRuns runs
// of historyHelperRules rules, half of them shared by every helper.
const (
	historyHelpers     = 3
	historyHelperRuns  = 4
	historyHelperRules = 1000
)

// historyHelperBusyTimeout is how long a helper's connection waits for a lock. The helpers'
// transactions queue for one write lock, which the others may take again and again before a
// waiting one gets it; on a busy machine, with the race detector, that can take longer than
// the 30 seconds a run waits. The test is about what several processes write, not about how
// long they wait, so a helper waits long enough that only a lock never released would fail
// it.
const historyHelperBusyTimeout = 5 * time.Minute

// TestHistoryHelperProcess is not a test: it is the process TestHistoryProcesses starts.
// It says it is ready and waits for its standard input to close, so that all the helpers
// start at once, then records its runs.
func TestHistoryHelperProcess(t *testing.T) {
	path := os.Getenv(historyHelperPathEnv)
	if path == "" {
		t.Skip("run by TestHistoryProcesses")
	}
	if err := historyHelper(path, os.Getenv(historyHelperIndexEnv)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func historyHelper(path, index string) error {
	i, err := strconv.Atoi(index)
	if err != nil {
		return err
	}
	if err := processtest.Wait(); err != nil {
		return err
	}
	ctx := context.Background()
	h, err := openHistory(ctx, path, nil, historyHelperBusyTimeout)
	if err != nil {
		return err
	}
	defer h.Close()
	for run := range historyHelperRuns {
		id := fmt.Sprintf("run-%d-%d", i, run)
		started := historyT0.Add(time.Duration(run*historyHelpers+i) * time.Minute)
		rules := make([]collector.Rule, historyHelperRules)
		var targets []string
		for j := range rules {
			owner := i
			if j%2 == 0 {
				owner = 9 // shared
			}
			cidr := fmt.Sprintf("10.%d.%d.%d/32", owner, j/256, j%256)
			rules[j] = historyRuleFor(j, cidr)
			if j < 100 {
				targets = append(targets, strings.TrimSuffix(cidr, "/32"))
			}
		}
		if _, err := h.Record(ctx, id, started, rules, historyResults(started, targets...)); err != nil {
			return err
		}
		if err := h.Finish(ctx, id, started.Add(time.Second)); err != nil {
			return err
		}
	}
	fmt.Println("done")
	return nil
}

func TestHistoryProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "state.db")
	out := processtest.Run(t, historyHelpers, "TestHistoryHelperProcess", func(i int) []string {
		return []string{historyHelperPathEnv + "=" + path, historyHelperIndexEnv + "=" + strconv.Itoa(i)}
	})
	for i, got := range out {
		if got != "done" {
			t.Errorf("helper %d printed %q, want done", i, got)
		}
	}
	if t.Failed() {
		return
	}

	h := openTestHistory(t, path)
	rows, err := h.db.QueryContext(t.Context(), "SELECT id FROM runs WHERE finished IS NOT NULL AND verdicts = 200 ORDER BY started, id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var want []string
	for run := range historyHelperRuns {
		for i := range historyHelpers {
			want = append(want, fmt.Sprintf("run-%d-%d", i, run))
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("finished runs = %q, want %q", got, want)
	}
	// Each helper has half its rules to itself; the other half is shared.
	wantRules := historyHelpers*historyHelperRules/2 + historyHelperRules/2
	if got := historyCounts(t, h)["rules"]; got != wantRules {
		t.Errorf("%d rules stored, want %d", got, wantRules)
	}
}

// historyBenchEstate returns nrules rules, each allowing its own address, in 50 accounts,
// and clean verdicts for the addresses of the first nverdicts.
func historyBenchEstate(nrules, nverdicts int) ([]collector.Rule, []reputation.Result) {
	rules := make([]collector.Rule, nrules)
	for i := range rules {
		rules[i] = historyRuleFor(i, netip.PrefixFrom(netip.AddrFrom4([4]byte{11, byte(i >> 16), byte(i >> 8), byte(i)}), 32).String())
		rules[i].Account = strconv.Itoa(100000000000 + i%50)
	}
	results := make([]reputation.Result, nverdicts)
	for i := range results {
		target := reputation.AddressTarget(rules[i].CIDR.Addr())
		score := i % 100
		results[i] = reputation.Result{Target: target, Verdicts: []reputation.Verdict{
			{Provider: "metadefender", Target: target, Status: reputation.Clean, Score: &score, CheckedAt: historyT0},
		}}
	}
	return rules, results
}

// BenchmarkHistoryRecord records a run of 100,000 rules and 50,000 verdicts: into a new
// file, and into a file whose previous run saw the same estate but for one rule.
func BenchmarkHistoryRecord(b *testing.B) {
	const nrules = 100_000
	rules, results := historyBenchEstate(nrules, 50_000)

	b.Run("new", func(b *testing.B) {
		dir := b.TempDir()
		n := 0
		for b.Loop() {
			b.StopTimer()
			n++
			h, err := OpenHistory(b.Context(), filepath.Join(dir, strconv.Itoa(n)+".db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if _, err := h.Record(b.Context(), "run-1", historyT0, rules, results); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := h.Close(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	})
	b.Run("next", func(b *testing.B) {
		rules := slices.Clone(rules) // changed below; -count runs this function again
		h := openTestHistory(b, filepath.Join(b.TempDir(), "state.db"))
		ctx := b.Context()
		if _, err := h.Record(ctx, "run-0", historyT0, rules, results); err != nil {
			b.Fatal(err)
		}
		n := 0
		for b.Loop() {
			n++
			// Each run drops one rule and adds one.
			rules[n%nrules].ID = fmt.Sprintf("sgr-new-%d", n)
			view, err := h.Record(ctx, "run-"+strconv.Itoa(n), historyT0.Add(time.Duration(n)*time.Hour), rules, results)
			if err != nil {
				b.Fatal(err)
			}
			if len(view.New) != 1 || len(view.Gone) != 1 {
				b.Fatalf("run %d: %d new, %d gone; want 1 and 1", n, len(view.New), len(view.Gone))
			}
		}
	})
}

// BenchmarkHistoryRecordCancel records runs of 200,000 rules and 50,000 verdicts, each
// seeing the same estate as the previous one. Each iteration records a run whole, then
// records the next nine times, cancelling it after a tenth of the time the whole one took,
// two tenths, and so on. It reports the whole recording's time (ms-whole), how long Record
// took to return after a cancel that stopped it, on average (ms-to-return) and at most
// (max-ms-to-return), and how many of the nine recorded the run all the same, the cancel
// coming during the commit or after (finished/op).
func BenchmarkHistoryRecordCancel(b *testing.B) {
	rules, results := historyBenchEstate(200_000, 50_000)
	h := openTestHistory(b, filepath.Join(b.TempDir(), "state.db"))
	if _, err := h.Record(b.Context(), "run-0", historyT0, rules, results); err != nil {
		b.Fatal(err)
	}
	var whole, toReturn, longest time.Duration
	cancels, finished := 0, 0
	n := 0
	for b.Loop() {
		n++
		start := time.Now()
		if _, err := h.Record(b.Context(), "run-"+strconv.Itoa(n), historyT0.Add(time.Duration(n)*time.Hour), rules, results); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		whole += took
		next := "run-" + strconv.Itoa(n) + "-cancelled"
		for tenth := 1; tenth < 10; tenth++ {
			ctx, cancel := context.WithCancel(b.Context())
			cancelled := make(chan time.Time, 1)
			timer := time.AfterFunc(took*time.Duration(tenth)/10, func() {
				cancelled <- time.Now()
				cancel()
			})
			_, err := h.Record(ctx, next, historyT0.Add(time.Duration(n)*time.Hour+time.Minute), rules, results)
			returned := time.Now()
			if timer.Stop() {
				cancel()
			}
			switch {
			case err == nil:
				// Recorded before the cancel, or while committing: the next attempts record
				// the run again.
				finished++
			case !errors.Is(err, context.Canceled):
				b.Fatalf("Record cancelled after %d/10 of its time = %v, want %v", tenth, err, context.Canceled)
			default:
				d := returned.Sub(<-cancelled)
				toReturn += d
				longest = max(longest, d)
				cancels++
			}
		}
	}
	b.ReportMetric(float64(whole.Milliseconds())/float64(n), "ms-whole")
	if cancels > 0 {
		b.ReportMetric(float64(toReturn.Microseconds())/1000/float64(cancels), "ms-to-return")
		b.ReportMetric(float64(longest.Microseconds())/1000, "max-ms-to-return")
	}
	b.ReportMetric(float64(finished)/float64(n), "finished/op")
}

func TestBuildNewRules(t *testing.T) {
	a := historyRuleFor(1, "203.0.113.1/32")
	b := historyRuleFor(2, "203.0.113.2/32")
	c := historyRuleFor(3, "203.0.113.3/32")
	b2 := b
	b2.Description = "rule 2, seen twice"
	t1 := historyT0.Add(24 * time.Hour)
	view := &HistoryView{
		Previous:  "run-1",
		FirstSeen: map[string]time.Time{RuleKey(a): historyT0, RuleKey(b): t1, RuleKey(c): t1},
		New:       map[string]bool{RuleKey(c): true, RuleKey(b): true},
	}
	r := Build(Input{Inventory: &collector.Inventory{Rules: []collector.Rule{c, a, b, b2}}, History: view, Now: t1})
	want := []NewRule{
		{RuleRef: refOf(&b2), FirstSeen: t1},
		{RuleRef: refOf(&c), FirstSeen: t1},
	}
	if !reflect.DeepEqual(r.New, want) {
		t.Errorf("Build(...).New = %+v, want %+v", r.New, want)
	}
	if r.Summary.RulesNew != 2 {
		t.Errorf("Build(...).Summary.RulesNew = %d, want 2", r.Summary.RulesNew)
	}
	var buf bytes.Buffer
	if err := (jsonWriter{}).Write(&buf, r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		New []struct {
			RuleID    string    `json:"rule_id"`
			FirstSeen time.Time `json:"first_seen"`
		} `json:"new"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.New) != 2 || doc.New[0].RuleID != b.ID || doc.New[1].RuleID != c.ID || !doc.New[1].FirstSeen.Equal(t1) {
		t.Errorf("JSON \"new\" = %+v, want %s and %s first seen %v", doc.New, b.ID, c.ID, t1)
	}

	// Without a history, and on the first run, nothing is new: the list is empty, not null.
	for _, h := range []*HistoryView{nil, {FirstSeen: map[string]time.Time{}}} {
		r := Build(Input{Inventory: &collector.Inventory{Rules: []collector.Rule{a}}, History: h, Now: t1})
		buf.Reset()
		if err := (jsonWriter{}).Write(&buf, r); err != nil {
			t.Fatal(err)
		}
		if r.New == nil || len(r.New) != 0 || !strings.Contains(buf.String(), `"new": []`) {
			t.Errorf("Build(history %v).New = %#v, want an empty list", h, r.New)
		}
	}
}

func TestHistoryPrepareCommit(t *testing.T) {
	a := historyRuleFor(1, "203.0.113.0/24")
	b := historyRuleFor(2, "198.51.100.7/32")
	t1, t2, t3 := historyT0, historyT0.Add(time.Hour), historyT0.Add(2*time.Hour)
	h := openTestHistory(t, filepath.Join(t.TempDir(), "state.db"))
	ctx := t.Context()
	if _, err := h.Record(ctx, "run-1", t1, []collector.Rule{a}, nil); err != nil {
		t.Fatal(err)
	}
	before := historyDump(t, h)

	// A run prepared and never committed (its report failed) changes nothing, and is no
	// previous run: the next run sees b as new.
	view, _, err := h.Prepare(ctx, "run-2", t2, []collector.Rule{a, b}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if view.Previous != "run-1" || !reflect.DeepEqual(sortedKeys(view.New), historyKeys(b)) {
		t.Errorf("Prepare(run-2) = %+v, want previous run-1 and %s new", view, b.ID)
	}
	if got := historyDump(t, h); got != before {
		t.Errorf("Prepare changed the history:\n%s\nwant\n%s", got, before)
	}
	view, pending, err := h.Prepare(ctx, "run-3", t3, []collector.Rule{a, b}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if view.Previous != "run-1" || !reflect.DeepEqual(sortedKeys(view.New), historyKeys(b)) {
		t.Errorf("Prepare(run-3) after an uncommitted run-2 = %+v, want previous run-1 and %s new", view, b.ID)
	}
	// Another run committed between Prepare and Commit is kept.
	if _, err := h.Record(ctx, "run-2b", t2, []collector.Rule{a}, nil); err != nil {
		t.Fatal(err)
	}
	end := t3.Add(time.Minute)
	if err := pending.Commit(ctx, end); err != nil {
		t.Fatal(err)
	}
	var finished int64
	if err := h.db.QueryRowContext(ctx, "SELECT finished FROM runs WHERE id = 'run-3'").Scan(&finished); err != nil || finished != end.UnixNano() {
		t.Errorf("finished of run-3 = %d, %v; want %d", finished, err, end.UnixNano())
	}
	if got := historyCounts(t, h)["runs"]; got != 3 {
		t.Errorf("%d runs stored, want 3", got)
	}
	view, err = h.Record(ctx, "run-4", t3.Add(time.Hour), []collector.Rule{a}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if view.Previous != "run-3" || len(view.New) != 0 || len(view.Gone) != 1 || view.Gone[0].RuleID != b.ID {
		t.Errorf("Record(run-4) = %+v, want previous run-3, nothing new, %s gone", view, b.ID)
	}

	// A cancelled Commit leaves the file as it was.
	_, pending, err = h.Prepare(ctx, "run-5", t3.Add(2*time.Hour), []collector.Rule{a, b}, nil)
	if err != nil {
		t.Fatal(err)
	}
	before = historyDump(t, h)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := pending.Commit(cctx, time.Now()); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit(cancelled) = %v, want %v", err, context.Canceled)
	}
	if got := historyDump(t, h); got != before {
		t.Errorf("Commit(cancelled) changed the history:\n%s\nwant\n%s", got, before)
	}
}

func TestHistoryStoresChanges(t *testing.T) {
	rules, results := historyBenchEstate(500, 500)
	h := openTestHistory(t, filepath.Join(t.TempDir(), "state.db"))
	ctx := t.Context()
	record := func(n int, results []reputation.Result) {
		t.Helper()
		at := historyT0.Add(time.Duration(n) * time.Hour)
		if _, err := h.Record(ctx, "run-"+strconv.Itoa(n), at, rules, results); err != nil {
			t.Fatal(err)
		}
	}
	record(1, results)
	rulesJSON := func() string {
		var s string
		if err := h.db.QueryRowContext(ctx, "SELECT group_concat(ref, ',') FROM (SELECT ref FROM rules ORDER BY key)").Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	wantRules := rulesJSON()

	// The same estate, its verdicts checked again or taken from the cache: nothing but the
	// sightings changes.
	again := slices.Clone(results)
	for i := range again {
		again[i].Verdicts = slices.Clone(again[i].Verdicts)
		again[i].Verdicts[0].CheckedAt = historyT0.Add(time.Hour)
		again[i].Verdicts[0].Cached = true
	}
	record(2, again)
	if got := historyCounts(t, h); got["verdicts"] != 500 || got["rules"] != 500 {
		t.Errorf("rows after an unchanged run = %v, want 500 rules and 500 verdicts", got)
	}
	if got := rulesJSON(); got != wantRules {
		t.Errorf("rules after an unchanged run differ")
	}
	// One verdict changes: it alone is stored again.
	again[7].Verdicts = slices.Clone(again[7].Verdicts)
	again[7].Verdicts[0].Status = reputation.Malicious
	record(3, again)
	if got := historyCounts(t, h)["verdicts"]; got != 501 {
		t.Errorf("%d verdicts after one changed, want 501", got)
	}
	var status string
	if err := h.db.QueryRowContext(ctx, "SELECT status FROM verdicts WHERE run = 'run-3'").Scan(&status); err != nil || status != "malicious" {
		t.Errorf("verdict stored by run-3 = %q, %v; want malicious", status, err)
	}

	// Pruning to two runs forgets run-0 and run-1, and the rule only run-0 saw; the
	// verdicts of run-1 stay, the latest as of run-2, the oldest run kept.
	old := historyRuleFor(9999, "192.0.2.1/32")
	if _, err := h.Record(ctx, "run-0", historyT0.Add(-time.Hour), []collector.Rule{old}, nil); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		keep, pruned int
		counts       map[string]int
	}{
		{0, 0, map[string]int{"runs": 4, "rules": 501, "verdicts": 501}},
		{5, 0, map[string]int{"runs": 4, "rules": 501, "verdicts": 501}},
		{2, 2, map[string]int{"runs": 2, "rules": 500, "verdicts": 501}},
		{2, 0, map[string]int{"runs": 2, "rules": 500, "verdicts": 501}},
		// Pruning to one run forgets the verdict run-3 replaced.
		{1, 1, map[string]int{"runs": 1, "rules": 500, "verdicts": 500}},
	} {
		n, err := h.Prune(ctx, tt.keep)
		if err != nil || n != tt.pruned {
			t.Errorf("Prune(%d) = %d, %v; want %d", tt.keep, n, err, tt.pruned)
		}
		if got := historyCounts(t, h); !reflect.DeepEqual(got, tt.counts) {
			t.Errorf("rows after Prune(%d) = %v, want %v", tt.keep, got, tt.counts)
		}
	}
	view, err := h.Record(ctx, "run-4", historyT0.Add(4*time.Hour), rules, again)
	if err != nil {
		t.Fatal(err)
	}
	if view.Previous != "run-3" || len(view.New) != 0 || len(view.Gone) != 0 {
		t.Errorf("Record after Prune = previous %q, %d new, %d gone; want run-3, none", view.Previous, len(view.New), len(view.Gone))
	}
	if got := historyCounts(t, h)["verdicts"]; got != 500 {
		t.Errorf("%d verdicts after Prune and an unchanged run, want 500", got)
	}
}

// historySchemaV1 are the statements of schema version 1, as sgvet created it.
var historySchemaV1 = []string{
	`CREATE TABLE IF NOT EXISTS runs (id TEXT NOT NULL PRIMARY KEY, started INTEGER NOT NULL, finished INTEGER,
		rules INTEGER NOT NULL DEFAULT 0, verdicts INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID`,
	`CREATE INDEX IF NOT EXISTS runs_started ON runs (started, id)`,
	`CREATE TABLE IF NOT EXISTS rules (key TEXT NOT NULL PRIMARY KEY, first_seen INTEGER NOT NULL,
		last_seen INTEGER NOT NULL, last_run TEXT NOT NULL, prev_seen INTEGER, prev_run TEXT,
		rule TEXT NOT NULL) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS verdicts (run TEXT NOT NULL, provider TEXT NOT NULL, target TEXT NOT NULL,
		status TEXT NOT NULL, score INTEGER, checked_at INTEGER NOT NULL, verdict TEXT NOT NULL,
		PRIMARY KEY (run, provider, target)) WITHOUT ROWID`,
	`PRAGMA user_version = 1`,
}

// openMigratedHistory writes a history file of an older schema version with stmts, opens
// it, which migrates it, and checks that it is of the current version and holds counts rows.
func openMigratedHistory(t *testing.T, stmts []string, counts map[string]int) *History {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range stmts {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	db.Close()
	h := openTestHistory(t, path)
	var version int
	if err := h.db.QueryRowContext(t.Context(), "PRAGMA user_version").Scan(&version); err != nil || version != historySchemaVersion {
		t.Errorf("user_version = %d, %v; want %d", version, err, historySchemaVersion)
	}
	if got := historyCounts(t, h); !reflect.DeepEqual(got, counts) {
		t.Errorf("rows after migration = %v, want %v", got, counts)
	}
	return h
}

func TestOpenHistoryMigratesVersion1(t *testing.T) {
	a := historyRuleFor(1, "203.0.113.0/24")
	b := historyRuleFor(2, "198.51.100.7/32")
	ruleJSON := func(r collector.Rule) string {
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	t1, t2 := historyT0.UnixNano(), historyT0.Add(time.Hour).UnixNano()
	stmts := append(slices.Clone(historySchemaV1),
		fmt.Sprintf(`INSERT INTO runs VALUES ('run-1', %d, %d, 1, 1), ('run-2', %d, NULL, 2, 1)`, t1, t1+1, t2),
		fmt.Sprintf(`INSERT INTO rules VALUES ('%s', %d, %d, 'run-2', %d, 'run-1', '%s'), ('%s', %d, %d, 'run-2', NULL, NULL, '%s')`,
			RuleKey(a), t1, t2, t1, ruleJSON(a), RuleKey(b), t2, t2, ruleJSON(b)),
		fmt.Sprintf(`INSERT INTO verdicts VALUES ('run-1', 'blocklist', '203.0.113.1', 'clean', NULL, %d, '{"provider":"blocklist","status":"clean"}'),
			('run-2', 'blocklist', '203.0.113.1', 'malicious', 3, %d, '{"provider":"blocklist","status":"malicious"}')`, t1, t2),
	)
	h := openMigratedHistory(t, stmts, map[string]int{"runs": 2, "rules": 2, "verdicts": 1})
	ctx := t.Context()
	var status, run string
	if err := h.db.QueryRowContext(ctx, "SELECT status, run FROM verdicts").Scan(&status, &run); err != nil || status != "malicious" || run != "run-2" {
		t.Errorf("verdict kept = %q of %q, %v; want the latest, malicious of run-2", status, run, err)
	}
	view, err := h.Record(ctx, "run-3", historyT0.Add(2*time.Hour), []collector.Rule{a}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if view.Previous != "run-2" || !view.FirstSeen[RuleKey(a)].Equal(historyT0) || len(view.Gone) != 1 || view.Gone[0].RuleID != b.ID {
		t.Errorf("Record after migration = %+v, want previous run-2, %s first seen %v, %s gone", view, a.ID, historyT0, b.ID)
	}
}

// historyField is a field, at any depth, of a type: set allocates the pointers on the way to
// it in v, a value of the type, and sets it to a value other than its zero if change is set.
type historyField struct {
	name string
	set  func(v reflect.Value, change bool)
}

// historyFields returns the fields of typ at any depth, and for each pointer on the way, the
// pointer itself (nil, or pointing to the zero value). A netip.Prefix or a time.Time is one
// field.
func historyFields(typ reflect.Type, name string) []historyField {
	switch {
	case typ.Kind() == reflect.Pointer:
		fields := []historyField{{name, func(v reflect.Value, change bool) {
			if change {
				v.Set(reflect.New(typ.Elem()))
			}
		}}}
		for _, f := range historyFields(typ.Elem(), name) {
			fields = append(fields, historyField{f.name, func(v reflect.Value, change bool) {
				v.Set(reflect.New(typ.Elem()))
				f.set(v.Elem(), change)
			}})
		}
		return fields
	case typ.Kind() == reflect.Struct && typ != reflect.TypeFor[netip.Prefix]() && typ != reflect.TypeFor[time.Time]():
		var fields []historyField
		for i := range typ.NumField() {
			for _, f := range historyFields(typ.Field(i).Type, name+"."+typ.Field(i).Name) {
				fields = append(fields, historyField{f.name, func(v reflect.Value, change bool) { f.set(v.Field(i), change) }})
			}
		}
		return fields
	}
	return []historyField{{name, func(v reflect.Value, change bool) {
		if change {
			v.Set(historyNonZero(typ))
		}
	}}}
}

// historyNonZero returns a value of typ other than its zero value.
func historyNonZero(typ reflect.Type) reflect.Value {
	v := reflect.New(typ).Elem()
	switch {
	case typ == reflect.TypeFor[netip.Prefix]():
		v.Set(reflect.ValueOf(netip.MustParsePrefix("192.0.2.0/24")))
	case typ == reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(historyT0))
	case typ.Kind() == reflect.String:
		v.SetString("x")
	case typ.Kind() == reflect.Bool:
		v.SetBool(true)
	case v.CanInt():
		v.SetInt(1)
	case typ.Kind() == reflect.Slice:
		v.Set(reflect.Append(v, historyNonZero(typ.Elem())))
	default:
		panic("no value for " + typ.String())
	}
	return v
}

// historyEachChange calls f with two values of T that differ in one field only, for each
// field of T at any depth, and the field's name.
func historyEachChange[T any](f func(name string, a, b *T)) {
	for _, field := range historyFields(reflect.TypeFor[T](), reflect.TypeFor[T]().Name()) {
		var a, b T
		field.set(reflect.ValueOf(&a).Elem(), false)
		field.set(reflect.ValueOf(&b).Elem(), true)
		f(field.name, &a, &b)
	}
}

// TestHistoryHashesEveryField: two rules, or two verdicts, that differ in any one field
// hash apart, but for a verdict's time of check and whether the cache answered, which are
// no change. A field added to collector.Rule or reputation.Verdict fails this test until
// the hash counts it.
func TestHistoryHashesEveryField(t *testing.T) {
	var f historyHasher
	n := 0
	historyEachChange(func(name string, a, b *collector.Rule) {
		n++
		if f.rule(a) == f.rule(b) {
			t.Errorf("two rules that differ in %s hash alike", name)
		}
	})
	historyEachChange(func(name string, a, b *reputation.Verdict) {
		n++
		same := name == "Verdict.CheckedAt" || name == "Verdict.Cached"
		if got := f.verdict(a, a.Target) == f.verdict(b, b.Target); got != same {
			t.Errorf("two verdicts that differ in %s hash alike: %v, want %v", name, got, same)
		}
	})
	if n < 30 {
		t.Errorf("%d fields compared, want every field of a rule and a verdict", n)
	}
	// A verdict's key counts its provider and target, and nothing else.
	v := reputation.Verdict{Provider: "blocklist", Status: reputation.Clean}
	target := reputation.AddressTarget(netip.MustParseAddr("192.0.2.1"))
	key := f.verdictKey(v.Provider, target)
	for _, other := range []uint64{
		f.verdictKey("abuseipdb", target),
		f.verdictKey(v.Provider, reputation.AddressTarget(netip.MustParseAddr("192.0.2.2"))),
		f.verdictKey(v.Provider, reputation.PrefixTarget(netip.MustParsePrefix("192.0.2.0/24"))),
	} {
		if other == key {
			t.Errorf("verdict keys of other providers or targets are alike")
		}
	}
}

func TestHistorySpansAt(t *testing.T) {
	type spans = []historySpan
	tests := []struct {
		name  string
		spans spans
		at    int
		seen  bool
		want  spans
	}{
		{"first sighting", nil, 3, true, spans{{3, 3}}},
		{"never seen", nil, 3, false, spans{}},
		{"extends a span", spans{{0, 2}}, 3, true, spans{{0, 3}}},
		{"starts a span earlier", spans{{4, 6}}, 3, true, spans{{3, 6}}},
		{"joins two spans", spans{{0, 2}, {4, 6}}, 3, true, spans{{0, 6}}},
		{"a span of its own", spans{{0, 1}, {5, 6}}, 3, true, spans{{0, 1}, {3, 3}, {5, 6}}},
		{"seen within a span", spans{{0, 6}}, 3, true, spans{{0, 6}}},
		{"splits a span", spans{{0, 6}}, 3, false, spans{{0, 2}, {4, 6}}},
		{"cuts a span's end", spans{{0, 3}}, 3, false, spans{{0, 2}}},
		{"cuts a span's start", spans{{3, 6}}, 3, false, spans{{4, 6}}},
		{"drops a span of one", spans{{1, 1}, {3, 3}, {5, 5}}, 3, false, spans{{1, 1}, {5, 5}}},
		{"not seen, no span there", spans{{0, 1}, {5, 6}}, 3, false, spans{{0, 1}, {5, 6}}},
		{"after forgotten runs", spans{{-1, 2}}, 0, false, spans{{-1, -1}, {1, 2}}},
	}
	for _, tt := range tests {
		if got := historySpansAt(tt.spans, tt.at, tt.seen); !slices.Equal(got, tt.want) {
			t.Errorf("%s: historySpansAt(%v, %d, %v) = %v, want %v", tt.name, tt.spans, tt.at, tt.seen, got, tt.want)
		}
	}
}

// historyModel is what a history is to hold and show, worked out plainly from every run
// recorded: the rules each run saw, each rule's first sighting, and the verdicts stored.
type historyModel struct {
	runs      map[string]*historyModelRun
	firstSeen map[string]time.Time
	verdicts  map[string][]historyModelVerdict // by provider and target
}

type historyModelRun struct {
	id    string
	start time.Time
	rules map[string]collector.Rule
}

// historyModelVerdict is a verdict stored: by which run, and what it said.
type historyModelVerdict struct {
	start  time.Time
	run    string
	status reputation.Status
}

func newHistoryModel() *historyModel {
	return &historyModel{runs: map[string]*historyModelRun{}, firstSeen: map[string]time.Time{}, verdicts: map[string][]historyModelVerdict{}}
}

// historyModelBefore reports whether the run (at, id) comes before the run (at2, id2).
func historyModelBefore(at time.Time, id string, at2 time.Time, id2 string) bool {
	return at.Before(at2) || (at.Equal(at2) && id < id2)
}

// view returns what recording the run (id, start) that saw rules shows.
func (m *historyModel) view(id string, start time.Time, rules []collector.Rule) *HistoryView {
	var prev *historyModelRun
	for _, r := range m.runs {
		if r.id != id && historyModelBefore(r.start, r.id, start, id) && (prev == nil || historyModelBefore(prev.start, prev.id, r.start, r.id)) {
			prev = r
		}
	}
	view := &HistoryView{FirstSeen: map[string]time.Time{}, New: map[string]bool{}}
	seen := historyModelRules(rules)
	for k := range seen {
		view.FirstSeen[k] = start
		if f, ok := m.firstSeen[k]; ok && f.Before(start) {
			view.FirstSeen[k] = f
		}
		if prev == nil {
			continue
		}
		if _, ok := prev.rules[k]; !ok {
			view.New[k] = true
		}
	}
	if prev == nil {
		return view
	}
	view.Previous = prev.id
	for _, k := range slices.Sorted(maps.Keys(prev.rules)) {
		if _, ok := seen[k]; !ok {
			r := prev.rules[k]
			view.Gone = append(view.Gone, GoneRule{RuleRef: refOf(&r), FirstSeen: m.firstSeen[k], LastSeen: prev.start})
		}
	}
	return view
}

func historyModelRules(rules []collector.Rule) map[string]collector.Rule {
	m := make(map[string]collector.Rule)
	for _, r := range rules {
		m[RuleKey(r)] = r
	}
	return m
}

// record records the run (id, start) that saw rules and got results.
func (m *historyModel) record(id string, start time.Time, rules []collector.Rule, results []reputation.Result) {
	run := &historyModelRun{id: id, start: start, rules: historyModelRules(rules)}
	m.runs[id] = run
	for k := range run.rules {
		if f, ok := m.firstSeen[k]; !ok || start.Before(f) {
			m.firstSeen[k] = start
		}
	}
	m.forgetRules()
	for key, stored := range m.verdicts {
		m.verdicts[key] = slices.DeleteFunc(stored, func(v historyModelVerdict) bool { return v.run == id })
	}
	for _, res := range results {
		for _, v := range res.Verdicts {
			key := v.Provider + " " + v.Target.String()
			stored := m.verdicts[key]
			// This run's own verdict, or else the latest before this run.
			var latest *historyModelVerdict
			for i := range stored {
				s := &stored[i]
				switch {
				case latest != nil && latest.run == id:
				case s.run == id:
					latest = s
				case historyModelBefore(s.start, s.run, start, id) && (latest == nil || historyModelBefore(latest.start, latest.run, s.start, s.run)):
					latest = s
				}
			}
			switch {
			case latest != nil && latest.status == v.Status:
			case latest != nil && latest.run == id:
				latest.status = v.Status
			default:
				m.verdicts[key] = append(stored, historyModelVerdict{start, id, v.Status})
			}
		}
	}
}

// forgetRules forgets the rules no run saw.
func (m *historyModel) forgetRules() {
	for k := range m.firstSeen {
		if !slices.ContainsFunc(slices.Collect(maps.Values(m.runs)), func(r *historyModelRun) bool { _, ok := r.rules[k]; return ok }) {
			delete(m.firstSeen, k)
		}
	}
}

// prune forgets all but the newest keep runs.
func (m *historyModel) prune(keep int) int {
	runs := slices.SortedFunc(maps.Values(m.runs), func(a, b *historyModelRun) int {
		return cmp.Or(a.start.Compare(b.start), strings.Compare(a.id, b.id))
	})
	if len(runs) <= keep {
		return 0
	}
	cut := runs[len(runs)-keep]
	for _, r := range runs[:len(runs)-keep] {
		delete(m.runs, r.id)
	}
	m.forgetRules()
	for key, stored := range m.verdicts {
		m.verdicts[key] = slices.DeleteFunc(stored, func(v historyModelVerdict) bool {
			// Replaced by a later one, no later than the cut.
			return slices.ContainsFunc(stored, func(w historyModelVerdict) bool {
				return historyModelBefore(v.start, v.run, w.start, w.run) && !historyModelBefore(cut.start, cut.id, w.start, w.run)
			})
		})
	}
	return len(runs) - keep
}

// storedVerdicts returns the verdicts stored, one a line, in order.
func (m *historyModel) storedVerdicts() string {
	var lines []string
	for key, stored := range m.verdicts {
		for _, v := range stored {
			lines = append(lines, fmt.Sprintf("%s %s %s", key, v.run, v.status))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// historyStoredVerdicts returns the verdicts h stores, as historyModel.storedVerdicts does,
// and checks that latest_verdicts holds the hash of the latest of each provider for each
// target.
func historyStoredVerdicts(t *testing.T, h *History) string {
	t.Helper()
	rows, err := h.db.QueryContext(t.Context(), "SELECT provider, target, run, status, hash FROM verdicts ORDER BY provider, target, started, run")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var lines []string
	latest := map[uint64]int64{}
	var f historyHasher
	for rows.Next() {
		var provider, target, run, status string
		var hash int64
		if err := rows.Scan(&provider, &target, &run, &status, &hash); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("%s %s %s %s", provider, target, run, status))
		tgt, err := reputation.ParseTarget(target)
		if err != nil {
			t.Fatal(err)
		}
		latest[f.verdictKey(provider, tgt)] = hash
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	tx, err := h.db.BeginTx(t.Context(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	got, err := historyLoadLatest(t.Context(), tx)
	if err != nil {
		t.Fatal(err)
	}
	if want := historyLatestOf(latest); !slices.Equal(got, want) {
		t.Errorf("latest_verdicts = %v, want %v", got, want)
	}
	var forgotten, want string
	err = tx.QueryRowContext(t.Context(), `SELECT
		(SELECT coalesce(group_concat(id, ' '), '') FROM (SELECT id FROM forgotten_runs ORDER BY id)),
		(SELECT coalesce(group_concat(run, ' '), '') FROM (SELECT DISTINCT run FROM verdicts WHERE run NOT IN (SELECT id FROM runs) ORDER BY run))`).Scan(&forgotten, &want)
	if err != nil {
		t.Fatal(err)
	}
	if forgotten != want {
		t.Errorf("forgotten_runs = %q, want the runs not stored whose verdicts are, %q", forgotten, want)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestHistoryMatchesModel records runs in any order, again, by Record and by Prepare and
// Commit with other runs committed in between, prunes now and then, and checks each view,
// the verdicts stored and latest_verdicts against historyModel.
func TestHistoryMatchesModel(t *testing.T) {
	var rules []collector.Rule
	for i := range 7 {
		rules = append(rules, historyRuleFor(i, fmt.Sprintf("192.0.2.%d/32", i)))
	}
	targets := []string{"198.51.100.1", "198.51.100.2", "2001:db8::/64"}
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 1))
		h := openTestHistory(t, filepath.Join(t.TempDir(), "state.db"))
		m := newHistoryModel()
		ctx := t.Context()
		starts := map[string]time.Time{}
		// next returns a run to record: a new one, or now and then one recorded before.
		next := func() (string, time.Time, []collector.Rule, []reputation.Result) {
			id := fmt.Sprintf("run-%d", len(starts))
			if ids := slices.Sorted(maps.Keys(m.runs)); len(ids) > 0 && rng.IntN(4) == 0 {
				id = ids[rng.IntN(len(ids))]
			}
			if _, ok := starts[id]; !ok {
				starts[id] = historyT0.Add(time.Duration(rng.IntN(8)) * time.Hour)
			}
			var seen []collector.Rule
			for _, r := range rules {
				if rng.IntN(3) > 0 {
					seen = append(seen, r)
				}
			}
			var results []reputation.Result
			for _, s := range targets {
				if rng.IntN(4) > 0 {
					status := []reputation.Status{reputation.Clean, reputation.Malicious}[rng.IntN(2)]
					results = append(results, historyResults(starts[id], s)...)
					results[len(results)-1].Verdicts = []reputation.Verdict{{Provider: "blocklist", Target: results[len(results)-1].Target, Status: status, CheckedAt: starts[id]}}
				}
			}
			return id, starts[id], seen, results
		}
		check := func(step int, what string, got, want *HistoryView) {
			t.Helper()
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d, step %d, %s = %+v, want %+v", seed, step, what, got, want)
			}
		}
		for step := range 14 {
			id, start, seen, results := next()
			switch rng.IntN(5) {
			case 0: // prepared, another run committed, then committed
				view, pending, err := h.Prepare(ctx, id, start, seen, results)
				if err != nil {
					t.Fatal(err)
				}
				check(step, "Prepare("+id+")", view, m.view(id, start, seen))
				if id2, start2, seen2, results2 := next(); id2 != id {
					view, err := h.Record(ctx, id2, start2, seen2, results2)
					if err != nil {
						t.Fatal(err)
					}
					check(step, "Record("+id2+") between", view, m.view(id2, start2, seen2))
					m.record(id2, start2, seen2, results2)
				}
				if err := pending.Commit(ctx, start.Add(time.Minute)); err != nil {
					t.Fatal(err)
				}
			case 1: // pruned first
				keep := 2 + rng.IntN(3)
				n, err := h.Prune(ctx, keep)
				if want := m.prune(keep); err != nil || n != want {
					t.Fatalf("seed %d, step %d: Prune(%d) = %d, %v; want %d", seed, step, keep, n, err, want)
				}
				fallthrough
			default:
				view, err := h.Record(ctx, id, start, seen, results)
				if err != nil {
					t.Fatal(err)
				}
				check(step, "Record("+id+")", view, m.view(id, start, seen))
			}
			m.record(id, start, seen, results)
			if got, want := historyStoredVerdicts(t, h), m.storedVerdicts(); got != want {
				t.Fatalf("seed %d, step %d: verdicts stored:\n%s\nwant\n%s", seed, step, got, want)
			}
		}
	}
}

// historySchemaV2 are the statements of schema version 2, as sgvet created it.
var historySchemaV2 = []string{
	`CREATE TABLE IF NOT EXISTS runs (id TEXT NOT NULL PRIMARY KEY, started INTEGER NOT NULL, finished INTEGER,
		rules INTEGER NOT NULL DEFAULT 0, verdicts INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID`,
	`CREATE INDEX IF NOT EXISTS runs_started ON runs (started, id)`,
	`CREATE TABLE IF NOT EXISTS rules (key TEXT NOT NULL PRIMARY KEY, first_seen INTEGER NOT NULL,
		last_seen INTEGER NOT NULL, last_run TEXT NOT NULL, prev_seen INTEGER, prev_run TEXT,
		hash INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS rule_data (key TEXT NOT NULL PRIMARY KEY, rule TEXT NOT NULL) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS verdicts (provider TEXT NOT NULL, target TEXT NOT NULL, started INTEGER NOT NULL,
		run TEXT NOT NULL, status TEXT NOT NULL, score INTEGER, checked_at INTEGER NOT NULL,
		hash INTEGER NOT NULL DEFAULT 0, verdict TEXT NOT NULL, PRIMARY KEY (provider, target, started, run)) WITHOUT ROWID`,
	`CREATE INDEX IF NOT EXISTS verdicts_run ON verdicts (run)`,
	`PRAGMA user_version = 2`,
}

func TestOpenHistoryMigratesVersion2(t *testing.T) {
	// a was seen by the last two runs, b by the first and the last, c by the first two, d
	// by the last only.
	a := historyRuleFor(1, "203.0.113.0/24")
	b := historyRuleFor(2, "198.51.100.7/32")
	c := historyRuleFor(3, "192.0.2.0/28")
	d := historyRuleFor(4, "192.0.2.64/28")
	t1, t2, t3, t4 := historyT0, historyT0.Add(time.Hour), historyT0.Add(2*time.Hour), historyT0.Add(3*time.Hour)
	stmts := slices.Clone(historySchemaV2)
	for _, run := range []struct {
		id string
		at time.Time
	}{{"run-1", t1}, {"run-2", t2}, {"run-3", t3}} {
		stmts = append(stmts, fmt.Sprintf(`INSERT INTO runs VALUES ('%s', %d, %d, 2, 1)`, run.id, run.at.UnixNano(), run.at.UnixNano()+1))
	}
	for _, r := range []struct {
		rule            collector.Rule
		first, last     time.Time
		lastRun         string
		prevSeen, prevR string
	}{
		{a, t1, t3, "run-3", fmt.Sprint(t2.UnixNano()), "'run-2'"},
		{b, t1, t3, "run-3", fmt.Sprint(t1.UnixNano()), "'run-1'"},
		{c, t1, t2, "run-2", fmt.Sprint(t1.UnixNano()), "'run-1'"},
		{d, t3, t3, "run-3", "NULL", "NULL"},
	} {
		data, err := json.Marshal(r.rule)
		if err != nil {
			t.Fatal(err)
		}
		stmts = append(stmts,
			fmt.Sprintf(`INSERT INTO rules VALUES ('%s', %d, %d, '%s', %s, %s, 12345)`,
				RuleKey(r.rule), r.first.UnixNano(), r.last.UnixNano(), r.lastRun, r.prevSeen, r.prevR),
			fmt.Sprintf(`INSERT INTO rule_data VALUES ('%s', '%s')`, RuleKey(r.rule), data))
	}
	stmts = append(stmts, fmt.Sprintf(`INSERT INTO verdicts VALUES
		('blocklist', '203.0.113.1', %d, 'run-1', 'clean', NULL, %d, 777, '{"provider":"blocklist","verdict":"clean"}'),
		('blocklist', '203.0.113.1', %d, 'run-3', 'malicious', 3, %d, 778, '{"provider":"blocklist","verdict":"malicious"}')`,
		t1.UnixNano(), t1.UnixNano(), t3.UnixNano(), t3.UnixNano()))
	h := openMigratedHistory(t, stmts, map[string]int{"runs": 3, "rules": 4, "verdicts": 2})
	ctx := t.Context()

	// The next run sees what run-3 had: a and d; b and d are gone, c is back.
	results := historyResults(t4, "203.0.113.1")
	results[0].Verdicts = results[0].Verdicts[:1]
	view, err := h.Record(ctx, "run-4", t4, []collector.Rule{a, c}, results)
	if err != nil {
		t.Fatal(err)
	}
	wantView := &HistoryView{
		Previous:  "run-3",
		FirstSeen: map[string]time.Time{RuleKey(a): t1, RuleKey(c): t1},
		New:       map[string]bool{RuleKey(c): true},
		Gone: []GoneRule{
			{RuleRef: refOf(&b), FirstSeen: t1, LastSeen: t3},
			{RuleRef: refOf(&d), FirstSeen: t3, LastSeen: t3},
		},
	}
	if !reflect.DeepEqual(view, wantView) {
		t.Errorf("Record after migration = %+v, want %+v", view, wantView)
	}
	// A run recorded late, between run-2 and run-3, sees what run-2 had: a and c, and
	// what version 2 knew of b, seen by run-1 and run-3 but not by run-2.
	view, err = h.Record(ctx, "run-2b", t2.Add(time.Minute), []collector.Rule{b}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if view.Previous != "run-2" || !reflect.DeepEqual(sortedKeys(view.New), historyKeys(b)) || len(view.Gone) != 2 ||
		view.Gone[0].RuleID != a.ID || view.Gone[1].RuleID != c.ID || !view.Gone[1].LastSeen.Equal(t2) {
		t.Errorf("late run after migration = %+v, want previous run-2, %s new, %s and %s gone", view, b.ID, a.ID, c.ID)
	}

	// The latest verdicts were kept; version 3 knows none of their hashes, so run-4 stored
	// its verdict again, the same as the latest. The run after it stores nothing.
	var status, run string
	if err := h.db.QueryRowContext(ctx, "SELECT status, run FROM verdicts WHERE run <> 'run-4' ORDER BY started DESC").Scan(&status, &run); err != nil || status != "malicious" || run != "run-3" {
		t.Errorf("latest verdict kept = %q of %q, %v; want malicious of run-3", status, run, err)
	}
	if _, err := h.Record(ctx, "run-5", t4.Add(time.Hour), []collector.Rule{a, c}, results); err != nil {
		t.Fatal(err)
	}
	if got := historyCounts(t, h)["verdicts"]; got != 3 {
		t.Errorf("%d verdicts after two runs, want 3", got)
	}
}

// TestHistoryUnchangedRunWritesNoRules: a run that sees what the run before it saw writes
// no row but its own; one that changes three rules writes their three rows of rules and
// the JSON of the two it saw; one that sees a rule again writes its row and the span that
// ended.
func TestHistoryUnchangedRunWritesNoRules(t *testing.T) {
	rules, results := historyBenchEstate(300, 300)
	h := openTestHistory(t, filepath.Join(t.TempDir(), "state.db"))
	ctx := t.Context()
	record := func(n int, rules []collector.Rule) {
		t.Helper()
		at := historyT0.Add(time.Duration(n) * time.Hour)
		for i := range results {
			results[i].Verdicts[0].CheckedAt = at
		}
		_, pending, err := h.Prepare(ctx, "run-"+strconv.Itoa(n), at, rules, results)
		if err != nil {
			t.Fatal(err)
		}
		if err := pending.Commit(ctx, at.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	tables := []string{"rules", "spans", "verdicts", "latest_verdicts"}
	record(1, rules)
	record(2, rules)
	before := historyDumpTables(t, h, tables...)
	record(3, rules)
	if got := historyDumpTables(t, h, tables...); got != before {
		t.Errorf("an unchanged run changed the history:\n%s\nwant\n%s", got, before)
	}

	// Rule 0 goes, rule 1 changes, a rule comes; then rule 0 comes back.
	changed := slices.Clone(rules)
	changed[0] = historyRuleFor(1000, "192.0.2.1/32")
	changed[1].Description = "changed"
	record(4, changed)
	after := historyDumpTables(t, h, tables...)
	if n := historyDiffLines(before, after); n != 3 {
		t.Errorf("a run that changed three rules changed %d rows, want 3:\n%s", n, after)
	}
	record(5, append(changed, rules[0]))
	if n := historyDiffLines(after, historyDumpTables(t, h, tables...)); n != 2 {
		t.Errorf("a run that saw a rule again changed %d rows, want 2: its span and an earlier one", n)
	}
}

// historyDiffLines returns how many lines of b are not lines of a.
func historyDiffLines(a, b string) int {
	lines := strings.Split(a, "\n")
	n := 0
	for _, l := range strings.Split(b, "\n") {
		if !slices.Contains(lines, l) {
			n++
		}
	}
	return n
}

func TestHistoryGoneRuleFormats(t *testing.T) {
	plain := historyRuleFor(1, "203.0.113.1/32")
	listed := historyRuleFor(2, "203.0.113.2/32")
	listed.CIDR = netip.Prefix{}
	listed.PrefixList = &collector.PrefixListRef{ID: "pl-1", Name: "offices", Owner: "444455556666", EntryDescription: "paris"}
	invalid := historyRuleFor(3, "203.0.113.3/32")
	invalid.CIDR = netip.Prefix{}
	invalid.Invalid = &collector.Invalid{Field: collector.FieldCIDR, Text: "300.0.0.1/32", Reason: "bad address"}
	piped := historyRuleFor(4, "203.0.113.4/32")
	piped.Account, piped.Region, piped.GroupName = "a|b", "", ""
	allTraffic := historyRuleFor(5, "203.0.113.5/32")
	allTraffic.Protocol, allTraffic.FromPort, allTraffic.ToPort, allTraffic.Description = "all", -1, -1, ""
	outside := false
	otherAccount := historyRuleFor(6, "203.0.113.6/32")
	otherAccount.CIDR = netip.Prefix{}
	otherAccount.ReferencedGroup = &collector.GroupRef{GroupID: "sg-vendor", Account: "999988887777", InOrganization: &outside}

	for _, r := range []collector.Rule{plain, listed, invalid, piped, allTraffic, otherAccount} {
		k := RuleKey(r)
		want := GoneRule{RuleRef: refOf(&r)}
		data, err := historyRuleJSON(k, &r)
		if err != nil {
			t.Fatal(err)
		}
		if got := historyGoneRule(k, data); !reflect.DeepEqual(got, want) {
			t.Errorf("rule %s stored as %s = %+v, want %+v", r.ID, data, got, want)
		}
		// Versions 1 and 2 stored the JSON of the whole rule.
		whole, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		if got := historyGoneRule(k, whole); !reflect.DeepEqual(got, want) {
			t.Errorf("rule %s stored whole = %+v, want %+v", r.ID, got, want)
		}
	}
	if data, _ := historyRuleJSON(RuleKey(plain), &plain); len(data) > 70 {
		t.Errorf("rule stored in %d bytes, %s; want at most 70", len(data), data)
	}
	// With nothing stored, the key says what it can.
	want := RuleRef{Account: plain.Account, Region: plain.Region, GroupID: plain.GroupID, RuleID: plain.ID, CIDR: plain.Target()}
	if got := historyGoneRule(RuleKey(plain), nil); got.RuleRef != want {
		t.Errorf("rule with nothing stored = %+v, want %+v", got.RuleRef, want)
	}
}

// historyReadVerdict rebuilds a verdict from the columns of its row and its JSON, as
// historySchema says a reader does.
func historyReadVerdict(provider, target, status string, score sql.NullInt64, checkedAt int64, data string) (reputation.Verdict, error) {
	v := reputation.Verdict{CheckedAt: time.Unix(0, checkedAt).UTC()}
	if err := json.Unmarshal([]byte(data), &v); err != nil {
		return v, err
	}
	t, err := reputation.ParseTarget(target)
	if err != nil {
		return v, err
	}
	v.Provider, v.Target, v.Status, v.Score = provider, t, reputation.Status(status), nil
	if score.Valid {
		n := int(score.Int64)
		v.Score = &n
	}
	return v, nil
}

func TestHistoryVerdictsRebuild(t *testing.T) {
	h := openTestHistory(t, filepath.Join(t.TempDir(), "state.db"))
	ctx := t.Context()
	addr := reputation.AddressTarget(netip.MustParseAddr("203.0.113.1"))
	network := reputation.Target{Prefix: netip.MustParsePrefix("203.0.113.0/24")}
	three := 3
	want := []reputation.Verdict{
		{Provider: "abuseipdb", Target: addr, Status: reputation.Malicious, Score: &three, Categories: []string{"botnet", "scanner"},
			Country: "FR", Evidence: "reported 3 times", CheckedAt: historyT0, Cached: true},
		{Provider: "greynoise", Target: network, Status: reputation.Unknown, Reason: "quota exhausted"},
		{Provider: "metadefender", Target: addr, Status: reputation.Clean, CheckedAt: historyT0.Add(time.Second)},
	}
	results := []reputation.Result{{Target: addr, Verdicts: slices.Clone(want)}}
	// The second verdict has no target of its own: it is the result's.
	results[0].Verdicts[1].Target = reputation.Target{}
	results[0].Target = network
	results[0].Verdicts[0].Target, results[0].Verdicts[2].Target = addr, addr
	if _, err := h.Record(ctx, "run-1", historyT0, nil, results); err != nil {
		t.Fatal(err)
	}
	rows, err := h.db.QueryContext(ctx, "SELECT provider, target, status, score, checked_at, verdict FROM verdicts ORDER BY provider")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []reputation.Verdict
	for rows.Next() {
		var provider, target, status, data string
		var score sql.NullInt64
		var checkedAt int64
		if err := rows.Scan(&provider, &target, &status, &score, &checkedAt, &data); err != nil {
			t.Fatal(err)
		}
		v, err := historyReadVerdict(provider, target, status, score, checkedAt, data)
		if err != nil {
			t.Fatalf("verdict of %s: %v", provider, err)
		}
		got = append(got, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("verdicts rebuilt from their rows = %+v, want %+v", got, want)
	}
}
