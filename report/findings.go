package report

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/reputation"
)

// maxAddressesShown is how many addresses of one rule a suspicious-source or unvetted
// finding names one by one (and how many extra rules a default-group-in-use finding
// names); the rest are counted in a last reason.
const maxAddressesShown = 10

// Build returns the report of in: every finding, sorted, with the summary. It fills the
// run's sources, regions, accounts and skipped parts from the inventory and its previous run
// from the history; the rest of Run (ID, Started, Finished, Providers) is left to the
// caller. A nil Inventory is an empty estate.
//
// Findings are sorted as compareFindings says: by severity, then those on groups reachable
// from the internet first, then the oldest rules first, then by kind (in the order of
// Kinds), account, region, group id, rule id and CIDR.
func Build(in Input) *Report {
	inv := in.Inventory
	if inv == nil {
		inv = &collector.Inventory{}
	}
	b := newBuilder(in, inv)
	b.addressFindings()
	b.groupFindings()
	b.ruleFindings()
	sortFindings(b.findings)

	r := &Report{
		Schema: Schema,
		Run: Run{
			Sources:   emptyIfNil(slices.Clone(inv.Sources)),
			Regions:   emptyIfNil(slices.Clone(inv.Regions)),
			Accounts:  emptyIfNil(slices.Clone(inv.Accounts)),
			Providers: []ProviderRun{},
			Skipped:   emptyIfNil(slices.Clone(inv.Skipped)),
			Unknown:   emptyIfNil(slices.Clone(inv.Unknown)),
		},
		Summary:  b.summary(),
		Findings: emptyIfNil(b.findings),
		New:      []NewRule{},
		Gone:     []GoneRule{},
	}
	if h := in.History; h != nil {
		r.Run.Previous = h.Previous
		r.New = newRules(inv.Rules, h)
		r.Gone = emptyIfNil(slices.Clone(h.Gone))
	}
	return r
}

// builder holds the indexes Build computes once, and the findings as they are found.
type builder struct {
	in    Input
	inv   *collector.Inventory
	rules []collector.Rule

	staleAfter time.Duration
	markers    []string // lower case
	maxHosts   uint64
	today      time.Time // in.Now's day, UTC
	// sensitive are the administration and database ports, sorted; webPorts the public
	// web ports.
	sensitive []portService
	webPorts  []ProtoPort
	// nearV4 and nearV6 are the near-world prefix lengths; quota the rule quota.
	nearV4, nearV6, quota int

	// verdicts finds every provider's verdicts on a target.
	verdicts verdictIndex
	// sources holds the bad and unvetted addresses and prefixes of the rules that have
	// some, sorted by rule and target; next is where sourcesOf reads on, and acc what it
	// returns.
	sources []ruleSource
	next    int
	acc     ruleSources
	// unasked are the sources no result is about.
	unasked []reputation.Target
	// redundant holds, for each redundant rule, the index of the broader rule in its group.
	redundant map[int32]int32
	// nearWorld holds, for each ingress rule whose prefix is near-world, why it is.
	nearWorld map[int32][]string
	// addresses counts the public addresses and prefixes, and those with a known verdict.
	addresses, vetted int

	// groups indexes the inventory's groups, once groupOf needs them; staleRefs the stale
	// references by the rules they name, once staleReferenceOf needs them.
	groups    map[groupKey]*collector.Group
	staleRefs map[staleRefKey]*collector.StaleReference
	// olderThanTrail is the ruleTrail of every rule that CloudTrail's events did not add.
	olderThanTrail *ruleTrail
	// ctx is the context of the rule whose findings are being built (contextOf).
	ctx ruleContext

	findings []Finding
	// keyBuf holds the RuleKey of the rule whose history is looked up.
	keyBuf []byte
	// hist caches the history of the rule whose findings are being built.
	hist struct {
		rule      int32
		firstSeen *time.Time
		change    Change
	}
}

