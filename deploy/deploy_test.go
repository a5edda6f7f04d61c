// Package deploy_test deploys the CloudFormation templates to moto's
// CloudFormation and checks what they create through the SQS, IAM and STS
// APIs: sgvet-queues.yaml's queues and policies, and sgvet-member-role.yaml's
// role.
package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"go.yaml.in/yaml/v3"

	"github.com/sgvet/sgvet/internal/motoserver"
)

var moto *motoserver.Server

func TestMain(m *testing.M) { os.Exit(motoserver.Main(m, &moto)) }

const (
	queuesTemplate = "sgvet-queues.yaml"
	region         = "us-east-1"
	// deadline bounds each test's calls and polls. moto does its work while
	// it answers, so the bound only keeps a broken stack or queue from
	// hanging the test on a busy machine.
	deadline = 3 * time.Minute
)

// settings are the values the template's parameters give the stack.
type settings struct {
	prefix            string
	lookupsVisibility int
	resultsVisibility int
	receiveWait       int
	maxReceiveCount   int
	retention         int
	deadRetention     int
}

// defaults are the template's parameter defaults.
var defaults = settings{
	prefix:            "sgvet",
	lookupsVisibility: 300,
	resultsVisibility: 120,
	receiveWait:       20,
	maxReceiveCount:   5,
	retention:         4 * 24 * 3600,
	deadRetention:     14 * 24 * 3600,
}

// parameters returns s as the template's parameters.
func (s settings) parameters() map[string]string {
	return map[string]string{
		"NamePrefix":                s.prefix,
		"LookupsVisibilityTimeout":  strconv.Itoa(s.lookupsVisibility),
		"ResultsVisibilityTimeout":  strconv.Itoa(s.resultsVisibility),
		"ReceiveWaitTime":           strconv.Itoa(s.receiveWait),
		"MaxReceiveCount":           strconv.Itoa(s.maxReceiveCount),
		"MessageRetentionPeriod":    strconv.Itoa(s.retention),
		"DeadLetterRetentionPeriod": strconv.Itoa(s.deadRetention),
	}
}

// clients are the AWS API clients of one test, all pointed at moto.
type clients struct {
	cfn *cloudformation.Client
	sqs *sqs.Client
	iam *iam.Client
	sts *sts.Client
}

func newClients(t *testing.T, s *motoserver.Server) clients {
	cfg := s.AWSConfig(t, region)
	return clients{
		cfn: cloudformation.NewFromConfig(cfg),
		sqs: sqs.NewFromConfig(cfg),
		iam: iam.NewFromConfig(cfg),
		sts: sts.NewFromConfig(cfg),
	}
}

func accountID(ctx context.Context, t *testing.T, c clients) string {
	t.Helper()
	out, err := c.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	return aws.ToString(out.Account)
}

// queueAttributes returns every attribute of the queue at queueURL.
func queueAttributes(ctx context.Context, t *testing.T, c clients, queueURL string) map[string]string {
	t.Helper()
	out, err := c.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(queueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatalf("GetQueueAttributes(%q): %v", queueURL, err)
	}
	return out.Attributes
}

// TestStack deploys the template with its defaults and with every parameter
// set, and checks each resource the stack made.
func TestStack(t *testing.T) {
	overridden := settings{
		prefix:            "audit-prod",
		lookupsVisibility: 900,
		resultsVisibility: 45,
		receiveWait:       10,
		maxReceiveCount:   3,
		retention:         86400,
		deadRetention:     7 * 24 * 3600,
	}
	tests := []struct {
		name   string
		stack  string
		params map[string]string // none: the template's defaults
		want   settings
	}{
		{name: "defaults", stack: "sgvet-queues", want: defaults},
		{name: "overridden", stack: "audit-prod-queues", params: overridden.parameters(), want: overridden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := motoserver.Require(t, moto)
			ctx, cancel := context.WithTimeout(t.Context(), deadline)
			defer cancel()
			c := newClients(t, s)
			outputs := s.DeployStack(ctx, t, region, queuesTemplate, tt.stack, tt.params)
			account := accountID(ctx, t, c)
			w := expect(tt.want, account)

			t.Run("resources", func(t *testing.T) { checkResources(ctx, t, c, tt.stack, queuesResources) })
			t.Run("outputs", func(t *testing.T) {
				keys := slices.Concat(slices.Collect(maps.Keys(w.queueNames)), slices.Collect(maps.Keys(w.outputs)))
				checkOutputs(ctx, t, c, tt.stack, outputs, keys, w.outputs)
			})
			t.Run("queues", func(t *testing.T) { checkQueues(ctx, t, c, outputs, tt.want, w) })
			t.Run("policies", func(t *testing.T) { checkPolicies(ctx, t, c, outputs, w) })
		})
	}
}

