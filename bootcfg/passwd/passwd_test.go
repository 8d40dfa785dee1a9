package passwd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func userFS(passwd, group string) fstest.MapFS {
	return fstest.MapFS{"etc/passwd": {Data: []byte(passwd)}, "etc/group": {Data: []byte(group)}}
}

// TestResolveUserRules: runc's parsing rules (github.com/moby/sys
// user/user.go), and ids that do not fit runc's range are errors.
func TestResolveUserRules(t *testing.T) {
	passwd := "  # a comment\n\nroot:x:0:0:root:/root:/bin/sh\n  app:x:1000:1000::/home/app:/bin/sh  \n" +
		"app:x:1001:1001::/second:/bin/sh\nshort:x:77\nbig:x:4294967296:1::/:\nneg:x:-1:1::/:\n" +
		"word:x:abc:1::/:\nmax:x:2147483647:2147483647::/:\nover:x:2147483648:1::/:\nbadgid:x:5:root::/:\n"
	group := "root:x:0:\nstaff:x:50:app, other\nwide:x:4294967296:max\nbroken:x:nan:\nshort:x\nlong:x:60:app:extra\n"
	for _, tc := range []struct {
		spec string
		want User
		err  string // in the error; "" for none
	}{
		{"", User{Name: "root", Home: "/root"}, ""},
		{"app", User{UID: 1000, GID: 1000, Name: "app", Home: "/home/app", AdditionalGIDs: []uint32{50, 60}}, ""}, // first entry wins; members trimmed; extra fields ignored
		{"1001", User{UID: 1001, GID: 1001, Name: "app", Home: "/second", AdditionalGIDs: []uint32{50, 60}}, ""},
		{"max:0", User{UID: maxID, Name: "max", Home: "/"}, ""},
		// A supplementary group is checked as any other.
		{"max", User{}, `group "wide": /etc/group gives gid "4294967296": uids and gids`},
		// runc reads a missing id as 0 (root): c2vm refuses it.
		{"short", User{}, `user "short": /etc/passwd gives gid "": not a number`},
		{"4242:root", User{UID: 4242, Home: "/"}, ""},
		{"app:2147483647", User{UID: 1000, GID: maxID, Name: "app", Home: "/home/app"}, ""},
		{"4294967296", User{}, `user "4294967296": uids and gids must be in range 0-2147483647`},
		{"99999999999999999999", User{}, `user "99999999999999999999": uids and gids must be in range`},
		{"-1", User{}, `user "-1": uids and gids must be in range`},
		{"0:4294967296", User{}, `group "4294967296": uids and gids must be in range`},
		{"big", User{}, `user "big": /etc/passwd gives uid "4294967296": uids and gids must be in range`},
		{"over", User{}, `user "over": /etc/passwd gives uid "2147483648": uids and gids must be in range`},
		{"neg", User{}, `user "neg": /etc/passwd gives uid "-1": uids and gids`},
		{"word", User{}, `user "word": /etc/passwd gives uid "abc": not a number`},
		{"badgid", User{}, `user "badgid": /etc/passwd gives gid "root": not a number`},
		{"max:wide", User{}, `group "wide": /etc/group gives gid "4294967296": uids and gids`},
		{"0:broken", User{}, `group "broken": /etc/group gives gid "nan": not a number`},
		{"0:short", User{}, `group "short": /etc/group gives gid "": not a number`},
		{"ghost", User{}, `user "ghost": no such user`},
		{"0:ghosts", User{}, `group "ghosts": no such group`},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			u, err := ResolveUser(tc.spec, userFS(passwd, group))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ResolveUser = %+v, %v; want an error with %q", u, err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(u, tc.want) {
				t.Errorf("ResolveUser = %+v, %v; want %+v", u, err, tc.want)
			}
		})
	}
	// A uid of 2^32 is refused, not truncated to 0 (root).
	if _, err := ResolveUser("big", userFS(passwd, group)); !errors.Is(err, ErrIDRange) {
		t.Errorf("big: %v, want ErrIDRange", err)
	}
}

// streamFS serves etc/passwd and etc/group as endless streams of lines,
// never held: Stat reports size (which may lie) and mode.
type streamFS struct {
	size int64
	mode fs.FileMode
	line string
}

func (s streamFS) Open(name string) (fs.File, error) {
	if name != "etc/passwd" && name != "etc/group" {
		return nil, fs.ErrNotExist
	}
	return &streamFile{s: s}, nil
}

type streamFile struct {
	s   streamFS
	off int
}

func (f *streamFile) Stat() (fs.FileInfo, error) { return f, nil }
func (f *streamFile) Close() error               { return nil }
func (f *streamFile) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = f.s.line[f.off%len(f.s.line)]
		f.off++
	}
	return len(p), nil
}

func (f *streamFile) Name() string       { return "passwd" }
func (f *streamFile) Size() int64        { return f.s.size }
func (f *streamFile) Mode() fs.FileMode  { return f.s.mode }
func (f *streamFile) ModTime() time.Time { return time.Time{} }
func (f *streamFile) IsDir() bool        { return false }
func (f *streamFile) Sys() any           { return nil }

