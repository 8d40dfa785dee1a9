package guest

import (
	"bytes"
	"io"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/c2vm/c2vm/bootcfg/wire"
)

// TestExecProcess: an exec starts from the container's process; -e adds
// to or replaces its env as docker exec -e, -w replaces its cwd; what
// exec leaves empty stays the container's.
func TestExecProcess(t *testing.T) {
	c := specs.Process{Args: []string{"/bin/sleep", "1"}, Env: []string{"PATH=/bin", "FOO=bar"}, Cwd: "/home/app",
		User: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10}}, NoNewPrivileges: true,
		Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}}}
	p, err := execProcess(c, wire.Process{Args: []string{"id"}, Env: []string{"FOO=baz", "NEW=1"}, Cwd: "/tmp"})
	if err != nil {
		t.Fatal(err)
	}
	want := c
	want.Args, want.Env, want.Cwd = []string{"id"}, []string{"PATH=/bin", "FOO=baz", "NEW=1"}, "/tmp"
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got %+v\nwant %+v", p, want)
	}
	if c.Env[1] != "FOO=bar" {
		t.Error("the container's env was changed")
	}
	p, _ = execProcess(c, wire.Process{Args: []string{"id"}})
	if p.Cwd != "/home/app" || p.User.UID != 1000 || !reflect.DeepEqual(p.Env, c.Env) {
		t.Errorf("without overrides: %+v", p)
	}
}

// TestIdler: stop runs once no session has been open for d, not while
// one is.
func TestIdler(t *testing.T) {
	stopped := make(chan struct{}, 1)
	i := newIdler(50*time.Millisecond, func() { stopped <- struct{}{} })
	i.add(1)
	select {
	case <-stopped:
		t.Fatal("stopped with a session open")
	case <-time.After(200 * time.Millisecond):
	}
	i.add(-1)
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("not stopped after the last session")
	}
	newIdler(0, func() { t.Error("an idler of 0 stopped") }).add(0)
}

// fakePort is a virtio-serial port as its driver shows it: reads are
// scripted (nil: EOF, no host connected as far as the driver knows) and
// writes wait for connected, or for a deadline in the past.
type fakePort struct {
	reads     chan []byte
	connected chan struct{}
	written   chan []byte

	mu      sync.Mutex
	abort   chan struct{} // closed by a deadline in the past
	aborted bool
}

func newFakePort() *fakePort {
	return &fakePort{reads: make(chan []byte), connected: make(chan struct{}), written: make(chan []byte, 16), abort: make(chan struct{})}
}

func (p *fakePort) Read(b []byte) (int, error) {
	d := <-p.reads
	if d == nil {
		return 0, io.EOF
	}
	return copy(b, d), nil
}

func (p *fakePort) Write(b []byte) (int, error) {
	p.mu.Lock()
	abort := p.abort
	p.mu.Unlock()
	select {
	case <-p.connected:
		p.written <- append([]byte{}, b...)
		return len(b), nil
	case <-abort:
		return 0, os.ErrDeadlineExceeded
	}
}

func (p *fakePort) SetWriteDeadline(t time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case t.IsZero() && p.aborted:
		p.abort, p.aborted = make(chan struct{}), false
	case !t.IsZero() && !p.aborted:
		close(p.abort)
		p.aborted = true
	}
	return nil
}

// TestAgentStaleEOF: a host's Hello can come before the driver has seen
// the host connect, so the port reads as EOF after it; the Hello is
// answered all the same (it was dropped, and the host waited a second).
func TestAgentStaleEOF(t *testing.T) {
	p := newFakePort()
	a := &agent{s: &initState{console: io.Discard}, port: p, out: make(chan outFrame, 64), idle: newIdler(0, nil), sessions: map[uint32]*session{}}
	go a.serve()
	hello, _ := wire.Append(nil, wire.Frame{Type: wire.Hello, Payload: wire.HelloPayload([]byte("nonce-42"))})
	p.reads <- hello
	p.reads <- nil
	p.reads <- nil // taken once the agent has acted on the first EOF
	close(p.connected)
	select {
	case b := <-p.written:
		f, err := wire.NewReader(bytes.NewReader(b)).Next()
		if err != nil || f.Type != wire.Hello {
			t.Fatalf("the agent wrote %q (%v), want a Hello", b, err)
		}
		if _, nonce, err := wire.ParseHello(f.Payload); err != nil || string(nonce) != "nonce-42" {
			t.Fatalf("the agent's Hello echoes %q (%v), want the host's nonce", nonce, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the Hello before the EOF was never answered")
	}
}
