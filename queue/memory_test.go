package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// brief is how long a test waits to see that something does not happen. A slow machine
// can only make such a check pass when it should not, never fail when it should pass.
//
// What should happen, the tests wait for without a bound of their own: on a busy machine
// even what should happen at once can take long, and a wait that never ends is caught by
// go test's -timeout, which reports where every goroutine was.
const brief = 20 * time.Millisecond

// stillWaiting fails the test if ch delivers within brief.
func stillWaiting[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s returned %v, want it to wait", what, v)
	case <-time.After(brief):
	}
}

// receiveOne receives exactly one message, waiting as long as that takes.
func receiveOne(t *testing.T, m *Memory) Message {
	t.Helper()
	msgs, err := m.Receive(t.Context(), 1)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Receive(1) = %v, %v; want one message", msgs, err)
	}
	return msgs[0]
}

// nothingVisible fails the test unless Receive finds nothing visible within brief.
func nothingVisible(t *testing.T, m *Memory) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), brief)
	defer cancel()
	if msgs, err := m.Receive(ctx, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Receive = %v, %v; want nothing visible", msgs, err)
	}
}

func bodies(msgs []Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Body)
	}
	return out
}

func TestSendReceiveAck(t *testing.T) {
	ctx := t.Context()
	m := NewMemory(10, time.Minute)
	buf := []byte("a")
	if err := m.Send(ctx, buf, []byte("b")); err != nil {
		t.Fatal(err)
	}
	buf[0] = 'x' // the queue keeps its own copy
	if got := m.Len(); got != 2 {
		t.Errorf("Len = %d, want 2", got)
	}
	msgs, err := m.Receive(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(bodies(msgs), ","); got != "a,b" {
		t.Fatalf("Receive = %q, want a,b", got)
	}
	if msgs[0].ID == msgs[1].ID || msgs[0].Receipt == msgs[1].Receipt || msgs[0].Receipt == "" {
		t.Errorf("messages %+v and %+v share an id or a receipt", msgs[0], msgs[1])
	}
	for _, msg := range msgs {
		if msg.ReceiveCount != 1 {
			t.Errorf("message %s: ReceiveCount = %d, want 1", msg.ID, msg.ReceiveCount)
		}
	}
	if got := m.Len(); got != 2 {
		t.Errorf("Len with two in flight = %d, want 2", got)
	}
	if err := m.Ack(ctx, msgs[0].Receipt, msgs[1].Receipt); err != nil {
		t.Fatal(err)
	}
	if got := m.Len(); got != 0 {
		t.Errorf("Len after Ack = %d, want 0", got)
	}
	err = m.Ack(ctx, msgs[0].Receipt, "bogus")
	if !errors.Is(err, ErrUnknownReceipt) || !strings.Contains(err.Error(), msgs[0].Receipt) || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("Ack of acknowledged and unknown receipts = %v, want ErrUnknownReceipt naming both", err)
	}
	if _, err := m.Receive(ctx, 0); err == nil {
		t.Error("Receive(0) succeeded, want an error")
	}
}

