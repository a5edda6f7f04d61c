package collector_test

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sgvet/sgvet/collector"
)

// ownerSample is the path of a sample under testdata/owners.
func ownerSample(name string) string { return filepath.Join("testdata", "owners", name) }

// loadOwners loads specs or fails the test.
func loadOwners(t *testing.T, specs ...string) *collector.OwnerRanges {
	t.Helper()
	o, err := collector.LoadOwnerRanges(specs...)
	if err != nil {
		t.Fatalf("LoadOwnerRanges(%q): %v", specs, err)
	}
	return o
}

// ownerCase is one lookup and its expected answer; a zero want means "no owner".
type ownerCase struct {
	prefix string
	want   collector.Owner
}

// owner builds an expected Owner.
func owner(name, service, region, prefix string) collector.Owner {
	return collector.Owner{Name: name, Service: service, Region: region, Prefix: netip.MustParsePrefix(prefix)}
}

// parsePrefixOrAddr reads "a.b.c.d/n" or a bare address.
func parsePrefixOrAddr(t *testing.T, s string) netip.Prefix {
	t.Helper()
	if p, err := netip.ParsePrefix(s); err == nil {
		return p
	}
	a := netip.MustParseAddr(s)
	return netip.PrefixFrom(a, a.BitLen())
}

// checkOwners runs lookup on every case.
func checkOwners(t *testing.T, name string, lookup func(netip.Prefix) (collector.Owner, bool), cases []ownerCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.prefix, func(t *testing.T) {
			got, ok := lookup(parsePrefixOrAddr(t, c.prefix))
			want, wantOK := c.want, c.want != collector.Owner{}
			if ok != wantOK || got != want {
				t.Errorf("%s(%s) = %+v, %v, want %+v, %v", name, c.prefix, got, ok, want, wantOK)
			}
		})
	}
}

