package main

// Reliability of a fleet on SQS: each test runs sgvet's commands as processes of their own
// against moto's SQS, with a MetaDefender double and offline blocklists as providers.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sgvet/sgvet/internal/fakeprovider"
	"github.com/sgvet/sgvet/queue"
	"github.com/sgvet/sgvet/reputation"
	"github.com/sgvet/sgvet/vetting"
)

// relTimeout bounds every wait of these tests: far longer than anything takes, so that a
// busy machine does not fail them, and short enough that a test that is broken ends.
const relTimeout = 3 * time.Minute

// The example estate and blocklist.
const (
	relGroups     = "../../examples/security-groups.json"
	relInterfaces = "../../examples/network-interfaces.json"
	relBlocklist  = "../../examples/blocklist.netset"
)

// relListings is what the MetaDefender double knows about addresses of the example (the
// blocklist knows others).
var relListings = map[string]fakeprovider.Listing{
	"3.18.12.10": {Status: "malicious", Categories: []string{"botnet"}},
	"3.18.12.11": {Status: "suspicious", Categories: []string{"scanner"}},
}

// relQueues are the queues of a fleet: lookups and results, each with a dead-letter queue
// that its redrive policy moves a message to once it has been received maxReceive times.
type relQueues struct {
	client                                   *sqs.Client
	lookups, lookupsDLQ, results, resultsDLQ string
}

// relSetup points sgvet at moto and at no provider of this machine, sets a MetaDefender
// key for the doubles, and creates the queues, whose visibility timeout is visibility.
func relSetup(t *testing.T, visibility time.Duration, maxReceive int) relQueues {
	t.Helper()
	srv := useMoto(t)
	isolateProviders(t)
	t.Setenv("MDCLOUD_APIKEY", "key-for-fleet-tests")
	q := relQueues{client: sqs.NewFromConfig(srv.AWSConfig(t, "us-east-1"))}
	q.lookups, q.lookupsDLQ = relCreateQueue(t, q.client, "sgvet-lookups", visibility, maxReceive)
	q.results, q.resultsDLQ = relCreateQueue(t, q.client, "sgvet-results", visibility, maxReceive)
	return q
}

// relCreateQueue creates the queue name and its dead-letter queue name-dlq, and returns
// their URLs.
func relCreateQueue(t *testing.T, client *sqs.Client, name string, visibility time.Duration, maxReceive int) (queueURL, dlqURL string) {
	t.Helper()
	ctx := t.Context()
	dlq, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: dlq.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatal(err)
	}
	redrive, err := json.Marshal(map[string]string{
		"deadLetterTargetArn": attrs.Attributes[string(types.QueueAttributeNameQueueArn)],
		"maxReceiveCount":     strconv.Itoa(maxReceive),
	})
	if err != nil {
		t.Fatal(err)
	}
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: map[string]string{
		string(types.QueueAttributeNameVisibilityTimeout): strconv.Itoa(int(visibility / time.Second)),
		string(types.QueueAttributeNameRedrivePolicy):     string(redrive),
	}})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(q.QueueUrl), aws.ToString(dlq.QueueUrl)
}

// relCount returns how many messages the queue at queueURL holds: visible, and in flight.
func relCount(t *testing.T, client *sqs.Client, queueURL string) (visible, inFlight int) {
	t.Helper()
	out, err := client.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{
		QueueUrl: &queueURL,
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages, types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatalf("count the messages of %s: %v", queueURL, err)
	}
	number := func(name types.QueueAttributeName) int {
		n, err := strconv.Atoi(out.Attributes[string(name)])
		if err != nil {
			t.Fatalf("%s of %s = %q: %v", name, queueURL, out.Attributes[string(name)], err)
		}
		return n
	}
	return number(types.QueueAttributeNameApproximateNumberOfMessages), number(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)
}

// relTotal returns how many messages the queue at queueURL holds, visible or not.
func relTotal(t *testing.T, client *sqs.Client, queueURL string) int {
	t.Helper()
	visible, inFlight := relCount(t, client, queueURL)
	return visible + inFlight
}

