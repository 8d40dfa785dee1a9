package launch

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// StatusGrace is how long QEMU may keep running after the status line
// (the init powers off right after it); then it is killed.
var StatusGrace = 10 * time.Second

// boot runs QEMU and follows its console.
func boot(ctx context.Context, o Options, bin string, args []string) (int, error) {
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, o.Timeout, ErrTimeout)
		defer cancel()
	}
	// A separate cancel for the grace period keeps ctx.Err() meaning "the
	// caller's deadline or cancellation".
	qctx, kill := context.WithCancel(ctx)
	defer kill()
	cmd := exec.CommandContext(qctx, bin, args...)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 1, err
	}
	var qemuErr strings.Builder
	cmd.Stderr = &qemuErr
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("starting %s: %w", bin, err)
	}
	c := follow(out, o, func() { time.AfterFunc(StatusGrace, kill) })
	waitErr := cmd.Wait()
	switch {
	case c.status >= 0:
		return c.status, nil
	case errors.Is(context.Cause(ctx), ErrTimeout):
		return StatusTimeout, fmt.Errorf("%w after %s; VM killed", ErrTimeout, o.Timeout)
	case ctx.Err() != nil:
		return StatusInterrupted, ctx.Err()
	}
	return StatusNoReport, noReport(o, c, waitErr, qemuErr.String())
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
