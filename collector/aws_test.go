package collector_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/internal/motoserver"
)

var moto *motoserver.Server

func TestMain(m *testing.M) { os.Exit(motoserver.Main(m, &moto)) }

// estate builds security groups in moto through the EC2 API.
type estate struct {
	t   *testing.T
	ctx context.Context
	api *ec2.Client
}

func (e estate) vpc(cidr string) string {
	out, err := e.api.CreateVpc(e.ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(cidr)})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.Vpc.VpcId)
}

func (e estate) group(vpc, name string) string {
	out, err := e.api.CreateSecurityGroup(e.ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name), Description: aws.String(name + " servers"), VpcId: aws.String(vpc)})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.GroupId)
}

func (e estate) ingress(group string, perms ...types.IpPermission) {
	if _, err := e.api.AuthorizeSecurityGroupIngress(e.ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(group), IpPermissions: perms}); err != nil {
		e.t.Fatal(err)
	}
}

func (e estate) egress(group string, perms ...types.IpPermission) {
	if _, err := e.api.AuthorizeSecurityGroupEgress(e.ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: aws.String(group), IpPermissions: perms}); err != nil {
		e.t.Fatal(err)
	}
}

func (e estate) prefixList(name string, entries map[string]string) string {
	var in []types.AddPrefixListEntry
	for cidr, desc := range entries {
		in = append(in, types.AddPrefixListEntry{Cidr: aws.String(cidr), Description: aws.String(desc)})
	}
	out, err := e.api.CreateManagedPrefixList(e.ctx, &ec2.CreateManagedPrefixListInput{PrefixListName: aws.String(name), MaxEntries: aws.Int32(10), AddressFamily: aws.String("IPv4"), Entries: in})
	if err != nil {
		e.t.Fatal(err)
	}
	return aws.ToString(out.PrefixList.PrefixListId)
}

func (e estate) awsManagedList(name string) string {
	out, err := e.api.DescribeManagedPrefixLists(e.ctx, &ec2.DescribeManagedPrefixListsInput{})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, pl := range out.PrefixLists {
		if aws.ToString(pl.PrefixListName) == name && aws.ToString(pl.OwnerId) == "AWS" {
			return aws.ToString(pl.PrefixListId)
		}
	}
	e.t.Fatalf("moto has no AWS-managed prefix list %s", name)
	return ""
}

func (e estate) attach(vpc, cidr string, groups ...string) {
	sub, err := e.api.CreateSubnet(e.ctx, &ec2.CreateSubnetInput{VpcId: aws.String(vpc), CidrBlock: aws.String(cidr)})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.api.CreateNetworkInterface(e.ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: sub.Subnet.SubnetId, Groups: groups}); err != nil {
		e.t.Fatal(err)
	}
}

func tcp(port int32, ranges ...types.IpRange) types.IpPermission {
	return types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port), IpRanges: ranges}
}

func v4(cidr, desc string) types.IpRange {
	r := types.IpRange{CidrIp: aws.String(cidr)}
	if desc != "" {
		r.Description = aws.String(desc)
	}
	return r
}

func v6(port int32, cidr, desc string) types.IpPermission {
	r := types.Ipv6Range{CidrIpv6: aws.String(cidr)}
	if desc != "" {
		r.Description = aws.String(desc)
	}
	return types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port), Ipv6Ranges: []types.Ipv6Range{r}}
}

// describe names a rule by what it is, since moto makes up its ids.
func describe(r collector.Rule) string {
	target := r.Target()
	if r.PrefixList != nil {
		target = "pl:" + r.PrefixList.Name
	}
	return fmt.Sprintf("%s %s %s %s %s %s", r.Region, r.GroupName, r.Direction, r.Protocol, r.PortRange(), target)
}

// sources returns the inventory's public sources with the rules that reference each,
// described by describe.
func sources(inv *collector.Inventory) map[string][]string {
	byID := map[string]collector.Rule{}
	for _, r := range inv.Rules {
		byID[r.ID] = r
	}
	out := map[string][]string{}
	for _, p := range inv.Public {
		var key string
		switch p.Kind {
		case collector.KindAddress:
			key = "address " + p.Address.String()
		case collector.KindAWSService:
			key = "aws-service " + p.PrefixListName
		default:
			key = string(p.Kind) + " " + p.CIDR.String()
		}
		var rules []string
		for _, id := range p.Rules {
			r, ok := byID[id]
			if !ok {
				panic("public source names unknown rule " + id)
			}
			rules = append(rules, describe(r))
		}
		sort.Strings(rules)
		out[key] = rules
	}
	return out
}

