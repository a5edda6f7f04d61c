package reputation

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// BlocklistFormat is the layout of a blocklist file. LoadBlocklist detects it from the
// content of the file, not from its name.
type BlocklistFormat string

// The formats LoadBlocklist understands.
const (
	// BlocklistFireHOL is a FireHOL .netset or .ipset file: a header of "#" comment lines
	// holding the list's name and "Key: value" lines such as its Category, then one address
	// or CIDR per line.
	BlocklistFireHOL BlocklistFormat = "firehol"
	// BlocklistSpamhausDROP is a Spamhaus DROP text file (drop.txt, dropv6.txt): ";" comment
	// lines, then lines of the form "<CIDR> ; SBL<digits>".
	BlocklistSpamhausDROP BlocklistFormat = "spamhaus-drop"
	// BlocklistSpamhausJSON is a Spamhaus DROP JSON lines file (drop_v4.json, drop_v6.json):
	// one object per line, those with a "cidr" member being entries.
	BlocklistSpamhausJSON BlocklistFormat = "spamhaus-json"
	// BlocklistPlain is one address or CIDR per line, with "#" or ";" comments and blank
	// lines.
	BlocklistPlain BlocklistFormat = "plain"
)

const (
	// blocklistProvider is the name of the BlocklistProvider.
	blocklistProvider = "blocklist"
	// blocklistCategory is the category of a list that does not name one.
	blocklistCategory = "blocklist"
	// blocklistMaxLine is the longest line a blocklist file may have.
	blocklistMaxLine = 1 << 20
	// blocklistMaxEvidence is how many matches a verdict's evidence names.
	blocklistMaxEvidence = 5
	// blocklistCheckEvery is how many targets Lookup checks between looks at its context.
	blocklistCheckEvery = 4096
)

// Blocklist is one loaded list of addresses and prefixes. It is immutable and safe for
// concurrent use.
type Blocklist struct {
	name     string
	category string
	format   BlocklistFormat
	// entries are sorted by prefix and distinct.
	entries []blocklistEntry
}

// blocklistEntry is one listed prefix, with the list's own id for it (a Spamhaus SBL id).
type blocklistEntry struct {
	prefix netip.Prefix
	id     string
}

// Name returns the list's name: the name in a FireHOL header, "Spamhaus DROP List" or the
// like for a Spamhaus DROP text file, the file's base name without extension otherwise.
func (l *Blocklist) Name() string { return l.name }

// Category returns the list's category, from the Category line of a FireHOL header, or
// "blocklist" when the list does not name one.
func (l *Blocklist) Category() string { return l.category }

// Format returns the format detected in the file.
func (l *Blocklist) Format() BlocklistFormat { return l.format }

// Len returns the number of distinct entries in the list.
func (l *Blocklist) Len() int { return len(l.entries) }

// LoadBlocklist reads one blocklist file. See ParseBlocklist.
func LoadBlocklist(path string) (*Blocklist, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseBlocklist(f, path)
}

// LoadBlocklists reads blocklist files with LoadBlocklist. It reads every file and reports
// the errors of all of those it could not load.
func LoadBlocklists(paths ...string) ([]*Blocklist, error) {
	lists := make([]*Blocklist, 0, len(paths))
	var errs []error
	for _, path := range paths {
		l, err := LoadBlocklist(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		lists = append(lists, l)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return lists, nil
}

// ParseBlocklist reads a blocklist from r. The file name is used in errors and names the
// list when its content does not. The format is detected from the content: see
// BlocklistFormat.
//
// Entries are masked, and IPv4-mapped IPv6 entries become IPv4. Bogon and private entries
// are kept. A line that is not an address or a CIDR is an error naming the file and the line,
// and so is a list without entries.
func ParseBlocklist(r io.Reader, file string) (*Blocklist, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), blocklistMaxLine)
	l := &Blocklist{}
	// header holds the comment lines before the first entry, trimmed.
	var header []string
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if l.format == "" {
			if line[0] == '#' || line[0] == ';' {
				header = append(header, line)
				continue
			}
			l.format = blocklistDetect(header, line)
			l.name, l.category = blocklistHeader(l.format, header, file)
		}
		if err := l.parseLine(line); err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", file, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s: line %d: %w", file, n+1, err)
		}
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(l.entries) == 0 {
		return nil, fmt.Errorf("%s: no addresses or CIDRs in the list", file)
	}
	slices.SortStableFunc(l.entries, func(a, b blocklistEntry) int { return a.prefix.Compare(b.prefix) })
	l.entries = slices.CompactFunc(l.entries, func(a, b blocklistEntry) bool { return a.prefix == b.prefix })
	l.entries = slices.Clip(l.entries)
	return l, nil
}