func TestOwnerRangesAWS(t *testing.T) {
	o := loadOwners(t, ownerSample("aws-ip-ranges.json"))
	t.Run("Owner", func(t *testing.T) {
		checkOwners(t, "Owner", o.Owner, []ownerCase{
			// 3.5.140.0/22 is AMAZON, S3 and EC2: S3 publishes the least space.
			{"3.5.140.10", owner("AWS", "S3", "ap-northeast-2", "3.5.140.0/22")},
			{"3.5.140.0/22", owner("AWS", "S3", "ap-northeast-2", "3.5.140.0/22")},
			// IPv4-mapped IPv6 is IPv4.
			{"::ffff:3.5.140.10", owner("AWS", "S3", "ap-northeast-2", "3.5.140.0/22")},
			{"15.177.1.2", owner("AWS", "ROUTE53_HEALTHCHECKS", "GLOBAL", "15.177.0.0/18")},
			{"205.251.249.10/31", owner("AWS", "CLOUDFRONT", "GLOBAL", "205.251.249.0/24")},
			{"13.248.124.7", owner("AWS", "GLOBALACCELERATOR", "us-east-1", "13.248.124.0/24")},
			{"35.180.1.1", owner("AWS", "EC2", "eu-west-3", "35.180.0.0/16")},
			// Sources in the example estate (examples/).
			{"3.18.12.10", owner("AWS", "EC2", "us-east-2", "3.16.0.0/14")},
			{"3.130.192.37", owner("AWS", "EC2", "us-east-2", "3.130.0.0/16")},
			// Only AMAZON publishes it: the fallback.
			{"99.77.50.1", owner("AWS", "AMAZON", "eu-south-2", "99.77.48.0/21")},
			{"52.94.76.0/22", owner("AWS", "AMAZON", "us-west-2", "52.94.76.0/22")},
			// An EC2 /32 inside an AMAZON /21.
			{"99.77.55.3", owner("AWS", "EC2", "eu-south-2", "99.77.55.3/32")},
			// The narrower of two specific services.
			{"52.80.197.5", owner("AWS", "ROUTE53_HEALTHCHECKS", "cn-north-1", "52.80.197.0/25")},
			// No single ROUTE53_HEALTHCHECKS range holds the /24; the EC2 /16 does.
			{"52.80.197.0/24", owner("AWS", "EC2", "cn-north-1", "52.80.0.0/16")},
			{"2406:daf9:a800::1", owner("AWS", "S3", "ap-southeast-1", "2406:daf9:a800::/40")},
			{"2600:9000:3000::1/64", owner("AWS", "CLOUDFRONT", "GLOBAL", "2600:9000:3000::/36")},
			{"2600:f0f0:2::/48", owner("AWS", "EC2", "us-east-1", "2600:f0f0:2::/48")},
			// Outside, and wider than any range.
			{"8.8.8.8", collector.Owner{}},
			{"52.4.0.0/13", collector.Owner{}},
			{"99.77.244.0/23", collector.Owner{}},
			{"2600:f0f0::/32", collector.Owner{}},
			{"0.0.0.0/0", collector.Owner{}},
		})
	})
	t.Run("Covering", func(t *testing.T) {
		checkOwners(t, "Covering", o.Covering, []ownerCase{
			// Two adjacent ROUTE53_HEALTHCHECKS /25s hold the /24, inside an EC2 /16.
			{"52.80.197.0/24", owner("AWS", "ROUTE53_HEALTHCHECKS", "cn-north-1", "52.80.197.0/24")},
			{"::ffff:52.80.197.0/120", owner("AWS", "ROUTE53_HEALTHCHECKS", "cn-north-1", "52.80.197.0/24")},
			// Two adjacent CHIME_VOICECONNECTOR /24s in different regions.
			{"99.77.244.0/23", owner("AWS", "CHIME_VOICECONNECTOR", "", "99.77.244.0/23")},
			// Half of it is published: not covered.
			{"99.77.244.0/22", collector.Owner{}},
			{"52.4.0.0/13", collector.Owner{}},
			// One range holds it: as Owner.
			{"15.177.1.2", owner("AWS", "ROUTE53_HEALTHCHECKS", "GLOBAL", "15.177.0.0/18")},
			{"99.77.50.0/24", owner("AWS", "AMAZON", "eu-south-2", "99.77.48.0/21")},
			{"3.5.140.0/22", owner("AWS", "S3", "ap-northeast-2", "3.5.140.0/22")},
			{"2406:daba:f000::/48", owner("AWS", "EC2", "ap-southeast-4", "2406:daba:f000::/40")},
			{"8.8.8.8", collector.Owner{}},
		})
	})
}

func TestOwnerRangesGitHub(t *testing.T) {
	o := loadOwners(t, ownerSample("github-meta.json"))
	t.Run("Owner", func(t *testing.T) {
		checkOwners(t, "Owner", o.Owner, []ownerCase{
			// hooks, web, api, git, copilot and github_enterprise_importer all list it;
			// hooks lists the least.
			{"140.82.112.0/20", owner("GitHub", "hooks", "", "140.82.112.0/20")},
			{"140.82.113.5", owner("GitHub", "hooks", "", "140.82.112.0/20")},
			{"2a0a:a440::1", owner("GitHub", "hooks", "", "2a0a:a440::/29")},
			{"140.82.121.33", owner("GitHub", "packages", "", "140.82.121.33/32")},
			{"2606:50c0:8000::153", owner("GitHub", "pages", "", "2606:50c0:8000::153/128")},
			{"52.23.85.212", owner("GitHub", "importer", "", "52.23.85.212/32")},
			{"13.105.220.188/31", owner("GitHub", "actions_macos", "", "13.105.220.188/31")},
			{"4.149.100.1", owner("GitHub", "actions", "", "4.149.96.0/19")},
			{"2602:fd5e:1:1::1", owner("GitHub", "actions", "", "2602:fd5e:1::/63")},
			{"140.82.112.0/19", collector.Owner{}},
			{"4.148.0.0/15", collector.Owner{}},
			// Fastly, not GitHub.
			{"151.101.0.0/16", collector.Owner{}},
		})
	})
	t.Run("Covering", func(t *testing.T) {
		checkOwners(t, "Covering", o.Covering, []ownerCase{
			// 4.148.0.0/16, 4.149.0.0/18, 4.149.64.0/19, 4.149.96.0/19 and 4.149.128.0/17.
			{"4.148.0.0/15", owner("GitHub", "actions", "", "4.148.0.0/15")},
			{"4.149.0.0/16", owner("GitHub", "actions", "", "4.149.0.0/16")},
			{"4.148.0.0/14", collector.Owner{}},
			{"2602:fd5e:1::/62", collector.Owner{}}, // the sample lists :1::/63 and :1:2::/64 only
			// 13.105.220.128/27, /28, /29, /30 and /31 end at .189: the /26 is not whole.
			{"13.105.220.128/26", collector.Owner{}},
			{"140.82.112.0/20", owner("GitHub", "hooks", "", "140.82.112.0/20")},
			{"151.101.0.0/16", collector.Owner{}},
		})
	})
}

