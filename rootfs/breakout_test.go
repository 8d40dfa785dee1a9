package rootfs

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Entries in the argument order of containerd's pkg/archive/tartest
// (Symlink(oldname, newname), Link(oldname, newname)), so the table below
// reads like the one it re-expresses.
func dir(name string) ent                        { return ent{name: name, typ: tar.TypeDir, mode: 0o755} }
func regular(name, body string) ent              { return ent{name: name, body: body} }
func symlink(target, name string) ent            { return ent{name: name, typ: tar.TypeSymlink, link: target} }
func hardlink(target, name string) ent           { return ent{name: name, typ: tar.TypeLink, link: target} }
func whiteout(name string) ent                   { return ent{name: name} }
func layers(ls ...tarLayer) []tarLayer           { return ls }
func one(es ...ent) []tarLayer                   { return layers(layer(es...)) }
func onTop(lower tarLayer, es ...ent) []tarLayer { return layers(lower, layer(es...)) }

// check is a validator of containerd's TestBreakouts, on the tree.
type check func(t *testing.T, tr *Tree)

// node resolves p inside the tree; followLast as os.Stat (true) or
// os.Lstat (false) would.
func nodeAt(t *testing.T, tr *Tree, p string, followLast bool) *node {
	t.Helper()
	_, n, err := tr.resolve(splitClean(p), followLast)
	if err != nil {
		t.Fatalf("resolving %s: %v", p, err)
	}
	return n
}

