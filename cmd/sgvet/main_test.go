package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/internal/fakecloudtrail"
	"github.com/sgvet/sgvet/internal/motoserver"
)

var moto *motoserver.Server

func TestMain(m *testing.M) {
	// A copy of the test binary started by runMain is sgvet itself, signals and all.
	if os.Getenv(runMainEnv) == "1" {
		main()
	}
	os.Exit(motoserver.Main(m, &moto))
}

// result is what one invocation of sgvet produced.
type result struct {
	code           int
	stdout, stderr string
}

// sgvet runs the command line as main does and returns its exit code and output.
func sgvet(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr)
	code := exitCode(err, nil, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// isolateAWS points the SDK at nothing of this machine's: no credentials, no config files,
// and no instance metadata service.
func isolateAWS(t testing.TB) {
	dir := t.TempDir()
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// useMoto points the SDK at the emulator through the standard environment variables, as a
// user would point it at an endpoint. moto does not implement CloudTrail's LookupEvents,
// so CloudTrail is a fake that holds no event (see useCloudTrail).
func useMoto(t *testing.T) *motoserver.Server {
	srv := motoserver.Require(t, moto)
	isolateAWS(t)
	for _, kv := range srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	useCloudTrail(t, fakecloudtrail.Options{})
	return srv
}

// useCloudTrail points the SDK's CloudTrail client at a fake of LookupEvents (moto has
// none) that holds events, through AWS_ENDPOINT_URL_CLOUDTRAIL, and returns it.
func useCloudTrail(t *testing.T, opts fakecloudtrail.Options, events ...fakecloudtrail.Event) *fakecloudtrail.Server {
	ct := fakecloudtrail.New(t, opts, events...)
	t.Setenv("AWS_ENDPOINT_URL_CLOUDTRAIL", ct.URL)
	return ct
}

func TestGroupsFromAWS(t *testing.T) {
	srv := useMoto(t)
	ctx := context.Background()
	api := ec2.NewFromConfig(srv.AWSConfig(t, "eu-west-1"))
	vpc, err := api.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.9.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	sg, err := api.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("bastion"), Description: aws.String("bastion"), VpcId: vpc.Vpc.VpcId})
	if err != nil {
		t.Fatal(err)
	}
	_, err = api.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: sg.GroupId, IpPermissions: []types.IpPermission{{
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22),
		IpRanges: []types.IpRange{{CidrIp: aws.String("81.2.69.142/32"), Description: aws.String("home IP alice")}},
	}}})
	if err != nil {
		t.Fatal(err)
	}

	res := sgvet(t, "", "groups", "--regions", "us-east-1,eu-west-1", "--format", "json")
	if res.code != 0 {
		t.Fatalf("sgvet groups exited %d: %s", res.code, res.stderr)
	}
	var inv collector.Inventory
	if err := json.Unmarshal([]byte(res.stdout), &inv); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, res.stdout)
	}
	if inv.Schema != "sgvet.inventory/v1" || strings.Join(inv.Regions, ",") != "eu-west-1,us-east-1" || strings.Join(inv.Accounts, ",") != "123456789012" {
		t.Errorf("schema %q, regions %v, accounts %v", inv.Schema, inv.Regions, inv.Accounts)
	}
	var alice *collector.PublicSource
	for i, p := range inv.Public {
		if p.Address.String() == "81.2.69.142" {
			alice = &inv.Public[i]
		}
	}
	if alice == nil || len(alice.Rules) != 1 || !strings.HasPrefix(alice.Rules[0], "sgr-") {
		t.Fatalf("public 81.2.69.142 = %+v, want one sgr- rule", alice)
	}

	table := sgvet(t, "", "groups", "--regions", "eu-west-1")
	if table.code != 0 || !strings.Contains(table.stdout, "GROUP") || !strings.Contains(table.stdout, aws.ToString(sg.GroupId)) || !strings.Contains(table.stdout, "bastion") {
		t.Errorf("table (exit %d):\n%s\nstderr: %s", table.code, table.stdout, table.stderr)
	}
}