// ruleSource is a bad or unvetted public address or prefix of a rule (by index in the
// inventory's rules). One rule's are consecutive in builder.sources, which holds a pair per
// bad or unvetted source, not a record per rule.
type ruleSource struct {
	// target is the source, as builder.targetRef holds it.
	target int32
	rule   int32
	// bad is set when a provider called the source malicious or suspicious, malicious when
	// one called it malicious; otherwise no provider could answer for it.
	bad, malicious bool
}

// ruleSources lists a rule's sources that a provider called malicious or suspicious, and
// those no provider could answer for.
type ruleSources struct {
	bad       []reputation.Target
	unvetted  []reputation.Target
	malicious bool
}

func newBuilder(in Input, inv *collector.Inventory) *builder {
	b := &builder{
		in:         in,
		inv:        inv,
		rules:      inv.Rules,
		staleAfter: cmp.Or(in.Options.StaleAfter, DefaultStaleAfter),
		maxHosts:   collector.DefaultMaxHostsPerCIDR,
		redundant:  map[int32]int32{},
		nearWorld:  map[int32][]string{},
		sensitive:  sensitivePorts(&in.Options),
		webPorts:   in.Options.WebPorts,
		nearV4:     cmp.Or(in.Options.NearWorldIPv4Bits, DefaultNearWorldIPv4Bits),
		nearV6:     cmp.Or(in.Options.NearWorldIPv6Bits, DefaultNearWorldIPv6Bits),
		quota:      cmp.Or(in.Options.RuleQuota, DefaultRuleQuota),
	}
	if b.webPorts == nil {
		b.webPorts = DefaultWebPorts
	}
	if in.Options.MaxHostsPerCIDR > 0 {
		b.maxHosts = uint64(in.Options.MaxHostsPerCIDR)
	}
	markers := in.Options.Markers
	if markers == nil {
		markers = DefaultMarkers
	}
	for _, m := range markers {
		if m = strings.ToLower(strings.TrimSpace(m)); m != "" {
			b.markers = append(b.markers, m)
		}
	}
	now := in.Now.UTC()
	b.today = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	b.hist.rule = -1
	b.ctx.rule = -1

	b.verdicts = newVerdictIndex(in.Results)
	return b
}

// vettable reports whether r's CIDR is a public address or prefix that providers are asked
// about: public, and not the whole internet.
func vettable(r *collector.Rule) bool {
	return r.CIDR.IsValid() && !collector.IsWorld(r.CIDR) && r.IsPublic()
}

// addressFindings counts the public addresses and prefixes the rules reference, and those
// with a known verdict, and finds, for each rule, those that providers call bad and those
// they could not answer for. It expands each rule as the collector's LookupPrefixes does,
// rather than reading the inventory's public sources, which a large audit need not keep.
func (b *builder) addressFindings() {
	maxHosts := int(min(b.maxHosts, 1<<31-1))
	for _, t := range Targets(b.rules, maxHosts) {
		b.addresses++
		if known, _, _ := judge(b.verdicts.of(t)); known {
			b.vetted++
		}
	}
	opts := collector.Options{MaxHostsPerCIDR: maxHosts}
	for i := range b.rules {
		for p := range collector.LookupPrefixes(&b.rules[i], opts) {
			t := reputation.PrefixTarget(p)
			known, bad, malicious := judge(b.verdicts.of(t))
			if known && !bad {
				continue
			}
			b.sources = append(b.sources, ruleSource{rule: int32(i), target: b.targetRef(t), bad: bad, malicious: malicious})
		}
	}
	slices.SortFunc(b.sources, func(x, y ruleSource) int {
		return cmp.Or(cmp.Compare(x.rule, y.rule), b.target(x.target).Compare(b.target(y.target)))
	})
	// Room for the findings of those rules, and some more, spares copying large findings
	// as the slice grows.
	rules := 0
	for i := range b.sources {
		if i == 0 || b.sources[i].rule != b.sources[i-1].rule {
			rules++
		}
	}
	b.findings = make([]Finding, 0, rules+len(b.rules)/16+16)
}

