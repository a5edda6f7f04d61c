package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sgvet/sgvet/report"
)

// configError runs sgvet groups with a configuration file holding content, and the flags,
// and returns what it printed to stderr, with the file's directory removed: "cfg.yaml:
// line 2: ...". A configuration it accepts returns "".
func configError(t *testing.T, content string, flags ...string) string {
	t.Helper()
	isolateAWS(t)
	path := writeFile(t, "cfg.yaml", content)
	args := append([]string{"groups", "--config", path, "--input", "-"}, flags...)
	res := sgvet(t, `{"SecurityGroups":[]}`, args...)
	stderr := strings.ReplaceAll(res.stderr, filepath.Dir(path)+string(filepath.Separator), "")
	switch {
	case res.code == exitOK && stderr == "":
		return ""
	case res.code != exitUsage:
		t.Errorf("sgvet groups --config with %q exited %d, want %d or 0; stderr %q", content, res.code, exitUsage, stderr)
	}
	return strings.TrimSuffix(strings.TrimPrefix(stderr, "sgvet: "), "\n")
}

// configErrorCase is a configuration file, flags, and the error sgvet prints for them.
type configErrorCase struct {
	file  string
	flags []string
	want  string // "" for none
}

func runConfigErrorCases(t *testing.T, cases []configErrorCase) {
	t.Helper()
	for _, c := range cases {
		name := c.file
		if len(c.flags) > 0 {
			name += " " + strings.Join(c.flags, " ")
		}
		t.Run(name, func(t *testing.T) {
			if got := configError(t, c.file, c.flags...); got != c.want {
				t.Errorf("sgvet groups --config with %q %q:\n got %q\nwant %q", c.file, c.flags, got, c.want)
			}
		})
	}
}

