package rootfs

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/c2vm/c2vm/internal/tarindex"
)

// Layer is one layer's uncompressed tar stream (image.Layer satisfies it).
type Layer interface {
	Open() (io.ReadCloser, error)
}

// FlattenOptions configure Flatten; the zero value is the default.
type FlattenOptions struct {
	// SpoolDir holds the decompressed layers while the tree is in use
	// ("" = os.TempDir()). The spool files are unlinked at once, so
	// nothing is left behind even on a crash.
	SpoolDir string
	// ModTime is the mtime of what Flatten creates itself — the root and
	// parent directories no layer lists (SOURCE_DATE_EPOCH); zero means
	// the Unix epoch.
	ModTime time.Time
}

// OCI image spec, layer.md "Whiteouts".
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// Flatten merges the layers in forward order into one tree, applying
// whiteouts and opaque directories as the OCI image spec describes. File
// contents are not held in memory: each layer's decompressed stream is
// spooled once, and the tree's Content readers point into the spool.
func Flatten(ctx context.Context, layers []Layer, opts FlattenOptions) (*Tree, error) {
	if opts.ModTime.IsZero() {
		opts.ModTime = time.Unix(0, 0)
	}
	t := NewTree(Inode{Mode: 0o755, ModTime: opts.ModTime.UTC()})
	t.created = opts.ModTime.UTC()
	for i, l := range layers {
		if err := ctx.Err(); err != nil {
			t.Close()
			return nil, err
		}
		if err := t.applyLayer(l, opts.SpoolDir); err != nil {
			t.Close()
			return nil, fmt.Errorf("layer %d: %w", i+1, err)
		}
	}
	return t, nil
}

// change is one tar entry of a layer, applied after the whole layer was
// read, so whiteouts apply only to lower layers whatever their tar order.
type change struct {
	path     string
	inode    *Inode
	linkTo   string // hardlink target
	whiteout bool   // remove path
	opaque   bool   // clear directory path
}

func (t *Tree) applyLayer(l Layer, spoolDir string) error {
	rc, err := l.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	spool, err := newSpool(spoolDir)
	if err != nil {
		return err
	}
	t.OnClose(spool.f.Close)
	changes, err := readLayer(rc, spool)
	if err != nil {
		return err
	}
	if err := spool.w.Flush(); err != nil {
		return fmt.Errorf("spooling layer: %w", err)
	}
	return t.apply(changes)
}

// spool is a layer's decompressed bytes on disk.
type spool struct {
	f *os.File
	w *bufio.Writer
}

func newSpool(dir string) (*spool, error) {
	f, err := os.CreateTemp(dir, ".c2vm-spool-")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	os.Remove(f.Name()) // keep the open file only
	return &spool{f: f, w: bufio.NewWriterSize(f, 1<<20)}, nil
}

func readLayer(rc io.Reader, sp *spool) ([]change, error) {
	// Offsets into the spool: what tar.Reader consumed before each entry's data.
	cr := &tarindex.Counter{R: io.TeeReader(rc, sp.w)}
	tr := tar.NewReader(cr)
	var changes []change
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading tar: %w", err)
		}
		c, err := toChange(h, sp.f, cr.N)
		if err != nil {
			return nil, err
		}
		if c != nil {
			changes = append(changes, *c)
		}
	}
	// Read past the end-of-archive blocks to EOF so the layer's digests
	// are checked.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return nil, err
	}
	return changes, nil
}

