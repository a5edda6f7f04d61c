package report

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/reputation"
)

// benchInput returns a synthetic estate of rules rules in rules/20 groups across two
// accounts and three regions, its history, and two providers' verdicts on its public
// addresses and prefixes. Most rules allow one IPv4 address; some an IPv6 address, a /24
// (expanded into its addresses), a /16 (vetted as a whole), the whole internet, a private
// range or another group. Descriptions carry dates, expiry dates, markers and names, or
// nothing. About 3% of addresses are malicious by one provider and 1% by the other; the
// blocklist cannot answer for IPv6 and MetaDefender not for prefixes, nor for 0.4% of the
// addresses (its quota); 0.1% of the sources were not looked up at all. One rule in 1,000
// has ports that could not be parsed, and the rule quota is 20, so that every group is
// near it. A third of the attached groups are reachable from the internet, the rest are
// private; CloudTrail was read everywhere, and added one rule in ten in its window.
func benchInput(rules int) Input {
	const perGroup = 20
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	accounts := []string{"111122223333", "444455556666"}
	regions := []string{"eu-west-1", "us-east-1", "ap-southeast-2"}

	var c collector.Collection
	c.Sources = []string{"aws"}
	c.Regions = regions
	groups := rules / perGroup
	for g := range groups {
		grp := collector.Group{
			ID:       fmt.Sprintf("sg-%017x", g),
			Name:     fmt.Sprintf("app-%d", g),
			VPC:      fmt.Sprintf("vpc-%d", g/50),
			Account:  accounts[g%len(accounts)],
			Region:   regions[g%len(regions)],
			Attached: collector.Attached,
		}
		switch {
		case g%50 == 0:
			grp.Name = "default"
		case g%10 == 3:
			grp.Attached = collector.Unattached
		}
		// A third of the attached groups are reachable from the internet, through an
		// instance with a public address; the rest are private.
		reachable := grp.Attached == collector.Attached && g%3 == 0
		grp.Reachable = &reachable
		if reachable {
			grp.Exposure = []collector.InterfaceRef{{ID: fmt.Sprintf("eni-%017x", g), Kind: "instance", InstanceID: fmt.Sprintf("i-%017x", g),
				PublicIP: netip.AddrFrom4([4]byte{54, 160, byte(g >> 8), byte(g)}), Reason: "public IPv4 address"}}
			grp.Exposed = 1
		}
		c.Groups = append(c.Groups, grp)
	}

	descriptions := []string{
		"", "", "", "office VPN", "partner NAT", "CI runners",
		"exp 2025-06-30", "contractor Acme - bob (exp 2025-06-30)", "valid until 2027-01-31",
		"temp debug", "John's home", "added 2024-01-10 for the vendor", "Leeds office 3",
		"monitoring probe", "HTTPS from the payment provider",
	}
	ipv4 := func(i int) netip.Addr { // 40,000 addresses in 20.0.0.0/8, public
		return netip.AddrFrom4([4]byte{20, byte(i >> 12), byte(i >> 4), byte(i&15*7 + 1)})
	}
	ipv6 := func(i int) netip.Addr { // 5,000 addresses in 2a01:4f8::/32
		return netip.AddrFrom16([16]byte{0x2a, 0x01, 0x04, 0xf8, 14: byte(i >> 8), 15: byte(i)})
	}
	for i := range rules {
		g := &c.Groups[i/perGroup]
		r := collector.Rule{
			Account:     g.Account,
			Region:      g.Region,
			GroupID:     g.ID,
			ID:          fmt.Sprintf("sgr-%017x", i),
			Direction:   collector.Ingress,
			Protocol:    "tcp",
			FromPort:    []int32{22, 443, 3306, 8080, 5432, 80}[i%6],
			Description: descriptions[i%len(descriptions)],
		}
		r.ToPort = r.FromPort
		switch k := i % 100; {
		case k < 70: // one IPv4 address, most of them in two rules
			r.CIDR = netip.PrefixFrom(ipv4((i/100*70+k)%40000), 32)
		case k < 80: // one IPv6 address, in two rules
			r.CIDR = netip.PrefixFrom(ipv6((i/100*10+k-70)%5000), 128)
		case k == 80: // a /24 among 20
			r.CIDR = netip.PrefixFrom(netip.AddrFrom4([4]byte{45, 10, byte(i / 100 % 20), 0}), 24)
		case k == 81: // a /16 among 50
			r.CIDR = netip.PrefixFrom(netip.AddrFrom4([4]byte{60, byte(i / 100 % 50), 0, 0}), 16)
		case k < 84: // the whole internet
			r.CIDR = netip.MustParsePrefix("0.0.0.0/0")
		case k == 84: // ping from the whole internet
			r.Protocol, r.FromPort, r.ToPort = "icmp", 8, -1
			r.CIDR = netip.MustParsePrefix("0.0.0.0/0")
		case k < 95: // private
			r.CIDR = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)
		case k < 98: // another group
			r.ReferencedGroup = &collector.GroupRef{GroupID: c.Groups[(i/perGroup+1)%groups].ID}
		case k == 98: // another account's group
			r.ReferencedGroup = &collector.GroupRef{GroupID: fmt.Sprintf("sg-%017x", i), Account: "999988887777"}
		default: // all traffic out
			r.Direction, r.Protocol, r.FromPort, r.ToPort = collector.Egress, "all", -1, -1
			r.CIDR = netip.MustParsePrefix("0.0.0.0/0")
		}
		if i%1000 == 994 {
			r.FromPort, r.ToPort = 70000, 80
			r.Invalid = &collector.Invalid{Field: collector.FieldPorts, Text: "70000-80", Reason: "port 70000 is not between 0 and 65535"}
		}
		c.Rules = append(c.Rules, r)
	}
	// CloudTrail was read everywhere: one rule in ten was added in its window.
	c.CloudTrail = &collector.TrailCoverage{Since: now.Add(-collector.CloudTrailWindow), Until: now}
	for _, a := range accounts {
		for _, r := range regions {
			c.CloudTrail.Regions = append(c.CloudTrail.Regions, collector.AccountRegion{Account: a, Region: r})
		}
	}
	c.RuleChanges = collector.Attributions{}
	for i := 0; i < rules; i += 10 {
		r := &c.Rules[i]
		c.RuleChanges[r.ID] = collector.RuleHistory{Added: &collector.RuleChange{RuleID: r.ID, GroupID: r.GroupID, Account: r.Account, Region: r.Region,
			Event: collector.EventAuthorizeIngress, Principal: "arn:aws:iam::111122223333:role/Admin (session alice@example.com)", At: now.AddDate(0, 0, -(i % 80))}}
	}
	inv := c.Inventory(now, collector.Options{})

	var res []reputation.Result
	for n, s := range inv.Public {
		var t reputation.Target
		switch s.Kind {
		case collector.KindAddress:
			t = reputation.AddressTarget(s.Address)
		case collector.KindPrefix:
			t = reputation.PrefixTarget(s.CIDR)
		default:
			continue
		}
		if n%1000 == 1 {
			continue // not looked up
		}
		md := reputation.Verdict{Provider: "metadefender", Target: t, Status: reputation.Clean, CheckedAt: now}
		bl := reputation.Verdict{Provider: "blocklist", Target: t, Status: reputation.Clean, CheckedAt: now}
		switch {
		case !t.IsAddress():
			md.Status, md.Reason = reputation.Unknown, "metadefender: prefixes are not supported"
		case n%250 == 0:
			md.Status, md.Reason = reputation.Unknown, "daily quota of 1000 lookups reached"
		case n%33 == 0:
			md.Status, md.Evidence = reputation.Malicious, "listed by 2 of 6 sources: webroot, firehol"
		}
		switch {
		case !t.Addr().Is4():
			bl.Status, bl.Reason = reputation.Unknown, "no loaded list has IPv6 entries"
		case n%97 == 0:
			bl.Status, bl.Evidence = reputation.Malicious, "listed in firehol_level1 as "+t.String()
		}
		res = append(res, reputation.Result{Target: t, Verdicts: []reputation.Verdict{md, bl}})
	}

	h := &HistoryView{Previous: "run-1", FirstSeen: make(map[string]time.Time, len(inv.Rules)), New: map[string]bool{}}
	for i, r := range inv.Rules {
		k := RuleKey(r)
		h.FirstSeen[k] = now.AddDate(0, 0, -(i % 400))
		if i%50 == 0 {
			h.New[k] = true
		}
	}
	return Input{Inventory: inv, Results: res, History: h, Now: now, Options: Options{RuleQuota: perGroup}}
}