// TestConfigValueErrors: a value the file sets wrongly is an error that names the file,
// the line and the key as written in the file; a value a flag sets wrongly names the key
// and the flag, and no line.
func TestConfigValueErrors(t *testing.T) {
	const sixLines = "profile: \"\"\nregions: []\nlog:\n  level: info\nproviders:\n  abuseipdb:\n"
	runConfigErrorCases(t, []configErrorCase{
		{file: "region_concurrency: 0\n", want: "cfg.yaml: line 1: region_concurrency must be at least 1, not 0"},
		{file: "log:\n  level: info\nmax_hosts_per_cidr: 70000\n", want: "cfg.yaml: line 3: max_hosts_per_cidr must be between 1 and 65536, not 70000"},
		{file: "log:\n  format: xml\n", want: `cfg.yaml: line 2: log.format (--log-format) must be text or json, not "xml"`},
		{file: "log: {level: loud}\n", want: `cfg.yaml: line 1: log.level (--log-level) must be debug, info, warn or error, not "loud"`},
		{file: "regions:\n  - us-east-1\n  - Mars\n", want: `cfg.yaml: line 1: regions (--regions): "Mars" is not a region name (like us-east-1) or all`},
		{file: "regions: [all, us-east-1]\n", want: "cfg.yaml: line 1: regions (--regions): all cannot be combined with region names"},
		{file: "audit:\n  state: \"\"\n  fail_on: info\n", want: `cfg.yaml: line 3: audit.fail_on (--fail-on) must be critical, high, medium, low or none, not "info"`},
		{file: "audit:\n  markers: [temp, \" \"]\n", want: "cfg.yaml: line 2: audit.markers must not hold an empty word"},
		{file: "audit:\n  ports:\n    admin: [22, 70000]\n", want: "cfg.yaml: line 3: audit.ports.admin holds 70000, which is not a port (0 to 65535)"},
		{file: "audit:\n  ports:\n    database: [-1]\n", want: "cfg.yaml: line 3: audit.ports.database holds -1, which is not a port (0 to 65535)"},
		{file: "audit:\n  ports:\n    web: [tcp/443, http]\n", want: `cfg.yaml: line 3: audit.ports.web holds "http": write a protocol and a port, like tcp/443 or udp/443`},
		{file: "audit:\n  ports:\n    web: [icmp/8]\n", want: `cfg.yaml: line 3: audit.ports.web holds "icmp/8": write a protocol and a port, like tcp/443 or udp/443`},
		{file: "audit:\n  near_world:\n    ipv4_prefix: 0\n", want: "cfg.yaml: line 3: audit.near_world.ipv4_prefix must be between 1 and 32, not 0"},
		{file: "audit:\n  near_world: {ipv6_prefix: 129}\n", want: "cfg.yaml: line 2: audit.near_world.ipv6_prefix must be between 1 and 128, not 129"},
		{file: "audit:\n  rule_quota: 0\n", want: "cfg.yaml: line 2: audit.rule_quota must be between 1 and 1000, not 0"},
		{file: "audit:\n  rule_quota: 1001\n", want: "cfg.yaml: line 2: audit.rule_quota must be between 1 and 1000, not 1001"},
		{file: "audit:\n  ports: {admin: [], database: [4333], web: [UDP/443]}\n  near_world: {ipv4_prefix: 32, ipv6_prefix: 1}\n  rule_quota: 1000\n"},
		{file: "workers: 0\n", want: "cfg.yaml: line 1: workers (--workers) must be between 1 and 256, not 0"},
		{file: "cache:\n  enabled: true\npatience: 0s\n", want: "cfg.yaml: line 3: patience must be more than 0, not 0s"},
		{file: sixLines + "    burst: 0\n", want: "cfg.yaml: line 7: providers.abuseipdb.burst must be at least 1, not 0"},
		{file: sixLines + "    workers: 0\n", want: `cfg.yaml: line 7: unknown key "workers" in providers.abuseipdb`},
		{file: "providers:\n  metadefender:\n    cache_ttl: -1h\n", want: "cfg.yaml: line 3: providers.metadefender.cache_ttl must not be negative (0 disables caching), not -1h0m0s"},
		{file: "providers: {greynoise: {burst: 2, retries: 11}}\n", want: "cfg.yaml: line 1: providers.greynoise.retries must be between 0 and 10, not 11"},
		{file: "providers:\n  virustotal:\n    thresholds:\n      malicious: 1\n      suspicious: 2\n", want: "cfg.yaml: line 3: providers.virustotal.thresholds need 1 <= suspicious <= malicious, not suspicious 2 and malicious 1"},
		{file: "providers:\n  metadefender:\n    batch_size: 51\n", want: "cfg.yaml: line 3: providers.metadefender.batch_size must be between 1 and 50, not 51"},

		{file: "accounts: [\"12345678901\"]\n", want: `cfg.yaml: line 1: accounts (--accounts): "12345678901" is not an account id (12 digits)`},
		{file: "org: true\naccounts: [\"123456789012\"]\n", want: "cfg.yaml: line 2: accounts (--accounts) and org (--org) cannot be used together: --org collects every account of the Organization"},
		{file: "role_name: \"a/b\"\n", want: `cfg.yaml: line 1: role_name (--role-name): "a/b" is not a role name (letters, digits and +=,.@_-, at most 64)`},
		{file: "external_id: x\n", want: "cfg.yaml: line 1: external_id (--external-id) needs role_name (--role-name), the role it is passed to"},
		{flags: []string{"--accounts", "123456789012,abc"}, want: `accounts (--accounts): "abc" is not an account id (12 digits)`},
		{flags: []string{"--org", "--accounts", "123456789012"}, want: "accounts (--accounts) and org (--org) cannot be used together: --org collects every account of the Organization"},
		{flags: []string{"--accounts", ","}, want: "--accounts needs at least one account id"},
		{flags: []string{"--org", "--input", "x.json"}, want: "--input reads saved output: it cannot be combined with --accounts or --org"},

		// A flag replaces the file's value: the error is about the flag's value, on no line.
		{file: "regions: [eu-west-1]\n", flags: []string{"--regions", "us-east-1,Mars"}, want: `regions (--regions): "Mars" is not a region name (like us-east-1) or all`},
		{file: "log:\n  level: debug\n", flags: []string{"--log-level", "loud"}, want: `log.level (--log-level) must be debug, info, warn or error, not "loud"`},
		{file: "log:\n  level: loud\n", flags: []string{"--log-level", "debug"}},
		{file: "log:\n  format: json\n", flags: []string{"--log-format", "xml"}, want: `log.format (--log-format) must be text or json, not "xml"`},
	})
}