func TestOwnerRangesGoogle(t *testing.T) {
	goog := loadOwners(t, ownerSample("google-goog.json"))
	checkOwners(t, "Owner", goog.Owner, []ownerCase{
		{"8.8.8.8", owner("Google", "", "", "8.8.8.0/24")},
		{"34.64.130.1", owner("Google", "", "", "34.64.0.0/10")},
		{"2001:4860:4860::8888", owner("Google", "", "", "2001:4860::/32")},
		{"9.9.9.9", collector.Owner{}},
	})
	cloud := loadOwners(t, ownerSample("google-cloud.json"))
	checkOwners(t, "Owner", cloud.Owner, []ownerCase{
		{"34.64.130.1", owner("Google", "Google Cloud", "asia-northeast3", "34.64.128.0/22")},
		{"35.192.10.1", owner("Google", "Google Cloud", "us-central1", "35.192.0.0/15")},
		{"2600:1900:4000::1", owner("Google", "Google Cloud", "us-central1", "2600:1900:4000::/44")},
		{"8.8.8.8", collector.Owner{}},
	})
	checkOwners(t, "Covering", cloud.Covering, []ownerCase{
		// Eleven asia-northeast3 ranges from 34.64.128.0/22 to 34.64.192.0/18.
		{"34.64.128.0/17", owner("Google", "Google Cloud", "asia-northeast3", "34.64.128.0/17")},
		{"34.64.64.0/18", owner("Google", "Google Cloud", "asia-northeast3", "34.64.64.0/18")},
		// 34.64.0.0/19 is not in cloud.json.
		{"34.64.0.0/16", collector.Owner{}},
	})
	both := loadOwners(t, ownerSample("google-goog.json"), ownerSample("google-cloud.json"))
	checkOwners(t, "Owner", both.Owner, []ownerCase{
		// cloud.json's service is preferred to goog.json's whole space.
		{"34.64.130.1", owner("Google", "Google Cloud", "asia-northeast3", "34.64.128.0/22")},
		{"34.64.128.0/17", owner("Google", "", "", "34.64.0.0/10")},
		{"2600:1900:4000::1", owner("Google", "Google Cloud", "us-central1", "2600:1900:4000::/44")},
		{"2600:1900:8000::1", owner("Google", "", "", "2600:1900::/28")},
	})
	checkOwners(t, "Covering", both.Covering, []ownerCase{
		{"34.64.128.0/17", owner("Google", "Google Cloud", "asia-northeast3", "34.64.128.0/17")},
		{"34.64.0.0/16", owner("Google", "", "", "34.64.0.0/10")},
	})
}

func TestOwnerRangesCloudflare(t *testing.T) {
	api := loadOwners(t, ownerSample("cloudflare-ips.json"))
	checkOwners(t, "Owner", api.Owner, []ownerCase{
		{"104.16.1.1", owner("Cloudflare", "", "", "104.16.0.0/13")},
		{"131.0.72.0/22", owner("Cloudflare", "", "", "131.0.72.0/22")},
		{"2606:4700::1111", owner("Cloudflare", "", "", "2606:4700::/32")},
		{"1.1.1.1", collector.Owner{}},
	})
	list := loadOwners(t, "cloudflare="+ownerSample("cloudflare-ips-v4.txt"))
	checkOwners(t, "Owner", list.Owner, []ownerCase{
		{"104.16.1.1", owner("cloudflare", "", "", "104.16.0.0/13")},
		{"2606:4700::1111", collector.Owner{}},
	})
	checkOwners(t, "Covering", list.Covering, []ownerCase{
		// 104.16.0.0/13 and 104.24.0.0/14 are adjacent; 104.28.0.0/14 is not listed.
		{"104.16.0.0/13", owner("cloudflare", "", "", "104.16.0.0/13")},
		{"104.16.0.0/12", collector.Owner{}},
	})
}

