package guest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/bootcfg/wire"
)

// agent serves exec sessions on the virtio-serial port, one host
// connection at a time (QEMU's socket chardev takes one client).
type agent struct {
	s    *initState
	port *os.File
	proc specs.Process // the container's process: what an exec starts from
	out  chan outFrame // to writeLoop, the port's one writer
	gen  atomic.Uint64 // the host connection; frames of an older one are dropped
	idle *idler

	mu       sync.Mutex
	sessions map[uint32]*session
}

type outFrame struct {
	gen uint64
	b   []byte
}

// maxSessions bounds the sessions open at once.
const maxSessions = 256

// startAgent opens the agent's port, when the VM has one, and serves it
// once the container's process has started.
func (s *initState) startAgent(a *plan.Agent) error {
	idle := newIdler(s.args.Idle, s.pressPower)
	f, dev, err := openPort(a.Port)
	if f == nil {
		return err
	}
	s.logf("agent: serving exec on %s", dev)
	ag := &agent{s: s, port: f, out: make(chan outFrame, 64), idle: idle, sessions: map[uint32]*session{}}
	go func() {
		ag.proc = <-s.container
		s.container <- ag.proc // for anyone else waiting
		ag.serve()
	}()
	return nil
}

func (s *initState) pressPower() {
	fmt.Fprintf(s.console, "%sno exec session for %s (c2vm.idle): stopping\n", plan.LogPrefix, s.args.Idle)
	select {
	case s.power <- struct{}{}:
	default:
	}
}

// openPort opens the virtio-serial port named name and removes its nodes
// from /dev, which the container shares; a VM without it is no error.
func openPort(name string) (*os.File, string, error) {
	dev := findPort(name)
	if dev == "" {
		return nil, "", nil
	}
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return nil, "", fmt.Errorf("opening %s: %w", dev, err)
	}
	for _, p := range []string{dev, "/dev/virtio-ports/" + name} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			f.Close()
			return nil, "", fmt.Errorf("hiding the agent's port from the container: %w", err)
		}
	}
	return f, dev, nil
}

