package vmconfig

import (
	"fmt"
	"io"
	"strconv"
)

// XL writes xl.cfg for a Xen DomU (xl.cfg(5)): a PVH guest booting the
// kernel and initramfs directly, console on hvc0, the root disk as xvda,
// read-only. PVH is the guest type on both x86_64 (CONFIG_XEN_PVH) and
// Arm, where every guest is PVH.
type XL struct{}

// Name implements Target.
func (XL) Name() string { return "xl.cfg" }

// Write implements Target.
func (XL) Write(w io.Writer, vm VM) error {
	if vm.Arch != "amd64" && vm.Arch != "arm64" {
		_, err := fmt.Fprintf(w, "# Xen has no %s guests; no domain configuration.\n", vm.Arch)
		return err
	}
	extra := "console=hvc0 panic=-1"
	if vm.Cmdline != "" {
		extra += " " + vm.Cmdline
	}
	_, err := fmt.Fprintf(w, `# Xen domain for %s (%s), written by c2vm: xl create -c xl.cfg
name = %s
type = "pvh"
kernel = %s
ramdisk = %s
extra = %s
memory = %d
vcpus = %d
disk = [ %s ]
on_poweroff = "destroy"
on_reboot = "destroy"
on_crash = "destroy"
`, vm.Name, vm.Arch, strconv.Quote(vm.Name), strconv.Quote(vm.path(vm.Kernel)), strconv.Quote(vm.path(vm.Initrd)),
		strconv.Quote(extra), vm.memory(), vm.cpus(),
		strconv.Quote("format=raw, vdev=xvda, access=ro, target="+vm.path(vm.Rootfs)))
	return err
}
