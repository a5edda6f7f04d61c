package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// Message attributes that SQS stamps on every message it sends.
const (
	// SchemaAttribute names the string message attribute that holds the version of the
	// message schema, MessageSchema.
	SchemaAttribute = "sgvet-schema"
	// RunAttribute names the string message attribute that holds the id of the run a
	// message belongs to, when the sender was given one (see SQS.ForRun).
	RunAttribute = "sgvet-run"
	// MessageSchema is the version of the message schema that SQS stamps in
	// SchemaAttribute.
	MessageSchema = "1"
)

// Limits of Amazon SQS.
const (
	// sqsBatchEntries is the most entries a batch call carries.
	sqsBatchEntries = 10
	// sqsRequestBytes is the most bytes of bodies and message attributes that one
	// SendMessageBatch call carries: 256 KiB, which every queue accepts whatever its
	// MaximumMessageSize.
	sqsRequestBytes = 256 << 10
	// sqsMaxWait is the longest a ReceiveMessage call may wait for a message.
	sqsMaxWait = 20 * time.Second
	// sqsMaxVisibility is the longest visibility timeout SQS accepts.
	sqsMaxVisibility = 12 * time.Hour
)

// How Send retries the entries of a batch that SQS could not queue.
const (
	sendAttempts   = 4
	sendRetryDelay = 100 * time.Millisecond // doubled after each attempt
)

// SQSClient is the part of the Amazon SQS API that SQS uses. *sqs.Client implements it.
type SQSClient interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

// SQSOptions configures an SQS. The zero value gives the defaults.
type SQSOptions struct {
	// WaitTime is how long one ReceiveMessage call waits for a message to arrive (long
	// polling), rounded up to whole seconds and at most 20 seconds. Zero or less means
	// 20 seconds.
	WaitTime time.Duration
}

// ErrQueueGone is returned, wrapped with the queue's URL, by every method of SQS when the
// queue does not exist: it was deleted, or the URL is wrong. Waiting does not help; a
// caller that gets it should stop using the queue.
var ErrQueueGone = errors.New("queue does not exist (deleted, or a wrong URL)")

// SQS is a Transport on one Amazon SQS standard queue (not FIFO). Messages go out with
// SendMessageBatch, ten at most per call; Ack deletes in batches of ten; Extend changes a
// message's visibility timeout, and Extend by 0 makes a message visible again at once.
//
// SQS has no Close: a queue is never closed, and Receive never returns ErrClosed. Receive
// waits until a message arrives or its context ends; a queue that was deleted is
// ErrQueueGone.
//
// An SQS is safe for concurrent use; it keeps no state of its own beyond its
// configuration. Its client's own retries (throttling, network errors) apply to every
// call.
type SQS struct {
	client  SQSClient
	url     string
	wait    int32  // WaitTimeSeconds of ReceiveMessage
	runID   string // stamped in RunAttribute when not empty
	attrs   map[string]types.MessageAttributeValue
	attrLen int // bytes that attrs add to each message
}

var _ Transport = (*SQS)(nil)

// NewSQS returns a Transport on the SQS queue at queueURL, reached through client. Its
// messages carry no run id; see ForRun.
func NewSQS(client SQSClient, queueURL string, opts SQSOptions) *SQS {
	wait := opts.WaitTime
	if wait <= 0 || wait > sqsMaxWait {
		wait = sqsMaxWait
	}
	q := &SQS{client: client, url: queueURL, wait: int32(ceilSeconds(wait))}
	q.stamp()
	return q
}

// ForRun returns a view of q that stamps runID in the RunAttribute of every message it
// sends; an empty runID stamps none. The view shares q's client and queue, and receives,
// acknowledges and extends exactly as q does: it does not filter what it receives by run.
func (q *SQS) ForRun(runID string) *SQS {
	v := *q
	v.runID = runID
	v.stamp()
	return &v
}

// stamp makes the message attributes of q's messages from its run id.
func (q *SQS) stamp() {
	q.attrs = map[string]types.MessageAttributeValue{SchemaAttribute: stringAttribute(MessageSchema)}
	if q.runID != "" {
		q.attrs[RunAttribute] = stringAttribute(q.runID)
	}
	q.attrLen = 0
	for name, v := range q.attrs {
		// SQS counts an attribute's name, data type and value in a message's size.
		q.attrLen += len(name) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue))
	}
}

