package collector

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
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
// `describe-security-group-rules`, `describe-network-interfaces`,
// `describe-managed-prefix-lists`, `describe-route-tables` or
// `describe-stale-security-groups` prints.
type File struct {
	Name string
	// groups and groupRules come from describe-security-groups; rules from
	// describe-security-group-rules; attached (nil when the file holds no interfaces) and
	// candidates from describe-network-interfaces; lists from
	// describe-managed-prefix-lists; tables (nil when the file holds none) from
	// describe-route-tables; stale (nil when the file holds none) from
	// describe-stale-security-groups.
	groups     []Group
	groupRules []Rule
	rules      []Rule
	attached   map[string]bool
	candidates []candidate
	lists      map[string]prefixList
	tables     []types.RouteTable
	stale      []StaleReference
}

// cliOutput is the JSON the aws CLI prints. The CLI names fields as the EC2 API does, so
// the SDK's own types decode it.
type cliOutput struct {
	SecurityGroups     []types.SecurityGroup      `json:"SecurityGroups"`
	SecurityGroupRules []types.SecurityGroupRule  `json:"SecurityGroupRules"`
	NetworkInterfaces  []types.NetworkInterface   `json:"NetworkInterfaces"`
	PrefixLists        []types.ManagedPrefixList  `json:"PrefixLists"`
	RouteTables        []types.RouteTable         `json:"RouteTables"`
	StaleSecurityGroup []types.StaleSecurityGroup `json:"StaleSecurityGroupSet"`
}

// ParseFile parses one input file. It fails, with an *InputError, when data is not JSON or
// holds none of SecurityGroups, SecurityGroupRules, NetworkInterfaces, PrefixLists,
// RouteTables and StaleSecurityGroupSet; for
// YAML, CSV, and the text and table output of the aws CLI, the error says to run the aws
// command with --output json. A rule with an invalid CIDR, port range or protocol is kept,
// marked Invalid.
func ParseFile(name string, data []byte) (*File, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &InputError{File: name, Err: errors.New("file is empty")}
	}
	var out cliOutput
	if err := json.Unmarshal(data, &out); err != nil {
		if format := otherFormat(data); format != "" {
			return nil, &InputError{File: name, Err: fmt.Errorf("this looks like %s; sgvet reads JSON: run the aws command with --output json", format)}
		}
		return nil, jsonError(name, data, err)
	}
	if out.SecurityGroups == nil && out.SecurityGroupRules == nil && out.NetworkInterfaces == nil && out.PrefixLists == nil && out.RouteTables == nil && out.StaleSecurityGroup == nil {
		return nil, &InputError{File: name, Err: errors.New("no SecurityGroups, SecurityGroupRules, NetworkInterfaces, PrefixLists, RouteTables or StaleSecurityGroupSet: expected the JSON output of aws ec2 describe-security-groups, describe-security-group-rules, describe-network-interfaces, describe-managed-prefix-lists, describe-route-tables or describe-stale-security-groups")}
	}
	// The rules are counted first, so that a file of a million rules is not copied as its
	// slice grows.
	n := 0
	for _, g := range out.SecurityGroups {
		n += permissionRuleCount(g.IpPermissions) + permissionRuleCount(g.IpPermissionsEgress)
	}
	f := &File{Name: name, groupRules: make([]Rule, 0, n), rules: make([]Rule, 0, len(out.SecurityGroupRules))}
	for _, g := range out.SecurityGroups {
		grp := groupFromAPI(g, "")
		if grp.ID == "" {
			continue
		}
		f.groups = append(f.groups, grp)
		base := Rule{Account: grp.Account, VPC: grp.VPC, GroupID: grp.ID, GroupName: grp.Name}
		f.groupRules = permissionRules(f.groupRules, base, Ingress, g.IpPermissions)
		f.groupRules = permissionRules(f.groupRules, base, Egress, g.IpPermissionsEgress)
	}
	for _, sr := range out.SecurityGroupRules {
		r := ruleFromAPI(sr, "")
		if r.PrefixList != nil {
			r.PrefixList.Unresolved = unresolvedInFiles
		}
		if r.ID == "" {
			r.ID = syntheticID(r, r.Target())
		}
		f.rules = append(f.rules, r)
	}
	if out.NetworkInterfaces != nil {
		f.attached = map[string]bool{}
		addAttached(f.attached, out.NetworkInterfaces)
		var reach reachability
		reach.add(out.NetworkInterfaces)
		f.candidates = reach.candidates
	}
	f.tables = out.RouteTables
	if out.StaleSecurityGroup != nil {
		f.stale = appendStale([]StaleReference{}, "", out.StaleSecurityGroup)
	}
	for _, pl := range out.PrefixLists {
		if f.lists == nil {
			f.lists = map[string]prefixList{}
		}
		f.lists[aws.ToString(pl.PrefixListId)] = prefixListFromAPI(pl)
	}
	return f, nil
}