func toChange(h *tar.Header, spoolFile *os.File, off int64) (*change, error) {
	p, err := CleanPath(h.Name)
	if err != nil {
		return nil, err
	}
	base, dir := path.Base(p), path.Dir(p)
	switch {
	case base == whiteoutOpaque:
		return &change{path: dir, opaque: true}, nil
	case strings.HasPrefix(base, whiteoutPrefix):
		return &change{path: path.Join(dir, base[len(whiteoutPrefix):]), whiteout: true}, nil
	}
	if isSparse(h) {
		return nil, fmt.Errorf("%s: sparse tar entries are not supported", p)
	}
	ino := &Inode{
		Mode:    uint32(h.Mode) & 0o7777,
		UID:     h.Uid,
		GID:     h.Gid,
		ModTime: h.ModTime.UTC().Truncate(time.Second),
		Xattrs:  xattrs(h),
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		ino.Type, ino.Size = TypeRegular, h.Size
		if h.Size > 0 {
			ino.Content = spoolContent{f: spoolFile, off: off, size: h.Size}
		}
	case tar.TypeDir:
		ino.Type = TypeDir
	case tar.TypeSymlink:
		ino.Type, ino.Linkname = TypeSymlink, h.Linkname
	case tar.TypeLink:
		target, err := CleanPath(h.Linkname)
		if err != nil {
			return nil, fmt.Errorf("hardlink %s: %w", p, err)
		}
		return &change{path: p, linkTo: target}, nil
	case tar.TypeChar, tar.TypeBlock:
		ino.Type = TypeCharDev
		if h.Typeflag == tar.TypeBlock {
			ino.Type = TypeBlockDev
		}
		ino.Devmajor, ino.Devminor = uint32(h.Devmajor), uint32(h.Devminor)
	case tar.TypeFifo:
		ino.Type = TypeFIFO
	default:
		return nil, nil // pax globals, vendor extensions: nothing in the tree
	}
	return &change{path: p, inode: ino}, nil
}

func isSparse(h *tar.Header) bool {
	if h.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range h.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// xattrs reads PAX SCHILY.xattr.* records (as GNU tar and containerd
// write them).
func xattrs(h *tar.Header) map[string]string {
	const prefix = "SCHILY.xattr."
	var m map[string]string
	for k, v := range h.PAXRecords {
		if name, ok := strings.CutPrefix(k, prefix); ok {
			if m == nil {
				m = map[string]string{}
			}
			m[name] = v
		}
	}
	return m
}

// apply makes one layer's changes: opaque dirs and whiteouts first (they
// hide lower layers only), then entries in tar order.
func (t *Tree) apply(changes []change) error {
	for _, c := range changes {
		if err := t.checkParents(c.path); err != nil {
			if c.opaque || c.whiteout {
				continue // nothing below a non-directory to hide
			}
			return err
		}
		switch {
		case c.opaque:
			t.Clear(c.path)
		case c.whiteout:
			t.Remove(c.path)
		}
	}
	for _, c := range changes {
		if c.opaque || c.whiteout {
			continue
		}
		if err := t.ensureParents(c.path); err != nil {
			return err
		}
		var err error
		if c.linkTo != "" {
			if err = t.checkParents(c.linkTo); err == nil {
				err = t.Link(c.path, c.linkTo)
			}
		} else {
			err = t.Add(c.path, c.inode)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkParents refuses a path whose parent, as the tree stands, is a
// symlink: writing there would write through the link, possibly outside
// the root.
func (t *Tree) checkParents(p string) error {
	n := t.root
	els := splitClean(p)
	for i, el := range els[:max(len(els)-1, 0)] {
		c := n.children[el]
		if c == nil {
			return nil
		}
		if c.inode.Type == TypeSymlink {
			return fmt.Errorf("%s: parent %s is a symlink: %w", p, strings.Join(els[:i+1], "/"), ErrUnsafePath)
		}
		if c.children == nil {
			return fmt.Errorf("%s: parent %s is not a directory: %w", p, strings.Join(els[:i+1], "/"), ErrNotDir)
		}
		n = c
	}
	return nil
}

// ensureParents creates missing parent directories (0755, root, ModTime)
// for layers that list a file before, or without, its directory.
func (t *Tree) ensureParents(p string) error {
	if err := t.checkParents(p); err != nil {
		return err
	}
	els := splitClean(p)
	n := t.root
	for _, el := range els[:max(len(els)-1, 0)] {
		c := n.children[el]
		if c == nil {
			c = &node{inode: &Inode{Type: TypeDir, Mode: 0o755, ModTime: t.created}, children: map[string]*node{}}
			n.children[el] = c
		}
		n = c
	}
	return nil
}

// spoolContent is a regular file's bytes inside a layer spool.
type spoolContent struct {
	f         *os.File
	off, size int64
}

func (s spoolContent) Open() (io.ReadCloser, error) {
	return io.NopCloser(io.NewSectionReader(s.f, s.off, s.size)), nil
}
