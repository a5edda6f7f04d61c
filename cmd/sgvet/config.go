package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/report"
)

// config is sgvet's configuration: the defaults, then the file given with --config, then
// the flags. config.example.yaml documents every key.
type config struct {
	// Profile is the AWS shared-config profile; empty means the SDK's default chain.
	Profile string `yaml:"profile"`
	// Regions to collect; empty or ["all"] means every region enabled for the account.
	Regions []string `yaml:"regions"`
	// Accounts are the ids of the accounts to collect besides the caller's, through the
	// role RoleName in each; empty means the caller's account alone, unless Org is set.
	Accounts []string `yaml:"accounts"`
	// Org collects every active account of the Organization, through RoleName in each.
	Org bool `yaml:"org"`
	// RoleName is the role assumed in each account other than the caller's.
	RoleName string `yaml:"role_name"`
	// ExternalID is the external id passed when assuming RoleName; empty passes none.
	ExternalID string `yaml:"external_id"`
	// Concurrency bounds how many regions, over all accounts, are collected at once.
	Concurrency int `yaml:"concurrency"`
	// RegionConcurrency bounds how many regions of one account are collected at once.
	RegionConcurrency int `yaml:"region_concurrency"`
	// MaxHostsPerCIDR is the largest public prefix, in addresses, expanded into addresses.
	MaxHostsPerCIDR int `yaml:"max_hosts_per_cidr"`
	// MaxInputSize is the most sgvet reads from one --input file, or from stdin.
	MaxInputSize byteSize `yaml:"max_input_size"`
	// CloudTrail configures who-added-the-rule attribution.
	CloudTrail cloudTrailConfig `yaml:"cloudtrail"`
	// Log configures the log lines written to stderr.
	Log logConfig `yaml:"log"`
	// Reputation configures the providers, their limits and the verdict cache.
	Reputation reputationConfig `yaml:",inline"`
	// Audit configures findings, history and the exit status of sgvet audit.
	Audit auditConfig `yaml:"audit"`
	// History configures the history file of --state.
	History historyConfig `yaml:"history"`

	// Inputs are files of aws CLI output to read instead of the AWS API; flag only.
	Inputs []string `yaml:"-"`

	// file is the configuration file the values came from, if any.
	file *configFile
}

// configFile remembers where each key of a configuration file was written, and what the
// file set, so that an error about a value the file set names the file and the line as
// well as the key.
type configFile struct {
	path string
	// lines holds the line of each key, dotted from the top ("providers.abuseipdb.rate").
	lines map[string]int
	// set is the configuration as the file left it, before any flag.
	set config
}

// where returns "FILE: line N: " for a key whose value the configuration file set, and ""
// for a key whose value came from a default or a flag.
func (c *config) where(key string) string {
	if c.file == nil {
		return ""
	}
	line, ok := c.file.lines[key]
	if !ok {
		return ""
	}
	// A flag replaces the file's value, and the file's line would show another value.
	now, ok := fieldByKey(reflect.ValueOf(c).Elem(), key)
	then, _ := fieldByKey(reflect.ValueOf(&c.file.set).Elem(), key)
	if !ok || !sameValue(now, then) {
		return ""
	}
	return fmt.Sprintf("%s: line %d: ", c.file.path, line)
}

// keyErrorf is a usage error about the value of key: "KEY " and the message, after where
// the configuration file set the key, if it did.
func (c *config) keyErrorf(key, format string, args ...any) error {
	return usageErrorf("%s%s %s", c.where(key), key, fmt.Sprintf(format, args...))
}

type logConfig struct {
	// Format is "text" or "json".
	Format string `yaml:"format"`
	// Level is "debug", "info", "warn" or "error".
	Level string `yaml:"level"`
}

