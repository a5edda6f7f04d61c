package collector_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/internal/motoserver"
)

// network builds subnets, gateways and interfaces in one VPC of moto, which has an
// Amazon-provided IPv6 block.
type network struct {
	estate
	vpc  string
	ipv6 netip.Prefix // the VPC's /56
	next int          // the next /64 of it to give a subnet
}

func newNetwork(e estate) *network {
	out, err := e.api.CreateVpc(e.ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16"), AmazonProvidedIpv6CidrBlock: aws.Bool(true)})
	if err != nil {
		e.t.Fatal(err)
	}
	n := &network{estate: e, vpc: aws.ToString(out.Vpc.VpcId)}
	for _, a := range out.Vpc.Ipv6CidrBlockAssociationSet {
		n.ipv6 = netip.MustParsePrefix(aws.ToString(a.Ipv6CidrBlock))
	}
	if !n.ipv6.IsValid() {
		e.t.Fatal("moto gave the VPC no IPv6 block")
	}
	return n
}

// subnet creates a subnet with the IPv4 block cidr and, when withIPv6, the VPC's next /64.
func (n *network) subnet(cidr string, withIPv6, publicOnLaunch bool) string {
	in := &ec2.CreateSubnetInput{VpcId: aws.String(n.vpc), CidrBlock: aws.String(cidr)}
	if withIPv6 {
		b := n.ipv6.Addr().As16()
		b[7] = byte(n.next)
		n.next++
		in.Ipv6CidrBlock = aws.String(netip.PrefixFrom(netip.AddrFrom16(b), 64).String())
	}
	out, err := n.api.CreateSubnet(n.ctx, in)
	if err != nil {
		n.t.Fatal(err)
	}
	id := aws.ToString(out.Subnet.SubnetId)
	if publicOnLaunch {
		if _, err := n.api.ModifySubnetAttribute(n.ctx, &ec2.ModifySubnetAttributeInput{SubnetId: aws.String(id), MapPublicIpOnLaunch: &types.AttributeBooleanValue{Value: aws.Bool(true)}}); err != nil {
			n.t.Fatal(err)
		}
	}
	return id
}

// routeV6 gives subnet a route table of its own that routes ::/0 as route says.
func (n *network) routeV6(subnet string, route ec2.CreateRouteInput) string {
	rt, err := n.api.CreateRouteTable(n.ctx, &ec2.CreateRouteTableInput{VpcId: aws.String(n.vpc)})
	if err != nil {
		n.t.Fatal(err)
	}
	route.RouteTableId, route.DestinationIpv6CidrBlock = rt.RouteTable.RouteTableId, aws.String("::/0")
	if _, err := n.api.CreateRoute(n.ctx, &route); err != nil {
		n.t.Fatal(err)
	}
	if subnet != "" {
		if _, err := n.api.AssociateRouteTable(n.ctx, &ec2.AssociateRouteTableInput{RouteTableId: rt.RouteTable.RouteTableId, SubnetId: aws.String(subnet)}); err != nil {
			n.t.Fatal(err)
		}
	}
	return aws.ToString(rt.RouteTable.RouteTableId)
}

// mainTable returns the id of the VPC's main route table.
func (n *network) mainTable() string {
	out, err := n.api.DescribeRouteTables(n.ctx, &ec2.DescribeRouteTablesInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{n.vpc}}, {Name: aws.String("association.main"), Values: []string{"true"}},
	}})
	if err != nil || len(out.RouteTables) != 1 {
		n.t.Fatalf("main route table of %s: %v, %d tables", n.vpc, err, len(out.RouteTables))
	}
	return aws.ToString(out.RouteTables[0].RouteTableId)
}

func (n *network) internetGateway() string {
	out, err := n.api.CreateInternetGateway(n.ctx, &ec2.CreateInternetGatewayInput{})
	if err != nil {
		n.t.Fatal(err)
	}
	id := aws.ToString(out.InternetGateway.InternetGatewayId)
	if _, err := n.api.AttachInternetGateway(n.ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: aws.String(id), VpcId: aws.String(n.vpc)}); err != nil {
		n.t.Fatal(err)
	}
	return id
}

func (n *network) egressOnlyGateway() string {
	out, err := n.api.CreateEgressOnlyInternetGateway(n.ctx, &ec2.CreateEgressOnlyInternetGatewayInput{VpcId: aws.String(n.vpc)})
	if err != nil {
		n.t.Fatal(err)
	}
	return aws.ToString(out.EgressOnlyInternetGateway.EgressOnlyInternetGatewayId)
}

