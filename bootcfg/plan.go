package bootcfg

import (
	"github.com/c2vm/c2vm/bootcfg/plan"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// PlanOptions shape the boot plan; the zero value of each is the default.
type PlanOptions struct {
	FSType      string // rootfs.img's filesystem: ext4, squashfs, erofs
	Modules     []string
	Binfmt      []plan.Binfmt
	BinfmtD     []string
	WaitSeconds int // how long the init waits for the root disk; 0 = 10
}

// Plan builds boot.json around the runtime spec.
func Plan(spec *specs.Spec, o PlanOptions) *plan.Plan {
	wait := o.WaitSeconds
	if wait == 0 {
		wait = 10
	}
	return &plan.Plan{
		Version: plan.Version,
		Modules: o.Modules,
		Root:    plan.Root{FSType: o.FSType, WaitSeconds: wait},
		Binfmt:  o.Binfmt,
		BinfmtD: o.BinfmtD,
		Spec:    spec,
	}
}

// fsConfig is the kernel option each root filesystem format needs.
var fsConfig = map[string]string{"ext4": "CONFIG_EXT4_FS", "squashfs": "CONFIG_SQUASHFS", "erofs": "CONFIG_EROFS_FS"}

// Requirements lists the kernel config options the plan needs, built in or
// as modules: the disk (virtio over PCI and MMIO, Xen's block frontend is
// checked separately as a warning), the root filesystem, the overlay on
// top of it, and binfmt_misc when the plan registers entries.
func Requirements(p *plan.Plan) []string {
	req := []string{"CONFIG_VIRTIO_PCI", "CONFIG_VIRTIO_BLK", "CONFIG_OVERLAY_FS", "CONFIG_TMPFS"}
	if c, ok := fsConfig[p.Root.FSType]; ok {
		req = append(req, c)
	}
	if len(p.Binfmt) > 0 || len(p.BinfmtD) > 0 {
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
