package guest

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"sync"
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
	console, err := os.OpenFile("/dev/console", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return 0, fmt.Errorf("opening /dev/console: %w", err)
	}
	defer console.Close()
	null, _ := os.Open("/dev/null")
	defer null.Close()
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGCHLD, unix.SIGTERM, unix.SIGINT)
	s.logf("exec %q as %d:%d %v in %s", p.Args, p.User.UID, p.User.GID, p.User.AdditionalGids, p.Cwd)
	pid, err := start(p, []*os.File{null, console, console}, false)
	var se *startError
	if errors.As(err, &se) {
		fmt.Fprintf(s.console, "%s%v\n", plan.LogPrefix, se)
		return se.status, nil
	}
	if err != nil {
		return 0, err
	}
	s.container <- p
	return s.supervise(pid, sigs, r), nil
}

// startError is a process that could not start, with Docker's status for
// it (126, 127).
type startError struct {
	status int
	msg    string
}

func (e *startError) Error() string { return e.msg }

// start starts p with files as its descriptors 0, 1, 2, in a session of its
// own (tty: with files[0] as its controlling terminal): the one way the
// container's process and every exec'd process enter the container. The
// bounding set, no_new_privs and rlimits are per thread (and inherited), so
// they are set on a locked thread that forks the process and then ends
// with its goroutine, leaving the init's other threads as they were.
func start(p specs.Process, files []*os.File, tty bool) (int, error) {
	argv0, found := lookPath(p.Args[0], p.Env, isExecutable)
	if !found {
		return 0, &startError{plan.StatusNotFound, p.Args[0] + ": executable file not found in $PATH"}
	}
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	type result struct {
		pid int
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := restrict(p); err != nil {
			done <- result{err: err}
			return
		}
		proc, err := os.StartProcess(argv0, p.Args, &os.ProcAttr{
			Dir:   cwd,
			Env:   p.Env,
			Files: files,
			Sys: &syscall.SysProcAttr{
				Setsid: true, Setctty: tty, Ctty: 0,
				Credential: &syscall.Credential{Uid: p.User.UID, Gid: p.User.GID, Groups: append([]uint32{}, p.User.AdditionalGids...)},
			},
		})
		if err != nil {
			done <- result{err: &startError{startStatus(err), fmt.Sprintf("exec %s: %v", p.Args[0], unwrapSys(err))}}
			return
		}
		done <- result{pid: proc.Pid}
	}()
	r := <-done
	return r.pid, r.err
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
			if code, done := s.children.reap(pid); done {
				stopOthers()
				return code
			}
		}
	}
}

// children are the exec'd processes: the one reaper (supervise, PID 1's
// wait for every child) hands each its status.
type children struct {
	mu    sync.Mutex
	waits map[int]chan<- int
}

// start starts p as start does and registers it before any reap can
// collect it; its status goes to status.
func (c *children) start(p specs.Process, files []*os.File, tty bool, status chan<- int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pid, err := start(p, files, tty)
	if err == nil {
		if c.waits == nil {
			c.waits = map[int]chan<- int{}
		}
		c.waits[pid] = status
	}
	return pid, err
}

// reap collects every exited child, handing an exec'd one's status to its
// waiter; done when pid is among them.
func (c *children) reap(pid int) (code int, done bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err != nil || wpid <= 0 {
			return code, done
		}
		if wpid == pid {
			code, done = exitCode(ws), true
		}
		if w, ok := c.waits[wpid]; ok {
			w <- exitCode(ws)
			delete(c.waits, wpid)
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