// Targets returns what providers are asked about for rules: every public address, and
// every public prefix of more than maxHosts addresses (kept whole), each once, in address
// order, as collector.LookupPrefixes finds them.
func Targets(rules []collector.Rule, maxHosts int) []reputation.Target {
	var out []reputation.Target
	opts := collector.Options{MaxHostsPerCIDR: maxHosts}
	for i := range rules {
		for p := range collector.LookupPrefixes(&rules[i], opts) {
			out = append(out, reputation.PrefixTarget(p))
		}
	}
	slices.SortFunc(out, reputation.Target.Compare)
	return slices.Clip(slices.Compact(out))
}

// targetRef returns what a ruleSource holds of t: the index of a result on t, or, for a
// target no provider was asked about, -1-i for t at unasked[i].
func (b *builder) targetRef(t reputation.Target) int32 {
	if found := b.verdicts.index.Lookup(t); len(found) > 0 {
		return found[0]
	}
	b.unasked = append(b.unasked, t)
	return int32(-len(b.unasked))
}

// target returns the target that targetRef made ref of.
func (b *builder) target(ref int32) reputation.Target {
	if ref < 0 {
		return b.unasked[-1-ref]
	}
	return b.verdicts.results[ref].Target
}

// sourcesOf returns the bad and unvetted sources of rule i, or nil if it has none. Rules
// are asked in order; what it returns is valid until the next call.
func (b *builder) sourcesOf(i int32) *ruleSources {
	for b.next < len(b.sources) && b.sources[b.next].rule < i {
		b.next++
	}
	if b.next == len(b.sources) || b.sources[b.next].rule != i {
		return nil
	}
	acc := &b.acc
	acc.bad, acc.unvetted, acc.malicious = acc.bad[:0], acc.unvetted[:0], false
	for ; b.next < len(b.sources) && b.sources[b.next].rule == i; b.next++ {
		s := &b.sources[b.next]
		if s.bad {
			acc.bad = append(acc.bad, b.target(s.target))
			acc.malicious = acc.malicious || s.malicious
		} else {
			acc.unvetted = append(acc.unvetted, b.target(s.target))
		}
	}
	return acc
}

// judge reports whether some verdict is known, whether some is malicious or suspicious,
// and whether some is malicious.
func judge(vs []reputation.Verdict) (known, bad, malicious bool) {
	for i := range vs {
		switch vs[i].Status {
		case reputation.Malicious:
			return true, true, true
		case reputation.Suspicious:
			known, bad = true, true
		default:
			known = known || vs[i].Known()
		}
	}
	return known, bad, false
}

// isBad reports whether v says malicious or suspicious.
func isBad(v *reputation.Verdict) bool {
	return v.Status == reputation.Malicious || v.Status == reputation.Suspicious
}

