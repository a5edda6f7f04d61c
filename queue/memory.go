package queue

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// DefaultVisibility is the visibility timeout of a Memory made with none: 30 seconds, as
// for an SQS queue.
const DefaultVisibility = 30 * time.Second

// Memory is an in-process Transport: bounded (Capacity messages, counting in-flight ones),
// with a visibility timeout. Messages are delivered oldest first; a message delivered again
// comes before those never delivered.
//
// The zero value is an empty, unbounded queue with a visibility timeout of
// DefaultVisibility. A Memory is safe for concurrent use. It starts no goroutine: a
// receiver waiting while messages are in flight wakes itself when the first of them
// becomes visible again.
type Memory struct {
	capacity   int
	visibility time.Duration
	now        func() time.Time // nil means time.Now

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced whenever the queue changes
	ready      readyHeap     // visible messages, oldest first
	flight     flightHeap    // delivered messages, the first to become visible again first
	receipts   map[string]*entry
	closed     bool
	sent       uint64 // messages ever sent, for ids
	deliveries uint64 // deliveries ever made, for receipts
}

// NewMemory returns an empty queue holding at most capacity messages, waiting and in flight;
// zero or less means no limit. A delivered message becomes visible again once visibility
// has passed without an Ack; zero or less means DefaultVisibility.
func NewMemory(capacity int, visibility time.Duration) *Memory {
	return &Memory{capacity: capacity, visibility: visibility}
}

// newMemoryClock is NewMemory with a clock.
func newMemoryClock(capacity int, visibility time.Duration, now func() time.Time) *Memory {
	m := NewMemory(capacity, visibility)
	m.now = now
	return m
}

var _ Transport = (*Memory)(nil)

// entry is one message in the queue, waiting or in flight.
type entry struct {
	seq      uint64
	id       string
	body     []byte
	receives int
	receipt  string    // the current delivery's receipt; empty while visible
	deadline time.Time // when an in-flight message becomes visible again
	index    int       // position in the heap that holds the entry
}

// entries is the storage of a heap of entries; each heap adds its own order.
type entries []*entry

func (h entries) Len() int { return len(h) }
func (h entries) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *entries) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *entries) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// readyHeap orders visible messages by the order they were sent.
type readyHeap struct{ entries }

func (h readyHeap) Less(i, j int) bool { return h.entries[i].seq < h.entries[j].seq }

// flightHeap orders in-flight messages by the time they become visible again.
type flightHeap struct{ entries }

func (h flightHeap) Less(i, j int) bool {
	a, b := h.entries[i], h.entries[j]
	if !a.deadline.Equal(b.deadline) {
		return a.deadline.Before(b.deadline)
	}
	return a.seq < b.seq
}

// clock returns the current time.
func (m *Memory) clock() time.Time {
	if m.now != nil {
		return m.now()
	}
	return time.Now()
}

// wait returns a channel closed at the next change of the queue. m.mu must be held.
func (m *Memory) wait() <-chan struct{} {
	if m.changed == nil {
		m.changed = make(chan struct{})
	}
	return m.changed
}

// broadcast wakes every caller waiting for a change. m.mu must be held.
func (m *Memory) broadcast() {
	if m.changed != nil {
		close(m.changed)
		m.changed = nil
	}
}

// expire makes visible again the in-flight messages whose visibility has passed, and
// forgets their receipts. m.mu must be held.
func (m *Memory) expire(now time.Time) {
	moved := false
	for len(m.flight.entries) > 0 && !m.flight.entries[0].deadline.After(now) {
		e := heap.Pop(&m.flight).(*entry)
		m.makeVisible(e)
		moved = true
	}
	if moved {
		m.broadcast()
	}
}

// makeVisible puts e, no longer in flight, back among the visible messages. m.mu must be
// held.
func (m *Memory) makeVisible(e *entry) {
	delete(m.receipts, e.receipt)
	e.receipt = ""
	heap.Push(&m.ready, e)
}

// Len returns the number of messages waiting plus those in flight.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.ready.entries) + len(m.flight.entries)
}

// Close makes Receive return ErrClosed once no message is left (visible or in flight), and
// Send return ErrClosed: it is how a producer says it is done. Ack and Extend still work,
// so that receivers can drain the queue. Closing a closed queue does nothing.
func (m *Memory) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.closed = true
		m.broadcast()
	}
}

