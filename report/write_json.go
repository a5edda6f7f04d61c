package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// jsonWriter writes a report as indented JSON, the reference format (schema
// sgvet.report/v1). Lists are never null: an empty list is [].
type jsonWriter struct{}

// Write streams the report: the findings, which may be a million, are encoded one at a
// time, so that memory holds one finding's JSON rather than the whole document's. The
// output is the same as encoding the whole report at once with a two-space indent.
func (jsonWriter) Write(w io.Writer, r *Report) error {
	c := normalized(r)
	findings := c.Findings
	c.Findings = []Finding{}
	whole, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	// The report's own fields are at an indent of two spaces; a line break inside a string
	// is escaped, so this text occurs once, where the findings go.
	const slot = "\n  \"findings\": []"
	head, tail, ok := bytes.Cut(whole, []byte(slot))
	if !ok {
		return errors.New("report JSON has no findings field")
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.Write(head)
	bw.WriteString("\n  \"findings\": [")
	for i := range findings {
		data, err := json.MarshalIndent(findings[i].json(), "    ", "  ")
		if err != nil {
			return err
		}
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString("\n    ")
		if _, err := bw.Write(data); err != nil {
			return err
		}
	}
	if len(findings) > 0 {
		bw.WriteString("\n  ]")
	} else {
		bw.WriteString("]")
	}
	bw.Write(tail)
	bw.WriteByte('\n')
	return bw.Flush()
}

// normalized returns a copy of r with its schema set and every nil list or map made
// empty, so that JSON shows [] and {} rather than null; verdicts and their categories
// are left out when empty. A finding's nil reasons are made empty as it is written. r is
// not modified.
func normalized(r *Report) *Report {
	c := *r
	c.Schema = Schema
	c.Run.Sources = nonNil(c.Run.Sources)
	c.Run.Regions = nonNil(c.Run.Regions)
	c.Run.Accounts = nonNil(c.Run.Accounts)
	c.Run.Providers = nonNil(c.Run.Providers)
	c.Run.Skipped = nonNil(c.Run.Skipped)
	c.Run.Unknown = nonNil(c.Run.Unknown)
	if c.Summary.ByKind == nil {
		c.Summary.ByKind = map[Kind]int{}
	}
	if c.Summary.BySeverity == nil {
		c.Summary.BySeverity = map[Severity]int{}
	}
	if c.Summary.ByAccount == nil {
		c.Summary.ByAccount = map[string]map[Severity]int{}
	}
	c.New = nonNil(c.New)
	c.Gone = nonNil(c.Gone)
	c.Findings = nonNil(c.Findings)
	return &c
}

// nonNil returns s, or an empty slice when s is nil.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
