package collector

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"golang.org/x/time/rate"
)

// CloudTrailWindow is how far back CloudTrail's event history (LookupEvents) reaches. A rule
// with no event in the window was added before it.
const CloudTrailWindow = 90 * 24 * time.Hour

// CloudTrailLookupRate is the documented rate of LookupEvents: two requests per second per
// account per region.
const CloudTrailLookupRate rate.Limit = 2

// The CloudTrail management events that add or modify security group rules, which
// LookupRuleChanges asks for, one query each. EventCreateGroup adds the rules EC2 gives a
// new group (a VPC group's "allow all outbound" rule), which no event names by rule id.
const (
	EventAuthorizeIngress = "AuthorizeSecurityGroupIngress"
	EventAuthorizeEgress  = "AuthorizeSecurityGroupEgress"
	EventModifyRules      = "ModifySecurityGroupRules"
	EventCreateGroup      = "CreateSecurityGroup"
)

// RuleChange is a CloudTrail event that added or modified a security group rule, or
// (EventCreateGroup) created a group, which has no RuleID.
type RuleChange struct {
	RuleID  string `json:"rule_id,omitempty"`
	GroupID string `json:"group_id,omitempty"`
	// Account is the account the event was recorded in (recipientAccountId), which owns
	// the group.
	Account string `json:"account,omitempty"`
	Region  string `json:"region,omitempty"`
	// Event is the event name: EventAuthorizeIngress, EventAuthorizeEgress,
	// EventModifyRules or EventCreateGroup.
	Event string `json:"event"`
	// Principal is who made the call, as Principal describes it.
	Principal string    `json:"principal"`
	At        time.Time `json:"at"`
}

// RuleHistory is what CloudTrail says of one rule: when it was added and by whom, and its
// last modification. Either may be nil: Added is nil for a rule added before the events
// that were read.
type RuleHistory struct {
	Added    *RuleChange `json:"added,omitempty"`
	Modified *RuleChange `json:"modified,omitempty"`
}

// Attributions holds the history of rules by rule id (sgr-...), and the creation of groups
// by group id (sg-..., which no rule id can be): a group's entry has only Added, its
// CreateSecurityGroup event. A rule that no event names, of a group created in the events
// read, was added with its group (as EC2 adds a VPC group's default egress rule). The zero
// value is an empty map that reads as empty but cannot be added to; use make. It is not
// safe for concurrent writes.
type Attributions map[string]RuleHistory

// Add records c: an Authorize or CreateSecurityGroup event becomes the Added change of the
// rule (of the group, keyed by GroupID) unless an earlier one is known, a
// ModifySecurityGroupRules event the rule's Modified change unless a later one is.
func (a Attributions) Add(c RuleChange) {
	key := c.RuleID
	if c.Event == EventCreateGroup {
		key = c.GroupID
	}
	h := a[key]
	if c.Event == EventModifyRules {
		if h.Modified == nil || c.At.After(h.Modified.At) {
			h.Modified = &c
		}
	} else if h.Added == nil || c.At.Before(h.Added.At) {
		h.Added = &c
	}
	a[key] = h
}

// Merge adds every change in b to a, keeping the earliest Added and the latest Modified
// change of each rule.
func (a Attributions) Merge(b Attributions) {
	for _, h := range b {
		if h.Added != nil {
			a.Add(*h.Added)
		}
		if h.Modified != nil {
			a.Add(*h.Modified)
		}
	}
}

// CloudTrailAPI is the part of the CloudTrail API that LookupRuleChanges uses.
type CloudTrailAPI interface {
	cloudtrail.LookupEventsAPIClient
}

