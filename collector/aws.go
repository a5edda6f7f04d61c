package collector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
)

// EC2API is the part of the EC2 API that collection from one region uses.
type EC2API interface {
	ec2.DescribeSecurityGroupsAPIClient
	ec2.DescribeSecurityGroupRulesAPIClient
	ec2.DescribeNetworkInterfacesAPIClient
	ec2.DescribeManagedPrefixListsAPIClient
	ec2.GetManagedPrefixListEntriesAPIClient
	ec2.DescribeRouteTablesAPIClient
	ec2.DescribeStaleSecurityGroupsAPIClient
}

// RegionsAPI lists the regions of an account.
type RegionsAPI interface {
	DescribeRegions(ctx context.Context, in *ec2.DescribeRegionsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeRegionsOutput, error)
}

// EnabledRegions returns the regions enabled for the account (opted in, or not needing it),
// sorted.
func EnabledRegions(ctx context.Context, api RegionsAPI) ([]string, error) {
	out, err := api.DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
	if err != nil {
		return nil, fmt.Errorf("describe regions: %w", err)
	}
	var regions []string
	for _, r := range out.Regions {
		status := aws.ToString(r.OptInStatus)
		if status == "not-opted-in" {
			continue
		}
		regions = append(regions, aws.ToString(r.RegionName))
	}
	slices.Sort(regions)
	return regions, nil
}

// DefaultRegionConcurrency is how many regions AWSSource collects at once by default.
const DefaultRegionConcurrency = 4

// AWSSource collects security groups from the EC2 API of one account, region by region.
type AWSSource struct {
	// Account is the account id the credentials belong to, recorded on skipped regions.
	Account string
	// Regions are the regions to collect.
	Regions []string
	// Client returns the EC2 client for a region. It is called once per region.
	Client func(region string) EC2API
	// Concurrency bounds how many regions are collected at once; zero means
	// DefaultRegionConcurrency.
	Concurrency int
	// Shared, when not nil, also bounds the regions collected at once: each region holds
	// one of its units while it is read, so that sources sharing it stay within one total.
	Shared *semaphore.Weighted
	// Log receives a line per region collected or skipped; nil discards them.
	Log *slog.Logger
	// Progress, when not nil, is called after each region with the number of regions done
	// and the total. Calls are serialised.
	Progress func(done, total int)
	// Trail, when not nil, returns the CloudTrail client of a region, whose LookupEvents
	// says who added each rule and when (LookupRuleChanges), from TrailSince to
	// TrailUntil. A zero TrailUntil means the time Collect is called, and a zero
	// TrailSince means CloudTrailWindow before TrailUntil. A region whose events cannot be
	// read keeps its rules, with their attribution unknown.
	Trail                  func(region string) CloudTrailAPI
	TrailSince, TrailUntil time.Time
}

