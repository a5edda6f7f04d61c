package reputation

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// blocklistTestdata is the folder of the small blocklist fixtures.
var blocklistTestdata = filepath.Join("testdata", "blocklists")

// blocklistFireHOLName is where the real FireHOL level 1 list lives, outside the
// repository: shared/testdata beside the clone (or beside any folder above it), or in the
// folder SGVET_SHARED_TESTDATA names.
var blocklistFireHOLName = filepath.Join("shared", "testdata", "firehol_level1.netset")

// blocklistFireHOLPath is the real list's path, or the first place it was looked for.
var blocklistFireHOLPath = findFireHOL()

func findFireHOL() string {
	if dir := os.Getenv("SGVET_SHARED_TESTDATA"); dir != "" {
		return filepath.Join(dir, filepath.Base(blocklistFireHOLName))
	}
	first := filepath.Join("..", "..", blocklistFireHOLName)
	dir, err := filepath.Abs(".")
	if err != nil {
		return first
	}
	for {
		if p := filepath.Join(dir, blocklistFireHOLName); fileExists(p) {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return first
		}
		dir = parent
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// blocklistFixtures are the fixtures NewBlocklistProvider gets in the tests, in order.
var blocklistFixtures = []string{
	"test_level1.netset",
	"test_attackers.ipset",
	"drop.txt",
	"dropv6.txt",
	"drop_v4.json",
	"mixed.txt",
}

func loadBlocklistFixture(t testing.TB, name string) *Blocklist {
	t.Helper()
	l, err := LoadBlocklist(filepath.Join(blocklistTestdata, name))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func blocklistFixtureProvider(t testing.TB) *BlocklistProvider {
	t.Helper()
	var lists []*Blocklist
	for _, name := range blocklistFixtures {
		lists = append(lists, loadBlocklistFixture(t, name))
	}
	return NewBlocklistProvider(lists...)
}

// loadBlocklistFireHOL loads the real FireHOL level 1 list, skipping the test when it is absent,
// unless running in CI.
func loadBlocklistFireHOL(t testing.TB) *Blocklist {
	t.Helper()
	if _, err := os.Stat(blocklistFireHOLPath); errors.Is(err, fs.ErrNotExist) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing (looked beside the repository and above it; SGVET_SHARED_TESTDATA names another folder)", blocklistFireHOLPath)
		}
		t.Skipf("%s is missing (looked beside the repository and above it; SGVET_SHARED_TESTDATA names another folder)", blocklistFireHOLPath)
	}
	l, err := LoadBlocklist(blocklistFireHOLPath)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func blocklistTarget(t testing.TB, s string) Target {
	t.Helper()
	target, err := ParseTarget(s)
	if err != nil {
		t.Fatal(err)
	}
	return target
}

// blocklistMatchStrings returns matches as "<list> <entry>".
func blocklistMatchStrings(ms []BlocklistMatch) []string {
	var s []string
	for _, m := range ms {
		s = append(s, m.List+" "+m.Prefix.String())
	}
	return s
}

func blocklistPrefixes(l *Blocklist) []string {
	var s []string
	for _, e := range l.entries {
		s = append(s, e.prefix.String())
	}
	return s
}

func TestLoadBlocklist(t *testing.T) {
	tests := []struct {
		file     string
		format   BlocklistFormat
		name     string
		category string
		entries  []string
		ids      []string
	}{
		{
			file:     "test_level1.netset",
			format:   BlocklistFireHOL,
			name:     "test_level1",
			category: "attacks",
			entries:  []string{"5.188.10.0/23", "85.25.0.0/16", "185.50.196.0/22", "198.51.100.0/24", "203.0.113.9/32"},
		},
		{
			file:     "test_attackers.ipset",
			format:   BlocklistFireHOL,
			name:     "test_attackers",
			category: "reputation",
			entries:  []string{"85.25.43.94/32", "91.240.118.172/32", "185.220.101.1/32"},
		},
		{
			file:     "drop.txt",
			format:   BlocklistSpamhausDROP,
			name:     "Spamhaus DROP List",
			category: "blocklist",
			entries:  []string{"1.10.16.0/20", "1.19.0.0/16", "2.56.192.0/22", "85.25.128.0/17"},
			ids:      []string{"SBL256894", "SBL434604", "SBL459831", "SBL900001"},
		},
		{
			file:     "dropv6.txt",
			format:   BlocklistSpamhausDROP,
			name:     "Spamhaus IPv6 DROP List",
			category: "blocklist",
			entries:  []string{"2001:67c:13c::/48", "2a03:2880::/32", "2a06:e480::/29"},
			ids:      []string{"SBL303641", "SBL900002", "SBL900003"},
		},
		{
			file:     "drop_v4.json",
			format:   BlocklistSpamhausJSON,
			name:     "drop_v4",
			category: "blocklist",
			entries:  []string{"1.10.16.0/20", "2.56.192.0/22"},
			ids:      []string{"SBL256894", "SBL459831"},
		},
		{
			file:     "mixed.txt",
			format:   BlocklistPlain,
			name:     "mixed",
			category: "blocklist",
			entries: []string{
				"45.155.205.233/32", "91.240.118.172/32", "185.50.196.0/24", "185.50.196.7/32",
				"2001:db8:1::1/128", "2a03:2880:f003::/48",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			l := loadBlocklistFixture(t, tt.file)
			if got := l.Format(); got != tt.format {
				t.Errorf("Format() = %q, want %q", got, tt.format)
			}
			if got := l.Name(); got != tt.name {
				t.Errorf("Name() = %q, want %q", got, tt.name)
			}
			if got := l.Category(); got != tt.category {
				t.Errorf("Category() = %q, want %q", got, tt.category)
			}
			if got := blocklistPrefixes(l); !slices.Equal(got, tt.entries) {
				t.Errorf("entries = %v, want %v", got, tt.entries)
			}
			if got := l.Len(); got != len(tt.entries) {
				t.Errorf("Len() = %d, want %d", got, len(tt.entries))
			}
			if tt.ids != nil {
				var ids []string
				for _, e := range l.entries {
					ids = append(ids, e.id)
				}
				if !slices.Equal(ids, tt.ids) {
					t.Errorf("ids = %v, want %v", ids, tt.ids)
				}
			}
		})
	}
}

func TestParseBlocklist(t *testing.T) {
	const fireHOLHeader = "#\n# my_set\n#\n# ipv4 hash:net ipset\n#\n# Category        : abuse\n# Version         : 2\n#\n"
	tests := []struct {
		name     string // also the file name given to ParseBlocklist
		content  string
		format   BlocklistFormat
		list     string
		category string
		entries  []string
	}{
		{
			name:     "netset.txt",
			content:  fireHOLHeader + "85.25.0.0/16\n",
			format:   BlocklistFireHOL,
			list:     "my_set",
			category: "abuse",
			entries:  []string{"85.25.0.0/16"},
		},
		{
			name:     "firehol-keys-only.netset",
			content:  "# Maintainer      : Test\n# Category        : malware\n5.188.10.0/23\n",
			format:   BlocklistFireHOL,
			list:     "firehol-keys-only",
			category: "malware",
			entries:  []string{"5.188.10.0/23"},
		},
		{
			name:     "firehol-hash-only.ipset",
			content:  "#\n# ipv6 hash:net ipset\n#\n2a03:2880::/32\n",
			format:   BlocklistFireHOL,
			list:     "firehol-hash-only",
			category: "blocklist",
			entries:  []string{"2a03:2880::/32"},
		},
		{
			name:     "plain-with-hash-comments.netset",
			content:  "# my own list\n# not FireHOL\n85.25.43.94\n",
			format:   BlocklistPlain,
			list:     "plain-with-hash-comments",
			category: "blocklist",
			entries:  []string{"85.25.43.94/32"},
		},
		{
			name:     "no-comments",
			content:  "85.25.43.94\n2a03:2880::1\n",
			format:   BlocklistPlain,
			list:     "no-comments",
			category: "blocklist",
			entries:  []string{"85.25.43.94/32", "2a03:2880::1/128"},
		},
		{
			name:     "semicolon-plain.txt",
			content:  "; local list\n85.25.43.94 ; seen 2024-05-01\n",
			format:   BlocklistPlain,
			list:     "semicolon-plain",
			category: "blocklist",
			entries:  []string{"85.25.43.94/32"},
		},
		{
			name:     "drop-without-header.txt",
			content:  "1.10.16.0/20 ; SBL256894\n",
			format:   BlocklistSpamhausDROP,
			list:     "drop-without-header",
			category: "blocklist",
			entries:  []string{"1.10.16.0/20"},
		},
		{
			name:     "drop-2015.txt",
			content:  "; Spamhaus DROP List 2015/09/14 - (c) 2015 The Spamhaus Project\n1.10.16.0/20 ; SBL256894\n",
			format:   BlocklistSpamhausDROP,
			list:     "Spamhaus DROP List",
			category: "blocklist",
			entries:  []string{"1.10.16.0/20"},
		},
		{
			name:     "drop-crlf.txt",
			content:  "; Spamhaus EDROP List 2024/05/01 - (c) 2024 The Spamhaus Project\r\n1.10.16.0/20 ; SBL256894\r\n",
			format:   BlocklistSpamhausDROP,
			list:     "Spamhaus EDROP List",
			category: "blocklist",
			entries:  []string{"1.10.16.0/20"},
		},
		{
			name:     "drop_v6.json",
			content:  "\n{\"cidr\":\"2a06:e480::/29\",\"sblid\":\"SBL900003\",\"rir\":\"ripencc\"}\n\n{\"type\":\"metadata\",\"records\":1}\n",
			format:   BlocklistSpamhausJSON,
			list:     "drop_v6",
			category: "blocklist",
			entries:  []string{"2a06:e480::/29"},
		},
		{
			name:     "bom.txt",
			content:  "\uFEFF85.25.43.94\n",
			format:   BlocklistPlain,
			list:     "bom",
			category: "blocklist",
			entries:  []string{"85.25.43.94/32"},
		},
		{
			name:     "bogons.txt",
			content:  "0.0.0.0/8\n10.0.0.0/8\n224.0.0.0/3\n127.0.0.1\n::/128\nfc00::/7\n",
			format:   BlocklistPlain,
			list:     "bogons",
			category: "blocklist",
			entries:  []string{"0.0.0.0/8", "10.0.0.0/8", "127.0.0.1/32", "224.0.0.0/3", "::/128", "fc00::/7"},
		},
		{
			name:     "unmasked-and-mapped.txt",
			content:  "85.25.43.94/16\n::ffff:91.240.118.172\n::ffff:5.188.10.0/119\n2a03:2880:f003:c07::1/48\n",
			format:   BlocklistPlain,
			list:     "unmasked-and-mapped",
			category: "blocklist",
			entries:  []string{"5.188.10.0/23", "85.25.0.0/16", "91.240.118.172/32", "2a03:2880:f003::/48"},
		},
		{
			name:     "duplicates.txt",
			content:  "85.25.0.0/16\n85.25.43.94\n85.25.0.0/16\n85.25.1.2/16\n",
			format:   BlocklistPlain,
			list:     "duplicates",
			category: "blocklist",
			entries:  []string{"85.25.0.0/16", "85.25.43.94/32"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseBlocklist(strings.NewReader(tt.content), tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if got := l.Format(); got != tt.format {
				t.Errorf("Format() = %q, want %q", got, tt.format)
			}
			if got := l.Name(); got != tt.list {
				t.Errorf("Name() = %q, want %q", got, tt.list)
			}
			if got := l.Category(); got != tt.category {
				t.Errorf("Category() = %q, want %q", got, tt.category)
			}
			if got := blocklistPrefixes(l); !slices.Equal(got, tt.entries) {
				t.Errorf("entries = %v, want %v", got, tt.entries)
			}
		})
	}
}

func TestParseBlocklistErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"bad-v4.txt", "85.25.0.0/16\n\n300.1.1.1\n", `bad-v4.txt: line 3: "300.1.1.1" is not an address or CIDR`},
		{"bad-bits.txt", "85.25.0.0/33\n", `bad-bits.txt: line 1: "85.25.0.0/33" is not an address or CIDR`},
		{"two-fields.txt", "85.25.0.0/16 85.26.0.0/16\n", `two-fields.txt: line 1: "85.25.0.0/16 85.26.0.0/16" is not an address or CIDR`},
		{"zone.txt", "fe80::1%eth0\n", `zone.txt: line 1: address "fe80::1%eth0" has a zone`},
		{"range.netset", "#\n# x\n#\n# ipv4 hash:ip ipset\n#\n1.2.3.4-1.2.3.9\n", `range.netset: line 6: "1.2.3.4-1.2.3.9" is not an address or CIDR`},
		{"drop.txt", "; Spamhaus DROP List 2024/05/01\nSBL256894 ; 1.10.16.0/20\n", `drop.txt: line 2: "SBL256894" is not an address or CIDR`},
		{"bad-cidr.json", "{\"cidr\":\"1.10.16.0/20\"}\n{\"cidr\":\"1.10.16.0/40\"}\n", `bad-cidr.json: line 2: "1.10.16.0/40" is not an address or CIDR`},
		{"not-object.json", "{\"cidr\":\"1.10.16.0/20\"}\n1.2.3.4\n", `not-object.json: line 2: "1.2.3.4" is not a JSON object`},
		{"bad-json.json", "{\"cidr\":\"1.10.16.0/20\"}\n{\"cidr\":\n", `bad-json.json: line 2: invalid JSON`},
		{"empty.txt", "", `empty.txt: no addresses or CIDRs in the list`},
		{"comments.netset", "#\n# x\n#\n# Category        : attacks\n", `comments.netset: no addresses or CIDRs in the list`},
		{"metadata.json", "{\"type\":\"metadata\",\"records\":0}\n", `metadata.json: no addresses or CIDRs in the list`},
		{"long.txt", "85.25.0.0/16\n" + strings.Repeat("1", blocklistMaxLine+1) + "\n", `long.txt: line 2: ` + bufio.ErrTooLong.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseBlocklist(strings.NewReader(tt.content), tt.name)
			if err == nil {
				t.Fatalf("ParseBlocklist(%q) = %d entries, want error %q", tt.name, l.Len(), tt.want)
			}
			if got := err.Error(); !strings.HasPrefix(got, tt.want) {
				t.Errorf("ParseBlocklist(%q) error = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}

func TestLoadBlocklistErrors(t *testing.T) {
	bad := filepath.Join(blocklistTestdata, "bad.txt")
	empty := filepath.Join(blocklistTestdata, "empty.txt")
	missing := filepath.Join(blocklistTestdata, "missing.txt")

	_, err := LoadBlocklist(bad)
	if want := bad + `: line 7: "300.1.1.1" is not an address or CIDR`; err == nil || err.Error() != want {
		t.Errorf("LoadBlocklist(%q) error = %v, want %q", bad, err, want)
	}
	_, err = LoadBlocklist(empty)
	if want := empty + ": no addresses or CIDRs in the list"; err == nil || err.Error() != want {
		t.Errorf("LoadBlocklist(%q) error = %v, want %q", empty, err, want)
	}
	_, err = LoadBlocklist(missing)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("LoadBlocklist(%q) error = %v, want one naming the path and wrapping fs.ErrNotExist", missing, err)
	}
	_, err = LoadBlocklist(blocklistTestdata)
	if err == nil || !strings.Contains(err.Error(), blocklistTestdata) {
		t.Errorf("LoadBlocklist(%q) error = %v, want one naming the path", blocklistTestdata, err)
	}

	lists, err := LoadBlocklists(filepath.Join(blocklistTestdata, "drop.txt"), bad, missing)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), missing) {
		t.Errorf("LoadBlocklists error = %v, want one naming %s and %s", err, bad, missing)
	}
	if lists != nil {
		t.Errorf("LoadBlocklists with errors = %d lists, want none", len(lists))
	}
	lists, err = LoadBlocklists(filepath.Join(blocklistTestdata, "drop.txt"), filepath.Join(blocklistTestdata, "mixed.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range lists {
		names = append(names, l.Name())
	}
	if want := []string{"Spamhaus DROP List", "mixed"}; !slices.Equal(names, want) {
		t.Errorf("LoadBlocklists names = %v, want %v", names, want)
	}
}

func TestBlocklistMatch(t *testing.T) {
	p := blocklistFixtureProvider(t)
	tests := []struct {
		target string
		want   []string
	}{
		// Addresses.
		{"85.25.43.94", []string{"test_level1 85.25.0.0/16", "test_attackers 85.25.43.94/32"}},
		{"85.25.200.1", []string{"test_level1 85.25.0.0/16", "Spamhaus DROP List 85.25.128.0/17"}},
		{"85.25.127.255", []string{"test_level1 85.25.0.0/16"}},
		{"85.25.128.0", []string{"test_level1 85.25.0.0/16", "Spamhaus DROP List 85.25.128.0/17"}},
		{"85.26.0.0", nil},
		{"85.24.255.255", nil},
		{"185.50.196.7", []string{"test_level1 185.50.196.0/22", "mixed 185.50.196.0/24", "mixed 185.50.196.7/32"}},
		{"185.50.196.8", []string{"test_level1 185.50.196.0/22", "mixed 185.50.196.0/24"}},
		{"185.50.199.255", []string{"test_level1 185.50.196.0/22"}},
		{"185.50.200.0", nil},
		{"5.188.10.0", []string{"test_level1 5.188.10.0/23"}},
		{"5.188.11.255", []string{"test_level1 5.188.10.0/23"}},
		{"5.188.9.255", nil},
		{"5.188.12.0", nil},
		{"1.10.20.7", []string{"Spamhaus DROP List 1.10.16.0/20", "drop_v4 1.10.16.0/20"}},
		{"203.0.113.9", []string{"test_level1 203.0.113.9/32"}},
		{"203.0.113.10", nil},
		{"91.240.118.172", []string{"test_attackers 91.240.118.172/32", "mixed 91.240.118.172/32"}},
		{"::ffff:91.240.118.172", []string{"test_attackers 91.240.118.172/32", "mixed 91.240.118.172/32"}},
		{"8.8.8.8", nil},
		{"0.0.0.0", nil},
		{"255.255.255.255", nil},
		{"2a03:2880:f003:c07:face:b00c::2", []string{"Spamhaus IPv6 DROP List 2a03:2880::/32", "mixed 2a03:2880:f003::/48"}},
		{"2a03:2880:ffff:ffff:ffff:ffff:ffff:ffff", []string{"Spamhaus IPv6 DROP List 2a03:2880::/32"}},
		{"2a03:2881::1", nil},
		{"2001:db8:1::1", []string{"mixed 2001:db8:1::1/128"}},
		{"2001:db8:1::2", nil},
		{"::", nil},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", nil},
		// Prefixes containing entries, contained by entries, both, neither.
		{"85.0.0.0/8", []string{"test_level1 85.25.0.0/16", "test_attackers 85.25.43.94/32", "Spamhaus DROP List 85.25.128.0/17"}},
		{"85.25.43.0/24", []string{"test_level1 85.25.0.0/16", "test_attackers 85.25.43.94/32"}},
		{"85.25.0.0/16", []string{"test_level1 85.25.0.0/16", "test_attackers 85.25.43.94/32", "Spamhaus DROP List 85.25.128.0/17"}},
		{"85.25.0.0/17", []string{"test_level1 85.25.0.0/16", "test_attackers 85.25.43.94/32"}},
		{"185.50.196.0/23", []string{"test_level1 185.50.196.0/22", "mixed 185.50.196.0/24", "mixed 185.50.196.7/32"}},
		{"185.50.198.0/23", []string{"test_level1 185.50.196.0/22"}},
		{"185.50.192.0/21", []string{"test_level1 185.50.196.0/22", "mixed 185.50.196.0/24", "mixed 185.50.196.7/32"}},
		{"185.50.200.0/21", nil},
		{"1.0.0.0/12", []string{"Spamhaus DROP List 1.10.16.0/20", "drop_v4 1.10.16.0/20"}},
		{"1.16.0.0/12", []string{"Spamhaus DROP List 1.19.0.0/16"}},
		{"1.32.0.0/11", nil},
		{"::ffff:85.25.0.0/112", []string{"test_level1 85.25.0.0/16", "test_attackers 85.25.43.94/32", "Spamhaus DROP List 85.25.128.0/17"}},
		{"2a03::/16", []string{"Spamhaus IPv6 DROP List 2a03:2880::/32", "mixed 2a03:2880:f003::/48"}},
		{"2a03:2880:f003::/64", []string{"Spamhaus IPv6 DROP List 2a03:2880::/32", "mixed 2a03:2880:f003::/48"}},
		{"2a06:e480::/32", []string{"Spamhaus IPv6 DROP List 2a06:e480::/29"}},
		{"2001:db8::/32", []string{"mixed 2001:db8:1::1/128"}},
		{"2001:db9::/32", nil},
		{"2001:db8:1::/127", []string{"mixed 2001:db8:1::1/128"}},
		{"2001:db8:1::2/127", nil},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			target := blocklistTarget(t, tt.target)
			if got := blocklistMatchStrings(p.Match(target)); !slices.Equal(got, tt.want) {
				t.Errorf("Match(%q) = %v, want %v", tt.target, got, tt.want)
			}
		})
	}

	t.Run("everything", func(t *testing.T) {
		for _, s := range []string{"0.0.0.0/0", "::/0"} {
			var want []string
			for _, l := range p.lists {
				for _, e := range l.entries {
					if e.prefix.Addr().Is4() == (s == "0.0.0.0/0") {
						want = append(want, l.name+" "+e.prefix.String())
					}
				}
			}
			if got := blocklistMatchStrings(p.Match(blocklistTarget(t, s))); !slices.Equal(got, want) {
				t.Errorf("Match(%q) = %v, want %v", s, got, want)
			}
		}
	})

	t.Run("unmasked and mapped targets", func(t *testing.T) {
		// Targets made without ParseTarget or PrefixTarget.
		for _, tt := range []struct {
			prefix string
			want   []string
		}{
			{"::ffff:91.240.118.172/128", []string{"test_attackers 91.240.118.172/32", "mixed 91.240.118.172/32"}},
			{"::ffff:85.25.43.1/120", []string{"test_level1 85.25.0.0/16", "test_attackers 85.25.43.94/32"}},
			{"85.25.43.1/24", []string{"test_level1 85.25.0.0/16", "test_attackers 85.25.43.94/32"}},
		} {
			target := Target{netip.MustParsePrefix(tt.prefix)}
			if got := blocklistMatchStrings(p.Match(target)); !slices.Equal(got, tt.want) {
				t.Errorf("Match(%q) = %v, want %v", tt.prefix, got, tt.want)
			}
		}
		if got := p.Match(Target{}); got != nil {
			t.Errorf("Match(Target{}) = %v, want nil", got)
		}
	})

	t.Run("match fields", func(t *testing.T) {
		got := p.Match(blocklistTarget(t, "85.25.200.1"))
		want := []BlocklistMatch{
			{List: "test_level1", Category: "attacks", Prefix: netip.MustParsePrefix("85.25.0.0/16")},
			{List: "Spamhaus DROP List", Category: "blocklist", Prefix: netip.MustParsePrefix("85.25.128.0/17"), ID: "SBL900001"},
		}
		if !slices.Equal(got, want) {
			t.Errorf("Match(%q) = %v, want %v", "85.25.200.1", got, want)
		}
	})
}

// TestBlocklistMatchExhaustive checks the index against a scan of every entry, over random
// lists of nested and overlapping entries crowded into a few small ranges.
func TestBlocklistMatchExhaustive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	bases := []netip.Prefix{
		netip.MustParsePrefix("85.25.0.0/16"),
		netip.MustParsePrefix("0.0.0.0/24"),
		netip.MustParsePrefix("255.255.255.0/24"),
		netip.MustParsePrefix("2a03:2880::/112"),
		netip.MustParsePrefix("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120"),
		netip.MustParsePrefix("::/120"),
	}
	// random returns a random prefix inside a random base, at least minBits long (or a
	// single address).
	random := func(minBits int) netip.Prefix {
		base := bases[rng.IntN(len(bases))]
		b := base.Addr().AsSlice()
		for i := base.Bits() / 8; i < len(b); i++ {
			b[i] = byte(rng.IntN(256))
		}
		a, _ := netip.AddrFromSlice(b)
		lo := min(max(base.Bits(), minBits), a.BitLen())
		return netip.PrefixFrom(a, lo+rng.IntN(a.BitLen()-lo+1)).Masked()
	}

	var lists []*Blocklist
	for i := range 4 {
		var b strings.Builder
		for range 150 {
			fmt.Fprintln(&b, random(0))
		}
		b.WriteString("0.0.0.0/0\n::/0\n255.255.255.255\nffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\n")
		l, err := ParseBlocklist(strings.NewReader(b.String()), fmt.Sprintf("list%d.txt", i))
		if err != nil {
			t.Fatal(err)
		}
		lists = append(lists, l)
	}
	p := NewBlocklistProvider(lists...)

	scan := func(target netip.Prefix) []string {
		var s []string
		for _, l := range lists {
			for _, e := range l.entries {
				if e.prefix.Overlaps(target) {
					s = append(s, l.name+" "+e.prefix.String())
				}
			}
		}
		return s
	}

	var targets []netip.Prefix
	for _, l := range lists {
		for _, e := range l.entries {
			// Each entry, its first and last address and the addresses around them.
			first := e.prefix.Addr()
			_, end := blocklistRange(e.prefix)
			last := blocklistPrefixOf(end, first.Is4())
			targets = append(targets, e.prefix, netip.PrefixFrom(first, first.BitLen()), last)
			if prev := first.Prev(); prev.IsValid() {
				targets = append(targets, netip.PrefixFrom(prev, prev.BitLen()))
			}
			if next := last.Addr().Next(); next.IsValid() {
				targets = append(targets, netip.PrefixFrom(next, next.BitLen()))
			}
		}
	}
	for range 3000 {
		targets = append(targets, random(0))
		targets = append(targets, random(200)) // single addresses
	}
	for _, target := range targets {
		want := scan(target)
		if got := blocklistMatchStrings(p.Match(PrefixTarget(target))); !slices.Equal(got, want) {
			t.Errorf("Match(%q) = %v, want %v", target, got, want)
		}
	}
}

