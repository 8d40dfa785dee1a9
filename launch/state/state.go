// Package state keeps the per-user record of the VMs `c2vm run -d` started:
// one directory per VM name under Root, holding the VM's record (vm.json),
// its agent and QMP sockets, its console log and its supervisor's log.
//
//	s, err := state.Open()
//	lock, err := s.Create(state.Record{Name: "web", Dir: "/vms/web"})
//	// hand lock to the supervisor process; while it is held the VM is alive
//	sock, err := s.AgentSocket("web") // "no such VM: web", "VM web is not running (...)"
//
// Every change to a record happens under an exclusive flock of the store
// (.lock), and a record is replaced by rename, so concurrent c2vm commands
// see either the old or the new record. A VM is alive while its
// supervisor holds the flock of the VM's supervisor.lock, which the kernel
// drops when that process dies however it dies: a record that says running
// without a live supervisor is read as exited.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// EnvDir overrides the state directory (tests, several users' setups).
const EnvDir = "C2VM_STATE_DIR"

// Files in a VM's directory.
const (
	AgentSocket   = "agent.sock"
	QMPSocket     = "qmp.sock"
	ConsoleLog    = "console.log" // the container's output; rotated to console.log.1
	SupervisorLog = "c2vm.log"    // the supervisor's and the init's messages
	recordFile    = "vm.json"
	aliveLock     = "supervisor.lock"
)

// Errors a caller may test.
var (
	ErrNoSuchVM   = errors.New("no such VM")
	ErrNotRunning = errors.New("not running")
	ErrNameInUse  = errors.New("name in use")
	ErrRunning    = errors.New("is running")
)

// Root is the state directory: $C2VM_STATE_DIR, else
// $XDG_RUNTIME_DIR/c2vm (per user, cleared at logout or reboot, as the VMs
// are), else ~/.local/state/c2vm.
func Root() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "c2vm"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("state directory: %w", err)
	}
	return filepath.Join(home, ".local", "state", "c2vm"), nil
}

// Store is the state directory of one user.
type Store struct {
	dir string
	now func() time.Time
}

// Open opens the store at Root, creating it private to the user.
func Open() (*Store, error) {
	d, err := Root()
	if err != nil {
		return nil, err
	}
	return At(d)
}

// At opens the store in dir, creating it.
func At(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	return &Store{dir: dir, now: time.Now}, nil
}

// Path is a file in the directory of the VM name.
func (s *Store) Path(name, file string) string { return filepath.Join(s.dir, name, file) }

// locked runs f under the store's exclusive lock.
func (s *Store) locked(f func() error) error {
	l, err := os.OpenFile(filepath.Join(s.dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("state lock: %w", err)
	}
	defer l.Close()
	if err := unix.Flock(int(l.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("state lock: %w", err)
	}
	return f()
}

// alive reports whether the supervisor of name holds its lock.
func (s *Store) alive(name string) bool {
	f, err := os.Open(s.Path(name, aliveLock))
	if err != nil {
		return false
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	return errors.Is(err, unix.EWOULDBLOCK)
}

// read reads name's record as written, or ErrNoSuchVM.
func (s *Store) read(name string) (Record, error) {
	var r Record
	b, err := os.ReadFile(s.Path(name, recordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return r, fmt.Errorf("%w: %s", ErrNoSuchVM, name)
	}
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("record of %s: %w", name, err)
	}
	return r, nil
}

// write replaces name's record atomically.
func (s *Store) write(r Record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	p := s.Path(r.Name, recordFile)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("record of %s: %w", r.Name, err)
	}
	return os.Rename(tmp, p)
}
