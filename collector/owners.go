package collector

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"os"
	"slices"
	"strings"
)

// Owner is who publishes a range that an address or prefix falls in: an AWS service and
// region, a GitHub service, Cloudflare, Google.
type Owner struct {
	// Name is the publisher: "AWS", "GitHub", "Cloudflare", "Google", or the NAME the
	// user gave with NAME=FILE.
	Name string `json:"name"`
	// Service is the publisher's service, where the file says (AWS "EC2", GitHub "hooks",
	// Google "Google Cloud"); empty for a publisher's whole address space.
	Service string `json:"service,omitempty"`
	// Region is the AWS region (including "GLOBAL") or the Google Cloud scope, where the
	// file says.
	Region string `json:"region,omitempty"`
	// Prefix is the published range. From Covering it is the prefix asked about when
	// several published ranges together cover it.
	Prefix netip.Prefix `json:"prefix"`
}

// OwnerRanges is a set of published IP-range files (AWS ip-ranges.json, GitHub meta,
// Cloudflare, Google goog.json and cloud.json, plain named lists) indexed for lookups by
// address or prefix. It is never modified after it is built, so it is safe for concurrent
// use; a nil *OwnerRanges holds no ranges.
type OwnerRanges struct {
	entries []ownerEntry
	groups  []ownerGroup
	v4, v6  ownerTrie
}

// Owner names of the formats that say whose they are.
const (
	ownerAWS        = "AWS"
	ownerGitHub     = "GitHub"
	ownerCloudflare = "Cloudflare"
	ownerGoogle     = "Google"
)

// awsCatchAll is the AWS service whose ranges are the superset of all the others.
const awsCatchAll = "AMAZON"

// publishedRange is one range as a file states it, before indexing.
type publishedRange struct {
	prefix        netip.Prefix
	name, service string
	region        string
	// catchAll marks a range that stands for the publisher's whole space (AWS "AMAZON",
	// Google's goog.json), to which any more specific service is preferred.
	catchAll bool
}

// ownerEntry is one indexed range.
type ownerEntry struct {
	prefix netip.Prefix
	group  int32
	region string
}

// ownerGroup is one publisher and service: the unit whose ranges Covering unites.
type ownerGroup struct {
	name, service string
	catchAll      bool
}

// ownerTrie is a binary trie over one address family. Each range sits at the node reached
// by following its prefix's bits from the root, so the ranges that contain a prefix are
// exactly those on its path, and the ranges inside it are in the subtree under it.
type ownerTrie struct {
	nodes []trieNode // nodes[0] is the root, the family's /0
	marks []nodeMark
	rank  []int32 // rank[group]: lower is preferred for addresses of this family
	// stride[k] is where the first strideBits bits of an address, k, lead, so that
	// lookups skip the top of the trie.
	stride []strideStep
}

// strideBits is how many leading bits ownerTrie.stride resolves at once.
const strideBits = 16

// strideStep is the outcome of following strideBits bits from the root: the node reached
// (-1 if the trie has none there) and the best entry among the ranges on the way, not
// counting the node reached (-1 if none).
type strideStep struct {
	node, best int32
}

// trieNode is a node of ownerTrie. Child 0 means no child (the root is nobody's child).
type trieNode struct {
	child [2]int32
	mark  int32 // 1 + index into ownerTrie.marks, or 0 when nothing is recorded here
}

// nodeMark is what is known about a node's prefix.
type nodeMark struct {
	entries []int32      // indexes of the entries whose prefix is this node's, best first
	cover   []groupCover // groups whose ranges together hold the whole of this node, best first
}

// groupCover is a group whose ranges together hold a node's whole prefix, and the region
// they share ("" when they differ).
type groupCover struct {
	group  int32
	region string
}

// LoadOwnerRanges reads published IP-range files and indexes them together. Each spec is
// FILE, or NAME=FILE to name the owner: a plain list of CIDRs (Cloudflare's ips-v4 and
// ips-v6) does not say whose it is and is accepted only with a NAME, and a NAME given for
// a JSON file replaces the owner the file implies. The format is detected from the
// content, never from the file name. Errors name the file.
func LoadOwnerRanges(specs ...string) (*OwnerRanges, error) {
	var all []publishedRange
	for _, spec := range specs {
		name, file, err := splitOwnerSpec(spec)
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read owner ranges: %w", err)
		}
		ranges, err := parsePublishedRanges(file, name, data)
		if err != nil {
			return nil, err
		}
		all = append(all, ranges...)
	}
	return newOwnerRanges(all), nil
}

