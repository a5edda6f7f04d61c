package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sgvet/sgvet/internal/motoserver"
)

var moto *motoserver.Server

func TestMain(m *testing.M) { os.Exit(motoserver.Main(m, &moto)) }

// sqsQueue creates a standard queue in a freshly wiped moto with the given queue
// attributes, and returns a client and the queue's URL.
func sqsQueue(t *testing.T, attrs map[string]string) (*sqs.Client, string) {
	t.Helper()
	s := motoserver.Require(t, moto)
	client := sqs.NewFromConfig(s.AWSConfig(t, "us-east-1"))
	out, err := client.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String("lookups"), Attributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	return client, aws.ToString(out.QueueUrl)
}

// fastReceive makes Receive long-poll one second at a time, so that tests wait little
// for an empty answer.
var fastReceive = SQSOptions{WaitTime: time.Second}

// countingClient passes calls to the real client and counts them; it keeps the entries of
// each SendMessageBatch call.
type countingClient struct {
	SQSClient

	mu      sync.Mutex
	calls   map[string]int
	batches [][]types.SendMessageBatchRequestEntry
}

func (c *countingClient) count(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = make(map[string]int)
	}
	c.calls[op]++
}

func (c *countingClient) n(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[op]
}

func (c *countingClient) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	c.count("SendMessageBatch")
	c.mu.Lock()
	c.batches = append(c.batches, in.Entries)
	c.mu.Unlock()
	return c.SQSClient.SendMessageBatch(ctx, in, optFns...)
}

func (c *countingClient) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	c.count("ReceiveMessage")
	return c.SQSClient.ReceiveMessage(ctx, in, optFns...)
}

func (c *countingClient) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	c.count("ChangeMessageVisibilityBatch")
	return c.SQSClient.ChangeMessageVisibilityBatch(ctx, in, optFns...)
}

func (c *countingClient) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	c.count("DeleteMessageBatch")
	return c.SQSClient.DeleteMessageBatch(ctx, in, optFns...)
}

// payload returns the bytes of bodies and message attributes in entries, as SQS counts
// them against its request limit.
func payload(entries []types.SendMessageBatchRequestEntry) int {
	n := 0
	for _, e := range entries {
		n += len(aws.ToString(e.MessageBody))
		for name, v := range e.MessageAttributes {
			n += len(name) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue)) + len(v.BinaryValue)
		}
	}
	return n
}

// receiveN receives messages until n have arrived, and returns them in flight.
func receiveN(t *testing.T, q Transport, n int) []Message {
	t.Helper()
	var all []Message
	for len(all) < n {
		msgs, err := q.Receive(t.Context(), 10)
		if err != nil {
			t.Fatalf("Receive after %d of %d messages: %v", len(all), n, err)
		}
		all = append(all, msgs...)
	}
	return all
}

// receiveAll receives messages until n have arrived, acknowledges them, and returns them.
func receiveAll(t *testing.T, q Transport, n int) []Message {
	t.Helper()
	msgs := receiveN(t, q, n)
	if err := q.Ack(t.Context(), receipts(msgs)...); err != nil {
		t.Fatal(err)
	}
	return msgs
}

