package report

import (
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/reputation"
)

// The findings reach the page as one JSON document in a data block, which the page's
// script reads and shows a page of rows at a time: as rows of HTML, a report of 100,000
// findings made a page of 58 MB that browsers took minutes to show.
//
// The document is made small by naming every text once:
//
//	{"strings": [text, ...],
//	 "groups": [[account, region, group id, group name], ...],
//	 "verdicts": [[class, summary, categories, evidence, checked], ...],
//	 "prefixLists": [[id, name, entry description, unresolved, aws managed], ...],
//	 "invalid": [[field, text, reason], ...],
//	 "findings": [[severity, kind, group, rule id, direction, ports, cidr, description,
//	               first seen, change, prefix list, invalid, [reason, ...],
//	               [verdict, ...]], ...]}
//
// where every text is an index into strings (0 is the empty text, and the most used
// texts come first, so that their indexes are short), a group or verdict an index into
// groups or verdicts, and a prefix list or invalid part one more than its index into
// prefixLists or invalid (0 for none); aws managed is 1 or 0. report.js reads the
// document by the same positions.

// htmlData builds the page's data document. Use newHTMLData to make one.
type htmlData struct {
	texts       []string // by provisional number, in order of first use
	uses        []int    // how many times each text is used
	textAt      map[string]int
	groups      [][4]int
	groupAt     map[[4]int]int
	verdicts    [][5]int
	verdictAt   map[[5]int]int
	prefixLists [][5]int
	invalid     [][3]int
	// findings are the findings' fields, as in the document, with provisional text
	// numbers, followed by the numbers of reasons and of verdicts.
	findings []htmlFinding
}

// htmlFinding is one finding in the data document.
type htmlFinding struct {
	fields   [12]int
	reasons  []int
	verdicts []int
}

// The fields of htmlFinding.fields that are texts.
var htmlFindingTexts = []int{0, 1, 3, 4, 5, 6, 7, 8, 9}

// newHTMLData returns an empty document with room for n findings.
func newHTMLData(n int) *htmlData {
	return &htmlData{
		findings:  make([]htmlFinding, 0, n),
		texts:     []string{""},
		uses:      []int{0},
		textAt:    map[string]int{"": 0},
		groupAt:   map[[4]int]int{},
		verdictAt: map[[5]int]int{},
	}
}

// text returns the provisional number of s, made one line.
func (d *htmlData) text(s string) int {
	i, ok := d.textAt[s]
	if !ok {
		line := OneLine(s)
		if i, ok = d.textAt[line]; !ok {
			i = len(d.texts)
			d.texts = append(d.texts, line)
			d.uses = append(d.uses, 0)
			d.textAt[line] = i
		}
		d.textAt[s] = i
	}
	d.uses[i]++
	return i
}

// add appends f to the document.
func (d *htmlData) add(f Finding) {
	ref := f.Ref()
	group := [4]int{d.text(ref.Account), d.text(ref.Region), d.text(ref.GroupID), d.text(ref.GroupName)}
	g, ok := d.groupAt[group]
	if !ok {
		g = len(d.groups)
		d.groupAt[group] = g
		d.groups = append(d.groups, group)
	} else {
		for _, t := range group {
			d.uses[t]--
		}
	}
	x := htmlFinding{fields: [12]int{
		d.text(string(f.Severity)), d.text(string(f.Kind)), g,
		d.text(ref.RuleID), d.text(ref.Direction), d.text(protoPorts(ref.Protocol, ref.PortRange)),
		d.text(ref.CIDR), d.text(ref.Description),
		d.text(dateOf(f.FirstSeen)), d.text(string(f.Change)),
		d.prefixList(ref.PrefixList), d.invalidPart(ref.Invalid),
	}}
	for _, r := range f.Reasons() {
		x.reasons = append(x.reasons, d.text(r))
	}
	for _, v := range f.Verdicts {
		x.verdicts = append(x.verdicts, d.verdict(v))
	}
	d.findings = append(d.findings, x)
}