// instance launches an instance in subnet with groups and returns its id, its primary
// interface and its public IPv4 address, if it has one.
func (n *network) instance(subnet string, groups ...string) (id, eni string, public netip.Addr) {
	out, err := n.api.RunInstances(n.ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-12345678"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		SubnetId: aws.String(subnet), SecurityGroupIds: groups})
	if err != nil {
		n.t.Fatal(err)
	}
	inst := out.Instances[0]
	id = aws.ToString(inst.InstanceId)
	desc, err := n.api.DescribeInstances(n.ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		n.t.Fatal(err)
	}
	inst = desc.Reservations[0].Instances[0]
	if s := aws.ToString(inst.PublicIpAddress); s != "" {
		public = netip.MustParseAddr(s)
	}
	return id, aws.ToString(inst.NetworkInterfaces[0].NetworkInterfaceId), public
}

// iface creates an interface attached to nothing in subnet with groups and, when ipv6,
// one IPv6 address; it returns the interface's id and its IPv6 address.
func (n *network) iface(subnet string, ipv6 bool, groups ...string) (string, netip.Addr) {
	in := &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(subnet), Groups: groups}
	if ipv6 {
		in.Ipv6AddressCount = aws.Int32(1)
	}
	out, err := n.api.CreateNetworkInterface(n.ctx, in)
	if err != nil {
		n.t.Fatal(err)
	}
	var addr netip.Addr
	if ipv6 {
		addr = netip.MustParseAddr(aws.ToString(out.NetworkInterface.Ipv6Addresses[0].Ipv6Address))
	}
	return aws.ToString(out.NetworkInterface.NetworkInterfaceId), addr
}

// elasticIP allocates an Elastic IP and associates it with eni.
func (n *network) elasticIP(eni string) (netip.Addr, string) {
	out, err := n.api.AllocateAddress(n.ctx, &ec2.AllocateAddressInput{Domain: types.DomainTypeVpc})
	if err != nil {
		n.t.Fatal(err)
	}
	if _, err := n.api.AssociateAddress(n.ctx, &ec2.AssociateAddressInput{AllocationId: out.AllocationId, NetworkInterfaceId: aws.String(eni)}); err != nil {
		n.t.Fatal(err)
	}
	return netip.MustParseAddr(aws.ToString(out.PublicIp)), aws.ToString(out.AllocationId)
}

// withLoadBalancers adds load balancers' interfaces to what moto answers to
// DescribeNetworkInterfaces, on its last page. moto's elbv2 CreateLoadBalancer makes no
// network interfaces, so this wrapper stands in for them, shaped as Elastic Load Balancing
// makes an Application Load Balancer's: InterfaceType "interface", RequesterId
// "amazon-elb", the description "ELB app/NAME/ID", and a public IPv4 address for an
// internet-facing load balancer only. Every other call goes to moto.
type withLoadBalancers struct {
	*ec2.Client
	enis []types.NetworkInterface
}

func (w withLoadBalancers) DescribeNetworkInterfaces(ctx context.Context, in *ec2.DescribeNetworkInterfacesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error) {
	out, err := w.Client.DescribeNetworkInterfaces(ctx, in, optFns...)
	if err == nil && out.NextToken == nil {
		out.NetworkInterfaces = append(out.NetworkInterfaces, w.enis...)
	}
	return out, err
}

func loadBalancerInterface(id, name, subnet, vpc, group, publicIP string) types.NetworkInterface {
	eni := types.NetworkInterface{
		NetworkInterfaceId: aws.String(id), InterfaceType: types.NetworkInterfaceTypeInterface, RequesterId: aws.String("amazon-elb"), RequesterManaged: aws.Bool(true),
		Description: aws.String("ELB app/" + name + "/50dc6c495c0c9188"), SubnetId: aws.String(subnet), VpcId: aws.String(vpc), Status: types.NetworkInterfaceStatusInUse,
		Groups: []types.GroupIdentifier{{GroupId: aws.String(group)}}, PrivateIpAddress: aws.String("10.0.1.200"),
	}
	if publicIP != "" {
		eni.Association = &types.NetworkInterfaceAssociation{PublicIp: aws.String(publicIP), IpOwnerId: aws.String("amazon")}
	}
	return eni
}

// reachabilityByName returns describeReach of each group of vpc but its default group, by
// group name.
func reachabilityByName(inv *collector.Inventory, vpc string) map[string]string {
	out := map[string]string{}
	for _, g := range inv.Groups {
		if g.VPC != vpc || g.Name == "default" {
			continue
		}
		out[g.Name] = describeReach(g)
	}
	return out
}

// describeReach writes g's Reachable as "true", "false" or "unknown", with its evidence.
func describeReach(g collector.Group) string {
	s := "unknown"
	if g.Reachable != nil {
		s = fmt.Sprint(*g.Reachable)
	}
	for _, ref := range g.Exposure {
		s += fmt.Sprintf("; %s %s instance=%s lb=%s public=%s eip=%s ipv6=%s: %s", ref.ID, ref.Kind, ref.InstanceID, ref.LoadBalancer, addrOrNone(ref.PublicIP), ref.AllocationID, addrOrNone(ref.IPv6), ref.Reason)
	}
	if g.Exposed != len(g.Exposure) {
		s += fmt.Sprintf(" (%d in all)", g.Exposed)
	}
	return s
}

