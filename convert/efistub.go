package convert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/c2vm/c2vm/arch"
	"github.com/c2vm/c2vm/internal/cache"
	"github.com/c2vm/c2vm/kernel"
	"github.com/c2vm/c2vm/vmdir"
)

// efiStub reads the systemd EFI stub the disk's UKI is built on and says
// where it came from, for manifest.json: --efi-stub's file; Debian's
// systemd-boot-efi for the VM's arch when --efi-stub is
// debian:SUITE[=VERSION], or when none is given and the host has no stub
// of that arch installed (an arm64 disk on an amd64 host); else the
// installed one.
func (c *conversion) efiStub(ctx context.Context, vm arch.Arch) ([]byte, *vmdir.EFIStub, error) {
	ref := c.stubRef
	suite, version, fetch := kernel.ParseDebianRef(ref)
	if ref == "" {
		if vm.EFI == nil {
			return nil, nil, fmt.Errorf("--disk: no EFI stub known for %s: give one with --efi-stub", vm.GOARCH)
		}
		ref = vm.EFI.Stub()
		_, err := os.Stat(ref)
		fetch = errors.Is(err, fs.ErrNotExist)
	}
	if fetch {
		return c.debianEFIStub(ctx, vm, suite, version)
	}
	b, err := os.ReadFile(ref)
	if err != nil {
		return nil, nil, fmt.Errorf("EFI stub: %w", err)
	}
	return b, &vmdir.EFIStub{Source: ref, SHA256: sha256Hex(b)}, nil
}

// stubPart describes the EFI stub for the SBOM and provenance: the file
// given or installed, or Debian's package it came from.
func stubPart(s *vmdir.EFIStub, vm arch.Arch) part {
	p := part{role: "EFI stub", name: filepath.Base(s.Source), uri: s.Source, fileName: filepath.Base(s.Source), purpose: "FIRMWARE"}
	if d := s.Debian; d != nil {
		p.name, p.version, p.uri, p.fileName = d.Package, d.Version, "", filepath.Base(vm.EFI.Stub())
		p.purl = "pkg:deb/debian/" + d.Package + "@" + url.PathEscape(d.Version) + "?arch=" + vm.Debian
		p.annotations = map[string]string{"mirror": d.Mirror, "suite": d.Suite, "deb.sha256": d.SHA256}
	}
	return p
}

// debianEFIStub fetches (or finds in the cache) Debian's systemd-boot-efi
// for vm, as the default kernel is fetched, and reads its stub.
func (c *conversion) debianEFIStub(ctx context.Context, vm arch.Arch, suite, version string) ([]byte, *vmdir.EFIStub, error) {
	if vm.EFI == nil {
		return nil, nil, fmt.Errorf("--efi-stub: Debian has no systemd EFI stub for %s", vm.GOARCH)
	}
	d, err := c.debian(vm, suite, version)
	if err != nil {
		return nil, nil, err
	}
	b, src, err := d.FetchEFIStub(ctx, vm.EFI.Stub())
	if errors.Is(err, kernel.ErrUnreachable) {
		return nil, nil, fmt.Errorf("--disk: no systemd EFI stub for %s: %s is not installed, %s:%s is not in the cache %s and the mirror is unreachable (%w): install it, give --efi-stub PATH, or fetch once with network",
			vm.GOARCH, vm.EFI.Stub(), kernel.EFIStubPackage, vm.Debian, d.Cache, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("--disk: Debian's %s for %s: %w", kernel.EFIStubPackage, vm.Debian, err)
	}
	c.o.progress("disk: EFI stub from Debian %s %s %s, sha256 %s (%s: %s)", src.Suite, src.Package, src.Version, src.SHA256, fetched(src), src.Path)
	return b, &vmdir.EFIStub{Source: "debian:" + src.Suite + "=" + src.Version, SHA256: sha256Hex(b), Debian: debianSource(&src)}, nil
}

// debian is where Debian packages for vm come from: --kernel-mirror,
// --kernel-keyring and the cache, for the kernel and the EFI stub alike.
func (c *conversion) debian(vm arch.Arch, suite, version string) (kernel.Debian, error) {
	dir, err := cache.Dir()
	if err != nil {
		return kernel.Debian{}, err
	}
	return kernel.Debian{Mirror: c.o.KernelMirror, Suite: suite, Version: version, Arch: vm.Debian,
		Keyring: c.o.KernelKeyring, Cache: dir, Meter: c.o.Meter}, nil
}

// fetched says whether a Debian package came from the cache.
func fetched(src kernel.DebianSource) string {
	if src.Cached {
		return "cached"
	}
	return "downloaded"
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