func TestCollectAWSEstate(t *testing.T) {
	srv := motoserver.Require(t, moto)
	ctx := t.Context()
	east := estate{t, ctx, ec2.NewFromConfig(srv.AWSConfig(t, "us-east-1"))}
	west := estate{t, ctx, ec2.NewFromConfig(srv.AWSConfig(t, "eu-west-1"))}

	// us-east-1: a web tier, a database tier and a VPC's default group.
	vpc := east.vpc("10.0.0.0/16")
	web := east.group(vpc, "web")
	db := east.group(vpc, "db")
	east.ingress(web,
		tcp(443, v4("0.0.0.0/0", "public web")),
		v6(80, "::/0", ""),
		tcp(22, v4("8.8.8.8/32", "contractor bob exp 2025-06-30"), v4("10.0.0.0/8", "vpn"), v4("100.64.1.0/24", "carrier nat")),
		v6(22, "2606:4700::1111/128", ""),
		types.IpPermission{IpProtocol: aws.String("udp"), FromPort: aws.Int32(53), ToPort: aws.Int32(53), IpRanges: []types.IpRange{v4("1.1.1.0/30", "resolvers")}},
		tcp(8080, v4("52.0.0.0/16", "partner network"), v4("192.168.0.0/16", "")),
		tcp(9000, v4("169.254.169.254/32", "metadata"), v4("203.0.113.0/24", "documentation")),
	)
	east.egress(web, tcp(443, v4("185.220.101.1/32", "telemetry")))
	office := east.prefixList("office", map[string]string{"9.9.9.9/32": "resolver", "172.16.0.0/12": "private office", "8.8.4.0/31": "branch"})
	s3 := east.awsManagedList("com.amazonaws.us-east-1.s3")
	east.ingress(db, types.IpPermission{
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5432), ToPort: aws.Int32(5432),
		UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(web), Description: aws.String("from web")}},
		PrefixListIds:    []types.PrefixListId{{PrefixListId: aws.String(office)}},
	})
	east.egress(db, types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443), PrefixListIds: []types.PrefixListId{{PrefixListId: aws.String(s3)}}})
	east.attach(vpc, "10.0.1.0/24", web)

	// eu-west-1: an admin group that opens SSH to an address us-east-1 also uses.
	wvpc := west.vpc("10.1.0.0/16")
	admin := west.group(wvpc, "admin")
	west.ingress(admin, tcp(22, v4("8.8.8.8/32", "contractor bob")), v6(22, "2a00:1450::/32", "google v6"))

	src := collector.AWSSource{
		Account: "123456789012",
		Regions: []string{"us-east-1", "eu-west-1"},
		Client: func(region string) collector.EC2API {
			return ec2.NewFromConfig(srv.AWSConfig(t, region))
		},
		Concurrency: 2,
	}
	c, err := src.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inv := c.Inventory(time.Now(), collector.Options{})

	if len(inv.Skipped) != 0 {
		t.Errorf("Skipped = %v, want none", inv.Skipped)
	}
	if want := []string{"eu-west-1", "us-east-1"}; !slices.Equal(inv.Regions, want) {
		t.Errorf("Regions = %v, want %v", inv.Regions, want)
	}
	if want := []string{"123456789012"}; !slices.Equal(inv.Accounts, want) {
		t.Errorf("Accounts = %v, want %v", inv.Accounts, want)
	}

	// Every group moto made by itself (default VPCs' and our VPCs' default groups) has
	// the default egress rule to 0.0.0.0/0, as do the groups created here.
	var worldEgress []string
	for _, g := range inv.Groups {
		worldEgress = append(worldEgress, fmt.Sprintf("%s %s egress all all 0.0.0.0/0", g.Region, g.Name))
	}
	want := map[string][]string{
		"world 0.0.0.0/0":                        append(worldEgress, "us-east-1 web ingress tcp 443 0.0.0.0/0"),
		"world ::/0":                             {"us-east-1 web ingress tcp 80 ::/0"},
		"address 8.8.8.8":                        {"eu-west-1 admin ingress tcp 22 8.8.8.8/32", "us-east-1 web ingress tcp 22 8.8.8.8/32"},
		"address 2606:4700::1111":                {"us-east-1 web ingress tcp 22 2606:4700::1111/128"},
		"address 1.1.1.0":                        {"us-east-1 web ingress udp 53 1.1.1.0/30"},
		"address 1.1.1.1":                        {"us-east-1 web ingress udp 53 1.1.1.0/30"},
		"address 1.1.1.2":                        {"us-east-1 web ingress udp 53 1.1.1.0/30"},
		"address 1.1.1.3":                        {"us-east-1 web ingress udp 53 1.1.1.0/30"},
		"prefix 52.0.0.0/16":                     {"us-east-1 web ingress tcp 8080 52.0.0.0/16"},
		"prefix 2a00:1450::/32":                  {"eu-west-1 admin ingress tcp 22 2a00:1450::/32"},
		"address 185.220.101.1":                  {"us-east-1 web egress tcp 443 185.220.101.1/32"},
		"address 9.9.9.9":                        {"us-east-1 db ingress tcp 5432 pl:office"},
		"address 8.8.4.0":                        {"us-east-1 db ingress tcp 5432 pl:office"},
		"address 8.8.4.1":                        {"us-east-1 db ingress tcp 5432 pl:office"},
		"aws-service com.amazonaws.us-east-1.s3": {"us-east-1 db egress tcp 443 pl:com.amazonaws.us-east-1.s3"},
	}
	for k := range want {
		sort.Strings(want[k])
	}
	got := sources(inv)
	for k, w := range want {
		if !slices.Equal(got[k], w) {
			t.Errorf("public %s: rules\n  %q\nwant\n  %q", k, got[k], w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("public %s (rules %q) is not expected", k, got[k])
		}
	}

	// The rule's own fields, group references, prefix list entries and attachment.
	var sawRef, sawEntry, sawService bool
	for _, r := range inv.Rules {
		if r.Account != "123456789012" || r.VPC == "" || r.GroupName == "" || !strings.HasPrefix(r.ID, "sgr-") {
			t.Errorf("rule %+v lacks account, VPC, group name or sgr- id", r)
		}
		switch {
		case r.GroupID == web:
			if r.Attached != collector.Attached {
				t.Errorf("rule %s of attached group web: Attached = %v", r.ID, r.Attached)
			}
			if r.CIDR.String() == "8.8.8.8/32" && r.Description != "contractor bob exp 2025-06-30" {
				t.Errorf("rule %s: Description = %q", r.ID, r.Description)
			}
		case r.ReferencedGroup != nil:
			sawRef = true
			if r.ReferencedGroup.GroupID != web || r.ReferencedGroup.Account != "123456789012" || r.GroupID != db {
				t.Errorf("group reference = %+v in group %s, want %s of 123456789012 in %s", *r.ReferencedGroup, r.GroupID, web, db)
			}
		case r.PrefixList != nil && r.PrefixList.ID == office:
			sawEntry = true
			want := map[string]string{"9.9.9.9/32": "resolver", "172.16.0.0/12": "private office", "8.8.4.0/31": "branch"}[r.CIDR.String()]
			if r.PrefixList.EntryDescription != want || r.PrefixList.AWSManaged || r.PrefixList.Owner != "123456789012" {
				t.Errorf("prefix list entry %s = %+v, want description %q, customer-managed", r.CIDR, *r.PrefixList, want)
			}
		case r.PrefixList != nil && r.PrefixList.ID == s3:
			sawService = true
			if !r.PrefixList.AWSManaged || r.CIDR.IsValid() {
				t.Errorf("AWS-managed list rule = %+v, want AWSManaged and no CIDR", r)
			}
		}
	}
	if !sawRef || !sawEntry || !sawService {
		t.Errorf("saw group reference %v, prefix list entry %v, AWS service list %v; want all", sawRef, sawEntry, sawService)
	}
	for _, g := range inv.Groups {
		wantAttached := collector.Unattached
		if g.ID == web {
			wantAttached = collector.Attached
		}
		if g.Attached != wantAttached {
			t.Errorf("group %s (%s) Attached = %v, want %v", g.ID, g.Name, g.Attached, wantAttached)
		}
		if g.ID == admin && g.Region != "eu-west-1" {
			t.Errorf("group admin Region = %q, want eu-west-1", g.Region)
		}
	}
}

