package launch

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// StatusGrace is how long QEMU may keep running after the status line
// (the init powers off right after it); then it is killed.
var StatusGrace = 10 * time.Second

// StopGrace is added to the stop timeout before a VM asked to stop is
// killed: the init's own SIGKILL comes at the stop timeout, then it syncs,
// unmounts and powers off.
var StopGrace = 15 * time.Second

// boot runs QEMU and follows its console. The caller's cancellation (c2vm
// run's SIGTERM or SIGINT) presses the VM's power button through QMP, as
// virsh shutdown does: the init stops the container gracefully and the VM
// reports its status. QEMU is killed only StopTimeout+StopGrace later, at
// the --timeout deadline, or with c2vm itself (a second signal).
func boot(ctx context.Context, o Options, bin string, args []string) (int, error) {
	sock := o.QMPSocket
	if sock == "" {
		var cleanup func()
		var err error
		if sock, cleanup, err = qmpSocket(); err != nil {
			return 1, err
		}
		defer cleanup()
	}
	args = append(args, "-qmp", "unix:"+sock+",server=on,wait=off")
	qctx, kill := context.WithCancel(context.Background())
	defer kill()
	cmd := exec.CommandContext(qctx, bin, args...)
	cmd.WaitDelay = 2 * time.Second
	// QEMU must not outlive c2vm run, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 1, err
	}
	var qemuErr strings.Builder
	cmd.Stderr = &qemuErr
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("starting %s: %w", bin, err)
	}
	if o.OnStart != nil {
		o.OnStart(Running{QEMUPid: cmd.Process.Pid})
	}
	done := make(chan struct{})
	defer close(done)
	ended := make(chan string, 1) // why the launcher ended the VM
	go watch(ctx, o, sock, kill, done, ended)
	c := follow(out, o, func() { time.AfterFunc(StatusGrace, kill) })
	waitErr := cmd.Wait()
	why := ""
	select {
	case why = <-ended:
	default:
	}
	switch {
	case c.status >= 0:
		return c.status, nil
	case why == "timeout":
		return StatusTimeout, fmt.Errorf("%w after %s; VM killed", ErrTimeout, o.Timeout)
	case ctx.Err() != nil:
		return StatusInterrupted, ctx.Err()
	}
	return StatusNoReport, noReport(o, c, waitErr, qemuErr.String())
}

// watch ends the VM when asked: gracefully on the caller's cancellation,
// at once at the --timeout deadline.
func watch(ctx context.Context, o Options, sock string, kill func(), done <-chan struct{}, ended chan<- string) {
	var deadline <-chan time.Time
	if o.Timeout > 0 {
		t := time.NewTimer(o.Timeout)
		defer t.Stop()
		deadline = t.C
	}
	select {
	case <-done:
		return
	case <-deadline:
		ended <- "timeout"
		kill()
		return
	case <-ctx.Done():
	}
	ended <- "stopped"
	stop := o.StopTimeout
	if stop <= 0 {
		stop = DefaultStopTimeout
	}
	fmt.Fprintf(o.Stderr, "c2vm run: stopping the VM (power button; the container gets %s, then SIGKILL; interrupt again to kill now)\n", stop)
	if err := powerdown(sock); err != nil {
		fmt.Fprintf(o.Stderr, "c2vm run: %v; killing the VM\n", err)
		kill()
		return
	}
	hard := time.NewTimer(stop + StopGrace)
	defer hard.Stop()
	select {
	case <-done:
	case <-deadline:
		kill()
	case <-hard.C:
		fmt.Fprintf(o.Stderr, "c2vm run: the VM did not power off in %s; killing it\n", stop+StopGrace)
		kill()
	}
}

// DefaultStopTimeout is the container's grace period when none is given,
// Docker's.
const DefaultStopTimeout = 10 * time.Second

// qmpSocket makes a private directory for QEMU's QMP socket.
func qmpSocket() (string, func(), error) {
	dir, err := os.MkdirTemp("", "c2vm-run-")
	if err != nil {
		return "", nil, fmt.Errorf("QMP socket: %w", err)
	}
	return filepath.Join(dir, "qmp.sock"), func() { os.RemoveAll(dir) }, nil
}

// noReport prints the last console lines and says why the VM ended.
func noReport(o Options, c console, waitErr error, qemuErr string) error {
	fmt.Fprintf(o.Stderr, "c2vm run: the VM stopped without reporting a status; last console lines:\n%s\n", strings.Join(c.last, "\n"))
	why := "the VM stopped without reporting a status"
	if c.panic != "" {
		why = "kernel panic: " + c.panic
	}
	if waitErr != nil && strings.TrimSpace(qemuErr) != "" {
		why += " (" + strings.TrimSpace(qemuErr) + ")"
	}
	return fmt.Errorf("%w: %s", ErrNoReport, why)
}
