package detach

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/launch"
	"github.com/c2vm/c2vm/launch/state"
	"github.com/c2vm/c2vm/vmdir"
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

// TestStartNeedsAgent: a VM whose boot plan has no agent step is refused
// at once (run -d would wait for an answer that never comes).
func TestStartNeedsAgent(t *testing.T) {
	dir := t.TempDir()
	p := &plan.Plan{Version: plan.Version, Steps: []plan.Step{{Action: &plan.Run{}}}}
	f, err := os.Create(filepath.Join(dir, vmdir.BootPlan))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Write(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	s := testStore(t)
	_, err = Start(context.Background(), s, Options{Name: "old", Launch: launch.Options{Dir: dir},
		Supervisor: []string{"/bin/false"}})
	if !errors.Is(err, ErrNoAgent) {
		t.Fatalf("Start: %v, want ErrNoAgent", err)
	}
	if _, err := s.Get("old"); !errors.Is(err, state.ErrNoSuchVM) {
		t.Errorf("a refused VM was recorded: %v", err)
	}
}

// TestSpecRoundTrip: every run flag reaches the supervisor (run.json
// keeps each option but the writers and the start hook).
func TestSpecRoundTrip(t *testing.T) {
	s := testStore(t)
	if _, lock, err := s.Create(state.Record{Name: "spec"}); err != nil {
		t.Fatal(err)
	} else {
		defer lock.Close()
	}
	o := launch.Options{Dir: "/vm", Timeout: time.Hour, Accel: "tcg", Memory: 256, CPUs: 2, Debug: true,
		Cmd: []string{"sh", "-c", "echo hi"}, QEMU: "/usr/bin/qemu", StopTimeout: 3 * time.Second,
		Publish:    []plan.Forward{{HostIP: "127.0.0.1", HostPort: 8080, GuestPort: 80, Proto: "tcp"}},
		PublishAll: true, NoPublish: true, Shares: []launch.Share{{Host: "/srv", Guest: "/data", ReadOnly: true}},
		QMPSocket: "/q", AgentSocket: "/a", IdleTimeout: time.Minute}
	if err := writeSpec(s, "spec", o); err != nil {
		t.Fatal(err)
	}
	got, err := readSpec(s, "spec")
	if err != nil || !reflect.DeepEqual(got, o) {
		t.Errorf("read back %+v, %v; want %+v", got, err, o)
	}
}