// relReceive receives n messages from the queue at queueURL and keeps them invisible for
// the rest of the test.
func relReceive(t *testing.T, client *sqs.Client, queueURL string, n int) []types.Message {
	t.Helper()
	var msgs []types.Message
	deadline := time.Now().Add(relTimeout)
	for len(msgs) < n {
		if time.Now().After(deadline) {
			t.Fatalf("received %d messages from %s in %v, want %d", len(msgs), queueURL, relTimeout, n)
		}
		out, err := client.ReceiveMessage(t.Context(), &sqs.ReceiveMessageInput{
			QueueUrl:                    &queueURL,
			MaxNumberOfMessages:         int32(min(n-len(msgs), 10)),
			WaitTimeSeconds:             1,
			VisibilityTimeout:           int32(relTimeout / time.Second),
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
		})
		if err != nil {
			t.Fatalf("receive from %s: %v", queueURL, err)
		}
		msgs = append(msgs, out.Messages...)
	}
	return msgs
}

// relTransport returns the queue at queueURL as sgvet sends to it, stamping run.
func relTransport(q relQueues, queueURL, run string) *queue.SQS {
	return queue.NewSQS(q.client, queueURL, queue.SQSOptions{WaitTime: time.Second}).ForRun(run)
}

// relSendLookups sends one lookup message of run for each list of addresses.
func relSendLookups(t *testing.T, q relQueues, run string, messages [][]string) {
	t.Helper()
	var bodies [][]byte
	for _, addrs := range messages {
		var targets []reputation.Target
		for _, a := range addrs {
			targets = append(targets, relTarget(t, a))
		}
		body, err := vetting.EncodeLookup(run, targets)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, body)
	}
	if err := relTransport(q, q.lookups, run).Send(t.Context(), bodies...); err != nil {
		t.Fatal(err)
	}
}

func relTarget(t *testing.T, s string) reputation.Target {
	t.Helper()
	var target reputation.Target
	if err := json.Unmarshal([]byte(strconv.Quote(s)), &target); err != nil {
		t.Fatalf("target %q: %v", s, err)
	}
	return target
}

// relAddresses returns n distinct public addresses, from 81.2.69.first on.
func relAddresses(first, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("81.2.69.%d", first+i)
	}
	return out
}

// relGate is a provider double in front of another, upstream: it holds the first request
// it gets until Release is called (or its client gives up), and passes every request on.
type relGate struct {
	URL     string        // the base URL to configure: upstream's, on the gate
	Held    chan struct{} // closed once the first request is held
	release chan struct{}
	first   atomic.Bool
	once    sync.Once
}

