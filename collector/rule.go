// Package collector gathers the rules of AWS security groups, from the EC2 API or from the
// JSON that the aws CLI prints, and finds the public addresses and prefixes they reference.
//
// A Rule has at most one target: a CIDR, a referenced security group, or a managed prefix
// list. A rule that names a customer-managed prefix list is expanded into one Rule per entry
// of the list; a rule that names an AWS-managed list keeps the list as its target.
//
// It also gathers the context that findings need: whether each group's network interfaces
// are reachable from the internet, which rules reference groups that no longer exist, who
// added each rule (CloudTrail), the accounts of the Organization, and whose published
// range an address lies in (OwnerRanges).
package collector

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Direction is the direction of traffic a rule allows.
type Direction string

// The two directions of a security group rule.
const (
	Ingress Direction = "ingress"
	Egress  Direction = "egress"
)

// Attachment says whether a security group is attached to any network interface. Its zero
// value, AttachmentUnknown, is what file input yields when no describe-network-interfaces
// output was given.
type Attachment int8

// The three states of Attachment.
const (
	AttachmentUnknown Attachment = iota
	Attached
	Unattached
)

// MarshalJSON encodes Attachment as true, false or null.
func (a Attachment) MarshalJSON() ([]byte, error) {
	switch a {
	case Attached:
		return []byte("true"), nil
	case Unattached:
		return []byte("false"), nil
	}
	return []byte("null"), nil
}

// UnmarshalJSON decodes true, false or null.
func (a *Attachment) UnmarshalJSON(b []byte) error {
	var v *bool
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch {
	case v == nil:
		*a = AttachmentUnknown
	case *v:
		*a = Attached
	default:
		*a = Unattached
	}
	return nil
}

// String returns "yes", "no" or "unknown".
func (a Attachment) String() string {
	switch a {
	case Attached:
		return "yes"
	case Unattached:
		return "no"
	}
	return "unknown"
}

// Group is a security group.
type Group struct {
	ID          string     `json:"id"`
	Name        string     `json:"name,omitempty"`
	Description string     `json:"description,omitempty"`
	VPC         string     `json:"vpc_id,omitempty"`
	Account     string     `json:"account,omitempty"`
	Region      string     `json:"region,omitempty"`
	Attached    Attachment `json:"attached"`
	// Reachable says whether any network interface the group is attached to can be reached
	// from the internet (see Reachability); nil, written as null, when that is unknown. A
	// group attached to no interface is not reachable.
	Reachable *bool `json:"reachable"`
	// Exposure is the evidence for Reachable: the interfaces that make the group reachable,
	// or, when Reachable is unknown, those that might; at most MaxExposure of them, in the
	// order of their ids. Exposed counts them all.
	Exposure []InterfaceRef `json:"exposure,omitempty"`
	Exposed  int            `json:"exposed_interfaces,omitempty"`
}

// IsDefault reports whether g is a VPC's default security group.
func (g Group) IsDefault() bool { return g.Name == "default" }

// GroupRef is a security group that a rule references as its source or destination.
type GroupRef struct {
	GroupID       string `json:"group_id"`
	Account       string `json:"account,omitempty"`
	VPC           string `json:"vpc_id,omitempty"`
	PeeringID     string `json:"vpc_peering_connection_id,omitempty"`
	PeeringStatus string `json:"peering_status,omitempty"`
	// InOrganization says, for a group of another account than the rule's, whether that
	// account belongs to the audited accounts' Organization; nil when that is unknown, or
	// the group is the rule's own account's.
	InOrganization *bool `json:"in_organization,omitempty"`
}

// PrefixListRef is the managed prefix list a rule names. For a customer-managed list, Entry
// and EntryDescription describe the one entry this Rule stands for.
type PrefixListRef struct {
	ID               string `json:"id"`
	Name             string `json:"name,omitempty"`
	Owner            string `json:"owner,omitempty"`
	AWSManaged       bool   `json:"aws_managed"`
	EntryDescription string `json:"entry_description,omitempty"`
	// Unresolved says why the list's entries could not be read; the rule then has no CIDR.
	Unresolved string `json:"unresolved,omitempty"`
}

// RuleField names the part of a rule that can be invalid.
type RuleField string

// The parts of a rule that are checked as they are read.
const (
	FieldCIDR     RuleField = "cidr"
	FieldPorts    RuleField = "ports"
	FieldProtocol RuleField = "protocol"
)

