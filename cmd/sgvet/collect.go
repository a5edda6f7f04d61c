package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/report"
	"github.com/sgvet/sgvet/vetting"
)

const collectAbout = `Usage: sgvet collect --inventory FILE --queue-url URL [flags]

Collect the security groups (from the AWS API, or from files of aws CLI output with
--input), send every public address to vet to the lookups queue, at most 50 to a message,
for a fleet of 'sgvet work' to vet, and then write the inventory to FILE: a run whose
lookups could not all be sent writes none. The lookups queue must be a standard queue, not
a FIFO queue. It prints the run id on standard output; with --inventory -, the inventory
goes to standard output and the run id to standard error, so that the inventory can be
piped to 'sgvet report --inventory -'.
Then 'sgvet report --inventory FILE' gathers the run's verdicts and writes the report.

Exit status: 0 when everything was collected and sent; 3 when some region or prefix list
could not be collected, or some rule could not be parsed (the inventory lists them, and
the report will too); 2 for a usage, configuration, credentials, input or queue error.

Examples:
  sgvet collect --inventory run.json \
    --queue-url https://sqs.eu-west-1.amazonaws.com/123456789012/sgvet-lookups
  sgvet collect --input examples/security-groups.json --inventory run.json --queue-url "$LOOKUPS"
`

func collectFlags(o *commandOptions) *commandFlags {
	c := newCommandFlags("sgvet collect", collectAbout)
	o.common.registerSource(c)
	o.common.registerInventory(c, "write the inventory, with the run's id, to `FILE` (replaced only when complete; - for standard output, and the run id then to standard error)")
	o.common.registerQueues(c, "send lookup messages to the SQS queue at `URL`", "")
	o.common.registerConfig(c)
	return c
}

// runInventory is the file collect writes and report reads: the inventory, the run it
// belongs to, and the largest prefix its addresses were expanded from, so that the report
// finds exactly the addresses that were sent.
type runInventory struct {
	Run             string `json:"run"`
	MaxHostsPerCIDR int    `json:"max_hosts_per_cidr"`
	*collector.Inventory
}

func runCollect(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var o commandOptions
	fs, _, err := collectFlags(&o).parse(args, stdout)
	if err != nil {
		return err
	}
	if err := requireFlags(map[string]string{"--inventory": o.common.inventory, "--queue-url": o.common.queueURL}); err != nil {
		return err
	}
	cfg, err := o.common.load(fs)
	if err != nil {
		return err
	}
	// With --inventory -, the inventory goes to standard output, and the run id, which
	// would follow it there, to standard error.
	inventory, runOut := o.common.inventory, stdout
	if inventory == "-" {
		inventory, runOut = "", stderr
	}
	if err := checkOutput(inventory); err != nil {
		return err
	}
	status := newStatusLine(stderr)
	log := cfg.newLogger(status.logWriter(stderr))
	lookups, err := openSQS(ctx, cfg, "--queue-url", o.common.queueURL, log)
	if err != nil {
		return err
	}

	inv, err := collect(ctx, cfg, true, stdin, log, status)
	if err != nil {
		return err
	}
	run := newRunID(time.Now())
	// The inventory is written once the lookups are sent, so that a run whose lookups
	// could not all be sent leaves no inventory that looks complete.
	targets := report.Targets(inv.Rules, cfg.MaxHostsPerCIDR)
	progress := func(n int) { status.show(fmt.Sprintf("sending lookups: %d of %d addresses", n, len(targets))) }
	sent, err := vetting.SendLookups(ctx, lookups.ForRun(run), run, targets, progress)
	status.done()
	if err != nil {
		return fmt.Errorf("--queue-url: run %s: %d lookup messages sent, then: %w; no inventory is written, collect again", run, sent, err)
	}
	log.Info("lookups sent", "run", run, "addresses", len(targets), "messages", sent)
	err = writeOutput(ctx, inventory, stdout, func(w io.Writer) error {
		return streamInventoryJSON(w, inv, func(head *collector.Inventory) any {
			return runInventory{Run: run, MaxHostsPerCIDR: cfg.MaxHostsPerCIDR, Inventory: head}
		})
	})
	if err != nil {
		return fmt.Errorf("run %s: the lookups are sent, but the inventory is not written, so no report can be made of the run: %w; collect again", run, err)
	}
	log.Info("inventory written", "run", run, "inventory", o.common.inventory)
	fmt.Fprintln(runOut, run)
	if len(inv.Skipped) > 0 || len(inv.Invalid()) > 0 {
		return errIncomplete
	}
	return nil
}

// requireFlags returns a usage error naming the flags of required that are empty.
func requireFlags(required map[string]string) error {
	var missing []string
	for name, value := range required {
		if value == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	return usageErrorf("%s %s required", strings.Join(missing, " and "), map[bool]string{true: "is", false: "are"}[len(missing) == 1])
}
