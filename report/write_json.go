package report

import (
	"encoding/json"
	"io"
)

// jsonWriter writes a report as indented JSON, the reference format (schema
// sgvet.report/v1). Lists are never null: an empty list is [].
type jsonWriter struct{}

func (jsonWriter) Write(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(normalized(r))
}

// normalized returns a copy of r with its schema set and every nil list or map made
// empty, so that JSON shows [] and {} rather than null; verdicts and their categories
// are left out when empty. r is not modified.
func normalized(r *Report) *Report {
	c := *r
	c.Schema = Schema
	c.Run.Sources = nonNil(c.Run.Sources)
	c.Run.Regions = nonNil(c.Run.Regions)
	c.Run.Accounts = nonNil(c.Run.Accounts)
	c.Run.Providers = nonNil(c.Run.Providers)
	c.Run.Skipped = nonNil(c.Run.Skipped)
	if c.Summary.ByKind == nil {
		c.Summary.ByKind = map[Kind]int{}
	}
	if c.Summary.BySeverity == nil {
		c.Summary.BySeverity = map[Severity]int{}
	}
	c.New = nonNil(c.New)
	c.Gone = nonNil(c.Gone)
	c.Findings = make([]Finding, len(r.Findings))
	for i, f := range r.Findings {
		f.Reasons = nonNil(f.Reasons)
		c.Findings[i] = f
	}
	return &c
}

// nonNil returns s, or an empty slice when s is nil.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
