package convert

import (
	"bytes"
	"fmt"
	"io"

	"github.com/c2vm/c2vm/arch"
	"github.com/c2vm/c2vm/vmconfig"
)

// writeVMConfigs writes qemu.sh, libvirt.xml, xl.cfg and firecracker.json.
// Paths inside them name the final directory, not the temp one.
func (c *conversion) writeVMConfigs(a arch.Arch, vmlinux string) error {
	vm := vmconfig.VM{
		Name:    "c2vm-" + shortHex(c.img.ManifestDigest.Encoded()),
		Arch:    a.GOARCH,
		Vmlinux: vmlinux,
		Memory:  c.o.Memory,
		CPUs:    c.o.CPUs,
		Dir:     c.st.target,
		Kernel:  "kernel",
		Initrd:  "initramfs.img",
		Rootfs:  "rootfs.img",
		// Set before by c.forwards (writeBoot) and the volumes.
		Forwards:  c.manifest.Forwards,
		DataDisks: c.manifest.DataDisks,
		Verity:    c.verityDisk(),
		Cmdline:   c.manifest.KernelArgs(),
	}
	return writeTargets(c.st, vmconfig.All(), vm)
}

// writeTargets writes each hypervisor config for vm into the stage.
func writeTargets[VM any, T interface {
	Name() string
	Write(io.Writer, VM) error
}](st *stage, targets []T, vm VM) error {
	for _, t := range targets {
		var buf bytes.Buffer
		if err := t.Write(&buf, vm); err != nil {
			return fmt.Errorf("writing %s: %w", t.Name(), err)
		}
		if err := writeConfig(st.path(t.Name()), buf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

func shortHex(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}
