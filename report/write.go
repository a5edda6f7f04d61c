package report

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/reputation"
)

// Writer writes a report in one format.
type Writer interface {
	Write(w io.Writer, r *Report) error
}

// Formats lists the format names NewWriter accepts: table, json, csv, markdown, html.
var Formats = []string{"table", "json", "csv", "markdown", "html"}

// WriterOptions tune the writers; the zero value is usable.
type WriterOptions struct {
	// Width is the width the table is laid out for, a terminal's or the one COLUMNS
	// asks for; 0 means 120. The table never cuts a text to fit it: columns that do not
	// fit move under each finding's line, and long texts wrap.
	Width int
}

// defaultTableWidth is the table's width when WriterOptions.Width is 0.
const defaultTableWidth = 120

// NewWriter returns the Writer for format, one of Formats. The writers keep no state
// between calls to Write and may be used by several goroutines at once.
func NewWriter(format string, opts WriterOptions) (Writer, error) {
	switch format {
	case "table":
		width := opts.Width
		if width <= 0 {
			width = defaultTableWidth
		}
		return tableWriter{width: width}, nil
	case "json":
		return jsonWriter{}, nil
	case "csv":
		return csvWriter{}, nil
	case "markdown":
		return markdownWriter{}, nil
	case "html":
		return htmlWriter{}, nil
	}
	return nil, fmt.Errorf("unknown report format %q (formats: %s)", format, strings.Join(Formats, ", "))
}

// severityGroup is the findings of one severity, in report order.
type severityGroup struct {
	Severity Severity
	Findings []Finding
}

// groupBySeverity groups findings by severity, the most serious first; severities outside
// Severities come last, in name order.
func groupBySeverity(findings []Finding) []severityGroup {
	// A built report is in this order already: its groups are parts of it, not copies.
	if slices.IsSortedFunc(findings, func(a, b Finding) int { return compareSeverity(a.Severity, b.Severity) }) {
		var groups []severityGroup
		for start := 0; start < len(findings); {
			end := start + 1
			for end < len(findings) && findings[end].Severity == findings[start].Severity {
				end++
			}
			groups = append(groups, severityGroup{findings[start].Severity, findings[start:end:end]})
			start = end
		}
		return groups
	}
	by := map[Severity][]Finding{}
	for _, f := range findings {
		by[f.Severity] = append(by[f.Severity], f)
	}
	var groups []severityGroup
	for _, s := range Severities {
		if fs := by[s]; len(fs) > 0 {
			groups = append(groups, severityGroup{s, fs})
			delete(by, s)
		}
	}
	others := make([]Severity, 0, len(by))
	for s := range by {
		others = append(others, s)
	}
	sort.Slice(others, func(i, j int) bool { return others[i] < others[j] })
	for _, s := range others {
		groups = append(groups, severityGroup{s, by[s]})
	}
	return groups
}

// compareSeverity orders severities as groupBySeverity does: those of Severities, the
// most serious first, then any other, in name order.
func compareSeverity(a, b Severity) int {
	if c := cmp.Compare(a.Rank(), b.Rank()); c != 0 || a.Rank() < len(Severities) {
		return c
	}
	return cmp.Compare(a, b)
}

// namedCount is the number of findings of one kind, or of one severity.
type namedCount struct {
	Name  string
	Count int
}

// kindCounts returns the summary's count for every kind, in the order of Kinds, then for
// any other kind the summary names, in name order.
func kindCounts(s Summary) []namedCount {
	out := make([]namedCount, 0, len(Kinds))
	for _, k := range Kinds {
		out = append(out, namedCount{string(k), s.ByKind[k]})
	}
	var others []string
	for k := range s.ByKind {
		if !knownKind(k) {
			others = append(others, string(k))
		}
	}
	sort.Strings(others)
	for _, k := range others {
		out = append(out, namedCount{k, s.ByKind[Kind(k)]})
	}
	return out
}

// severityCounts returns the summary's count for every severity, the most serious first,
// then for any other severity the summary names, in name order.
func severityCounts(s Summary) []namedCount {
	out := make([]namedCount, 0, len(Severities))
	for _, v := range Severities {
		out = append(out, namedCount{string(v), s.BySeverity[v]})
	}
	var others []string
	for v := range s.BySeverity {
		if v.Rank() == len(Severities) {
			others = append(others, string(v))
		}
	}
	sort.Strings(others)
	for _, v := range others {
		out = append(out, namedCount{v, s.BySeverity[Severity(v)]})
	}
	return out
}

