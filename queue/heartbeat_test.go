package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// extendCall is one call of Extend.
type extendCall struct {
	receipt string
	d       time.Duration
	err     error
}

// recordingTransport passes calls to its Transport, and reports each Extend on extended
// once it has returned (or drops the report if the call's context ends first).
type recordingTransport struct {
	Transport
	extended chan extendCall
}

func newRecording(t Transport) *recordingTransport {
	return &recordingTransport{Transport: t, extended: make(chan extendCall, 100)}
}

func (r *recordingTransport) Extend(ctx context.Context, receipt string, d time.Duration) error {
	err := r.Transport.Extend(ctx, receipt, d)
	select {
	case r.extended <- extendCall{receipt, d, err}:
	case <-ctx.Done():
	}
	return err
}

// tick makes the heartbeat fed by ticks extend once, and returns the n extensions it
// made.
func tick(t *testing.T, ticks chan<- time.Time, r *recordingTransport, n int) []extendCall {
	t.Helper()
	ticks <- time.Now()
	calls := make([]extendCall, n)
	for i := range calls {
		calls[i] = <-r.extended
	}
	return calls
}

// stopped fails the test if the heartbeat fed by ticks still takes ticks.
func stopped(t *testing.T, ticks chan<- time.Time) {
	t.Helper()
	select {
	case ticks <- time.Now():
		t.Error("the heartbeat still takes ticks after stop returned")
	default:
	}
}

func TestHeartbeatExtends(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	m := newMemoryClock(10, time.Minute, clock.now)
	msgs := deliver(t, m, "a", "b")
	r := newRecording(m)
	ticks := make(chan time.Time)
	stop := heartbeat(ctx, r, time.Minute, ticks, []string{msgs[0].Receipt, msgs[1].Receipt})
	for range 3 {
		clock.advance(30 * time.Second)
		for i, c := range tick(t, ticks, r, 2) {
			if want := (extendCall{msgs[i].Receipt, time.Minute, nil}); c != want {
				t.Errorf("extension %d = %+v, want %+v", i, c, want)
			}
		}
	}
	// 90 seconds after a receipt with a visibility of one minute, the heartbeat keeps
	// the messages in flight.
	nothingVisible(t, m)
	if err := stop(); err != nil {
		t.Errorf("stop() = %v, want nil", err)
	}
	stopped(t, ticks)
	if err := stop(); err != nil {
		t.Errorf("second stop() = %v, want nil", err)
	}
	if err := m.Ack(ctx, msgs[0].Receipt, msgs[1].Receipt); err != nil {
		t.Errorf("Ack after stop = %v", err)
	}
}

func TestHeartbeatUnknownReceipt(t *testing.T) {
	ctx := t.Context()
	m := newMemoryClock(10, time.Minute, newFakeClock().now)
	msgs := deliver(t, m, "a", "b")
	acked, kept := msgs[0].Receipt, msgs[1].Receipt
	r := newRecording(m)
	ticks := make(chan time.Time)
	stop := heartbeat(ctx, r, time.Minute, ticks, []string{acked, kept})
	if err := m.Ack(ctx, acked); err != nil {
		t.Fatal(err)
	}
	calls := tick(t, ticks, r, 2)
	if !errors.Is(calls[0].err, ErrUnknownReceipt) || calls[1].err != nil {
		t.Fatalf("extensions = %+v, want the acknowledged receipt unknown and the other extended", calls)
	}
	// The unknown receipt is extended no more.
	if c := tick(t, ticks, r, 1)[0]; c.receipt != kept {
		t.Errorf("extension after the unknown receipt = %+v, want only %s", c, kept)
	}
	err := stop()
	if !errors.Is(err, ErrUnknownReceipt) || !strings.Contains(err.Error(), acked) || strings.Contains(err.Error(), kept) {
		t.Errorf("stop() = %v, want ErrUnknownReceipt naming %s only", err, acked)
	}
}

// scriptedTransport answers each Extend with the next of its errors; a call past them
// waits for its context to end.
type scriptedTransport struct {
	Transport
	errs    []error
	calls   int
	waiting chan struct{} // closed when a call waits for its context
}

func (s *scriptedTransport) Extend(ctx context.Context, receipt string, d time.Duration) error {
	s.calls++
	if s.calls <= len(s.errs) {
		return s.errs[s.calls-1]
	}
	close(s.waiting)
	<-ctx.Done()
	return ctx.Err()
}

