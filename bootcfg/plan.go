package bootcfg

import (
	"path"
	"strings"

	"github.com/c2vm/c2vm/bootcfg/plan"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// PlanOptions shape the boot plan; the zero value of each is the default.
type PlanOptions struct {
	FSType      string   // rootfs.img's filesystem: ext4, squashfs, erofs
	Modules     []string // module paths in the initramfs, dependencies first
	Binfmt      []plan.Binfmt
	BinfmtD     []string // the image's binfmt.d files (BinfmtDFiles)
	WaitSeconds int      // how long the init waits for the root disk; 0 = 10
}

// Where the init assembles the container's root before switching to it.
const (
	lowerDir = "/run/c2vm/lower" // the root disk, read-only
	rwDir    = "/run/c2vm/rw"    // the tmpfs holding the overlay's upper layer
	newRoot  = "/newroot"
)

// Plan builds boot.json: the init's whole boot, in order, from the
// runtime spec. Each part below is one stage of the boot.
func Plan(spec *specs.Spec, o PlanOptions) *plan.Plan {
	var steps []plan.Step
	for _, part := range [][]plan.Step{
		initMounts(),
		modules(o.Modules),
		rootSteps(o),
		binfmtSteps(o.Binfmt),
		containerView(spec),
		afterSwitch(spec, o.BinfmtD),
	} {
		steps = append(steps, part...)
	}
	return &plan.Plan{Version: plan.Version, Steps: steps}
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

// rootSteps mount the root disk read-only under a tmpfs overlay: the
// container may write, and every boot starts from the image.
func rootSteps(o PlanOptions) []plan.Step {
	wait := o.WaitSeconds
	if wait == 0 {
		wait = 10
	}
	return []plan.Step{
		step(&plan.FindRoot{FSType: o.FSType, WaitSeconds: wait, Target: lowerDir}),
		step(&plan.Mount{Source: "tmpfs", Target: rwDir, FSType: "tmpfs", Options: []string{"mode=0755"}}),
		step(&plan.Mkdir{Path: rwDir + "/upper", Mode: 0o755}),
		step(&plan.Mkdir{Path: rwDir + "/work", Mode: 0o755}),
		step(&plan.Mount{Source: "overlay", Target: newRoot, FSType: "overlay",
			Options: []string{"lowerdir=" + lowerDir, "upperdir=" + rwDir + "/upper", "workdir=" + rwDir + "/work"}}),
	}
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
	// The image's own files win; /etc may be absent (a scratch image).
	for _, f := range []struct{ name, data string }{
		{"/etc/hostname", host + "\n"},
		{"/etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + host + "\n"},
		// QEMU's user-mode network puts its DNS at 10.0.2.3.
		{"/etc/resolv.conf", "nameserver 10.0.2.3\n"},
	} {
		out = append(out, optional(&plan.WriteFile{Path: newRoot + f.name, Data: f.data, Mode: 0o644, IfMissing: true}))
	}
	return append(out, step(&plan.Hostname{Name: host}), step(&plan.SwitchRoot{Path: newRoot}))
}

// bestEffortFS are mount types a kernel may lack without the container
// missing anything it can count on.
var bestEffortFS = map[string]bool{"mqueue": true, "cgroup": true, "cgroup2": true}

// afterSwitch runs inside the container's root: the image's binfmt.d
// entries, the spec's masked and read-only paths (as runc applies them,
// after its mounts), then the process.
func afterSwitch(spec *specs.Spec, binfmtD []string) []plan.Step {
	var out []plan.Step
	if len(binfmtD) > 0 {
		out = append(out, step(&plan.BinfmtD{Files: binfmtD}))
	}
	if l := spec.Linux; l != nil {
		for _, p := range l.MaskedPaths {
			out = append(out, step(&plan.MaskPath{Path: p}))
		}
		for _, p := range l.ReadonlyPaths {
			out = append(out, step(&plan.ReadonlyPath{Path: p}))
		}
	}
	return append(out, step(&plan.Run{Process: *spec.Process}))
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
	if c, ok := fsConfig[o.FSType]; ok {
		req = append(req, c)
	}
	if len(o.Binfmt) > 0 || len(o.BinfmtD) > 0 {
		req = append(req, "CONFIG_BINFMT_MISC")
	}
	return req
}

// Optional lists kernel options the VM can use when the kernel has them:
// virtio over MMIO (Firecracker, QEMU's microvm) and Xen's block frontend
// (xl.cfg). Modules for them are included when present; their absence is
// no error.
func Optional() []string {
	return []string{"CONFIG_VIRTIO_MMIO", "CONFIG_XEN_BLKDEV_FRONTEND"}
}
