package main

import (
	"path/filepath"
	"strings"
	"testing"
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
		{file: "workers: 0\n", want: "cfg.yaml: line 1: workers (--workers) must be between 1 and 256, not 0"},
		{file: "cache:\n  enabled: true\npatience: 0s\n", want: "cfg.yaml: line 3: patience must be more than 0, not 0s"},
		{file: sixLines + "    burst: 0\n", want: "cfg.yaml: line 7: providers.abuseipdb.burst must be at least 1, not 0"},
		{file: sixLines + "    workers: 0\n", want: `cfg.yaml: line 7: unknown key "workers"`},
		{file: "providers:\n  metadefender:\n    cache_ttl: -1h\n", want: "cfg.yaml: line 3: providers.metadefender.cache_ttl must not be negative (0 disables caching), not -1h0m0s"},
		{file: "providers: {greynoise: {burst: 2, retries: 11}}\n", want: "cfg.yaml: line 1: providers.greynoise.retries must be between 0 and 10, not 11"},
		{file: "providers:\n  virustotal:\n    thresholds:\n      malicious: 1\n      suspicious: 2\n", want: "cfg.yaml: line 3: providers.virustotal.thresholds need 1 <= suspicious <= malicious, not suspicious 2 and malicious 1"},
		{file: "providers:\n  metadefender:\n    batch_size: 51\n", want: "cfg.yaml: line 3: providers.metadefender.batch_size must be between 1 and 50, not 51"},

		// A flag replaces the file's value: the error is about the flag's value, on no line.
		{file: "regions: [eu-west-1]\n", flags: []string{"--regions", "us-east-1,Mars"}, want: `regions (--regions): "Mars" is not a region name (like us-east-1) or all`},
		{file: "log:\n  level: debug\n", flags: []string{"--log-level", "loud"}, want: `log.level (--log-level) must be debug, info, warn or error, not "loud"`},
		{file: "log:\n  level: loud\n", flags: []string{"--log-level", "debug"}},
		{file: "log:\n  format: json\n", flags: []string{"--log-format", "xml"}, want: `log.format (--log-format) must be text or json, not "xml"`},
	})
}