// TestConfigTypeErrors: a value of the wrong kind names the file, the line and the key, and
// says what it is and what belongs there in words, not in Go's or YAML's types. A number
// with a fraction where a whole number belongs is refused, not cut to its whole part.
func TestConfigTypeErrors(t *testing.T) {
	runConfigErrorCases(t, []configErrorCase{
		{file: "workers: many\n", want: `cfg.yaml: line 1: workers: "many" is not a whole number`},
		{file: "workers: 4.5\n", want: "cfg.yaml: line 1: workers: 4.5 is not a whole number"},
		{file: "workers: 4.0\n", want: "cfg.yaml: line 1: workers: 4.0 must be written as a whole number, without a fraction or an exponent"},
		{file: "workers: 1e3\n", want: "cfg.yaml: line 1: workers: 1e3 must be written as a whole number, without a fraction or an exponent"},
		{file: "workers: .5\n", want: "cfg.yaml: line 1: workers: .5 is not a whole number"},
		{file: "workers: 010\n", want: "cfg.yaml: line 1: workers: 010 starts with 0: write it without (YAML reads a leading 0 as octal)"},
		{file: "workers: 99999999999999999999\n", want: "cfg.yaml: line 1: workers: 99999999999999999999 is too large"},
		{file: "workers: [4]\n", want: "cfg.yaml: line 1: workers: a list is not a whole number"},
		{file: "{workers: 4.5}\n", want: "cfg.yaml: line 1: workers: 4.5 is not a whole number"},
		{file: "log:\n  level: info\nmax_hosts_per_cidr: true\n", want: "cfg.yaml: line 3: max_hosts_per_cidr: true is not a whole number"},
		{file: "providers:\n  abuseipdb:\n    max_age_days: 30.5\n", want: "cfg.yaml: line 3: providers.abuseipdb.max_age_days: 30.5 is not a whole number"},
		{file: "providers:\n  abuseipdb:\n    burst: 1.5\n", want: "cfg.yaml: line 3: providers.abuseipdb.burst: 1.5 is not a whole number"},
		{file: "providers: {abuseipdb: {burst: many}}\n", want: `cfg.yaml: line 1: providers.abuseipdb.burst: "many" is not a whole number`},
		{file: "providers:\n  virustotal:\n    thresholds:\n      malicious: 2.5\n", want: "cfg.yaml: line 4: providers.virustotal.thresholds.malicious: 2.5 is not a whole number"},
		{file: "cache:\n  enabled: maybe\n", want: `cfg.yaml: line 2: cache.enabled: "maybe" is not true or false`},
		{file: "cache:\n  enabled: 1\n", want: "cfg.yaml: line 2: cache.enabled: 1 is not true or false"},
		{file: "cache: [true]\n", want: "cfg.yaml: line 1: cache: a list is not a mapping of keys"},
		{file: "log: text\n", want: `cfg.yaml: line 1: log: "text" is not a mapping of keys`},
		{file: "profile: [a, b]\n", want: "cfg.yaml: line 1: profile: a list is not a string"},
		{file: "regions: {us-east-1: yes}\n", want: "cfg.yaml: line 1: regions: a mapping is not a list"},
		{file: "regions: us-east-1\n", want: `cfg.yaml: line 1: regions: "us-east-1" is not a list: write ["us-east-1"]`},
		{file: "audit:\n  markers:\n    - temp\n    - [home]\n", want: "cfg.yaml: line 4: audit.markers: a list is not a string"},
		{file: "patience: 5\n", want: "cfg.yaml: line 1: patience: 5 needs a unit: 5s or 5m"},
		{file: "patience: 1.5\n", want: "cfg.yaml: line 1: patience: 1.5 needs a unit: 1.5s or 1.5m"},
		{file: "patience: \"2\"\n", want: `cfg.yaml: line 1: patience: "2" is not a duration (like 30s, 5m or 24h)`},
		{file: "history:\n  keep: -1\n", want: "cfg.yaml: line 2: history.keep must be a number of runs, or 0 to keep every run, not -1"},
		{file: "history:\n  keep: 30d\n", want: `cfg.yaml: line 2: history.keep: "30d" is not a whole number`},
		{file: "providers:\n  abuseipdb:\n    cache_ttl: soon\n", want: `cfg.yaml: line 3: providers.abuseipdb.cache_ttl: "soon" is not a duration (like 30s, 5m or 24h)`},
		{file: "providers:\n  abuseipdb:\n    timeout: {s: 1}\n", want: "cfg.yaml: line 3: providers.abuseipdb.timeout: a mapping is not a duration"},
		{file: "providers:\n  abuseipdb:\n    rate: fast\n", want: `cfg.yaml: line 3: providers.abuseipdb.rate: rate "fast" must be a positive number of requests per second, or N/s, N/m or N/h`},
		{file: "providers:\n  abuseipdb:\n    rate: 5/d\n", want: `cfg.yaml: line 3: providers.abuseipdb.rate: rate "5/d": the unit must be s, m or h`},
		{file: "providers:\n  abuseipdb:\n    rate: [1/s]\n", want: "cfg.yaml: line 3: providers.abuseipdb.rate: a list is not a rate"},
		{file: "providers:\n  abuseipdb:\n    rate: 0\n", want: `cfg.yaml: line 3: providers.abuseipdb.rate: rate "0" must be a positive number of requests per second, or N/s, N/m or N/h`},
		{file: "audit:\n  stale_after: x\n", want: `cfg.yaml: line 2: audit.stale_after: "x" is not a number of days (90d) or a duration (36h)`},
		{file: "audit:\n  stale_after: 90\n", want: "cfg.yaml: line 2: audit.stale_after: 90 needs a unit: 90d for days, or 90h for hours"},
		{file: "audit:\n  stale_after: [90d]\n", want: "cfg.yaml: line 2: audit.stale_after: a list is not a number of days (90d) or a duration (36h)"},
		{file: "audit:\n  stale_after: -5d\n", want: `cfg.yaml: line 2: audit.stale_after: "-5d" is negative; 0d makes a marked rule stale at any age`},
		{file: "audit:\n  stale_after: -36h\n", want: `cfg.yaml: line 2: audit.stale_after: "-36h" is negative; 0d makes a marked rule stale at any age`},
		{file: "audit:\n  stale_after: 1.5d\n", want: `cfg.yaml: line 2: audit.stale_after: "1.5d" is not a number of days (90d) or a duration (36h)`},
		{file: "audit:\n  stale_after: 100001d\n", want: `cfg.yaml: line 2: audit.stale_after: "100001d" is more days than sgvet counts (100000)`},

		{file: "region_concurency: 2\n", want: `cfg.yaml: line 1: unknown key "region_concurency"`},
		{file: "cache:\n  enabled: true\n  size: 10\n", want: `cfg.yaml: line 3: unknown key "size" in cache`},
		{file: "providers:\n  abuseipdb:\n    thresholds: {malicous: 80}\n", want: `cfg.yaml: line 3: unknown key "malicous" in providers.abuseipdb.thresholds`},
		{file: "inputs: [a.json]\n", want: `cfg.yaml: line 1: unknown key "inputs"`},
		{file: "workers: 2\nlog: {}\nworkers: 3\n", want: "cfg.yaml: line 3: workers is set twice, first on line 1"},
		{file: "- workers: 2\n", want: "cfg.yaml: line 1: the file must hold keys and values (workers: 4), not a list"},
		{file: "providers:\n  metadefender: &svc\n    burst: 2\n  greynoise:\n    <<: *svc\n    foo: 1\n", want: `cfg.yaml: line 6: unknown key "foo" in providers.greynoise`},
		{file: "providers:\n  metadefender: &svc\n    burst: 2.5\n  greynoise: *svc\n", want: "cfg.yaml: line 3: providers.metadefender.burst: 2.5 is not a whole number"},

		// Accepted: YAML's other words for true and false, other bases, no value, zero
		// durations without a unit, anchors and merges.
		{file: "cache: {enabled: yes}\n"},
		{file: "workers: 0x10\n"},
		{file: "workers:\nprofile:\n"},
		{file: "providers:\n  abuseipdb:\n    cache_ttl: 0\n"},
		{file: "providers:\n  metadefender: &svc\n    burst: 2\n    retries: 2\n  greynoise:\n    <<: *svc\n    burst: 3\n  virustotal: {<<: *svc}\n"},
	})
}

