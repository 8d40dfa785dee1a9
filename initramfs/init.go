package initramfs

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/c2vm/c2vm/arch"
)

// bin holds the guest init built by `make initbin` for each VM arch
// (c2vm-init-<goarch>); only a README is committed.
//
//go:embed all:bin
var bin embed.FS

// ErrNoInit is returned when no init binary for the VM's arch can be had.
var ErrNoInit = errors.New("no guest init")

// InitBinary returns the guest init for a VM of arch a: override (--init) first,
// then the embedded one, then one built on the fly when the c2vm sources
// and `go` are at hand. Whatever is used is checked: ELF for the VM's
// machine, statically linked.
func InitBinary(a arch.Arch, override string) ([]byte, error) {
	goarch := a.GOARCH
	var b []byte
	var from string
	var err error
	switch {
	case override != "":
		from = override
		b, err = os.ReadFile(override)
	default:
		from = "embedded c2vm-init-" + goarch
		b, err = bin.ReadFile("bin/c2vm-init-" + goarch)
		if err != nil {
			from = "c2vm-init built with go"
			b, err = buildInit(goarch)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w for %s: %w", ErrNoInit, goarch, err)
	}
	if err := a.CheckStatic(b); err != nil {
		return nil, fmt.Errorf("init %s: %w", from, err)
	}
	return b, nil
}

// buildInit compiles cmd/c2vm-init from the source tree c2vm was built
// in (a development checkout), as `make initbin` does.
func buildInit(goarch string) ([]byte, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, errors.New("none embedded (run `make initbin`, or `make build`), and `go` is not on PATH to build one")
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	if _, err := os.Stat(filepath.Join(root, "cmd", "c2vm-init", "main.go")); err != nil {
		return nil, errors.New("none embedded (run `make initbin`, or `make build`), and the c2vm sources are not at hand to build one")
	}
	dir, err := os.MkdirTemp("", "c2vm-init-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "init")
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", out, "./cmd/c2vm-init")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/c2vm-init: %v: %s", err, stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
