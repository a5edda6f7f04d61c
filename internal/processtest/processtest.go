// Package processtest runs copies of a test binary as separate processes that start their
// work at the same moment, to test what several processes do to one file at once.
//
// The test starts them with Run; each copy runs a test function that calls Wait before its
// work and prints its result to standard output.
package processtest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Run starts n copies of the test binary, each running only the test named test with the
// environment of this process plus env(i). Once every copy has said it is ready (Wait), it
// lets them all go at once, and returns what each printed afterwards, trimmed. A copy that
// fails, or that mentions a locked database on its standard error, fails t. With -short, Run
// skips t.
func Run(t *testing.T, n int, test string, env func(i int) []string) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts processes")
	}
	type copy struct {
		cmd    *exec.Cmd
		stdin  io.WriteCloser
		stdout *bufio.Reader
		stderr strings.Builder
	}
	copies := make([]*copy, n)
	for i := range copies {
		c := &copy{cmd: exec.CommandContext(t.Context(), os.Args[0], "-test.run=^"+test+"$")}
		c.cmd.Env = append(os.Environ(), env(i)...)
		c.cmd.Stderr = &c.stderr
		var err error
		if c.stdin, err = c.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		stdout, err := c.cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		c.stdout = bufio.NewReader(stdout)
		if err := c.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		copies[i] = c
	}
	for i, c := range copies {
		if line, err := c.stdout.ReadString('\n'); line != "ready\n" {
			c.stdin.Close()
			c.cmd.Wait()
			t.Fatalf("process %d said %q, %v: %s", i, line, err, c.stderr.String())
		}
	}
	for _, c := range copies {
		c.stdin.Close()
	}
	out := make([]string, n)
	for i, c := range copies {
		rest, err := io.ReadAll(c.stdout)
		if err != nil {
			t.Errorf("process %d: %v", i, err)
		}
		if err := c.cmd.Wait(); err != nil {
			t.Errorf("process %d: %v\n%s", i, err, c.stderr.String())
		}
		if strings.Contains(c.stderr.String(), "locked") {
			t.Errorf("process %d: %s", i, c.stderr.String())
		}
		out[i] = strings.TrimSpace(string(rest))
	}
	return out
}

// Wait, in a copy Run started, says it is ready and waits until Run lets every copy go.
func Wait() error {
	fmt.Println("ready")
	_, err := io.Copy(io.Discard, os.Stdin)
	return err
}