// blocklistDetect returns the format of a file given the comment lines before its first
// entry and the line of that entry.
func blocklistDetect(header []string, first string) BlocklistFormat {
	if first[0] == '{' {
		return BlocklistSpamhausJSON
	}
	for _, h := range header {
		if h[0] != '#' {
			continue
		}
		if _, _, ok := fireHOLKeyValue(h); ok {
			return BlocklistFireHOL
		}
		if t := strings.TrimSpace(h[1:]); strings.HasPrefix(t, "ipv4 hash:") || strings.HasPrefix(t, "ipv6 hash:") {
			return BlocklistFireHOL
		}
	}
	if len(header) > 0 && header[0][0] == ';' && strings.Contains(header[0], "Spamhaus") {
		return BlocklistSpamhausDROP
	}
	if _, c, ok := strings.Cut(first, ";"); ok && strings.HasPrefix(strings.TrimSpace(c), "SBL") {
		return BlocklistSpamhausDROP
	}
	return BlocklistPlain
}

// fireHOLKeyValue splits a FireHOL header line of the form "# <key padded to 16>: <value>".
func fireHOLKeyValue(line string) (key, value string, ok bool) {
	rest, ok := strings.CutPrefix(line, "# ")
	if !ok || len(rest) < 17 || rest[16] != ':' {
		return "", "", false
	}
	key = strings.TrimSpace(rest[:16])
	if key == "" {
		return "", "", false
	}
	for _, c := range key {
		if c != ' ' && (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') {
			return "", "", false
		}
	}
	return key, strings.TrimSpace(rest[17:]), true
}

// blocklistHeader returns the name and the category of a list from its header.
func blocklistHeader(format BlocklistFormat, header []string, file string) (name, category string) {
	category = blocklistCategory
	switch format {
	case BlocklistFireHOL:
		for _, h := range header {
			if h[0] != '#' {
				continue
			}
			if key, value, ok := fireHOLKeyValue(h); ok {
				if key == "Category" && value != "" {
					category = value
				}
				continue
			}
			t := strings.TrimSpace(h[1:])
			if name == "" && t != "" && !strings.HasPrefix(t, "ipv4 hash:") && !strings.HasPrefix(t, "ipv6 hash:") {
				name = t
			}
		}
	case BlocklistSpamhausDROP:
		if len(header) > 0 && strings.Contains(header[0], "Spamhaus") {
			name = spamhausName(header[0])
		}
	}
	if name == "" {
		name = blocklistFileName(file)
	}
	return name, category
}

// spamhausName returns "Spamhaus DROP List" for the first line of a Spamhaus DROP file,
// "; Spamhaus DROP List 2015/09/14 - (c) 2015 The Spamhaus Project".
func spamhausName(line string) string {
	line, _, _ = strings.Cut(strings.TrimLeft(line, "; \t"), " - ")
	fields := strings.Fields(line)
	for len(fields) > 0 {
		last := fields[len(fields)-1]
		if strings.Trim(last, "0123456789/-") != "" {
			break
		}
		fields = fields[:len(fields)-1]
	}
	return strings.Join(fields, " ")
}

// blocklistFileName returns the base name of file without its extension.
func blocklistFileName(file string) string {
	base := filepath.Base(file)
	if name := strings.TrimSuffix(base, filepath.Ext(base)); name != "" {
		return name
	}
	return base
}

