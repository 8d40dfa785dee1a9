// Command c2vm converts a container image into a bootable VM. See cli.Run.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/c2vm/c2vm/cli"
)

// main cancels the run on the first SIGINT or SIGTERM (the conversion
// stops and removes its temp dir); a second one kills at once.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }()
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
