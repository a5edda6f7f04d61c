package collector

import (
	"cmp"
	"hash/maphash"
	"iter"
	"net/netip"
	"slices"
	"time"
)

// Schema is the value of Inventory.Schema.
const Schema = "sgvet.inventory/v1"

// DefaultMaxHostsPerCIDR is the largest public prefix, in addresses, that is expanded into
// its addresses: a /24.
const DefaultMaxHostsPerCIDR = 256

// Skipped is part of the estate that could not be collected: a whole region, or one
// resource in it (Resource names it, e.g. a prefix list).
type Skipped struct {
	Account  string `json:"account,omitempty"`
	Region   string `json:"region,omitempty"`
	Resource string `json:"resource,omitempty"`
	Reason   string `json:"reason"`
}

// SourceKind is the kind of a public source.
type SourceKind string

// The kinds of PublicSource.
const (
	// KindAddress is one public address, from a /32 or /128 or an expanded small prefix.
	KindAddress SourceKind = "address"
	// KindPrefix is a public prefix too large to expand (more than max_hosts_per_cidr).
	KindPrefix SourceKind = "prefix"
	// KindWorld is 0.0.0.0/0 or ::/0.
	KindWorld SourceKind = "world"
	// KindAWSService is an AWS-managed prefix list: AWS service ranges, never looked up.
	KindAWSService SourceKind = "aws-service"
)

// PublicSource is one deduplicated public address, prefix, whole-internet range or AWS
// service range, with the rules that reference it.
type PublicSource struct {
	Kind SourceKind `json:"kind"`
	// Address is set for KindAddress.
	Address netip.Addr `json:"address,omitzero"`
	// CIDR is set for KindPrefix and KindWorld.
	CIDR netip.Prefix `json:"cidr,omitzero"`
	// PrefixListID and PrefixListName are set for KindAWSService.
	PrefixListID   string `json:"prefix_list_id,omitempty"`
	PrefixListName string `json:"prefix_list_name,omitempty"`
	// Rules are the ids of the rules that reference the source, sorted, without repeats.
	Rules []string `json:"rules"`
}

// Inventory is everything collected from an estate.
type Inventory struct {
	Schema      string    `json:"schema"`
	CollectedAt time.Time `json:"collected_at"`
	Sources     []string  `json:"sources"`
	Accounts    []string  `json:"accounts"`
	Regions     []string  `json:"regions"`
	Skipped     []Skipped `json:"skipped"`
	// Organization is the AWS Organization of the audited accounts, when the run listed
	// it; nil when it is unknown.
	Organization *Organization  `json:"organization,omitempty"`
	Groups       []Group        `json:"groups"`
	Rules        []Rule         `json:"rules"`
	Public       []PublicSource `json:"public"`
	// StaleReferences are the rules that reference groups that no longer exist, where
	// they could be read (see Unknown).
	StaleReferences []StaleReference `json:"stale_references"`
	// Unknown lists the context that could not be had, and where.
	Unknown []UnknownContext `json:"unknown_context"`
	// RuleChanges is what CloudTrail says of the rules, by rule id: who added each and
	// when, and its last modification; and of the groups, by group id, their creation
	// (see Attributions). It holds only the inventory's rules and groups.
	RuleChanges Attributions `json:"rule_changes,omitempty"`
	// CloudTrail says where CloudTrail's LookupEvents was read in full, and since when.
	CloudTrail *TrailCoverage `json:"cloudtrail,omitempty"`
}

// TrailCoverage is where CloudTrail's events were looked up, from Since to Until: a rule
// of one of Regions that no event added was added before Since.
type TrailCoverage struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Regions are sorted by account, then region (Covers relies on it;
	// Collection.Inventory sorts them).
	Regions []AccountRegion `json:"regions"`
}

// Covers reports whether the events of account and region were looked up. Regions must be
// sorted (compareAccountRegion).
func (t *TrailCoverage) Covers(account, region string) bool {
	if t == nil {
		return false
	}
	_, found := slices.BinarySearchFunc(t.Regions, AccountRegion{account, region}, compareAccountRegion)
	return found
}