// deliver sends bodies to q and receives them, and returns them in flight.
func deliver(t *testing.T, q Transport, bodies ...string) []Message {
	t.Helper()
	for _, b := range bodies {
		if err := q.Send(t.Context(), []byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	return receiveN(t, q, len(bodies))
}

func receipts(msgs []Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Receipt
	}
	return out
}

// messagesLeft returns how many messages moto holds in the queue, visible or in flight.
func messagesLeft(t *testing.T, client *sqs.Client, url string) int {
	t.Helper()
	out, err := client.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{
		QueueUrl: &url,
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range out.Attributes {
		i, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("GetQueueAttributes: %v", out.Attributes)
		}
		n += i
	}
	return n
}

func TestSQSSendBatches(t *testing.T) {
	big := func(i int) []byte { return append([]byte(strconv.Itoa(i)+":"), bytes.Repeat([]byte("x"), 100<<10)...) }
	small := func(i int) []byte { return fmt.Appendf(nil, `{"v":1,"addresses":["203.0.113.%d"]}`, i) }
	for _, tc := range []struct {
		name      string
		bodies    int
		body      func(int) []byte
		wantCalls int
	}{
		{"25 small bodies", 25, small, 3},
		{"one body", 1, small, 1},
		{"ten bodies", 10, small, 1},
		// Two bodies of 100 KiB fit in 256 KiB, three do not.
		{"5 bodies of 100 KiB", 5, big, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, url := sqsQueue(t, nil)
			counter := &countingClient{SQSClient: client}
			q := NewSQS(counter, url, fastReceive)
			want := make(map[string]int)
			var bodies [][]byte
			for i := range tc.bodies {
				b := tc.body(i)
				bodies = append(bodies, b)
				want[string(b)] = 1
			}
			if err := q.Send(t.Context(), bodies...); err != nil {
				t.Fatal(err)
			}
			if got := counter.n("SendMessageBatch"); got != tc.wantCalls {
				t.Errorf("Send(%d bodies) made %d SendMessageBatch calls, want %d", tc.bodies, got, tc.wantCalls)
			}
			for i, entries := range counter.batches {
				if len(entries) > 10 {
					t.Errorf("call %d has %d entries, want at most 10", i, len(entries))
				}
				if n := payload(entries); n > 256<<10 {
					t.Errorf("call %d carries %d bytes, want at most %d", i, n, 256<<10)
				}
				ids := make(map[string]bool)
				for _, e := range entries {
					if ids[aws.ToString(e.Id)] {
						t.Errorf("call %d repeats entry id %q", i, aws.ToString(e.Id))
					}
					ids[aws.ToString(e.Id)] = true
				}
			}

			got := make(map[string]int)
			for _, m := range receiveAll(t, q, len(bodies)) {
				got[string(m.Body)]++
			}
			for b, n := range got {
				if want[b] != n {
					t.Errorf("body %.20q received %d times, want %d", b, n, want[b])
				}
			}
			if len(got) != len(want) {
				t.Errorf("received %d distinct bodies, want %d", len(got), len(want))
			}
			if n := messagesLeft(t, client, url); n != 0 {
				t.Errorf("%d messages left in the queue after receiving and acknowledging all, want 0", n)
			}
		})
	}
}

func TestSQSSendRefusesBody(t *testing.T) {
	client, url := sqsQueue(t, nil)
	counter := &countingClient{SQSClient: client}
	q := NewSQS(counter, url, fastReceive)
	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"256 KiB", bytes.Repeat([]byte("x"), 256<<10), "body 1 is"},
		{"invalid UTF-8", []byte{'a', 0xff}, "body 1 is not text"},
		{"control character", []byte("a\x00b"), "body 1 is not text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := q.Send(t.Context(), []byte("fine"), tc.body, []byte("also fine"))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), url) {
				t.Errorf("Send(%.20q) = %v, want an error containing %q and the queue URL", tc.body, err, tc.want)
			}
		})
	}
	if n := counter.n("SendMessageBatch"); n != 0 {
		t.Errorf("Send of refused bodies made %d SendMessageBatch calls, want none", n)
	}
	// The largest body that fits, with its attributes, is sent.
	max := bytes.Repeat([]byte("x"), 256<<10-len(SchemaAttribute+"String"+MessageSchema))
	if err := q.Send(t.Context(), max); err != nil {
		t.Errorf("Send(%d bytes) = %v, want nil", len(max), err)
	}
}

func TestSQSAttributes(t *testing.T) {
	client, url := sqsQueue(t, nil)
	q := NewSQS(client, url, fastReceive)
	run := q.ForRun("2025-03-01T00:00:00Z-7f3a")
	if err := q.Send(t.Context(), []byte("no run")); err != nil {
		t.Fatal(err)
	}
	if err := run.Send(t.Context(), []byte("with run")); err != nil {
		t.Fatal(err)
	}
	if err := q.ForRun("").Send(t.Context(), []byte("empty run")); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		"no run":    {SchemaAttribute: MessageSchema},
		"with run":  {SchemaAttribute: MessageSchema, RunAttribute: "2025-03-01T00:00:00Z-7f3a"},
		"empty run": {SchemaAttribute: MessageSchema},
	}
	for _, m := range receiveAll(t, run, 3) {
		if got := fmt.Sprint(m.Attributes); got != fmt.Sprint(want[string(m.Body)]) {
			t.Errorf("Receive(%q).Attributes = %v, want %v", m.Body, got, want[string(m.Body)])
		}
		if m.ReceiveCount != 1 || m.ID == "" || m.Receipt == "" {
			t.Errorf("Receive(%q) = %+v, want an id, a receipt and ReceiveCount 1", m.Body, m)
		}
	}
}