// TestLoadConfigFileValues: what the checks let through decodes as written.
func TestLoadConfigFileValues(t *testing.T) {
	cases := []struct {
		file string
		want func(*config) bool
	}{
		{"workers:\n", func(c *config) bool { return c.Reputation.Workers == 4 }},
		{"workers: 0x10\n", func(c *config) bool { return c.Reputation.Workers == 16 }},
		{"cache: {enabled: no}\n", func(c *config) bool { return !c.Reputation.Cache.Enabled }},
		{"providers:\n  abuseipdb:\n    cache_ttl: 0\n", func(c *config) bool { return c.Reputation.Providers.AbuseIPDB.CacheTTL == 0 }},
		{"providers:\n  abuseipdb:\n    rate: 30/m\n", func(c *config) bool { return c.Reputation.Providers.AbuseIPDB.Rate == 0.5 }},
		{"audit: {stale_after: 0d}\n", func(c *config) bool { return c.Audit.StaleAfter == staleAge(report.StaleAtAnyAge) }},
		{"audit: {stale_after: 0}\n", func(c *config) bool { return c.Audit.StaleAfter == staleAge(report.StaleAtAnyAge) }},
		{"audit: {stale_after: 0s}\n", func(c *config) bool { return c.Audit.StaleAfter == staleAge(report.StaleAtAnyAge) }},
		{"audit: {stale_after: 2d}\n", func(c *config) bool { return c.Audit.StaleAfter == staleAge(48*time.Hour) }},
		{"audit: {stale_after: 36h}\n", func(c *config) bool { return c.Audit.StaleAfter == staleAge(36*time.Hour) }},
		{"audit: {stale_after: }\n", func(c *config) bool { return c.Audit.StaleAfter == staleAge(report.DefaultStaleAfter) }},
		{"history: {}\n", func(c *config) bool { return c.History.Keep == 90 }},
		{"history: {keep: 7}\n", func(c *config) bool { return c.History.Keep == 7 }},
		{"history: {keep: 0}\n", func(c *config) bool { return c.History.Keep == 0 }},
		{"providers:\n  metadefender: &svc\n    burst: 2\n    retries: 5\n  greynoise:\n    <<: *svc\n    burst: 3\n", func(c *config) bool {
			g := c.Reputation.Providers.GreyNoise
			return g.Burst == 3 && g.Retries == 5
		}},
	}
	for _, c := range cases {
		cfg := defaultConfig()
		if err := loadConfigFile(writeFile(t, "cfg.yaml", c.file), &cfg); err != nil {
			t.Errorf("loadConfigFile(%q) = %v", c.file, err)
		} else if !c.want(&cfg) {
			t.Errorf("loadConfigFile(%q) = %+v, not what the file says", c.file, cfg)
		}
	}
}