func defaultConfig() config {
	return config{
		Concurrency:       collector.DefaultConcurrency,
		RegionConcurrency: collector.DefaultRegionConcurrency,
		MaxHostsPerCIDR:   collector.DefaultMaxHostsPerCIDR,
		MaxInputSize:      defaultMaxInputSize,
		CloudTrail:        cloudTrailConfig{Lookup: true, Files: []string{}},
		Log:               logConfig{Format: "text", Level: "info"},
		Reputation:        defaultReputationConfig(),
		Audit: auditConfig{
			FailOn:     "high",
			StaleAfter: staleAge(report.DefaultStaleAfter),
			Markers:    slices.Clone(report.DefaultMarkers),
			Ports: portsConfig{
				Admin:    portNumbers(report.DefaultAdminPorts),
				Database: portNumbers(report.DefaultDatabasePorts),
				Web:      webPortNames(report.DefaultWebPorts),
			},
			NearWorld:   nearWorldConfig{IPv4Prefix: report.DefaultNearWorldIPv4Bits, IPv6Prefix: report.DefaultNearWorldIPv6Bits},
			RuleQuota:   report.DefaultRuleQuota,
			OwnerRanges: []string{},
		},
		History: historyConfig{Keep: report.DefaultHistoryKeep},
	}
}

// maxConfigSize bounds the configuration file, which is a page of keys: --config given
// a device or an endless pipe ends with an error.
const maxConfigSize byteSize = 1 << 20

func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageErrorf("--config: %v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(newBoundedReader(f, maxConfigSize))
	if errors.Is(err, errTooLarge) {
		return nil, usageErrorf("--config %s: larger than %s: not a configuration file", path, maxConfigSize)
	}
	if err != nil {
		return nil, usageErrorf("--config %s: %v", path, err)
	}
	return data, nil
}

// loadConfigFile decodes the YAML file at path over cfg. Every error names the file and
// the line, and the key where there is one: an unknown key, a value of the wrong kind, a
// second YAML document.
func loadConfigFile(path string, cfg *config) error {
	data, err := readConfigFile(path)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil // an empty file sets nothing
	} else if err != nil {
		return yamlError(path, err)
	}
	// The decoder reads one document; a second one would be ignored. Only empty ones, as a
	// trailing "---", may follow.
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return yamlError(path, err)
		}
		if !emptyDocument(&next) {
			return usageErrorf("%s: line %d: a second YAML document: sgvet reads only one, so remove the '---' and merge the keys into the first", path, next.Line)
		}
	}
	if emptyDocument(&doc) {
		return nil // a lone "---" sets nothing either
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return usageErrorf("%s: line %d: the file must hold keys and values (workers: 4), not %s", path, top.Line, describe(top))
	}
	file := &configFile{path: path, lines: map[string]int{}}
	if err := file.check(top, reflect.TypeFor[config](), ""); err != nil {
		return err
	}
	// Every key is known and every value of the right kind: the decoder has no error left
	// to find, and its errors would speak of Go types.
	if err := doc.Decode(cfg); err != nil {
		return yamlError(path, err)
	}
	file.set = *cfg
	file.set.file = nil
	cfg.file = file
	return nil
}

// yamlError is a usage error for an error of the yaml package about the file at path.
func yamlError(path string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	return usageErrorf("%s: %s", path, strings.Join(strings.Fields(msg), " "))
}

// emptyDocument reports whether a YAML document holds nothing, as a lone "---" does.
func emptyDocument(doc *yaml.Node) bool {
	return len(doc.Content) == 0 || doc.Content[0].ShortTag() == "!!null"
}