// LookupRuleChanges asks CloudTrail's event history of one account and region (the
// client's) for the events that added or modified security group rules, and that created
// groups, between since and until, one paginated LookupEvents query per event name (the
// API takes one lookup attribute per call). Callers pass until = now and since = now - CloudTrailWindow.
//
// Every request first waits on limiter, which should allow CloudTrailLookupRate and be
// shared by all lookups in the same account and region; nil means a new limiter at that
// rate, which is right when this is the only lookup in flight for the account and region.
// Throttling answers are retried by the client's retryer.
//
// Failed calls (records with an errorCode) are skipped. An error of the API ends the
// lookup and is returned wrapped, so errors.As finds the smithy.APIError (a refusal is
// AccessDeniedException): a caller whose lookup fails should treat the rules' history as
// unknown, not empty.
func LookupRuleChanges(ctx context.Context, api CloudTrailAPI, limiter *rate.Limiter, since, until time.Time) (Attributions, error) {
	if limiter == nil {
		limiter = rate.NewLimiter(CloudTrailLookupRate, 1)
	}
	out := make(Attributions)
	for _, name := range []string{EventAuthorizeIngress, EventAuthorizeEgress, EventModifyRules, EventCreateGroup} {
		in := &cloudtrail.LookupEventsInput{
			LookupAttributes: []types.LookupAttribute{{
				AttributeKey:   types.LookupAttributeKeyEventName,
				AttributeValue: aws.String(name),
			}},
			StartTime: aws.Time(since),
			EndTime:   aws.Time(until),
		}
		pages := cloudtrail.NewLookupEventsPaginator(api, in)
		for pages.HasMorePages() {
			if err := limiter.Wait(ctx); err != nil {
				return nil, err
			}
			page, err := pages.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("look up %s events: %w", name, err)
			}
			for _, ev := range page.Events {
				var rec trailRecord
				if err := json.Unmarshal([]byte(aws.ToString(ev.CloudTrailEvent)), &rec); err != nil {
					return nil, fmt.Errorf("look up %s events: event %s: %w", name, aws.ToString(ev.EventId), err)
				}
				rec.changes(out)
			}
		}
	}
	return out, nil
}

// ReadCloudTrailFiles reads CloudTrail log files as CloudTrail delivers them to S3: a JSON
// object {"Records":[...]}, gzip-compressed or not (told by the content, not the name).
// A directory is walked for files named *.json and *.json.gz; other files in it are
// ignored, and so are CloudTrail-Digest folders (digest files are not logs), so that a
// copy of the trail's S3 prefix can be given as it is. A directory that holds no such
// file is an error that names it, and so is a file named *.gz that is not gzip.
//
// Every event in the files is used, however old: the user chose the files, and the 90-day
// limit is one of LookupEvents, not of logs. Errors name the file, and the record's index
// where one is at fault.
func ReadCloudTrailFiles(paths ...string) (Attributions, error) {
	out := make(Attributions)
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			if err := readCloudTrailFile(p, out); err != nil {
				return nil, err
			}
			continue
		}
		logs := 0
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == "CloudTrail-Digest" {
					return filepath.SkipDir
				}
				return nil
			}
			if name := d.Name(); !strings.HasSuffix(name, ".json") && !strings.HasSuffix(name, ".json.gz") {
				return nil
			}
			logs++
			return readCloudTrailFile(path, out)
		})
		if err != nil {
			return nil, err
		}
		if logs == 0 {
			return nil, fmt.Errorf("%s: no CloudTrail log files (*.json or *.json.gz) in the folder", p)
		}
	}
	return out, nil
}

func readCloudTrailFile(path string, out Attributions) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		br := bufio.NewReaderSize(f, 64<<10)
		if !isGzip(br) {
			return fmt.Errorf("%s: not gzip, though named .gz", path)
		}
		r = br
	}
	if err := ReadCloudTrailLog(r, out); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// isGzip reports whether br starts with gzip's magic number, without reading it.
func isGzip(br *bufio.Reader) bool {
	magic, _ := br.Peek(2)
	return len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b
}

// ReadCloudTrailLog reads one CloudTrail log file from r, gzip-compressed or not, and adds
// the rule changes it records to out. Errors name the record's index where one is at fault.
func ReadCloudTrailLog(r io.Reader, out Attributions) error {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	var src io.Reader = br
	if isGzip(br) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		defer zr.Close()
		src = zr
	}
	dec := json.NewDecoder(src)
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	found := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if key, _ := tok.(string); key != "Records" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
			continue
		}
		found = true
		if err := expectDelim(dec, '['); err != nil {
			return fmt.Errorf("Records: %w", err)
		}
		n := 0
		var raw json.RawMessage
		for ; dec.More(); n++ {
			raw = raw[:0]
			if err := dec.Decode(&raw); err != nil {
				return fmt.Errorf("record %d: %w", n, err)
			}
			if !mayChangeRules(raw) {
				continue
			}
			var rec trailRecord
			if err := json.Unmarshal(raw, &rec); err != nil {
				return fmt.Errorf("record %d: %w", n, err)
			}
			rec.changes(out)
		}
		if err := expectDelim(dec, ']'); err != nil {
			return fmt.Errorf("Records, after %d records: %w", n, err)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return err
	}
	if !found {
		return errors.New(`not a CloudTrail log file: no "Records"`)
	}
	return nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("want %q, found %v", want, tok)
	}
	return nil
}

