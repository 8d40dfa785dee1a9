// Package tarindex finds where each file's data lies in a tar stream, so
// the bytes can be read in place later (io.SectionReader over the archive
// or a spool of it) instead of being extracted. The image store, the
// kernel package reader and the flattener share it.
//
//	idx, err := tarindex.Index(f)
//	data := io.NewSectionReader(f, idx["boot/vmlinuz"].Offset, idx["boot/vmlinuz"].Size)
package tarindex

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
)

// Member is where a regular file's data lies in the uncompressed tar.
type Member struct{ Offset, Size int64 }

// Counter counts the bytes read through it: after tar.Reader.Next
// returns, N is the offset of the entry's data (archive/tar reads exactly
// the header blocks). When R can seek, so can Counter, and tar skips file
// data by seeking instead of reading it.
type Counter struct {
	R io.Reader
	N int64
}

func (c *Counter) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	c.N += int64(n)
	return n, err
}

var errNoSeek = errors.New("not seekable")

// ErrTooLarge is returned for an archive whose index would not fit the
// bounds below: a hostile archive of long names cannot make Index hold
// gigabytes.
var ErrTooLarge = errors.New("archive index too large")

// Bounds of what Index keeps. No path on Linux is longer than PATH_MAX
// (4096, include/uapi/linux/limits.h); a member with a longer name cannot
// be a file anyone opens, so it is not indexed. Each kept member costs its
// name plus entryCost (a map entry's own bytes, roughly), so neither long
// names nor millions of empty members grow the index past maxNameBytes.
const (
	maxName      = 4096
	maxNameBytes = 64 << 20
	entryCost    = 64
)

// Seek implements io.Seeker when R does; otherwise archive/tar, seeing the
// error, falls back to reading.
func (c *Counter) Seek(off int64, whence int) (int64, error) {
	s, ok := c.R.(io.Seeker)
	if !ok {
		return 0, errNoSeek
	}
	n, err := s.Seek(off, whence)
	if err == nil {
		c.N = n
	}
	return n, err
}

// Index reads a whole tar stream and returns its regular files by cleaned
// name (no leading slash). A symlink to a regular file in the archive is
// indexed as that file (a package's vmlinuz → boot/vmlinuz-VER). The
// stream is read to its end, so a hashing or teeing reader sees it all.
func Index(r io.Reader) (map[string]Member, error) {
	c := &Counter{R: r}
	tr := tar.NewReader(c)
	members := map[string]Member{}
	links := map[string]string{}
	kept := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(h.Name) > maxName || len(h.Linkname) > maxName {
			continue
		}
		name := Clean(h.Name)
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeCont: // GNU's contiguous file is a regular file to tar
			members[name] = Member{Offset: c.N, Size: h.Size}
			kept += entryCost + len(name)
		case tar.TypeSymlink:
			links[name] = Clean(path.Join(path.Dir(name), h.Linkname))
			kept += entryCost + len(name) + len(links[name])
		}
		if kept > maxNameBytes {
			return nil, fmt.Errorf("index of more than %d MiB: %w", maxNameBytes>>20, ErrTooLarge)
		}
	}
	if _, err := io.Copy(io.Discard, c); err != nil {
		return nil, err
	}
	for l, target := range links {
		if m, ok := members[target]; ok {
			if _, exists := members[l]; !exists {
				members[l] = m
			}
		}
	}
	return members, nil
}

// Clean names a member as Index does: slash-separated, no leading slash,
// never above the archive's top.
func Clean(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}
