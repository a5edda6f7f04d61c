package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestHelpIsGNUStyleAndGrouped(t *testing.T) {
	for _, cmd := range []string{"audit", "groups", "lookup"} {
		t.Run(cmd, func(t *testing.T) {
			res := sgvet(t, "", cmd, "--help")
			if res.code != exitOK {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			for _, want := range []string{"-f, --format FORMAT", "-o, --output FILE", "-c, --config FILE", "-h, --help", "General flags:"} {
				if !strings.Contains(res.stdout, want) {
					t.Errorf("help lacks %q:\n%s", want, res.stdout)
				}
			}
			for _, line := range strings.Split(res.stdout, "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), "-") && !strings.HasPrefix(strings.TrimSpace(line), "--") && !strings.Contains(line, ", --") {
					t.Errorf("flag line in Go's style: %q", line)
				}
			}
			if help := sgvet(t, "", "help", cmd); help.stdout != res.stdout {
				t.Errorf("sgvet help %s differs from sgvet %s --help", cmd, cmd)
			}
		})
	}
	audit := sgvet(t, "", "audit", "-h").stdout
	order := []string{"Source flags", "--input", "Provider flags", "--blocklist", "Report flags", "--fail-on", "General flags", "--log-level"}
	rest := audit[strings.Index(audit, "\nSource flags"):]
	for _, s := range order {
		i := strings.Index(rest, s)
		if i < 0 {
			t.Fatalf("audit help: %q is not after the one before it in %q", s, order)
		}
		rest = rest[i:]
	}
}

func TestMistakesSuggestTheFlagOrCommand(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"audit", "--region", "us-east-1"}, "unknown flag --region; did you mean --regions?"},
		{[]string{"audit", "--formt", "json"}, "unknown flag --formt; did you mean --format?"},
		{[]string{"groups", "--outptu", "x"}, "did you mean --output?"},
		{[]string{"audit", "--fail", "low"}, "did you mean --fail-on?"},
		{[]string{"lookup", "--blocklists", "x", "1.2.3.4"}, "did you mean --blocklist?"},
		{[]string{"groups", "--zzzzzz"}, "unknown flag --zzzzzz (see 'sgvet groups --help')"},
		{[]string{"groups", "-x"}, "unknown flag -x in -x"},
		{[]string{"groups", "--format"}, "--format needs a value"},
		{[]string{"audit", "--workers", "many"}, `--workers "many": `},
		{[]string{"audti"}, `unknown command "audti"; did you mean "audit"?`},
		{[]string{"grups"}, `did you mean "groups"?`},
		{[]string{"--regions", "all"}, "flags follow the command"},
		{[]string{"groups", "extra"}, `unexpected argument "extra"`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			res := sgvet(t, "", tc.args...)
			if res.code != exitUsage || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("sgvet %q: exit %d, stderr %q; want %d and %q", tc.args, res.code, res.stderr, exitUsage, tc.want)
			}
		})
	}
}

