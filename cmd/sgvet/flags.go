package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// stringList is a flag that may be repeated.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// commonFlags are the flags the commands share. Each command registers the groups it
// takes; load applies those that were set.
type commonFlags struct {
	configFile string
	inputs     stringList
	profile    string
	regions    string
	logFormat  string
	logLevel   string

	providers  string
	blocklists stringList
	cacheFile  string
	noCache    bool

	failOn  string
	state   string
	workers int
}

// register adds the configuration, log and source flags.
func (f *commonFlags) register(fs *flag.FlagSet) {
	f.registerConfig(fs)
	f.registerSource(fs)
}

// registerConfig adds --config and the log flags.
func (f *commonFlags) registerConfig(fs *flag.FlagSet) {
	fs.StringVar(&f.configFile, "config", "", "load configuration from the YAML `FILE` (see config.example.yaml)")
	fs.StringVar(&f.logFormat, "log-format", "", "write log lines as text or json (default text)")
	fs.StringVar(&f.logLevel, "log-level", "", "log debug, info, warn or error and above (default info)")
}

// registerProviders adds the provider flags.
func (f *commonFlags) registerProviders(fs *flag.FlagSet) {
	fs.StringVar(&f.providers, "providers", "", "ask only the comma-separated `LIST` of providers: metadefender, abuseipdb, virustotal,\ngreynoise, blocklist (default: every enabled provider whose key is set, and blocklist\nwhen a list is given)")
	fs.Var(&f.blocklists, "blocklist", "match against the offline list in `FILE`: FireHOL .netset or .ipset, Spamhaus DROP\ntext or JSON, or one address or CIDR per line (repeatable)")
	fs.StringVar(&f.cacheFile, "cache", "", "keep verdicts in the SQLite `FILE` (default: sgvet/verdicts.db in the user's cache\ndirectory)")
	fs.BoolVar(&f.noCache, "no-cache", false, "neither read nor write cached verdicts")
}

// registerAudit adds the flags of the audit's findings, history and exit status.
func (f *commonFlags) registerAudit(fs *flag.FlagSet) {
	fs.StringVar(&f.failOn, "fail-on", "", "exit 1 when a finding is at least as severe as `SEVERITY`: critical, high, medium, low,\nor none (default high)")
	fs.StringVar(&f.state, "state", "", "keep the history of runs in the SQLite `FILE`, to mark rules new or gone and age them")
	fs.IntVar(&f.workers, "workers", 0, "send at most `N` requests at once to each provider (default: workers in the configuration, 4)")
}

// registerSource adds the flags that say where security groups are read from.
func (f *commonFlags) registerSource(fs *flag.FlagSet) {
	fs.Var(&f.inputs, "input", "read the JSON output of aws ec2 describe-security-groups, describe-security-group-rules,\ndescribe-network-interfaces or describe-managed-prefix-lists from `FILE` instead of the\nAWS API (repeatable; - is stdin)")
	fs.StringVar(&f.profile, "profile", "", "use the AWS shared-config profile `NAME`")
	fs.StringVar(&f.regions, "regions", "", "collect the comma-separated `LIST` of regions, or all (default: every region enabled for the account)")
}

// load builds the configuration: defaults, then the file, then the flags that were set.
func (f *commonFlags) load(fs *flag.FlagSet) (config, error) {
	cfg := defaultConfig()
	if f.configFile != "" {
		if err := loadConfigFile(f.configFile, &cfg); err != nil {
			return cfg, err
		}
	}
	var err error
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "profile":
			cfg.Profile = f.profile
		case "regions":
			cfg.Regions = splitList(f.regions)
		case "log-format":
			cfg.Log.Format = f.logFormat
		case "log-level":
			cfg.Log.Level = f.logLevel
		case "providers":
			cfg.Reputation.Only = splitList(f.providers)
			if len(cfg.Reputation.Only) == 0 {
				err = usageErrorf("--providers needs at least one provider name")
			}
		case "cache":
			cfg.Reputation.Cache.File = f.cacheFile
			cfg.Reputation.Cache.Enabled = true
		case "no-cache":
			cfg.Reputation.Cache.Enabled = !f.noCache
		case "fail-on":
			cfg.Audit.FailOn = f.failOn
		case "state":
			cfg.Audit.State = f.state
		case "workers":
			cfg.Reputation.Workers = f.workers
		}
	})
	if err != nil {
		return cfg, err
	}
	if f.noCache && f.cacheFile != "" {
		return cfg, usageErrorf("--cache and --no-cache cannot be used together")
	}
	cfg.Reputation.Providers.Blocklist.Files = append(cfg.Reputation.Providers.Blocklist.Files, f.blocklists...)
	cfg.Inputs = f.inputs
	return cfg, cfg.validate()
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// parseFlags parses args into fs. --help prints about and the flags to stdout and returns
// flag.ErrHelp; a bad flag or a stray argument is a usage error.
func parseFlags(fs *flag.FlagSet, about string, args []string, stdout io.Writer) error {
	if err := parseFlagsAllowingArgs(fs, about, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q (see '%s --help')", fs.Arg(0), fs.Name())
	}
	return nil
}

// parseFlagsAllowingArgs is parseFlags for commands that take operands after the flags.
func parseFlagsAllowingArgs(fs *flag.FlagSet, about string, args []string, stdout io.Writer) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, about)
		fmt.Fprintln(stdout, "\nFlags:")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return err
	}
	if err != nil {
		return usageErrorf("%v (see '%s --help')", err, fs.Name())
	}
	return nil
}