// check checks the YAML value n of key against the Go type t it is decoded into, and
// records the line of every key in it. An unknown key, a key set twice and a value of the
// wrong kind are errors that name the file, the line and the key, in words rather than
// in Go's or YAML's types. A number with a fraction where a whole number belongs is an
// error too, where the decoder would drop the fraction.
func (f *configFile) check(n *yaml.Node, t reflect.Type, key string) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil // "key:" with no value leaves the default
	}
	if u, ok := reflect.New(t).Interface().(yaml.Unmarshaler); ok {
		if err := u.UnmarshalYAML(n); err != nil {
			return f.errorf(n.Line, key, "%v", err)
		}
		return nil
	}
	want := kindName(t)
	switch {
	case t.Kind() == reflect.Slice && n.Kind == yaml.ScalarNode:
		return f.errorf(n.Line, key, "%s is not %s: write [%s]", describe(n), want, describe(n))
	case t.Kind() == reflect.Struct && n.Kind != yaml.MappingNode,
		t.Kind() == reflect.Slice && n.Kind != yaml.SequenceNode,
		t.Kind() != reflect.Struct && t.Kind() != reflect.Slice && n.Kind != yaml.ScalarNode:
		return f.errorf(n.Line, key, "%s is not %s", describe(n), want)
	}
	tag := n.ShortTag()
	switch {
	case t == reflect.TypeFor[time.Duration]():
		if _, err := time.ParseDuration(n.Value); err == nil {
			if tag != "!!str" {
				n.Tag = "!!str" // 0: the decoder reads a duration only from text
			}
			return nil
		}
		if isNumber(n) {
			return f.errorf(n.Line, key, "%s needs a unit: %ss or %sm", n.Value, n.Value, n.Value)
		}
		return f.errorf(n.Line, key, "%s is not %s (like 30s, 5m or 24h)", describe(n), want)
	case t.Kind() == reflect.Struct:
		return f.checkMapping(n, t, key)
	case t.Kind() == reflect.Slice:
		for _, item := range n.Content {
			if err := f.check(item, t.Elem(), key); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Bool:
		if tag != "!!bool" && !slices.Contains(yaml11Bools, n.Value) {
			return f.errorf(n.Line, key, "%s is not %s", describe(n), want)
		}
	case reflect.Zero(t).CanInt():
		var i int64
		switch {
		case leadingZero.MatchString(n.Value):
			return f.errorf(n.Line, key, "%s starts with 0: write it without (YAML reads a leading 0 as octal)", n.Value)
		case tag == "!!float" && strings.Trim(n.Value, "0123456789") == "":
			return f.errorf(n.Line, key, "%s is too large", n.Value)
		case tag == "!!float" && wholeFloat(n.Value):
			return f.errorf(n.Line, key, "%s must be written as a whole number, without a fraction or an exponent", n.Value)
		case tag != "!!int":
			return f.errorf(n.Line, key, "%s is not %s", describe(n), want)
		case n.Decode(&i) != nil || reflect.Zero(t).OverflowInt(i):
			return f.errorf(n.Line, key, "%s is too large", n.Value)
		}
	case reflect.Zero(t).CanFloat():
		if tag != "!!int" && tag != "!!float" {
			return f.errorf(n.Line, key, "%s is not %s", describe(n), want)
		}
	}
	return nil
}

// checkMapping checks the keys and values of the YAML mapping n against the struct type
// t. Merges (<<: *anchor) are checked as if their keys were written in n.
func (f *configFile) checkMapping(n *yaml.Node, t reflect.Type, key string) error {
	fields := yamlFields(t)
	seen := map[string]int{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		name := k.Value
		sub, in := name, ""
		if key != "" {
			sub, in = key+"."+name, " in "+key
		}
		index, known := fields[name]
		switch {
		case k.Kind != yaml.ScalarNode:
			return usageErrorf("%s: line %d: %s is not a key", f.path, k.Line, describe(k))
		case !known:
			return usageErrorf("%s: line %d: unknown key %q%s", f.path, k.Line, name, in)
		case seen[name] > 0:
			return usageErrorf("%s: line %d: %s is set twice, first on line %d", f.path, k.Line, sub, seen[name])
		}
		seen[name] = k.Line
		if err := f.check(v, t.FieldByIndex(index).Type, sub); err != nil {
			return err
		}
	}
	for _, m := range merges {
		if m.Kind == yaml.AliasNode {
			m = m.Alias
		}
		list := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			list = m.Content
		}
		for _, m := range list {
			if m.Kind == yaml.AliasNode {
				m = m.Alias
			}
			if m.Kind != yaml.MappingNode {
				return usageErrorf("%s: line %d: << merges a mapping or a list of mappings, not %s", f.path, m.Line, describe(m))
			}
			if err := f.checkMapping(m, t, key); err != nil {
				return err
			}
		}
	}
	// The keys written here are the ones whose values count, and whose lines errors name.
	for name, line := range seen {
		if key != "" {
			name = key + "." + name
		}
		f.lines[name] = line
	}
	return nil
}

// errorf is a usage error about the value of key on line.
func (f *configFile) errorf(line int, key, format string, args ...any) error {
	return usageErrorf("%s: line %d: %s: %s", f.path, line, key, fmt.Sprintf(format, args...))
}

