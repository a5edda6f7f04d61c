package vetting

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/sgvet/sgvet/queue"
	"github.com/sgvet/sgvet/reputation"
)

func addresses(n int) []reputation.Target {
	out := make([]reputation.Target, n)
	for i := range out {
		out[i] = reputation.AddressTarget(netip.AddrFrom4([4]byte{198, 51, byte(100 + i/250), byte(1 + i%250)}))
	}
	return out
}

func verdictsOn(targets []reputation.Target, provider string, status reputation.Status) []reputation.Verdict {
	out := make([]reputation.Verdict, len(targets))
	for i, t := range targets {
		out[i] = reputation.Verdict{Provider: provider, Target: t, Status: status}
	}
	return out
}

// A verdict delivered twice, or a target vetted twice, is kept once; Missing counts the
// distinct targets without a verdict.
func TestGatheringDuplicates(t *testing.T) {
	ts := addresses(3)
	g := NewGathering(append(ts, ts[0]))
	if got := g.Missing(); got != 3 {
		t.Fatalf("Missing() = %d, want 3", got)
	}
	msg := append(verdictsOn(ts[:2], "blocklist", reputation.Malicious), verdictsOn(ts[:1], "metadefender", reputation.Clean)...)
	g.Add(msg)
	g.Add(msg) // delivered again
	g.Add(verdictsOn(ts[:1], "metadefender", reputation.Clean))
	if got := g.Missing(); got != 1 {
		t.Errorf("Missing() = %d, want 1", got)
	}
	got := g.Results()
	if len(got) != 2 || len(got[0].Verdicts) != 2 || len(got[1].Verdicts) != 1 {
		t.Errorf("Results() = %+v, want 2 verdicts on %s and 1 on %s", got, ts[0], ts[1])
	}
}

