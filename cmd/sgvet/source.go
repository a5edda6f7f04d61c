package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"

	"github.com/sgvet/sgvet/collector"
)

// collect reads the estate from the input files, or from the AWS API when there are none,
// and assembles the inventory, with its public sources if public is set. Progress goes to
// status, which is nil unless stderr is a terminal.
func collect(ctx context.Context, cfg config, public bool, stdin io.Reader, log *slog.Logger, status *statusLine) (*collector.Inventory, error) {
	var (
		c   collector.Collection
		err error
	)
	// The CloudTrail files are read first, so that a bad one costs no collection.
	var trail collector.Attributions
	if files := cfg.CloudTrail.Files; len(files) > 0 {
		if trail, err = collector.ReadCloudTrailFiles(files...); err != nil {
			return nil, usageErrorf("--cloudtrail: %v", err)
		}
	}
	if len(cfg.Inputs) > 0 {
		c, err = collectFiles(ctx, cfg.Inputs, stdin, cfg.MaxInputSize)
	} else {
		c, err = collectAWS(ctx, cfg, log, status)
	}
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if trail != nil {
		if c.RuleChanges == nil {
			c.RuleChanges = collector.Attributions{}
		}
		c.RuleChanges.Merge(trail)
	} else if reason := noAttribution(cfg); reason != "" {
		c.Unknown = append(c.Unknown, collector.UnknownContext{Context: collector.ContextAttribution, Reason: reason})
	}
	inv := c.Inventory(time.Now(), collector.Options{MaxHostsPerCIDR: cfg.MaxHostsPerCIDR, NoPublic: !public})
	for _, r := range inv.Invalid() {
		log.Warn("invalid "+r.Invalid.Field.String()+" in rule", "group", r.GroupID, "rule", r.ID, string(r.Invalid.Field), r.Invalid.Text, "reason", r.Invalid.Reason)
	}
	return inv, nil
}

// noAttribution says why cfg gives no way to know who added the rules, and how to get it;
// it is empty when CloudTrail log files are given, or LookupEvents is asked.
func noAttribution(cfg config) string {
	switch {
	case len(cfg.CloudTrail.Files) > 0:
		return ""
	case len(cfg.Inputs) > 0:
		return "who added the rules is unknown: input files carry no CloudTrail events; give the trail's log files with --cloudtrail"
	case !cfg.CloudTrail.Lookup:
		return "who added the rules is unknown: --no-cloudtrail-lookup (cloudtrail.lookup: false) asks CloudTrail nothing; give the trail's log files with --cloudtrail, or let sgvet ask LookupEvents"
	}
	return ""
}

// collectFiles parses the input files; - is stdin. Each is read up to limit bytes.
func collectFiles(ctx context.Context, names []string, stdin io.Reader, limit byteSize) (collector.Collection, error) {
	stdins := 0
	for _, name := range names {
		if name == "-" {
			stdins++
		}
	}
	if stdins > 1 {
		return collector.Collection{}, usageErrorf("--input -: standard input can be read only once")
	}
	var files []*collector.File
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return collector.Collection{}, err
		}
		data, err := readInput(name, stdin, limit)
		if err != nil {
			return collector.Collection{}, err
		}
		if name == "-" {
			name = "stdin"
		}
		f, err := collector.ParseFile(name, data)
		if err != nil {
			return collector.Collection{}, &exitError{code: exitUsage, err: err}
		}
		files = append(files, f)
	}
	return collector.FromFiles(files), nil
}

// credentialsTimeout bounds the search for credentials, so that a machine without any
// does not wait long on the instance metadata service.
const credentialsTimeout = 5 * time.Second

// defaultRegion is where sgvet asks for the account's regions when no region is configured.
const defaultRegion = "us-east-1"

const credentialsHelp = `no AWS credentials found. Provide them in one of these ways:
  - set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones)
  - name a profile from ~/.aws/config or ~/.aws/credentials with --profile or AWS_PROFILE
  - sign in with 'aws sso login --profile NAME' and pass --profile NAME
  - run where an IAM role is available (EC2 instance profile, ECS task role, EKS pod identity)
or read saved output instead: sgvet groups --input FILE`

// loadAWSConfig loads the SDK's configuration: the default chain, or cfg's profile, with
// the adaptive retry mode unless AWS_RETRY_MODE or the profile's retry_mode names another. The
// SDK's own log lines (such as its fall-back from IMDSv2) become debug lines.
func loadAWSConfig(ctx context.Context, cfg config, log *slog.Logger) (aws.Config, error) {
	sdkLog := logging.LoggerFunc(func(_ logging.Classification, format string, v ...any) {
		log.Debug(fmt.Sprintf(format, v...), "from", "aws-sdk")
	})
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithLogger(sdkLog)}
	if cfg.Profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(cfg.Profile))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		var noProfile awsconfig.SharedConfigProfileNotExistError
		if errors.As(err, &noProfile) {
			return awsCfg, usageErrorf("%s: no such profile in the AWS config or credentials file (%s)", profileSource(cfg.Profile, noProfile.Profile), awsConfigFiles())
		}
		return awsCfg, usageErrorf("load AWS configuration: %v", err)
	}
	// Adaptive retry slows the clients' calls when AWS throttles them (RequestLimitExceeded),
	// so that a busy estate slows the run rather than failing it.
	if awsCfg.RetryMode == "" && awsCfg.Retryer == nil {
		awsCfg.RetryMode = aws.RetryModeAdaptive
	}
	return awsCfg, nil
}

