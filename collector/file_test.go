package collector_test

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sgvet/sgvet/collector"
)

const groupsJSON = `{
    "SecurityGroups": [
        {
            "Description": "web servers",
            "GroupName": "web",
            "IpPermissions": [
                {
                    "FromPort": 22,
                    "IpProtocol": "tcp",
                    "IpRanges": [
                        {"CidrIp": "81.2.69.142/32", "Description": "home IP alice"},
                        {"CidrIp": "10.0.0.0/8"}
                    ],
                    "Ipv6Ranges": [{"CidrIpv6": "2606:4700::1111/128", "Description": "v6 home"}],
                    "PrefixListIds": [{"PrefixListId": "pl-0abc", "Description": "office list"}],
                    "ToPort": 22,
                    "UserIdGroupPairs": [{"Description": "from lb", "GroupId": "sg-lb", "UserId": "111122223333"}]
                },
                {
                    "FromPort": 8,
                    "IpProtocol": "icmp",
                    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                    "ToPort": -1
                }
            ],
            "OwnerId": "111122223333",
            "GroupId": "sg-web",
            "IpPermissionsEgress": [
                {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}
            ],
            "VpcId": "vpc-1"
        },
        {
            "Description": "default VPC security group",
            "GroupName": "default",
            "IpPermissions": [],
            "OwnerId": "111122223333",
            "GroupId": "sg-default",
            "IpPermissionsEgress": [],
            "VpcId": "vpc-1"
        }
    ]
}`

const rulesJSON = `{
    "SecurityGroupRules": [
        {
            "SecurityGroupRuleId": "sgr-1", "GroupId": "sg-web", "GroupOwnerId": "111122223333",
            "IsEgress": false, "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
            "CidrIpv4": "81.2.69.142/32", "Description": "home IP alice", "Tags": []
        },
        {
            "SecurityGroupRuleId": "sgr-2", "GroupId": "sg-web", "GroupOwnerId": "111122223333",
            "IsEgress": true, "IpProtocol": "-1", "FromPort": -1, "ToPort": -1,
            "CidrIpv4": "0.0.0.0/0", "Tags": []
        },
        {
            "SecurityGroupRuleId": "sgr-3", "GroupId": "sg-web", "GroupOwnerId": "111122223333",
            "IsEgress": false, "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
            "ReferencedGroupInfo": {"GroupId": "sg-lb", "UserId": "444455556666"}, "Tags": []
        }
    ]
}`

const interfacesJSON = `{"NetworkInterfaces": [{"NetworkInterfaceId": "eni-1", "Groups": [{"GroupId": "sg-web", "GroupName": "web"}]}]}`