// AccountRegion is a region of an account.
type AccountRegion struct {
	Account string `json:"account"`
	Region  string `json:"region"`
}

// compareAccountRegion orders regions by account, then region.
func compareAccountRegion(a, b AccountRegion) int {
	return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Region, b.Region))
}

// Invalid returns the rules whose CIDR, ports or protocol could not be parsed.
func (inv *Inventory) Invalid() []Rule {
	var out []Rule
	for _, r := range inv.Rules {
		if r.Invalid != nil {
			out = append(out, r)
		}
	}
	return out
}

// Options tune how an Inventory is built.
type Options struct {
	// MaxHostsPerCIDR is the largest public prefix, in addresses, expanded into its
	// addresses; zero means DefaultMaxHostsPerCIDR.
	MaxHostsPerCIDR int
	// NoPublic leaves Inventory.Public nil, for a caller that finds each rule's sources
	// with LookupPrefixes: an estate of a million addresses then holds no record for each.
	NoPublic bool
}

func (o Options) maxHosts() uint64 {
	if o.MaxHostsPerCIDR <= 0 {
		return DefaultMaxHostsPerCIDR
	}
	return uint64(o.MaxHostsPerCIDR)
}

// Collection is what a source collected, before it is assembled into an Inventory.
type Collection struct {
	// Sources name where the data came from: "aws", or the input files.
	Sources []string
	// Regions are the regions collected in full.
	Regions []string
	Groups  []Group
	Rules   []Rule
	Skipped []Skipped
	// StaleReferences are the rules that reference groups that no longer exist.
	StaleReferences []StaleReference
	// Unknown lists the context (reachability, stale references, attribution) that could
	// not be had.
	Unknown []UnknownContext
	// RuleChanges is what CloudTrail says of the rules, by rule id.
	RuleChanges Attributions
	// CloudTrail is where LookupEvents was read, when it was.
	CloudTrail *TrailCoverage
	// Organization is the AWS Organization of the accounts, when it was listed.
	Organization *Organization
}

// joinCollections joins parts, in order, into one Collection, without their Sources. Its
// CloudTrail window is the one all parts with CloudTrail coverage cover: the latest Since
// and the earliest Until. The
// lists are sized first, so that each rule is copied once, into an array that fits them
// all, and each part is let go of as soon as it is copied.
func joinCollections(parts []Collection) Collection {
	var (
		c             Collection
		groups, rules int
	)
	for i := range parts {
		groups += len(parts[i].Groups)
		rules += len(parts[i].Rules)
	}
	c.Groups = slices.Grow(c.Groups, groups)
	c.Rules = slices.Grow(c.Rules, rules)
	for i := range parts {
		p := &parts[i]
		c.Regions = append(c.Regions, p.Regions...)
		c.Groups = append(c.Groups, p.Groups...)
		c.Rules = append(c.Rules, p.Rules...)
		c.Skipped = append(c.Skipped, p.Skipped...)
		c.Unknown = append(c.Unknown, p.Unknown...)
		c.StaleReferences = append(c.StaleReferences, p.StaleReferences...)
		if t := p.CloudTrail; t != nil {
			if c.CloudTrail == nil {
				c.RuleChanges, c.CloudTrail = Attributions{}, &TrailCoverage{Since: t.Since, Until: t.Until}
			}
			// The window every part covers: the latest start, the earliest end.
			if t.Since.After(c.CloudTrail.Since) {
				c.CloudTrail.Since = t.Since
			}
			if t.Until.Before(c.CloudTrail.Until) {
				c.CloudTrail.Until = t.Until
			}
			c.RuleChanges.Merge(p.RuleChanges)
			c.CloudTrail.Regions = append(c.CloudTrail.Regions, t.Regions...)
		}
		*p = Collection{}
	}
	return c
}

// ReferencesOtherAccounts reports whether a rule references a group of an account other
// than its own.
func (c Collection) ReferencesOtherAccounts() bool {
	for i := range c.Rules {
		if c.Rules[i].CrossAccount() {
			return true
		}
	}
	return false
}

