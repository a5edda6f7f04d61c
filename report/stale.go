package report

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sgvet/sgvet/collector"
)

// expiryWords are the words that, written just before a date, make it an expiry date:
// "exp 2025-06-30", "expires=2025-06-30", "valid until 2025/06/30", "(thru 2025-06-30)".
var expiryWords = []string{"exp", "expire", "expires", "expired", "expiring", "expiry", "expiration", "until", "til", "till", "through", "thru"}

// notNames are capitalised words that take "'s" without naming a person.
var notNames = []string{"Everybody", "Everyone", "He", "Here", "How", "It", "Let", "Nobody", "She", "Somebody", "Someone", "That", "There", "Today", "Tomorrow", "What", "Where", "Who", "Yesterday"}

// groupFindings walks the rules group by group: it finds the rules made redundant by a
// broader rule of their group and the near-world ones, and adds the default-group-in-use,
// rule-quota and unused-group findings.
func (b *builder) groupFindings() {
	defaults := map[groupKey]*collector.Group{}
	for i := range b.inv.Groups {
		if g := &b.inv.Groups[i]; g.IsDefault() {
			defaults[groupKey{g.Account, g.Region, g.ID}] = g
		}
	}

	order := make([]int32, len(b.rules))
	for i := range order {
		order[i] = int32(i)
	}
	byGroup := func(x, y int32) int {
		a, c := &b.rules[x], &b.rules[y]
		return cmp.Or(cmp.Compare(a.Account, c.Account), cmp.Compare(a.Region, c.Region), cmp.Compare(a.GroupID, c.GroupID), cmp.Compare(a.Direction, c.Direction))
	}
	// An Inventory keeps its rules in this order already.
	if !slices.IsSortedFunc(order, byGroup) {
		slices.SortStableFunc(order, byGroup)
	}
	for start := 0; start < len(order); {
		first := &b.rules[order[start]]
		end := start + 1
		for end < len(order) {
			r := &b.rules[order[end]]
			if r.GroupID != first.GroupID || r.Region != first.Region || r.Account != first.Account {
				break
			}
			end++
		}
		run := order[start:end]
		b.findRedundant(run)
		b.findNearWorld(run)
		b.ruleQuota(run)
		k := groupKey{first.Account, first.Region, first.GroupID}
		if g := defaults[k]; g != nil {
			b.defaultGroup(g, run)
			delete(defaults, k)
		}
		start = end
	}
	// Default groups without any rule.
	for _, g := range defaults {
		b.defaultGroup(g, nil)
	}
	b.unusedGroups()
}

// ruleQuota adds a rule-quota finding for each direction in which run, the rules of one
// group, holds at least RuleQuotaShare percent of the rule quota. Rules are counted by
// their ids: a rule naming a prefix list counts once, where AWS counts the list's maximum
// number of entries.
func (b *builder) ruleQuota(run []int32) {
	need := (b.quota*RuleQuotaShare + 99) / 100
	if len(run) < need {
		return
	}
	for _, dir := range []collector.Direction{collector.Ingress, collector.Egress} {
		ids := map[string]bool{}
		for _, i := range run {
			if r := &b.rules[i]; r.Direction == dir {
				ids[r.ID] = true
			}
		}
		if len(ids) < need {
			continue
		}
		r := &b.rules[run[0]]
		way := "inbound"
		if dir == collector.Egress {
			way = "outbound"
		}
		reason := fmt.Sprintf("%d of %d %s rules: AWS refuses more once the group reaches its quota, so merge ranges, move addresses into a prefix list (which counts as its maximum number of entries) or ask AWS for a higher quota", len(ids), b.quota, way)
		if len(ids) > b.quota {
			reason = fmt.Sprintf("%d %s rules, more than the quota of %d that the audit assumed, so the account's quota is higher", len(ids), way, b.quota)
		}
		b.findings = append(b.findings, Finding{
			Kind:     RuleQuota,
			Severity: Low,
			ref:      &RuleRef{Account: r.Account, Region: r.Region, GroupID: r.GroupID, GroupName: r.GroupName, Direction: string(dir)},
			reasons:  []string{reason},
		})
	}
}

