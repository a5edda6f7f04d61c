package collector_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"golang.org/x/time/rate"

	"github.com/sgvet/sgvet/collector"
	"github.com/sgvet/sgvet/internal/fakecloudtrail"
)

const (
	account = "111122223333"
	region  = "eu-west-1"
)

// trailNow is the time the tests take as now.
var trailNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func daysAgo(d int) time.Time { return trailNow.Add(-time.Duration(d) * 24 * time.Hour) }

var (
	admin   = fakecloudtrail.AssumedRole(account, "Admin", "alice@example.com")
	bob     = fakecloudtrail.IAMUser(account, "bob")
	carol   = fakecloudtrail.IAMUser(account, "carol")
	root    = fakecloudtrail.Root(account)
	elb     = fakecloudtrail.AWSService("elasticloadbalancing.amazonaws.com")
	adminID = "arn:aws:iam::" + account + ":role/Admin (session alice@example.com)"
	bobID   = "arn:aws:iam::" + account + ":user/bob"
	carolID = "arn:aws:iam::" + account + ":user/carol"
	rootID  = "root (account " + account + ")"
)

func call(who fakecloudtrail.Identity, at time.Time, group string, rules ...string) fakecloudtrail.Call {
	return fakecloudtrail.Call{Region: region, Who: who, At: at, GroupID: group, RuleIDs: rules}
}

// trailEvents are the events of the attribution tests, and what they should attribute. Some
// events are outside the 90 days before trailNow, and one is a failed call.
func trailEvents() ([]fakecloudtrail.Event, collector.Attributions) {
	change := func(rule, group, event, principal string, at time.Time) *collector.RuleChange {
		return &collector.RuleChange{RuleID: rule, GroupID: group, Account: account, Region: region, Event: event, Principal: principal, At: at}
	}
	const in, out, mod = collector.EventAuthorizeIngress, collector.EventAuthorizeEgress, collector.EventModifyRules
	events := []fakecloudtrail.Event{
		fakecloudtrail.AuthorizeIngressEvent(call(admin, daysAgo(10), "sg-1", "sgr-a1", "sgr-a2")),
		fakecloudtrail.AuthorizeIngressEvent(call(bob, daysAgo(20), "sg-1", "sgr-b")),
		fakecloudtrail.AuthorizeEgressEvent(call(root, daysAgo(5), "sg-2", "sgr-c")),
		fakecloudtrail.AuthorizeIngressEvent(call(elb, daysAgo(3), "sg-3", "sgr-d")),
		// A refused call names no rule that exists; its errorCode must make it ignored.
		func() fakecloudtrail.Event {
			c := call(bob, daysAgo(2), "sg-1", "sgr-refused")
			c.ErrorCode = "Client.UnauthorizedOperation"
			return fakecloudtrail.AuthorizeIngressEvent(c)
		}(),
		// Older than the window: LookupRuleChanges does not ask for it.
		fakecloudtrail.AuthorizeIngressEvent(call(bob, daysAgo(100), "sg-1", "sgr-old")),
		fakecloudtrail.ModifyRulesEvent(call(carol, daysAgo(1), "sg-1", "sgr-a1")),
		fakecloudtrail.ModifyRulesEvent(call(admin, daysAgo(4), "sg-1", "sgr-b", "sgr-c")),
		fakecloudtrail.ModifyRulesEvent(call(bob, daysAgo(6), "sg-1", "sgr-b")),
		// A group created in the window: its default egress rule is named by no event, and
		// the creation is kept under the group's id.
		fakecloudtrail.CreateSecurityGroupEvent(call(carol, daysAgo(2), "sg-5")),
		func() fakecloudtrail.Event {
			c := call(bob, daysAgo(2), "sg-refused")
			c.ErrorCode = "Client.UnauthorizedOperation"
			return fakecloudtrail.CreateSecurityGroupEvent(c)
		}(),
	}
	want := collector.Attributions{
		"sgr-a1": {Added: change("sgr-a1", "sg-1", in, adminID, daysAgo(10)), Modified: change("sgr-a1", "sg-1", mod, carolID, daysAgo(1))},
		"sgr-a2": {Added: change("sgr-a2", "sg-1", in, adminID, daysAgo(10))},
		"sgr-b":  {Added: change("sgr-b", "sg-1", in, bobID, daysAgo(20)), Modified: change("sgr-b", "sg-1", mod, adminID, daysAgo(4))},
		"sgr-c":  {Added: change("sgr-c", "sg-2", out, rootID, daysAgo(5)), Modified: change("sgr-c", "sg-1", mod, adminID, daysAgo(4))},
		"sgr-d":  {Added: change("sgr-d", "sg-3", in, "elasticloadbalancing.amazonaws.com", daysAgo(3))},
		"sg-5":   {Added: change("", "sg-5", collector.EventCreateGroup, carolID, daysAgo(2))},
	}
	// More ingress rules, so that each event name takes several pages.
	for i := range 7 {
		rule := fmt.Sprintf("sgr-f%d", i)
		events = append(events, fakecloudtrail.AuthorizeIngressEvent(call(bob, daysAgo(30+i), "sg-4", rule)))
		want[rule] = collector.RuleHistory{Added: change(rule, "sg-4", in, bobID, daysAgo(30+i))}
	}
	return events, want
}