func TestZeroMemory(t *testing.T) {
	ctx := t.Context()
	var m Memory
	for i := range 100 { // unbounded
		if err := m.Send(ctx, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	msg := receiveOne(t, &m)
	if err := m.Ack(ctx, msg.Receipt); err != nil {
		t.Fatal(err)
	}
	if got := m.Len(); got != 99 {
		t.Errorf("Len = %d, want 99", got)
	}
}

func TestFIFO(t *testing.T) {
	ctx := t.Context()
	m := NewMemory(0, time.Minute)
	var want []string
	for i := 0; i < 100; {
		n := 1 + i%4
		var batch [][]byte
		for range n {
			want = append(want, strconv.Itoa(i))
			batch = append(batch, []byte(strconv.Itoa(i)))
			i++
		}
		if err := m.Send(ctx, batch...); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for len(got) < len(want) {
		msgs, err := m.Receive(ctx, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) > 7 {
			t.Fatalf("Receive(7) returned %d messages", len(msgs))
		}
		got = append(got, bodies(msgs)...)
		for _, msg := range msgs {
			if err := m.Ack(ctx, msg.Receipt); err != nil {
				t.Fatal(err)
			}
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("received %q, want %q", got, want)
	}
}

func TestSendBlocksWhenFull(t *testing.T) {
	ctx := t.Context()
	m := NewMemory(2, time.Minute)
	if err := m.Send(ctx, []byte("1"), []byte("2")); err != nil {
		t.Fatal(err)
	}
	first := receiveOne(t, m) // in flight, still counted

	sent := make(chan error, 1)
	go func() { sent <- m.Send(ctx, []byte("3")) }()
	stillWaiting(t, sent, "Send on a full queue")
	if err := m.Ack(ctx, first.Receipt); err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatalf("Send after Ack = %v", err)
	}

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		sent := make(chan error, 1)
		go func() { sent <- m.Send(ctx, []byte("4")) }()
		stillWaiting(t, sent, "Send on a full queue")
		cancel()
		if err := <-sent; !errors.Is(err, context.Canceled) {
			t.Errorf("Send after cancel = %v, want %v", err, context.Canceled)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), brief)
		defer cancel()
		if err := m.Send(ctx, []byte("4")); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Send = %v, want %v", err, context.DeadlineExceeded)
		}
	})
	t.Run("more bodies than room", func(t *testing.T) {
		m := NewMemory(2, time.Minute)
		sent := make(chan error, 1)
		go func() { sent <- m.Send(ctx, []byte("a"), []byte("b"), []byte("c")) }()
		msg := receiveOne(t, m)
		stillWaiting(t, sent, "Send of three bodies into room for two")
		if err := m.Ack(ctx, msg.Receipt); err != nil {
			t.Fatal(err)
		}
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		if got := m.Len(); got != 2 {
			t.Errorf("Len = %d, want 2", got)
		}
	})
	if got := m.Len(); got != 2 {
		t.Errorf("Len after the cancelled sends = %d, want 2", got)
	}
}

func TestReceiveBlocks(t *testing.T) {
	ctx := t.Context()
	m := NewMemory(10, time.Minute)
	type received struct {
		msgs []Message
		err  error
	}
	got := make(chan received, 1)
	go func() {
		msgs, err := m.Receive(ctx, 10)
		got <- received{msgs, err}
	}()
	stillWaiting(t, got, "Receive on an empty queue")
	if err := m.Send(ctx, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil || len(r.msgs) != 1 || string(r.msgs[0].Body) != "hello" {
		t.Fatalf("Receive = %v, %v; want hello", r.msgs, r.err)
	}

	// With a message in flight, Receive also waits for it to become visible again; a
	// cancel ends the wait at once.
	cctx, cancel := context.WithCancel(ctx)
	errs := make(chan error, 1)
	go func() {
		_, err := m.Receive(cctx, 1)
		errs <- err
	}()
	stillWaiting(t, errs, "Receive with a message in flight")
	cancel()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Errorf("Receive after cancel = %v, want %v", err, context.Canceled)
	}
	if _, err := m.Receive(cctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Receive with a cancelled context = %v, want %v", err, context.Canceled)
	}
}

