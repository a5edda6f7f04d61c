package collector

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"golang.org/x/sync/errgroup"
)

// StaleReference is a rule that references a security group that no longer exists, as
// DescribeStaleSecurityGroups reports it: a group that was deleted, or a group in a peer
// VPC whose peering connection (or transit gateway, or VPC association) is gone.
type StaleReference struct {
	Account   string    `json:"account,omitempty"`
	Region    string    `json:"region,omitempty"`
	VPC       string    `json:"vpc_id,omitempty"`
	GroupID   string    `json:"group_id"`
	GroupName string    `json:"group_name,omitempty"`
	Direction Direction `json:"direction"`
	// Protocol, FromPort and ToPort are as in Rule.
	Protocol string `json:"protocol"`
	FromPort int32  `json:"from_port"`
	ToPort   int32  `json:"to_port"`
	// Missing is the group the rule references, with its account, VPC and peering
	// connection where AWS reports them.
	Missing GroupRef `json:"missing_group"`
	// RuleIDs are the ids of the group's rules that reference Missing with this protocol
	// and these ports, when the rules were collected with their ids.
	RuleIDs []string `json:"rule_ids,omitempty"`
}

// PortRange returns the reference's ports as Rule.PortRange writes them.
func (s StaleReference) PortRange() string {
	return Rule{Protocol: s.Protocol, FromPort: s.FromPort, ToPort: s.ToPort}.PortRange()
}

// staleConcurrency bounds the VPCs of one region whose stale groups are read at once.
const staleConcurrency = 4

// staleVPCs returns, sorted, the VPCs in which a rule references a group that is not one of
// that VPC's groups: only there can DescribeStaleSecurityGroups find anything, since a
// rule that references an existing group of its own VPC is not stale.
func staleVPCs(groups []Group, rules []Rule) []string {
	known := make(map[[2]string]bool, len(groups))
	for _, g := range groups {
		known[[2]string{g.VPC, g.ID}] = true
	}
	vpcs := map[string]bool{}
	for i := range rules {
		r := &rules[i]
		if r.ReferencedGroup != nil && r.VPC != "" && !known[[2]string{r.VPC, r.ReferencedGroup.GroupID}] {
			vpcs[r.VPC] = true
		}
	}
	return sortedKeys(vpcs)
}

// readStale reads the stale references of each of vpcs, staleConcurrency VPCs at a time.
// When a call fails (access denied, or any other error of the API), the VPCs not yet read
// are left, the references found are kept, and the UnknownContext to record is returned.
// It returns an error only when ctx ends.
func readStale(ctx context.Context, api ec2.DescribeStaleSecurityGroupsAPIClient, region string, vpcs []string) ([]StaleReference, *UnknownContext, error) {
	var (
		mu     sync.Mutex
		refs   []StaleReference
		failed string
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(staleConcurrency)
	for _, vpc := range vpcs {
		g.Go(func() error {
			mu.Lock()
			stop := failed != ""
			mu.Unlock()
			if stop {
				return nil
			}
			var got []StaleReference
			p := ec2.NewDescribeStaleSecurityGroupsPaginator(api, &ec2.DescribeStaleSecurityGroupsInput{VpcId: aws.String(vpc), MaxResults: aws.Int32(255)})
			for p.HasMorePages() {
				page, err := p.NextPage(gctx)
				if err != nil {
					if gctx.Err() != nil {
						return gctx.Err()
					}
					mu.Lock()
					if failed == "" {
						failed = "stale references of " + vpc + " and of any VPC not yet read are unknown: " + DescribeError(err)
					}
					mu.Unlock()
					break
				}
				got = appendStale(got, region, page.StaleSecurityGroupSet)
			}
			mu.Lock()
			refs = append(refs, got...)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	slices.SortFunc(refs, compareStale)
	if failed != "" {
		return refs, &UnknownContext{Region: region, Context: ContextStaleReferences, Reason: failed}, nil
	}
	return refs, nil, nil
}

// appendStale appends one StaleReference per group pair of each stale rule of sgs.
func appendStale(refs []StaleReference, region string, sgs []types.StaleSecurityGroup) []StaleReference {
	for _, sg := range sgs {
		base := StaleReference{Region: region, VPC: aws.ToString(sg.VpcId), GroupID: aws.ToString(sg.GroupId), GroupName: aws.ToString(sg.GroupName)}
		for _, dir := range [...]struct {
			d     Direction
			perms []types.StaleIpPermission
		}{{Ingress, sg.StaleIpPermissions}, {Egress, sg.StaleIpPermissionsEgress}} {
			for _, p := range dir.perms {
				var traffic Rule
				traffic.setTraffic(p.IpProtocol, p.FromPort, p.ToPort)
				for _, pair := range p.UserIdGroupPairs {
					s := base
					s.Direction, s.Protocol, s.FromPort, s.ToPort = dir.d, traffic.Protocol, traffic.FromPort, traffic.ToPort
					s.Missing = GroupRef{
						GroupID:       aws.ToString(pair.GroupId),
						Account:       aws.ToString(pair.UserId),
						VPC:           aws.ToString(pair.VpcId),
						PeeringID:     aws.ToString(pair.VpcPeeringConnectionId),
						PeeringStatus: aws.ToString(pair.PeeringStatus),
					}
					refs = append(refs, s)
				}
			}
		}
	}
	return refs
}

// compareStale orders stale references by account, region, group, direction, missing group,
// protocol and ports.
func compareStale(a, b StaleReference) int {
	return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Region, b.Region), cmp.Compare(a.GroupID, b.GroupID),
		cmp.Compare(a.Direction, b.Direction), cmp.Compare(a.Missing.GroupID, b.Missing.GroupID),
		cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.FromPort, b.FromPort), cmp.Compare(a.ToPort, b.ToPort))
}

// linkStaleRules sets each reference's account from its group, and its RuleIDs from the
// rules that reference its missing group with its direction, protocol and ports.
func linkStaleRules(refs []StaleReference, groups []Group, rules []Rule) {
	if len(refs) == 0 {
		return
	}
	account := make(map[string]string, len(groups))
	for _, g := range groups {
		account[g.ID] = g.Account
	}
	type key struct {
		group, missing, protocol string
		dir                      Direction
		from, to                 int32
	}
	want := make(map[key]*StaleReference, len(refs))
	for i := range refs {
		s := &refs[i]
		s.Account = cmp.Or(s.Account, account[s.GroupID])
		want[key{s.GroupID, s.Missing.GroupID, s.Protocol, s.Direction, s.FromPort, s.ToPort}] = s
	}
	for i := range rules {
		r := &rules[i]
		if r.ReferencedGroup == nil {
			continue
		}
		if s := want[key{r.GroupID, r.ReferencedGroup.GroupID, r.Protocol, r.Direction, r.FromPort, r.ToPort}]; s != nil {
			s.RuleIDs = append(s.RuleIDs, r.ID)
		}
	}
	for i := range refs {
		slices.Sort(refs[i].RuleIDs)
		refs[i].RuleIDs = slices.Compact(refs[i].RuleIDs)
	}
}
