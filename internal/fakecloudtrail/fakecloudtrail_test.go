package fakecloudtrail_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/smithy-go"

	"github.com/sgvet/sgvet/internal/fakecloudtrail"
)

var t0 = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

func events() []fakecloudtrail.Event {
	who := fakecloudtrail.IAMUser("111122223333", "bob")
	var out []fakecloudtrail.Event
	for i := range 5 {
		out = append(out, fakecloudtrail.AuthorizeIngressEvent(fakecloudtrail.Call{Who: who, At: t0.Add(time.Duration(i) * time.Hour), GroupID: "sg-1", RuleIDs: []string{"sgr-" + string(rune('a'+i))}}))
	}
	out = append(out, fakecloudtrail.ModifyRulesEvent(fakecloudtrail.Call{Who: who, At: t0, GroupID: "sg-1", RuleIDs: []string{"sgr-a"}}))
	return out
}

func input(name string, start, end time.Time) *cloudtrail.LookupEventsInput {
	return &cloudtrail.LookupEventsInput{
		LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String(name)}},
		StartTime:        aws.Time(start),
		EndTime:          aws.Time(end),
	}
}

// TestPagesWindowAndAttribute reads through the SDK's paginator and checks what the fake
// answers: only the named events in the window, newest first, in pages of PageSize, each
// with its record as CloudTrailEvent.
func TestPagesWindowAndAttribute(t *testing.T) {
	srv := fakecloudtrail.New(t, fakecloudtrail.Options{PageSize: 2}, events()...)
	client := srv.Client("us-east-1")
	// The window leaves out the first event (t0) and keeps t0+1h (inclusive) to t0+4h.
	pages := cloudtrail.NewLookupEventsPaginator(client, input("AuthorizeSecurityGroupIngress", t0.Add(time.Hour), t0.Add(5*time.Hour)))
	var got []time.Time
	for pages.HasMorePages() {
		page, err := pages.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) > 2 {
			t.Errorf("page of %d events, want at most 2", len(page.Events))
		}
		for _, e := range page.Events {
			got = append(got, aws.ToTime(e.EventTime))
			var rec struct{ EventName, EventTime string }
			if err := json.Unmarshal([]byte(aws.ToString(e.CloudTrailEvent)), &rec); err != nil {
				t.Fatalf("CloudTrailEvent %q: %v", aws.ToString(e.CloudTrailEvent), err)
			}
			if rec.EventName != aws.ToString(e.EventName) || rec.EventTime != aws.ToTime(e.EventTime).Format(time.RFC3339) {
				t.Errorf("CloudTrailEvent %+v does not match event %s at %v", rec, aws.ToString(e.EventName), aws.ToTime(e.EventTime))
			}
			if len(e.Resources) != 1 || aws.ToString(e.Resources[0].ResourceName) != "sg-1" || aws.ToString(e.Username) != "bob" {
				t.Errorf("event %s: resources %+v, username %q", aws.ToString(e.EventId), e.Resources, aws.ToString(e.Username))
			}
		}
	}
	want := []time.Time{t0.Add(4 * time.Hour), t0.Add(3 * time.Hour), t0.Add(2 * time.Hour), t0.Add(time.Hour)}
	if len(got) != len(want) {
		t.Fatalf("event times = %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("event times = %v, want %v", got, want)
			break
		}
	}
	// The SDK may send a request again after a transient transport error: count pages.
	tokens := map[string]bool{}
	for _, r := range srv.Requests() {
		tokens[r.NextToken] = true
	}
	if len(tokens) != 2 || srv.Calls() < 2 {
		t.Errorf("Calls() = %d for pages %v, want 2 pages", srv.Calls(), tokens)
	}
	for _, r := range srv.Requests() {
		if r.Attribute != "EventName=AuthorizeSecurityGroupIngress" || r.MaxResults != 50 {
			t.Errorf("request %+v", r)
		}
	}
}

func TestErrors(t *testing.T) {
	wide := input("AuthorizeSecurityGroupIngress", t0, t0.Add(time.Hour))
	for _, tc := range []struct {
		name string
		opts fakecloudtrail.Options
		in   *cloudtrail.LookupEventsInput
		code string
	}{
		{"access denied", fakecloudtrail.Options{DenyAccess: true}, wide, "AccessDeniedException"},
		{"two attributes", fakecloudtrail.Options{}, &cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{
			{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String("a")},
			{AttributeKey: types.LookupAttributeKeyUsername, AttributeValue: aws.String("b")},
		}}, "InvalidLookupAttributesException"},
		{"start after end", fakecloudtrail.Options{}, input("x", t0.Add(time.Hour), t0), "InvalidTimeRangeException"},
		{"max results", fakecloudtrail.Options{}, &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(51)}, "InvalidMaxResultsException"},
		{"foreign token", fakecloudtrail.Options{}, &cloudtrail.LookupEventsInput{NextToken: aws.String("2|EventName=other|0|0")}, "InvalidNextTokenException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakecloudtrail.New(t, tc.opts, events()...)
			_, err := srv.Client("us-east-1").LookupEvents(t.Context(), tc.in)
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tc.code {
				t.Errorf("LookupEvents error = %v, want %s", err, tc.code)
			}
		})
	}
}