// TestCollectAWSInvalidRules collects rules whose ports or protocol the EC2 API cannot
// have, which moto accepts: each is kept, marked invalid, with its group and rule id, and
// is not public; the other rules are collected.
func TestCollectAWSInvalidRules(t *testing.T) {
	srv := motoserver.Require(t, moto)
	ctx := t.Context()
	east := estate{t, ctx, ec2.NewFromConfig(srv.AWSConfig(t, "us-east-1"))}
	vpc := east.vpc("10.0.0.0/16")
	odd := east.group(vpc, "odd")
	world := []types.IpRange{v4("0.0.0.0/0", "")}
	perm := func(protocol string, from, to int32) types.IpPermission {
		return types.IpPermission{IpProtocol: aws.String(protocol), FromPort: aws.Int32(from), ToPort: aws.Int32(to), IpRanges: world}
	}
	office := east.prefixList("office", map[string]string{"9.9.9.9/32": "resolver"})
	s3 := east.awsManagedList("com.amazonaws.us-east-1.s3")
	east.ingress(odd,
		perm("tcp", 70000, 80),
		perm("udp", 90, 80),
		perm("tcpx", 22, 22),
		perm("icmp", 300, -1),
		perm("300", 22, 22),
		tcp(22, v4("8.8.8.8/32", "valid")),
		types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5432), ToPort: aws.Int32(70000), PrefixListIds: []types.PrefixListId{{PrefixListId: aws.String(office)}}},
	)
	east.egress(odd, types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(-5), PrefixListIds: []types.PrefixListId{{PrefixListId: aws.String(s3)}}})

	src := collector.AWSSource{
		Account: "123456789012",
		Regions: []string{"us-east-1"},
		Client:  func(region string) collector.EC2API { return ec2.NewFromConfig(srv.AWSConfig(t, region)) },
	}
	c, err := src.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inv := c.Inventory(time.Now(), collector.Options{})

	var got []string
	for _, r := range inv.Invalid() {
		if r.GroupID != odd || !strings.HasPrefix(r.ID, "sgr-") || r.Invalid.Reason == "" {
			t.Errorf("invalid rule %+v: want group %s, an sgr- id and a reason", r, odd)
		}
		got = append(got, fmt.Sprintf("%s %s %s %q -> %s", r.Direction, r.Protocol, r.Invalid.Field, r.Invalid.Text, r.Target()))
	}
	slices.Sort(got)
	want := []string{
		`egress tcp ports "443--5" -> ` + s3,
		`ingress 300 protocol "300" -> 0.0.0.0/0`,
		`ingress icmp ports "type 300 code -1" -> 0.0.0.0/0`,
		`ingress tcp ports "5432-70000" -> ` + office,
		`ingress tcp ports "70000-80" -> 0.0.0.0/0`,
		`ingress tcpx protocol "tcpx" -> 0.0.0.0/0`,
		`ingress udp ports "90-80" -> 0.0.0.0/0`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("Collect: invalid rules\n  %q\nwant\n  %q", got, want)
	}

	// The group's only public source is the valid rule's address; the whole internet is
	// public through the default egress rules alone.
	var public []string
	for k, rules := range sources(inv) {
		for _, r := range rules {
			if strings.HasPrefix(r, "us-east-1 odd ") {
				public = append(public, k+": "+r)
			}
		}
	}
	slices.Sort(public)
	if want := []string{"address 8.8.8.8: us-east-1 odd ingress tcp 22 8.8.8.8/32", "world 0.0.0.0/0: us-east-1 odd egress all all 0.0.0.0/0"}; !slices.Equal(public, want) {
		t.Errorf("Collect: public sources of group odd\n  %q\nwant\n  %q", public, want)
	}
}

