package ext4

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/c2vm/c2vm/rootfs"
)

// seedScript returns the debugfs commands that recreate t in the root of
// a fresh filesystem, staging file contents and xattr values in stage.
//
// debugfs's parser (lib/ss/parse.c) splits words on blanks, keeps blanks
// inside double quotes and reads "" inside quotes as one quote; a line
// ends at a newline (and debugfs -f drops a carriage return), so names
// holding either cannot be said and are refused. Names are created from
// their parent directory as plain words (mkdir, write, symlink, mknod
// and ln take them literally), and set_inode_field and ea_set get
// "./name", so a name starting with "-" is never read as an option.
func seedScript(t *rootfs.Tree, stage string) (string, error) {
	s := &seeder{dir: stage}
	// A volume holds what the image has there and nothing else, as in
	// Docker: mke2fs's lost+found goes unless the image has one (an
	// initdb refuses a data directory holding it; e2fsck -fn does not
	// miss it, and e2fsck makes one when it needs it).
	if ino := t.Lookup("lost+found"); ino != nil && ino.Type == rootfs.TypeDir {
		s.lostFound = true
	} else if err := s.line("rmdir", `"lost+found"`); err != nil {
		return "", err
	}
	if err := t.Walk(s.entry); err != nil {
		return "", err
	}
	return s.b.String(), nil
}

type seeder struct {
	b   strings.Builder
	dir string // where contents are staged
	n   int    // files staged so far
	cwd string // debugfs's current directory, "" for the root
	// lostFound: the image has a lost+found directory, and mke2fs's is
	// kept for it.
	lostFound bool
}

// maxLine stays below the BUFSIZ buffer debugfs reads script lines into.
const maxLine = 8000

func (s *seeder) entry(e rootfs.Entry) error {
	if e.Path == "." {
		return s.meta("/", e.Inode)
	}
	if e.Inode.Type == rootfs.TypeSocket {
		return nil // a tar cannot carry one either: Docker's copy drops it
	}
	dir, base := path.Split(e.Path)
	if err := s.cd(strings.TrimSuffix(dir, "/")); err != nil {
		return err
	}
	name, err := quote(base)
	if err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	if e.LinkTarget != "" {
		target, err := quote("/" + e.LinkTarget)
		if err != nil {
			return err
		}
		return s.line("ln", target, name)
	}
	if err := s.create(e, name); err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	self, _ := quote("./" + base)
	if e.Inode.Type != rootfs.TypeDir && e.Inode.Nlink > 1 {
		// ln adds a name, not a reference: the count is set once here.
		if err := s.line("sif", self, "links_count", strconv.Itoa(int(e.Inode.Nlink))); err != nil {
			return err
		}
	}
	return s.meta(self, e.Inode)
}

// create makes the entry's inode under its quoted name in the current
// directory.
func (s *seeder) create(e rootfs.Entry, name string) error {
	ino := e.Inode
	dev := func(kind string) error {
		return s.line("mknod", name, kind, strconv.Itoa(int(ino.Devmajor)), strconv.Itoa(int(ino.Devminor)))
	}
	switch ino.Type {
	case rootfs.TypeDir:
		if e.Path == "lost+found" && s.lostFound {
			return nil // mke2fs made it; the image's metadata is set next
		}
		return s.line("mkdir", name)
	case rootfs.TypeRegular:
		staged, err := s.stageContent(e)
		if err != nil {
			return err
		}
		return s.line("write", staged, name)
	case rootfs.TypeSymlink:
		target, err := quote(ino.Linkname)
		if err != nil {
			return fmt.Errorf("symlink target: %w", err)
		}
		return s.line("symlink", name, target)
	case rootfs.TypeCharDev:
		return dev("c")
	case rootfs.TypeBlockDev:
		return dev("b")
	case rootfs.TypeFIFO:
		return s.line("mknod", name, "p")
	}
	return fmt.Errorf("unknown inode type %d", ino.Type)
}

// meta sets what debugfs does not take from the tree when it creates a
// name: type and mode, owners, the four times, xattrs.
func (s *seeder) meta(self string, ino *rootfs.Inode) error {
	sec := strconv.FormatInt(ino.ModTime.Unix(), 10)
	for _, f := range [][2]string{
		{"mode", fmt.Sprintf("0%o", ino.StatMode())},
		{"uid", strconv.FormatUint(uint64(ino.UID), 10)}, {"gid", strconv.FormatUint(uint64(ino.GID), 10)},
		{"atime", "@" + sec}, {"mtime", "@" + sec}, {"ctime", "@" + sec}, {"crtime", "@" + sec},
	} {
		if err := s.line("sif", self, f[0], f[1]); err != nil {
			return err
		}
	}
	names := make([]string, 0, len(ino.Xattrs))
	for k := range ino.Xattrs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		staged, err := s.stage(strings.NewReader(ino.Xattrs[k]), int64(len(ino.Xattrs[k])))
		if err != nil {
			return err
		}
		qk, err := quote(k)
		if err != nil {
			return fmt.Errorf("xattr %w", err)
		}
		if err := s.line("ea_set", "-f", staged, self, qk); err != nil {
			return err
		}
	}
	return nil
}

// cd makes dir (slash-separated, "" for the root) debugfs's current
// directory, one element per command to keep lines short.
func (s *seeder) cd(dir string) error {
	if dir == s.cwd {
		return nil
	}
	if err := s.line("cd", "/"); err != nil {
		return err
	}
	if dir != "" {
		for _, el := range strings.Split(dir, "/") {
			q, err := quote("./" + el)
			if err != nil {
				return err
			}
			if err := s.line("cd", q); err != nil {
				return err
			}
		}
	}
	s.cwd = dir
	return nil
}

func (s *seeder) stageContent(e rootfs.Entry) (string, error) {
	if e.Inode.Content == nil {
		return s.stage(strings.NewReader(""), 0)
	}
	rc, err := e.Inode.Content.Open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	return s.stage(rc, e.Inode.Size)
}

// stage copies size bytes from r into a new file of the stage directory
// and returns its quoted name.
func (s *seeder) stage(r io.Reader, size int64) (string, error) {
	p := filepath.Join(s.dir, "f"+strconv.Itoa(s.n))
	s.n++
	f, err := os.Create(p)
	if err != nil {
		return "", err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("%d bytes, want %d", n, size)
	}
	if err != nil {
		return "", fmt.Errorf("staging contents: %w", err)
	}
	return quote(p)
}

func (s *seeder) line(words ...string) error {
	l := strings.Join(words, " ")
	if len(l) > maxLine {
		return fmt.Errorf("a debugfs command of %d bytes (%.60s...): names too long to seed", len(l), l)
	}
	s.b.WriteString(l)
	s.b.WriteByte('\n')
	return nil
}

// quote makes one debugfs word of w.
func quote(w string) (string, error) {
	if strings.ContainsAny(w, "\n\r\x00") {
		return "", fmt.Errorf("name %q holds a newline, carriage return or NUL, which debugfs cannot be given", w)
	}
	return `"` + strings.ReplaceAll(w, `"`, `""`) + `"`, nil
}
