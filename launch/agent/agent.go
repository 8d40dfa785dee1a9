// Package agent is the host's client of the guest agent (the init's exec
// server): it connects to the unix socket QEMU serves the VM's agent port
// on, checks the protocol version, and runs processes in the container
// over package bootcfg/wire, many at once on one connection.
//
//	c, err := agent.Dial(ctx, "/run/user/1000/c2vm/web/agent.sock")
//	s, err := c.Exec(ctx, agent.Process{Process: wire.Process{Args: []string{"ls", "/"}}, Stdout: os.Stdout, Stderr: os.Stderr})
//	status, err := s.Wait(ctx)
//
// Every byte from the guest is hostile input: a frame that breaks the
// protocol (a bad type or size, output for a session that is not open, a
// pong nobody asked for, credit past the window) ends the connection with
// an error naming it, and nothing is buffered past one frame. A VM that
// goes away mid-exec ends every session with ErrClosed.
package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/c2vm/c2vm/bootcfg/wire"
)

// ErrClosed is the connection's end while a session or a ping waits: the
// VM stopped, or its QEMU died.
var ErrClosed = errors.New("the VM's agent connection closed (has the VM stopped?)")

// ErrProtocol is the guest breaking the protocol.
var ErrProtocol = errors.New("guest agent protocol error")

// Conn is a connection to a VM's agent.
type Conn struct {
	nc   net.Conn
	wmu  sync.Mutex
	done chan struct{} // closed with err set when the connection ends

	mu       sync.Mutex
	err      error
	next     uint32
	sessions map[uint32]*Session
	pings    map[uint64]chan struct{}
}

// HelloRetry is how long Dial waits for the agent's hello on one
// connection before it connects again. A client that connected right as
// another left went unheard about one exec in twenty: the port read as EOF
// after its Hello, and the agent dropped the answer (the guest now answers
// such a Hello; see guest's agent.serve). The retry stays as a net for a
// connection lost otherwise.
var HelloRetry = time.Second

// Dial connects to the agent's socket and exchanges hellos; ctx bounds
// both (QEMU takes one client at a time: another exec holds it until its
// end).
func Dial(ctx context.Context, socketPath string) (*Conn, error) {
	for {
		nc, r, err := dialOnce(ctx, socketPath)
		if err == nil {
			c := &Conn{nc: nc, done: make(chan struct{}), sessions: map[uint32]*Session{}, pings: map[uint64]chan struct{}{}}
			go c.readLoop(r)
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("no answer from the VM's agent at %s: %w", socketPath, ctx.Err())
		}
		switch {
		case errors.Is(err, syscall.EAGAIN):
			// QEMU's backlog is full: other execs wait their turn.
			time.Sleep(20 * time.Millisecond)
		case !errors.Is(err, os.ErrDeadlineExceeded):
			return nil, err
		}
	}
}

// dialOnce connects and exchanges hellos within HelloRetry.
func dialOnce(ctx context.Context, socketPath string) (net.Conn, *wire.Reader, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", socketPath)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to the VM's agent: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	nc.SetReadDeadline(time.Now().Add(HelloRetry))
	r := wire.NewReader(nc)
	if err := hello(nc, r); err != nil {
		nc.Close()
		return nil, nil, err
	}
	nc.SetReadDeadline(time.Time{})
	return nc, r, nil
}

// hello greets the agent with a fresh nonce and waits for its answer:
// frames before it, and Hellos with another nonce, are what the agent
// wrote for a previous client as it left, skipped (Dial's context bounds
// the wait).
func hello(w io.Writer, r *wire.Reader) error {
	nonce := make([]byte, wire.NonceSize)
	rand.Read(nonce)
	if err := wire.Write(w, wire.Frame{Type: wire.Hello, Payload: wire.HelloPayload(nonce)}); err != nil {
		return fmt.Errorf("greeting the VM's agent: %w", err)
	}
	for {
		f, err := r.Next()
		if err != nil {
			return fmt.Errorf("greeting the VM's agent: %w", lost(err))
		}
		if f.Type != wire.Hello {
			continue
		}
		v, echo, err := wire.ParseHello(f.Payload)
		switch {
		case err != nil:
			return fmt.Errorf("%w: %w", ErrProtocol, err)
		case v != wire.Version:
			return fmt.Errorf("the VM's agent speaks protocol version %d, this c2vm %d (convert the VM again with this c2vm)", v, wire.Version)
		case bytes.Equal(echo, nonce):
			return nil
		}
	}
}

// lost reads the stream's end as ErrClosed.
func lost(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return ErrClosed
	}
	return err
}

// Close ends the connection; the guest kills its sessions' processes.
func (c *Conn) Close() error {
	c.fail(ErrClosed)
	return nil
}

// Err is why the connection ended, nil while it is open.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// fail ends the connection with err (the first reason wins).
func (c *Conn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	c.nc.Close()
	close(c.done)
}

func (c *Conn) send(f wire.Frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := wire.Write(c.nc, f); err != nil {
		c.fail(lost(err))
		return c.Err()
	}
	return nil
}

// Ping checks the agent answers.
func (c *Conn) Ping(ctx context.Context) error {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.next++
	nonce := uint64(c.next)
	pong := make(chan struct{})
	c.pings[nonce] = pong
	c.mu.Unlock()
	if err := c.send(wire.Frame{Type: wire.Ping, Payload: binary.BigEndian.AppendUint64(nil, nonce)}); err != nil {
		return err
	}
	select {
	case <-pong:
		return nil
	case <-c.done:
		return c.Err()
	case <-ctx.Done():
		return fmt.Errorf("no answer from the VM's agent: %w", ctx.Err())
	}
}

func (c *Conn) readLoop(r *wire.Reader) {
	for {
		f, err := r.Next()
		if err == nil {
			err = c.dispatch(f)
		}
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				err = lost(err)
			}
			c.fail(err)
			return
		}
	}
}

// dispatch handles one frame from the guest.
func (c *Conn) dispatch(f wire.Frame) error {
	if f.Type == wire.Pong {
		return c.pong(f.Payload)
	}
	c.mu.Lock()
	s := c.sessions[f.Session]
	c.mu.Unlock()
	if s == nil {
		return fmt.Errorf("%w: %s for session %d, which is not open", ErrProtocol, f.Type, f.Session)
	}
	switch f.Type {
	case wire.Stdout:
		s.write(s.stdout, f.Payload)
	case wire.Stderr:
		if s.tty {
			return fmt.Errorf("%w: stderr for session %d, which has a terminal", ErrProtocol, f.Session)
		}
		s.write(s.stderr, f.Payload)
	case wire.Credit:
		n, err := wire.ParseUint32(f.Type, f.Payload)
		if err == nil {
			err = s.addCredit(n)
		}
		return err
	case wire.Exit:
		status, msg, err := wire.ParseExit(f.Payload)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		c.mu.Lock()
		delete(c.sessions, f.Session)
		c.mu.Unlock()
		s.end(status, msg)
	default:
		return fmt.Errorf("%w: the guest sent %s", ErrProtocol, f.Type)
	}
	return nil
}

func (c *Conn) pong(p []byte) error {
	if len(p) != 8 {
		return fmt.Errorf("%w: pong of %d bytes", ErrProtocol, len(p))
	}
	nonce := binary.BigEndian.Uint64(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.pings[nonce]
	if !ok {
		return fmt.Errorf("%w: a pong nobody asked for", ErrProtocol)
	}
	delete(c.pings, nonce)
	close(ch)
	return nil
}