func addrOrNone(a netip.Addr) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}

func TestCollectReachability(t *testing.T) {
	srv := motoserver.Require(t, moto)
	ctx := t.Context()
	api := ec2.NewFromConfig(srv.AWSConfig(t, "us-east-1"))
	n := newNetwork(estate{t, ctx, api})
	igw := n.internetGateway()
	eigw := n.egressOnlyGateway()

	public := n.subnet("10.0.1.0/24", false, true)
	private := n.subnet("10.0.2.0/24", false, false)
	v6Routed := n.subnet("10.0.3.0/24", true, false)
	v6EgressOnly := n.subnet("10.0.4.0/24", true, false)
	v6Main := n.subnet("10.0.5.0/24", true, false) // no table of its own: the main one
	routed := n.routeV6(v6Routed, ec2.CreateRouteInput{GatewayId: aws.String(igw)})
	n.routeV6(v6EgressOnly, ec2.CreateRouteInput{EgressOnlyInternetGatewayId: aws.String(eigw)})
	main := n.mainTable()
	if _, err := api.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: aws.String(main), DestinationIpv6CidrBlock: aws.String("::/0"), GatewayId: aws.String(igw)}); err != nil {
		t.Fatal(err)
	}

	group := func(name string) string { return n.group(n.vpc, name) }
	web, internal, eip, v6, v6out, v6main, lb, lbInternal, _ := group("web"), group("internal"), group("eip"), group("v6"), group("v6-egress-only"), group("v6-main"), group("lb"), group("lb-internal"), group("empty")

	// web: one instance with a public address, one without, behind the same group.
	webPublic, webPublicENI, webIP := n.instance(public, web)
	n.instance(private, web)
	if !webIP.IsValid() {
		t.Fatal("moto gave the instance in a subnet that maps public addresses on launch no public address")
	}
	// internal: instances without public addresses only.
	n.instance(private, internal)
	n.instance(private, internal)
	// eip: an interface attached to nothing, with an Elastic IP.
	eipENI, _ := n.iface(private, false, eip)
	eipIP, alloc := n.elasticIP(eipENI)
	// IPv6 addresses in subnets routed to the internet gateway, to an egress-only
	// gateway, and through the main table to the internet gateway.
	v6ENI, v6Addr := n.iface(v6Routed, true, v6)
	n.iface(v6EgressOnly, true, v6out)
	v6mainENI, v6mainAddr := n.iface(v6Main, true, v6main)

	client := withLoadBalancers{Client: api, enis: []types.NetworkInterface{
		loadBalancerInterface("eni-0a1b2c3d4e5f60001", "web", public, n.vpc, lb, "3.5.6.7"),
		loadBalancerInterface("eni-0a1b2c3d4e5f60002", "web", private, n.vpc, lb, "3.5.6.8"),
		loadBalancerInterface("eni-0a1b2c3d4e5f60003", "internal", private, n.vpc, lbInternal, ""),
	}}
	src := collector.AWSSource{Account: "123456789012", Regions: []string{"us-east-1"}, Client: func(string) collector.EC2API { return client }}
	c, err := src.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inv := c.Inventory(time.Now(), collector.Options{})

	want := map[string]string{
		"web":            fmt.Sprintf("true; %s instance instance=%s lb= public=%s eip= ipv6=-: public IPv4 address %s", webPublicENI, webPublic, webIP, webIP),
		"internal":       "false",
		"eip":            fmt.Sprintf("true; %s interface instance= lb= public=%s eip=%s ipv6=-: Elastic IP %s (%s)", eipENI, eipIP, alloc, eipIP, alloc),
		"v6":             fmt.Sprintf("true; %s interface instance= lb= public=- eip= ipv6=%s: IPv6 address %s in subnet %s, whose route table %s routes ::/0 to %s", v6ENI, v6Addr, v6Addr, v6Routed, routed, igw),
		"v6-egress-only": "false",
		"v6-main":        fmt.Sprintf("true; %s interface instance= lb= public=- eip= ipv6=%s: IPv6 address %s in subnet %s, whose route table %s routes ::/0 to %s", v6mainENI, v6mainAddr, v6mainAddr, v6Main, main, igw),
		"lb": "true; eni-0a1b2c3d4e5f60001 load-balancer instance= lb=app/web/50dc6c495c0c9188 public=3.5.6.7 eip= ipv6=-: public IPv4 address 3.5.6.7" +
			"; eni-0a1b2c3d4e5f60002 load-balancer instance= lb=app/web/50dc6c495c0c9188 public=3.5.6.8 eip= ipv6=-: public IPv4 address 3.5.6.8",
		"lb-internal": "false",
		"empty":       "false",
	}
	got := reachabilityByName(inv, n.vpc)
	for name, w := range want {
		if got[name] != w {
			t.Errorf("group %s: reachable %s\nwant %s", name, got[name], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("groups of the VPC: %q, want %d", got, len(want))
	}
	if len(inv.Unknown) != 0 || len(inv.Skipped) != 0 {
		t.Errorf("Unknown = %+v, Skipped = %+v; want none", inv.Unknown, inv.Skipped)
	}

	// The inventory says reachable true or false for every group.
	for id, r := range reachableJSON(t, inv) {
		if r != "true" && r != "false" {
			t.Errorf("inventory group %s: reachable = %q, want true or false", id, r)
		}
	}
}

// reachableJSON returns the JSON of each group's "reachable" in the inventory's JSON, by
// group id; "absent" when there is none.
func reachableJSON(t *testing.T, inv *collector.Inventory) map[string]string {
	t.Helper()
	data, err := json.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	var decoded struct {
		Groups []map[string]json.RawMessage `json:"groups"`
	}
	if err := json.Unmarshal(data, &decoded); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, g := range decoded.Groups {
		var id string
		if err := json.Unmarshal(g["id"], &id); err != nil {
			t.Fatal(err)
		}
		out[id] = "absent"
		if r, ok := g["reachable"]; ok {
			out[id] = string(r)
		}
	}
	return out
}

// refusing answers the calls named in denied with UnauthorizedOperation, as EC2 does when
// the policy does not allow them, and passes the others to moto. moto allows every call,
// so this wrapper stands in for the refusal.
type refusing struct {
	collector.EC2API
	denied map[string]bool
}

func (r refusing) refuse(op string) error {
	if !r.denied[op] {
		return nil
	}
	return &smithy.OperationError{ServiceID: "EC2", OperationName: op,
		Err: &smithy.GenericAPIError{Code: "UnauthorizedOperation", Message: "You are not authorized to perform this operation."}}
}

func (r refusing) DescribeRouteTables(ctx context.Context, in *ec2.DescribeRouteTablesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeRouteTablesOutput, error) {
	if err := r.refuse("DescribeRouteTables"); err != nil {
		return nil, err
	}
	return r.EC2API.DescribeRouteTables(ctx, in, optFns...)
}

func (r refusing) DescribeStaleSecurityGroups(ctx context.Context, in *ec2.DescribeStaleSecurityGroupsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeStaleSecurityGroupsOutput, error) {
	if err := r.refuse("DescribeStaleSecurityGroups"); err != nil {
		return nil, err
	}
	return r.EC2API.DescribeStaleSecurityGroups(ctx, in, optFns...)
}

// TestCollectRefusedContext refuses the route tables and the stale groups: the region is
// collected, IPv6-only exposure and stale references are unknown and recorded, and a
// public IPv4 address still decides.
func TestCollectRefusedContext(t *testing.T) {
	srv := motoserver.Require(t, moto)
	ctx := t.Context()
	api := ec2.NewFromConfig(srv.AWSConfig(t, "us-east-1"))
	n := newNetwork(estate{t, ctx, api})
	igw := n.internetGateway()
	public := n.subnet("10.0.1.0/24", false, true)
	v6Routed := n.subnet("10.0.3.0/24", true, false)
	n.routeV6(v6Routed, ec2.CreateRouteInput{GatewayId: aws.String(igw)})

	v6, mixed, gone, db := n.group(n.vpc, "v6"), n.group(n.vpc, "mixed"), n.group(n.vpc, "gone"), n.group(n.vpc, "db")
	v6ENI, v6Addr := n.iface(v6Routed, true, v6)
	n.iface(v6Routed, true, mixed)
	mixedID, mixedENI, mixedIP := n.instance(public, mixed)
	// db's rule references a group that is then deleted: its VPC is asked for stale groups.
	n.ingress(db, types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5432), ToPort: aws.Int32(5432), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(gone)}}})
	if _, err := api.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(gone)}); err != nil {
		t.Fatal(err)
	}

	client := refusing{EC2API: api, denied: map[string]bool{"DescribeRouteTables": true, "DescribeStaleSecurityGroups": true}}
	src := collector.AWSSource{Account: "123456789012", Regions: []string{"us-east-1"}, Client: func(string) collector.EC2API { return client }}
	c, err := src.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inv := c.Inventory(time.Now(), collector.Options{})
	if !slices.Equal(inv.Regions, []string{"us-east-1"}) || len(inv.Skipped) != 0 {
		t.Errorf("Regions = %v, Skipped = %+v; want us-east-1 collected, nothing skipped", inv.Regions, inv.Skipped)
	}
	const refused = "UnauthorizedOperation: You are not authorized to perform this operation."
	wantUnknown := []collector.UnknownContext{
		{Account: "123456789012", Region: "us-east-1", Context: collector.ContextReachability,
			Reason: "IPv6 exposure is unknown: the route tables could not be read (DescribeRouteTables: " + refused + ")"},
		{Account: "123456789012", Region: "us-east-1", Context: collector.ContextStaleReferences,
			Reason: "stale references of " + n.vpc + " and of any VPC not yet read are unknown: DescribeStaleSecurityGroups: " + refused},
	}
	if !slices.Equal(inv.Unknown, wantUnknown) {
		t.Errorf("Unknown =\n  %+v\nwant\n  %+v", inv.Unknown, wantUnknown)
	}
	if len(inv.StaleReferences) != 0 {
		t.Errorf("StaleReferences = %+v, want none", inv.StaleReferences)
	}
	want := map[string]string{
		"v6": fmt.Sprintf("unknown; %s interface instance= lb= public=- eip= ipv6=%s: IPv6 address %s in subnet %s; the route tables could not be read (DescribeRouteTables: %s)",
			v6ENI, v6Addr, v6Addr, v6Routed, refused),
		"mixed": fmt.Sprintf("true; %s instance instance=%s lb= public=%s eip= ipv6=-: public IPv4 address %s", mixedENI, mixedID, mixedIP, mixedIP),
		"db":    "false",
	}
	got := reachabilityByName(inv, n.vpc)
	for name, w := range want {
		if got[name] != w {
			t.Errorf("group %s: reachable %s\nwant %s", name, got[name], w)
		}
	}

	if r := reachableJSON(t, inv)[v6]; r != "null" {
		t.Errorf("inventory group v6: reachable = %s, want null", r)
	}
}