// TestConfigDocuments: the file holds one YAML document. A second one, which would be
// ignored, is an error at its '---'; empty documents before or after the first are not.
func TestConfigDocuments(t *testing.T) {
	const second = "cfg.yaml: line %d: a second YAML document: sgvet reads only one, so remove the '---' and merge the keys into the first"
	runConfigErrorCases(t, []configErrorCase{
		{file: "workers: 2\n---\nworkers: 3\n", want: fmt.Sprintf(second, 2)},
		{file: "---\nworkers: 2\n\n---\n# more\nlog:\n  level: debug\n", want: fmt.Sprintf(second, 4)},
		{file: "workers: 2\n---\n---\nworkers: 3\n", want: fmt.Sprintf(second, 3)},
		{file: "workers: 2\n...\n---\nworkers: 3\n", want: fmt.Sprintf(second, 3)},
		{file: "workers: 2\n---\n- 3\n", want: fmt.Sprintf(second, 2)},
		{file: "workers: 2\n---\nworkers: [\n", want: "cfg.yaml: line 3: did not find expected node content"},

		{file: "---\nworkers: 2\n"},
		{file: "workers: 2\n---\n"},
		{file: "workers: 2\n---\n# nothing more\n"},
		{file: "workers: 2\n...\n"},
		{file: "---\nworkers: 2\n...\n---\n...\n"},
		{file: "---\n"},
		{file: "# only a comment\n"},
		{file: ""},
	})
}