func parse(t *testing.T, name, data string) *collector.File {
	t.Helper()
	f, err := collector.ParseFile(name, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func inventoryOf(t *testing.T, files ...*collector.File) *collector.Inventory {
	t.Helper()
	return collector.FromFiles(files).Inventory(time.Unix(0, 0), collector.Options{})
}

func TestParseDescribeSecurityGroups(t *testing.T) {
	inv := inventoryOf(t, parse(t, "groups.json", groupsJSON))
	var got []string
	for _, r := range inv.Rules {
		line := strings.Join([]string{r.GroupID, r.GroupName, r.VPC, r.Account, string(r.Direction), r.Protocol, r.PortRange(), r.Target(), r.Description}, " | ")
		if r.PrefixList != nil {
			line += " | unresolved"
		}
		got = append(got, line)
	}
	want := []string{
		"sg-web | web | vpc-1 | 111122223333 | egress | all | all | 0.0.0.0/0 | ",
		"sg-web | web | vpc-1 | 111122223333 | egress | all | all | ::/0 | ",
		"sg-web | web | vpc-1 | 111122223333 | ingress | icmp | type 8 | 0.0.0.0/0 | ",
		"sg-web | web | vpc-1 | 111122223333 | ingress | tcp | 22 | 10.0.0.0/8 | ",
		"sg-web | web | vpc-1 | 111122223333 | ingress | tcp | 22 | 111122223333/sg-lb | from lb",
		"sg-web | web | vpc-1 | 111122223333 | ingress | tcp | 22 | 2606:4700::1111/128 | v6 home",
		"sg-web | web | vpc-1 | 111122223333 | ingress | tcp | 22 | 81.2.69.142/32 | home IP alice",
		"sg-web | web | vpc-1 | 111122223333 | ingress | tcp | 22 | pl-0abc | office list | unresolved",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, r := range inv.Rules {
		if r.ID == "" || r.Attached != collector.AttachmentUnknown {
			t.Errorf("rule %+v: want a made-up id and unknown attachment", r)
		}
	}
	if len(inv.Groups) != 2 {
		t.Errorf("groups = %+v, want sg-default and sg-web", inv.Groups)
	}
	if len(inv.Skipped) != 1 || !strings.Contains(inv.Skipped[0].Resource, "pl-0abc") {
		t.Errorf("skipped = %+v, want the prefix list that files cannot expand", inv.Skipped)
	}
}

func TestParseFilesJoin(t *testing.T) {
	// Rules from describe-security-group-rules replace those the groups file holds for the
	// same group (they carry rule ids); names and VPCs come from the groups file; the
	// interfaces file says which groups are attached.
	inv := inventoryOf(t, parse(t, "groups.json", groupsJSON), parse(t, "rules.json", rulesJSON), parse(t, "enis.json", interfacesJSON))
	var ids []string
	for _, r := range inv.Rules {
		ids = append(ids, r.ID)
		if r.GroupName != "web" || r.VPC != "vpc-1" || r.Attached != collector.Attached {
			t.Errorf("rule %s: group name %q, VPC %q, attached %v; want web, vpc-1, attached", r.ID, r.GroupName, r.VPC, r.Attached)
		}
	}
	if got := strings.Join(ids, ","); got != "sgr-2,sgr-1,sgr-3" {
		t.Errorf("rule ids = %s, want sgr-2,sgr-1,sgr-3 (egress first)", got)
	}
	for _, g := range inv.Groups {
		want := map[string]collector.Attachment{"sg-web": collector.Attached, "sg-default": collector.Unattached}[g.ID]
		if g.Attached != want {
			t.Errorf("group %s Attached = %v, want %v", g.ID, g.Attached, want)
		}
	}
	if len(inv.Skipped) != 0 {
		t.Errorf("skipped = %+v, want none: the rules file replaced the prefix list rule", inv.Skipped)
	}
	var ref *collector.GroupRef
	for _, r := range inv.Rules {
		if r.ReferencedGroup != nil {
			ref = r.ReferencedGroup
		}
	}
	if ref == nil || ref.GroupID != "sg-lb" || ref.Account != "444455556666" {
		t.Errorf("referenced group = %+v, want sg-lb of 444455556666", ref)
	}
}

func TestParseFileInvalidCIDR(t *testing.T) {
	data := strings.Replace(groupsJSON, `"10.0.0.0/8"`, `"300.1.2.3/32"`, 1)
	inv := inventoryOf(t, parse(t, "groups.json", data))
	invalid := inv.Invalid()
	if len(invalid) != 1 {
		t.Fatalf("Invalid() = %+v, want one rule", invalid)
	}
	r := invalid[0]
	if r.GroupID != "sg-web" || r.Invalid.Field != collector.FieldCIDR || r.Invalid.Text != "300.1.2.3/32" || r.Invalid.Reason == "" || r.ID == "" {
		t.Errorf("invalid rule = %+v (%+v), want group sg-web, field cidr, text 300.1.2.3/32, a reason and an id", r, *r.Invalid)
	}
	if len(inv.Rules) != 8 || len(inv.Public) != 4 {
		t.Errorf("%d rules and %d public sources, want the other rules all collected (8, 4)", len(inv.Rules), len(inv.Public))
	}
}

// trafficCases are protocols and port ranges as the aws CLI and the EC2 API write them
// (the JSON members of a rule), with the protocol sgvet reads and, for those it cannot
// read, the field, text and part of the reason of the Invalid it records.
var trafficCases = []struct {
	traffic  string
	protocol string // Rule.Protocol
	field    collector.RuleField
	text     string
	reason   string
}{
	{traffic: `"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535`, protocol: "tcp"},
	{traffic: `"IpProtocol": "TCP", "FromPort": 22, "ToPort": 22`, protocol: "tcp"},
	{traffic: `"IpProtocol": "6", "FromPort": 22, "ToPort": 22`, protocol: "tcp"},
	{traffic: `"IpProtocol": "17", "FromPort": 53, "ToPort": 53`, protocol: "udp"},
	{traffic: `"IpProtocol": "-1"`, protocol: "all"},
	{traffic: `"IpProtocol": "-1", "FromPort": -1, "ToPort": -1`, protocol: "all"},
	{traffic: `"IpProtocol": "all"`, protocol: "all"},
	{traffic: `"IpProtocol": "50", "FromPort": -1, "ToPort": -1`, protocol: "50"},
	{traffic: `"IpProtocol": "255"`, protocol: "255"},
	{traffic: `"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1`, protocol: "icmp"},
	{traffic: `"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1`, protocol: "icmp"},
	{traffic: `"IpProtocol": "icmpv6", "FromPort": 255, "ToPort": 255`, protocol: "icmpv6"},
	{traffic: `"IpProtocol": "58", "FromPort": 128, "ToPort": 0`, protocol: "icmpv6"},

	{traffic: `"IpProtocol": "tcp", "FromPort": 70000, "ToPort": 80`, protocol: "tcp", field: collector.FieldPorts, text: "70000-80", reason: "port 70000 is not between 0 and 65535"},
	{traffic: `"IpProtocol": "udp", "FromPort": 53, "ToPort": 65536`, protocol: "udp", field: collector.FieldPorts, text: "53-65536", reason: "port 65536"},
	{traffic: `"IpProtocol": "tcp", "FromPort": -1, "ToPort": -1`, protocol: "tcp", field: collector.FieldPorts, text: "-1", reason: "port -1 is not between 0 and 65535"},
	{traffic: `"IpProtocol": "tcp", "FromPort": 90, "ToPort": 80`, protocol: "tcp", field: collector.FieldPorts, text: "90-80", reason: "reversed: FromPort 90 is above ToPort 80"},
	{traffic: `"IpProtocol": "6", "FromPort": 0, "ToPort": 70000`, protocol: "tcp", field: collector.FieldPorts, text: "0-70000", reason: "port 70000"},
	{traffic: `"IpProtocol": "tcp"`, protocol: "tcp", field: collector.FieldPorts, text: "", reason: "a tcp rule needs both FromPort and ToPort"},
	{traffic: `"IpProtocol": "udp", "FromPort": 53`, protocol: "udp", field: collector.FieldPorts, text: "53", reason: "needs both FromPort and ToPort"},
	{traffic: `"IpProtocol": "icmp", "FromPort": 300, "ToPort": -1`, protocol: "icmp", field: collector.FieldPorts, text: "type 300 code -1", reason: "ICMP type 300 is not -1 (any) or between 0 and 255"},
	{traffic: `"IpProtocol": "icmpv6", "FromPort": 1, "ToPort": -2`, protocol: "icmpv6", field: collector.FieldPorts, text: "type 1 code -2", reason: "ICMP code -2"},
	{traffic: `"IpProtocol": "tcpx", "FromPort": 22, "ToPort": 22`, protocol: "tcpx", field: collector.FieldProtocol, text: "tcpx", reason: "not tcp, udp, icmp, icmpv6, -1 (all) or a protocol number from 0 to 255"},
	{traffic: `"IpProtocol": "256"`, protocol: "256", field: collector.FieldProtocol, text: "256", reason: "from 0 to 255"},
	{traffic: `"IpProtocol": "-2"`, protocol: "-2", field: collector.FieldProtocol, text: "-2", reason: "from 0 to 255"},
	{traffic: `"IpProtocol": ""`, protocol: "", field: collector.FieldProtocol, text: "", reason: "the rule has no IpProtocol"},
	{traffic: `"FromPort": 22, "ToPort": 22`, protocol: "", field: collector.FieldProtocol, text: "", reason: "the rule has no IpProtocol"},
}

// TestParseFileTraffic reads each protocol and port range in a file of
// describe-security-groups and in one of describe-security-group-rules, as a rule from
// 0.0.0.0/0 beside a valid rule from 8.8.8.8. A rule that cannot be read is kept, marked
// invalid with its group and rule, keeps its target, and is not public; the other rule is
// collected.
func TestParseFileTraffic(t *testing.T) {
	const other = `{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "8.8.8.8/32"}]}`
	for _, tt := range trafficCases {
		files := map[string]string{
			"describe-security-groups": `{"SecurityGroups": [{"GroupId": "sg-web", "GroupName": "web", "OwnerId": "111122223333", "VpcId": "vpc-1",
				"IpPermissions": [{` + tt.traffic + `, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, ` + other + `], "IpPermissionsEgress": []}]}`,
			"describe-security-group-rules": `{"SecurityGroupRules": [
				{"SecurityGroupRuleId": "sgr-1", "GroupId": "sg-web", "IsEgress": false, ` + tt.traffic + `, "CidrIpv4": "0.0.0.0/0"},
				{"SecurityGroupRuleId": "sgr-2", "GroupId": "sg-web", "IsEgress": false, "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIpv4": "8.8.8.8/32"}]}`,
		}
		for _, command := range []string{"describe-security-groups", "describe-security-group-rules"} {
			t.Run(command+"/"+tt.traffic, func(t *testing.T) {
				inv := inventoryOf(t, parse(t, command+".json", files[command]))
				if len(inv.Rules) != 2 {
					t.Fatalf("ParseFile(%q): %d rules, want 2", tt.traffic, len(inv.Rules))
				}
				var r collector.Rule
				for _, rule := range inv.Rules {
					if rule.CIDR.String() == "0.0.0.0/0" {
						r = rule
					}
				}
				if r.Protocol != tt.protocol || r.Target() != "0.0.0.0/0" || r.GroupID != "sg-web" || r.ID == "" {
					t.Errorf("ParseFile(%q) = rule %+v, want protocol %q, target 0.0.0.0/0, group sg-web and an id", tt.traffic, r, tt.protocol)
				}
				publics := publicKeys(inv)
				if tt.field == "" {
					if r.Invalid != nil || len(inv.Invalid()) != 0 {
						t.Errorf("ParseFile(%q) = invalid %+v, want a valid rule", tt.traffic, *r.Invalid)
					}
					if want := []string{"address 8.8.8.8", "world 0.0.0.0/0"}; !slices.Equal(publics, want) {
						t.Errorf("ParseFile(%q): public sources %q, want %q", tt.traffic, publics, want)
					}
					return
				}
				if r.Invalid == nil {
					t.Fatalf("ParseFile(%q) = valid rule %+v, want invalid %s %q", tt.traffic, r, tt.field, tt.text)
				}
				if got := *r.Invalid; got.Field != tt.field || got.Text != tt.text || !strings.Contains(got.Reason, tt.reason) {
					t.Errorf("ParseFile(%q) = invalid %+v, want %s %q because %q", tt.traffic, got, tt.field, tt.text, tt.reason)
				}
				if invalid := inv.Invalid(); len(invalid) != 1 || invalid[0].ID != r.ID {
					t.Errorf("ParseFile(%q): Invalid() = %+v, want the rule %s alone", tt.traffic, invalid, r.ID)
				}
				if r.IsPublic() {
					t.Errorf("ParseFile(%q): IsPublic() = true for an invalid rule", tt.traffic)
				}
				if want := []string{"address 8.8.8.8"}; !slices.Equal(publics, want) {
					t.Errorf("ParseFile(%q): public sources %q, want %q (not the invalid rule's)", tt.traffic, publics, want)
				}
			})
		}
	}
}

// TestInvalidRuleJSON checks how an inventory writes an invalid rule: its target, when it
// has one, and "invalid" with the field, the text as written and the reason.
func TestInvalidRuleJSON(t *testing.T) {
	tests := []struct {
		rule string // the members of a describe-security-group-rules rule
		want string
	}{
		{`"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIpv4": "300.1.2.3/32"`,
			`"invalid":{"field":"cidr","text":"300.1.2.3/32","reason":"netip.ParsePrefix(\"300.1.2.3/32\"): ParseAddr(\"300.1.2.3\"): IPv4 field has value \u003e255"}`},
		{`"IpProtocol": "tcp", "FromPort": 70000, "ToPort": 80, "CidrIpv4": "0.0.0.0/0"`,
			`"cidr":"0.0.0.0/0","invalid":{"field":"ports","text":"70000-80","reason":"port 70000 is not between 0 and 65535"}`},
		{`"IpProtocol": "tcpx", "FromPort": 22, "ToPort": 22, "CidrIpv6": "::/0"`,
			`"cidr":"::/0","invalid":{"field":"protocol","text":"tcpx","reason":"not tcp, udp, icmp, icmpv6, -1 (all) or a protocol number from 0 to 255"}`},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			inv := inventoryOf(t, parse(t, "rules.json", `{"SecurityGroupRules": [{"SecurityGroupRuleId": "sgr-1", "GroupId": "sg-1", `+tt.rule+`}]}`))
			b, err := json.Marshal(inv.Rules[0])
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), tt.want) {
				t.Errorf("json.Marshal(rule %q) = %s, want it to hold %s", tt.rule, b, tt.want)
			}
		})
	}
}

