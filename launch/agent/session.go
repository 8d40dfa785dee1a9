package agent

import (
	"context"
	"fmt"
	"io"
	"sync"
	"syscall"

	"github.com/c2vm/c2vm/bootcfg/wire"
)

// Process is what to run (args, env, user, cwd, tty and its size) and its
// streams. Stdin nil: the process reads /dev/null; otherwise its EOF
// closes the process's stdin. Stdout and Stderr nil discard; with TTY
// everything comes on Stdout, as from a terminal.
type Process struct {
	wire.Process
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// Session is a process running in the VM.
type Session struct {
	c      *Conn
	id     uint32
	tty    bool
	stdout io.Writer
	stderr io.Writer
	exited chan struct{} // closed by end

	mu     sync.Mutex
	cond   *sync.Cond
	credit int // stdin bytes the guest will take
	status int
	msg    string
	ended  bool
}

// StartError is a process that did not start (not found: 127, not
// executable: 126, a user the container does not know: 125); Status is
// exec's status, as Docker's.
type StartError struct {
	Status  int
	Message string
}

func (e *StartError) Error() string { return e.Message }

// Exec starts p in the container.
func (c *Conn) Exec(ctx context.Context, p Process) (*Session, error) {
	p.Process.Stdin = p.Stdin != nil
	payload, err := p.Process.Payload()
	if err != nil {
		return nil, err
	}
	s := &Session{c: c, tty: p.TTY, stdout: orDiscard(p.Stdout), stderr: orDiscard(p.Stderr), exited: make(chan struct{}), credit: wire.Window}
	s.cond = sync.NewCond(&s.mu)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.next++
	s.id = c.next
	c.sessions[s.id] = s
	c.mu.Unlock()
	if err := c.send(wire.Frame{Type: wire.Start, Session: s.id, Payload: payload}); err != nil {
		return nil, err
	}
	if p.Stdin != nil {
		go s.feed(p.Stdin)
	}
	return s, nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// Wait waits for the process's end and returns its exit status (128+N
// when killed by signal N); a process that did not start is a
// *StartError with its status.
func (s *Session) Wait(ctx context.Context) (int, error) {
	select {
	case <-s.exited:
	case <-s.c.done:
		select {
		case <-s.exited: // the exit came just before the end
		default:
			return 0, s.c.Err()
		}
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	if s.msg != "" {
		return s.status, &StartError{s.status, s.msg}
	}
	return s.status, nil
}

// Resize sets the size of the session's terminal.
func (s *Session) Resize(rows, cols uint16) error {
	return s.c.send(wire.Frame{Type: wire.Resize, Session: s.id, Payload: wire.Size(rows, cols)})
}

// Signal sends sig to the process.
func (s *Session) Signal(sig syscall.Signal) error {
	if sig <= 0 || sig > wire.MaxSignal {
		return fmt.Errorf("signal %d: out of range", sig)
	}
	return s.c.send(wire.Frame{Type: wire.Signal, Session: s.id, Payload: wire.Uint32(uint32(sig))})
}

// write passes output on; a writer that fails (a closed pipe) gets no
// more, and the session goes on.
func (s *Session) write(w io.Writer, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w == s.stdout && s.stdout != io.Discard {
		if _, err := w.Write(b); err != nil {
			s.stdout = io.Discard
		}
	} else if w == s.stderr && s.stderr != io.Discard {
		if _, err := w.Write(b); err != nil {
			s.stderr = io.Discard
		}
	}
}

func (s *Session) addCredit(n uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if int64(s.credit)+int64(n) > wire.Window {
		return fmt.Errorf("%w: session %d: credit past the window", ErrProtocol, s.id)
	}
	s.credit += int(n)
	s.cond.Broadcast()
	return nil
}

func (s *Session) end(status int, msg string) {
	s.mu.Lock()
	s.status, s.msg, s.ended = status, msg, true
	s.cond.Broadcast()
	s.mu.Unlock()
	close(s.exited)
}

// take waits for stdin credit and takes up to max of it; 0 once the
// session or the connection has ended.
func (s *Session) take(max int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.credit == 0 && !s.ended && s.c.Err() == nil {
		s.cond.Wait()
	}
	if s.ended || s.c.Err() != nil {
		return 0
	}
	n := min(max, s.credit)
	s.credit -= n
	return n
}

func (s *Session) giveBack(n int) {
	s.mu.Lock()
	s.credit += n
	s.mu.Unlock()
}

// feed sends stdin within the guest's credit, then its end.
func (s *Session) feed(r io.Reader) {
	go func() {
		// Wake a feed waiting for credit when the connection ends.
		select {
		case <-s.c.done:
		case <-s.exited:
		}
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n := s.take(len(buf))
		if n == 0 {
			return
		}
		m, err := r.Read(buf[:n])
		s.giveBack(n - m)
		if m > 0 && s.c.send(wire.Frame{Type: wire.Stdin, Session: s.id, Payload: buf[:m]}) != nil {
			return
		}
		if err != nil {
			s.c.send(wire.Frame{Type: wire.CloseStdin, Session: s.id})
			return
		}
	}
}
