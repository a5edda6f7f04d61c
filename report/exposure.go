package report

import (
	"cmp"
	"fmt"
	"math/big"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/reputation"
)

// portService is a well-known port and what listens on it.
type portService struct {
	port int32
	name string // empty for a port with no well-known service
}

// serviceNames names the well-known ports, those of the default port lists and a few more
// that a configuration may add.
var serviceNames = map[uint16]string{
	20:    "FTP data",
	21:    "FTP",
	22:    "SSH",
	23:    "Telnet",
	80:    "HTTP",
	135:   "Microsoft RPC",
	139:   "NetBIOS",
	443:   "HTTPS",
	445:   "SMB",
	1433:  "SQL Server",
	1521:  "Oracle",
	2375:  "Docker API",
	2376:  "Docker API over TLS",
	2379:  "etcd",
	3306:  "MySQL",
	3389:  "RDP",
	4333:  "mSQL",
	5432:  "PostgreSQL",
	5900:  "VNC",
	5984:  "CouchDB",
	5985:  "WinRM",
	5986:  "WinRM over HTTPS",
	6379:  "Redis",
	6443:  "Kubernetes API",
	7000:  "Cassandra",
	7001:  "Cassandra over TLS",
	8086:  "InfluxDB",
	9042:  "Cassandra CQL",
	9200:  "Elasticsearch",
	9300:  "Elasticsearch transport",
	10250: "kubelet",
	11211: "Memcached",
	27017: "MongoDB",
	27018: "MongoDB shard",
	50070: "Hadoop NameNode",
}

// sensitivePorts returns the administration and database ports of opts, sorted by port,
// without repeats.
func sensitivePorts(opts *Options) []portService {
	admin, db := opts.AdminPorts, opts.DatabasePorts
	if admin == nil {
		admin = DefaultAdminPorts
	}
	if db == nil {
		db = DefaultDatabasePorts
	}
	out := make([]portService, 0, len(admin)+len(db))
	for _, list := range [][]uint16{admin, db} {
		for _, p := range list {
			out = append(out, portService{int32(p), serviceNames[p]})
		}
	}
	slices.SortFunc(out, func(a, b portService) int { return cmp.Compare(a.port, b.port) })
	return slices.CompactFunc(out, func(a, b portService) bool { return a.port == b.port })
}

// maxServicesNamed is how many administration ports a reason names for a port range.
const maxServicesNamed = 5

// rulePorts returns the port range that r allows, and false for a protocol without ports
// (ICMP, or an IP protocol other than TCP and UDP). All protocols means all ports.
func rulePorts(r *collector.Rule) (lo, hi int32, ok bool) {
	switch r.Protocol {
	case "all":
		return 0, 65535, true
	case "tcp", "udp":
		if r.FromPort < 0 {
			return 0, 65535, true
		}
		return r.FromPort, r.ToPort, true
	}
	return 0, 0, false
}

// adminServices returns the administration and database ports in lo-hi.
func (b *builder) adminServices(lo, hi int32) []portService {
	var out []portService
	for _, s := range b.sensitive {
		if s.port >= lo && s.port <= hi {
			out = append(out, s)
		}
	}
	return out
}

// adminPortIn reports whether r allows some administration or database port.
func (b *builder) adminPortIn(r *collector.Rule) bool {
	lo, hi, ok := rulePorts(r)
	if !ok {
		return false
	}
	for _, s := range b.sensitive {
		if s.port >= lo && s.port <= hi {
			return true
		}
	}
	return false
}

// isICMP reports whether r's protocol is ICMP or ICMPv6.
func isICMP(r *collector.Rule) bool { return r.Protocol == "icmp" || r.Protocol == "icmpv6" }

// allPorts reports whether r allows every port of its protocol, or every protocol.
func allPorts(r *collector.Rule) bool {
	return r.Protocol == "all" || !isICMP(r) && r.PortRange() == "all"
}

// protocolName returns r's protocol as people write it: "TCP", "UDP", "IP protocol 47".
func protocolName(r *collector.Rule) string {
	switch r.Protocol {
	case "tcp", "udp":
		return strings.ToUpper(r.Protocol)
	case "icmp":
		return "ICMP"
	case "icmpv6":
		return "ICMPv6"
	case "all":
		return "all protocols"
	}
	return "IP protocol " + r.Protocol
}

