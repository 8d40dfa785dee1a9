package plan

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func init() {
	register(
		func() Action { return &Mount{} },
		func() Action { return &Cmdline{} },
		func() Action { return &LoadModule{} },
		func() Action { return &FindRoot{} },
		func() Action { return &Mkdir{} },
		func() Action { return &Move{} },
		func() Action { return &WriteFile{} },
		func() Action { return &Hostname{} },
		func() Action { return &RegisterBinfmt{} },
		func() Action { return &BinfmtD{} },
		func() Action { return &SwitchRoot{} },
		func() Action { return &MaskPath{} },
		func() Action { return &ReadonlyPath{} },
		func() Action { return &Run{} },
		func() Action { return &Network{} },
		func() Action { return &PowerButton{} },
		func() Action { return &Shares{} },
	)
}

// Mount mounts a filesystem on Target, creating the directory. Options
// are fstab(5)-style: flags (ro, nosuid, nodev, noexec, bind, rbind, ...)
// and filesystem data (mode=0755, lowerdir=...) in one list.
type Mount struct {
	Source  string   `json:"source"`
	Target  string   `json:"target"`
	FSType  string   `json:"fstype,omitempty"`
	Options []string `json:"options,omitempty"`
}

func (*Mount) Op() string { return "mount" }
func (m *Mount) String() string {
	s := fmt.Sprintf("mount %s (%s) on %s", m.Source, m.FSType, m.Target)
	if len(m.Options) > 0 {
		s += " " + strings.Join(m.Options, ",")
	}
	return s
}

// Cmdline reads the c2vm.* kernel arguments (see Args) from /proc/cmdline:
// from here on c2vm.debug=1 prints each step, and the Run step applies
// c2vm.cmd and c2vm.env. It comes right after /proc is mounted.
type Cmdline struct{}

func (*Cmdline) Op() string     { return "cmdline" }
func (*Cmdline) String() string { return "read the c2vm.* kernel arguments from /proc/cmdline" }

// LoadModule loads a kernel module from the initramfs (finit_module(2)).
// Modules come in dependency order; an optional one that fails (a driver
// for hardware this hypervisor lacks) is noted and reported if the root
// disk is then not found.
type LoadModule struct {
	Path string `json:"path"`
}

func (*LoadModule) Op() string       { return "module" }
func (l *LoadModule) String() string { return "load module " + l.Path }

// FindRoot waits up to WaitSeconds for a block device holding an FSType
// filesystem (found by its superblock, whatever the device's name: vda,
// xvda, sda) and mounts it read-only on Target.
type FindRoot struct {
	FSType      string `json:"fstype"`
	WaitSeconds int    `json:"waitSeconds"`
	Target      string `json:"target"`
}

func (*FindRoot) Op() string { return "findroot" }
func (f *FindRoot) String() string {
	return fmt.Sprintf("mount the %s root disk (found by content, waiting up to %ds) read-only on %s", f.FSType, f.WaitSeconds, f.Target)
}

// Mkdir creates a directory and its parents.
type Mkdir struct {
	Path string `json:"path"`
	Mode uint32 `json:"mode"`
}

func (*Mkdir) Op() string       { return "mkdir" }
func (m *Mkdir) String() string { return fmt.Sprintf("mkdir %s (%#o)", m.Path, m.Mode) }

// Move moves a mount (MS_MOVE), creating the target directory.
type Move struct {
	From string `json:"from"`
	To   string `json:"to"`
}

func (*Move) Op() string       { return "move" }
func (m *Move) String() string { return "move mount " + m.From + " to " + m.To }

// WriteFile writes a file; with IfMissing only when there is none, or an
// empty one, at Path.
type WriteFile struct {
	Path      string `json:"path"`
	Data      string `json:"data"`
	Mode      uint32 `json:"mode"`
	IfMissing bool   `json:"ifMissing,omitempty"`
}

func (*WriteFile) Op() string { return "write" }
func (w *WriteFile) String() string {
	if w.IfMissing {
		return "write " + w.Path + " unless the image has one"
	}
	return "write " + w.Path
}

// Hostname sets the VM's hostname (sethostname(2)).
type Hostname struct {
	Name string `json:"name"`
}

func (*Hostname) Op() string       { return "hostname" }
func (h *Hostname) String() string { return "set hostname " + h.Name }

// RegisterBinfmt registers a binfmt_misc entry; binfmt_misc must be
// mounted at /proc/sys/fs/binfmt_misc.
type RegisterBinfmt struct {
	Binfmt
}

func (*RegisterBinfmt) Op() string       { return "binfmt" }
func (r *RegisterBinfmt) String() string { return "register binfmt_misc " + r.Line() }

// BinfmtD registers the entries of systemd-binfmt files (binfmt.d(5)) in
// the root the init runs in: after the switch, the image's own, whose
// interpreters live in the image. binfmt_misc is mounted if it is not.
type BinfmtD struct {
	Files []string `json:"files"`
}

func (*BinfmtD) Op() string { return "binfmtd" }
func (b *BinfmtD) String() string {
	return "register the binfmt.d entries of " + strings.Join(b.Files, " ")
}

