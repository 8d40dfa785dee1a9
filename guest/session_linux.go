package guest

import (
	"errors"
	"fmt"
	"os"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/c2vm/c2vm/bootcfg/passwd"
	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/bootcfg/wire"
)

// session is one exec'd process.
type session struct {
	id      uint32
	pid     int
	status  chan int      // from the reaper
	drained chan struct{} // closed when its output has all been sent
	stdin   *inbox
	pty     *os.File   // the pty's master, with TTY
	fds     []*os.File // the session's own ends, closed at its end
}

// spawn starts pr as the container's process was started, with exec's
// overrides: -u (resolved in the container's /etc/passwd and /etc/group),
// -e (added to the env as docker exec -e), -w.
func (a *agent) spawn(gen uint64, id uint32, pr wire.Process) (*session, error) {
	p, err := execProcess(a.proc, pr)
	if err != nil {
		return nil, err
	}
	ss := &session{id: id, status: make(chan int, 1), drained: make(chan struct{}), stdin: newInbox()}
	child, err := ss.open(pr, p.User.UID, a.null)
	if err != nil {
		return nil, err
	}
	defer closeAll(child)
	ss.pid, err = a.s.children.start(a.spawner, p, child, pr.TTY, ss.status)
	if err != nil {
		ss.close()
		return nil, err
	}
	a.pump(gen, ss)
	return ss, nil
}

// execProcess is the container's process with exec's command and overrides.
func execProcess(c specs.Process, pr wire.Process) (specs.Process, error) {
	p := c
	p.Args = pr.Args
	p.Env = plan.MergeEnv(c.Env, pr.Env)
	if pr.Cwd != "" {
		p.Cwd = pr.Cwd
	}
	if pr.User != "" {
		u, err := passwd.ResolveUser(pr.User, os.DirFS("/"))
		if err != nil {
			return p, &startError{plan.StatusInitFailed, fmt.Sprintf("user %s: %v", pr.User, err)}
		}
		p.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGIDs}
	}
	return p, nil
}

// open makes the process's stdin, stdout and stderr: a pty (its slave
// owned by the user, as a login's) or pipes, and /dev/null for a stdin
// the host does not send (null's duplicate); it returns the child's ends.
func (ss *session) open(pr wire.Process, uid uint32, null *os.File) ([]*os.File, error) {
	if pr.TTY {
		m, s, err := openPty()
		if err != nil {
			return nil, err
		}
		ss.pty, ss.fds = m, []*os.File{m}
		ss.resize(pr.Rows, pr.Cols)
		s.Chown(int(uid), -1)
		return []*os.File{s, s, s}, nil
	}
	child, own := make([]*os.File, 3), make([]*os.File, 3)
	var err error
	if pr.Stdin {
		own[0], child[0], err = pipe(false)
	} else {
		child[0], err = dupFile(null)
	}
	for i := 1; i < 3 && err == nil; i++ {
		own[i], child[i], err = pipe(true)
	}
	ss.fds = own
	if err != nil {
		closeAll(child)
		ss.close()
		return nil, err
	}
	return child, nil
}

// pipe makes a pipe whose end the agent keeps (its read end when
// ownRead) is in Go's poller and whose child's end is a plain blocking
// descriptor, as a process's stdio is: os.Pipe puts both ends in the
// poller, and os.StartProcess takes the child's out again, at a cost of
// syscalls that under TCG was a tenth of the init's CPU per exec.
func pipe(ownRead bool) (own, child *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, fmt.Errorf("pipe: %w", err)
	}
	o, c := p[0], p[1]
	if !ownRead {
		o, c = c, o
	}
	unix.SetNonblock(o, true) // so os.NewFile polls it
	return os.NewFile(uintptr(o), "|agent"), os.NewFile(uintptr(c), "|process"), nil
}