// publicKeys lists the public sources of inv as "kind address-or-prefix", sorted.
func publicKeys(inv *collector.Inventory) []string {
	var out []string
	for _, p := range inv.Public {
		switch p.Kind {
		case collector.KindAddress:
			out = append(out, "address "+p.Address.String())
		case collector.KindAWSService:
			out = append(out, "aws-service "+p.PrefixListID)
		default:
			out = append(out, string(p.Kind)+" "+p.CIDR.String())
		}
	}
	slices.Sort(out)
	return out
}

// TestParseFileInvalidTwice: a rule whose ports and CIDR are both invalid is recorded as
// an invalid CIDR, which leaves it no target but its text.
func TestParseFileInvalidTwice(t *testing.T) {
	data := `{"SecurityGroupRules": [{"SecurityGroupRuleId": "sgr-1", "GroupId": "sg-web", "IpProtocol": "tcp", "FromPort": 70000, "ToPort": 80, "CidrIpv4": "300.1.2.3/32"}]}`
	inv := inventoryOf(t, parse(t, "rules.json", data))
	invalid := inv.Invalid()
	if len(invalid) != 1 || invalid[0].Invalid.Field != collector.FieldCIDR || invalid[0].Target() != "300.1.2.3/32" {
		t.Errorf("ParseFile(%q): Invalid() = %+v, want one rule with an invalid CIDR", data, invalid)
	}
}