func TestSQSAckAndNack(t *testing.T) {
	client, url := sqsQueue(t, nil)
	q := NewSQS(client, url, fastReceive)
	ctx := t.Context()
	received := make(map[string]Message)
	for _, m := range deliver(t, q, "acked", "nacked") {
		received[string(m.Body)] = m
	}
	if err := q.Ack(ctx, received["acked"].Receipt); err != nil {
		t.Fatalf("Ack = %v", err)
	}
	first := received["nacked"]
	if err := q.Extend(ctx, first.Receipt, 0); err != nil {
		t.Fatalf("Extend(0) = %v", err)
	}
	// The queue's visibility timeout is 30 seconds: only the nack makes the message
	// visible again now.
	msgs, err := q.Receive(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || string(msgs[0].Body) != "nacked" {
		t.Fatalf("Receive after a nack = %q, want only the nacked message", bodies(msgs))
	}
	again := msgs[0]
	if again.ID != first.ID || again.ReceiveCount != 2 || again.Receipt == first.Receipt {
		t.Errorf("Receive after a nack = %+v, want message %s with ReceiveCount 2 and a new receipt", again, first.ID)
	}
	if err := q.Ack(ctx, again.Receipt); err != nil {
		t.Fatal(err)
	}
	if n := messagesLeft(t, client, url); n != 0 {
		t.Errorf("%d messages left after acknowledging both, want 0", n)
	}
}

func TestSQSUnknownReceipt(t *testing.T) {
	client, url := sqsQueue(t, nil)
	counter := &countingClient{SQSClient: client}
	q := NewSQS(counter, url, fastReceive)
	ctx := t.Context()
	var sent [][]byte
	for i := range 12 {
		sent = append(sent, []byte(strconv.Itoa(i)))
	}
	if err := q.Send(ctx, sent...); err != nil {
		t.Fatal(err)
	}
	receipts := receipts(receiveN(t, q, len(sent)))

	// Two bogus receipts, one in each batch of ten: both are reported, and the real
	// receipts are acknowledged all the same.
	long := "bogus-" + strings.Repeat("A", 300)
	mixed := append([]string{"bogus-1"}, receipts[:10]...)
	mixed = append(mixed, long)
	mixed = append(mixed, receipts[10:]...)
	err := q.Ack(ctx, mixed...)
	if !errors.Is(err, ErrUnknownReceipt) {
		t.Fatalf("Ack(bogus and real receipts) = %v, want ErrUnknownReceipt", err)
	}
	if !strings.Contains(err.Error(), "bogus-1") || !strings.Contains(err.Error(), shortReceipt(long)) {
		t.Errorf("Ack(bogus and real receipts) = %v, want both bogus receipts named", err)
	}
	if strings.Contains(err.Error(), long) {
		t.Errorf("Ack(bogus and real receipts) = %v, want the long receipt shortened", err)
	}
	if got := counter.n("DeleteMessageBatch"); got != 2 {
		t.Errorf("Ack(%d receipts) made %d DeleteMessageBatch calls, want 2", len(mixed), got)
	}
	if n := messagesLeft(t, client, url); n != 0 {
		t.Errorf("%d messages left after Ack, want 0", n)
	}

	// The message of an acknowledged receipt is gone: it cannot be extended.
	if err := q.Extend(ctx, receipts[0], time.Minute); !errors.Is(err, ErrUnknownReceipt) {
		t.Errorf("Extend(acknowledged receipt) = %v, want ErrUnknownReceipt", err)
	}
	if err := q.Extend(ctx, "bogus", time.Minute); !errors.Is(err, ErrUnknownReceipt) || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("Extend(%q) = %v, want ErrUnknownReceipt naming it", "bogus", err)
	}
	if err := q.Extend(ctx, receipts[0], -time.Second); err == nil {
		t.Error("Extend by a negative duration succeeded, want an error")
	}
}

