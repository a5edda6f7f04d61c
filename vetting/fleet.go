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

// sendBatch is how many lookup messages SendLookups hands the transport at once: SQS sends
// them ten to a call.
const sendBatch = 100

// SendLookups sends the lookup messages of run for targets, at most MaxAddressesPerMessage
// targets each, and returns how many it sent. sent, when not nil, is told the number of
// targets sent so far after each batch.
func SendLookups(ctx context.Context, q queue.Transport, run string, targets []reputation.Target, sent func(int)) (int, error) {
	var bodies [][]byte
	messages, done := 0, 0
	flush := func() error {
		if len(bodies) == 0 {
			return nil
		}
		if err := q.Send(ctx, bodies...); err != nil {
			return fmt.Errorf("send lookup messages: %w", err)
		}
		messages += len(bodies)
		bodies = bodies[:0]
		if sent != nil {
			sent(done)
		}
		return nil
	}
	for start := 0; start < len(targets); start += MaxAddressesPerMessage {
		chunk := targets[start:min(start+MaxAddressesPerMessage, len(targets))]
		body, err := EncodeLookup(run, chunk)
		if err != nil {
			return messages, err
		}
		bodies = append(bodies, body)
		done += len(chunk)
		if len(bodies) == sendBatch {
			if err := flush(); err != nil {
				return messages, err
			}
		}
	}
	return messages, flush()
}

// Gatherer receives the verdicts messages of one run from a results queue into a Gathering.
// It holds the messages of its run, unacknowledged, until Ack is called once the report is
// written; a reporter that does not write its report calls Release, so that they can be
// gathered again at once rather than once Hold passes. Messages of other runs are left at
// once to their own reporter (see Requeue).
type Gatherer struct {
	Results   queue.Transport
	Run       string
	Gathering *Gathering
	Log       *slog.Logger
	// Hold is how long a held message stays invisible from when it is received: long
	// enough to finish gathering and write the report.
	Hold time.Duration
	// Requeue, when set, returns where a message of another run is sent again, as a new
	// message, before the one received is deleted: its receive count then starts over, so
	// that a redrive policy never moves it to the dead-letter queue because other runs'
	// reporters passed it over. When nil, such a message is made visible again.
	Requeue func(run string) queue.Transport

	held    []string
	skipped map[string]bool // ids of messages that could not be decoded, logged once
}

// Gather receives until every target of the gathering has an answer, or ctx ends; the end
// of ctx is not an error (what is missing is unvetted). A results queue that fails is.
func (g *Gatherer) Gather(ctx context.Context) error {
	for g.Gathering.Missing() > 0 {
		msgs, err := g.Results.Receive(ctx, 10)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("receive verdicts: %w", err)
		}
		own := len(g.held)
		for _, msg := range msgs {
			m, err := DecodeVerdicts(msg.Body)
			switch {
			case err != nil:
				// Left to the queue's redrive policy, which moves it to the dead-letter queue.
				if !g.skipped[msg.ID] {
					if g.skipped == nil {
						g.skipped = map[string]bool{}
					}
					g.skipped[msg.ID] = true
					g.Log.Error("verdicts message skipped", "id", msg.ID, "err", err)
				}
			case m.Run != g.Run:
				if err := g.passOver(ctx, msg, m.Run); err != nil {
					return err
				}
			default:
				g.Gathering.Add(m.Verdicts)
				g.held = append(g.held, msg.Receipt)
			}
		}
		if err := g.hold(ctx, g.held[own:]); err != nil {
			return err
		}
		if len(g.held) == own && len(msgs) > 0 {
			// Only what belongs to others: give their reporters a moment to take it.
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

// batchExtender is a Transport that extends many messages in one call, as SQS does.
type batchExtender interface {
	ExtendAll(ctx context.Context, d time.Duration, receipts ...string) error
}

// hold keeps the messages of receipts invisible for Hold.
func (g *Gatherer) hold(ctx context.Context, receipts []string) error {
	if g.Hold <= 0 || len(receipts) == 0 {
		return nil
	}
	var err error
	if b, ok := g.Results.(batchExtender); ok {
		err = b.ExtendAll(ctx, g.Hold, receipts...)
	} else {
		for _, r := range receipts {
			if err = g.Results.Extend(ctx, r, g.Hold); err != nil {
				break
			}
		}
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("hold verdicts messages: %w", err)
	}
	return nil
}

// passOver leaves msg, of another run, to that run's reporter.
func (g *Gatherer) passOver(ctx context.Context, msg queue.Message, run string) error {
	if g.Requeue == nil {
		if err := g.Results.Extend(ctx, msg.Receipt, 0); err != nil && ctx.Err() == nil {
			g.Log.Warn("verdicts message of another run not made visible again", "id", msg.ID, "run", run, "err", err)
		}
		return nil
	}
	if err := g.Requeue(run).Send(ctx, msg.Body); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("queue again the verdicts message %s of run %s: %w", msg.ID, run, err)
	}
	// Sent again: the copy received goes. Should the deletion fail, the run's reporter
	// finds the verdicts twice, which adds nothing.
	if err := g.Results.Ack(ctx, msg.Receipt); err != nil && ctx.Err() == nil {
		g.Log.Warn("verdicts message of another run queued again, but not deleted", "id", msg.ID, "run", run, "err", err)
	}
	return nil
}

// Release makes the messages of the run that Gather received visible again at once, for
// another reporter to gather: a reporter that does not write its report calls it, rather
// than leave them held until Hold passes. A message whose receipt has expired is visible
// already, and is not an error. It must not be called while Gather runs.
func (g *Gatherer) Release(ctx context.Context) error {
	if len(g.held) == 0 {
		return nil
	}
	var err error
	if b, ok := g.Results.(batchExtender); ok {
		err = b.ExtendAll(ctx, 0, g.held...)
	} else {
		var errs []error
		for _, r := range g.held {
			if err := g.Results.Extend(ctx, r, 0); err != nil && !errors.Is(err, queue.ErrUnknownReceipt) {
				errs = append(errs, err)
			}
		}
		err = errors.Join(errs...)
	}
	g.held = nil
	if err != nil && !errors.Is(err, queue.ErrUnknownReceipt) {
		return fmt.Errorf("release verdicts messages: %w", err)
	}
	return nil
}

// Ack deletes the messages of the run that Gather received.
func (g *Gatherer) Ack(ctx context.Context) error {
	if len(g.held) == 0 {
		return nil
	}
	if err := g.Results.Ack(ctx, g.held...); err != nil && !errors.Is(err, queue.ErrUnknownReceipt) {
		return fmt.Errorf("delete verdicts messages: %w", err)
	}
	g.held = nil
	return nil
}
