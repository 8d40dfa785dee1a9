package kernel

import (
	"archive/tar"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/fstest"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"

	"github.com/c2vm/c2vm/internal/fixtures"
)

// bombSize is what the test bombs inflate to: 16 times MaxImageSize, from
// 4 MB of gzip.
const bombSize = 4 << 30

// memBound is what may be allocated while a bomb is refused: the limit
// (read once, up to it) with room for the decompressor, an eighth of what
// reading the whole bomb would take.
const memBound = 2 * MaxImageSize

var (
	bombOnce sync.Once
	bomb     []byte
)

// gzipBomb returns a valid gzip stream of bombSize zero bytes. It is built
// the way real bombs are, without ever holding the output: one flushed
// deflate segment that encodes 1 MiB of zeros as back-references into a
// window of zeros is repeated, so each repetition decodes to 1 MiB.
func gzipBomb() []byte {
	bombOnce.Do(func() {
		var z bytes.Buffer
		fw, _ := flate.NewWriter(&z, flate.BestCompression)
		mib := make([]byte, 1<<20)
		fw.Write(mib)
		fw.Flush()
		first := z.Len()
		fw.Write(mib)
		fw.Flush() // byte-aligned: the segment can be repeated as is
		seg := bytes.Clone(z.Bytes()[first:])
		z.Truncate(first)
		crc := crc32.Update(0, crc32.IEEETable, mib)
		for i := 1; i < bombSize>>20; i++ {
			z.Write(seg)
			crc = crc32.Update(crc, crc32.IEEETable, mib)
		}
		fw.Close() // the final, empty block
		var out bytes.Buffer
		out.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}) // RFC 1952 header, no flags
		out.Write(z.Bytes())
		isize := uint32(bombSize & 0xffffffff) // the size mod 2^32
		binary.Write(&out, binary.LittleEndian, [2]uint32{crc, isize})
		bomb = out.Bytes()
	})
	return bomb
}

// allocated runs f and returns the bytes it allocated on the heap, all
// told (TotalAlloc only grows): a bound on the peak too.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// bzImageWith is a bzImage whose protected-mode code (after one setup
// sector and the boot sector) is payload, as the setup header's
// payload_offset and payload_length say.
func bzImageWith(payload []byte) []byte {
	b := bzImage("6.1.0-bomb", true)
	b[0x1f1] = 1 // setup_sects: the payload starts at 2*512
	binary.LittleEndian.PutUint32(b[0x24c:], uint32(len(payload)))
	return append(b, payload...)
}