func TestLoadOwnerRangesCombined(t *testing.T) {
	o := loadOwners(t,
		ownerSample("aws-ip-ranges.json"),
		"github-com="+ownerSample("github-meta.json"),
		ownerSample("cloudflare-ips.json"),
		"cf-list="+ownerSample("cloudflare-ips-v4.txt"),
		ownerSample("google-goog.json"),
		ownerSample("google-cloud.json"),
	)
	checkOwners(t, "Owner", o.Owner, []ownerCase{
		{"3.5.140.10", owner("AWS", "S3", "ap-northeast-2", "3.5.140.0/22")},
		// A NAME given for a JSON file replaces the owner it implies.
		{"140.82.112.0/20", owner("github-com", "hooks", "", "140.82.112.0/20")},
		// Both Cloudflare files list 104.16.0.0/13; the API answer's IPv6 is only in one.
		{"2606:4700::1111", owner("Cloudflare", "", "", "2606:4700::/32")},
		{"34.64.130.1", owner("Google", "Google Cloud", "asia-northeast3", "34.64.128.0/22")},
		{"8.8.8.8", owner("Google", "", "", "8.8.8.0/24")},
		{"151.101.0.0/16", collector.Owner{}},
	})
	got, ok := o.Owner(netip.MustParsePrefix("104.16.1.1/32"))
	if !ok || got.Prefix != netip.MustParsePrefix("104.16.0.0/13") || (got.Name != "Cloudflare" && got.Name != "cf-list") {
		t.Errorf("Owner(104.16.1.1) = %+v, %v, want Cloudflare's or cf-list's 104.16.0.0/13", got, ok)
	}
}

func TestOwnerRangesEmpty(t *testing.T) {
	var nilRanges *collector.OwnerRanges
	empty := loadOwners(t)
	for _, o := range []*collector.OwnerRanges{nilRanges, empty} {
		p := netip.MustParsePrefix("140.82.112.0/20")
		if got, ok := o.Owner(p); ok {
			t.Errorf("Owner(%v) on no ranges = %+v, want none", p, got)
		}
		if got, ok := o.Covering(p); ok {
			t.Errorf("Covering(%v) on no ranges = %+v, want none", p, got)
		}
		if got, ok := o.Owner(netip.Prefix{}); ok {
			t.Errorf("Owner(invalid) = %+v, want none", got)
		}
	}
}