// serviceName names a port: "SSH (22)", or "Memcached (UDP 11211)" when the protocol is
// not TCP; a port without a well-known service is "TCP port 4333".
func serviceName(r *collector.Rule, s portService) string {
	proto := "TCP"
	if r.Protocol == "udp" {
		proto = "UDP"
	}
	switch {
	case s.name == "":
		return fmt.Sprintf("%s port %d", proto, s.port)
	case r.Protocol == "udp":
		return fmt.Sprintf("%s (UDP %d)", s.name, s.port)
	}
	return fmt.Sprintf("%s (%d)", s.name, s.port)
}

// worldFindings adds the findings of rule i, whose CIDR is the whole internet.
func (b *builder) worldFindings(i int32) {
	r := &b.rules[i]
	switch r.Direction {
	case collector.Ingress:
		if isICMP(r) {
			if reason, ok := icmpOpen(r); ok {
				b.findings = append(b.findings, b.ruleFinding(i, ICMPOpen, Medium, []string{reason}))
			}
			return
		}
		sev, reason := b.openToWorld(r, "the whole internet")
		b.findings = append(b.findings, b.ruleFinding(i, OpenToWorld, sev, []string{reason}))
	case collector.Egress:
		if !allPorts(r) {
			return
		}
		reason := "all traffic may leave for anywhere on the internet"
		if r.Protocol != "all" {
			reason = fmt.Sprintf("every %s port may be reached anywhere on the internet", protocolName(r))
		}
		b.findings = append(b.findings, b.ruleFinding(i, OpenEgress, Low, []string{reason}))
	}
}

// nearWorldFinding adds the open-to-world finding of the ingress rule i, whose prefix is
// near-world, alone or with the group's other rules; why says so.
func (b *builder) nearWorldFinding(i int32, why []string) {
	r := &b.rules[i]
	sev, reason := b.openToWorld(r, r.CIDR.String()+" (near-world)")
	reasons := append([]string{reason}, why...)
	b.findings = append(b.findings, b.ruleFinding(i, OpenToWorld, sev, reasons))
}

// icmpOpen says whether the ICMP rule r, from the whole internet, lets in echo requests.
func icmpOpen(r *collector.Rule) (string, bool) {
	echo := int32(8)
	if r.Protocol == "icmpv6" {
		echo = 128
	}
	switch r.FromPort {
	case -1:
		return fmt.Sprintf("every %s type, echo requests (ping) included, is allowed from the whole internet", protocolName(r)), true
	case echo:
		return fmt.Sprintf("%s echo requests (ping) are allowed from the whole internet", protocolName(r)), true
	}
	return "", false
}

// openToWorld returns the severity of the ingress rule r from whom, the whole internet or
// a near-world range, and why: critical when it allows an administration or database
// port (all ports and all protocols do), low on a public web port, high otherwise.
func (b *builder) openToWorld(r *collector.Rule, whom string) (Severity, string) {
	lo, hi, ok := rulePorts(r)
	if !ok {
		return High, protocolName(r) + " is open to " + whom
	}
	if admin := b.adminServices(lo, hi); len(admin) > 0 {
		if lo == hi {
			return Critical, serviceName(r, admin[0]) + " is open to " + whom
		}
		what := portsText(r, lo, hi)
		names := make([]string, 0, maxServicesNamed)
		for _, s := range admin[:min(len(admin), maxServicesNamed)] {
			names = append(names, serviceName(r, s))
		}
		more := ""
		if n := len(admin) - len(names); n > 0 {
			more = fmt.Sprintf(" and %d more administration or database %s", n, countNoun(n, "port", "ports"))
		}
		return Critical, fmt.Sprintf("%s open to %s, including %s%s", what, whom, strings.Join(names, ", "), more)
	}
	if lo == hi && b.isWebPort(r.Protocol, lo) {
		name := serviceNames[uint16(lo)]
		if r.Protocol == "udp" && lo == 443 {
			name = "HTTP/3 (QUIC)"
		}
		return Low, serviceName(r, portService{lo, name}) + " is open to " + whom + ", as a public web server needs"
	}
	if lo == hi {
		return High, fmt.Sprintf("%s open to %s, and it is not a public web port", portsText(r, lo, hi), whom)
	}
	return High, portsText(r, lo, hi) + " open to " + whom
}

