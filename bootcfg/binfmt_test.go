package bootcfg

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/c2vm/c2vm/arch"
	"github.com/c2vm/c2vm/bootcfg/plan"
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

// TestBinfmtTableMatchesDebian compares the table with the entries Debian's
// qemu-user-static installs (generated from qemu-binfmt-conf.sh), when
// they are on this machine.
func TestBinfmtTableMatchesDebian(t *testing.T) {
	for _, name := range arch.Names() {
		a, _ := arch.Lookup(name)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile("/usr/lib/binfmt.d/qemu-" + a.User + ".conf")
			if err != nil {
				t.Skipf("Debian's qemu-user-static entry: %v (qemu-user-static not installed?)", err)
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
