package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/report"
)

const groupsAbout = `Usage: sgvet groups [flags]

Collect the security groups of an AWS account, or read them from files of aws CLI output,
and list each group with the number of its rules and of the public sources they reference;
--sources lists those sources too, one line per rule, with the group, the ports and the
rule's description. No reputation service is asked. --format json prints the whole
inventory (schema sgvet.inventory/v1), public sources included.

Exit status: 0 when everything was collected; 3 when some region or prefix list could not
be (the output lists them under "skipped"), or some rule's CIDR, ports or protocol could not
be parsed (the table lists them, and the JSON marks them "invalid"); 2 for a usage,
configuration, credentials or input error.

Examples:
  sgvet groups --input examples/security-groups.json
  sgvet groups --input examples/security-groups.json --sources | grep 0.0.0.0/0
  aws ec2 describe-security-groups --output json | sgvet groups --input -
  sgvet groups --profile audit --regions us-east-1,eu-west-1 --format json
`

func groupsFlags(o *commandOptions) *commandFlags {
	c := newCommandFlags("sgvet groups", groupsAbout)
	o.common.registerSource(c)
	registerOutput(c, groupOutput, &o.format, &o.output, []string{"table", "json"})
	c.group(groupOutput).BoolVar(&o.sources, "sources", false, "list each group's public sources under the table, one line per rule (table only; json always has them)")
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

	inv, err := collect(ctx, cfg, true, stdin, log, status)
	if err != nil {
		return err
	}

	err = writeOutput(ctx, output, stdout, func(w io.Writer) error {
		if format == "json" {
			return writeInventoryJSON(w, inv)
		}
		return writeGroupsTable(w, inv, o.sources)
	})
	if err != nil {
		return err
	}
	if len(inv.Skipped) > 0 || len(inv.Invalid()) > 0 {
		return errIncomplete
	}
	return nil
}

// reachableText says whether a group is reachable from the internet: yes, no or unknown.
func reachableText(reachable *bool) string {
	switch {
	case reachable == nil:
		return "unknown"
	case *reachable:
		return "yes"
	}
	return "no"
}

// writeGroupsTable writes one line per group with the number of its rules and public
// sources, whether it is attached and whether it is reachable from the internet, and with
// sources a second table: one line per rule with a public source.
func writeGroupsTable(w io.Writer, inv *collector.Inventory, sources bool) error {
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
	fmt.Fprintln(tw, "GROUP\tNAME\tVPC\tREGION\tRULES\tPUBLIC\tATTACHED\tREACHABLE")
	for _, g := range inv.Groups {
		c := perGroup[g.Account+"/"+g.Region+"/"+g.ID]
		if c == nil {
			c = &counts{}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", cell(g.ID), cell(g.Name), cell(g.VPC), cell(g.Region), c.rules, c.public, g.Attached, reachableText(g.Reachable))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if sources {
		if err := writeGroupSources(w, inv); err != nil {
			return err
		}
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
	if !sources && len(inv.Public) > 0 {
		fmt.Fprintln(w, "list each group's public sources with --sources, or all of them with --format json")
	}
	for _, s := range inv.Skipped {
		where := strings.TrimSpace(s.Region + " " + s.Resource)
		fmt.Fprintf(w, "skipped %s: %s\n", cell(where), cell(s.Reason))
	}
	for _, r := range inv.Invalid() {
		fmt.Fprintf(w, "invalid %s %q in group %s rule %s: %s\n", r.Invalid.Field, r.Invalid.Text, cell(r.GroupID), cell(r.ID), cell(r.Invalid.Reason))
	}
	return nil
}

// writeGroupSources writes the rules with a public source, in the order of the groups: the
// group, its name, the direction, protocol and ports, the source, the rule's description
// (with the prefix list and entry a source comes from) and its id.
func writeGroupSources(w io.Writer, inv *collector.Inventory) error {
	byGroup := map[string][]collector.Rule{}
	for _, r := range inv.Rules {
		if r.IsPublic() {
			k := r.Account + "/" + r.Region + "/" + r.GroupID
			byGroup[k] = append(byGroup[k], r)
		}
	}
	fmt.Fprintln(w)
	if len(byGroup) == 0 {
		fmt.Fprintln(w, "no group has a public source")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tNAME\tDIR\tPORTS\tPUBLIC SOURCE\tDESCRIPTION\tRULE")
	for _, g := range inv.Groups {
		for _, r := range byGroup[g.Account+"/"+g.Region+"/"+g.ID] {
			ports := r.Protocol + "/" + r.PortRange()
			if r.Protocol == "all" {
				ports = "all"
			}
			desc := r.Description
			if pl := r.PrefixList; pl != nil {
				via := "prefix list " + pl.ID
				if pl.Name != "" {
					via += " (" + pl.Name + ")"
				}
				if pl.EntryDescription != "" {
					via += ", entry “" + pl.EntryDescription + "”"
				}
				desc = strings.TrimSpace(desc + " [" + via + "]")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(g.ID), cell(g.Name), cell(string(r.Direction)),
				cell(ports), cell(r.Target()), cell(desc), cell(r.ID))
		}
	}
	return tw.Flush()
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
