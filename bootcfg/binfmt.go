package bootcfg

import (
	"fmt"
	"io/fs"
	"path"
	"sort"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

// elfBinfmt holds binfmt_misc magic and mask per architecture, as QEMU's
// scripts/qemu-binfmt-conf.sh defines them (the same values Debian's
// qemu-user-static ships in /usr/lib/binfmt.d/qemu-*.conf). They match the
// ELF header's first 20 bytes: class, data, version, type (ET_EXEC or
// ET_DYN), machine.
var elfBinfmt = map[string]struct{ qemu, magic, mask string }{
	"amd64":   {"x86_64", "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00", "\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"},
	"386":     {"i386", "\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x03\x00", "\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"},
	"arm64":   {"aarch64", "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00", "\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"},
	"arm":     {"arm", "\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x28\x00", "\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"},
	"riscv64": {"riscv64", "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xf3\x00", "\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"},
	"ppc64le": {"ppc64le", "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x15\x00", "\xff\xff\xff\xff\xff\xff\xff\xfc\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\x00"},
	"s390x":   {"s390x", "\x7fELF\x02\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x16", "\xff\xff\xff\xff\xff\xff\xff\xfc\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff"},
}

// archAliases maps uname/QEMU names to GOARCH names.
var archAliases = map[string]string{"x86_64": "amd64", "i386": "386", "i686": "386", "aarch64": "arm64", "armhf": "arm"}

// BinfmtFor returns the binfmt_misc entry that runs arch's ELF binaries
// with interpreter. Flag F opens the interpreter at registration, so it
// keeps working after the switch to the container's root, where its
// initramfs path does not exist. P (preserve argv[0]) is left out: the
// plain qemu-*-static binaries take the program as their first argument.
// C (credentials) is left out as in Debian's entries: a setuid binary runs
// without privilege under emulation rather than giving the interpreter
// root.
func BinfmtFor(arch, interpreter string) (plan.Binfmt, error) {
	if a, ok := archAliases[arch]; ok {
		arch = a
	}
	e, ok := elfBinfmt[arch]
	if !ok {
		return plan.Binfmt{}, fmt.Errorf("binfmt: no magic for architecture %q (have %s)", arch, binfmtArches())
	}
	return plan.Binfmt{Name: "qemu-" + e.qemu, Type: "M", Magic: []byte(e.magic), Mask: []byte(e.mask), Interpreter: interpreter, Flags: "F"}, nil
}

func binfmtArches() string {
	var l []string
	for a := range elfBinfmt {
		l = append(l, a)
	}
	sort.Strings(l)
	return fmt.Sprint(l)
}

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
