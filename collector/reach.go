package collector

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// MaxExposure is the most interfaces Group.Exposure lists.
const MaxExposure = 10

// InterfaceRef is a network interface that makes a security group reachable from the
// internet, or might: the evidence on Group.Exposure.
//
// An interface is reachable from the internet when it has a public IPv4 address or an
// Elastic IP (its Association has a PublicIp), or a global IPv6 address in a subnet whose
// route table (the one associated with the subnet, else the VPC's main table) has an
// active route to an internet gateway (igw-) for ::/0 or another public IPv6 prefix. A
// route to an egress-only internet gateway (eigw-) lets traffic out only, and does not
// count. A load balancer's interfaces are judged by the same facts: the nodes of an
// internet-facing load balancer have public IP addresses, those of an internal one only
// private addresses.
type InterfaceRef struct {
	ID string `json:"id"`
	// Kind is what the interface belongs to: "instance", "load-balancer", "nat-gateway",
	// "lambda", "vpc-endpoint", or else the interface's InterfaceType ("interface" for
	// one attached to nothing).
	Kind          string `json:"kind"`
	InterfaceType string `json:"interface_type,omitempty"`
	// RequesterID is the service that manages the interface, e.g. "amazon-elb".
	RequesterID string `json:"requester_id,omitempty"`
	InstanceID  string `json:"instance_id,omitempty"`
	// LoadBalancer is the load balancer the interface's description names, as Elastic
	// Load Balancing writes it: "app/NAME/ID", "net/NAME/ID", or a Classic Load
	// Balancer's name.
	LoadBalancer string `json:"load_balancer,omitempty"`
	// PublicIP is the interface's public IPv4 address; AllocationID is set when that
	// is an Elastic IP.
	PublicIP     netip.Addr `json:"public_ip,omitzero"`
	AllocationID string     `json:"allocation_id,omitempty"`
	// IPv6 is the global IPv6 address that decides, when the interface has no public
	// IPv4 address.
	IPv6 netip.Addr `json:"ipv6,omitzero"`
	// Reason says, in a sentence, why the interface is reachable or why that is unknown.
	Reason string `json:"reason"`
}

// reachState is how reachable an interface or a group is; a greater state decides.
type reachState int8

const (
	unreachable reachState = iota
	reachUnknown
	reachable
)

// candidate is an interface with a public IPv4 or a global IPv6 address: only those can
// make a group reachable.
type candidate struct {
	ref         InterfaceRef
	groups      []string
	subnet, vpc string
}

// reachability gathers, page by page of DescribeNetworkInterfaces, what decides whether
// the groups' interfaces can be reached from the internet, keeping only the interfaces
// that have a public address; and then the route tables of their subnets when any has an
// IPv6 address only. The zero value has read no interfaces: every group is unknown.
type reachability struct {
	// read is set once every interface has been added.
	read       bool
	candidates []candidate
	// routes are the route tables, when read; unrouted says why they were not.
	routes   *routeTables
	unrouted string
}

// add records the interfaces of one page.
func (r *reachability) add(enis []types.NetworkInterface) {
	for _, eni := range enis {
		c, ok := candidateOf(eni)
		if ok {
			r.candidates = append(r.candidates, c)
		}
	}
}

// candidateOf returns eni as a candidate, or false when it has no public address.
func candidateOf(eni types.NetworkInterface) (candidate, bool) {
	ref := InterfaceRef{
		ID:            aws.ToString(eni.NetworkInterfaceId),
		InterfaceType: string(eni.InterfaceType),
		RequesterID:   aws.ToString(eni.RequesterId),
	}
	if eni.Attachment != nil {
		ref.InstanceID = aws.ToString(eni.Attachment.InstanceId)
	}
	ref.Kind, ref.LoadBalancer = interfaceKind(eni)
	if a := eni.Association; a != nil {
		if ip, err := netip.ParseAddr(aws.ToString(a.PublicIp)); err == nil {
			ref.PublicIP = ip.Unmap()
			ref.AllocationID = aws.ToString(a.AllocationId)
			ref.Reason = "public IPv4 address " + ref.PublicIP.String()
			if ref.AllocationID != "" {
				ref.Reason = "Elastic IP " + ref.PublicIP.String() + " (" + ref.AllocationID + ")"
			}
		}
	}
	if !ref.PublicIP.IsValid() {
		ref.IPv6 = globalIPv6(eni)
		if !ref.IPv6.IsValid() {
			return candidate{}, false
		}
	}
	c := candidate{ref: ref, subnet: aws.ToString(eni.SubnetId), vpc: aws.ToString(eni.VpcId)}
	for _, g := range eni.Groups {
		c.groups = append(c.groups, aws.ToString(g.GroupId))
	}
	return c, true
}