// yaml11Bools are the words besides true and false that the decoder reads as a bool.
var yaml11Bools = []string{"y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "n", "N", "no", "No", "NO", "off", "Off", "OFF"}

// leadingZero matches the numbers with a leading 0, which the decoder reads as octal.
var leadingZero = regexp.MustCompile(`^[-+]?0[0-9_]+$`)

// wholeFloat reports whether the YAML float s has no fraction, as 4.0 and 1e3.
func wholeFloat(s string) bool {
	f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	return err == nil && f == math.Trunc(f)
}

// kindName names what a value of type t is, for errors.
func kindName(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return "a duration"
	case t.Kind() == reflect.Struct:
		return "a mapping of keys"
	case t.Kind() == reflect.Slice:
		return "a list"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case reflect.Zero(t).CanInt():
		return "a whole number"
	case reflect.Zero(t).CanFloat():
		return "a number"
	}
	return "a string"
}

// describe shows a YAML value in an error: a scalar as written, quoted when it is text and
// shortened when it is long, or the kind of a list or a mapping.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	v := n.Value
	if r := []rune(v); len(r) > 40 {
		v = string(r[:37]) + "..."
	}
	if n.ShortTag() == "!!str" {
		return strconv.Quote(v)
	}
	return v
}

// isNumber reports whether YAML reads the scalar n as a number.
func isNumber(n *yaml.Node) bool {
	tag := n.ShortTag()
	return tag == "!!int" || tag == "!!float"
}

// scalarText returns the text of a single YAML value, or an error saying that a list or a
// mapping is not what is wanted.
func scalarText(n *yaml.Node, want string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("%s is not %s", describe(n), want)
	}
	return strings.TrimSpace(n.Value), nil
}

// validate checks the values a file or flags may have set wrongly. Messages name the key
// as it is written in the file, its line when the file set it, and the flag where there
// is one.
func (c *config) validate() error {
	if c.Concurrency < 1 || c.Concurrency > 256 {
		return c.keyErrorf("concurrency", "(--concurrency) must be between 1 and 256, not %d", c.Concurrency)
	}
	if c.RegionConcurrency < 1 {
		return c.keyErrorf("region_concurrency", "must be at least 1, not %d", c.RegionConcurrency)
	}
	if c.MaxHostsPerCIDR < 1 || c.MaxHostsPerCIDR > 1<<16 {
		return c.keyErrorf("max_hosts_per_cidr", "must be between 1 and 65536, not %d", c.MaxHostsPerCIDR)
	}
	if s := c.MaxInputSize; s < 1 || s > maxInputSizeLimit {
		return c.keyErrorf("max_input_size", "(--max-input-size) must be between 1B and %s, not %s", maxInputSizeLimit, s)
	}
	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		return c.keyErrorf("log.format", "(--log-format) must be text or json, not %q", c.Log.Format)
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		return c.keyErrorf("log.level", "(--log-level) must be debug, info, warn or error, not %q", c.Log.Level)
	}
	for _, r := range c.Regions {
		if r != "all" && !regionName.MatchString(r) {
			return c.keyErrorf("regions", "(--regions): %q is not a region name (like us-east-1) or all", r)
		}
	}
	if slices.Contains(c.Regions, "all") && len(c.Regions) > 1 {
		return c.keyErrorf("regions", "(--regions): all cannot be combined with region names")
	}
	if err := c.validateAccounts(); err != nil {
		return err
	}
	if err := c.Audit.validate(c); err != nil {
		return err
	}
	if c.History.Keep < 0 {
		return c.keyErrorf("history.keep", "must be a number of runs, or 0 to keep every run, not %d", c.History.Keep)
	}
	return c.Reputation.validate(c)
}

