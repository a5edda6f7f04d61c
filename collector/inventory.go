package collector

import (
	"cmp"
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
	Schema      string         `json:"schema"`
	CollectedAt time.Time      `json:"collected_at"`
	Sources     []string       `json:"sources"`
	Accounts    []string       `json:"accounts"`
	Regions     []string       `json:"regions"`
	Skipped     []Skipped      `json:"skipped"`
	Groups      []Group        `json:"groups"`
	Rules       []Rule         `json:"rules"`
	Public      []PublicSource `json:"public"`
}

// Invalid returns the rules whose CIDR could not be parsed.
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
}

// Inventory assembles an Inventory: it sorts groups and rules, drops repeated rules,
// copies each group's attachment, name and VPC to its rules, lists accounts and regions,
// and finds the public sources.
func (c Collection) Inventory(collectedAt time.Time, opts Options) *Inventory {
	groups, rules, regions := c.Groups, c.Rules, c.Regions
	inv := &Inventory{
		Schema:      Schema,
		CollectedAt: collectedAt.UTC(),
		Sources:     nonNil(c.Sources),
		Skipped:     nonNil(c.Skipped),
	}

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
	inv.Public = PublicSources(inv.Rules, opts)
	return inv
}

// mergeGroup joins two records of one group, e.g. from a groups file and a rules file.
func mergeGroup(a, b Group) Group {
	a.Name = cmp.Or(a.Name, b.Name)
	a.Description = cmp.Or(a.Description, b.Description)
	a.VPC = cmp.Or(a.VPC, b.VPC)
	if a.Attached != Attached && b.Attached != AttachmentUnknown {
		a.Attached = b.Attached
	}
	return a
}

// ruleKey identifies a Rule: its id and its target (a customer-managed prefix list rule
// stands for several Rules with one id).
func ruleKey(r *Rule) string {
	return r.Account + "/" + r.Region + "/" + r.GroupID + "/" + r.ID + "/" + r.Target()
}

func dedupRules(rules []Rule) []Rule {
	out := make([]Rule, 0, len(rules))
	seen := make(map[string]bool, len(rules))
	for i := range rules {
		k := ruleKey(&rules[i])
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, rules[i])
	}
	slices.SortStableFunc(out, func(a, b Rule) int {
		return cmp.Or(
			cmp.Compare(a.Account, b.Account), cmp.Compare(a.Region, b.Region),
			cmp.Compare(a.GroupID, b.GroupID), cmp.Compare(a.Direction, b.Direction),
			cmp.Compare(a.ID, b.ID), cmp.Compare(a.Target(), b.Target()))
	})
	return out
}

// PublicSources finds the public sources among rules and deduplicates them across rules,
// groups, regions and accounts. Prefixes of at most opts.MaxHostsPerCIDR addresses are
// expanded into their public addresses; larger ones are kept whole. The result is sorted:
// world, then prefixes, then addresses (each in address order), then AWS service lists.
func PublicSources(rules []Rule, opts Options) []PublicSource {
	maxHosts := opts.maxHosts()
	var (
		addrs    = make(map[netip.Addr][]int32)
		prefixes = make(map[netip.Prefix][]int32)
		services = make(map[string][]int32)
		names    = make(map[string]string)
	)
	add := func(refs []int32, i int32) []int32 {
		if n := len(refs); n > 0 && refs[n-1] == i {
			return refs
		}
		return append(refs, i)
	}
	for i := range rules {
		r := &rules[i]
		ri := int32(i)
		if pl := r.PrefixList; pl != nil && pl.AWSManaged {
			services[pl.ID] = add(services[pl.ID], ri)
			names[pl.ID] = pl.Name
			continue
		}
		p := r.CIDR
		if !p.IsValid() {
			continue
		}
		if IsWorld(p) {
			prefixes[p] = add(prefixes[p], ri)
			continue
		}
		if _, special := Special(p); special {
			continue
		}
		size := Size(p)
		if size > maxHosts {
			prefixes[p] = add(prefixes[p], ri)
			continue
		}
		a := p.Addr()
		for n := uint64(0); n < size; n++ {
			if _, special := SpecialAddr(a); !special {
				addrs[a] = add(addrs[a], ri)
			}
			a = a.Next()
		}
	}

	out := make([]PublicSource, 0, len(addrs)+len(prefixes)+len(services))
	ids := func(refs []int32) []string {
		s := make([]string, 0, len(refs))
		for _, i := range refs {
			s = append(s, rules[i].ID)
		}
		slices.Sort(s)
		return slices.Compact(s)
	}
	for p, refs := range prefixes {
		kind := KindPrefix
		if IsWorld(p) {
			kind = KindWorld
		}
		out = append(out, PublicSource{Kind: kind, CIDR: p, Rules: ids(refs)})
	}
	for a, refs := range addrs {
		out = append(out, PublicSource{Kind: KindAddress, Address: a, Rules: ids(refs)})
	}
	for id, refs := range services {
		out = append(out, PublicSource{Kind: KindAWSService, PrefixListID: id, PrefixListName: names[id], Rules: ids(refs)})
	}
	rank := map[SourceKind]int{KindWorld: 0, KindPrefix: 1, KindAddress: 2, KindAWSService: 3}
	slices.SortFunc(out, func(a, b PublicSource) int {
		if c := cmp.Compare(rank[a.Kind], rank[b.Kind]); c != 0 {
			return c
		}
		switch a.Kind {
		case KindAddress:
			return a.Address.Compare(b.Address)
		case KindAWSService:
			return cmp.Compare(a.PrefixListID, b.PrefixListID)
		}
		return cmp.Or(a.CIDR.Addr().Compare(b.CIDR.Addr()), cmp.Compare(a.CIDR.Bits(), b.CIDR.Bits()))
	})
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