// collectAWS reads the estate from the AWS API of the account the credentials belong to,
// and of the accounts of --accounts or --org through --role-name.
func collectAWS(ctx context.Context, cfg config, log *slog.Logger, status *statusLine) (collector.Collection, error) {
	awsCfg, err := loadAWSConfig(ctx, cfg, log)
	if err != nil {
		return collector.Collection{}, err
	}
	// Region names are checked before any call, so that a misspelt one ends the run at
	// once. An endpoint of one's own (an emulator, a private endpoint) names its own
	// regions: they are left to it.
	if awsCfg.BaseEndpoint == nil {
		for _, r := range cfg.Regions {
			if r == "all" {
				continue
			}
			if err := checkRegion(r); err != nil {
				return collector.Collection{}, cfg.keyErrorf("regions", "(--regions): %v", err)
			}
		}
		if awsCfg.Region != "" {
			if err := checkRegion(awsCfg.Region); err != nil {
				return collector.Collection{}, usageErrorf("%s: %v", regionSource(), err)
			}
		}
	}
	if awsCfg.Region == "" {
		awsCfg.Region = defaultRegion
	}

	credCtx, cancel := context.WithTimeout(ctx, credentialsTimeout)
	_, err = awsCfg.Credentials.Retrieve(credCtx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return collector.Collection{}, ctx.Err()
		}
		log.Debug("credential chain", "error", err)
		return collector.Collection{}, usageErrorf("%s", credentialsHelp)
	}
	id, err := sts.NewFromConfig(awsCfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		if ctx.Err() != nil {
			return collector.Collection{}, ctx.Err()
		}
		if problem, ok := networkProblem(err); ok {
			return collector.Collection{}, usageErrorf("cannot reach AWS STS in %s: %s (check the network, HTTPS_PROXY, or AWS_ENDPOINT_URL)", awsCfg.Region, problem)
		}
		return collector.Collection{}, usageErrorf("AWS credentials were not accepted: %s", collector.DescribeError(err))
	}
	caller := aws.ToString(id.Account)

	regions := cfg.Regions
	if len(regions) == 0 || regions[0] == "all" {
		regions, err = collector.EnabledRegions(ctx, ec2.NewFromConfig(awsCfg))
		if err != nil {
			if ctx.Err() != nil {
				return collector.Collection{}, ctx.Err()
			}
			if problem, ok := networkProblem(err); ok {
				return collector.Collection{}, usageErrorf("cannot reach AWS EC2 in %s: %s (check the network, HTTPS_PROXY, or AWS_ENDPOINT_URL)", awsCfg.Region, problem)
			}
			return collector.Collection{}, usageErrorf("list the account's regions in %s: %s (grant ec2:DescribeRegions, or name regions with --regions)", awsCfg.Region, collector.DescribeError(err))
		}
	}

	orgAPI := organizations.NewFromConfig(awsCfg)
	accounts, org, err := accountsToCollect(ctx, cfg, orgAPI, caller)
	if err != nil {
		return collector.Collection{}, err
	}
	log.Debug("collecting", "accounts", accounts, "regions", regions)

	partition := "aws"
	if p, ok := strings.CutPrefix(aws.ToString(id.Arn), "arn:"); ok {
		partition, _, _ = strings.Cut(p, ":")
	}
	stsClient := sts.NewFromConfig(awsCfg)
	source := func(ctx context.Context, account string) (collector.AWSSource, error) {
		accountCfg := awsCfg.Copy()
		accountRegions := regions
		if account != caller {
			roleARN := fmt.Sprintf("arn:%s:iam::%s:role/%s", partition, account, cfg.RoleName)
			creds, err := collector.AssumeRole(ctx, stsClient, roleARN, cfg.ExternalID)
			if err != nil {
				return collector.AWSSource{}, err
			}
			accountCfg.Credentials = creds
			if len(cfg.Regions) == 0 || cfg.Regions[0] == "all" {
				accountRegions, err = collector.EnabledRegions(ctx, ec2.NewFromConfig(accountCfg))
				if err != nil {
					return collector.AWSSource{}, err
				}
			}
		}
		src := collector.AWSSource{
			Account:     account,
			Regions:     accountRegions,
			Concurrency: cfg.RegionConcurrency,
			Log:         log.With("account", account),
			Client: func(region string) collector.EC2API {
				return ec2.NewFromConfig(accountCfg, func(o *ec2.Options) { o.Region = region })
			},
		}
		if cfg.CloudTrail.Lookup {
			src.Trail = func(region string) collector.CloudTrailAPI {
				return cloudtrail.NewFromConfig(accountCfg, func(o *cloudtrail.Options) { o.Region = region })
			}
			src.TrailUntil = time.Now().UTC()
			src.TrailSince = src.TrailUntil.Add(-collector.CloudTrailWindow)
		}
		if status != nil {
			prefix := ""
			if len(accounts) > 1 {
				prefix = "account " + account + ", "
			}
			src.Progress = func(done, total int) {
				status.show(fmt.Sprintf("collecting: %s%d/%d regions", prefix, done, total))
			}
		}
		return src, nil
	}
	c, err := collector.AccountsSource{Accounts: accounts, Source: source, Concurrency: cfg.Concurrency, Log: log}.Collect(ctx)
	status.done()
	if err != nil {
		return c, err
	}
	c.Organization = org
	if org == nil && c.ReferencesOtherAccounts() {
		c.Organization = referencedOrganization(ctx, orgAPI, log)
	}
	return c, ctx.Err()
}