// validateAccounts checks the keys that name the accounts to collect. Whether --role-name
// is needed depends on the caller's account, and is checked once it is known.
func (c *config) validateAccounts() error {
	for _, a := range c.Accounts {
		if !accountID.MatchString(a) {
			return c.keyErrorf("accounts", "(--accounts): %q is not an account id (12 digits)", a)
		}
	}
	if c.Org && len(c.Accounts) > 0 {
		return c.keyErrorf("accounts", "(--accounts) and org (--org) cannot be used together: --org collects every account of the Organization")
	}
	if c.RoleName != "" && !roleName.MatchString(c.RoleName) {
		return c.keyErrorf("role_name", "(--role-name): %q is not a role name (letters, digits and +=,.@_-, at most 64)", c.RoleName)
	}
	if c.ExternalID != "" && c.RoleName == "" {
		return c.keyErrorf("external_id", "(--external-id) needs role_name (--role-name), the role it is passed to")
	}
	if (c.Org || len(c.Accounts) > 0) && len(c.Inputs) > 0 {
		return usageErrorf("--input reads saved output: it cannot be combined with --accounts or --org")
	}
	return nil
}

var (
	accountID = regexp.MustCompile(`^\d{12}$`)
	roleName  = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
)

var regionName = regexp.MustCompile(`^[a-z]{2,4}(-[a-z]+)+-\d+$`)

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

// newLogger returns the logger that writes to stderr as the configuration says.
func (c *config) newLogger(stderr io.Writer) *slog.Logger {
	level, _ := parseLevel(c.Log.Level)
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(stderr, opts))
	}
	return slog.New(slog.NewTextHandler(stderr, opts))
}

// cloudTrailConfig is where the CloudTrail events that attribute rules come from.
type cloudTrailConfig struct {
	// Lookup asks each region's CloudTrail LookupEvents, when collecting from the AWS API.
	Lookup bool `yaml:"lookup"`
	// Files are CloudTrail log files or folders of them, as CloudTrail delivers them to S3.
	Files []string `yaml:"files"`
}

// auditConfig is the part of config about sgvet audit.
type auditConfig struct {
	// FailOn is the least severity that makes the audit exit 1, or "none".
	FailOn string `yaml:"fail_on"`
	// State is the history database; empty keeps no history.
	State string `yaml:"state"`
	// StaleAfter is the age from which a rule with a temporary or personal marker is stale.
	StaleAfter staleAge `yaml:"stale_after"`
	// Markers are the words that mark a rule as temporary or personal.
	Markers []string `yaml:"markers"`
	// Ports are the administration, database and public web ports.
	Ports portsConfig `yaml:"ports"`
	// NearWorld are the prefix lengths from which an ingress source is rated as the whole
	// internet.
	NearWorld nearWorldConfig `yaml:"near_world"`
	// RuleQuota is the number of inbound, and of outbound, rules AWS allows a group.
	RuleQuota int `yaml:"rule_quota"`
	// OwnerRanges are published IP-range files (FILE or NAME=FILE) that label addresses
	// with their owner.
	OwnerRanges []string `yaml:"owner_ranges"`
}

// portsConfig is audit.ports, report.Options' port lists as the file writes them.
type portsConfig struct {
	// Admin and Database are port numbers, TCP or UDP.
	Admin    []int `yaml:"admin"`
	Database []int `yaml:"database"`
	// Web are protocols and ports: "tcp/443", "udp/443".
	Web []string `yaml:"web"`
}

// nearWorldConfig is audit.near_world.
type nearWorldConfig struct {
	IPv4Prefix int `yaml:"ipv4_prefix"`
	IPv6Prefix int `yaml:"ipv6_prefix"`
}

// maxRuleQuota is the largest rule quota AWS grants a security group, per direction.
const maxRuleQuota = 1000

// portNumbers returns ports as the configuration holds them.
func portNumbers(ports []uint16) []int {
	out := make([]int, len(ports))
	for i, p := range ports {
		out[i] = int(p)
	}
	return out
}

// webPortNames returns ports as the configuration writes them: "tcp/443".
func webPortNames(ports []report.ProtoPort) []string {
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = p.String()
	}
	return out
}

// parseWebPort parses "tcp/443" or "udp/443".
func parseWebPort(s string) (report.ProtoPort, bool) {
	proto, port, ok := strings.Cut(strings.ToLower(strings.TrimSpace(s)), "/")
	n, err := strconv.ParseUint(port, 10, 16)
	if !ok || err != nil || proto != "tcp" && proto != "udp" {
		return report.ProtoPort{}, false
	}
	return report.ProtoPort{Protocol: proto, Port: uint16(n)}, true
}