// trailRecord is the part of a CloudTrail record that attribution reads. requestParameters
// and responseElements are decoded in the same pass, into the union of the shapes of the
// four events (their member names do not collide).
type trailRecord struct {
	EventName          string         `json:"eventName"`
	EventTime          time.Time      `json:"eventTime"`
	AWSRegion          string         `json:"awsRegion"`
	RecipientAccountID string         `json:"recipientAccountId"`
	ErrorCode          string         `json:"errorCode"`
	UserIdentity       trailIdentity  `json:"userIdentity"`
	RequestParameters  *trailRequest  `json:"requestParameters"`
	ResponseElements   *trailResponse `json:"responseElements"`
}

type trailIdentity struct {
	Type           string `json:"type"`
	ARN            string `json:"arn"`
	PrincipalID    string `json:"principalId"`
	AccountID      string `json:"accountId"`
	UserName       string `json:"userName"`
	InvokedBy      string `json:"invokedBy"`
	SessionContext struct {
		SessionIssuer struct {
			ARN      string `json:"arn"`
			UserName string `json:"userName"`
		} `json:"sessionIssuer"`
	} `json:"sessionContext"`
}

// trailRequest is requestParameters. Of AuthorizeSecurityGroupIngress and
// AuthorizeSecurityGroupEgress it reads groupId. Of ModifySecurityGroupRules, which CloudTrail
// records in its query-protocol form, it reads ModifySecurityGroupRulesRequest, whose
// SecurityGroupRule is one update, or a list of them, each with a "tag" index.
type trailRequest struct {
	GroupID string         `json:"groupId"`
	Modify  *modifyRequest `json:"ModifySecurityGroupRulesRequest"`
}

type modifyRequest struct {
	GroupID           string                `json:"GroupId"`
	SecurityGroupRule oneOrMany[ruleUpdate] `json:"SecurityGroupRule"`
}

// ruleUpdate is one update of ModifySecurityGroupRules: the rule, and (unread) its new form.
type ruleUpdate struct {
	SecurityGroupRuleID string `json:"SecurityGroupRuleId"`
}

// trailResponse is responseElements: of the Authorize events, _return and the rules added
// (securityGroupRuleSet.items); of ModifySecurityGroupRules, ModifySecurityGroupRulesResponse
// and its return; of CreateSecurityGroup, _return and the new group's groupId.
type trailResponse struct {
	Return               *trailBool `json:"_return"`
	GroupID              string     `json:"groupId"`
	SecurityGroupRuleSet struct {
		Items []struct {
			SecurityGroupRuleID string `json:"securityGroupRuleId"`
			GroupID             string `json:"groupId"`
			GroupOwnerID        string `json:"groupOwnerId"`
		} `json:"items"`
	} `json:"securityGroupRuleSet"`
	Modify *struct {
		Return *trailBool `json:"return"`
	} `json:"ModifySecurityGroupRulesResponse"`
}

// mayChangeRules reports whether a raw record may be one of the rule events, so that the
// others are not decoded: each of their names contains "SecurityGroup".
func mayChangeRules(raw []byte) bool {
	return bytes.Contains(raw, []byte("SecurityGroup"))
}

