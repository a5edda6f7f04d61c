package report

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"
)

// tableWriter writes a report for a terminal: findings grouped by severity, one line
// each, laid out for lines of width characters. No text is ever cut: a column that does
// not fit moves to the lines under each finding's line, and long texts wrap. Only a word
// longer than a whole line (an address, a URL) makes its line longer than width.
type tableWriter struct{ width int }

// The columns of a finding's line, in order.
const (
	colKind = iota
	colAccount
	colRegion
	colGroup
	colRule
	colDir
	colPorts
	colCIDR
	colSeen
	colDescription
	colReason
	numColumns
)

// columnGap separates the columns.
const columnGap = "  "

// minDetailWidth is the room further reasons need to be aligned under the REASON
// column rather than indented from the left margin.
const minDetailWidth = 40

// detailIndent indents the lines under a finding's line.
const detailIndent = 4

func (t tableWriter) Write(w io.Writer, r *Report) error {
	p := &termPrinter{buf: bufio.NewWriterSize(w, 64<<10), width: t.width}
	p.header(r)
	p.findings(r.Findings, reportAccounts(r), reportRegions(r))
	p.summary(r)
	return p.buf.Flush()
}

// termPrinter writes the table's lines, each at most width characters and free of
// control characters. A write error stops the writing; Flush returns it.
type termPrinter struct {
	buf   *bufio.Writer
	width int
}

// line writes s as one line, control characters as spaces; it is never cut.
func (p *termPrinter) line(s string) {
	p.buf.WriteString(strings.TrimRight(OneLine(s), " "))
	p.buf.WriteByte('\n')
}

// blank writes an empty line.
func (p *termPrinter) blank() { p.buf.WriteByte('\n') }

// wrap writes s over as many lines as it needs, breaking between words; the first line
// is indented by lead spaces, the others by indent spaces.
func (p *termPrinter) wrap(lead, indent int, s string) {
	words := strings.Fields(OneLine(s))
	var cur strings.Builder
	cur.WriteString(strings.Repeat(" ", lead))
	n := lead // characters in cur
	for _, w := range words {
		wn := utf8.RuneCountInString(w)
		if n > lead && n+1+wn > p.width {
			p.line(cur.String())
			cur.Reset()
			cur.WriteString(strings.Repeat(" ", indent))
			n = indent
		} else if n > lead {
			cur.WriteByte(' ')
			n++
		}
		cur.WriteString(w)
		n += wn
	}
	p.line(cur.String())
}

func (p *termPrinter) header(r *Report) {
	run := r.Run
	head := "sgvet report"
	if run.ID != "" {
		head += ", run " + run.ID
	}
	if s := timeText(run.Started); s != "" {
		head += ", started " + s
	}
	if d := runDuration(run); d != "" {
		head += ", took " + d
	}
	p.wrap(0, 4, head)
	counts := fmt.Sprintf("%s, %s, %s", pluralize(len(run.Sources), "source"),
		pluralize(len(run.Regions), "region"), pluralize(len(run.Accounts), "account"))
	if run.Previous != "" {
		counts += "; previous run " + run.Previous
	}
	p.wrap(0, 4, counts)
	providers := make([]string, 0, len(run.Providers))
	for _, pr := range run.Providers {
		s := fmt.Sprintf("%s (%s, %s, %s", pr.Provider, pluralize(pr.Lookups, "lookup"),
			pluralize(pr.CacheHits, "cache hit"), pluralize(pr.Errors, "error"))
		if pr.Stopped != "" {
			s += ", stopped: " + pr.Stopped
		}
		providers = append(providers, s+")")
	}
	if len(providers) == 0 {
		providers = append(providers, "none")
	}
	p.wrap(0, 4, "providers: "+strings.Join(providers, "; "))
}

