package kernel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ulikunitz/xz"
)

// FuzzInRelease: a hostile InRelease is refused or verified against the
// keyring and its signed text parsed as a Release; nothing panics, and
// every file a parsed Release lists has a full sha256 and a size.
func FuzzInRelease(f *testing.F) {
	signedAt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	signer := testKey(f, signedAt.Add(-time.Hour), 0)
	a := newFakeArchive(f, signer, signedAt)
	d := Debian{Keyring: writeKeyring(f, signer)}
	f.Add(a.inRelease(f))
	f.Add([]byte(a.release))
	f.Add([]byte("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nSuite: x\n-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		text, err := d.verify(data)
		if err != nil {
			text = data // the parser meets unsigned text too, in tests of it
		}
		rel, err := parseRelease(text, a.suite, signedAt)
		if err != nil {
			return
		}
		for name, ref := range rel.sha256 {
			if len(ref.sha256) != 64 || strings.ContainsAny(name, " \t\n") {
				t.Fatalf("Release lists %q as %+v", name, ref)
			}
		}
	})
}

// FuzzPackages: any Packages text gives an entry with a full sha256, a
// positive size and a file name inside the archive, or an error.
func FuzzPackages(f *testing.F) {
	a := newFakeArchive(f, testKey(f, time.Unix(0, 0), 0), time.Unix(0, 0))
	zr, err := xz.NewReader(bytes.NewReader(a.packagesXZ))
	if err != nil {
		f.Fatal(err)
	}
	pkgs, err := io.ReadAll(zr)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pkgs, "", a.version)
	f.Add(pkgs, "linux-image-6.1.0-99-cloud-arm64", "")
	f.Add([]byte("Package: linux-image-cloud-arm64\nDepends: linux-image-1 (= 1)\n\nPackage: linux-image-1\nVersion: 1\nSize: -1\n"), "", "")
	f.Fuzz(func(t *testing.T, text []byte, name, version string) {
		byName, err := readPackages(bytes.NewReader(text), name)
		if err != nil {
			return
		}
		p, err := Debian{Arch: "arm64", Version: version}.choose(byName, name)
		if err != nil {
			return
		}
		if len(p.file.sha256) != 64 || p.file.size <= 0 || p.filename == "" || strings.Contains(p.filename, "..") {
			t.Fatalf("chose %+v", p)
		}
	})
}

// FuzzDecompressPayload: a bzImage payload (any compressor Linux uses, a
// size trailer that may lie) decompresses to exactly what its trailer
// claims or fails with a one-line error; it never panics, and a claim
// past MaxImageSize is refused as too large.
func FuzzDecompressPayload(f *testing.F) {
	body := bytes.Repeat([]byte("vmlinux "), 64)
	f.Add(withSize(gzipOf(body), uint32(len(body))))
	f.Add(withSize(gzipOf(body), 1<<30))
	f.Add(withSize(gzipOf(body), 3))
	f.Add(withSize([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0}, 8))
	f.Add(withSize([]byte{0x02, 0x21, 0x4c, 0x18, 1, 0, 0, 0, 0}, 8))
	f.Add(withSize([]byte{0xfd, '7', 'z', 'X', 'Z', 0, 0}, 8))
	f.Fuzz(func(t *testing.T, p []byte) {
		out, err := decompressPayload(p)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			if len(p) >= 8 && int64(binary.LittleEndian.Uint32(p[len(p)-4:])) > MaxImageSize && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("a claim past the limit: %v", err)
			}
			return
		}
		if len(out) != int(binary.LittleEndian.Uint32(p[len(p)-4:])) {
			t.Fatalf("%d bytes, trailer claims %d", len(out), binary.LittleEndian.Uint32(p[len(p)-4:]))
		}
	})
}
