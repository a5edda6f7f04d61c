package collector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// InputError is an input file that could not be read as aws CLI output. Line and Column
// are 1-based and zero when unknown.
type InputError struct {
	File   string
	Line   int
	Column int
	Err    error
}

func (e *InputError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %v", e.File, e.Line, e.Column, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *InputError) Unwrap() error { return e.Err }

// File is one parsed input file: the JSON that `aws ec2 describe-security-groups`,
// `aws ec2 describe-security-group-rules` or `aws ec2 describe-network-interfaces` prints.
type File struct {
	Name string
	// groups and groupRules come from describe-security-groups; rules from
	// describe-security-group-rules; attached and interfaces from
	// describe-network-interfaces.
	groups     []Group
	groupRules []Rule
	rules      []Rule
	attached   map[string]bool
	interfaces bool
}

// The aws CLI's JSON, as far as sgvet reads it.
type (
	cliOutput struct {
		SecurityGroups     []cliGroup `json:"SecurityGroups"`
		SecurityGroupRules []cliRule  `json:"SecurityGroupRules"`
		NetworkInterfaces  []cliENI   `json:"NetworkInterfaces"`
	}
	cliGroup struct {
		GroupID             string          `json:"GroupId"`
		GroupName           string          `json:"GroupName"`
		Description         string          `json:"Description"`
		OwnerID             string          `json:"OwnerId"`
		VpcID               string          `json:"VpcId"`
		IPPermissions       []cliPermission `json:"IpPermissions"`
		IPPermissionsEgress []cliPermission `json:"IpPermissionsEgress"`
	}
	cliPermission struct {
		IPProtocol string `json:"IpProtocol"`
		FromPort   *int32 `json:"FromPort"`
		ToPort     *int32 `json:"ToPort"`
		IPRanges   []struct {
			CidrIP      string `json:"CidrIp"`
			Description string `json:"Description"`
		} `json:"IpRanges"`
		IPv6Ranges []struct {
			CidrIPv6    string `json:"CidrIpv6"`
			Description string `json:"Description"`
		} `json:"Ipv6Ranges"`
		PrefixListIDs []struct {
			PrefixListID string `json:"PrefixListId"`
			Description  string `json:"Description"`
		} `json:"PrefixListIds"`
		UserIDGroupPairs []struct {
			GroupID                string `json:"GroupId"`
			UserID                 string `json:"UserId"`
			VpcID                  string `json:"VpcId"`
			VpcPeeringConnectionID string `json:"VpcPeeringConnectionId"`
			PeeringStatus          string `json:"PeeringStatus"`
			Description            string `json:"Description"`
		} `json:"UserIdGroupPairs"`
	}
	cliRule struct {
		SecurityGroupRuleID string  `json:"SecurityGroupRuleId"`
		GroupID             string  `json:"GroupId"`
		GroupOwnerID        string  `json:"GroupOwnerId"`
		IsEgress            bool    `json:"IsEgress"`
		IPProtocol          string  `json:"IpProtocol"`
		FromPort            *int32  `json:"FromPort"`
		ToPort              *int32  `json:"ToPort"`
		CidrIPv4            *string `json:"CidrIpv4"`
		CidrIPv6            *string `json:"CidrIpv6"`
		PrefixListID        *string `json:"PrefixListId"`
		ReferencedGroupInfo *struct {
			GroupID                string `json:"GroupId"`
			UserID                 string `json:"UserId"`
			VpcID                  string `json:"VpcId"`
			VpcPeeringConnectionID string `json:"VpcPeeringConnectionId"`
			PeeringStatus          string `json:"PeeringStatus"`
		} `json:"ReferencedGroupInfo"`
		Description string `json:"Description"`
	}
	cliENI struct {
		Groups []struct {
			GroupID string `json:"GroupId"`
		} `json:"Groups"`
	}
)

// ParseFile parses one input file. It fails, with an *InputError, when data is not JSON or
// holds none of SecurityGroups, SecurityGroupRules and NetworkInterfaces. A rule with an
// invalid CIDR is kept, marked Invalid.
func ParseFile(name string, data []byte) (*File, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &InputError{File: name, Err: errors.New("file is empty")}
	}
	var out cliOutput
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, jsonError(name, data, err)
	}
	if out.SecurityGroups == nil && out.SecurityGroupRules == nil && out.NetworkInterfaces == nil {
		return nil, &InputError{File: name, Err: errors.New("no SecurityGroups, SecurityGroupRules or NetworkInterfaces: expected the JSON output of aws ec2 describe-security-groups, describe-security-group-rules or describe-network-interfaces")}
	}
	f := &File{Name: name}
	for _, g := range out.SecurityGroups {
		if g.GroupID == "" {
			continue
		}
		f.groups = append(f.groups, Group{ID: g.GroupID, Name: g.GroupName, Description: g.Description, VPC: g.VpcID, Account: g.OwnerID})
		base := Rule{Account: g.OwnerID, VPC: g.VpcID, GroupID: g.GroupID, GroupName: g.GroupName}
		f.groupRules = permissionRules(f.groupRules, base, Ingress, g.IPPermissions)
		f.groupRules = permissionRules(f.groupRules, base, Egress, g.IPPermissionsEgress)
	}
	for _, cr := range out.SecurityGroupRules {
		f.rules = append(f.rules, ruleFromCLI(cr))
	}
	if out.NetworkInterfaces != nil {
		f.interfaces = true
		f.attached = map[string]bool{}
		for _, eni := range out.NetworkInterfaces {
			for _, g := range eni.Groups {
				f.attached[g.GroupID] = true
			}
		}
	}
	return f, nil
}

