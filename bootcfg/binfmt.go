package bootcfg

import (
	"github.com/c2vm/c2vm/internal/safeio"

	"fmt"
	"io/fs"
	"path"
	"sort"

	"github.com/c2vm/c2vm/arch"
	"github.com/c2vm/c2vm/bootcfg/plan"
)

// BinfmtFor returns the binfmt_misc entry that runs arch's ELF binaries
// with interpreter, with the magic and mask of the arch table. Flag F
// opens the interpreter at registration, so it keeps working after the
// switch to the container's root, where its initramfs path does not
// exist. P (preserve argv[0]) is left out: the plain qemu-*-static
// binaries take the program as their first argument. C (credentials) is
// left out as in Debian's entries: a setuid binary runs without privilege
// under emulation rather than giving the interpreter root.
func BinfmtFor(a arch.Arch, interpreter string) plan.Binfmt {
	return plan.Binfmt{Name: "qemu-" + a.User, Type: "M", Magic: []byte(a.BinfmtMagic), Mask: []byte(a.BinfmtMask), Interpreter: interpreter, Flags: "F"}
}

// Interpreter is a static qemu-user binary the initramfs carries.
type Interpreter struct {
	Path string // in the initramfs, without a leading slash
	Data []byte
}

// EmulationOptions say which foreign architectures the VM runs.
type EmulationOptions struct {
	Image  arch.Arch   // the image's architecture
	VM     arch.Arch   // the VM's
	Extra  []arch.Arch // more to register (--binfmt)
	Static string      // a static qemu-user binary for the image's arch (--binfmt-interpreter); "" = one the image carries
}

// Emulation returns the binfmt_misc entries and the interpreters that let
// a VM run binaries of other architectures: the image's, when it is not
// the VM's, and each of o.Extra. Interpreters come from o.Static for the
// image's arch, else from the image (rootfs), and must be static binaries
// for the VM.
func Emulation(rootfs fs.FS, o EmulationOptions) ([]plan.Binfmt, []Interpreter, error) {
	var foreign []arch.Arch
	seen := map[string]bool{o.VM.GOARCH: true}
	for _, a := range append([]arch.Arch{o.Image}, o.Extra...) {
		if !seen[a.GOARCH] {
			seen[a.GOARCH] = true
			foreign = append(foreign, a)
		}
	}
	var entries []plan.Binfmt
	var files []Interpreter
	for _, a := range foreign {
		static := ""
		if a.GOARCH == o.Image.GOARCH {
			static = o.Static
		}
		data, err := interpreter(rootfs, a, o.VM, static)
		if err != nil {
			return nil, nil, err
		}
		p := "c2vm/qemu-" + a.User + "-static"
		entries = append(entries, BinfmtFor(a, "/"+p))
		files = append(files, Interpreter{Path: p, Data: data})
	}
	return entries, files, nil
}

// interpreter reads a qemu-user binary that runs a's programs on vm:
// static (a host path) when given, else one the image carries.
func interpreter(rootfs fs.FS, a, vm arch.Arch, static string) ([]byte, error) {
	var data []byte
	var from string
	var err error
	if static != "" {
		from = static
		data, err = safeio.ReadFile(static, maxInterpreter)
	} else {
		data, from, err = imageInterpreter(rootfs, a.User)
	}
	if err != nil {
		return nil, fmt.Errorf("binfmt: the VM is %s and runs %s binaries, and no qemu-%s interpreter was found (give --binfmt-interpreter /usr/bin/qemu-%s-static from Debian's qemu-user-static): %w", vm.GOARCH, a.GOARCH, a.User, a.User, err)
	}
	if err := vm.CheckStatic(data); err != nil {
		return nil, fmt.Errorf("binfmt interpreter %s: %w", from, err)
	}
	return data, nil
}

func imageInterpreter(rootfs fs.FS, q string) ([]byte, string, error) {
	for _, p := range []string{"usr/bin/qemu-" + q + "-static", "usr/libexec/qemu-binfmt/" + q + "-binfmt-P", "usr/bin/qemu-" + q} {
		if b, err := fs.ReadFile(rootfs, p); err == nil {
			return b, "/" + p, nil
		}
	}
	return nil, "", fs.ErrNotExist
}

// maxInterpreter bounds a qemu-user binary read from the host (Debian's
// largest, qemu-system-like qemu-aarch64-static, is about 6 MB).
const maxInterpreter = 256 << 20

// BinfmtDFiles lists the image's systemd-binfmt files
// (usr/lib/binfmt.d/*.conf, etc/binfmt.d/*.conf), sorted by file name;
// a file in etc overrides one of the same name in usr/lib (binfmt.d(5)).
// Each file is parsed here, so a malformed one fails the conversion, not
// the boot.
func BinfmtDFiles(rootfs fs.FS) ([]string, error) {
	byName := map[string]string{}
	for _, dir := range []string{"usr/lib/binfmt.d", "run/binfmt.d", "etc/binfmt.d"} {
		matches, _ := fs.Glob(rootfs, dir+"/*.conf")
		for _, m := range matches {
			byName[path.Base(m)] = m
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		p := byName[n]
		b, err := fs.ReadFile(rootfs, p)
		if err != nil {
			return nil, fmt.Errorf("binfmt.d: %s: %w", p, err)
		}
		if _, err := plan.ParseBinfmtD(b); err != nil {
			return nil, fmt.Errorf("binfmt.d: /%s: %w", p, err)
		}
		out = append(out, "/"+p)
	}
	return out, nil
}
