package kernel

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestReadDebFile: the stub is read from a .deb's data by the path dpkg
// lists; a missing or oversized file is an error naming it.
func TestReadDebFile(t *testing.T) {
	stub := []byte("MZ a stub")
	const path = "/usr/lib/systemd/boot/efi/linuxaa64.efi.stub"
	p := filepath.Join(t.TempDir(), "systemd-boot-efi.deb")
	if err := os.WriteFile(p, deb(t, "data.tar.gz", gzipOf(tarOf(t, "./"+path[1:], stub))), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadDebFile(p, path, maxEFIStub); err != nil || !bytes.Equal(b, stub) {
		t.Errorf("ReadDebFile = %q, %v", b, err)
	}
	if _, err := ReadDebFile(p, "/usr/lib/systemd/boot/efi/linuxx64.efi.stub", maxEFIStub); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("another arch's stub: %v", err)
	}
	if _, err := ReadDebFile(p, path, 4); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the limit: %v", err)
	}
}
