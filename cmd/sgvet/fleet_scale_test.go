package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sgvet/sgvet/internal/fakeprovider"
	"github.com/sgvet/sgvet/internal/motoserver"
	"github.com/sgvet/sgvet/vetting"
)

// These tests run sgvet as a fleet on moto's SQS: collect, work and report as the
// commands a user runs. Each bounds its waits generously (fleetDeadline), so that a busy
// machine makes a test slow, never wrong. None asserts how long anything took; the rate
// test counts requests in each second of the provider double's own clock.

// fleetDeadline bounds each wait of a fleet test: for a stack, a report, a worker's exit.
const fleetDeadline = 3 * time.Minute

// fleetRegion is the region of the fleet tests' queues.
const fleetRegion = "us-east-1"

// fleetSQS returns an SQS client on moto.
func fleetSQS(t *testing.T, srv *motoserver.Server) *sqs.Client {
	return sqs.NewFromConfig(srv.AWSConfig(t, fleetRegion))
}

// fleetQueue creates the SQS queue name on moto and returns its URL.
func fleetQueue(t *testing.T, client *sqs.Client, name string) string {
	t.Helper()
	out, err := client.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatalf("CreateQueue(%q): %v", name, err)
	}
	return aws.ToString(out.QueueUrl)
}

// fleetCheckEmpty fails t unless the queue at queueURL holds no message: none visible,
// none in flight, none delayed.
func fleetCheckEmpty(t *testing.T, client *sqs.Client, name, queueURL string) {
	t.Helper()
	out, err := client.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(queueURL),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		},
	})
	if err != nil {
		t.Fatalf("GetQueueAttributes(%s): %v", name, err)
	}
	for _, attr := range slices.Sorted(maps.Keys(out.Attributes)) {
		if out.Attributes[attr] != "0" {
			t.Errorf("%s queue: %s = %s, want 0", name, attr, out.Attributes[attr])
		}
	}
}

// fleetWorker is a sgvet work process.
type fleetWorker struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error // cmd.Wait's result, once
}

// fleetStartWorkers starts n sgvet work processes with args.
func fleetStartWorkers(t *testing.T, n int, args ...string) []*fleetWorker {
	t.Helper()
	var workers []*fleetWorker
	for range n {
		cmd, _, stderr := startMain(t, append([]string{"work"}, args...)...)
		w := &fleetWorker{cmd: cmd, stderr: stderr, done: make(chan error, 1)}
		go func() { w.done <- cmd.Wait() }()
		t.Cleanup(func() {
			// A worker still running when the test ends is stopped by its process id.
			select {
			case err := <-w.done:
				w.done <- err
			default:
				cmd.Process.Kill()
				w.done <- <-w.done
			}
		})
		workers = append(workers, w)
	}
	return workers
}

// fleetWaitWorkers waits for each worker to exit, and fails t unless each exits 0. A
// worker still running after fleetDeadline is killed.
func fleetWaitWorkers(t *testing.T, workers []*fleetWorker) {
	t.Helper()
	deadline := time.Now().Add(fleetDeadline)
	for i, w := range workers {
		var err error
		select {
		case err = <-w.done:
			w.done <- err
		case <-time.After(time.Until(deadline)):
			w.cmd.Process.Kill()
			err = <-w.done
			w.done <- err
			t.Errorf("worker %d still running after %v: killed", i+1, fleetDeadline)
		}
		if err != nil {
			t.Errorf("worker %d: %v; stderr:\n%s", i+1, err, w.stderr)
		}
	}
}

// fleetReport is the part of a JSON report the fleet tests compare.
type fleetReport struct {
	Summary struct {
		Total    int `json:"addresses_total"`
		Vetted   int `json:"addresses_vetted"`
		Unvetted int `json:"addresses_unvetted"`
	} `json:"summary"`
}

func fleetDecodeReport(t *testing.T, name, data string) fleetReport {
	t.Helper()
	var r fleetReport
	if err := json.Unmarshal([]byte(data), &r); err != nil {
		t.Fatalf("%s: the report is not JSON: %v\n%.2000s", name, err, data)
	}
	return r
}

// fleetCollect runs sgvet collect with args, which must write inventory, and returns
// the run id it printed. wantCode is the exit status it must have.
func fleetCollect(t *testing.T, wantCode int, args ...string) string {
	t.Helper()
	res := sgvet(t, "", append([]string{"collect"}, args...)...)
	if res.code != wantCode {
		t.Fatalf("sgvet collect exited %d, want %d; stderr:\n%s", res.code, wantCode, res.stderr)
	}
	run := strings.TrimSpace(res.stdout)
	if run == "" || strings.ContainsAny(run, " \n") {
		t.Fatalf("sgvet collect printed %q, want the run id", res.stdout)
	}
	return run
}