func fileValue(p, want string) check {
	return func(t *testing.T, tr *Tree) {
		t.Helper()
		if got := content(t, tr, p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
}

var unbroken = fileValue("etc/unbroken", "unbroken")

// sameFile is containerd's: both names, symlinks followed, are one inode.
func sameFile(a, b string) check {
	return func(t *testing.T, tr *Tree) {
		t.Helper()
		na, nb := nodeAt(t, tr, a, true), nodeAt(t, tr, b, true)
		if na == nil || nb == nil || na.inode != nb.inode {
			t.Errorf("%s and %s are not the same file", a, b)
		}
	}
}

func notSameFile(a, b string) check {
	return func(t *testing.T, tr *Tree) {
		t.Helper()
		na, nb := nodeAt(t, tr, a, true), nodeAt(t, tr, b, true)
		if na == nil || nb == nil || na.inode == nb.inode {
			t.Errorf("%s and %s: want two existing, different files", a, b)
		}
	}
}

// sameSymlinkFile: both names are symlinks with one target.
func sameSymlinkFile(a, b string) check {
	return func(t *testing.T, tr *Tree) {
		t.Helper()
		na, nb := nodeAt(t, tr, a, false), nodeAt(t, tr, b, false)
		if na == nil || nb == nil || na.inode.Type != TypeSymlink || nb.inode.Type != TypeSymlink ||
			na.inode.Linkname != nb.inode.Linkname {
			t.Errorf("%s and %s are not symlinks to one target", a, b)
		}
	}
}

func fileNotExists(p string) check {
	return func(t *testing.T, tr *Tree) {
		t.Helper()
		if nodeAt(t, tr, p, false) != nil {
			t.Errorf("%s exists", p)
		}
	}
}

func all(cs ...check) check {
	return func(t *testing.T, tr *Tree) {
		t.Helper()
		for _, c := range cs {
			c(t, tr)
		}
	}
}

// etcPasswd is the lower layer most whiteout and override cases start
// from (their fstest.Apply, made a layer).
func etcPasswd(body string, more ...ent) tarLayer {
	return layer(append([]ent{dir("/etc/"), regular("/etc/passwd", body)}, more...)...)
}

type breakout struct {
	name   string
	layers []tarLayer
	check  check
	err    error // errors.Is the error Flatten must return; errAny: any
}

// errAny marks a case containerd fails with an OS error (link(2) on a
// directory or a missing file) rather than a sentinel.
var errAny = errors.New("any error")

// TestBreakouts re-expresses containerd's whole TestBreakouts table
// (containerd/containerd pkg/archive/tar_test.go at commit
// 301026e58c619e63d09c0ec411012e54c0124b03) against Flatten: each row has
// containerd's name, its entries in its order (a case's fstest.Apply is a
// lower layer), and asserts containerd's outcome on the tree.
func TestBreakouts(t *testing.T) {
	// HardlinkSymlinkChmod plants names that are real host paths; the
	// host file must keep its mode (nothing is ever written outside).
	td := t.TempDir()
	perm400 := filepath.Join(td, "perm400")
	outside := filepath.Join(td, "also-exists-outside-root")
	for _, p := range []string{perm400, outside} {
		if err := os.WriteFile(p, []byte("..."), 0o400); err != nil {
			t.Fatal(err)
		}
	}
	const breakoutName = "foo/tmp/breakout-c2vm"
	cases := []breakout{
		{name: "SymlinkAbsolute", layers: one(
			dir("etc"), symlink("/etc", "localetc"), regular("/localetc/unbroken", "unbroken")),
			check: unbroken},
		{name: "SymlinkUpAndOut", layers: one(
			dir("etc"), dir("dummy"), symlink("/dummy/../etc", "localetc"), regular("/localetc/unbroken", "unbroken")),
			check: unbroken},
		{name: "SymlinkMultipleAbsolute", layers: one(
			dir("etc"), dir("dummy"), symlink("/etc", "/dummy/etc"), symlink("/dummy/etc", "localetc"),
			regular("/dummy/etc/unbroken", "unbroken")),
			check: unbroken},
		{name: "SymlinkMultipleRelative", layers: one(
			dir("etc"), dir("dummy"), symlink("/etc", "/dummy/etc"), symlink("./dummy/etc", "localetc"),
			regular("/dummy/etc/unbroken", "unbroken")),
			check: unbroken},
		{name: "SymlinkEmptyFile", layers: one(
			dir("etc"), regular("etc/emptied", "notempty"), symlink("/etc", "localetc"), regular("/localetc/emptied", "")),
			check: fileValue("etc/emptied", "")},
		{name: "HardlinkRelative", layers: one(
			dir("etc"), regular("/etc/passwd", "inside"), dir("breakouts"),
			symlink("../../etc", "breakouts/d1"), hardlink("/breakouts/d1/passwd", "breakouts/mypasswd")),
			check: sameFile("/breakouts/mypasswd", "/etc/passwd")},
		{name: "HardlinkDownAndOut", layers: one(
			dir("etc"), regular("/etc/passwd", "inside"), dir("breakouts"), dir("downandout"),
			symlink("../downandout/../../etc", "breakouts/d1"), hardlink("/breakouts/d1/passwd", "breakouts/mypasswd")),
			check: sameFile("/breakouts/mypasswd", "/etc/passwd")},
		{name: "HardlinkAbsolute", layers: one(
			dir("etc"), regular("/etc/passwd", "inside"), symlink("/etc", "localetc"), hardlink("/localetc/passwd", "localpasswd")),
			check: sameFile("localpasswd", "/etc/passwd")},
		{name: "HardlinkRelativeLong", layers: one(
			dir("etc"), regular("/etc/passwd", "inside"), symlink("../../../../../../../etc", "localetc"),
			hardlink("/localetc/passwd", "localpasswd")),
			check: sameFile("localpasswd", "/etc/passwd")},
		{name: "HardlinkRelativeUpAndOut", layers: one(
			dir("etc"), regular("/etc/passwd", "inside"), symlink("upandout/../../../etc", "localetc"),
			hardlink("/localetc/passwd", "localpasswd")),
			check: sameFile("localpasswd", "/etc/passwd")},
		{name: "HardlinkDirectRelative", layers: one(
			dir("etc"), regular("/etc/passwd", "inside"), hardlink("../../../../../etc/passwd", "localpasswd")),
			check: sameFile("localpasswd", "/etc/passwd")},
		{name: "HardlinkDirectAbsolute", layers: one(
			dir("etc"), regular("/etc/passwd", "inside"), hardlink("/etc/passwd", "localpasswd")),
			check: sameFile("localpasswd", "/etc/passwd")},
		{name: "SymlinkParentDirectory", layers: one(
			dir("etc"), regular("/etc/passwd", "inside"), symlink("/etc/", ".."), hardlink("/etc/passwd", "localpasswd")),
			check: sameFile("/localpasswd", "/etc/passwd")},
		{name: "SymlinkEmptyFilename", layers: one(
			dir("etc"), regular("/etc/passwd", "inside"), symlink("/etc/", ""), hardlink("/etc/passwd", "localpasswd")),
			check: sameFile("/localpasswd", "/etc/passwd")},
		{name: "SymlinkParentRelative", layers: one(
			dir("etc"), regular("/etc/passwd", "inside"), symlink("/etc/", "localetc/sub/.."),
			hardlink("/etc/passwd", "/localetc/localpasswd")),
			check: sameFile("/localetc/localpasswd", "/etc/passwd")},
		{name: "SymlinkSlashEnded", layers: one(
			dir("etc"), regular("/etc/passwd", "inside"), dir("localetc/"), hardlink("/etc/passwd", "/localetc/localpasswd")),
			check: sameFile("/localetc/localpasswd", "/etc/passwd")},
		{name: "SymlinkOverrideDirectory", layers: onTop(etcPasswd("inside", dir("/localetc/")),
			symlink("/etc", "localetc"), hardlink("/etc/passwd", "/localetc/localpasswd")),
			check: sameFile("/localetc/localpasswd", "/etc/passwd")},
		{name: "SymlinkOverrideDirectoryRelative", layers: onTop(etcPasswd("inside", dir("/localetc/")),
			symlink("../../etc", "localetc"), hardlink("/etc/passwd", "/localetc/localpasswd")),
			check: sameFile("/localetc/localpasswd", "/etc/passwd")},
		{name: "DirectoryOverrideSymlink", layers: onTop(etcPasswd("inside", symlink("/etc", "localetc")),
			dir("/localetc/"), hardlink("/etc/passwd", "/localetc/localpasswd")),
			check: sameFile("/localetc/localpasswd", "/etc/passwd")},
		{name: "DirectoryOverrideSymlinkAndHardlink", layers: onTop(
			etcPasswd("inside", symlink("etc", "localetc"), hardlink("/etc/passwd", "/localetc/localpasswd")),
			dir("/localetc/"), regular("/localetc/localpasswd", "different")),
			check: notSameFile("/localetc/localpasswd", "/etc/passwd")},
		{name: "WhiteoutRootParent", layers: onTop(etcPasswd("inside"), whiteout(".wh...")),
			err: ErrInvalidWhiteout},
		{name: "WhiteoutParent", layers: onTop(etcPasswd("inside"), whiteout("etc/.wh...")),
			err: ErrInvalidWhiteout},
		{name: "WhiteoutRoot", layers: onTop(etcPasswd("inside"), whiteout(".wh..")),
			err: ErrInvalidWhiteout},
		{name: "WhiteoutCurrentDirectory", layers: onTop(etcPasswd("inside"), whiteout("etc/.wh..")),
			err: ErrInvalidWhiteout},
		{name: "WhiteoutSymlink", layers: onTop(etcPasswd("all users", symlink("/etc", "localetc")),
			whiteout(".wh.localetc")),
			check: all(fileValue("etc/passwd", "all users"), fileNotExists("localetc"))},
		{name: "WhiteoutSymlinkPath", layers: onTop(
			etcPasswd("all users", regular("/etc/whitedout", "ahhhh whiteout"), symlink("/etc", "localetc")),
			whiteout("localetc/.wh.whitedout")),
			check: all(fileValue("etc/passwd", "all users"), fileNotExists("etc/whitedout"))},
		{name: "WhiteoutDirectoryName", layers: onTop(
			etcPasswd("all users", regular("/etc/whitedout", "ahhhh whiteout"), symlink("/etc", "localetc")),
			regular(".wh.etc/somefile", "non-empty")),
			check: all(fileValue("etc/passwd", "all users"), fileValue(".wh.etc/somefile", "non-empty"))},
		{name: "WhiteoutDeadSymlinkParent", layers: onTop(etcPasswd("all users", symlink("/dne", "localetc")),
			whiteout("localetc/.wh.etc")),
			check: fileValue("etc/passwd", "all users")},
		{name: "WhiteoutRelativePath", layers: onTop(etcPasswd("all users", symlink("/dne", "localetc")),
			whiteout("dne/../.wh.etc")),
			check: fileNotExists("etc/passwd")},
		{name: "SymlinkOverridePath", layers: one(
			dir("foo"), dir("foo/tmp"), regular(breakoutName, "\x00\x01\x02"), symlink("/", "foo"),
			regular(breakoutName, "\x03\x04\x05"), dir("foo"), dir("foo/tmp"), regular(breakoutName, "\x06\x07\x08")),
			// containerd checks the host's /tmp kept nothing; here the
			// write through foo -> / lands in the root's own /tmp.
			check: all(fileValue(breakoutName, "\x06\x07\x08"), fileValue("tmp/breakout-c2vm", "\x03\x04\x05"))},
		{name: "HardlinkSymlinkBeforeCreateTarget", layers: one(
			dir("etc"), symlink("/etc/passwd", "localpasswd"), hardlink("localpasswd", "localpasswd-dup"),
			regular("/etc/passwd", "after")),
			check: sameFile("localpasswd-dup", "/etc/passwd")},
		{name: "HardlinkSymlinkRelative", layers: one(
			dir("etc"), regular("/etc/passwd", "inside"), symlink("../../../../../etc/passwd", "passwdlink"),
			hardlink("/passwdlink", "localpasswd")),
			check: all(sameSymlinkFile("/localpasswd", "/passwdlink"), sameFile("/localpasswd", "/etc/passwd"))},
		{name: "HardlinkSymlinkAbsolute", layers: one(
			dir("etc"), regular("/etc/passwd", "inside"), symlink("/etc/passwd", "passwdlink"),
			hardlink("/passwdlink", "localpasswd")),
			check: all(sameSymlinkFile("/localpasswd", "/passwdlink"), sameFile("/localpasswd", "/etc/passwd"))},
		{name: "HardlinkSymlinkChmod", layers: one(symlink(perm400, outside), hardlink(outside, "sketchylink")),
			check: func(t *testing.T, tr *Tree) {
				sameSymlinkFile("sketchylink", outside)(t, tr)
				if fi, err := os.Lstat(perm400); err != nil || fi.Mode().Perm() != 0o400 {
					t.Errorf("host file %s changed: %v %v", perm400, fi.Mode(), err)
				}
				fileNotExists(perm400)(t, tr)
			}},
	}
	for _, bo := range cases {
		t.Run(bo.name, bo.run)
	}
}

func (bo breakout) run(t *testing.T) {
	var ls []Layer
	for _, l := range bo.layers {
		ls = append(ls, l)
	}
	tr, err := Flatten(context.Background(), ls, FlattenOptions{SpoolDir: t.TempDir()})
	if bo.err != nil || err != nil {
		if bo.err == nil || err == nil || bo.err != errAny && !errors.Is(err, bo.err) {
			t.Fatalf("Flatten: %v, want %v", err, bo.err)
		}
		return
	}
	defer tr.Close()
	bo.check(t, tr)
}

// chain is n symlinks l1 -> l2 -> ... -> ln -> d, d a directory.
func chain(n int) []ent {
	es := []ent{dir("d")}
	for i := 1; i <= n; i++ {
		next := "l" + strconv.Itoa(i+1)
		if i == n {
			next = "d"
		}
		es = append(es, symlink(next, "l"+strconv.Itoa(i)))
	}
	return es
}

// TestResolveInsideRoot: the shapes the ecosystem produces (issue 10) and
// the names that would leave the root all land inside it.
func TestResolveInsideRoot(t *testing.T) {
	mergedUsr := layer(dir("usr/"), dir("usr/bin/"), regular("usr/bin/busybox", "bb"), symlink("usr/bin", "bin"))
	cases := []breakout{
		{name: "merged-usr: layer 2 writes bin/added", layers: onTop(mergedUsr, regular("bin/added", "new")),
			check: all(fileValue("usr/bin/added", "new"),
				func(t *testing.T, tr *Tree) {
					if tr.Lookup("bin").Type != TypeSymlink {
						t.Error("bin is no longer a symlink")
					}
				})},
		{name: "merged-usr: hardlink and whiteout through the symlink",
			layers: onTop(mergedUsr, hardlink("/bin/busybox", "bin/sh"), whiteout("bin/.wh.busybox")),
			check:  all(fileValue("usr/bin/sh", "bb"), fileNotExists("usr/bin/busybox"))},
		{name: "merged-usr: absolute symlink", layers: onTop(
			layer(dir("usr/"), dir("usr/sbin/"), symlink("/usr/sbin", "sbin")), regular("sbin/init", "i")),
			check: fileValue("usr/sbin/init", "i")},
		{name: "dangling parent symlink creates its target", layers: onTop(
			layer(symlink("usr/lib", "lib")), regular("lib/x", "x")),
			check: all(fileValue("usr/lib/x", "x"), func(t *testing.T, tr *Tree) {
				if tr.Lookup("usr/lib").Type != TypeDir {
					t.Error("usr/lib not created as a directory")
				}
			})},
		{name: "dotdot name is clamped", layers: one(regular("../evil", "x"), regular("a/../../../b", "y")),
			check: all(fileValue("evil", "x"), fileValue("b", "y"))},
		{name: "hardlink with dotdot target is clamped", layers: one(
			regular("etc/shadow", "s"), hardlink("../../etc/shadow", "l")),
			check: sameFile("l", "etc/shadow")},
		{name: "relative link up and out", layers: onTop(layer(symlink("../../..", "up")), regular("up/x", "x")),
			check: fileValue("x", "x")},
		{name: "same-layer link to the root", layers: one(symlink("/", "d"), regular("d/x", "x")),
			check: fileValue("x", "x")},
		{name: "opaque marker through a symlinked dir", layers: onTop(
			layer(regular("real/old", "o"), symlink("real", "alias")), whiteout("alias/.wh..wh..opq"), regular("alias/new", "n")),
			check: all(fileNotExists("real/old"), fileValue("real/new", "n"))},
		{name: "255 links are followed", layers: onTop(layer(chain(maxLinks)...), regular("l1/x", "x")),
			check: fileValue("d/x", "x")},
		{name: "256 links are too many", layers: onTop(layer(chain(maxLinks+1)...), regular("l1/x", "x")),
			err: ErrTooManyLinks},
		{name: "symlink loop", layers: one(symlink("b", "a"), symlink("a", "b"), regular("a/x", "x")),
			err: ErrTooManyLinks},
		{name: "parent is a file", layers: one(regular("f", "f"), regular("f/x", "x")),
			err: ErrNotDir},
		{name: "hardlink to a directory", layers: one(dir("d"), hardlink("d", "l")), err: errAny},
		{name: "hardlink to nothing", layers: one(hardlink("nothing", "l")), err: errAny},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}

// TestBreakoutErrorText: "path escapes the root" is said only of the one
// name that would leave it.
func TestBreakoutErrorText(t *testing.T) {
	for name, want := range map[string]bool{".wh...": true, "etc/.wh...": false, ".wh..": false, "etc/.wh.": false} {
		_, err := Flatten(context.Background(), []Layer{layer(whiteout(name))}, FlattenOptions{SpoolDir: t.TempDir()})
		if !errors.Is(err, ErrInvalidWhiteout) || errors.Is(err, ErrUnsafePath) != want ||
			!strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v; want an invalid whiteout naming it (escapes: %v)", name, err, want)
		}
	}
	_, err := Flatten(context.Background(), []Layer{layer(regular("../../x", "x"), symlink("/", "s"), regular("s/../y", "y"))},
		FlattenOptions{SpoolDir: t.TempDir()})
	if err != nil {
		t.Errorf("names resolved inside the root refused: %v", err)
	}
}