func TestShortFlags(t *testing.T) {
	isolateAWS(t)
	out := filepath.Join(t.TempDir(), "groups.json")
	res := sgvet(t, "", "groups", "-i", "../../examples/security-groups.json", "-f", "json", "-o", out)
	if res.code != exitIncomplete {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil || !bytes.Contains(data, []byte(`"schema": "sgvet.inventory/v1"`)) {
		t.Errorf("-o %s: %v, %.80q", out, err, data)
	}
	// Flags may follow operands, and -- ends the flags.
	isolateProviders(t)
	list := writeFile(t, "list.netset", "203.0.113.0/24\n")
	for _, args := range [][]string{
		{"lookup", "85.25.199.246", "--blocklist", list, "-f", "json"},
		{"lookup", "--blocklist", list, "-f", "json", "--", "85.25.199.246"},
	} {
		res := sgvet(t, "", args...)
		if res.code != exitOK || !strings.Contains(res.stdout, `"sgvet.lookup/v1"`) {
			t.Errorf("sgvet %q: exit %d, stdout %.100q, stderr %q", args, res.code, res.stdout, res.stderr)
		}
	}
}

func TestClosest(t *testing.T) {
	names := []string{"input", "profile", "regions", "format", "output", "fail-on", "state", "config", "no-cache", "cache"}
	tests := []struct{ word, want string }{
		{"region", "regions"},
		{"regoins", "regions"},
		{"formt", "format"},
		{"fail", "fail-on"},
		{"stat", "state"},
		{"nocache", "no-cache"},
		{"xyz", ""},
		{"verbose", ""},
	}
	for _, tc := range tests {
		if got := closest(tc.word, names); got != tc.want {
			t.Errorf("closest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
}

func TestCheckRegion(t *testing.T) {
	tests := []struct {
		region string
		want   string // "" for a known region
	}{
		{"us-east-1", ""},
		{"eu-west-1", ""},
		{"cn-north-1", ""},
		{"us-gov-west-1", ""},
		{"us-eats-1", `"us-eats-1" is not an AWS region; did you mean us-east-1? (the aws partition has af-south-1,`},
		{"cn-nrth-1", "did you mean cn-north-1? (the aws-cn partition has cn-north-1, cn-northwest-1;"},
		{"us-gov-wst-1", "the aws-us-gov partition has us-gov-east-1, us-gov-west-1"},
		{"mars-1", `"mars-1" is not an AWS region (the aws partition has`},
	}
	for _, tc := range tests {
		err := checkRegion(tc.region)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("checkRegion(%q) = %v, want nil", tc.region, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("checkRegion(%q) = %v, want %q", tc.region, err, tc.want)
		}
	}
}

// TestUnknownRegionBeforeAnyCall: a misspelt region ends the run with exit 2 before any
// request, here to an endpoint that would count them. Real endpoints are not used: the
// check applies when no endpoint is configured, so the test counts the requests that a
// proxy (HTTPS_PROXY) would have carried.
func TestUnknownRegionBeforeAnyCall(t *testing.T) {
	isolateAWS(t)
	requests := 0
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer proxy.Close()
	t.Setenv("HTTPS_PROXY", proxy.URL)
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	for _, tc := range []struct {
		env  string
		args []string
		want string
	}{
		{"", []string{"--regions", "us-east-1,us-eats-1"}, `regions (--regions): "us-eats-1" is not an AWS region; did you mean us-east-1?`},
		{"us-wset-2", nil, `AWS_REGION: "us-wset-2" is not an AWS region; did you mean us-west-2?`},
	} {
		t.Setenv("AWS_REGION", tc.env)
		res := sgvet(t, "", append([]string{"groups"}, tc.args...)...)
		if res.code != exitUsage || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("exit %d, stderr %q; want %d and %q", res.code, res.stderr, exitUsage, tc.want)
		}
	}
	if requests != 0 {
		t.Errorf("%d requests were sent", requests)
	}
}

func TestProfileFromEnvironmentIsNamed(t *testing.T) {
	isolateAWS(t)
	t.Setenv("AWS_PROFILE", "prodd")
	res := sgvet(t, "", "groups")
	if want := "AWS_PROFILE=prodd: no such profile"; res.code != exitUsage || !strings.Contains(res.stderr, want) || strings.Contains(res.stderr, `--profile ""`) {
		t.Errorf("exit %d, stderr %q; want %d and %q", res.code, res.stderr, exitUsage, want)
	}
	res = sgvet(t, "", "groups", "--profile", "stagin")
	if want := "--profile stagin: no such profile"; res.code != exitUsage || !strings.Contains(res.stderr, want) {
		t.Errorf("exit %d, stderr %q; want %d and %q", res.code, res.stderr, exitUsage, want)
	}
}

// TestNetworkFailureIsNotBlamedOnCredentials points the SDK at a loopback port nothing
// listens on.
func TestNetworkFailureIsNotBlamedOnCredentials(t *testing.T) {
	isolateAWS(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	t.Setenv("AWS_ENDPOINT_URL", "http://"+addr)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	res := sgvet(t, "", "groups", "--regions", "us-east-1")
	if res.code != exitUsage || !strings.Contains(res.stderr, "cannot reach AWS STS") || !strings.Contains(res.stderr, "connection refused") || strings.Contains(res.stderr, "credentials") {
		t.Errorf("exit %d, stderr %q; want %d, cannot reach, and no word of credentials", res.code, res.stderr, exitUsage)
	}
}

func TestNetworkProblem(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string // "" when the error is not the network's
	}{
		{"dns", fmt.Errorf("send: %w", &net.DNSError{Name: "sts.us-east-1.amazonaws.com", Err: "no such host", IsNotFound: true}), "the name sts.us-east-1.amazonaws.com does not resolve"},
		{"dns server", &net.DNSError{Name: "sts.example", Err: "server misbehaving"}, "cannot resolve sts.example: server misbehaving"},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}, Err: syscall.ECONNREFUSED}, "dial 127.0.0.1:9: connection refused"},
		{"other", errors.New("InvalidClientTokenId: The security token included in the request is invalid"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := networkProblem(tc.err)
			if ok != (tc.want != "") || got != tc.want {
				t.Errorf("networkProblem(%v) = %q, %v; want %q", tc.err, got, ok, tc.want)
			}
		})
	}
}