// SwitchRoot makes Path the root: it is moved over / and chrooted into
// (util-linux switch_root's method; the initramfs stays in memory,
// unreachable).
type SwitchRoot struct {
	Path string `json:"path"`
}

func (*SwitchRoot) Op() string       { return "switchroot" }
func (s *SwitchRoot) String() string { return "switch root to " + s.Path }

// MaskPath hides a path of the container's root as runc does for the
// spec's maskedPaths: /dev/null bound over a file, an empty read-only
// tmpfs over a directory; a path that does not exist is skipped.
type MaskPath struct {
	Path string `json:"path"`
}

func (*MaskPath) Op() string       { return "mask" }
func (m *MaskPath) String() string { return "mask " + m.Path }

// ReadonlyPath makes a path read-only as runc does for the spec's
// readonlyPaths: a bind mount of itself, remounted read-only (nosuid,
// nodev, noexec kept); a path that does not exist is skipped.
type ReadonlyPath struct {
	Path string `json:"path"`
}

func (*ReadonlyPath) Op() string       { return "readonly" }
func (r *ReadonlyPath) String() string { return "make " + r.Path + " read-only" }

// Run runs the container process (the spec's, with the c2vm.cmd and
// c2vm.env overrides) and stays PID 1 until it exits: reaping zombies,
// forwarding SIGTERM and SIGINT. Its exit status is the VM's report. It
// applies the process's user, groups, cwd, env, capability bounding set,
// rlimits and noNewPrivileges. It is the last step.
//
// A press of the VM's power button (ACPI on x86, the GPIO key of QEMU's
// arm64 virt machine) — what `virsh shutdown`, `xl shutdown` and `c2vm
// run`'s SIGTERM send — stops it as `docker stop` does: StopSignal to the
// process, SIGKILL after StopTimeout seconds. When it has exited, the
// processes it left are stopped the same way, so that the steps after Run
// (unmounting volumes) find nothing busy.
type Run struct {
	Process     specs.Process `json:"process"`
	StopSignal  int           `json:"stopSignal"`  // signal number; 0 = SIGTERM
	StopTimeout int           `json:"stopTimeout"` // seconds; 0 = DefaultStopTimeout
}

// DefaultStopTimeout is Docker's grace period before SIGKILL.
const DefaultStopTimeout = 10

func (*Run) Op() string { return "run" }
func (r *Run) String() string {
	return fmt.Sprintf("run %q as %d:%d in %s", r.Process.Args, r.Process.User.UID, r.Process.User.GID, r.Process.Cwd)
}

// Network modes.
const (
	NetUser = "user" // static: QEMU/libvirt user-mode networking's fixed addresses
	NetDHCP = "dhcp" // a bridge or tap (Xen vif, Firecracker, libvirt network)
	NetNone = "none" // loopback only
)

// Network brings up lo and, unless Mode is none, Interface: a static
// address for user-mode networking, or one leased by DHCP. Then it writes
// /etc/resolv.conf and /etc/hosts into the root it runs in, unless the
// image has them (Docker's rule for files the image provides). The kernel
// argument c2vm.net=user|dhcp|none overrides Mode. A VM booted without a
// network card (the interface never appears) goes on with loopback only.
type Network struct {
	Mode        string   `json:"mode"`
	Interface   string   `json:"interface"`
	Address     string   `json:"address,omitempty"` // user: CIDR, "10.0.2.15/24"
	Gateway     string   `json:"gateway,omitempty"`
	DNS         []string `json:"dns,omitempty"`
	Hostname    string   `json:"hostname"`
	WaitSeconds int      `json:"waitSeconds"` // for the interface, and for a lease
	// Exposed are the image's EXPOSEd ports, recorded for the reader of
	// the plan: user-mode networking forwards them on the host side.
	Exposed []Port `json:"exposed,omitempty"`
}

func (*Network) Op() string { return "network" }
func (n *Network) String() string {
	switch n.Mode {
	case NetUser:
		return fmt.Sprintf("network: lo, %s %s via %s, DNS %s", n.Interface, n.Address, n.Gateway, strings.Join(n.DNS, " "))
	case NetDHCP:
		return fmt.Sprintf("network: lo, %s by DHCP", n.Interface)
	}
	return "network: lo only"
}

// PowerButton starts watching the VM's power button (ACPI's button input
// device on x86, the gpio-keys line of QEMU's arm64 virt machine), so that
// a press stops the container (see Run). It runs before the switch, while
// the init's /sys is not masked.
type PowerButton struct{}

func (*PowerButton) Op() string     { return "powerbutton" }
func (*PowerButton) String() string { return "watch the power button (a press stops the container)" }

// Shares mounts the host directories named on the kernel command line
// (c2vm.share=TAG,FSTYPE,PATH[,ro], which `c2vm run -v` writes) in the
// container's root: virtiofs or 9p over virtio, by tag. With none named
// it does nothing.
type Shares struct{}

func (*Shares) Op() string { return "shares" }
func (*Shares) String() string {
	return "mount the host shares the kernel command line names (c2vm.share=)"
}