// withSize appends the uncompressed size as Linux's build does
// (size_append), claiming n bytes.
func withSize(p []byte, n uint32) []byte {
	return binary.LittleEndian.AppendUint32(bytes.Clone(p), n)
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBombs: a kernel that decompresses past MaxImageSize — as a file, in
// the image, as a bzImage's payload, as a module — fails with one line
// naming it and the limit, and the heap stays bounded.
func TestBombs(t *testing.T) {
	img := flatImage("ARM\x64", "6.6.1-bomb")
	for _, tc := range []struct {
		name string
		run  func(t *testing.T) error
		want []string // in the error
	}{
		{"gzip kernel file", func(t *testing.T) error {
			_, err := Open(writeFile(t, "vmlinuz", gzipBomb()))
			return err
		}, []string{"vmlinuz: gzip kernel", "256 MiB"}},
		{"gzip kernel in the image", func(t *testing.T) error {
			_, err := FromFS(fstest.MapFS{"boot/vmlinuz-6.6.1-bomb": {Data: gzipBomb()}})
			return err
		}, []string{"the image: boot/vmlinuz-6.6.1-bomb: gzip kernel", "256 MiB"}},
		{"gzip kernel in a .deb", func(t *testing.T) error {
			_, err := Open(writeFile(t, "k.deb", deb(t, "data.tar", tarOf(t, "boot/vmlinuz-6.6.1-bomb", gzipBomb()))))
			return err
		}, []string{"k.deb: boot/vmlinuz-6.6.1-bomb: gzip kernel", "256 MiB"}},
		{"bzImage payload past its claim", func(t *testing.T) error {
			return vmlinux(t, bzImageWith(withSize(gzipBomb(), 1<<20)))
		}, []string{"bzImage payload: decompresses to more than the 1048576 bytes its trailer claims"}},
		{"bzImage payload claims too much", func(t *testing.T) error {
			return vmlinux(t, bzImageWith(withSize(gzipBomb(), 1<<31)))
		}, []string{"bzImage payload: claims 2147483648 bytes decompressed: too large (limit 256 MiB)"}},
		{"gzip module", func(t *testing.T) error {
			k, err := FromFS(fstest.MapFS{
				"boot/vmlinuz-6.6.1-bomb":                        {Data: img},
				"boot/config-6.6.1-bomb":                         {Data: []byte("CONFIG_VIRTIO_BLK=m\n")},
				"lib/modules/6.6.1-bomb/kernel/virtio_blk.ko.gz": {Data: gzipBomb()},
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = k.Closure([]string{"CONFIG_VIRTIO_BLK"})
			return err
		}, []string{"module virtio_blk: decompressed: too large (limit 256 MiB)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gzipBomb() // built before measuring
			var err error
			grew := allocated(func() { err = tc.run(t) })
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error of several lines: %q", msg)
			}
			if grew > memBound {
				t.Errorf("allocated %d MiB (bound %d MiB)", grew>>20, memBound>>20)
			}
			t.Logf("%s (allocated %d MiB)", msg, grew>>20)
		})
	}
}

func vmlinux(t *testing.T, img []byte) error {
	k, err := Open(writeFile(t, "bzImage", img))
	if err != nil {
		t.Fatal(err)
	}
	return k.Vmlinux(io.Discard)
}

// arFile is an ar(5) member: a raw size field lets a test lie.
type arFile struct {
	name, size string
	data       []byte
}

// ar writes an ar archive: "!<arch>\n", then per member a 60-byte header
// (name 16, mtime 12, uid 6, gid 6, mode 8, size 10, "`\n") and the data
// padded to an even length.
func ar(members ...arFile) []byte {
	b := []byte("!<arch>\n")
	for _, m := range members {
		if m.size == "" {
			m.size = fmt.Sprint(len(m.data))
		}
		b = fmt.Appendf(b, "%-16s%-12d%-6d%-6d%-8s%-10s`\n", m.name, 0, 0, 0, "100644", m.size)
		b = append(b, m.data...)
		if len(m.data)%2 == 1 {
			b = append(b, '\n')
		}
	}
	return b
}

// deb is a Debian package whose data member is data.
func deb(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	return ar(arFile{name: "debian-binary", data: []byte("2.0\n")}, arFile{name: name, data: data})
}

func tarOf(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))})
	tw.Write(data)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gzipOf(b []byte) []byte {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(b)
	zw.Close()
	return z.Bytes()
}

// TestDebArchive: an ar header that lies (a negative, absurd or
// non-decimal size, no terminator) is refused at once, naming the member
// and its offset.
func TestDebArchive(t *testing.T) {
	payload := []byte("some bytes")
	for _, tc := range []struct {
		name string
		deb  []byte
		want string // in the error; "" for success
	}{
		{"negative size", ar(arFile{name: "debian-binary", size: "-68", data: []byte("2.0\n")}, arFile{name: "data.tar", data: payload}),
			`ar member "debian-binary" at 8: size "-68" is not a decimal`},
		{"absurd size", ar(arFile{name: "control.tar.xz", size: "9999999999"}),
			`ar member "control.tar.xz" at 8: size "9999999999" is not a decimal within the 68-byte file`},
		{"hex size", ar(arFile{name: "data.tar", size: "0x10", data: payload}), `size "0x10"`},
		{"signed size", ar(arFile{name: "data.tar", size: "+10", data: payload}), `size "+10"`},
		{"size past the end", ar(arFile{name: "data.tar", size: "11", data: payload}), `size "11" is not a decimal within the 78-byte file`},
		{"no terminator", []byte("!<arch>\n" + strings.Repeat(" ", 60)), "ar header at 8: no \"`\\n\" terminator"},
		{"truncated header", []byte("!<arch>\ndebian-binary"), "ar header at 8: truncated"},
		{"no data member", ar(arFile{name: "debian-binary", data: []byte("2.0\n")}), "no data.tar* member"},
		{"odd sizes padded", ar(arFile{name: "debian-binary", data: []byte("2.0")}, arFile{name: "data.tar", data: payload}), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sr, name, err := arMember(bytes.NewReader(tc.deb), int64(len(tc.deb)), "data.tar")
			if tc.want == "" {
				if err != nil || name != "data.tar" {
					t.Fatalf("arMember = %q, %v", name, err)
				}
				if got, _ := io.ReadAll(sr); !bytes.Equal(got, payload) {
					t.Errorf("data %q, want %q", got, payload)
				}
				return
			}
			if !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
			if _, err := Open(writeFile(t, "k.deb", tc.deb)); err == nil || !strings.Contains(err.Error(), "k.deb: ") {
				t.Errorf("Open: %v, want an error naming the package", err)
			}
		})
	}
}

