package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sgvet/sgvet/reputation"
)

func TestWriteOutput(t *testing.T) {
	write := func(text string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, text); return err }
	}
	// fails after writing part of the report, as a full disk does.
	fails := func(w io.Writer) error {
		io.WriteString(w, "half a rep")
		return fmt.Errorf("write: %w", syscall.ENOSPC)
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		write   func(io.Writer) error
		want    string // the file afterwards
		wantErr string
	}{
		{"complete", context.Background(), write("new report\n"), "new report\n", ""},
		{"disk full", context.Background(), fails, "previous report\n", "no space left on device"},
		{"interrupted", canceled, write("new report\n"), "previous report\n", "context canceled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "report.json")
			if err := os.WriteFile(out, []byte("previous report\n"), 0o640); err != nil {
				t.Fatal(err)
			}
			err := writeOutput(tc.ctx, out, nil, tc.write)
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("writeOutput = %v, want %q", err, tc.wantErr)
			}
			if data, _ := os.ReadFile(out); string(data) != tc.want {
				t.Errorf("file holds %q, want %q", data, tc.want)
			}
			if info, _ := os.Stat(out); info.Mode().Perm() != 0o640 {
				t.Errorf("mode %v, want the previous file's 0640", info.Mode().Perm())
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("files left in the folder: %v", entries)
			}
		})
	}
}

func TestWriteOutputFollowsLinksAndDevices(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "reports", "latest.json")
	if err := os.MkdirAll(filepath.Dir(real), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(real, []byte("old"), 0o600)
	link := filepath.Join(dir, "report.json")
	if err := os.Symlink(real, link); err != nil {
		t.Skip(err)
	}
	err := writeOutput(context.Background(), link, nil, func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err })
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(real); string(data) != "new" {
		t.Errorf("the link's target holds %q, want new", data)
	}
	if info, err := os.Lstat(link); err != nil || info.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", info.Mode(), err)
	}
	if _, err := os.Stat(os.DevNull); err == nil {
		if err := writeOutput(context.Background(), os.DevNull, nil, func(w io.Writer) error { _, err := io.WriteString(w, "x"); return err }); err != nil {
			t.Errorf("--output %s: %v", os.DevNull, err)
		}
	}
	if err := checkOutput(dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("checkOutput(a folder) = %v", err)
	}
	var ee *exitError
	if err := checkOutput(filepath.Join(dir, "none", "r.json")); !errors.As(err, &ee) || ee.code != exitUsage {
		t.Errorf("checkOutput(missing folder) = %v, want a usage error", err)
	}
}

// TestOutputNewFileMode: a new report is readable as a shell redirection would leave it.
func TestOutputNewFileMode(t *testing.T) {
	out := filepath.Join(t.TempDir(), "r.txt")
	if err := writeOutput(context.Background(), out, nil, func(w io.Writer) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(out); err != nil || info.Mode().Perm() != 0o644 {
		t.Errorf("mode %v (%v), want 0644", info.Mode().Perm(), err)
	}
}

// TestTablesDropControlCharacters: a group id or name with a terminal escape or a
// bidirectional override prints neither.
func TestTablesDropControlCharacters(t *testing.T) {
	isolateAWS(t)
	in := writeFile(t, "groups.json", `{"SecurityGroups":[{"GroupId":"sg-1\u001b[2J\u001b]0;owned\u0007","GroupName":"web\u202eexe.txt","VpcId":"vpc-\u2066x",
		"IpPermissions":[{"IpProtocol":"tcp","FromPort":22,"ToPort":22,"IpRanges":[{"CidrIp":"81.2.69.142/32","Description":"a\u202eb"}]}],"IpPermissionsEgress":[]}]}`)
	res := sgvet(t, "", "groups", "--input", in)
	if res.code != exitOK {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	for _, bad := range []string{"\x1b", "\x07", "\u202e", "\u2066"} {
		if strings.Contains(res.stdout, bad) {
			t.Errorf("groups table carries %q:\n%q", bad, res.stdout)
		}
	}
	if !strings.Contains(res.stdout, "sg-1 [2J ]0;owned") {
		t.Errorf("group id not shown with spaces for control characters:\n%s", res.stdout)
	}
}

// TestWriteOutputStopsOnSignal: a signal while the report is being written stops the
// writing at the next block, and the previous report stays; on stdout too.
func TestWriteOutputStopsOnSignal(t *testing.T) {
	out := filepath.Join(t.TempDir(), "report.json")
	os.WriteFile(out, []byte("previous"), 0o600)
	for _, target := range []string{out, ""} {
		ctx, cancel := context.WithCancel(context.Background())
		var stdout strings.Builder
		written := 0
		err := writeOutput(ctx, target, &stdout, func(w io.Writer) error {
			block := strings.Repeat("x", 1024)
			for i := range 1024 {
				if i == 200 {
					cancel()
				}
				if _, err := io.WriteString(w, block); err != nil {
					return err
				}
				written++
			}
			return nil
		})
		if !errors.Is(err, context.Canceled) || written == 1024 {
			t.Errorf("--output %q: %v after %d blocks, want context.Canceled before the end", target, err, written)
		}
		if stdout.Len() > 300*1024 {
			t.Errorf("stdout took %d bytes after the signal", stdout.Len())
		}
	}
	if data, _ := os.ReadFile(out); string(data) != "previous" {
		t.Errorf("report changed: %.40q", data)
	}
}

func TestLookupTableDropsControlCharacters(t *testing.T) {
	target, err := reputation.ParseTarget("85.25.199.246")
	if err != nil {
		t.Fatal(err)
	}
	results := []reputation.Result{{Target: target, Verdicts: []reputation.Verdict{{
		Provider: "greynoise", Status: reputation.Malicious,
		Categories: []string{"scan\u202ener"}, Evidence: "name: evil\x1b[31mcorp\u2067",
	}}}}
	var b strings.Builder
	if err := writeLookupTable(&b, results); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(b.String(), "\x1b\u202e\u2067") {
		t.Errorf("lookup table carries control characters: %q", b.String())
	}
}

// TestTerminalWidthPiped: COLUMNS sets the width the table wraps to even when stdout is
// not a terminal, since the table wraps rather than cuts.
func TestTerminalWidthPiped(t *testing.T) {
	for _, tt := range []struct {
		columns string
		want    int
	}{
		{"", 0},
		{"200", 200},
		{"80", 80},
		{"12", 0},
		{"wide", 0},
	} {
		t.Run("COLUMNS="+tt.columns, func(t *testing.T) {
			t.Setenv("COLUMNS", tt.columns)
			if got := terminalWidth(new(bytes.Buffer)); got != tt.want {
				t.Errorf("terminalWidth(pipe) with COLUMNS=%q = %d, want %d", tt.columns, got, tt.want)
			}
		})
	}
}

// TestLookupTableKeepsEvidenceWhole: the table cuts no evidence, however long.
func TestLookupTableKeepsEvidenceWhole(t *testing.T) {
	target, err := reputation.ParseTarget("85.25.199.246")
	if err != nil {
		t.Fatal(err)
	}
	evidence := "listed by " + strings.Repeat("source, ", 40) + "see https://example.com/results/85.25.199.246"
	var b strings.Builder
	results := []reputation.Result{{Target: target, Verdicts: []reputation.Verdict{{Provider: "metadefender", Status: reputation.Malicious, Evidence: evidence}}}}
	if err := writeLookupTable(&b, results); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), evidence) || strings.Contains(b.String(), "…") {
		t.Errorf("lookup table cut the evidence:\n%s", b.String())
	}
}
