// Package cli is c2vm's command line as a library: cmd/c2vm is a tiny main
// around Main, and tests drive Run in-process.
//
//	err := cli.Run(ctx, []string{"convert", "image.tar", "-o", "out"}, os.Stdout, os.Stderr)
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Version is c2vm's version, recorded in every manifest.json.
const Version = "0.1.0"

// ExitError carries an exit status other than 1 (e.g. the container's own
// exit status for `c2vm run`). Message may be empty: nothing is printed.
type ExitError struct {
	Code    int
	Message string
}

func (e *ExitError) Error() string { return e.Message }

// Main runs the command line and returns the process exit status, printing
// any error as one line on stderr.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := Run(ctx, args, stdout, stderr)
	var ee *ExitError
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ee):
		if ee.Message != "" {
			fmt.Fprintf(stderr, "c2vm: %s\n", ee.Message)
		}
		return ee.Code
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "c2vm: %s\n", oneLine(err.Error()))
		return 2
	default:
		fmt.Fprintf(stderr, "c2vm: %s\n", oneLine(err.Error()))
		return 1
	}
}

// oneLine keeps an error on one line, as pipelines grep for it.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

const usage = `usage: c2vm <command> [flags]

commands:
  convert IMAGE   convert a container image into a bootable VM directory
  run DIR         boot a converted VM with QEMU and return the container's exit status
  version         print c2vm's version

Run 'c2vm <command> -h' for a command's flags.
`

// Run executes one c2vm command.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usagef("no command given")
	}
	switch args[0] {
	case "convert":
		return runConvert(ctx, args[1:], stdout, stderr)
	case "run":
		return runRun(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "c2vm %s\n", Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usagef("unknown command %q", args[0])
	}
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("c2vm "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
