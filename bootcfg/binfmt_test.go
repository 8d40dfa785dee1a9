package bootcfg

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/c2vm/c2vm/arch"
	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/internal/fixtures"
)

// elfHeader builds the first 20 bytes of an ELF executable header.
func elfHeader(class elf.Class, data elf.Data, typ elf.Type, m elf.Machine) []byte {
	h := make([]byte, 20)
	copy(h, "\x7fELF")
	h[4], h[5], h[6] = byte(class), byte(data), 1
	var bo binary.ByteOrder = binary.LittleEndian
	if data == elf.ELFDATA2MSB {
		bo = binary.BigEndian
	}
	bo.PutUint16(h[16:], uint16(typ))
	bo.PutUint16(h[18:], uint16(m))
	return h
}

// matches applies the kernel's test (fs/binfmt_misc.c, check_file): a
// byte matches when it differs from the magic only in masked-out bits.
func matches(b plan.Binfmt, h []byte) bool {
	for i := range b.Magic {
		if (h[b.Offset+i]^b.Magic[i])&b.Mask[i] != 0 {
			return false
		}
	}
	return true
}

// TestBinfmtTable: each entry matches its arch's executables and
// position-independent executables, and not the host's (amd64) binaries.
func TestBinfmtTable(t *testing.T) {
	host := elfHeader(elf.ELFCLASS64, elf.ELFDATA2LSB, elf.ET_EXEC, elf.EM_X86_64)
	for _, tc := range []struct {
		arch  string
		class elf.Class
		data  elf.Data
		m     elf.Machine
		name  string
	}{
		{"arm64", elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_AARCH64, "qemu-aarch64"},
		{"arm", elf.ELFCLASS32, elf.ELFDATA2LSB, elf.EM_ARM, "qemu-arm"},
		{"riscv64", elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_RISCV, "qemu-riscv64"},
		{"ppc64le", elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_PPC64, "qemu-ppc64le"},
		{"s390x", elf.ELFCLASS64, elf.ELFDATA2MSB, elf.EM_S390, "qemu-s390x"},
		{"386", elf.ELFCLASS32, elf.ELFDATA2LSB, elf.EM_386, "qemu-i386"},
		{"x86_64", elf.ELFCLASS64, elf.ELFDATA2LSB, elf.EM_X86_64, "qemu-x86_64"},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			a, err := arch.Lookup(tc.arch)
			if err != nil {
				t.Fatal(err)
			}
			b := BinfmtFor(a, "/c2vm/qemu")
			if b.Name != tc.name || b.Flags != "F" || len(b.Magic) != 20 || len(b.Mask) != 20 {
				t.Errorf("entry %+v", b)
			}
			for _, typ := range []elf.Type{elf.ET_EXEC, elf.ET_DYN} {
				if !matches(b, elfHeader(tc.class, tc.data, typ, tc.m)) {
					t.Errorf("does not match a %s %s", tc.arch, typ)
				}
			}
			if tc.m != elf.EM_X86_64 && matches(b, host) {
				t.Errorf("matches the host's amd64 binaries")
			}
			back, err := plan.ParseBinfmt(b.Line())
			if err != nil || string(back.Magic) != string(b.Magic) || string(back.Mask) != string(b.Mask) {
				t.Errorf("Line/ParseBinfmt round trip: %v", err)
			}
		})
	}
}