// Inventory assembles an Inventory: it sorts groups and rules, drops repeated rules,
// copies each group's attachment, name and VPC to its rules, lists accounts and regions,
// keeps the rule changes of its own rules and groups, and finds the public sources (unless opts.NoPublic is set). The Inventory's rules are c.Rules's own array, sorted in
// place: a million rules are not copied.
func (c Collection) Inventory(collectedAt time.Time, opts Options) *Inventory {
	groups, rules, regions := c.Groups, c.Rules, c.Regions
	inv := &Inventory{
		Schema:       Schema,
		CollectedAt:  collectedAt.UTC(),
		Sources:      nonNil(c.Sources),
		Skipped:      nonNil(c.Skipped),
		Organization: c.Organization,
		Unknown:      nonNil(c.Unknown),
		CloudTrail:   c.CloudTrail,
	}
	if t := inv.CloudTrail; t != nil && !slices.IsSortedFunc(t.Regions, compareAccountRegion) {
		slices.SortFunc(t.Regions, compareAccountRegion)
	}
	if o := inv.Organization; o != nil && !slices.IsSorted(o.Accounts) {
		slices.Sort(o.Accounts)
	}
	inv.StaleReferences = slices.Clone(nonNil(c.StaleReferences))
	slices.SortFunc(inv.StaleReferences, compareStale)

	groupIndex := make(map[string]int, len(groups))
	inv.Groups = make([]Group, 0, len(groups))
	for _, g := range groups {
		k := g.Account + "/" + g.Region + "/" + g.ID
		if i, ok := groupIndex[k]; ok {
			inv.Groups[i] = mergeGroup(inv.Groups[i], g)
			continue
		}
		groupIndex[k] = len(inv.Groups)
		inv.Groups = append(inv.Groups, g)
	}
	slices.SortFunc(inv.Groups, func(a, b Group) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Region, b.Region), cmp.Compare(a.ID, b.ID))
	})

	inv.Rules = dedupRules(rules)
	byKey := make(map[string]*Group, len(inv.Groups))
	for i := range inv.Groups {
		g := &inv.Groups[i]
		byKey[g.Account+"/"+g.Region+"/"+g.ID] = g
	}
	for i := range inv.Rules {
		r := &inv.Rules[i]
		if c.Organization != nil && r.CrossAccount() {
			in := c.Organization.Has(r.ReferencedGroup.Account)
			r.ReferencedGroup.InOrganization = &in
		}
		if g, ok := byKey[r.Account+"/"+r.Region+"/"+r.GroupID]; ok {
			r.Attached = g.Attached
			if r.GroupName == "" {
				r.GroupName = g.Name
			}
			if r.VPC == "" {
				r.VPC = g.VPC
			}
		}
	}

	inv.RuleChanges = ownChanges(c.RuleChanges, inv.Groups, inv.Rules)

	accounts := map[string]bool{}
	regionSet := map[string]bool{}
	for _, r := range regions {
		regionSet[r] = true
	}
	for _, g := range inv.Groups {
		if g.Account != "" {
			accounts[g.Account] = true
		}
		if g.Region != "" {
			regionSet[g.Region] = true
		}
	}
	for _, r := range inv.Rules {
		if r.Account != "" {
			accounts[r.Account] = true
		}
	}
	inv.Accounts = sortedKeys(accounts)
	inv.Regions = sortedKeys(regionSet)
	if !opts.NoPublic {
		inv.Public = PublicSources(inv.Rules, opts)
	}
	return inv
}

// ownChanges returns the entries of changes keyed by the id of one of rules or groups, in
// a map of their own: log files of an organization trail can hold the changes of far more.
// It returns nil when changes is nil.
func ownChanges(changes Attributions, groups []Group, rules []Rule) Attributions {
	if changes == nil {
		return nil
	}
	out := make(Attributions)
	keep := func(id string) {
		if h, ok := changes[id]; ok {
			out[id] = h
		}
	}
	for i := range groups {
		keep(groups[i].ID)
	}
	for i := range rules {
		keep(rules[i].ID)
	}
	return out
}

