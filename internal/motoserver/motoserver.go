// Package motoserver starts and stops moto_server, the AWS emulator, for tests.
//
// Each test package starts one server from its TestMain:
//
//	var moto *motoserver.Server
//
//	func TestMain(m *testing.M) { os.Exit(motoserver.Main(m, &moto)) }
//
// and each test that needs it calls motoserver.Require(t, moto), which skips
// the test when moto_server is not installed and otherwise wipes the
// emulator's state. The server listens on 127.0.0.1 only, and the harness
// sends traffic to loopback only.
package motoserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ErrNotInstalled is returned by Start when moto_server is not on PATH.
var ErrNotInstalled = errors.New("motoserver: moto_server is not on PATH (install it with: pip install 'moto[server]')")

const (
	binary = "moto_server"
	// startTimeout bounds the wait for a server that is running but not yet answering.
	// Starting the Python interpreter and moto can take a long time on a busy machine;
	// the bound only keeps a server that never answers from hanging the tests.
	startTimeout = 2 * time.Minute
	stopGrace    = 5 * time.Second
	// pipeGrace is how long Wait keeps reading the output pipe after the process has
	// exited, should anything else hold it open.
	pipeGrace = time.Minute
	tailSize  = 8 << 10
)

// Server is a running moto_server on a loopback port.
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:PORT. Point the AWS
	// SDK at it (BaseEndpoint) or use Env for child processes.
	URL string

	cmd    *exec.Cmd
	out    *output
	client *http.Client
	done   chan struct{} // closed once the process has been waited for
	err    error         // cmd.Wait's result, valid after done is closed

	// mu is held while reaping the process and while signalling its
	// group, so the group is never signalled after the pid is released.
	mu     sync.Mutex
	reaped bool

	stopOnce sync.Once
	stopErr  error
}