// suspicious returns the suspicious-source finding of rule i, whose bad sources are in acc.
func (b *builder) suspicious(i int32, acc *ruleSources) {
	r := &b.rules[i]
	// Malicious sources first, so that the cap never hides what made the severity.
	bad := acc.bad
	if len(bad) > 1 {
		bad = slices.Clone(bad)
		slices.SortStableFunc(bad, func(x, y reputation.Target) int {
			return cmp.Compare(b.worstRank(x), b.worstRank(y))
		})
	}
	shown := bad[:min(len(bad), maxAddressesShown)]
	var verdicts []reputation.Verdict
	// Each bad verdict makes a reason; when every verdict names the address it is on, as
	// providers' do, Finding.Reasons makes those reasons from the verdicts as they are
	// asked for, rather than the finding holding them.
	ownTargets := true
	for _, t := range shown {
		vs := b.verdicts.of(t)
		for _, v := range vs {
			if isBad(&v) {
				verdicts = append(verdicts, v)
				ownTargets = ownTargets && v.Target == t
			}
		}
		if len(shown) == 1 && len(verdicts) == len(vs) {
			// Every verdict on the one address is bad: the finding shares them rather than
			// holding a copy.
			verdicts = slices.Clip(vs)
		}
	}
	var reasons []string
	if !ownTargets {
		for _, t := range shown {
			for _, v := range b.verdicts.of(t) {
				if isBad(&v) {
					reasons = append(reasons, verdictReason(t, &v))
				}
			}
		}
	}
	if n := len(bad) - len(shown); n > 0 {
		reasons = append(reasons, fmt.Sprintf("and %d more %s in the rule are listed as malicious or suspicious", n, countNoun(n, "address", "addresses")))
	}
	sev := Medium
	if acc.malicious {
		sev = High
		if r.Direction == collector.Egress || b.adminPortIn(r) {
			sev = Critical
		}
	}
	f := b.ruleFinding(i, SuspiciousSource, sev, reasons)
	f.Verdicts, f.verdictReasons = verdicts, ownTargets
	b.findings = append(b.findings, f)
}

// worstRank is 0 when some provider calls t malicious, 1 otherwise.
func (b *builder) worstRank(t reputation.Target) int {
	if reputation.Worst(b.verdicts.of(t)) == reputation.Malicious {
		return 0
	}
	return 1
}

// verdictReason says what one provider found about t.
func verdictReason(t reputation.Target, v *reputation.Verdict) string {
	s := fmt.Sprintf("%s is %s according to %s", t, v.Status, v.Provider)
	switch {
	case v.Evidence != "":
		s += ": " + v.Evidence
	case len(v.Categories) > 0:
		s += " (" + strings.Join(v.Categories, ", ") + ")"
	}
	return s
}

// unvetted returns the unvetted finding of rule i, whose unvetted sources are in acc.
func (b *builder) unvetted(i int32, acc *ruleSources) {
	shown := acc.unvetted[:min(len(acc.unvetted), maxAddressesShown)]
	var (
		verdicts []reputation.Verdict
		reasons  []string
	)
	// Addresses that failed for the same reasons share one sentence: a provider that
	// stopped for a rule of 50 addresses says so once.
	var (
		whys    []string
		targets = map[string][]string{}
	)
	for _, t := range shown {
		vs := b.verdicts.of(t)
		var why strings.Builder
		for j, v := range vs {
			verdicts = append(verdicts, v)
			if j > 0 {
				why.WriteString("; ")
			}
			why.WriteString(v.Provider)
			if v.Reason != "" {
				why.WriteString(": ")
				why.WriteString(v.Reason)
			} else {
				why.WriteString(": no answer")
			}
		}
		w := why.String()
		if _, seen := targets[w]; !seen {
			whys = append(whys, w)
		}
		targets[w] = append(targets[w], t.String())
	}
	for _, w := range whys {
		ts := targets[w]
		what, verb := ts[0], "was"
		if len(ts) > 1 {
			what, verb = fmt.Sprintf("%d addresses, %s,", len(ts), listShort(ts, 3)), "were"
		}
		if w == "" {
			reasons = append(reasons, fmt.Sprintf("%s %s not looked up by any provider", what, verb))
			continue
		}
		reasons = append(reasons, fmt.Sprintf("no provider could vet %s (%s)", what, w))
	}
	if n := len(acc.unvetted) - len(shown); n > 0 {
		reasons = append(reasons, fmt.Sprintf("and %d more %s in the rule could not be vetted", n, countNoun(n, "address", "addresses")))
	}
	f := b.ruleFinding(i, Unvetted, Info, reasons)
	f.Verdicts = verdicts
	b.findings = append(b.findings, f)
}

