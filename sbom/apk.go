package sbom

import (
	"fmt"
	"io/fs"
)

// readApk reads apk's installed database (apk-tools' "Installed database
// V2": paragraphs of one-letter fields, P name, V version, A arch, L
// license, o origin, m maintainer; a file list follows each as F:/R:
// lines, whose letters are not read here).
func readApk(fsys fs.FS, p string, _ Options) ([]Package, error) {
	b, err := readBounded(fsys, p)
	if err != nil {
		return nil, err
	}
	var out []Package
	for i, para := range paragraphs(b, ":") {
		pkg := Package{Type: "apk", Name: para["P"], Version: para["V"], Arch: para["A"],
			License: para["L"], Supplier: para["m"]}
		if pkg.Name == "" || pkg.Version == "" {
			return nil, fmt.Errorf("paragraph %d has no P: or V:", i+1)
		}
		if o := para["o"]; o != pkg.Name {
			pkg.Source = o
		}
		out = append(out, pkg)
	}
	return out, nil
}
