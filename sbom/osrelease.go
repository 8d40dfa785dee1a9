package sbom

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"strconv"
	"strings"
)

// maxTextDB bounds a text database or os-release read into memory; a
// Debian root with 5000 packages has a 5 MB status file.
const maxTextDB = 256 << 20

// readOSRelease reads etc/os-release, else usr/lib/os-release
// (os-release(5)); a root with neither has a zero Distro.
func readOSRelease(fsys fs.FS) (Distro, error) {
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		b, err := readBounded(fsys, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return Distro{}, err
		}
		v := parseOSRelease(b)
		return Distro{ID: v["ID"], VersionID: v["VERSION_ID"], Pretty: v["PRETTY_NAME"]}, nil
	}
	return Distro{}, nil
}

// parseOSRelease reads KEY=VALUE lines, values optionally quoted in shell
// style.
func parseOSRelease(b []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		} else {
			v = strings.Trim(v, `'"`)
		}
		out[k] = v
	}
	return out
}

// readBounded reads a whole file of fsys, at most maxTextDB bytes.
func readBounded(fsys fs.FS, p string) ([]byte, error) {
	fi, err := fs.Stat(fsys, p)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxTextDB {
		return nil, &fs.PathError{Op: "read", Path: p, Err: errors.New("larger than 256 MiB")}
	}
	return fs.ReadFile(fsys, p)
}