// mergeGroup joins two records of one group, e.g. from a groups file and a rules file.
func mergeGroup(a, b Group) Group {
	a.Name = cmp.Or(a.Name, b.Name)
	a.Description = cmp.Or(a.Description, b.Description)
	a.VPC = cmp.Or(a.VPC, b.VPC)
	if a.Attached != Attached && b.Attached != AttachmentUnknown {
		a.Attached = b.Attached
	}
	// A known reachability wins over an unknown one, and reachable over not.
	switch {
	case b.Reachable != nil && (a.Reachable == nil || !*a.Reachable && *b.Reachable),
		a.Reachable == nil && b.Reachable == nil && len(a.Exposure) == 0:
		a.Reachable, a.Exposure, a.Exposed = b.Reachable, b.Exposure, b.Exposed
	}
	return a
}

// ruleKey identifies a Rule: its id and its target (a customer-managed prefix list rule
// stands for several Rules with one id).
type ruleKey struct {
	account, region, group, id string
	cidr                       netip.Prefix
	target                     string // for rules without a CIDR
}

func keyOf(r *Rule) ruleKey {
	k := ruleKey{account: r.Account, region: r.Region, group: r.GroupID, id: r.ID, cidr: r.CIDR}
	if !r.CIDR.IsValid() {
		k.target = r.Target()
	}
	return k
}

// dedupRules drops repeated rules, keeping the first of each key, and sorts the rest, in
// the array of rules itself. Keys are remembered by a hash and the index of the first rule
// with it, twelve bytes a rule where a set of the keys would take over a hundred; rules
// whose hashes are equal are compared in full.
func dedupRules(rules []Rule) []Rule {
	seed := maphash.MakeSeed()
	first := make(map[uint64]int32, len(rules))
	var others map[uint64][]int32 // rules with another key and a hash already in first
	out := rules[:0]
	for i := range rules {
		k := keyOf(&rules[i])
		h := maphash.Comparable(seed, k)
		if j, ok := first[h]; ok {
			if keyOf(&out[j]) == k || slices.ContainsFunc(others[h], func(j int32) bool { return keyOf(&out[j]) == k }) {
				continue
			}
			if others == nil {
				others = map[uint64][]int32{}
			}
			others[h] = append(others[h], int32(len(out)))
		} else {
			first[h] = int32(len(out))
		}
		out = append(out, rules[i])
	}
	clear(rules[len(out):])
	slices.SortFunc(out, compareRules)
	return out
}

// compareRules orders rules by account, region, group, direction, id and target.
func compareRules(a, b Rule) int {
	if c := cmp.Compare(a.Account, b.Account); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Region, b.Region); c != 0 {
		return c
	}
	if c := cmp.Compare(a.GroupID, b.GroupID); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Direction, b.Direction); c != 0 {
		return c
	}
	if c := cmp.Compare(a.ID, b.ID); c != 0 {
		return c
	}
	if c := comparePrefix(a.CIDR, b.CIDR); c != 0 || a.CIDR.IsValid() {
		return c
	}
	return cmp.Compare(a.Target(), b.Target())
}

// comparePrefix orders prefixes by family and address, then length.
func comparePrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

// sourceKey identifies a public source other than an address while PublicSources gathers
// them.
type sourceKey struct {
	kind   SourceKind
	prefix netip.Prefix // KindPrefix, KindWorld
	list   string       // KindAWSService
}

// LookupPrefixes returns what providers are asked about r: each public address of its CIDR,
// as a prefix of one address, when the CIDR holds at most opts.MaxHostsPerCIDR addresses
// (special-purpose addresses are left out), or else the CIDR whole, which then holds more
// than one. It returns nothing for an invalid rule, a rule whose CIDR is not public, and
// one open to the whole internet. PublicSources gathers these across rules.
func LookupPrefixes(r *Rule, opts Options) iter.Seq[netip.Prefix] {
	return func(yield func(netip.Prefix) bool) {
		p := r.CIDR
		if r.Invalid != nil || !r.IsPublic() || IsWorld(p) {
			return
		}
		size := Size(p)
		if size > opts.maxHosts() {
			yield(p)
			return
		}
		a := p.Addr()
		for range size {
			if _, special := SpecialAddr(a); !special && !yield(netip.PrefixFrom(a, a.BitLen())) {
				return
			}
			a = a.Next()
		}
	}
}