func (r refusing) DescribeNetworkInterfaces(ctx context.Context, in *ec2.DescribeNetworkInterfacesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeNetworkInterfacesOutput, error) {
	if err := r.refuse("DescribeNetworkInterfaces"); err != nil {
		return nil, err
	}
	return r.EC2API.DescribeNetworkInterfaces(ctx, in, optFns...)
}

// TestCollectRefusedInterfaces refuses the network interfaces: the region is collected,
// with every group's attachment and reachability unknown, and that is recorded.
func TestCollectRefusedInterfaces(t *testing.T) {
	srv := motoserver.Require(t, moto)
	ctx := t.Context()
	api := ec2.NewFromConfig(srv.AWSConfig(t, "us-east-1"))
	n := newNetwork(estate{t, ctx, api})
	public := n.subnet("10.0.1.0/24", false, true)
	web := n.group(n.vpc, "web")
	n.instance(public, web)

	client := refusing{EC2API: api, denied: map[string]bool{"DescribeNetworkInterfaces": true}}
	src := collector.AWSSource{Account: "123456789012", Regions: []string{"us-east-1"}, Client: func(string) collector.EC2API { return client }}
	c, err := src.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inv := c.Inventory(time.Now(), collector.Options{})
	if !slices.Equal(inv.Regions, []string{"us-east-1"}) || len(inv.Skipped) != 0 {
		t.Errorf("Regions = %v, Skipped = %+v; want us-east-1 collected, nothing skipped", inv.Regions, inv.Skipped)
	}
	want := []collector.UnknownContext{{Account: "123456789012", Region: "us-east-1", Context: collector.ContextReachability,
		Reason: "attachment and reachability are unknown: the network interfaces could not be read (DescribeNetworkInterfaces: UnauthorizedOperation: You are not authorized to perform this operation.)"}}
	if !slices.Equal(inv.Unknown, want) {
		t.Errorf("Unknown =\n  %+v\nwant\n  %+v", inv.Unknown, want)
	}
	if len(inv.Groups) == 0 {
		t.Fatal("no groups collected")
	}
	for _, g := range inv.Groups {
		if g.Attached != collector.AttachmentUnknown || g.Reachable != nil || len(g.Exposure) != 0 {
			t.Errorf("group %s (%s): Attached %v, Reachable %s, Exposure %v; want unknown, unknown, none", g.ID, g.Name, g.Attached, fmtBool(g.Reachable), g.Exposure)
		}
	}
}

