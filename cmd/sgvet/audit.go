package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/report"
	"github.com/sgvet/sgvet/reputation"
	"github.com/sgvet/sgvet/vetting"
)

const auditAbout = `Usage: sgvet audit [flags]

Collect the security groups (from the AWS API, or from files of aws CLI output with
--input), ask the reputation providers about every public address in their rules, and
report what is suspicious, stale or exposed: addresses that providers list as malicious,
rules whose description says they expired or were temporary, open administration ports,
wide ranges, and what could not be vetted.

Providers are asked when their API key is set: MDCLOUD_APIKEY (metadefender),
ABUSEIPDB_API_KEY (abuseipdb), VT_API_KEY (virustotal), GREYNOISE_API_KEY (greynoise); the
offline blocklist when --blocklist gives a list. With no provider at all, the audit still
reports exposure and staleness, and every address as unvetted.

Exit status: 0 when no finding reaches --fail-on; 1 when one does; 3 when none does but the
audit is incomplete (some address could not be vetted, some region could not be collected,
or some rule could not be parsed); 2 for a usage, configuration, credentials or input error.

Examples:
  go run ./cmd/sgvet audit --input examples/security-groups.json \
    --input examples/network-interfaces.json --input examples/prefix-lists.json \
    --blocklist examples/blocklist.netset
  MDCLOUD_APIKEY=... sgvet audit --regions all --state audit.db --format html --output report.html
  sgvet audit --profile prod --format json --fail-on critical > report.json
`

func auditFlags(o *commandOptions) *commandFlags {
	c := newCommandFlags("sgvet audit", auditAbout)
	o.common.registerSource(c)
	o.common.registerProviders(c)
	registerOutput(c, groupReport, &o.format, &o.output, report.Formats)
	o.common.registerAudit(c)
	o.common.registerQueues(c, "vet over the SQS lookups queue at `URL` (with --results-url), so that 'sgvet work' processes elsewhere can help",
		"gather verdicts from the SQS results queue at `URL` (with --queue-url)")
	o.common.registerConfig(c)
	return c
}

func runAudit(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var o commandOptions
	fs, _, err := auditFlags(&o).parse(args, stdout)
	if err != nil {
		return err
	}
	format, output := o.format, o.output
	cfg, err := o.common.load(fs)
	if err != nil {
		return err
	}
	writer, err := report.NewWriter(format, report.WriterOptions{Width: terminalWidth(stdout)})
	if err != nil {
		return usageErrorf("--format: %v", err)
	}
	status := newStatusLine(stderr)
	log := cfg.newLogger(status.logWriter(stderr))
	started := time.Now().UTC()
	runID := newRunID(started)

	// What bad input can break is opened before any work, so that a mistake costs nothing.
	if err := checkOutput(output); err != nil {
		return err
	}
	owners, err := loadOwnerRanges(cfg)
	if err != nil {
		return err
	}
	var fleet *auditQueues
	if o.common.queueURL != "" || o.common.resultsURL != "" {
		if err := requireFlags(map[string]string{"--queue-url": o.common.queueURL, "--results-url": o.common.resultsURL}); err != nil {
			return err
		}
		if fleet, err = openAuditQueues(ctx, cfg, o.common.queueURL, o.common.resultsURL, log); err != nil {
			return err
		}
	}
	// Unless the report is written, the verdict messages gathered are made visible again.
	written := false
	defer func() {
		if fleet != nil && !written {
			fleet.release(ctx, log)
		}
	}()
	vetter, closeCache, err := newVetter(ctx, cfg, log)
	noProvider := err != nil && isNoProvider(err)
	switch {
	case noProvider:
		vetter = nil
	case err != nil:
		return err
	default:
		defer closeCache()
	}
	var hist *report.History
	if cfg.Audit.State != "" {
		log.Debug("opening the history", "state", cfg.Audit.State)
		if hist, err = report.OpenHistory(ctx, cfg.Audit.State, log); err != nil {
			return usageErrorf("--state: %v", err)
		}
		defer hist.Close()
	}

	inv, err := collect(ctx, cfg, false, stdin, log, status)
	if err != nil {
		return err
	}
	// Said once the input is known to be good, so that it never precedes an input error.
	if noProvider {
		log.Warn("no reputation provider: addresses are reported unvetted", "hint", strings.TrimPrefix(errNoProvider.Error(), "no reputation provider to ask: "))
	}

	var results []reputation.Result
	var stats []reputation.ProviderStats
	if vetter != nil {
		targets := report.Targets(inv.Rules, cfg.MaxHostsPerCIDR)
		stop := startVetProgress(status, vetter, len(targets), addressRates(cfg.Reputation.Providers))
		// Without a history, nothing shows the verdicts on addresses no provider calls bad.
		if fleet != nil {
			results, err = fleet.vet(ctx, runID, targets, vetter, cfg.Reputation.Workers, hist == nil, log)
		} else {
			results, err = vetting.InProcess(ctx, runID, targets, vetter, cfg.Reputation.Workers, hist == nil, log)
		}
		stop()
		if err != nil {
			return err
		}
		stats = vetter.Stats()
		// Nothing more is looked up: the cache is closed now, and the providers, which
		// may hold large lists, are not kept while the report is built.
		if err := closeCache(); err != nil {
			log.Warn("cache not closed cleanly", "err", err)
		}
	}

	err = writeReport(ctx, reportRun{
		cfg: cfg, writer: writer, output: output, stdout: stdout, log: log, hist: hist,
		id: runID, started: started, inv: inv, results: results, stats: stats, owners: owners,
	})
	if written = reportWritten(err); fleet != nil && written {
		fleet.ack(ctx, log)
	}
	return err
}