// permissionRuleCount returns how many Rules permissionRules makes of perms.
func permissionRuleCount(perms []types.IpPermission) int {
	n := 0
	for _, p := range perms {
		n += len(p.IpRanges) + len(p.Ipv6Ranges) + len(p.PrefixListIds) + len(p.UserIdGroupPairs)
	}
	return n
}

// permissionRules appends one Rule per range, prefix list and group pair of perms. Rules
// from describe-security-groups have no ids; each gets one made of its group, direction,
// protocol, ports and target, which is stable across runs.
func permissionRules(rules []Rule, base Rule, dir Direction, perms []types.IpPermission) []Rule {
	for _, p := range perms {
		r := base
		r.Direction = dir
		r.setTraffic(p.IpProtocol, p.FromPort, p.ToPort)
		for _, ip := range p.IpRanges {
			cr := r
			cr.Description = aws.ToString(ip.Description)
			cr.setCIDR(aws.ToString(ip.CidrIp))
			cr.ID = syntheticID(cr, aws.ToString(ip.CidrIp))
			rules = append(rules, cr)
		}
		for _, ip := range p.Ipv6Ranges {
			cr := r
			cr.Description = aws.ToString(ip.Description)
			cr.setCIDR(aws.ToString(ip.CidrIpv6))
			cr.ID = syntheticID(cr, aws.ToString(ip.CidrIpv6))
			rules = append(rules, cr)
		}
		for _, pl := range p.PrefixListIds {
			cr := r
			cr.Description = aws.ToString(pl.Description)
			cr.PrefixList = &PrefixListRef{ID: aws.ToString(pl.PrefixListId), Unresolved: unresolvedInFiles}
			cr.ID = syntheticID(cr, cr.PrefixList.ID)
			rules = append(rules, cr)
		}
		for _, gp := range p.UserIdGroupPairs {
			cr := r
			cr.Description = aws.ToString(gp.Description)
			cr.ReferencedGroup = &GroupRef{
				GroupID:       aws.ToString(gp.GroupId),
				Account:       aws.ToString(gp.UserId),
				VPC:           aws.ToString(gp.VpcId),
				PeeringID:     aws.ToString(gp.VpcPeeringConnectionId),
				PeeringStatus: aws.ToString(gp.PeeringStatus),
			}
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

// FromFiles joins parsed files into one Collection. Where a group's rules come both from
// describe-security-group-rules and from describe-security-groups, the former are kept,
// for their rule ids. When any describe-network-interfaces output is given, groups that no
// interface uses are Unattached; otherwise attachment is unknown. A prefix list that
// describe-managed-prefix-lists output shows to be AWS-managed is an AWS service list; any
// other prefix list cannot be expanded from files and is listed in Skipped.
//
// Reachability is decided as from the API when describe-network-interfaces output is
// given: a public IPv4 address or Elastic IP makes a group reachable; an IPv6 address
// needs describe-route-tables output too, without which it leaves the group unknown.
// Without interfaces every group's reachability is unknown. Stale references come from
// describe-stale-security-groups output, and are unknown without it. What is unknown is
// listed in Unknown.
func FromFiles(files []*File) Collection {
	var c Collection
	withRuleIDs := map[string]bool{}
	attached := map[string]bool{}
	lists := map[string]prefixList{}
	interfaces := false
	var (
		reach      reachability
		tables     *routeTables
		staleFiles bool
	)
	for _, f := range files {
		reach.candidates = append(reach.candidates, f.candidates...)
		if f.tables != nil {
			if tables == nil {
				tables = newRouteTables()
			}
			tables.add(f.tables)
		}
		if f.stale != nil {
			staleFiles = true
			c.StaleReferences = append(c.StaleReferences, f.stale...)
		}
		c.Sources = append(c.Sources, f.Name)
		for _, r := range f.rules {
			withRuleIDs[r.GroupID] = true
		}
		for id := range f.attached {
			attached[id] = true
		}
		for id, pl := range f.lists {
			lists[id] = pl
		}
		interfaces = interfaces || f.attached != nil
	}
	// Room for every rule, at most, so that a million rules are not copied as the slice
	// grows.
	n := 0
	for _, f := range files {
		n += len(f.groupRules) + len(f.rules)
	}
	c.Rules = make([]Rule, 0, n)
	skippedList := map[string]bool{}
	addRule := func(r Rule) {
		if r.PrefixList != nil {
			ref := *r.PrefixList
			if pl, ok := lists[ref.ID]; ok {
				ref.Name, ref.Owner, ref.AWSManaged = pl.name, pl.owner, pl.awsManaged
				if pl.awsManaged {
					ref.Unresolved = ""
				}
			}
			r.PrefixList = &ref
			if ref.Unresolved != "" && !skippedList[ref.ID] {
				skippedList[ref.ID] = true
				c.Skipped = append(c.Skipped, Skipped{Account: r.Account, Resource: "prefix list " + ref.ID, Reason: ref.Unresolved})
			}
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
	// Rules files may lack GroupOwnerId: take the account from the group. Groups known
	// only from a rules file are added.
	account := map[string]string{}
	for _, g := range c.Groups {
		account[g.ID] = g.Account
	}
	for i := range c.Rules {
		r := &c.Rules[i]
		if r.Account == "" {
			r.Account = account[r.GroupID]
		}
		if !groupSeen[r.GroupID] {
			groupSeen[r.GroupID] = true
			account[r.GroupID] = r.Account
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
	reach.read, reach.routes = interfaces, tables
	if tables == nil {
		reach.unrouted = "input files hold no describe-route-tables output"
	}
	reach.apply(c.Groups, reach.decide())
	switch {
	case !interfaces:
		c.Unknown = append(c.Unknown, UnknownContext{Context: ContextReachability, Reason: "input files hold no describe-network-interfaces output"})
	case tables == nil && reach.needsRoutes():
		c.Unknown = append(c.Unknown, UnknownContext{Context: ContextReachability, Reason: "IPv6 exposure is unknown: input files hold no describe-route-tables output"})
	}
	if staleFiles {
		linkStaleRules(c.StaleReferences, c.Groups, c.Rules)
	} else {
		c.Unknown = append(c.Unknown, UnknownContext{Context: ContextStaleReferences, Reason: "input files hold no describe-stale-security-groups output"})
	}
	return c
}

// otherFormat names the format of data when it is not JSON but looks like another that
// people give by mistake: "YAML", "CSV", or the text or table output of the aws CLI. It
// returns "" when data starts as JSON does, or looks like nothing it knows. It reads the
// first two non-blank lines, within the first few kilobytes.
func otherFormat(data []byte) string {
	data = bytes.TrimLeft(bytes.TrimPrefix(data, []byte("\uFEFF")), " \t\r\n")
	if len(data) == 0 || data[0] == '{' || data[0] == '[' {
		return ""
	}
	data = data[:min(len(data), 8<<10)]
	var lines [2]string
	for n := 0; n < len(lines) && len(data) > 0; {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte("\n"))
		if l := strings.TrimSpace(string(line)); l != "" {
			lines[n] = l
			n++
		}
	}
	first, second := lines[0], lines[1]
	key, _, isKey := strings.Cut(first, ":")
	switch {
	case first == "":
		return ""
	case len(first) > 3 && strings.Trim(first, "-") == "", first[0] == '|', first[0] == '+':
		// A table opens with a line of dashes above its title.
		return "table output of the aws CLI"
	case first == "---" || strings.HasPrefix(first, "--- ") || first == "-" || strings.HasPrefix(first, "- "):
		return "YAML output of the aws CLI"
	case isKey && yamlKey(key) && (len(first) == len(key)+1 || first[len(key)+1] == ' '):
		switch key {
		case "SecurityGroups", "SecurityGroupRules", "NetworkInterfaces", "PrefixLists":
			return "YAML output of the aws CLI"
		}
		return "YAML"
	case strings.Contains(first, "\t"):
		word, _, _ := strings.Cut(first, "\t")
		if word != "" && strings.Trim(word, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == "" {
			// The text output of the aws CLI starts each line with a name in capitals:
			// SECURITYGROUPS, SECURITYGROUPRULES, IPPERMISSIONS.
			return "text output of the aws CLI"
		}
		return "tab-separated text"
	case second != "" && isCSV(first+"\n"+second+"\n"):
		return "CSV"
	}
	return ""
}

// yamlKey reports whether s is a plain YAML mapping key, as the aws CLI writes them.
func yamlKey(s string) bool {
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// isCSV reports whether text is two CSV records of the same number of fields, at least two.
func isCSV(text string) bool {
	r := csv.NewReader(strings.NewReader(text))
	head, err := r.Read()
	if err != nil || len(head) < 2 {
		return false
	}
	_, err = r.Read() // the reader insists that it has as many fields as head
	return err == nil
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