// staleTable answers DescribeStaleSecurityGroups from a table by VPC, one group a page, and
// passes every other call to moto, which does not implement DescribeStaleSecurityGroups.
// The table holds what EC2 answers for the estate the test builds in moto.
type staleTable struct {
	collector.EC2API
	stale map[string][]types.StaleSecurityGroup

	mu    sync.Mutex
	asked []string // VPCs, once per page
}

func (s *staleTable) DescribeStaleSecurityGroups(_ context.Context, in *ec2.DescribeStaleSecurityGroupsInput, _ ...func(*ec2.Options)) (*ec2.DescribeStaleSecurityGroupsOutput, error) {
	vpc := aws.ToString(in.VpcId)
	s.mu.Lock()
	s.asked = append(s.asked, vpc)
	s.mu.Unlock()
	if vpc == "" {
		return nil, &smithy.GenericAPIError{Code: "MissingParameter", Message: "The request must contain the parameter vpcId"}
	}
	set := s.stale[vpc]
	from := 0
	if in.NextToken != nil {
		from, _ = strconv.Atoi(*in.NextToken)
	}
	out := &ec2.DescribeStaleSecurityGroupsOutput{}
	if from < len(set) {
		out.StaleSecurityGroupSet = set[from : from+1]
	}
	if from+1 < len(set) {
		out.NextToken = aws.String(strconv.Itoa(from + 1))
	}
	return out, nil
}

