package collector_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
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
	if r.GroupID != "sg-web" || r.Invalid.Text != "300.1.2.3/32" || r.Invalid.Reason == "" || r.ID == "" {
		t.Errorf("invalid rule = %+v (%+v), want group sg-web, text 300.1.2.3/32, a reason and an id", r, *r.Invalid)
	}
	if len(inv.Rules) != 8 || len(inv.Public) != 4 {
		t.Errorf("%d rules and %d public sources, want the other rules all collected (8, 4)", len(inv.Rules), len(inv.Public))
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
		{"other output", `{"Vpcs": []}`, 0, 0, "no SecurityGroups, SecurityGroupRules, NetworkInterfaces or PrefixLists"},
		{"array", `[]`, 1, 1, "want collector.cliOutput, got array"},
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
// inventory that holds together: every public source names rules that exist, and the
// inventory encodes as JSON.
func FuzzParseFile(f *testing.F) {
	for _, seed := range []string{groupsJSON, rulesJSON, interfacesJSON, `{}`, `{"SecurityGroups":null}`, `[`, "{\"SecurityGroups\":[{\"GroupId\":\"sg-1\",\"IpPermissions\":[{\"IpProtocol\":\"tcp\",\"IpRanges\":[{\"CidrIp\":\"::ffff:1.2.3.0/120\"}]}]}]}"} {
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
		inv := collector.FromFiles([]*collector.File{file}).Inventory(time.Unix(0, 0), collector.Options{MaxHostsPerCIDR: 16})
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
