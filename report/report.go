// Package report turns an inventory of security group rules and the reputation verdicts on
// their addresses into findings: suspicious sources, stale sources and risky exposure. It
// keeps the history of runs in a SQLite file, and writes reports as a table, JSON, CSV,
// Markdown or a self-contained HTML page.
package report

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/reputation"
)

// Schema is the value of Report.Schema.
const Schema = "sgvet.report/v1"

// Kind is the kind of a finding.
type Kind string

// The kinds of finding, as the design contract defines them.
const (
	SuspiciousSource  Kind = "suspicious-source"
	StaleSource       Kind = "stale-source"
	OpenToWorld       Kind = "open-to-world"
	WideRange         Kind = "wide-range"
	OpenEgress        Kind = "open-egress"
	ICMPOpen          Kind = "icmp-open"
	DefaultGroupInUse Kind = "default-group-in-use"
	// CrossAccountReference is a rule that names a security group of another account.
	CrossAccountReference Kind = "cross-account-reference"
	UnusedGroup           Kind = "unused-group"
	RuleQuota             Kind = "rule-quota"
	// KnownServiceRange is a wide range that lies wholly inside a service's published
	// ranges (AWS, GitHub, Cloudflare, Google): reported for information, not as a
	// wide-range.
	KnownServiceRange Kind = "known-service-range"
	Unvetted          Kind = "unvetted"
	// InvalidRule is a rule whose CIDR, ports or protocol could not be parsed: it was not
	// audited, and makes the report incomplete.
	InvalidRule Kind = "invalid-rule"
)

// Kinds lists every kind, in the order reports show them.
var Kinds = []Kind{SuspiciousSource, StaleSource, OpenToWorld, WideRange, OpenEgress, ICMPOpen, DefaultGroupInUse, CrossAccountReference, UnusedGroup, RuleQuota, KnownServiceRange, Unvetted, InvalidRule}

// Severity is how serious a finding is.
type Severity string

// The severities, from the most serious.
const (
	Critical Severity = "critical"
	High     Severity = "high"
	Medium   Severity = "medium"
	Low      Severity = "low"
	Info     Severity = "info"
)

// Severities lists every severity, the most serious first.
var Severities = []Severity{Critical, High, Medium, Low, Info}

// Rank orders severities: 0 for Critical, up to 4 for Info, 5 for anything else.
func (s Severity) Rank() int {
	for i, v := range Severities {
		if v == s {
			return i
		}
	}
	return len(Severities)
}

// AtLeast reports whether s is as serious as t or more.
func (s Severity) AtLeast(t Severity) bool { return s.Rank() <= t.Rank() }

// ParseSeverity parses a severity name.
func ParseSeverity(s string) (Severity, error) {
	for _, v := range Severities {
		if string(v) == s {
			return v, nil
		}
	}
	return "", fmt.Errorf("%q is not a severity (critical, high, medium, low, info)", s)
}

// Change says how a rule differs from the previous run in the history.
type Change string

// The changes a finding may carry. A rule seen before carries none.
const (
	// New: the rule was not in the previous run.
	New Change = "new"
	// Gone: the rule was in the previous run and is no longer.
	Gone Change = "gone"
)

// RuleRef names a rule and says what it allows: what a finding and a gone rule show of it.
type RuleRef struct {
	Account   string `json:"account"`
	Region    string `json:"region"`
	GroupID   string `json:"group_id"`
	GroupName string `json:"group_name"`
	// RuleID is empty for a finding about a whole group.
	RuleID    string `json:"rule_id"`
	Direction string `json:"direction"`
	Protocol  string `json:"protocol"`
	PortRange string `json:"port_range"`
	// CIDR is the rule's CIDR, or its target (a prefix list) when it has no CIDR.
	CIDR        string `json:"cidr"`
	Description string `json:"description"`
	// PrefixList is the managed prefix list the rule names, with the entry it stands for
	// when the list is customer-managed: where the fix is.
	PrefixList *collector.PrefixListRef `json:"prefix_list,omitempty"`
	// ReferencedGroup is the security group the rule names as its source or destination,
	// with its account and, for another account's group, whether that account belongs to
	// the Organization.
	ReferencedGroup *collector.GroupRef `json:"referenced_group,omitempty"`
	// Invalid says what of the rule could not be parsed.
	Invalid *collector.Invalid `json:"invalid,omitempty"`
}