// TestParseFileInvalidAWSList: an AWS-managed prefix list names AWS service ranges, which
// are public; a rule naming one with ports it cannot have is not.
func TestParseFileInvalidAWSList(t *testing.T) {
	rules := `{"SecurityGroupRules": [
		{"SecurityGroupRuleId": "sgr-1", "GroupId": "sg-web", "IsEgress": true, "IpProtocol": "tcp", "FromPort": 443, "ToPort": 70000, "PrefixListId": "pl-s3"},
		{"SecurityGroupRuleId": "sgr-2", "GroupId": "sg-web", "IsEgress": true, "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "PrefixListId": "pl-ddb"}]}`
	lists := `{"PrefixLists": [{"PrefixListId": "pl-s3", "PrefixListName": "com.amazonaws.us-east-1.s3", "OwnerId": "AWS"},
		{"PrefixListId": "pl-ddb", "PrefixListName": "com.amazonaws.us-east-1.dynamodb", "OwnerId": "AWS"}]}`
	inv := inventoryOf(t, parse(t, "rules.json", rules), parse(t, "lists.json", lists))
	if len(inv.Public) != 1 || inv.Public[0].PrefixListID != "pl-ddb" {
		t.Errorf("ParseFile(%q): public sources %+v, want pl-ddb alone", rules, inv.Public)
	}
	if invalid := inv.Invalid(); len(invalid) != 1 || invalid[0].ID != "sgr-1" || invalid[0].Target() != "pl-s3" {
		t.Errorf("ParseFile(%q): Invalid() = %+v, want sgr-1 naming pl-s3", rules, invalid)
	}
}

