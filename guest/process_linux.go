package guest

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

// runProcess starts the container process — the spec's, with the c2vm.cmd
// and c2vm.env overrides — and stays PID 1 until it exits: reaping every
// zombie and forwarding SIGTERM and SIGINT to it. It returns the exit
// status with Docker's conventions.
func (s *initState) runProcess(r *plan.Run) (int, error) {
	p := r.Process
	if s.args.Cmd != nil {
		p.Args = s.args.Cmd
	}
	p.Env = plan.MergeEnv(p.Env, s.args.Env)
	if len(p.Args) == 0 {
		return 0, errors.New("the process has no args")
	}
	argv0, found := lookPath(p.Args[0], p.Env, isExecutable)
	if !found {
		fmt.Fprintf(s.console, "%s%s: executable file not found in $PATH\n", plan.LogPrefix, p.Args[0])
		return plan.StatusNotFound, nil
	}
	// The bounding set, no_new_privs and rlimits are per thread (and
	// inherited): set them on this thread and fork the process from it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := restrict(p); err != nil {
		return 0, err
	}
	console, err := os.OpenFile("/dev/console", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return 0, fmt.Errorf("opening /dev/console: %w", err)
	}
	defer console.Close()
	null, _ := os.Open("/dev/null")
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	groups := make([]uint32, len(p.User.AdditionalGids))
	copy(groups, p.User.AdditionalGids)
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT)
	s.logf("exec %q as %d:%d %v in %s", p.Args, p.User.UID, p.User.GID, groups, cwd)
	proc, err := os.StartProcess(argv0, p.Args, &os.ProcAttr{
		Dir:   cwd,
		Env:   p.Env,
		Files: []*os.File{null, console, console},
		Sys: &syscall.SysProcAttr{
			Setsid:     true,
			Credential: &syscall.Credential{Uid: p.User.UID, Gid: p.User.GID, Groups: groups},
		},
	})
	if err != nil {
		fmt.Fprintf(s.console, "%sexec %s: %v\n", plan.LogPrefix, p.Args[0], unwrapSys(err))
		return startStatus(err), nil
	}
	return s.supervise(proc.Pid, sigs, r), nil
}

// restrict applies the process's limits to this thread, which forks it:
// the capability bounding set (containerd's default set), rlimits and
// no_new_privs, as runc does before its exec.
func restrict(p specs.Process) error {
	if p.Capabilities != nil {
		if err := limitBounding(p.Capabilities.Bounding); err != nil {
			return fmt.Errorf("limiting capabilities: %w", err)
		}
	}
	for _, rl := range p.Rlimits {
		r, ok := rlimits[rl.Type]
		if !ok {
			return fmt.Errorf("rlimit %s: unknown", rl.Type)
		}
		if err := unix.Setrlimit(r, &unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}); err != nil {
			return fmt.Errorf("rlimit %s: %w", rl.Type, err)
		}
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
	}
	return nil
}

// rlimits names the resources of setrlimit(2) as the runtime spec does.
var rlimits = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

func unwrapSys(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// startStatus maps a failed exec to Docker's codes.
func startStatus(err error) int {
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		return plan.StatusNotFound
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.ENOEXEC), errors.Is(err, unix.EISDIR), errors.Is(err, unix.EPERM):
		return plan.StatusNotExecutable
	}
	return plan.StatusNotExecutable
}

func isExecutable(p string) (bool, bool) {
	fi, err := os.Stat(p)
	if err != nil {
		return false, false
	}
	return fi.Mode().IsRegular() && fi.Mode()&0o111 != 0, true
}

// supervise reaps children until pid exits, forwarding SIGTERM and SIGINT
// to it; a power button press stops it as docker stop does: the stop
// signal, then SIGKILL after the timeout.
func (s *initState) supervise(pid int, sigs chan os.Signal, r *plan.Run) int {
	var kill <-chan time.Time
	for {
		select {
		case <-s.power:
			if kill != nil {
				continue
			}
			sig := unix.Signal(r.StopSignal)
			if sig == 0 {
				sig = unix.SIGTERM
			}
			timeout := time.Duration(r.StopTimeout) * time.Second
			fmt.Fprintf(s.console, "%spower button: sending %s to the container, SIGKILL in %s\n", plan.LogPrefix, unix.SignalName(sig), timeout)
			unix.Kill(pid, sig)
			kill = time.After(timeout)
		case <-kill:
			fmt.Fprintf(s.console, "%sthe container did not stop in time: SIGKILL\n", plan.LogPrefix)
			unix.Kill(pid, unix.SIGKILL)
		case sig := <-sigs:
			if sig == unix.SIGTERM || sig == unix.SIGINT {
				unix.Kill(pid, sig.(unix.Signal))
				continue
			}
			if code, done := reap(pid); done {
				stopOthers()
				return code
			}
		}
	}
}

// reap collects every exited child; done when pid is among them.
func reap(pid int) (code int, done bool) {
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err != nil || wpid <= 0 {
			return code, done
		}
		if wpid == pid {
			code, done = exitCode(ws), true
		}
	}
}

// stopOthers ends what the container left running (daemons it forked),
// as a container's end does, so nothing holds a volume busy: SIGTERM,
// up to a second's grace, then SIGKILL.
func stopOthers() {
	if unix.Kill(-1, unix.SIGTERM) != nil {
		return // none left
	}
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		var ws unix.WaitStatus
		if _, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil); errors.Is(err, unix.ECHILD) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	unix.Kill(-1, unix.SIGKILL)
	for {
		var ws unix.WaitStatus
		if _, err := unix.Wait4(-1, &ws, 0, nil); err != nil {
			return
		}
	}
}

func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
