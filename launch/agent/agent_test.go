package agent

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/c2vm/c2vm/bootcfg/wire"
)

// fakeGuest serves one connection on a unix socket: the hello (when
// greet), then script. It returns the socket's path.
func fakeGuest(t *testing.T, greet bool, script func(r *wire.Reader, w net.Conn)) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := wire.NewReader(c)
		if greet && !answerHello(r, c) {
			return
		}
		script(r, c)
	}()
	return sock
}

// answerHello reads the client's Hello and answers it as the agent does.
func answerHello(r *wire.Reader, w io.Writer) bool {
	f, err := r.Next()
	if err != nil || f.Type != wire.Hello {
		return false
	}
	_, nonce, err := wire.ParseHello(f.Payload)
	return err == nil && wire.Write(w, wire.Frame{Type: wire.Hello, Payload: wire.HelloPayload(nonce)}) == nil
}

// nextStart reads frames until a Start and returns its session.
func nextStart(r *wire.Reader) uint32 {
	for {
		f, err := r.Next()
		if err != nil {
			return 0
		}
		if f.Type == wire.Start {
			return f.Session
		}
	}
}

func dial(t *testing.T, sock string) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestExec(t *testing.T) {
	sock := fakeGuest(t, true, func(r *wire.Reader, w net.Conn) {
		f, _ := r.Next()
		p, err := wire.ParseProcess(f.Payload)
		if f.Type != wire.Start || err != nil || p.Args[0] != "id" || p.User != "app" {
			return
		}
		wire.Write(w, wire.Frame{Type: wire.Stdout, Session: f.Session, Payload: []byte("out\n")})
		wire.Write(w, wire.Frame{Type: wire.Stderr, Session: f.Session, Payload: []byte("err\n")})
		wire.Write(w, wire.Frame{Type: wire.Exit, Session: f.Session, Payload: wire.ExitPayload(3, "")})
		io.Copy(io.Discard, w)
	})
	c := dial(t, sock)
	var out, errb bytes.Buffer
	s, err := c.Exec(context.Background(), Process{Process: wire.Process{Args: []string{"id"}, User: "app"}, Stdout: &out, Stderr: &errb})
	if err != nil {
		t.Fatal(err)
	}
	status, err := s.Wait(context.Background())
	if status != 3 || err != nil || out.String() != "out\n" || errb.String() != "err\n" {
		t.Fatalf("status %d, %v, stdout %q, stderr %q", status, err, out.String(), errb.String())
	}
}

func TestStartError(t *testing.T) {
	sock := fakeGuest(t, true, func(r *wire.Reader, w net.Conn) {
		id := nextStart(r)
		wire.Write(w, wire.Frame{Type: wire.Exit, Session: id, Payload: wire.ExitPayload(127, "nope: executable file not found in $PATH")})
		io.Copy(io.Discard, w)
	})
	s, err := dial(t, sock).Exec(context.Background(), Process{Process: wire.Process{Args: []string{"nope"}}})
	if err != nil {
		t.Fatal(err)
	}
	status, err := s.Wait(context.Background())
	var se *StartError
	if status != 127 || !errors.As(err, &se) || !strings.Contains(se.Message, "not found") {
		t.Fatalf("status %d, %v", status, err)
	}
}

// TestHostileGuest: a guest that breaks the protocol ends the exec with an
// error naming what it did, never a hang.
func TestHostileGuest(t *testing.T) {
	raw := func(n uint32, typ byte, session uint32, payload ...byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, n)
		return append(binary.BigEndian.AppendUint32(append(b, typ), session), payload...)
	}
	frame := func(f wire.Frame) []byte { b, _ := wire.Append(nil, f); return b }
	for _, tc := range []struct {
		name string
		send func(id uint32) []byte
		want error
		text string
	}{
		{"oversize length", func(id uint32) []byte { return raw(1<<31, byte(wire.Stdout), id) }, wire.ErrFrameSize, ""},
		{"unknown type", func(id uint32) []byte { return raw(5, 200, id) }, wire.ErrType, ""},
		{"output for another session", func(id uint32) []byte {
			return frame(wire.Frame{Type: wire.Stdout, Session: id + 1, Payload: []byte("x")})
		}, ErrProtocol, "not open"},
		{"pong nobody asked for", func(uint32) []byte {
			return frame(wire.Frame{Type: wire.Pong, Payload: make([]byte, 8)})
		}, ErrProtocol, "pong"},
		{"credit past the window", func(id uint32) []byte {
			return frame(wire.Frame{Type: wire.Credit, Session: id, Payload: wire.Uint32(1)})
		}, ErrProtocol, "credit"},
		{"exit status 300", func(id uint32) []byte {
			return frame(wire.Frame{Type: wire.Exit, Session: id, Payload: wire.Uint32(300)})
		}, ErrProtocol, "exit"},
		{"a start from the guest", func(id uint32) []byte {
			return frame(wire.Frame{Type: wire.Start, Session: id, Payload: []byte(`{"args":["sh"]}`)})
		}, ErrProtocol, "start"},
		{"half a frame, then gone", func(id uint32) []byte { return raw(100, byte(wire.Stdout), id, 'x') }, ErrClosed, ""},
		{"gone mid-exec", func(uint32) []byte { return nil }, ErrClosed, "stopped"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := fakeGuest(t, true, func(r *wire.Reader, w net.Conn) {
				w.Write(tc.send(nextStart(r)))
			})
			c := dial(t, sock)
			s, err := c.Exec(context.Background(), Process{Process: wire.Process{Args: []string{"sh"}}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = s.Wait(ctx)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want %v with %q", err, tc.want, tc.text)
			}
			if c.Ping(ctx) == nil {
				t.Error("the connection still answers after the guest broke the protocol")
			}
		})
	}
}