// accountCount is the number of findings of one account, by severity.
type accountCount struct {
	Account    string
	Total      int
	Severities []namedCount
}

// accountCounts returns the summary's counts for every account, in account order, each
// by severity as severityCounts orders them.
func accountCounts(s Summary) []accountCount {
	out := make([]accountCount, 0, len(s.ByAccount))
	for account, bySeverity := range s.ByAccount {
		c := accountCount{Account: account, Severities: severityCounts(Summary{BySeverity: bySeverity})}
		for _, n := range c.Severities {
			c.Total += n.Count
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b accountCount) int { return cmp.Compare(a.Account, b.Account) })
	return out
}

func knownKind(k Kind) bool {
	for _, v := range Kinds {
		if v == k {
			return true
		}
	}
	return false
}

// protoPorts returns a finding's protocol and ports as one short text: "tcp/22",
// "udp/8000-8080", "icmp type 8", "all".
func protoPorts(protocol, ports string) string {
	switch {
	case protocol == "all" || (protocol == "" && ports == "all"):
		return "all"
	case ports == "":
		return protocol
	case protocol == "":
		return ports
	case strings.HasPrefix(ports, "type "):
		return protocol + " " + ports
	}
	return protocol + "/" + ports
}

// groupLabel returns a group's id followed by its name in parentheses, when it has one.
func groupLabel(id, name string) string {
	switch {
	case name == "":
		return id
	case id == "":
		return name
	}
	return id + " (" + name + ")"
}

// dateOf returns the day of t in UTC as YYYY-MM-DD, or "" for nil.
func dateOf(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.DateOnly)
}

// timeText returns t in UTC to the second, or "" for the zero time.
func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// runDuration returns how long the run took, or "" when either end is unknown.
func runDuration(run Run) string {
	if run.Started.IsZero() || run.Finished.IsZero() || run.Finished.Before(run.Started) {
		return ""
	}
	return run.Finished.Sub(run.Started).Round(time.Second).String()
}

// seenText says whether a finding's rule is new and when it was first seen:
// "new", "new, first seen 2026-11-21", "first seen 2026-03-02" or "".
func seenText(f Finding) string {
	day := dateOf(f.FirstSeen)
	switch {
	case f.Change == New && day != "":
		return "new, first seen " + day
	case f.Change == New:
		return "new"
	case day != "":
		return "first seen " + day
	}
	return string(f.Change)
}

// verdictText returns one verdict as "metadefender: malicious (score 2)", with the
// reason of an unknown verdict in place of the score.
func verdictText(v reputation.Verdict) string {
	status := string(v.Status)
	if status == "" {
		status = string(reputation.Unknown)
	}
	s := v.Provider + ": " + status
	var detail []string
	if v.Score != nil {
		detail = append(detail, "score "+strconv.Itoa(*v.Score))
	}
	if !v.Known() && v.Reason != "" {
		detail = append(detail, v.Reason)
	}
	if len(detail) > 0 {
		s += " (" + strings.Join(detail, ", ") + ")"
	}
	return s
}

// verdictsText joins the verdicts' texts with "; ".
func verdictsText(vs []reputation.Verdict) string {
	texts := make([]string, len(vs))
	for i, v := range vs {
		texts[i] = verdictText(v)
	}
	return strings.Join(texts, "; ")
}

// unknownText says what context is unknown where, and why: "reachability unknown in
// account 123456789012, region us-east-1: ...", or "attribution unknown: ..." for the
// whole estate.
func unknownText(u collector.UnknownContext) string {
	if u.Account == "" && u.Region == "" {
		// Of the whole estate.
		return fmt.Sprintf("%s unknown: %s", u.Context, u.Reason)
	}
	return fmt.Sprintf("%s unknown in %s: %s", u.Context, skippedWhere(u.Account, u.Region, ""), u.Reason)
}

// skippedWhere names the part of the estate a Skipped entry is about.
func skippedWhere(account, region, resource string) string {
	var parts []string
	if account != "" {
		parts = append(parts, "account "+account)
	}
	if region != "" {
		parts = append(parts, "region "+region)
	}
	if resource != "" {
		parts = append(parts, resource)
	}
	if len(parts) == 0 {
		return "unknown part"
	}
	return strings.Join(parts, ", ")
}