// relHoldFirst starts a gate in front of the double at upstream.
func relHoldFirst(t *testing.T, upstream string) *relGate {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	g := &relGate{Held: make(chan struct{}), release: make(chan struct{})}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.first.CompareAndSwap(false, true) {
			close(g.Held)
			select {
			case <-g.release:
			case <-r.Context().Done():
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(g.Release) // before the server closes, which waits for the held request
	g.URL = srv.URL + u.Path
	return g
}

// Release lets the held request, and any other, through.
func (g *relGate) Release() { g.once.Do(func() { close(g.release) }) }

// relProvider starts the MetaDefender double with relListings behind a gate, which holds
// its first request if hold is set, and returns the provider flags that point sgvet at the
// gate.
func relProvider(t *testing.T, hold bool) (gate *relGate, double *fakeprovider.Server, args []string) {
	t.Helper()
	double = fakeprovider.MetaDefender(t, fakeprovider.Options{Listings: relListings})
	gate = relHoldFirst(t, double.URL)
	if !hold {
		gate.Release()
	}
	return gate, double, relProviderArgs(t, gate.URL)
}

// relProviderArgs are the provider flags of the tests' workers and audits: MetaDefender at
// baseURL, the example blocklist, and a list of IPv6 entries, so that every address and
// prefix of the example has an answer.
func relProviderArgs(t *testing.T, baseURL string) []string {
	t.Helper()
	cfg := doublesConfig(t, map[string]string{"metadefender": baseURL})
	ipv6 := writeFile(t, "ipv6.netset", "# IPv6 entries\n2a02:8010:6a2f::17\n")
	return []string{"--config", cfg, "--providers", "metadefender,blocklist", "--blocklist", relBlocklist, "--blocklist", ipv6, "--no-cache"}
}

// relWorker starts sgvet work on q with the provider flags providers, and extra flags.
func relWorker(t *testing.T, q relQueues, providers []string, extra ...string) *relProcess {
	t.Helper()
	args := append([]string{"work", "--queue-url", q.lookups, "--results-url", q.results}, providers...)
	return relStart(t, append(args, extra...)...)
}

// relProcess is sgvet running as a process of its own, whose output may be read while it
// runs, and whose end a test may wait for or notice.
type relProcess struct {
	cmd            *exec.Cmd
	stdout, stderr lockedBuffer
	done           chan struct{} // closed once it has exited
	err            error         // cmd.Wait's, once done is closed
}

// relStart starts sgvet with args. The process is killed, by its id, if it is still
// running when the test ends.
func relStart(t *testing.T, args ...string) *relProcess {
	t.Helper()
	p := &relProcess{cmd: exec.Command(os.Args[0], args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), runMainEnv+"=1")
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// exited reports whether the process has exited.
func (p *relProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process.
func (p *relProcess) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v; stderr %q", sig, err, p.stderr.String())
	}
}

// wait waits for the process to exit, and returns its result; -1 is the code of a process
// that a signal ended.
func (p *relProcess) wait(t *testing.T) result {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(relTimeout):
		t.Fatalf("sgvet %q still running after %v; stderr %q", p.cmd.Args[1:], relTimeout, p.stderr.String())
	}
	var exit *exec.ExitError
	if p.err != nil && !errors.As(p.err, &exit) {
		t.Fatalf("sgvet %q: %v", p.cmd.Args[1:], p.err)
	}
	return result{code: p.cmd.ProcessState.ExitCode(), stdout: p.stdout.String(), stderr: p.stderr.String()}
}

// relRun runs sgvet with args as a process of its own, to its end.
func relRun(t *testing.T, args ...string) result {
	t.Helper()
	return relStart(t, args...).wait(t)
}

// relWaitFor polls cond until it holds, and fails the test if it does not within
// relTimeout, or if one of procs exits first.
func relWaitFor(t *testing.T, what string, cond func() bool, procs ...*relProcess) {
	t.Helper()
	deadline := time.Now().Add(relTimeout)
	for !cond() {
		for _, p := range procs {
			if p.exited() {
				t.Fatalf("waiting for %s: sgvet %q exited; stderr %q", what, p.cmd.Args[1:], p.stderr.String())
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v", what, relTimeout)
		}
		time.Sleep(50 * time.Millisecond) // a polling interval
	}
}

// relAwaitHeld waits until gate holds a request of worker.
func relAwaitHeld(t *testing.T, gate *relGate, worker *relProcess) {
	t.Helper()
	select {
	case <-gate.Held:
	case <-worker.done:
		t.Fatalf("the worker exited before asking the provider: stderr %q", worker.stderr.String())
	case <-time.After(relTimeout):
		t.Fatalf("no request reached the provider in %v; stderr %q", relTimeout, worker.stderr.String())
	}
}

// relVerdicts decodes the verdicts messages msgs, checking that each is stamped with run,
// and returns the addresses they have verdicts on, with the number of messages on each.
func relVerdicts(t *testing.T, msgs []types.Message, run string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for _, msg := range msgs {
		m, err := vetting.DecodeVerdicts([]byte(aws.ToString(msg.Body)))
		if err != nil {
			t.Fatalf("DecodeVerdicts(%q) = %v", aws.ToString(msg.Body), err)
		}
		if got := aws.ToString(msg.MessageAttributes[queue.RunAttribute].StringValue); m.Run != run || got != run {
			t.Errorf("verdicts message of run %q, attribute %q, want %q", m.Run, got, run)
		}
		targets := map[string]bool{}
		for _, v := range m.Verdicts {
			targets[v.Target.String()] = true
		}
		for target := range targets {
			seen[target]++
		}
	}
	return seen
}

// relLookupAddresses decodes the lookup messages msgs, and returns their addresses.
func relLookupAddresses(t *testing.T, msgs []types.Message) []string {
	t.Helper()
	var out []string
	for _, msg := range msgs {
		m, err := vetting.DecodeLookup([]byte(aws.ToString(msg.Body)))
		if err != nil {
			t.Fatalf("DecodeLookup(%q) = %v", aws.ToString(msg.Body), err)
		}
		for _, a := range m.Addresses {
			out = append(out, a.String())
		}
	}
	return out
}

// TestRelWorkStopsOnSignal: a worker is signalled while the provider holds the request of
// the first of the ten lookup messages it took. With one signal it says it is stopping,
// takes no other message, finishes the ten, publishes their verdicts and deletes them, and
// exits 0 well within the visibility timeout; the two messages it never took are left,
// never received. A second signal while it finishes exits at once, with the status of that
// signal, having published and deleted nothing.
func TestRelWorkStopsOnSignal(t *testing.T) {
	const visibility = 30 * time.Second
	tests := []struct {
		name    string
		signals []syscall.Signal
		want    int
	}{
		{"SIGTERM", []syscall.Signal{syscall.SIGTERM}, exitOK},
		{"SIGINT", []syscall.Signal{syscall.SIGINT}, exitOK},
		{"SIGTERM twice", []syscall.Signal{syscall.SIGTERM, syscall.SIGTERM}, 143},
		{"SIGINT twice", []syscall.Signal{syscall.SIGINT, syscall.SIGINT}, 130},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := relSetup(t, visibility, 5)
			gate, double, providers := relProvider(t, true)
			const run, messages = "rel-signal", 12
			var lookups [][]string
			for i := range messages {
				lookups = append(lookups, relAddresses(1+2*i, 2))
			}
			relSendLookups(t, q, run, lookups)

			worker := relWorker(t, q, providers, "--workers", "1")
			relAwaitHeld(t, gate, worker)
			visible, taken := relCount(t, q.client, q.lookups)
			if taken < 1 || taken > 10 || visible+taken != messages {
				t.Fatalf("while the provider holds a request: %d lookup messages visible, %d in flight; want 1 to 10 of %d in flight", visible, taken, messages)
			}
			start := time.Now()
			worker.signal(t, tc.signals[0])
			// Once it says so, the first signal is taken: a second one is not merged with it.
			const stopping = "stopping: taking no more lookup messages"
			relWaitFor(t, "the worker saying it is stopping", func() bool { return strings.Contains(worker.stderr.String(), stopping) }, worker)
			if len(tc.signals) == 1 {
				gate.Release()
			} else {
				worker.signal(t, tc.signals[1])
			}
			res := worker.wait(t)
			if res.code != tc.want {
				t.Fatalf("sgvet work after %v = exit %d, want %d; stderr %q", tc.signals, res.code, tc.want, res.stderr)
			}

			if len(tc.signals) > 1 {
				// Stopped at once: nothing published, nothing deleted.
				if n := relTotal(t, q.client, q.results); n != 0 {
					t.Errorf("results queue after a second signal: %d messages, want 0", n)
				}
				if n := relTotal(t, q.client, q.lookups); n != messages {
					t.Errorf("lookups queue after a second signal: %d messages, want all %d", n, messages)
				}
				return
			}
			if elapsed := time.Since(start); elapsed >= visibility {
				t.Errorf("sgvet work took %v to stop, not within the visibility timeout %v", elapsed, visibility)
			}
			if n := strings.Count(res.stderr, stopping); n != 1 {
				t.Errorf("stderr says %d times that the worker is stopping, want once: %q", n, res.stderr)
			}
			visibleAfter, inFlight := relCount(t, q.client, q.lookups)
			if visibleAfter != messages-taken || inFlight != 0 {
				t.Errorf("lookups queue after %v: %d visible, %d in flight; want the %d never taken, visible", tc.signals, visibleAfter, inFlight, messages-taken)
			}
			left := relReceive(t, q.client, q.lookups, messages-taken)
			for _, msg := range left {
				if n := msg.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]; n != "1" {
					t.Errorf("lookup message %s left after the signal was received %s times before, want never", aws.ToString(msg.MessageId), n)
				}
			}
			published := relVerdicts(t, relReceive(t, q.client, q.results, taken), run)
			if n := relTotal(t, q.client, q.results); n != taken {
				t.Errorf("results queue: %d verdicts messages, want %d: one per message taken", n, taken)
			}
			all := map[string]bool{}
			for _, addrs := range lookups {
				for _, a := range addrs {
					all[a] = true
				}
			}
			for _, a := range relLookupAddresses(t, left) {
				if published[a] > 0 {
					t.Errorf("%s is in a lookup message left, and has verdicts", a)
				}
				delete(all, a)
			}
			for a, n := range published {
				if n != 1 || !all[a] {
					t.Errorf("%s has verdicts in %d messages, want 1 (asked: %v)", a, n, all[a])
				}
				delete(all, a)
			}
			if len(all) > 0 {
				t.Errorf("addresses neither left nor answered: %v", all)
			}
			// The provider was asked about the messages taken only.
			asked := 0
			for _, r := range double.Requests() {
				asked += len(r.Addresses)
			}
			if asked != len(published) {
				t.Errorf("the provider was asked about %d addresses, want the %d of the messages taken", asked, len(published))
			}
		})
	}
}