// TestAuditStaleAfterZero: with stale_after 0d, a rule with a temporary marker is stale on
// the day it is first seen; with the default, it is not.
func TestAuditStaleAfterZero(t *testing.T) {
	isolateAWS(t)
	isolateProviders(t)
	list := writeFile(t, "list.txt", "94.73.144.0/24\n")
	input := writeFile(t, "sg.json", `{"SecurityGroups":[{"GroupId":"sg-1","GroupName":"app","VpcId":"vpc-1","OwnerId":"123456789012",
		"IpPermissions":[{"IpProtocol":"tcp","FromPort":22,"ToPort":22,"IpRanges":[{"CidrIp":"81.2.69.142/32","Description":"temp access"}]}],"IpPermissionsEgress":[]}]}`)
	cases := []struct {
		config string
		stale  bool
	}{
		{"audit: {stale_after: 0d}\n", true},
		{"audit: {stale_after: 0}\n", true},
		{"audit: {stale_after: 1h}\n", false},
		{"audit: {fail_on: high}\n", false},
	}
	for _, c := range cases {
		t.Run(c.config, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state.db")
			res := sgvet(t, "", "audit", "--config", writeFile(t, "cfg.yaml", c.config), "--no-cache", "--blocklist", list,
				"--input", input, "--state", state, "--format", "json", "--fail-on", "none")
			if res.code != exitOK {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			got := findings(decodeReport(t, res.stdout), report.StaleSource, "app", "81.2.69.142/32")
			if stale := len(got) > 0; stale != c.stale {
				t.Errorf("stale-source findings for a temp rule first seen now = %+v, want stale %v", got, c.stale)
			}
		})
	}
}

