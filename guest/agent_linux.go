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
	s       *initState
	port    port
	proc    specs.Process // the container's process: what an exec starts from
	spawner *spawner      // starts execs with proc's limits
	null    *os.File      // /dev/null: the stdin of an exec without -i
	out     chan outFrame // to writeLoop, the port's one writer
	gen     atomic.Uint64 // the host connection; frames of an older one are dropped
	idle    *idler

	greeted atomic.Uint64 // the last connection whose Hello was answered
	helloed bool          // serve's: the connection has said Hello

	mu       sync.Mutex
	sessions map[uint32]*session
}

// port is the agent's end of the channel: a virtio-serial port's device.
type port interface {
	io.ReadWriter
	SetWriteDeadline(time.Time) error
}

var _ port = (*os.File)(nil)

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
	null, err := os.Open("/dev/null")
	if err != nil {
		f.Close()
		return err
	}
	s.logf("agent: serving exec on %s", dev)
	ag := &agent{s: s, port: f, null: null, out: make(chan outFrame, 64), idle: idle, sessions: map[uint32]*session{}}
	go func() {
		ag.proc = <-s.container
		s.container <- ag.proc // for anyone else waiting
		ag.spawner = newSpawner(ag.proc)
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

// serve reads the port for the VM's life. Each host's connection starts
// with its Hello, which ends the previous host's sessions. The port reads
// as EOF while no host is connected; the driver signals SIGIO when one
// connects, and hostTick covers a missed signal.
//
// An EOF right after a new host's Hello can be stale: its bytes can come
// before the driver has seen it connect. So an EOF ends a host's sessions
// only once the Hello's answer has been written (the write waits for the
// driver to see the host): were it the end, the answer would be dropped
// and the host would wait for nothing.
func (a *agent) serve() {
	hostIO := make(chan os.Signal, 1)
	signal.Notify(hostIO, unix.SIGIO)
	a.notifyHost()
	go a.writeLoop()
	r := wire.NewReader(a.port)
	for {
		if err := a.read(r); err != nil {
			fmt.Fprintf(a.s.console, "%sagent: %v\n", plan.LogPrefix, err)
			a.hangup()
			io.Copy(io.Discard, a.port) // until the host goes
			r = wire.NewReader(a.port)
		} else if a.greeted.Load() == a.gen.Load() {
			a.hangup() // the host has gone
		}
		select {
		case <-hostIO:
		case <-time.After(hostTick):
		}
	}
}

// hostTick is how often serve looks for a host without a SIGIO. No
// signal has been seen missed; the tick is a net, and one the host's own
// retry (a new connection, a new SIGIO: launch/agent.HelloRetry, 1 s)
// would cover as soon. Each tick wakes an idle VM: at 100 ms the ticks
// were most of an idle VM's CPU under TCG (QEMU: amd64 29 → 5, arm64 43 →
// 10 ms a second without them).
const hostTick = time.Second

// notifyHost asks for SIGIO on the port's host connection changes
// (virtio_console sends it on VIRTIO_CONSOLE_PORT_OPEN).
func (a *agent) notifyHost() {
	f, ok := a.port.(*os.File)
	if !ok {
		return
	}
	rc, err := f.SyscallConn()
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
// it reaches the next host. A Hello written marks its connection greeted.
func (a *agent) writeLoop() {
	for f := range a.out {
		a.port.SetWriteDeadline(time.Time{})
		if f.gen != a.gen.Load() {
			continue
		}
		if _, err := a.port.Write(f.b); err == nil && wire.Type(f.b[4]) == wire.Hello {
			a.greeted.Store(f.gen)
		}
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
	a.helloed = false
	a.port.SetWriteDeadline(time.Now())
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, ss := range a.sessions {
		ss.kill()
		delete(a.sessions, id)
	}
}

// read serves frames until the port reads as EOF (nil) or a frame breaks
// the protocol.
func (a *agent) read(r *wire.Reader) error {
	for {
		f, err := r.Next()
		switch {
		case err != nil:
			return eofNil(err)
		case f.Type == wire.Hello:
			err = a.hello(f.Payload)
		case !a.helloed:
			err = fmt.Errorf("the host spoke %s before hello", f.Type)
		default:
			err = a.frame(a.gen.Load(), f)
		}
		if err != nil {
			return err
		}
	}
}

// hello starts a host's connection: the previous host's sessions end, and
// the answer echoes the host's nonce. A host of another version gets
// version 1's answer, which it can read to say so, and nothing more.
func (a *agent) hello(p []byte) error {
	a.hangup()
	v, nonce, err := wire.ParseHello(p)
	if err != nil {
		return err
	}
	if v != wire.Version {
		fmt.Fprintf(a.s.console, "%sagent: the host speaks protocol version %d, this agent %d\n", plan.LogPrefix, v, wire.Version)
		nonce = nil
	}
	a.send(a.gen.Load(), wire.Frame{Type: wire.Hello, Payload: wire.HelloPayload(nonce)})
	a.helloed = v == wire.Version
	return nil
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
