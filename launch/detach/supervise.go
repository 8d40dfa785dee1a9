package detach

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/c2vm/c2vm/launch"
	"github.com/c2vm/c2vm/launch/state"
)

// Supervise runs the VM name as Start recorded it, holding lock (its
// supervisor.lock, inherited from Start) until QEMU is gone, and records
// how it ended. Cancelling ctx (the supervisor's SIGTERM) presses the
// power button as for c2vm run. stderr gets the init's and launch's
// messages.
func Supervise(ctx context.Context, s *state.Store, name string, lock *os.File, stderr io.Writer) (err error) {
	defer runtime.KeepAlive(lock)
	defer func() {
		if err != nil { // recorded for c2vm run -d and ps, unless launch's is
			s.Update(name, func(rec *state.Record) {
				if rec.Error == "" {
					rec.Error = err.Error()
				}
			})
		}
	}()
	if err := checkLock(s, name, lock); err != nil {
		return err
	}
	o, err := readSpec(s, name)
	if err != nil {
		return err
	}
	console, err := state.OpenLog(s.Path(name, state.ConsoleLog), state.MaxLog)
	if err != nil {
		return err
	}
	defer console.Close()
	o.Stdout, o.Stderr = console, stderr
	o.QMPSocket, o.AgentSocket = s.Path(name, state.QMPSocket), s.Path(name, state.AgentSocket)
	o.OnStart = func(r launch.Running) {
		s.Update(name, func(rec *state.Record) {
			rec.Status, rec.Started = state.Running, time.Now()
			rec.Arch, rec.Ports, rec.QEMUPid = r.Arch, r.Forwards, r.QEMUPid
		})
	}
	code, err := launch.Run(ctx, o)
	uerr := s.Update(name, func(rec *state.Record) {
		rec.Status, rec.ExitCode, rec.Finished, rec.QEMUPid = state.Exited, &code, time.Now(), 0
		if err != nil {
			rec.Error = err.Error()
		}
	})
	if err != nil {
		return err
	}
	return uerr
}

// checkLock makes sure lock is name's supervisor.lock, and keeps it from
// QEMU: the VM counts as alive until the supervisor has recorded its end.
func checkLock(s *state.Store, name string, lock *os.File) error {
	a, err := lock.Stat()
	if err != nil {
		return fmt.Errorf("supervisor lock of %s: %w", name, err)
	}
	b, err := os.Stat(s.Path(name, "supervisor.lock"))
	if err != nil || !os.SameFile(a, b) {
		return fmt.Errorf("supervisor lock of %s: not inherited from c2vm run -d", name)
	}
	unix.CloseOnExec(int(lock.Fd()))
	return nil
}

// readSpec reads the launch options Start recorded for name.
func readSpec(s *state.Store, name string) (launch.Options, error) {
	var o launch.Options
	b, err := os.ReadFile(s.Path(name, specFile))
	if err != nil {
		return o, fmt.Errorf("state of %s: %w", name, err)
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return o, fmt.Errorf("state of %s: %s: %w", name, specFile, err)
	}
	return o, nil
}