// parseLine adds the entry on a line of the list, if there is one.
func (l *Blocklist) parseLine(line string) error {
	if l.format == BlocklistSpamhausJSON {
		return l.parseJSONLine(line)
	}
	entry, comment := line, ""
	if i := strings.IndexAny(line, "#;"); i >= 0 {
		entry, comment = strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
	}
	if entry == "" {
		return nil
	}
	p, err := parseBlocklistEntry(entry)
	if err != nil {
		return err
	}
	var id string
	if l.format == BlocklistSpamhausDROP {
		if f := strings.Fields(comment); len(f) > 0 && strings.HasPrefix(f[0], "SBL") {
			id = f[0]
		}
	}
	l.entries = append(l.entries, blocklistEntry{prefix: p, id: id})
	return nil
}

// parseJSONLine adds the entry of one line of a Spamhaus DROP JSON lines file. Objects
// without a "cidr" member, such as the metadata line, are skipped.
func (l *Blocklist) parseJSONLine(line string) error {
	if line[0] != '{' {
		return fmt.Errorf("%q is not a JSON object", blocklistShorten(line))
	}
	var v struct {
		CIDR  *string `json:"cidr"`
		SBLID string  `json:"sblid"`
	}
	if err := json.Unmarshal([]byte(line), &v); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if v.CIDR == nil {
		return nil
	}
	p, err := parseBlocklistEntry(*v.CIDR)
	if err != nil {
		return err
	}
	l.entries = append(l.entries, blocklistEntry{prefix: p, id: v.SBLID})
	return nil
}

// parseBlocklistEntry parses an address or a CIDR into a masked prefix, IPv4-mapped IPv6
// becoming IPv4.
func parseBlocklistEntry(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("address %q has a zone", blocklistShorten(s))
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR", blocklistShorten(s))
	}
	p = p.Masked()
	if a := p.Addr(); a.Is4In6() {
		// Masking keeps the ::ffff: of a mapped address only when at least 96 bits are kept.
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p, nil
}

// blocklistShorten cuts s for quoting in an error.
func blocklistShorten(s string) string {
	const limit = 80
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}

// BlocklistMatch is one entry of a list that matched a target.
type BlocklistMatch struct {
	// List is the name of the list.
	List string
	// Category is the list's category, "blocklist" when it does not name one.
	Category string
	// Prefix is the listed entry; a single address is a /32 or /128.
	Prefix netip.Prefix
	// ID is the list's own id for the entry, such as a Spamhaus SBL id, if any.
	ID string
}

// String returns the match as it appears in a verdict's evidence:
// "listed in firehol_level1 as 85.25.0.0/16".
func (m BlocklistMatch) String() string { return string(m.appendText(nil)) }

// appendText appends the text of String to b.
func (m BlocklistMatch) appendText(b []byte) []byte {
	b = append(b, "listed in "...)
	b = append(b, m.List...)
	b = append(b, " as "...)
	if m.Prefix.IsSingleIP() {
		b = m.Prefix.Addr().AppendTo(b)
	} else {
		b = m.Prefix.AppendTo(b)
	}
	if m.ID != "" {
		b = append(b, " ("...)
		b = append(b, m.ID...)
		b = append(b, ')')
	}
	return b
}

// BlocklistProvider is the Provider of offline blocklists, named "blocklist". It answers
// without network: a target is Malicious when an entry of any list contains it or, for a
// prefix, overlaps it; Clean when no entry does; Unknown when no list has entries of the
// target's address family.
//
// A BlocklistProvider is safe for concurrent use once Now is set.
type BlocklistProvider struct {
	// Now returns the time stamped on verdicts. If nil, time.Now is used.
	Now func() time.Time

	lists []*Blocklist
	// The entries of every list, in the order of the lists, each list's in prefix order,
	// are numbered from 0: those of lists[i] from firstEntry[i] on. These numbers are what
	// the indexes below hold; match makes the BlocklistMatch of one.
	firstEntry []int32
	v4, v6     blocklistIndex
}