var _ io.Reader = (*streamFile)(nil)

// TestUserDBBounds: the image's databases are read within bounds — a
// 2 GiB file is refused before it is read, one that lies about its size
// is cut at the limit, a FIFO or a device is never opened — with one line
// naming the file, and the heap stays small.
func TestUserDBBounds(t *testing.T) {
	userLine := "u:x:1:1::/:/bin/sh\n"
	manyGroups := &strings.Builder{}
	for i := range maxGroups + 1 {
		fmt.Fprintf(manyGroups, "g%d:x:%d:app\n", i, 2000+i)
	}
	for _, tc := range []struct {
		name  string
		fsys  fs.FS
		spec  string
		err   string
		bound uint64 // bytes allocated at most
	}{
		{"2 GiB /etc/passwd", streamFS{2 << 30, 0o644, userLine}, "app", "/etc/passwd: 2147483648 bytes, more than 16 MiB", 1 << 20},
		{"endless /etc/passwd claiming 100 bytes", streamFS{100, 0o644, userLine}, "app", "/etc/passwd: more than 16 MiB", 256 << 20},
		{"endless line", streamFS{100, 0o644, "x"}, "app", "/etc/passwd: a line is longer than 65536 bytes", 1 << 20},
		{"endless /etc/group line", fstest.MapFS{"etc/passwd": {Data: []byte("app:x:1:1::/:\n")}, "etc/group": {Data: []byte("g:x:1:" + strings.Repeat("m,", 1<<20))}}, "app", "/etc/group: a line is longer than 1048576 bytes", 16 << 20},
		{"FIFO", streamFS{0, fs.ModeNamedPipe | 0o644, userLine}, "app", "/etc/passwd: not a regular file (p---------)", 1 << 20},
		{"char device", streamFS{0, fs.ModeDevice | fs.ModeCharDevice | 0o666, userLine}, "0", "/etc/passwd: not a regular file (Dc---------)", 1 << 20},
		{"directory", fstest.MapFS{"etc/passwd/x": {}}, "0", "/etc/passwd: not a regular file (d---------)", 1 << 20},
		{"past NGROUPS_MAX", userFS("app:x:1:1::/:\n", manyGroups.String()), "app", `user "app": in more than 65536 groups (NGROUPS_MAX)`, 64 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := ResolveUser(tc.spec, tc.fsys)
			runtime.ReadMemStats(&after)
			if err == nil || err.Error() != tc.err {
				t.Errorf("error %v, want %q", err, tc.err)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > tc.bound {
				t.Errorf("allocated %d KiB, bound %d KiB", grew>>10, tc.bound>>10)
			}
		})
	}
}

// FuzzUserDB: any /etc/passwd, /etc/group and USER resolve without a
// panic to ids within runc's range or to a one-line error; and a user
// written into a passwd is found again by name and by uid, with its uid
// exactly (or ErrIDRange), never truncated.
func FuzzUserDB(f *testing.F) {
	f.Add([]byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"), []byte("wheel:x:10:app\n"), "app", "svc", uint64(1000))
	f.Add([]byte("big:x:4294967296:0::/:\n"), []byte("g:x:4294967296:big\n"), "big", "u", uint64(1)<<32)
	f.Add([]byte("# c\n \nshort:x:7\n"), []byte("g:x\n"), "short:g", "x", uint64(maxID))
	f.Fuzz(func(t *testing.T, passwd, group []byte, spec, name string, uid uint64) {
		u, err := ResolveUser(spec, userFS(string(passwd), string(group)))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error of several lines: %q", err)
			}
		} else {
			for _, id := range append([]uint32{u.UID, u.GID}, u.AdditionalGIDs...) {
				if id > maxID {
					t.Fatalf("%q resolved to id %d", spec, id)
				}
			}
			if len(u.AdditionalGIDs) > maxGroups {
				t.Fatalf("%d supplementary groups", len(u.AdditionalGIDs))
			}
		}
		name = strings.TrimSpace(name)
		if name == "" || strings.ContainsAny(name, ":\n\r#") || strings.ContainsFunc(name, isSpace) {
			return
		}
		if _, numeric, _ := parseNumeric(name); numeric {
			return
		}
		db := userFS(fmt.Sprintf("%s:x:%d:%d::/home/%s:/bin/sh\n%s", name, uid, uid, name, passwd), "")
		for _, s := range []string{name, strconv.FormatUint(uid, 10)} {
			u, err := ResolveUser(s, db)
			switch {
			case uid > maxID && !errors.Is(err, ErrIDRange):
				t.Fatalf("uid %d via %q: %+v, %v; want ErrIDRange", uid, s, u, err)
			case uid <= maxID && (err != nil || u.UID != uint32(uid) || u.GID != uint32(uid) || u.Name != name):
				t.Fatalf("uid %d via %q: %+v, %v", uid, s, u, err)
			}
		}
	})
}

// isSpace is what bytes.TrimSpace trims (unicode.IsSpace).
func isSpace(r rune) bool { return strings.TrimSpace(string(r)) == "" }