func TestParseFileErrors(t *testing.T) {
	tests := []struct {
		name, data string
		line, col  int
		want       string
	}{
		{"empty", "  \n", 0, 0, "file is empty"},
		{"missing comma", "{\n  \"SecurityGroups\": [\n    {\"GroupId\": \"sg-1\"\n     \"GroupName\": \"x\"}\n  ]\n}", 4, 6, "invalid character '\"' after object key:value pair"},
		{"truncated", "{\"SecurityGroups\": [", 1, 20, "unexpected end of JSON input"},
		{"wrong type", "{\n\"SecurityGroups\": [{\"GroupId\": \"sg-1\", \"IpPermissions\": [{\"FromPort\": \"22\"}]}]}", 2, 74, "SecurityGroups.IpPermissions.FromPort: want int32, got string"},
		{"other output", `{"Vpcs": []}`, 0, 0, "no SecurityGroups, SecurityGroupRules, NetworkInterfaces, PrefixLists, RouteTables or StaleSecurityGroupSet"},
		{"array", `[]`, 1, 1, "want collector.cliOutput, got array"},
		{"aws CLI error", "\nAn error occurred (AuthFailure) when calling the DescribeSecurityGroups operation: AWS was not able to validate the provided access credentials, sorry\n", 2, 1, "invalid character 'A' looking for beginning of value"},
		{"JSON with a missing brace", `"SecurityGroups": []}`, 1, 17, "invalid character ':' after top-level value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := collector.ParseFile("in.json", []byte(tt.data))
			var ie *collector.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("ParseFile(%q) error = %v, want an *InputError", tt.data, err)
			}
			if ie.File != "in.json" || ie.Line != tt.line || ie.Column != tt.col || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseFile(%q) = %q at %d:%d, want %q at %d:%d", tt.data, err, ie.Line, ie.Column, tt.want, tt.line, tt.col)
			}
		})
	}
}

