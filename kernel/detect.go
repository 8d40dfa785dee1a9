package kernel

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"regexp"

	"github.com/c2vm/c2vm/arch"
)

// Formats c2vm recognises.
const (
	FormatBzImage = "bzImage" // x86 boot protocol image (Documentation/arch/x86/boot.rst)
	FormatImage   = "Image"   // arm64/riscv64 flat image
	FormatImageGz = "Image.gz"
	FormatVmlinux = "vmlinux" // ELF
)

// Ident is what a kernel's headers say about it.
type Ident struct {
	Arch    string // GOARCH: amd64, 386, arm64, riscv64
	Format  string
	Version string // "" when the header does not carry it
}

var linuxVersion = regexp.MustCompile(`Linux version (\S+)`)

// Identify reads the kernel's format, architecture and (when present)
// version from its first bytes (img may be the whole file; bzImage needs
// its setup sectors, Image its 64-byte header). Errors wrap
// ErrUnknownFormat and give the offset checked.
func Identify(img []byte) (Ident, error) {
	switch {
	case len(img) >= 0x206 && string(img[0x202:0x206]) == "HdrS":
		return identifyBzImage(img)
	case len(img) >= 0x3c && string(img[0x38:0x3c]) == "ARM\x64":
		// Documentation/arch/arm64/booting.rst: magic at offset 56.
		return Ident{Arch: "arm64", Format: FormatImage, Version: findVersion(img)}, nil
	case len(img) >= 0x3c && string(img[0x38:0x3c]) == "RSC\x05":
		// Documentation/arch/riscv/boot-image-header.rst: magic2 at 56.
		return Ident{Arch: "riscv64", Format: FormatImage, Version: findVersion(img)}, nil
	case len(img) >= 4 && string(img[:4]) == "\x7fELF":
		return identifyELF(img)
	case len(img) >= 2 && img[0] == 0x1f && img[1] == 0x8b:
		return Ident{}, fmt.Errorf("%w: gzip-compressed (decompress first)", ErrUnknownFormat)
	case len(img) >= 8 && string(img[:2]) == "MZ" && string(img[4:8]) == "zimg":
		return Ident{}, fmt.Errorf("%w: EFI zboot image (unsupported)", ErrUnknownFormat)
	}
	return Ident{}, fmt.Errorf("%w: no bzImage magic \"HdrS\" at 0x202, no arm64/riscv64 Image magic at 0x38, no ELF header at 0", ErrUnknownFormat)
}

// identifyBzImage reads the setup header: the kernel_version pointer at
// 0x20e points 0x200 bytes before a NUL-terminated string; xloadflags at
// 0x236 bit 0 (XLF_KERNEL_64) marks a 64-bit kernel.
func identifyBzImage(img []byte) (Ident, error) {
	id := Ident{Arch: "386", Format: FormatBzImage}
	if len(img) > 0x237 && img[0x236]&1 != 0 {
		id.Arch = "amd64"
	}
	if len(img) >= 0x210 {
		p := int(binary.LittleEndian.Uint16(img[0x20e:])) + 0x200
		if p > 0x200 && p < len(img) {
			s := img[p:]
			if i := bytes.IndexByte(s, 0); i >= 0 {
				s = s[:i]
			}
			if f := bytes.Fields(s); len(f) > 0 {
				id.Version = string(f[0])
			}
		}
	}
	return id, nil
}

func identifyELF(img []byte) (Ident, error) {
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		return Ident{}, fmt.Errorf("%w: ELF: %w", ErrUnknownFormat, err)
	}
	defer f.Close()
	a, ok := arch.ByELF(f.Machine)
	if !ok {
		return Ident{}, fmt.Errorf("%w: ELF for %s", ErrUnknownFormat, f.Machine)
	}
	return Ident{Arch: a.GOARCH, Format: FormatVmlinux, Version: findVersion(img)}, nil
}

func findVersion(img []byte) string {
	if m := linuxVersion.FindSubmatch(img); m != nil {
		return string(m[1])
	}
	return ""
}