func TestSQSQueueGone(t *testing.T) {
	client, url := sqsQueue(t, nil)
	q := NewSQS(client, url, fastReceive)
	ctx := t.Context()
	msgs := deliver(t, q, "a")
	if _, err := client.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: &url}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Send", func() error { return q.Send(ctx, []byte("b")) }},
		{"Receive", func() error { _, err := q.Receive(ctx, 1); return err }},
		{"Ack", func() error { return q.Ack(ctx, msgs[0].Receipt) }},
		{"Extend", func() error { return q.Extend(ctx, msgs[0].Receipt, time.Minute) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, ErrQueueGone) || !strings.Contains(err.Error(), url) {
				t.Errorf("%s on a deleted queue = %v, want ErrQueueGone naming %s", tc.name, err, url)
			}
		})
	}
}

func TestSQSReceive(t *testing.T) {
	client, url := sqsQueue(t, nil)
	counter := &countingClient{SQSClient: client}
	q := NewSQS(counter, url, fastReceive)
	ctx := t.Context()

	if _, err := q.Receive(ctx, 0); err == nil {
		t.Error("Receive(0) succeeded, want an error")
	}

	// Receive goes on polling an empty queue until a message arrives.
	type received struct {
		msgs []Message
		err  error
	}
	got := make(chan received, 1)
	go func() {
		msgs, err := q.Receive(ctx, 100)
		got <- received{msgs, err}
	}()
	// Each call waits a second; see at least one come back empty.
	for counter.n("ReceiveMessage") < 2 {
		select {
		case r := <-got:
			t.Fatalf("Receive on an empty queue = %v, %v; want it to wait", r.msgs, r.err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := q.Send(ctx, []byte("late")); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil || len(r.msgs) != 1 || string(r.msgs[0].Body) != "late" {
		t.Fatalf("Receive = %q, %v; want the message sent while it waited", bodies(r.msgs), r.err)
	}

	cctx, cancel := context.WithCancel(ctx)
	errs := make(chan error, 1)
	go func() {
		_, err := q.Receive(cctx, 1)
		errs <- err
	}()
	cancel()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Errorf("Receive after cancel = %v, want %v", err, context.Canceled)
	}
}

func TestSQSRedelivery(t *testing.T) {
	client, url := sqsQueue(t, map[string]string{"VisibilityTimeout": "1"})
	q := NewSQS(client, url, fastReceive)
	ctx := t.Context()
	if err := q.Send(ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	first := receiveN(t, q, 1)[0]
	again := receiveN(t, q, 1)[0] // once the visibility timeout has passed
	if again.ID != first.ID || again.ReceiveCount != 2 || again.Receipt == first.Receipt {
		t.Errorf("Receive after the visibility timeout = %+v, want message %s with ReceiveCount 2 and a new receipt", again, first.ID)
	}
}

// failingClient reproduces what moto never does: SQS failing some entries of a
// SendMessageBatch call while queueing the others. It passes the entries that fail lets
// through to the real client, and reports the others as Failed (or not at all).
type failingClient struct {
	SQSClient
	// fail says what to do with the entry with body on the given attempt at it (1 for the
	// first): nil passes it on; a failure with a Code is reported as Failed; one with no
	// Code leaves the entry out of the answer altogether.
	fail func(body string, attempt int) *types.BatchResultErrorEntry

	mu       sync.Mutex
	attempts map[string]int
	calls    int
}

func (c *failingClient) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	c.mu.Lock()
	c.calls++
	if c.attempts == nil {
		c.attempts = make(map[string]int)
	}
	var pass []types.SendMessageBatchRequestEntry
	var failed []types.BatchResultErrorEntry
	for _, e := range in.Entries {
		body := aws.ToString(e.MessageBody)
		c.attempts[body]++
		if f := c.fail(body, c.attempts[body]); f != nil {
			if f.Code != nil {
				f.Id = e.Id
				failed = append(failed, *f)
			}
			continue
		}
		pass = append(pass, e)
	}
	c.mu.Unlock()
	out := &sqs.SendMessageBatchOutput{}
	if len(pass) > 0 {
		real := *in
		real.Entries = pass
		var err error
		if out, err = c.SQSClient.SendMessageBatch(ctx, &real, optFns...); err != nil {
			return nil, err
		}
	}
	out.Failed = append(out.Failed, failed...)
	return out, nil
}

func TestSQSSendFailedEntries(t *testing.T) {
	internal := func(times int) func(string, int) *types.BatchResultErrorEntry {
		return func(body string, attempt int) *types.BatchResultErrorEntry {
			if body != "flaky" || attempt > times {
				return nil
			}
			return &types.BatchResultErrorEntry{Code: aws.String("InternalError"), Message: aws.String("try again")}
		}
	}
	for _, tc := range []struct {
		name      string
		fail      func(string, int) *types.BatchResultErrorEntry
		wantCalls int
		wantErr   []string // in the error; none means no error
		wantSent  int
	}{
		{"fails twice then succeeds", internal(2), 3, nil, 3},
		{"always fails", internal(100), sendAttempts, []string{"1 of 3 bodies not sent", "body 1: InternalError: try again"}, 2},
		{"sender fault is not retried", func(body string, _ int) *types.BatchResultErrorEntry {
			if body != "flaky" {
				return nil
			}
			return &types.BatchResultErrorEntry{Code: aws.String("InvalidParameterValue"), SenderFault: true}
		}, 1, []string{"1 of 3 bodies not sent", "body 1: InvalidParameterValue"}, 2},
		{"missing from the answer once", func(body string, attempt int) *types.BatchResultErrorEntry {
			if body != "flaky" || attempt > 1 {
				return nil
			}
			return &types.BatchResultErrorEntry{}
		}, 2, nil, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, url := sqsQueue(t, nil)
			failing := &failingClient{SQSClient: client, fail: tc.fail}
			q := NewSQS(failing, url, fastReceive)
			err := q.Send(t.Context(), []byte("steady"), []byte("flaky"), []byte("calm"))
			switch {
			case len(tc.wantErr) == 0 && err != nil:
				t.Errorf("Send = %v, want nil", err)
			case len(tc.wantErr) > 0 && err == nil:
				t.Errorf("Send = nil, want an error containing %q", tc.wantErr)
			}
			for _, want := range tc.wantErr {
				if err != nil && !strings.Contains(err.Error(), want) {
					t.Errorf("Send = %v, want an error containing %q", err, want)
				}
			}
			if failing.calls != tc.wantCalls {
				t.Errorf("Send made %d SendMessageBatch calls, want %d", failing.calls, tc.wantCalls)
			}
			if n := messagesLeft(t, client, url); n != tc.wantSent {
				t.Errorf("%d messages queued, want %d", n, tc.wantSent)
			}
		})
	}
}

// ExtendAll extends receipts ten to a call, names each one it could not extend, and
// extends the others all the same.
func TestSQSExtendAll(t *testing.T) {
	client, url := sqsQueue(t, map[string]string{"VisibilityTimeout": "1"})
	counter := &countingClient{SQSClient: client}
	q := NewSQS(counter, url, fastReceive)
	ctx := t.Context()
	var sent [][]byte
	for i := range 12 {
		sent = append(sent, []byte(strconv.Itoa(i)))
	}
	if err := q.Send(ctx, sent...); err != nil {
		t.Fatal(err)
	}
	held := receipts(receiveN(t, q, len(sent)))
	err := q.ExtendAll(ctx, time.Hour, append(held, "bogus-1")...)
	if !errors.Is(err, ErrUnknownReceipt) || !strings.Contains(err.Error(), "bogus-1") {
		t.Errorf("ExtendAll(12 receipts and a bogus one) = %v, want ErrUnknownReceipt naming it", err)
	}
	if got := counter.n("ChangeMessageVisibilityBatch"); got != 2 {
		t.Errorf("ExtendAll(13 receipts) made %d ChangeMessageVisibilityBatch calls, want 2", got)
	}
	// A control message, received and not extended, comes back once the queue's own
	// visibility timeout of a second passes: when it does, the extended ones must still be
	// hidden. The wait is on the control message's return, bounded generously.
	if err := q.Send(ctx, []byte("control")); err != nil {
		t.Fatal(err)
	}
	receiveN(t, q, 1)
	wait, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	msgs, err := q.Receive(wait, 10)
	if err != nil {
		t.Fatalf("the control message did not come back: %v", err)
	}
	if len(msgs) != 1 || string(msgs[0].Body) != "control" {
		t.Errorf("Receive after ExtendAll by an hour = %d messages, want only the control message", len(msgs))
	}
	if err := q.ExtendAll(ctx, -time.Second, held...); err == nil {
		t.Error("ExtendAll by a negative duration succeeded, want an error")
	}
}