// refOf returns what a report shows of r.
func refOf(r *collector.Rule) RuleRef {
	return RuleRef{
		Account:         r.Account,
		Region:          r.Region,
		GroupID:         r.GroupID,
		GroupName:       r.GroupName,
		RuleID:          r.ID,
		Direction:       string(r.Direction),
		Protocol:        r.Protocol,
		PortRange:       r.PortRange(),
		CIDR:            r.Target(),
		Description:     r.Description,
		PrefixList:      r.PrefixList,
		ReferencedGroup: r.ReferencedGroup,
		Invalid:         r.Invalid,
	}
}

// Finding is one thing wrong with one rule (or, for default-group-in-use, one group).
//
// A report may hold a million findings, so a finding built from a rule of the inventory
// holds the rule, not a copy of what the report shows of it: Ref makes that as it is
// asked for. Likewise the reasons that only restate the finding's verdicts are made by
// Reasons. The report therefore refers to its inventory's rules, which must not change
// after Build.
type Finding struct {
	Kind     Kind
	Severity Severity
	// rule is the inventory's rule the finding is about, if it was built from one; ref is
	// what the finding shows otherwise (a group, or a finding made by NewFinding or read
	// from JSON).
	rule *collector.Rule
	ref  *RuleRef
	// reasons are the finding's reasons, after one per verdict when verdictReasons is set,
	// and before those that say its context (owner, reachability, CloudTrail) when
	// contextReasons is set: Reasons makes those as they are asked for, rather than every
	// finding holding them. dropped says that the severity was lowered by one step, its
	// group being reachable by no interface.
	reasons        []string
	verdictReasons bool
	contextReasons bool
	dropped        bool
	// Verdicts are the providers' verdicts behind a suspicious-source or unvetted finding.
	Verdicts []reputation.Verdict
	// owner is the published range the rule's address or prefix lies in, when the run was
	// given owner ranges and one holds it.
	owner *collector.Owner
	// group is the group of an ingress rule, whose reachability from the internet the
	// finding shows; nil for other findings.
	group *collector.Group
	// trail is what CloudTrail says of the rule, when its events were read.
	trail *ruleTrail
	// FirstSeen is the day the history first saw the rule, when it knows.
	FirstSeen *time.Time
	// Change marks a rule new since the previous run in the history.
	Change Change
}

// NewFinding returns a finding of kind k and severity s about what ref names, with reasons.
func NewFinding(k Kind, s Severity, ref RuleRef, reasons ...string) Finding {
	return Finding{Kind: k, Severity: s, ref: &ref, reasons: reasons}
}

// Ref returns what the finding shows of its rule, or of its group.
func (f *Finding) Ref() RuleRef {
	switch {
	case f.rule != nil:
		return refOf(f.rule)
	case f.ref != nil:
		return *f.ref
	}
	return RuleRef{}
}

// Reasons returns the human sentences that say why this is a finding. Appending to the
// list is safe; its sentences must not be changed in place, for they may be the finding's
// own.
func (f *Finding) Reasons() []string {
	if !f.verdictReasons && !f.contextReasons {
		return slices.Clip(f.reasons)
	}
	var out []string
	if f.verdictReasons {
		out = make([]string, 0, len(f.Verdicts)+len(f.reasons)+3)
		for i := range f.Verdicts {
			out = append(out, verdictReason(f.Verdicts[i].Target, &f.Verdicts[i]))
		}
	}
	out = append(out, f.reasons...)
	if f.contextReasons {
		out = f.appendContextReasons(out)
	}
	return out
}

