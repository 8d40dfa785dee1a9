package image

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/c2vm/c2vm/internal/safeio"
	"github.com/c2vm/c2vm/internal/tarindex"
)

// maxJSON bounds every JSON document read whole (index, manifest, config,
// manifest.json): the 4 MiB a registry accepts for a manifest body
// (distribution's registry/handlers/manifests.go, maxManifestBodySize).
const maxJSON = 4 << 20

// store gives the files of an image container: an OCI layout directory or
// a tar archive (oci-archive, docker-archive). Names are slash-separated
// and relative to the top. open gives regular files only, with their size.
type store interface {
	open(name string) (io.ReadCloser, int64, error)
	exists(name string) bool
	Close() error
}

// blobPath is where a layout keeps the blob with digest d.
func blobPath(d digest.Digest) (string, error) {
	if err := checkDigest(d); err != nil {
		return "", err
	}
	return path.Join("blobs", d.Algorithm().String(), d.Encoded()), nil
}

// checkDigest refuses a digest before anything uses it: go-digest panics
// on a digest without a colon and has no hash for an unknown algorithm.
func checkDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("digest %q: %w (%v)", d, ErrCorrupt, err)
	}
	return nil
}

// cleanName rejects names that would leave the image's top directory.
func cleanName(name string) (string, error) {
	p := path.Clean(name)
	if path.IsAbs(p) || p == ".." || strings.HasPrefix(p, "../") || p == "." {
		return "", fmt.Errorf("path %q escapes the image: %w", name, ErrCorrupt)
	}
	return p, nil
}

// openRegular opens p for reading and refuses anything but a regular file
// (after symlinks), a FIFO included (safeio.Open does not wait on one).
func openRegular(p string) (*os.File, int64, error) {
	f, err := safeio.Open(p)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is a %s: %w", p, fileKind(fi.Mode()), ErrNotRegular)
	}
	return f, fi.Size(), nil
}

// fileKind names a file type for an error message.
func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}

// dirStore is an OCI layout directory.
type dirStore struct{ root string }

func openDirStore(root string) (dirStore, error) {
	// Without search permission every file looks absent; say so instead
	// of "not an image".
	if _, err := os.Stat(filepath.Join(root, "oci-layout")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return dirStore{}, err
	}
	return dirStore{root: root}, nil
}

func (d dirStore) open(name string) (io.ReadCloser, int64, error) {
	c, err := cleanName(name)
	if err != nil {
		return nil, 0, err
	}
	f, size, err := openRegular(filepath.Join(d.root, filepath.FromSlash(c)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("%s: %w", name, ErrMissingBlob)
	}
	if err != nil {
		return nil, 0, err
	}
	return f, size, nil
}

func (d dirStore) exists(name string) bool {
	c, err := cleanName(name)
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(d.root, filepath.FromSlash(c)))
	return err == nil
}

func (dirStore) Close() error { return nil }

// tarStore is a tar archive indexed once: each member's offset and size,
// served through io.SectionReader, so no blob is searched for twice (unlike
// go-containerregistry's tarball package, which rescans the archive for
// every file it opens). Only regular members are indexed.
type tarStore struct {
	f       *os.File
	members map[string]tarindex.Member
}

func openTarStore(p string) (*tarStore, error) {
	f, _, err := openRegular(p)
	if err != nil {
		return nil, err
	}
	s, err := newTarStore(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// newTarStore indexes the archive f, which it then owns.
func newTarStore(f *os.File) (*tarStore, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	members, err := tarindex.Index(f)
	if err != nil {
		return nil, fmt.Errorf("reading archive: %w (%v)", ErrNotImage, err)
	}
	for name, m := range members {
		if m.Offset+m.Size > fi.Size() {
			return nil, fmt.Errorf("member %s is truncated: %w", name, ErrCorrupt)
		}
	}
	return &tarStore{f: f, members: members}, nil
}

func (s *tarStore) open(name string) (io.ReadCloser, int64, error) {
	c, err := cleanName(name)
	if err != nil {
		return nil, 0, err
	}
	m, ok := s.members[c]
	if !ok {
		return nil, 0, fmt.Errorf("%s: %w", name, ErrMissingBlob)
	}
	return io.NopCloser(io.NewSectionReader(s.f, m.Offset, m.Size)), m.Size, nil
}

func (s *tarStore) exists(name string) bool {
	c, err := cleanName(name)
	if err != nil {
		return false
	}
	_, ok := s.members[c]
	return ok
}

func (s *tarStore) Close() error { return s.f.Close() }

// readAll reads a JSON document whole, refusing one over maxJSON before
// reading it (and reading no more than that whatever the size claimed).
func readAll(s store, name string) ([]byte, error) {
	r, size, err := s.open(name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if size > maxJSON {
		return nil, fmt.Errorf("%s: %d bytes, over the %d MiB limit for a JSON document: %w", name, size, maxJSON>>20, ErrTooLarge)
	}
	b, err := io.ReadAll(io.LimitReader(r, maxJSON+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > maxJSON {
		return nil, fmt.Errorf("%s: over the %d MiB limit for a JSON document: %w", name, maxJSON>>20, ErrTooLarge)
	}
	return b, nil
}