// unusedGroups adds the unused-group findings: groups known to be attached to no network
// interface that no other group's rule references. Default groups are left to
// default-group-in-use, and a group whose attachment is unknown is never called unused.
func (b *builder) unusedGroups() {
	var referenced map[string]bool
	for i := range b.inv.Groups {
		g := &b.inv.Groups[i]
		if g.Attached != collector.Unattached || g.IsDefault() {
			continue
		}
		if referenced == nil {
			// Group ids are unique across accounts and regions, so a reference names its
			// group by id alone.
			referenced = map[string]bool{}
			for j := range b.rules {
				r := &b.rules[j]
				if ref := r.ReferencedGroup; ref != nil && ref.GroupID != r.GroupID {
					referenced[ref.GroupID] = true
				}
			}
		}
		if referenced[g.ID] {
			continue
		}
		b.findings = append(b.findings, Finding{
			Kind:     UnusedGroup,
			Severity: Low,
			ref:      &RuleRef{Account: g.Account, Region: g.Region, GroupID: g.ID, GroupName: g.Name},
			reasons:  []string{"the group is attached to no network interface and no other group's rules reference it: delete it, or it may be attached later with rules nobody reviews"},
		})
	}
}

// groupKey identifies a security group.
type groupKey struct{ account, region, id string }

// findRedundant records each vettable rule among run, the rules of one group, that another
// valid rule of the group makes redundant: same direction and protocol, ports that cover its
// ports, and a CIDR that strictly contains its CIDR. The narrowest such rule is kept.
func (b *builder) findRedundant(run []int32) {
	if len(run) < 2 {
		return
	}
	for _, i := range run {
		r := &b.rules[i]
		if !vettable(r) {
			continue
		}
		best := int32(-1)
		for _, j := range run {
			o := &b.rules[j]
			if j == i || o.Invalid != nil || o.Direction != r.Direction || o.Protocol != r.Protocol || !o.CIDR.IsValid() ||
				o.CIDR.Bits() >= r.CIDR.Bits() || o.CIDR.Addr().Is4() != r.CIDR.Addr().Is4() ||
				!o.CIDR.Contains(r.CIDR.Addr()) || !portsCover(o, r) {
				continue
			}
			if best < 0 {
				best = j
				continue
			}
			if c := &b.rules[best]; o.CIDR.Bits() > c.CIDR.Bits() || o.CIDR.Bits() == c.CIDR.Bits() && o.ID < c.ID {
				best = j
			}
		}
		if best >= 0 {
			b.redundant[i] = best
		}
	}
}

// portsCover reports whether a allows every port (or ICMP type and code) that b allows;
// they have the same protocol.
func portsCover(a, b *collector.Rule) bool {
	if isICMP(a) {
		return a.FromPort == -1 || a.FromPort == b.FromPort && (a.ToPort == -1 || a.ToPort == b.ToPort)
	}
	alo, ahi, ok := rulePorts(a)
	if !ok {
		return true // the protocol has no ports: every rule allows all of it
	}
	blo, bhi, _ := rulePorts(b)
	return alo <= blo && ahi >= bhi
}

// stale adds the stale-source finding of rule i, a rule with a public CIDR, when it looks
// left behind.
func (b *builder) stale(i int32) {
	r := &b.rules[i]
	entry := ""
	if r.PrefixList != nil {
		entry = r.PrefixList.EntryDescription
	}
	dates := scanDates(r.Description)
	if entry != "" {
		dates = dates.merge(scanDates(entry))
	}

	var reasons []string
	expired := !dates.expires.IsZero() && dates.expires.Before(b.today)
	if expired {
		reasons = append(reasons, "the description says it expired on "+dates.expires.Format(time.DateOnly))
	}
	if words := b.markedBy(r.Description, entry); len(words) > 0 {
		if reason, ok := b.markerAge(i, words, dates.dated); ok {
			reasons = append(reasons, reason)
		}
	}
	if strings.TrimSpace(r.Description) == "" && strings.TrimSpace(entry) == "" {
		reasons = append(reasons, "the rule has no description")
	}
	if r.Attached == collector.Unattached {
		reasons = append(reasons, "the group is attached to no network interface")
	}
	if j, ok := b.redundant[i]; ok {
		o := &b.rules[j]
		on := "on the same ports"
		if o.PortRange() != r.PortRange() {
			on = "on ports " + o.PortRange() + ", which include these"
		}
		switch {
		case o.ID == r.ID && o.PrefixList != nil:
			// Entries of one prefix list share their rule's id: the broader one is another
			// entry of the same list.
			reasons = append(reasons, fmt.Sprintf("redundant: entry %s of the same prefix list %s includes it", entryName(o), o.PrefixList.ID))
		case o.ID == r.ID:
			reasons = append(reasons, fmt.Sprintf("redundant: the same rule also allows %s, which includes it", o.Target()))
		default:
			reasons = append(reasons, fmt.Sprintf("redundant: rule %s allows %s %s", o.ID, o.Target(), on))
		}
	}
	if len(reasons) == 0 {
		return
	}
	sev := Low
	if expired {
		sev = Medium
	}
	b.findings = append(b.findings, b.ruleFinding(i, StaleSource, sev, reasons))
}