func BenchmarkBuild(b *testing.B) {
	in := benchInput(100_000)
	addresses := 0
	for _, s := range in.Inventory.Public {
		if s.Kind == collector.KindAddress {
			addresses++
		}
	}
	var r *Report
	for b.Loop() {
		r = Build(in)
	}
	b.ReportMetric(float64(len(in.Inventory.Rules)), "rules")
	b.ReportMetric(float64(addresses), "addresses")
	b.ReportMetric(float64(len(r.Findings)), "findings")
}

// TestBenchInput checks that the benchmark's estate is what BenchmarkBuild claims.
func TestBenchInput(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an estate of 100,000 rules")
	}
	in := benchInput(100_000)
	addresses := 0
	for _, s := range in.Inventory.Public {
		if s.Kind == collector.KindAddress {
			addresses++
		}
	}
	if n := len(in.Inventory.Rules); n != 100_000 {
		t.Errorf("benchInput(100000): %d rules, want 100000", n)
	}
	if addresses < 45_000 || addresses > 55_000 {
		t.Errorf("benchInput(100000): %d distinct addresses, want about 50,000", addresses)
	}
	r := Build(in)
	checkReport(t, r)
	// Known service ranges need owner ranges, which the benchmark's audit is not given.
	for _, k := range Kinds {
		if r.Summary.ByKind[k] == 0 && k != KnownServiceRange {
			t.Errorf("Build(benchInput(100000)): no %s finding", k)
		}
	}
}
