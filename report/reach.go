package report

import (
	"fmt"
	"strings"

	"github.com/sgvet/sgvet/collector"
)

// groupOf returns the inventory's group of r, or nil when the inventory does not hold it.
func (b *builder) groupOf(r *collector.Rule) *collector.Group {
	if b.groups == nil {
		b.groups = make(map[groupKey]*collector.Group, len(b.inv.Groups))
		for i := range b.inv.Groups {
			g := &b.inv.Groups[i]
			b.groups[groupKey{g.Account, g.Region, g.ID}] = g
		}
	}
	return b.groups[groupKey{r.Account, r.Region, r.GroupID}]
}

// withReach gives f, a finding about rule r of group g (nil when unknown), g's
// reachability when r is an ingress rule. An open-to-world or suspicious-source finding on
// a group whose network interfaces are all private drops one severity step (reachReason
// says why); on a reachable group reachReason names what is exposed. A group attached to
// nothing keeps its severity: the rule is exposed as soon as the group is attached
// (unused-group says it is unused). Egress findings keep theirs: a private instance still
// reaches a malicious address through a NAT gateway.
func withReach(f *Finding, r *collector.Rule, g *collector.Group) {
	if r.Direction != collector.Ingress || g == nil {
		return
	}
	f.group = g
	if reachMatters(f) && !*g.Reachable && g.Attached == collector.Attached {
		f.Severity, f.dropped = f.Severity.lower(), true
	}
}

// reachMatters reports whether f's severity and reasons follow its group's reachability,
// which is known: an open-to-world or suspicious-source finding on an ingress rule.
func reachMatters(f *Finding) bool {
	return f.group != nil && f.group.Reachable != nil && (f.Kind == OpenToWorld || f.Kind == SuspiciousSource)
}

// reachReason says, for a finding whose reachability matters, what of its group is
// exposed, or that none of it is and the severity was lowered.
func reachReason(f *Finding) (string, bool) {
	switch {
	case !reachMatters(f):
		return "", false
	case *f.group.Reachable:
		return "exposed: " + exposureText(f.group), true
	case f.dropped:
		return fmt.Sprintf("no network interface of the group is reachable from the internet (none has a public IPv4 address, an Elastic IP, or an IPv6 address routed to an internet gateway): %s rather than %s", f.Severity, f.Severity.higher()), true
	}
	return "", false
}

// exposureText says which interfaces make g reachable: "instance i-0a1b (eni-0c2d, public
// IP 54.1.2.3) and 2 more interfaces".
func exposureText(g *collector.Group) string {
	const shown = 3
	var parts []string
	for i, x := range g.Exposure {
		if i == shown {
			break
		}
		parts = append(parts, interfaceText(x))
	}
	s := strings.Join(parts, "; ")
	total := max(g.Exposed, len(g.Exposure))
	if n := total - len(parts); n > 0 {
		s += fmt.Sprintf("; and %d more %s", n, countNoun(n, "interface", "interfaces"))
	}
	return s
}

// interfaceText describes one exposed interface: what it belongs to, its id and the
// public address that exposes it.
func interfaceText(x collector.InterfaceRef) string {
	what := x.Kind
	switch {
	case x.InstanceID != "":
		what += " " + x.InstanceID
	case x.LoadBalancer != "":
		what += " " + x.LoadBalancer
	}
	var details []string
	details = append(details, x.ID)
	switch {
	case x.PublicIP.IsValid() && x.AllocationID != "":
		details = append(details, "Elastic IP "+x.PublicIP.String())
	case x.PublicIP.IsValid():
		details = append(details, "public IP "+x.PublicIP.String())
	case x.IPv6.IsValid():
		details = append(details, "IPv6 "+x.IPv6.String())
	}
	return what + " (" + strings.Join(details, ", ") + ")"
}

// lower returns the severity one step below s; info stays info.
func (s Severity) lower() Severity {
	for i, v := range Severities {
		if v == s && i+1 < len(Severities) {
			return Severities[i+1]
		}
	}
	return s
}

// higher returns the severity one step above s; critical stays critical.
func (s Severity) higher() Severity {
	for i, v := range Severities {
		if v == s && i > 0 {
			return Severities[i-1]
		}
	}
	return s
}

// staleRefKey identifies a rule that a stale reference names.
type staleRefKey struct{ account, region, group, rule string }

// staleReferenceOf returns the stale reference that names rule r: r references a group
// that no longer exists. Nil when it names none.
func (b *builder) staleReferenceOf(r *collector.Rule) *collector.StaleReference {
	if len(b.inv.StaleReferences) == 0 || r.ReferencedGroup == nil {
		return nil
	}
	if b.staleRefs == nil {
		b.staleRefs = map[staleRefKey]*collector.StaleReference{}
		for i := range b.inv.StaleReferences {
			s := &b.inv.StaleReferences[i]
			for _, id := range s.RuleIDs {
				b.staleRefs[staleRefKey{s.Account, s.Region, s.GroupID, id}] = s
			}
		}
	}
	return b.staleRefs[staleRefKey{r.Account, r.Region, r.GroupID, r.ID}]
}

// staleReference adds the stale-source finding of rule i, which references a group that
// no longer exists, as s says.
func (b *builder) staleReference(i int32, s *collector.StaleReference) {
	m := s.Missing
	missing := "group " + m.GroupID
	if m.Account != "" && m.Account != b.rules[i].Account {
		missing += " of account " + m.Account
	}
	why := "it was deleted"
	if m.PeeringID != "" {
		why = "it was deleted, or the VPC peering connection " + m.PeeringID + " to it is gone"
		if m.PeeringStatus != "" {
			why += " (" + m.PeeringStatus + ")"
		}
	}
	allows := "lets in nothing"
	if b.rules[i].Direction == collector.Egress {
		allows = "reaches nothing"
	}
	reason := fmt.Sprintf("the rule references %s, which no longer exists: %s; the rule %s now, but the id may come back to mean something else, so remove it", missing, why, allows)
	b.findings = append(b.findings, b.ruleFinding(i, StaleSource, Low, []string{reason}))
}
