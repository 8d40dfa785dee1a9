package detach

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/launch"
	"github.com/c2vm/c2vm/launch/state"
)

func testStore(t *testing.T) *state.Store {
	t.Helper()
	s, err := state.At(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStartSupervisorFails: a supervisor that ends before QEMU ran,
// recording nothing, fails run -d with one line, and the name is free.
func TestStartSupervisorFails(t *testing.T) {
	s := testStore(t)
	_, err := Start(context.Background(), s, Options{Name: "web", Launch: launch.Options{Dir: "."},
		Supervisor: []string{"/bin/sh", "-c", "exit 1", "sh"}})
	if err == nil || err.Error() != "the supervisor ended without recording a status" {
		t.Fatalf("Start: %v", err)
	}
	if _, err := s.Get("web"); !errors.Is(err, state.ErrNoSuchVM) {
		t.Errorf("record left after a failed start: %v", err)
	}
}

// TestStartNotReady: a VM whose agent does not answer within the bound
// is killed (its supervisor, when QMP does not answer) and named.
func TestStartNotReady(t *testing.T) {
	s := testStore(t)
	start := time.Now()
	_, err := Start(context.Background(), s, Options{Name: "slow", Launch: launch.Options{Dir: "."},
		Supervisor: []string{"/bin/sh", "-c", "exec sleep 60", "sh"}, Ready: time.Second})
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "did not answer within 1s; VM slow killed") {
		t.Fatalf("Start: %v", err)
	}
	if rec, err := s.Get("slow"); err != nil || rec.Status != state.Exited {
		t.Errorf("after the bound: %+v, %v; want exited", rec, err)
	}
	t.Logf("%s", time.Since(start))
}

// TestStopExited: stop and kill of an exited VM do nothing; rm forgets it.
func TestStopExited(t *testing.T) {
	s := testStore(t)
	_, lock, err := s.Create(state.Record{Name: "done"})
	if err != nil {
		t.Fatal(err)
	}
	lock.Close()
	if err := Stop(context.Background(), s, "done", -1); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if err := Remove(s, "done", true); err != nil {
		t.Errorf("Remove -f: %v", err)
	}
	if err := Stop(context.Background(), s, "done", -1); !errors.Is(err, state.ErrNoSuchVM) {
		t.Errorf("Stop after rm: %v", err)
	}
}
