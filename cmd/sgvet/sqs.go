package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sgvet/sgvet/queue"
)

// sqsQueue is an SQS queue a command uses: its transport, and its visibility timeout.
type sqsQueue struct {
	*queue.SQS
	visibility time.Duration
}

// openSQS returns the SQS queue at rawURL, which flag gave. It asks the queue's visibility
// timeout, which also checks, before any work, that the queue exists and may be used.
func openSQS(ctx context.Context, cfg config, flag, rawURL string, log *slog.Logger) (*sqsQueue, error) {
	region, err := checkQueueURL(rawURL)
	if err != nil {
		return nil, usageErrorf("%s: %v", flag, err)
	}
	awsCfg, err := loadAWSConfig(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	if region != "" {
		awsCfg.Region = region
	}
	if awsCfg.Region == "" {
		awsCfg.Region = defaultRegion
	}
	client := sqs.NewFromConfig(awsCfg)
	out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       &rawURL,
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameVisibilityTimeout, types.QueueAttributeNameFifoQueue},
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var gone *types.QueueDoesNotExist
		if errors.As(err, &gone) || strings.Contains(err.Error(), "NonExistentQueue") {
			return nil, usageErrorf("%s %s: %v", flag, redactURL(rawURL), queue.ErrQueueGone)
		}
		return nil, usageErrorf("%s %s: %v", flag, redactURL(rawURL), err)
	}
	if out.Attributes[string(types.QueueAttributeNameFifoQueue)] == "true" {
		return nil, usageErrorf("%s: %s %v", flag, redactURL(rawURL), errFIFOQueue)
	}
	seconds, err := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameVisibilityTimeout)])
	if err != nil || seconds < 0 {
		return nil, fmt.Errorf("%s %s: the queue's visibility timeout %q is not a number of seconds", flag, redactURL(rawURL), out.Attributes[string(types.QueueAttributeNameVisibilityTimeout)])
	}
	return &sqsQueue{SQS: queue.NewSQS(client, rawURL, queue.SQSOptions{}), visibility: time.Duration(seconds) * time.Second}, nil
}

// errFIFOQueue refuses a FIFO queue: sgvet's messages carry no message group, which a FIFO
// queue requires of every message sent, and a run's messages need no order.
var errFIFOQueue = errors.New("is a FIFO queue; sgvet needs a standard queue")

// checkQueueURL checks that s is the URL of an SQS queue, and returns its region when the
// host names one (sqs.REGION.amazonaws.com), as AWS's own URLs do. A URL with a user name
// or password, a query or a fragment is refused: SQS takes none, and what it holds may be
// a secret, which the error does not repeat.
func checkQueueURL(s string) (region string, err error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("%q is not a queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/sgvet-lookups", redactURL(s))
	}
	if u.User != nil {
		return "", fmt.Errorf("%q is not a queue URL: it holds a user name or password, which SQS does not take (credentials come from the AWS SDK's chain)", redactURL(s))
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(s, "?#") {
		return "", fmt.Errorf("%q is not a queue URL: it has a query or a fragment, which SQS does not take", redactURL(s))
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return "", fmt.Errorf("%q is not a queue URL: its path is not /ACCOUNT/QUEUE", s)
	}
	if strings.HasSuffix(parts[1], ".fifo") {
		return "", fmt.Errorf("%s %w", s, errFIFOQueue)
	}
	host := strings.Split(u.Hostname(), ".")
	if len(host) >= 4 && host[0] == "sqs" && host[len(host)-2] == "amazonaws" {
		return host[1], nil
	}
	return "", nil
}

// redactURL returns s, a URL as given, fit for an error or a log line: its user
// information replaced, as url.URL.Redacted replaces a password, and its query and
// fragment left out. Text that is
// not a URL loses what would be its user information, query and fragment.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
		if u.User != nil {
			u.User = url.User("xxxxx") // a user name alone may be a token
		}
		return u.Redacted()
	}
	s, _, _ = strings.Cut(s, "#")
	s, _, _ = strings.Cut(s, "?")
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		authority, path, _ := strings.Cut(rest, "/")
		if at := strings.LastIndex(authority, "@"); at >= 0 {
			authority = "xxxxx" + authority[at:]
		}
		s = scheme + "://" + authority
		if path != "" || strings.Contains(rest, "/") {
			s += "/" + path
		}
	}
	return s
}
