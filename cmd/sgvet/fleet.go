package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sgvet/sgvet/queue"
	"github.com/sgvet/sgvet/reputation"
	"github.com/sgvet/sgvet/vetting"
)

// auditQueues are the SQS queues of an audit that vets over SQS, so that workers
// elsewhere can help.
type auditQueues struct {
	lookups, results *sqsQueue
	gatherer         *vetting.Gatherer
}

func openAuditQueues(ctx context.Context, cfg config, lookupsURL, resultsURL string, log *slog.Logger) (*auditQueues, error) {
	lookups, err := openSQS(ctx, cfg, "--queue-url", lookupsURL, log)
	if err != nil {
		return nil, err
	}
	results, err := openSQS(ctx, cfg, "--results-url", resultsURL, log)
	if err != nil {
		return nil, err
	}
	return &auditQueues{lookups: lookups, results: results}, nil
}

// vet sends the lookups of run for targets, vets them with workers of its own (others may
// help), and gathers the verdicts until every target has its answer or ctx ends. The run's
// verdict messages are held until ack, or release.
func (q *auditQueues) vet(ctx context.Context, run string, targets []reputation.Target, vetter *reputation.Vetter, workers int, settle bool, log *slog.Logger) ([]reputation.Result, error) {
	gathering := vetting.NewGathering(targets)
	gathering.Settle = settle
	q.gatherer = &vetting.Gatherer{Results: q.results.SQS, Run: run, Gathering: gathering, Log: log, Hold: time.Hour,
		Requeue: func(run string) queue.Transport { return q.results.ForRun(run) }}
	if _, err := vetting.SendLookups(ctx, q.lookups.ForRun(run), run, targets, nil); err != nil {
		return nil, fmt.Errorf("--queue-url: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	work, stopWork := context.WithCancel(gctx)
	defer stopWork()
	skipped := new(vetting.SkipLog)
	for range workers {
		w := sqsWorker(q.lookups, q.results, vetter, log)
		// Stopped, by a signal or because the run has its answers, the audit's own workers
		// leave what they hold to reappear for others, rather than keep the audit waiting.
		w.Drain = 0
		w.Skipped = skipped
		g.Go(func() error { return w.Run(work) })
	}
	g.Go(func() error {
		// Once every target has its answer the workers stop, finishing what they hold.
		defer stopWork()
		if err := q.gatherer.Gather(gctx); err != nil {
			return fmt.Errorf("--results-url: %w", err)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return gathering.Results(), nil
}

// ack deletes the run's verdict messages, once the report is written.
func (q *auditQueues) ack(ctx context.Context, log *slog.Logger) {
	if q.gatherer == nil {
		return
	}
	if err := q.gatherer.Ack(ctx); err != nil {
		log.Warn("the report is written, but the run's verdict messages are not all deleted", "err", err)
	}
}

// release makes the run's verdict messages visible again, when the report is not written.
func (q *auditQueues) release(ctx context.Context, log *slog.Logger) {
	if q.gatherer != nil {
		releaseVerdicts(ctx, q.gatherer, log)
	}
}

// sqsWorker returns a worker that answers the lookups of an SQS queue on another: ten
// messages at a time, kept invisible while they are vetted, and finished within the
// visibility timeout once its context ends.
func sqsWorker(lookups, results *sqsQueue, vetter vetting.Vetter, log *slog.Logger) *vetting.Worker {
	return &vetting.Worker{
		Lookups:    lookups.SQS,
		Results:    func(run string) queue.Transport { return results.ForRun(run) },
		Vetter:     vetter,
		Log:        log,
		Batch:      10,
		Visibility: lookups.visibility,
		Drain:      max(lookups.visibility, time.Second),
	}
}