// TestNoProviderWarningFollowsInputErrors: with neither key nor list, an input error is the
// only thing said.
func TestNoProviderWarningFollowsInputErrors(t *testing.T) {
	isolateAWS(t)
	isolateProviders(t)
	bad := writeFile(t, "bad.json", `{"SecurityGroups": [`)
	res := sgvet(t, "", "audit", "--input", bad)
	if res.code != exitUsage || strings.Contains(res.stderr, "no reputation provider") || !strings.Contains(res.stderr, "bad.json") {
		t.Errorf("exit %d, stderr %q; want %d and only the input error", res.code, res.stderr, exitUsage)
	}
	good := sgvet(t, "", "audit", "--input", "../../examples/security-groups.json", "--fail-on", "none")
	if !strings.Contains(good.stderr, "no reputation provider") {
		t.Errorf("good input: the warning is missing: %q", good.stderr)
	}
}

func TestVersionLine(t *testing.T) {
	settings := func(kv ...string) []debug.BuildSetting {
		var out []debug.BuildSetting
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	tests := []struct {
		name   string
		linked string
		info   *debug.BuildInfo
		want   string
	}{
		{"linked", "v1.4.0", &debug.BuildInfo{GoVersion: "go1.26.8"}, "sgvet v1.4.0 (go1.26.8)"},
		{"module", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}}, "sgvet v1.2.3 (go1.26.8)"},
		{"source tree", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: settings("vcs.revision", "0123456789abcdef0123", "vcs.time", "2026-11-29T10:00:00Z", "vcs.modified", "true")},
			"sgvet dev (revision 0123456789ab, modified, 2026-11-29T10:00:00Z, go1.26.8)"},
		{"no build info", "", nil, "sgvet dev"},
	}
	for _, tc := range tests {
		if got := versionLine(tc.linked, tc.info); got != tc.want {
			t.Errorf("%s: versionLine(%q) = %q, want %q", tc.name, tc.linked, got, tc.want)
		}
	}
	res := sgvet(t, "", "version")
	if res.code != exitOK || !strings.HasPrefix(res.stdout, "sgvet ") || !strings.Contains(res.stdout, "go1.") {
		t.Errorf("sgvet version: exit %d, %q", res.code, res.stdout)
	}
	if again := sgvet(t, "", "--version"); again.stdout != res.stdout {
		t.Errorf("--version = %q, version = %q", again.stdout, res.stdout)
	}
}

