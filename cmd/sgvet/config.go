package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

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
	// RegionConcurrency bounds how many regions are collected at once.
	RegionConcurrency int `yaml:"region_concurrency"`
	// MaxHostsPerCIDR is the largest public prefix, in addresses, expanded into addresses.
	MaxHostsPerCIDR int `yaml:"max_hosts_per_cidr"`
	// Log configures the log lines written to stderr.
	Log logConfig `yaml:"log"`
	// Reputation configures the providers, their limits and the verdict cache.
	Reputation reputationConfig `yaml:",inline"`
	// Audit configures findings, history and the exit status of sgvet audit.
	Audit auditConfig `yaml:"audit"`

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
	// keys holds, by line, the dotted key whose value starts on it.
	keys map[int]string
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

// indexKeys records the line of every key of a YAML document, and by line the key whose
// value starts there.
func indexKeys(n *yaml.Node, prefix string, f *configFile) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			indexKeys(c, prefix, f)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := k.Value
			if prefix != "" {
				key = prefix + "." + key
			}
			f.lines[key] = k.Line
			f.keys[v.Line] = key
			indexKeys(v, key, f)
		}
	}
}

type logConfig struct {
	// Format is "text" or "json".
	Format string `yaml:"format"`
	// Level is "debug", "info", "warn" or "error".
	Level string `yaml:"level"`
}

func defaultConfig() config {
	return config{
		RegionConcurrency: collector.DefaultRegionConcurrency,
		MaxHostsPerCIDR:   collector.DefaultMaxHostsPerCIDR,
		Log:               logConfig{Format: "text", Level: "info"},
		Reputation:        defaultReputationConfig(),
		Audit: auditConfig{
			FailOn:     "high",
			StaleAfter: days(report.DefaultStaleAfter),
			Markers:    slices.Clone(report.DefaultMarkers),
		},
	}
}

// unknownField matches the yaml package's message for a key the struct lacks.
var unknownField = regexp.MustCompile(`line (\d+): field (\S+) not found in type \S+`)

// lineError matches the start of one of the yaml package's errors about a line.
var lineError = regexp.MustCompile(`^line (\d+): `)

// loadConfigFile decodes the YAML file at path over cfg. Unknown keys are an error that
// names the key and its line, and so is a value of the wrong type.
func loadConfigFile(path string, cfg *config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return usageErrorf("--config: %v", err)
	}
	file := &configFile{path: path, lines: map[string]int{}, keys: map[int]string{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err == nil {
		indexKeys(&doc, "", file)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file sets nothing
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
		msg = unknownField.ReplaceAllString(msg, `line $1: unknown key "$2"`)
		var parts []string
		for _, part := range strings.Split(msg, "\n") {
			part = strings.Join(strings.Fields(part), " ")
			// Name the key whose value is on the line, unless the message already does.
			if m := lineError.FindStringSubmatch(part); m != nil && !strings.Contains(part, "unknown key") {
				n, _ := strconv.Atoi(m[1])
				if key, ok := file.keys[n]; ok {
					part = fmt.Sprintf("line %d: %s: %s", n, key, part[len(m[0]):])
				}
			}
			if part != "" {
				parts = append(parts, part)
			}
		}
		return usageErrorf("%s: %s", path, strings.Join(parts, "; "))
	}
	file.set = *cfg
	file.set.file = nil
	cfg.file = file
	return nil
}

// validate checks the values a file or flags may have set wrongly. Messages name the key
// as it is written in the file, its line when the file set it, and the flag where there
// is one.
func (c *config) validate() error {
	if c.RegionConcurrency < 1 {
		return c.keyErrorf("region_concurrency", "must be at least 1, not %d", c.RegionConcurrency)
	}
	if c.MaxHostsPerCIDR < 1 || c.MaxHostsPerCIDR > 1<<16 {
		return c.keyErrorf("max_hosts_per_cidr", "must be between 1 and 65536, not %d", c.MaxHostsPerCIDR)
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
	if err := c.Audit.validate(c); err != nil {
		return err
	}
	return c.Reputation.validate(c)
}

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

// auditConfig is the part of config about sgvet audit.
type auditConfig struct {
	// FailOn is the least severity that makes the audit exit 1, or "none".
	FailOn string `yaml:"fail_on"`
	// State is the history database; empty keeps no history.
	State string `yaml:"state"`
	// StaleAfter is the age from which a rule with a temporary or personal marker is stale.
	StaleAfter days `yaml:"stale_after"`
	// Markers are the words that mark a rule as temporary or personal.
	Markers []string `yaml:"markers"`
}

func (a *auditConfig) validate(cfg *config) error {
	if a.FailOn != "none" {
		if s, err := report.ParseSeverity(a.FailOn); err != nil || s == report.Info {
			return cfg.keyErrorf("audit.fail_on", "(--fail-on) must be critical, high, medium, low or none, not %q", a.FailOn)
		}
	}
	if a.StaleAfter <= 0 {
		return cfg.keyErrorf("audit.stale_after", "must be more than 0")
	}
	for _, m := range a.Markers {
		if strings.TrimSpace(m) == "" {
			return cfg.keyErrorf("audit.markers", "must not hold an empty word")
		}
	}
	return nil
}

// days is a duration that YAML may give in days, "90d", or as a Go duration, "36h".
type days time.Duration

func (d *days) UnmarshalYAML(n *yaml.Node) error {
	v := strings.TrimSpace(n.Value)
	if num, ok := strings.CutSuffix(v, "d"); ok {
		var k int
		if _, err := fmt.Sscan(num, &k); err == nil && k > 0 && k < 100000 {
			*d = days(time.Duration(k) * 24 * time.Hour)
			return nil
		}
	}
	dur, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a number of days (90d) or a duration (36h)", n.Line, v)
	}
	*d = days(dur)
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
