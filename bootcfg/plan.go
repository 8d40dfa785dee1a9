package bootcfg

import (
	"fmt"
	"path"
	"strings"

	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/bootcfg/wire"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// PlanOptions shape the boot plan; the zero value of each is the default.
type PlanOptions struct {
	FSType      string   // rootfs.img's filesystem: ext4, squashfs, erofs
	Modules     []string // module paths in the initramfs, dependencies first
	Binfmt      []plan.Binfmt
	BinfmtD     []string // the image's binfmt.d files (BinfmtDFiles)
	WaitSeconds int      // how long the init waits for the root disk; 0 = 10
	// Network is the mode the VM boots with: plan.NetUser (the default:
	// QEMU's and libvirt's user-mode network), plan.NetDHCP or plan.NetNone.
	Network string
	Exposed []plan.Port // the image's EXPOSEd ports, for the record
	// StopSignal is the image's STOPSIGNAL ("" = SIGTERM); StopTimeout
	// the seconds before SIGKILL (0 = plan.DefaultStopTimeout).
	StopSignal  string
	StopTimeout int
	// Volumes are the data disks, mounted in the container's root before
	// the process runs and unmounted after it.
	Volumes []Volume
	// Verity, when set, checks the root disk with dm-verity: its
	// DataBlocks, HashOffset, RootHash and Salt; rootSteps fills the rest.
	Verity *plan.VerityRoot
}

// User-mode networking's fixed addresses (QEMU's slirp and passt, and
// libvirt's user interface, all default to them).
const (
	userAddress = "10.0.2.15/24"
	userGateway = "10.0.2.2"
	userDNS     = "10.0.2.3"
)

// Where the init assembles the container's root before switching to it.
const (
	lowerDir = "/run/c2vm/lower" // the root disk, read-only
	rwDir    = "/run/c2vm/rw"    // the tmpfs holding the overlay's upper layer
	newRoot  = "/newroot"
)

// Plan builds boot.json: the init's whole boot, in order, from the
// runtime spec. Each part below is one stage of the boot.
func Plan(spec *specs.Spec, o PlanOptions) (*plan.Plan, error) {
	run, err := runStep(spec, o)
	if err != nil {
		return nil, err
	}
	mountVols, unmountVols := volumeSteps(o.Volumes)
	var steps []plan.Step
	for _, part := range [][]plan.Step{
		initMounts(),
		modules(o.Modules),
		// Once its drivers are loaded, while /dev and /sys are the init's.
		{optional(&plan.PowerButton{})},
		rootSteps(o),
		binfmtSteps(o.Binfmt),
		containerView(spec),
		mountVols,
		afterSwitch(spec, o),
		// Ready to serve exec when run starts the process; absent port, no cost.
		{optional(&plan.Agent{Port: wire.PortName})},
		{run},
		unmountVols,
	} {
		steps = append(steps, part...)
	}
	return &plan.Plan{Version: plan.Version, Steps: steps}, nil
}

// runStep runs the process, stopped on the power button as docker stop
// does.
func runStep(spec *specs.Spec, o PlanOptions) (plan.Step, error) {
	sig, err := plan.ParseSignal(o.StopSignal)
	if err != nil {
		return plan.Step{}, fmt.Errorf("image STOPSIGNAL: %w", err)
	}
	timeout := o.StopTimeout
	if timeout == 0 {
		timeout = plan.DefaultStopTimeout
	}
	if timeout < 0 {
		return plan.Step{}, fmt.Errorf("stop timeout %ds: negative", timeout)
	}
	return step(&plan.Run{Process: *spec.Process, StopSignal: sig, StopTimeout: timeout}), nil
}

func step(a plan.Action) plan.Step     { return plan.Step{Action: a} }
func optional(a plan.Action) plan.Step { return plan.Step{Action: a, Optional: true} }

// initMounts are the init's own: the kernel's interfaces and a /run, then
// the kernel arguments (which need /proc).
func initMounts() []plan.Step {
	return []plan.Step{
		step(&plan.Mount{Source: "proc", Target: "/proc", FSType: "proc", Options: []string{"nosuid", "noexec", "nodev"}}),
		step(&plan.Cmdline{}),
		step(&plan.Mount{Source: "sysfs", Target: "/sys", FSType: "sysfs", Options: []string{"nosuid", "noexec", "nodev"}}),
		step(&plan.Mount{Source: "devtmpfs", Target: "/dev", FSType: "devtmpfs", Options: []string{"nosuid", "mode=0755"}}),
		step(&plan.Mount{Source: "tmpfs", Target: "/run", FSType: "tmpfs", Options: []string{"nosuid", "nodev", "mode=0755"}}),
	}
}

// modules load in order; each is optional because some only bind to their
// hardware (xen-blkfront outside Xen says ENODEV): a missing disk is
// reported by FindRoot with the modules that failed.
func modules(paths []string) []plan.Step {
	var out []plan.Step
	for _, p := range paths {
		out = append(out, optional(&plan.LoadModule{Path: "/" + strings.TrimPrefix(p, "/")}))
	}
	return out
}

// rootSteps mount the root disk read-only (through dm-verity when the
// options say so) under a tmpfs overlay: the
// container may write, and every boot starts from the image.
func rootSteps(o PlanOptions) []plan.Step {
	wait := o.WaitSeconds
	if wait == 0 {
		wait = 10
	}
	find := []plan.Step{step(&plan.FindRoot{FSType: o.FSType, WaitSeconds: wait, Target: lowerDir})}
	if o.Verity != nil {
		v := *o.Verity
		v.FSType, v.WaitSeconds, v.Name = o.FSType, wait, plan.VerityRootName
		find = []plan.Step{step(&v), step(&plan.Mount{Source: v.Device(), Target: lowerDir, FSType: o.FSType, Options: []string{"ro"}})}
	}
	return append(find,
		step(&plan.Mount{Source: "tmpfs", Target: rwDir, FSType: "tmpfs", Options: []string{"mode=0755"}}),
		step(&plan.Mkdir{Path: rwDir + "/upper", Mode: 0o755}),
		step(&plan.Mkdir{Path: rwDir + "/work", Mode: 0o755}),
		step(&plan.Mount{Source: "overlay", Target: newRoot, FSType: "overlay",
			Options: []string{"lowerdir=" + lowerDir, "upperdir=" + rwDir + "/upper", "workdir=" + rwDir + "/work"}}),
	)
}

// binfmtSteps register the emulators c2vm put into the initramfs, before
// the switch: flag F opens each interpreter now, from the initramfs.
func binfmtSteps(entries []plan.Binfmt) []plan.Step {
	if len(entries) == 0 {
		return nil
	}
	out := []plan.Step{step(&plan.Mount{Source: "binfmt_misc", Target: "/proc/sys/fs/binfmt_misc", FSType: "binfmt_misc"})}
	for _, e := range entries {
		out = append(out, step(&plan.RegisterBinfmt{Binfmt: e}))
	}
	return out
}

// containerView mounts what the container sees inside the new root (the
// spec's mounts, containerd's defaults for those it lacks, devtmpfs in
// place of a /dev tmpfs as a VM has real devices), writes the hostname
// files and switches to it.
func containerView(spec *specs.Spec) []plan.Step {
	out := []plan.Step{step(&plan.Move{From: "/dev", To: newRoot + "/dev"})}
	for _, m := range ContainerMounts(spec.Mounts) {
		a := &plan.Mount{Source: m.Source, Target: newRoot + m.Destination, FSType: m.Type, Options: m.Options}
		if bestEffortFS[m.Type] {
			out = append(out, optional(a))
		} else {
			out = append(out, step(a))
		}
	}
	host := spec.Hostname
	// The image's own file wins; /etc may be absent (a scratch image).
	// /etc/hosts and /etc/resolv.conf come with the network.
	out = append(out, optional(&plan.WriteFile{Path: newRoot + "/etc/hostname", Data: host + "\n", Mode: 0o644, IfMissing: true}))
	return append(out, step(&plan.Hostname{Name: host}), step(&plan.SwitchRoot{Path: newRoot}))
}

// bestEffortFS are mount types a kernel may lack without the container
// missing anything it can count on.
var bestEffortFS = map[string]bool{"mqueue": true, "cgroup": true, "cgroup2": true}

// afterSwitch runs inside the container's root: the network (its files
// land in the container's /etc), the image's binfmt.d entries, then the
// spec's masked and read-only paths (as runc applies them, after its
// mounts).
func afterSwitch(spec *specs.Spec, o PlanOptions) []plan.Step {
	out := []plan.Step{step(&plan.Shares{}), networkStep(spec.Hostname, o)}
	if len(o.BinfmtD) > 0 {
		out = append(out, step(&plan.BinfmtD{Files: o.BinfmtD}))
	}
	if l := spec.Linux; l != nil {
		for _, p := range l.MaskedPaths {
			out = append(out, step(&plan.MaskPath{Path: p}))
		}
		for _, p := range l.ReadonlyPaths {
			out = append(out, step(&plan.ReadonlyPath{Path: p}))
		}
	}
	return out
}

// networkStep brings up the VM's network. It is optional: a network that
// does not come up (no card, no DHCP server) leaves the container running
// with loopback, as the failure is printed.
func networkStep(host string, o PlanOptions) plan.Step {
	mode := o.Network
	if mode == "" {
		mode = plan.NetUser
	}
	// virtio-net binds as its module loads: by now eth0 exists if the
	// VM has a card, so the wait only covers a slow hypervisor.
	n := &plan.Network{Mode: mode, Interface: "eth0", Hostname: host, WaitSeconds: 2, Exposed: o.Exposed}
	if mode == plan.NetUser {
		n.Address, n.Gateway, n.DNS = userAddress, userGateway, []string{userDNS}
	}
	return optional(n)
}

// ContainerMounts returns the mounts to make inside the new root, in
// order: the spec's own, minus /dev (devtmpfs is moved there instead),
// after containerd's defaults the spec lacks, parents before children.
func ContainerMounts(spec []specs.Mount) []specs.Mount {
	have := map[string]bool{}
	for _, m := range spec {
		have[path.Clean(m.Destination)] = true
	}
	var out []specs.Mount
	for _, m := range defaultMounts() {
		if !have[m.Destination] && m.Destination != "/dev" {
			out = append(out, m)
		}
	}
	for _, m := range spec {
		if path.Clean(m.Destination) != "/dev" {
			out = append(out, m)
		}
	}
	// Stable sort by depth keeps the spec's order among equals and puts
	// /sys before /sys/fs/cgroup whatever order the spec has.
	depth := func(d string) int { return strings.Count(strings.TrimSuffix(d, "/"), "/") }
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && depth(out[j].Destination) < depth(out[j-1].Destination); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// fsConfig is the kernel option each root filesystem format needs.
var fsConfig = map[string]string{"ext4": "CONFIG_EXT4_FS", "squashfs": "CONFIG_SQUASHFS", "erofs": "CONFIG_EROFS_FS"}

// Requirements lists the kernel config options a plan of these options
// needs, built in or as modules: the disk (virtio over PCI; Xen's block
// frontend is checked separately as a warning), the root filesystem, the
// overlay on top of it, and binfmt_misc when entries are registered.
func Requirements(o PlanOptions) []string {
	req := []string{"CONFIG_VIRTIO_PCI", "CONFIG_VIRTIO_BLK", "CONFIG_OVERLAY_FS", "CONFIG_TMPFS"}
	if o.Network != plan.NetNone {
		// The NIC, and packet sockets for the DHCP client.
		req = append(req, "CONFIG_VIRTIO_NET", "CONFIG_PACKET")
	}
	if c, ok := fsConfig[o.FSType]; ok {
		req = append(req, c)
	}
	if len(o.Binfmt) > 0 || len(o.BinfmtD) > 0 {
		req = append(req, "CONFIG_BINFMT_MISC")
	}
	if len(o.Volumes) > 0 {
		// The data disks are ext4 whatever the root's format.
		req = append(req, "CONFIG_EXT4_FS")
	}
	if o.Verity != nil {
		// The device-mapper core and its verity target.
		req = append(req, "CONFIG_BLK_DEV_DM", "CONFIG_DM_VERITY")
	}
	return req
}

// Optional lists kernel options the VM can use when the kernel has them:
// virtio over MMIO (Firecracker, QEMU's microvm), Xen's block and network
// frontends (xl.cfg), the power button's input device (ACPI's button and
// evdev; arm64 virt's GPIO key is read from the GPIO chardev), and host
// shares (virtiofs, 9p over virtio). Modules
// for them are included when present; their absence is no error.
func Optional() []string {
	return []string{"CONFIG_VIRTIO_MMIO", "CONFIG_XEN_BLKDEV_FRONTEND", "CONFIG_XEN_NETDEV_FRONTEND",
		"CONFIG_ACPI_BUTTON", "CONFIG_INPUT_EVDEV",
		// The exec agent's channel (virtio-serial).
		"CONFIG_VIRTIO_CONSOLE",
		// Host shares for c2vm run -v: whichever of the two the kernel has.
		"CONFIG_VIRTIO_FS", "CONFIG_NET_9P_VIRTIO", "CONFIG_9P_FS"}
}
