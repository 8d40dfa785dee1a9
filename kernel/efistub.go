package kernel

import (
	"context"
	"fmt"
	"strings"
)

// EFIStubPackage is Debian's package of systemd's EFI stub (linuxx64.efi.stub,
// linuxaa64.efi.stub), which a Unified Kernel Image is built on.
const EFIStubPackage = "systemd-boot-efi"

// maxEFIStub bounds the stub read from the package (Debian 12's amd64
// stub: 60 KiB).
const maxEFIStub = 16 << 20

// FetchEFIStub fetches Debian's systemd-boot-efi for d.Arch as Fetch
// fetches a kernel (InRelease signature, Packages and .deb SHA256
// checked, cached) and returns the stub at path in it
// (/usr/lib/systemd/boot/efi/linuxx64.efi.stub, arch's EFI.Stub).
func (d Debian) FetchEFIStub(ctx context.Context, path string) ([]byte, DebianSource, error) {
	src, err := d.FetchPackage(ctx, EFIStubPackage)
	if err != nil {
		return nil, DebianSource{}, err
	}
	b, err := ReadDebFile(src.Path, path, maxEFIStub)
	if err != nil {
		return nil, DebianSource{}, fmt.Errorf("%s %s: %w", src.Package, src.Version, err)
	}
	return b, src, nil
}

// ReadDebFile reads the file at path (absolute, as dpkg -L lists it)
// from a .deb's data, refusing one over limit bytes.
func ReadDebFile(deb, path string, limit int64) ([]byte, error) {
	s, err := openDeb(deb, nil)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.read(strings.TrimPrefix(path, "/"), limit)
}