// TestDebDataBounds: a data.tar that decompresses past maxDebData, or
// whose index would hold too much, is refused with the limit named.
func TestDebDataBounds(t *testing.T) {
	defer func(n int64) { maxDebData = n }(maxDebData)
	maxDebData = 1 << 20
	long := func(n int) []byte { // members with names of 900 KiB, in PAX records
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for i := range n {
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("%d/%s", i, strings.Repeat("n", 900<<10)), Typeflag: tar.TypeReg, Mode: 0o644})
		}
		tw.Close()
		return b.Bytes()
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"data.tar.gz inflates past the limit", gzipOf(make([]byte, 2<<20)), "k.deb: data.tar.gz: decompressed: too large (limit 1 MiB)"},
		{"names past the index limit", gzipOf(long(20)), "k.deb: data.tar.gz: names of its members: too large (limit 16 MiB)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "names past the index limit" {
				maxDebData = 1 << 30
			}
			_, err := Open(writeFile(t, "k.deb", deb(t, "data.tar.gz", tc.data)))
			if !errors.Is(err, ErrTooLarge) || !strings.HasSuffix(err.Error(), tc.want) {
				t.Errorf("error %v, want …%q", err, tc.want)
			}
		})
	}
}

// TestNotRegular: a kernel path that is a FIFO, or a symlink to a
// device, is refused before it is opened (opening a FIFO blocks).
func TestNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "vmlinuz")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, zero} {
		if _, err := Open(p); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Open(%s): %v", p, err)
		}
	}
	// In a directory source, a vmlinuz that points at /dev/zero.
	os.MkdirAll(filepath.Join(dir, "root/boot"), 0o755)
	os.Symlink("/dev/zero", filepath.Join(dir, "root/boot/vmlinuz-6.1"))
	if _, err := Open(filepath.Join(dir, "root")); err == nil || !strings.Contains(err.Error(), "boot/vmlinuz-6.1: not a regular file") {
		t.Errorf("dir with /dev/zero: %v", err)
	}
}

// TestOversizedFile: a kernel file past MaxImageSize is refused from its
// size alone, before a byte is read (the file is sparse).
func TestOversizedFile(t *testing.T) {
	p := writeFile(t, "Image", flatImage("ARM\x64", "6.6.1"))
	if err := os.Truncate(p, MaxImageSize+1); err != nil {
		t.Fatal(err)
	}
	var err error
	grew := allocated(func() { _, err = Open(p) })
	if want := p + ": 268435457 bytes: too large (limit 256 MiB)"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	if grew > 1<<20 {
		t.Errorf("allocated %d KiB", grew>>10)
	}
}

