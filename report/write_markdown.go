package report

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// markdownWriter writes a report as GitHub-flavoured Markdown: run facts, summary
// tables, then a table of findings per severity, gone rules and skipped parts.
type markdownWriter struct{}

// Write writes the lines as they are made, so that a report of a million findings is not
// held whole in memory.
func (markdownWriter) Write(w io.Writer, r *Report) error {
	b := bufio.NewWriterSize(w, 64<<10)
	run := r.Run
	b.WriteString("# sgvet report\n\n")
	fact := func(name, value string) {
		if value != "" {
			fmt.Fprintf(b, "- **%s:** %s\n", name, value)
		}
	}
	fact("Run", mdEscape(run.ID))
	fact("Started", mdEscape(timeText(run.Started)))
	fact("Finished", mdEscape(timeText(run.Finished)))
	fact("Duration", mdEscape(runDuration(run)))
	fact("Previous run", mdEscape(run.Previous))
	fact("Sources", mdList(run.Sources))
	fact("Regions", mdList(run.Regions))
	fact("Accounts", mdList(run.Accounts))

	if len(run.Providers) > 0 {
		b.WriteString("\n## Providers\n\n")
		b.WriteString("| Provider | Lookups | Answered | Cache hits | Unknown | Errors | Stopped |\n")
		b.WriteString("|---|--:|--:|--:|--:|--:|---|\n")
		for _, p := range run.Providers {
			mdRow(b, mdEscape(p.Provider), strconv.Itoa(p.Lookups), strconv.Itoa(p.Answered),
				strconv.Itoa(p.CacheHits), strconv.Itoa(p.Unknown), strconv.Itoa(p.Errors), mdEscape(p.Stopped))
		}
	}

	s := r.Summary
	b.WriteString("\n## Summary\n\n")
	if r.Incomplete() {
		b.WriteString("> **The audit is incomplete:**")
		if s.AddressesUnvetted > 0 {
			fmt.Fprintf(b, " %s could not be vetted by any provider.", pluralize(s.AddressesUnvetted, "address"))
		}
		if n := len(run.Skipped); n > 0 {
			fmt.Fprintf(b, " %s of the estate could not be collected (see [Skipped](#skipped)).", pluralize(n, "part"))
		}
		b.WriteString("\n")
		for _, f := range unvettedFailures(r) {
			fmt.Fprintf(b, "> - %s\n", mdEscape(failureText(f)))
		}
		b.WriteString("\n")
	}
	b.WriteString("| Severity | Findings |\n|---|--:|\n")
	for _, c := range severityCounts(s) {
		mdRow(b, mdEscape(c.Name), strconv.Itoa(c.Count))
	}
	b.WriteString("\n| Kind | Findings |\n|---|--:|\n")
	for _, c := range kindCounts(s) {
		mdRow(b, mdEscape(c.Name), strconv.Itoa(c.Count))
	}
	if len(s.ByAccount) > 1 {
		b.WriteString("\n| Account | Findings |")
		for _, v := range severityCounts(Summary{}) {
			fmt.Fprintf(b, " %s |", mdEscape(capitalized(v.Name)))
		}
		b.WriteString("\n|---|--:|" + strings.Repeat("--:|", len(Severities)) + "\n")
		for _, c := range accountCounts(s) {
			cells := []string{mdEscape(c.Account), strconv.Itoa(c.Total)}
			for _, n := range c.Severities[:len(Severities)] {
				cells = append(cells, strconv.Itoa(n.Count))
			}
			mdRow(b, cells...)
		}
	}
	fmt.Fprintf(b, "\nFindings on groups reachable from the internet: %d. Addresses: %d total, %d vetted, %d unvetted. Rules: %d new, %d gone",
		s.FindingsReachable, s.AddressesTotal, s.AddressesVetted, s.AddressesUnvetted, s.RulesNew, s.RulesGone)
	if run.Previous != "" {
		b.WriteString(" since the previous run")
	}
	b.WriteString(".\n")

	if len(r.Findings) == 0 {
		b.WriteString("\n## Findings\n\nNo findings.\n")
	}
	for _, g := range groupBySeverity(r.Findings) {
		fmt.Fprintf(b, "\n## %s (%d)\n\n", mdEscape(capitalized(string(g.Severity))), len(g.Findings))
		b.WriteString("| Kind | Account | Region | Group | Rule | Direction | Ports | CIDR | Prefix list | Description | Reasons | Verdicts | Seen |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, f := range g.Findings {
			ref := f.Ref()
			var reasons []string
			if s := invalidText(ref); s != "" {
				reasons = append(reasons, "invalid "+mdEscape(s))
			}
			for _, reason := range f.Reasons() {
				reasons = append(reasons, mdEscape(reason))
			}
			verdicts := make([]string, len(f.Verdicts))
			for i, v := range f.Verdicts {
				verdicts[i] = mdEscape(verdictText(v))
				if v.Evidence != "" {
					verdicts[i] += " — " + mdEscape(v.Evidence)
				}
			}
			mdRow(b, mdEscape(string(f.Kind)), mdEscape(ref.Account), mdEscape(ref.Region), mdEscape(groupLabel(ref.GroupID, ref.GroupName)),
				mdEscape(ref.RuleID), mdEscape(ref.Direction), mdEscape(protoPorts(ref.Protocol, ref.PortRange)), mdEscape(ref.CIDR),
				mdEscape(strings.TrimPrefix(prefixListText(ref), "prefix list ")), mdEscape(ref.Description), strings.Join(reasons, "<br>"), strings.Join(verdicts, "<br>"), mdEscape(seenText(f)))
		}
	}

	if len(r.New) > 0 {
		fmt.Fprintf(b, "\n## New (%d)\n\nRules this run has and the previous one did not.\n\n", len(r.New))
		b.WriteString("| Account | Region | Group | Rule | Direction | Ports | CIDR | Description | First seen |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
		for _, n := range r.New {
			mdRow(b, append(mdRuleCells(n.RuleRef), dateOf(&n.FirstSeen))...)
		}
	}

	if len(r.Gone) > 0 {
		fmt.Fprintf(b, "\n## Gone (%d)\n\nRules the previous run had and this one does not.\n\n", len(r.Gone))
		b.WriteString("| Account | Region | Group | Rule | Direction | Ports | CIDR | Description | First seen | Last seen |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
		for _, g := range r.Gone {
			mdRow(b, append(mdRuleCells(g.RuleRef), dateOf(&g.FirstSeen), dateOf(&g.LastSeen))...)
		}
	}

	if len(run.Unknown) > 0 {
		fmt.Fprintf(b, "\n## Unknown context\n\nWhat the findings of these parts of the estate cannot say.\n\n")
		b.WriteString("| Account | Region | Context | Reason |\n|---|---|---|---|\n")
		for _, u := range run.Unknown {
			mdRow(b, mdEscape(u.Account), mdEscape(u.Region), mdEscape(u.Context), mdEscape(u.Reason))
		}
	}

	if len(run.Skipped) > 0 {
		fmt.Fprintf(b, "\n## Skipped\n\nThese parts of the estate were not collected, so the audit is incomplete.\n\n")
		b.WriteString("| Account | Region | Resource | Reason |\n|---|---|---|---|\n")
		for _, sk := range run.Skipped {
			mdRow(b, mdEscape(sk.Account), mdEscape(sk.Region), mdEscape(sk.Resource), mdEscape(sk.Reason))
		}
	}

	return b.Flush()
}

// mdRow writes one table row of cells already escaped with md.
func mdRow(b *bufio.Writer, cells ...string) {
	b.WriteString("|")
	for _, c := range cells {
		b.WriteString(" ")
		b.WriteString(c)
		b.WriteString(" |")
	}
	b.WriteString("\n")
}

// mdList escapes each of ss with md and joins them with ", ".
func mdList(ss []string) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = mdEscape(s)
	}
	return strings.Join(out, ", ")
}

// mdEscaper escapes text for a Markdown table cell: backslashes and the characters
// that start code, emphasis, links or table cells are escaped with a backslash, and
// "<", ">" and "&" become HTML entities so that no inline HTML reaches the page.
var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "|", `\|`, "`", "\\`", "*", `\*`, "_", `\_`, "~", `\~`, "[", `\[`, "]", `\]`,
	"<", "&lt;", ">", "&gt;", "&", "&amp;",
)

// mdEscape escapes untrusted text for Markdown, on one line.
func mdEscape(s string) string {
	return mdEscaper.Replace(strings.TrimSpace(OneLine(s)))
}

// capitalized returns s with its first letter upper case.
func capitalized(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

// mdRuleCells are the cells that name a new or gone rule: account, region, group, rule,
// direction, ports, CIDR and description.
func mdRuleCells(ref RuleRef) []string {
	return []string{mdEscape(ref.Account), mdEscape(ref.Region), mdEscape(groupLabel(ref.GroupID, ref.GroupName)), mdEscape(ref.RuleID),
		mdEscape(ref.Direction), mdEscape(protoPorts(ref.Protocol, ref.PortRange)), mdEscape(ref.CIDR), mdEscape(ref.Description)}
}