// permissionRules appends one Rule per range, prefix list and group pair of perms. Rules
// from describe-security-groups have no ids; each gets one made of its group, direction,
// protocol, ports and target, which is stable across runs.
func permissionRules(rules []Rule, base Rule, dir Direction, perms []cliPermission) []Rule {
	for _, p := range perms {
		r := base
		r.Direction = dir
		r.Protocol = normalizeProtocol(p.IPProtocol)
		r.FromPort, r.ToPort = portOrAny(p.FromPort), portOrAny(p.ToPort)
		for _, ip := range p.IPRanges {
			cr := r
			cr.Description = ip.Description
			cr.CIDR, cr.Invalid = parseCIDR(ip.CidrIP)
			cr.ID = syntheticID(cr, ip.CidrIP)
			rules = append(rules, cr)
		}
		for _, ip := range p.IPv6Ranges {
			cr := r
			cr.Description = ip.Description
			cr.CIDR, cr.Invalid = parseCIDR(ip.CidrIPv6)
			cr.ID = syntheticID(cr, ip.CidrIPv6)
			rules = append(rules, cr)
		}
		for _, pl := range p.PrefixListIDs {
			cr := r
			cr.Description = pl.Description
			cr.PrefixList = &PrefixListRef{ID: pl.PrefixListID, Unresolved: unresolvedInFiles}
			cr.ID = syntheticID(cr, pl.PrefixListID)
			rules = append(rules, cr)
		}
		for _, gp := range p.UserIDGroupPairs {
			cr := r
			cr.Description = gp.Description
			cr.ReferencedGroup = &GroupRef{GroupID: gp.GroupID, Account: gp.UserID, VPC: gp.VpcID, PeeringID: gp.VpcPeeringConnectionID, PeeringStatus: gp.PeeringStatus}
			cr.ID = syntheticID(cr, cr.Target())
			rules = append(rules, cr)
		}
	}
	return rules
}

// unresolvedInFiles is why a prefix list named in an input file is not expanded.
const unresolvedInFiles = "input files do not hold prefix list entries; collect from the AWS API to expand the list"

func syntheticID(r Rule, target string) string {
	return r.GroupID + ":" + string(r.Direction) + ":" + r.Protocol + ":" + r.PortRange() + ":" + target
}