// ruleFindings adds the findings about single rules other than redundancy, which
// groupFindings has already found.
func (b *builder) ruleFindings() {
	for i := range b.rules {
		ri := int32(i)
		r := &b.rules[i]
		if r.Invalid != nil {
			// What an invalid rule allows is unknown: it is reported as such, and nothing
			// else is said of it.
			b.invalidRule(ri)
			continue
		}
		if r.CIDR.IsValid() && collector.IsWorld(r.CIDR) {
			b.worldFindings(ri)
			continue
		}
		if s := b.staleReferenceOf(r); s != nil {
			b.staleReference(ri, s)
			continue
		}
		if r.CrossAccount() {
			b.crossAccount(ri)
			continue
		}
		if !vettable(r) {
			continue
		}
		if why, ok := b.nearWorld[ri]; ok {
			b.nearWorldFinding(ri, why)
		}
		if acc := b.sourcesOf(ri); acc != nil {
			if len(acc.bad) > 0 {
				b.suspicious(ri, acc)
			}
			if len(acc.unvetted) > 0 {
				b.unvetted(ri, acc)
			}
		}
		b.wideRange(ri)
		b.stale(ri)
	}
}

// ruleFinding returns a finding of kind k about rule i, with what the history knows of it.
// When the rule's address comes from an entry of a customer-managed prefix list, a last
// reason says that the fix is in the list.
func (b *builder) ruleFinding(i int32, k Kind, s Severity, reasons []string) Finding {
	r := &b.rules[i]
	if pl := r.PrefixList; pl != nil && !pl.AWSManaged && r.CIDR.IsValid() {
		reasons = append(reasons, prefixListReason(r))
	}
	// The reasons that say the rule's context are made by Reasons, from what the finding
	// holds of it.
	f := Finding{Kind: k, Severity: s, rule: r, reasons: reasons, contextReasons: true}
	c := b.contextOf(i)
	if k != KnownServiceRange {
		f.owner = c.owner
	}
	withReach(&f, r, c.group)
	f.trail = c.trail
	f.FirstSeen, f.Change = b.history(i)
	return f
}

// appendContextReasons appends to reasons those that say the context of the finding's
// rule: the published range its address lies in, whether its group is reachable from the
// internet (and that its severity was lowered, when it was), and who added it.
func (f *Finding) appendContextReasons(reasons []string) []string {
	if o := f.owner; o != nil && f.rule != nil && f.Kind != KnownServiceRange {
		reasons = append(reasons, fmt.Sprintf("%s is in %s", f.rule.CIDR, ownerText(*o)))
	}
	if reason, ok := reachReason(f); ok {
		reasons = append(reasons, reason)
	}
	if reason, ok := trailReason(f.trail); ok {
		reasons = append(reasons, reason)
	}
	return reasons
}

// ruleContext is what the run knows around one rule, which all of its findings share: its
// group, the published range its CIDR lies in, and what CloudTrail says of it.
type ruleContext struct {
	rule  int32
	group *collector.Group
	owner *collector.Owner
	trail *ruleTrail
}

// contextOf returns the context of rule i. Rules are asked in order, so it is found once
// per rule, however many findings the rule has.
func (b *builder) contextOf(i int32) *ruleContext {
	c := &b.ctx
	if c.rule == i {
		return c
	}
	r := &b.rules[i]
	*c = ruleContext{rule: i, group: b.groupOf(r), trail: b.trailOf(r)}
	if b.in.Owners != nil && r.CIDR.IsValid() && !collector.IsWorld(r.CIDR) && r.IsPublic() {
		if o, ok := b.in.Owners.Owner(r.CIDR); ok {
			c.owner = &o
		}
	}
	return c
}

// ownerText names a published range: "AWS's published range 3.16.0.0/14 (EC2,
// us-east-2)".
func ownerText(o collector.Owner) string {
	s := o.Name + "'s published range " + o.Prefix.String()
	if detail := strings.Join(slices.DeleteFunc([]string{o.Service, o.Region}, func(s string) bool { return s == "" }), ", "); detail != "" {
		s += " (" + detail + ")"
	}
	return s
}