// relFindings returns the findings and the summary of the JSON report res printed, as
// reportFindings does.
func relFindings(t *testing.T, name string, res result) (findings []any, summary any) {
	t.Helper()
	return reportFindings(t, fmt.Sprintf("%s (exit %d, stderr %q)", name, res.code, res.stderr), res.stdout)
}

// relCheckReport checks that got, the report of a fleet, is that of an in-process sgvet
// audit of inputs with the provider flags providers, and that it vetted every address once.
func relCheckReport(t *testing.T, got result, providers []string, inputs ...string) {
	t.Helper()
	args := []string{"audit", "-f", "json"}
	for _, in := range inputs {
		args = append(args, "--input", in)
	}
	want := sgvet(t, "", append(args, providers...)...)
	if got.code != want.code {
		t.Errorf("sgvet report = exit %d, want %d as sgvet audit; stderr %q", got.code, want.code, got.stderr)
	}
	gotFindings, gotSummary := relFindings(t, "sgvet report", got)
	wantFindings, wantSummary := relFindings(t, "sgvet audit", want)
	if !reflect.DeepEqual(gotSummary, wantSummary) {
		t.Errorf("sgvet report summary = %v, want %v as sgvet audit", gotSummary, wantSummary)
	}
	if s, ok := gotSummary.(map[string]any); !ok || s["addresses_unvetted"] != 0.0 || s["addresses_vetted"] != s["addresses_total"] {
		t.Errorf("sgvet report summary = %v, want every address vetted", gotSummary)
	}
	if len(gotFindings) != len(wantFindings) {
		t.Errorf("sgvet report has %d findings, want %d as sgvet audit", len(gotFindings), len(wantFindings))
	}
	for i := range min(len(gotFindings), len(wantFindings)) {
		if g, w := gotFindings[i], wantFindings[i]; !reflect.DeepEqual(g, w) {
			gj, _ := json.Marshal(g)
			wj, _ := json.Marshal(w)
			t.Errorf("sgvet report finding %d = %s, want %s as sgvet audit", i, gj, wj)
			break // the first difference says enough
		}
	}
	for i, f := range gotFindings {
		f, _ := f.(map[string]any)
		if f["kind"] == "unvetted" {
			t.Errorf("sgvet report finding %d is unvetted: %v", i, f["cidr"])
		}
		var seen []string
		verdicts, _ := f["verdicts"].([]any)
		for _, v := range verdicts {
			v, _ := v.(map[string]any)
			seen = append(seen, fmt.Sprint(v["provider"], " ", v["target"]))
		}
		slices.Sort(seen)
		if len(slices.Compact(seen)) != len(verdicts) {
			t.Errorf("sgvet report finding %d has a provider's verdict on a target twice: %v", i, verdicts)
		}
	}
}

