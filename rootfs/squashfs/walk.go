package squashfs

import (
	"fmt"
	"path"

	"github.com/c2vm/c2vm/rootfs"
)

// frame is a directory open during a walk: its subtree is being visited.
type frame struct {
	path    string
	name    string
	rec     irec
	count   uint32   // inodes numbered below it so far (newImage)
	entries []dentry // its listing so far (writeInodes)
}

// dentry is one name of a directory listing being written.
type dentry struct {
	name string
	ref  uint64
	num  uint32
	typ  rootfs.Type
}

// dirWalk follows a Walk (parents first, names sorted) with the stack of
// directories the current entry is inside. A directory is left — leave
// is called, parent nil for the root — as soon as the walk has gone past
// its subtree, so its children are all known then: the order mksquashfs
// writes inodes in, children before their directory.
type dirWalk struct {
	stack []*frame
	leave func(d, parent *frame) error
}

// to leaves the directories e is not inside and returns e's parent (nil
// for the root).
func (w *dirWalk) to(e rootfs.Entry) (*frame, error) {
	if e.Path == "." {
		return nil, nil
	}
	dir := path.Dir(e.Path)
	for len(w.stack) > 0 && w.stack[len(w.stack)-1].path != dir {
		if err := w.pop(); err != nil {
			return nil, err
		}
	}
	if len(w.stack) == 0 {
		return nil, fmt.Errorf("%s: parent not walked first", e.Path)
	}
	return w.stack[len(w.stack)-1], nil
}

func (w *dirWalk) push(e rootfs.Entry, r irec) *frame {
	f := &frame{path: e.Path, name: e.Name, rec: r}
	w.stack = append(w.stack, f)
	return f
}

func (w *dirWalk) pop() error {
	d := w.stack[len(w.stack)-1]
	w.stack = w.stack[:len(w.stack)-1]
	var parent *frame
	if len(w.stack) > 0 {
		parent = w.stack[len(w.stack)-1]
	}
	return w.leave(d, parent)
}

// finish leaves every directory still open, the root last.
func (w *dirWalk) finish() error {
	for len(w.stack) > 0 {
		if err := w.pop(); err != nil {
			return err
		}
	}
	return nil
}
