package fakecloudtrail

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Identity is the userIdentity of a CloudTrail record. Build one with AssumedRole,
// IAMUser, Root or AWSService.
type Identity struct {
	Type        string
	ARN         string
	PrincipalID string
	AccountID   string
	UserName    string
	// IssuerARN and IssuerUserName are the role of an AssumedRole identity
	// (sessionContext.sessionIssuer).
	IssuerARN      string
	IssuerUserName string
	// InvokedBy is the AWS service that made the call, for AWSService identities and for
	// calls a service makes with a principal's credentials.
	InvokedBy string
}

// AssumedRole is a session of role in account, named session.
func AssumedRole(account, role, session string) Identity {
	return Identity{
		Type:           "AssumedRole",
		ARN:            fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", account, role, session),
		PrincipalID:    "AROAEXAMPLEROLEID:" + session,
		AccountID:      account,
		IssuerARN:      fmt.Sprintf("arn:aws:iam::%s:role/%s", account, role),
		IssuerUserName: role,
	}
}

// IAMUser is the IAM user name of account.
func IAMUser(account, name string) Identity {
	return Identity{
		Type:        "IAMUser",
		ARN:         fmt.Sprintf("arn:aws:iam::%s:user/%s", account, name),
		PrincipalID: "AIDAEXAMPLEUSERID",
		AccountID:   account,
		UserName:    name,
	}
}

// Root is the root user of account.
func Root(account string) Identity {
	return Identity{
		Type:        "Root",
		ARN:         fmt.Sprintf("arn:aws:iam::%s:root", account),
		PrincipalID: account,
		AccountID:   account,
	}
}

// AWSService is an AWS service acting on its own, such as "elasticloadbalancing.amazonaws.com".
func AWSService(service string) Identity {
	return Identity{Type: "AWSService", InvokedBy: service}
}

func (id Identity) record() map[string]any {
	m := map[string]any{"type": id.Type}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set("arn", id.ARN)
	set("principalId", id.PrincipalID)
	set("accountId", id.AccountID)
	set("userName", id.UserName)
	set("invokedBy", id.InvokedBy)
	if id.Type == "AssumedRole" {
		set("accessKeyId", "ASIAEXAMPLEKEYID")
		m["sessionContext"] = map[string]any{
			"sessionIssuer": map[string]any{
				"type":        "Role",
				"principalId": "AROAEXAMPLEROLEID",
				"arn":         id.IssuerARN,
				"accountId":   id.AccountID,
				"userName":    id.IssuerUserName,
			},
			"attributes": map[string]any{"creationDate": "2026-01-01T00:00:00Z", "mfaAuthenticated": "false"},
		}
	}
	return m
}

// username is what LookupEvents reports as an event's Username.
func (id Identity) username() string {
	switch id.Type {
	case "AssumedRole":
		if i := strings.LastIndexByte(id.ARN, '/'); i >= 0 {
			return id.ARN[i+1:]
		}
	case "Root":
		return "root"
	case "AWSService":
		return id.InvokedBy
	}
	return id.UserName
}

// Call describes one API call that CloudTrail records.
type Call struct {
	// Region is the awsRegion; empty means "us-east-1".
	Region string
	// Account is the recipientAccountId, the account the group belongs to; empty means the
	// identity's account.
	Account string
	Who     Identity
	At      time.Time
	GroupID string
	// RuleIDs are the rules the call added (Authorize) or modified (Modify).
	RuleIDs []string
	// ErrorCode, when set, makes the call a failed one: the record has errorCode and
	// errorMessage and no responseElements, as CloudTrail records refused calls.
	ErrorCode string
}

// Event is one CloudTrail management event: what LookupEvents returns for it, and the
// record that is both its CloudTrailEvent and an element of a log file's Records.
type Event struct {
	ID       string
	Name     string
	Time     time.Time
	Username string
	GroupID  string
	Region   string
	Record   json.RawMessage
}

// AuthorizeIngressEvent is a successful (unless c.ErrorCode) AuthorizeSecurityGroupIngress
// call adding one rule per id in c.RuleIDs, each TCP 22 from an address of 203.0.113.0/24.
// requestParameters has groupId and ipPermissions.items; responseElements has _return and
// securityGroupRuleSet.items with each rule's securityGroupRuleId, as CloudTrail records it.
func AuthorizeIngressEvent(c Call) Event {
	return authorizeEvent("AuthorizeSecurityGroupIngress", false, c)
}

// AuthorizeEgressEvent is AuthorizeIngressEvent for AuthorizeSecurityGroupEgress.
func AuthorizeEgressEvent(c Call) Event {
	return authorizeEvent("AuthorizeSecurityGroupEgress", true, c)
}

func authorizeEvent(name string, egress bool, c Call) Event {
	account := c.account()
	var ranges, items []any
	for i, id := range c.RuleIDs {
		cidr := fmt.Sprintf("203.0.113.%d/32", (i%254)+1)
		ranges = append(ranges, map[string]any{"cidrIp": cidr, "description": "added for " + id})
		items = append(items, map[string]any{
			"groupOwnerId":        account,
			"groupId":             c.GroupID,
			"securityGroupRuleId": id,
			"isEgress":            egress,
			"ipProtocol":          "tcp",
			"fromPort":            22,
			"toPort":              22,
			"cidrIpv4":            cidr,
			"description":         "added for " + id,
		})
	}
	request := map[string]any{
		"groupId": c.GroupID,
		"ipPermissions": map[string]any{"items": []any{map[string]any{
			"ipProtocol":    "tcp",
			"fromPort":      22,
			"toPort":        22,
			"groups":        map[string]any{},
			"ipRanges":      map[string]any{"items": ranges},
			"ipv6Ranges":    map[string]any{},
			"prefixListIds": map[string]any{},
		}}},
	}
	response := map[string]any{
		"_return":              true,
		"securityGroupRuleSet": map[string]any{"items": items},
	}
	return c.event(name, request, response)
}