// fleetBusiestSecond returns the most of times (in order) that fall in one window of a
// second, [s, s+1s), among the windows that start a second or more after times[0], and
// where the busiest starts.
func fleetBusiestSecond(times []time.Time) (most int, at time.Time) {
	if len(times) == 0 {
		return 0, time.Time{}
	}
	settled := times[0].Add(time.Second)
	for i, s := range times {
		if s.Before(settled) {
			continue
		}
		n := 0
		for _, u := range times[i:] {
			if !u.Before(s.Add(time.Second)) {
				break
			}
			n++
		}
		if n > most {
			most, at = n, s
		}
	}
	return most, at
}

func TestFleetBusiestSecond(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	at := func(ms ...int) []time.Time {
		var out []time.Time
		for _, m := range ms {
			out = append(out, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		times []time.Time
		most  int
		at    time.Time
	}{
		{"none", nil, 0, time.Time{}},
		{"first second only", at(0, 10, 20, 999), 0, time.Time{}},
		{"burst in the first second is not counted", at(0, 1, 2, 3, 1000, 1500, 2000), 2, t0.Add(time.Second)},
		{"a window ends before its second", at(0, 1000, 1250, 1500, 1999, 2000), 4, t0.Add(time.Second)},
		{"busiest later", at(0, 1000, 2000, 2100, 2200, 2999), 4, t0.Add(2 * time.Second)},
	} {
		most, start := fleetBusiestSecond(tc.times)
		if most != tc.most || !start.Equal(tc.at) {
			t.Errorf("%s: fleetBusiestSecond = %d at %v, want %d at %v", tc.name, most, start, tc.most, tc.at)
		}
	}
}

// TestFleetScaleSharesProviderRate: two sgvet work processes with --fleet-size 2 share
// one MetaDefender key whose limit is R requests a second. The double enforces that
// limit; the configuration gives the key's rate R, so each worker keeps to R/2.
//
// Each worker's share of the key's burst is one request (a worker cannot send half of
// one), so a fleet of two may send two at once: the key's burst, in the configuration
// and in the double, is 2, the fleet's. A double with a burst of 1 refuses the second of
// any two requests from different workers that reach it less than 1/R apart, which two
// workers that do not talk to each other cannot avoid.
//
// From the double's own log, on its own clock: in every window of one second, [s, s+1s),
// that starts a second or more after the first request, the two together made at most R
// requests, plus one. The plus one is a token bucket's boundary slack: a worker spaces its
// requests 2/R apart (and a little more), so R/2 of them fit in a window of a second, but
// a request whose way to the double is a moment quicker than the one before it lands in
// the same window as the one that opened it. The double sent no 429 after the first
// second (none at all is expected). The report gathered from the fleet is complete, and
// both queues are empty afterwards.
func TestFleetScaleSharesProviderRate(t *testing.T) {
	const (
		rate     = 4  // R, the key's requests per second
		fleet    = 2  // workers
		messages = 36 // lookup messages of 50 addresses: one MetaDefender request each
	)
	srv := useMoto(t)
	isolateProviders(t)
	const key = "md-key-shared-by-a-fleet"
	t.Setenv("MDCLOUD_APIKEY", key)
	md := fakeprovider.MetaDefender(t, fakeprovider.Options{Key: key, Rate: rate, Burst: fleet})
	cfg := doublesConfig(t, map[string]string{"metadefender": md.URL},
		fmt.Sprintf("rate: %d/s", rate), fmt.Sprintf("burst: %d", fleet), "daily_quota: 0", "batch_size: 50")

	client := fleetSQS(t, srv)
	lookups := fleetQueue(t, client, "fleet-rate-lookups")
	results := fleetQueue(t, client, "fleet-rate-results")
	addresses := messages * vetting.MaxAddressesPerMessage
	inventory := filepath.Join(t.TempDir(), "run.json")
	fleetCollect(t, exitOK, "--input", manyAddresses(t, addresses), "--inventory", inventory, "--queue-url", lookups)

	// One receiving loop per worker (--workers 1): each takes ten messages, five
	// seconds of its share, at a time, so that both have work for most of the run.
	workers := fleetStartWorkers(t, fleet, "--config", cfg, "--no-cache", "--workers", "1", "--fleet-size", strconv.Itoa(fleet),
		"--queue-url", lookups, "--results-url", results, "--idle-exit", "3s")
	rep := sgvet(t, "", "report", "--inventory", inventory, "--results-url", results, "--wait", fleetDeadline.String(),
		"--format", "json", "--fail-on", "none")
	fleetWaitWorkers(t, workers)
	if rep.code != exitOK {
		t.Errorf("sgvet report exited %d, want %d; stderr:\n%s", rep.code, exitOK, rep.stderr)
	}
	if s := fleetDecodeReport(t, "report", rep.stdout).Summary; s.Total != addresses || s.Vetted != addresses || s.Unvetted != 0 {
		t.Errorf("report: %d addresses, %d vetted, %d unvetted; want all %d vetted", s.Total, s.Vetted, s.Unvetted, addresses)
	}

	reqs := md.Requests()
	if len(reqs) < messages {
		t.Fatalf("the double got %d requests, want at least %d (one per message)", len(reqs), messages)
	}
	times := make([]time.Time, len(reqs))
	for i, r := range reqs {
		times[i] = r.At
	}
	slices.SortFunc(times, time.Time.Compare)
	most, at := fleetBusiestSecond(times)
	t.Logf("%d requests over %v; busiest second after the first: %d requests from +%v; %d 429s in all",
		len(times), times[len(times)-1].Sub(times[0]).Round(time.Millisecond), most, at.Sub(times[0]).Round(time.Millisecond), md.Throttled())
	if most > rate+1 {
		t.Errorf("the fleet made %d requests in the second from +%v, want at most %d (R=%d, plus one at the window's edges)",
			most, at.Sub(times[0]), rate+1, rate)
	}
	for _, when := range md.ThrottledAt() {
		if d := when.Sub(times[0]); d >= time.Second {
			t.Errorf("the double sent a 429 at +%v, after the first second", d)
		}
	}
	// Both workers asked the double: a worker with --workers 1 holds one connection.
	if n := md.Connections(); n < fleet {
		t.Errorf("the double accepted %d connections, want one from each of the %d workers at least", n, fleet)
	}
	fleetCheckEmpty(t, client, "lookups", lookups)
	fleetCheckEmpty(t, client, "results", results)
}

// fleetDeployStack creates the stack of deploy/sgvet-queues.yaml on moto's CloudFormation
// with params, waits until it is complete, and returns its outputs' values by key.
func fleetDeployStack(t *testing.T, srv *motoserver.Server, stack string, params map[string]string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), fleetDeadline)
	defer cancel()
	outputs := map[string]string{}
	for k, o := range srv.DeployStack(ctx, t, fleetRegion, "../../deploy/sgvet-queues.yaml", stack, params) {
		outputs[k] = aws.ToString(o.OutputValue)
	}
	return outputs
}