// reportOptions returns the options of report.Build that the configuration sets. The
// configuration holds every value, so none is left to report's defaults: an empty port
// list means no such ports.
func (c *config) reportOptions() report.Options {
	a := &c.Audit
	opts := report.Options{
		StaleAfter:        time.Duration(a.StaleAfter),
		Markers:           a.Markers,
		MaxHostsPerCIDR:   c.MaxHostsPerCIDR,
		AdminPorts:        make([]uint16, 0, len(a.Ports.Admin)),
		DatabasePorts:     make([]uint16, 0, len(a.Ports.Database)),
		WebPorts:          make([]report.ProtoPort, 0, len(a.Ports.Web)),
		NearWorldIPv4Bits: a.NearWorld.IPv4Prefix,
		NearWorldIPv6Bits: a.NearWorld.IPv6Prefix,
		RuleQuota:         a.RuleQuota,
	}
	for _, p := range a.Ports.Admin {
		opts.AdminPorts = append(opts.AdminPorts, uint16(p))
	}
	for _, p := range a.Ports.Database {
		opts.DatabasePorts = append(opts.DatabasePorts, uint16(p))
	}
	for _, w := range a.Ports.Web {
		if p, ok := parseWebPort(w); ok {
			opts.WebPorts = append(opts.WebPorts, p)
		}
	}
	return opts
}

func (a *auditConfig) validate(cfg *config) error {
	if a.FailOn != "none" {
		if s, err := report.ParseSeverity(a.FailOn); err != nil || s == report.Info {
			return cfg.keyErrorf("audit.fail_on", "(--fail-on) must be critical, high, medium, low or none, not %q", a.FailOn)
		}
	}
	for _, m := range a.Markers {
		if strings.TrimSpace(m) == "" {
			return cfg.keyErrorf("audit.markers", "must not hold an empty word")
		}
	}
	for _, list := range []struct {
		key   string
		ports []int
	}{{"audit.ports.admin", a.Ports.Admin}, {"audit.ports.database", a.Ports.Database}} {
		for _, p := range list.ports {
			if p < 0 || p > 65535 {
				return cfg.keyErrorf(list.key, "holds %d, which is not a port (0 to 65535)", p)
			}
		}
	}
	for _, w := range a.Ports.Web {
		if _, ok := parseWebPort(w); !ok {
			return cfg.keyErrorf("audit.ports.web", "holds %q: write a protocol and a port, like tcp/443 or udp/443", w)
		}
	}
	if n := a.NearWorld.IPv4Prefix; n < 1 || n > 32 {
		return cfg.keyErrorf("audit.near_world.ipv4_prefix", "must be between 1 and 32, not %d", n)
	}
	if n := a.NearWorld.IPv6Prefix; n < 1 || n > 128 {
		return cfg.keyErrorf("audit.near_world.ipv6_prefix", "must be between 1 and 128, not %d", n)
	}
	if n := a.RuleQuota; n < 1 || n > maxRuleQuota {
		return cfg.keyErrorf("audit.rule_quota", "must be between 1 and %d, not %d", maxRuleQuota, n)
	}
	return nil
}

// historyConfig is the part of config about the history file.
type historyConfig struct {
	// Keep is how many runs the history keeps, the newest by start; 0 keeps every run.
	Keep int `yaml:"keep"`
}

// staleAge is audit.stale_after as report.Options.StaleAfter takes it. YAML gives it as a
// number of days, "90d", or as a Go duration, "36h". Zero, "0d" or "0", means that a
// marked rule is stale at any age, and is report.StaleAtAnyAge. A negative age is refused.
type staleAge time.Duration