// refusingRegion answers every call as a region that is not enabled for the account does.
// moto serves every region, so this fake stands in for the refusal.
type refusingRegion struct{ collector.EC2API }

func (refusingRegion) err() error {
	return &smithy.OperationError{ServiceID: "EC2", OperationName: "DescribeSecurityGroups",
		Err: &smithy.GenericAPIError{Code: "OptInRequired", Message: "You are not subscribed to this service."}}
}

func (f refusingRegion) DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	return nil, f.err()
}

func (f refusingRegion) DescribeSecurityGroupRules(context.Context, *ec2.DescribeSecurityGroupRulesInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupRulesOutput, error) {
	return nil, f.err()
}

func (f refusingRegion) DescribeNetworkInterfaces(context.Context, *ec2.DescribeNetworkInterfacesInput, ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error) {
	return nil, f.err()
}

func TestCollectSkipsRefusingRegion(t *testing.T) {
	srv := motoserver.Require(t, moto)
	src := collector.AWSSource{
		Account: "123456789012",
		Regions: []string{"ap-south-2", "us-east-1", "eu-west-1"},
		Client: func(region string) collector.EC2API {
			if region == "ap-south-2" {
				return refusingRegion{}
			}
			return ec2.NewFromConfig(srv.AWSConfig(t, region))
		},
	}
	c, err := src.Collect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"us-east-1", "eu-west-1"}; !slices.Equal(c.Regions, want) {
		t.Errorf("Regions = %v, want %v", c.Regions, want)
	}
	if len(c.Skipped) != 1 || c.Skipped[0].Region != "ap-south-2" || !strings.Contains(c.Skipped[0].Reason, "OptInRequired") {
		t.Fatalf("Skipped = %+v, want ap-south-2 with OptInRequired", c.Skipped)
	}
	if len(c.Groups) == 0 {
		t.Error("no groups collected from the regions that answered")
	}
}

