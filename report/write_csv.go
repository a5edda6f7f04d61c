package report

import (
	"encoding/csv"
	"io"
	"slices"
	"strings"
	"unicode"
)

// csvWriter writes one row per finding after a header row, then one row of kind
// "skipped" per part of the estate that was not collected (its account, region, and the
// resource and the reason under reasons), so that a spreadsheet shows the audit is
// incomplete, and one of kind "unknown-context" per part whose context could not be had. Every cell that a spreadsheet
// could take for a formula is quoted with a leading "'", and control characters other
// than line breaks and tabs are written as spaces.
type csvWriter struct{}

// csvHeader names the columns of the CSV report. New columns go at the end, so that
// programs that read columns by position keep working.
var csvHeader = []string{
	"severity", "kind", "account", "region", "group_id", "group_name", "rule_id",
	"direction", "protocol", "port_range", "cidr", "description", "reasons", "verdicts",
	"first_seen", "change", "prefix_list_id", "prefix_list_name", "prefix_list_entry",
	"invalid",
}

func (csvWriter) Write(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, f := range r.Findings {
		ref := f.Ref()
		var plID, plName, plEntry string
		if pl := ref.PrefixList; pl != nil {
			plID, plName, plEntry = pl.ID, pl.Name, pl.EntryDescription
		}
		row := []string{
			string(f.Severity), string(f.Kind), ref.Account, ref.Region, ref.GroupID, ref.GroupName,
			ref.RuleID, ref.Direction, ref.Protocol, ref.PortRange, ref.CIDR, ref.Description,
			strings.Join(f.Reasons(), " | "), verdictsText(f.Verdicts), dateOf(f.FirstSeen),
			string(f.Change), plID, plName, plEntry, invalidText(ref),
		}
		if err := writeCSVRow(cw, row); err != nil {
			return err
		}
	}
	// What was not collected, and what context could not be had, follow as rows with a
	// kind of their own, their account and region, and what and why under reasons.
	for _, sk := range r.Run.Skipped {
		text := "skipped " + skippedWhere(sk.Account, sk.Region, sk.Resource) + ": " + sk.Reason
		if err := writeCSVNote(cw, "skipped", sk.Account, sk.Region, text); err != nil {
			return err
		}
	}
	for _, u := range r.Run.Unknown {
		if err := writeCSVNote(cw, "unknown-context", u.Account, u.Region, unknownText(u)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeCSVNote writes a row that is not a finding: kind, account and region in their
// columns, and text under reasons.
func writeCSVNote(cw *csv.Writer, kind, account, region, text string) error {
	row := make([]string, len(csvHeader))
	row[csvColumn("kind")], row[csvColumn("account")], row[csvColumn("region")] = kind, account, region
	row[csvColumn("reasons")] = text
	return writeCSVRow(cw, row)
}

// csvColumn returns the index of the column name in csvHeader.
func csvColumn(name string) int { return slices.Index(csvHeader, name) }

// writeCSVRow writes row, its cells made safe for a spreadsheet and a terminal.
func writeCSVRow(cw *csv.Writer, row []string) error {
	for i := range row {
		row[i] = noFormula(csvText(row[i]))
	}
	return cw.Write(row)
}

// csvText replaces with a space every control character of s but line breaks and tabs,
// which a CSV field holds, so that no terminal escape reaches whoever prints the file.
func csvText(s string) string {
	return strings.Map(func(r rune) rune {
		if r != '\n' && r != '\r' && r != '\t' && unprintable(r) {
			return ' '
		}
		return r
	}, s)
}

// noFormula prefixes with "'" a cell that a spreadsheet could read as a formula, as OWASP
// advises against CSV injection: one whose first character other than white space and
// control or format characters is =, +, - or @, or that starts with a tab, carriage return or line
// break. Every column is guarded, so a port range "-1" is written "'-1", which reads
// the same.
func noFormula(s string) string {
	t := strings.TrimLeftFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) })
	if t != "" && strings.ContainsRune("=+-@", rune(t[0])) || s != "" && strings.ContainsRune("\t\r\n", rune(s[0])) {
		return "'" + s
	}
	return s
}