// firstReason returns the finding's first reason, without making the others if it can;
// "" when it has none.
func (f *Finding) firstReason() string {
	switch {
	case f.verdictReasons && len(f.Verdicts) > 0:
		return verdictReason(f.Verdicts[0].Target, &f.Verdicts[0])
	case len(f.reasons) > 0:
		return f.reasons[0]
	}
	if reasons := f.Reasons(); len(reasons) > 0 {
		return reasons[0]
	}
	return ""
}

// place returns the account, region, group id and rule id of the finding, without
// making its RuleRef.
func (f *Finding) place() (account, region, group, rule string) {
	switch {
	case f.rule != nil:
		return f.rule.Account, f.rule.Region, f.rule.GroupID, f.rule.ID
	case f.ref != nil:
		return f.ref.Account, f.ref.Region, f.ref.GroupID, f.ref.RuleID
	}
	return "", "", "", ""
}

// cidr returns the finding's CIDR as its RuleRef shows it.
func (f *Finding) cidr() string {
	switch {
	case f.rule != nil:
		return f.rule.Target()
	case f.ref != nil:
		return f.ref.CIDR
	}
	return ""
}

// findingJSON is a finding as the report's JSON shows it.
type findingJSON struct {
	Kind     Kind     `json:"kind"`
	Severity Severity `json:"severity"`
	RuleRef
	Reasons  []string             `json:"reasons"`
	Verdicts []reputation.Verdict `json:"verdicts,omitempty"`
	// Reachable is true, false or null (unknown) on a finding about an ingress rule, and
	// left out on others; Exposure and ExposedInterfaces are the group's evidence.
	Reachable         json.RawMessage          `json:"reachable,omitempty"`
	Exposure          []collector.InterfaceRef `json:"exposure,omitempty"`
	ExposedInterfaces int                      `json:"exposed_interfaces,omitempty"`
	Owner             *collector.Owner         `json:"owner,omitempty"`
	// AddedBy and AddedAt say who added the rule and when, from CloudTrail: null when that
	// is unknown, and left out on findings about a whole group. ModifiedBy and ModifiedAt
	// say who modified it last; AddedBefore, when no event in CloudTrail's window added
	// it, that it is older than the window.
	AddedBy     json.RawMessage `json:"added_by,omitempty"`
	AddedAt     json.RawMessage `json:"added_at,omitempty"`
	ModifiedBy  string          `json:"modified_by,omitempty"`
	ModifiedAt  *time.Time      `json:"modified_at,omitempty"`
	AddedBefore *time.Time      `json:"added_before,omitempty"`
	FirstSeen   *time.Time      `json:"first_seen,omitempty"`
	Change      Change          `json:"change,omitempty"`
}

// json returns f as its JSON shows it; nil reasons are an empty list.
func (f *Finding) json() findingJSON {
	j := findingJSON{
		Kind: f.Kind, Severity: f.Severity, RuleRef: f.Ref(), Reasons: nonNil(f.Reasons()),
		Verdicts: f.Verdicts, Owner: f.owner, FirstSeen: f.FirstSeen, Change: f.Change,
	}
	if g := f.group; g != nil {
		switch {
		case g.Reachable == nil:
			j.Reachable = json.RawMessage("null")
		case *g.Reachable:
			j.Reachable = json.RawMessage("true")
		default:
			j.Reachable = json.RawMessage("false")
		}
		j.Exposure, j.ExposedInterfaces = g.Exposure, g.Exposed
	}
	if j.RuleID != "" {
		j.AddedBy, j.AddedAt = json.RawMessage("null"), json.RawMessage("null")
	}
	if t := f.trail; t != nil {
		if a := t.Added; a != nil {
			j.AddedBy, _ = json.Marshal(a.Principal)
			j.AddedAt, _ = json.Marshal(a.At)
		}
		if m := t.Modified; m != nil {
			j.ModifiedBy, j.ModifiedAt = m.Principal, &m.At
		}
		if !t.Before.IsZero() {
			j.AddedBefore = &t.Before
		}
	}
	return j
}

