package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// stringList is a flag that may be repeated.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// Type names the flag's kind of value where its usage names none.
func (s *stringList) Type() string { return "stringList" }

// The headings of the groups that commands' flags are shown under in help.
const (
	groupSource    = "Source flags (where security groups are read from)"
	groupProviders = "Provider flags (who is asked about addresses)"
	groupReport    = "Report flags"
	groupOutput    = "Output flags"
	groupQueue     = "Queue flags (Amazon SQS)"
	groupGeneral   = "General flags"
)

// Annotations on flags that shell completion reads.
const (
	// completeValues lists the values a flag takes.
	completeValues = "sgvet_values"
	// completeFiles marks a flag that takes a file name.
	completeFiles = "sgvet_files"
)

// commandFlags are one command's flags, in groups by purpose, as help shows them.
type commandFlags struct {
	name  string // "sgvet audit"
	about string // the help text before the flags
	// operands says whether the command takes arguments besides flags.
	operands bool

	groups []flagGroup
	help   bool
}

type flagGroup struct {
	title string
	fs    *pflag.FlagSet
}

func newCommandFlags(name, about string) *commandFlags {
	return &commandFlags{name: name, about: about}
}

// group returns the flag set of the group with title, creating it the first time.
func (c *commandFlags) group(title string) *pflag.FlagSet {
	for _, g := range c.groups {
		if g.title == title {
			return g.fs
		}
	}
	fs := pflag.NewFlagSet(title, pflag.ContinueOnError)
	fs.SortFlags = false
	c.groups = append(c.groups, flagGroup{title, fs})
	return fs
}