// TestFleetScaleOnDeployedStack deploys deploy/sgvet-queues.yaml to moto's CloudFormation
// and runs a fleet on the queues it made, found from the stack's outputs: sgvet collect,
// two sgvet work --idle-exit, sgvet report. The report has the same findings and summary
// as sgvet audit of the same input in one process, with the same exit status; afterwards
// the lookups and results queues and their dead-letter queues hold no message.
func TestFleetScaleOnDeployedStack(t *testing.T) {
	srv := useMoto(t)
	isolateProviders(t)
	const key = "md-key-for-the-stack"
	t.Setenv("MDCLOUD_APIKEY", key)
	md := fakeprovider.MetaDefender(t, fakeprovider.Options{Key: key, Listings: map[string]fakeprovider.Listing{
		"85.25.199.246": {Status: "malicious", Categories: []string{"botnet"}},
		"41.71.171.50":  {Status: "suspicious", Categories: []string{"scanner"}},
	}})
	cfg := doublesConfig(t, map[string]string{"metadefender": md.URL}, "daily_quota: 0")
	// Small visibility timeouts: a message a worker let go would be back within seconds,
	// and the heartbeat extends those in hand every five.
	outputs := fleetDeployStack(t, srv, "fleet-stack", map[string]string{
		"NamePrefix":               "fleet",
		"LookupsVisibilityTimeout": "10",
		"ResultsVisibilityTimeout": "10",
		"MaxReceiveCount":          "5",
	})
	queues := map[string]string{}
	for _, k := range []string{"LookupsQueueUrl", "ResultsQueueUrl", "LookupsDeadLetterQueueUrl", "ResultsDeadLetterQueueUrl"} {
		if outputs[k] == "" {
			t.Fatalf("the stack has no output %s: %v", k, outputs)
		}
		queues[k] = outputs[k]
	}
	lookups, results := queues["LookupsQueueUrl"], queues["ResultsQueueUrl"]

	input := []string{"--input", "../../examples/security-groups.json", "--input", "../../examples/network-interfaces.json"}
	providers := []string{"--config", cfg, "--no-cache", "--blocklist", "../../examples/blocklist.netset"}
	reportFlags := []string{"--format", "json", "--fail-on", "none"}

	// The example's customer-managed prefix lists cannot be expanded from files: the
	// collection, and so the audit, is incomplete.
	inventory := filepath.Join(t.TempDir(), "run.json")
	fleetCollect(t, exitIncomplete, slices.Concat(input, []string{"--inventory", inventory, "--queue-url", lookups})...)
	workers := fleetStartWorkers(t, 2, slices.Concat(providers, []string{"--queue-url", lookups, "--results-url", results, "--idle-exit", "3s"})...)
	fleet := sgvet(t, "", slices.Concat([]string{"report", "--config", cfg, "--inventory", inventory, "--results-url", results,
		"--wait", fleetDeadline.String()}, reportFlags)...)
	fleetWaitWorkers(t, workers)
	alone := sgvet(t, "", slices.Concat([]string{"audit"}, input, providers, reportFlags)...)

	if fleet.code != alone.code || alone.code != exitIncomplete {
		t.Errorf("sgvet report exited %d, sgvet audit %d; want both %d\nreport stderr:\n%s\naudit stderr:\n%s",
			fleet.code, alone.code, exitIncomplete, fleet.stderr, alone.stderr)
	}
	fleetFound, fleetSummary := reportFindings(t, "report", fleet.stdout)
	aloneFound, aloneSummary := reportFindings(t, "audit", alone.stdout)
	if len(aloneFound) == 0 {
		t.Fatalf("sgvet audit found nothing:\n%s", alone.stdout)
	}
	if !reflect.DeepEqual(fleetSummary, aloneSummary) {
		t.Errorf("summary of the fleet's report:\n%v\nof sgvet audit:\n%v", fleetSummary, aloneSummary)
	}
	if !reflect.DeepEqual(fleetFound, aloneFound) {
		a, _ := json.MarshalIndent(fleetFound, "", " ")
		b, _ := json.MarshalIndent(aloneFound, "", " ")
		t.Errorf("the fleet's report has %d findings, sgvet audit %d; they differ:\nfleet:\n%.4000s\naudit:\n%.4000s", len(fleetFound), len(aloneFound), a, b)
	}
	if s := fleetDecodeReport(t, "report", fleet.stdout).Summary; s.Vetted == 0 || s.Vetted+s.Unvetted != s.Total {
		t.Errorf("report: %d addresses, %d vetted, %d unvetted", s.Total, s.Vetted, s.Unvetted)
	}
	if md.Count() == 0 {
		t.Error("the fleet never asked MetaDefender")
	}
	t.Logf("queues %v; %d findings; MetaDefender asked %d times", slices.Sorted(maps.Values(queues)), len(fleetFound), md.Count())

	client := fleetSQS(t, srv)
	for _, k := range slices.Sorted(maps.Keys(queues)) {
		fleetCheckEmpty(t, client, k, queues[k])
	}
}

// fleetSQSCalls counts the SQS calls that pass through a proxy in front of moto, by
// action and queue name.
type fleetSQSCalls struct {
	mu    sync.Mutex
	calls map[[2]string]int // {action, queue name}
}

// fleetCountSQS starts a proxy in front of srv that counts the SQS calls through it, and
// points the SDK at it.
func fleetCountSQS(t *testing.T, srv *motoserver.Server) *fleetSQSCalls {
	t.Helper()
	c := &fleetSQSCalls{calls: map[[2]string]int{}}
	front := frontMoto(t, srv.URL, func(_ http.ResponseWriter, r *http.Request, body []byte) bool {
		// The SDK speaks SQS's JSON protocol: the action is in X-Amz-Target, the queue's
		// URL in the body.
		var in struct {
			QueueURL string `json:"QueueUrl"`
		}
		json.Unmarshal(body, &in)
		if action, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS."); ok {
			c.mu.Lock()
			c.calls[[2]string{action, path.Base(in.QueueURL)}]++
			c.mu.Unlock()
		}
		return false
	})
	t.Setenv("AWS_ENDPOINT_URL", front)
	return c
}

// count returns the calls of action on the queue named queue.
func (c *fleetSQSCalls) count(action, queue string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[[2]string{action, queue}]
}

func (c *fleetSQSCalls) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var lines []string
	for k, n := range c.calls {
		lines = append(lines, fmt.Sprintf("%s %s: %d", k[1], k[0], n))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestFleetScaleSQSCallsAreBatched counts the SQS calls of a run: collect sends its
// lookup messages ten to a SendMessageBatch call, a worker publishes the verdicts of the
// ten lookups it takes at a time in one SendMessageBatch call and deletes them in one
// DeleteMessageBatch, and report deletes its verdict messages ten at a time; so does
// audit over SQS. With M = ceil(addresses/50) messages each of those is ceil(M/10) calls.
// One receiving loop (--workers 1) takes the lookups, so that each receive gets ten while
// ten are left.
func TestFleetScaleSQSCallsAreBatched(t *testing.T) {
	const addresses = 2525 // 51 messages, the last of 25 addresses: 6 calls of 10, 10, ..., 1
	srv := useMoto(t)
	isolateProviders(t)
	client := fleetSQS(t, srv)
	names := []string{"fleet-calls-lookups", "fleet-calls-results", "fleet-calls-audit-lookups", "fleet-calls-audit-results"}
	urls := map[string]string{}
	for _, name := range names {
		urls[name] = fleetQueue(t, client, name)
	}
	calls := fleetCountSQS(t, srv)
	input := manyAddresses(t, addresses)
	blocklist := writeFile(t, "listed.netset", "51.15.0.1\n51.15.3.0/24\n")
	messages := (addresses + vetting.MaxAddressesPerMessage - 1) / vetting.MaxAddressesPerMessage
	batches := (messages + 9) / 10

	check := func(step, action, queue string, want int) {
		t.Helper()
		if got := calls.count(action, queue); got != want {
			t.Errorf("after %s: %d %s calls on %s, want %d (%d addresses, %d messages)\nall calls:\n%s",
				step, got, action, queue, want, addresses, messages, calls)
		}
	}

	inventory := filepath.Join(t.TempDir(), "run.json")
	fleetCollect(t, exitOK, "--input", input, "--inventory", inventory, "--queue-url", urls["fleet-calls-lookups"])
	check("collect", "SendMessageBatch", "fleet-calls-lookups", batches)

	work := sgvet(t, "", "work", "--blocklist", blocklist, "--no-cache", "--workers", "1",
		"--queue-url", urls["fleet-calls-lookups"], "--results-url", urls["fleet-calls-results"], "--idle-exit", "5s")
	if work.code != exitOK {
		t.Fatalf("sgvet work exited %d; stderr:\n%s", work.code, work.stderr)
	}
	check("work", "DeleteMessageBatch", "fleet-calls-lookups", batches)
	check("work", "SendMessageBatch", "fleet-calls-results", batches)

	rep := sgvet(t, "", "report", "--inventory", inventory, "--results-url", urls["fleet-calls-results"],
		"--wait", fleetDeadline.String(), "--format", "json", "--fail-on", "none")
	if rep.code != exitOK {
		t.Fatalf("sgvet report exited %d; stderr:\n%s", rep.code, rep.stderr)
	}
	if s := fleetDecodeReport(t, "report", rep.stdout).Summary; s.Vetted != addresses {
		t.Errorf("report: %d of %d addresses vetted", s.Vetted, addresses)
	}
	check("report", "DeleteMessageBatch", "fleet-calls-results", batches)

	audit := sgvet(t, "", "audit", "--input", input, "--blocklist", blocklist, "--no-cache", "--workers", "1",
		"--queue-url", urls["fleet-calls-audit-lookups"], "--results-url", urls["fleet-calls-audit-results"],
		"--format", "json", "--fail-on", "none")
	if audit.code != exitOK {
		t.Fatalf("sgvet audit --queue-url exited %d; stderr:\n%s", audit.code, audit.stderr)
	}
	check("audit", "SendMessageBatch", "fleet-calls-audit-lookups", batches)
	check("audit", "DeleteMessageBatch", "fleet-calls-audit-lookups", batches)
	check("audit", "SendMessageBatch", "fleet-calls-audit-results", batches)
	check("audit", "DeleteMessageBatch", "fleet-calls-audit-results", batches)
	t.Logf("SQS calls for %d addresses (%d messages):\n%s", addresses, messages, calls)
	for _, name := range names {
		fleetCheckEmpty(t, client, name, urls[name])
	}
}
