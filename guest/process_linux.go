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
// container's process and every exec'd process enter the container, here
// from a spawner of its own.
func start(p specs.Process, files []*os.File, tty bool) (int, error) {
	sp := newSpawner(p)
	defer sp.close()
	return sp.start(p, files, tty)
}

// spawner starts processes that share one process's limits from an OS
// thread that took them once (restrict): the bounding set, no_new_privs
// and rlimits are per thread (rlimits per process) and inherited, so the
// thread is locked to the spawner, which it ends with, and the init's
// other threads stay as they were. The agent keeps one for its execs:
// taking the limits again and a new thread for each cost a third of the
// init's CPU per exec under TCG.
type spawner struct {
	reqs chan spawnReq
}

type spawnReq struct {
	argv0 string
	p     specs.Process
	files []*os.File
	tty   bool
	done  chan<- spawned
}

type spawned struct {
	pid int
	err error
}

func newSpawner(limits specs.Process) *spawner {
	sp := &spawner{reqs: make(chan spawnReq)}
	go sp.loop(limits)
	return sp
}

func (sp *spawner) loop(limits specs.Process) {
	runtime.LockOSThread() // never unlocked: the thread ends with the loop
	err := restrict(limits)
	for r := range sp.reqs {
		if err != nil {
			r.done <- spawned{err: err}
			continue
		}
		r.done <- r.fork()
	}
}

func (sp *spawner) close() { close(sp.reqs) }

// start starts p as package-level start does; p's limits are the
// spawner's (an exec's are the container process's: execProcess).
func (sp *spawner) start(p specs.Process, files []*os.File, tty bool) (int, error) {
	argv0, found := lookPath(p.Args[0], p.Env, isExecutable)
	if !found {
		return 0, &startError{plan.StatusNotFound, p.Args[0] + ": executable file not found in $PATH"}
	}
	done := make(chan spawned, 1)
	sp.reqs <- spawnReq{argv0, p, files, tty, done}
	r := <-done
	return r.pid, r.err
}

// fork starts the process on the spawner's thread.
func (r spawnReq) fork() spawned {
	cwd := r.p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	proc, err := os.StartProcess(r.argv0, r.p.Args, &os.ProcAttr{
		Dir:   cwd,
		Env:   r.p.Env,
		Files: r.files,
		Sys: &syscall.SysProcAttr{
			Setsid: true, Setctty: r.tty, Ctty: 0,
			Credential: &syscall.Credential{Uid: r.p.User.UID, Gid: r.p.User.GID, Groups: append([]uint32{}, r.p.User.AdditionalGids...)},
		},
	})
	if err != nil {
		return spawned{err: &startError{startStatus(err), fmt.Sprintf("exec %s: %v", r.p.Args[0], unwrapSys(err))}}
	}
	pid := proc.Pid
	proc.Release() // reaped by PID 1's wait for every child
	return spawned{pid: pid}
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

// start starts p with sp and registers it before any reap can collect
// it; its status goes to status.
func (c *children) start(sp *spawner, p specs.Process, files []*os.File, tty bool, status chan<- int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pid, err := sp.start(p, files, tty)
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
