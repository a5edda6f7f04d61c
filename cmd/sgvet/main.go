// Command sgvet vets the sources and destinations of AWS security groups.
//
// Run `sgvet help` for the commands; DESIGN and README describe them.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	ctx, caught := stopOnSignal(context.Background(), signals, os.Exit, os.Stderr)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	signal.Stop(signals)
	os.Exit(exitCode(err, caught(), os.Stderr))
}