// NewBlocklistProvider returns the provider answering from lists. Nil lists are ignored.
func NewBlocklistProvider(lists ...*Blocklist) *BlocklistProvider {
	p := &BlocklistProvider{}
	var spans4, spans6 []blocklistSpan
	n := 0
	for _, l := range lists {
		if l == nil {
			continue
		}
		p.firstEntry = append(p.firstEntry, int32(n))
		p.lists = append(p.lists, l)
		has4, has6 := false, false
		for _, e := range l.entries {
			i := int32(n)
			n++
			first, last := blocklistRange(e.prefix)
			s := blocklistSpan{first: first, last: last, match: i}
			if e.prefix.Addr().Is4() {
				spans4, has4 = append(spans4, s), true
			} else {
				spans6, has6 = append(spans6, s), true
			}
		}
		if has4 {
			p.v4.lists++
		}
		if has6 {
			p.v6.lists++
		}
	}
	p.v4.build(spans4, blocklistU128{lo: 1<<32 - 1}, n)
	p.v6.build(spans6, blocklistU128{hi: ^uint64(0), lo: ^uint64(0)}, n)
	return p
}

// match returns the BlocklistMatch of entry number m.
func (p *BlocklistProvider) match(m int32) BlocklistMatch {
	i := sort.Search(len(p.firstEntry), func(i int) bool { return p.firstEntry[i] > m }) - 1
	l := p.lists[i]
	e := &l.entries[m-p.firstEntry[i]]
	return BlocklistMatch{List: l.name, Category: l.category, Prefix: e.prefix, ID: e.id}
}

// Lists returns the lists the provider answers from.
func (p *BlocklistProvider) Lists() []*Blocklist { return slices.Clone(p.lists) }

// Name returns "blocklist".
func (p *BlocklistProvider) Name() string { return blocklistProvider }

// BatchSize returns how many targets a Lookup may hold: the lists are in memory, so many.
func (p *BlocklistProvider) BatchSize() int { return 1000 }

// Supports accepts every valid target, address or prefix, IPv4 or IPv6.
func (p *BlocklistProvider) Supports(t Target) error {
	if !t.IsValid() {
		return fmt.Errorf("%s: invalid target: %w", blocklistProvider, ErrUnsupported)
	}
	return nil
}

// Lookup returns one verdict per target. It never uses the network; it looks at ctx every
// few thousand targets and returns its error if it is done.
func (p *BlocklistProvider) Lookup(ctx context.Context, targets []Target) (Answer, error) {
	if err := ctx.Err(); err != nil {
		return Answer{}, err
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	at := now().UTC()
	verdicts := make([]Verdict, len(targets))
	var s blocklistScratch
	for i, t := range targets {
		if i > 0 && i%blocklistCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return Answer{}, err
			}
		}
		verdicts[i] = p.verdict(t, at, &s)
	}
	return Answer{Verdicts: verdicts}, nil
}

// blocklistScratch holds the buffers Lookup reuses from one target to the next.
type blocklistScratch struct {
	matches []BlocklistMatch
	text    []byte
}

// verdict returns the verdict for t.
func (p *BlocklistProvider) verdict(t Target, at time.Time, s *blocklistScratch) Verdict {
	if !t.IsValid() {
		return unknown(blocklistProvider, t, at, "invalid target")
	}
	x, family := &p.v4, "IPv4"
	if !t.Addr().Unmap().Is4() {
		x, family = &p.v6, "IPv6"
	}
	if x.entries == 0 {
		return unknown(blocklistProvider, t, at, "no loaded list has "+family+" entries")
	}
	s.matches = p.AppendMatches(s.matches[:0], t)
	v := Verdict{Provider: blocklistProvider, Target: t, CheckedAt: at}
	if len(s.matches) == 0 {
		v.Status = Clean
		v.Evidence = x.clean
		return v
	}
	v.Status = Malicious
	b := s.text[:0]
	for i, m := range s.matches {
		if !slices.Contains(v.Categories, m.Category) {
			v.Categories = append(v.Categories, m.Category)
		}
		switch {
		case i < blocklistMaxEvidence:
			if i > 0 {
				b = append(b, "; "...)
			}
			b = m.appendText(b)
		case i == blocklistMaxEvidence:
			b = append(b, "; and "...)
			b = strconv.AppendInt(b, int64(len(s.matches)-blocklistMaxEvidence), 10)
			b = append(b, " more"...)
		}
	}
	v.Evidence = string(b)
	s.text = b
	return v
}