func TestRedelivery(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	m := newMemoryClock(10, time.Minute, clock.now)
	if err := m.Send(ctx, []byte("a"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	first := receiveOne(t, m)
	clock.advance(30 * time.Second)
	other := receiveOne(t, m) // b, delivered 30s later
	clock.advance(30 * time.Second)

	again := receiveOne(t, m)
	if again.ID != first.ID || string(again.Body) != "a" || again.ReceiveCount != 2 || again.Receipt == first.Receipt {
		t.Errorf("redelivered %+v, want message %s again with ReceiveCount 2 and a new receipt", again, first.ID)
	}
	nothingVisible(t, m) // b's visibility has not passed
	if err := m.Ack(ctx, first.Receipt); !errors.Is(err, ErrUnknownReceipt) || !strings.Contains(err.Error(), first.Receipt) {
		t.Errorf("Ack of the old receipt = %v, want ErrUnknownReceipt naming it", err)
	}
	if err := m.Extend(ctx, first.Receipt, time.Minute); !errors.Is(err, ErrUnknownReceipt) {
		t.Errorf("Extend of the old receipt = %v, want ErrUnknownReceipt", err)
	}

	// A receipt whose visibility passed is rejected even before the message is received
	// again, and the message is received again.
	clock.advance(30 * time.Second)
	if err := m.Ack(ctx, other.Receipt); !errors.Is(err, ErrUnknownReceipt) {
		t.Errorf("Ack of an expired receipt = %v, want ErrUnknownReceipt", err)
	}
	if got := receiveOne(t, m); got.ID != other.ID || got.ReceiveCount != 2 {
		t.Errorf("received %+v, want message %s with ReceiveCount 2", got, other.ID)
	}
	if err := m.Ack(ctx, again.Receipt); err != nil {
		t.Errorf("Ack of the new receipt = %v", err)
	}
}

// TestRedeliveryWakes checks, on the real clock, that a receiver waiting while a message is
// in flight gets it when its visibility passes.
func TestRedeliveryWakes(t *testing.T) {
	ctx := t.Context()
	m := NewMemory(10, 30*time.Millisecond)
	if err := m.Send(ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	first := receiveOne(t, m)
	again := receiveOne(t, m) // waits for the visibility to pass
	if again.ID != first.ID || again.ReceiveCount != 2 {
		t.Errorf("received %+v, want message %s with ReceiveCount 2", again, first.ID)
	}
}

func TestExtend(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	m := newMemoryClock(10, time.Minute, clock.now)
	if err := m.Send(ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	msg := receiveOne(t, m)
	clock.advance(50 * time.Second)
	if err := m.Extend(ctx, msg.Receipt, time.Minute); err != nil {
		t.Fatal(err)
	}
	clock.advance(50 * time.Second) // past the first visibility, not the extended one
	nothingVisible(t, m)
	if got := m.Len(); got != 1 {
		t.Errorf("Len = %d, want 1", got)
	}
	clock.advance(10 * time.Second)
	if got := receiveOne(t, m); got.ID != msg.ID || got.ReceiveCount != 2 {
		t.Errorf("received %+v after the extension, want message %s with ReceiveCount 2", got, msg.ID)
	}
	if err := m.Extend(ctx, "bogus", time.Minute); !errors.Is(err, ErrUnknownReceipt) || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("Extend of an unknown receipt = %v, want ErrUnknownReceipt naming it", err)
	}
	if err := m.Extend(ctx, msg.Receipt, -time.Second); err == nil {
		t.Error("Extend by a negative duration succeeded, want an error")
	}
}

func TestExtendZeroNacks(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	m := newMemoryClock(10, time.Minute, clock.now)
	if err := m.Send(ctx, []byte("a")); err != nil {
		t.Fatal(err)
	}
	msg := receiveOne(t, m)

	// A receiver waiting for the message in flight gets it as soon as it is nacked.
	got := make(chan Message, 1)
	go func() {
		msgs, err := m.Receive(ctx, 1)
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- msgs[0]
	}()
	stillWaiting(t, got, "Receive with the message in flight")
	if err := m.Extend(ctx, msg.Receipt, 0); err != nil {
		t.Fatal(err)
	}
	again := <-got
	if again.ID != msg.ID || again.ReceiveCount != 2 || again.Receipt == msg.Receipt {
		t.Errorf("received %+v after a nack, want message %s with ReceiveCount 2 and a new receipt", again, msg.ID)
	}
	if err := m.Ack(ctx, msg.Receipt); !errors.Is(err, ErrUnknownReceipt) {
		t.Errorf("Ack of the nacked receipt = %v, want ErrUnknownReceipt", err)
	}
}

func TestClose(t *testing.T) {
	ctx := t.Context()
	clock := newFakeClock()
	m := newMemoryClock(10, time.Minute, clock.now)
	if err := m.Send(ctx, []byte("a"), []byte("b"), []byte("c")); err != nil {
		t.Fatal(err)
	}
	a := receiveOne(t, m)
	m.Close()
	m.Close() // closing again does nothing
	if err := m.Send(ctx, []byte("d")); !errors.Is(err, ErrClosed) {
		t.Errorf("Send on a closed queue = %v, want ErrClosed", err)
	}
	rest, err := m.Receive(ctx, 10)
	if err != nil || strings.Join(bodies(rest), ",") != "b,c" {
		t.Fatalf("Receive on a closed queue = %q, %v; want b,c", bodies(rest), err)
	}

	// The closed queue still has messages in flight: a receiver waits for them.
	errs := make(chan error, 1)
	go func() {
		msgs, err := m.Receive(ctx, 10)
		if err == nil {
			err = fmt.Errorf("received %q", bodies(msgs))
		}
		errs <- err
	}()
	stillWaiting(t, errs, "Receive with messages in flight")
	if err := m.Ack(ctx, rest[0].Receipt, rest[1].Receipt); err != nil {
		t.Fatal(err)
	}
	stillWaiting(t, errs, "Receive with a message in flight")
	if err := m.Ack(ctx, a.Receipt); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; !errors.Is(err, ErrClosed) {
		t.Errorf("Receive on a drained closed queue = %v, want ErrClosed", err)
	}

	t.Run("redelivers after close", func(t *testing.T) {
		m := newMemoryClock(10, time.Minute, clock.now)
		if err := m.Send(ctx, []byte("a")); err != nil {
			t.Fatal(err)
		}
		receiveOne(t, m)
		m.Close()
		clock.advance(time.Minute)
		msg := receiveOne(t, m)
		if msg.ReceiveCount != 2 {
			t.Errorf("ReceiveCount = %d, want 2", msg.ReceiveCount)
		}
		if err := m.Ack(ctx, msg.Receipt); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Receive(ctx, 1); !errors.Is(err, ErrClosed) {
			t.Errorf("Receive = %v, want ErrClosed", err)
		}
	})
	t.Run("wakes a blocked send", func(t *testing.T) {
		m := NewMemory(1, time.Minute)
		if err := m.Send(ctx, []byte("a")); err != nil {
			t.Fatal(err)
		}
		sent := make(chan error, 1)
		go func() { sent <- m.Send(ctx, []byte("b")) }()
		stillWaiting(t, sent, "Send on a full queue")
		m.Close()
		if err := <-sent; !errors.Is(err, ErrClosed) {
			t.Errorf("Send after Close = %v, want ErrClosed", err)
		}
	})
	t.Run("wakes a blocked receive", func(t *testing.T) {
		m := NewMemory(1, time.Minute)
		errs := make(chan error, 1)
		go func() {
			_, err := m.Receive(ctx, 1)
			errs <- err
		}()
		stillWaiting(t, errs, "Receive on an empty queue")
		m.Close()
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Errorf("Receive after Close = %v, want ErrClosed", err)
		}
	})
}

func TestConcurrent(t *testing.T) {
	const (
		producers = 8
		consumers = 8
		perProd   = 500
	)
	ctx := t.Context()
	// The clock stands still, so that however slow the machine, no message becomes
	// visible again and each is received exactly once.
	m := newMemoryClock(16, time.Minute, newFakeClock().now)

	var producing sync.WaitGroup
	for p := range producers {
		producing.Go(func() {
			for i := 0; i < perProd; {
				n := min(1+i%3, perProd-i)
				batch := make([][]byte, n)
				for j := range batch {
					batch[j] = fmt.Appendf(nil, "%d-%d", p, i)
					i++
				}
				if err := m.Send(ctx, batch...); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}

	var (
		mu   sync.Mutex
		seen = make(map[string]int)
	)
	var consuming sync.WaitGroup
	for range consumers {
		consuming.Go(func() {
			for {
				msgs, err := m.Receive(ctx, 5)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				receipts := make([]string, len(msgs))
				mu.Lock()
				for i, msg := range msgs {
					seen[string(msg.Body)]++
					if msg.ReceiveCount != 1 {
						t.Errorf("message %s received %d times", msg.Body, msg.ReceiveCount)
					}
					receipts[i] = msg.Receipt
				}
				mu.Unlock()
				if err := m.Ack(ctx, receipts...); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	producing.Wait()
	m.Close()
	consuming.Wait()

	if len(seen) != producers*perProd {
		t.Errorf("%d distinct messages received, want %d", len(seen), producers*perProd)
	}
	for p := range producers {
		for i := range perProd {
			body := fmt.Sprintf("%d-%d", p, i)
			if n := seen[body]; n != 1 {
				t.Errorf("message %s received %d times, want once", body, n)
			}
		}
	}
	if got := m.Len(); got != 0 {
		t.Errorf("Len = %d, want 0", got)
	}
}