// TestBashCompletion loads the script in bash and asks it what it would complete.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	res := sgvet(t, "", "completion", "bash")
	if res.code != exitOK {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	script := writeFile(t, "sgvet.bash", res.stdout)
	dir := t.TempDir()
	for _, name := range []string{"report.html", "rules.json"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		words []string
		want  string
	}{
		{[]string{"sgvet", "au"}, "audit"},
		{[]string{"sgvet", "audit", "--reg"}, "--regions"},
		{[]string{"sgvet", "audit", "--format", "m"}, "markdown"},
		{[]string{"sgvet", "audit", "-f", ""}, "table json csv markdown html"},
		{[]string{"sgvet", "groups", "--format", ""}, "table json"},
		{[]string{"sgvet", "audit", "--fail-on", "c"}, "critical"},
		{[]string{"sgvet", "lookup", "--providers", "v"}, "virustotal"},
		{[]string{"sgvet", "audit", "--input", "ru"}, "rules.json"},
		{[]string{"sgvet", "audit", "--regions", "eu-west-"}, "eu-west-1 eu-west-2 eu-west-3"},
		{[]string{"sgvet", "help", "gr"}, "groups"},
		{[]string{"sgvet", "completion", "z"}, "zsh"},
		{[]string{"sgvet", "groups", "--workers"}, ""},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.words, " "), func(t *testing.T) {
			words := make([]string, len(tc.words))
			for i, w := range tc.words {
				words[i] = fmt.Sprintf("%q", w)
			}
			cmd := exec.Command(bash, "--norc", "--noprofile", "-c", fmt.Sprintf(
				`source %q; COMP_WORDS=(%s); COMP_CWORD=%d; _sgvet; echo "${COMPREPLY[*]}"`,
				script, strings.Join(words, " "), len(words)-1))
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if got := strings.TrimSpace(string(out)); err != nil || got != tc.want {
				t.Errorf("completing %q = %q (%v), want %q", tc.words, got, err, tc.want)
			}
		})
	}
	zsh := sgvet(t, "", "completion", "zsh")
	if zsh.code != exitOK || !strings.HasPrefix(zsh.stdout, "#compdef sgvet\n") || !strings.Contains(zsh.stdout, "bashcompinit") || !strings.Contains(zsh.stdout, "complete -F _sgvet sgvet") {
		t.Errorf("zsh script:\n%s", zsh.stdout)
	}
	// zsh runs the same function under its bash emulation, which leaves matching the word
	// to zsh: the candidates come unfiltered.
	if zshPath, err := exec.LookPath("zsh"); err == nil {
		script := writeFile(t, "_sgvet", zsh.stdout)
		cmd := exec.Command(zshPath, "-f", "-c", fmt.Sprintf(`autoload -U compinit && compinit -u; source %q
t() { emulate -L sh; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _sgvet; echo "${COMPREPLY[*]}"; }
t sgvet audit --format ""; t sgvet groups -f ""`, script))
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if want := "table json csv markdown html\ntable json\n"; err != nil || string(out) != want {
			t.Errorf("zsh: %q (%v), want %q", out, err, want)
		}
	}
	if bad := sgvet(t, "", "completion", "fish"); bad.code != exitUsage {
		t.Errorf("completion fish: exit %d, want %d", bad.code, exitUsage)
	}
}

func TestExitCodeOnSignal(t *testing.T) {
	tests := []struct {
		name string
		err  error
		sig  os.Signal
		want int
	}{
		{"interrupted", context.Canceled, os.Interrupt, 130},
		{"terminated", fmt.Errorf("--state: %w", context.Canceled), syscall.SIGTERM, 143},
		{"error after signal", errors.New("write x: broken pipe"), syscall.SIGTERM, 143},
		{"report written before signal", &exitError{code: exitFindings}, os.Interrupt, exitFindings},
		{"incomplete before signal", errIncomplete, syscall.SIGTERM, exitIncomplete},
		{"done", nil, os.Interrupt, exitOK},
		{"canceled without signal", context.Canceled, nil, 130},
		{"usage", usageErrorf("bad"), nil, exitUsage},
	}
	for _, tc := range tests {
		if got := exitCode(tc.err, tc.sig, new(bytes.Buffer)); got != tc.want {
			t.Errorf("%s: exitCode(%v, %v) = %d, want %d", tc.name, tc.err, tc.sig, got, tc.want)
		}
	}
}

func TestStopOnSignal(t *testing.T) {
	signals := make(chan os.Signal, 2)
	exited := make(chan int, 1)
	ctx, caught := stopOnSignal(context.Background(), signals, func(code int) { exited <- code }, new(bytes.Buffer))
	if caught() != nil || ctx.Err() != nil {
		t.Fatalf("before any signal: caught %v, ctx %v", caught(), ctx.Err())
	}
	signals <- syscall.SIGTERM
	<-ctx.Done()
	if caught() != syscall.SIGTERM {
		t.Errorf("caught() = %v, want SIGTERM", caught())
	}
	select {
	case code := <-exited:
		t.Fatalf("exited %d after one signal", code)
	default:
	}
	tmp := filepath.Join(t.TempDir(), ".report.json.1.tmp")
	os.WriteFile(tmp, []byte("half"), 0o600)
	defer trackTemp(ctx, tmp)()
	signals <- os.Interrupt
	if code := <-exited; code != 130 {
		t.Errorf("second signal: exit %d, want 130", code)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("the temporary report was left behind: %v", err)
	}
}