// reportWritten reports whether a command that returned err wrote its report.
func reportWritten(err error) bool {
	var ee *exitError
	return err == nil || errors.As(err, &ee) && (ee.code == exitFindings || ee.code == exitIncomplete)
}

// reportRun is what writeReport needs of an audit whose verdicts are gathered.
type reportRun struct {
	cfg     config
	writer  report.Writer
	output  string
	stdout  io.Writer
	log     *slog.Logger
	hist    *report.History // nil without --state
	id      string
	started time.Time
	inv     *collector.Inventory
	results []reputation.Result
	stats   []reputation.ProviderStats
	owners  *collector.OwnerRanges // nil without --owner-ranges
}

// loadOwnerRanges reads the published IP-range files of --owner-ranges and
// audit.owner_ranges; nil when there are none.
func loadOwnerRanges(cfg config) (*collector.OwnerRanges, error) {
	if len(cfg.Audit.OwnerRanges) == 0 {
		return nil, nil
	}
	owners, err := collector.LoadOwnerRanges(cfg.Audit.OwnerRanges...)
	if err != nil {
		return nil, usageErrorf("--owner-ranges: %v", err)
	}
	return owners, nil
}

// writeReport builds the report of a run, writes it, records the run in the history once
// the report is written, and returns the exit status the report calls for.
func writeReport(ctx context.Context, rr reportRun) error {
	var (
		view    *report.HistoryView
		pending *report.PendingRun
		err     error
	)
	if rr.hist != nil {
		rr.log.Debug("reading the history", "state", rr.cfg.Audit.State, "rules", len(rr.inv.Rules))
		if view, pending, err = rr.hist.Prepare(ctx, rr.id, rr.started, rr.inv.Rules, rr.results); err != nil {
			return fmt.Errorf("--state: %w", err)
		}
	}
	rep := report.Build(report.Input{
		Inventory: rr.inv,
		Results:   rr.results,
		History:   view,
		Owners:    rr.owners,
		Now:       rr.started,
		Options:   rr.cfg.reportOptions(),
	})
	rep.Run.ID, rep.Run.Started, rep.Run.Finished = rr.id, rr.started, time.Now().UTC()
	rep.Run.Providers = rr.stats

	if err := writeOutput(ctx, rr.output, rr.stdout, func(w io.Writer) error { return rr.writer.Write(w, rep) }); err != nil {
		return err
	}
	if pending != nil {
		if err := recordRun(ctx, rr.hist, pending, rr.cfg, rr.log); err != nil {
			return err
		}
	}
	return auditExit(rep, rr.cfg.Audit.FailOn)
}

// recordRun stores the run in the history once its report is written, so that a run whose
// report failed, or that was stopped before, is never the previous run of another, and
// then forgets the runs beyond history.keep.
func recordRun(ctx context.Context, hist *report.History, pending *report.PendingRun, cfg config, log *slog.Logger) error {
	log.Debug("recording the run", "state", cfg.Audit.State)
	if err := pending.Commit(ctx, time.Now().UTC()); err != nil {
		return fmt.Errorf("--state: the report is written, but the run is not recorded: %w", err)
	}
	n, err := hist.Prune(ctx, cfg.History.Keep)
	if err != nil {
		log.Warn("old runs not pruned from the history", "state", cfg.Audit.State, "err", err)
	} else if n > 0 {
		log.Debug("pruned old runs from the history", "state", cfg.Audit.State, "runs", n, "keep", cfg.History.Keep)
	}
	return nil
}

// auditExit maps a report to the exit status the design contract defines.
func auditExit(rep *report.Report, failOn string) error {
	if failOn != "none" {
		threshold, _ := report.ParseSeverity(failOn)
		if worst, ok := rep.Worst(); ok && worst.AtLeast(threshold) {
			return &exitError{code: exitFindings}
		}
	}
	if rep.Incomplete() {
		return errIncomplete
	}
	return nil
}

// newRunID returns a run id that sorts by time and is unique across machines.
func newRunID(t time.Time) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// terminalWidth returns the width to lay the table out for: COLUMNS if set, whether
// or not stdout is a terminal (the table wraps to it and never cuts), else the width of
// the terminal stdout is; 0 (the writer's default) otherwise.
func terminalWidth(w io.Writer) int {
	var n int
	if _, err := fmt.Sscan(os.Getenv("COLUMNS"), &n); err == nil && n >= 40 {
		return n
	}
	if t := terminal(w); t != nil {
		if n := windowWidth(t.(*os.File)); n >= 40 {
			return n
		}
	}
	return 0
}
