package kernel

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/pierrec/lz4/v4"
)

// Vmlinux writes the kernel as an uncompressed ELF vmlinux, which
// Firecracker needs on x86_64: for a bzImage, the payload the setup header
// points at (payload_offset at 0x248, payload_length at 0x24c, relative to
// the protected-mode code after (setup_sects+1)*512 bytes;
// Documentation/arch/x86/boot.rst), decompressed. The result is checked
// with debug/elf.
func (k *Kernel) Vmlinux(w io.Writer) error {
	var elfBytes []byte
	switch k.Format {
	case FormatVmlinux:
		elfBytes = k.image
	case FormatBzImage:
		b, err := bzPayload(k.image)
		if err != nil {
			return err
		}
		elfBytes = b
	default:
		return fmt.Errorf("%w: a %s kernel has no vmlinux inside (%s boots the Image itself)", ErrUnknownFormat, k.Format, k.Arch)
	}
	f, err := elf.NewFile(bytes.NewReader(elfBytes))
	if err != nil {
		return fmt.Errorf("vmlinux: %w", err)
	}
	f.Close()
	_, err = w.Write(elfBytes)
	return err
}

func bzPayload(img []byte) ([]byte, error) {
	if len(img) < 0x250 {
		return nil, fmt.Errorf("%w: bzImage setup header truncated", ErrUnknownFormat)
	}
	setupSects := int(img[0x1f1])
	if setupSects == 0 {
		setupSects = 4
	}
	off := (setupSects+1)*512 + int(binary.LittleEndian.Uint32(img[0x248:]))
	n := int(binary.LittleEndian.Uint32(img[0x24c:]))
	if off < 0 || n <= 0 || off+n > len(img) {
		return nil, fmt.Errorf("%w: bzImage payload at %d+%d outside the %d-byte file", ErrUnknownFormat, off, n, len(img))
	}
	return decompressPayload(img[off : off+n])
}

// decompressPayload handles the compressors Linux's boot wrapper uses; the
// build appends the uncompressed size as 4 little-endian bytes
// (scripts/Makefile.lib size_append), used here to check: a claim past
// MaxImageSize is refused before decompressing, and a payload that
// decompresses to more than it claims is an error, not a truncation.
func decompressPayload(p []byte) ([]byte, error) {
	if len(p) < 8 {
		return nil, fmt.Errorf("%w: bzImage payload of %d bytes", ErrUnknownFormat, len(p))
	}
	want := int(binary.LittleEndian.Uint32(p[len(p)-4:]))
	if want > MaxImageSize {
		return nil, tooLarge(fmt.Sprintf("bzImage payload: claims %d bytes decompressed", want), MaxImageSize)
	}
	r, stop, err := payloadReader(p)
	if err != nil {
		return nil, fmt.Errorf("bzImage payload: %w", err)
	}
	// Room for what the trailer claims, but no more than a ratio a real
	// kernel has (Debian's: 3.7 for gzip) times the payload: the claim is
	// unchecked until the end, and a lie would allocate up to the limit.
	buf := bytes.NewBuffer(make([]byte, 0, min(want, 16*len(p))))
	_, err = io.Copy(buf, io.LimitReader(r, int64(want)))
	more, _ := io.ReadFull(r, make([]byte, 1))
	if serr := stop(); err == nil {
		err = serr // xz's own message when it failed
	}
	switch {
	case buf.Len() != want:
		return nil, fmt.Errorf("bzImage payload: got %d bytes, want %d: %w", buf.Len(), want, err)
	case more > 0:
		return nil, fmt.Errorf("bzImage payload: decompresses to more than the %d bytes its trailer claims: %w", want, ErrUnknownFormat)
	}
	return buf.Bytes(), nil
}

// payloadReader decompresses a bzImage payload by its magic; p ends with
// the 4-byte size, which xz and lz4 must not see.
func payloadReader(p []byte) (io.Reader, func() error, error) {
	none := func() error { return nil }
	switch {
	case bytes.HasPrefix(p, []byte{0x1f, 0x8b}):
		r, err := gzip.NewReader(bytes.NewReader(p))
		return r, none, err
	case bytes.HasPrefix(p, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		r, err := newZstd(bytes.NewReader(p))
		return r, none, err
	case bytes.HasPrefix(p, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return streamDecompressor(".xz", bytes.NewReader(p[:len(p)-4]))
	case bytes.HasPrefix(p, []byte{0x02, 0x21, 0x4c, 0x18}): // lz4 legacy frame
		return lz4.NewReader(bytes.NewReader(p[:len(p)-4])), none, nil
	}
	return nil, nil, fmt.Errorf("%w: compression %x not supported", ErrUnknownFormat, p[:min(6, len(p))])
}