func (p *termPrinter) findings(findings []Finding, accounts, regions []string) {
	p.blank()
	if len(findings) == 0 {
		p.line("no findings")
		return
	}

	titles := [numColumns]string{"KIND", "ACCOUNT", "REGION", "GROUP", "RULE", "DIR", "PORTS", "CIDR", "SEEN", "DESCRIPTION", "REASON"}
	groups := groupBySeverity(findings)
	// The cells of a finding's line are made twice, to measure the columns and to print
	// them, rather than kept for a report of a million findings.
	var widths [numColumns]int
	for i, title := range titles {
		widths[i] = utf8.RuneCountInString(title)
	}
	seen := false
	for _, g := range groups {
		for i := range g.Findings {
			f := &g.Findings[i]
			ref := f.Ref()
			row := tableCells(f, &ref)
			for c, s := range row {
				widths[c] = max(widths[c], utf8.RuneCountInString(s))
			}
			seen = seen || row[colSeen] != "-"
		}
	}
	if !seen {
		widths[colSeen] = 0 // no history: the column is left out
	}
	if len(regions) < 2 {
		widths[colRegion] = 0 // one region: the header says which
	}
	if len(accounts) < 2 {
		widths[colAccount] = 0 // one account: the header says which
	}
	fitted := fitColumns(widths, p.width)
	groupNameBelow := false
	if fitted[colGroup] == 0 {
		// The group's id alone may fit where its name and id do not: the id is what finds
		// the group, and its name moves under the line.
		idWidths := widths
		idWidths[colGroup] = utf8.RuneCountInString(titles[colGroup])
		for _, g := range groups {
			for i := range g.Findings {
				_, _, group, _ := g.Findings[i].place()
				idWidths[colGroup] = max(idWidths[colGroup], utf8.RuneCountInString(OneLine(group)))
			}
		}
		if w := fitColumns(idWidths, p.width); w[colGroup] > 0 {
			fitted, groupNameBelow = w, true
		}
	}
	widths = fitted
	descBelow, reasonBelow := widths[colDescription] == 0, widths[colReason] == 0
	seenBelow := seen && widths[colSeen] == 0

	indent := detailIndent
	if !reasonBelow {
		start := 0
		for c := range colReason {
			if widths[c] > 0 {
				start += widths[c] + len(columnGap)
			}
		}
		if p.width-start >= minDetailWidth {
			indent = start
		}
	}

	for gi, g := range groups {
		if gi > 0 {
			p.blank()
		}
		p.line(fmt.Sprintf("%s: %s", strings.ToUpper(OneLine(string(g.Severity))), pluralize(len(g.Findings), "finding")))
		p.line(joinColumns(titles, widths))
		for i := range g.Findings {
			f := &g.Findings[i]
			ref := f.Ref()
			row := tableCells(f, &ref)
			if id := strings.TrimSpace(OneLine(ref.GroupID)); groupNameBelow && id != "" {
				row[colGroup] = id
			}
			p.line(joinColumns(row, widths))
			var details []string
			if name := strings.TrimSpace(OneLine(ref.GroupName)); groupNameBelow && name != "" && ref.GroupID != "" {
				details = append(details, "group name "+name)
			}
			for _, c := range []int{colGroup, colAccount, colRegion, colRule, colPorts, colCIDR} {
				if widths[c] == 0 && row[c] != "-" && (c != colRegion || len(regions) > 1) && (c != colAccount || len(accounts) > 1) {
					details = append(details, belowLabels[c]+" "+row[c])
				}
			}
			if s := prefixListText(ref); s != "" {
				details = append(details, s)
			}
			if s := invalidText(ref); s != "" {
				details = append(details, "invalid "+s)
			}
			if descBelow && strings.TrimSpace(ref.Description) != "" {
				details = append(details, "“"+strings.TrimSpace(OneLine(ref.Description))+"”")
			}
			if s := seenText(*f); seenBelow && s != "" {
				details = append(details, s)
			}
			reasons := f.Reasons()
			if !reasonBelow && len(reasons) > 0 {
				reasons = reasons[1:]
			}
			details = append(details, reasons...)
			for _, v := range f.Verdicts {
				if f.Kind == Unvetted && !v.Known() {
					continue // the reason says it, and the summary counts it once per provider
				}
				s := verdictText(v)
				if v.Evidence != "" {
					s += " — " + v.Evidence
				}
				details = append(details, s)
			}
			for _, d := range details {
				p.wrap(indent, indent+2, d)
			}
		}
	}
}

// belowLabels name the cells of the columns that may move under a finding's line.
var belowLabels = [numColumns]string{colGroup: "group", colAccount: "account", colRegion: "region", colRule: "rule", colPorts: "ports", colCIDR: "cidr"}