func TestCollectStaleReferences(t *testing.T) {
	srv := motoserver.Require(t, moto)
	ctx := t.Context()
	api := ec2.NewFromConfig(srv.AWSConfig(t, "us-east-1"))
	e := estate{t, ctx, api}
	vpc, peer, quiet := e.vpc("10.0.0.0/16"), e.vpc("10.1.0.0/16"), e.vpc("10.2.0.0/16")
	app, db, cache := e.group(vpc, "app"), e.group(vpc, "db"), e.group(vpc, "cache")
	remote := e.group(peer, "remote")
	a, b := e.group(quiet, "a"), e.group(quiet, "b")
	// db takes 5432 from app, which is deleted, and sends 443 to a group of the peer VPC,
	// which is deleted too; cache takes 6379 from db, which exists; in the quiet VPC, b
	// takes 22 from a.
	e.ingress(db, types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5432), ToPort: aws.Int32(5432), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(app)}}})
	e.egress(db, types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(remote)}}})
	e.ingress(cache, types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(6379), ToPort: aws.Int32(6379), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(db)}}})
	e.ingress(b, types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(a)}}})
	for _, g := range []string{app, remote} {
		if _, err := api.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(g)}); err != nil {
			t.Fatal(err)
		}
	}
	ruleID := func(group string, egress bool) string {
		out, err := api.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{Filters: []types.Filter{{Name: aws.String("group-id"), Values: []string{group}}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out.SecurityGroupRules {
			if r.ReferencedGroupInfo != nil && aws.ToBool(r.IsEgress) == egress {
				return aws.ToString(r.SecurityGroupRuleId)
			}
		}
		t.Fatalf("group %s has no rule referencing a group (egress %v)", group, egress)
		return ""
	}
	fromApp, toRemote := ruleID(db, false), ruleID(db, true)

	// What EC2 reports for the VPC: both of db's rules, one stale group with two
	// directions; and a group of the peer VPC's own that is stale too, on a second page.
	client := &staleTable{EC2API: api, stale: map[string][]types.StaleSecurityGroup{vpc: {
		{GroupId: aws.String(db), GroupName: aws.String("db"), VpcId: aws.String(vpc),
			StaleIpPermissions: []types.StaleIpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5432), ToPort: aws.Int32(5432),
				UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(app), UserId: aws.String("123456789012"), VpcId: aws.String(vpc)}}}},
			StaleIpPermissionsEgress: []types.StaleIpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443),
				UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(remote), UserId: aws.String("210987654321"), VpcId: aws.String(peer),
					VpcPeeringConnectionId: aws.String("pcx-0a1b2c3d"), PeeringStatus: aws.String("deleted")}}}},
		},
		{GroupId: aws.String("sg-0other"), GroupName: aws.String("other"), VpcId: aws.String(vpc),
			StaleIpPermissions: []types.StaleIpPermission{{IpProtocol: aws.String("-1"),
				UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String("sg-0gone"), UserId: aws.String("123456789012")}}}}},
	}}}
	src := collector.AWSSource{Account: "123456789012", Regions: []string{"us-east-1"}, Client: func(string) collector.EC2API { return client }}
	c, err := src.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inv := c.Inventory(time.Now(), collector.Options{})

	// Only the VPC whose rules name a group it does not hold is asked, once per page.
	if want := []string{vpc, vpc}; !slices.Equal(client.asked, want) {
		t.Errorf("DescribeStaleSecurityGroups asked for %v, want %v (not %s, %s or the default VPC)", client.asked, want, peer, quiet)
	}
	if len(inv.Unknown) != 0 {
		t.Errorf("Unknown = %+v, want none", inv.Unknown)
	}
	base := collector.StaleReference{Account: "123456789012", Region: "us-east-1", VPC: vpc, GroupID: db, GroupName: "db", Protocol: "tcp"}
	fromAppRef, toRemoteRef := base, base
	fromAppRef.Direction, fromAppRef.FromPort, fromAppRef.ToPort = collector.Ingress, 5432, 5432
	fromAppRef.Missing = collector.GroupRef{GroupID: app, Account: "123456789012", VPC: vpc}
	fromAppRef.RuleIDs = []string{fromApp}
	toRemoteRef.Direction, toRemoteRef.FromPort, toRemoteRef.ToPort = collector.Egress, 443, 443
	toRemoteRef.Missing = collector.GroupRef{GroupID: remote, Account: "210987654321", VPC: peer, PeeringID: "pcx-0a1b2c3d", PeeringStatus: "deleted"}
	toRemoteRef.RuleIDs = []string{toRemote}
	other := collector.StaleReference{Account: "123456789012", Region: "us-east-1", VPC: vpc, GroupID: "sg-0other", GroupName: "other", Direction: collector.Ingress,
		Protocol: "all", FromPort: -1, ToPort: -1, Missing: collector.GroupRef{GroupID: "sg-0gone", Account: "123456789012"}}
	want := []collector.StaleReference{fromAppRef, toRemoteRef, other}
	// In the inventory's order: by group, egress before ingress.
	slices.SortFunc(want, func(a, b collector.StaleReference) int {
		return cmp.Or(strings.Compare(a.GroupID, b.GroupID), strings.Compare(string(a.Direction), string(b.Direction)))
	})
	if len(inv.StaleReferences) != len(want) {
		t.Fatalf("StaleReferences =\n  %+v\nwant\n  %+v", inv.StaleReferences, want)
	}
	for i := range want {
		g, w := inv.StaleReferences[i], want[i]
		if fmt.Sprintf("%+v", g) != fmt.Sprintf("%+v", w) {
			t.Errorf("StaleReferences[%d] =\n  %+v\nwant\n  %+v", i, g, w)
		}
	}
}