func TestHello(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply []byte
		text  string
	}{
		{"another version", func() []byte {
			b, _ := wire.Append(nil, wire.Frame{Type: wire.Hello, Payload: append([]byte("c2vm-agent"), 0, 9)})
			return b
		}(), "version 9"},
		{"not an agent", func() []byte {
			b, _ := wire.Append(nil, wire.Frame{Type: wire.Hello, Payload: []byte("SSH-2.0")})
			return b
		}(), "not a c2vm agent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := fakeGuest(t, false, func(r *wire.Reader, w net.Conn) {
				r.Next()
				w.Write(tc.reply)
				io.Copy(io.Discard, w)
			})
			_, err := Dial(context.Background(), sock)
			if err == nil || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want %q", err, tc.text)
			}
		})
	}
	// What the agent wrote for a client that has left comes first: frames,
	// and a Hello answering another nonce. The client waits for its own.
	t.Run("a previous client's answer", func(t *testing.T) {
		sock := fakeGuest(t, false, func(r *wire.Reader, w net.Conn) {
			f, _ := r.Next()
			_, nonce, _ := wire.ParseHello(f.Payload)
			wire.Write(w, wire.Frame{Type: wire.Exit, Session: 9, Payload: wire.ExitPayload(0, "")})
			wire.Write(w, wire.Frame{Type: wire.Hello, Payload: wire.HelloPayload([]byte("previous"))})
			wire.Write(w, wire.Frame{Type: wire.Hello, Payload: wire.HelloPayload(nonce)})
			if f, err := r.Next(); err == nil && f.Type == wire.Ping {
				wire.Write(w, wire.Frame{Type: wire.Pong, Payload: f.Payload})
			}
			io.Copy(io.Discard, w)
		})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := dial(t, sock).Ping(ctx); err != nil {
			t.Fatalf("ping after the previous client's answer was skipped: %v", err)
		}
	})
	t.Run("silent", func(t *testing.T) {
		sock := fakeGuest(t, false, func(r *wire.Reader, w net.Conn) { io.Copy(io.Discard, w) })
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		if _, err := Dial(ctx, sock); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want the context's deadline", err)
		}
	})
	t.Run("no socket", func(t *testing.T) {
		if _, err := Dial(context.Background(), filepath.Join(t.TempDir(), "none.sock")); err == nil || !strings.Contains(err.Error(), "connecting") {
			t.Fatalf("got %v", err)
		}
	})
}

// countWriter counts what it is given.
type countWriter struct{ n atomic.Int64 }

func (w *countWriter) Write(b []byte) (int, error) { w.n.Add(int64(len(b))); return len(b), nil }

// TestFlood: 256 MiB of output in maximal frames passes through without
// the client's memory growing with it.
func TestFlood(t *testing.T) {
	const total = 256 << 20
	sock := fakeGuest(t, true, func(r *wire.Reader, w net.Conn) {
		id := nextStart(r)
		b, _ := wire.Append(nil, wire.Frame{Type: wire.Stdout, Session: id, Payload: make([]byte, wire.MaxPayload)})
		for range total / wire.MaxPayload {
			if _, err := w.Write(b); err != nil {
				return
			}
		}
		wire.Write(w, wire.Frame{Type: wire.Exit, Session: id, Payload: wire.ExitPayload(0, "")})
		io.Copy(io.Discard, w)
	})
	c := dial(t, sock)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var out countWriter
	s, err := c.Exec(context.Background(), Process{Process: wire.Process{Args: []string{"yes"}}, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if out.n.Load() != total {
		t.Errorf("got %d bytes, want %d", out.n.Load(), total)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Errorf("the client allocated %d MiB for %d MiB of output", grew>>20, total>>20)
	}
}

// TestStdinCredit: the client sends no more stdin than the guest credits.
func TestStdinCredit(t *testing.T) {
	got := make(chan int, 1)
	sock := fakeGuest(t, true, func(r *wire.Reader, w net.Conn) {
		nextStart(r)
		n := 0
		w.(*net.UnixConn).SetReadDeadline(time.Now().Add(time.Second))
		for {
			f, err := r.Next()
			if err != nil {
				break
			}
			if f.Type == wire.Stdin {
				n += len(f.Payload)
			}
		}
		got <- n
	})
	c := dial(t, sock)
	if _, err := c.Exec(context.Background(), Process{Process: wire.Process{Args: []string{"cat"}}, Stdin: zeros{}}); err != nil {
		t.Fatal(err)
	}
	if n := <-got; n != wire.Window {
		t.Fatalf("the client sent %d stdin bytes without credit, want the window, %d", n, wire.Window)
	}
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }
