package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
	timeout := time.After(fleetDeadline)
	for i, w := range workers {
		var err error
		select {
		case err = <-w.done:
			w.done <- err
		case <-timeout:
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
