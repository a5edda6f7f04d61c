package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Heartbeat keeps delivered messages invisible to other receivers while they are worked
// on: every visibility/2 it extends each of receipts by visibility (Transport.Extend),
// until stop is called or ctx ends. Give it the queue's visibility timeout, or less, and
// start it as soon as the messages are received: the first extension comes visibility/2
// after the call. It works on any Transport.
//
// The extensions run on a goroutine of the heartbeat's own; stop ends it, cancelling an
// extension in progress, and waits for it. Calling stop again returns the same result.
//
// stop returns, joined, the error of each receipt whose latest extension failed; an
// extension that fails because stop was called, or because ctx ended, is not an error.
// A receipt found unknown (ErrUnknownReceipt) is extended no more: its message was
// acknowledged or nacked meanwhile, or its visibility passed before the heartbeat
// extended it, and it may be delivered again.
//
// Call stop before Ack, or before Extend on the same receipts: once stop has returned no
// extension is in progress, so none can follow the Ack and find its receipt unknown, and
// an ErrUnknownReceipt from stop then means that the message's visibility passed while it
// was worked on. That is worth a warning, not a failure: the work is idempotent, and a
// second delivery only repeats it. A caller that acknowledges first may get an
// ErrUnknownReceipt from stop for a message it deleted itself, and should ignore it.
//
// A visibility too short to halve is an error, returned by stop; then nothing is extended.
func Heartbeat(ctx context.Context, t Transport, visibility time.Duration, receipts ...string) (stop func() error) {
	interval := visibility / 2
	if interval <= 0 {
		err := fmt.Errorf("heartbeat extending by %v: want a longer visibility", visibility)
		return func() error { return err }
	}
	ticker := time.NewTicker(interval)
	stopBeats := heartbeat(ctx, t, visibility, ticker.C, receipts)
	return func() error {
		err := stopBeats()
		ticker.Stop()
		return err
	}
}

// heartbeat is Heartbeat extending receipts at each value from ticks.
func heartbeat(ctx context.Context, t Transport, visibility time.Duration, ticks <-chan time.Time, receipts []string) (stop func() error) {
	ctx, cancel := context.WithCancel(ctx)
	live := slices.Clone(receipts)
	failed := make(map[string]error) // a receipt's latest error; owned by the goroutine until done
	done := make(chan struct{})
	go func() {
		defer close(done)
		for len(live) > 0 {
			select {
			case <-ctx.Done():
				return
			case <-ticks:
			}
			kept := live[:0]
			for _, r := range live {
				err := t.Extend(ctx, r, visibility)
				switch {
				case ctx.Err() != nil:
					return
				case err == nil:
					delete(failed, r)
					kept = append(kept, r)
				case errors.Is(err, ErrUnknownReceipt):
					failed[r] = err
				default:
					failed[r] = err
					kept = append(kept, r)
				}
			}
			live = kept
		}
	}()

	var (
		once   sync.Once
		result error
	)
	return func() error {
		once.Do(func() {
			cancel()
			<-done
			var errs []error
			for _, r := range receipts {
				if err, ok := failed[r]; ok {
					errs = append(errs, err)
					delete(failed, r) // a receipt given twice is reported once
				}
			}
			result = errors.Join(errs...)
		})
		return result
	}
}