// expected holds the names and ARNs a stack with given settings makes.
type expected struct {
	account    string
	queueNames map[string]string // by output key of the queue's URL
	outputs    map[string]string // ARN outputs by key
}

func expect(s settings, account string) expected {
	queueARN := func(name string) string { return fmt.Sprintf("arn:aws:sqs:%s:%s:%s", region, account, name) }
	policyARN := func(role string) string {
		return fmt.Sprintf("arn:aws:iam::%s:policy/%s-%s-%s", account, s.prefix, region, role)
	}
	return expected{
		account: account,
		queueNames: map[string]string{
			"LookupsQueueUrl":           s.prefix + "-lookups",
			"ResultsQueueUrl":           s.prefix + "-results",
			"LookupsDeadLetterQueueUrl": s.prefix + "-lookups-dlq",
			"ResultsDeadLetterQueueUrl": s.prefix + "-results-dlq",
		},
		outputs: map[string]string{
			"LookupsQueueArn":           queueARN(s.prefix + "-lookups"),
			"ResultsQueueArn":           queueARN(s.prefix + "-results"),
			"LookupsDeadLetterQueueArn": queueARN(s.prefix + "-lookups-dlq"),
			"ResultsDeadLetterQueueArn": queueARN(s.prefix + "-results-dlq"),
			"CollectorPolicyArn":        policyARN("collector"),
			"WorkerPolicyArn":           policyARN("worker"),
			"ReporterPolicyArn":         policyARN("reporter"),
		},
	}
}

// queuesResources are the resource types of sgvet-queues.yaml, by logical id.
var queuesResources = map[string]string{
	"LookupsQueue":           "AWS::SQS::Queue",
	"LookupsDeadLetterQueue": "AWS::SQS::Queue",
	"ResultsQueue":           "AWS::SQS::Queue",
	"ResultsDeadLetterQueue": "AWS::SQS::Queue",
	"CollectorPolicy":        "AWS::IAM::ManagedPolicy",
	"WorkerPolicy":           "AWS::IAM::ManagedPolicy",
	"ReporterPolicy":         "AWS::IAM::ManagedPolicy",
}