func stringAttribute(s string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(s)}
}

// Send queues bodies with SendMessageBatch: at most ten per call, and at most 256 KiB of
// bodies and message attributes per call. Each message carries the SchemaAttribute and,
// from a view made by ForRun, the RunAttribute.
//
// A body SQS would refuse (larger than 256 KiB with its attributes, or not UTF-8 text of
// the characters SQS allows) is an error naming it, and then nothing is sent. An entry
// that SQS fails to queue is sent again a few times, unless SQS says the fault is the
// sender's; if some still fail, Send sends the others all the same and returns an error
// saying how many of the bodies were not sent, which ones, and why. If a call fails as a
// whole (including ctx ending), Send stops there and its error says how many bodies were
// not sent.
func (q *SQS) Send(ctx context.Context, bodies ...[]byte) error {
	for i, b := range bodies {
		if size := len(b) + q.attrLen; size > sqsRequestBytes {
			return fmt.Errorf("send to %s: body %d is %d bytes with its attributes, more than the %d SQS accepts", q.url, i, size, sqsRequestBytes)
		}
		if !sqsText(b) {
			return fmt.Errorf("send to %s: body %d is not text SQS accepts (UTF-8 of XML 1.0 characters)", q.url, i)
		}
	}
	var (
		sent   int
		failed []error
	)
	for start := 0; start < len(bodies); {
		end, size := start, 0
		for end < len(bodies) && end-start < sqsBatchEntries && size+len(bodies[end])+q.attrLen <= sqsRequestBytes {
			size += len(bodies[end]) + q.attrLen
			end++
		}
		n, errs, err := q.sendBatch(ctx, bodies, start, end)
		sent += n
		failed = append(failed, errs...)
		if err != nil {
			return fmt.Errorf("send to %s: %d of %d bodies not sent: %w", q.url, len(bodies)-sent, len(bodies), errors.Join(append(failed, err)...))
		}
		start = end
	}
	if len(failed) > 0 {
		return fmt.Errorf("send to %s: %d of %d bodies not sent: %w", q.url, len(failed), len(bodies), errors.Join(failed...))
	}
	return nil
}

// sendBatch sends bodies[start:end] in one SendMessageBatch call, and again those entries
// that SQS failed to queue through no fault of the sender, a few times. Each entry's id
// is its body's index in bodies. It returns how many bodies were sent and an error for
// each body that SQS failed for good; and err if a call failed as a whole (or ctx ended),
// in which case the bodies still pending were not sent.
func (q *SQS) sendBatch(ctx context.Context, bodies [][]byte, start, end int) (sent int, failed []error, err error) {
	entries := make([]types.SendMessageBatchRequestEntry, 0, end-start)
	for i := start; i < end; i++ {
		entries = append(entries, types.SendMessageBatchRequestEntry{
			Id:                aws.String(strconv.Itoa(i)),
			MessageBody:       aws.String(string(bodies[i])),
			MessageAttributes: q.attrs,
		})
	}
	delay := sendRetryDelay
	for attempt := 1; ; attempt++ {
		out, err := q.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: &q.url, Entries: entries})
		if err != nil {
			return sent, failed, callError(err)
		}
		ok := make(map[string]bool, len(out.Successful))
		for _, s := range out.Successful {
			ok[aws.ToString(s.Id)] = true
		}
		reasons := make(map[string]types.BatchResultErrorEntry, len(out.Failed))
		for _, f := range out.Failed {
			reasons[aws.ToString(f.Id)] = f
		}
		var retry []types.SendMessageBatchRequestEntry
		for _, e := range entries {
			id := aws.ToString(e.Id)
			if ok[id] {
				sent++
				continue
			}
			f, known := reasons[id]
			switch {
			case !known:
				f = types.BatchResultErrorEntry{Code: aws.String("NoResult"), Message: aws.String("the response reports neither success nor failure")}
			case f.SenderFault:
				failed = append(failed, fmt.Errorf("body %s: %s", id, batchFailure(f)))
				continue
			}
			if attempt == sendAttempts {
				failed = append(failed, fmt.Errorf("body %s: %s (after %d attempts)", id, batchFailure(f), attempt))
				continue
			}
			retry = append(retry, e)
		}
		if len(retry) == 0 {
			return sent, failed, nil
		}
		entries = retry
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return sent, failed, ctx.Err()
		case <-t.C:
		}
		delay *= 2
	}
}

