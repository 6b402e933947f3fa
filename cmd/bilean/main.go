// Command bilean bills the users of an OpenStack cloud. This package is wiring only: flags,
// configuration, the store, and output; the billing lives in pipeline, handlers and rating.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			os.Exit(int(ec))
		}
		fmt.Fprintln(os.Stderr, "bilean:", err)
		os.Exit(1)
	}
}

// exitCode ends the program with a status after the command already reported why.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