// ModifyRulesEvent is a successful (unless c.ErrorCode) ModifySecurityGroupRules call
// changing the rules c.RuleIDs to TCP 443 from 198.51.100.0/24. CloudTrail records the
// request in its query form: ModifySecurityGroupRulesRequest has GroupId and
// SecurityGroupRule, which is one update object (SecurityGroupRuleId, its "tag" index 1,
// and the new SecurityGroupRule) when one rule changes, and a list of them when several do.
// responseElements is ModifySecurityGroupRulesResponse with "return": true.
func ModifyRulesEvent(c Call) Event {
	var updates []any
	for i, id := range c.RuleIDs {
		updates = append(updates, map[string]any{
			"SecurityGroupRuleId": id,
			"tag":                 i + 1,
			"SecurityGroupRule": map[string]any{
				"IpProtocol":  "tcp",
				"FromPort":    443,
				"ToPort":      443,
				"CidrIpv4":    "198.51.100.0/24",
				"Description": "modified",
			},
		})
	}
	var rules any = updates
	if len(updates) == 1 {
		rules = updates[0]
	}
	request := map[string]any{"ModifySecurityGroupRulesRequest": map[string]any{
		"GroupId":           c.GroupID,
		"SecurityGroupRule": rules,
	}}
	response := map[string]any{"ModifySecurityGroupRulesResponse": map[string]any{
		"xmlns":  "http://ec2.amazonaws.com/doc/2016-11-15/",
		"return": true,
	}}
	return c.event("ModifySecurityGroupRules", request, response)
}

// CreateSecurityGroupEvent is a successful (unless c.ErrorCode) CreateSecurityGroup call
// creating the VPC group c.GroupID, as CloudTrail records it: requestParameters has
// groupName, groupDescription and vpcId; responseElements has requestId, _return and the
// new group's groupId, and names no rule (not even the "allow all outbound" rule EC2 adds
// to the group). c.RuleIDs is not used.
func CreateSecurityGroupEvent(c Call) Event {
	c.RuleIDs = nil
	request := map[string]any{
		"groupName":        "group-" + c.GroupID,
		"groupDescription": "created for " + c.GroupID,
		"vpcId":            "vpc-0example",
	}
	response := map[string]any{
		"requestId": "req-create-" + c.GroupID,
		"_return":   true,
		"groupId":   c.GroupID,
	}
	return c.event("CreateSecurityGroup", request, response)
}

func (c Call) account() string {
	if c.Account != "" {
		return c.Account
	}
	if c.Who.AccountID != "" {
		return c.Who.AccountID
	}
	return "111122223333"
}

func (c Call) region() string {
	if c.Region != "" {
		return c.Region
	}
	return "us-east-1"
}

func (c Call) event(name string, request, response map[string]any) Event {
	id := fmt.Sprintf("%s-%s-%d", name, c.GroupID, c.At.UnixNano())
	if len(c.RuleIDs) > 0 {
		id += "-" + c.RuleIDs[0]
	}
	rec := map[string]any{
		"eventVersion":       "1.09",
		"userIdentity":       c.Who.record(),
		"eventTime":          c.At.UTC().Format(time.RFC3339),
		"eventSource":        "ec2.amazonaws.com",
		"eventName":          name,
		"awsRegion":          c.region(),
		"sourceIPAddress":    "192.0.2.10",
		"userAgent":          "aws-cli/2.15.0",
		"requestParameters":  request,
		"responseElements":   response,
		"requestID":          "req-" + id,
		"eventID":            id,
		"readOnly":           false,
		"eventType":          "AwsApiCall",
		"managementEvent":    true,
		"recipientAccountId": c.account(),
		"eventCategory":      "Management",
	}
	if c.Who.Type == "AWSService" {
		rec["sourceIPAddress"] = c.Who.InvokedBy
		rec["userAgent"] = c.Who.InvokedBy
	}
	if c.ErrorCode != "" {
		rec["errorCode"] = c.ErrorCode
		rec["errorMessage"] = "You are not authorized to perform this operation."
		rec["responseElements"] = nil
	}
	// Only maps and slices of strings, numbers and booleans: Marshal cannot fail.
	data, _ := json.Marshal(rec)
	return Event{
		ID:       id,
		Name:     name,
		Time:     c.At.UTC(),
		Username: c.Who.username(),
		GroupID:  c.GroupID,
		Region:   c.region(),
		Record:   data,
	}
}

// LogFile is a CloudTrail log file holding events, as CloudTrail delivers it to S3 before
// compression: {"Records":[...]}.
func LogFile(events ...Event) []byte {
	var b bytes.Buffer
	b.WriteString(`{"Records":[`)
	for i, e := range events {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(e.Record)
	}
	b.WriteString("]}")
	return b.Bytes()
}
