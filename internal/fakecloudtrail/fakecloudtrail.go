// Package fakecloudtrail serves a test double of CloudTrail's LookupEvents on loopback,
// because moto does not implement LookupEvents. It also builds realistic CloudTrail records
// of the security group calls sgvet attributes (AuthorizeIngressEvent, AuthorizeEgressEvent,
// ModifyRulesEvent, CreateSecurityGroupEvent), which a test can serve or write to a log file (LogFile).
//
// The wire format follows what the generated deserializers and serializers of
// aws-sdk-go-v2's service/cloudtrail send and expect (AWS JSON 1.1):
//
//   - a request is POST / with Content-Type application/x-amz-json-1.1 and X-Amz-Target
//     CloudTrail_20131101.LookupEvents (the SDK's form; the long form
//     com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents is accepted too),
//     signed with Signature Version 4;
//   - its body is {"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"..."}],
//     "StartTime":<epoch seconds>,"EndTime":<epoch seconds>,"MaxResults":n,"NextToken":"..."},
//     each member optional;
//   - the answer is {"Events":[{"EventId","EventName","ReadOnly","EventTime":<epoch seconds>,
//     "EventSource","Username","Resources":[{"ResourceType","ResourceName"}],
//     "CloudTrailEvent":"<the record as a JSON string>"}],"NextToken":"..."}, newest first;
//   - an error is status 400 with {"__type":"<code>","message":"..."}; the SDK reads the code
//     from __type (or the X-Amzn-ErrorType header).
//
// The fake honours the one lookup attribute (only EventName is implemented: another key is
// refused with InvalidLookupAttributesException rather than ignored), the time window
// (StartTime and EndTime inclusive; StartTime after EndTime is InvalidTimeRangeException),
// MaxResults (1 to 50, default 50; Options.PageSize lowers it to force several pages) and
// NextToken (a token from another query is InvalidNextTokenException). Options.DenyAccess
// refuses every call with AccessDeniedException, and Options.Throttle answers the first
// requests with ThrottlingException. It does not enforce the 2 requests per second rate.
package fakecloudtrail

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
)

// MaxResults is the largest page LookupEvents returns, and its default.
const MaxResults = 50

// Options changes how a Server answers.
type Options struct {
	// PageSize, when positive and below the request's MaxResults, is the size of a page.
	PageSize int
	// DenyAccess answers every request with AccessDeniedException.
	DenyAccess bool
	// Throttle is how many requests, from the first, are answered with ThrottlingException.
	Throttle int
}

// Request is what a Server was asked.
type Request struct {
	// Attribute is the AttributeKey=AttributeValue of the lookup attribute, or empty.
	Attribute  string
	Start, End time.Time
	MaxResults int
	NextToken  string
}

// Server is a fake of CloudTrail's LookupEvents. It is safe for concurrent use.
type Server struct {
	// URL is the base endpoint a CloudTrail client is pointed at.
	URL  string
	opts Options

	mu       sync.Mutex
	events   []Event
	requests []Request
}

// New starts a Server holding events, closed when the test ends.
func New(t testing.TB, opts Options, events ...Event) *Server {
	t.Helper()
	s := &Server{opts: opts}
	s.Add(events...)
	hs := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(hs.Close)
	s.URL = hs.URL
	return s
}

// Add makes events known to s.
func (s *Server) Add(events ...Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, events...)
	// Newest first, as LookupEvents answers; ties by id so pages are stable.
	slices.SortStableFunc(s.events, func(a, b Event) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// Requests returns the LookupEvents requests s has received, refused ones included, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Calls is the number of LookupEvents requests s has received.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

// Client returns a CloudTrail client of the SDK for region pointed at s, with the static
// credentials test/test and the SDK's default retryer.
func (s *Server) Client(region string) *cloudtrail.Client {
	cfg := aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}
	return cloudtrail.NewFromConfig(cfg, func(o *cloudtrail.Options) {
		o.BaseEndpoint = aws.String(s.URL)
	})
}

// lookupRequest is the body of a LookupEvents request.
type lookupRequest struct {
	LookupAttributes []struct {
		AttributeKey   string
		AttributeValue string
	}
	StartTime  *float64
	EndTime    *float64
	MaxResults *int
	NextToken  *string
}

type lookupEvent struct {
	EventID         string           `json:"EventId"`
	EventName       string           `json:"EventName"`
	ReadOnly        string           `json:"ReadOnly"`
	EventTime       float64          `json:"EventTime"`
	EventSource     string           `json:"EventSource"`
	Username        string           `json:"Username,omitempty"`
	Resources       []lookupResource `json:"Resources"`
	CloudTrailEvent string           `json:"CloudTrailEvent"`
}

type lookupResource struct {
	ResourceType string `json:"ResourceType"`
	ResourceName string `json:"ResourceName"`
}

type lookupResponse struct {
	Events    []lookupEvent `json:"Events"`
	NextToken string        `json:"NextToken,omitempty"`
}