// xzBigDict is a valid xz stream of data whose block header declares an
// LZMA2 dictionary of 2 GiB (xz-file-format 5.3.1: property bits 38 give
// 2<<30), its CRC32 fixed up: decoders allocate the dictionary up front.
func xzBigDict(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := xz.NewWriter(&b)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()
	x := b.Bytes()
	hdr := x[12 : 12+(int(x[12])+1)*4]        // after the 12-byte stream header
	i := bytes.Index(hdr, []byte{0x21, 0x01}) // LZMA2 filter, 1 byte of properties
	if i < 0 {
		t.Fatal("no LZMA2 filter in the block header")
	}
	hdr[i+2] = 38
	binary.LittleEndian.PutUint32(hdr[len(hdr)-4:], crc32.ChecksumIEEE(hdr[:len(hdr)-4]))
	return x
}

// TestXZDictionary: a module whose xz header declares a 2 GiB dictionary
// is refused by xz(1)'s memory limit instead of allocated.
func TestXZDictionary(t *testing.T) {
	fixtures.NeedTools(t, "xz")
	k, err := FromFS(fstest.MapFS{
		"boot/vmlinuz-6.6.1-bomb":                        {Data: flatImage("ARM\x64", "6.6.1-bomb")},
		"boot/config-6.6.1-bomb":                         {Data: []byte("CONFIG_VIRTIO_BLK=m\n")},
		"lib/modules/6.6.1-bomb/kernel/virtio_blk.ko.xz": {Data: xzBigDict(t, []byte("\x7fELF"))},
	})
	if err != nil {
		t.Fatal(err)
	}
	grew := allocated(func() { _, err = k.Closure([]string{"CONFIG_VIRTIO_BLK"}) })
	if err == nil || !strings.Contains(err.Error(), "module virtio_blk: ") || !strings.Contains(err.Error(), "Memory usage limit reached") || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %v", err)
	}
	if grew > 16<<20 {
		t.Errorf("allocated %d MiB", grew>>20)
	}
}

// TestPayloadCompressions: each compressor Linux's boot wrapper uses
// decodes to the claimed size; one byte more or less is an error, and an
// xz header declaring a 2 GiB dictionary is refused by xz(1)'s limit.
func TestPayloadCompressions(t *testing.T) {
	fixtures.NeedTools(t, "xz")
	data := bytes.Repeat([]byte("vmlinux "), 4096)
	compress := map[string]func(io.Writer) io.WriteCloser{
		"gzip": func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) },
		"zstd": func(w io.Writer) io.WriteCloser { e, _ := zstd.NewWriter(w); return e },
		"xz":   func(w io.Writer) io.WriteCloser { e, _ := xz.NewWriter(w); return e },
		"lz4": func(w io.Writer) io.WriteCloser {
			e := lz4.NewWriter(w)
			e.Apply(lz4.LegacyOption(true))
			return e
		},
	}
	for name, c := range compress {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			w := c(&b)
			w.Write(data)
			w.Close()
			for _, tc := range []struct {
				claim int
				err   string
			}{
				{len(data), ""},
				{len(data) - 1, "decompresses to more than the 32767 bytes its trailer claims"},
				{len(data) + 1, "got 32768 bytes, want 32769"},
			} {
				got, err := decompressPayload(withSize(b.Bytes(), uint32(tc.claim)))
				switch {
				case tc.err == "" && (err != nil || !bytes.Equal(got, data)):
					t.Errorf("claim %d: %d bytes, %v", tc.claim, len(got), err)
				case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
					t.Errorf("claim %d: error %v, want %q", tc.claim, err, tc.err)
				}
			}
		})
	}
	_, err := decompressPayload(withSize(xzBigDict(t, data), uint32(len(data))))
	if err == nil || !strings.Contains(err.Error(), "Memory usage limit reached") {
		t.Errorf("xz with a 2 GiB dictionary: %v", err)
	}
}

// TestOversizedConfig: a config past maxConfigSize is an error naming it,
// not a silent "no config found" later.
func TestOversizedConfig(t *testing.T) {
	_, err := FromFS(fstest.MapFS{
		"boot/vmlinuz-6.6.1": {Data: flatImage("ARM\x64", "6.6.1")},
		"boot/config-6.6.1":  {Data: bytes.Repeat([]byte("CONFIG_X=y\n"), 2<<20)},
	})
	if want := "the image: boot/config-6.6.1: 23068672 bytes: too large (limit 16 MiB)"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}