// referencedOrganization lists the Organization, so that the report can say whether the
// accounts that rules reference belong to it. Only the management account or a delegated
// administrator may list it: from another account the membership is unknown, which is
// logged, not an error.
func referencedOrganization(ctx context.Context, api collector.OrganizationsAPI, log *slog.Logger) *collector.Organization {
	org, err := collector.ListOrganization(ctx, api)
	if err != nil {
		if ctx.Err() == nil {
			log.Info("rules reference groups of other accounts, and whether those accounts belong to the Organization is unknown: the Organization's accounts could not be listed (run from the management account or a delegated administrator, with organizations:ListAccounts)",
				"reason", collector.DescribeError(err))
		}
		return nil
	}
	return org
}

// accountsToCollect returns the accounts cfg names: the caller's first, then those of
// --accounts or of the Organization, each once, and with --org the Organization. An
// account other than the caller's needs --role-name.
func accountsToCollect(ctx context.Context, cfg config, api collector.OrganizationsAPI, caller string) ([]string, *collector.Organization, error) {
	others := cfg.Accounts
	var org *collector.Organization
	if cfg.Org {
		var err error
		org, err = collector.ListOrganization(ctx, api)
		if err == nil && len(org.Accounts) == 0 {
			err = errors.New("the account belongs to no AWS Organization")
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			return nil, nil, usageErrorf("--org: %s (run from the management account or a delegated administrator, with organizations:ListAccounts)", collector.DescribeError(err))
		}
		others = org.Accounts
	}
	accounts := []string{caller}
	for _, a := range others {
		if slices.Contains(accounts, a) {
			continue
		}
		if cfg.RoleName == "" {
			flag := "--accounts"
			if cfg.Org {
				flag = "--org"
			}
			return nil, nil, cfg.keyErrorf("role_name", "(--role-name) is needed with %s: account %s is not the caller's (%s)", flag, a, caller)
		}
		accounts = append(accounts, a)
	}
	return accounts, org, nil
}

// profileSource names where the profile that does not exist was set: --profile, or the
// environment variable the SDK read it from.
func profileSource(flag, profile string) string {
	if flag != "" {
		return "--profile " + flag
	}
	for _, v := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE"} {
		if os.Getenv(v) != "" {
			return fmt.Sprintf("%s=%s", v, os.Getenv(v))
		}
	}
	return fmt.Sprintf("profile %q", profile)
}

// awsConfigFiles names the shared config files the SDK reads.
func awsConfigFiles() string {
	config, creds := os.Getenv("AWS_CONFIG_FILE"), os.Getenv("AWS_SHARED_CREDENTIALS_FILE")
	if config == "" {
		config = "~/.aws/config"
	}
	if creds == "" {
		creds = "~/.aws/credentials"
	}
	return config + ", " + creds
}

// regionSource names where the SDK found its region.
func regionSource() string {
	for _, v := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if r := os.Getenv(v); r != "" {
			return v
		}
	}
	return "the region of the AWS profile"
}

// networkProblem describes an error that came from the network rather than from AWS: a
// name that does not resolve, a connection refused or reset, a timeout. Such an error says
// nothing about the credentials.
func networkProblem(err error) (string, bool) {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return "", false // AWS answered
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsNotFound {
			return fmt.Sprintf("the name %s does not resolve", dnsErr.Name), true
		}
		return fmt.Sprintf("cannot resolve %s: %s", dnsErr.Name, dnsErr.Err), true
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return fmt.Sprintf("%s %s: %v", opErr.Op, opErr.Addr, opErr.Err), true
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return "no answer in time", true
	}
	return "", false
}

// terminal returns w when it is a terminal, for progress lines, and nil otherwise.
func terminal(w io.Writer) io.Writer {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	info, err := f.Stat()
	if err != nil || info.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return w
}
