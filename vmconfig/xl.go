package vmconfig

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// XL writes xl.cfg for a Xen DomU (xl.cfg(5)): a PVH guest booting the
// kernel and initramfs directly, console on hvc0, the root disk as xvda,
// read-only, the data disks writable as xvdb..., one NIC on a bridge. PVH is the guest type on both x86_64 (CONFIG_XEN_PVH) and
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
	files, readOnly, err := vm.disks()
	if err != nil {
		return fmt.Errorf("xl.cfg: %w", err)
	}
	extra := KernelCmdline("hvc0", dhcpArg, vm.Cmdline)
	// target= last: xl reads the rest of the string as the path
	// (xl-disk-configuration.txt).
	var disks []string
	for i, name := range files {
		access := "rw"
		if i < readOnly {
			access = "ro"
		}
		disks = append(disks, strconv.Quote(fmt.Sprintf("format=raw, vdev=%s, access=%s, target=%s", diskDev("xvd", i), access, vm.path(name))))
	}
	_, err = fmt.Fprintf(w, `# Xen domain for %s (%s), written by c2vm: xl create -c xl.cfg
name = %s
type = "pvh"
kernel = %s
ramdisk = %s
extra = %s
memory = %d
vcpus = %d
disk = [ %s ]
# The NIC joins the host bridge %s (create it, or edit the name); the
# guest configures it by DHCP, so the bridge's network needs a DHCP
# server. Published ports are not applied here: forward them on the host.
vif = [ %s ]
on_poweroff = "destroy"
on_reboot = "destroy"
on_crash = "destroy"
`, vm.Name, vm.Arch, strconv.Quote(vm.Name), strconv.Quote(vm.path(vm.Kernel)), strconv.Quote(vm.path(vm.Initrd)),
		strconv.Quote(extra), vm.memory(), vm.cpus(), strings.Join(disks, ", "),
		XenBridge, strconv.Quote("bridge="+XenBridge))
	return err
}

// XenBridge is the host bridge xl.cfg's vif joins: xenbr0, the name the
// Xen Project's networking guides use.
const XenBridge = "xenbr0"
