package guest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// runProcess starts the container process and stays PID 1 until it exits:
// reaping every zombie and forwarding SIGTERM and SIGINT to it. It returns
// the exit status with Docker's conventions.
func (s *initState) runProcess(p specs.Process) (int, error) {
	if len(p.Args) == 0 {
		return 0, errors.New("the process has no args")
	}
	argv0, found := LookPath(p.Args[0], p.Env, isExecutable)
	if !found {
		fmt.Fprintf(s.console, "c2vm-init: %s: executable file not found in $PATH\n", p.Args[0])
		return StatusNotFound, nil
	}
	// The bounding set is per thread: drop on this thread and fork the
	// process from it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if p.Capabilities != nil {
		if err := s.run(limitBounding(p.Capabilities.Bounding)); err != nil {
			return 0, err
		}
	}
	for _, rl := range p.Rlimits {
		if rl.Type == "RLIMIT_NOFILE" {
			unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: rl.Soft, Max: rl.Hard})
		}
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
		fmt.Fprintf(s.console, "c2vm-init: exec %s: %v\n", p.Args[0], unwrapSys(err))
		return startStatus(err), nil
	}
	return s.supervise(proc.Pid, sigs), nil
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
		return StatusNotFound
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.ENOEXEC), errors.Is(err, unix.EISDIR), errors.Is(err, unix.EPERM):
		return StatusNotExecutable
	}
	return StatusNotExecutable
}

func isExecutable(p string) (bool, bool) {
	fi, err := os.Stat(p)
	if err != nil {
		return false, false
	}
	return fi.Mode().IsRegular() && fi.Mode()&0o111 != 0, true
}

// supervise reaps children until pid exits, forwarding signals to it.
func (s *initState) supervise(pid int, sigs chan os.Signal) int {
	for sig := range sigs {
		if sig == unix.SIGTERM || sig == unix.SIGINT {
			unix.Kill(pid, sig.(unix.Signal))
			continue
		}
		for {
			var ws unix.WaitStatus
			wpid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if err != nil || wpid <= 0 {
				break
			}
			if wpid == pid {
				return exitCode(ws)
			}
		}
	}
	return StatusInitFailed
}

func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// finish ends the VM: stop what is left, sync, report, power off.
func finish(console io.Writer, status int) {
	unix.Kill(-1, unix.SIGTERM)
	time.Sleep(100 * time.Millisecond)
	unix.Kill(-1, unix.SIGKILL)
	unix.Sync()
	fmt.Fprintf(console, "%s%d\n", StatusLine, status)
	unix.Sync()
	for _, m := range []string{"/run/c2vm/lower"} {
		unix.Unmount(m, unix.MNT_DETACH)
	}
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	for {
		time.Sleep(time.Hour)
	}
}
