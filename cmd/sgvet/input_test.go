package main

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

func TestBoundedReader(t *testing.T) {
	tests := []struct {
		size  int
		limit byteSize
		err   error
	}{
		{10, 10, nil},
		{11, 10, errTooLarge},
		{0, 1, nil},
		{1 << 20, 1 << 20, nil},
		{1<<20 + 1, 1 << 20, errTooLarge},
	}
	for _, tc := range tests {
		data, err := io.ReadAll(newBoundedReader(strings.NewReader(strings.Repeat("x", tc.size)), tc.limit))
		if !errors.Is(err, tc.err) || (err == nil && len(data) != tc.size) || len(data) > int(tc.limit)+1 {
			t.Errorf("%d bytes, limit %d: %d bytes, %v; want %v", tc.size, tc.limit, len(data), err, tc.err)
		}
	}
}

// endless is an input that never ends, as a runaway pipe: its line over and over.
type endless struct{ line string }

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = e.line[i%len(e.line)]
	}
	return len(p), nil
}

func TestInputIsBounded(t *testing.T) {
	isolateAWS(t)
	isolateProviders(t)
	big := writeFile(t, "big.json", `{"SecurityGroups":[`+strings.Repeat(`{"GroupId":"sg-1"},`, 10000)+`{"GroupId":"sg-2"}]}`)
	const tooLarge = "larger than max_input_size"
	tests := []struct {
		name  string
		stdin io.Reader
		args  []string
		want  string
	}{
		{"file over the flag's limit", nil, []string{"groups", "-i", big, "--max-input-size", "64KiB"}, "--input " + big + " (190039 bytes): " + tooLarge + ", 64KiB"},
		{"file over the file's limit", nil, []string{"groups", "-i", big, "--config", writeFile(t, "c.yaml", "max_input_size: 100KB\n")}, tooLarge + ", 100KB"},
		{"endless pipe", endless{`{"GroupId":"sg-1"},`}, []string{"groups", "-i", "-", "--max-input-size", "1MiB"}, "--input -: " + tooLarge + ", 1MiB"},
		{"endless JSON pipe", io.MultiReader(strings.NewReader(`{"SecurityGroups":[`), endless{`{"GroupId":"sg-1"},`}), []string{"audit", "-i", "-", "--max-input-size", "1MiB"}, "--input -: " + tooLarge},
		{"endless lookup", endless{"8.8.8.8\n"}, []string{"lookup", "-", "--max-input-size", "1MiB"}, "lookup -: " + tooLarge},
		{"bad size", nil, []string{"groups", "--max-input-size", "lots"}, `--max-input-size: "lots"`},
		{"zero size", nil, []string{"groups", "--max-input-size", "0"}, "max_input_size (--max-input-size) must be between 1B and 64GiB, not 0B"},
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		tests = append(tests,
			struct {
				name  string
				stdin io.Reader
				args  []string
				want  string
			}{"device", nil, []string{"groups", "-i", "/dev/zero"}, "/dev/zero:1:1: invalid character"},
			struct {
				name  string
				stdin io.Reader
				args  []string
				want  string
			}{"config device", nil, []string{"groups", "-c", "/dev/zero"}, "--config /dev/zero: larger than 1MiB"})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			stdin := tc.stdin
			if stdin == nil {
				stdin = strings.NewReader("")
			}
			err := run(t.Context(), tc.args, stdin, &stdout, &stderr)
			code := exitCode(err, nil, &stderr)
			if code != exitUsage || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("sgvet %q: exit %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), exitUsage, tc.want)
			}
		})
	}
	// Within the limit, the same file is read.
	if res := sgvet(t, "", "groups", "-i", big, "--max-input-size", "1MiB"); res.code != exitOK {
		t.Errorf("within the limit: exit %d, stderr %q", res.code, res.stderr)
	}
}
