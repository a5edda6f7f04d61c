package collector_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgvet/sgvet/collector"
)

// pagingEC2 is a small fake of the EC2 API that returns its data a few items per page with
// NextToken, as EC2 does for large estates. moto_server ignores MaxResults and answers with
// one page, so it cannot show that every page is read; this fake can. It implements only
// what collection calls.
type pagingEC2 struct {
	pageSize int
	groups   []types.SecurityGroup
	rules    []types.SecurityGroupRule
	enis     []types.NetworkInterface
	lists    []types.ManagedPrefixList
	entries  map[string][]types.PrefixListEntry
	tables   []types.RouteTable
	stale    map[string][]types.StaleSecurityGroup // by VPC

	mu    sync.Mutex
	calls map[string]int
}

// page returns items[from:from+pageSize] and the token of the next page, if any.
func page[T any](f *pagingEC2, op string, items []T, token *string) ([]T, *string) {
	f.mu.Lock()
	f.calls[op]++
	f.mu.Unlock()
	from := 0
	if token != nil {
		from, _ = strconv.Atoi(*token)
	}
	to := min(from+f.pageSize, len(items))
	var next *string
	if to < len(items) {
		next = aws.String(strconv.Itoa(to))
	}
	return items[from:to], next
}

func (f *pagingEC2) DescribeSecurityGroups(_ context.Context, in *ec2.DescribeSecurityGroupsInput, _ ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	items, next := page(f, "DescribeSecurityGroups", f.groups, in.NextToken)
	return &ec2.DescribeSecurityGroupsOutput{SecurityGroups: items, NextToken: next}, nil
}

func (f *pagingEC2) DescribeSecurityGroupRules(_ context.Context, in *ec2.DescribeSecurityGroupRulesInput, _ ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupRulesOutput, error) {
	items, next := page(f, "DescribeSecurityGroupRules", f.rules, in.NextToken)
	return &ec2.DescribeSecurityGroupRulesOutput{SecurityGroupRules: items, NextToken: next}, nil
}

func (f *pagingEC2) DescribeNetworkInterfaces(_ context.Context, in *ec2.DescribeNetworkInterfacesInput, _ ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error) {
	items, next := page(f, "DescribeNetworkInterfaces", f.enis, in.NextToken)
	return &ec2.DescribeNetworkInterfacesOutput{NetworkInterfaces: items, NextToken: next}, nil
}

func (f *pagingEC2) DescribeManagedPrefixLists(_ context.Context, in *ec2.DescribeManagedPrefixListsInput, _ ...func(*ec2.Options)) (*ec2.DescribeManagedPrefixListsOutput, error) {
	items, next := page(f, "DescribeManagedPrefixLists", f.lists, in.NextToken)
	return &ec2.DescribeManagedPrefixListsOutput{PrefixLists: items, NextToken: next}, nil
}

func (f *pagingEC2) GetManagedPrefixListEntries(_ context.Context, in *ec2.GetManagedPrefixListEntriesInput, _ ...func(*ec2.Options)) (*ec2.GetManagedPrefixListEntriesOutput, error) {
	items, next := page(f, "GetManagedPrefixListEntries", f.entries[aws.ToString(in.PrefixListId)], in.NextToken)
	return &ec2.GetManagedPrefixListEntriesOutput{Entries: items, NextToken: next}, nil
}

func (f *pagingEC2) DescribeRouteTables(_ context.Context, in *ec2.DescribeRouteTablesInput, _ ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error) {
	items, next := page(f, "DescribeRouteTables", f.tables, in.NextToken)
	return &ec2.DescribeRouteTablesOutput{RouteTables: items, NextToken: next}, nil
}

func (f *pagingEC2) DescribeStaleSecurityGroups(_ context.Context, in *ec2.DescribeStaleSecurityGroupsInput, _ ...func(*ec2.Options)) (*ec2.DescribeStaleSecurityGroupsOutput, error) {
	items, next := page(f, "DescribeStaleSecurityGroups", f.stale[aws.ToString(in.VpcId)], in.NextToken)
	return &ec2.DescribeStaleSecurityGroupsOutput{StaleSecurityGroupSet: items, NextToken: next}, nil
}