// tableCells returns the cells of a finding's line, control characters as spaces and "-"
// for an empty cell.
func tableCells(f *Finding, ref *RuleRef) [numColumns]string {
	reason := f.firstReason()
	seen := string(f.Change)
	if day := dateOf(f.FirstSeen); day != "" {
		seen = strings.TrimSpace(seen + " " + day)
	}
	dir := ref.Direction
	switch dir {
	case "ingress":
		dir = "in"
	case "egress":
		dir = "out"
	}
	cells := [numColumns]string{
		colKind:        string(f.Kind),
		colAccount:     ref.Account,
		colRegion:      ref.Region,
		colGroup:       tableGroup(ref.GroupID, ref.GroupName),
		colRule:        ref.RuleID,
		colDir:         dir,
		colPorts:       protoPorts(ref.Protocol, ref.PortRange),
		colCIDR:        ref.CIDR,
		colSeen:        seen,
		colDescription: ref.Description,
		colReason:      reason,
	}
	for i, s := range cells {
		s = strings.TrimSpace(OneLine(s))
		if s == "" {
			s = "-"
		}
		cells[i] = s
	}
	return cells
}

// fitColumns returns the widths of the columns for a line of at most width characters;
// a column of width 0 is left out. No column is ever narrower than its longest cell:
// columns that do not fit move, whole, to the lines under the finding's line, in this
// order: REASON, DESCRIPTION, RULE, SEEN, REGION, ACCOUNT, GROUP, and on a narrow terminal CIDR
// and PORTS too; then those that fit again in the room
// left come back, the last moved first. If the line is still too long, it is left longer
// than width rather than cut.
func fitColumns(natural [numColumns]int, width int) [numColumns]int {
	w := natural
	var moved []int
	for _, c := range []int{colReason, colDescription, colRule, colSeen, colRegion, colAccount, colGroup, colCIDR, colPorts} {
		if lineWidth(w) <= width {
			break
		}
		if w[c] > 0 {
			w[c] = 0
			moved = append(moved, c)
		}
	}
	for i := len(moved) - 2; i >= 0; i-- {
		c := moved[i]
		w[c] = natural[c]
		if lineWidth(w) > width {
			w[c] = 0
		}
	}
	return w
}

// lineWidth returns the width of a line of columns of widths w.
func lineWidth(w [numColumns]int) int {
	total, shown := 0, 0
	for _, n := range w {
		if n > 0 {
			total += n
			shown++
		}
	}
	return total + len(columnGap)*max(shown-1, 0)
}

// joinColumns lays cells out in columns of the given widths, each at least as wide as its
// cell; a column of width 0 is left out.
func joinColumns(cells [numColumns]string, widths [numColumns]int) string {
	var b strings.Builder
	for i, s := range cells {
		if widths[i] == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(columnGap)
		}
		b.WriteString(s)
		b.WriteString(strings.Repeat(" ", max(widths[i]-utf8.RuneCountInString(s), 0)))
	}
	return b.String()
}

