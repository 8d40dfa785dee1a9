package arch

import (
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
)

func TestLookup(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"amd64", "amd64"}, {"x86_64", "amd64"}, {"x86-64", "amd64"}, {"X86_64", "amd64"},
		{"arm64", "arm64"}, {"aarch64", "arm64"}, {"arm64/v8", "arm64"},
		{"386", "386"}, {"i386", "386"}, {"i686", "386"},
		{"arm", "arm"}, {"armhf", "arm"}, {"armv7l", "arm"}, {"arm/v7", "arm"},
		{"riscv64", "riscv64"}, {"ppc64el", "ppc64le"}, {"s390x", "s390x"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			a, err := Lookup(tc.in)
			if err != nil || a.GOARCH != tc.want {
				t.Errorf("Lookup(%q) = %v, %v; want %s", tc.in, a.GOARCH, err, tc.want)
			}
		})
	}
	if _, err := Lookup("vax"); !errors.Is(err, ErrUnknown) {
		t.Errorf("vax: %v", err)
	}
}

func TestVM(t *testing.T) {
	for _, n := range []string{"amd64", "arm64", "riscv64"} {
		a, err := VM(n)
		if err != nil || a.QEMU.Binary == "" || a.Console == "" || a.KernelImage == "" || a.QEMU.Args[0] != "-M" {
			t.Errorf("VM(%s) = %+v, %v", n, a, err)
		}
	}
	if _, err := VM("armhf"); err == nil {
		t.Error("armhf is no VM arch")
	}
}

// TestRowsAreConsistent: every name of every row finds that row, the
// binfmt magic ends in the row's ELF machine and has a full-length mask,
// and ByELF finds the row back.
func TestRowsAreConsistent(t *testing.T) {
	for _, a := range table {
		t.Run(a.GOARCH, func(t *testing.T) {
			for _, n := range []string{a.GOARCH, a.Uname, a.Debian, a.User} {
				if b, err := Lookup(n); err != nil || b.GOARCH != a.GOARCH {
					t.Errorf("Lookup(%q) = %s, %v", n, b.GOARCH, err)
				}
			}
			if len(a.BinfmtMagic) != 20 || len(a.BinfmtMask) != 20 {
				t.Errorf("magic %d bytes, mask %d, want 20", len(a.BinfmtMagic), len(a.BinfmtMask))
			}
			m := uint16(a.BinfmtMagic[18]) | uint16(a.BinfmtMagic[19])<<8
			if a.BinfmtMagic[5] == 2 { // big-endian
				m = uint16(a.BinfmtMagic[18])<<8 | uint16(a.BinfmtMagic[19])
			}
			if elf.Machine(m) != a.ELF {
				t.Errorf("binfmt magic names machine %d, row says %s", m, a.ELF)
			}
			if b, ok := ByELF(a.ELF); !ok || b.GOARCH != a.GOARCH {
				t.Errorf("ByELF(%s) = %s", a.ELF, b.GOARCH)
			}
		})
	}
}

// TestCheckStatic builds a static and a dynamic Go binary for amd64.
func TestCheckStatic(t *testing.T) {
	fixtures.NeedTools(t, "go")
	gobin, _ := exec.LookPath("go")
	dir := t.TempDir()
	src := filepath.Join(dir, "main.go")
	os.WriteFile(src, []byte("package main\nimport \"net\"\nfunc main() { net.Dial(\"tcp\", \"\") }\n"), 0o644)
	build := func(out string, env ...string) []byte {
		cmd := exec.Command(gobin, "build", "-o", filepath.Join(dir, out), src)
		cmd.Env = append(os.Environ(), append([]string{"GOOS=linux", "GOARCH=amd64", "GOFLAGS=", "GO111MODULE=off"}, env...)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v: %s", err, b)
		}
		b, _ := os.ReadFile(filepath.Join(dir, out))
		return b
	}
	static := build("static", "CGO_ENABLED=0")
	amd64, _ := Lookup("amd64")
	arm64, _ := Lookup("arm64")
	if err := amd64.CheckStatic(static); err != nil {
		t.Errorf("static amd64 binary: %v", err)
	}
	if err := arm64.CheckStatic(static); err == nil {
		t.Error("an amd64 binary passed for arm64")
	}
	if err := amd64.CheckStatic([]byte("#!/bin/sh\n")); err == nil {
		t.Error("a script passed")
	}
	fixtures.NeedTools(t, "gcc") // cgo links a dynamic binary
	if err := amd64.CheckStatic(build("dynamic", "CGO_ENABLED=1")); err == nil {
		t.Error("a cgo (dynamic) binary passed")
	}
}