// batchFailure describes why SQS failed one entry of a batch.
func batchFailure(f types.BatchResultErrorEntry) string {
	if m := aws.ToString(f.Message); m != "" {
		return aws.ToString(f.Code) + ": " + m
	}
	return aws.ToString(f.Code)
}

// sqsText reports whether SQS accepts b as a message body: UTF-8 text of the characters
// #x9, #xA, #xD, #x20 to #xD7FF, #xE000 to #xFFFD and #x10000 to #x10FFFF.
func sqsText(b []byte) bool {
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			return false
		}
		ok := r == '\t' || r == '\n' || r == '\r' ||
			(r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || r >= 0x10000
		if !ok {
			return false
		}
		b = b[n:]
	}
	return true
}

// Receive waits until at least one message is visible, and returns up to max of them (SQS
// returns at most ten at a time, and may return fewer than are visible). It long-polls
// with ReceiveMessage, calling again after each empty answer, until a message arrives or
// ctx ends, and then returns ctx's error. Each message's Attributes hold its String and
// Number message attributes; its ReceiveCount is SQS's ApproximateReceiveCount, or 0 if
// SQS gave none. Receive never returns ErrClosed.
func (q *SQS) Receive(ctx context.Context, max int) ([]Message, error) {
	if max < 1 {
		return nil, fmt.Errorf("receive %d messages: want at least 1", max)
	}
	in := &sqs.ReceiveMessageInput{
		QueueUrl:                    &q.url,
		MaxNumberOfMessages:         int32(min(max, sqsBatchEntries)),
		WaitTimeSeconds:             q.wait,
		MessageAttributeNames:       []string{"All"},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out, err := q.client.ReceiveMessage(ctx, in)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("receive from %s: %w", q.url, callError(err))
		}
		if len(out.Messages) == 0 {
			continue
		}
		msgs := make([]Message, len(out.Messages))
		for i, m := range out.Messages {
			msgs[i] = Message{
				ID:         aws.ToString(m.MessageId),
				Body:       []byte(aws.ToString(m.Body)),
				Receipt:    aws.ToString(m.ReceiptHandle),
				Attributes: stringAttributes(m.MessageAttributes),
			}
			if n, err := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]); err == nil {
				msgs[i].ReceiveCount = n
			}
		}
		return msgs, nil
	}
}

// stringAttributes returns the values of the String and Number attributes in attrs
// (Number ones have String values too); nil if there are none.
func stringAttributes(attrs map[string]types.MessageAttributeValue) map[string]string {
	var out map[string]string
	for name, v := range attrs {
		if v.StringValue == nil {
			continue
		}
		if out == nil {
			out = make(map[string]string, len(attrs))
		}
		out[name] = *v.StringValue
	}
	return out
}

// Ack deletes the messages that receipts identify, with DeleteMessageBatch in batches of
// ten. A receipt SQS rejects as invalid is an error wrapping ErrUnknownReceipt and naming
// it (shortened: receipts are long); any other entry SQS fails to delete is an error
// naming it and SQS's reason; the others are deleted all the same, and the error lists
// every failure. If a call fails as a whole, Ack stops there and says how many receipts
// were left from that call on (the messages of that call's receipts may or may not have
// been deleted).
//
// SQS accepts the receipt of a message deleted already, and, at least for a while, the
// receipt of an earlier delivery, so Ack cannot always tell that a receipt is stale.
func (q *SQS) Ack(ctx context.Context, receipts ...string) error {
	var errs []error
	for start := 0; start < len(receipts); start += sqsBatchEntries {
		chunk := receipts[start:min(start+sqsBatchEntries, len(receipts))]
		entries := make([]types.DeleteMessageBatchRequestEntry, len(chunk))
		for i, r := range chunk {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r)}
		}
		out, err := q.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &q.url, Entries: entries})
		if err != nil {
			errs = append(errs, fmt.Errorf("ack on %s: stopped with %d of %d receipts to go: %w", q.url, len(receipts)-start, len(receipts), callError(err)))
			break
		}
		errs = append(errs, q.batchFailures("ack", chunk, out.Failed)...)
	}
	return errors.Join(errs...)
}