// globalIPv6 returns the first IPv6 address of eni, or of its delegated prefixes, that is
// not in a special-purpose range (a unique local address is not reachable from the
// internet), or the zero Addr.
func globalIPv6(eni types.NetworkInterface) netip.Addr {
	for _, a := range eni.Ipv6Addresses {
		if ip, err := netip.ParseAddr(aws.ToString(a.Ipv6Address)); err == nil && ip.Is6() && !ip.Is4In6() {
			if _, special := SpecialAddr(ip); !special {
				return ip
			}
		}
	}
	for _, p := range eni.Ipv6Prefixes {
		if pfx, err := netip.ParsePrefix(aws.ToString(p.Ipv6Prefix)); err == nil && pfx.Addr().Is6() {
			if _, special := Special(pfx); !special {
				return pfx.Masked().Addr()
			}
		}
	}
	return netip.Addr{}
}

// interfaceKind says what eni belongs to, by its InterfaceType, RequesterId, attachment and
// description, and the load balancer its description names ("ELB app/NAME/ID").
func interfaceKind(eni types.NetworkInterface) (kind, loadBalancer string) {
	desc := aws.ToString(eni.Description)
	typ := string(eni.InterfaceType)
	switch {
	case strings.HasPrefix(desc, "ELB "):
		return "load-balancer", strings.TrimPrefix(desc, "ELB ")
	case typ == "load_balancer" || typ == "network_load_balancer" || typ == "gateway_load_balancer" || aws.ToString(eni.RequesterId) == "amazon-elb":
		return "load-balancer", ""
	case typ == "nat_gateway" || typ == "natGateway":
		return "nat-gateway", ""
	case typ == "lambda":
		return "lambda", ""
	case typ == "vpc_endpoint" || typ == "gateway_load_balancer_endpoint":
		return "vpc-endpoint", ""
	case eni.Attachment != nil && aws.ToString(eni.Attachment.InstanceId) != "":
		return "instance", ""
	}
	return cmp.Or(typ, "interface"), ""
}

// needsRoutes reports whether an interface has an IPv6 address and no public IPv4 one, so
// that only the route tables can say whether it is reachable.
func (r *reachability) needsRoutes() bool {
	return slices.ContainsFunc(r.candidates, func(c candidate) bool { return !c.ref.PublicIP.IsValid() })
}

// readRoutes reads the region's route tables when an interface needs them. A table that
// cannot be read (access denied, or any other error of the API) leaves IPv6 exposure
// unknown, and returns the UnknownContext to record; it returns an error only when ctx
// ends.
func (r *reachability) readRoutes(ctx context.Context, api ec2.DescribeRouteTablesAPIClient, region string) (*UnknownContext, error) {
	if !r.read || !r.needsRoutes() {
		return nil, nil
	}
	rt := newRouteTables()
	p := ec2.NewDescribeRouteTablesPaginator(api, &ec2.DescribeRouteTablesInput{MaxResults: aws.Int32(100)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			r.unrouted = "the route tables could not be read (" + DescribeError(err) + ")"
			return &UnknownContext{Region: region, Context: ContextReachability, Reason: "IPv6 exposure is unknown: " + r.unrouted}, nil
		}
		rt.add(page.RouteTables)
	}
	r.routes = rt
	return nil, nil
}

// routeTables holds, for each subnet with a table of its own and for each VPC's main
// table, the table's route to the internet, if any.
type routeTables struct {
	subnet map[string]internetRoute
	main   map[string]internetRoute
}

// internetRoute is a route table's route to an internet gateway for a public IPv6
// destination; gateway is empty when the table has none.
type internetRoute struct {
	table, destination, gateway string
}

func newRouteTables() *routeTables {
	return &routeTables{subnet: map[string]internetRoute{}, main: map[string]internetRoute{}}
}