// changes adds the rule changes r records to out. Records of other events and of failed
// calls add nothing.
func (r *trailRecord) changes(out Attributions) {
	if r.ErrorCode != "" {
		return
	}
	req, resp := r.RequestParameters, r.ResponseElements
	if req == nil {
		req = &trailRequest{}
	}
	if resp == nil {
		resp = &trailResponse{}
	}
	base := RuleChange{
		Account:   r.RecipientAccountID,
		Region:    r.AWSRegion,
		Event:     r.EventName,
		Principal: r.UserIdentity.principal(),
		At:        r.EventTime,
	}
	switch r.EventName {
	case EventAuthorizeIngress, EventAuthorizeEgress:
		if resp.Return != nil && !*resp.Return {
			return
		}
		for _, item := range resp.SecurityGroupRuleSet.Items {
			if item.SecurityGroupRuleID == "" {
				continue
			}
			c := base
			c.RuleID = item.SecurityGroupRuleID
			c.GroupID = cmp.Or(item.GroupID, req.GroupID)
			c.Account = cmp.Or(c.Account, item.GroupOwnerID, r.UserIdentity.AccountID)
			out.Add(c)
		}
	case EventModifyRules:
		if req.Modify == nil || (resp.Modify != nil && resp.Modify.Return != nil && !*resp.Modify.Return) {
			return
		}
		for _, u := range req.Modify.SecurityGroupRule {
			if u.SecurityGroupRuleID == "" {
				continue
			}
			c := base
			c.RuleID = u.SecurityGroupRuleID
			c.GroupID = req.Modify.GroupID
			c.Account = cmp.Or(c.Account, r.UserIdentity.AccountID)
			out.Add(c)
		}
	case EventCreateGroup:
		if resp.GroupID == "" || (resp.Return != nil && !*resp.Return) {
			return
		}
		c := base
		c.GroupID = resp.GroupID
		c.Account = cmp.Or(c.Account, r.UserIdentity.AccountID)
		out.Add(c)
	}
}

// principal describes who made a call: for an assumed role, the role's ARN and the session
// name; for an IAM user, its ARN; for the root user, "root (account N)"; for an AWS
// service, the service (invokedBy). Otherwise the identity's ARN, else its principal id.
// A call a service made with someone's credentials (invokedBy set on another type) is
// followed by " via " and the service.
func (id *trailIdentity) principal() string {
	var who string
	switch id.Type {
	case "AssumedRole":
		issuer := id.SessionContext.SessionIssuer.ARN
		if issuer == "" {
			who = cmp.Or(id.ARN, id.PrincipalID)
			break
		}
		who = issuer
		if session := sessionName(id); session != "" {
			who += " (session " + session + ")"
		}
	case "Root":
		who = "root (account " + id.AccountID + ")"
	case "AWSService":
		return cmp.Or(id.InvokedBy, id.PrincipalID, "AWS service")
	default:
		who = cmp.Or(id.ARN, id.PrincipalID, id.UserName, id.Type)
	}
	if id.InvokedBy != "" {
		who += " via " + id.InvokedBy
	}
	return who
}

// sessionName is the role session name of an assumed-role identity: the last part of its
// ARN (arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION), else what follows the colon of its
// principal id (ROLEID:SESSION).
func sessionName(id *trailIdentity) string {
	if _, rest, ok := strings.Cut(id.ARN, ":assumed-role/"); ok {
		if _, session, ok := strings.Cut(rest, "/"); ok {
			return session
		}
	}
	if _, session, ok := strings.Cut(id.PrincipalID, ":"); ok {
		return session
	}
	return ""
}

// oneOrMany decodes a JSON value that is either one T or an array of them.
type oneOrMany[T any] []T

func (o *oneOrMany[T]) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if bytes.HasPrefix(data, []byte("[")) {
		var many []T
		if err := json.Unmarshal(data, &many); err != nil {
			return err
		}
		*o = many
		return nil
	}
	if bytes.Equal(data, []byte("null")) {
		*o = nil
		return nil
	}
	var one T
	if err := json.Unmarshal(data, &one); err != nil {
		return err
	}
	*o = oneOrMany[T]{one}
	return nil
}

// trailBool is a boolean that CloudTrail may record as true or as "true".
type trailBool bool

func (b *trailBool) UnmarshalJSON(data []byte) error {
	switch s := strings.Trim(string(data), `"`); s {
	case "true":
		*b = true
	case "false":
		*b = false
	default:
		return fmt.Errorf("not a boolean: %s", data)
	}
	return nil
}
