package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/report"
)

const groupsAbout = `Usage: sgvet groups [flags]

Collect the security groups of an AWS account, or read them from files of aws CLI output,
and list each group with its rules and the public sources they reference. No reputation
service is asked. --format json prints the whole inventory (schema sgvet.inventory/v1).

Exit status: 0 when everything was collected; 3 when some region or prefix list could not
be (the output lists them under "skipped"); 2 for a usage, configuration, credentials or
input error.

Examples:
  sgvet groups --input examples/security-groups.json
  aws ec2 describe-security-groups --output json | sgvet groups --input -
  sgvet groups --profile audit --regions us-east-1,eu-west-1 --format json
`

func groupsFlags(o *commandOptions) *commandFlags {
	c := newCommandFlags("sgvet groups", groupsAbout)
	o.common.registerSource(c)
	registerOutput(c, groupOutput, &o.format, &o.output, []string{"table", "json"})
	o.common.registerConfig(c)
	return c
}

func runGroups(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var o commandOptions
	fs, _, err := groupsFlags(&o).parse(args, stdout)
	if err != nil {
		return err
	}
	format, output := o.format, o.output
	if format != "table" && format != "json" {
		return usageErrorf("--format must be table or json, not %q", format)
	}
	cfg, err := o.common.load(fs)
	if err != nil {
		return err
	}
	if err := checkOutput(output); err != nil {
		return err
	}
	status := newStatusLine(stderr)
	log := cfg.newLogger(status.logWriter(stderr))

	inv, err := collect(ctx, cfg, stdin, log, status)
	if err != nil {
		return err
	}

	err = writeOutput(ctx, output, stdout, func(w io.Writer) error {
		if format == "json" {
			return writeInventoryJSON(w, inv)
		}
		return writeGroupsTable(w, inv)
	})
	if err != nil {
		return err
	}
	if len(inv.Skipped) > 0 {
		return errIncomplete
	}
	return nil
}

func writeInventoryJSON(w io.Writer, inv *collector.Inventory) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(inv)
}

// maxNameWidth keeps long group names from pushing the table off the screen.
const maxNameWidth = 32

func writeGroupsTable(w io.Writer, inv *collector.Inventory) error {
	type counts struct{ rules, public int }
	perGroup := map[string]*counts{}
	publicTargets := map[string]map[string]bool{}
	for _, r := range inv.Rules {
		k := r.Account + "/" + r.Region + "/" + r.GroupID
		c := perGroup[k]
		if c == nil {
			c = &counts{}
			perGroup[k] = c
			publicTargets[k] = map[string]bool{}
		}
		c.rules++
		if r.IsPublic() && !publicTargets[k][r.Target()] {
			publicTargets[k][r.Target()] = true
			c.public++
		}
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tNAME\tVPC\tREGION\tRULES\tPUBLIC\tATTACHED")
	for _, g := range inv.Groups {
		c := perGroup[g.Account+"/"+g.Region+"/"+g.ID]
		if c == nil {
			c = &counts{}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", cell(g.ID), cell(truncate(g.Name, maxNameWidth)), cell(g.VPC), cell(g.Region), c.rules, c.public, g.Attached)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	kinds := map[collector.SourceKind]int{}
	for _, p := range inv.Public {
		kinds[p.Kind]++
	}
	fmt.Fprintf(w, "\n%d groups, %d rules", len(inv.Groups), len(inv.Rules))
	if len(inv.Regions) > 0 {
		fmt.Fprintf(w, " in %s", plural(len(inv.Regions), "region"))
	}
	fmt.Fprintf(w, "; public: %s, %s, %s, %s\n",
		plural(kinds[collector.KindAddress], "address"), plural(kinds[collector.KindPrefix], "prefix"),
		plural(kinds[collector.KindWorld], "whole-internet range"), plural(kinds[collector.KindAWSService], "AWS service list"))
	for _, s := range inv.Skipped {
		where := strings.TrimSpace(s.Region + " " + s.Resource)
		fmt.Fprintf(w, "skipped %s: %s\n", cell(where), cell(s.Reason))
	}
	for _, r := range inv.Invalid() {
		fmt.Fprintf(w, "invalid %s %q in group %s rule %s: %s\n", r.Invalid.Field, r.Invalid.Text, cell(r.GroupID), cell(r.ID), cell(r.Invalid.Reason))
	}
	return nil
}

// cell returns s for a table cell: "-" when empty, and with control, line-breaking and
// bidirectional formatting characters as spaces, so that names from AWS can neither break
// the table's columns, reach the terminal as commands, nor reorder what is shown.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return report.OneLine(s)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	switch {
	case strings.HasSuffix(word, "s"), strings.HasSuffix(word, "x"):
		return fmt.Sprintf("%d %ses", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
