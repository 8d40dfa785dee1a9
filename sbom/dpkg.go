package sbom

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// readDpkgStatus reads dpkg's status file (deb-status(5)): one paragraph
// per package; those whose Status is not installed (removed with their
// conffiles kept, or never installed) are left out, as their files are
// gone. dpkg keeps no license: Debian's is in each package's
// /usr/share/doc/*/copyright, free text that is not a database, so License
// stays empty (NOASSERTION in SPDX).
func readDpkgStatus(fsys fs.FS, p string, _ Options) ([]Package, error) {
	b, err := readBounded(fsys, p)
	if err != nil {
		return nil, err
	}
	return parseDpkg(b)
}

// readDpkgStatusD reads distroless's status.d: one file per package,
// each a status paragraph (with no Status field, as every one is
// installed); *.md5sums files beside them are skipped.
func readDpkgStatusD(fsys fs.FS, dir string, _ Options) ([]Package, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	var out []Package
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".md5sums") {
			continue
		}
		b, err := readBounded(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		ps, err := parseDpkg(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		out = append(out, ps...)
	}
	return out, nil
}

func parseDpkg(b []byte) ([]Package, error) {
	var out []Package
	for i, para := range paragraphs(b, ": ") {
		if st := para["Status"]; st != "" && !dpkgInstalled(st) {
			continue
		}
		p := Package{Type: "deb", Name: para["Package"], Version: para["Version"],
			Arch: para["Architecture"], Supplier: para["Maintainer"]}
		if p.Name == "" || p.Version == "" {
			return nil, fmt.Errorf("paragraph %d has no Package or Version", i+1)
		}
		// Source: NAME or NAME (VERSION), the latter for a binNMU.
		if src, _, _ := strings.Cut(para["Source"], " "); src != "" && src != p.Name {
			p.Source = src
		}
		out = append(out, p)
	}
	return out, nil
}

// dpkgInstalled reads Status's third word (want flag status):
// not-installed and config-files have no files installed.
func dpkgInstalled(status string) bool {
	f := strings.Fields(status)
	if len(f) != 3 {
		return false
	}
	return f[2] != "not-installed" && f[2] != "config-files"
}

// paragraphs splits an RFC 822-style database into paragraphs of fields
// ("Key: value", or apk's "K:value" with sep ":"); continuation lines,
// which start with a space, are dropped, as only one-line fields are read.
func paragraphs(b []byte, sep string) []map[string]string {
	var out []map[string]string
	cur := map[string]string{}
	flush := func() {
		if len(cur) > 0 {
			out = append(out, cur)
			cur = map[string]string{}
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), maxTextDB)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
		default:
			if k, v, ok := strings.Cut(line, sep); ok {
				if _, dup := cur[k]; !dup {
					cur[k] = strings.TrimSpace(v)
				}
			}
		}
	}
	flush()
	return out
}