// runMainEnv makes a copy of the test binary run main, as sgvet.
const runMainEnv = "SGVET_TEST_RUN_MAIN"

// startMain starts sgvet, as a process of its own, with args.
func startMain(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, &stdout, &stderr
}

// TestSignalStopsRun sends a signal to sgvet while a provider holds its request, and
// expects the shell's status for the signal, no report, and the output file untouched.
func TestSignalStopsRun(t *testing.T) {
	isolateAWS(t)
	isolateProviders(t)
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			held := make(chan struct{}, 1)
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case held <- struct{}{}:
				default:
				}
				select {
				case <-r.Context().Done():
				case <-release:
				}
			}))
			defer srv.Close()
			defer close(release)
			t.Setenv("ABUSEIPDB_API_KEY", "key-for-signal-test")
			cfg := doublesConfig(t, map[string]string{"abuseipdb": srv.URL})
			out := writeFile(t, "report.json", "previous report\n")
			cmd, stdout, stderr := startMain(t, "audit", "--config", cfg, "--no-cache", "--providers", "abuseipdb",
				"--input", "../../examples/security-groups.json", "-f", "json", "-o", out)
			select {
			case <-held:
			case <-time.After(2 * time.Minute):
				t.Fatalf("no request reached the provider; stderr %q", stderr)
			}
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != tc.code {
				t.Fatalf("%v: %v, want exit %d; stderr %q", tc.sig, err, tc.code, stderr)
			}
			if !strings.Contains(stderr.String(), "stopped by "+signalName(tc.sig)) || stdout.Len() != 0 {
				t.Errorf("stdout %q, stderr %q", stdout, stderr)
			}
			if data, _ := os.ReadFile(out); string(data) != "previous report\n" {
				t.Errorf("--output was changed: %.100q", data)
			}
			if tmp, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".report.json.*")); len(tmp) > 0 {
				t.Errorf("temporary files left: %q", tmp)
			}
		})
	}
}

// lockedBuffer is a bytes.Buffer that a process writes and a test reads at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSignalWhileStateIsLocked: another process holds the write lock on the history
// for the whole test; sgvet, waiting for it, stops on SIGINT at once rather than when its
// wait for the lock runs out (which would say the database is locked).
func TestSignalWhileStateIsLocked(t *testing.T) {
	isolateAWS(t)
	isolateProviders(t)
	state := filepath.Join(t.TempDir(), "state.db")
	list := writeFile(t, "list.netset", "203.0.113.0/24\n")
	args := []string{"audit", "--input", "../../examples/security-groups.json", "--blocklist", list, "--state", state, "--fail-on", "none", "-f", "json"}
	if res := sgvet(t, "", args...); res.code != exitIncomplete { // the example names a prefix list files cannot expand
		t.Fatalf("first run: exit %d, stderr %q", res.code, res.stderr)
	}
	db, err := sql.Open("sqlite", state)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK")

	cmd := exec.Command(os.Args[0], append(args, "--log-level", "debug")...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	for !strings.Contains(stderr.String(), "opening the history") {
		if cmd.ProcessState != nil {
			t.Fatalf("sgvet ended early: %q", stderr.String())
		}
		time.Sleep(10 * time.Millisecond) // polls the child's output; no deadline
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 130 {
		t.Fatalf("%v, want exit 130; stderr %q", err, stderr.String())
	}
	if s := stderr.String(); strings.Contains(s, "locked") || strings.Contains(s, "busy") || !strings.Contains(s, "stopped by SIGINT") {
		t.Errorf("sgvet waited for the lock instead of stopping: %q", s)
	}
	if stdout.String() != "" {
		t.Errorf("a report was written: %.100q", stdout.String())
	}
}
