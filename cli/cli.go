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
	code, msg := exitStatus(Run(ctx, args, stdout, stderr))
	if msg != "" {
		fmt.Fprintf(stderr, "c2vm: %s\n", msg)
	}
	return code
}

// exitStatus maps an error to the exit status documented in usage and
// README ("Exit status"), and the one line to print for it ("" = none).
func exitStatus(err error) (int, string) {
	var ee *ExitError
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0, ""
	case errors.As(err, &ee):
		return ee.Code, oneLine(ee.Message)
	case errors.As(err, &ue):
		return 2, oneLine(err.Error())
	}
	return 1, oneLine(err.Error())
}

// oneLine keeps an error on one line, as pipelines grep for it.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

const usage = `usage: c2vm <command> [flags]

commands:
  convert IMAGE   convert a container image into a bootable VM directory
  inspect IMAGE   show an image's platforms and config, without converting
  run DIR         boot a converted VM with QEMU and return the container's exit status
  version         print c2vm's version

IMAGE: a path (its kind read from its content), oci:PATH[:REF],
oci-archive:PATH[:REF], docker-archive:PATH[:REF], or
docker://[REGISTRY/]REPO[:TAG|@DIGEST] (credentials from --creds, else as
skopeo and Docker find them).

exit status:
  0        success
  1        an error (one line on stderr; with --json also {"error": ...} on stdout)
  2        a command-line mistake
  run:     the container's own exit status (125 its init failed, 126 not
           executable, 127 not found, 128+N killed by signal N),
           3 the VM stopped without reporting one, 124 --timeout, 130 interrupted

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
	case "inspect":
		return runInspect(ctx, args[1:], stdout, stderr)
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
