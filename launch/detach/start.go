// Package detach runs VMs in the background (c2vm run -d) and controls
// them by name (stop, rm), over the records of launch/state.
//
// Start re-executes c2vm as a supervisor: a process of its own session,
// stdin from /dev/null, stdout and stderr to the VM's c2vm.log, holding
// the VM's supervisor.lock (handed over as descriptor 3). The supervisor
// runs launch.Run, the code of a foreground `c2vm run`, with the
// container's output going to the VM's rotating console log, and records
// the exit status when QEMU ends. Start returns once the guest agent
// answers a ping, or with the supervisor's error when it ends first.
//
//	name, err := detach.Start(ctx, store, detach.Options{Launch: o,
//		Supervisor: []string{exe, "supervise"}})
package detach

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/launch"
	"github.com/c2vm/c2vm/launch/state"
	"github.com/c2vm/c2vm/vmdir"
)

// specFile is the launch.Options a supervisor runs, in the VM's directory.
const specFile = "run.json"

// DefaultReady bounds the wait for the agent's first answer.
const DefaultReady = 5 * time.Minute

// Options for Start; the zero value of each is the default.
type Options struct {
	Name   string         // "": a generated one
	Launch launch.Options // as for c2vm run; Stdout and Stderr unused
	// Supervisor is the command that supervises the VM whose name is
	// appended (c2vm's hidden "supervise" command).
	Supervisor []string
	Ready      time.Duration // 0: DefaultReady
	Stderr     io.Writer     // the supervisor's last lines when it fails
}

// ErrNotReady is returned when the VM ends, or the wait for its agent
// times out, before the agent answers.
var ErrNotReady = errors.New("the VM did not become ready")

// Start starts the VM in the background and returns its name once its
// agent answers.
func Start(ctx context.Context, s *state.Store, o Options) (string, error) {
	dir, err := filepath.Abs(o.Launch.Dir)
	if err != nil {
		return "", err
	}
	o.Launch.Dir = dir
	if err := servesExec(dir); err != nil {
		return "", err
	}
	rec, lock, err := s.Create(state.Record{Name: o.Name, Dir: dir})
	if err != nil {
		return "", err
	}
	exited, err := spawn(s, rec.Name, lock, o)
	lock.Close()
	if err != nil {
		s.Remove(rec.Name)
		return "", err
	}
	if err := waitReady(ctx, s, rec.Name, exited, o); err != nil {
		return "", err
	}
	return rec.Name, nil
}

// ErrNoAgent is returned for a VM whose boot plan starts no exec agent,
// which run -d waits for.
var ErrNoAgent = errors.New("its boot plan serves no exec agent (converted by an older c2vm? convert it again)")

// servesExec checks that the VM in dir starts the agent run -d waits
// for, rather than letting it wait for DefaultReady. A directory without
// a boot plan is left to launch to refuse.
func servesExec(dir string) error {
	f, err := os.Open(filepath.Join(dir, vmdir.BootPlan))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	p, err := plan.Read(f)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	for _, st := range p.Steps {
		if _, ok := st.Action.(*plan.Agent); ok {
			return nil
		}
	}
	return fmt.Errorf("%s: %w", dir, ErrNoAgent)
}

// spawn writes the VM's launch options and starts its supervisor with
// the lock; the channel gets the supervisor's end.
func spawn(s *state.Store, name string, lock *os.File, o Options) (<-chan error, error) {
	if err := writeSpec(s, name, o.Launch); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(s.Path(name, state.SupervisorLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state of %s: %w", name, err)
	}
	defer logf.Close()
	cmd := exec.Command(o.Supervisor[0], append(o.Supervisor[1:], name)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{lock}
	// Its own session: the terminal's ^C and hangup are not its.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the supervisor: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return exited, s.Update(name, func(rec *state.Record) { rec.Pid = cmd.Process.Pid })
}

// waitReady waits for the agent of name to answer, the supervisor to
// end, the bound or the caller's cancellation.
func waitReady(ctx context.Context, s *state.Store, name string, exited <-chan error, o Options) error {
	bound := o.Ready
	if bound <= 0 {
		bound = DefaultReady
	}
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	sock := s.Path(name, state.AgentSocket)
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := ping(pctx, sock)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return ended(s, name, o.Stderr)
		case <-deadline.C:
			Kill(s, name)
			return fmt.Errorf("%w: its agent did not answer within %s; VM %s killed", ErrNotReady, bound, name)
		case <-ctx.Done():
			Kill(s, name)
			return fmt.Errorf("interrupted before %s was ready; VM killed (c2vm rm %s): %w", name, name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ended explains a supervisor that ended before its VM was ready: a VM
// whose container ran and reported its status is no failure (its logs
// stay, as after `docker run -d`); otherwise the supervisor's last lines
// go to stderr and a VM that never booted is forgotten.
func ended(s *state.Store, name string, stderr io.Writer) error {
	rec, err := s.Get(name)
	if err != nil {
		return err
	}
	if rec.Error == "" && rec.ExitCode != nil {
		return nil
	}
	if rec.Started.IsZero() {
		// Refused before QEMU ran (not a VM, a port in use): the
		// error says it all.
		s.Remove(name)
		return errors.New(rec.Error)
	}
	if stderr != nil {
		last, _, _ := state.TailLog(s.Path(name, state.SupervisorLog), 10)
		fmt.Fprintf(stderr, "c2vm run -d: %s ended; its last messages:\n%s", name, last)
	}
	return fmt.Errorf("%w: %s (c2vm logs %s; c2vm rm %s)", ErrNotReady, strings.TrimSpace(rec.Error), name, name)
}

// writeSpec records the launch options the supervisor of name runs.
func writeSpec(s *state.Store, name string, o launch.Options) error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	if err := os.WriteFile(s.Path(name, specFile), b, 0o600); err != nil {
		return fmt.Errorf("state of %s: %w", name, err)
	}
	return nil
}