func TestParseOwnerRangesErrors(t *testing.T) {
	cases := []struct {
		name, file, owner, data string
		want                    []string // substrings of the error
	}{
		{"unknown JSON", "x.json", "", `{"addresses":["151.101.0.0/16"]}`,
			[]string{"x.json", "not a known IP-range format", "prefixes[].ip_prefix", "NAME=FILE"}},
		{"JSON array", "x.json", "", `["1.2.3.0/24"]`, []string{"x.json", "not a known IP-range format"}},
		{"not JSON", "x.json", "", `{"prefixes": [`, []string{"x.json:1:14: unexpected end of JSON input"}},
		{"JSON syntax error on line 3", "aws.json", "", "{\n  \"prefixes\": [\n    {\"ip_prefix\": 3.5.140.0/22}\n  ]\n}\n",
			[]string{"aws.json:3:22: invalid character '.' after object key:value pair"}},
		{"HTML", "ips-v4", "", "<html>rate limited</html>", []string{"ips-v4", "not a known IP-range format"}},
		{"plain list without a name", "ips-v4", "", "173.245.48.0/20\n103.21.244.0/22\n",
			[]string{"ips-v4", "does not say whose", "NAME=ips-v4"}},
		{"bad line in a named list", "ips-v4", "cloudflare", "\n173.245.48.0/20\n\n103.21.244.0/33\n",
			[]string{"ips-v4", "line 4", `"103.21.244.0/33"`}},
		{"empty named list", "ips-v4", "cloudflare", "# nothing\n", []string{"ips-v4", "no address ranges"}},
		{"AWS bad ip_prefix", "ip-ranges.json", "",
			`{"syncToken":"1","createDate":"x","prefixes":[{"ip_prefix":"3.5.140.0/22","region":"ap-northeast-2","service":"AMAZON"},{"ip_prefix":"3.5.300.0/22","region":"us-east-1","service":"EC2"}],"ipv6_prefixes":[]}`,
			[]string{"ip-ranges.json", "prefixes[1].ip_prefix", `"3.5.300.0/22"`}},
		{"AWS bad ipv6_prefix", "ip-ranges.json", "",
			`{"prefixes":[],"ipv6_prefixes":[{"ipv6_prefix":"2600:1f18::/129","region":"us-east-1","service":"EC2"}]}`,
			[]string{"ip-ranges.json", "ipv6_prefixes[0].ipv6_prefix", `"2600:1f18::/129"`}},
		{"AWS element without ip_prefix", "ip-ranges.json", "",
			`{"prefixes":[{"ip_prefix":"3.5.140.0/22"},{"region":"us-east-1"}],"ipv6_prefixes":[]}`,
			[]string{"ip-ranges.json", "prefixes[1]", "no ip_prefix"}},
		{"Google bad prefix", "cloud.json", "",
			`{"syncToken":"1","creationTime":"x","prefixes":[{"ipv4Prefix":"34.64.128.0/22","service":"Google Cloud","scope":"asia-northeast3"},{"ipv6Prefix":"2600:1900:zz::/44"}]}`,
			[]string{"cloud.json", "prefixes[1].ipv6Prefix", `"2600:1900:zz::/44"`}},
		{"GitHub list mixing CIDRs and others", "meta.json", "",
			`{"verifiable_password_authentication":false,"hooks":["192.30.252.0/22","140.82.112.0/200"]}`,
			[]string{"meta.json", "hooks[1]", `"140.82.112.0/200"`}},
		{"GitHub without ranges", "meta.json", "", `{"verifiable_password_authentication":false,"installed_version":"3.12.0"}`,
			[]string{"meta.json", "no address ranges"}},
		{"Cloudflare bad CIDR", "ips.json", "",
			`{"result":{"ipv4_cidrs":["173.245.48.0/20"],"ipv6_cidrs":["2400:cb00::/32","nope"]},"success":true}`,
			[]string{"ips.json", "result.ipv6_cidrs[1]", `"nope"`}},
		{"Cloudflare failure", "ips.json", "",
			`{"result":{"ipv4_cidrs":[]},"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}`,
			[]string{"ips.json", "failed", "Authentication error"}},
		{"two formats at once", "mixed.json", "",
			`{"result":{"ipv4_cidrs":["173.245.48.0/20"]},"hooks":["192.30.252.0/22"]}`,
			[]string{"mixed.json", "more than one", "Cloudflare", "GitHub meta"}},
		{"AWS and Google keys at once", "mixed.json", "",
			`{"prefixes":[{"ip_prefix":"3.5.140.0/22"},{"ipv4Prefix":"8.8.8.0/24"}]}`,
			[]string{"mixed.json", "more than one", "AWS", "Google"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := collector.ParseOwnerRanges(c.file, c.owner, []byte(c.data))
			if err == nil {
				t.Fatalf("ParseOwnerRanges(%q, %q, %q) = %v, nil, want an error", c.file, c.owner, c.data, o)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ParseOwnerRanges(%q, %q, ...) error %q does not contain %q", c.file, c.owner, err, w)
				}
			}
		})
	}
}

