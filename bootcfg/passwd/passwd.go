// Package passwd resolves a container USER (name or uid[:group or gid])
// against an image's /etc/passwd and /etc/group, read through an fs.FS, as
// runc does. The host resolves the image config's USER with it when it
// converts; the guest agent resolves exec's -u with it in the running root.
// It is a leaf package (standard library only).
package passwd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
)

// Errors for a USER that names someone the image does not know, or an id
// the container cannot run as.
var (
	ErrUnknownUser  = errors.New("no such user")
	ErrUnknownGroup = errors.New("no such group")
	// ErrIDRange is runc's range for uids and gids (github.com/moby/sys
	// user/user.go, parseNumeric): the kernel allows up to 2^32-2, but
	// runc, and so Docker, refuse ids past MaxInt32 (after containerd
	// de1341c2). An id outside it is an error, never truncated.
	ErrIDRange = fmt.Errorf("uids and gids must be in range 0-%d", maxID)
)

const maxID = 1<<31 - 1

// Bounds on the image's /etc/passwd and /etc/group, which are untrusted.
// runc streams them with no bound on their size; c2vm checks the size
// before reading, so a 2 GiB file fails at once instead of being read.
const (
	// maxUserDB is 8 000 times Debian 12's /etc/passwd (1.9 KiB); a
	// directory export of 100 000 users is about 8 MiB.
	maxUserDB = 16 << 20
	// Line lengths as runc's parser: bufio.Scanner's default 64 KiB for
	// passwd, 1 MiB for group, whose member lists may be long.
	maxPasswdLine = bufio.MaxScanTokenSize
	maxGroupLine  = 1 << 20
	// maxGroups is the kernel's NGROUPS_MAX (include/uapi/linux/limits.h):
	// setgroups(2) takes no more supplementary groups.
	maxGroups = 65536
)

// User is a resolved container user.
type User struct {
	UID, GID       uint32
	Name           string // "" when the uid has no passwd entry
	Home           string // "/" when unknown, as Docker
	AdditionalGIDs []uint32
}

// dbFile is one of the image's colon-separated databases (passwd(5),
// group(5)).
type dbFile struct {
	path    string // in the rootfs, no leading slash
	maxLine int
}

var (
	passwdDB = dbFile{"etc/passwd", maxPasswdLine}
	groupDB  = dbFile{"etc/group", maxGroupLine}
)

// scan calls fn with the colon-separated fields of each entry until fn
// returns true. As runc (and glibc), lines are trimmed and blank or '#'
// lines skipped; a line with fewer fields reads the missing ones as empty
// (an empty id is refused when used). A missing file is an empty database; anything but a regular
// file of at most maxUserDB bytes, or a line past maxLine, is an error.
func (db dbFile) scan(fsys fs.FS, fn func(fields []string) bool) error {
	f, err := db.open(fsys)
	if f == nil {
		return err
	}
	defer f.Close()
	lr := &io.LimitedReader{R: f, N: maxUserDB + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(nil, db.maxLine)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 || b[0] == '#' {
			continue
		}
		if fn(strings.Split(string(b), ":")) {
			return nil
		}
	}
	switch err := sc.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		return fmt.Errorf("/%s: a line is longer than %d bytes", db.path, db.maxLine)
	case err != nil:
		return fmt.Errorf("reading /%s: %w", db.path, err)
	case lr.N == 0:
		return fmt.Errorf("/%s: more than %d MiB", db.path, maxUserDB>>20)
	}
	return nil
}

// open checks the file before opening it: a FIFO would block the open, a
// device or a huge file never end.
func (db dbFile) open(fsys fs.FS) (fs.File, error) {
	fi, err := fs.Stat(fsys, db.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading /%s: %w", db.path, err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("/%s: not a regular file (%s)", db.path, fi.Mode().Type())
	case fi.Size() > maxUserDB:
		return nil, fmt.Errorf("/%s: %d bytes, more than %d MiB", db.path, fi.Size(), maxUserDB>>20)
	}
	f, err := fsys.Open(db.path)
	if err != nil {
		return nil, fmt.Errorf("reading /%s: %w", db.path, err)
	}
	return f, nil
}

// field returns fields[i], "" when the line is short.
func field(fields []string, i int) string {
	if i < len(fields) {
		return fields[i]
	}
	return ""
}

// parseNumeric reads a USER's user or group part as runc does: decimal
// digits make an id, which must be within ErrIDRange; anything else is a
// name.
func parseNumeric(s string) (id uint32, numeric bool, err error) {
	n, err := strconv.Atoi(s)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return 0, true, ErrIDRange
	case err != nil:
		return 0, false, nil
	case n < 0 || n > maxID:
		return 0, true, ErrIDRange
	}
	return uint32(n), true, nil
}