// Collect reads every region. A region that fails (not enabled, access denied, or any other
// error of the API) is recorded in Collection.Skipped with the reason, and the others carry
// on. A region whose network interfaces are refused is collected with its groups'
// attachment and reachability unknown; one whose route tables or stale groups cannot be
// read, with that context unknown; either is recorded in Collection.Unknown. Collect
// returns an error only when ctx ends.
func (s AWSSource) Collect(ctx context.Context) (Collection, error) {
	s.TrailSince, s.TrailUntil = trailWindow(s.TrailSince, s.TrailUntil, time.Now())
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	limit := s.Concurrency
	if limit <= 0 {
		limit = DefaultRegionConcurrency
	}
	parts := make([]Collection, len(s.Regions))
	var (
		mu   sync.Mutex
		done int
	)
	progress := func() {
		if s.Progress == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		done++
		s.Progress(done, len(s.Regions))
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	for i, region := range s.Regions {
		g.Go(func() error {
			if s.Shared != nil {
				if err := s.Shared.Acquire(gctx, 1); err != nil {
					return err
				}
				defer s.Shared.Release(1)
			}
			// CloudTrail, at 2 requests a second, is asked while the region is read.
			trail := s.startTrail(gctx, region)
			res, err := collectRegion(gctx, s.Client(region), region)
			if err != nil {
				trail.stop()
				if ctxErr := gctx.Err(); ctxErr != nil {
					return ctxErr
				}
				reason := DescribeError(err)
				log.Warn("region skipped", "region", region, "reason", reason)
				parts[i] = Collection{Skipped: []Skipped{{Account: s.Account, Region: region, Reason: reason}}}
				progress()
				return nil
			}
			if err := trail.wait(gctx, &res); err != nil {
				return err
			}
			for j := range res.skipped {
				sk := &res.skipped[j]
				sk.Account = s.Account
				log.Warn("resource skipped", "region", region, "resource", sk.Resource, "reason", sk.Reason)
			}
			for j := range res.unknown {
				u := &res.unknown[j]
				u.Account = s.Account
				log.Warn("context unknown", "region", region, "context", u.Context, "reason", u.Reason)
			}
			for j := range res.stale {
				res.stale[j].Account = cmp.Or(res.stale[j].Account, s.Account)
			}
			log.Debug("region collected", "region", region, "groups", len(res.groups), "rules", len(res.rules))
			parts[i] = res.collection(s.Account, region, s.TrailSince, s.TrailUntil)
			progress()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Collection{}, err
	}
	c := joinCollections(parts)
	c.Sources = []string{"aws"}
	return c, nil
}

// regionResult is what collectRegion read of a region.
type regionResult struct {
	groups  []Group
	rules   []Rule
	skipped []Skipped
	unknown []UnknownContext
	stale   []StaleReference
	// changes are the region's rule changes from CloudTrail; trailRead is set when they
	// were all read.
	changes   Attributions
	trailRead bool
}

// collection returns res, the region of account collected, as a Collection; its
// CloudTrail coverage, when its events were read, is since to until.
func (res *regionResult) collection(account, region string, since, until time.Time) Collection {
	c := Collection{Regions: []string{region}, Groups: res.groups, Rules: res.rules, Skipped: res.skipped,
		Unknown: res.unknown, StaleReferences: res.stale}
	if res.trailRead {
		c.RuleChanges = res.changes
		c.CloudTrail = &TrailCoverage{Since: since.UTC(), Until: until.UTC(), Regions: []AccountRegion{{account, region}}}
	}
	return c
}

// trailWindow returns the window of CloudTrail events to look up, since to until, at now:
// a zero until is now, and a zero since is CloudTrailWindow before until.
func trailWindow(since, until, now time.Time) (time.Time, time.Time) {
	if until.IsZero() {
		until = now
	}
	if since.IsZero() {
		since = until.Add(-CloudTrailWindow)
	}
	return since, until
}

// trailLookup is a region's CloudTrail lookup under way; the zero value is none.
type trailLookup struct {
	region string
	done   chan trailResult
	cancel context.CancelFunc
}

// trailResult is what a trailLookup found: the rule changes, or the error that ended it.
type trailResult struct {
	changes Attributions
	err     error
}

// startTrail starts looking up, in a goroutine of its own, what CloudTrail says of the
// rules of region; nothing when s.Trail is nil. The caller must call wait or stop.
func (s AWSSource) startTrail(ctx context.Context, region string) trailLookup {
	if s.Trail == nil {
		return trailLookup{}
	}
	ctx, cancel := context.WithCancel(ctx)
	t := trailLookup{region: region, done: make(chan trailResult, 1), cancel: cancel}
	api := s.Trail(region)
	go func() {
		changes, err := LookupRuleChanges(ctx, api, nil, s.TrailSince, s.TrailUntil)
		t.done <- trailResult{changes, err}
	}()
	return t
}

// stop ends the lookup and waits for it.
func (t trailLookup) stop() {
	if t.done != nil {
		t.cancel()
		<-t.done
	}
}

// wait waits for the lookup and adds what it found to res. A refusal or any other error of
// the lookup, a timeout of its HTTP client among them, makes the region's attribution
// unknown (res.unknown, without its account); only the end of ctx, the region's context
// that the lookup was started with, is returned.
func (t trailLookup) wait(ctx context.Context, res *regionResult) error {
	if t.done == nil {
		return nil
	}
	r := <-t.done
	t.cancel()
	if r.err != nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		res.unknown = append(res.unknown, UnknownContext{Region: t.region, Context: ContextAttribution,
			Reason: "who added the rules is unknown: CloudTrail's events could not be looked up (" + DescribeError(r.err) + ")"})
		return nil
	}
	res.changes, res.trailRead = r.changes, true
	return nil
}

// collectRegion reads the groups, rules and network interfaces of one region at once, then
// what reachability and stale references need (readContext), and the prefix lists its
// rules name. Each page of groups and rules is converted as it comes, so that the SDK's
// records of a page, which hold every rule of the region twice (once in its group), are
// dropped with the page rather than kept until the region is done.
func collectRegion(ctx context.Context, api EC2API, region string) (regionResult, error) {
	var (
		res      regionResult
		attached = map[string]bool{}
		reach    reachability
		// unread says why the interfaces could not be read, when they were refused.
		unread string
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		p := ec2.NewDescribeSecurityGroupsPaginator(api, &ec2.DescribeSecurityGroupsInput{MaxResults: aws.Int32(1000)})
		for p.HasMorePages() {
			page, err := p.NextPage(gctx)
			if err != nil {
				return fmt.Errorf("describe security groups: %w", err)
			}
			for _, sg := range page.SecurityGroups {
				res.groups = append(res.groups, groupFromAPI(sg, region))
			}
		}
		return nil
	})
	g.Go(func() error {
		p := ec2.NewDescribeSecurityGroupRulesPaginator(api, &ec2.DescribeSecurityGroupRulesInput{MaxResults: aws.Int32(1000)})
		for p.HasMorePages() {
			page, err := p.NextPage(gctx)
			if err != nil {
				return fmt.Errorf("describe security group rules: %w", err)
			}
			res.rules = slices.Grow(res.rules, len(page.SecurityGroupRules))
			for _, sr := range page.SecurityGroupRules {
				res.rules = append(res.rules, ruleFromAPI(sr, region))
			}
		}
		return nil
	})
	g.Go(func() error {
		p := ec2.NewDescribeNetworkInterfacesPaginator(api, &ec2.DescribeNetworkInterfacesInput{MaxResults: aws.Int32(1000)})
		for p.HasMorePages() {
			page, err := p.NextPage(gctx)
			if err != nil {
				if gctx.Err() == nil && isDenied(err) {
					unread = DescribeError(err)
					return nil
				}
				return fmt.Errorf("describe network interfaces: %w", err)
			}
			addAttached(attached, page.NetworkInterfaces)
			reach.add(page.NetworkInterfaces)
		}
		reach.read = true
		return nil
	})
	if err := g.Wait(); err != nil {
		return res, err
	}

	byID := make(map[string]*Group, len(res.groups))
	for i := range res.groups {
		grp := &res.groups[i]
		switch {
		case unread != "":
			// Attachment unknown: the interfaces could not be read.
		case attached[grp.ID]:
			grp.Attached = Attached
		default:
			grp.Attached = Unattached
		}
		byID[grp.ID] = grp
	}
	lists := map[string]*prefixList{}
	for i := range res.rules {
		r := &res.rules[i]
		if grp, ok := byID[r.GroupID]; ok {
			shareGroupFields(r, grp)
		}
		if r.PrefixList != nil {
			lists[r.PrefixList.ID] = nil
		}
	}
	var err error
	if res.stale, res.unknown, err = readContext(ctx, api, region, &reach, res.groups, res.rules); err != nil {
		return res, err
	}
	if unread != "" {
		res.unknown = append(res.unknown, UnknownContext{Region: region, Context: ContextReachability, Reason: "attachment and reachability are unknown: the network interfaces could not be read (" + unread + ")"})
	}
	if len(lists) == 0 {
		return res, nil
	}
	if err := readPrefixLists(ctx, api, lists); err != nil {
		return res, err
	}
	res.rules = expandPrefixLists(res.rules, lists)
	for id, pl := range lists {
		if pl.unresolved != "" {
			res.skipped = append(res.skipped, Skipped{Region: region, Resource: "prefix list " + id, Reason: pl.unresolved})
		}
	}
	slices.SortFunc(res.skipped, func(a, b Skipped) int { return cmp.Compare(a.Resource, b.Resource) })
	return res, nil
}

// shareGroupFields gives r, a rule of grp, the group's name and VPC, and its account when
// r has none. r's group id and account, when the same as the group's, become the group's
// own strings: the API repeats them in every rule, and a rule's copies would otherwise be
// kept, one each, for as long as the rule.
func shareGroupFields(r *Rule, grp *Group) {
	r.GroupID = grp.ID
	r.GroupName, r.VPC = grp.Name, grp.VPC
	if r.Account == "" || r.Account == grp.Account {
		r.Account = grp.Account
	}
}

// prefixList is a managed prefix list with its entries.
type prefixList struct {
	name       string
	owner      string
	awsManaged bool
	entries    []types.PrefixListEntry
	unresolved string
}

// readPrefixLists fills lists (keyed by id) with the lists' owners and, for
// customer-managed lists, their entries. A list that cannot be read is marked unresolved.
func readPrefixLists(ctx context.Context, api EC2API, lists map[string]*prefixList) error {
	p := ec2.NewDescribeManagedPrefixListsPaginator(api, &ec2.DescribeManagedPrefixListsInput{MaxResults: aws.Int32(100)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("describe managed prefix lists: %w", err)
		}
		for _, m := range page.PrefixLists {
			id := aws.ToString(m.PrefixListId)
			if _, wanted := lists[id]; !wanted {
				continue
			}
			pl := prefixListFromAPI(m)
			lists[id] = &pl
		}
	}
	// Each goroutine writes only to its own list; Wait orders those writes before the reads.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for id, pl := range lists {
		if pl == nil {
			lists[id] = &prefixList{unresolved: "not found: the list is not visible to this account"}
			continue
		}
		if pl.awsManaged {
			continue
		}
		g.Go(func() error {
			var entries []types.PrefixListEntry
			ep := ec2.NewGetManagedPrefixListEntriesPaginator(api, &ec2.GetManagedPrefixListEntriesInput{PrefixListId: aws.String(id), MaxResults: aws.Int32(100)})
			for ep.HasMorePages() {
				page, err := ep.NextPage(gctx)
				if err != nil {
					if gctx.Err() != nil {
						return gctx.Err()
					}
					pl.unresolved = "get entries: " + DescribeError(err)
					return nil
				}
				entries = append(entries, page.Entries...)
			}
			pl.entries = entries
			return nil
		})
	}
	return g.Wait()
}