// portsText says which ports of r, lo to hi, are open: "TCP port 8443 is", "TCP ports
// 8000-8010 are", "every UDP port is", "every protocol and port is".
func portsText(r *collector.Rule, lo, hi int32) string {
	switch {
	case r.Protocol == "all":
		return "every protocol and port is"
	case lo == 0 && hi == 65535:
		return fmt.Sprintf("every %s port is", protocolName(r))
	case lo == hi:
		return fmt.Sprintf("%s port %d is", protocolName(r), lo)
	}
	return fmt.Sprintf("%s ports %d-%d are", protocolName(r), lo, hi)
}

// isWebPort reports whether port of protocol is a public web port.
func (b *builder) isWebPort(protocol string, port int32) bool {
	for _, w := range b.webPorts {
		if w.Protocol == protocol && int32(w.Port) == port {
			return true
		}
	}
	return false
}

// wideRange adds the wide-range finding of rule i when its CIDR holds more addresses than
// are vetted one by one.
func (b *builder) wideRange(i int32) {
	r := &b.rules[i]
	if collector.Size(r.CIDR) <= b.maxHosts {
		return
	}
	if b.in.Owners != nil {
		if o, ok := b.in.Owners.Covering(r.CIDR); ok && !servesCustomers(o) {
			b.knownServiceRange(i, o)
			return
		}
	}
	how := "it was not vetted"
	if known, _, _ := judge(b.verdicts.of(reputation.PrefixTarget(r.CIDR))); known {
		how = "it was checked only against offline lists"
	}
	reason := fmt.Sprintf("%s holds %s addresses, more than the %d vetted one by one; %s", r.CIDR, addressCount(r.CIDR.Addr().BitLen()-r.CIDR.Bits()), b.maxHosts, how)
	b.findings = append(b.findings, b.ruleFinding(i, WideRange, Medium, []string{reason}))
}

// servesCustomers reports whether the ranges of o are handed out to the publisher's
// customers: AWS's AMAZON (every AWS range) and EC2, Google's whole space and Google
// Cloud. That a prefix lies inside them says nothing of who holds its addresses (anyone
// can rent one), so it stays a wide range.
func servesCustomers(o collector.Owner) bool {
	switch o.Name {
	case "AWS":
		return o.Service == "AMAZON" || o.Service == "EC2"
	case "Google":
		return o.Service == "" || o.Service == "Google Cloud"
	}
	return false
}

// knownServiceRange adds the known-service-range finding of rule i, whose prefix, too wide
// to vet address by address, lies wholly inside the published ranges of one service.
func (b *builder) knownServiceRange(i int32, o collector.Owner) {
	r := &b.rules[i]
	what := o.Name
	if o.Service != "" {
		what += " " + o.Service
	}
	where := ""
	if o.Region != "" {
		where = " in " + o.Region
	}
	reason := fmt.Sprintf("%s lies wholly inside the ranges %s publishes for %s%s: a known service range, not an unknown wide range; check that the rule is meant for %s",
		r.CIDR, o.Name, cmp.Or(o.Service, "its services"), where, what)
	f := b.ruleFinding(i, KnownServiceRange, Info, []string{reason})
	f.owner = &o
	b.findings = append(b.findings, f)
}

// addressCount writes 2^hostBits with thousands separators, or as a power of two when it
// is too long to read.
func addressCount(hostBits int) string {
	if hostBits > 48 {
		return "2^" + strconv.Itoa(hostBits)
	}
	return thousands(strconv.FormatUint(1<<hostBits, 10))
}

// thousands puts a comma between every three digits of a number written in digits.
func thousands(digits string) string {
	var sb strings.Builder
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			sb.WriteByte(',')
		}
		sb.WriteRune(c)
	}
	return sb.String()
}

