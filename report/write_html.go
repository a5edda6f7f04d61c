package report

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/sgvet/sgvet/reputation"
)

// htmlWriter writes a report as one self-contained HTML page: no external style sheet,
// script, font or image, and a Content-Security-Policy that lets only the page's own
// style and script run. Every text from the report is escaped by html/template, except
// the findings' texts, which the script reads from a JSON data block where encoding/json
// escapes them (see htmlData.document).
type htmlWriter struct{}

//go:embed html/report.html.tmpl
var htmlFiles embed.FS

// htmlTemplate is the page; its style sheet and script are added as they are.
var htmlTemplate = template.Must(template.New("report.html.tmpl").
	Funcs(template.FuncMap{"prose": prosePieces}).
	ParseFS(htmlFiles, "html/report.html.tmpl"))

// htmlPiece is a piece of a text that wraps at spaces: a word that a browser would break
// at a hyphen, slash, dot or colon (an id, an address, a path) and so must be kept whole,
// or a run of other words.
type htmlPiece struct {
	Text string
	Keep bool
}

// prosePieces cuts s into the pieces that the page wraps at spaces, keeping whole every
// word with a hyphen, slash, dot or colon in it, as report.js does.
func prosePieces(s string) []htmlPiece {
	var pieces []htmlPiece
	text := func(t string) {
		if n := len(pieces); n > 0 && !pieces[n-1].Keep {
			pieces[n-1].Text += t
		} else if t != "" {
			pieces = append(pieces, htmlPiece{Text: t})
		}
	}
	for i, word := range strings.Split(s, " ") {
		if i > 0 {
			text(" ")
		}
		if strings.ContainsAny(word, "-/.:") {
			pieces = append(pieces, htmlPiece{Text: word, Keep: true})
		} else {
			text(word)
		}
	}
	return pieces
}

// htmlStyle is the page's style sheet.
//
//go:embed html/report.css
var htmlStyle string

// htmlScript is the page's script: it shows the findings from the page's data block, a
// page of rows at a time, sorts them by a click on a column header and filters them by
// text, severity and kind.
//
//go:embed html/report.js
var htmlScript string

// The chart's geometry, in pixels.
const (
	chartLabelWidth = 72  // room for the severity names
	chartBarMax     = 320 // the longest bar
	chartCountWidth = 48  // room for the count after the longest bar
	chartBarHeight  = 20
	chartRowHeight  = 28
)

// htmlPage is what the page template is executed with. Every text in it comes through
// oneLine, so that no control or bidirectional formatting character reaches the page.
type htmlPage struct {
	RunID, Previous             string
	Started, Finished, Duration string
	Sources, Regions, Accounts  []string
	Providers                   []ProviderRun
	Summary                     Summary
	Incomplete                  bool
	Chart                       htmlChart
	Severities, Kinds           []namedCount
	// AccountCounts count each account's findings by the severities of AccountColumns,
	// when the report covers several accounts.
	AccountCounts  []htmlAccountCount
	AccountColumns []string
	// Count is the number of findings; Data holds them all, for the script to show.
	Count           int
	Data            template.JS
	SeverityOptions []string
	KindOptions     []string
	// AccountOptions are the accounts the findings may be filtered by, when the report
	// covers several.
	AccountOptions []string
	New, Gone      []htmlRuleChange
	Skipped        []htmlSkipped
	Unknown        []htmlUnknown
	// CSP is the page's Content-Security-Policy, naming the style sheet and the script
	// by their hashes.
	CSP    string
	Style  template.CSS
	Script template.JS
}

// htmlAccountCount is one account's findings, in all and by severity.
type htmlAccountCount struct {
	Account string
	Total   int
	Counts  []int
}

// htmlChart is an SVG bar chart of the findings by severity.
type htmlChart struct {
	Width, Height int
	Bars          []htmlBar
}

// htmlBar is one bar of the chart, with its label and count.
type htmlBar struct {
	Name, Class         string
	Count               int
	X, Y, Width, Height int
	CountX, TextY       int
}

// htmlRuleChange is a new or gone rule as the page shows it; a new rule has no LastSeen.
type htmlRuleChange struct {
	Account, Region, GroupID, GroupName, RuleID, Direction, Ports, CIDR, Description string
	FirstSeen, LastSeen                                                              string
}

// htmlRuleChangeOf returns what the page shows of a new or gone rule; a new rule's
// lastSeen is zero.
func htmlRuleChangeOf(ref RuleRef, firstSeen, lastSeen time.Time) htmlRuleChange {
	c := htmlRuleChange{
		Account: OneLine(ref.Account), Region: OneLine(ref.Region),
		GroupID: OneLine(ref.GroupID), GroupName: OneLine(ref.GroupName),
		RuleID: OneLine(ref.RuleID), Direction: OneLine(ref.Direction),
		Ports: OneLine(protoPorts(ref.Protocol, ref.PortRange)), CIDR: OneLine(ref.CIDR),
		Description: OneLine(ref.Description), FirstSeen: dateOf(&firstSeen),
	}
	if !lastSeen.IsZero() {
		c.LastSeen = dateOf(&lastSeen)
	}
	return c
}

// htmlUnknown is context that could not be had for a part of the estate.
type htmlUnknown struct {
	Account, Region, Context, Reason string
}

// htmlSkipped is a part of the estate that was not collected.
type htmlSkipped struct {
	Where, Account, Region, Resource, Reason string
}

func (htmlWriter) Write(w io.Writer, r *Report) error {
	p, err := newHTMLPage(r)
	if err != nil {
		return fmt.Errorf("render html report: %w", err)
	}
	var b bytes.Buffer
	if err := htmlTemplate.Execute(&b, p); err != nil {
		return fmt.Errorf("render html report: %w", err)
	}
	_, err = w.Write(b.Bytes())
	return err
}