// relCollect runs sgvet collect on inputs, expecting exit status want, and returns the
// inventory file and the run id.
func relCollect(t *testing.T, q relQueues, want int, inputs ...string) (inventory, run string) {
	t.Helper()
	inventory = filepath.Join(t.TempDir(), "run.json")
	args := []string{"collect", "--inventory", inventory, "--queue-url", q.lookups}
	for _, in := range inputs {
		args = append(args, "--input", in)
	}
	res := relRun(t, args...)
	if res.code != want || strings.Count(res.stdout, "\n") != 1 {
		t.Fatalf("sgvet collect = exit %d, stdout %q, want %d and a run id; stderr %q", res.code, res.stdout, want, res.stderr)
	}
	return inventory, strings.TrimSpace(res.stdout)
}

// relReport runs sgvet report on inventory as JSON.
func relReport(t *testing.T, q relQueues, inventory string) result {
	t.Helper()
	return relRun(t, "report", "--inventory", inventory, "--results-url", q.results, "--wait", relTimeout.String(), "-f", "json")
}

// TestRelWorkerKilledMidBatch: a worker killed with SIGKILL while the provider holds its
// first request leaves its lookup messages to reappear once their visibility passes; a
// second worker answers them, and the report is that of an in-process audit, every address
// vetted once, with no message left on any queue.
func TestRelWorkerKilledMidBatch(t *testing.T) {
	q := relSetup(t, 3*time.Second, 5)
	gate, _, providers := relProvider(t, true)
	// The example names prefix lists that files cannot expand: the collection is incomplete.
	inventory, _ := relCollect(t, q, exitIncomplete, relGroups, relInterfaces)
	messages := relTotal(t, q.client, q.lookups)

	first := relWorker(t, q, providers, "--workers", "1")
	relAwaitHeld(t, gate, first)
	if _, taken := relCount(t, q.client, q.lookups); taken == 0 {
		t.Fatalf("while the provider holds a request of the first worker, no lookup message is in flight")
	}
	first.signal(t, syscall.SIGKILL)
	if res := first.wait(t); res.code != -1 {
		t.Fatalf("SIGKILL: exit %d, want the signal's end", res.code)
	}
	if n := relTotal(t, q.client, q.results); n != 0 {
		t.Fatalf("the killed worker published %d verdicts messages, want none", n)
	}
	if n := relTotal(t, q.client, q.lookups); n != messages {
		t.Fatalf("after SIGKILL the lookups queue holds %d messages, want all %d", n, messages)
	}

	second := relWorker(t, q, providers)
	rep := relReport(t, q, inventory)
	second.signal(t, syscall.SIGTERM)
	if res := second.wait(t); res.code != exitOK {
		t.Errorf("second worker on SIGTERM = exit %d, want 0; stderr %q", res.code, res.stderr)
	}
	relCheckReport(t, rep, providers, relGroups, relInterfaces)
	relCheckDone(t, q, messages)
}

