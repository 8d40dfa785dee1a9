package convert

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/c2vm/c2vm/bootcfg"
	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/initramfs"
)

// qemuArch names a GOARCH as qemu-user does (qemu-<name>-static).
var qemuArch = map[string]string{
	"amd64": "x86_64", "386": "i386", "arm64": "aarch64", "arm": "arm",
	"riscv64": "riscv64", "ppc64le": "ppc64le", "s390x": "s390x",
}

// elfMachine is the ELF e_machine a binary for the VM's arch must have.
var elfMachine = map[string]elf.Machine{
	"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "riscv64": elf.EM_RISCV,
	"386": elf.EM_386, "arm": elf.EM_ARM, "ppc64le": elf.EM_PPC64, "s390x": elf.EM_S390,
}

// binfmt returns the binfmt_misc entries the boot plan registers and the
// interpreters that go into the initramfs: one for the image's arch when it
// differs from the VM's, plus one per --binfmt arch.
func (c *conversion) binfmt(vmArch string) ([]plan.Binfmt, []initramfs.File, error) {
	var arches []string
	if img := c.img.Platform.Architecture; img != vmArch {
		arches = append(arches, img)
	}
	for _, a := range c.o.Binfmt {
		if a = normalizeArch(strings.TrimSpace(a)); a != "" && a != vmArch && !contains(arches, a) {
			arches = append(arches, a)
		}
	}
	var entries []plan.Binfmt
	var files []initramfs.File
	for _, a := range arches {
		data, err := c.interpreter(a, vmArch)
		if err != nil {
			return nil, nil, err
		}
		p := "c2vm/qemu-" + qemuArch[a] + "-static"
		e, err := bootcfg.BinfmtFor(a, "/"+p)
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, e)
		files = append(files, initramfs.File{Path: p, Mode: 0o755, Data: data})
	}
	return entries, files, nil
}

// interpreter finds a static qemu-user binary that runs arch's programs on
// vmArch: --binfmt-interpreter for the image's own arch, else one the image
// carries.
func (c *conversion) interpreter(arch, vmArch string) ([]byte, error) {
	q, ok := qemuArch[arch]
	if !ok {
		return nil, fmt.Errorf("binfmt: unknown architecture %q", arch)
	}
	var data []byte
	var from string
	var err error
	if c.o.BinfmtInterpreter != "" && arch == c.img.Platform.Architecture {
		from = c.o.BinfmtInterpreter
		data, err = os.ReadFile(from)
	} else {
		data, from, err = c.imageInterpreter(q)
	}
	if err != nil {
		return nil, fmt.Errorf("binfmt: the image is %s and the VM %s, and no qemu-%s interpreter was found (give --binfmt-interpreter /usr/bin/qemu-%s-static from Debian's qemu-user-static): %w", arch, vmArch, q, q, err)
	}
	if err := checkStaticELF(data, vmArch); err != nil {
		return nil, fmt.Errorf("binfmt interpreter %s: %w", from, err)
	}
	return data, nil
}

func (c *conversion) imageInterpreter(q string) ([]byte, string, error) {
	for _, p := range []string{"usr/bin/qemu-" + q + "-static", "usr/libexec/qemu-binfmt/" + q + "-binfmt-P", "usr/bin/qemu-" + q} {
		if b, err := fs.ReadFile(c.tree.FS(), p); err == nil {
			return b, "/" + p, nil
		}
	}
	return nil, "", fs.ErrNotExist
}

// checkStaticELF makes sure a binary put into the initramfs runs there: an
// ELF for the VM's machine with no dynamic loader.
func checkStaticELF(b []byte, goarch string) error {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("not an ELF binary: %w", err)
	}
	defer f.Close()
	if want, ok := elfMachine[goarch]; ok && f.Machine != want {
		return fmt.Errorf("built for %s, the VM is %s (%s)", f.Machine, goarch, want)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp, _ := io.ReadAll(p.Open())
			return fmt.Errorf("dynamically linked (interpreter %s); use a static build", strings.TrimRight(string(interp), "\x00"))
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
