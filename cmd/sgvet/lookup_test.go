package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sgvet/sgvet/internal/fakeprovider"
	"github.com/sgvet/sgvet/reputation"
)

// isolateProviders unsets every provider key and points the user's cache directory at a
// temporary one, so no test reads this machine's keys or cache.
func isolateProviders(t testing.TB) {
	for _, v := range []string{"MDCLOUD_APIKEY", "ABUSEIPDB_API_KEY", "VT_API_KEY", "GREYNOISE_API_KEY"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
}

// doublesConfig writes a configuration file that points providers at doubles, with quick
// retries. The timeout is long: a busy machine must not make a test fail.
// Each of settings ("key: value") is added to every provider, or replaces a default.
func doublesConfig(t testing.TB, urls map[string]string, settings ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("providers:\n")
	for name, url := range urls {
		lines := []string{"base_url: " + url, "rate: 1000/s", "timeout: 1m", "retries: 1", "max_retry_wait: 1s"}
		for _, set := range settings {
			key, _, _ := strings.Cut(set, ":")
			i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, key+":") })
			if i < 0 {
				lines = append(lines, set)
			} else {
				lines[i] = set
			}
		}
		fmt.Fprintf(&b, "  %s:\n    %s\n", name, strings.Join(lines, "\n    "))
	}
	path := filepath.Join(t.TempDir(), "sgvet.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var lookupListings = map[string]fakeprovider.Listing{
	"85.25.199.246": {Status: "malicious", Categories: []string{"botnet"}},
}

func TestLookup(t *testing.T) {
	isolateProviders(t)
	const key = "md-key-for-lookup"
	t.Setenv("MDCLOUD_APIKEY", key)
	md := fakeprovider.MetaDefender(t, fakeprovider.Options{Key: key, Listings: lookupListings})
	cfg := doublesConfig(t, map[string]string{"metadefender": md.URL})
	list := writeFile(t, "home.txt", "# former office\n94.73.144.0/24\n")
	cache := filepath.Join(t.TempDir(), "verdicts.db")

	tests := []struct {
		name string
		args []string
		code int
		want []string // in stdout
	}{
		{"malicious", []string{"85.25.199.246"}, exitFindings, []string{"85.25.199.246  metadefender  malicious", "botnet"}},
		{"clean", []string{"1.1.1.1", "--blocklist", list}, exitOK, []string{"1.1.1.1  metadefender  clean", "1.1.1.1  blocklist     clean"}},
		{"listed", []string{"--blocklist", list, "94.73.144.9"}, exitFindings, []string{"listed in home as 94.73.144.0/24"}},
		{"prefix", []string{"--blocklist", list, "94.73.0.0/16"}, exitFindings, []string{"94.73.0.0/16  metadefender  unknown", "94.73.0.0/16  blocklist     malicious"}},
		{"unvetted", []string{"--providers", "metadefender", "94.73.0.0/16"}, exitIncomplete, []string{"single addresses only"}},
		{"stdin", []string{"1.1.1.1", "-"}, exitFindings, []string{"1.1.1.1        metadefender  clean", "85.25.199.246  metadefender  malicious"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"lookup", "--config", cfg, "--cache", cache}, tc.args...)
			res := sgvet(t, "85.25.199.246 # from a ticket\n\n", args...)
			if res.code != tc.code {
				t.Fatalf("sgvet %q exited %d, want %d; stderr: %s", args, res.code, tc.code, res.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, res.stdout)
				}
			}
		})
	}

	// The cache answers the second time.
	before := md.Count()
	res := sgvet(t, "", "lookup", "--config", cfg, "--cache", cache, "--format", "json", "85.25.199.246", "1.1.1.1")
	if res.code != exitFindings {
		t.Fatalf("exit %d; stderr: %s", res.code, res.stderr)
	}
	if md.Count() != before {
		t.Errorf("a warm cache made %d requests", md.Count()-before)
	}
	var out struct {
		Schema    string
		Providers []reputation.ProviderStats
		Results   []reputation.Result
	}
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("JSON output: %v\n%s", err, res.stdout)
	}
	if out.Schema != lookupSchema || len(out.Results) != 2 || !out.Results[0].Verdicts[0].Cached || out.Providers[0].CacheHits != 2 {
		t.Errorf("JSON output = %+v, want two cached results", out)
	}

	// --no-cache asks again.
	before = md.Count()
	if res := sgvet(t, "", "lookup", "--config", cfg, "--no-cache", "1.1.1.1"); res.code != exitOK || md.Count() != before+1 {
		t.Errorf("--no-cache: exit %d, %d requests; stderr: %s", res.code, md.Count()-before, res.stderr)
	}
}