// PublicSources finds the public sources among rules and deduplicates them across rules,
// groups, regions and accounts. Prefixes of at most opts.MaxHostsPerCIDR addresses are
// expanded into their public addresses; larger ones are kept whole. The result is sorted:
// world, then prefixes, then addresses (each in address order), then AWS service lists.
func PublicSources(rules []Rule, opts Options) []PublicSource {
	// Each source's rules are a linked list in refs, so that gathering allocates nothing
	// per source.
	type ref struct{ rule, next int32 }
	type gathered struct {
		head, tail int32
	}
	var (
		addrIndex = make(map[netip.Addr]int32, len(rules))
		index     = map[sourceKey]int32{}
		found     = make([]gathered, 0, len(rules))
		addrs     = make([]netip.Addr, 0, len(rules)) // of KindAddress sources, in the order found
		keys      = make([]sourceKey, 0, len(rules))  // of the others
		refs      = make([]ref, 0, len(rules))
		listing   = map[string]string{}
	)
	link := func(i, rule int32) {
		g := &found[i]
		if g.tail >= 0 && refs[g.tail].rule == rule {
			return // an expanded prefix list can name one address twice for one rule
		}
		refs = append(refs, ref{rule: rule, next: -1})
		n := int32(len(refs) - 1)
		if g.tail >= 0 {
			refs[g.tail].next = n
		} else {
			g.head = n
		}
		g.tail = n
	}
	addAddr := func(a netip.Addr, rule int32) {
		i, ok := addrIndex[a]
		if !ok {
			i = int32(len(found))
			addrIndex[a] = i
			found = append(found, gathered{head: -1, tail: -1})
			addrs = append(addrs, a)
			keys = append(keys, sourceKey{kind: KindAddress})
		}
		link(i, rule)
	}
	add := func(k sourceKey, rule int32) {
		i, ok := index[k]
		if !ok {
			i = int32(len(found))
			index[k] = i
			found = append(found, gathered{head: -1, tail: -1})
			addrs = append(addrs, netip.Addr{})
			keys = append(keys, k)
		}
		link(i, rule)
	}
	for i := range rules {
		r := &rules[i]
		ri := int32(i)
		if pl := r.PrefixList; pl != nil && pl.AWSManaged && r.Invalid == nil {
			listing[pl.ID] = pl.Name
			add(sourceKey{kind: KindAWSService, list: pl.ID}, ri)
			continue
		}
		switch {
		case r.Invalid != nil || !r.IsPublic():
		case IsWorld(r.CIDR):
			add(sourceKey{kind: KindWorld, prefix: r.CIDR}, ri)
		default:
			for p := range LookupPrefixes(r, opts) {
				if p.IsSingleIP() {
					addAddr(p.Addr(), ri)
				} else {
					add(sourceKey{kind: KindPrefix, prefix: p}, ri)
				}
			}
		}
	}

	rank := func(k SourceKind) int {
		switch k {
		case KindWorld:
			return 0
		case KindPrefix:
			return 1
		case KindAddress:
			return 2
		}
		return 3
	}
	order := make([]int32, len(found))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(i, j int32) int {
		a, b := &keys[i], &keys[j]
		if c := cmp.Compare(rank(a.kind), rank(b.kind)); c != 0 {
			return c
		}
		switch a.kind {
		case KindAddress:
			return addrs[i].Compare(addrs[j])
		case KindAWSService:
			return cmp.Compare(a.list, b.list)
		}
		return comparePrefix(a.prefix, b.prefix)
	})

	// One backing array holds every source's rule ids.
	ids := make([]string, 0, len(refs))
	out := make([]PublicSource, len(found))
	for o, i := range order {
		start := len(ids)
		for n := found[i].head; n >= 0; n = refs[n].next {
			ids = append(ids, rules[refs[n].rule].ID)
		}
		own := ids[start:len(ids):len(ids)]
		if len(own) > 1 {
			slices.Sort(own)
			own = slices.Compact(own)
		}
		k := keys[i]
		out[o] = PublicSource{Kind: k.kind, Address: addrs[i], CIDR: k.prefix, PrefixListID: k.list, PrefixListName: listing[k.list], Rules: own}
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