func TestGroupsRegionThatFailsIsSkipped(t *testing.T) {
	useMoto(t)
	// moto answers 500 for a region it does not know (sgvet checks region names only when no endpoint is configured); sgvet carries on and says so.
	res := sgvet(t, "", "groups", "--regions", "us-east-1,xx-nowhere-1", "--format", "json")
	if res.code != exitIncomplete {
		t.Fatalf("exit %d, want %d; stderr: %s", res.code, exitIncomplete, res.stderr)
	}
	var inv collector.Inventory
	if err := json.Unmarshal([]byte(res.stdout), &inv); err != nil {
		t.Fatal(err)
	}
	if len(inv.Skipped) != 1 || inv.Skipped[0].Region != "xx-nowhere-1" || inv.Skipped[0].Reason == "" {
		t.Errorf("skipped = %+v, want xx-nowhere-1 with a reason", inv.Skipped)
	}
	if strings.Join(inv.Regions, ",") != "us-east-1" {
		t.Errorf("regions = %v, want [us-east-1]", inv.Regions)
	}
	if !strings.Contains(res.stderr, "xx-nowhere-1") {
		t.Errorf("stderr does not name the skipped region: %s", res.stderr)
	}
}

func TestGroupsWithoutCredentials(t *testing.T) {
	isolateAWS(t)
	start := time.Now()
	res := sgvet(t, "", "groups")
	if res.code != exitUsage {
		t.Fatalf("exit %d, want %d; stderr: %s", res.code, exitUsage, res.stderr)
	}
	if !strings.Contains(res.stderr, "no AWS credentials") || !strings.Contains(res.stderr, "AWS_ACCESS_KEY_ID") || !strings.Contains(res.stderr, "--profile") {
		t.Errorf("stderr does not say how to provide credentials: %s", res.stderr)
	}
	// The search for credentials is bounded; a generous margin keeps a busy machine from
	// failing the test.
	if elapsed := time.Since(start); elapsed > credentialsTimeout+time.Minute {
		t.Errorf("took %v to find no credentials", elapsed)
	}
}

func TestGroupsUnknownProfile(t *testing.T) {
	isolateAWS(t)
	res := sgvet(t, "", "groups", "--profile", "nosuch")
	if res.code != exitUsage || !strings.Contains(res.stderr, "--profile nosuch") {
		t.Errorf("exit %d, stderr %q; want 2 naming the profile", res.code, res.stderr)
	}
}