// checkResources checks that stack has exactly the resources in want
// (types by logical id), each created with a physical id.
func checkResources(ctx context.Context, t *testing.T, c clients, stack string, want map[string]string) {
	// moto skips, with only a warning, a resource type it does not
	// implement, and still completes the stack: check that each was made.
	got := map[string]string{}
	pages := cloudformation.NewListStackResourcesPaginator(c.cfn, &cloudformation.ListStackResourcesInput{StackName: aws.String(stack)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListStackResources(%q): %v", stack, err)
		}
		for _, r := range page.StackResourceSummaries {
			id := aws.ToString(r.LogicalResourceId)
			got[id] = aws.ToString(r.ResourceType)
			if r.ResourceStatus != cftypes.ResourceStatusCreateComplete || aws.ToString(r.PhysicalResourceId) == "" {
				t.Errorf("ListStackResources(%q)[%s] = %s, physical id %q, want %s with a physical id", stack, id, r.ResourceStatus, aws.ToString(r.PhysicalResourceId), cftypes.ResourceStatusCreateComplete)
			}
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("ListStackResources(%q) = %v, want %v", stack, got, want)
	}
}

// checkOutputs checks that stack has exactly the outputs keys, those in
// values with these values, each exported as STACK-KEY, and that the
// account's exports are those of the outputs and no others.
func checkOutputs(ctx context.Context, t *testing.T, c clients, stack string, outputs map[string]cftypes.Output, keys []string, values map[string]string) {
	wantKeys := slices.Sorted(slices.Values(keys))
	if got := slices.Sorted(maps.Keys(outputs)); !slices.Equal(got, wantKeys) {
		t.Errorf("DescribeStacks(%q) outputs = %v, want %v", stack, got, wantKeys)
	}
	for key, want := range values {
		if got := aws.ToString(outputs[key].OutputValue); got != want {
			t.Errorf("output %s = %q, want %q", key, got, want)
		}
	}
	for _, key := range wantKeys {
		want := stack + "-" + key
		if got := aws.ToString(outputs[key].ExportName); got != want {
			t.Errorf("output %s export = %q, want %q", key, got, want)
		}
	}

	exports := map[string]string{}
	pages := cloudformation.NewListExportsPaginator(c.cfn, &cloudformation.ListExportsInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListExports: %v", err)
		}
		for _, e := range page.Exports {
			exports[aws.ToString(e.Name)] = aws.ToString(e.Value)
		}
	}
	want := map[string]string{}
	for key, o := range outputs {
		want[stack+"-"+key] = aws.ToString(o.OutputValue)
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if got, ok := exports[name]; !ok || got != want[name] {
			t.Errorf("ListExports()[%s] = %q (present: %v), want %q", name, got, ok, want[name])
		}
	}
	for _, name := range slices.Sorted(maps.Keys(exports)) {
		if _, ok := want[name]; !ok {
			t.Errorf("ListExports()[%s] = %q, want no such export", name, exports[name])
		}
	}
}

func checkQueues(ctx context.Context, t *testing.T, c clients, outputs map[string]cftypes.Output, s settings, w expected) {
	// The stack makes these four queues and no other.
	list, err := c.sqs.ListQueues(ctx, &sqs.ListQueuesInput{})
	if err != nil {
		t.Fatalf("ListQueues: %v", err)
	}
	var names []string
	for _, u := range list.QueueUrls {
		names = append(names, u[strings.LastIndexByte(u, '/')+1:])
	}
	slices.Sort(names)
	if want := slices.Sorted(maps.Values(w.queueNames)); !slices.Equal(names, want) {
		t.Errorf("ListQueues() = %v, want %v", names, want)
	}

	redrive := func(dlqARNKey string) string {
		return fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":%d}`, w.outputs[dlqARNKey], s.maxReceiveCount)
	}
	tests := []struct {
		urlKey, arnKey string
		want           map[string]string // attributes; "" for RedrivePolicy means none
	}{
		{"LookupsQueueUrl", "LookupsQueueArn", map[string]string{
			"VisibilityTimeout":             strconv.Itoa(s.lookupsVisibility),
			"ReceiveMessageWaitTimeSeconds": strconv.Itoa(s.receiveWait),
			"MessageRetentionPeriod":        strconv.Itoa(s.retention),
			"SqsManagedSseEnabled":          "true",
			"RedrivePolicy":                 redrive("LookupsDeadLetterQueueArn"),
		}},
		{"ResultsQueueUrl", "ResultsQueueArn", map[string]string{
			"VisibilityTimeout":             strconv.Itoa(s.resultsVisibility),
			"ReceiveMessageWaitTimeSeconds": strconv.Itoa(s.receiveWait),
			"MessageRetentionPeriod":        strconv.Itoa(s.retention),
			"SqsManagedSseEnabled":          "true",
			"RedrivePolicy":                 redrive("ResultsDeadLetterQueueArn"),
		}},
		{"LookupsDeadLetterQueueUrl", "LookupsDeadLetterQueueArn", map[string]string{
			"MessageRetentionPeriod": strconv.Itoa(s.deadRetention),
			"SqsManagedSseEnabled":   "true",
			"RedrivePolicy":          "",
		}},
		{"ResultsDeadLetterQueueUrl", "ResultsDeadLetterQueueArn", map[string]string{
			"MessageRetentionPeriod": strconv.Itoa(s.deadRetention),
			"SqsManagedSseEnabled":   "true",
			"RedrivePolicy":          "",
		}},
	}
	for _, tt := range tests {
		t.Run(w.queueNames[tt.urlKey], func(t *testing.T) {
			queueURL := aws.ToString(outputs[tt.urlKey].OutputValue)
			u, err := url.Parse(queueURL)
			if want := "/" + w.account + "/" + w.queueNames[tt.urlKey]; err != nil || u.Scheme != "https" || u.Path != want {
				t.Errorf("output %s = %q, want an https URL with path %q", tt.urlKey, queueURL, want)
			}
			got := queueAttributes(ctx, t, c, queueURL)
			if arn := got["QueueArn"]; arn != w.outputs[tt.arnKey] {
				t.Errorf("GetQueueAttributes(%q)[QueueArn] = %q, want %q (output %s)", queueURL, arn, w.outputs[tt.arnKey], tt.arnKey)
			}
			for _, name := range slices.Sorted(maps.Keys(tt.want)) {
				want := tt.want[name]
				if name == "RedrivePolicy" {
					if gotPolicy := normalRedrivePolicy(t, got[name]); gotPolicy != want {
						t.Errorf("GetQueueAttributes(%q)[RedrivePolicy] = %s, want %s", queueURL, gotPolicy, want)
					}
					continue
				}
				if got[name] != want {
					t.Errorf("GetQueueAttributes(%q)[%s] = %q, want %q", queueURL, name, got[name], want)
				}
			}
		})
	}
}