// relCheckDone checks the queues once the report is written and the workers have stopped:
// no lookup message is left, none went to a dead-letter queue, and the report deleted every
// verdicts message it gathered. A copy of a verdicts message that came after the report had
// every answer is left for the redrive policy: there may be at most spare of them.
func relCheckDone(t *testing.T, q relQueues, spare int) {
	t.Helper()
	for name, u := range map[string]string{"lookups": q.lookups, "lookups DLQ": q.lookupsDLQ, "results DLQ": q.resultsDLQ} {
		if n := relTotal(t, q.client, u); n != 0 {
			t.Errorf("%s queue after the report: %d messages, want 0", name, n)
		}
	}
	if visible, inFlight := relCount(t, q.client, q.results); inFlight != 0 || visible > spare {
		t.Errorf("results queue after the report: %d messages visible, %d in flight; want none in flight, at most %d visible", visible, inFlight, spare)
	}
}

// TestRelUndecodableLookup: lookup messages that cannot be decoded are not deleted; the
// redrive policy moves each to the dead-letter queue after its second delivery; the worker
// logs each once, whichever of its receivers takes it, and answers every good message
// meanwhile.
func TestRelUndecodableLookup(t *testing.T) {
	q := relSetup(t, 2*time.Second, 2)
	_, _, providers := relProvider(t, false)
	bad := []struct{ name, body string }{
		{"not JSON", "this is not a lookup message {"},
		{"another version", `{"v":2,"run":"rel-bad","addresses":["81.2.69.200"]}`},
		{"not an address", `{"v":1,"run":"rel-bad","addresses":["300.1.2.3"]}`},
	}
	var bodies [][]byte
	for _, b := range bad {
		bodies = append(bodies, []byte(b.body))
	}
	if err := relTransport(q, q.lookups, "").Send(t.Context(), bodies...); err != nil {
		t.Fatal(err)
	}
	const run = "rel-good"
	good := [][]string{relAddresses(1, 3), relAddresses(4, 3), relAddresses(7, 3), relAddresses(10, 3)}
	relSendLookups(t, q, run, good)

	worker := relWorker(t, q, providers, "--workers", "4")
	relWaitFor(t, "undecodable messages in the dead-letter queue, good ones answered", func() bool {
		return relTotal(t, q.client, q.lookupsDLQ) == len(bad) && relTotal(t, q.client, q.lookups) == 0 && relTotal(t, q.client, q.results) >= len(good)
	}, worker)
	worker.signal(t, syscall.SIGTERM)
	res := worker.wait(t)
	if res.code != exitOK {
		t.Errorf("sgvet work on SIGTERM = exit %d, want 0; stderr %q", res.code, res.stderr)
	}
	if n := strings.Count(res.stderr, "lookup message skipped"); n != len(bad) {
		t.Errorf("stderr has %d lines of skipped lookup messages, want %d: %q", n, len(bad), res.stderr)
	}

	published := relVerdicts(t, relReceive(t, q.client, q.results, relTotal(t, q.client, q.results)), run)
	for _, addrs := range good {
		for _, a := range addrs {
			if published[a] == 0 {
				t.Errorf("%s has no verdicts", a)
			}
		}
	}
	dead := relReceive(t, q.client, q.lookupsDLQ, len(bad))
	for _, b := range bad {
		t.Run(b.name, func(t *testing.T) {
			i := slices.IndexFunc(dead, func(m types.Message) bool { return aws.ToString(m.Body) == b.body })
			if i < 0 {
				t.Fatalf("%q is not in the dead-letter queue", b.body)
			}
			id := aws.ToString(dead[i].MessageId)
			if n, _ := strconv.Atoi(dead[i].Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]); n < 3 {
				t.Errorf("message %s was received %d times, want it delivered twice before the dead-letter queue", id, n-1)
			}
			if n := strings.Count(res.stderr, "id="+id); n != 1 {
				t.Errorf("stderr names message %s %d times, want once: %q", id, n, res.stderr)
			}
		})
	}
}

