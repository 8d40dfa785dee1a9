package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"golang.org/x/sys/unix"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

// Status is a VM's state, as ps shows it.
type Status string

// Statuses: starting until QEMU runs, running until it ends.
const (
	Starting Status = "starting"
	Running  Status = "running"
	Exited   Status = "exited"
)

// Record is what the store knows of one VM.
type Record struct {
	Name  string         `json:"name"`
	Dir   string         `json:"dir"`
	Arch  string         `json:"arch,omitempty"`
	Ports []plan.Forward `json:"ports,omitempty"`
	// Pid is the supervisor's process, QEMUPid its QEMU.
	Pid     int    `json:"pid,omitempty"`
	QEMUPid int    `json:"qemuPid,omitempty"`
	Status  Status `json:"status"`
	// ExitCode is what `c2vm run` would have exited with: the
	// container's status, or 3 when the VM reported none; nil when the
	// supervisor died before it could record one.
	ExitCode *int      `json:"exitCode,omitempty"`
	Error    string    `json:"error,omitempty"`
	Created  time.Time `json:"created"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
}

// StatusText is ps's STATUS: "running", "exited (0) 3 minutes ago".
func (r Record) StatusText(now time.Time) string {
	if r.Status != Exited {
		return string(r.Status)
	}
	code := "unknown"
	if r.ExitCode != nil {
		code = strconv.Itoa(*r.ExitCode)
	}
	return fmt.Sprintf("exited (%s) %s ago", code, strings.ToLower(units.HumanDuration(now.Sub(r.Finished))))
}

// PortsText is ps's PORTS, as Docker writes them:
// "127.0.0.1:8080->80/tcp, ...".
func (r Record) PortsText() string {
	var out []string
	for _, f := range r.Ports {
		ip := f.HostIP
		if strings.Contains(ip, ":") {
			ip = "[" + ip + "]"
		}
		out = append(out, fmt.Sprintf("%s:%d->%d/%s", ip, f.HostPort, f.GuestPort, f.Proto))
	}
	return strings.Join(out, ", ")
}

// Create records a new VM, starting, and returns its record (Name
// generated when empty) and the locked supervisor.lock: the VM counts as
// alive while that file, or a copy of its descriptor handed to the
// supervisor, stays open. A name in use, by a running or an exited VM
// (whose logs stay until rm, as Docker keeps a container's), is refused.
func (s *Store) Create(r Record) (Record, *os.File, error) {
	var lock *os.File
	err := s.locked(func() error {
		var err error
		if r.Name, err = s.pickName(r.Name); err != nil {
			return err
		}
		if err := os.Mkdir(s.Path(r.Name, ""), 0o700); err != nil {
			return fmt.Errorf("state of %s: %w", r.Name, err)
		}
		if lock, err = lockAlive(s.Path(r.Name, aliveLock)); err != nil {
			os.RemoveAll(s.Path(r.Name, ""))
			return err
		}
		r.Status, r.Created = Starting, s.now()
		return s.write(r)
	})
	if err != nil && lock != nil {
		lock.Close()
		lock = nil
	}
	return r, lock, err
}

// pickName checks a given name against those in use, or generates one
// that is free.
func (s *Store) pickName(name string) (string, error) {
	if name != "" {
		if err := CheckName(name); err != nil {
			return "", err
		}
		return name, s.free(name)
	}
	for retry := 0; ; retry++ {
		name = generateName(retry)
		if s.free(name) == nil {
			return name, nil
		}
	}
}

// free is nil when no VM is called name; a directory left without a
// record (a create that died) is removed.
func (s *Store) free(name string) error {
	if len(s.Path(name, AgentSocket)) >= len(unix.RawSockaddrUnix{}.Path) {
		return fmt.Errorf("%s: too long a path for a unix socket; use a shorter --name or %s", s.Path(name, AgentSocket), EnvDir)
	}
	r, err := s.get(name)
	switch {
	case errors.Is(err, ErrNoSuchVM):
		return os.RemoveAll(s.Path(name, ""))
	case err != nil:
		return err
	case r.Status == Exited:
		return fmt.Errorf("%w: %s is taken by an exited VM (c2vm rm %s)", ErrNameInUse, name, name)
	}
	return fmt.Errorf("%w: %s is taken by a running VM (c2vm stop %s)", ErrNameInUse, name, name)
}

// lockAlive creates and locks a VM's supervisor.lock.
func lockAlive(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("supervisor lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("supervisor lock: %w", err)
	}
	return f, nil
}

// Get returns name's record; a VM recorded as starting or running
// whose supervisor is gone is recorded as exited now.
func (s *Store) Get(name string) (Record, error) {
	if err := CheckName(name); err != nil {
		return Record{}, fmt.Errorf("%w: %s", ErrNoSuchVM, name)
	}
	var r Record
	err := s.locked(func() error {
		var err error
		r, err = s.get(name)
		return err
	})
	return r, err
}

// get is Get under the store's lock.
func (s *Store) get(name string) (Record, error) {
	r, err := s.read(name)
	if err != nil || r.Status == Exited || s.alive(name) {
		return r, err
	}
	r.Status, r.Finished = Exited, s.now()
	if r.Error == "" {
		r.Error = "the supervisor ended without recording a status"
	}
	return r, s.write(r)
}

// Update changes name's record with f.
func (s *Store) Update(name string, f func(*Record)) error {
	return s.locked(func() error {
		r, err := s.read(name)
		if err != nil {
			return err
		}
		f(&r)
		return s.write(r)
	})
}

// List returns every VM's record, the newest first.
func (s *Store) List() ([]Record, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	var out []Record
	for _, e := range ents {
		if !e.IsDir() || CheckName(e.Name()) != nil {
			continue
		}
		r, err := s.Get(e.Name())
		if errors.Is(err, ErrNoSuchVM) {
			continue // being created or removed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// Remove forgets name, which must have exited.
func (s *Store) Remove(name string) error {
	return s.locked(func() error {
		r, err := s.get(name)
		if err != nil {
			return err
		}
		if r.Status != Exited {
			return fmt.Errorf("VM %s %w: stop it first (c2vm stop %s) or use rm -f", name, ErrRunning, name)
		}
		return os.RemoveAll(s.Path(name, ""))
	})
}

// Running returns name's record when its VM runs, else an error saying
// why not: "no such VM: web", "VM web is not running (exited (0) 3
// minutes ago)".
func (s *Store) Running(name string) (Record, error) {
	r, err := s.Get(name)
	if err == nil && r.Status == Exited {
		err = fmt.Errorf("VM %s is %w (%s)", name, ErrNotRunning, r.StatusText(s.now()))
	}
	return r, err
}

// AgentSocket is the path of the agent socket of the running VM name
// (c2vm exec NAME).
func (s *Store) AgentSocket(name string) (string, error) {
	if _, err := s.Running(name); err != nil {
		return "", err
	}
	return s.Path(name, AgentSocket), nil
}

// removed is for tests: whether name's directory is gone.
func (s *Store) removed(name string) bool {
	_, err := os.Stat(s.Path(name, ""))
	return errors.Is(err, fs.ErrNotExist)
}