// defaultGroup adds the default-group-in-use finding of g, a VPC's default group, whose
// rules are the Rules at the indexes run. CIS AWS Foundations and AWS Config's
// vpc-default-security-group-closed want a default group to allow no traffic at all, and
// nothing to use it. The finding is medium when the group is attached to an interface or
// has rules other than the ones AWS gives every default group, and low when it only still
// has AWS's rules. Invalid rules are left to their invalid-rule findings.
func (b *builder) defaultGroup(g *collector.Group, run []int32) {
	var reasons []string
	sev := Medium
	if g.Attached == collector.Attached {
		reasons = append(reasons, "the default group is attached to network interfaces; they should use groups made for them")
	}
	extra, defaults := 0, 0
	for _, i := range run {
		r := &b.rules[i]
		if r.Invalid != nil {
			continue
		}
		if isDefaultRule(g, r) {
			defaults++
			continue
		}
		extra++
		if extra > maxAddressesShown {
			continue
		}
		reasons = append(reasons, fmt.Sprintf("%s rule %s allows %s", r.Direction, r.ID, ruleText(r)))
	}
	if n := extra - maxAddressesShown; n > 0 {
		reasons = append(reasons, fmt.Sprintf("and %d more %s", n, countNoun(n, "rule", "rules")))
	}
	if defaults > 0 {
		if len(reasons) == 0 {
			sev = Low
		}
		reasons = append(reasons, "the group still has the rules AWS gives every default group (all traffic from its own members, all traffic out); CIS AWS Foundations and AWS Config's vpc-default-security-group-closed want a default group to allow no traffic")
	}
	if len(reasons) == 0 {
		return
	}
	if g.Attached == collector.AttachmentUnknown {
		reasons = append(reasons, "whether the group is attached to network interfaces is unknown (no network interfaces were read)")
	}
	b.findings = append(b.findings, Finding{
		Kind:     DefaultGroupInUse,
		Severity: sev,
		ref:      &RuleRef{Account: g.Account, Region: g.Region, GroupID: g.ID, GroupName: g.Name},
		reasons:  reasons,
	})
}

// isDefaultRule reports whether r is one of the rules AWS gives a default group: all
// traffic from the group itself, and all traffic to the whole internet.
func isDefaultRule(g *collector.Group, r *collector.Rule) bool {
	if r.Protocol != "all" {
		return false
	}
	switch r.Direction {
	case collector.Ingress:
		ref := r.ReferencedGroup
		return ref != nil && ref.GroupID == g.ID && (ref.Account == "" || g.Account == "" || ref.Account == g.Account)
	case collector.Egress:
		return r.CIDR.IsValid() && collector.IsWorld(r.CIDR)
	}
	return false
}

// ruleText says what r allows: "TCP 22 from 81.2.69.142/32", "all traffic to 0.0.0.0/0".
func ruleText(r *collector.Rule) string {
	return trafficText(r) + " " + r.Target()
}

// trafficText says what r allows and which way, without its target: "TCP 22 from", "all
// traffic to".
func trafficText(r *collector.Rule) string {
	way := "from"
	if r.Direction == collector.Egress {
		way = "to"
	}
	if r.Protocol == "all" {
		return "all traffic " + way
	}
	return protocolName(r) + " " + r.PortRange() + " " + way
}

// findNearWorld records, in b.nearWorld, the ingress rules among run, the rules of one
// group, whose public prefixes are near-world: as wide as the near-world prefix alone, or
// covering as many addresses together with the group's other wide prefixes on the same
// protocol and ports (overlaps counted once). The group's wide prefixes that together
// allow a whole address family say so too, each one near-world already.
func (b *builder) findNearWorld(run []int32) {
	var wide []int32
	for _, i := range run {
		r := &b.rules[i]
		if r.Direction == collector.Ingress && !isICMP(r) && vettable(r) && collector.Size(r.CIDR) > b.maxHosts {
			wide = append(wide, i)
		}
	}
	if len(wide) == 0 {
		return
	}
	// Rules of one protocol, ports and address family are neighbours.
	slices.SortFunc(wide, func(x, y int32) int {
		a, c := &b.rules[x], &b.rules[y]
		return cmp.Or(cmp.Compare(a.Protocol, c.Protocol), cmp.Compare(a.FromPort, c.FromPort), cmp.Compare(a.ToPort, c.ToPort),
			cmp.Compare(a.CIDR.Addr().BitLen(), c.CIDR.Addr().BitLen()), cmp.Compare(x, y))
	})
	for start := 0; start < len(wide); {
		first := &b.rules[wide[start]]
		end := start + 1
		for end < len(wide) {
			r := &b.rules[wide[end]]
			if r.Protocol != first.Protocol || r.FromPort != first.FromPort || r.ToPort != first.ToPort || r.CIDR.Addr().BitLen() != first.CIDR.Addr().BitLen() {
				break
			}
			end++
		}
		b.nearWorldSet(wide[start:end])
		start = end
	}
}

