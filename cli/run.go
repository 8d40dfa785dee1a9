package cli

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/c2vm/c2vm/launch"
)

// runArgs are run's flags as given, before they are checked.
type runArgs struct {
	o              launch.Options
	publish, share []string
	d              detachArgs
}

func (a *app) runCmd() *cobra.Command {
	r := &runArgs{}
	cmd := &cobra.Command{
		Use:   "run [flags] DIR [-- CMD ARG...]",
		Short: "boot a converted VM with QEMU and return the container's exit status",
		Long: `Boot a converted VM with QEMU and return the container's exit status.
Everything after "--" replaces the container's command.`,
		Args: runPositional,
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := r.options(args, cmd.ArgsLenAtDash())
			if err != nil {
				return err
			}
			if r.d.detach {
				return a.startDetached(cmd.Context(), o, r.d)
			}
			o.Stdout, o.Stderr = a.stdout, a.stderr
			return exitCode(a.launch(cmd.Context(), o))
		},
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) == 0 {
				return nil, cobra.ShellCompDirectiveFilterDirs
			}
			return nil, cobra.ShellCompDirectiveDefault
		},
	}
	r.flags(cmd.Flags())
	complete(cmd, "accel", "auto", "kvm", "tcg")
	return cmd
}

func (r *runArgs) flags(fs *pflag.FlagSet) {
	o := &r.o
	fs.DurationVar(&o.Timeout, "timeout", 0, "kill the VM after this long and exit 124 (0: no limit)")
	fs.StringVar(&o.Accel, "accel", "auto", "accelerator: auto (KVM when it really works, else TCG), kvm or tcg")
	fs.IntVar(&o.Memory, "memory", 0, "VM memory in MiB (default: as converted)")
	fs.IntVar(&o.CPUs, "cpus", 0, "VM CPUs (default: as converted)")
	fs.BoolVar(&o.Debug, "debug", false, "show the kernel's and the init's console output")
	fs.DurationVar(&o.StopTimeout, "stop-timeout", 0, "on SIGTERM/SIGINT, wait this long (plus 15s) for the VM to stop before killing it (default: as converted)")
	fs.StringArrayVarP(&r.publish, "publish", "p", nil, publishUsage+"; replaces a converted forward of the same guest port")
	fs.BoolVarP(&o.PublishAll, "publish-all", "P", false, "publish every EXPOSEd port on the same host port of 127.0.0.1")
	fs.BoolVar(&o.NoPublish, "no-publish", false, "drop the forwards baked in by convert (-p and -P still apply)")
	fs.BoolVarP(&r.d.detach, "detach", "d", false, "run in the background: print the VM's name once its agent answers (see ps, logs, exec, stop, rm)")
	fs.StringVar(&r.d.name, "name", "", "with -d: the VM's name (default: a generated one)")
	fs.DurationVar(&r.d.idle, "idle-timeout", 0, "with -d: the VM stops itself when no exec session has been open for this long (0: never)")
	fs.StringArrayVarP(&r.share, "volume", "v", nil, "share a host directory: HOSTDIR:GUESTDIR[:ro] (repeatable; virtiofs, or 9p when the kernel has it and virtiofsd cannot run)")
}

// runPositional wants one DIR before "--", and anything after it.
func runPositional(cmd *cobra.Command, args []string) error {
	if n := dirArgs(args, cmd.ArgsLenAtDash()); n != 1 {
		return usagef("run takes exactly one DIR (a c2vm convert output), got %d", n)
	}
	return nil
}

// dirArgs counts the arguments before "--" (at dash, -1 if none).
func dirArgs(args []string, dash int) int {
	if dash < 0 {
		return len(args)
	}
	return dash
}

// options checks the flags and arguments (the command after "--") and
// gives launch's options.
func (r *runArgs) options(args []string, dash int) (launch.Options, error) {
	o := r.o
	o.Dir = args[0]
	if err := r.d.check(); err != nil {
		return o, err
	}
	var err error
	if o.Publish, err = parseForwards(r.publish); err != nil {
		return o, err
	}
	for _, v := range r.share {
		sh, err := launch.ParseShare(v)
		if err != nil {
			return o, usagef("%v", err)
		}
		o.Shares = append(o.Shares, sh)
	}
	if dash >= 0 && dash < len(args) {
		o.Cmd = args[dash:]
	}
	return o, nil
}

// exitCode turns launch.Run's result into run's exit status.
func exitCode(code int, err error) error {
	switch {
	case err != nil && code != 0:
		// e.g. a timeout (124) or a VM that died without a status line.
		return &ExitError{Code: code, Message: oneLine(err.Error())}
	case err != nil:
		return err
	case code != 0:
		return &ExitError{Code: code}
	}
	return nil
}