func TestParseOwnerRangesFormats(t *testing.T) {
	// Formats are told apart by content: each sample under another file's name still
	// parses as what it is.
	cases := []struct {
		sample string
		probe  string
		want   collector.Owner
	}{
		{"aws-ip-ranges.json", "205.251.249.1", owner("AWS", "CLOUDFRONT", "GLOBAL", "205.251.249.0/24")},
		{"github-meta.json", "192.30.252.1", owner("GitHub", "hooks", "", "192.30.252.0/22")},
		{"cloudflare-ips.json", "173.245.48.1", owner("Cloudflare", "", "", "173.245.48.0/20")},
		{"google-goog.json", "142.250.1.1", owner("Google", "", "", "142.250.0.0/15")},
		{"google-cloud.json", "34.64.33.1", owner("Google", "Google Cloud", "asia-northeast3", "34.64.32.0/19")},
	}
	for _, c := range cases {
		t.Run(c.sample, func(t *testing.T) {
			data, err := os.ReadFile(ownerSample(c.sample))
			if err != nil {
				t.Fatal(err)
			}
			o, err := collector.ParseOwnerRanges("ips-v4.txt", "", data)
			if err != nil {
				t.Fatalf("ParseOwnerRanges(%s): %v", c.sample, err)
			}
			got, ok := o.Owner(parsePrefixOrAddr(t, c.probe))
			if !ok || got != c.want {
				t.Errorf("Owner(%s) = %+v, %v, want %+v", c.probe, got, ok, c.want)
			}
		})
	}
	// Comments, blank lines, CRLF and bare addresses in a named list.
	o, err := collector.ParseOwnerRanges("list.txt", "vendor", []byte("# vendor egress\r\n198.51.100.0/24\r\n\r\n2001:db8::7 # one host\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	checkOwners(t, "Owner", o.Owner, []ownerCase{
		{"198.51.100.9", owner("vendor", "", "", "198.51.100.0/24")},
		{"2001:db8::7", owner("vendor", "", "", "2001:db8::7/128")},
	})
}

func TestLoadOwnerRangesSpecs(t *testing.T) {
	dir := t.TempDir()
	odd := filepath.Join(dir, "a=b.txt")
	if err := os.WriteFile(odd, []byte("192.0.2.0/24\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := collector.LoadOwnerRanges(odd); err == nil || !strings.Contains(err.Error(), "does not say whose") {
		t.Errorf("LoadOwnerRanges(%q) = %v, want the file read as a plain list without a name", odd, err)
	}
	o, err := collector.LoadOwnerRanges("lab=" + odd)
	if err != nil {
		t.Fatalf("LoadOwnerRanges(lab=%s): %v", odd, err)
	}
	if got, ok := o.Owner(netip.MustParsePrefix("192.0.2.7/32")); !ok || got.Name != "lab" {
		t.Errorf("Owner(192.0.2.7) = %+v, %v, want lab's", got, ok)
	}
	for _, spec := range []string{"=" + odd, "lab="} {
		if _, err := collector.LoadOwnerRanges(spec); err == nil || !strings.Contains(err.Error(), "NAME=FILE") {
			t.Errorf("LoadOwnerRanges(%q) = %v, want a usage error", spec, err)
		}
	}
	missing := filepath.Join(dir, "ip-ranges.json")
	if _, err := collector.LoadOwnerRanges(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("LoadOwnerRanges(%q) = %v, want an error naming the file", missing, err)
	}
}

// TestOwnerRangesAgainstScan checks Owner and Covering on one owner's random ranges
// against a scan of all of them: Owner finds the longest range containing the prefix, and
// Covering holds exactly when the merged ranges hold the prefix.
func TestOwnerRangesAgainstScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var list strings.Builder
	var ranges []netip.Prefix
	for range 400 {
		bits := 14 + rng.IntN(15)
		a := netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))})
		p := netip.PrefixFrom(a, bits).Masked()
		ranges = append(ranges, p)
		fmt.Fprintln(&list, p)
	}
	o, err := collector.ParseOwnerRanges("random.txt", "r", []byte(list.String()))
	if err != nil {
		t.Fatal(err)
	}
	type span struct{ lo, hi uint32 }
	spans := make([]span, len(ranges))
	for i, p := range ranges {
		spans[i] = spanOf(p)
	}
	slices.SortFunc(spans, func(a, b span) int { return int(int64(a.lo) - int64(b.lo)) })
	var merged []span
	for _, s := range spans {
		if n := len(merged); n > 0 && uint64(s.lo) <= uint64(merged[n-1].hi)+1 {
			merged[n-1].hi = max(merged[n-1].hi, s.hi)
			continue
		}
		merged = append(merged, s)
	}
	for range 20000 {
		bits := 12 + rng.IntN(21)
		a := netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))})
		p := netip.PrefixFrom(a, bits).Masked()
		want, wantOK := netip.Prefix{}, false
		for _, r := range ranges {
			if r.Bits() <= p.Bits() && r.Contains(p.Addr()) && (!wantOK || r.Bits() > want.Bits()) {
				want, wantOK = r, true
			}
		}
		got, ok := o.Owner(p)
		if ok != wantOK || got.Prefix != want {
			t.Fatalf("Owner(%v) = %v, %v, want %v, %v", p, got.Prefix, ok, want, wantOK)
		}
		s := spanOf(p)
		coveredWant := slices.ContainsFunc(merged, func(m span) bool { return m.lo <= s.lo && s.hi <= m.hi })
		if _, covered := o.Covering(p); covered != coveredWant {
			t.Fatalf("Covering(%v) found = %v, want %v", p, covered, coveredWant)
		}
	}
}

