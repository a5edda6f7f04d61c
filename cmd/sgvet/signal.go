package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
)

// signalNumber returns sig's number, for the exit status 128+n a shell reports.
func signalNumber(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return int(s)
	}
	return int(syscall.SIGINT)
}

// signalName returns "SIGINT", "SIGTERM", or the signal's own description.
func signalName(sig os.Signal) string {
	switch sig {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return fmt.Sprint(sig)
}

// signalError is the cause of a context cancelled by a signal.
type signalError struct{ sig os.Signal }

func (e *signalError) Error() string { return "stopped by " + signalName(e.sig) }

// stopOnSignal returns a context that the first signal from signals cancels, and a function
// that returns that signal, or nil. The run then stops at the next point that checks its
// context and writes nothing more. A second signal exits at once, through exit, with the
// status a shell gives a process the signal ended.
func stopOnSignal(parent context.Context, signals <-chan os.Signal, exit func(int), stderr io.Writer) (context.Context, func() os.Signal) {
	cleanup := &tempFiles{names: map[string]bool{}}
	ctx, cancel := context.WithCancelCause(context.WithValue(parent, tempFilesKey{}, cleanup))
	go func() {
		var (
			sig os.Signal
			ok  bool
		)
		select {
		case sig, ok = <-signals:
		case <-parent.Done():
			return
		}
		if !ok {
			return
		}
		cancel(&signalError{sig})
		if terminal(stderr) != nil {
			fmt.Fprintf(stderr, "\nsgvet: %s: stopping (send it again to exit at once)\n", signalName(sig))
		}
		if sig, ok = <-signals; ok {
			cleanup.removeAll()
			exit(128 + signalNumber(sig))
		}
	}()
	caught := func() os.Signal {
		var se *signalError
		if errors.As(context.Cause(ctx), &se) {
			return se.sig
		}
		return nil
	}
	return ctx, caught
}

// tempFiles are the temporary files a run has open, which a second signal removes before
// it exits.
type tempFiles struct {
	mu    sync.Mutex
	names map[string]bool
}

type tempFilesKey struct{}

// trackTemp records a temporary file for removal should a second signal end the process,
// and returns the function that forgets it again.
func trackTemp(ctx context.Context, name string) (forget func()) {
	t, _ := ctx.Value(tempFilesKey{}).(*tempFiles)
	if t == nil {
		return func() {}
	}
	t.mu.Lock()
	t.names[name] = true
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		delete(t.names, name)
		t.mu.Unlock()
	}
}

func (t *tempFiles) removeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for name := range t.names {
		os.Remove(name)
	}
}
