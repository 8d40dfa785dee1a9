package rootfs

import (
	"archive/tar"
	"errors"
	"testing"
)

// volumeImage has a /data volume seeded by a non-root user, a hardlink
// inside it and one to a file outside it, and /vol, a symlink to /data.
func volumeImage(t *testing.T) *Tree {
	return flatten(t, layer(
		ent{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		regular("etc/outside", "o"),
		ent{name: "data/", typ: tar.TypeDir, mode: 0o750, uid: 1000},
		ent{name: "data/f", body: "hello", mode: 0o4640, uid: 1000, pax: map[string]string{"SCHILY.xattr.user.k": "v"}},
		hardlink("data/f", "data/g"),
		hardlink("etc/outside", "data/o"),
		ent{name: "data/sub/", typ: tar.TypeDir, mode: 0o700, uid: 1000},
		symlink("/data", "vol"),
	))
}

// walkMap lists a tree's entries by path.
func walkMap(t *testing.T, tr *Tree) map[string]Entry {
	t.Helper()
	out := map[string]Entry{}
	if err := tr.Walk(func(e Entry) error { out[e.Path] = e; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSubtree(t *testing.T) {
	img := volumeImage(t)
	for _, p := range []string{"/data", "data/", "/vol"} {
		t.Run(p, func(t *testing.T) {
			sub, err := img.Subtree(p)
			if err != nil {
				t.Fatal(err)
			}
			es := walkMap(t, sub)
			root := es["."].Inode
			if root.Mode != 0o750 || root.UID != 1000 {
				t.Errorf("root %#o %d, want the directory's 0750 1000 (copyOwnership)", root.Mode, root.UID)
			}
			f := es["f"].Inode
			if f.Mode != 0o4640 || f.UID != 1000 || f.Xattrs["user.k"] != "v" || f.Nlink != 2 {
				t.Errorf("f: %+v", f)
			}
			if es["g"].LinkTarget != "f" {
				t.Errorf("g links to %q, want f", es["g"].LinkTarget)
			}
			if o := es["o"]; o.LinkTarget != "" || o.Inode.Nlink != 1 {
				t.Errorf("o (linked outside the volume): %q nlink %d", o.LinkTarget, o.Inode.Nlink)
			}
			if es["sub"].Inode.Mode != 0o700 || len(es) != 5 {
				t.Errorf("entries: %v", es)
			}
			if got := content(t, sub, "g"); got != "hello" {
				t.Errorf("g: %q", got)
			}
		})
	}
}

// TestSubtreeIsACopy: walking or changing the copy leaves the image's
// tree as it was (Walk recounts links on the inodes it sees).
func TestSubtreeIsACopy(t *testing.T) {
	img := volumeImage(t)
	sub, err := img.Subtree("data")
	if err != nil {
		t.Fatal(err)
	}
	walkMap(t, sub)
	sub.Lookup("f").Xattrs["user.k"] = "changed"
	sub.Root().Mode = 0o777
	es := walkMap(t, img)
	if es["data"].Inode.Mode != 0o750 || es["data/f"].Inode.Xattrs["user.k"] != "v" {
		t.Error("the copy shares metadata with the image")
	}
	if es["etc/outside"].Inode.Nlink != 2 {
		t.Errorf("etc/outside nlink %d after walking the copy, want 2", es["etc/outside"].Inode.Nlink)
	}
}

func TestSubtreeMissingOrNotDir(t *testing.T) {
	img := volumeImage(t)
	sub, err := img.Subtree("/var/lib/db")
	if err != nil {
		t.Fatal(err)
	}
	es := walkMap(t, sub)
	if r := es["."].Inode; len(es) != 1 || r.Mode != 0o755 || r.UID != 0 || r.GID != 0 {
		t.Errorf("missing path: %d entries, root %+v; want an empty 0755 root:root directory", len(es), r)
	}
	if _, err := img.Subtree("etc/outside"); !errors.Is(err, ErrNotDir) {
		t.Errorf("a file: %v, want ErrNotDir", err)
	}
}
