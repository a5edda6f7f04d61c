package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/queue"
	"github.com/sgvet/sgvet/report"
	"github.com/sgvet/sgvet/vetting"
)

const reportAbout = `Usage: sgvet report --inventory FILE --results-url URL [flags]

Gather the verdicts of the run that 'sgvet collect' wrote FILE for, from the results queue
that 'sgvet work' publishes to, until every address has an answer or --wait runs out (what
has none is reported unvetted), then write the report as 'sgvet audit' does. Prefixes are
expanded by the inventory's max_hosts_per_cidr, as collect expanded them; a configuration
file that sets another value is refused. The run's verdict messages are deleted only once
the report is written; a report that fails or is stopped makes them visible again at once,
so that it can be made again. Messages of other runs are left on the queue for their own
reports.

Exit status: as 'sgvet audit': 0 when no finding reaches --fail-on; 1 when one does; 3 when
none does but the audit is incomplete (some address has no verdict, some region could not
be collected, or some rule could not be parsed); 2 for a usage, configuration, credentials,
input or queue error.

Examples:
  sgvet report --inventory run.json --results-url "$RESULTS" --wait 30m --format html -o report.html
  sgvet report --inventory run.json --results-url "$RESULTS" --state audit.db --fail-on critical
`

// defaultWait is how long report waits for verdicts by default.
const defaultWait = 30 * time.Minute

// reportHoldMargin is how long, beyond --wait, the verdict messages of the run stay
// invisible to others while the report is written.
const reportHoldMargin = 15 * time.Minute

func reportFlags(o *commandOptions) *commandFlags {
	c := newCommandFlags("sgvet report", reportAbout)
	o.common.registerInventory(c, "read the inventory that sgvet collect wrote to `FILE`")
	o.common.registerQueues(c, "", "gather verdicts from the SQS queue at `URL`")
	c.group(groupQueue).DurationVar(&o.common.wait, "wait", defaultWait, "wait at most `DURATION` for every address to have an answer; what has none is unvetted")
	registerOutput(c, groupReport, &o.format, &o.output, report.Formats)
	o.common.registerAudit(c)
	o.common.registerConfig(c)
	return c
}

func runReport(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var o commandOptions
	fs, _, err := reportFlags(&o).parse(args, stdout)
	if err != nil {
		return err
	}
	if err := requireFlags(map[string]string{"--inventory": o.common.inventory, "--results-url": o.common.resultsURL}); err != nil {
		return err
	}
	if o.common.wait < 0 {
		return usageErrorf("--wait must not be negative, not %s", o.common.wait)
	}
	cfg, err := o.common.load(fs)
	if err != nil {
		return err
	}
	writer, err := report.NewWriter(o.format, report.WriterOptions{Width: terminalWidth(stdout)})
	if err != nil {
		return usageErrorf("--format: %v", err)
	}
	if err := checkOutput(o.output); err != nil {
		return err
	}
	owners, err := loadOwnerRanges(cfg)
	if err != nil {
		return err
	}
	status := newStatusLine(stderr)
	log := cfg.newLogger(status.logWriter(stderr))
	doc, err := readRunInventory(o.common.inventory, stdin, cfg.MaxInputSize)
	if err != nil {
		return err
	}
	if err := adoptMaxHosts(&cfg, doc, o.common.inventory); err != nil {
		return err
	}
	results, err := openSQS(ctx, cfg, "--results-url", o.common.resultsURL, log)
	if err != nil {
		return err
	}
	var hist *report.History
	if cfg.Audit.State != "" {
		if hist, err = report.OpenHistory(ctx, cfg.Audit.State, log); err != nil {
			return usageErrorf("--state: %v", err)
		}
		defer hist.Close()
	}

	targets := report.Targets(doc.Rules, doc.MaxHostsPerCIDR)
	gathering := vetting.NewGathering(targets)
	gathering.Settle = hist == nil
	g := &vetting.Gatherer{Results: results.SQS, Run: doc.Run, Gathering: gathering, Log: log,
		Hold:    min(o.common.wait+reportHoldMargin, 12*time.Hour),
		Requeue: func(run string) queue.Transport { return results.ForRun(run) }}
	// Unless the report is written, the messages gathered are made visible again at once,
	// so that the report can be made again now rather than once their hold passes.
	written := false
	defer func() {
		if !written {
			releaseVerdicts(ctx, g, log)
		}
	}()
	log.Info("gathering verdicts", "run", doc.Run, "addresses", gathering.Missing(), "wait", o.common.wait)
	wait, cancel := context.WithTimeout(ctx, o.common.wait)
	stop := showGathering(wait, status, gathering, len(targets))
	err = g.Gather(wait)
	stop()
	cancel()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return usageErrorf("--results-url: %v", err)
	}
	if n := gathering.Missing(); n > 0 {
		log.Warn("some addresses have no verdict: they are reported unvetted", "run", doc.Run, "missing", n, "of", len(targets))
	}

	err = writeReport(ctx, reportRun{
		cfg: cfg, writer: writer, output: o.output, stdout: stdout, log: log, hist: hist,
		id: doc.Run, started: doc.CollectedAt, inv: doc.Inventory, results: gathering.Results(), owners: owners,
	})
	if written = reportWritten(err); written {
		// The report is written: the run's verdicts are no longer needed.
		if ackErr := g.Ack(ctx); ackErr != nil {
			log.Warn("the report is written, but the run's verdict messages are not all deleted", "err", ackErr)
		}
	}
	return err
}

