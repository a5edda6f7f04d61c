// Package collector gathers the rules of AWS security groups, from the EC2 API or from the
// JSON that the aws CLI prints, and finds the public addresses and prefixes they reference.
//
// A Rule has at most one target: a CIDR, a referenced security group, or a managed prefix
// list. A rule that names a customer-managed prefix list is expanded into one Rule per entry
// of the list; a rule that names an AWS-managed list keeps the list as its target.
package collector

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
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

// InvalidCIDR is a CIDR that could not be parsed, kept as it was written.
type InvalidCIDR struct {
	Text   string `json:"text"`
	Reason string `json:"reason"`
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
	// Protocol is "tcp", "udp", "icmp", "icmpv6", "all", or an IP protocol number.
	Protocol string `json:"protocol"`
	// FromPort and ToPort are the port range; for ICMP they are the type and code; -1 is any.
	FromPort int32 `json:"from_port"`
	ToPort   int32 `json:"to_port"`
	// CIDR is the rule's address range, normalised (masked; IPv4-mapped IPv6 as IPv4).
	// It is the zero Prefix when the target is a group, an AWS-managed prefix list, or
	// invalid.
	CIDR            netip.Prefix   `json:"cidr,omitzero"`
	Invalid         *InvalidCIDR   `json:"invalid,omitempty"`
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

// Target returns the rule's target as text: the CIDR, the referenced group, the prefix list,
// or the invalid text.
func (r Rule) Target() string {
	switch {
	case r.CIDR.IsValid():
		return r.CIDR.String()
	case r.Invalid != nil:
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

// normalizeProtocol maps the EC2 API's protocol strings to the names Rule uses.
func normalizeProtocol(p string) string {
	switch p {
	case "-1", "":
		return "all"
	case "6":
		return "tcp"
	case "17":
		return "udp"
	case "1":
		return "icmp"
	case "58":
		return "icmpv6"
	}
	return p
}

// parseCIDR parses a CIDR from a rule and normalises it; on failure it returns the
// InvalidCIDR to record.
func parseCIDR(s string) (netip.Prefix, *InvalidCIDR) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, &InvalidCIDR{Text: s, Reason: err.Error()}
	}
	return Normalize(p), nil
}

// IsPublic reports whether the rule's target is public: the whole internet, a CIDR not
// inside a special-purpose range, or an AWS-managed prefix list.
func (r Rule) IsPublic() bool {
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