// entryName names the prefix list entry of r: its CIDR, and its description if it has one.
func entryName(r *collector.Rule) string {
	if d := r.PrefixList.EntryDescription; d != "" {
		return r.CIDR.String() + " (" + strconv.Quote(d) + ")"
	}
	return r.CIDR.String()
}

// markerAge says why rule i, whose description holds the marker words, is stale: it is
// older than StaleAfter. Its age runs from the earliest of its first sighting in the
// history, dated (a date in its description; zero when there is none), and when CloudTrail
// says it was added. A rule that no CloudTrail event in the window added is older than the
// window (90 days, StaleAfter's default), unless the history saw it appear (it is new since
// the previous run). Without any of these, the age is unknown and the marker alone says
// nothing.
func (b *builder) markerAge(i int32, words []string, dated time.Time) (string, bool) {
	since, from := dated, "its description is dated "+dated.Format(time.DateOnly)
	first, change := b.history(i)
	if first != nil && (since.IsZero() || first.Before(since)) {
		since, from = *first, "first seen "+first.UTC().Format(time.DateOnly)
	}
	older := false
	added, before := b.contextOf(i).trail.addedSince()
	if before && change == New {
		// No event added the rule in CloudTrail's window, but the history saw it appear:
		// the history's first sighting is the better word.
		added = time.Time{}
	}
	if !added.IsZero() && (since.IsZero() || added.Before(since)) {
		since, older = added, before
		from = "added on " + added.UTC().Format(time.DateOnly) + ", by CloudTrail"
		if older {
			from = "no CloudTrail event added it since " + added.UTC().Format(time.DateOnly)
		}
	}
	if since.IsZero() {
		return "", false
	}
	age := b.in.Now.Sub(since)
	if t := b.inv.CloudTrail; older && t != nil {
		// Older than the whole window, however soon after the lookup the report is made.
		age = max(age, t.Until.Sub(t.Since))
	}
	if age < b.staleAfter || age == b.staleAfter && !older {
		return "", false
	}
	days := int(age / (24 * time.Hour))
	if older {
		return fmt.Sprintf("the description says %s and the rule is older than %d days (%s)", quoteList(words), days, from), true
	}
	return fmt.Sprintf("the description says %s and the rule is %d days old (%s)", quoteList(words), days, from), true
}

// quoteList writes words as `"a"`, `"a" and "b"`, `"a", "b" and "c"`.
func quoteList(words []string) string {
	var sb strings.Builder
	for i, w := range words {
		switch {
		case i == 0:
		case i == len(words)-1:
			sb.WriteString(" and ")
		default:
			sb.WriteString(", ")
		}
		sb.WriteString(`"` + w + `"`)
	}
	return sb.String()
}

// markedBy returns the temporary or personal markers in the descriptions: the marker words
// (lower case) and the possessive names ("John's") as written, without repeats.
func (b *builder) markedBy(descriptions ...string) []string {
	var found []string
	for _, d := range descriptions {
		if d == "" {
			continue
		}
		lower := strings.ToLower(d)
		for _, m := range b.markers {
			if containsWord(lower, m) && !slices.Contains(found, m) {
				found = append(found, m)
			}
		}
		for _, name := range possessives(d) {
			if !slices.Contains(found, name) {
				found = append(found, name)
			}
		}
	}
	return found
}

// containsWord reports whether w occurs in s as a whole word: not preceded or followed by
// a letter or digit.
func containsWord(s, w string) bool {
	for from := 0; ; {
		k := strings.Index(s[from:], w)
		if k < 0 {
			return false
		}
		k += from
		end := k + len(w)
		if (k == 0 || !isWordByte(s[k-1])) && (end == len(s) || !isWordByte(s[end])) {
			return true
		}
		from = k + 1
	}
}

// isWordByte reports whether c is an ASCII letter or digit, or part of a non-ASCII
// character (taken to be a letter).
func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c >= utf8.RuneSelf
}