func TestParseByteSize(t *testing.T) {
	cases := []struct {
		in   string
		want byteSize
		err  string // in the error; "" for none
	}{
		{in: "0", want: 0},
		{in: "1048576", want: 1 << 20},
		{in: "512MiB", want: 512 << 20},
		{in: "512 MiB", want: 512 << 20},
		{in: "512mib", want: 512 << 20},
		{in: "1KiB", want: 1024},
		{in: "64GiB", want: 64 << 30},
		{in: "2GB", want: 2e9},
		{in: "2 gb", want: 2e9},
		{in: "1500KB", want: 1.5e6},
		{in: "3MB", want: 3e6},
		{in: "7B", want: 7},
		{in: " 10 ", want: 10},
		{in: "8589934591GiB", want: 8589934591 << 30},
		{in: "8589934592GiB", err: `"8589934592GiB" is too large`},
		{in: "99999999999999999999", err: "is too large"},
		{in: "512M", err: `"512M": the unit must be B, KiB, MiB or GiB (powers of 1024), or KB, MB or GB (powers of 1000)`},
		{in: "1k", err: "the unit must be"},
		{in: "1TiB", err: "the unit must be"},
		{in: "1.5GiB", err: `"1.5GiB" is not a size: a whole number of bytes, or one with a unit, like 512MiB`},
		{in: "-1MiB", err: "is not a size"},
		{in: "+1MiB", err: "is not a size"},
		{in: "1e9", err: "is not a size"},
		{in: "0x10", err: "is not a size"},
		{in: "MiB", err: "is not a size"},
		{in: "", err: "is not a size"},
	}
	for _, c := range cases {
		got, err := parseByteSize(c.in)
		switch {
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("parseByteSize(%q) = %d, %v; want an error with %q", c.in, got, err, c.err)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	cases := []struct {
		in   byteSize
		want string
	}{
		{0, "0B"},
		{1, "1B"},
		{1500, "1500B"},
		{1000, "1KB"},
		{1024, "1KiB"},
		{1536, "1536B"},
		{3072, "3KiB"},
		{1 << 20, "1MiB"},
		{defaultMaxInputSize, "512MiB"},
		{maxInputSizeLimit, "64GiB"},
		{1e9, "1GB"},
		{2500 * 1e6, "2500MB"},
		{1<<30 + 1, "1073741825B"},
	}
	for _, c := range cases {
		if got := c.in.String(); got != c.want {
			t.Errorf("byteSize(%d).String() = %q, want %q", int64(c.in), got, c.want)
		}
		if back, err := parseByteSize(c.in.String()); err != nil || back != c.in {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d back", c.in.String(), back, err, int64(c.in))
		}
	}
}

// TestConfigMaxInputSize: max_input_size is a size with its unit; sizes out of range, and
// anything else, are errors that name the file, the line and the key.
func TestConfigMaxInputSize(t *testing.T) {
	runConfigErrorCases(t, []configErrorCase{
		{file: "max_input_size: 0\n", want: "cfg.yaml: line 1: max_input_size (--max-input-size) must be between 1B and 64GiB, not 0B"},
		{file: "log: {}\nmax_input_size: 65GiB\n", want: "cfg.yaml: line 2: max_input_size (--max-input-size) must be between 1B and 64GiB, not 65GiB"},
		{file: "max_input_size: 512M\n", want: `cfg.yaml: line 1: max_input_size: "512M": the unit must be B, KiB, MiB or GiB (powers of 1024), or KB, MB or GB (powers of 1000)`},
		{file: "max_input_size: lots\n", want: `cfg.yaml: line 1: max_input_size: "lots" is not a size: a whole number of bytes, or one with a unit, like 512MiB`},
		{file: "max_input_size: 1.5GiB\n", want: `cfg.yaml: line 1: max_input_size: "1.5GiB" is not a size: a whole number of bytes, or one with a unit, like 512MiB`},
		{file: "max_input_size: -1\n", want: `cfg.yaml: line 1: max_input_size: "-1" is not a size: a whole number of bytes, or one with a unit, like 512MiB`},
		{file: "max_input_size: [1MiB]\n", want: "cfg.yaml: line 1: max_input_size: a list is not a size"},
		{file: "max_input_size: 21\n"}, // the input is 21 bytes
		{file: "max_input_size: 64GiB\n"},
	})
	cases := []struct {
		file string
		want byteSize
	}{
		{"log: {}\n", 512 << 20},
		{"max_input_size: 1048576\n", 1 << 20},
		{"max_input_size: 2 GB\n", 2e9},
		{"max_input_size: 16kib\n", 16 << 10},
	}
	for _, c := range cases {
		cfg := defaultConfig()
		if err := loadConfigFile(writeFile(t, "cfg.yaml", c.file), &cfg); err != nil || cfg.MaxInputSize != c.want {
			t.Errorf("loadConfigFile(%q): max_input_size %s, %v; want %s", c.file, cfg.MaxInputSize, err, c.want)
		}
	}
}

// TestConfigErrorsHideSecrets: an API key written as key_env by mistake, or credentials in
// a base_url, are refused without being printed.
func TestConfigErrorsHideSecrets(t *testing.T) {
	const secret = "c4nary0123456789abcdef0123456789"
	runConfigErrorCases(t, []configErrorCase{
		{file: "providers:\n  abuseipdb:\n    key_env: " + secret + "\n", want: "cfg.yaml: line 3: providers.abuseipdb.key_env must name an environment variable in capitals, digits and underscores, like ABUSEIPDB_API_KEY (the value is not shown, in case it is the key itself)"},
		{file: "providers:\n  virustotal:\n    key_env: \"\"\n", want: "cfg.yaml: line 3: providers.virustotal.key_env must name an environment variable in capitals, digits and underscores, like VT_API_KEY (the value is not shown, in case it is the key itself)"},
		{file: "providers:\n  metadefender:\n    key_env: md key\n", want: "cfg.yaml: line 3: providers.metadefender.key_env must name an environment variable in capitals, digits and underscores, like MDCLOUD_APIKEY (the value is not shown, in case it is the key itself)"},
		{file: "providers:\n  abuseipdb:\n    base_url: ftp://user:" + secret + "@example.com/v2\n", want: "cfg.yaml: line 3: providers.abuseipdb.base_url must not carry credentials or a query; keys are read from providers.abuseipdb.key_env"},
		{file: "providers:\n  abuseipdb:\n    base_url: \"https://api.example.com:" + secret + "/v2\"\n", want: "cfg.yaml: line 3: providers.abuseipdb.base_url is not a URL (it is not shown, in case it holds a secret)"},
		{file: "providers:\n  greynoise:\n    key_env: MY_GREYNOISE_KEY_2\n"},
	})
}

// TestReportOptions checks that the audit keys reach report.Build's options, and that an
// empty port list means no such ports rather than the defaults.
func TestReportOptions(t *testing.T) {
	for _, c := range []struct {
		file string
		want report.Options
	}{
		{
			file: "",
			want: report.Options{
				AdminPorts: report.DefaultAdminPorts, DatabasePorts: report.DefaultDatabasePorts, WebPorts: report.DefaultWebPorts,
				NearWorldIPv4Bits: 8, NearWorldIPv6Bits: 16, RuleQuota: 60,
			},
		},
		{
			file: "audit:\n  ports: {admin: [], database: [4333], web: [UDP/443]}\n  near_world: {ipv4_prefix: 12, ipv6_prefix: 20}\n  rule_quota: 200\n",
			want: report.Options{
				AdminPorts: []uint16{}, DatabasePorts: []uint16{4333}, WebPorts: []report.ProtoPort{{Protocol: "udp", Port: 443}},
				NearWorldIPv4Bits: 12, NearWorldIPv6Bits: 20, RuleQuota: 200,
			},
		},
	} {
		cfg := defaultConfig()
		if c.file != "" {
			if err := loadConfigFile(writeFile(t, "cfg.yaml", c.file), &cfg); err != nil {
				t.Fatal(err)
			}
		}
		if err := cfg.validate(); err != nil {
			t.Fatalf("config %q: %v", c.file, err)
		}
		got := cfg.reportOptions()
		got.StaleAfter, got.Markers, got.MaxHostsPerCIDR = 0, nil, 0
		if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", c.want) || got.AdminPorts == nil {
			t.Errorf("reportOptions(%q) = %#v, want %#v", c.file, got, c.want)
		}
	}
}
