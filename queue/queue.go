// Package queue moves messages between the parts of an audit: lookup requests from the
// collector to the reputation workers, and verdicts from the workers to the report. A
// Transport delivers each message at least once: a message received and not acknowledged
// within its visibility timeout is delivered again, so the work a message asks for must be
// idempotent. Memory is the in-process Transport; SQS is the Transport on an Amazon SQS
// queue.
package queue

import (
	"context"
	"errors"
	"time"
)

// Message is one message as received.
type Message struct {
	ID   string
	Body []byte
	// Receipt identifies this delivery, for Ack and Extend. A message delivered again has a
	// new receipt, and the old one no longer acknowledges it.
	Receipt string
	// ReceiveCount is 1 on the first delivery.
	ReceiveCount int
	// Attributes are the message's attributes as received, by name: SQS's String and
	// Number message attributes, such as SchemaAttribute and RunAttribute. Memory carries
	// no attributes and leaves it nil.
	Attributes map[string]string
}

// Transport sends and receives messages on one queue. Implementations are safe for
// concurrent use.
type Transport interface {
	// Send queues bodies; it blocks while a bounded queue is full, until ctx ends.
	Send(ctx context.Context, bodies ...[]byte) error
	// Receive waits until at least one message is visible or ctx ends, and returns up to
	// max. A received message is invisible to other receivers until it is acknowledged or
	// its visibility timeout passes.
	Receive(ctx context.Context, max int) ([]Message, error)
	// Ack deletes delivered messages; an unknown or expired receipt is an error naming it.
	Ack(ctx context.Context, receipts ...string) error
	// Extend makes a delivered message invisible for d more from now; 0 makes it visible
	// again at once (a nack).
	Extend(ctx context.Context, receipt string, d time.Duration) error
}

// ErrClosed is returned by Send on a closed queue, and by Receive on a closed queue with no
// message left.
var ErrClosed = errors.New("queue closed")

// ErrUnknownReceipt is returned, wrapped with the receipt, by Ack and Extend for a receipt
// that does not identify a message in flight: the message was acknowledged already, or
// its visibility timeout passed.
var ErrUnknownReceipt = errors.New("unknown or expired receipt")