func (a *staleAge) UnmarshalYAML(n *yaml.Node) error {
	const want = "a number of days (90d) or a duration (36h)"
	v, err := scalarText(n, want)
	if err != nil {
		return err
	}
	var d time.Duration
	if num, ok := strings.CutSuffix(v, "d"); ok {
		k, err := strconv.Atoi(num)
		switch {
		case err != nil:
			return fmt.Errorf("%s is not %s", describe(n), want)
		case k > 100000:
			return fmt.Errorf("%s is more days than sgvet counts (100000)", describe(n))
		}
		d = time.Duration(k) * 24 * time.Hour
	} else if d, err = time.ParseDuration(v); err != nil {
		if isNumber(n) {
			return fmt.Errorf("%s needs a unit: %sd for days, or %sh for hours", v, v, v)
		}
		return fmt.Errorf("%s is not %s", describe(n), want)
	}
	switch {
	case d < 0:
		return fmt.Errorf("%s is negative; 0d makes a marked rule stale at any age", describe(n))
	case d == 0:
		*a = staleAge(report.StaleAtAnyAge)
	default:
		*a = staleAge(d)
	}
	return nil
}

// byteSize is a number of bytes. The configuration and the flags give it as a whole
// number of bytes, or with a unit: B, KiB, MiB, GiB (powers of 1024) or KB, MB, GB
// (powers of 1000), in any case, with or without a space: 512MiB, 2 GB, 1048576.
type byteSize int64

const (
	// defaultMaxInputSize is max_input_size when neither the file nor a flag sets it.
	defaultMaxInputSize byteSize = 512 << 20
	// maxInputSizeLimit is the largest max_input_size.
	maxInputSizeLimit byteSize = 64 << 30
)

// byteUnits are the units of a byteSize, in the order String tries them.
var byteUnits = []struct {
	name string
	size byteSize
}{
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3},
	{"B", 1},
}

// parseByteSize parses a size as byteSize documents it.
func parseByteSize(s string) (byteSize, error) {
	s = strings.TrimSpace(s)
	num := strings.TrimRightFunc(s, unicode.IsLetter)
	unit := s[len(num):]
	num = strings.TrimSpace(num)
	if num == "" || strings.Trim(num, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a size: a whole number of bytes, or one with a unit, like 512MiB", s)
	}
	per := byteSize(1)
	if unit != "" {
		per = 0
		for _, u := range byteUnits {
			if strings.EqualFold(u.name, unit) {
				per = u.size
			}
		}
		if per == 0 {
			return 0, fmt.Errorf("%q: the unit must be B, KiB, MiB or GiB (powers of 1024), or KB, MB or GB (powers of 1000)", s)
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || byteSize(n) > math.MaxInt64/per {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return byteSize(n) * per, nil
}

// String returns the size in the largest unit that holds it whole, binary units first:
// 512MiB, 1GB, 1500B. parseByteSize reads it back.
func (b byteSize) String() string {
	for _, u := range byteUnits {
		if b != 0 && b%u.size == 0 {
			return strconv.FormatInt(int64(b/u.size), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

func (b *byteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := scalarText(n, "a size")
	if err != nil {
		return err
	}
	size, err := parseByteSize(v)
	if err != nil {
		return err
	}
	*b = size
	return nil
}

// fieldByKey returns the field of the struct v that the dotted key of a configuration
// file sets, following the yaml tags.
func fieldByKey(v reflect.Value, key string) (reflect.Value, bool) {
	for name := range strings.SplitSeq(key, ".") {
		if v.Kind() != reflect.Struct {
			return reflect.Value{}, false
		}
		index, ok := yamlFields(v.Type())[name]
		if !ok {
			return reflect.Value{}, false
		}
		v = v.FieldByIndex(index)
	}
	return v, true
}

// yamlFields returns the index of each field of the struct type t by its YAML key,
// including the fields of structs inlined with ",inline".
func yamlFields(t reflect.Type) map[string][]int {
	fields := map[string][]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-" || (!f.IsExported() && !f.Anonymous):
		case slices.Contains(strings.Split(opts, ","), "inline"):
			for k, index := range yamlFields(f.Type) {
				fields[k] = append([]int{i}, index...)
			}
		case name == "":
			fields[strings.ToLower(f.Name)] = []int{i}
		default:
			fields[name] = []int{i}
		}
	}
	return fields
}

// sameValue reports whether two configuration values of one type are equal. Unlike
// reflect.DeepEqual it reads values behind unexported embedded structs, such as the
// providers' serviceConfig.
func sameValue(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Float32, reflect.Float64:
		return a.Float() == b.Float()
	case reflect.String:
		return a.String() == b.String()
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Struct:
		for i := range a.NumField() {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	}
	return false
}