// expandPrefixLists replaces each rule naming a customer-managed prefix list with one rule
// per entry of the list. An invalid rule is kept as one rule naming the list.
func expandPrefixLists(rules []Rule, lists map[string]*prefixList) []Rule {
	out := make([]Rule, 0, len(rules))
	for _, r := range rules {
		if r.PrefixList == nil {
			out = append(out, r)
			continue
		}
		pl := lists[r.PrefixList.ID]
		ref := *r.PrefixList
		ref.Name, ref.Owner, ref.AWSManaged, ref.Unresolved = pl.name, pl.owner, pl.awsManaged, pl.unresolved
		if r.Invalid != nil || pl.awsManaged || pl.unresolved != "" || len(pl.entries) == 0 {
			r.PrefixList = &ref
			out = append(out, r)
			continue
		}
		for _, e := range pl.entries {
			er := r
			entry := ref
			entry.EntryDescription = aws.ToString(e.Description)
			er.PrefixList = &entry
			er.setCIDR(aws.ToString(e.Cidr))
			out = append(out, er)
		}
	}
	return out
}

// groupFromAPI converts a group of DescribeSecurityGroups; its attachment is unknown.
func groupFromAPI(sg types.SecurityGroup, region string) Group {
	return Group{
		ID:          aws.ToString(sg.GroupId),
		Name:        aws.ToString(sg.GroupName),
		Description: aws.ToString(sg.Description),
		VPC:         aws.ToString(sg.VpcId),
		Account:     aws.ToString(sg.OwnerId),
		Region:      region,
	}
}