// since returns when the finding's rule appeared, as far as the history and CloudTrail
// tell: the earlier of its first sighting and when it was added (or the start of
// CloudTrail's window, when no event added it). Zero when neither tells.
func (f *Finding) since() time.Time {
	var at time.Time
	if f.FirstSeen != nil {
		at = *f.FirstSeen
	}
	if added, _ := f.trail.addedSince(); !added.IsZero() && (at.IsZero() || added.Before(at)) {
		at = added
	}
	return at
}

// decodeNullable decodes data, a JSON value that may be null or absent, into *v, which
// stays nil for either.
func decodeNullable[T any](data json.RawMessage, v **T) error {
	if len(data) == 0 {
		return nil
	}
	return json.Unmarshal(data, v)
}

// Group returns, for a finding about an ingress rule, the rule's group with its
// reachability from the internet (Reachable, Exposure); nil for other findings.
func (f *Finding) Group() *collector.Group { return f.group }

// Owner returns the published range the finding's address or prefix lies in, or nil.
func (f *Finding) Owner() *collector.Owner { return f.owner }

// MarshalJSON writes the finding with what it shows of its rule inline.
func (f Finding) MarshalJSON() ([]byte, error) { return json.Marshal(f.json()) }

// UnmarshalJSON reads a finding that MarshalJSON wrote.
func (f *Finding) UnmarshalJSON(data []byte) error {
	var j findingJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*f = Finding{Kind: j.Kind, Severity: j.Severity, ref: &j.RuleRef, reasons: j.Reasons,
		Verdicts: j.Verdicts, owner: j.Owner, FirstSeen: j.FirstSeen, Change: j.Change}
	var addedBy *string
	var addedAt *time.Time
	if err := decodeNullable(j.AddedBy, &addedBy); err != nil {
		return fmt.Errorf("added_by: %w", err)
	}
	if err := decodeNullable(j.AddedAt, &addedAt); err != nil {
		return fmt.Errorf("added_at: %w", err)
	}
	if addedAt != nil || j.ModifiedAt != nil || j.AddedBefore != nil {
		t := &ruleTrail{}
		if addedAt != nil {
			t.Added = &collector.RuleChange{RuleID: j.RuleID, GroupID: j.GroupID, At: *addedAt}
			if addedBy != nil {
				t.Added.Principal = *addedBy
			}
		}
		if j.ModifiedAt != nil {
			t.Modified = &collector.RuleChange{RuleID: j.RuleID, GroupID: j.GroupID, Principal: j.ModifiedBy, At: *j.ModifiedAt}
		}
		if j.AddedBefore != nil {
			t.Before = *j.AddedBefore
		}
		f.trail = t
	}
	if len(j.Reachable) > 0 {
		g := &collector.Group{ID: j.GroupID, Name: j.GroupName, Account: j.Account, Region: j.Region,
			Exposure: j.Exposure, Exposed: j.ExposedInterfaces}
		if err := json.Unmarshal(j.Reachable, &g.Reachable); err != nil {
			return fmt.Errorf("reachable: %w", err)
		}
		f.group = g
	}
	return nil
}

// ProviderRun is what one provider did during the run.
type ProviderRun = reputation.ProviderStats

// Run describes the audit that produced a report.
type Run struct {
	ID        string              `json:"id"`
	Started   time.Time           `json:"started"`
	Finished  time.Time           `json:"finished"`
	Sources   []string            `json:"sources"`
	Regions   []string            `json:"regions"`
	Accounts  []string            `json:"accounts"`
	Providers []ProviderRun       `json:"providers"`
	Skipped   []collector.Skipped `json:"skipped"`
	// Unknown is the context on findings (reachability, stale references) that could not
	// be had for part of the estate, and why. It does not make the audit incomplete.
	Unknown []collector.UnknownContext `json:"unknown_context"`
	// Previous is the id of the previous run in the history, if there is one.
	Previous string `json:"previous_run,omitempty"`
}

