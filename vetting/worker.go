package vetting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sgvet/sgvet/queue"
	"github.com/sgvet/sgvet/reputation"
)

// Vetter vets addresses: reputation.Vetter is one.
type Vetter interface {
	// Vet returns every provider's verdicts on targets, one Result per target.
	Vet(ctx context.Context, targets []reputation.Target) ([]reputation.Result, error)
}

// Worker answers lookup messages with verdicts messages: it takes up to Batch lookup
// messages at a time, vets their addresses, publishes their verdicts, and only then
// deletes the messages. A message it cannot decode is left on the queue, whose redrive
// policy moves it to the dead-letter queue, and logged once.
type Worker struct {
	Lookups queue.Transport
	// Results returns where the verdicts of run go: the results queue, or a view of it
	// that marks each message with the run (queue.SQS.ForRun).
	Results func(run string) queue.Transport
	Vetter  Vetter
	Log     *slog.Logger
	// Batch is the most lookup messages taken at once; 0 means 1. SQS receives, sends and
	// deletes ten at a time.
	Batch int
	// Visibility is the lookups queue's visibility timeout. While messages are being
	// vetted, a heartbeat extends their visibility by that much every half of it, so that
	// no other worker takes them. 0 means no heartbeat: a queue whose messages never time
	// out.
	Visibility time.Duration
	// Idle ends Run once no message has arrived for that long; 0 means never.
	Idle time.Duration
	// Drain is how long the messages in flight when ctx ends may still take to be vetted,
	// published and deleted; 0 means they are abandoned at once, to be delivered again.
	Drain time.Duration
	// Skipped remembers the messages logged as undecodable. The workers of one process
	// share one, so that each such message is logged once, whichever of them it is
	// delivered to; nil means the Worker's own.
	Skipped *SkipLog

	own SkipLog
}

// SkipLog remembers the lookup messages that could not be decoded, by id, so that each is
// logged once however many times it is delivered. It is safe for concurrent use; the zero
// value remembers none.
type SkipLog struct {
	mu  sync.Mutex
	ids map[string]bool
}

// first reports whether id is not remembered yet, and remembers it.
func (s *SkipLog) first(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids[id] {
		return false
	}
	if s.ids == nil {
		s.ids = map[string]bool{}
	}
	s.ids[id] = true
	return true
}

// Run answers messages until ctx ends, the lookups queue is closed and empty, or no message
// has arrived for Idle. Those ends are not errors; a failure to receive, vet, publish or
// delete is, and ends Run.
func (w *Worker) Run(ctx context.Context) error {
	for {
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if w.Idle > 0 {
			rctx, cancel = context.WithTimeout(ctx, w.Idle)
		}
		msgs, err := w.Lookups.Receive(rctx, max(w.Batch, 1))
		idle := rctx.Err() != nil
		cancel()
		switch {
		case errors.Is(err, queue.ErrClosed), ctx.Err() != nil:
			return nil
		case idle:
			w.Log.Info("no lookup message for a while: stopping", "idle", w.Idle)
			return nil
		case err != nil:
			return fmt.Errorf("receive lookups: %w", err)
		}
		if err := w.answer(ctx, msgs); err != nil {
			if ctx.Err() != nil {
				// Stopped while answering: what was not deleted is delivered again.
				return nil
			}
			return err
		}
	}
}

// ackTimeout bounds the deletion of lookup messages whose verdicts are published, which
// goes on when the worker is stopped.
const ackTimeout = 30 * time.Second

// lookup is a lookup message being answered.
type lookup struct {
	msg queue.Message
	LookupMessage
	body []byte // its verdicts message
}

// answer vets the addresses of msgs, publishes their verdicts and deletes msgs. Once ctx
// ends, it has Drain more to do so.
func (w *Worker) answer(ctx context.Context, msgs []queue.Message) error {
	var todo []lookup
	for _, msg := range msgs {
		m, err := DecodeLookup(msg.Body)
		if err != nil {
			w.skip(msg, err)
			continue
		}
		todo = append(todo, lookup{msg: msg, LookupMessage: m})
	}
	if len(todo) == 0 {
		return nil
	}
	if w.Drain > 0 {
		drain, cancel := context.WithCancel(context.WithoutCancel(ctx))
		defer cancel()
		stop := context.AfterFunc(ctx, func() {
			t := time.AfterFunc(w.Drain, cancel)
			context.AfterFunc(drain, func() { t.Stop() })
		})
		defer stop()
		ctx = drain
	}
	receipts := make([]string, len(todo))
	for i := range todo {
		receipts[i] = todo[i].msg.Receipt
	}
	// The heartbeat stops before the messages are deleted, so that no extension follows
	// the deletion; when it stops, a lost message shows as an unknown receipt.
	stopBeat := func() error { return nil }
	if w.Visibility > 0 {
		stopBeat = queue.Heartbeat(ctx, w.Lookups, w.Visibility, receipts...)
	}
	err := w.publish(ctx, todo)
	if beatErr := stopBeat(); beatErr != nil && err == nil {
		w.Log.Warn("lookup messages' visibility not extended: another worker may vet them again", "err", beatErr)
	}
	if err != nil {
		return err
	}
	// The verdicts are out: their lookups are deleted even if the worker is being stopped
	// meanwhile, rather than be delivered and vetted again.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
	defer cancel()
	err = w.Lookups.Ack(actx, receipts...)
	if errors.Is(err, queue.ErrUnknownReceipt) {
		// Their visibility passed: another worker may vet them again, which adds nothing.
		w.Log.Warn("lookup messages not deleted: their visibility timeout passed", "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete lookup messages: %w", err)
	}
	return nil
}

// skip logs, once, a lookup message that cannot be decoded.
func (w *Worker) skip(msg queue.Message, err error) {
	skipped := w.Skipped
	if skipped == nil {
		skipped = &w.own
	}
	if !skipped.first(msg.ID) {
		return
	}
	w.Log.Error("lookup message skipped: left to the queue's dead-letter queue", "id", msg.ID, "err", err)
}

// publish vets the addresses of each lookup and publishes their verdicts, those of one run
// together.
func (w *Worker) publish(ctx context.Context, todo []lookup) error {
	for i := range todo {
		vetted, err := w.Vetter.Vet(ctx, todo[i].Addresses)
		if err != nil {
			return err
		}
		var verdicts []reputation.Verdict
		for _, r := range vetted {
			verdicts = append(verdicts, r.Verdicts...)
		}
		if todo[i].body, err = EncodeVerdicts(todo[i].Run, verdicts); err != nil {
			return err
		}
	}
	for start := 0; start < len(todo); {
		run := todo[start].Run
		var bodies [][]byte
		end := start
		for ; end < len(todo) && todo[end].Run == run; end++ {
			bodies = append(bodies, todo[end].body)
		}
		if err := w.Results(run).Send(ctx, bodies...); err != nil {
			return fmt.Errorf("publish verdicts: %w", err)
		}
		start = end
	}
	return nil
}
