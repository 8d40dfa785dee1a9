package guest

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Step is one action of the boot, able to run and to describe itself.
type Step interface {
	fmt.Stringer
	Run() error
}

// Mount mounts a filesystem, creating the target directory.
type Mount struct {
	Source, Target, FSType string
	Flags                  uintptr
	Data                   string
}

func (m Mount) String() string {
	return fmt.Sprintf("mount %s (%s) on %s %s", m.Source, m.FSType, m.Target, m.Data)
}

// Run implements Step.
func (m Mount) Run() error {
	if err := os.MkdirAll(m.Target, 0o755); err != nil {
		return err
	}
	return unix.Mount(m.Source, m.Target, m.FSType, m.Flags, m.Data)
}

// Move moves a mount (MS_MOVE).
type Move struct{ From, To string }

func (m Move) String() string { return fmt.Sprintf("move mount %s to %s", m.From, m.To) }

// Run implements Step.
func (m Move) Run() error {
	if err := os.MkdirAll(m.To, 0o755); err != nil {
		return err
	}
	return unix.Mount(m.From, m.To, "", unix.MS_MOVE, "")
}

// LoadModule loads a kernel module with finit_module(2).
type LoadModule struct{ Path string }

func (l LoadModule) String() string { return "load module " + l.Path }

// Run implements Step; a module already loaded is fine.
func (l LoadModule) Run() error {
	f, err := os.Open(l.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), "", 0)
	switch err {
	case unix.EEXIST:
		return nil
	case unix.ENOENT:
		// finit_module(2) says ENOENT for an unresolved symbol: the
		// file was opened fine, a dependency was not loaded before it.
		return fmt.Errorf("unknown symbol (a module it depends on is not loaded first; see dmesg): %w", err)
	}
	return err
}

// WriteFile writes a file when it does not exist yet.
type WriteFile struct {
	Path, Data string
	Always     bool
}

func (w WriteFile) String() string { return "write " + w.Path }

// Run implements Step.
func (w WriteFile) Run() error {
	if !w.Always {
		if fi, err := os.Stat(w.Path); err == nil && fi.Size() > 0 {
			return nil
		}
	}
	return os.WriteFile(w.Path, []byte(w.Data), 0o644)
}

// RegisterBinfmt writes a registration string to binfmt_misc.
type RegisterBinfmt struct{ Line string }

func (r RegisterBinfmt) String() string { return "register binfmt_misc " + r.Line }

// Run implements Step; an entry registered already is fine.
func (r RegisterBinfmt) Run() error {
	f, err := os.OpenFile("/proc/sys/fs/binfmt_misc/register", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write([]byte(r.Line))
	switch {
	case err == nil, errors.Is(err, unix.EEXIST):
		return nil
	case errors.Is(err, unix.EACCES):
		// With flag F the kernel opens the interpreter now, as for exec.
		return fmt.Errorf("%w (the interpreter must exist and be executable, on a mount without noexec)", err)
	}
	return err
}

// mountFlags splits fstab-style options into mount(2) flags and data.
func mountFlags(opts []string) (uintptr, string) {
	names := map[string]uintptr{
		"ro": unix.MS_RDONLY, "nosuid": unix.MS_NOSUID, "nodev": unix.MS_NODEV,
		"noexec": unix.MS_NOEXEC, "sync": unix.MS_SYNCHRONOUS, "noatime": unix.MS_NOATIME,
		"nodiratime": unix.MS_NODIRATIME, "relatime": unix.MS_RELATIME, "strictatime": unix.MS_STRICTATIME,
		"bind": unix.MS_BIND, "rbind": unix.MS_BIND | unix.MS_REC,
	}
	var flags uintptr
	var data []string
	for _, o := range opts {
		if f, ok := names[o]; ok {
			flags |= f
		} else if o != "rw" && o != "defaults" {
			data = append(data, o)
		}
	}
	return flags, strings.Join(data, ",")
}