// Summary counts the findings and the addresses.
type Summary struct {
	ByKind     map[Kind]int     `json:"by_kind"`
	BySeverity map[Severity]int `json:"by_severity"`
	// ByAccount counts the findings of each account by severity: every account of the run,
	// with zeros when it has no finding, and any other account a finding names. A finding
	// with no account (a rule read from a file that does not say) is counted in no account.
	ByAccount map[string]map[Severity]int `json:"by_account"`
	// FindingsReachable counts the findings about ingress rules of groups that some
	// network interface makes reachable from the internet.
	FindingsReachable int `json:"findings_reachable"`
	// AddressesTotal is the number of distinct public addresses and prefixes to vet.
	AddressesTotal int `json:"addresses_total"`
	// AddressesVetted have at least one provider's known verdict.
	AddressesVetted int `json:"addresses_vetted"`
	// AddressesUnvetted have none.
	AddressesUnvetted int `json:"addresses_unvetted"`
	// RulesNew and RulesGone count the changes since the previous run in the history.
	RulesNew  int `json:"rules_new"`
	RulesGone int `json:"rules_gone"`
}

// GoneRule is a rule the previous run saw that this one did not.
type GoneRule struct {
	RuleRef
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// NewRule is a rule this run saw that the previous run did not.
type NewRule struct {
	RuleRef
	FirstSeen time.Time `json:"first_seen"`
}

// Report is the result of an audit.
type Report struct {
	Schema   string    `json:"schema"`
	Run      Run       `json:"run"`
	Summary  Summary   `json:"summary"`
	Findings []Finding `json:"findings"`
	// New are the rules new since the previous run in the history, by RuleKey; empty
	// without a history and on its first run.
	New  []NewRule  `json:"new"`
	Gone []GoneRule `json:"gone"`
}

// Incomplete reports whether some address could not be vetted, some part of the estate
// could not be collected, or some rule could not be parsed (an invalid-rule finding).
func (r *Report) Incomplete() bool {
	return r.Summary.AddressesUnvetted > 0 || len(r.Run.Skipped) > 0 || r.Summary.ByKind[InvalidRule] > 0
}

// Worst returns the most serious severity among the findings, and false if there are none.
func (r *Report) Worst() (Severity, bool) {
	worst, any := Info, false
	for _, f := range r.Findings {
		if !any || f.Severity.Rank() < worst.Rank() {
			worst, any = f.Severity, true
		}
	}
	return worst, any
}

// RuleKey identifies a rule across runs: account, region, group, rule id and target (a
// rule naming a prefix list stands for one Rule per entry).
func RuleKey(r collector.Rule) string {
	return r.Account + "|" + r.Region + "|" + r.GroupID + "|" + r.ID + "|" + r.Target()
}

// HistoryView is what the history knows that a report shows: when each rule was first
// seen, which are new since the previous run, and which are gone.
type HistoryView struct {
	// Previous is the id of the previous run, empty on the first run.
	Previous string
	// FirstSeen is the first sighting of every rule of this run, by RuleKey (this run's
	// start for a rule never seen before).
	FirstSeen map[string]time.Time
	// New holds the RuleKey of every rule the previous run did not have; empty on the
	// first run, when nothing can be called new.
	New map[string]bool
	// Gone are the rules the previous run had and this one does not.
	Gone []GoneRule
}

// Options tune how findings are built. The zero value means the defaults.
type Options struct {
	// StaleAfter is the age from which a rule with a temporary or personal marker is
	// stale: it is stale once it is older than that. 0 means DefaultStaleAfter; a negative
	// value, such as StaleAtAnyAge, makes a marked rule stale at any age, even on the day it
	// is first seen.
	StaleAfter time.Duration
	// Markers are the words that mark a rule as temporary or personal, matched as whole
	// words, case-insensitively; nil means DefaultMarkers.
	Markers []string
	// MaxHostsPerCIDR is the largest prefix vetted address by address; larger public
	// prefixes are wide ranges. 0 means collector.DefaultMaxHostsPerCIDR.
	MaxHostsPerCIDR int
	// AdminPorts and DatabasePorts are the administration and database ports, TCP or UDP:
	// open to the whole internet they are critical, and so is a malicious address allowed
	// to reach them. nil means DefaultAdminPorts and DefaultDatabasePorts; an empty list,
	// none.
	AdminPorts    []uint16
	DatabasePorts []uint16
	// WebPorts are the ports a public web server needs open to the whole internet, which
	// are only low when they are. nil means DefaultWebPorts; an empty list, none.
	WebPorts []ProtoPort
	// NearWorldIPv4Bits and NearWorldIPv6Bits are the longest ingress prefixes, of one rule
	// or of a group's rules on the same protocol and ports together, that are rated as the
	// whole internet: a prefix of that length or shorter covers too much public space to
	// be anyone's own. 0 means DefaultNearWorldIPv4Bits and DefaultNearWorldIPv6Bits.
	NearWorldIPv4Bits int
	NearWorldIPv6Bits int
	// RuleQuota is the number of inbound, and of outbound, rules AWS allows a group; a
	// group with RuleQuotaShare percent of it in one direction is a rule-quota finding. 0
	// means DefaultRuleQuota.
	RuleQuota int
}

// ProtoPort is one port of one protocol ("tcp" or "udp").
type ProtoPort struct {
	Protocol string
	Port     uint16
}

// String returns p as the configuration writes it: "tcp/443".
func (p ProtoPort) String() string { return p.Protocol + "/" + strconv.Itoa(int(p.Port)) }

// DefaultAdminPorts is the default Options.AdminPorts: remote shells and desktops, Windows
// file sharing and RPC, and the control planes of Docker, etcd, Kubernetes and Hadoop.
var DefaultAdminPorts = []uint16{22, 23, 135, 139, 445, 2375, 2376, 2379, 3389, 5900, 5985, 5986, 6443, 10250, 50070}

// DefaultDatabasePorts is the default Options.DatabasePorts: SQL and NoSQL databases,
// caches and search engines.
var DefaultDatabasePorts = []uint16{1433, 1521, 3306, 5432, 5984, 6379, 7000, 7001, 8086, 9042, 9200, 9300, 11211, 27017, 27018}

// DefaultWebPorts is the default Options.WebPorts: HTTP and HTTPS over TCP, and HTTP/3
// (QUIC) over UDP 443.
var DefaultWebPorts = []ProtoPort{{"tcp", 80}, {"tcp", 443}, {"udp", 443}}

// The defaults of Options' near-world prefixes: an IPv4 /8 and an IPv6 /16.
const (
	DefaultNearWorldIPv4Bits = 8
	DefaultNearWorldIPv6Bits = 16
)

// DefaultRuleQuota is the default Options.RuleQuota: AWS's default quota of inbound, and of
// outbound, rules per security group.
const DefaultRuleQuota = 60

// RuleQuotaShare is the share of the rule quota, in percent, from which a group is
// reported as near it.
const RuleQuotaShare = 90

// DefaultStaleAfter is the default Options.StaleAfter: 90 days.
const DefaultStaleAfter = 90 * 24 * time.Hour

// StaleAtAnyAge is the Options.StaleAfter that makes a rule with a temporary or personal
// marker stale at any age, from its first sighting on: every age is older than it.
const StaleAtAnyAge time.Duration = -1

// DefaultMarkers is the default Options.Markers. Besides these words, a possessive name
// such as "John's" marks a rule as personal.
var DefaultMarkers = []string{"temp", "temporary", "test", "testing", "tmp", "home", "contractor", "vendor", "hotel", "personal", "debug", "trial", "poc", "demo"}

// Input is what Build needs.
type Input struct {
	// Inventory is the estate. Its public sources are not read: Build finds each rule's
	// from the rule, as collector.LookupPrefixes does, and the inventory may omit them.
	Inventory *collector.Inventory
	// Results are the verdicts on the addresses and prefixes the rules reference, each
	// target as reputation.PrefixTarget of what LookupPrefixes returns (a single address
	// is its address target). A target with no Result was not vetted.
	Results []reputation.Result
	// History is nil when no history is kept.
	History *HistoryView
	// Owners are the published ranges (AWS, GitHub, Cloudflare, Google) that label the
	// rules' addresses and prefixes with their owner; nil labels none.
	Owners  *collector.OwnerRanges
	Options Options
	// Now is the time staleness is judged at (expiry dates, rule ages).
	Now time.Time
}