// addAttached records in attached the groups that the network interfaces use.
func addAttached(attached map[string]bool, enis []types.NetworkInterface) {
	for _, eni := range enis {
		for _, g := range eni.Groups {
			attached[aws.ToString(g.GroupId)] = true
		}
	}
}

// prefixListFromAPI converts a list of DescribeManagedPrefixLists, without its entries.
func prefixListFromAPI(m types.ManagedPrefixList) prefixList {
	owner := aws.ToString(m.OwnerId)
	return prefixList{name: aws.ToString(m.PrefixListName), owner: owner, awsManaged: owner == "AWS"}
}

// ruleFromAPI converts a rule of DescribeSecurityGroupRules.
func ruleFromAPI(sr types.SecurityGroupRule, region string) Rule {
	r := Rule{
		Account:     aws.ToString(sr.GroupOwnerId),
		Region:      region,
		GroupID:     aws.ToString(sr.GroupId),
		ID:          aws.ToString(sr.SecurityGroupRuleId),
		Direction:   Ingress,
		Description: aws.ToString(sr.Description),
	}
	r.setTraffic(sr.IpProtocol, sr.FromPort, sr.ToPort)
	if aws.ToBool(sr.IsEgress) {
		r.Direction = Egress
	}
	switch {
	case sr.CidrIpv4 != nil:
		r.setCIDR(*sr.CidrIpv4)
	case sr.CidrIpv6 != nil:
		r.setCIDR(*sr.CidrIpv6)
	case sr.PrefixListId != nil:
		r.PrefixList = &PrefixListRef{ID: *sr.PrefixListId}
	case sr.ReferencedGroupInfo != nil:
		ref := sr.ReferencedGroupInfo
		r.ReferencedGroup = &GroupRef{
			GroupID:       aws.ToString(ref.GroupId),
			Account:       aws.ToString(ref.UserId),
			VPC:           aws.ToString(ref.VpcId),
			PeeringID:     aws.ToString(ref.VpcPeeringConnectionId),
			PeeringStatus: aws.ToString(ref.PeeringStatus),
		}
	}
	return r
}

// DescribeError shortens an AWS SDK error to the operation, the error code and the
// message, e.g. "DescribeSecurityGroups: UnauthorizedOperation: You are not authorized...".
// Other errors are returned as they are.
func DescribeError(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		op := ""
		var opErr *smithy.OperationError
		if errors.As(err, &opErr) {
			op = opErr.Operation() + ": "
		}
		return op + apiErr.ErrorCode() + ": " + apiErr.ErrorMessage()
	}
	return err.Error()
}