// ParseOwnerRanges indexes the content of one published IP-range file. file names it in
// errors; owner, if not empty, is the owner's name, as NAME in LoadOwnerRanges.
func ParseOwnerRanges(file, owner string, data []byte) (*OwnerRanges, error) {
	ranges, err := parsePublishedRanges(file, owner, data)
	if err != nil {
		return nil, err
	}
	return newOwnerRanges(ranges), nil
}

// splitOwnerSpec splits NAME=FILE. A spec whose text before the first "=" holds a path
// separator is a file name that contains "=".
func splitOwnerSpec(spec string) (name, file string, err error) {
	i := strings.IndexByte(spec, '=')
	if i < 0 || strings.ContainsAny(spec[:i], `/\`) {
		return "", spec, nil
	}
	name, file = strings.TrimSpace(spec[:i]), spec[i+1:]
	if name == "" || file == "" {
		return "", "", fmt.Errorf("owner ranges %q: want FILE or NAME=FILE", spec)
	}
	return name, file, nil
}

// Owner returns the owner of the most specific published range that contains the whole
// of p (after Normalize). A specific service is preferred to a catch-all one that also
// contains p (AWS "EC2" or "CLOUDFRONT" to "AMAZON", Google Cloud to goog.json's whole
// space) even when the catch-all range is narrower; among equally long ranges, the
// service with the least published address space is preferred. A prefix that published
// ranges only cover together is not owned: see Covering.
func (o *OwnerRanges) Owner(p netip.Prefix) (Owner, bool) {
	t, key, p, ok := o.trieFor(p)
	if !ok {
		return Owner{}, false
	}
	best, _ := o.walk(t, &key, p.Bits())
	if best < 0 {
		return Owner{}, false
	}
	return o.ownerOf(best), true
}

// Covering reports whether p (after Normalize) lies wholly inside the union of one
// publisher and service's ranges, such as a rule's 4.148.0.0/15 that GitHub publishes for
// Actions as five adjacent ranges, and whose they are. It prefers a specific service to a
// catch-all one, then ranges no wider than p to a wider range that contains p, so it may
// name a narrower service than Owner does. The Owner's Prefix is p when the answer rests
// on ranges no wider than p, and its Region is empty when those ranges' regions differ.
func (o *OwnerRanges) Covering(p netip.Prefix) (Owner, bool) {
	t, key, p, ok := o.trieFor(p)
	if !ok {
		return Owner{}, false
	}
	best, at := o.walk(t, &key, p.Bits())
	var union *groupCover
	if at >= 0 {
		if m := t.nodes[at].mark; m > 0 && len(t.marks[m-1].cover) > 0 {
			union = &t.marks[m-1].cover[0]
		}
	}
	unionOwner := func() Owner {
		g := o.groups[union.group]
		return Owner{Name: g.name, Service: g.service, Region: union.region, Prefix: p}
	}
	switch {
	case union != nil && !o.groups[union.group].catchAll:
		return unionOwner(), true
	case best >= 0 && !o.catchAll(best):
		return o.ownerOf(best), true
	case union != nil:
		return unionOwner(), true
	case best >= 0:
		return o.ownerOf(best), true
	}
	return Owner{}, false
}

// trieFor normalizes p and returns it, the trie of its family and its address bits.
func (o *OwnerRanges) trieFor(p netip.Prefix) (t *ownerTrie, key [16]byte, np netip.Prefix, ok bool) {
	p = Normalize(p)
	if o == nil || !p.IsValid() {
		return nil, key, p, false
	}
	if a := p.Addr(); a.Is4() {
		b := a.As4()
		copy(key[:], b[:])
		return &o.v4, key, p, len(o.v4.nodes) > 0
	}
	return &o.v6, p.Addr().As16(), p, len(o.v6.nodes) > 0
}

// walk follows the first bits of key down t. It returns the best entry among the ranges
// that contain that prefix (-1 if none), and the prefix's own node (-1 if the trie has no
// node for it, so no range lies inside it).
func (o *OwnerRanges) walk(t *ownerTrie, key *[16]byte, bits int) (best, at int32) {
	best = -1
	n, depth := int32(0), 0
	if bits >= strideBits {
		step := t.stride[int(key[0])<<8|int(key[1])]
		if step.node < 0 {
			return step.best, -1
		}
		n, depth, best = step.node, strideBits, step.best
	}
	for ; ; depth++ {
		best = o.deeper(t, n, best)
		if depth == bits {
			return best, n
		}
		n = t.nodes[n].child[key[depth>>3]>>(7-depth&7)&1]
		if n == 0 {
			return best, -1
		}
	}
}

// deeper returns the better of best, found above node n, and the best entry at n. Entries
// are best first, and a deeper range is narrower: it wins unless it is a catch-all and
// best is not.
func (o *OwnerRanges) deeper(t *ownerTrie, n, best int32) int32 {
	if m := t.nodes[n].mark; m > 0 {
		if e := t.marks[m-1].entries; len(e) > 0 && (best < 0 || !o.catchAll(e[0]) || o.catchAll(best)) {
			return e[0]
		}
	}
	return best
}

// fillStride records in t.stride where each value of the first strideBits bits leads
// from node n at depth, whose path so far is bits k, with best found above n.
func (o *OwnerRanges) fillStride(t *ownerTrie, n int32, depth, k int, best int32) {
	if depth == strideBits {
		t.stride[k] = strideStep{node: n, best: best}
		return
	}
	best = o.deeper(t, n, best)
	for bit, c := range t.nodes[n].child {
		k := k<<1 | bit
		if c != 0 {
			o.fillStride(t, c, depth+1, k, best)
			continue
		}
		span := strideBits - depth - 1
		for i := k << span; i < (k+1)<<span; i++ {
			t.stride[i] = strideStep{node: -1, best: best}
		}
	}
}

// catchAll reports whether entry i stands for its publisher's whole space.
func (o *OwnerRanges) catchAll(i int32) bool { return o.groups[o.entries[i].group].catchAll }

// ownerOf returns the Owner of entry i.
func (o *OwnerRanges) ownerOf(i int32) Owner {
	e := &o.entries[i]
	g := &o.groups[e.group]
	return Owner{Name: g.name, Service: g.service, Region: e.region, Prefix: e.prefix}
}

// newOwnerRanges indexes ranges.
func newOwnerRanges(ranges []publishedRange) *OwnerRanges {
	o := &OwnerRanges{}
	type groupKey struct{ name, service string }
	groupOf := map[groupKey]int32{}
	var space4, space6 []float64 // addresses published per group, per family
	for _, r := range ranges {
		k := groupKey{r.name, r.service}
		g, ok := groupOf[k]
		if !ok {
			g = int32(len(o.groups))
			groupOf[k] = g
			o.groups = append(o.groups, ownerGroup{name: r.name, service: r.service})
			space4, space6 = append(space4, 0), append(space6, 0)
		}
		o.groups[g].catchAll = o.groups[g].catchAll || r.catchAll
		size := math.Ldexp(1, r.prefix.Addr().BitLen()-r.prefix.Bits())
		if r.prefix.Addr().Is4() {
			space4[g] += size
		} else {
			space6[g] += size
		}
		o.entries = append(o.entries, ownerEntry{prefix: r.prefix, group: g, region: r.region})
	}
	o.v4.rank = o.rankGroups(space4, space6)
	o.v6.rank = o.rankGroups(space6, space4)
	for i, e := range o.entries {
		t := &o.v6
		if e.prefix.Addr().Is4() {
			t = &o.v4
		}
		t.insert(e.prefix, int32(i))
	}
	o.v4.finish(o)
	o.v6.finish(o)
	return o
}

// rankGroups orders the groups for one family: specific before catch-all, then the least
// published address space in this family first, then in the other family (so that GitHub's
// lists, equal in IPv6, rank in IPv6 as in IPv4), then by name and service so that the
// order is stable.
func (o *OwnerRanges) rankGroups(space, other []float64) []int32 {
	order := make([]int32, len(o.groups))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		ga, gb := &o.groups[a], &o.groups[b]
		if ga.catchAll != gb.catchAll {
			if ga.catchAll {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(space[a], space[b]), cmp.Compare(other[a], other[b]),
			cmp.Compare(ga.name, gb.name), cmp.Compare(ga.service, gb.service))
	})
	rank := make([]int32, len(o.groups))
	for r, g := range order {
		rank[g] = int32(r)
	}
	return rank
}

// insert records entry i at the node of prefix p, creating the path to it.
func (t *ownerTrie) insert(p netip.Prefix, i int32) {
	if len(t.nodes) == 0 {
		t.nodes = append(t.nodes, trieNode{})
	}
	var key [16]byte
	if p.Addr().Is4() {
		b := p.Addr().As4()
		copy(key[:], b[:])
	} else {
		key = p.Addr().As16()
	}
	n := int32(0)
	for depth := range p.Bits() {
		bit := key[depth>>3] >> (7 - depth&7) & 1
		next := t.nodes[n].child[bit]
		if next == 0 {
			next = int32(len(t.nodes))
			t.nodes = append(t.nodes, trieNode{})
			t.nodes[n].child[bit] = next
		}
		n = next
	}
	m := t.markOf(n)
	m.entries = append(m.entries, i)
}

// markOf returns node n's mark, creating it.
func (t *ownerTrie) markOf(n int32) *nodeMark {
	if t.nodes[n].mark == 0 {
		t.marks = append(t.marks, nodeMark{})
		t.nodes[n].mark = int32(len(t.marks))
	}
	return &t.marks[t.nodes[n].mark-1]
}

// finish orders each node's entries best first and records, for every node, the groups
// whose ranges together hold its whole prefix.
func (t *ownerTrie) finish(o *OwnerRanges) {
	if len(t.nodes) == 0 {
		return
	}
	for i := range t.marks {
		slices.SortStableFunc(t.marks[i].entries, func(a, b int32) int {
			ea, eb := &o.entries[a], &o.entries[b]
			return cmp.Or(cmp.Compare(t.rank[ea.group], t.rank[eb.group]), cmp.Compare(ea.region, eb.region))
		})
	}
	t.cover(o, 0)
	t.stride = make([]strideStep, 1<<strideBits)
	o.fillStride(t, 0, 0, 0, -1)
}

// cover computes and records the groups that hold the whole of node n: those with a range
// at n, and those that hold the whole of both of n's halves. The depth of the recursion is
// at most the family's address length.
func (t *ownerTrie) cover(o *OwnerRanges, n int32) []groupCover {
	var halves [2][]groupCover
	for i, c := range t.nodes[n].child {
		if c != 0 {
			halves[i] = t.cover(o, c)
		}
	}
	var covers []groupCover
	if m := t.nodes[n].mark; m > 0 {
		for _, i := range t.marks[m-1].entries {
			e := &o.entries[i]
			if j := slices.IndexFunc(covers, func(c groupCover) bool { return c.group == e.group }); j >= 0 {
				if covers[j].region != e.region {
					covers[j].region = ""
				}
				continue
			}
			covers = append(covers, groupCover{group: e.group, region: e.region})
		}
	}
	for _, l := range halves[0] {
		if slices.ContainsFunc(covers, func(c groupCover) bool { return c.group == l.group }) {
			continue // a range at n holds it whole, whatever the halves say
		}
		j := slices.IndexFunc(halves[1], func(r groupCover) bool { return r.group == l.group })
		if j < 0 {
			continue
		}
		if halves[1][j].region != l.region {
			l.region = ""
		}
		covers = append(covers, l)
	}
	if len(covers) == 0 {
		return nil
	}
	slices.SortFunc(covers, func(a, b groupCover) int { return cmp.Compare(t.rank[a.group], t.rank[b.group]) })
	t.markOf(n).cover = covers
	return covers
}

// parsePublishedRanges detects the format of one file's content and parses it. owner, if
// not empty, replaces the owner the format implies.
func parsePublishedRanges(file, owner string, data []byte) ([]publishedRange, error) {
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	var ranges []publishedRange
	var err error
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		ranges, err = parseRangesJSON(file, trimmed)
	} else {
		ranges, err = parseRangesList(file, owner, data)
	}
	if err != nil {
		return nil, err
	}
	if len(ranges) == 0 {
		return nil, fmt.Errorf("%s: no address ranges in it", file)
	}
	if owner != "" {
		for i := range ranges {
			ranges[i].name = owner
		}
	}
	return ranges, nil
}

// errUnknownFormat says what an owner-ranges file was expected to be.
var errUnknownFormat = errors.New("not a known IP-range format: want AWS ip-ranges.json (prefixes[].ip_prefix), " +
	"GitHub meta (hooks, web, api, git lists), Cloudflare's API answer (result.ipv4_cidrs), " +
	"Google goog.json or cloud.json (prefixes[].ipv4Prefix), or a plain list of CIDRs given as NAME=FILE")

// parseRangesList parses a plain list: one CIDR or address per line, blank lines and
// "#" comments ignored. owner must name whose the ranges are.
func parseRangesList(file, owner string, data []byte) ([]publishedRange, error) {
	var ranges []publishedRange
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		p, err := parseRangeValue(text)
		if err != nil {
			if owner == "" && len(ranges) == 0 {
				return nil, fmt.Errorf("%s: %w", file, errUnknownFormat)
			}
			return nil, fmt.Errorf("%s: line %d: %w", file, line, err)
		}
		if owner == "" {
			return nil, fmt.Errorf("%s: a plain list of ranges does not say whose they are: give it as NAME=%s (for example cloudflare=%s)", file, file, file)
		}
		ranges = append(ranges, publishedRange{prefix: p, name: owner})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return ranges, nil
}

// parseRangeValue parses a published CIDR (or a bare address, as a single-address
// prefix) and normalizes it.
func parseRangeValue(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		a, aerr := netip.ParseAddr(s)
		if aerr != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	return Normalize(p), nil
}

// rangeFormat is one JSON format of published ranges.
type rangeFormat struct {
	name  string
	parse func(file string, top map[string]json.RawMessage) ([]publishedRange, error)
}

// publishedPrefix is an element of AWS's and Google's "prefixes" arrays; which of the
// address fields is present tells the formats apart.
type publishedPrefix struct {
	AWSv4    *string `json:"ip_prefix"`
	AWSv6    *string `json:"ipv6_prefix"`
	GoogleV4 *string `json:"ipv4Prefix"`
	GoogleV6 *string `json:"ipv6Prefix"`
	Region   string  `json:"region"`
	Service  string  `json:"service"`
	Scope    string  `json:"scope"`
}

// parseRangesJSON detects which JSON format data is in and parses it.
func parseRangesJSON(file string, data []byte) ([]publishedRange, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return nil, jsonError(file, data, err)
		}
		return nil, fmt.Errorf("%s: %w", file, errUnknownFormat)
	}
	var found []rangeFormat
	if isCloudflareJSON(top) {
		found = append(found, rangeFormat{"Cloudflare", parseCloudflareJSON})
	}
	var prefixes []publishedPrefix
	if raw, ok := top["prefixes"]; ok {
		_ = json.Unmarshal(raw, &prefixes) // a "prefixes" that is not such an array fits neither format
	}
	_, hasV6 := top["ipv6_prefixes"]
	if hasV6 || slices.ContainsFunc(prefixes, func(p publishedPrefix) bool { return p.AWSv4 != nil }) {
		found = append(found, rangeFormat{"AWS ip-ranges.json", parseAWSJSON})
	}
	if slices.ContainsFunc(prefixes, func(p publishedPrefix) bool { return p.GoogleV4 != nil || p.GoogleV6 != nil }) {
		found = append(found, rangeFormat{"Google goog.json/cloud.json", parseGoogleJSON})
	}
	if slices.ContainsFunc([]string{"hooks", "web", "api", "git", "verifiable_password_authentication"}, func(k string) bool { _, ok := top[k]; return ok }) {
		found = append(found, rangeFormat{"GitHub meta", parseGitHubJSON})
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%s: %w", file, errUnknownFormat)
	case 1:
		return found[0].parse(file, top)
	}
	names := make([]string, len(found))
	for i, f := range found {
		names[i] = f.name
	}
	return nil, fmt.Errorf("%s: fits more than one IP-range format (%s)", file, strings.Join(names, ", "))
}

// parseAWSJSON parses AWS ip-ranges.json.
func parseAWSJSON(file string, top map[string]json.RawMessage) ([]publishedRange, error) {
	var ranges []publishedRange
	for _, list := range []struct{ key, field string }{{"prefixes", "ip_prefix"}, {"ipv6_prefixes", "ipv6_prefix"}} {
		raw, ok := top[list.key]
		if !ok {
			continue
		}
		var prefixes []publishedPrefix
		if err := json.Unmarshal(raw, &prefixes); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", file, list.key, err)
		}
		for i, p := range prefixes {
			value := p.AWSv4
			if list.key == "ipv6_prefixes" {
				value = p.AWSv6
			}
			if value == nil {
				return nil, fmt.Errorf("%s: %s[%d]: no %s", file, list.key, i, list.field)
			}
			prefix, err := parseRangeValue(*value)
			if err != nil {
				return nil, fmt.Errorf("%s: %s[%d].%s: %w", file, list.key, i, list.field, err)
			}
			ranges = append(ranges, publishedRange{
				prefix: prefix, name: ownerAWS, service: p.Service, region: p.Region,
				catchAll: p.Service == awsCatchAll,
			})
		}
	}
	return ranges, nil
}

// parseGoogleJSON parses Google's goog.json (Google's whole address space) and cloud.json
// (Google Cloud, with each range's scope).
func parseGoogleJSON(file string, top map[string]json.RawMessage) ([]publishedRange, error) {
	var prefixes []publishedPrefix
	if err := json.Unmarshal(top["prefixes"], &prefixes); err != nil {
		return nil, fmt.Errorf("%s: prefixes: %w", file, err)
	}
	ranges := make([]publishedRange, 0, len(prefixes))
	for i, p := range prefixes {
		value, field := p.GoogleV4, "ipv4Prefix"
		if value == nil {
			value, field = p.GoogleV6, "ipv6Prefix"
		}
		if value == nil {
			return nil, fmt.Errorf("%s: prefixes[%d]: no ipv4Prefix or ipv6Prefix", file, i)
		}
		prefix, err := parseRangeValue(*value)
		if err != nil {
			return nil, fmt.Errorf("%s: prefixes[%d].%s: %w", file, i, field, err)
		}
		ranges = append(ranges, publishedRange{
			prefix: prefix, name: ownerGoogle, service: p.Service, region: p.Scope,
			catchAll: p.Service == "",
		})
	}
	return ranges, nil
}

// parseGitHubJSON parses GitHub's meta answer. Every key whose value is an array of CIDRs
// is a service; other keys (booleans, objects, SSH and signing keys) are skipped, since the
// set of keys changes over time. An array that mixes CIDRs with other values is an error.
func parseGitHubJSON(file string, top map[string]json.RawMessage) ([]publishedRange, error) {
	var ranges []publishedRange
	for _, key := range slices.Sorted(maps.Keys(top)) {
		var values []string
		if json.Unmarshal(top[key], &values) != nil {
			continue
		}
		prefixes := make([]netip.Prefix, len(values))
		bad := -1
		for i, v := range values {
			p, err := parseRangeValue(v)
			if err != nil {
				if bad < 0 {
					bad = i
				}
				continue
			}
			prefixes[i] = p
		}
		switch {
		case bad < 0:
		case slices.ContainsFunc(prefixes, netip.Prefix.IsValid):
			_, err := parseRangeValue(values[bad])
			return nil, fmt.Errorf("%s: %s[%d]: %w", file, key, bad, err)
		default:
			continue // not a list of ranges
		}
		for _, p := range prefixes {
			ranges = append(ranges, publishedRange{prefix: p, name: ownerGitHub, service: key})
		}
	}
	return ranges, nil
}

// isCloudflareJSON reports whether top is Cloudflare's answer: a "result" object with an
// "ipv4_cidrs" or "ipv6_cidrs" member.
func isCloudflareJSON(top map[string]json.RawMessage) bool {
	var result map[string]json.RawMessage
	if json.Unmarshal(top["result"], &result) != nil {
		return false
	}
	_, v4 := result["ipv4_cidrs"]
	_, v6 := result["ipv6_cidrs"]
	return v4 || v6
}

// parseCloudflareJSON parses Cloudflare's answer.
func parseCloudflareJSON(file string, top map[string]json.RawMessage) ([]publishedRange, error) {
	var success bool
	if json.Unmarshal(top["success"], &success) == nil && !success {
		var errs []struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(top["errors"], &errs) // the messages only explain the failure
		messages := make([]string, len(errs))
		for i, e := range errs {
			messages[i] = e.Message
		}
		return nil, fmt.Errorf("%s: Cloudflare's answer says the request failed: %s", file, strings.Join(messages, "; "))
	}
	var result struct {
		IPv4 []string `json:"ipv4_cidrs"`
		IPv6 []string `json:"ipv6_cidrs"`
	}
	if err := json.Unmarshal(top["result"], &result); err != nil {
		return nil, fmt.Errorf("%s: result: %w", file, err)
	}
	var ranges []publishedRange
	for _, list := range []struct {
		key    string
		values []string
	}{{"ipv4_cidrs", result.IPv4}, {"ipv6_cidrs", result.IPv6}} {
		for i, v := range list.values {
			p, err := parseRangeValue(v)
			if err != nil {
				return nil, fmt.Errorf("%s: result.%s[%d]: %w", file, list.key, i, err)
			}
			ranges = append(ranges, publishedRange{prefix: p, name: ownerCloudflare})
		}
	}
	return ranges, nil
}
