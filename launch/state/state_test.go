package state

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func testStore(t *testing.T) *Store {
	t.Helper()
	s, err := At(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCreateSameNameOnce: of many concurrent creates of one name (from
// several c2vm processes as from goroutines: the lock is a flock of a
// file each opens), exactly one wins; the others are told the name is in
// use by a running VM.
func TestCreateSameNameOnce(t *testing.T) {
	s := testStore(t)
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	locks := make([]*os.File, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, locks[i], errs[i] = s.Create(Record{Name: "web", Dir: "/vm"})
		}()
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
			defer locks[i].Close()
		case !errors.Is(err, ErrNameInUse) || !strings.Contains(err.Error(), "web is taken by a running VM"):
			t.Errorf("create %d: %v, want the name in use", i, err)
		}
	}
	if won != 1 {
		t.Fatalf("%d creates of one name won, want 1", won)
	}
}

// TestLifecycle: a VM is running while its lock is held, exited (with
// the supervisor's loss named) once it is dropped, then removable; its
// name is taken until then.
func TestLifecycle(t *testing.T) {
	s := testStore(t)
	r, lock, err := s.Create(Record{Name: "db", Dir: "/vm"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != Starting {
		t.Errorf("status %q, want starting", r.Status)
	}
	if err := s.Update("db", func(r *Record) { r.Status = Running }); err != nil {
		t.Fatal(err)
	}
	if p, err := s.AgentSocket("db"); err != nil || p != filepath.Join(s.dir, "db", AgentSocket) {
		t.Errorf("AgentSocket: %q, %v", p, err)
	}
	if err := s.Remove("db"); !errors.Is(err, ErrRunning) || !strings.Contains(err.Error(), "VM db is running") {
		t.Errorf("Remove of a running VM: %v", err)
	}
	lock.Close() // the supervisor dies without recording a status
	got, err := s.Get("db")
	if err != nil || got.Status != Exited || got.ExitCode != nil || got.Finished.IsZero() {
		t.Errorf("after the supervisor's death: %+v, %v; want exited, no code", got, err)
	}
	if _, _, err := s.Create(Record{Name: "db"}); !errors.Is(err, ErrNameInUse) || !strings.Contains(err.Error(), "exited VM (c2vm rm db)") {
		t.Errorf("create over an exited VM: %v", err)
	}
	if _, err := s.AgentSocket("db"); !errors.Is(err, ErrNotRunning) || !strings.HasPrefix(err.Error(), "VM db is not running (exited (unknown) ") {
		t.Errorf("AgentSocket of an exited VM: %v", err)
	}
	if err := s.Remove("db"); err != nil || !s.removed("db") {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := s.Get("db"); !errors.Is(err, ErrNoSuchVM) || err.Error() != "no such VM: db" {
		t.Errorf("Get after Remove: %v", err)
	}
}

func TestGeneratedNames(t *testing.T) {
	s := testStore(t)
	seen := map[string]bool{}
	for range 5 {
		r, lock, err := s.Create(Record{})
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Close()
		if seen[r.Name] || CheckName(r.Name) != nil || !strings.Contains(r.Name, "_") {
			t.Errorf("generated name %q: repeated or invalid", r.Name)
		}
		seen[r.Name] = true
	}
}

// TestGeneratedNameTaken: a generated name in use is generated again.
func TestGeneratedNameTaken(t *testing.T) {
	s := testStore(t)
	gen := generateName
	defer func() { generateName = gen }()
	generateName = func(retry int) string { return []string{"a_b", "a_b", "c_d"}[min(retry, 2)] }
	if _, l, err := s.Create(Record{}); err != nil {
		t.Fatal(err)
	} else {
		defer l.Close()
	}
	r, l, err := s.Create(Record{})
	if err != nil || r.Name != "c_d" {
		t.Fatalf("second generated name %q, %v; want c_d", r.Name, err)
	}
	l.Close()
}

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"web", true}, {"my-vm_1.2", true}, {"A", true},
		{"", false}, {"..", false}, {".hidden", false}, {"a/b", false}, {"-x", false},
		{"a b", false}, {strings.Repeat("x", 65), false},
	} {
		if err := CheckName(tc.name); (err == nil) != tc.ok {
			t.Errorf("CheckName(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
	if _, err := testStore(t).Get("../etc"); !errors.Is(err, ErrNoSuchVM) {
		t.Errorf("Get of a path: %v", err)
	}
}

func TestStatusText(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	code := func(n int) *int { return &n }
	for _, tc := range []struct {
		r    Record
		want string
	}{
		{Record{Status: Running}, "running"},
		{Record{Status: Starting}, "starting"},
		{Record{Status: Exited, ExitCode: code(0), Finished: now.Add(-3 * time.Minute)}, "exited (0) 3 minutes ago"},
		{Record{Status: Exited, ExitCode: code(137), Finished: now.Add(-90 * time.Minute)}, "exited (137) 2 hours ago"},
		{Record{Status: Exited, Finished: now.Add(-5 * time.Second)}, "exited (unknown) 5 seconds ago"},
	} {
		if got := tc.r.StatusText(now); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.r, got, tc.want)
		}
	}
}