// spanOf returns the first and last addresses of an IPv4 prefix.
func spanOf(p netip.Prefix) (s struct{ lo, hi uint32 }) {
	b := p.Masked().Addr().As4()
	s.lo = binary.BigEndian.Uint32(b[:])
	s.hi = s.lo | (1<<(32-p.Bits()) - 1)
	return s
}

func TestOwnerRangesConcurrentUse(t *testing.T) {
	o := loadOwners(t, ownerSample("aws-ip-ranges.json"), ownerSample("github-meta.json"))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if got, ok := o.Covering(netip.MustParsePrefix("52.80.197.0/24")); !ok || got.Service != "ROUTE53_HEALTHCHECKS" {
					t.Errorf("Covering(52.80.197.0/24) = %+v, %v", got, ok)
					return
				}
			}
		})
	}
	wg.Wait()
}

// syntheticAWSRanges returns an ip-ranges.json shaped like AWS's full file: about 10,000
// IPv4 and 6,000 IPv6 prefixes, every one under AMAZON and a third of them also under a
// specific service, some nested inside wider AMAZON ranges.
func syntheticAWSRanges(rng *rand.Rand) []byte {
	services := []string{"EC2", "EC2", "EC2", "S3", "CLOUDFRONT", "ROUTE53_HEALTHCHECKS", "API_GATEWAY", "GLOBALACCELERATOR"}
	regions := []string{"us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1", "GLOBAL"}
	var b strings.Builder
	b.WriteString(`{"syncToken":"1","createDate":"2026-01-01-00-00-00","prefixes":[`)
	entry := func(field, prefix string, first bool) {
		service, region := "AMAZON", regions[rng.IntN(len(regions))]
		for i := 0; i < 1+rng.IntN(3)/2; i++ {
			if !first || i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{%q:%q,"region":%q,"service":%q,"network_border_group":%q}`, field, prefix, region, service, region)
			service = services[rng.IntN(len(services))]
		}
	}
	for i := range 10000 {
		bits := 16 + rng.IntN(17)
		a := netip.AddrFrom4([4]byte{byte(3 + rng.IntN(60)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
		entry("ip_prefix", netip.PrefixFrom(a, bits).Masked().String(), i == 0)
	}
	b.WriteString(`],"ipv6_prefixes":[`)
	for i := range 6000 {
		bits := 40 + rng.IntN(25)
		a := netip.AddrFrom16([16]byte{0x26, 0x00, 0x1f, byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))})
		entry("ipv6_prefix", netip.PrefixFrom(a, bits).Masked().String(), i == 0)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// BenchmarkOwnerRanges looks up 1<<20 rule sources (IPv4 addresses, half of them in a
// published range, IPv6 addresses and IPv4 prefixes) in AWS-sized ranges. One op is one
// lookup, so a million rules take ns/op milliseconds.
func BenchmarkOwnerRanges(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	data := syntheticAWSRanges(rng)
	o, err := collector.ParseOwnerRanges("ip-ranges.json", "", data)
	if err != nil {
		b.Fatal(err)
	}
	queries := make([]netip.Prefix, 1<<20)
	for i := range queries {
		switch k := rng.IntN(100); {
		case k < 80:
			first := byte(3 + rng.IntN(60))
			if k < 40 {
				first = byte(64 + rng.IntN(160))
			}
			queries[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{first, byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))}), 32)
		case k < 95:
			queries[i] = netip.PrefixFrom(netip.AddrFrom16([16]byte{0x26, 0x00, 0x1f, byte(rng.IntN(256)), byte(rng.IntN(256)), 15: 1}), 128)
		default:
			a := netip.AddrFrom4([4]byte{byte(3 + rng.IntN(60)), byte(rng.IntN(256)), byte(rng.IntN(256)), 0})
			queries[i] = netip.PrefixFrom(a, 16+rng.IntN(13)).Masked()
		}
	}
	for _, lookup := range []struct {
		name string
		f    func(netip.Prefix) (collector.Owner, bool)
	}{{"Owner", o.Owner}, {"Covering", o.Covering}} {
		b.Run(lookup.name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				lookup.f(queries[i&(len(queries)-1)])
			}
		})
	}
	b.Run("Parse", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := collector.ParseOwnerRanges("ip-ranges.json", "", data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestOwnerJSON(t *testing.T) {
	cases := []struct {
		owner collector.Owner
		want  string
	}{
		{owner("AWS", "EC2", "us-east-2", "3.16.0.0/14"), `{"name":"AWS","service":"EC2","region":"us-east-2","prefix":"3.16.0.0/14"}`},
		{owner("Cloudflare", "", "", "2606:4700::/32"), `{"name":"Cloudflare","prefix":"2606:4700::/32"}`},
	}
	for _, c := range cases {
		got, err := json.Marshal(c.owner)
		if err != nil || string(got) != c.want {
			t.Errorf("json.Marshal(%+v) = %s, %v, want %s", c.owner, got, err, c.want)
		}
		var back collector.Owner
		if err := json.Unmarshal(got, &back); err != nil || back != c.owner {
			t.Errorf("json.Unmarshal(%s) = %+v, %v, want %+v", got, back, err, c.owner)
		}
	}
}

// TestOwnerRangesAgainstScanIPv6 checks Owner on IPv6 ranges from /8 to /40 against a scan,
// above and below the first 16 bits that lookups resolve at once.
func TestOwnerRangesAgainstScanIPv6(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	random := func(bits int) netip.Prefix {
		a := netip.AddrFrom16([16]byte{0x26, byte(rng.IntN(4)), byte(rng.IntN(4)), byte(rng.IntN(4)), byte(rng.IntN(256)), 15: 1})
		return netip.PrefixFrom(a, bits).Masked()
	}
	var list strings.Builder
	var ranges []netip.Prefix
	for range 300 {
		p := random(8 + rng.IntN(33))
		ranges = append(ranges, p)
		fmt.Fprintln(&list, p)
	}
	o, err := collector.ParseOwnerRanges("random6.txt", "r", []byte(list.String()))
	if err != nil {
		t.Fatal(err)
	}
	for range 20000 {
		p := random(4 + rng.IntN(125))
		want, wantOK := netip.Prefix{}, false
		for _, r := range ranges {
			if r.Bits() <= p.Bits() && r.Contains(p.Addr()) && (!wantOK || r.Bits() > want.Bits()) {
				want, wantOK = r, true
			}
		}
		if got, ok := o.Owner(p); ok != wantOK || got.Prefix != want {
			t.Fatalf("Owner(%v) = %v, %v, want %v, %v", p, got.Prefix, ok, want, wantOK)
		}
	}
}
