package bootcfg

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// Errors for a USER that names someone the image does not know.
var (
	ErrUnknownUser  = errors.New("no such user")
	ErrUnknownGroup = errors.New("no such group")
)

// User is a resolved container user.
type User struct {
	UID, GID       uint32
	Name           string // "" when the uid has no passwd entry
	Home           string // "/" when unknown, as Docker
	AdditionalGIDs []uint32
}

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// readColon parses a colon-separated database file (passwd(5), group(5)),
// skipping blank lines, comments and malformed lines as libc does. A
// missing file is an empty database.
func readColon(fsys fs.FS, name string, minFields int) [][]string {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil
	}
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if f := strings.Split(line, ":"); len(f) >= minFields {
			out = append(out, f)
		}
	}
	return out
}

func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

func readPasswd(fsys fs.FS) []passwdEntry {
	var out []passwdEntry
	for _, f := range readColon(fsys, "etc/passwd", 7) {
		uid, ok1 := parseID(f[2])
		gid, ok2 := parseID(f[3])
		if ok1 && ok2 {
			out = append(out, passwdEntry{name: f[0], uid: uid, gid: gid, home: f[5]})
		}
	}
	return out
}

func readGroup(fsys fs.FS) []groupEntry {
	var out []groupEntry
	for _, f := range readColon(fsys, "etc/group", 4) {
		gid, ok := parseID(f[2])
		if !ok {
			continue
		}
		var members []string
		for _, m := range strings.Split(f[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				members = append(members, m)
			}
		}
		out = append(out, groupEntry{name: f[0], gid: gid, members: members})
	}
	return out
}

// ResolveUser resolves an image USER ("", name, uid, name:group, uid:gid,
// name:gid, uid:group) against the rootfs's /etc/passwd and /etc/group,
// as runc's user.GetExecUser does: a numeric id needs no entry, a name
// must exist; supplementary groups are the groups listing the user's name,
// unless a group is given explicitly.
func ResolveUser(spec string, rootfs fs.FS) (User, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	passwd := readPasswd(rootfs)
	groups := readGroup(rootfs)
	u := User{Home: "/"}
	if userPart == "" {
		userPart = "0"
	}
	if id, ok := parseID(userPart); ok {
		u.UID = id
		for _, p := range passwd {
			if p.uid == id {
				u.Name, u.GID, u.Home = p.name, p.gid, p.home
				break
			}
		}
	} else {
		found := false
		for _, p := range passwd {
			if p.name == userPart {
				u.Name, u.UID, u.GID, u.Home, found = p.name, p.uid, p.gid, p.home, true
				break
			}
		}
		if !found {
			return User{}, fmt.Errorf("user %q: %w in the image's /etc/passwd", userPart, ErrUnknownUser)
		}
	}
	if hasGroup {
		gid, err := resolveGroup(groupPart, groups)
		if err != nil {
			return User{}, err
		}
		u.GID = gid
	}
	if u.Home == "" {
		u.Home = "/"
	}
	// Supplementary groups only in the implicit form (no ":group"), as
	// runc's user.GetExecUser: an explicit group means exactly that group.
	if u.Name != "" && !hasGroup {
		seen := map[uint32]bool{u.GID: true}
		for _, g := range groups {
			if !seen[g.gid] && contains(g.members, u.Name) {
				seen[g.gid] = true
				u.AdditionalGIDs = append(u.AdditionalGIDs, g.gid)
			}
		}
	}
	return u, nil
}

func resolveGroup(s string, groups []groupEntry) (uint32, error) {
	if id, ok := parseID(s); ok {
		return id, nil
	}
	for _, g := range groups {
		if g.name == s {
			return g.gid, nil
		}
	}
	return 0, fmt.Errorf("group %q: %w in the image's /etc/group", s, ErrUnknownGroup)
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
