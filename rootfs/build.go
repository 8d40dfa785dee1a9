package rootfs

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// ErrNotDir is returned when a path's parent is not a directory.
var ErrNotDir = errors.New("not a directory")

// node is a name in the tree.
type node struct {
	inode    *Inode
	children map[string]*node // nil unless a directory
	// layer is the number (from 1) of the last layer whose entry wrote
	// this name, for opaque markers (see Tree.written).
	layer uint32
}

// Tree is a flattened root filesystem: names and inodes, no file contents.
type Tree struct {
	root    *node
	closers []func() error
	created time.Time // mtime of directories the tree creates itself

	// layer is the number of the layer being applied; rewritten holds
	// the paths it wrote whose nodes it removed since (see written).
	layer     uint32
	rewritten map[string]struct{}
}

// NewTree returns a tree holding only a root directory with the given
// metadata (its Type is forced to TypeDir).
func NewTree(root Inode) *Tree {
	root.Type = TypeDir
	return &Tree{root: &node{inode: &root, children: map[string]*node{}}}
}

// Root returns the root directory's inode.
func (t *Tree) Root() *Inode { return t.root.inode }

// lookup returns the node at p, or nil.
func (t *Tree) lookup(p string) *node {
	n := t.root
	for _, el := range splitClean(p) {
		if n.children == nil {
			return nil
		}
		if n = n.children[el]; n == nil {
			return nil
		}
	}
	return n
}

// Lookup returns the inode named p, or nil when there is none.
func (t *Tree) Lookup(p string) *Inode {
	if n := t.lookup(p); n != nil {
		return n.inode
	}
	return nil
}

// Add puts ino at p, replacing what was there (a directory is replaced
// whole, children included, unless ino is also a directory, in which case
// only its metadata changes). The parent must exist and be a directory.
func (t *Tree) Add(p string, ino *Inode) error {
	els := splitClean(p)
	if len(els) == 0 {
		if ino.Type != TypeDir {
			return fmt.Errorf("add %q: root must be a directory", p)
		}
		t.root.inode = ino
		return nil
	}
	parent := t.lookup(strings.Join(els[:len(els)-1], "/"))
	if parent == nil || parent.children == nil {
		return fmt.Errorf("add %q: parent: %w", p, ErrNotDir)
	}
	name := els[len(els)-1]
	if old := parent.children[name]; old != nil && old.children != nil && ino.Type == TypeDir {
		old.inode = ino
		return nil
	}
	n := &node{inode: ino}
	if ino.Type == TypeDir {
		n.children = map[string]*node{}
	}
	parent.children[strings.Clone(name)] = n
	return nil
}

// Link makes p a new name for the inode at target.
func (t *Tree) Link(p, target string) error {
	tn := t.lookup(target)
	if tn == nil {
		return fmt.Errorf("link %q to %q: target does not exist", p, target)
	}
	if tn.children != nil {
		return fmt.Errorf("link %q to %q: target is a directory", p, target)
	}
	return t.Add(p, tn.inode)
}

// Remove deletes p and everything below it; a missing p is not an error.
func (t *Tree) Remove(p string) {
	els := splitClean(p)
	if len(els) == 0 {
		return
	}
	if parent := t.lookup(strings.Join(els[:len(els)-1], "/")); parent != nil && parent.children != nil {
		delete(parent.children, els[len(els)-1])
	}
}

// Clear removes every child of the directory p (an opaque whiteout).
func (t *Tree) Clear(p string) {
	if n := t.lookup(p); n != nil && n.children != nil {
		n.children = map[string]*node{}
	}
}

// Walk calls fn for every entry: the root first ("."), then depth-first
// with each directory's entries sorted by name (bytewise), so parents come
// before children. Before walking it recomputes every inode's Nlink. The
// first name of an inode in this order carries it; later names have
// LinkTarget set to that first name.
func (t *Tree) Walk(fn WalkFunc) error {
	t.countLinks()
	w := &walker{seen: map[*Inode]string{}, fn: fn}
	return w.walk(".", ".", t.root, 0)
}

// walker is one Walk's state.
type walker struct {
	seen map[*Inode]string
	fn   WalkFunc
	// names holds the sorted names of the directory being walked at
	// each depth, reused from one directory to the next (a slice per
	// directory was half of what a walk allocates).
	names [][]string
}

func (w *walker) walk(p, name string, n *node, depth int) error {
	e := Entry{Path: p, Name: name, Inode: n.inode}
	// Only an inode with several names is met again: remembering every
	// file's path would hold a map entry and a path per file (78 MB of
	// a million empty files' 411 MB at the squashfs writer's peak).
	if n.children == nil && n.inode.Nlink > 1 {
		if first, ok := w.seen[n.inode]; ok {
			e.LinkTarget = first
		} else {
			w.seen[n.inode] = p
		}
	}
	if err := w.fn(e); err != nil || n.children == nil {
		return err
	}
	if depth == len(w.names) {
		w.names = append(w.names, nil)
	}
	names := appendSortedNames(w.names[depth][:0], n.children)
	w.names[depth] = names
	for _, name := range names {
		cp := name
		if p != "." {
			cp = p + "/" + name
		}
		if err := w.walk(cp, name, n.children[name], depth+1); err != nil {
			return err
		}
	}
	return nil
}

func sortedNames(m map[string]*node) []string { return appendSortedNames(nil, m) }

// appendSortedNames appends m's keys to names, sorted.
func appendSortedNames(names []string, m map[string]*node) []string {
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// countLinks sets Nlink on every inode from the names that refer to it.
func (t *Tree) countLinks() {
	var reset, count func(n *node)
	reset = func(n *node) {
		n.inode.Nlink = 0
		for _, c := range n.children {
			reset(c)
		}
	}
	count = func(n *node) {
		if n.children == nil {
			n.inode.Nlink++
			return
		}
		n.inode.Nlink = 2
		for _, c := range n.children {
			if c.children != nil {
				n.inode.Nlink++
			}
			count(c)
		}
	}
	reset(t.root)
	count(t.root)
}

// OnClose registers a cleanup (e.g. removing a spool file) run by Close.
func (t *Tree) OnClose(f func() error) { t.closers = append(t.closers, f) }

// Close releases what the tree's contents are read from.
func (t *Tree) Close() error {
	var errs []error
	for i := len(t.closers) - 1; i >= 0; i-- {
		errs = append(errs, t.closers[i]())
	}
	t.closers = nil
	return errors.Join(errs...)
}
