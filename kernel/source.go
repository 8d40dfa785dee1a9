package kernel

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/c2vm/c2vm/internal/tarindex"
)

// source is a tree of files a kernel and its modules come from: a .deb's
// data archive, a directory, or the container's rootfs.
type source interface {
	names() []string // regular files, slash-separated, sorted
	// read returns a file's bytes, failing with ErrTooLarge past limit.
	read(name string, limit int64) ([]byte, error)
	Close() error
}

// fsSource is an fs.FS (a directory, the image's rootfs).
type fsSource struct {
	fsys  fs.FS
	files []string
}

func newFSSource(fsys fs.FS, roots ...string) (*fsSource, error) {
	s := &fsSource{fsys: fsys}
	for _, r := range roots {
		err := fs.WalkDir(fsys, r, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if d.Type().IsRegular() || d.Type()&fs.ModeSymlink != 0 && !strings.HasSuffix(p, "/build") && !strings.HasSuffix(p, "/source") {
				s.files = append(s.files, p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(s.files)
	return s, nil
}

func (s *fsSource) names() []string { return s.files }
func (s *fsSource) Close() error    { return nil }

// read checks that name is a regular file within limit before opening it:
// a FIFO would block the open, a symlink to /dev/zero never end.
func (s *fsSource) read(name string, limit int64) ([]byte, error) {
	return readFile(s.fsys, name, name, limit)
}

// readFile reads name in fsys, called what in errors.
func readFile(fsys fs.FS, name, what string, limit int64) ([]byte, error) {
	fi, err := fs.Stat(fsys, name)
	if err != nil {
		return nil, err
	}
	if err := checkRegular(what, fi, limit); err != nil {
		return nil, err
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAll(f, limit, what)
}

// checkRegular fails unless fi is a regular file of at most limit bytes.
func checkRegular(name string, fi fs.FileInfo, limit int64) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file (%s)", name, fi.Mode().Type())
	}
	if fi.Size() > limit {
		return tooLarge(fmt.Sprintf("%s: %d bytes", name, fi.Size()), limit)
	}
	return nil
}

// debSource is a Debian package read in Go (ar archive, deb(5)): its
// data.tar.{xz,zst,gz} is decompressed once into an unlinked temp file and
// indexed, so modules are read on demand.
type debSource struct {
	f       *os.File
	members map[string]tarindex.Member // in the spooled tar
	files   []string
}

func openDeb(p string, m Meter) (*debSource, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	data, name, err := arMember(f, fi.Size(), "data.tar")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	spool, err := os.CreateTemp("", ".c2vm-deb-")
	if err != nil {
		return nil, err
	}
	os.Remove(spool.Name())
	var r io.Reader = data
	if m != nil {
		w := m("unpack "+filepath.Base(p), data.Size())
		defer w.Close()
		r = io.TeeReader(data, w)
	}
	s, err := spoolData(spool, name, r)
	if err != nil {
		spool.Close()
		return nil, fmt.Errorf("%s: %s: %w", p, name, err)
	}
	return s, nil
}

// spoolData decompresses a .deb's data.tar into spool, at most maxDebData
// bytes of it, and indexes it.
func spoolData(spool *os.File, name string, data io.Reader) (*debSource, error) {
	dec, stop, err := streamDecompressor(name, data)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(spool, &capReader{r: dec, n: maxDebData, err: tooLarge("decompressed", maxDebData)})
	if serr := stop(); err == nil {
		err = serr // xz's own message when it failed; else the copy's
	}
	if err != nil {
		return nil, err
	}
	if err := checkTar(io.NewSectionReader(spool, 0, 1<<62)); err != nil {
		return nil, err
	}
	members, err := tarindex.Index(io.NewSectionReader(spool, 0, 1<<62))
	if err != nil {
		return nil, err
	}
	s := &debSource{f: spool, members: members}
	for n := range members {
		s.files = append(s.files, n)
	}
	sort.Strings(s.files)
	return s, nil
}

// checkTar bounds what tarindex.Index keeps in memory for a tar: the
// number of members and the length of their names. Reading only headers
// (archive/tar seeks over the data), it costs milliseconds.
func checkTar(r io.ReadSeeker) error {
	tr := tar.NewReader(r)
	var members, names int
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		members++
		names += len(h.Name) + len(h.Linkname)
		switch {
		case members > maxDebMembers:
			return fmt.Errorf("more than %d members: %w", maxDebMembers, ErrTooLarge)
		case names > maxDebNames:
			return tooLarge("names of its members", maxDebNames)
		}
	}
}

func (s *debSource) names() []string { return s.files }

func (s *debSource) read(name string, limit int64) ([]byte, error) {
	m, ok := s.members[name]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	if m.Size > limit {
		return nil, tooLarge(fmt.Sprintf("%s: %d bytes", name, m.Size), limit)
	}
	b := make([]byte, m.Size)
	if _, err := s.f.ReadAt(b, m.Offset); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return b, nil
}

func (s *debSource) Close() error { return s.f.Close() }

// arMember finds the first member whose name starts with prefix in a Unix
// ar archive of size bytes (deb(5), ar(5): "!<arch>\n", then members each
// behind a 60-byte header ending in "`\n" whose size field is ASCII
// decimal, data padded to an even offset). A size that is not a decimal
// number or runs past the end of the file is an error, so the walk only
// moves forward and ends.
func arMember(f io.ReaderAt, size int64, prefix string) (*io.SectionReader, string, error) {
	magic := make([]byte, 8)
	if _, err := f.ReadAt(magic, 0); err != nil || string(magic) != "!<arch>\n" {
		return nil, "", fmt.Errorf("not a Debian package (no ar magic): %w", ErrUnknownFormat)
	}
	hdr := make([]byte, 60)
	for off := int64(8); off < size; {
		if _, err := f.ReadAt(hdr, off); err != nil {
			return nil, "", fmt.Errorf("ar header at %d: truncated: %w", off, ErrUnknownFormat)
		}
		if string(hdr[58:]) != "`\n" {
			return nil, "", fmt.Errorf("ar header at %d: no \"`\\n\" terminator: %w", off, ErrUnknownFormat)
		}
		name := strings.TrimRight(strings.TrimSpace(string(hdr[:16])), "/")
		n, ok := arSize(hdr[48:58])
		if !ok || n > size-off-60 {
			return nil, "", fmt.Errorf("ar member %q at %d: size %q is not a decimal within the %d-byte file: %w", name, off, strings.TrimSpace(string(hdr[48:58])), size, ErrUnknownFormat)
		}
		if strings.HasPrefix(name, prefix) {
			return io.NewSectionReader(f, off+60, n), name, nil
		}
		off += 60 + n + n%2
	}
	return nil, "", fmt.Errorf("no %s* member: %w", prefix, ErrUnknownFormat)
}

// arSize parses ar(5)'s ar_size: decimal digits, space-padded on the right
// (no sign: strconv would take "-1" and walk backwards forever).
func arSize(field []byte) (int64, bool) {
	digits := strings.TrimRight(string(field), " ")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	return n, err == nil
}

// streamDecompressor prefers xz(1) for .xz data when it is installed: on
// the Debian cloud kernel (26 MB of xz, 108 MB of tar) it takes 0.8 s
// where the pure-Go github.com/ulikunitz/xz takes 16 s, and it takes a
// memory limit: an xz stream declares its dictionary size (up to 4 GiB),
// and decoders allocate it up front — ulikunitz/xz allocated 1.5 GiB for
// a 64-byte module declaring a 1.5 GiB dictionary. The Go decoder remains
// the fallback.
//
// stop ends the decompressor: it closes xz's output first, so that an xz
// still writing (its reader gave up at a limit or a bad header) dies of
// SIGPIPE instead of blocking Wait forever.
func streamDecompressor(name string, r io.Reader) (dec io.Reader, stop func() error, err error) {
	if strings.HasSuffix(name, ".xz") {
		if xzPath, err := exec.LookPath("xz"); err == nil {
			cmd := exec.Command(xzPath, "-dc", fmt.Sprintf("--memlimit-decompress=%d", xzMemlimit))
			cmd.Stdin = r
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			if err == nil && cmd.Start() == nil {
				return out, func() error {
					out.Close()
					if err := cmd.Wait(); err != nil && stderr.Len() > 0 {
						return fmt.Errorf("%s", strings.Join(strings.Fields(stderr.String()), " "))
					}
					return nil
				}, nil
			}
		}
	}
	d, err := decompressor(name, r)
	return d, func() error { return nil }, err
}

func decompressor(name string, r io.Reader) (io.Reader, error) {
	switch {
	case strings.HasSuffix(name, ".xz"):
		return xz.NewReader(r)
	case strings.HasSuffix(name, ".zst"):
		return newZstd(r)
	case strings.HasSuffix(name, ".gz"):
		return gzip.NewReader(r)
	case strings.HasSuffix(name, ".tar"):
		return r, nil
	}
	return nil, fmt.Errorf("unknown compression: %w", ErrUnknownFormat)
}

// newZstd decodes synchronously (no goroutines left behind by a reader
// nobody closes) and refuses a frame whose window exceeds MaxImageSize
// (the window is allocated up front; RFC 8878 allows up to 3.75 TiB).
func newZstd(r io.Reader) (*zstd.Decoder, error) {
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxImageSize))
}

// decompressFile decompresses a module or image by its name's suffix,
// failing past limit bytes.
func decompressFile(name string, b []byte, limit int64) ([]byte, error) {
	for _, ext := range []string{".xz", ".zst", ".gz"} {
		if strings.HasSuffix(name, ext) {
			r, stop, err := streamDecompressor(name, bytes.NewReader(b))
			if err != nil {
				return nil, err
			}
			d, err := readAll(r, limit, "decompressed")
			if serr := stop(); err == nil {
				err = serr
			}
			return d, err
		}
	}
	return b, nil
}
