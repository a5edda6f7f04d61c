package report

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/reputation"
)

// portService is a well-known port and what listens on it.
type portService struct {
	port int32
	name string
}

// adminPorts are the administration and database ports: open to the whole internet they
// are critical, and so is a malicious address allowed to reach them. Sorted by port.
var adminPorts = []portService{
	{22, "SSH"},
	{23, "Telnet"},
	{135, "Microsoft RPC"},
	{139, "NetBIOS"},
	{445, "SMB"},
	{1433, "SQL Server"},
	{1521, "Oracle"},
	{2375, "Docker API"},
	{2376, "Docker API over TLS"},
	{2379, "etcd"},
	{3306, "MySQL"},
	{3389, "RDP"},
	{5432, "PostgreSQL"},
	{5900, "VNC"},
	{5984, "CouchDB"},
	{5985, "WinRM"},
	{5986, "WinRM over HTTPS"},
	{6379, "Redis"},
	{6443, "Kubernetes API"},
	{7000, "Cassandra"},
	{7001, "Cassandra over TLS"},
	{8086, "InfluxDB"},
	{9042, "Cassandra CQL"},
	{9200, "Elasticsearch"},
	{9300, "Elasticsearch transport"},
	{10250, "kubelet"},
	{11211, "Memcached"},
	{27017, "MongoDB"},
	{27018, "MongoDB shard"},
	{50070, "Hadoop NameNode"},
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
func adminServices(lo, hi int32) []portService {
	var out []portService
	for _, s := range adminPorts {
		if s.port >= lo && s.port <= hi {
			out = append(out, s)
		}
	}
	return out
}

// adminPortIn reports whether r allows some administration or database port.
func adminPortIn(r *collector.Rule) bool {
	lo, hi, ok := rulePorts(r)
	if !ok {
		return false
	}
	for _, s := range adminPorts {
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

// serviceName names an administration port: "SSH (22)", or "Memcached (UDP 11211)" when
// the protocol is not TCP.
func serviceName(r *collector.Rule, s portService) string {
	if r.Protocol == "udp" {
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
		sev, reason := openToWorld(r)
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

// openToWorld returns the severity of the ingress rule r from the whole internet, and why.
func openToWorld(r *collector.Rule) (Severity, string) {
	lo, hi, ok := rulePorts(r)
	switch {
	case r.Protocol == "all":
		return High, "every protocol and port is open to the whole internet"
	case !ok:
		return High, protocolName(r) + " is open to the whole internet"
	case lo == 0 && hi == 65535:
		return High, fmt.Sprintf("every %s port is open to the whole internet", protocolName(r))
	}
	if admin := adminServices(lo, hi); len(admin) > 0 {
		if lo == hi {
			return Critical, serviceName(r, admin[0]) + " is open to the whole internet"
		}
		names := make([]string, 0, maxServicesNamed)
		for _, s := range admin[:min(len(admin), maxServicesNamed)] {
			names = append(names, serviceName(r, s))
		}
		more := ""
		if n := len(admin) - len(names); n > 0 {
			more = fmt.Sprintf(" and %d more administration or database %s", n, countNoun(n, "port", "ports"))
		}
		return Critical, fmt.Sprintf("%s ports %d-%d are open to the whole internet, including %s%s", protocolName(r), lo, hi, strings.Join(names, ", "), more)
	}
	if lo == hi && (lo == 80 || lo == 443) {
		name := "HTTP"
		if lo == 443 {
			name = "HTTPS"
		}
		return Low, serviceName(r, portService{lo, name}) + " is open to the whole internet, as a public web server needs"
	}
	if lo == hi {
		return High, fmt.Sprintf("%s port %d is open to the whole internet, and it is not a public web port", protocolName(r), lo)
	}
	return High, fmt.Sprintf("%s ports %d-%d are open to the whole internet", protocolName(r), lo, hi)
}

// wideRange adds the wide-range finding of rule i when its CIDR holds more addresses than
// are vetted one by one.
func (b *builder) wideRange(i int32) {
	r := &b.rules[i]
	if collector.Size(r.CIDR) <= b.maxHosts {
		return
	}
	how := "it was not vetted"
	if known, _, _ := judge(b.verdicts[reputation.PrefixTarget(r.CIDR)]); known {
		how = "it was checked only against offline lists"
	}
	reason := fmt.Sprintf("%s holds %s addresses, more than the %d vetted one by one; %s", r.CIDR, addressCount(r.CIDR.Addr().BitLen()-r.CIDR.Bits()), b.maxHosts, how)
	b.findings = append(b.findings, b.ruleFinding(i, WideRange, Medium, []string{reason}))
}

// addressCount writes 2^hostBits with thousands separators, or as a power of two when it
// is too long to read.
func addressCount(hostBits int) string {
	if hostBits > 48 {
		return "2^" + strconv.Itoa(hostBits)
	}
	digits := strconv.FormatUint(1<<hostBits, 10)
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
// rules are the Rules at the indexes run, when it is attached to an interface or has rules
// other than the ones AWS gives every default group.
func (b *builder) defaultGroup(g *collector.Group, run []int32) {
	var reasons []string
	if g.Attached == collector.Attached {
		reasons = append(reasons, "the default group is attached to network interfaces; they should use groups made for them")
	}
	extra := 0
	for _, i := range run {
		r := &b.rules[i]
		if isDefaultRule(g, r) {
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
	if len(reasons) == 0 {
		return
	}
	b.findings = append(b.findings, Finding{
		Kind:     DefaultGroupInUse,
		Severity: Medium,
		RuleRef:  RuleRef{Account: g.Account, Region: g.Region, GroupID: g.ID, GroupName: g.Name},
		Reasons:  reasons,
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
	way := "from"
	if r.Direction == collector.Egress {
		way = "to"
	}
	what := "all traffic"
	if r.Protocol != "all" {
		what = protocolName(r) + " " + r.PortRange()
	}
	return what + " " + way + " " + r.Target()
}