// nearWorldSet finds the near-world rules among set, the wide ingress rules of one group on
// one protocol and ports, of one address family.
func (b *builder) nearWorldSet(set []int32) {
	family, bits := "IPv4", b.nearV4
	if b.rules[set[0]].CIDR.Addr().Is6() {
		family, bits = "IPv6", b.nearV6
	}
	width := b.rules[set[0]].CIDR.Addr().BitLen()
	var alone, rest []int32
	for _, i := range set {
		if b.rules[i].CIDR.Bits() <= bits {
			alone = append(alone, i)
		} else {
			rest = append(rest, i)
		}
	}
	for _, i := range alone {
		p := b.rules[i].CIDR
		b.nearWorld[i] = append(b.nearWorld[i], fmt.Sprintf("%s holds %s addresses: an %s prefix of /%d or wider is near-world, and is rated as the whole internet",
			p, addressCount(width-p.Bits()), family, bits))
	}
	if len(set) < 2 {
		return
	}
	threshold := new(big.Int).Lsh(big.NewInt(1), uint(width-bits))
	if len(rest) >= 2 {
		if n := b.unionSize(rest); n.Cmp(threshold) >= 0 {
			for _, i := range rest {
				b.nearWorld[i] = append(b.nearWorld[i], fmt.Sprintf("with %s on the same protocol and ports, the group allows %s %s addresses, as many as an %s /%d or more: near-world, rated as the whole internet",
					b.otherRules(rest, i), bigCount(n), family, family, bits))
			}
		}
	}
	if len(alone) > 0 {
		whole := new(big.Int).Lsh(big.NewInt(1), uint(width))
		if b.unionSize(set).Cmp(whole) == 0 {
			for _, i := range alone {
				b.nearWorld[i] = append(b.nearWorld[i], fmt.Sprintf("with %s on the same protocol and ports, the group allows every %s address", b.otherRules(set, i), family))
			}
		}
	}
}

// unionSize returns the number of addresses in the prefixes of the rules set, of one
// address family, counting overlaps once.
func (b *builder) unionSize(set []int32) *big.Int {
	prefixes := make([]netip.Prefix, len(set))
	for k, i := range set {
		prefixes[k] = b.rules[i].CIDR
	}
	// A prefix that contains another sorts before it: same address or lower, shorter.
	slices.SortFunc(prefixes, func(p, q netip.Prefix) int {
		return cmp.Or(p.Addr().Compare(q.Addr()), cmp.Compare(p.Bits(), q.Bits()))
	})
	sum := new(big.Int)
	var last netip.Prefix
	for _, p := range prefixes {
		if last.IsValid() && last.Contains(p.Addr()) && last.Bits() <= p.Bits() {
			continue // inside the last counted prefix
		}
		last = p
		sum.Add(sum, new(big.Int).Lsh(big.NewInt(1), uint(p.Addr().BitLen()-p.Bits())))
	}
	return sum
}

// otherRules names the rules of set other than rule i: "rule sgr-1 (128.0.0.0/1)",
// "rules sgr-1 (...), sgr-2 (...)"; at most maxAddressesShown are named.
func (b *builder) otherRules(set []int32, i int32) string {
	var names []string
	for _, j := range set {
		if j == i {
			continue
		}
		o := &b.rules[j]
		if len(names) == maxAddressesShown {
			names = append(names, "others")
			break
		}
		names = append(names, o.ID+" ("+o.CIDR.String()+")")
	}
	return countNoun(len(names), "rule ", "rules ") + strings.Join(names, ", ")
}

// bigCount writes n with thousands separators, or as a power of two (or "more than" one)
// when it is too long to read.
func bigCount(n *big.Int) string {
	if bits := n.BitLen(); bits > 49 {
		if new(big.Int).Lsh(big.NewInt(1), uint(bits-1)).Cmp(n) == 0 {
			return "2^" + strconv.Itoa(bits-1)
		}
		return "more than 2^" + strconv.Itoa(bits-1)
	}
	return thousands(n.String())
}