func unlimited() *rate.Limiter { return rate.NewLimiter(rate.Inf, 1) }

func lookup(t *testing.T, srv *fakecloudtrail.Server, limiter *rate.Limiter) (collector.Attributions, error) {
	t.Helper()
	return collector.LookupRuleChanges(t.Context(), srv.Client(region), limiter, trailNow.Add(-collector.CloudTrailWindow), trailNow)
}

func TestLookupRuleChanges(t *testing.T) {
	events, want := trailEvents()
	srv := fakecloudtrail.New(t, fakecloudtrail.Options{PageSize: 2}, events...)
	got, err := lookup(t, srv, unlimited())
	if err != nil {
		t.Fatal(err)
	}
	compareAttributions(t, got, want)

	// One query per event name, each over the window, each read to its last page: in the
	// window there are 12 ingress events (6 pages), 1 egress (1), 3 modify (2) and 2 group
	// creations (1).
	reqs := srv.Requests()
	for _, r := range reqs {
		if !r.Start.Equal(trailNow.Add(-collector.CloudTrailWindow)) || !r.End.Equal(trailNow) {
			t.Errorf("request %+v: window is not the 90 days before %v", r, trailNow)
		}
	}
	pages := pagesRead(reqs)
	wantPages := map[string]int{
		"EventName=AuthorizeSecurityGroupIngress": 6,
		"EventName=AuthorizeSecurityGroupEgress":  1,
		"EventName=ModifySecurityGroupRules":      2,
		"EventName=CreateSecurityGroup":           1,
	}
	if !reflect.DeepEqual(pages, wantPages) {
		t.Errorf("requests per lookup attribute = %v, want %v; requests:", pages, wantPages)
		for _, r := range reqs {
			t.Logf("%+v", r)
		}
	}
}

// pagesRead counts the distinct pages (lookup attribute and NextToken) asked for, by lookup
// attribute. A request the SDK's retryer sent again (after a transient transport error,
// which happens now and then on a loaded machine) asks for the same page: counting pages
// rather than requests keeps the tests exact without depending on that.
func pagesRead(reqs []fakecloudtrail.Request) map[string]int {
	seen := map[fakecloudtrail.Request]bool{}
	pages := map[string]int{}
	for _, r := range reqs {
		if !seen[r] {
			seen[r] = true
			pages[r.Attribute]++
		}
	}
	return pages
}

func total(pages map[string]int) int {
	n := 0
	for _, p := range pages {
		n += p
	}
	return n
}