// verdict returns the index of v among the document's verdicts.
func (d *htmlData) verdict(v reputation.Verdict) int {
	var detail []string
	if len(v.Categories) > 0 {
		detail = append(detail, strings.Join(v.Categories, ", "))
	}
	if v.Country != "" {
		detail = append(detail, v.Country)
	}
	checked := ""
	if s := timeText(v.CheckedAt); s != "" {
		checked = "checked " + s
		if v.Cached {
			checked += ", from the cache"
		}
	}
	key := [5]int{
		d.text(verdictClass(v.Status)), d.text(verdictText(v)), d.text(strings.Join(detail, "; ")),
		d.text(v.Evidence), d.text(checked),
	}
	if i, ok := d.verdictAt[key]; ok {
		for _, t := range key {
			d.uses[t]--
		}
		return i
	}
	d.verdictAt[key] = len(d.verdicts)
	d.verdicts = append(d.verdicts, key)
	return len(d.verdicts) - 1
}

// prefixList returns one more than the index of p among the document's prefix lists, or
// 0 for nil.
func (d *htmlData) prefixList(p *collector.PrefixListRef) int {
	if p == nil {
		return 0
	}
	managed := 0
	if p.AWSManaged {
		managed = 1
	}
	d.prefixLists = append(d.prefixLists, [5]int{
		d.text(p.ID), d.text(p.Name), d.text(p.EntryDescription), d.text(p.Unresolved), managed,
	})
	return len(d.prefixLists)
}

// invalidPart returns one more than the index of inv among the document's invalid parts,
// or 0 for nil.
func (d *htmlData) invalidPart(inv *collector.Invalid) int {
	if inv == nil {
		return 0
	}
	d.invalid = append(d.invalid, [3]int{d.text(inv.Field.String()), d.text(inv.Text), d.text(inv.Reason)})
	return len(d.invalid)
}

// document returns the JSON document. encoding/json escapes <, > and & and the line and
// paragraph separators in the strings, and the rest is digits and punctuation, so the
// document can neither end the script element that holds it nor open a comment in it.
func (d *htmlData) document() ([]byte, error) {
	// Number the texts by use, the most used first; the empty text stays 0.
	order := make([]int, len(d.texts)-1)
	for i := range order {
		order[i] = i + 1
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(d.uses[b], d.uses[a]) })
	number := make([]int, len(d.texts))
	texts := make([]string, 1, len(d.texts))
	for n, i := range order {
		number[i] = n + 1
		texts = append(texts, d.texts[i])
	}
	js, err := json.Marshal(texts)
	if err != nil {
		return nil, err
	}

	b := make([]byte, 0, len(js)+48*len(d.findings)+1024)
	b = append(b, `{"strings":`...)
	b = append(b, js...)
	b = append(b, `,"groups":[`...)
	for i, g := range d.groups {
		b = appendTexts(b, i, g[:], number)
	}
	b = append(b, `],"verdicts":[`...)
	for i, v := range d.verdicts {
		b = appendTexts(b, i, v[:], number)
	}
	b = append(b, `],"prefixLists":[`...)
	for i, p := range d.prefixLists {
		b = appendTexts(b, i, p[:4], number)
		b = append(b[:len(b)-1], ',')
		b = strconv.AppendInt(b, int64(p[4]), 10)
		b = append(b, ']')
	}
	b = append(b, `],"invalid":[`...)
	for i, p := range d.invalid {
		b = appendTexts(b, i, p[:], number)
	}
	b = append(b, `],"findings":[`...)
	for i, f := range d.findings {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		next := 0
		for j, n := range f.fields {
			if j > 0 {
				b = append(b, ',')
			}
			if next < len(htmlFindingTexts) && htmlFindingTexts[next] == j {
				n = number[n]
				next++
			}
			b = strconv.AppendInt(b, int64(n), 10)
		}
		b = append(b, ',')
		b = appendTexts(b, 0, f.reasons, number)
		b = append(b, ',')
		b = appendTexts(b, 0, f.verdicts, nil)
		b = append(b, ']')
	}
	return append(b, "]}"...), nil
}

// appendTexts appends ns, renumbered by number unless it is nil, as a JSON array, after a
// comma unless it is the first (i == 0).
func appendTexts(b []byte, i int, ns []int, number []int) []byte {
	if i > 0 {
		b = append(b, ',')
	}
	b = append(b, '[')
	for j, n := range ns {
		if j > 0 {
			b = append(b, ',')
		}
		if number != nil {
			n = number[n]
		}
		b = strconv.AppendInt(b, int64(n), 10)
	}
	return append(b, ']')
}