// releaseTimeout bounds how long a command that does not write its report spends making
// its run's verdict messages visible again.
const releaseTimeout = 30 * time.Second

// releaseVerdicts makes the verdict messages g holds visible again, for a command that does
// not write its report: even once ctx has ended, as a signal ends it, within
// releaseTimeout.
func releaseVerdicts(ctx context.Context, g *vetting.Gatherer, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if err := g.Release(ctx); err != nil {
		log.Warn("the report is not written, and the run's verdict messages are not all visible again: those stay held until their hold passes", "err", err)
		return
	}
	log.Debug("the report is not written: the run's verdict messages are visible again")
}

// readRunInventory reads the inventory file that collect wrote.
func readRunInventory(name string, stdin io.Reader, limit byteSize) (*runInventory, error) {
	data, err := readInput(name, stdin, limit)
	if err != nil {
		return nil, err
	}
	doc := &runInventory{Inventory: &collector.Inventory{}}
	if err := json.Unmarshal(data, doc); err != nil {
		return nil, usageErrorf("--inventory %s: %v", name, err)
	}
	if doc.Schema != collector.Schema || doc.Run == "" {
		return nil, usageErrorf("--inventory %s: not an inventory written by sgvet collect (schema %q, run %q)", name, doc.Schema, doc.Run)
	}
	if doc.MaxHostsPerCIDR < 1 || doc.MaxHostsPerCIDR > 1<<16 {
		return nil, usageErrorf("--inventory %s: max_hosts_per_cidr must be between 1 and 65536, not %d", name, doc.MaxHostsPerCIDR)
	}
	return doc, nil
}

// adoptMaxHosts makes the report expand prefixes as the collect that wrote doc did, so
// that it finds the verdicts on exactly the addresses that were sent: a report built with
// another max_hosts_per_cidr would look for answers on targets no worker was asked about.
// A configuration file that sets another value is refused rather than ignored.
func adoptMaxHosts(cfg *config, doc *runInventory, name string) error {
	if cfg.file != nil {
		if _, set := cfg.file.lines["max_hosts_per_cidr"]; set && cfg.MaxHostsPerCIDR != doc.MaxHostsPerCIDR {
			return cfg.keyErrorf("max_hosts_per_cidr", "is %d, but the inventory %s was collected with %d, which the report must use: remove the key, or set it to %d",
				cfg.MaxHostsPerCIDR, name, doc.MaxHostsPerCIDR, doc.MaxHostsPerCIDR)
		}
	}
	cfg.MaxHostsPerCIDR = doc.MaxHostsPerCIDR
	return nil
}

// showGathering shows on the status line how many addresses have an answer, until ctx
// ends or the returned stop is called.
func showGathering(ctx context.Context, status *statusLine, g *vetting.Gathering, total int) (stop func()) {
	if status == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				status.show(fmt.Sprintf("gathering verdicts: %d of %d addresses answered", total-g.Missing(), total))
			}
		}
	}()
	return func() {
		cancel()
		<-done
		status.done()
	}
}