// The aws CLI's output for a small estate: groups, interfaces, route tables and stale
// groups, as the files sgvet reads.
const (
	contextGroupsJSON = `{"SecurityGroups": [
		{"GroupId": "sg-web", "GroupName": "web", "OwnerId": "111122223333", "VpcId": "vpc-1", "IpPermissions": [], "IpPermissionsEgress": []},
		{"GroupId": "sg-v6", "GroupName": "v6", "OwnerId": "111122223333", "VpcId": "vpc-1", "IpPermissions": [], "IpPermissionsEgress": []},
		{"GroupId": "sg-db", "GroupName": "db", "OwnerId": "111122223333", "VpcId": "vpc-1", "IpPermissions": [
			{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": "sg-gone", "UserId": "111122223333"}]}],
		 "IpPermissionsEgress": []}]}`
	contextInterfacesJSON = `{"NetworkInterfaces": [
		{"NetworkInterfaceId": "eni-web", "InterfaceType": "interface", "SubnetId": "subnet-a", "VpcId": "vpc-1",
		 "Attachment": {"InstanceId": "i-web", "Status": "attached"},
		 "Association": {"PublicIp": "198.51.100.7", "IpOwnerId": "amazon"},
		 "Groups": [{"GroupId": "sg-web", "GroupName": "web"}], "Ipv6Addresses": []},
		{"NetworkInterfaceId": "eni-v6", "InterfaceType": "interface", "SubnetId": "subnet-b", "VpcId": "vpc-1",
		 "Groups": [{"GroupId": "sg-v6", "GroupName": "v6"}], "Ipv6Addresses": [{"Ipv6Address": "2600:1f18:1:2::7"}]},
		{"NetworkInterfaceId": "eni-db", "InterfaceType": "interface", "SubnetId": "subnet-a", "VpcId": "vpc-1",
		 "Groups": [{"GroupId": "sg-db", "GroupName": "db"}], "Ipv6Addresses": [{"Ipv6Address": "fd00:1::5"}]}]}`
	contextRouteTablesJSON = `{"RouteTables": [
		{"RouteTableId": "rtb-main", "VpcId": "vpc-1", "Associations": [{"Main": true, "AssociationState": {"State": "associated"}}],
		 "Routes": [{"DestinationIpv6CidrBlock": "::/0", "EgressOnlyInternetGatewayId": "eigw-1", "State": "active"}]},
		{"RouteTableId": "rtb-b", "VpcId": "vpc-1", "Associations": [{"Main": false, "SubnetId": "subnet-b", "AssociationState": {"State": "associated"}}],
		 "Routes": [{"DestinationIpv6CidrBlock": "2000::/3", "GatewayId": "igw-1", "State": "active"}]}]}`
	contextStaleJSON = `{"StaleSecurityGroupSet": [
		{"GroupId": "sg-db", "GroupName": "db", "VpcId": "vpc-1", "StaleIpPermissions": [
			{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": "sg-gone", "UserId": "111122223333"}]}],
		 "StaleIpPermissionsEgress": []}]}`
)