func compareAttributions(t *testing.T, got, want collector.Attributions) {
	t.Helper()
	for id, w := range want {
		g, ok := got[id]
		if !ok {
			t.Errorf("rule %s: no history, want %s", id, history(w))
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("rule %s:\n got %s\nwant %s", id, history(g), history(w))
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("rule %s: unexpected history %s", id, history(g))
		}
	}
}

func history(h collector.RuleHistory) string {
	s := func(c *collector.RuleChange) string {
		if c == nil {
			return "nil"
		}
		return fmt.Sprintf("%+v", *c)
	}
	return "added " + s(h.Added) + " modified " + s(h.Modified)
}

func TestLookupRuleChangesAccessDenied(t *testing.T) {
	events, _ := trailEvents()
	srv := fakecloudtrail.New(t, fakecloudtrail.Options{DenyAccess: true}, events...)
	got, err := lookup(t, srv, unlimited())
	if err == nil {
		t.Fatalf("LookupRuleChanges = %v, nil; want an error", got)
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "AccessDeniedException" {
		t.Errorf("LookupRuleChanges error %v: want the SDK's AccessDeniedException", err)
	}
	if pages := pagesRead(srv.Requests()); total(pages) != 1 {
		t.Errorf("server was asked for pages %v, want 1 (the other lookups are not made after a refusal)", pages)
	}
}

// TestLookupRuleChangesRetriesThrottling shows that the SDK's retryer, not the collector,
// takes care of ThrottlingException.
func TestLookupRuleChangesRetriesThrottling(t *testing.T) {
	events, want := trailEvents()
	srv := fakecloudtrail.New(t, fakecloudtrail.Options{Throttle: 1}, events...)
	got, err := lookup(t, srv, unlimited())
	if err != nil {
		t.Fatal(err)
	}
	compareAttributions(t, got, want)
	if n, pages := srv.Calls(), total(pagesRead(srv.Requests())); pages != 4 || n < 5 {
		t.Errorf("server saw %d calls for %d pages, want 4 pages and at least 5 calls (one retried)", n, pages)
	}
}

// TestLookupRuleChangesTakesATokenPerRequest shows that every request waits on the
// limiter: a limiter that allows one request fewer than the lookup needs, and whose next
// token comes long after the context's deadline, stops the lookup before its last request.
func TestLookupRuleChangesTakesATokenPerRequest(t *testing.T) {
	events, _ := trailEvents()
	const requests = 10 // 6 + 1 + 2 + 1 pages, as in TestLookupRuleChanges
	for _, burst := range []int{requests, requests - 1} {
		t.Run(fmt.Sprintf("burst %d", burst), func(t *testing.T) {
			srv := fakecloudtrail.New(t, fakecloudtrail.Options{PageSize: 2}, events...)
			limiter := rate.NewLimiter(rate.Every(24*time.Hour), burst)
			ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
			defer cancel()
			_, err := collector.LookupRuleChanges(ctx, srv.Client(region), limiter, trailNow.Add(-collector.CloudTrailWindow), trailNow)
			if burst == requests && err != nil {
				t.Fatalf("LookupRuleChanges with %d tokens: %v", burst, err)
			}
			if burst < requests && err == nil {
				t.Fatalf("LookupRuleChanges with %d tokens for %d requests: no error", burst, requests)
			}
			if n := total(pagesRead(srv.Requests())); n != burst {
				t.Errorf("server was asked for %d pages, want %d", n, burst)
			}
		})
	}
}

func writeFile(t *testing.T, path string, data []byte, compress bool) {
	t.Helper()
	if compress {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		if _, err := zw.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		data = b.Bytes()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// inWindow drops the events older than the window, which LookupRuleChanges does not see
// but log files keep.
func inWindow(events []fakecloudtrail.Event) []fakecloudtrail.Event {
	var out []fakecloudtrail.Event
	for _, e := range events {
		if !e.Time.Before(trailNow.Add(-collector.CloudTrailWindow)) {
			out = append(out, e)
		}
	}
	return out
}

// TestReadCloudTrailFilesMatchesLookup reads the same events from log files, gzipped and
// plain, given one by one and as the directory CloudTrail delivers to, and expects what
// LookupRuleChanges found.
func TestReadCloudTrailFilesMatchesLookup(t *testing.T) {
	all, _ := trailEvents()
	events := inWindow(all)
	srv := fakecloudtrail.New(t, fakecloudtrail.Options{PageSize: 3}, events...)
	want, err := lookup(t, srv, unlimited())
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	logs := filepath.Join(dir, "AWSLogs", account, "CloudTrail", region, "2026", "05")
	half := len(events) / 2
	gz := filepath.Join(logs, "20", account+"_CloudTrail_"+region+"_20260520T1200Z_a.json.gz")
	plain := filepath.Join(logs, "21", account+"_CloudTrail_"+region+"_20260521T1200Z_b.json")
	// The same gzipped content under a name that does not say so.
	renamed := filepath.Join(dir, "renamed.json")
	writeFile(t, gz, fakecloudtrail.LogFile(events[:half]...), true)
	writeFile(t, plain, fakecloudtrail.LogFile(events[half:]...), false)
	writeFile(t, renamed, fakecloudtrail.LogFile(events[:half]...), true)
	// What a directory walk must leave alone: other files and digest files.
	writeFile(t, filepath.Join(dir, "README.txt"), []byte("not json"), false)
	writeFile(t, filepath.Join(dir, "AWSLogs", account, "CloudTrail-Digest", region, "d.json.gz"), []byte(`{"digestStartTime":"2026-05-20T00:00:00Z","logFiles":[]}`), true)

	for _, tc := range []struct {
		name  string
		paths []string
	}{
		{"files", []string{gz, plain}},
		{"renamed gzip and plain", []string{renamed, plain}},
		{"directory", []string{filepath.Join(dir, "AWSLogs")}},
		{"directory and a file twice", []string{dir, plain}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := collector.ReadCloudTrailFiles(tc.paths...)
			if err != nil {
				t.Fatal(err)
			}
			compareAttributions(t, got, want)
		})
	}
}

// TestReadCloudTrailFilesKeepsOldEvents: files are what the user chose, so an event older
// than LookupEvents' 90 days is used, and a failed call is still skipped.
func TestReadCloudTrailFilesKeepsOldEvents(t *testing.T) {
	events, _ := trailEvents()
	path := filepath.Join(t.TempDir(), "trail.json")
	writeFile(t, path, fakecloudtrail.LogFile(events...), false)
	got, err := collector.ReadCloudTrailFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	if h := got["sgr-old"]; h.Added == nil || !h.Added.At.Equal(daysAgo(100)) {
		t.Errorf("sgr-old = %s, want added %v", history(h), daysAgo(100))
	}
	if h, ok := got["sgr-refused"]; ok {
		t.Errorf("sgr-refused = %s, want no history: the call failed", history(h))
	}
}

func TestReadCloudTrailFilesErrors(t *testing.T) {
	dir := t.TempDir()
	good := string(fakecloudtrail.AuthorizeIngressEvent(call(bob, daysAgo(1), "sg-1", "sgr-1")).Record)
	for _, tc := range []struct {
		name, content string
		compress      bool
		want          []string // substrings of the error, besides the file's path
	}{
		{"not json", "this is not json", false, []string{"invalid character"}},
		{"bad record", `{"Records":[` + good + `,{"eventName":"AuthorizeSecurityGroupIngress","eventTime":"yesterday"}]}`, false, []string{"record 1"}},
		{"bad record gzipped", `{"Records":[` + good + `,` + good + `,{"eventName":"ModifySecurityGroupRules","requestParameters":{"ModifySecurityGroupRulesRequest":{"SecurityGroupRule":7}}}]}`, true, []string{"record 2", "requestParameters.ModifySecurityGroupRulesRequest.SecurityGroupRule"}},
		{"truncated", `{"Records":[` + good, false, []string{"after 1 records", "unexpected EOF"}},
		{"no records", `{"digestStartTime":"2026-05-20T00:00:00Z"}`, false, []string{`no "Records"`}},
		{"array", `[]`, false, []string{`want "{"`}},
		{"empty", ``, false, []string{"unexpected EOF"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".json")
			writeFile(t, path, []byte(tc.content), tc.compress)
			got, err := collector.ReadCloudTrailFiles(path)
			if err == nil {
				t.Fatalf("ReadCloudTrailFiles(%q) = %v, nil; want an error", tc.name, got)
			}
			for _, s := range append([]string{path}, tc.want...) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("ReadCloudTrailFiles(%q) error %q does not contain %q", tc.name, err, s)
				}
			}
		})
	}
	if _, err := collector.ReadCloudTrailFiles(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadCloudTrailFiles(missing) error = %v, want one that is os.ErrNotExist", err)
	}

	// A file named .gz that is not gzip, alone and in a folder.
	plainGz := filepath.Join(dir, "gz", "trail.json.gz")
	writeFile(t, plainGz, fakecloudtrail.LogFile(), false)
	for _, p := range []string{plainGz, filepath.Dir(plainGz)} {
		_, err := collector.ReadCloudTrailFiles(p)
		if err == nil || !strings.Contains(err.Error(), plainGz) || !strings.Contains(err.Error(), "not gzip") {
			t.Errorf("ReadCloudTrailFiles(%q) error = %v, want one naming %s and saying it is not gzip", p, err, plainGz)
		}
	}

	// A folder with no log file in it, only other files and digests.
	empty := filepath.Join(dir, "empty")
	writeFile(t, filepath.Join(empty, "README.txt"), []byte("not json"), false)
	writeFile(t, filepath.Join(empty, "CloudTrail-Digest", "d.json.gz"), []byte(`{"logFiles":[]}`), true)
	for _, p := range []string{empty, filepath.Join(dir, "empty", "CloudTrail-Digest")} {
		_, err := collector.ReadCloudTrailFiles(p)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "no CloudTrail log files") {
			t.Errorf("ReadCloudTrailFiles(%q) error = %v, want one naming the folder and saying it holds no log file", p, err)
		}
	}
}