// prefixListReason says that the address or range of r comes from an entry of the
// customer-managed prefix list r names, and that the list is where to fix it.
func prefixListReason(r *collector.Rule) string {
	pl := r.PrefixList
	what := "range"
	if r.CIDR.IsSingleIP() {
		what = "address"
	}
	entry := r.CIDR.String()
	if d := pl.EntryDescription; d != "" {
		entry = strconv.Quote(d)
	}
	list := pl.ID
	if pl.Name != "" {
		list += " (" + pl.Name + ")"
	}
	return fmt.Sprintf("the %s comes from entry %s of prefix list %s: remove or fix it there", what, entry, list)
}

// invalidRule adds the invalid-rule finding of rule i, whose CIDR, ports or protocol could
// not be parsed.
func (b *builder) invalidRule(i int32) {
	inv := b.rules[i].Invalid
	reason := fmt.Sprintf("the %s %s could not be parsed (%s), so what the rule allows is unknown and it was not audited", inv.Field, strconv.Quote(inv.Text), inv.Reason)
	f := Finding{Kind: InvalidRule, Severity: Info, rule: &b.rules[i], reasons: []string{reason}}
	f.FirstSeen, f.Change = b.history(i)
	b.findings = append(b.findings, f)
}

// history returns when the history first saw rule i and whether it is new, caching the
// answer for the rule whose findings are being built.
func (b *builder) history(i int32) (*time.Time, Change) {
	h := b.in.History
	if h == nil {
		return nil, ""
	}
	if b.hist.rule != i {
		b.hist.rule, b.hist.firstSeen, b.hist.change = i, nil, ""
		b.keyBuf = appendRuleKey(b.keyBuf[:0], &b.rules[i])
		if t, ok := h.FirstSeen[string(b.keyBuf)]; ok {
			b.hist.firstSeen = &t
		}
		if h.New[string(b.keyBuf)] {
			b.hist.change = New
		}
	}
	// Each finding gets its own copy, so that no two share a pointer.
	if b.hist.firstSeen == nil {
		return nil, b.hist.change
	}
	t := *b.hist.firstSeen
	return &t, b.hist.change
}

// appendRuleKey appends RuleKey(*r) to dst, without making a string of it.
func appendRuleKey(dst []byte, r *collector.Rule) []byte {
	for _, part := range [...]string{r.Account, r.Region, r.GroupID, r.ID} {
		dst = append(dst, part...)
		dst = append(dst, '|')
	}
	if r.CIDR.IsValid() {
		return r.CIDR.AppendTo(dst)
	}
	return append(dst, r.Target()...)
}

// summary counts the findings, the addresses and the changes since the previous run.
func (b *builder) summary() Summary {
	s := Summary{
		ByKind:            make(map[Kind]int, len(Kinds)),
		BySeverity:        make(map[Severity]int, len(Severities)),
		ByAccount:         make(map[string]map[Severity]int, len(b.inv.Accounts)),
		AddressesTotal:    b.addresses,
		AddressesVetted:   b.vetted,
		AddressesUnvetted: b.addresses - b.vetted,
	}
	for _, k := range Kinds {
		s.ByKind[k] = 0
	}
	for _, v := range Severities {
		s.BySeverity[v] = 0
	}
	account := func(a string) map[Severity]int {
		c := s.ByAccount[a]
		if c == nil {
			c = make(map[Severity]int, len(Severities))
			for _, v := range Severities {
				c[v] = 0
			}
			s.ByAccount[a] = c
		}
		return c
	}
	for _, a := range b.inv.Accounts {
		if a != "" {
			account(a)
		}
	}
	for i := range b.findings {
		f := &b.findings[i]
		s.ByKind[f.Kind]++
		s.BySeverity[f.Severity]++
		if g := f.group; g != nil && g.Reachable != nil && *g.Reachable {
			s.FindingsReachable++
		}
		if a, _, _, _ := f.place(); a != "" {
			account(a)[f.Severity]++
		}
	}
	if h := b.in.History; h != nil {
		for _, isNew := range h.New {
			if isNew {
				s.RulesNew++
			}
		}
		s.RulesGone = len(h.Gone)
	}
	return s
}