// TestRelDuplicateDelivery: lookup messages delivered twice never make a finding or a
// verdict twice in the report, which is that of an in-process audit.
func TestRelDuplicateDelivery(t *testing.T) {
	// Every lookup message is on the queue twice, and two workers answer them, so that the
	// results queue holds two verdicts messages for every one.
	t.Run("sent twice, two workers", func(t *testing.T) {
		q := relSetup(t, 30*time.Second, 5)
		_, _, providers := relProvider(t, false)
		inventory, run := relCollect(t, q, exitIncomplete, relGroups, relInterfaces)
		messages := relTotal(t, q.client, q.lookups)
		sent := relReceive(t, q.client, q.lookups, messages)
		var bodies [][]byte
		for _, msg := range sent {
			body := []byte(aws.ToString(msg.Body))
			bodies = append(bodies, body, body)
		}
		if err := relTransport(q, q.lookups, run).Send(t.Context(), bodies...); err != nil {
			t.Fatal(err)
		}
		relDelete(t, q, sent)

		workers := []*relProcess{relWorker(t, q, providers), relWorker(t, q, providers)}
		relWaitFor(t, "every lookup message answered", func() bool {
			return relTotal(t, q.client, q.lookups) == 0 && relTotal(t, q.client, q.results) >= 2*messages
		}, workers...)
		for _, w := range workers {
			w.signal(t, syscall.SIGTERM)
			if res := w.wait(t); res.code != exitOK {
				t.Errorf("sgvet work on SIGTERM = exit %d, want 0; stderr %q", res.code, res.stderr)
			}
		}
		// One per lookup message delivered: SQS (and moto) may deliver one more than once.
		answers := relTotal(t, q.client, q.results)
		if answers < 2*messages {
			t.Errorf("results queue: %d verdicts messages, want at least %d: one per lookup message on the queue", answers, 2*messages)
		}
		relCheckReport(t, relReport(t, q, inventory), providers, relGroups, relInterfaces)
		relCheckDone(t, q, answers-messages)
	})

	// The first delivery is answered by a worker whose provider fails (unknown verdicts),
	// the second by one whose provider answers: the report has the answers. MetaDefender is
	// the only provider, so that no other provider's answer hides its failure.
	t.Run("failed, then answered", func(t *testing.T) {
		// A short visibility timeout: a long poll of the first worker that its end cut
		// short may still take the second copy on moto's side, which then reappears.
		q := relSetup(t, 3*time.Second, 5)
		gate, _, _ := relProvider(t, false)
		failing := fakeprovider.MetaDefender(t, fakeprovider.Options{Fail: 1 << 20})
		metaDefender := func(baseURL string) []string {
			return []string{"--config", doublesConfig(t, map[string]string{"metadefender": baseURL}), "--providers", "metadefender", "--no-cache"}
		}
		providers := metaDefender(gate.URL)
		estate := writeFile(t, "security-groups.json", `{"SecurityGroups":[{"GroupId":"sg-0a1b2c3d4e5f60718","GroupName":"vendor-access","VpcId":"vpc-1",
"IpPermissions":[{"IpProtocol":"tcp","FromPort":22,"ToPort":22,
"IpRanges":[{"CidrIp":"3.18.12.10/32","Description":"vendor"},{"CidrIp":"3.18.12.11/32","Description":"vendor backup"},{"CidrIp":"85.25.199.246/32","Description":"old office"},{"CidrIp":"81.2.69.142/32","Description":"home alice"}],
"Ipv6Ranges":[{"CidrIpv6":"2a02:8010:6a2f::17/128","Description":"contractor bob"}]}]}]}`)
		inventory, run := relCollect(t, q, exitOK, estate)
		sent := relReceive(t, q.client, q.lookups, 1)
		relDelete(t, q, sent)
		body := []byte(aws.ToString(sent[0].Body))

		for i, answers := range [][]string{metaDefender(failing.URL), providers} {
			if err := relTransport(q, q.lookups, run).Send(t.Context(), body); err != nil {
				t.Fatal(err)
			}
			worker := relWorker(t, q, answers)
			relWaitFor(t, "the lookup message answered", func() bool {
				return relTotal(t, q.client, q.lookups) == 0 && relTotal(t, q.client, q.results) > i
			}, worker)
			worker.signal(t, syscall.SIGTERM)
			res := worker.wait(t)
			if res.code != exitOK {
				t.Errorf("sgvet work on SIGTERM = exit %d, want 0; stderr %q", res.code, res.stderr)
			}
		}
		if failing.Count() == 0 {
			t.Fatal("the failing provider was never asked")
		}
		relCheckReport(t, relReport(t, q, inventory), providers, estate)
	})
}