// Send queues bodies in order, each as soon as there is room for it. If the queue is
// closed, or ctx ends, before all are queued, Send returns ErrClosed or ctx's error, and
// the bodies not yet queued are not sent. Send keeps copies of the bodies.
func (m *Memory) Send(ctx context.Context, bodies ...[]byte) error {
	m.mu.Lock()
	for len(bodies) > 0 {
		if m.closed {
			m.mu.Unlock()
			return ErrClosed
		}
		if err := ctx.Err(); err != nil {
			m.mu.Unlock()
			return err
		}
		room := len(bodies)
		if m.capacity > 0 {
			room = min(room, m.capacity-len(m.ready.entries)-len(m.flight.entries))
		}
		if room > 0 {
			for _, b := range bodies[:room] {
				m.sent++
				e := &entry{seq: m.sent, id: strconv.FormatUint(m.sent, 10), body: bytes.Clone(b)}
				heap.Push(&m.ready, e)
			}
			bodies = bodies[room:]
			m.broadcast()
			continue
		}
		changed := m.wait()
		m.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-changed:
		}
		m.mu.Lock()
	}
	m.mu.Unlock()
	return nil
}

// Receive waits until at least one message is visible, and returns up to max of them, the
// oldest first, each invisible to other receivers until it is acknowledged or its
// visibility timeout passes. It returns ctx's error if ctx ends first, and ErrClosed once
// the queue is closed and no message is left, visible or in flight.
func (m *Memory) Receive(ctx context.Context, max int) ([]Message, error) {
	if max < 1 {
		return nil, fmt.Errorf("receive %d messages: want at least 1", max)
	}
	m.mu.Lock()
	for {
		if err := ctx.Err(); err != nil {
			m.mu.Unlock()
			return nil, err
		}
		now := m.clock()
		m.expire(now)
		if len(m.ready.entries) > 0 {
			msgs := m.deliver(now, max)
			m.mu.Unlock()
			return msgs, nil
		}
		if m.closed && len(m.flight.entries) == 0 {
			m.mu.Unlock()
			return nil, ErrClosed
		}
		changed := m.wait()
		// Wake when the first message in flight becomes visible again.
		var timer *time.Timer
		var visible <-chan time.Time
		if len(m.flight.entries) > 0 {
			timer = time.NewTimer(m.flight.entries[0].deadline.Sub(now))
			visible = timer.C
		}
		m.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-changed:
		case <-visible:
		}
		if timer != nil {
			timer.Stop()
		}
		m.mu.Lock()
	}
}

// deliver takes up to max visible messages and puts them in flight. m.mu must be held.
func (m *Memory) deliver(now time.Time, max int) []Message {
	visibility := m.visibility
	if visibility <= 0 {
		visibility = DefaultVisibility
	}
	if m.receipts == nil {
		m.receipts = make(map[string]*entry)
	}
	msgs := make([]Message, 0, min(max, len(m.ready.entries)))
	for len(msgs) < max && len(m.ready.entries) > 0 {
		e := heap.Pop(&m.ready).(*entry)
		m.deliveries++
		e.receives++
		e.receipt = e.id + "." + strconv.FormatUint(m.deliveries, 10)
		e.deadline = now.Add(visibility)
		heap.Push(&m.flight, e)
		m.receipts[e.receipt] = e
		msgs = append(msgs, Message{ID: e.id, Body: bytes.Clone(e.body), Receipt: e.receipt, ReceiveCount: e.receives})
	}
	return msgs
}

// Ack deletes the delivered messages that receipts identify. A receipt that identifies no
// message in flight (acknowledged already, or visible again after its visibility timeout)
// is an error wrapping ErrUnknownReceipt and naming it; the others are acknowledged all
// the same.
func (m *Memory) Ack(ctx context.Context, receipts ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.expire(m.clock())
	var errs []error
	acked := false
	for _, r := range receipts {
		e, ok := m.receipts[r]
		if !ok {
			errs = append(errs, fmt.Errorf("ack %s: %w", r, ErrUnknownReceipt))
			continue
		}
		delete(m.receipts, r)
		heap.Remove(&m.flight, e.index)
		acked = true
	}
	if acked {
		m.broadcast()
	}
	return errors.Join(errs...)
}

// Extend makes the delivered message that receipt identifies invisible for d more from
// now; a d of 0 makes it visible again at once (a nack), which ends the receipt. A receipt
// that identifies no message in flight is an error wrapping ErrUnknownReceipt.
func (m *Memory) Extend(ctx context.Context, receipt string, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("extend %s by %v: negative duration", receipt, d)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clock()
	m.expire(now)
	e, ok := m.receipts[receipt]
	if !ok {
		return fmt.Errorf("extend %s: %w", receipt, ErrUnknownReceipt)
	}
	if d == 0 {
		heap.Remove(&m.flight, e.index)
		m.makeVisible(e)
	} else {
		e.deadline = now.Add(d)
		heap.Fix(&m.flight, e.index)
	}
	// Receivers waiting for the first message in flight to become visible look again.
	m.broadcast()
	return nil
}