const (
	target     = "CloudTrail_20131101.LookupEvents"
	longTarget = "com.amazonaws.cloudtrail.v20131101." + target
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		writeError(w, http.StatusNotFound, "UnknownOperationException", "only POST / is served")
		return
	}
	if t := r.Header.Get("X-Amz-Target"); t != target && t != longTarget {
		writeError(w, http.StatusBadRequest, "UnknownOperationException", "unknown operation "+strconv.Quote(t))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		writeError(w, http.StatusBadRequest, "SerializationException", "unexpected Content-Type "+strconv.Quote(ct))
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		writeError(w, http.StatusBadRequest, "MissingAuthenticationTokenException", "Missing Authentication Token")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	var in lookupRequest
	if err := json.Unmarshal(body, &in); err != nil {
		writeError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	req := Request{MaxResults: MaxResults}
	if len(in.LookupAttributes) > 0 {
		req.Attribute = in.LookupAttributes[0].AttributeKey + "=" + in.LookupAttributes[0].AttributeValue
	}
	if in.StartTime != nil {
		req.Start = epoch(*in.StartTime)
	}
	if in.EndTime != nil {
		req.End = epoch(*in.EndTime)
	}
	if in.MaxResults != nil {
		req.MaxResults = *in.MaxResults
	}
	if in.NextToken != nil {
		req.NextToken = *in.NextToken
	}

	s.mu.Lock()
	s.requests = append(s.requests, req)
	n := len(s.requests)
	events := s.events
	s.mu.Unlock()

	switch {
	case s.opts.DenyAccess:
		writeError(w, http.StatusBadRequest, "AccessDeniedException",
			"User: arn:aws:iam::111122223333:user/test is not authorized to perform: cloudtrail:LookupEvents because no identity-based policy allows the cloudtrail:LookupEvents action")
		return
	case n <= s.opts.Throttle:
		writeError(w, http.StatusBadRequest, "ThrottlingException", "Rate exceeded")
		return
	case len(in.LookupAttributes) > 1:
		writeError(w, http.StatusBadRequest, "InvalidLookupAttributesException", "You can specify only one lookup attribute.")
		return
	case len(in.LookupAttributes) == 1 && in.LookupAttributes[0].AttributeKey != "EventName":
		writeError(w, http.StatusBadRequest, "InvalidLookupAttributesException", "the fake implements only the EventName lookup attribute")
		return
	case req.MaxResults < 1 || req.MaxResults > MaxResults:
		writeError(w, http.StatusBadRequest, "InvalidMaxResultsException", "MaxResults must be between 1 and 50")
		return
	case !req.Start.IsZero() && !req.End.IsZero() && req.Start.After(req.End):
		writeError(w, http.StatusBadRequest, "InvalidTimeRangeException", "StartTime is after EndTime")
		return
	}

	var match []Event
	for _, e := range events {
		if len(in.LookupAttributes) == 1 && e.Name != in.LookupAttributes[0].AttributeValue {
			continue
		}
		if (!req.Start.IsZero() && e.Time.Before(req.Start)) || (!req.End.IsZero() && e.Time.After(req.End)) {
			continue
		}
		match = append(match, e)
	}
	from := 0
	if req.NextToken != "" {
		var ok bool
		from, ok = parseToken(req.NextToken, req, len(match))
		if !ok {
			writeError(w, http.StatusBadRequest, "InvalidNextTokenException", "Invalid NextToken")
			return
		}
	}
	size := req.MaxResults
	if s.opts.PageSize > 0 && s.opts.PageSize < size {
		size = s.opts.PageSize
	}
	to := min(from+size, len(match))
	out := lookupResponse{Events: []lookupEvent{}}
	for _, e := range match[from:to] {
		out.Events = append(out.Events, lookupEvent{
			EventID:         e.ID,
			EventName:       e.Name,
			ReadOnly:        "false",
			EventTime:       float64(e.Time.UnixNano()) / 1e9,
			EventSource:     "ec2.amazonaws.com",
			Username:        e.Username,
			Resources:       []lookupResource{{ResourceType: "AWS::EC2::SecurityGroup", ResourceName: e.GroupID}},
			CloudTrailEvent: string(e.Record),
		})
	}
	if to < len(match) {
		out.NextToken = makeToken(to, req)
	}
	w.Header().Set("X-Amzn-Requestid", fmt.Sprintf("fake-%d", n))
	writeJSON(w, http.StatusOK, out)
}

// makeToken encodes the offset of the next page with the query it belongs to, so that a
// token used with other parameters is refused, as CloudTrail refuses it.
func makeToken(offset int, req Request) string {
	return fmt.Sprintf("%d|%s|%d|%d", offset, req.Attribute, req.Start.Unix(), req.End.Unix())
}

func parseToken(token string, req Request, n int) (int, bool) {
	off, rest, ok := strings.Cut(token, "|")
	if !ok {
		return 0, false
	}
	from, err := strconv.Atoi(off)
	if err != nil || from < 0 || from > n {
		return 0, false
	}
	_, wantRest, _ := strings.Cut(makeToken(from, req), "|")
	return from, rest == wantRest
}

func epoch(sec float64) time.Time {
	whole, frac := math.Modf(sec)
	return time.Unix(int64(whole), int64(math.Round(frac*1e9))).UTC()
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]string{"__type": code, "message": message})
}

// writeJSON answers with v and its length, as CloudTrail does.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
