package guest

import (
	"github.com/c2vm/c2vm/internal/safeio"

	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

func mount(m *plan.Mount) error {
	if err := os.MkdirAll(m.Target, 0o755); err != nil {
		return err
	}
	flags, data := mountFlags(m.Options)
	if err := unix.Mount(m.Source, m.Target, m.FSType, flags, data); err != nil {
		return err
	}
	// A bind mount ignores MS_RDONLY and friends: they take a remount.
	if flags&unix.MS_BIND != 0 && flags&(unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC) != 0 {
		return unix.Mount("", m.Target, "", flags|unix.MS_REMOUNT, "")
	}
	return nil
}

func move(from, to string) error {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	return unix.Mount(from, to, "", unix.MS_MOVE, "")
}

// loadModule loads a kernel module with finit_module(2); one loaded
// already is fine.
func loadModule(path string) error {
	f, err := os.Open(path)
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

func writeFile(w *plan.WriteFile) error {
	if w.IfMissing {
		if fi, err := os.Stat(w.Path); err == nil && fi.Size() > 0 {
			return nil
		}
	}
	return os.WriteFile(w.Path, []byte(w.Data), os.FileMode(w.Mode))
}

const binfmtMisc = "/proc/sys/fs/binfmt_misc"

// registerBinfmt writes a registration string to binfmt_misc; an entry
// registered already is fine.
func registerBinfmt(line string) error {
	f, err := os.OpenFile(binfmtMisc+"/register", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write([]byte(line))
	switch {
	case err == nil, errors.Is(err, unix.EEXIST):
		return nil
	case errors.Is(err, unix.EACCES):
		// With flag F the kernel opens the interpreter now, as for exec.
		return fmt.Errorf("%w (the interpreter must exist and be executable, on a mount without noexec)", err)
	}
	return err
}

// binfmtD registers the entries of binfmt.d files of the current root,
// mounting binfmt_misc when it is not.
func binfmtD(files []string) error {
	var entries []plan.Binfmt
	for _, f := range files {
		b, err := safeio.ReadFile(f, 1<<20)
		if err != nil {
			return err
		}
		es, err := plan.ParseBinfmtD(b)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		entries = append(entries, es...)
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := os.Stat(binfmtMisc + "/register"); err != nil {
		if err := mount(&plan.Mount{Source: "binfmt_misc", Target: binfmtMisc, FSType: "binfmt_misc"}); err != nil {
			return fmt.Errorf("mounting binfmt_misc: %w", err)
		}
	}
	for _, e := range entries {
		if err := registerBinfmt(e.Line()); err != nil {
			return fmt.Errorf("%s: %w", e.Name, err)
		}
	}
	return nil
}

// switchRoot moves dir over / and chroots into it (util-linux
// switch_root's method; the initramfs stays in memory, unreachable).
func switchRoot(dir string) error {
	if err := unix.Chdir(dir); err != nil {
		return err
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return err
	}
	if err := unix.Chroot("."); err != nil {
		return err
	}
	return unix.Chdir("/")
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