// add records tables and their associations.
func (rt *routeTables) add(tables []types.RouteTable) {
	for _, t := range tables {
		ir := internetRouteOf(t)
		for _, a := range t.Associations {
			if a.AssociationState != nil && a.AssociationState.State != "" && a.AssociationState.State != types.RouteTableAssociationStateCodeAssociated {
				continue
			}
			if aws.ToBool(a.Main) {
				rt.main[aws.ToString(t.VpcId)] = ir
			}
			if s := aws.ToString(a.SubnetId); s != "" {
				rt.subnet[s] = ir
			}
		}
	}
}

// internetRouteOf returns t's active route to an internet gateway whose IPv6 destination
// is ::/0, or else another public prefix.
func internetRouteOf(t types.RouteTable) internetRoute {
	best := internetRoute{table: aws.ToString(t.RouteTableId)}
	for _, route := range t.Routes {
		gw := aws.ToString(route.GatewayId)
		if !strings.HasPrefix(gw, "igw-") || route.State == types.RouteStateBlackhole {
			continue
		}
		dst, err := netip.ParsePrefix(aws.ToString(route.DestinationIpv6CidrBlock))
		if err != nil || !dst.Addr().Is6() || dst.Addr().Is4In6() {
			continue
		}
		if IsWorld(dst) {
			best.destination, best.gateway = dst.String(), gw
			return best
		}
		if _, special := Special(dst); !special && best.gateway == "" {
			best.destination, best.gateway = dst.String(), gw
		}
	}
	return best
}

// judge returns how reachable c is, with its evidence.
func (r *reachability) judge(c *candidate) (reachState, InterfaceRef) {
	ref := c.ref
	if ref.PublicIP.IsValid() {
		return reachable, ref
	}
	where := "IPv6 address " + ref.IPv6.String() + " in subnet " + c.subnet
	if r.routes == nil {
		ref.Reason = where + "; " + cmp.Or(r.unrouted, "the route tables were not read")
		return reachUnknown, ref
	}
	ir, ok := r.routes.subnet[c.subnet]
	if !ok {
		ir, ok = r.routes.main[c.vpc]
	}
	switch {
	case !ok:
		ref.Reason = where + "; no route table of the subnet or of " + c.vpc + " was found"
		return reachUnknown, ref
	case ir.gateway == "":
		return unreachable, ref
	}
	ref.Reason = fmt.Sprintf("%s, whose route table %s routes %s to %s", where, ir.table, ir.destination, ir.gateway)
	return reachable, ref
}

// groupReach is what decides a group's reachability: the greatest state of its
// interfaces, with the evidence of that state.
type groupReach struct {
	state reachState
	refs  []InterfaceRef
}

// decide judges every candidate once and returns the decision for each group that a
// candidate is attached to.
func (r *reachability) decide() map[string]*groupReach {
	out := map[string]*groupReach{}
	for i := range r.candidates {
		c := &r.candidates[i]
		state, ref := r.judge(c)
		if state == unreachable {
			continue
		}
		for _, g := range c.groups {
			gr := out[g]
			if gr == nil {
				gr = &groupReach{}
				out[g] = gr
			}
			switch {
			case state > gr.state:
				gr.state, gr.refs = state, append(gr.refs[:0], ref)
			case state == gr.state:
				gr.refs = append(gr.refs, ref)
			}
		}
	}
	return out
}

// apply sets the groups' Reachable, Exposure and Exposed from decided (of decide).
func (r *reachability) apply(groups []Group, decided map[string]*groupReach) {
	for i := range groups {
		g := &groups[i]
		g.Reachable, g.Exposure, g.Exposed = nil, nil, 0
		if !r.read {
			continue
		}
		gr := decided[g.ID]
		if gr == nil {
			g.Reachable = aws.Bool(false)
			continue
		}
		if gr.state == reachable {
			g.Reachable = aws.Bool(true)
		}
		refs := slices.Clone(gr.refs)
		slices.SortFunc(refs, func(a, b InterfaceRef) int { return cmp.Compare(a.ID, b.ID) })
		refs = slices.CompactFunc(refs, func(a, b InterfaceRef) bool { return a.ID == b.ID })
		g.Exposed = len(refs)
		g.Exposure = slices.Clip(refs[:min(len(refs), MaxExposure)])
	}
}
