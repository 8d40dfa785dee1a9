package guest

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestSpawner: every process a spawner starts has its limits
// (no_new_privs here, which is per thread and inherited), the second as
// the first, and the caller's threads do not.
func TestSpawner(t *testing.T) {
	if os.Getuid() != 0 {
		fixtures.Skip(t, "sets the credentials of its children: needs root")
	}
	limits := specs.Process{NoNewPrivileges: true, Env: []string{"PATH=/usr/bin:/bin"}}
	sp := newSpawner(limits)
	defer sp.close()
	for i := range 2 {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		p := limits
		p.Args = []string{"grep", "^NoNewPrivs", "/proc/self/status"}
		pid, err := sp.start(p, []*os.File{nil, w, w}, false)
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil)
		out := make([]byte, 100)
		n, _ := r.Read(out)
		r.Close()
		if got := strings.Fields(string(out[:n])); len(got) != 2 || got[1] != "1" {
			t.Errorf("process %d: %q, want NoNewPrivs 1", i, out[:n])
		}
	}
	if b, _ := os.ReadFile("/proc/thread-self/status"); strings.Contains(string(b), "NoNewPrivs:\t1") {
		t.Error("the caller's thread has no_new_privs")
	}
}

// TestPipe: the agent's end of a pipe is non-blocking (Go's poller) and
// the child's is blocking, as a process's stdio; both close on exec.
func TestPipe(t *testing.T) {
	for _, ownRead := range []bool{true, false} {
		own, child, err := pipe(ownRead)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []*os.File{own, child} {
			var fl, fd int
			control(f, func(n int) error { // not Fd, which makes f blocking
				fl, _ = unix.FcntlInt(uintptr(n), unix.F_GETFL, 0)
				fd, _ = unix.FcntlInt(uintptr(n), unix.F_GETFD, 0)
				return nil
			})
			if wantNB := f == own; (fl&unix.O_NONBLOCK != 0) != wantNB || fd&unix.FD_CLOEXEC == 0 {
				t.Errorf("ownRead %v, %s: flags %#x, fd flags %#x; want O_NONBLOCK %v and FD_CLOEXEC", ownRead, f.Name(), fl, fd, wantNB)
			}
		}
		r, w := own, child
		if !ownRead {
			r, w = child, own
		}
		w.Write([]byte("x"))
		w.Close()
		if b, err := io.ReadAll(r); string(b) != "x" || err != nil {
			t.Errorf("ownRead %v: read %q, %v", ownRead, b, err)
		}
		r.Close()
	}
}