// entryID reads an id field of an entry c2vm is about to use: unlike runc,
// which reads a malformed id as 0 (root), anything but an id in range is
// an error.
func entryID(db dbFile, entry, what, s string) (uint32, error) {
	id, numeric, err := parseNumeric(s)
	if err == nil && !numeric {
		err = errors.New("not a number")
	}
	if err != nil {
		return 0, fmt.Errorf("%s %q: /%s gives %s %q: %w", db.entryKind(), entry, db.path, what, s, err)
	}
	return id, nil
}

func (db dbFile) entryKind() string {
	if db == groupDB {
		return "group"
	}
	return "user"
}

// ResolveUser resolves an image USER ("", name, uid, name:group, uid:gid,
// name:gid, uid:group) against the rootfs's /etc/passwd and /etc/group,
// as runc's user.GetExecUser does: a numeric id needs no entry, a name
// must exist, the first matching entry wins; supplementary groups are the
// groups listing the user's name, unless a group is given explicitly.
func ResolveUser(spec string, rootfs fs.FS) (User, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" {
		userPart = "0"
	}
	u, err := resolveUser(userPart, rootfs)
	if err != nil {
		return User{}, err
	}
	if hasGroup {
		if u.GID, err = resolveGroup(groupPart, rootfs); err != nil {
			return User{}, err
		}
		// An explicit group means exactly that group, as runc.
		return u, nil
	}
	if u.Name != "" {
		if u.AdditionalGIDs, err = memberOf(u.Name, u.GID, rootfs); err != nil {
			return User{}, err
		}
	}
	return u, nil
}

// resolveUser finds the user (name or uid) in /etc/passwd; a uid without
// an entry runs as that uid, gid 0, home "/".
func resolveUser(s string, rootfs fs.FS) (User, error) {
	uid, numeric, err := parseNumeric(s)
	if err != nil {
		return User{}, fmt.Errorf("user %q: %w", s, err)
	}
	var entry []string
	err = passwdDB.scan(rootfs, func(f []string) bool {
		if numeric {
			id, ok, err := parseNumeric(field(f, 2))
			if ok && err == nil && id == uid {
				entry = f
			}
		} else if f[0] == s {
			entry = f
		}
		return entry != nil
	})
	switch {
	case err != nil:
		return User{}, err
	case entry == nil && !numeric:
		return User{}, fmt.Errorf("user %q: %w in the image's /etc/passwd", s, ErrUnknownUser)
	case entry == nil:
		return User{UID: uid, Home: "/"}, nil
	}
	u := User{Name: entry[0], Home: field(entry, 5)}
	if u.UID, err = entryID(passwdDB, u.Name, "uid", field(entry, 2)); err != nil {
		return User{}, err
	}
	if u.GID, err = entryID(passwdDB, u.Name, "gid", field(entry, 3)); err != nil {
		return User{}, err
	}
	if u.Home == "" {
		u.Home = "/"
	}
	return u, nil
}

// resolveGroup finds an explicit group: a gid as is, a name in
// /etc/group.
func resolveGroup(s string, rootfs fs.FS) (uint32, error) {
	gid, numeric, err := parseNumeric(s)
	if err != nil {
		return 0, fmt.Errorf("group %q: %w", s, err)
	}
	if numeric {
		return gid, nil
	}
	var entry []string
	err = groupDB.scan(rootfs, func(f []string) bool {
		if f[0] == s {
			entry = f
		}
		return entry != nil
	})
	switch {
	case err != nil:
		return 0, err
	case entry == nil:
		return 0, fmt.Errorf("group %q: %w in the image's /etc/group", s, ErrUnknownGroup)
	}
	return entryID(groupDB, s, "gid", field(entry, 2))
}

// memberOf returns the gids of the groups listing name, the primary gid
// and repeats left out, at most NGROUPS_MAX.
func memberOf(name string, primary uint32, rootfs fs.FS) ([]uint32, error) {
	var gids []uint32
	seen := map[uint32]bool{primary: true}
	var err error
	serr := groupDB.scan(rootfs, func(f []string) bool {
		if !listed(field(f, 3), name) {
			return false
		}
		var gid uint32
		if gid, err = entryID(groupDB, f[0], "gid", field(f, 2)); err != nil {
			return true
		}
		if !seen[gid] {
			seen[gid] = true
			gids = append(gids, gid)
		}
		if len(gids) > maxGroups {
			err = fmt.Errorf("user %q: in more than %d groups (NGROUPS_MAX)", name, maxGroups)
		}
		return err != nil
	})
	return gids, errors.Join(serr, err)
}

// listed reports whether name is in a group's comma-separated members.
func listed(members, name string) bool {
	for m := range strings.SplitSeq(members, ",") {
		if strings.TrimSpace(m) == name {
			return true
		}
	}
	return false
}
