package detach

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/c2vm/c2vm/launch"
	"github.com/c2vm/c2vm/launch/state"
)

// killWait bounds the wait for a VM to go once killed.
const killWait = 10 * time.Second

// Stop presses the power button of the VM name, as c2vm run's SIGTERM
// does (the init sends the container its STOPSIGNAL, waits its stop
// timeout, kills it, reports the status and powers off), and waits for
// QEMU to end. A VM still there timeout plus launch.StopGrace later is
// killed. timeout < 0: the run's --stop-timeout, else the converted one,
// else launch.DefaultStopTimeout. Stopping an exited VM does nothing.
func Stop(ctx context.Context, s *state.Store, name string, timeout time.Duration) error {
	rec, err := s.Get(name)
	if err != nil || rec.Status == state.Exited {
		return err
	}
	if timeout < 0 {
		timeout = stopTimeout(s, name)
	}
	if err := launch.Powerdown(s.Path(name, state.QMPSocket)); err != nil {
		// Not booted yet (no QMP socket): the supervisor's SIGTERM
		// ends its launch as c2vm run's does.
		signal(rec.Pid, unix.SIGTERM)
	}
	gone, err := waitGone(ctx, s, name, timeout+launch.StopGrace)
	if gone || err != nil {
		return err
	}
	return Kill(s, name)
}

// stopTimeout is the grace the VM name was started with.
func stopTimeout(s *state.Store, name string) time.Duration {
	if o, err := readSpec(s, name); err == nil && o.StopTimeout > 0 {
		return o.StopTimeout
	}
	return launch.DefaultStopTimeout
}

// Kill ends the VM name at once (QMP quit; the supervisor's SIGKILL
// when QEMU does not answer) and waits for QEMU to go.
func Kill(s *state.Store, name string) error {
	rec, err := s.Get(name)
	if err != nil || rec.Status == state.Exited {
		return err
	}
	if err := launch.Quit(s.Path(name, state.QMPSocket)); err == nil {
		if gone, _ := waitGone(context.Background(), s, name, killWait); gone {
			return nil
		}
	}
	// QEMU dies with its supervisor (launch sets its parent-death signal).
	signal(rec.Pid, unix.SIGKILL)
	if gone, err := waitGone(context.Background(), s, name, killWait); err != nil || gone {
		return err
	}
	return fmt.Errorf("VM %s: still running %s after being killed", name, killWait)
}

// waitGone waits up to bound for the supervisor of name to end, and then
// for its QEMU.
func waitGone(ctx context.Context, s *state.Store, name string, bound time.Duration) (bool, error) {
	end := time.Now().Add(bound)
	for {
		rec, err := s.Get(name)
		if err != nil {
			return false, err
		}
		if rec.Status == state.Exited {
			return waitPid(ctx, rec.QEMUPid, end)
		}
		if time.Now().After(end) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitPid waits for the process pid (0: none) to end. A supervisor that
// was killed leaves its QEMU to its parent-death signal.
func waitPid(ctx context.Context, pid int, end time.Time) (bool, error) {
	for pid > 0 && !errors.Is(unix.Kill(pid, 0), unix.ESRCH) {
		if time.Now().After(end) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return true, nil
}

// Remove forgets the VM name; force kills it first, as docker rm -f
// does, else a running VM is refused.
func Remove(s *state.Store, name string, force bool) error {
	if force {
		if err := Kill(s, name); err != nil {
			return err
		}
	}
	return s.Remove(name)
}

// signal sends sig to a supervisor that has recorded its pid (0 would be
// the caller's own process group).
func signal(pid int, sig unix.Signal) {
	if pid > 0 {
		unix.Kill(pid, sig)
	}
}