// pluralize returns "1 finding", "2 findings", "2 addresses".
func pluralize(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "s") {
		return strconv.Itoa(n) + " " + noun + "es"
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// OneLine replaces every control character of s (line breaks, tabs, terminal escapes),
// line and paragraph separator and bidirectional formatting character with a space, so
// that untrusted text can neither break a line-based layout, reach a terminal as a
// command, nor reorder what is shown. Invalid UTF-8 becomes U+FFFD.
func OneLine(s string) string {
	if utf8.ValidString(s) && strings.IndexFunc(s, unprintable) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unprintable(r) {
			return ' '
		}
		return r
	}, s)
}

func unprintable(r rune) bool {
	switch {
	case unicode.IsControl(r), unicode.In(r, unicode.Zl, unicode.Zp):
		return true
	case r >= '\u202a' && r <= '\u202e', r >= '\u2066' && r <= '\u2069', r == '\u200e', r == '\u200f', r == '\u061c':
		return true
	}
	return false
}

// prefixListText says which managed prefix list a rule names and which of its entries
// the finding is about: `prefix list pl-0a1b (office), entry “Alice home”`, with
// "AWS-managed" in front of an AWS list and why its entries could not be read, if so.
// It returns "" for a rule that names no prefix list.
func prefixListText(ref RuleRef) string {
	pl := ref.PrefixList
	if pl == nil {
		return ""
	}
	s := "prefix list " + groupLabel(pl.ID, pl.Name)
	if pl.AWSManaged {
		s = "AWS-managed " + s
	}
	if d := strings.TrimSpace(pl.EntryDescription); d != "" {
		s += ", entry “" + d + "”"
	}
	if pl.Unresolved != "" {
		s += ": entries not read: " + pl.Unresolved
	}
	return s
}

// invalidText says what of a rule could not be parsed: `cidr “10.0.0.300/32”: not an
// address`, or "" for a rule that parsed.
func invalidText(ref RuleRef) string {
	in := ref.Invalid
	if in == nil {
		return ""
	}
	s := string(in.Field) + " “" + in.Text + "”"
	if in.Reason != "" {
		s += ": " + in.Reason
	}
	return s
}

// providerFailure is one reason a provider gave for not answering, and how many
// addresses it gave it for.
type providerFailure struct {
	Provider, Reason string
	Addresses        int
}

// unvettedFailures groups the reasons the providers gave for the addresses of the
// unvetted findings: one entry per provider and reason, counting distinct addresses, so
// that one outage reads as one line, not one per address. Providers come in the order
// of the run, then by name; each provider's reasons, the most frequent first.
func unvettedFailures(r *Report) []providerFailure {
	type key struct{ provider, reason string }
	addrs := map[key]map[string]bool{}
	for _, f := range r.Findings {
		if f.Kind != Unvetted {
			continue
		}
		for _, v := range f.Verdicts {
			if v.Known() {
				continue
			}
			k := key{v.Provider, strings.TrimSpace(v.Reason)}
			if k.reason == "" {
				k.reason = "no answer"
			}
			if addrs[k] == nil {
				addrs[k] = map[string]bool{}
			}
			addrs[k][v.Target.String()] = true
		}
	}
	order := map[string]int{}
	for i, p := range r.Run.Providers {
		order[p.Provider] = i + 1
	}
	out := make([]providerFailure, 0, len(addrs))
	for k, set := range addrs {
		out = append(out, providerFailure{k.provider, k.reason, len(set)})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		oa, ob := order[a.Provider], order[b.Provider]
		if oa == 0 {
			oa = len(order) + 1
		}
		if ob == 0 {
			ob = len(order) + 1
		}
		switch {
		case oa != ob:
			return oa < ob
		case a.Provider != b.Provider:
			return a.Provider < b.Provider
		case a.Addresses != b.Addresses:
			return a.Addresses > b.Addresses
		}
		return a.Reason < b.Reason
	})
	return out
}

// failureText returns a grouped failure as "metadefender: 50 addresses: quota exhausted".
func failureText(f providerFailure) string {
	return f.Provider + ": " + pluralize(f.Addresses, "address") + ": " + f.Reason
}
