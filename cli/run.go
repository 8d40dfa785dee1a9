package cli

import (
	"context"
	"io"

	"github.com/c2vm/c2vm/launch"
)

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	o := launch.Options{Stdout: stdout, Stderr: stderr}
	fs.DurationVar(&o.Timeout, "timeout", 0, "kill the VM after this long and exit 124 (0: no limit)")
	fs.StringVar(&o.Accel, "accel", "auto", "accelerator: auto (KVM when it really works, else TCG), kvm or tcg")
	fs.IntVar(&o.Memory, "memory", 0, "VM memory in MiB (default: as converted)")
	fs.IntVar(&o.CPUs, "cpus", 0, "VM CPUs (default: as converted)")
	fs.BoolVar(&o.Debug, "debug", false, "show the kernel's and the init's console output")
	fs.DurationVar(&o.StopTimeout, "stop-timeout", 0, "on SIGTERM/SIGINT, wait this long (plus 15s) for the VM to stop before killing it (default: as converted)")
	var publish listFlag
	fs.Var(&publish, "p", publishUsage+"; replaces a converted forward of the same guest port")
	fs.Var(&publish, "publish", "same as -p")
	fs.BoolVar(&o.PublishAll, "P", false, "publish every EXPOSEd port on the same host port of 127.0.0.1")
	fs.BoolVar(&o.PublishAll, "publish-all", false, "same as -P")
	fs.BoolVar(&o.NoPublish, "no-publish", false, "drop the forwards baked in by convert (-p and -P still apply)")
	var shares listFlag
	fs.Var(&shares, "v", "share a host directory: HOSTDIR:GUESTDIR[:ro] (repeatable; virtiofs, or 9p when the kernel has it and virtiofsd cannot run)")
	fs.Var(&shares, "volume", "same as -v")
	pos, rest, err := parseInterspersed(fs, args)
	if err != nil {
		return usagef("%v", err)
	}
	if len(pos) != 1 {
		return usagef("run takes exactly one DIR (a c2vm convert output), got %d", len(pos))
	}
	o.Dir = pos[0]
	if o.Publish, err = parseForwards(publish); err != nil {
		return err
	}
	for _, v := range shares {
		sh, err := launch.ParseShare(v)
		if err != nil {
			return usagef("%v", err)
		}
		o.Shares = append(o.Shares, sh)
	}
	if len(rest) > 0 {
		o.Cmd = rest
	}
	code, err := launch.Run(ctx, o)
	if err != nil && code != 0 {
		// e.g. a timeout (124) or a VM that died without a status line.
		return &ExitError{Code: code, Message: oneLine(err.Error())}
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return &ExitError{Code: code}
	}
	return nil
}
