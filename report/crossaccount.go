package report

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sgvet/sgvet/collector"
)

// crossAccount adds the cross-account-reference finding of rule i, which names a security
// group of another account. Its severity follows who controls that account:
//   - an AWS service's group (the owner is a name such as amazon-elb, not an account id),
//     or a group of another account of the Organization: info;
//   - an account outside the Organization: medium, since that account, not the
//     Organization, decides which of its network interfaces the rule applies to;
//   - an account whose membership is unknown (the run did not list the Organization):
//     low.
func (b *builder) crossAccount(i int32) {
	r := &b.rules[i]
	ref := r.ReferencedGroup
	if !isAccountID(ref.Account) {
		reason := fmt.Sprintf("the rule allows %s group %s of %s, an AWS service, not an account", trafficText(r), ref.GroupID, ref.Account)
		b.findings = append(b.findings, b.ruleFinding(i, CrossAccountReference, Info, []string{reason}))
		return
	}
	allows := fmt.Sprintf("the rule allows %s group %s of account %s", trafficText(r), ref.GroupID, ref.Account)
	if ref.PeeringID != "" {
		allows += " through VPC peering connection " + ref.PeeringID
	}
	org := b.inv.Organization
	control := fmt.Sprintf("whoever controls account %s decides which of its network interfaces the rule applies to", ref.Account)
	var (
		sev    Severity
		reason string
	)
	switch {
	case ref.InOrganization == nil || org == nil:
		sev = Low
		reason = fmt.Sprintf("%s; whether that account belongs to the Organization is unknown, because the run did not list the Organization's accounts (audit with --org, or from the management account or a delegated administrator, with organizations:ListAccounts)", allows)
	case *ref.InOrganization:
		sev = Info
		reason = fmt.Sprintf("%s, another account of the Organization%s", allows, orgName(org))
	case len(org.Accounts) == 0:
		sev = Medium
		reason = fmt.Sprintf("%s, and the audited accounts belong to no AWS Organization: %s", allows, control)
	default:
		sev = Medium
		reason = fmt.Sprintf("%s, which is not in the Organization%s: %s", allows, orgName(org), control)
	}
	reasons := []string{reason}
	if b.audited(ref.Account) {
		reasons = append(reasons, fmt.Sprintf("account %s is audited in this run", ref.Account))
	}
	b.findings = append(b.findings, b.ruleFinding(i, CrossAccountReference, sev, reasons))
}

// orgName returns " <id>" for an Organization whose id is known, "" otherwise.
func orgName(org *collector.Organization) string {
	if org.ID == "" {
		return ""
	}
	return " " + org.ID
}

// audited reports whether account is one of the inventory's accounts.
func (b *builder) audited(account string) bool {
	return slices.Contains(b.inv.Accounts, account)
}

// isAccountID reports whether s is a 12-digit AWS account id. A group's owner may instead
// be an AWS service's name, such as amazon-elb.
func isAccountID(s string) bool {
	return len(s) == 12 && strings.Trim(s, "0123456789") == ""
}
