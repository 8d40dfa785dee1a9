package rootfs

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// This file is the one place that decides where a layer's name lands. It
// follows containerd's archive.Apply on Linux (containerd
// pkg/archive/tar.go: applyNaive, hardlinkRootPath, validateWhiteout) and
// the resolver it calls (containerd/continuity fs/path.go: RootPath): a
// name is cleaned lexically with the image root as "/", and every symlink
// met on the way is followed inside the tree: an absolute target starts
// again at the root, a relative one at the link's directory, and ".."
// stops at the root. So nothing can name a location outside the tree, and
// safety never comes from refusing what images contain.

var (
	// ErrUnsafePath is wrapped by the one error about a name that would
	// really leave the root: a whiteout of the root's parent (".wh...").
	// Every other name is resolved inside the root.
	ErrUnsafePath = errors.New("path escapes the root")
	// ErrInvalidWhiteout is wrapped when a whiteout names no entry of its
	// directory (".wh.", ".wh..", ".wh..."), which containerd refuses.
	ErrInvalidWhiteout = errors.New("invalid whiteout name")
	// ErrTooManyLinks is wrapped when resolving a name meets more
	// symlinks than maxLinks (a loop, or a chain built to exhaust us).
	ErrTooManyLinks = errors.New("too many levels of symbolic links")
	// ErrNameTooLong is wrapped when a name to create has a component
	// longer than NAME_MAX: no Linux filesystem can hold it.
	ErrNameTooLong = errors.New("file name too long")
)

const (
	// maxLinks is continuity's bound on the symlinks one resolution may
	// follow (fs/path.go walkLink: more than 255 is errTooManyLinks).
	maxLinks = 255
	// nameMax is Linux's NAME_MAX (include/uapi/linux/limits.h), the
	// longest directory entry ext4, squashfs and erofs can store.
	nameMax = 255
	// pathMax is Linux's PATH_MAX (same header), NUL included: containerd
	// gets ENAMETOOLONG from lstat for a longer path, and the bound keeps
	// a self-expanding symlink (l -> l/l/l/...) from growing a path for
	// all of its 255 links.
	pathMax = 4096
)

// splitClean turns a name into its elements below the root, cleaned
// lexically as filepath.Clean and RootPath's join with "/" do: "a/../b"
// is "b", and ".." at the top stays at the root. "", "." and "/" name the
// root (no elements).
func splitClean(p string) []string {
	p = strings.Trim(path.Clean("/"+p), "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// resolve follows els inside the tree as continuity's RootPath does and
// returns the resolved elements and the node they name (nil when it does
// not exist yet; missing elements are kept as they are). A symlink is
// replaced by its target and the walk starts again; followLast says
// whether a symlink in the last element is followed too. An element below
// a non-directory is ErrNotDir (lstat's ENOTDIR in containerd).
func (t *Tree) resolve(els []string, followLast bool) ([]string, *node, error) {
	links := 0
	n := t.root
	if err := checkLength(els); err != nil {
		return nil, nil, err
	}
	for i := 0; i < len(els); i++ {
		if n.children == nil {
			return nil, nil, fmt.Errorf("%s: %w", strings.Join(els[:i], "/"), ErrNotDir)
		}
		c := n.children[els[i]]
		if c == nil {
			return els, nil, nil
		}
		if c.inode.Type != TypeSymlink || !followLast && i == len(els)-1 {
			n = c
			continue
		}
		if links++; links > maxLinks {
			return nil, nil, fmt.Errorf("%s: %w", strings.Join(els[:i+1], "/"), ErrTooManyLinks)
		}
		dir := "/" + strings.Join(els[:i], "/")
		if path.IsAbs(c.inode.Linkname) {
			dir = "/"
		}
		els = splitClean(path.Join(dir, c.inode.Linkname, strings.Join(els[i+1:], "/")))
		if err := checkLength(els); err != nil {
			return nil, nil, err
		}
		n, i = t.root, -1
	}
	return els, n, nil
}

// mkdirs returns the directory at els (already resolved), creating what
// is missing as containerd's mkparent does: 0755, owned by root, with the
// tree's own mtime. An existing non-directory on the way is ErrNotDir.
func (t *Tree) mkdirs(els []string) (*node, error) {
	n := t.root
	for i, el := range els {
		c := n.children[el]
		if c == nil {
			if err := checkName(el); err != nil {
				return nil, err
			}
			c = &node{inode: &Inode{Type: TypeDir, Mode: 0o755, ModTime: t.created}, children: map[string]*node{}}
			if t.rewritten != nil && t.written(strings.Join(els[:i+1], "/")) {
				c.layer = t.layer
			}
			n.children[strings.Clone(el)] = c
		}
		if c.children == nil {
			return nil, fmt.Errorf("parent %s: %w", strings.Join(els[:i+1], "/"), ErrNotDir)
		}
		n = c
	}
	return n, nil
}

// checkLength refuses a path longer than PATH_MAX as seen from the root.
func checkLength(els []string) error {
	n := 1 // the leading "/"
	for _, el := range els {
		n += len(el) + 1
	}
	if n > pathMax {
		return fmt.Errorf("path of %d bytes: %w", n, ErrNameTooLong)
	}
	return nil
}

// checkName refuses a directory entry no Linux filesystem can store.
func checkName(el string) error {
	if len(el) > nameMax {
		return fmt.Errorf("component %.16q... is %d bytes: %w", el, len(el), ErrNameTooLong)
	}
	if strings.IndexByte(el, 0) >= 0 {
		return fmt.Errorf("component %q holds a NUL byte", el)
	}
	return nil
}

// linkTarget finds a hardlink's target as containerd's hardlinkRootPath
// does: the directory part resolved inside the root, the last element
// taken as it is (link(2) does not follow a symlink there, so a hardlink
// to a symlink shares the symlink).
func (t *Tree) linkTarget(linkname string) (*node, error) {
	dir, base := path.Split(linkname)
	els, n, err := t.resolve(splitClean(dir), true)
	if err != nil {
		return nil, err
	}
	switch {
	case base == "" || base == ".":
	case base == "..":
		// Resolved elements hold no symlink: their parent is lexical,
		// and the root's parent is the root (hardlinkRootPath).
		if len(els) > 0 {
			_, n, _ = t.resolve(els[:len(els)-1], false)
		}
	case n != nil && n.children != nil:
		n = n.children[base]
	default:
		n = nil
	}
	switch {
	case n == nil:
		return nil, fmt.Errorf("hard link target %q does not exist", linkname)
	case n.children != nil:
		return nil, fmt.Errorf("hard link target %q is a directory", linkname)
	}
	return n, nil
}

// whiteoutName returns the name a whiteout entry removes, refusing what
// containerd's validateWhiteout refuses: a name that is not an entry of
// the whiteout's own directory.
func whiteoutName(base string, atRoot bool) (string, error) {
	name := base[len(whiteoutPrefix):]
	switch {
	case name == ".." && atRoot:
		return "", fmt.Errorf("%w: %w", ErrInvalidWhiteout, ErrUnsafePath)
	case name == "" || name == "." || name == "..":
		return "", ErrInvalidWhiteout
	}
	return name, nil
}
