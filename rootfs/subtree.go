package rootfs

import (
	"fmt"
	"maps"
)

// Subtree returns a new tree holding a copy of the directory at p and
// everything below it: what Docker copies into a new volume mounted at p
// (moby daemon/volumes_unix.go copyExistingContents: the directory's
// contents copied with owners, modes, xattrs and the hardlinks between
// them, then copyOwnership gives the volume's root the directory's own
// uid, gid and mode).
//
// p is resolved as the container would see it: symlinks followed inside
// the tree (see resolve). A p that does not exist gives an empty tree whose
// root is a 0755 root:root directory, as Docker creates a missing mount
// point; a p that is not a directory is ErrNotDir.
//
// The copy has its own inodes (file contents are still read from t's
// spool, so t must stay open while the copy is used) and no closers:
// hardlinks to names outside p become single-name files of the copy.
func (t *Tree) Subtree(p string) (*Tree, error) {
	_, n, err := t.resolve(splitClean(p), true)
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", p, err)
	}
	if n == nil {
		return &Tree{root: &node{inode: &Inode{Type: TypeDir, Mode: 0o755, ModTime: t.created}, children: map[string]*node{}}, created: t.created}, nil
	}
	if n.children == nil {
		return nil, fmt.Errorf("volume %s: %w", p, ErrNotDir)
	}
	return &Tree{root: copyNode(n, map[*Inode]*Inode{}), created: t.created}, nil
}

// copyNode copies n and its children; copies maps each inode to its copy so
// that names sharing an inode (hardlinks) still share one.
func copyNode(n *node, copies map[*Inode]*Inode) *node {
	ino, ok := copies[n.inode]
	if !ok {
		c := *n.inode
		c.Xattrs = maps.Clone(n.inode.Xattrs)
		ino = &c
		copies[n.inode] = ino
	}
	out := &node{inode: ino}
	if n.children != nil {
		out.children = make(map[string]*node, len(n.children))
		for name, c := range n.children {
			out.children[name] = copyNode(c, copies)
		}
	}
	return out
}