func TestParseFileOtherFormats(t *testing.T) {
	const fix = "; sgvet reads JSON: run the aws command with --output json"
	tests := []struct {
		data string
		want string
	}{
		// aws CLI v2 --output yaml and --output yaml-stream.
		{"SecurityGroups:\n- Description: default VPC security group\n  GroupId: sg-1\n  IpPermissions: []\n", "this looks like YAML output of the aws CLI"},
		{"\n\nSecurityGroupRules:\n- CidrIpv4: 0.0.0.0/0\n", "this looks like YAML output of the aws CLI"},
		{"- SecurityGroups:\n  - GroupId: sg-1\n", "this looks like YAML output of the aws CLI"},
		{"---\nSecurityGroups: []\n", "this looks like YAML output of the aws CLI"},
		{"--- # groups\nSecurityGroups: []\n", "this looks like YAML output of the aws CLI"},
		{"providers:\n  - abuseipdb\n", "this looks like YAML"},
		// aws CLI --output table.
		{"----------------------------------------------------\n|            DescribeSecurityGroupRules            |\n+--------------------------------------------------+\n||               SecurityGroupRules               ||\n", "this looks like table output of the aws CLI"},
		{"||  CidrIpv4            |  0.0.0.0/0              ||\n", "this looks like table output of the aws CLI"},
		{"+--------+\n", "this looks like table output of the aws CLI"},
		// aws CLI --output text.
		{"SECURITYGROUPS\tdefault VPC security group\tsg-1\tdefault\t123456789012\tvpc-1\nIPPERMISSIONSEGRESS\t-1\nIPRANGES\t0.0.0.0/0\n", "this looks like text output of the aws CLI"},
		{"SECURITYGROUPRULES\t0.0.0.0/0\t-1\tsg-1\t-1\tTrue\tsgr-1\t-1\r\n", "this looks like text output of the aws CLI"},
		{"GroupId\tCidrIp\nsg-1\t8.8.8.8/32\n", "this looks like tab-separated text"},
		// CSV, as spreadsheets and other tools write it.
		{"GroupId,GroupName,CidrIp\nsg-1,web,8.8.8.8/32\n", "this looks like CSV"},
		{"\uFEFFGroupId,Description\r\nsg-1,\"web, and api\"\r\n", "this looks like CSV"},
	}
	for _, tt := range tests {
		t.Run(tt.data, func(t *testing.T) {
			_, err := collector.ParseFile("groups.out", []byte(tt.data))
			want := "groups.out: " + tt.want + fix
			var ie *collector.InputError
			if !errors.As(err, &ie) || err.Error() != want {
				t.Errorf("ParseFile(%q) = %v, want %v", tt.data, err, want)
			}
		})
	}
}