func TestLookupErrors(t *testing.T) {
	isolateProviders(t)
	bad := writeFile(t, "bad.netset", "85.25.0.0/16\n300.1.1.1\n")
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no target", []string{"lookup"}, nil, "at least one address"},
		{"bad target", []string{"lookup", "85.25.199.999"}, nil, `"85.25.199.999" is neither an address nor a CIDR`},
		{"no provider", []string{"lookup", "1.1.1.1"}, nil, "set MDCLOUD_APIKEY"},
		{"named without key", []string{"lookup", "--providers", "virustotal", "1.1.1.1"}, nil, "--providers names virustotal, but VT_API_KEY is not set"},
		{"unknown provider", []string{"lookup", "--providers", "shodan", "1.1.1.1"}, nil, `unknown provider "shodan"`},
		{"blocklist without list", []string{"lookup", "--providers", "blocklist", "1.1.1.1"}, nil, "--blocklist FILE"},
		{"bad list", []string{"lookup", "--blocklist", bad, "1.1.1.1"}, nil, bad + ": line 2"},
		{"cache and no-cache", []string{"lookup", "--cache", "x.db", "--no-cache", "1.1.1.1"}, nil, "cannot be used together"},
		{"bad format", []string{"lookup", "--format", "xml", "1.1.1.1"}, nil, "--format"},
		{"private", []string{"lookup", "10.1.2.3"}, nil, "10.1.2.3 is not a public address (Private-Use, RFC 1918)"},
		{"documentation", []string{"lookup", "2001:db8::/48"}, nil, "2001:db8::/48 is not a public address (Documentation"},
		{"world", []string{"lookup", "::/0"}, nil, "::/0 is the whole internet"},
		{"bad stdin line", []string{"lookup", "-"}, nil, "stdin: line 3: \"10.0.0.300\" is neither"},
		{"stdin twice", []string{"lookup", "-", "-"}, nil, "only once"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := sgvet(t, "85.25.199.246\n# ok\n10.0.0.300\n", tc.args...)
			if res.code != exitUsage || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("sgvet %q: exit %d, stderr %q; want %d and %q", tc.args, res.code, res.stderr, exitUsage, tc.want)
			}
		})
	}
}

func TestProviderConfigErrors(t *testing.T) {
	isolateProviders(t)
	tests := []struct{ yaml, want string }{
		{"providers:\n  metadefender:\n    batch_size: 51\n", "providers.metadefender.batch_size must be between 1 and 50"},
		{"providers:\n  virustotal:\n    rate: 4/day\n", "line 3: providers.virustotal.rate: rate \"4/day\""},
		{"providers:\n  virustotal:\n    rate: NaN\n", "line 3: providers.virustotal.rate: rate \"NaN\" must be a positive number"},
		{"providers:\n  abuseipdb:\n    rate: nan/m\n", "line 3: providers.abuseipdb.rate"},
		{"providers:\n  abuseipdb:\n    rate: Inf\n", "line 3: providers.abuseipdb.rate"},
		{"providers:\n  metadefender:\n    key_env: MDCLOUD_APIKEY\n    base_url: http://md.example.net/v4\n", "line 4: providers.metadefender.base_url must be https"},
		{"providers:\n  abuseipdb:\n\n    burst: 0\n", "line 4: providers.abuseipdb.burst must be at least 1"},
		{"providers:\n  abuseipdb:\n    thresholds:\n      malicious: 20\n", "suspicious <= malicious"},
		{"providers:\n  greynoise:\n    base_url: ftp://x\n", "providers.greynoise.base_url"},
		{"providers:\n  greynoise:\n    thresholds: {}\n", `unknown key "thresholds"`},
		{"workers: 0\n", "line 1: workers (--workers) must be between 1 and 256"},
		{"patience: 0s\n", "line 1: patience must be more than 0"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			cfg := writeFile(t, "c.yaml", tc.yaml)
			res := sgvet(t, "", "lookup", "--config", cfg, "1.1.1.1")
			if res.code != exitUsage || !strings.Contains(res.stderr, tc.want) {
				t.Errorf("config %q: exit %d, stderr %q; want %q", tc.yaml, res.code, res.stderr, tc.want)
			}
		})
	}

	// Plain http is allowed for a service on this machine: a local proxy or a double.
	list := writeFile(t, "list.txt", "94.73.144.0/24\n")
	for _, base := range []string{"http://127.0.0.1:9/v4", "http://localhost:9/v4", "http://[::1]:9/v4"} {
		cfg := writeFile(t, "c.yaml", "providers:\n  metadefender:\n    base_url: "+base+"\n")
		if res := sgvet(t, "", "lookup", "--config", cfg, "--providers", "blocklist", "--blocklist", list, "1.1.1.1"); res.code != exitOK {
			t.Errorf("base_url %s: exit %d, stderr %q; want it accepted", base, res.code, res.stderr)
		}
	}
}