// findPort finds the port's device by its name in sysfs. A virtio-serial
// device announces its ports after its driver binds: with one bound, it
// waits up to a second for the name; with none, it returns "" at once.
func findPort(name string) string {
	deadline := time.Now().Add(time.Second)
	for {
		files, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
		for _, n := range files {
			if b, err := os.ReadFile(n); err == nil && strings.TrimSpace(string(b)) == name {
				return "/dev/" + filepath.Base(filepath.Dir(n))
			}
		}
		devs, _ := filepath.Glob("/sys/bus/virtio/drivers/virtio_console/virtio*")
		if len(devs) == 0 || time.Now().After(deadline) {
			return ""
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serve runs host connections one after the other. A closed connection
// ends its sessions; a protocol error drops the rest of that connection.
func (a *agent) serve() {
	hostIO := make(chan os.Signal, 1)
	signal.Notify(hostIO, unix.SIGIO)
	a.notifyHost()
	go a.writeLoop()
	var hello *wire.Frame
	for {
		next, err := a.conn(wire.NewReader(a.port), hello)
		a.hangup()
		if hello = next; hello != nil {
			// A new host's hello: the old one left without the port
			// reading as closed in between (a quick reconnect).
			continue
		}
		if err != nil {
			fmt.Fprintf(a.s.console, "%sagent: %v\n", plan.LogPrefix, err)
			io.Copy(io.Discard, a.port) // until the host goes
		}
		// The port reads as EOF until a host connects; the driver
		// signals SIGIO when one does. The tick covers a missed one.
		select {
		case <-hostIO:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// notifyHost asks for SIGIO on the port's host connection changes
// (virtio_console sends it on VIRTIO_CONSOLE_PORT_OPEN).
func (a *agent) notifyHost() {
	rc, err := a.port.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		unix.FcntlInt(fd, unix.F_SETOWN, unix.Getpid())
		if fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0); err == nil {
			unix.FcntlInt(fd, unix.F_SETFL, fl|unix.O_ASYNC)
		}
	})
}

// writeLoop is the port's one writer. A frame of a closed connection is
// dropped; hangup aborts one being written (the deadline), so nothing of
// it reaches the next host.
func (a *agent) writeLoop() {
	for f := range a.out {
		a.port.SetWriteDeadline(time.Time{})
		if f.gen != a.gen.Load() {
			continue
		}
		a.port.Write(f.b)
	}
}

// send queues a frame for the connection gen.
func (a *agent) send(gen uint64, f wire.Frame) {
	b, err := wire.Append(nil, f)
	if err == nil {
		a.out <- outFrame{gen, b}
	}
}

// hangup ends the connection: its sessions are killed, its frames dropped.
func (a *agent) hangup() {
	a.gen.Add(1)
	a.port.SetWriteDeadline(time.Now())
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, ss := range a.sessions {
		ss.kill()
		delete(a.sessions, id)
	}
}

// conn serves one host connection: hello (read already, or first),
// then sessions, until the port reads as closed or another host's hello
// comes, which it returns.
func (a *agent) conn(r *wire.Reader, hello *wire.Frame) (*wire.Frame, error) {
	gen := a.gen.Load()
	if hello == nil {
		f, err := r.Next()
		if err != nil {
			return nil, eofNil(err)
		}
		hello = &f
	}
	if hello.Type != wire.Hello {
		return nil, fmt.Errorf("the host spoke %s before hello", hello.Type)
	}
	a.send(gen, wire.Frame{Type: wire.Hello, Payload: wire.HelloPayload()})
	if v, err := wire.ParseHello(hello.Payload); err != nil || v != wire.Version {
		return nil, fmt.Errorf("the host speaks protocol version %d, this agent %d: %v", v, wire.Version, err)
	}
	for {
		f, err := r.Next()
		if err != nil {
			return nil, eofNil(err)
		}
		if f.Type == wire.Hello {
			f.Payload = append([]byte{}, f.Payload...)
			return &f, nil
		}
		if err := a.frame(gen, f); err != nil {
			return nil, err
		}
	}
}

func eofNil(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// frame handles one frame from the host.
func (a *agent) frame(gen uint64, f wire.Frame) error {
	switch f.Type {
	case wire.Ping:
		a.send(gen, wire.Frame{Type: wire.Pong, Payload: f.Payload})
		return nil
	case wire.Start:
		return a.start(gen, f)
	}
	a.mu.Lock()
	ss := a.sessions[f.Session]
	a.mu.Unlock()
	if ss == nil {
		// A session that has just ended: its exit crosses the host's input.
		return nil
	}
	switch f.Type {
	case wire.Stdin:
		return ss.stdin.put(f.Payload)
	case wire.CloseStdin:
		ss.stdin.close()
	case wire.Resize:
		rows, cols, err := wire.ParseSize(f.Payload)
		if err != nil {
			return err
		}
		ss.resize(rows, cols)
	case wire.Signal:
		sig, err := wire.ParseSignal(f.Payload)
		if err != nil {
			return err
		}
		unix.Kill(ss.pid, unix.Signal(sig))
	default:
		return fmt.Errorf("session %d: the host sent %s", f.Session, f.Type)
	}
	return nil
}

// start starts a session's process; a process that cannot start (unknown
// user, not found) ends the session at once with its status.
func (a *agent) start(gen uint64, f wire.Frame) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, dup := a.sessions[f.Session]; dup || f.Session == 0 {
		return fmt.Errorf("session %d: started twice", f.Session)
	}
	pr, err := wire.ParseProcess(f.Payload)
	if err != nil {
		return err
	}
	exit := func(status int, msg string) {
		a.send(gen, wire.Frame{Type: wire.Exit, Session: f.Session, Payload: wire.ExitPayload(status, msg)})
	}
	if len(a.sessions) >= maxSessions {
		exit(plan.StatusInitFailed, fmt.Sprintf("more than %d exec sessions", maxSessions))
		return nil
	}
	ss, err := a.spawn(gen, f.Session, pr)
	var se *startError
	switch {
	case errors.As(err, &se):
		exit(se.status, se.msg)
	case err != nil:
		exit(plan.StatusInitFailed, err.Error())
	default:
		a.sessions[f.Session] = ss
		a.idle.add(1)
		go a.wait(gen, ss)
	}
	return nil
}

// wait sends the session's exit once its process has ended and its output
// is sent (or a moment later, when something it left holds the output).
func (a *agent) wait(gen uint64, ss *session) {
	status := <-ss.status
	select {
	case <-ss.drained:
	case <-time.After(500 * time.Millisecond):
	}
	a.mu.Lock()
	if a.sessions[ss.id] == ss {
		delete(a.sessions, ss.id)
		a.send(gen, wire.Frame{Type: wire.Exit, Session: ss.id, Payload: wire.ExitPayload(status, "")})
	}
	a.mu.Unlock()
	ss.close()
	a.idle.add(-1)
}

// idler calls stop once no session has been open for d (0: never).
type idler struct {
	mu    sync.Mutex
	open  int
	timer *time.Timer
	d     time.Duration
}

func newIdler(d time.Duration, stop func()) *idler {
	i := &idler{d: d}
	if d > 0 {
		i.timer = time.AfterFunc(d, stop)
	}
	return i
}

func (i *idler) add(n int) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.open += n
	if i.timer == nil {
		return
	}
	if i.open == 0 {
		i.timer.Reset(i.d)
	} else {
		i.timer.Stop()
	}
}