func TestGroupsFromFiles(t *testing.T) {
	isolateAWS(t)
	dir := "../../collector/testdata/aws-cli/"
	res := sgvet(t, "", "groups", "--format", "json",
		"--input", dir+"describe-security-groups.json",
		"--input", dir+"describe-network-interfaces.json")
	if res.code != exitIncomplete { // the files name a prefix list they cannot expand
		t.Fatalf("exit %d, want %d; stderr: %s", res.code, exitIncomplete, res.stderr)
	}
	var inv collector.Inventory
	if err := json.Unmarshal([]byte(res.stdout), &inv); err != nil {
		t.Fatal(err)
	}
	if len(inv.Groups) == 0 || len(inv.Public) == 0 {
		t.Fatalf("no groups or public sources read from the files:\n%s", res.stdout)
	}
	// The same file on standard input gives the same inventory.
	data, err := os.ReadFile(dir + "describe-security-groups.json")
	if err != nil {
		t.Fatal(err)
	}
	stdin := sgvet(t, string(data), "groups", "--format", "json", "--input", "-", "--input", dir+"describe-network-interfaces.json")
	var fromStdin collector.Inventory
	if err := json.Unmarshal([]byte(stdin.stdout), &fromStdin); err != nil {
		t.Fatal(err)
	}
	if len(fromStdin.Rules) != len(inv.Rules) || len(fromStdin.Public) != len(inv.Public) {
		t.Errorf("from stdin: %d rules, %d public; from the file: %d, %d", len(fromStdin.Rules), len(fromStdin.Public), len(inv.Rules), len(inv.Public))
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	broken := write("broken.json", "{\n  \"SecurityGroups\": [\n    {\"GroupId\": \"sg-1\",}\n  ]\n}\n")
	notCLI := write("other.json", `{"Reservations": []}`)
	badKey := write("bad.yaml", "max_hosts_per_cidr: 256\nregion_concurency: 2\n")
	badValue := write("value.yaml", "max_hosts_per_cidr: lots\n")

	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no command", nil, "Usage:"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", []string{"groups", "--nope"}, "-nope"},
		{"stray argument", []string{"groups", "extra"}, `unexpected argument "extra"`},
		{"bad format", []string{"groups", "--format", "xml"}, "--format"},
		{"bad region", []string{"groups", "--regions", "us-east-1,Mars"}, `"Mars" is not a region name`},
		{"missing input", []string{"groups", "--input", filepath.Join(dir, "absent.json")}, "absent.json"},
		{"invalid JSON", []string{"groups", "--input", broken}, broken + ":3:24: invalid character '}'"},
		{"not CLI output", []string{"groups", "--input", notCLI}, notCLI + ": no SecurityGroups"},
		{"stdin twice", []string{"groups", "--input", "-", "--input", "-"}, "only once"},
		{"unknown config key", []string{"groups", "--config", badKey}, badKey + `: line 2: unknown key "region_concurency"`},
		{"bad config value", []string{"groups", "--config", badValue}, badValue + ": line 1:"},
		{"missing config", []string{"groups", "--config", filepath.Join(dir, "none.yaml")}, "none.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := sgvet(t, "{}", tt.args...)
			if res.code != exitUsage {
				t.Errorf("sgvet %q exited %d, want %d", tt.args, res.code, exitUsage)
			}
			if !strings.Contains(res.stderr, tt.want) {
				t.Errorf("sgvet %q stderr = %q, want it to contain %q", tt.args, res.stderr, tt.want)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"groups", "--help"}, {"help", "groups"}, {"lookup", "--help"}, {"help", "lookup"}, {"audit", "--help"}} {
		res := sgvet(t, "", args...)
		if res.code != 0 || !strings.Contains(res.stdout, "Usage:") || res.stderr != "" {
			t.Errorf("sgvet %q: exit %d, stdout %q, stderr %q", args, res.code, res.stdout, res.stderr)
		}
	}
	res := sgvet(t, "", "groups", "--help")
	for _, flag := range []string{"-input", "-profile", "-regions", "-config", "-format", "-output"} {
		if !strings.Contains(res.stdout, flag) {
			t.Errorf("groups --help does not explain %s:\n%s", flag, res.stdout)
		}
	}
	res = sgvet(t, "", "audit", "--help")
	for _, want := range []string{"-input", "-regions", "-providers", "-blocklist", "-cache", "-format", "-output", "-fail-on", "-state", "-workers", "Exit status", "examples/security-groups.json"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("audit --help does not explain %s:\n%s", want, res.stdout)
		}
	}
	res = sgvet(t, "", "lookup", "--help")
	for _, want := range []string{"-providers", "-blocklist", "-cache", "-no-cache", "-format", "MDCLOUD_APIKEY", "VT_API_KEY", "Exit status"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("lookup --help does not explain %s:\n%s", want, res.stdout)
		}
	}
}