// String returns the field as people write it: "CIDR", "ports" or "protocol".
func (f RuleField) String() string {
	if f == FieldCIDR {
		return "CIDR"
	}
	return string(f)
}

// Invalid is the part of a rule that could not be parsed, kept as it was written: a CIDR,
// a port range ("70000-80"; for ICMP, the type and code) or a protocol ("tcpx"). A rule
// is invalid for one reason: a CIDR that cannot be parsed is the one recorded, since the
// rule then has no target.
type Invalid struct {
	Field  RuleField `json:"field"`
	Text   string    `json:"text"`
	Reason string    `json:"reason"`
}

// Rule is one rule of a security group with one target.
type Rule struct {
	Account   string    `json:"account,omitempty"`
	Region    string    `json:"region,omitempty"`
	VPC       string    `json:"vpc_id,omitempty"`
	GroupID   string    `json:"group_id"`
	GroupName string    `json:"group_name,omitempty"`
	ID        string    `json:"rule_id"`
	Direction Direction `json:"direction"`
	// Protocol is "tcp", "udp", "icmp", "icmpv6", "all", or an IP protocol number; in a
	// rule with an invalid protocol, the protocol as it was written.
	Protocol string `json:"protocol"`
	// FromPort and ToPort are the port range; for ICMP they are the type and code; -1 is any.
	FromPort int32 `json:"from_port"`
	ToPort   int32 `json:"to_port"`
	// CIDR is the rule's address range, normalised (masked; IPv4-mapped IPv6 as IPv4).
	// It is the zero Prefix when the target is a group, an AWS-managed prefix list, or
	// an invalid CIDR.
	CIDR netip.Prefix `json:"cidr,omitzero"`
	// Invalid is set when the rule's CIDR, ports or protocol could not be parsed. An
	// invalid rule keeps its other fields, and its target when that was read, but nothing
	// says what it allows: it is never public.
	Invalid         *Invalid       `json:"invalid,omitempty"`
	PrefixList      *PrefixListRef `json:"prefix_list,omitempty"`
	ReferencedGroup *GroupRef      `json:"referenced_group,omitempty"`
	Description     string         `json:"description"`
	Attached        Attachment     `json:"attached"`
}

// PortRange returns the rule's ports as people write them: "all", "22", "8000-8080",
// or for ICMP "type 8" / "type 3 code 4".
func (r Rule) PortRange() string {
	switch {
	case r.Protocol == "all":
		return "all"
	case r.Protocol == "icmp" || r.Protocol == "icmpv6":
		switch {
		case r.FromPort == -1:
			return "all"
		case r.ToPort == -1:
			return "type " + strconv.Itoa(int(r.FromPort))
		}
		return fmt.Sprintf("type %d code %d", r.FromPort, r.ToPort)
	case r.FromPort == -1 || (r.FromPort == 0 && r.ToPort == 65535):
		return "all"
	case r.FromPort == r.ToPort:
		return strconv.Itoa(int(r.FromPort))
	}
	return fmt.Sprintf("%d-%d", r.FromPort, r.ToPort)
}

// CrossAccount reports whether r references a group of an account other than its own,
// both accounts being known.
func (r *Rule) CrossAccount() bool {
	ref := r.ReferencedGroup
	return ref != nil && ref.Account != "" && r.Account != "" && ref.Account != r.Account
}

// Target returns the rule's target as text: the CIDR, the referenced group, the prefix list,
// or an invalid CIDR as it was written.
func (r Rule) Target() string {
	switch {
	case r.CIDR.IsValid():
		return r.CIDR.String()
	case r.Invalid != nil && r.Invalid.Field == FieldCIDR:
		return r.Invalid.Text
	case r.PrefixList != nil:
		return r.PrefixList.ID
	case r.ReferencedGroup != nil:
		if r.ReferencedGroup.Account != "" {
			return r.ReferencedGroup.Account + "/" + r.ReferencedGroup.GroupID
		}
		return r.ReferencedGroup.GroupID
	}
	return ""
}

