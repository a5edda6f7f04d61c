package main

import (
	"context"
	"io"
	"time"

	"github.com/sgvet/sgvet/vetting"
	"golang.org/x/sync/errgroup"
)

const workAbout = `Usage: sgvet work --queue-url URL --results-url URL [flags]

Take lookup messages from the lookups queue that 'sgvet collect' fills, ask the reputation
providers about their addresses, publish the verdicts to the results queue, and delete each
lookup message once its verdicts are published. While a message is being vetted its
visibility timeout is extended, so no other worker takes it; a worker that dies leaves its
message to reappear for another. A message that cannot be read is left to the queue's
dead-letter queue.

It runs until stopped. With --idle-exit it exits once no message has arrived for that long,
as a batch job should. SIGTERM or SIGINT stops it taking messages: it finishes the messages
in hand within the lookups queue's visibility timeout, and exits 0; a second signal exits
at once.

Several workers may share the providers' API keys: with --fleet-size N each keeps to 1/N
of every provider's rate and daily quota, which are the keys'.

Exit status: 0 when stopped, or idle for --idle-exit; 2 for a usage, configuration,
credentials or queue error, or when a queue fails (is deleted) mid-run.

Examples:
  sgvet work --queue-url "$LOOKUPS" --results-url "$RESULTS" --idle-exit 10m
  MDCLOUD_APIKEY=... sgvet work --queue-url "$LOOKUPS" --results-url "$RESULTS" --fleet-size 4
`

func workFlags(o *commandOptions) *commandFlags {
	c := newCommandFlags("sgvet work", workAbout)
	o.common.registerQueues(c, "take lookup messages from the SQS queue at `URL`", "publish verdicts to the SQS queue at `URL`")
	fs := c.group(groupQueue)
	fs.DurationVar(&o.common.idleExit, "idle-exit", 0, "exit 0 once no lookup message has arrived for `DURATION`, such as 10m (default: run until stopped)")
	fs.IntVar(&o.common.fleetSize, "fleet-size", 0, "share the providers' rates and daily quotas with `N` workers in all (default: fleet_size in the configuration, 1)")
	o.common.registerProviders(c)
	o.common.registerConfig(c)
	return c
}

func runWork(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var o commandOptions
	fs, _, err := workFlags(&o).parse(args, stdout)
	if err != nil {
		return err
	}
	if err := requireFlags(map[string]string{"--queue-url": o.common.queueURL, "--results-url": o.common.resultsURL}); err != nil {
		return err
	}
	if o.common.idleExit < 0 {
		return usageErrorf("--idle-exit must not be negative, not %s", o.common.idleExit)
	}
	cfg, err := o.common.load(fs)
	if err != nil {
		return err
	}
	log := cfg.newLogger(stderr)
	lookups, err := openSQS(ctx, cfg, "--queue-url", o.common.queueURL, log)
	if err != nil {
		return err
	}
	results, err := openSQS(ctx, cfg, "--results-url", o.common.resultsURL, log)
	if err != nil {
		return err
	}
	vetter, closeCache, err := newVetter(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeCache()

	log.Info("working", "lookups", redactURL(o.common.queueURL), "results", redactURL(o.common.resultsURL), "workers", cfg.Reputation.Workers,
		"fleet_size", cfg.Reputation.FleetSize, "visibility", lookups.visibility)
	// Messages in hand when a signal comes are finished within the visibility timeout, so
	// that no other worker vets them again. A signal ends ctx: say so, for finishing may
	// take that long, and a second signal exits at once.
	stopping := context.AfterFunc(ctx, func() {
		log.Info("stopping: taking no more lookup messages, finishing those in hand", "within", max(lookups.visibility, time.Second))
	})
	defer stopping()
	skipped := new(vetting.SkipLog)
	g, gctx := errgroup.WithContext(ctx)
	for range cfg.Reputation.Workers {
		w := sqsWorker(lookups, results, vetter, log)
		w.Idle = o.common.idleExit
		w.Skipped = skipped
		g.Go(func() error { return w.Run(gctx) })
	}
	if err := g.Wait(); err != nil {
		// Wrapped, not flattened, so that a caller can tell a queue that is gone.
		return &exitError{code: exitUsage, err: err}
	}
	return nil
}