// possessives returns the capitalised names followed by 's in s ("John's", "Zoë’s"),
// leaving out all-capital words ("AWS's") and the words in notNames.
func possessives(s string) []string {
	var out []string
	for _, apostrophe := range []string{"'s", "’s"} {
		for from := 0; ; {
			k := strings.Index(s[from:], apostrophe)
			if k < 0 {
				break
			}
			k += from
			end := k + len(apostrophe)
			from = end
			if end < len(s) && isWordByte(s[end]) {
				continue // "'sa...": not a possessive
			}
			start := k
			lower := false
			for start > 0 {
				c, n := utf8.DecodeLastRuneInString(s[:start])
				if !unicode.IsLetter(c) {
					break
				}
				lower = lower || unicode.IsLower(c)
				start -= n
			}
			if start > 0 && isWordByte(s[start-1]) {
				continue // a digit before the letters
			}
			name := s[start:k]
			first, _ := utf8.DecodeRuneInString(name)
			if !unicode.IsUpper(first) || !lower || slices.Contains(notNames, name) {
				continue
			}
			out = append(out, s[start:end])
		}
	}
	return out
}

// descDates are the dates a description holds.
type descDates struct {
	// expires is the latest date written after an expiry word; zero if there is none.
	expires time.Time
	// dated is the earliest other date; zero if there is none.
	dated time.Time
}

// merge returns the dates of d and e together.
func (d descDates) merge(e descDates) descDates {
	if e.expires.After(d.expires) {
		d.expires = e.expires
	}
	if !e.dated.IsZero() && (d.dated.IsZero() || e.dated.Before(d.dated)) {
		d.dated = e.dated
	}
	return d
}

// scanDates finds the dates written YYYY-MM-DD or YYYY/MM/DD in s, telling expiry dates
// (after one of expiryWords) from the others.
func scanDates(s string) descDates {
	var d descDates
	for i := 0; i+8 <= len(s); i++ {
		if !isDateDigit(s[i]) || i > 0 && isWordByte(s[i-1]) {
			continue
		}
		day, n, ok := parseDate(s[i:])
		if !ok {
			continue
		}
		if expiryWordBefore(s[:i]) {
			if day.After(d.expires) {
				d.expires = day
			}
		} else if d.dated.IsZero() || day.Before(d.dated) {
			d.dated = day
		}
		i += n - 1
	}
	return d
}

// parseDate parses the date YYYY-MM-DD or YYYY/MM/DD (month and day of one or two digits)
// at the start of s, not followed by a digit, and returns it with its length.
func parseDate(s string) (time.Time, int, bool) {
	num := func(i, fewest, most int) (int, int, bool) {
		v, j := 0, i
		for j < len(s) && j-i < most && isDateDigit(s[j]) {
			v = v*10 + int(s[j]-'0')
			j++
		}
		return v, j, j-i >= fewest
	}
	year, i, ok := num(0, 4, 4)
	if !ok || i >= len(s) || s[i] != '-' && s[i] != '/' {
		return time.Time{}, 0, false
	}
	sep := s[i]
	month, i, ok := num(i+1, 1, 2)
	if !ok || i >= len(s) || s[i] != sep {
		return time.Time{}, 0, false
	}
	day, i, ok := num(i+1, 1, 2)
	if !ok || i < len(s) && isDateDigit(s[i]) || year < 1970 || month < 1 || month > 12 || day < 1 {
		return time.Time{}, 0, false
	}
	t := time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC)
	if t.Day() != day {
		return time.Time{}, 0, false // e.g. 2025-02-30
	}
	return t, i, true
}

func isDateDigit(c byte) bool { return '0' <= c && c <= '9' }

// expiryWordBefore reports whether before, the text before a date, ends with an expiry word
// and separators: "exp ", "expires=", "(exp: ", "valid until ", "expires on ".
func expiryWordBefore(before string) bool {
	const separators = " \t:=([.-"
	w, rest := lastWord(strings.TrimRight(before, separators))
	if strings.EqualFold(w, "on") {
		w, _ = lastWord(strings.TrimRight(rest, separators))
	}
	for _, e := range expiryWords {
		if strings.EqualFold(w, e) {
			return true
		}
	}
	return false
}

// lastWord splits s into the ASCII letters it ends with and what comes before them.
func lastWord(s string) (word, rest string) {
	i := len(s)
	for i > 0 && ('a' <= s[i-1] && s[i-1] <= 'z' || 'A' <= s[i-1] && s[i-1] <= 'Z') {
		i--
	}
	return s[i:], s[:i]
}