// Match returns the entries of every list that match t: those containing the address of a
// single-address target, those overlapping the prefix of a prefix target (containing it or
// contained in it). Matches are in the order of the lists given to NewBlocklistProvider, and
// in prefix order within a list.
func (p *BlocklistProvider) Match(t Target) []BlocklistMatch {
	return p.AppendMatches(nil, t)
}

// AppendMatches appends the matches of t, as returned by Match, to dst and returns the
// extended slice. It does not allocate when dst has room for them.
func (p *BlocklistProvider) AppendMatches(dst []BlocklistMatch, t Target) []BlocklistMatch {
	pfx := t.Prefix
	if !pfx.IsValid() {
		return dst
	}
	a := pfx.Addr()
	if a.Is4In6() {
		pfx = PrefixTarget(pfx).Prefix
		a = pfx.Addr()
	}
	var i0, i1 int
	if a.Is4() {
		x := &p.v4
		if x.entries == 0 {
			return dst
		}
		b := a.As4()
		mask := ^uint32(0) << (32 - pfx.Bits())
		first := binary.BigEndian.Uint32(b[:]) & mask
		i0 = blocklistSearch4(x.starts4, first)
		i1 = i0
		if last := first | ^mask; last != first {
			i1 = blocklistSearch4(x.starts4, last)
		}
		return x.appendMatches(dst, p, i0, i1)
	}
	x := &p.v6
	if x.entries == 0 {
		return dst
	}
	first, last := blocklistRange(pfx)
	i0 = blocklistSearch6(x.starts6, first)
	i1 = i0
	if last != first {
		i1 = blocklistSearch6(x.starts6, last)
	}
	return x.appendMatches(dst, p, i0, i1)
}

// blocklistU128 is an IPv6 address, or an IPv4 address in lo, as a number.
type blocklistU128 struct{ hi, lo uint64 }

func (u blocklistU128) less(v blocklistU128) bool {
	return u.hi < v.hi || u.hi == v.hi && u.lo < v.lo
}

// next returns u+1, and false when u is top, the last address of its family.
func (u blocklistU128) next(top blocklistU128) (blocklistU128, bool) {
	if u == top {
		return u, false
	}
	if u.lo == ^uint64(0) {
		return blocklistU128{hi: u.hi + 1}, true
	}
	return blocklistU128{hi: u.hi, lo: u.lo + 1}, true
}

// blocklistRange returns the first and the last address of p as numbers.
func blocklistRange(p netip.Prefix) (first, last blocklistU128) {
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		mask := ^uint32(0) << (32 - p.Bits())
		f := binary.BigEndian.Uint32(b[:]) & mask
		return blocklistU128{lo: uint64(f)}, blocklistU128{lo: uint64(f | ^mask)}
	}
	b := a.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	var hm, lm uint64
	if bits := p.Bits(); bits >= 64 {
		hm, lm = ^uint64(0), ^uint64(0)<<(128-bits)
	} else {
		hm = ^uint64(0) << (64 - bits)
	}
	first = blocklistU128{hi: hi & hm, lo: lo & lm}
	return first, blocklistU128{hi: first.hi | ^hm, lo: first.lo | ^lm}
}

// blocklistSpan is the range of addresses of one entry.
type blocklistSpan struct {
	first, last blocklistU128
	match       int32
}

// blocklistIndex finds the entries of one address family that match a target. The address
// space is cut into segments at the first address of every entry and after the last: all
// addresses of a segment are in the same entries. A lookup is one binary search for the
// segment of an address.
type blocklistIndex struct {
	// starts4 (IPv4) or starts6 (IPv6) holds the first address of each segment, ascending;
	// the first segment starts at the first address of the family.
	starts4 []uint32
	starts6 []blocklistU128
	// The entries covering segment i are numbers idx[off[i]:off[i+1]], ascending.
	off []int32
	idx []int32
	// firstSeg holds, for each entry number of this family, the segment its entry
	// starts in.
	firstSeg []int32
	// lists and entries count the lists with entries of the family and those entries.
	lists, entries int
	// clean is the evidence of a Clean verdict.
	clean string
}