// blocklistPrefixOf returns the single-address prefix of u.
func blocklistPrefixOf(u blocklistU128, is4 bool) netip.Prefix {
	if is4 {
		a := netip.AddrFrom4([4]byte{byte(u.lo >> 24), byte(u.lo >> 16), byte(u.lo >> 8), byte(u.lo)})
		return netip.PrefixFrom(a, 32)
	}
	var b [16]byte
	for i := range 8 {
		b[i] = byte(u.hi >> (56 - 8*i))
		b[8+i] = byte(u.lo >> (56 - 8*i))
	}
	return netip.PrefixFrom(netip.AddrFrom16(b), 128)
}

func TestBlocklistLookup(t *testing.T) {
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	all := blocklistFixtureProvider(t)
	all.Now = func() time.Time { return at }
	v4only := NewBlocklistProvider(loadBlocklistFixture(t, "test_level1.netset"))
	v4only.Now = all.Now
	v6only := NewBlocklistProvider(loadBlocklistFixture(t, "dropv6.txt"))
	v6only.Now = all.Now
	none := NewBlocklistProvider()
	none.Now = all.Now

	tests := []struct {
		provider   string
		p          *BlocklistProvider
		target     string
		status     Status
		categories []string
		evidence   string
		reason     string
	}{
		{
			"all", all, "85.25.200.1", Malicious, []string{"attacks", "blocklist"},
			"listed in test_level1 as 85.25.0.0/16; listed in Spamhaus DROP List as 85.25.128.0/17 (SBL900001)", "",
		},
		{
			"all", all, "85.25.43.94", Malicious, []string{"attacks", "reputation"},
			"listed in test_level1 as 85.25.0.0/16; listed in test_attackers as 85.25.43.94", "",
		},
		{"all", all, "203.0.113.9", Malicious, []string{"attacks"}, "listed in test_level1 as 203.0.113.9", ""},
		{
			"all", all, "2a03:2880:f003::1", Malicious, []string{"blocklist"},
			"listed in Spamhaus IPv6 DROP List as 2a03:2880::/32 (SBL900002); listed in mixed as 2a03:2880:f003::/48", "",
		},
		{
			"all", all, "185.50.196.0/23", Malicious, []string{"attacks", "blocklist"},
			"listed in test_level1 as 185.50.196.0/22; listed in mixed as 185.50.196.0/24; listed in mixed as 185.50.196.7", "",
		},
		{"all", all, "8.8.8.8", Clean, nil, "not listed in 5 lists (18 entries)", ""},
		{"all", all, "2606:4700::1111", Clean, nil, "not listed in 2 lists (5 entries)", ""},
		{"v4only", v4only, "1.1.1.1", Clean, nil, "not listed in 1 list (5 entries)", ""},
		{"v4only", v4only, "2a03:2880::1", Unknown, nil, "", "no loaded list has IPv6 entries"},
		{"v4only", v4only, "2a03::/16", Unknown, nil, "", "no loaded list has IPv6 entries"},
		{"v6only", v6only, "85.25.43.94", Unknown, nil, "", "no loaded list has IPv4 entries"},
		{"v6only", v6only, "::ffff:85.25.43.94", Unknown, nil, "", "no loaded list has IPv4 entries"},
		{"none", none, "85.25.43.94", Unknown, nil, "", "no loaded list has IPv4 entries"},
	}
	for _, tt := range tests {
		t.Run(tt.provider+"/"+tt.target, func(t *testing.T) {
			target := blocklistTarget(t, tt.target)
			ans, err := tt.p.Lookup(context.Background(), []Target{target})
			if err != nil {
				t.Fatal(err)
			}
			if len(ans.Verdicts) != 1 {
				t.Fatalf("Lookup(%q) = %d verdicts, want 1", tt.target, len(ans.Verdicts))
			}
			if ans.Quota != (Quota{}) {
				t.Errorf("Lookup(%q) quota = %+v, want none", tt.target, ans.Quota)
			}
			v := ans.Verdicts[0]
			want := Verdict{
				Provider:   "blocklist",
				Target:     target,
				Status:     tt.status,
				Categories: tt.categories,
				Evidence:   tt.evidence,
				Reason:     tt.reason,
				CheckedAt:  at,
			}
			if v.Provider != want.Provider || v.Target != want.Target || v.Status != want.Status ||
				!slices.Equal(v.Categories, want.Categories) || v.Evidence != want.Evidence ||
				v.Reason != want.Reason || !v.CheckedAt.Equal(want.CheckedAt) || v.Score != nil ||
				v.Country != "" || v.Cached {
				t.Errorf("Lookup(%q) = %+v, want %+v", tt.target, v, want)
			}
		})
	}

	t.Run("batch", func(t *testing.T) {
		targets := []Target{blocklistTarget(t, "8.8.8.8"), blocklistTarget(t, "85.25.43.94"), {}, blocklistTarget(t, "2a03:2880::1")}
		ans, err := all.Lookup(context.Background(), targets)
		if err != nil {
			t.Fatal(err)
		}
		var got []Status
		for i, v := range ans.Verdicts {
			if v.Target != targets[i] {
				t.Errorf("verdict %d target = %v, want %v", i, v.Target, targets[i])
			}
			got = append(got, v.Status)
		}
		if want := []Status{Clean, Malicious, Unknown, Malicious}; !slices.Equal(got, want) {
			t.Errorf("Lookup statuses = %v, want %v", got, want)
		}
	})

	t.Run("default clock", func(t *testing.T) {
		p := NewBlocklistProvider(loadBlocklistFixture(t, "drop.txt"))
		before := time.Now()
		ans, err := p.Lookup(context.Background(), []Target{blocklistTarget(t, "1.10.16.1")})
		if err != nil {
			t.Fatal(err)
		}
		if at := ans.Verdicts[0].CheckedAt; at.Before(before) || at.After(time.Now()) {
			t.Errorf("CheckedAt = %v, want about %v", at, before)
		}
	})
}

