package reputation

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Provider is one reputation service or offline list.
//
// Lookup answers for at most BatchSize targets, all of which Supports accepted, with one
// request to the service. It returns one verdict per target it could answer for; a target
// missing from the answer is Unknown. An error means no target was answered: the Vetter
// marks the whole batch Unknown, or, for an *AuthError or *QuotaError, stops or pauses the
// provider.
type Provider interface {
	Name() string
	BatchSize() int
	Supports(t Target) error
	Lookup(ctx context.Context, targets []Target) (Answer, error)
}

// Answer is a provider's reply to one Lookup.
type Answer struct {
	Verdicts []Verdict
	// Quota is what the service said about its quota in the reply, if anything.
	Quota Quota
}

// Quota is a service's own account of its quota, read from its rate-limit headers.
type Quota struct {
	// Known is true when the reply carried a remaining count.
	Known     bool
	Remaining int
	// Reset is when the quota resets; zero when the service did not say.
	Reset time.Time
}

// ErrUnsupported matches Supports errors (with errors.Is): the provider cannot look up such
// a target (an IPv6 address, a prefix), so its verdict is Unknown without a request.
var ErrUnsupported = errors.New("not supported")

// unsupportedError is a Supports error: its text says what is not supported, and it is
// ErrUnsupported.
type unsupportedError struct{ msg string }

func (e *unsupportedError) Error() string        { return e.msg }
func (e *unsupportedError) Is(target error) bool { return target == ErrUnsupported }

func unsupported(format string, args ...any) error {
	return &unsupportedError{fmt.Sprintf(format, args...)}
}

// AuthError is a 401 or 403: the key is missing, wrong or blocked. The provider is disabled
// for the rest of the run. The error never contains the key.
type AuthError struct {
	Provider string
	// KeyEnv is the environment variable the key is read from.
	KeyEnv string
	Status int
	// Message is the service's own explanation, if it gave one.
	Message string
}

func (e *AuthError) Error() string {
	msg := fmt.Sprintf("%s: the service refused the API key (HTTP %d)", e.Provider, e.Status)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.KeyEnv != "" {
		msg += "; check " + e.KeyEnv
	}
	return msg
}

// QuotaError is a 429 or an empty quota: the service will not answer until Reset (zero when
// it did not say).
type QuotaError struct {
	Provider string
	Reset    time.Time
	Message  string
}

func (e *QuotaError) Error() string {
	msg := e.Provider + ": quota exhausted"
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if !e.Reset.IsZero() {
		msg += "; resets at " + e.Reset.UTC().Format(time.RFC3339)
	}
	return msg
}

// StatusError is any other unsuccessful HTTP reply.
type StatusError struct {
	Provider string
	Status   int
	Message  string
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s: HTTP %d", e.Provider, e.Status)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}