// flagSet returns one flag set holding every group's flags, the general ones last.
func (c *commandFlags) flagSet() *pflag.FlagSet {
	general := c.group(groupGeneral)
	if general.Lookup("help") == nil {
		general.BoolVarP(&c.help, "help", "h", false, "show this help")
	}
	fs := pflag.NewFlagSet(c.name, pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	for _, g := range c.groups {
		if g.title != groupGeneral {
			fs.AddFlagSet(g.fs)
		}
	}
	fs.AddFlagSet(general)
	return fs
}

// parse parses args. Flags and operands may be mixed; "--" ends the flags. --help prints
// the help to stdout and returns errHelp. A bad flag, or an operand given to a command
// that takes none, is a usage error that suggests the flag meant and where help is.
func (c *commandFlags) parse(args []string, stdout io.Writer) (*pflag.FlagSet, []string, error) {
	fs := c.flagSet()
	err := fs.Parse(args)
	if c.help {
		c.printHelp(stdout)
		return fs, nil, errHelp
	}
	if err != nil {
		return fs, nil, usageErrorf("%s (see '%s --help')", c.describe(fs, err), c.name)
	}
	if !c.operands && fs.NArg() > 0 {
		return fs, nil, usageErrorf("unexpected argument %q (see '%s --help')", fs.Arg(0), c.name)
	}
	return fs, fs.Args(), nil
}

// describe turns a parse error into a sentence that names the flag as it is written.
func (c *commandFlags) describe(fs *pflag.FlagSet, err error) string {
	var (
		notExist *pflag.NotExistError
		invalid  *pflag.InvalidValueError
		noValue  *pflag.ValueRequiredError
	)
	switch {
	case errors.As(err, &notExist) && notExist.GetSpecifiedShortnames() != "":
		short := notExist.GetSpecifiedName()
		return fmt.Sprintf("unknown flag -%s in -%s", short, notExist.GetSpecifiedShortnames())
	case errors.As(err, &notExist):
		name := notExist.GetSpecifiedName()
		msg := "unknown flag --" + name
		if s := suggestFlag(fs, name); s != "" {
			msg += "; did you mean --" + s + "?"
		}
		return msg
	case errors.As(err, &invalid):
		return fmt.Sprintf("--%s %q: %s", invalid.GetFlag().Name, invalid.GetValue(), valueError(invalid.Unwrap()))
	case errors.As(err, &noValue):
		return fmt.Sprintf("--%s needs a value", noValue.GetFlag().Name)
	}
	return err.Error()
}

// valueError describes why a flag's value was refused, in words rather than Go's.
func valueError(err error) string {
	var num *strconv.NumError
	if errors.As(err, &num) {
		if errors.Is(num.Err, strconv.ErrRange) {
			return "out of range"
		}
		if num.Func == "ParseBool" {
			return "must be true or false"
		}
		return "not a whole number"
	}
	return err.Error()
}

// suggestFlag returns the flag name closest to name, or "" when none is close: one that
// starts with it (--region for --regions), or one within two edits of it.
func suggestFlag(fs *pflag.FlagSet, name string) string {
	var names []string
	fs.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	return closest(name, names)
}

// closest returns the candidate nearest to word: the shortest one that word begins or
// that begins with word, else the one fewest edits away, if at most two (or one for
// words of up to four letters); "" when none qualifies.
func closest(word string, candidates []string) string {
	best, bestLen := "", 0
	for _, c := range candidates {
		if len(word) >= 3 && (strings.HasPrefix(c, word) || strings.HasPrefix(word, c)) && (best == "" || len(c) < bestLen) {
			best, bestLen = c, len(c)
		}
	}
	if best != "" {
		return best
	}
	limit := 2
	if len(word) <= 4 {
		limit = 1
	}
	bestDist := limit + 1
	for _, c := range candidates {
		if d := editDistance(word, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, counted in bytes: flag and
// command names are ASCII.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// helpWidth is the width help text is wrapped to.
const helpWidth = 96

// printHelp prints the command's help: what it does, then its flags by group.
func (c *commandFlags) printHelp(w io.Writer) {
	c.flagSet() // adds --help to the general group
	fmt.Fprint(w, c.about)
	groups := slices.Clone(c.groups)
	// The general flags come last.
	slices.SortStableFunc(groups, func(a, b flagGroup) int {
		switch {
		case a.title == groupGeneral && b.title != groupGeneral:
			return 1
		case b.title == groupGeneral && a.title != groupGeneral:
			return -1
		}
		return 0
	})
	for _, g := range groups {
		fmt.Fprintf(w, "\n%s:\n", g.title)
		writeFlagUsages(w, g.fs)
	}
}

// writeFlagUsages writes one line per flag, "  -o, --output FILE", then its usage wrapped
// to helpWidth in a column of its own. Usages say their defaults themselves.
func writeFlagUsages(w io.Writer, fs *pflag.FlagSet) {
	type entry struct{ left, usage string }
	var entries []entry
	width := 0
	fs.VisitAll(func(f *pflag.Flag) {
		left := "      --" + f.Name
		if f.Shorthand != "" {
			left = "  -" + f.Shorthand + ", --" + f.Name
		}
		name, usage := pflag.UnquoteUsage(f)
		if f.NoOptDefVal == "" && name != "" {
			left += " " + name
		}
		entries = append(entries, entry{left, usage})
		width = max(width, len(left))
	})
	for _, e := range entries {
		fmt.Fprintf(w, "%-*s   %s\n", width, e.left, wrapText(e.usage, width+3, helpWidth))
	}
}

// wrapText breaks text into lines of at most width columns, the first starting at
// column indent and the others indented by it.
func wrapText(text string, indent, width int) string {
	var b strings.Builder
	col := indent
	for i, word := range strings.Fields(text) {
		if i > 0 {
			if col+1+len(word) > width {
				b.WriteString("\n" + strings.Repeat(" ", indent))
				col = indent
			} else {
				b.WriteByte(' ')
				col++
			}
		}
		b.WriteString(word)
		col += len(word)
	}
	return b.String()
}

// errHelp is returned when --help was asked for: the help is printed, and the command
// exits 0 without doing anything else.
var errHelp = pflag.ErrHelp

// commandOptions are the values of a command's flags: the shared ones, and where and how
// its output is written.
type commandOptions struct {
	common commonFlags
	format string
	output string
	// sources lists each group's public sources under the groups table (sgvet groups).
	sources bool
}

// commonFlags are the flags the commands share. Each command registers the groups it
// takes; load applies those that were set.
type commonFlags struct {
	configFile  string
	inputs      stringList
	profile     string
	regions     string
	accounts    string
	org         bool
	concurrency int
	roleName    string
	externalID  string
	logFormat   string
	logLevel    string

	maxInputSize string

	providers  string
	blocklists stringList
	cacheFile  string
	noCache    bool
	workers    int

	failOn      string
	state       string
	ownerRanges stringList

	cloudTrail         stringList
	noCloudTrailLookup bool

	inventory  string
	queueURL   string
	resultsURL string
	fleetSize  int
	idleExit   time.Duration
	wait       time.Duration
}

// registerConfig adds --config and the log flags to the general group.
func (f *commonFlags) registerConfig(c *commandFlags) {
	fs := c.group(groupGeneral)
	fs.StringVarP(&f.configFile, "config", "c", "", "load configuration from the YAML `FILE` (see config.example.yaml)")
	fs.StringVar(&f.logFormat, "log-format", "", "write log lines in `FORMAT`: text or json (default text)")
	fs.StringVar(&f.logLevel, "log-level", "", "log `LEVEL` and above: debug, info, warn or error (default info)")
	annotate(fs, "config", completeFiles, "yaml", "yml")
	annotate(fs, "log-format", completeValues, "text", "json")
	annotate(fs, "log-level", completeValues, "debug", "info", "warn", "error")
}

// registerSource adds the flags that say where security groups are read from.
func (f *commonFlags) registerSource(c *commandFlags) {
	fs := c.group(groupSource)
	fs.VarP(&f.inputs, "input", "i", "read the JSON output of aws ec2 describe-security-groups, describe-security-group-rules, "+
		"describe-network-interfaces, describe-managed-prefix-lists, describe-route-tables or describe-stale-security-groups "+
		"from `FILE` instead of the AWS API (repeatable; - is stdin)")
	fs.StringVar(&f.profile, "profile", "", "use the AWS shared-config profile `NAME` (default: AWS_PROFILE, else the default chain)")
	fs.StringVar(&f.regions, "regions", "", "collect the comma-separated `LIST` of regions, or all (default: every region enabled for the account)")
	fs.StringVar(&f.accounts, "accounts", "", "collect the comma-separated `LIST` of account ids as well as the caller's, through --role-name in each")
	fs.BoolVar(&f.org, "org", false, "collect every active account of the Organization (from the management or a delegated administrator account), through --role-name in each")
	fs.StringVar(&f.roleName, "role-name", "", "assume the role `NAME` in each account of --accounts or --org other than the caller's")
	fs.StringVar(&f.externalID, "external-id", "", "pass the external `ID` when assuming --role-name")
	fs.IntVar(&f.concurrency, "concurrency", 0, "collect at most `N` regions at once over all accounts (default: concurrency in the configuration, 16)")
	fs.Var(&f.cloudTrail, "cloudtrail", "say who added each rule from the CloudTrail log files in `FILE`, as CloudTrail delivers them to S3 "+
		"(.json or .json.gz, or a folder of them; repeatable), for accounts where LookupEvents is not allowed")
	fs.BoolVar(&f.noCloudTrailLookup, "no-cloudtrail-lookup", false, "do not ask CloudTrail's LookupEvents who added each rule in the last 90 days")
	f.registerInputLimit(fs)
	annotate(fs, "input", completeFiles, "json")
	annotate(fs, "cloudtrail", completeFiles, "json", "gz")
	annotate(fs, "regions", completeValues, append([]string{"all"}, knownRegions("aws")...)...)
}

// registerInputLimit adds --max-input-size to fs.
func (f *commonFlags) registerInputLimit(fs *pflag.FlagSet) {
	fs.StringVar(&f.maxInputSize, "max-input-size", "", "read at most `SIZE` from one input, such as 512MiB or 2GiB (default: max_input_size in the configuration, "+defaultMaxInputSize.String()+")")
}

// registerProviders adds the provider flags.
func (f *commonFlags) registerProviders(c *commandFlags) {
	fs := c.group(groupProviders)
	fs.StringVar(&f.providers, "providers", "", "ask only the comma-separated `LIST` of providers: "+strings.Join(providerNames, ", ")+
		" (default: every enabled provider whose key is set, and blocklist when a list is given)")
	fs.Var(&f.blocklists, "blocklist", "match against the offline list in `FILE`: FireHOL .netset or .ipset, Spamhaus DROP "+
		"text or JSON, or one address or CIDR per line (repeatable)")
	fs.StringVar(&f.cacheFile, "cache", "", "keep verdicts in the SQLite `FILE` (default: sgvet/verdicts.db in the user's cache directory)")
	fs.BoolVar(&f.noCache, "no-cache", false, "neither read nor write cached verdicts")
	fs.IntVar(&f.workers, "workers", 0, "send at most `N` requests at once to each provider (default: workers in the configuration, 4)")
	annotate(fs, "providers", completeValues, providerNames...)
	annotate(fs, "blocklist", completeFiles)
	annotate(fs, "cache", completeFiles, "db")
}

// registerAudit adds the flags of the audit's history and exit status.
func (f *commonFlags) registerAudit(c *commandFlags) {
	fs := c.group(groupReport)
	fs.StringVar(&f.failOn, "fail-on", "", "exit 1 when a finding is at least as severe as `SEVERITY`: critical, high, medium, low, or none (default high)")
	fs.StringVar(&f.state, "state", "", "keep the history of runs in the SQLite `FILE`, to mark rules new or gone and age them")
	fs.Var(&f.ownerRanges, "owner-ranges", "label addresses with whose published range they are in, from `FILE`: AWS ip-ranges.json, "+
		"GitHub meta, Cloudflare's ips JSON, Google goog.json or cloud.json, detected from the content; NAME=FILE for a plain list of CIDRs (repeatable)")
	annotate(fs, "fail-on", completeValues, "critical", "high", "medium", "low", "none")
	annotate(fs, "state", completeFiles, "db")
	annotate(fs, "owner-ranges", completeFiles, "json")
}

// registerInventory adds --inventory: the inventory file that collect writes and report
// reads; what it is for is about.
func (f *commonFlags) registerInventory(c *commandFlags, about string) {
	fs := c.group(groupQueue)
	fs.StringVar(&f.inventory, "inventory", "", about)
	annotate(fs, "inventory", completeFiles, "json")
}

// registerQueues adds --queue-url and --results-url, when their usage is not empty.
func (f *commonFlags) registerQueues(c *commandFlags, lookups, results string) {
	fs := c.group(groupQueue)
	if lookups != "" {
		fs.StringVar(&f.queueURL, "queue-url", "", lookups)
	}
	if results != "" {
		fs.StringVar(&f.resultsURL, "results-url", "", results)
	}
}

// registerOutput adds --format (-f) and --output (-o) to group.
func registerOutput(c *commandFlags, group string, format, output *string, formats []string) {
	fs := c.group(group)
	fs.StringVarP(format, "format", "f", "table", "write `FORMAT`: "+strings.Join(formats, ", ")+" (default table)")
	fs.StringVarP(output, "output", "o", "", "write to `FILE` instead of standard output (replaced only when complete)")
	annotate(fs, "format", completeValues, formats...)
	annotate(fs, "output", completeFiles)
}

// annotate records what shell completion offers for a flag's value.
func annotate(fs *pflag.FlagSet, name, key string, values ...string) {
	if values == nil {
		values = []string{}
	}
	_ = fs.SetAnnotation(name, key, values)
}

// load builds the configuration: defaults, then the file, then the flags that were set.
func (f *commonFlags) load(fs *pflag.FlagSet) (config, error) {
	cfg := defaultConfig()
	if f.configFile != "" {
		if err := loadConfigFile(f.configFile, &cfg); err != nil {
			return cfg, err
		}
	}
	var err error
	fs.Visit(func(fl *pflag.Flag) {
		switch fl.Name {
		case "profile":
			cfg.Profile = f.profile
		case "regions":
			cfg.Regions = splitList(f.regions)
		case "accounts":
			cfg.Accounts = splitList(f.accounts)
			if len(cfg.Accounts) == 0 {
				err = usageErrorf("--accounts needs at least one account id")
			}
		case "org":
			cfg.Org = f.org
		case "no-cloudtrail-lookup":
			cfg.CloudTrail.Lookup = !f.noCloudTrailLookup
		case "concurrency":
			cfg.Concurrency = f.concurrency
		case "role-name":
			cfg.RoleName = f.roleName
		case "external-id":
			cfg.ExternalID = f.externalID
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
		case "fleet-size":
			cfg.Reputation.FleetSize = f.fleetSize
		case "max-input-size":
			size, perr := parseByteSize(f.maxInputSize)
			if perr != nil {
				err = usageErrorf("--max-input-size: %v", perr)
			}
			cfg.MaxInputSize = size
		}
	})
	if err != nil {
		return cfg, err
	}
	if f.noCache && f.cacheFile != "" {
		return cfg, usageErrorf("--cache and --no-cache cannot be used together")
	}
	cfg.Reputation.Providers.Blocklist.Files = append(cfg.Reputation.Providers.Blocklist.Files, f.blocklists...)
	cfg.Audit.OwnerRanges = append(cfg.Audit.OwnerRanges, f.ownerRanges...)
	cfg.CloudTrail.Files = append(cfg.CloudTrail.Files, f.cloudTrail...)
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