// build makes the index of spans; top is the last address of the family, n the number of
// entries of all lists.
func (x *blocklistIndex) build(spans []blocklistSpan, top blocklistU128, n int) {
	x.entries = len(spans)
	if len(spans) == 0 {
		return
	}
	lists := "lists"
	if x.lists == 1 {
		lists = "list"
	}
	x.clean = fmt.Sprintf("not listed in %d %s (%s entries)", x.lists, lists, blocklistGroupDigits(x.entries))
	starts := make([]blocklistU128, 0, 2*len(spans)+1)
	starts = append(starts, blocklistU128{})
	for _, s := range spans {
		starts = append(starts, s.first)
		if end, ok := s.last.next(top); ok {
			starts = append(starts, end)
		}
	}
	slices.SortFunc(starts, blocklistU128.compare)
	starts = slices.Compact(starts)

	byFirst := slices.Clone(spans)
	slices.SortFunc(byFirst, func(a, b blocklistSpan) int { return a.first.compare(b.first) })
	x.firstSeg = make([]int32, n)
	x.off = make([]int32, 0, len(starts)+1)
	var active []blocklistSpan
	next := 0
	for i, start := range starts {
		// Drop the entries that ended before this segment, take in those starting at it.
		active = slices.DeleteFunc(active, func(s blocklistSpan) bool { return s.last.less(start) })
		for next < len(byFirst) && byFirst[next].first == start {
			active = append(active, byFirst[next])
			x.firstSeg[byFirst[next].match] = int32(i)
			next++
		}
		x.off = append(x.off, int32(len(x.idx)))
		from := len(x.idx)
		for _, s := range active {
			x.idx = append(x.idx, s.match)
		}
		slices.Sort(x.idx[from:])
	}
	x.off = append(x.off, int32(len(x.idx)))
	x.idx = slices.Clip(x.idx)

	if top.hi == 0 {
		x.starts4 = make([]uint32, len(starts))
		for i, s := range starts {
			x.starts4[i] = uint32(s.lo)
		}
	} else {
		x.starts6 = starts
	}
}

func (u blocklistU128) compare(v blocklistU128) int {
	switch {
	case u.less(v):
		return -1
	case v.less(u):
		return 1
	}
	return 0
}

// appendMatches appends the matches of the entries covering any of segments i0 to i1.
func (x *blocklistIndex) appendMatches(dst []BlocklistMatch, p *BlocklistProvider, i0, i1 int) []BlocklistMatch {
	if i0 == i1 {
		for _, m := range x.idx[x.off[i0]:x.off[i0+1]] {
			dst = append(dst, p.match(m))
		}
		return dst
	}
	// An entry covers consecutive segments: it is either in the first segment or starts in
	// one of the others.
	var buf [32]int32
	found := append(buf[:0], x.idx[x.off[i0]:x.off[i0+1]]...)
	for i := i0 + 1; i <= i1; i++ {
		for _, m := range x.idx[x.off[i]:x.off[i+1]] {
			if x.firstSeg[m] == int32(i) {
				found = append(found, m)
			}
		}
	}
	slices.Sort(found)
	for _, m := range found {
		dst = append(dst, p.match(m))
	}
	return dst
}

// blocklistSearch4 returns the segment holding a: the last i with starts[i] <= a. starts[0]
// is 0.
func blocklistSearch4(starts []uint32, a uint32) int {
	i, j := 0, len(starts)
	for j-i > 1 {
		h := int(uint(i+j) >> 1)
		if starts[h] <= a {
			i = h
		} else {
			j = h
		}
	}
	return i
}

// blocklistSearch6 is blocklistSearch4 for IPv6.
func blocklistSearch6(starts []blocklistU128, a blocklistU128) int {
	i, j := 0, len(starts)
	for j-i > 1 {
		h := int(uint(i+j) >> 1)
		if !a.less(starts[h]) {
			i = h
		} else {
			j = h
		}
	}
	return i
}

// blocklistGroupDigits formats n with commas between groups of three digits: 6,273.
func blocklistGroupDigits(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	if s[0] == '-' {
		b.WriteByte('-')
		s = s[1:]
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