// TestParseAWSCLIOutput reads files that the aws CLI printed from moto_server.
func TestParseAWSCLIOutput(t *testing.T) {
	dir := filepath.Join("testdata", "aws-cli")
	var files []*collector.File
	for _, name := range []string{"describe-security-groups.json", "describe-security-group-rules.json", "describe-network-interfaces.json"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		f, err := collector.ParseFile(name, data)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	inv := inventoryOf(t, files...)
	got := map[string]int{}
	for _, p := range inv.Public {
		key := string(p.Kind) + " " + p.Address.String()
		if p.Kind != collector.KindAddress {
			key = string(p.Kind) + " " + p.CIDR.String()
		}
		got[key] = len(p.Rules)
	}
	want := map[string]int{
		"address 8.8.8.8":         1,
		"address 2606:4700::1111": 1,
		"world 0.0.0.0/0":         4, // web 443 ingress, and the default egress of web, db and default
		"world ::/0":              1,
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("public %s referenced by %d rules, want %d (all: %v)", k, got[k], n, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("public sources = %v, want %v", got, want)
	}
	for _, r := range inv.Rules {
		if !strings.HasPrefix(r.ID, "sgr-") || r.GroupName == "" || r.Account != "123456789012" {
			t.Errorf("rule %+v lacks the id from the rules file, or the group name and account from the groups file", r)
		}
	}
	attached := 0
	for _, g := range inv.Groups {
		if g.Attached == collector.Attached {
			attached++
		}
	}
	if attached != 1 {
		t.Errorf("%d groups attached, want 1 (web)", attached)
	}
}

// FuzzParseFile checks that any input either fails with an *InputError or yields an
// inventory that holds together: every public source names rules that exist, no invalid
// rule is public, and the inventory encodes as JSON.
func FuzzParseFile(f *testing.F) {
	for _, seed := range []string{groupsJSON, rulesJSON, interfacesJSON, `{}`, `{"SecurityGroups":null}`, `[`, "SecurityGroups:\n- GroupId: sg-1\n", "a,b\n1,2\n", strings.Repeat("\v\n", 5000) + "x",
		`{"SecurityGroupRules":[{"GroupId":"sg-1","IpProtocol":"tcp","FromPort":70000,"ToPort":80,"CidrIpv4":"0.0.0.0/0"},{"GroupId":"sg-1","IpProtocol":"-1","PrefixListId":"pl-1"}]}`, "{\"SecurityGroups\":[{\"GroupId\":\"sg-1\",\"IpPermissions\":[{\"IpProtocol\":\"tcp\",\"IpRanges\":[{\"CidrIp\":\"::ffff:1.2.3.0/120\"}]}]}]}"} {
		f.Add([]byte(seed))
	}
	if paths, _ := filepath.Glob(filepath.Join("testdata", "aws-cli", "*.json")); len(paths) > 0 {
		for _, p := range paths {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := collector.ParseFile("fuzz.json", data)
		if err != nil {
			var ie *collector.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("ParseFile error %v is not an *InputError", err)
			}
			return
		}
		opts := collector.Options{MaxHostsPerCIDR: 16}
		inv := collector.FromFiles([]*collector.File{file}).Inventory(time.Unix(0, 0), opts)
		if p := collector.PublicSources(inv.Invalid(), opts); len(p) != 0 {
			t.Errorf("invalid rules are public sources: %+v", p)
		}
		ids := map[string]bool{}
		for _, r := range inv.Rules {
			ids[r.ID] = true
			if r.CIDR.IsValid() && r.CIDR != r.CIDR.Masked() {
				t.Errorf("rule CIDR %s is not masked", r.CIDR)
			}
		}
		for _, p := range inv.Public {
			if len(p.Rules) == 0 {
				t.Errorf("public source %+v has no rules", p)
			}
			for _, id := range p.Rules {
				if !ids[id] {
					t.Errorf("public source %+v names unknown rule %q", p, id)
				}
			}
			if p.Kind == collector.KindAddress {
				if _, special := collector.SpecialAddr(p.Address); special {
					t.Errorf("public address %s is special-purpose", p.Address)
				}
			}
		}
		if _, err := json.Marshal(inv); err != nil {
			t.Errorf("inventory does not encode: %v", err)
		}
	})
}

func TestParseFilePrefixLists(t *testing.T) {
	for _, tt := range []struct {
		owner       string
		wantService bool
	}{{"AWS", true}, {"111122223333", false}} {
		t.Run(tt.owner, func(t *testing.T) {
			lists := `{"PrefixLists": [{"PrefixListId": "pl-0abc", "AddressFamily": "IPv4", "PrefixListName": "com.amazonaws.us-east-1.s3", "OwnerId": "` + tt.owner + `"}]}`
			inv := inventoryOf(t, parse(t, "groups.json", groupsJSON), parse(t, "lists.json", lists))
			service := countKind(inv, collector.KindAWSService) == 1
			if service != tt.wantService || (len(inv.Skipped) == 0) != tt.wantService {
				t.Errorf("owner %s: AWS service source %v, skipped %+v; want service %v and skipped only otherwise", tt.owner, service, inv.Skipped, tt.wantService)
			}
			for _, r := range inv.Rules {
				if r.PrefixList != nil && (r.PrefixList.Name != "com.amazonaws.us-east-1.s3" || r.PrefixList.Owner != tt.owner) {
					t.Errorf("prefix list = %+v, want its name and owner from lists.json", *r.PrefixList)
				}
			}
		})
	}
}

// TestInventoryDropsRepeatedRules checks that of rules with one key the first is kept,
// whatever their order, and that the rest are sorted.
func TestInventoryDropsRepeatedRules(t *testing.T) {
	rule := func(id, cidr, description string) collector.Rule {
		return collector.Rule{Account: "111122223333", Region: "eu-west-1", GroupID: "sg-1", ID: id,
			Direction: collector.Ingress, Protocol: "tcp", FromPort: 22, ToPort: 22,
			CIDR: netip.MustParsePrefix(cidr), Description: description}
	}
	c := collector.Collection{
		Groups: []collector.Group{{ID: "sg-1", Account: "111122223333", Region: "eu-west-1"}},
		Rules: []collector.Rule{
			rule("sgr-2", "198.51.100.7/32", "first"),
			rule("sgr-1", "192.0.2.0/24", "kept"),
			rule("sgr-2", "198.51.100.7/32", "second"),
			rule("sgr-2", "198.51.100.8/32", "another target of sgr-2"),
			rule("sgr-1", "192.0.2.0/24", "repeated"),
		},
	}
	inv := c.Inventory(time.Unix(0, 0), collector.Options{})
	var got []string
	for _, r := range inv.Rules {
		got = append(got, r.ID+" "+r.CIDR.String()+" "+r.Description)
	}
	want := []string{"sgr-1 192.0.2.0/24 kept", "sgr-2 198.51.100.7/32 first", "sgr-2 198.51.100.8/32 another target of sgr-2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rules = %q, want %q", got, want)
	}
}