func TestBlocklistEvidenceLimit(t *testing.T) {
	var lists []*Blocklist
	for i := range 8 {
		l, err := ParseBlocklist(strings.NewReader("85.25.0.0/16\n"), fmt.Sprintf("list%d.txt", i))
		if err != nil {
			t.Fatal(err)
		}
		lists = append(lists, l)
	}
	p := NewBlocklistProvider(lists...)
	ans, err := p.Lookup(context.Background(), []Target{blocklistTarget(t, "85.25.43.94")})
	if err != nil {
		t.Fatal(err)
	}
	v := ans.Verdicts[0]
	want := "listed in list0 as 85.25.0.0/16; listed in list1 as 85.25.0.0/16; listed in list2 as 85.25.0.0/16; " +
		"listed in list3 as 85.25.0.0/16; listed in list4 as 85.25.0.0/16; and 3 more"
	if v.Evidence != want {
		t.Errorf("Evidence = %q, want %q", v.Evidence, want)
	}
	if want := []string{"blocklist"}; !slices.Equal(v.Categories, want) {
		t.Errorf("Categories = %q, want %q", v.Categories, want)
	}
}

func TestBlocklistProvider(t *testing.T) {
	p := blocklistFixtureProvider(t)
	if got := p.Name(); got != "blocklist" {
		t.Errorf("Name() = %q, want %q", got, "blocklist")
	}
	if got := p.BatchSize(); got < 1000 {
		t.Errorf("BatchSize() = %d, want at least 1000", got)
	}
	for _, s := range []string{"85.25.43.94", "2a03:2880::1", "0.0.0.0/0", "::/0", "10.0.0.0/8"} {
		if err := p.Supports(blocklistTarget(t, s)); err != nil {
			t.Errorf("Supports(%q) = %v, want nil", s, err)
		}
	}
	if err := p.Supports(Target{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Supports(Target{}) = %v, want ErrUnsupported", err)
	}
	if got := len(p.Lists()); got != len(blocklistFixtures) {
		t.Errorf("len(Lists()) = %d, want %d", got, len(blocklistFixtures))
	}
	if got := NewBlocklistProvider(nil, loadBlocklistFixture(t, "drop.txt"), nil).Lists(); len(got) != 1 {
		t.Errorf("NewBlocklistProvider(nil, list, nil) has %d lists, want 1", len(got))
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	targets := make([]Target, 3*blocklistCheckEvery)
	for i := range targets {
		targets[i] = blocklistTarget(t, "85.25.43.94")
	}
	if _, err := p.Lookup(ctx, targets); !errors.Is(err, context.Canceled) {
		t.Errorf("Lookup with a cancelled context = %v, want %v", err, context.Canceled)
	}
	ans, err := p.Lookup(context.Background(), targets)
	if err != nil || len(ans.Verdicts) != len(targets) {
		t.Errorf("Lookup(%d targets) = %d verdicts, %v; want %d", len(targets), len(ans.Verdicts), err, len(targets))
	}
}

func TestBlocklistAppendMatchesAllocs(t *testing.T) {
	p := blocklistFixtureProvider(t)
	hit, miss := blocklistTarget(t, "185.50.196.7"), blocklistTarget(t, "8.8.8.8")
	miss6 := blocklistTarget(t, "2606:4700::1111")
	buf := make([]BlocklistMatch, 0, 8)
	allocs := testing.AllocsPerRun(100, func() {
		buf = p.AppendMatches(buf[:0], hit)
		buf = p.AppendMatches(buf[:0], miss)
		buf = p.AppendMatches(buf[:0], miss6)
	})
	if allocs != 0 {
		t.Errorf("AppendMatches allocates %v times, want 0", allocs)
	}
	if got := p.Match(miss); got != nil {
		t.Errorf("Match(%q) = %v, want nil", miss, got)
	}
}

func TestBlocklistGroupDigits(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want string
	}{
		{0, "0"}, {7, "7"}, {999, "999"}, {1000, "1,000"}, {6273, "6,273"}, {1234567, "1,234,567"}, {-1234, "-1,234"},
	} {
		if got := blocklistGroupDigits(tt.n); got != tt.want {
			t.Errorf("blocklistGroupDigits(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestBlocklistFireHOLLevel1(t *testing.T) {
	l := loadBlocklistFireHOL(t)
	if got, want := l.Len(), 6273; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
	if got, want := l.Name(), "firehol_level1"; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
	if got, want := l.Category(), "attacks"; got != want {
		t.Errorf("Category() = %q, want %q", got, want)
	}
	if got, want := l.Format(), BlocklistFireHOL; got != want {
		t.Errorf("Format() = %q, want %q", got, want)
	}

	p := NewBlocklistProvider(l)
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	p.Now = func() time.Time { return at }
	tests := []struct {
		target   string
		status   Status
		evidence string
	}{
		{"1.93.0.224", Malicious, "listed in firehol_level1 as 1.93.0.224"},
		{"85.25.45.121", Malicious, "listed in firehol_level1 as 85.25.45.121"},
		{"1.10.20.7", Malicious, "listed in firehol_level1 as 1.10.16.0/20"},
		{"223.254.17.3", Malicious, "listed in firehol_level1 as 223.254.0.0/16"},
		{"1.10.16.0/24", Malicious, "listed in firehol_level1 as 1.10.16.0/20"},
		{"8.8.8.8", Clean, "not listed in 1 list (6,273 entries)"},
		{"1.1.1.1", Clean, "not listed in 1 list (6,273 entries)"},
		{"9.9.9.9", Clean, "not listed in 1 list (6,273 entries)"},
		{"208.67.222.222", Clean, "not listed in 1 list (6,273 entries)"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			target := blocklistTarget(t, tt.target)
			// Scan the list for the entries overlapping the target.
			var listed []string
			for _, e := range l.entries {
				if e.prefix.Overlaps(target.Prefix) {
					listed = append(listed, e.prefix.String())
				}
			}
			if (tt.status == Clean) != (len(listed) == 0) {
				t.Fatalf("%s overlaps %v in %s: the test expects status %s", tt.target, listed, blocklistFireHOLPath, tt.status)
			}
			ans, err := p.Lookup(context.Background(), []Target{target})
			if err != nil {
				t.Fatal(err)
			}
			v := ans.Verdicts[0]
			if v.Status != tt.status || v.Evidence != tt.evidence || !v.CheckedAt.Equal(at) {
				t.Errorf("Lookup(%q) = %s %q at %v, want %s %q at %v", tt.target, v.Status, v.Evidence, v.CheckedAt, tt.status, tt.evidence, at)
			}
			if tt.status == Malicious && !slices.Equal(v.Categories, []string{"attacks"}) {
				t.Errorf("Lookup(%q) categories = %q, want [attacks]", tt.target, v.Categories)
			}
			var matched []string
			for _, m := range p.Match(target) {
				matched = append(matched, m.Prefix.String())
			}
			if !slices.Equal(matched, listed) {
				t.Errorf("Match(%q) = %v, want %v", tt.target, matched, listed)
			}
		})
	}
	if got := p.Match(blocklistTarget(t, "2a03:2880::1")); got != nil {
		t.Errorf("Match(%q) = %v, want nil", "2a03:2880::1", got)
	}
}

func FuzzBlocklistParse(f *testing.F) {
	for _, name := range append(slices.Clone(blocklistFixtures), "bad.txt", "empty.txt") {
		b, err := os.ReadFile(filepath.Join(blocklistTestdata, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("::ffff:1.2.3.4/100\n255.255.255.255/32\n0.0.0.0/0\n"))
	f.Add([]byte("{\"cidr\":\"::/0\",\"sblid\":\"SBL1\"}\n{\"cidr\":null}\n"))
	f.Add([]byte("; Spamhaus DROP List -\n1.2.3.0/24 ; SBL\n"))
	f.Add([]byte("# Category        :\n#\n1.2.3.4\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseBlocklist(bytes.NewReader(data), "fuzz.txt")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.txt: ") {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		if l.Len() == 0 {
			t.Fatal("ParseBlocklist returned a list without entries and no error")
		}
		if l.Name() == "" || l.Category() == "" || l.Format() == "" {
			t.Errorf("list name %q, category %q, format %q: want all set", l.Name(), l.Category(), l.Format())
		}
		p := NewBlocklistProvider(l)
		for i, e := range l.entries {
			if i == 100 {
				break
			}
			if e.prefix != e.prefix.Masked() || e.prefix.Addr().Is4In6() || e.prefix.Addr().Zone() != "" {
				t.Errorf("entry %v is not masked and unmapped", e.prefix)
			}
			if !slices.ContainsFunc(p.Match(PrefixTarget(e.prefix)), func(m BlocklistMatch) bool { return m.Prefix == e.prefix }) {
				t.Errorf("Match(%q) does not hold the entry itself", e.prefix)
			}
			if !slices.ContainsFunc(p.Match(AddressTarget(e.prefix.Addr())), func(m BlocklistMatch) bool { return m.Prefix == e.prefix }) {
				t.Errorf("Match(%q) does not hold the entry %v", e.prefix.Addr(), e.prefix)
			}
		}
	})
}