func (p *termPrinter) summary(r *Report) {
	s := r.Summary
	p.blank()
	p.line("SUMMARY")
	var sev []string
	total := 0
	for _, c := range severityCounts(s) {
		total += c.Count
		sev = append(sev, fmt.Sprintf("%s %d", c.Name, c.Count))
	}
	p.wrap(0, 4, fmt.Sprintf("findings: %d (%s)", total, strings.Join(sev, ", ")))
	var kinds []string
	for _, c := range kindCounts(s) {
		if c.Count > 0 {
			kinds = append(kinds, fmt.Sprintf("%s %d", c.Name, c.Count))
		}
	}
	if len(kinds) == 0 {
		kinds = append(kinds, "none")
	}
	p.wrap(0, 4, "by kind: "+strings.Join(kinds, ", "))
	if len(s.ByAccount) > 1 {
		p.line("by account:")
		for _, c := range accountCounts(s) {
			counts := make([]string, len(c.Severities))
			for i, n := range c.Severities {
				counts[i] = fmt.Sprintf("%s %d", n.Name, n.Count)
			}
			p.wrap(2, 6, fmt.Sprintf("%s: %d (%s)", c.Account, c.Total, strings.Join(counts, ", ")))
		}
	}
	p.wrap(0, 4, fmt.Sprintf("reachable: %s on groups reachable from the internet", pluralize(s.FindingsReachable, "finding")))
	p.wrap(0, 4, fmt.Sprintf("addresses: %d total, %d vetted, %d unvetted", s.AddressesTotal, s.AddressesVetted, s.AddressesUnvetted))
	rules := fmt.Sprintf("rules: %d new, %d gone", s.RulesNew, s.RulesGone)
	if r.Run.Previous != "" {
		rules += " since run " + r.Run.Previous
	}
	p.wrap(0, 4, rules)

	if len(r.New) > 0 {
		p.blank()
		p.line(fmt.Sprintf("NEW: %s the previous run did not have", pluralize(len(r.New), "rule")))
		for _, n := range r.New {
			line := ruleLine(n.RuleRef)
			if !n.FirstSeen.IsZero() {
				line += ", first seen " + dateOf(&n.FirstSeen)
			}
			p.wrap(2, 4, line)
		}
	}

	if len(r.Gone) > 0 {
		p.blank()
		p.line(fmt.Sprintf("GONE: %s the previous run had", pluralize(len(r.Gone), "rule")))
		for _, g := range r.Gone {
			line := ruleLine(g.RuleRef)
			if !g.FirstSeen.IsZero() || !g.LastSeen.IsZero() {
				line += fmt.Sprintf(", seen %s to %s", dateOf(&g.FirstSeen), dateOf(&g.LastSeen))
			}
			p.wrap(2, 4, line)
		}
	}

	if r.Incomplete() {
		p.blank()
		p.line("INCOMPLETE: the audit did not cover everything")
		if n := s.AddressesUnvetted; n > 0 {
			p.wrap(2, 4, fmt.Sprintf("%s could not be vetted by any provider", pluralize(n, "address")))
			for _, f := range unvettedFailures(r) {
				p.wrap(4, 6, failureText(f))
			}
		}
		for _, sk := range r.Run.Skipped {
			p.wrap(2, 4, fmt.Sprintf("skipped %s: %s", skippedWhere(sk.Account, sk.Region, sk.Resource), sk.Reason))
		}
	}
	if len(r.Run.Unknown) > 0 {
		p.blank()
		p.line("CONTEXT UNKNOWN: findings there say nothing of it")
		for _, u := range r.Run.Unknown {
			p.wrap(2, 4, unknownText(u))
		}
	}
}

// nonEmpty returns the strings of ss that are not empty.
func nonEmpty(ss []string) []string {
	out := ss[:0:0]
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// tableGroup labels a group name first, so that a narrow column keeps the part people
// recognise.
func tableGroup(id, name string) string {
	if name == "" || id == "" {
		return name + id
	}
	return name + " (" + id + ")"
}

// reportRegions returns the regions a report is about: the run's, and any other region a
// finding names, sorted.
func reportRegions(r *Report) []string {
	return reportPlaces(r.Run.Regions, r.Findings, func(f *Finding) string {
		_, region, _, _ := f.place()
		return region
	})
}

// reportAccounts returns the accounts a report is about: the run's, and any other account
// a finding names, sorted.
func reportAccounts(r *Report) []string {
	return reportPlaces(r.Run.Accounts, r.Findings, func(f *Finding) string {
		account, _, _, _ := f.place()
		return account
	})
}

// reportPlaces returns the names of run and those placeOf returns for the findings,
// without the empty name, sorted.
func reportPlaces(run []string, findings []Finding, placeOf func(*Finding) string) []string {
	set := map[string]bool{}
	for _, name := range run {
		set[name] = true
	}
	for i := range findings {
		if name := placeOf(&findings[i]); name != "" {
			set[name] = true
		}
	}
	delete(set, "")
	out := make([]string, 0, len(set))
	for name := range set {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// ruleLine describes a new or gone rule on one line: group, rule id, direction, ports,
// CIDR and description.
func ruleLine(ref RuleRef) string {
	parts := []string{groupLabel(ref.GroupID, ref.GroupName), ref.RuleID, ref.Direction,
		protoPorts(ref.Protocol, ref.PortRange), ref.CIDR}
	if d := strings.TrimSpace(OneLine(ref.Description)); d != "" {
		parts = append(parts, "“"+d+"”")
	}
	return strings.Join(nonEmpty(parts), " ")
}