// batchFailures returns an error for each entry of a batch call on chunk, by receipt, that
// failed; op names the call. An unknown receipt wraps ErrUnknownReceipt.
func (q *SQS) batchFailures(op string, chunk []string, failed []types.BatchResultErrorEntry) []error {
	var errs []error
	for _, f := range failed {
		i, err := strconv.Atoi(aws.ToString(f.Id))
		if err != nil || i < 0 || i >= len(chunk) {
			errs = append(errs, fmt.Errorf("%s on %s: failure of unknown entry %q: %s", op, q.url, aws.ToString(f.Id), batchFailure(f)))
			continue
		}
		r := shortReceipt(chunk[i])
		if unknownReceipt(aws.ToString(f.Code)) {
			errs = append(errs, fmt.Errorf("%s %s: %w", op, r, ErrUnknownReceipt))
			continue
		}
		errs = append(errs, fmt.Errorf("%s %s on %s: %s", op, r, q.url, batchFailure(f)))
	}
	return errs
}

// ExtendAll is Extend for many receipts, ten to a ChangeMessageVisibilityBatch call. The
// error lists every receipt that was not extended.
func (q *SQS) ExtendAll(ctx context.Context, d time.Duration, receipts ...string) error {
	if d < 0 {
		return fmt.Errorf("extend by %v: negative duration", d)
	}
	secs := int32(ceilSeconds(min(d, sqsMaxVisibility)))
	var errs []error
	for start := 0; start < len(receipts); start += sqsBatchEntries {
		chunk := receipts[start:min(start+sqsBatchEntries, len(receipts))]
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(chunk))
		for i, r := range chunk {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r), VisibilityTimeout: secs}
		}
		out, err := q.client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: &q.url, Entries: entries})
		if err != nil {
			errs = append(errs, fmt.Errorf("extend on %s by %ds: stopped with %d of %d receipts to go: %w", q.url, secs, len(receipts)-start, len(receipts), callError(err)))
			break
		}
		errs = append(errs, q.batchFailures("extend", chunk, out.Failed)...)
	}
	return errors.Join(errs...)
}

// Extend makes the message that receipt identifies invisible for d more from now, with
// ChangeMessageVisibility: d is rounded up to whole seconds and capped at 12 hours, the
// longest SQS allows (SQS also refuses to keep a message invisible for more than 12 hours
// in all since it was first received). Extend by 0 makes the message visible again at once
// (a nack). A receipt SQS rejects as invalid, or whose message is not in flight, is an
// error wrapping ErrUnknownReceipt.
func (q *SQS) Extend(ctx context.Context, receipt string, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("extend %s by %v: negative duration", shortReceipt(receipt), d)
	}
	secs := ceilSeconds(min(d, sqsMaxVisibility))
	_, err := q.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          &q.url,
		ReceiptHandle:     &receipt,
		VisibilityTimeout: int32(secs),
	})
	switch {
	case err == nil:
		return nil
	case unknownReceipt(errorCode(err)):
		return fmt.Errorf("extend %s: %w", shortReceipt(receipt), ErrUnknownReceipt)
	default:
		return fmt.Errorf("extend %s on %s by %ds: %w", shortReceipt(receipt), q.url, secs, callError(err))
	}
}

// callError returns err, from a call on an SQS queue, as the error to report:
// ErrQueueGone if the queue does not exist, and err otherwise. The caller names the queue.
func callError(err error) error {
	var gone *types.QueueDoesNotExist
	if errors.As(err, &gone) {
		return ErrQueueGone
	}
	switch errorCode(err) {
	case "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue":
		return ErrQueueGone
	}
	return err
}

// errorCode returns the error code of an SQS API error, or "".
func errorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

// unknownReceipt reports whether an SQS error code says a receipt identifies no message
// in flight.
func unknownReceipt(code string) bool {
	switch code {
	case "ReceiptHandleIsInvalid", "MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight":
		return true
	}
	return false
}

// shortReceipt returns the start of a receipt, enough to tell it apart in an error.
func shortReceipt(r string) string {
	const keep = 20
	if len(r) <= keep+3 {
		return r
	}
	return r[:keep] + "..."
}

// ceilSeconds returns d in whole seconds, rounded up.
func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}