// setTraffic sets r's protocol and port range from the EC2 API's, and marks r invalid
// when the protocol is unknown or the ports are impossible for it. Protocol names are
// normalised to lower case and protocol numbers to the names Rule uses ("6" is "tcp",
// "-1" is "all"); an unknown protocol is kept as it was written. A missing port is -1.
func (r *Rule) setTraffic(protocol *string, from, to *int32) {
	r.FromPort, r.ToPort = portOrAny(from), portOrAny(to)
	written := ""
	if protocol != nil {
		written = *protocol
	}
	p, ok := normalizeProtocol(written)
	r.Protocol = p
	switch {
	case !ok:
		reason := "not tcp, udp, icmp, icmpv6, -1 (all) or a protocol number from 0 to 255"
		if written == "" {
			reason = "the rule has no IpProtocol"
		}
		r.Invalid = &Invalid{Field: FieldProtocol, Text: written, Reason: reason}
	case p == "tcp" || p == "udp":
		r.Invalid = checkPorts(p, from, to)
	case p == "icmp" || p == "icmpv6":
		r.Invalid = checkICMP(r.FromPort, r.ToPort)
	}
}

// normalizeProtocol maps the EC2 API's protocol strings to the names Rule uses, and
// reports whether written is a protocol at all; if not, it returns written unchanged.
func normalizeProtocol(written string) (string, bool) {
	// Known names are returned as the constants, not as written: a million rules then share
	// one "tcp" rather than hold a copy each from the API's response.
	p := strings.ToLower(written)
	switch p {
	case "tcp":
		return "tcp", true
	case "udp":
		return "udp", true
	case "icmp":
		return "icmp", true
	case "icmpv6":
		return "icmpv6", true
	case "all", "-1":
		return "all", true
	}
	n, err := strconv.ParseUint(p, 10, 8)
	if err != nil {
		return written, false
	}
	switch n {
	case 6:
		return "tcp", true
	case 17:
		return "udp", true
	case 1:
		return "icmp", true
	case 58:
		return "icmpv6", true
	}
	return strconv.FormatUint(n, 10), true
}

// checkPorts returns the Invalid to record when from and to are not a port range of the
// TCP or UDP rule, or nil.
func checkPorts(protocol string, from, to *int32) *Invalid {
	if from == nil || to == nil {
		text := ""
		if p := cmp.Or(from, to); p != nil {
			text = strconv.Itoa(int(*p))
		}
		return &Invalid{Field: FieldPorts, Text: text, Reason: "a " + protocol + " rule needs both FromPort and ToPort"}
	}
	lo, hi := *from, *to
	text := portsText(lo, hi)
	for _, p := range [...]int32{lo, hi} {
		if p < 0 || p > 65535 {
			return &Invalid{Field: FieldPorts, Text: text, Reason: fmt.Sprintf("port %d is not between 0 and 65535", p)}
		}
	}
	if lo > hi {
		return &Invalid{Field: FieldPorts, Text: text, Reason: fmt.Sprintf("the range is reversed: FromPort %d is above ToPort %d", lo, hi)}
	}
	return nil
}

// checkICMP returns the Invalid to record when the ICMP type or code is not -1 (any) or
// 0 to 255, or nil.
func checkICMP(typ, code int32) *Invalid {
	for _, v := range [...]struct {
		name  string
		value int32
	}{{"type", typ}, {"code", code}} {
		if v.value < -1 || v.value > 255 {
			return &Invalid{Field: FieldPorts, Text: fmt.Sprintf("type %d code %d", typ, code), Reason: fmt.Sprintf("ICMP %s %d is not -1 (any) or between 0 and 255", v.name, v.value)}
		}
	}
	return nil
}

// portsText writes a port range as the EC2 API holds it: "22", "70000-80".
func portsText(from, to int32) string {
	if from == to {
		return strconv.Itoa(int(from))
	}
	return strconv.Itoa(int(from)) + "-" + strconv.Itoa(int(to))
}

func portOrAny(p *int32) int32 {
	if p == nil {
		return -1
	}
	return *p
}

// setCIDR parses s as r's CIDR. A CIDR that cannot be parsed makes r invalid, whatever
// else was wrong with it: the rule then has no target but the text.
func (r *Rule) setCIDR(s string) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		r.CIDR, r.Invalid = netip.Prefix{}, &Invalid{Field: FieldCIDR, Text: s, Reason: err.Error()}
		return
	}
	r.CIDR = Normalize(p)
}

// IsPublic reports whether the rule's target is public: the whole internet, a CIDR not
// inside a special-purpose range, or an AWS-managed prefix list. An invalid rule is never
// public.
func (r Rule) IsPublic() bool {
	if r.Invalid != nil {
		return false
	}
	if r.PrefixList != nil && r.PrefixList.AWSManaged {
		return true
	}
	if !r.CIDR.IsValid() {
		return false
	}
	if IsWorld(r.CIDR) {
		return true
	}
	_, special := Special(r.CIDR)
	return !special
}
