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

	"github.com/c2vm/c2vm/internal/tarindex"
)

// store gives the files of an image container: an OCI layout directory or
// a tar archive (oci-archive, docker-archive). Names are slash-separated
// and relative to the top.
type store interface {
	open(name string) (io.ReadCloser, int64, error)
	exists(name string) bool
	Close() error
}

// blobPath is where a layout keeps the blob with digest d.
func blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("invalid digest %q: %w", d, ErrCorrupt)
	}
	return path.Join("blobs", d.Algorithm().String(), d.Encoded()), nil
}

// cleanName rejects names that would leave the image's top directory.
func cleanName(name string) (string, error) {
	p := path.Clean(name)
	if path.IsAbs(p) || p == ".." || strings.HasPrefix(p, "../") || p == "." {
		return "", fmt.Errorf("path %q escapes the image: %w", name, ErrCorrupt)
	}
	return p, nil
}

// dirStore is an OCI layout directory.
type dirStore struct{ root string }

func (d dirStore) open(name string) (io.ReadCloser, int64, error) {
	c, err := cleanName(name)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(filepath.Join(d.root, filepath.FromSlash(c)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("%s: %w", name, ErrMissingBlob)
	}
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
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
// every file it opens).
type tarStore struct {
	f       *os.File
	members map[string]tarindex.Member
}

func openTarStore(p string) (*tarStore, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	members, err := tarindex.Index(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: reading archive: %w (%v)", p, ErrNotImage, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	for name, m := range members {
		if m.Offset+m.Size > fi.Size() {
			f.Close()
			return nil, fmt.Errorf("%s: member %s is truncated: %w", p, name, ErrCorrupt)
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

// readAll reads a small file (index, manifest, config) whole, bounded so a
// hostile archive cannot make us allocate gigabytes.
func readAll(s store, name string) ([]byte, error) {
	r, size, err := s.open(name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	const max = 64 << 20
	if size > max {
		return nil, fmt.Errorf("%s: %d bytes is too large for a JSON document: %w", name, size, ErrCorrupt)
	}
	return io.ReadAll(r)
}
