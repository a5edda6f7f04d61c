package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
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
// scheduled job treats as a failure. A run stopped by a signal exits as a shell reports
// a process the signal ended: 128 plus its number (130 for SIGINT, 143 for SIGTERM).
func exitCode(err error, sig os.Signal, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, errHelp) {
		return exitOK
	}
	var ee *exitError
	completed := errors.As(err, &ee) && (ee.code == exitFindings || ee.code == exitIncomplete)
	if sig != nil && !completed {
		fmt.Fprintf(stderr, "sgvet: stopped by %s\n", signalName(sig))
		return 128 + signalNumber(sig)
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "sgvet: interrupted")
		return 128 + signalNumber(os.Interrupt)
	}
	if ee != nil {
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
  audit       collect, vet every public address, and report what is suspicious, stale or exposed
  collect     collect, and send the public addresses to vet to an SQS lookups queue
  work        vet the addresses of an SQS lookups queue, publishing verdicts to a results queue
  report      gather a collected run's verdicts from an SQS results queue, and report
  groups      collect security groups and list their public sources (no lookups)
  lookup      ask the reputation providers about addresses and prefixes
  version     print the version, the source revision and the Go version
  completion  print a shell completion script: sgvet completion bash|zsh
  help        print this help, or a command's help: sgvet help groups

Run 'sgvet <command> --help' for a command's flags.
`

// command is one of sgvet's commands.
type command struct {
	name string
	run  func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
	// flags returns the command's flags, for help and shell completion; nil for commands
	// that take none.
	flags func() *commandFlags
}

// commands returns sgvet's commands in the order help lists them.
func commands() []command {
	return []command{
		{"audit", runAudit, func() *commandFlags { return auditFlags(new(commandOptions)) }},
		{"collect", runCollect, func() *commandFlags { return collectFlags(new(commandOptions)) }},
		{"work", runWork, func() *commandFlags { return workFlags(new(commandOptions)) }},
		{"report", runReport, func() *commandFlags { return reportFlags(new(commandOptions)) }},
		{"groups", runGroups, func() *commandFlags { return groupsFlags(new(commandOptions)) }},
		{"lookup", runLookup, func() *commandFlags { return lookupFlags(new(commandOptions)) }},
		{"version", runVersion, nil},
		{"completion", runCompletion, nil},
		{"help", runHelp, nil},
	}
}

// run is the whole program: it parses args and runs one command.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return &exitError{code: exitUsage}
	}
	name, rest := args[0], args[1:]
	switch name {
	case "--version":
		name = "version"
	case "-h", "--help":
		name = "help"
	}
	var names []string
	for _, c := range commands() {
		if c.name == name {
			return c.run(ctx, rest, stdin, stdout, stderr)
		}
		names = append(names, c.name)
	}
	msg := fmt.Sprintf("unknown command %q", name)
	if strings.HasPrefix(name, "-") {
		msg = fmt.Sprintf("%s comes before a command; flags follow the command, as in 'sgvet audit %s'", name, name)
	} else if s := closest(name, names); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return usageErrorf("%s (see 'sgvet help')", msg)
}

// runHelp prints the usage, or a command's help.
func runHelp(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" {
		fmt.Fprint(stdout, usageText)
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] && c.flags != nil {
			c.flags().printHelp(stdout)
			return nil
		}
	}
	if args[0] == "version" || args[0] == "completion" {
		return run(ctx, []string{args[0], "--help"}, stdin, stdout, stderr)
	}
	return run(ctx, args[:1], stdin, stdout, stderr)
}
