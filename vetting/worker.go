package vetting

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sgvet/sgvet/queue"
	"github.com/sgvet/sgvet/reputation"
)

// Vetter vets addresses: reputation.Vetter is one.
type Vetter interface {
	// Vet returns every provider's verdicts on targets, one Result per target.
	Vet(ctx context.Context, targets []reputation.Target) ([]reputation.Result, error)
}

// Worker answers lookup messages with verdicts messages: it takes one lookup message at a
// time, vets its addresses, publishes their verdicts, and only then deletes the message.
// A message it cannot decode is left on the queue, whose redrive policy moves it to the
// dead-letter queue, and logged once.
type Worker struct {
	Lookups queue.Transport
	// Results returns where the verdicts of run go: the results queue, or a view of it
	// that marks each message with the run (queue.SQS.ForRun).
	Results func(run string) queue.Transport
	Vetter  Vetter
	Log     *slog.Logger
	// Visibility is the lookups queue's visibility timeout. While a message is being
	// vetted, a heartbeat extends its visibility by that much every half of it, so that no
	// other worker takes it. 0 means no heartbeat: a queue whose messages never time out.
	Visibility time.Duration
	// Idle ends Run once no message has arrived for that long; 0 means never.
	Idle time.Duration
	// Drain is how long a message in flight when ctx ends may still take to be vetted,
	// published and deleted; 0 means it is abandoned at once, to be delivered again.
	Drain time.Duration

	skipped map[string]bool
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
		msgs, err := w.Lookups.Receive(rctx, 1)
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
		for _, msg := range msgs {
			if err := w.answer(ctx, msg); err != nil {
				return err
			}
		}
	}
}

// answer vets the addresses of msg, publishes their verdicts and deletes msg. Once ctx
// ends, it has Drain more to do so.
func (w *Worker) answer(ctx context.Context, msg queue.Message) error {
	m, err := DecodeLookup(msg.Body)
	if err != nil {
		if !w.skipped[msg.ID] {
			if w.skipped == nil {
				w.skipped = map[string]bool{}
			}
			w.skipped[msg.ID] = true
			w.Log.Error("lookup message skipped: left to the queue's dead-letter queue", "id", msg.ID, "err", err)
		}
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
	// The heartbeat stops before the message is deleted, so that no extension follows the
	// deletion; when it stops, a lost message shows as an unknown receipt.
	stopBeat := func() error { return nil }
	if w.Visibility > 0 {
		stopBeat = queue.Heartbeat(ctx, w.Lookups, w.Visibility, msg.Receipt)
	}
	published, err := w.publish(ctx, m)
	if beatErr := stopBeat(); beatErr != nil && published {
		w.Log.Warn("lookup message's visibility not extended: another worker may vet it again", "id", msg.ID, "err", beatErr)
	}
	if err != nil {
		return err
	}
	err = w.Lookups.Ack(ctx, msg.Receipt)
	if errors.Is(err, queue.ErrUnknownReceipt) {
		// Its visibility passed: another worker may vet it again, which adds nothing.
		w.Log.Warn("lookup message not deleted: its visibility timeout passed", "id", msg.ID)
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete lookup message %s: %w", msg.ID, err)
	}
	return nil
}

// publish vets the addresses of m and publishes their verdicts, reporting whether it did.
func (w *Worker) publish(ctx context.Context, m LookupMessage) (bool, error) {
	vetted, err := w.Vetter.Vet(ctx, m.Addresses)
	if err != nil {
		return false, err
	}
	var verdicts []reputation.Verdict
	for _, r := range vetted {
		verdicts = append(verdicts, r.Verdicts...)
	}
	body, err := EncodeVerdicts(m.Run, verdicts)
	if err != nil {
		return false, err
	}
	if err := w.Results(m.Run).Send(ctx, body); err != nil {
		return false, fmt.Errorf("publish verdicts: %w", err)
	}
	return true, nil
}