// normalRedrivePolicy returns a queue's RedrivePolicy attribute as
// {"deadLetterTargetArn":ARN,"maxReceiveCount":N}, whether the count is a
// JSON number or string, or "" for no policy. Any other key is kept, so that
// it shows in a failure.
func normalRedrivePolicy(t *testing.T, attr string) string {
	t.Helper()
	if attr == "" {
		return ""
	}
	var p map[string]any
	if err := json.Unmarshal([]byte(attr), &p); err != nil {
		t.Fatalf("RedrivePolicy %q: %v", attr, err)
	}
	if n, ok := p["maxReceiveCount"].(string); ok {
		v, err := strconv.Atoi(n)
		if err != nil {
			t.Fatalf("RedrivePolicy %q: maxReceiveCount: %v", attr, err)
		}
		p["maxReceiveCount"] = v
	}
	b, err := json.Marshal(p) // keys sorted
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// policyDocument is an IAM policy document, with only the fields that
// matter here; the others are kept raw so that the test can refuse them.
type policyDocument struct {
	Version   string
	Statement []struct {
		Sid         string
		Effect      string
		Action      stringList
		Resource    stringList
		NotAction   json.RawMessage
		NotResource json.RawMessage
		Principal   json.RawMessage
		Condition   json.RawMessage
	}
}

// stringList is a policy element that is a string or a list of strings.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = stringList{one}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(l))
}

