package collector

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"
)

// OrganizationsAPI is the part of the Organizations API that listing accounts uses.
type OrganizationsAPI interface {
	organizations.ListAccountsAPIClient
}

// Organization is the AWS Organization of the audited accounts, as far as a run knows it.
type Organization struct {
	// ID is the Organization's id (o-...); empty when the caller's account belongs to no
	// Organization, or when the accounts' ARNs do not say.
	ID string `json:"id,omitempty"`
	// Accounts are the ids of its active accounts, sorted (Has relies on it;
	// Collection.Inventory sorts them); empty when the caller's account belongs to no
	// Organization.
	Accounts []string `json:"accounts"`
}

// Has reports whether account is one of the Organization's active accounts. Accounts must
// be sorted.
func (o *Organization) Has(account string) bool {
	_, found := slices.BinarySearch(o.Accounts, account)
	return found
}

// ListOrganization returns the Organization of the caller's account, with its active
// accounts (ListAccounts, paginated). It must be called from the management account or a
// delegated administrator. When the caller's account belongs to no Organization, it
// returns an empty Organization and no error.
func ListOrganization(ctx context.Context, api OrganizationsAPI) (*Organization, error) {
	org := &Organization{Accounts: []string{}}
	p := organizations.NewListAccountsPaginator(api, &organizations.ListAccountsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			var notInUse *orgtypes.AWSOrganizationsNotInUseException
			if errors.As(err, &notInUse) {
				return &Organization{Accounts: []string{}}, nil
			}
			return nil, fmt.Errorf("list the organization's accounts: %w", err)
		}
		for _, a := range page.Accounts {
			if org.ID == "" {
				org.ID = organizationID(aws.ToString(a.Arn))
			}
			if accountActive(a) {
				org.Accounts = append(org.Accounts, aws.ToString(a.Id))
			}
		}
	}
	slices.Sort(org.Accounts)
	org.Accounts = slices.Compact(org.Accounts)
	return org, nil
}

// organizationID returns the Organization id in an account's ARN,
// arn:aws:organizations::<management account>:account/<o-id>/<account>, or "".
func organizationID(arn string) string {
	_, rest, ok := strings.Cut(arn, ":account/")
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, "/")
	if !ok || !strings.HasPrefix(id, "o-") {
		return ""
	}
	return id
}

// accountActive reports whether an account of ListAccounts is active, by its State, or by
// its Status where State is not set.
func accountActive(a orgtypes.Account) bool {
	if a.State != "" {
		return a.State == orgtypes.AccountStateActive
	}
	return a.Status == orgtypes.AccountStatusActive
}

// RoleSessionName is the session name of the roles sgvet assumes.
const RoleSessionName = "sgvet"

// AssumeRole returns credentials of roleARN, assumed with api under RoleSessionName and
// externalID when it is not empty. The credentials are retrieved once, so that a role that
// cannot be assumed is an error here, and then cached and refreshed by aws.CredentialsCache.
func AssumeRole(ctx context.Context, api stscreds.AssumeRoleAPIClient, roleARN, externalID string) (*aws.CredentialsCache, error) {
	provider := stscreds.NewAssumeRoleProvider(api, roleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = RoleSessionName
		if externalID != "" {
			o.ExternalID = aws.String(externalID)
		}
	})
	creds := aws.NewCredentialsCache(provider)
	if _, err := creds.Retrieve(ctx); err != nil {
		return nil, fmt.Errorf("assume role %s: %w", roleARN, err)
	}
	return creds, nil
}

// DefaultConcurrency is how many regions, over all accounts, AccountsSource collects at once
// by default.
const DefaultConcurrency = 16

// AccountsSource collects several accounts, one AWSSource each, at once.
type AccountsSource struct {
	// Accounts are the ids of the accounts to collect, in order.
	Accounts []string
	// Source returns the source of an account's regions. An error (a role that cannot be
	// assumed, regions that cannot be listed) skips the account, with the error as the
	// reason.
	Source func(ctx context.Context, account string) (AWSSource, error)
	// Concurrency bounds how many regions, over all accounts, are collected at once; zero
	// means DefaultConcurrency. Each AWSSource's own Concurrency bounds its regions too.
	Concurrency int
	// Log receives a line per account skipped; nil discards them.
	Log *slog.Logger
}

// Collect reads the accounts at once, and the regions of all of them at most Concurrency
// at a time. An account whose source cannot be had is recorded in
// Collection.Skipped with the reason, and the others carry on; so are the regions each
// account's AWSSource skips. Each group and rule carries its account. Collect returns an
// error only when ctx ends.
func (s AccountsSource) Collect(ctx context.Context) (Collection, error) {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	limit := s.Concurrency
	if limit <= 0 {
		limit = DefaultConcurrency
	}
	shared := semaphore.NewWeighted(int64(limit))
	results := make([]Collection, len(s.Accounts))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	for i, account := range s.Accounts {
		g.Go(func() error {
			src, err := s.Source(gctx, account)
			if err != nil {
				if ctxErr := gctx.Err(); ctxErr != nil {
					return ctxErr
				}
				reason := DescribeError(err)
				log.Warn("account skipped", "account", account, "reason", reason)
				results[i] = Collection{Skipped: []Skipped{{Account: account, Reason: reason}}}
				return nil
			}
			src.Account = account
			src.Shared = shared
			got, err := src.Collect(gctx)
			if err != nil {
				return err
			}
			for j := range got.Groups {
				got.Groups[j].Account = cmp.Or(got.Groups[j].Account, account)
			}
			for j := range got.Rules {
				got.Rules[j].Account = cmp.Or(got.Rules[j].Account, account)
			}
			results[i] = got
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Collection{}, err
	}
	c := joinCollections(results)
	c.Sources = []string{"aws"}
	slices.Sort(c.Regions)
	c.Regions = slices.Compact(c.Regions)
	return c, nil
}
