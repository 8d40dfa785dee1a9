package guest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

// newRoot is where the container's root is assembled before the switch.
const newRoot = "/newroot"

// initState carries what the boot learned, for the final report.
type initState struct {
	console    io.Writer
	debug      bool
	moduleErrs []string
}

func (s *initState) logf(format string, a ...any) {
	if s.debug {
		fmt.Fprintf(s.console, "c2vm-init: "+format+"\n", a...)
	}
}

// run executes steps in order, stopping at the first failure with the
// step named in the error.
func (s *initState) run(steps ...Step) error {
	for _, st := range steps {
		s.logf("%s", st)
		if err := st.Run(); err != nil {
			return fmt.Errorf("%s: %w", st, err)
		}
	}
	return nil
}

// Main is PID 1. It never returns: it powers the VM off.
func Main() {
	console := openConsole()
	s := &initState{console: console}
	status := StatusInitFailed
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(console, "%s%s\n", ErrorLine, oneLine(fmt.Sprintf("panic: %v: %s", r, debug.Stack())))
			status = StatusInitFailed
		}
		finish(console, status)
	}()
	code, err := s.boot()
	if err != nil {
		fmt.Fprintf(console, "c2vm-init: %v\n", err)
		fmt.Fprintf(console, "%s%s\n", ErrorLine, oneLine(err.Error()))
		status = StatusInitFailed
		return
	}
	status = code
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func openConsole() io.Writer {
	if f, err := os.OpenFile("/dev/console", os.O_WRONLY|unix.O_NOCTTY, 0); err == nil {
		return f
	}
	return os.Stdout
}

func (s *initState) boot() (int, error) {
	if err := s.run(
		Mount{Source: "proc", Target: "/proc", FSType: "proc", Flags: unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV},
		Mount{Source: "sysfs", Target: "/sys", FSType: "sysfs", Flags: unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV},
		Mount{Source: "devtmpfs", Target: "/dev", FSType: "devtmpfs", Flags: unix.MS_NOSUID, Data: "mode=0755"},
		Mount{Source: "tmpfs", Target: "/run", FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=0755"},
	); err != nil {
		return 0, err
	}
	if f, err := os.OpenFile("/dev/console", os.O_WRONLY|unix.O_NOCTTY, 0); err == nil {
		s.console = f
	}
	cmdlineBytes, _ := os.ReadFile("/proc/cmdline")
	cl, err := ParseCmdline(string(cmdlineBytes))
	if err != nil {
		return 0, err
	}
	s.debug = cl.Debug
	p, err := readPlan(plan.Path)
	if err != nil {
		return 0, err
	}
	for _, m := range p.Modules {
		if err := s.run(LoadModule{Path: "/" + m}); err != nil {
			// Some modules only bind to their hardware (xen-blkfront
			// outside Xen says ENODEV): go on, report if the disk is
			// not found.
			s.moduleErrs = append(s.moduleErrs, err.Error())
			s.logf("%v", err)
		}
	}
	if err := s.mountRoot(p); err != nil {
		return 0, err
	}
	if err := s.binfmt(p.Binfmt, "/proc"); err != nil {
		return 0, err
	}
	if err := s.switchRoot(p); err != nil {
		return 0, err
	}
	if err := s.binfmtD(p.BinfmtD); err != nil {
		return 0, err
	}
	proc := *p.Spec.Process
	if cl.Cmd != nil {
		proc.Args = cl.Cmd
	}
	proc.Env = MergeEnv(proc.Env, cl.Env)
	return s.runProcess(proc)
}

func readPlan(p string) (*plan.Plan, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading boot plan: %w", err)
	}
	var pl plan.Plan
	if err := json.Unmarshal(b, &pl); err != nil {
		return nil, fmt.Errorf("parsing boot plan %s: %w", p, err)
	}
	if pl.Version != plan.Version {
		return nil, fmt.Errorf("boot plan %s is version %d, this init reads %d", p, pl.Version, plan.Version)
	}
	if pl.Spec == nil || pl.Spec.Process == nil {
		return nil, errors.New("boot plan has no process to run")
	}
	return &pl, nil
}