// TestFromFilesContext reads reachability and stale references from the aws CLI's output:
// a public IPv4 address decides; an IPv6 address needs the route tables; a unique local
// address is never reachable; without the files the context is unknown and listed.
func TestFromFilesContext(t *testing.T) {
	const (
		web = "true; eni-web instance instance=i-web lb= public=198.51.100.7 eip= ipv6=-: public IPv4 address 198.51.100.7"
		v6  = "true; eni-v6 interface instance= lb= public=- eip= ipv6=2600:1f18:1:2::7: IPv6 address 2600:1f18:1:2::7 in subnet subnet-b, whose route table rtb-b routes 2000::/3 to igw-1"
	)
	noRoutes := collector.UnknownContext{Context: collector.ContextReachability, Reason: "IPv6 exposure is unknown: input files hold no describe-route-tables output"}
	noInterfaces := collector.UnknownContext{Context: collector.ContextReachability, Reason: "input files hold no describe-network-interfaces output"}
	noStale := collector.UnknownContext{Context: collector.ContextStaleReferences, Reason: "input files hold no describe-stale-security-groups output"}
	tests := []struct {
		name    string
		files   []string
		want    map[string]string
		unknown []collector.UnknownContext
		stale   int
	}{
		{
			name:    "groups only",
			files:   []string{contextGroupsJSON},
			want:    map[string]string{"web": "unknown", "v6": "unknown", "db": "unknown"},
			unknown: []collector.UnknownContext{noInterfaces, noStale},
		},
		{
			name:  "interfaces without route tables",
			files: []string{contextGroupsJSON, contextInterfacesJSON},
			want: map[string]string{"web": web, "db": "false",
				"v6": "unknown; eni-v6 interface instance= lb= public=- eip= ipv6=2600:1f18:1:2::7: IPv6 address 2600:1f18:1:2::7 in subnet subnet-b; input files hold no describe-route-tables output"},
			unknown: []collector.UnknownContext{noRoutes, noStale},
		},
		{
			name:    "interfaces, route tables and stale groups",
			files:   []string{contextGroupsJSON, contextInterfacesJSON, contextRouteTablesJSON, contextStaleJSON},
			want:    map[string]string{"web": web, "v6": v6, "db": "false"},
			unknown: []collector.UnknownContext{},
			stale:   1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var files []*collector.File
			for i, data := range tt.files {
				files = append(files, parse(t, fmt.Sprintf("file%d.json", i), data))
			}
			inv := inventoryOf(t, files...)
			got := map[string]string{}
			for _, g := range inv.Groups {
				got[g.Name] = describeReach(g)
			}
			for name, w := range tt.want {
				if got[name] != w {
					t.Errorf("group %s: reachable %s\nwant %s", name, got[name], w)
				}
			}
			if !slices.Equal(inv.Unknown, tt.unknown) {
				t.Errorf("Unknown = %+v, want %+v", inv.Unknown, tt.unknown)
			}
			if len(inv.StaleReferences) != tt.stale {
				t.Fatalf("StaleReferences = %+v, want %d", inv.StaleReferences, tt.stale)
			}
			if tt.stale > 0 {
				s := inv.StaleReferences[0]
				wantID := "sg-db:ingress:tcp:5432:111122223333/sg-gone"
				if s.Account != "111122223333" || s.GroupID != "sg-db" || s.Direction != collector.Ingress || s.PortRange() != "5432" || s.Missing.GroupID != "sg-gone" || !slices.Equal(s.RuleIDs, []string{wantID}) {
					t.Errorf("StaleReferences[0] = %+v, want sg-db ingress tcp 5432 from missing sg-gone of 111122223333, rule %s", s, wantID)
				}
			}
		})
	}
}

// TestExposureIsBounded attaches one group to more public interfaces than MaxExposure: the
// evidence lists the first by id, and counts them all.
func TestExposureIsBounded(t *testing.T) {
	const n = collector.MaxExposure + 3
	var enis []string
	for i := range n {
		enis = append(enis, fmt.Sprintf(`{"NetworkInterfaceId": "eni-%02d", "InterfaceType": "interface", "Association": {"PublicIp": "198.51.100.%d"}, "Groups": [{"GroupId": "sg-web"}]}`, n-1-i, i+1))
	}
	inv := inventoryOf(t, parse(t, "groups.json", contextGroupsJSON), parse(t, "enis.json", `{"NetworkInterfaces": [`+strings.Join(enis, ",")+`]}`))
	for _, g := range inv.Groups {
		if g.ID != "sg-web" {
			continue
		}
		var ids []string
		for _, ref := range g.Exposure {
			ids = append(ids, ref.ID)
		}
		want := []string{"eni-00", "eni-01", "eni-02", "eni-03", "eni-04", "eni-05", "eni-06", "eni-07", "eni-08", "eni-09"}
		if g.Reachable == nil || !*g.Reachable || !slices.Equal(ids, want) || g.Exposed != n {
			t.Errorf("group sg-web: Reachable %v, Exposure %v, Exposed %d; want true, %v, %d", fmtBool(g.Reachable), ids, g.Exposed, want, n)
		}
	}
}
