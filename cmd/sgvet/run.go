package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// Exit codes, as the design contract defines them.
const (
	exitOK         = 0
	exitFindings   = 1
	exitUsage      = 2
	exitIncomplete = 3
)

// exitError carries an exit code other than the one an error implies.
type exitError struct {
	code int
	err  error // nil when there is nothing more to print
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErrorf is a usage, configuration, credentials or input error: exit code 2.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// errIncomplete ends a command whose output is written but incomplete: exit code 3.
var errIncomplete = &exitError{code: exitIncomplete}

// exitCode maps the error run returned to the process's exit code, printing it to stderr.
// An error that carries no code means the command produced nothing: exit 2, which a
// scheduled job treats as a failure. An interrupted run exits 130, as a shell would.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "sgvet: interrupted")
		return 130
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "sgvet:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "sgvet:", err)
	return exitUsage
}

const usageText = `sgvet vets the public sources and destinations in AWS security groups.

Usage:
  sgvet <command> [flags]

Commands:
  audit     collect, vet every public address, and report what is suspicious, stale or exposed
  groups    collect security groups and list their public sources (no lookups)
  lookup    ask the reputation providers about addresses and prefixes
  version   print the version
  help      print this help, or a command's help: sgvet help groups

Run 'sgvet <command> --help' for a command's flags.
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// run is the whole program: it parses args and runs one command.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return &exitError{code: exitUsage}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "audit":
		return runAudit(ctx, rest, stdin, stdout, stderr)
	case "groups":
		return runGroups(ctx, rest, stdin, stdout, stderr)
	case "lookup":
		return runLookup(ctx, rest, stdin, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "sgvet", version)
		return nil
	case "help", "-h", "--help":
		if len(rest) > 0 && rest[0] != "help" {
			return run(ctx, []string{rest[0], "--help"}, stdin, stdout, stderr)
		}
		fmt.Fprint(stdout, usageText)
		return nil
	}
	fmt.Fprint(stderr, usageText)
	return usageErrorf("unknown command %q", cmd)
}