func TestCollectReadsEveryPage(t *testing.T) {
	const groups, rulesPerGroup, entries = 7, 3, 5
	f := &pagingEC2{pageSize: 2, calls: map[string]int{}, entries: map[string][]types.PrefixListEntry{}}
	f.lists = []types.ManagedPrefixList{
		{PrefixListId: aws.String("pl-aws1"), OwnerId: aws.String("AWS"), PrefixListName: aws.String("com.amazonaws.us-east-1.s3")},
		{PrefixListId: aws.String("pl-unused"), OwnerId: aws.String("111122223333"), PrefixListName: aws.String("unused")},
		{PrefixListId: aws.String("pl-office"), OwnerId: aws.String("111122223333"), PrefixListName: aws.String("office")},
	}
	for e := range entries {
		f.entries["pl-office"] = append(f.entries["pl-office"], types.PrefixListEntry{Cidr: aws.String(fmt.Sprintf("9.9.%d.9/32", e)), Description: aws.String(fmt.Sprintf("site %d", e))})
	}
	for g := range groups {
		id := fmt.Sprintf("sg-%02d", g)
		f.groups = append(f.groups, types.SecurityGroup{GroupId: aws.String(id), GroupName: aws.String("group" + strconv.Itoa(g)), VpcId: aws.String("vpc-1"), OwnerId: aws.String("111122223333")})
		for r := range rulesPerGroup {
			f.rules = append(f.rules, types.SecurityGroupRule{
				SecurityGroupRuleId: aws.String(fmt.Sprintf("sgr-%02d-%d", g, r)), GroupId: aws.String(id), GroupOwnerId: aws.String("111122223333"),
				IsEgress: aws.Bool(false), IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
				CidrIpv4: aws.String(fmt.Sprintf("8.8.%d.%d/32", g, r)),
			})
		}
		if g%2 == 0 {
			f.enis = append(f.enis, types.NetworkInterface{Groups: []types.GroupIdentifier{{GroupId: aws.String(id)}}})
		}
	}
	f.rules = append(f.rules,
		types.SecurityGroupRule{SecurityGroupRuleId: aws.String("sgr-office"), GroupId: aws.String("sg-00"), IsEgress: aws.Bool(false), IpProtocol: aws.String("-1"), PrefixListId: aws.String("pl-office")},
		types.SecurityGroupRule{SecurityGroupRuleId: aws.String("sgr-s3"), GroupId: aws.String("sg-00"), IsEgress: aws.Bool(true), IpProtocol: aws.String("-1"), PrefixListId: aws.String("pl-aws1")},
		// A list shared by another account and no longer visible.
		types.SecurityGroupRule{SecurityGroupRuleId: aws.String("sgr-gone"), GroupId: aws.String("sg-01"), IsEgress: aws.Bool(false), IpProtocol: aws.String("-1"), PrefixListId: aws.String("pl-gone")},
		// A group that was deleted.
		types.SecurityGroupRule{SecurityGroupRuleId: aws.String("sgr-deleted"), GroupId: aws.String("sg-03"), IsEgress: aws.Bool(false), IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5432), ToPort: aws.Int32(5432),
			ReferencedGroupInfo: &types.ReferencedSecurityGroup{GroupId: aws.String("sg-deleted"), UserId: aws.String("111122223333")}},
	)
	// sg-01 has an IPv6 address whose subnet's table, on the second page of tables, routes
	// ::/0 to an internet gateway.
	f.enis = append(f.enis, types.NetworkInterface{NetworkInterfaceId: aws.String("eni-v6"), SubnetId: aws.String("subnet-a"), VpcId: aws.String("vpc-1"),
		Groups: []types.GroupIdentifier{{GroupId: aws.String("sg-01")}}, Ipv6Addresses: []types.NetworkInterfaceIpv6Address{{Ipv6Address: aws.String("2600:1f18::1")}}})
	f.tables = []types.RouteTable{
		{RouteTableId: aws.String("rtb-main"), VpcId: aws.String("vpc-1"), Associations: []types.RouteTableAssociation{{Main: aws.Bool(true)}}},
		{RouteTableId: aws.String("rtb-other"), VpcId: aws.String("vpc-1")},
		{RouteTableId: aws.String("rtb-a"), VpcId: aws.String("vpc-1"), Associations: []types.RouteTableAssociation{{SubnetId: aws.String("subnet-a")}},
			Routes: []types.Route{{DestinationIpv6CidrBlock: aws.String("::/0"), GatewayId: aws.String("igw-1"), State: types.RouteStateActive}}},
	}
	// Three stale groups, two a page.
	f.stale = map[string][]types.StaleSecurityGroup{}
	for _, id := range []string{"sg-03", "sg-04", "sg-05"} {
		f.stale["vpc-1"] = append(f.stale["vpc-1"], types.StaleSecurityGroup{GroupId: aws.String(id), VpcId: aws.String("vpc-1"), StaleIpPermissions: []types.StaleIpPermission{{
			IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5432), ToPort: aws.Int32(5432), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String("sg-deleted")}},
		}}})
	}

	src := collector.AWSSource{Regions: []string{"us-east-1"}, Client: func(string) collector.EC2API { return f }}
	c, err := src.Collect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	inv := c.Inventory(time.Now(), collector.Options{})
	if len(inv.Groups) != groups {
		t.Errorf("collected %d groups, want %d", len(inv.Groups), groups)
	}
	// Every rule of every page, with the office list expanded into its entries.
	if want := groups*rulesPerGroup + entries + 3; len(inv.Rules) != want {
		t.Errorf("collected %d rules, want %d", len(inv.Rules), want)
	}
	if want := groups*rulesPerGroup + entries; countKind(inv, collector.KindAddress) != want {
		t.Errorf("public addresses = %d, want %d", countKind(inv, collector.KindAddress), want)
	}
	for _, g := range inv.Groups {
		n, _ := strconv.Atoi(g.ID[len("sg-"):])
		if want := map[bool]collector.Attachment{true: collector.Attached, false: collector.Unattached}[n%2 == 0 || n == 1]; g.Attached != want {
			t.Errorf("group %s Attached = %v, want %v (its interface is on a later page)", g.ID, g.Attached, want)
		}
		if want := g.ID == "sg-01"; g.Reachable == nil || *g.Reachable != want {
			t.Errorf("group %s Reachable = %v, want %v (the route to the internet is on a later page)", g.ID, fmtBool(g.Reachable), want)
		}
	}
	var stale []string
	for _, s := range inv.StaleReferences {
		stale = append(stale, s.GroupID+" "+s.Missing.GroupID+" "+strings.Join(s.RuleIDs, ","))
	}
	if want := []string{"sg-03 sg-deleted sgr-deleted", "sg-04 sg-deleted ", "sg-05 sg-deleted "}; !slices.Equal(stale, want) {
		t.Errorf("StaleReferences = %q, want %q (the last is on a later page)", stale, want)
	}
	if len(inv.Skipped) != 1 || inv.Skipped[0].Resource != "prefix list pl-gone" || inv.Skipped[0].Region != "us-east-1" {
		t.Errorf("Skipped = %+v, want the invisible prefix list pl-gone", inv.Skipped)
	}
	wantCalls := map[string]int{
		"DescribeSecurityGroups":      4,  // 7 groups, 2 a page
		"DescribeSecurityGroupRules":  13, // 25 rules
		"DescribeNetworkInterfaces":   3,
		"DescribeManagedPrefixLists":  2,
		"GetManagedPrefixListEntries": 3,
		"DescribeRouteTables":         2,
		"DescribeStaleSecurityGroups": 2,
	}
	for op, want := range wantCalls {
		if f.calls[op] != want {
			t.Errorf("%s called %d times, want %d (one per page)", op, f.calls[op], want)
		}
	}
}

// fmtBool writes a *bool as true, false or nil.
func fmtBool(b *bool) string {
	if b == nil {
		return "nil"
	}
	return strconv.FormatBool(*b)
}

func countKind(inv *collector.Inventory, kind collector.SourceKind) int {
	n := 0
	for _, p := range inv.Public {
		if p.Kind == kind {
			n++
		}
	}
	return n
}