// relDelete deletes msgs, received from the lookups queue.
func relDelete(t *testing.T, q relQueues, msgs []types.Message) {
	t.Helper()
	for _, msg := range msgs {
		if _, err := q.client.DeleteMessage(t.Context(), &sqs.DeleteMessageInput{QueueUrl: &q.lookups, ReceiptHandle: msg.ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRelResultsQueueDeleted: the results queue is deleted while a worker vets a batch;
// the worker stops with an error that names the queue, exit 2, and deletes none of the
// lookup messages it could not publish the verdicts of.
func TestRelResultsQueueDeleted(t *testing.T) {
	q := relSetup(t, 5*time.Second, 5)
	gate, _, providers := relProvider(t, true)
	lookups := [][]string{relAddresses(1, 2), relAddresses(3, 2), relAddresses(5, 2)}
	relSendLookups(t, q, "rel-gone", lookups)

	worker := relWorker(t, q, providers, "--workers", "1")
	relAwaitHeld(t, gate, worker)
	if _, err := q.client.DeleteQueue(t.Context(), &sqs.DeleteQueueInput{QueueUrl: &q.results}); err != nil {
		t.Fatal(err)
	}
	gate.Release()
	res := worker.wait(t)
	if res.code != exitUsage {
		t.Errorf("sgvet work with its results queue deleted = exit %d, want %d; stderr %q", res.code, exitUsage, res.stderr)
	}
	if !strings.Contains(res.stderr, q.results) || !strings.Contains(res.stderr, queue.ErrQueueGone.Error()) {
		t.Errorf("stderr = %q, want an error naming %s and saying it does not exist", res.stderr, q.results)
	}
	if n := relTotal(t, q.client, q.lookups) + relTotal(t, q.client, q.lookupsDLQ); n != len(lookups) {
		t.Errorf("lookup messages left on the queue and its dead-letter queue: %d, want all %d", n, len(lookups))
	}
}