// grants returns what the document allows as "action on resource", sorted,
// and reports anything in it beyond plain Allow statements.
func (d policyDocument) grants(t *testing.T, arn string) []string {
	t.Helper()
	if d.Version != "2012-10-17" {
		t.Errorf("policy %s Version = %q, want %q", arn, d.Version, "2012-10-17")
	}
	var out []string
	for _, s := range d.Statement {
		if s.Effect != "Allow" || s.NotAction != nil || s.NotResource != nil || s.Principal != nil || s.Condition != nil {
			t.Errorf("policy %s statement %q: Effect %q, NotAction %s, NotResource %s, Principal %s, Condition %s; want a plain Allow of actions on resources",
				arn, s.Sid, s.Effect, s.NotAction, s.NotResource, s.Principal, s.Condition)
		}
		for _, a := range s.Action {
			for _, r := range s.Resource {
				out = append(out, a+" on "+r)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func checkPolicies(ctx context.Context, t *testing.T, c clients, outputs map[string]cftypes.Output, w expected) {
	lookups, results := w.outputs["LookupsQueueArn"], w.outputs["ResultsQueueArn"]
	on := func(arn string, actions ...string) []string {
		var out []string
		for _, a := range actions {
			out = append(out, "sqs:"+a+" on "+arn)
		}
		return out
	}
	tests := []struct {
		key  string
		want []string
	}{
		{"CollectorPolicyArn", on(lookups, "SendMessage", "GetQueueAttributes")},
		{"WorkerPolicyArn", slices.Concat(
			on(lookups, "ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility", "GetQueueAttributes"),
			on(results, "SendMessage"),
		)},
		{"ReporterPolicyArn", on(results, "ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility", "GetQueueAttributes", "SendMessage")},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			arn := aws.ToString(outputs[tt.key].OutputValue)
			doc := policyVersion(ctx, t, c, arn)
			want := slices.Sorted(slices.Values(tt.want))
			if got := doc.grants(t, arn); !slices.Equal(got, want) {
				t.Errorf("policy %s grants\n  %s\nwant\n  %s", arn, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}

// policyVersion reads the default version of the managed policy arn from IAM.
func policyVersion(ctx context.Context, t *testing.T, c clients, arn string) policyDocument {
	t.Helper()
	p, err := c.iam.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(arn)})
	if err != nil {
		t.Fatalf("GetPolicy(%q): %v", arn, err)
	}
	v, err := c.iam.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(arn), VersionId: p.Policy.DefaultVersionId})
	if err != nil {
		t.Fatalf("GetPolicyVersion(%q, %q): %v", arn, aws.ToString(p.Policy.DefaultVersionId), err)
	}
	var doc policyDocument
	decodePolicy(t, fmt.Sprintf("GetPolicyVersion(%q)", arn), aws.ToString(v.PolicyVersion.Document), &doc)
	return doc
}

// decodePolicy decodes a policy document as IAM returns it, URL-encoded
// (RFC 3986), into doc; call names the call that returned it.
func decodePolicy(t *testing.T, call, raw string, doc any) {
	t.Helper()
	text, err := url.PathUnescape(raw)
	if err != nil {
		t.Fatalf("%s document %q: %v", call, raw, err)
	}
	if err := json.Unmarshal([]byte(text), doc); err != nil {
		t.Fatalf("%s document %q: %v", call, text, err)
	}
}

// TestRedrive sends a message to each main queue of a stack whose queues
// hide a received message for one second, receives it without deleting it
// until the redrive policy's count, and finds it in the dead-letter queue.
func TestRedrive(t *testing.T) {
	s := motoserver.Require(t, moto)
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	c := newClients(t, s)
	set := defaults
	set.prefix = "redrive"
	set.lookupsVisibility = 1
	set.resultsVisibility = 1
	set.maxReceiveCount = 3
	outputs := s.DeployStack(ctx, t, region, queuesTemplate, "sgvet-redrive", set.parameters())

	tests := []struct {
		queue, dlq string // output keys of their URLs
		body       string
	}{
		{"LookupsQueueUrl", "LookupsDeadLetterQueueUrl", `{"v":1,"run":"r1","addresses":["203.0.113.7"]}`},
		{"ResultsQueueUrl", "ResultsDeadLetterQueueUrl", `{"v":1,"run":"r1","verdicts":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.queue, func(t *testing.T) {
			queueURL := aws.ToString(outputs[tt.queue].OutputValue)
			dlqURL := aws.ToString(outputs[tt.dlq].OutputValue)
			if _, err := c.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(tt.body)}); err != nil {
				t.Fatalf("SendMessage(%q): %v", queueURL, err)
			}

			// Each receive waits (long polling) for the message to be visible
			// again after its one-second visibility timeout.
			for n := 1; n <= set.maxReceiveCount; n++ {
				m := receiveOne(ctx, t, c, queueURL)
				for m == nil {
					m = receiveOne(ctx, t, c, queueURL)
				}
				if got := aws.ToString(m.Body); got != tt.body {
					t.Fatalf("ReceiveMessage(%q) body = %q, want %q", queueURL, got, tt.body)
				}
				if got, want := m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)], strconv.Itoa(n); got != want {
					t.Errorf("ReceiveMessage(%q) ApproximateReceiveCount = %q, want %q", queueURL, got, want)
				}
			}

			// The next receive of the main queue moves the message instead
			// of returning it.
			for {
				if m := receiveOne(ctx, t, c, queueURL); m != nil {
					t.Fatalf("ReceiveMessage(%q) returned the message again (receive count %s); want it moved to %s after %d receives",
						queueURL, m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)], dlqURL, set.maxReceiveCount)
				}
				if m := receiveOne(ctx, t, c, dlqURL); m != nil {
					if got := aws.ToString(m.Body); got != tt.body {
						t.Errorf("ReceiveMessage(%q) body = %q, want %q", dlqURL, got, tt.body)
					}
					break
				}
			}
			attrs := queueAttributes(ctx, t, c, queueURL)
			for _, name := range []string{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"} {
				if attrs[name] != "0" {
					t.Errorf("GetQueueAttributes(%q)[%s] = %q, want %q", queueURL, name, attrs[name], "0")
				}
			}
		})
	}
}

// receiveOne receives at most one message from queueURL, waiting up to two
// seconds for one, and returns nil if none came. The test's deadline ends
// the wait for a message that never comes.
func receiveOne(ctx context.Context, t *testing.T, c clients, queueURL string) *sqstypes.Message {
	t.Helper()
	out, err := c.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(queueURL),
		MaxNumberOfMessages:         1,
		WaitTimeSeconds:             2,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
	})
	if err != nil {
		t.Fatalf("ReceiveMessage(%q): %v", queueURL, err)
	}
	if len(out.Messages) == 0 {
		return nil
	}
	return &out.Messages[0]
}

// TestTemplateEncryptsQueues reads the template itself: moto, as SQS now
// does for new queues, turns SqsManagedSseEnabled on when a queue does not
// set it, so the queues' attributes cannot show that the template asks for
// it, and a stack must not depend on that default.
func TestTemplateEncryptsQueues(t *testing.T) {
	body, err := os.ReadFile(queuesTemplate)
	if err != nil {
		t.Fatal(err)
	}
	var tmpl struct {
		Resources map[string]struct {
			Type       string `yaml:"Type"`
			Properties struct {
				SqsManagedSseEnabled *bool `yaml:"SqsManagedSseEnabled"`
				KmsMasterKeyID       any   `yaml:"KmsMasterKeyId"`
			} `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal(body, &tmpl); err != nil {
		t.Fatalf("%s: %v", queuesTemplate, err)
	}
	queues := 0
	for _, id := range slices.Sorted(maps.Keys(tmpl.Resources)) {
		r := tmpl.Resources[id]
		if r.Type != "AWS::SQS::Queue" {
			continue
		}
		queues++
		sse := "unset"
		if p := r.Properties.SqsManagedSseEnabled; p != nil {
			sse = strconv.FormatBool(*p)
		}
		if sse != "true" || r.Properties.KmsMasterKeyID != nil {
			t.Errorf("%s: queue %s SqsManagedSseEnabled = %s, KmsMasterKeyId = %v; want true and none", queuesTemplate, id, sse, r.Properties.KmsMasterKeyID)
		}
	}
	if queues != 4 {
		t.Errorf("%s declares %d queues, want 4", queuesTemplate, queues)
	}
}