// sortFindings sorts findings by compareFindings, keeping the order of equal ones. Findings
// are large, so it sorts their indexes and then moves each finding once.
func sortFindings(findings []Finding) {
	order := make([]int32, len(findings))
	rank := make([]int16, len(findings)) // severity and reachability, the first keys
	for i := range order {
		order[i] = int32(i)
		f := &findings[i]
		rank[i] = int16(f.Severity.Rank()*3 + f.reachRank())
	}
	slices.SortFunc(order, func(i, j int32) int {
		a, b := &findings[i], &findings[j]
		return cmp.Or(cmp.Compare(rank[i], rank[j]), compareAge(a, b), cmp.Compare(kindRank(a.Kind), kindRank(b.Kind)),
			comparePlace(a, b), cmp.Compare(i, j))
	})
	// Apply the permutation in place, cycle by cycle: position i takes findings[order[i]].
	// A visited position is marked by turning its entry negative.
	for start := range order {
		if order[start] < 0 {
			continue
		}
		saved := findings[start]
		i := start
		for {
			from := order[i]
			order[i] = -1 - from
			if int(from) == start {
				findings[i] = saved
				break
			}
			findings[i] = findings[from]
			i = int(from)
		}
	}
}

// compareFindings orders findings by severity; then those on groups reachable from the
// internet first, those on unreachable ones last; then by age, oldest first; then by kind,
// account, region, group, rule and CIDR.
func compareFindings(a, b *Finding) int {
	return cmp.Or(
		cmp.Compare(a.Severity.Rank(), b.Severity.Rank()),
		cmp.Compare(a.reachRank(), b.reachRank()),
		compareAge(a, b),
		cmp.Compare(kindRank(a.Kind), kindRank(b.Kind)),
		comparePlace(a, b),
	)
}

// reachRank is 0 for a finding on a group reachable from the internet, 2 for one on an
// attached group that is not, and 1 otherwise (unknown, a group attached to nothing, or no
// ingress rule): reachable first. As in withReach, a group attached to nothing is exposed
// as soon as it is attached.
func (f *Finding) reachRank() int {
	if g := f.group; g != nil && g.Reachable != nil && (*g.Reachable || g.Attached == collector.Attached) {
		if *g.Reachable {
			return 0
		}
		return 2
	}
	return 1
}

// compareAge orders findings by the age of their rule, oldest first, by the earlier of the
// first sighting the history knows and when CloudTrail says it was added; findings of
// unknown age come last.
func compareAge(a, b *Finding) int {
	x, y := a.since(), b.since()
	switch {
	case x.IsZero() && y.IsZero():
		return 0
	case x.IsZero():
		return 1
	case y.IsZero():
		return -1
	}
	return x.Compare(y)
}

// comparePlace orders findings by account, region, group, rule and CIDR. The CIDR, which
// a finding makes as text, is compared only when the rest is the same.
func comparePlace(a, b *Finding) int {
	accountA, regionA, groupA, ruleA := a.place()
	accountB, regionB, groupB, ruleB := b.place()
	if c := cmp.Or(
		cmp.Compare(accountA, accountB),
		cmp.Compare(regionA, regionB),
		cmp.Compare(groupA, groupB),
		cmp.Compare(ruleA, ruleB),
	); c != 0 {
		return c
	}
	return cmp.Compare(a.cidr(), b.cidr())
}

// kindRank is the position of k in Kinds, or len(Kinds) for an unknown kind.
func kindRank(k Kind) int {
	if i := slices.Index(Kinds, k); i >= 0 {
		return i
	}
	return len(Kinds)
}

// countNoun returns one when n is 1, many otherwise.
func countNoun(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func emptyIfNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// listShort joins the first n of items, and says how many more there are.
func listShort(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
