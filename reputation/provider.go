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
// request to the service and no retry: the Vetter paces, retries, pauses and stops
// providers. It returns one verdict per target it could answer for; a target missing from
// the answer is Unknown. An error means no target was answered; its type tells the Vetter
// what to do (see AuthError, QuotaError, ThrottleError, NetworkError, RedirectError and
// StatusError). Lookup must return promptly when ctx ends.
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
	// Reset is when the quota resets; zero when the service did not say, or named a time
	// already past.
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

// AuthError is a 401 or 403: the key is missing, wrong or blocked, or the service refuses
// this machine. The Vetter stops the provider for the run. The error never contains the
// key.
type AuthError struct {
	Provider string
	// KeyEnv is the environment variable the key is read from.
	KeyEnv string
	Status int
	// Message is the service's own explanation, if it gave one.
	Message string
	// AddressBlocked is true when the service refuses the caller's IP address rather than
	// the key: MetaDefender blocks an address for an hour after repeated wrong keys.
	AddressBlocked bool
}

func (e *AuthError) Error() string {
	if e.AddressBlocked {
		msg := fmt.Sprintf("%s: the service blocks this machine's IP address after repeated wrong API keys, usually for an hour (HTTP %d)", e.Provider, e.Status)
		if e.Message != "" {
			msg += ": " + e.Message
		}
		return msg
	}
	msg := fmt.Sprintf("%s: the service refused the API key (HTTP %d)", e.Provider, e.Status)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.KeyEnv != "" {
		msg += "; check " + e.KeyEnv
	}
	return msg
}

// QuotaError is a 429 that says the quota is spent: the service will not answer until
// Reset, which is zero when it did not say when, or named a time already past.
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

// ThrottleError is a 429 that asks the client to slow down without saying that the quota
// is spent. Wait is how long the service asked to wait (Retry-After); zero when it did not
// say.
type ThrottleError struct {
	Provider string
	Wait     time.Duration
	Message  string
}

func (e *ThrottleError) Error() string {
	msg := e.Provider + ": throttled (HTTP 429)"
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// NetworkError is a request that got no HTTP reply.
type NetworkError struct {
	Provider string
	// Unreachable is true when the service cannot be reached at all: its name does not
	// resolve, the connection is refused, there is no route, or TLS fails.
	Unreachable bool
	// Timeout is true when the attempt ran out of time, before or during the reply.
	Timeout bool
	// Err is the transport's error, without the request's URL or the key.
	Err error
}

func (e *NetworkError) Error() string { return e.Provider + ": " + e.Err.Error() }
func (e *NetworkError) Unwrap() error { return e.Err }

// RedirectError is a redirect to another scheme, host or port, which is never followed:
// the key, the address asked about and a bulk body would go to that host. The Vetter stops
// the provider for the run.
type RedirectError struct {
	Provider string
	// From is the service's host, To the host the redirect named (host and port, no path).
	From, To string
	Status   int
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("%s: the service redirected the request (HTTP %d) to %s; not followed, so that the API key goes only to %s",
		e.Provider, e.Status, e.To, e.From)
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

// Temporary reports whether the status may pass on retry: a 5xx other than 501.
func (e *StatusError) Temporary() bool { return e.Status >= 500 && e.Status != 501 }
