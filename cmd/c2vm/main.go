// Command c2vm converts a container image into a bootable VM. See cli.Run.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/c2vm/c2vm/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