func TestHeartbeatErrors(t *testing.T) {
	errDown := errors.New("service unavailable")
	unknown := fmt.Errorf("extend r: %w", ErrUnknownReceipt)
	for _, tc := range []struct {
		name string
		errs []error
		want error // nil, or what the error of stop is
	}{
		{"all extended", []error{nil, nil}, nil},
		{"failure then success", []error{errDown, nil}, nil},
		{"success then failure", []error{nil, errDown}, errDown},
		{"two failures", []error{errDown, errDown}, errDown},
		{"unknown receipt", []error{nil, unknown}, ErrUnknownReceipt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &scriptedTransport{errs: tc.errs, waiting: make(chan struct{})}
			r := newRecording(s)
			ticks := make(chan time.Time)
			stop := heartbeat(t.Context(), r, time.Minute, ticks, []string{"r"})
			for range tc.errs {
				tick(t, ticks, r, 1)
			}
			err := stop()
			if !errors.Is(err, tc.want) {
				t.Errorf("stop() after extensions ending %v = %v, want %v", tc.errs, err, tc.want)
			}
			stopped(t, ticks)
			if s.calls != len(tc.errs) {
				t.Errorf("Extend called %d times, want %d", s.calls, len(tc.errs))
			}
		})
	}
}

// TestHeartbeatEnds checks that stop, or the end of the heartbeat's context, ends an
// extension in progress, and is no error.
func TestHeartbeatEnds(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(cancel context.CancelFunc, stop func() error) error
	}{
		{"stop", func(_ context.CancelFunc, stop func() error) error { return stop() }},
		{"context", func(cancel context.CancelFunc, stop func() error) error {
			cancel()
			return stop()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			s := &scriptedTransport{waiting: make(chan struct{})}
			ticks := make(chan time.Time)
			stop := heartbeat(ctx, s, time.Minute, ticks, []string{"r"})
			ticks <- time.Now()
			<-s.waiting
			if err := tc.end(cancel, stop); err != nil {
				t.Errorf("stop() with an extension in progress = %v, want nil", err)
			}
			stopped(t, ticks)
		})
	}
}

// TestHeartbeat runs Heartbeat on its own clock, with an interval short enough to see
// a few extensions at once.
func TestHeartbeat(t *testing.T) {
	ctx := t.Context()
	// The clock stands still, so that no message lapses however late the extensions.
	m := newMemoryClock(10, time.Minute, newFakeClock().now)
	msg := deliver(t, m, "a")[0]
	r := newRecording(m)
	stop := Heartbeat(ctx, r, 10*time.Millisecond, msg.Receipt)
	for range 3 {
		if c := <-r.extended; c != (extendCall{msg.Receipt, 10 * time.Millisecond, nil}) {
			t.Errorf("extension = %+v, want %s by 10ms", c, msg.Receipt)
		}
	}
	if err := stop(); err != nil {
		t.Errorf("stop() = %v, want nil", err)
	}
	if err := m.Ack(ctx, msg.Receipt); err != nil {
		t.Error(err)
	}
}

func TestHeartbeatShortVisibility(t *testing.T) {
	for _, d := range []time.Duration{-time.Second, 0, 1} {
		if err := Heartbeat(t.Context(), NewMemory(1, time.Minute), d, "r")(); err == nil {
			t.Errorf("Heartbeat(%v)() = nil, want an error", d)
		}
	}
}

// TestSQSHeartbeat checks that a heartbeat keeps a message invisible on SQS well past the
// queue's visibility timeout. Each extension is followed by a one-second poll, well
// within the extension.
func TestSQSHeartbeat(t *testing.T) {
	client, url := sqsQueue(t, map[string]string{"VisibilityTimeout": "2"})
	q := NewSQS(client, url, fastReceive)
	ctx := t.Context()
	msgs := deliver(t, q, "slow work")
	received := time.Now()
	r := newRecording(q)
	ticks := make(chan time.Time)
	stop := heartbeat(ctx, r, 4*time.Second, ticks, []string{msgs[0].Receipt})
	for time.Since(received) < 6*time.Second {
		if c := tick(t, ticks, r, 1)[0]; c.err != nil {
			t.Fatalf("Extend(%q) = %v, want nil", msgs[0].Receipt, c.err)
		}
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) > 0 {
			t.Fatalf("message received again %v after its first receipt, with a heartbeat", time.Since(received))
		}
	}
	if err := stop(); err != nil {
		t.Errorf("stop() = %v, want nil", err)
	}
	// With the heartbeat stopped, the message is delivered again.
	again, err := q.Receive(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if again[0].ID != msgs[0].ID || again[0].ReceiveCount != 2 {
		t.Errorf("Receive after the heartbeat = %+v, want message %s with ReceiveCount 2", again[0], msgs[0].ID)
	}
}