// SendLookups cuts the targets into messages of at most MaxAddressesPerMessage; a Gatherer
// takes its run's verdicts, makes another run's visible again, skips what it cannot decode,
// and holds its messages until Ack.
func TestSendAndGather(t *testing.T) {
	ctx := t.Context()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ts := addresses(120)
	lookups := queue.NewMemory(0, time.Hour)
	n, err := SendLookups(ctx, lookups, "run-1", ts, nil)
	if err != nil || n != 3 {
		t.Fatalf("SendLookups(120 targets) = %d, %v; want 3 messages", n, err)
	}

	results := queue.NewMemory(0, time.Hour)
	for i := range 3 {
		msgs, err := lookups.Receive(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		m, err := DecodeLookup(msgs[0].Body)
		if err != nil || len(m.Addresses) != []int{50, 50, 20}[i] {
			t.Fatalf("lookup message %d = %d addresses, %v", i, len(m.Addresses), err)
		}
		body, _ := EncodeVerdicts(m.Run, verdictsOn(m.Addresses, "blocklist", reputation.Clean))
		if i == 1 {
			// Another run's verdicts, something undecodable, and a duplicate come first.
			other, _ := EncodeVerdicts("run-2", verdictsOn(m.Addresses, "blocklist", reputation.Clean))
			if err := results.Send(ctx, other, []byte("{not json"), body); err != nil {
				t.Fatal(err)
			}
		}
		if err := results.Send(ctx, body); err != nil {
			t.Fatal(err)
		}
	}

	g := &Gatherer{Results: results, Run: "run-1", Gathering: NewGathering(ts), Log: log, Hold: time.Hour}
	wait, cancel := context.WithTimeout(ctx, time.Minute) // generous: the gathering ends as soon as all arrive
	defer cancel()
	if err := g.Gather(wait); err != nil {
		t.Fatal(err)
	}
	if got := g.Gathering.Missing(); got != 0 {
		t.Fatalf("Missing() after Gather = %d, want 0", got)
	}
	if got := len(g.Gathering.Results()); got != 120 {
		t.Errorf("results = %d, want 120", got)
	}
	if len(g.held) != 4 {
		t.Errorf("held %d messages, want 4 (three and a duplicate)", len(g.held))
	}
	if err := g.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	// Left: the other run's message, visible, and the undecodable one, in flight.
	left, err := results.Receive(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, m := range left {
		bodies = append(bodies, fmt.Sprintf("%.20s", m.Body))
	}
	if len(left) != 1 || bodies[0] != `{"v":1,"run":"run-2"` {
		t.Errorf("left on the results queue = %q, want the other run's message", bodies)
	}
}

// With Requeue, a message of another run goes back as a new message, so that passing it
// over never counts towards its move to a dead-letter queue.
func TestGatherRequeuesOtherRuns(t *testing.T) {
	ctx := t.Context()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ts := addresses(2)
	results := queue.NewMemory(0, time.Hour)
	other, _ := EncodeVerdicts("run-2", verdictsOn(ts, "blocklist", reputation.Clean))
	own, _ := EncodeVerdicts("run-1", verdictsOn(ts, "blocklist", reputation.Clean))
	if err := results.Send(ctx, other, own); err != nil {
		t.Fatal(err)
	}
	var requeued []string
	g := &Gatherer{Results: results, Run: "run-1", Gathering: NewGathering(ts), Log: log,
		Requeue: func(run string) queue.Transport { requeued = append(requeued, run); return results }}
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := g.Gather(wait); err != nil {
		t.Fatal(err)
	}
	if len(requeued) != 1 || requeued[0] != "run-2" {
		t.Errorf("requeued for runs %q, want [run-2]", requeued)
	}
	left, err := results.Receive(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || string(left[0].Body) != string(other) || left[0].ReceiveCount != 1 {
		t.Errorf("left = %d messages, first %+v; want the other run's, never received", len(left), left)
	}
}

// cancelWhenDrained is a results queue that ends the gathering, by cancel, once it has no
// message to give: the reporter is stopped mid-gathering.
type cancelWhenDrained struct {
	queue.Transport
	cancel context.CancelFunc
	calls  int
}

func (c *cancelWhenDrained) Receive(ctx context.Context, max int) ([]queue.Message, error) {
	if c.calls++; c.calls > 1 {
		c.cancel()
	}
	return c.Transport.Receive(ctx, max)
}

// A gatherer stopped mid-gathering releases the messages it held: another gathers them at
// once, rather than once the first one's hold passes.
func TestGatherReleaseThenGatherAgain(t *testing.T) {
	ctx := t.Context()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ts := addresses(60)
	results := queue.NewMemory(0, time.Hour)
	first, _ := EncodeVerdicts("run-1", verdictsOn(ts[:50], "blocklist", reputation.Clean))
	if err := results.Send(ctx, first); err != nil {
		t.Fatal(err)
	}

	stopped, cancel := context.WithCancel(ctx)
	defer cancel()
	g := &Gatherer{Results: &cancelWhenDrained{Transport: results, cancel: cancel}, Run: "run-1", Gathering: NewGathering(ts), Log: log, Hold: time.Hour}
	if err := g.Gather(stopped); err != nil {
		t.Fatal(err)
	}
	if got := g.Gathering.Missing(); got != 10 {
		t.Fatalf("Missing() after a stopped Gather = %d, want 10", got)
	}
	if err := g.Release(ctx); err != nil {
		t.Fatalf("Release() = %v", err)
	}

	second, _ := EncodeVerdicts("run-1", verdictsOn(ts[50:], "blocklist", reputation.Clean))
	if err := results.Send(ctx, second); err != nil {
		t.Fatal(err)
	}
	again := &Gatherer{Results: results, Run: "run-1", Gathering: NewGathering(ts), Log: log, Hold: time.Hour}
	wait, stop := context.WithTimeout(ctx, time.Minute) // generous: the gathering ends as soon as both arrive
	defer stop()
	if err := again.Gather(wait); err != nil {
		t.Fatal(err)
	}
	if got := again.Gathering.Missing(); got != 0 {
		t.Errorf("Missing() of a gathering after Release = %d, want 0", got)
	}
}
