package vetting

import (
	"context"
	"errors"
	"log/slog"

	"github.com/sgvet/sgvet/queue"
	"github.com/sgvet/sgvet/reputation"
	"golang.org/x/sync/errgroup"
)

// InProcess runs the lookups through in-memory queues and workers, as a fleet would
// through SQS, and returns every provider's verdict on each target, in the Vetter's
// provider order. With settle set, a target that some provider answered for and none
// called malicious or suspicious keeps only that: see gathering.
func InProcess(ctx context.Context, run string, targets []reputation.Target, vetter Vetter, workers int, settle bool, log *slog.Logger) ([]reputation.Result, error) {
	// The gathering holds the targets from here on; the lookup messages are made one at a
	// time as the workers take them.
	gathered := NewGathering(targets)
	gathered.Settle = settle
	// A message is invisible to other workers for as long as a run could take: the
	// in-process workers never die without ending the run.
	const visibility = 1 << 62
	lookups := queue.NewMemory(2*workers+1, visibility)
	results := queue.NewMemory(2*workers+1, visibility)
	defer lookups.Close()

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer lookups.Close()
		chunk := make([]reputation.Target, 0, MaxAddressesPerMessage)
		for start := 0; start < len(gathered.out); start += MaxAddressesPerMessage {
			chunk = chunk[:0]
			for _, r := range gathered.out[start:min(start+MaxAddressesPerMessage, len(gathered.out))] {
				chunk = append(chunk, r.Target)
			}
			body, err := EncodeLookup(run, chunk)
			if err != nil {
				return err
			}
			if err := lookups.Send(gctx, body); err != nil {
				return err
			}
		}
		return nil
	})
	wg, wctx := errgroup.WithContext(gctx)
	for range workers {
		w := &Worker{Lookups: lookups, Results: func(string) queue.Transport { return results }, Vetter: vetter, Log: log}
		wg.Go(func() error { return w.Run(wctx) })
	}
	g.Go(func() error {
		defer results.Close()
		return wg.Wait()
	})

	g.Go(func() error {
		for {
			msgs, err := results.Receive(gctx, 10)
			if errors.Is(err, queue.ErrClosed) {
				return nil
			}
			if err != nil {
				return err
			}
			for _, msg := range msgs {
				m, err := DecodeVerdicts(msg.Body)
				if err != nil {
					return err
				}
				gathered.Add(m.Verdicts)
				if err := results.Ack(gctx, msg.Receipt); err != nil {
					return err
				}
			}
		}
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return gathered.Results(), nil
}
