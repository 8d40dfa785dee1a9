// Package cli is c2vm's command line as a library: cmd/c2vm is a tiny main
// around Main, and tests drive Run in-process.
//
//	err := cli.Run(ctx, []string{"convert", "image.tar", "-o", "out"}, os.Stdout, os.Stderr)
//
// The commands are spf13/cobra commands over pflag flags, as in skopeo,
// crane and nerdctl: GNU-style --flag=value, -o shorthands, flags before or
// after the arguments, and `c2vm completion bash|zsh|fish|powershell`.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/c2vm/c2vm/convert"
	"github.com/c2vm/c2vm/image"
	"github.com/c2vm/c2vm/launch"
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
	code, msg := exitStatus(stopped(ctx, Run(ctx, args, stdout, stderr)))
	if msg != "" {
		fmt.Fprintf(stderr, "c2vm: %s\n", msg)
	}
	return code
}

// stopped says why a run whose context was canceled (main's SIGINT or
// SIGTERM) stopped, when its error does not: "layer 1: context canceled"
// alone does not tell a signal from a fault.
func stopped(ctx context.Context, err error) error {
	cause := context.Cause(ctx)
	if err == nil || ctx.Err() == nil || !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), cause.Error()) {
		return err
	}
	return fmt.Errorf("stopped: %v (%w)", cause, err)
}

// exitStatus maps an error to the exit status documented in the root help
// and README ("Exit status"), and the one line to print for it ("" = none).
func exitStatus(err error) (int, string) {
	var ee *ExitError
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp), errors.Is(err, pflag.ErrHelp):
		return 0, ""
	case errors.As(err, &ee):
		return ee.Code, oneLine(ee.Message)
	case errors.As(err, &ue), errors.Is(err, convert.ErrMultiOption):
		// An option that cannot serve several platforms is a
		// command-line mistake, whoever finds it.
		return 2, oneLine(err.Error())
	}
	return 1, oneLine(err.Error())
}

// oneLine keeps an error on one line, as pipelines grep for it.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

const rootLong = `c2vm converts a container image into a VM that boots and runs it.

IMAGE: a path (its kind read from its content), oci:PATH[:REF],
oci-archive:PATH[:REF], docker-archive:PATH[:REF],
docker://[REGISTRY/]REPO[:TAG|@DIGEST] (credentials from --creds, else as
skopeo and Docker find them), or docker-daemon:NAME[:TAG] (from Docker's
or Podman's engine: $DOCKER_HOST, else their sockets).`

// exitStatusHelp ends the root help; README's "Exit status" says the same.
const exitStatusHelp = `
Exit status:
  0        success
  1        an error (one line on stderr; with --json also {"error": ...} on stdout)
  2        a command-line mistake
  run:     the container's own exit status (125 its init failed, 126 not
           executable, 127 not found, 128+N killed by signal N),
           3 the VM stopped without reporting one, 124 --timeout, 130 interrupted
`

// Run executes one c2vm command.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	a := &app{stdout: stdout, stderr: stderr, convert: convert.Convert, open: image.OpenContext, launch: launch.Run}
	return a.run(ctx, args)
}

// app is one command line: where its output goes, and what each command
// does once its flags are checked. Tests replace convert, open and launch
// to see what a command line parses to without converting or booting.
type app struct {
	stdout, stderr io.Writer
	convert        func(context.Context, convert.Options) (*convert.Result, error)
	open           func(context.Context, string, image.Options) (*image.Image, error)
	launch         func(context.Context, launch.Options) (int, error)
}

func (a *app) run(ctx context.Context, args []string) error {
	root := a.root()
	// Non-nil: cobra reads os.Args when given nil.
	args = append([]string{}, args...)
	if cmd, _, err := root.Find(args); err == nil {
		cmd.InitDefaultHelpFlag()
		args = goFlagForms(cmd.Flags(), args)
	}
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if wantsJSON(cmd, args) {
		return jsonErrors(a.stdout, err)
	}
	return err
}

// root is the c2vm command with its subcommands. cobra prints nothing of
// its own on an error: Main prints it, once, on one line.
func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:           "c2vm",
		Short:         "convert a container image into a bootable VM",
		Long:          rootLong,
		Version:       Version,
		Args:          cobra.ArbitraryArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		// Every run of c2vm names its command; the root alone says what
		// is missing (cobra's own check would be a plain error: exit 1).
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				fmt.Fprint(a.stderr, cmd.UsageString())
				return usagef("no command given")
			}
			return usagef("unknown command %q%s", args[0], suggest(cmd, args[0]))
		},
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetVersionTemplate("c2vm {{.Version}}\n")
	// Defined here so that cobra adds no -v shorthand to it.
	root.Flags().Bool("version", false, "print c2vm's version")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usagef("%v", err) })
	help := root.HelpFunc()
	root.SetHelpFunc(func(cmd *cobra.Command, args []string) {
		help(cmd, args)
		if !cmd.HasParent() {
			fmt.Fprint(cmd.OutOrStdout(), exitStatusHelp)
		}
	})
	root.AddCommand(a.convertCmd(), a.inspectCmd(), a.runCmd(), a.execCmd(), a.pushCmd(), a.pullCmd(), a.verifyCmd(), versionCmd())
	root.AddCommand(a.psCmd(), a.logsCmd(), a.stopCmd(), a.rmCmd(), a.superviseCmd())
	return root
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print c2vm's version",
		Args:  exactly(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "c2vm %s\n", Version)
			return err
		},
	}
}

// suggest is " (did you mean convert?)" for a near miss, else "".
func suggest(cmd *cobra.Command, typed string) string {
	if s := cmd.SuggestionsFor(typed); len(s) > 0 {
		return fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
	}
	return ""
}

// wantsJSON reports whether cmd was asked for --json, even when its flags
// did not parse: then a failure is also a JSON document on stdout.
func wantsJSON(cmd *cobra.Command, args []string) bool {
	if cmd == nil {
		return false
	}
	f := cmd.Flags().Lookup("json")
	return f != nil && (f.Value.String() == "true" || hasJSONFlag(args))
}