// newHTMLPage returns what the page shows of r.
func newHTMLPage(r *Report) (*htmlPage, error) {
	p := &htmlPage{
		RunID:      OneLine(r.Run.ID),
		Previous:   OneLine(r.Run.Previous),
		Started:    timeText(r.Run.Started),
		Finished:   timeText(r.Run.Finished),
		Duration:   runDuration(r.Run),
		Sources:    oneLines(r.Run.Sources),
		Regions:    oneLines(r.Run.Regions),
		Accounts:   oneLines(r.Run.Accounts),
		Summary:    r.Summary,
		Incomplete: r.Incomplete(),
		Severities: severityCounts(r.Summary),
		Kinds:      kindCounts(r.Summary),
		CSP: "default-src 'none'; style-src " + cspHash(htmlStyle) + "; script-src " + cspHash(htmlScript) +
			"; base-uri 'none'; form-action 'none'",
		Style:  template.CSS(htmlStyle),
		Script: template.JS(htmlScript),
	}
	for _, pr := range r.Run.Providers {
		pr.Provider, pr.Stopped = OneLine(pr.Provider), OneLine(pr.Stopped)
		p.Providers = append(p.Providers, pr)
	}
	for i, c := range p.Severities {
		p.Severities[i].Name = OneLine(c.Name)
	}
	for i, c := range p.Kinds {
		p.Kinds[i].Name = OneLine(c.Name)
	}
	p.Chart = newHTMLChart(p.Severities)
	if len(r.Summary.ByAccount) > 1 {
		for _, v := range Severities {
			p.AccountColumns = append(p.AccountColumns, capitalized(string(v)))
		}
		for _, c := range accountCounts(r.Summary) {
			ac := htmlAccountCount{Account: OneLine(c.Account), Total: c.Total}
			for _, n := range c.Severities[:len(Severities)] {
				ac.Counts = append(ac.Counts, n.Count)
			}
			p.AccountCounts = append(p.AccountCounts, ac)
		}
	}
	if accounts := reportAccounts(r); len(accounts) > 1 {
		p.AccountOptions = oneLines(accounts)
	}

	present := map[Kind]bool{}
	data := newHTMLData(len(r.Findings))
	for _, g := range groupBySeverity(r.Findings) {
		p.SeverityOptions = append(p.SeverityOptions, OneLine(string(g.Severity)))
		for _, f := range g.Findings {
			present[f.Kind] = true
			data.add(f)
		}
	}
	p.Count = len(r.Findings)
	doc, err := data.document()
	if err != nil {
		return nil, err
	}
	p.Data = template.JS(doc) // safe in a script element: see htmlData.document
	var others []string
	for k := range present {
		if !knownKind(k) {
			others = append(others, OneLine(string(k)))
		}
	}
	for _, k := range Kinds {
		if present[k] {
			p.KindOptions = append(p.KindOptions, string(k))
		}
	}
	sort.Strings(others)
	p.KindOptions = append(p.KindOptions, others...)
	for _, n := range r.New {
		p.New = append(p.New, htmlRuleChangeOf(n.RuleRef, n.FirstSeen, time.Time{}))
	}
	for _, g := range r.Gone {
		p.Gone = append(p.Gone, htmlRuleChangeOf(g.RuleRef, g.FirstSeen, g.LastSeen))
	}
	for _, u := range r.Run.Unknown {
		p.Unknown = append(p.Unknown, htmlUnknown{Account: OneLine(u.Account), Region: OneLine(u.Region),
			Context: OneLine(u.Context), Reason: OneLine(u.Reason)})
	}
	for _, s := range r.Run.Skipped {
		p.Skipped = append(p.Skipped, htmlSkipped{
			Where:   OneLine(skippedWhere(s.Account, s.Region, s.Resource)),
			Account: OneLine(s.Account), Region: OneLine(s.Region),
			Resource: OneLine(s.Resource), Reason: OneLine(s.Reason),
		})
	}
	return p, nil
}

// cspHash returns the Content-Security-Policy source that allows the inline element
// whose content is s.
func cspHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// newHTMLChart lays out a bar per severity, the longest for the largest count.
func newHTMLChart(counts []namedCount) htmlChart {
	c := htmlChart{
		Width:  chartLabelWidth + chartBarMax + chartCountWidth,
		Height: len(counts)*chartRowHeight + (chartRowHeight - chartBarHeight),
	}
	most := 0
	for _, n := range counts {
		most = max(most, n.Count)
	}
	for i, n := range counts {
		width := 0
		if most > 0 && n.Count > 0 {
			width = max(2, n.Count*chartBarMax/most)
		}
		y := i*chartRowHeight + (chartRowHeight - chartBarHeight)
		c.Bars = append(c.Bars, htmlBar{
			Name: n.Name, Class: severityClass(Severity(n.Name)), Count: n.Count,
			X: chartLabelWidth, Y: y, Width: width, Height: chartBarHeight,
			CountX: chartLabelWidth + width + 6, TextY: y + chartBarHeight/2,
		})
	}
	return c
}

// severityClass returns the name that the style sheet knows a severity by.
func severityClass(s Severity) string {
	if s.Rank() < len(Severities) {
		return string(s)
	}
	return "other"
}

// oneLines applies oneLine to every string of ss.
func oneLines(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = OneLine(s)
	}
	return out
}

// verdictClass returns the name that the style sheet knows a verdict status by.
func verdictClass(s reputation.Status) string {
	switch s {
	case reputation.Malicious, reputation.Suspicious, reputation.Clean:
		return string(s)
	}
	return "unknown"
}