// mountRoot finds the root disk, mounts it read-only, and assembles the
// overlay with a tmpfs upper layer at newRoot.
func (s *initState) mountRoot(p *plan.Plan) error {
	dev, err := s.findRoot(p.Root)
	if err != nil {
		return err
	}
	s.logf("root disk: %s (%s)", dev, p.Root.FSType)
	return s.run(
		Mount{Source: dev, Target: "/run/c2vm/lower", FSType: p.Root.FSType, Flags: unix.MS_RDONLY},
		Mount{Source: "tmpfs", Target: "/run/c2vm/rw", FSType: "tmpfs", Data: "mode=0755"},
		mkdirs{"/run/c2vm/rw/upper", "/run/c2vm/rw/work"},
		Mount{Source: "overlay", Target: newRoot, FSType: "overlay",
			Data: "lowerdir=/run/c2vm/lower,upperdir=/run/c2vm/rw/upper,workdir=/run/c2vm/rw/work"},
	)
}

type mkdirs []string

func (m mkdirs) String() string { return "mkdir " + strings.Join(m, " ") }

func (m mkdirs) Run() error {
	for _, d := range m {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// switchRoot mounts the container's view (spec mounts; devtmpfs in place
// of containerd's /dev tmpfs, as a VM has real devices), writes hostname
// files, and makes newRoot the root.
func (s *initState) switchRoot(p *plan.Plan) error {
	steps := []Step{Move{From: "/dev", To: newRoot + "/dev"}}
	for _, m := range ContainerMounts(p.Spec.Mounts) {
		flags, data := mountFlags(m.Options)
		steps = append(steps, Mount{Source: m.Source, Target: newRoot + m.Destination, FSType: m.Type, Flags: flags, Data: data})
	}
	host := p.Spec.Hostname
	steps = append(steps,
		WriteFile{Path: newRoot + "/etc/hostname", Data: host + "\n"},
		WriteFile{Path: newRoot + "/etc/hosts", Data: "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + host + "\n"},
		// QEMU's user-mode network puts its DNS at 10.0.2.3.
		WriteFile{Path: newRoot + "/etc/resolv.conf", Data: "nameserver 10.0.2.3\n"},
		hostname(host),
		chroot(newRoot),
	)
	for _, st := range steps {
		s.logf("%s", st)
		if err := st.Run(); err != nil {
			if isBestEffort(st) {
				s.logf("%s: %v (ignored)", st, err)
				continue
			}
			return fmt.Errorf("%s: %w", st, err)
		}
	}
	return nil
}

// isBestEffort: /etc may be missing or a mount type absent from the
// kernel (mqueue); neither stops the container.
func isBestEffort(st Step) bool {
	switch v := st.(type) {
	case WriteFile:
		return true
	case Mount:
		return v.FSType == "mqueue" || v.FSType == "cgroup" || v.FSType == "cgroup2"
	}
	return false
}

type hostname string

func (h hostname) String() string { return "set hostname " + string(h) }
func (h hostname) Run() error     { return unix.Sethostname([]byte(h)) }

type chroot string

func (c chroot) String() string { return "switch root to " + string(c) }

// Run moves the new root over / and chroots into it (util-linux
// switch_root's method; the initramfs stays in memory, unreachable).
func (c chroot) Run() error {
	if err := unix.Chdir(string(c)); err != nil {
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

func (s *initState) binfmt(entries []plan.Binfmt, proc string) error {
	if len(entries) == 0 {
		return nil
	}
	steps := []Step{Mount{Source: "binfmt_misc", Target: proc + "/sys/fs/binfmt_misc", FSType: "binfmt_misc"}}
	for _, e := range entries {
		steps = append(steps, RegisterBinfmt{Line: e.Line()})
	}
	return s.run(steps...)
}

// binfmtD registers the image's own binfmt.d entries (after the switch:
// their interpreters live in the container's root).
func (s *initState) binfmtD(files []string) error {
	var entries []plan.Binfmt
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("binfmt.d %s: %w", f, err)
		}
		es, err := plan.ParseBinfmtD(b)
		if err != nil {
			return fmt.Errorf("binfmt.d %s: %w", f, err)
		}
		entries = append(entries, es...)
	}
	if len(entries) == 0 {
		return nil
	}
	if _, err := os.Stat("/proc/sys/fs/binfmt_misc/register"); err != nil {
		if err := s.run(Mount{Source: "binfmt_misc", Target: "/proc/sys/fs/binfmt_misc", FSType: "binfmt_misc"}); err != nil {
			return err
		}
	}
	for _, e := range entries {
		if err := s.run(RegisterBinfmt{Line: e.Line()}); err != nil {
			return err
		}
	}
	return nil
}