// dupFile is a duplicate of f, close-on-exec.
func dupFile(f *os.File) (*os.File, error) {
	var fd int
	err := control(f, func(n int) (err error) {
		fd, err = unix.FcntlInt(uintptr(n), unix.F_DUPFD_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dup %s: %w", f.Name(), err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

// openPty opens a pseudo-terminal pair in the container's /dev/pts.
func openPty() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening a pty: %w", err)
	}
	var n uint32
	err = control(m, func(fd int) error {
		if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
			return err
		}
		n, err = unix.IoctlGetUint32(fd, unix.TIOCGPTN)
		return err
	})
	if err == nil {
		slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	}
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("opening a pty: %w", err)
	}
	return m, slave, nil
}

// control runs fn on f's descriptor without making it blocking (as Fd
// does), so reads stay interruptible by Close.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

func (ss *session) resize(rows, cols uint16) {
	if ss.pty == nil || rows == 0 || cols == 0 {
		return
	}
	control(ss.pty, func(fd int) error {
		return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	})
}

// pump sends the process's output as frames and feeds its stdin.
func (a *agent) pump(gen uint64, ss *session) {
	var outs sync.WaitGroup
	read := func(f *os.File, t wire.Type) {
		defer outs.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := f.Read(buf)
			if n > 0 {
				a.send(gen, wire.Frame{Type: t, Session: ss.id, Payload: buf[:n]})
			}
			if err != nil {
				return // EOF; EIO from a pty whose slave is closed
			}
		}
	}
	if ss.pty != nil {
		outs.Add(1)
		go read(ss.pty, wire.Stdout)
		go ss.stdin.feed(ss.pty, func(n int) { a.credit(gen, ss.id, n) }, false)
	} else {
		outs.Add(2)
		go read(ss.fds[1], wire.Stdout)
		go read(ss.fds[2], wire.Stderr)
		if ss.fds[0] != nil {
			go ss.stdin.feed(ss.fds[0], func(n int) { a.credit(gen, ss.id, n) }, true)
		}
	}
	go func() { outs.Wait(); close(ss.drained) }()
}

func (a *agent) credit(gen uint64, id uint32, n int) {
	a.send(gen, wire.Frame{Type: wire.Credit, Session: id, Payload: wire.Uint32(uint32(n))})
}

// kill ends the session's process group (the host went away).
func (ss *session) kill() {
	unix.Kill(-ss.pid, unix.SIGKILL)
	ss.stdin.close()
}

func (ss *session) close() {
	ss.stdin.close()
	closeAll(ss.fds)
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

// inbox holds a session's stdin from the host, at most wire.Window bytes:
// the host sends no more before a Credit.
type inbox struct {
	mu     sync.Mutex
	cond   *sync.Cond
	buf    []byte
	closed bool
}

func newInbox() *inbox {
	i := &inbox{}
	i.cond = sync.NewCond(&i.mu)
	return i
}

var errWindow = errors.New("the host sent stdin past its credit")

func (i *inbox) put(b []byte) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if len(i.buf)+len(b) > wire.Window {
		return errWindow
	}
	if !i.closed {
		i.buf = append(i.buf, b...)
		i.cond.Signal()
	}
	return nil
}

func (i *inbox) close() {
	i.mu.Lock()
	i.closed = true
	i.cond.Signal()
	i.mu.Unlock()
}

// feed writes the inbox to w, reporting each chunk written; at its close
// it closes w when closeW (a pipe; a pty's stdin ends with ^D instead).
func (i *inbox) feed(w *os.File, written func(int), closeW bool) {
	for {
		i.mu.Lock()
		for len(i.buf) == 0 && !i.closed {
			i.cond.Wait()
		}
		b, done := i.buf, i.closed && len(i.buf) == 0
		i.buf = nil
		i.mu.Unlock()
		if done {
			if closeW {
				w.Close()
			}
			return
		}
		if _, err := w.Write(b); err != nil {
			// The process stopped reading: keep crediting so the host
			// is not held up, as a pipe's writer gets EPIPE.
			written(len(b))
			continue
		}
		written(len(b))
	}
}
