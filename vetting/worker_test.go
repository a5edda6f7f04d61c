package vetting

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sgvet/sgvet/queue"
	"github.com/sgvet/sgvet/reputation"
)

// cleanVetter calls every target clean.
type cleanVetter struct{}

func (cleanVetter) Vet(_ context.Context, targets []reputation.Target) ([]reputation.Result, error) {
	out := make([]reputation.Result, len(targets))
	for i, t := range targets {
		out[i] = reputation.Result{Target: t, Verdicts: verdictsOn(targets[i:i+1], "blocklist", reputation.Clean)}
	}
	return out, nil
}

// stopOnSend is a results queue that stops the worker as soon as it has published: as an
// audit stops its own workers once the verdicts it waits for have arrived.
type stopOnSend struct {
	*queue.Memory
	stop context.CancelFunc
}

func (s stopOnSend) Send(ctx context.Context, bodies ...[]byte) error {
	err := s.Memory.Send(ctx, bodies...)
	s.stop()
	return err
}

// A worker stopped between publishing verdicts and deleting their lookups still deletes
// them, and stops without an error.
func TestWorkerStoppedAfterPublishing(t *testing.T) {
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	lookups := queue.NewMemory(0, time.Hour)
	if _, err := SendLookups(ctx, lookups, "run-1", addresses(20), nil); err != nil {
		t.Fatal(err)
	}
	results := stopOnSend{Memory: queue.NewMemory(0, time.Hour), stop: stop}
	w := &Worker{
		Lookups: lookups,
		Results: func(string) queue.Transport { return results },
		Vetter:  cleanVetter{},
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		Batch:   10,
	}
	if err := w.Run(ctx); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if n := lookups.Len(); n != 0 {
		t.Errorf("%d lookup messages left, want 0: published verdicts' lookups are deleted", n)
	}
	if n := results.Len(); n != 1 {
		t.Errorf("%d verdict messages, want 1", n)
	}
}