func ruleFromCLI(cr cliRule) Rule {
	r := Rule{
		Account:     cr.GroupOwnerID,
		GroupID:     cr.GroupID,
		ID:          cr.SecurityGroupRuleID,
		Direction:   Ingress,
		Protocol:    normalizeProtocol(cr.IPProtocol),
		FromPort:    portOrAny(cr.FromPort),
		ToPort:      portOrAny(cr.ToPort),
		Description: cr.Description,
	}
	if cr.IsEgress {
		r.Direction = Egress
	}
	switch {
	case cr.CidrIPv4 != nil:
		r.CIDR, r.Invalid = parseCIDR(*cr.CidrIPv4)
	case cr.CidrIPv6 != nil:
		r.CIDR, r.Invalid = parseCIDR(*cr.CidrIPv6)
	case cr.PrefixListID != nil:
		r.PrefixList = &PrefixListRef{ID: *cr.PrefixListID, Unresolved: unresolvedInFiles}
	case cr.ReferencedGroupInfo != nil:
		ref := cr.ReferencedGroupInfo
		r.ReferencedGroup = &GroupRef{GroupID: ref.GroupID, Account: ref.UserID, VPC: ref.VpcID, PeeringID: ref.VpcPeeringConnectionID, PeeringStatus: ref.PeeringStatus}
	}
	if r.ID == "" {
		r.ID = syntheticID(r, r.Target())
	}
	return r
}

// FromFiles joins parsed files into one Collection. Where a group's rules come both from
// describe-security-group-rules and from describe-security-groups, the former are kept,
// for their rule ids. When any describe-network-interfaces output is given, groups that no
// interface uses are Unattached; otherwise attachment is unknown. Prefix lists cannot be
// expanded from files: each one named is listed in Skipped.
func FromFiles(files []*File) Collection {
	var c Collection
	withRuleIDs := map[string]bool{}
	attached := map[string]bool{}
	interfaces := false
	for _, f := range files {
		c.Sources = append(c.Sources, f.Name)
		for _, r := range f.rules {
			withRuleIDs[r.GroupID] = true
		}
		for id := range f.attached {
			attached[id] = true
		}
		interfaces = interfaces || f.interfaces
	}
	lists := map[string]bool{}
	addRule := func(r Rule) {
		if r.PrefixList != nil && !lists[r.PrefixList.ID] {
			lists[r.PrefixList.ID] = true
			c.Skipped = append(c.Skipped, Skipped{Account: r.Account, Resource: "prefix list " + r.PrefixList.ID, Reason: unresolvedInFiles})
		}
		c.Rules = append(c.Rules, r)
	}
	groupSeen := map[string]bool{}
	for _, f := range files {
		for _, g := range f.groups {
			groupSeen[g.ID] = true
			c.Groups = append(c.Groups, g)
		}
		for _, r := range f.groupRules {
			if !withRuleIDs[r.GroupID] {
				addRule(r)
			}
		}
		for _, r := range f.rules {
			addRule(r)
		}
	}
	// Groups known only from a rules file.
	for _, r := range c.Rules {
		if !groupSeen[r.GroupID] {
			groupSeen[r.GroupID] = true
			c.Groups = append(c.Groups, Group{ID: r.GroupID, Account: r.Account})
		}
	}
	if interfaces {
		for i := range c.Groups {
			c.Groups[i].Attached = Unattached
			if attached[c.Groups[i].ID] {
				c.Groups[i].Attached = Attached
			}
		}
	}
	return c
}

// jsonError turns a decoding error into an InputError with the line and column.
func jsonError(name string, data []byte, err error) error {
	var (
		offset  int64 = -1
		message       = err.Error()
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		offset = syntax.Offset
	case errors.As(err, &typeErr):
		offset = typeErr.Offset
		field := typeErr.Field
		if field == "" {
			field = "the top level"
		}
		message = fmt.Sprintf("%s: want %s, got %s", field, typeErr.Type, typeErr.Value)
	}
	message = strings.TrimPrefix(message, "json: ")
	if offset < 0 {
		return &InputError{File: name, Err: errors.New(message)}
	}
	line, col := position(data, offset)
	return &InputError{File: name, Line: line, Column: col, Err: errors.New(message)}
}

// position returns the 1-based line and column of byte offset in data. The json package
// reports the offset after the offending byte, so the column points at it.
func position(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1)
	if col < 1 {
		col = 1
	}
	return line, col
}