func TestCollectStopsWhenCancelled(t *testing.T) {
	srv := motoserver.Require(t, moto)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	src := collector.AWSSource{
		Regions: []string{"us-east-1", "eu-west-1"},
		Client:  func(region string) collector.EC2API { return ec2.NewFromConfig(srv.AWSConfig(t, region)) },
	}
	if _, err := src.Collect(ctx); err == nil {
		t.Fatal("Collect with a cancelled context succeeded; want the context's error")
	}
}

func TestEnabledRegions(t *testing.T) {
	srv := motoserver.Require(t, moto)
	regions, err := collector.EnabledRegions(t.Context(), ec2.NewFromConfig(srv.AWSConfig(t, "us-east-1")))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(regions, "us-east-1") || !slices.Contains(regions, "eu-west-1") || !slices.IsSorted(regions) {
		t.Errorf("EnabledRegions = %v, want a sorted list with us-east-1 and eu-west-1", regions)
	}
}

// sameString reports whether a and b are the same string in memory, not only equal.
func sameString(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}

func TestCollectedRulesShareTheirGroupsStrings(t *testing.T) {
	srv := motoserver.Require(t, moto)
	east := estate{t, t.Context(), ec2.NewFromConfig(srv.AWSConfig(t, "us-east-1"))}
	vpc := east.vpc("10.0.0.0/16")
	web := east.group(vpc, "web")
	east.ingress(web, tcp(443, v4("203.0.113.1/32", "a"), v4("203.0.113.2/32", "b"), v4("203.0.113.3/32", "c")))
	src := collector.AWSSource{
		Account: "123456789012",
		Regions: []string{"us-east-1"},
		Client:  func(region string) collector.EC2API { return ec2.NewFromConfig(srv.AWSConfig(t, region)) },
	}
	c, err := src.Collect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var group collector.Group
	for _, g := range c.Groups {
		if g.ID == web {
			group = g
		}
	}
	var rules []collector.Rule
	for _, r := range c.Rules {
		if r.GroupID == web && r.Direction == collector.Ingress {
			rules = append(rules, r)
		}
	}
	if group.ID == "" || len(rules) != 3 {
		t.Fatalf("collected group %q with %d ingress rules; want %s with 3", group.ID, len(rules), web)
	}
	// Each response holds its own copy of the group's id, the account and the protocol
	// for every rule; the rules keep one of each between them.
	for _, r := range rules {
		if !sameString(r.GroupID, group.ID) || !sameString(r.Account, group.Account) || !sameString(r.Protocol, rules[0].Protocol) {
			t.Errorf("rule %s holds its own copy of its group id, account or protocol (%q, %q, %q); want the group's, and one protocol for all",
				r.ID, r.GroupID, r.Account, r.Protocol)
		}
	}
}
