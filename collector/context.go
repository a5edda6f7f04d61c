package collector

import (
	"context"
	"errors"

	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"
)

// The contexts that UnknownContext names.
const (
	// ContextReachability is whether groups' interfaces are reachable from the internet.
	ContextReachability = "reachability"
	// ContextStaleReferences is which rules reference groups that no longer exist.
	ContextStaleReferences = "stale-references"
	// ContextAttribution is who added each rule and when, from CloudTrail.
	ContextAttribution = "attribution"
)

// UnknownContext is context on findings that could not be had for part of the estate (for
// all of it when Account and Region are empty): a call that was refused or failed, or
// input files without the output it needs. The groups and rules of that part are
// collected all the same.
type UnknownContext struct {
	Account string `json:"account,omitempty"`
	Region  string `json:"region,omitempty"`
	// Context is ContextReachability, ContextStaleReferences or ContextAttribution.
	Context string `json:"context"`
	Reason  string `json:"reason"`
}

// readContext reads, both at once, what a region's reachability and stale references need
// beyond its groups, rules and interfaces, then sets the groups' reachability from reach
// and links the stale references to rules. Neither can fail the region: what could not be
// read is returned as UnknownContext. It returns an error only when ctx ends.
func readContext(ctx context.Context, api EC2API, region string, reach *reachability, groups []Group, rules []Rule) ([]StaleReference, []UnknownContext, error) {
	var (
		stale                       []StaleReference
		routesUnknown, staleUnknown *UnknownContext
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		routesUnknown, err = reach.readRoutes(gctx, api, region)
		return err
	})
	g.Go(func() (err error) {
		stale, staleUnknown, err = readStale(gctx, api, region, staleVPCs(groups, rules))
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	reach.apply(groups, reach.decide())
	linkStaleRules(stale, groups, rules)
	var unknown []UnknownContext
	for _, u := range [...]*UnknownContext{routesUnknown, staleUnknown} {
		if u != nil {
			unknown = append(unknown, *u)
		}
	}
	return stale, unknown, nil
}

// isDenied reports whether err is the refusal of a call that the caller's policy does not
// allow.
func isDenied(err error) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode() {
	case "UnauthorizedOperation", "AccessDenied", "AccessDeniedException":
		return true
	}
	return false
}