func TestLookupPrefixes(t *testing.T) {
	rule := func(cidr string) *collector.Rule {
		return &collector.Rule{Direction: collector.Ingress, Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: netip.MustParsePrefix(cidr)}
	}
	invalid := rule("41.71.171.50/32")
	invalid.Invalid = &collector.Invalid{Field: collector.FieldPorts, Text: "70000", Reason: "out of range"}
	for _, c := range []struct {
		name string
		rule *collector.Rule
		opts collector.Options
		want []string
	}{
		{"one address", rule("41.71.171.50/32"), collector.Options{}, []string{"41.71.171.50/32"}},
		{"small prefix, expanded", rule("41.71.171.48/30"), collector.Options{}, []string{"41.71.171.48/32", "41.71.171.49/32", "41.71.171.50/32", "41.71.171.51/32"}},
		{"larger than max hosts, whole", rule("41.71.171.48/29"), collector.Options{MaxHostsPerCIDR: 4}, []string{"41.71.171.48/29"}},
		{"documentation range", rule("198.51.100.4/30"), collector.Options{}, nil},
		{"IPv6", rule("2a00:1450:4001::1/128"), collector.Options{}, []string{"2a00:1450:4001::1/128"}},
		{"private", rule("10.0.0.0/30"), collector.Options{}, nil},
		{"world", rule("0.0.0.0/0"), collector.Options{}, nil},
		{"invalid", invalid, collector.Options{}, nil},
		{"no CIDR", &collector.Rule{ReferencedGroup: &collector.GroupRef{GroupID: "sg-1"}}, collector.Options{}, nil},
	} {
		var got []string
		for p := range collector.LookupPrefixes(c.rule, c.opts) {
			got = append(got, p.String())
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: LookupPrefixes(%s) = %q, want %q", c.name, c.rule.CIDR, got, c.want)
		}
	}
}
