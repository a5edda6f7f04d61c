package report

import (
	"encoding/csv"
	"io"
	"strings"
)

// csvWriter writes one row per finding after a header row. Cells that a spreadsheet
// would take for a formula are quoted with a leading "'", and control characters other
// than line breaks and tabs are written as spaces.
type csvWriter struct{}

// csvHeader names the columns of the CSV report.
var csvHeader = []string{
	"severity", "kind", "account", "region", "group_id", "group_name", "rule_id",
	"direction", "protocol", "port_range", "cidr", "description", "reasons", "verdicts",
	"first_seen", "change",
}

// csvPortRange is the index of the port_range column, whose values ("8000-8080") are
// never formulas and are written as they are.
const csvPortRange = 9

func (csvWriter) Write(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, f := range r.Findings {
		row := []string{
			string(f.Severity), string(f.Kind), f.Account, f.Region, f.GroupID, f.GroupName,
			f.RuleID, f.Direction, f.Protocol, f.PortRange, f.CIDR, f.Description,
			strings.Join(f.Reasons, " | "), verdictsText(f.Verdicts), dateOf(f.FirstSeen),
			string(f.Change),
		}
		for i := range row {
			row[i] = csvText(row[i])
			if i != csvPortRange {
				row[i] = noFormula(row[i])
			}
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
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

// noFormula prefixes with "'" a cell that starts with a character a spreadsheet reads as
// the start of a formula (=, +, -, @, tab, carriage return), as OWASP advises against CSV
// injection.
func noFormula(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