func TestGroupsOutputFile(t *testing.T) {
	isolateAWS(t)
	out := filepath.Join(t.TempDir(), "inventory.json")
	res := sgvet(t, `{"SecurityGroups":[{"GroupId":"sg-1","GroupName":"web","IpPermissions":[{"IpProtocol":"tcp","FromPort":22,"ToPort":22,"IpRanges":[{"CidrIp":"81.2.69.142/32"}]}]}]}`,
		"groups", "--input", "-", "--format", "json", "--output", out)
	if res.code != 0 || res.stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"address": "81.2.69.142"`) {
		t.Errorf("output file lacks the public address:\n%s", data)
	}
}

// TestConfigExample keeps config.example.yaml in step with the code: it must load, and
// hold exactly the defaults.
func TestConfigExample(t *testing.T) {
	// Every key the file sets is compared, and every default must be in the file.
	var got config
	if err := loadConfigFile("../../config.example.yaml", &got); err != nil {
		t.Fatal(err)
	}
	got.Regions, got.Accounts = nil, nil // [] in the file, nil in the defaults
	got.Reputation.Providers.Blocklist.Files = nil
	got.file = nil
	if want := defaultConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("config.example.yaml = %+v, want the defaults %+v", got, want)
	}
}

func TestGroupsInputFixtures(t *testing.T) {
	isolateAWS(t)
	const dir = "../../collector/testdata/aws-cli/"

	res := sgvet(t, "", "groups", "--input", dir+"invalid-json.json")
	if want := dir + `invalid-json.json:8:13: invalid character '"' after object key:value pair`; res.code != exitUsage || !strings.Contains(res.stderr, want) {
		t.Errorf("invalid JSON: exit %d, stderr %q; want 2 and %q", res.code, res.stderr, want)
	}

	// A rule with an invalid CIDR is reported with its group and rule; the rest is
	// collected, and the output is incomplete.
	res = sgvet(t, "", "groups", "--input", dir+"invalid-cidr.json")
	if res.code != exitIncomplete {
		t.Fatalf("invalid CIDR: exit %d, stderr %s", res.code, res.stderr)
	}
	wantLine := `invalid CIDR "300.1.2.3/32" in group sg-0a1b2c3d4e5f60718 rule sg-0a1b2c3d4e5f60718:ingress:tcp:22:300.1.2.3/32`
	if !strings.Contains(res.stdout, wantLine) || !strings.Contains(res.stdout, "public: 2 addresses, 0 prefixes, 1 whole-internet range") {
		t.Errorf("table does not report the invalid rule and the other sources:\n%s", res.stdout)
	}
	if !strings.Contains(res.stderr, "invalid CIDR") || !strings.Contains(res.stderr, "300.1.2.3/32") {
		t.Errorf("stderr has no warning for the invalid rule: %s", res.stderr)
	}
}

// TestGroupsExample runs the README's first command.
func TestGroupsExample(t *testing.T) {
	isolateAWS(t)
	res := sgvet(t, "", "groups", "--input", "../../examples/security-groups.json", "--input", "../../examples/network-interfaces.json", "--input", "../../examples/prefix-lists.json")
	// The example's customer-managed prefix list cannot be expanded from files.
	if res.code != exitIncomplete || !strings.Contains(res.stdout, "skipped prefix list") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	if !strings.Contains(res.stdout, "34 groups") || !strings.Contains(res.stdout, "1 AWS service list") {
		t.Errorf("summary does not count the example's groups and its AWS service list:\n%s", res.stdout)
	}
}

// TestNoSecretInOutput runs with canary credentials and debug logging, through a region that
// fails, and looks for the secrets in everything sgvet printed.
func TestNoSecretInOutput(t *testing.T) {
	useMoto(t)
	const secret, token = "canarySecretKey0123456789abcdefSECRET", "canarySessionToken0123456789TOKEN"
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_SESSION_TOKEN", token)
	res := sgvet(t, "", "groups", "--regions", "us-east-1,xx-nowhere-1", "--log-level", "debug", "--format", "json")
	if res.code != exitIncomplete {
		t.Fatalf("exit %d, want %d; stderr: %s", res.code, exitIncomplete, res.stderr)
	}
	for _, s := range []string{secret, token} {
		if strings.Contains(res.stdout+res.stderr, s) {
			t.Errorf("output contains the secret %q", s)
		}
	}
}

func TestGroupsTableEscapesControlCharacters(t *testing.T) {
	isolateAWS(t)
	res := sgvet(t, `{"SecurityGroups":[{"GroupId":"sg-1","GroupName":"evil\u001b[2J\tname\nline","VpcId":"vpc-1"}]}`, "groups", "--input", "-")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if strings.ContainsAny(res.stdout, "\x1b\t") || !strings.Contains(res.stdout, "evil [2J name line") {
		t.Errorf("table passes control characters through:\n%q", res.stdout)
	}
}

// TestGroupsSources: --sources lists each group's public sources, one line per rule with
// the group, ports, source and description; without it the table says how to see them,
// and --format json is the same either way.
func TestGroupsSources(t *testing.T) {
	isolateAWS(t)
	in := []string{"--input", "../../examples/security-groups.json", "--input", "../../examples/network-interfaces.json"}
	for _, tt := range []struct {
		name     string
		args     []string
		want     []string
		wantLine []string // the words of one line, in order
		not      []string
	}{
		{"default", nil, []string{"--sources"}, nil, []string{"PUBLIC SOURCE"}},
		{"sources", []string{"--sources"}, []string{"PUBLIC SOURCE"},
			[]string{"sg-2467e74e0520f8773", "sftp", "ingress", "tcp/22", "41.71.171.50/32", "supplier upload"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := sgvet(t, "", append(append([]string{"groups"}, in...), tt.args...)...)
			// The example's customer-managed prefix lists cannot be expanded from files.
			if res.code != 0 && res.code != exitIncomplete {
				t.Fatalf("exit %d, stderr: %s", res.code, res.stderr)
			}
			for _, want := range tt.want {
				if !strings.Contains(res.stdout, want) {
					t.Errorf("groups %v lacks %q:\n%s", tt.args, want, res.stdout)
				}
			}
			for _, not := range tt.not {
				if strings.Contains(res.stdout, not) {
					t.Errorf("groups %v has %q:\n%s", tt.args, not, res.stdout)
				}
			}
			if tt.wantLine != nil {
				found := false
				for _, line := range strings.Split(res.stdout, "\n") {
					if strings.Join(strings.Fields(line), " ") == strings.Join(tt.wantLine, " ")+" "+"sg-2467e74e0520f8773:ingress:tcp:22:41.71.171.50/32" {
						found = true
					}
				}
				if !found {
					t.Errorf("groups %v has no line %q:\n%s", tt.args, tt.wantLine, res.stdout)
				}
			}
		})
	}
	plain := sgvet(t, "", append(append([]string{"groups"}, in...), "--format", "json")...)
	with := sgvet(t, "", append(append([]string{"groups"}, in...), "--format", "json", "--sources")...)
	strip := func(s string) string { return regexp.MustCompile(`"collected_at": "[^"]*"`).ReplaceAllString(s, "") }
	if strip(plain.stdout) != strip(with.stdout) {
		t.Error("groups --format json differs with --sources")
	}
}

// The collector's target is gcPercent unless GOGC is set, when Go's own reading of it
// stands.
func TestTuneGC(t *testing.T) {
	saved := debug.SetGCPercent(100)
	defer debug.SetGCPercent(saved)
	for _, tc := range []struct {
		name string
		env  map[string]string
		want int
	}{
		{"GOGC unset", nil, gcPercent},
		{"GOGC set", map[string]string{"GOGC": "100"}, 100},
		{"GOGC set empty", map[string]string{"GOGC": ""}, 100},
	} {
		debug.SetGCPercent(100)
		tuneGC(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
		if got := debug.SetGCPercent(100); got != tc.want {
			t.Errorf("%s: GC percent = %d, want %d", tc.name, got, tc.want)
		}
	}
}