// TestReadCloudTrailLogShapes feeds records written by hand in the shapes CloudTrail uses,
// including the tolerated variants.
func TestReadCloudTrailLogShapes(t *testing.T) {
	const ident = `"userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/bob","accountId":"111122223333","userName":"bob"}`
	const head = `"eventTime":"2026-05-01T10:00:00Z","awsRegion":"eu-west-1","recipientAccountId":"111122223333",` + ident
	modify := func(rules, response string) string {
		return `{"eventName":"ModifySecurityGroupRules",` + head +
			`,"requestParameters":{"ModifySecurityGroupRulesRequest":{"GroupId":"sg-1","SecurityGroupRule":` + rules + `}}` +
			`,"responseElements":` + response + `}`
	}
	authorize := func(response string) string {
		return `{"eventName":"AuthorizeSecurityGroupIngress",` + head +
			`,"requestParameters":{"groupId":"sg-9"},"responseElements":` + response + `}`
	}
	ok := `{"ModifySecurityGroupRulesResponse":{"requestId":"r","return":true}}`
	for _, tc := range []struct {
		name, record string
		want         []string // rule ids with a change
	}{
		{"modify one", modify(`{"SecurityGroupRuleId":"sgr-1","tag":1,"SecurityGroupRule":{"CidrIpv4":"0.0.0.0/0"}}`, ok), []string{"sgr-1"}},
		{"modify list", modify(`[{"SecurityGroupRuleId":"sgr-1","tag":1},{"SecurityGroupRuleId":"sgr-2","tag":2}]`, ok), []string{"sgr-1", "sgr-2"}},
		{"modify return as string", modify(`{"SecurityGroupRuleId":"sgr-1"}`, `{"ModifySecurityGroupRulesResponse":{"return":"true"}}`), []string{"sgr-1"}},
		{"modify returned false", modify(`{"SecurityGroupRuleId":"sgr-1"}`, `{"ModifySecurityGroupRulesResponse":{"return":false}}`), nil},
		{"modify without response", modify(`{"SecurityGroupRuleId":"sgr-1"}`, `null`), []string{"sgr-1"}},
		{"authorize group from request", authorize(`{"_return":true,"securityGroupRuleSet":{"items":[{"securityGroupRuleId":"sgr-3"}]}}`), []string{"sgr-3"}},
		{"authorize returned false", authorize(`{"_return":false,"securityGroupRuleSet":{"items":[{"securityGroupRuleId":"sgr-3"}]}}`), nil},
		{"authorize without rule set", authorize(`{"_return":true}`), nil},
		{"other event", `{"eventName":"RevokeSecurityGroupIngress",` + head + `,"requestParameters":{"groupId":"sg-1","securityGroupRuleIds":{"items":[{"securityGroupRuleId":"sgr-1"}]}}}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(collector.Attributions)
			if err := collector.ReadCloudTrailLog(strings.NewReader(`{"Records":[`+tc.record+`]}`), got); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for id, h := range got {
				ids = append(ids, id)
				c := h.Added
				if c == nil {
					c = h.Modified
				}
				if c.Principal != "arn:aws:iam::111122223333:user/bob" || c.Account != account || c.Region != region || c.GroupID == "" {
					t.Errorf("%s: change %+v", id, *c)
				}
			}
			if len(ids) != len(tc.want) {
				t.Fatalf("rules with history = %v, want %v", ids, tc.want)
			}
			for _, id := range tc.want {
				if _, ok := got[id]; !ok {
					t.Errorf("rules with history = %v, want %v", ids, tc.want)
				}
			}
		})
	}
}

func TestPrincipal(t *testing.T) {
	withInvoker := fakecloudtrail.AssumedRole(account, "deploy", "cfn-session")
	withInvoker.InvokedBy = "cloudformation.amazonaws.com"
	noIssuer := admin
	noIssuer.IssuerARN = ""
	federated := fakecloudtrail.Identity{Type: "FederatedUser", ARN: "arn:aws:sts::" + account + ":federated-user/dave", AccountID: account}
	for _, tc := range []struct {
		name string
		who  fakecloudtrail.Identity
		want string
	}{
		{"AssumedRole", admin, adminID},
		{"AssumedRole via a service", withInvoker, "arn:aws:iam::" + account + ":role/deploy (session cfn-session) via cloudformation.amazonaws.com"},
		{"AssumedRole without issuer", noIssuer, admin.ARN},
		{"IAMUser", bob, bobID},
		{"Root", root, rootID},
		{"AWSService", elb, "elasticloadbalancing.amazonaws.com"},
		{"FederatedUser", federated, federated.ARN},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(collector.Attributions)
			ev := fakecloudtrail.AuthorizeIngressEvent(call(tc.who, daysAgo(1), "sg-1", "sgr-1"))
			if err := collector.ReadCloudTrailLog(bytes.NewReader(fakecloudtrail.LogFile(ev)), got); err != nil {
				t.Fatal(err)
			}
			if p := got["sgr-1"].Added.Principal; p != tc.want {
				t.Errorf("principal of %s = %q, want %q", tc.name, p, tc.want)
			}
		})
	}
}

func TestAttributionsMerge(t *testing.T) {
	c := func(event string, day int, who string) collector.RuleChange {
		return collector.RuleChange{RuleID: "sgr-1", Event: event, Principal: who, At: daysAgo(day)}
	}
	a := make(collector.Attributions)
	a.Add(c(collector.EventAuthorizeIngress, 10, "a"))
	a.Add(c(collector.EventModifyRules, 5, "a"))
	b := make(collector.Attributions)
	b.Add(c(collector.EventAuthorizeIngress, 12, "b")) // earlier: wins Added
	b.Add(c(collector.EventModifyRules, 7, "b"))       // earlier: loses Modified
	b.Add(collector.RuleChange{RuleID: "sgr-2", Event: collector.EventModifyRules, At: daysAgo(1)})
	a.Merge(b)
	if h := a["sgr-1"]; h.Added.Principal != "b" || h.Modified.Principal != "a" {
		t.Errorf("after Merge, sgr-1 = %s; want added by b, modified by a", history(h))
	}
	if h := a["sgr-2"]; h.Added != nil || h.Modified == nil {
		t.Errorf("after Merge, sgr-2 = %s; want only modified", history(h))
	}
}

// benchmarkTrail is a CloudTrail log of n records, of which one in every ruleEvery adds or
// modifies rules; the others are read-only calls of the kind that fill real trails.
func benchmarkTrail(n, ruleEvery int) []byte {
	who := []fakecloudtrail.Identity{admin, bob, root, elb}
	records := make([]fakecloudtrail.Event, 0, n)
	for i := range n {
		at := daysAgo(0).Add(-time.Duration(i) * time.Second)
		if i%ruleEvery != 0 {
			rec := fmt.Sprintf(`{"eventVersion":"1.09","userIdentity":{"type":"AssumedRole","principalId":"AROAEXAMPLE:i-%07d","arn":"arn:aws:sts::%s:assumed-role/app/i-%07d","accountId":"%s"},"eventTime":%q,"eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":%q,"sourceIPAddress":"192.0.2.%d","userAgent":"aws-sdk-go-v2/1.30.0","requestParameters":{"instancesSet":{},"filterSet":{"items":[{"name":"tag:Name","valueSet":{"items":[{"value":"web-%d"}]}}]}},"responseElements":null,"requestID":"req-%d","eventID":"ev-%d","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"%s","eventCategory":"Management"}`,
				i, account, i, account, at.Format(time.RFC3339), region, i%250, i%40, i, i, account)
			records = append(records, fakecloudtrail.Event{Record: []byte(rec)})
			continue
		}
		c := call(who[i%len(who)], at, fmt.Sprintf("sg-%05d", i%5000), fmt.Sprintf("sgr-%08d", i))
		switch i % 3 {
		case 0:
			records = append(records, fakecloudtrail.AuthorizeIngressEvent(c))
		case 1:
			records = append(records, fakecloudtrail.AuthorizeEgressEvent(c))
		default:
			records = append(records, fakecloudtrail.ModifyRulesEvent(c))
		}
	}
	return fakecloudtrail.LogFile(records...)
}

// BenchmarkReadCloudTrail measures reading a log of 100,000 records, plain and gzipped,
// when every record is a rule event and when one in ten is. MB/s is of the uncompressed log.
func BenchmarkReadCloudTrail(b *testing.B) {
	const n = 100_000
	for _, mix := range []struct {
		name      string
		ruleEvery int
	}{{"rule-events", 1}, {"one-in-ten", 10}} {
		plain := benchmarkTrail(n, mix.ruleEvery)
		var zipped bytes.Buffer
		zw := gzip.NewWriter(&zipped)
		if _, err := zw.Write(plain); err != nil {
			b.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			b.Fatal(err)
		}
		for _, f := range []struct {
			name string
			data []byte
		}{{"plain", plain}, {"gzip", zipped.Bytes()}} {
			b.Run(mix.name+"/"+f.name, func(b *testing.B) {
				b.SetBytes(int64(len(plain)))
				b.ReportAllocs()
				var out collector.Attributions
				for b.Loop() {
					out = make(collector.Attributions)
					if err := collector.ReadCloudTrailLog(bytes.NewReader(f.data), out); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
				b.ReportMetric(float64(len(out)), "rules")
			})
		}
	}
}