// TestLookupNeverPrintsTheKey runs with a canary key that the service refuses, and one it
// accepts, with debug logging, and looks for the key in everything sgvet wrote.
func TestLookupNeverPrintsTheKey(t *testing.T) {
	isolateProviders(t)
	const canary = "canaryKey-7f3e9d21-DO-NOT-PRINT"
	for _, accepted := range []bool{false, true} {
		t.Run(fmt.Sprintf("accepted=%v", accepted), func(t *testing.T) {
			serverKey := "another-key"
			if accepted {
				serverKey = canary
			}
			opts := fakeprovider.Options{Key: serverKey, Listings: lookupListings}
			urls := map[string]string{
				"metadefender": fakeprovider.MetaDefender(t, opts).URL,
				"abuseipdb":    fakeprovider.AbuseIPDB(t, opts).URL,
				"virustotal":   fakeprovider.VirusTotal(t, opts).URL,
				"greynoise":    fakeprovider.GreyNoise(t, opts).URL,
			}
			for _, env := range []string{"MDCLOUD_APIKEY", "ABUSEIPDB_API_KEY", "VT_API_KEY", "GREYNOISE_API_KEY"} {
				t.Setenv(env, canary)
			}
			cfg := doublesConfig(t, urls)
			out := filepath.Join(t.TempDir(), "out.json")
			res := sgvet(t, "", "lookup", "--config", cfg, "--log-level", "debug", "--format", "json", "--output", out,
				"--cache", filepath.Join(t.TempDir(), "c.db"), "85.25.199.246", "1.1.1.1", "2a03:2880:f10c:83:face:b00c:0:25de")
			written, _ := os.ReadFile(out)
			if !accepted && (res.code != exitIncomplete || !strings.Contains(res.stderr, "MDCLOUD_APIKEY")) {
				t.Errorf("refused key: exit %d, stderr %q; want 3 and the variable named", res.code, res.stderr)
			}
			if accepted && res.code != exitFindings {
				t.Errorf("accepted key: exit %d; stderr %q", res.code, res.stderr)
			}
			for where, text := range map[string]string{"stdout": res.stdout, "stderr": res.stderr, "output": string(written)} {
				if strings.Contains(text, canary) {
					t.Errorf("%s contains the key", where)
				}
			}
		})
	}
}

func TestVetProgress(t *testing.T) {
	list, err := reputation.LoadBlocklists(writeFile(t, "l.txt", "85.25.0.0/16\n"))
	if err != nil {
		t.Fatal(err)
	}
	v := reputation.NewVetter([]reputation.Provider{reputation.NewBlocklistProvider(list...)}, reputation.Options{})
	var buf strings.Builder
	targets := []reputation.Target{}
	for _, s := range []string{"85.25.199.246", "1.1.1.1", "94.73.144.9"} {
		tg, _ := reputation.ParseTarget(s)
		targets = append(targets, tg)
	}
	stop := startVetProgress(&statusLine{w: &buf}, v, len(targets), nil)
	if _, err := v.Vet(t.Context(), targets); err != nil {
		t.Fatal(err)
	}
	stop()
	if !strings.Contains(buf.String(), "vetting: 3/3 addresses; blocklist") || !strings.HasSuffix(buf.String(), "\n") {
		t.Errorf("progress = %q, want the final count and a line end", buf.String())
	}
	if stop := startVetProgress(nil, v, 3, nil); stop == nil {
		t.Error("startVetProgress(nil) returned nil")
	}
}
