// Package initramfs writes the VM's initramfs: a cpio "newc" archive
// (Documentation/driver-api/early-userspace/buffer-format.rst) holding the
// guest init as /init, the boot plan and kernel modules, compressed with
// zstd or gzip.
//
//	err := initramfs.Write(w, files, initramfs.Options{Compression: initramfs.Zstd})
//
// The archive is written here rather than with github.com/cavaliergopher/cpio
// because that library writes no device numbers (rdev), and the kernel needs
// a /dev/console node to give the init its console before devtmpfs exists.
package initramfs

import (
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// File is one regular file of the initramfs.
type File struct {
	Path string // relative, slash-separated ("init", "c2vm/boot.json")
	Mode uint32 // permission bits
	Data []byte
}

// Compression of the archive; the kernel must support it (CONFIG_RD_*).
type Compression int

// Compressions.
const (
	Gzip Compression = iota // every kernel has CONFIG_RD_GZIP
	Zstd
	None
)

// CompressionFor picks the archive's compression for a kernel: zstd, the
// smaller, when the kernel decompresses it (CONFIG_RD_ZSTD built in),
// else gzip, which every kernel reads.
func CompressionFor(k interface{ Has(string) (bool, bool) }) Compression {
	if builtin, _ := k.Has("CONFIG_RD_ZSTD"); builtin {
		return Zstd
	}
	return Gzip
}

// Options configure Write; the zero value is gzip at the Unix epoch.
type Options struct {
	Compression Compression
	ModTime     time.Time // every entry's mtime (SOURCE_DATE_EPOCH)
}

// entry is one cpio record.
type entry struct {
	name       string
	mode       uint32 // with type bits
	rmaj, rmin uint32
	data       []byte
	ino        uint32
}

const (
	sIFDIR = 0o040000
	sIFREG = 0o100000
	sIFCHR = 0o020000
)

// Write writes files (plus their parent directories and /dev/console)
// as a compressed newc archive, sorted, all owned by root, with one mtime:
// the same input gives the same bytes.
func Write(w io.Writer, files []File, o Options) error {
	entries := layout(files)
	cw, closeFn, err := compressor(w, o.Compression)
	if err != nil {
		return err
	}
	mtime := o.ModTime.Unix()
	if o.ModTime.IsZero() {
		mtime = 0
	}
	for i := range entries {
		entries[i].ino = uint32(i + 1)
		if err := writeEntry(cw, entries[i], mtime); err != nil {
			return err
		}
	}
	if err := writeEntry(cw, entry{name: "TRAILER!!!"}, 0); err != nil {
		return err
	}
	return closeFn()
}

// layout sorts files and adds parent directories before their children.
func layout(files []File) []entry {
	dirs := map[string]bool{"dev": true}
	var out []entry
	for _, f := range files {
		for d := path.Dir(f.Path); d != "." && d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for d := range dirs {
		out = append(out, entry{name: d, mode: sIFDIR | 0o755})
	}
	out = append(out, entry{name: "dev/console", mode: sIFCHR | 0o600, rmaj: 5, rmin: 1})
	for _, f := range files {
		out = append(out, entry{name: strings.TrimPrefix(path.Clean(f.Path), "/"), mode: sIFREG | f.Mode&0o7777, data: f.Data})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// writeEntry writes a newc header ("070701" and thirteen 8-digit hex
// fields), the NUL-terminated name padded to 4 bytes, and the data padded
// to 4 bytes.
func writeEntry(w io.Writer, e entry, mtime int64) error {
	nlink := 1
	if e.mode&sIFDIR != 0 {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		e.ino, e.mode, 0, 0, nlink, uint32(mtime), len(e.data), 0, 0, e.rmaj, e.rmin, len(e.name)+1, 0)
	buf := append([]byte(hdr), e.name...)
	buf = append(buf, 0)
	buf = pad4(buf)
	if _, err := w.Write(buf); err != nil {
		return err
	}
	if _, err := w.Write(e.data); err != nil {
		return err
	}
	_, err := w.Write(make([]byte, (4-len(e.data)%4)%4))
	return err
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func compressor(w io.Writer, c Compression) (io.Writer, func() error, error) {
	switch c {
	case Zstd:
		// The kernel's zstd decompressor wants frames with a known window
		// no larger than it can allocate; the default level's 8 MiB window
		// is what the kernel's own build uses for initramfs. The level is
		// Better, not Best: on the Debian cloud amd64 kernel's initramfs
		// (4.96 MB of cpio) Best took 0.80 CPU-s for 1.707 MB and Better
		// 0.06 s for 1.817 MB (+6%, read once at boot); the busybox
		// image's convert went from 2.6 to 2.2 user CPU-s, on the one
		// core this stage has (December 2026).
		zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(8<<20))
		if err != nil {
			return nil, nil, err
		}
		return zw, zw.Close, nil
	case Gzip:
		gw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
		if err != nil {
			return nil, nil, err
		}
		return gw, gw.Close, nil
	}
	return w, func() error { return nil }, nil
}
