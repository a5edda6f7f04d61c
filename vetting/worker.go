package vetting

import (
	"context"
	"errors"
	"log/slog"

	"github.com/sgvet/sgvet/queue"
	"github.com/sgvet/sgvet/reputation"
)

// Vetter vets addresses: reputation.Vetter is one.
type Vetter interface {
	// Vet returns every provider's verdicts on targets, one Result per target.
	Vet(ctx context.Context, targets []reputation.Target) ([]reputation.Result, error)
}

// Work is one worker: it takes lookup messages, vets their addresses and publishes the
// verdicts, acknowledging a message only once its verdicts are sent. It returns when the
// lookups queue is closed and empty, or ctx ends.
func Work(ctx context.Context, lookups, results queue.Transport, vetter Vetter, log *slog.Logger) error {
	for {
		msgs, err := lookups.Receive(ctx, 1)
		if errors.Is(err, queue.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, msg := range msgs {
			m, err := DecodeLookup(msg.Body)
			if err != nil {
				// Left unacknowledged: the queue's redrive policy deals with it.
				log.Error("lookup message skipped", "id", msg.ID, "err", err)
				continue
			}
			vetted, err := vetter.Vet(ctx, m.Addresses)
			if err != nil {
				return err
			}
			var verdicts []reputation.Verdict
			for _, r := range vetted {
				verdicts = append(verdicts, r.Verdicts...)
			}
			body, err := EncodeVerdicts(m.Run, verdicts)
			if err != nil {
				return err
			}
			if err := results.Send(ctx, body); err != nil {
				return err
			}
			if err := lookups.Ack(ctx, msg.Receipt); err != nil {
				return err
			}
		}
	}
}
