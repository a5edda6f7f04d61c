// Package canceltest tests that a call blocked on something another party holds, such as a
// lock on a file, returns once its context is cancelled.
//
// The test makes the call block, then runs it with Run and checks the error it returns.
package canceltest

import (
	"context"
	"testing"
	"time"
)

// Blocked is how long Run lets a call block before it cancels the call's context. A call
// that has not reached its wait by then is cancelled all the same.
const Blocked = 100 * time.Millisecond

// Within is how long Run waits, after the cancel, for the call to return. It is far longer
// than a prompt return takes on a busy machine, and far shorter than the waits under test,
// so that only a wait the cancel does not end fails the test.
const Within = 30 * time.Second

// Run runs call with a context that it cancels once the call has been running for Blocked,
// and returns call's error. If call has not returned Within after the cancel, Run fails t
// at once, naming the call name; the call is left running.
func Run(t testing.TB, name string, call func(ctx context.Context) error) error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- call(ctx) }()
	stop := time.AfterFunc(Blocked, cancel)
	defer stop.Stop()
	select {
	case err := <-done:
		return err
	case <-time.After(Blocked + Within):
		t.Fatalf("%s has not returned %v after its context was cancelled", name, Within)
		return nil
	}
}