func TestBinfmtD(t *testing.T) {
	good := ":qemu-aarch64:M::\\x7fELF\\x02:\\xff\\xff\\xff\\xff\\xff:/usr/bin/qemu-aarch64-static:OCF\n# comment\n; also\n\n"
	es, err := plan.ParseBinfmtD([]byte(good))
	if err != nil || len(es) != 1 || string(es[0].Magic) != "\x7fELF\x02" || es[0].Flags != "OCF" {
		t.Fatalf("%+v %v", es, err)
	}
	for _, bad := range []string{
		":name:M::magic", ":a:X::m::/i:", ":a:M::\\xZZ::/i:", ":a:M::m::", ":a/b:M::m::/i:", ":a:M:999:m::/i:", ":a:M::ab:\\xff:/i:", ":a:M::m::/i:Q",
	} {
		if _, err := plan.ParseBinfmtD([]byte(bad + "\n")); !errors.Is(err, plan.ErrBadBinfmt) || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	fsys := fstest.MapFS{
		"usr/lib/binfmt.d/a.conf": {Data: []byte(good)},
		"usr/lib/binfmt.d/b.conf": {Data: []byte(good)},
		"etc/binfmt.d/b.conf":     {Data: []byte(good)},
	}
	files, err := BinfmtDFiles(fsys)
	if err != nil || strings.Join(files, " ") != "/usr/lib/binfmt.d/a.conf /etc/binfmt.d/b.conf" {
		t.Errorf("%v %v", files, err)
	}
	fsys["etc/binfmt.d/c.conf"] = &fstest.MapFile{Data: []byte(":broken\n")}
	if _, err := BinfmtDFiles(fsys); err == nil || !strings.Contains(err.Error(), "c.conf") {
		t.Errorf("malformed file: %v", err)
	}
}

func FuzzParseBinfmtD(f *testing.F) {
	f.Add([]byte(":qemu-aarch64:M::\\x7fELF\\x02:\\xff\\xff\\xff\\xff\\xff:/usr/bin/qemu:F\n"))
	f.Add([]byte("#x\n:e:E::exe::/bin/wine:\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := plan.ParseBinfmtD(b)
		if err != nil {
			return
		}
		for _, e := range es {
			back, err := plan.ParseBinfmt(e.Line())
			if err != nil || back.Name != e.Name || string(back.Magic) != string(e.Magic) {
				t.Fatalf("round trip of %q: %v", e.Line(), err)
			}
		}
	})
}

// qemuFamily is each architecture's family in QEMU's
// scripts/qemu-binfmt-conf.sh (its <cpu>_family variables), from which
// Debian's qemu-user-static generates its binfmt.d entries: it registers
// none for the build host's own family, whose binaries the CPU runs itself
// (on amd64 neither x86_64 nor i386).
var qemuFamily = map[string]string{
	"amd64": "i386", "386": "i386", "arm64": "arm", "arm": "arm",
	"riscv64": "riscv", "ppc64le": "ppcle", "s390x": "s390x",
}

// TestBinfmtTableMatchesDebian compares the table with the entries Debian's
// qemu-user-static installs. The host family's rows are not compared:
// Debian never ships them (see qemuFamily); TestBinfmtTableMatchesCompiler
// checks those against real binaries instead.
func TestBinfmtTableMatchesDebian(t *testing.T) {
	for _, name := range arch.Names() {
		a, _ := arch.Lookup(name)
		if qemuFamily[a.GOARCH] == qemuFamily[runtime.GOARCH] {
			continue
		}
		t.Run(name, func(t *testing.T) {
			fixtures.NeedTools(t, "qemu-"+a.User+"-static")
			data, err := os.ReadFile("/usr/lib/binfmt.d/qemu-" + a.User + ".conf")
			if err != nil {
				t.Fatalf("Debian's qemu-user-static entry: %v", err)
			}
			got := BinfmtFor(a, "/x")
			want, err := plan.ParseBinfmtD(data)
			if err != nil || len(want) != 1 {
				t.Fatalf("parsing Debian's entry: %v (%d entries)", err, len(want))
			}
			if want[0].Name != got.Name || !bytes.Equal(want[0].Magic, got.Magic) || !bytes.Equal(want[0].Mask, got.Mask) {
				t.Errorf("table %+v, Debian %+v", got, want[0])
			}
		})
	}
}

// hostCompilers are the gcc flags that build this host's architectures:
// an x86_64 gcc builds i386 too (-m32 needs no 32-bit libc with
// -nostdlib).
var hostCompilers = map[string]map[string]string{
	"amd64": {"amd64": "", "386": "-m32"},
}

// TestBinfmtTableMatchesCompiler: the entries of the host's family, which
// Debian does not ship, match what gcc links, an executable and a static
// PIE (ET_DYN), and no other entry of the table matches them.
func TestBinfmtTableMatchesCompiler(t *testing.T) {
	fixtures.NeedTools(t, "gcc")
	targets, ok := hostCompilers[runtime.GOARCH]
	if !ok {
		targets = map[string]string{runtime.GOARCH: ""}
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "start.c")
	if err := os.WriteFile(src, []byte("void _start(void) { for (;;); }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for goarch, flag := range targets {
		for _, link := range []string{"-static", "-static-pie"} {
			t.Run(goarch+link, func(t *testing.T) {
				out := filepath.Join(dir, goarch+link)
				args := []string{"-nostdlib", "-fpie", link, "-o", out, src}
				if flag != "" {
					args = append([]string{flag}, args...)
				}
				if b, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
					t.Fatalf("gcc %v: %v\n%s", args, err, b)
				}
				h := make([]byte, 20)
				f, err := os.Open(out)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := io.ReadFull(f, h); err != nil {
					t.Fatal(err)
				}
				for _, name := range arch.Names() {
					a, _ := arch.Lookup(name)
					if got := matches(BinfmtFor(a, "/x"), h); got != (name == goarch) {
						t.Errorf("entry %s matches gcc's %s%s binary: %v", name, goarch, link, got)
					}
				}
			})
		}
	}
}