// Start launches moto_server on 127.0.0.1 with a free port chosen by moto
// (-p 0), waits until GET /moto-api/ answers, and returns it. It waits at
// most 2 minutes, and no longer than ctx allows; should the process exit
// first, Start returns at once with its output. The process runs in its own
// process group; its output is drained in the background, and the last few
// KB are kept for error messages.
func Start(ctx context.Context) (*Server, error) {
	path, err := exec.LookPath(binary)
	if err != nil {
		return nil, ErrNotInstalled
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()

	out := newOutput()
	cmd := exec.Command(path, "-H", "127.0.0.1", "-p", "0")
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	// Should anything else hold the output pipe open after the process
	// exits, don't let Wait hang on it.
	cmd.WaitDelay = pipeGrace
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("motoserver: starting %s: %w", path, err)
	}
	s := &Server{
		cmd: cmd,
		out: out,
		// No timeout of its own: every request carries its caller's context.
		// Never go through a proxy: the server is on loopback.
		client: &http.Client{Transport: &http.Transport{Proxy: nil}},
		done:   make(chan struct{}),
	}
	go func() {
		if waitExited(cmd.Process.Pid) {
			// It has exited but is not reaped: its pid is still ours.
			s.mu.Lock()
			s.err = cmd.Wait()
		} else {
			err := cmd.Wait()
			s.mu.Lock()
			s.err = err
		}
		s.reaped = true
		s.mu.Unlock()
		close(s.done)
	}()

	if err := s.waitReady(ctx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// waitReady waits for the "Running on" line, then polls GET /moto-api/.
func (s *Server) waitReady(ctx context.Context) error {
	select {
	case s.URL = <-s.out.url:
	case <-s.done:
		return s.exitedEarly()
	case <-ctx.Done():
		return fmt.Errorf("motoserver: moto_server did not report its address: %w\n%s", ctx.Err(), s.out.tail())
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.ready(ctx) {
			return nil
		}
		select {
		case <-tick.C:
		case <-s.done:
			return s.exitedEarly()
		case <-ctx.Done():
			return fmt.Errorf("motoserver: %s/moto-api/ did not answer: %w\n%s", s.URL, ctx.Err(), s.out.tail())
		}
	}
}

func (s *Server) ready(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/moto-api/", nil)
	if err != nil {
		return false
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (s *Server) exitedEarly() error {
	return fmt.Errorf("motoserver: moto_server exited early (%v)\n%s", s.err, s.out.tail())
}

// Pid returns the server's process id (also its process group id).
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Reset wipes the emulator's state (POST /moto-api/reset). It waits for the
// answer as long as ctx allows.
func (s *Server) Reset(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/moto-api/reset", nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("motoserver: reset: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("motoserver: reset: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

// Env returns the environment variables (KEY=VALUE) a child process, such
// as the aws CLI or a binary under test, needs to talk to this server with
// dummy credentials. Append them to os.Environ().
func (s *Server) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + s.URL,
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_MAX_ATTEMPTS=1",
	}
}

// Stop ends the server by its process id: SIGTERM to its process group,
// then SIGKILL after a grace period, and waits for it. It is safe to call
// more than once; later calls return the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	defer s.client.CloseIdleConnections()
	select {
	case <-s.done:
		// It exited by itself; report how.
		if s.err != nil {
			return fmt.Errorf("motoserver: moto_server had exited: %v\n%s", s.err, s.out.tail())
		}
		return nil
	default:
	}
	s.signalGroup(syscall.SIGTERM)
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		s.signalGroup(syscall.SIGKILL)
		<-s.done
	}
	return nil
}

// signalGroup sends sig to the server's process group, whose id is the
// server's pid. It does nothing once the process has been reaped, so that
// the id can never name anyone else's processes.
func (s *Server) signalGroup(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.reaped {
		_ = syscall.Kill(-s.cmd.Process.Pid, sig)
	}
}

// Main is a helper for TestMain: it starts a server, stores it in *srv, runs
// m, stops the server, and returns the exit code.
//
// When moto_server is not installed it runs the tests with *srv nil (tests
// that need it skip via Require), unless the environment has CI=true, in
// which case it prints why to stderr and returns 1 without running tests.
func Main(m *testing.M, srv **Server) int {
	s, err := Start(context.Background())
	switch {
	case errors.Is(err, ErrNotInstalled) && os.Getenv("CI") == "true":
		fmt.Fprintf(os.Stderr, "%v\nCI=true: refusing to skip the tests that need it.\n", err)
		return 1
	case errors.Is(err, ErrNotInstalled):
		fmt.Fprintf(os.Stderr, "%v; tests that need it will be skipped.\n", err)
		*srv = nil
		return m.Run()
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*srv = s
	code := m.Run()
	*srv = nil
	if err := s.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Require skips t when s is nil (moto_server is not installed) and
// otherwise wipes the emulator's state so the test starts empty. It returns s.
// The wipe is bounded by the test's context only, so by go test's -timeout.
func Require(t testing.TB, s *Server) *Server {
	t.Helper()
	if s == nil {
		t.Skip("moto_server is not on PATH; skipping test that needs the AWS emulator")
	}
	if err := s.Reset(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// runningOn matches the line moto_server (werkzeug) prints once listening.
var runningOn = regexp.MustCompile(`Running on (http://127\.0\.0\.1:[0-9]+)`)

// output collects the process's stdout and stderr: it keeps the last
// tailSize bytes and reports the URL from the first "Running on" line.
type output struct {
	mu    sync.Mutex
	buf   []byte // last tailSize bytes
	line  []byte // current partial line, until the URL is found
	found bool
	url   chan string // receives the URL once
}

func newOutput() *output { return &output{url: make(chan string, 1)} }

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf = append(o.buf, p...)
	if over := len(o.buf) - tailSize; over > 0 {
		o.buf = append(o.buf[:0], o.buf[over:]...)
	}
	if !o.found {
		o.line = append(o.line, p...)
		for {
			i := bytes.IndexByte(o.line, '\n')
			if i < 0 {
				break
			}
			if m := runningOn.FindSubmatch(o.line[:i]); m != nil {
				o.found = true
				o.line = nil
				o.url <- string(m[1])
				break
			}
			o.line = o.line[i+1:]
		}
		if len(o.line) > tailSize {
			o.line = o.line[len(o.line)-tailSize:]
		}
	}
	return len(p), nil
}

func (o *output) tail() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.buf) == 0 {
		return "(no output)"
	}
	return "moto_server output (last bytes):\n" + string(o.buf)
}
