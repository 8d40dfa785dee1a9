// Package sbom lists the packages installed in a flattened root, each from
// its own package manager's database, and writes them with the VM's boot
// components as an SPDX 2.3 JSON document.
//
//	pkgs, err := sbom.Read(tree.FS(), sbom.Options{TempDir: dir})
//	doc := sbom.Document{Name: ref, Packages: pkgs.Packages, Components: ...}
//	err = doc.WriteSPDX(w)
//
// The databases are read through an fs.FS, never from an extracted root.
// dpkg's status (and distroless's status.d/*) and apk's installed are text;
// an rpm database (sqlite, Berkeley DB hash or rpm's own ndb) is copied
// alone to a temporary file, since its readers open a path.
package sbom

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
)

// Package is one installed package, as its database records it.
type Package struct {
	Type    string `json:"type"` // purl type: "deb", "apk" or "rpm"
	Name    string `json:"name"`
	Version string `json:"version"` // dpkg's and apk's as written; rpm's [EPOCH:]VERSION-RELEASE
	Arch    string `json:"arch,omitempty"`
	// License is what the database says ("" when it keeps none: dpkg).
	License string `json:"license,omitempty"`
	// Supplier is the maintainer (dpkg, apk) or vendor (rpm).
	Supplier string `json:"supplier,omitempty"`
	// Source is the source package, when it differs from Name.
	Source string `json:"source,omitempty"`
	// Epoch is rpm's epoch ("" when none), also part of Version.
	Epoch string `json:"epoch,omitempty"`
}

// Distro is the root's etc/os-release identity.
type Distro struct {
	ID        string // "debian", "alpine", "fedora"
	VersionID string // "12", "3.19.1", "39"
	Pretty    string
}

// Inventory is what Read found in a root.
type Inventory struct {
	Distro   Distro
	Packages []Package // sorted by type, name, version, arch
	// Databases names each database read, by its path in the root.
	Databases []string
}

// Options tune Read; the zero value reads every database.
type Options struct {
	// TempDir holds the copy of an rpm database while it is read; "" =
	// os.TempDir().
	TempDir string
}

// reader reads one kind of package database from a root.
type reader struct {
	kind  string
	paths []string // candidate database paths in the root, first found wins
	read  func(fsys fs.FS, p string, o Options) ([]Package, error)
}

var readers = []reader{
	{"dpkg", []string{"var/lib/dpkg/status"}, readDpkgStatus},
	{"dpkg", []string{"var/lib/dpkg/status.d"}, readDpkgStatusD},
	{"apk", []string{"lib/apk/db/installed"}, readApk},
	{"rpm", rpmPaths, readRpm},
}

// Read lists every package of every database found in fsys.
func Read(fsys fs.FS, o Options) (*Inventory, error) {
	inv := &Inventory{}
	var err error
	if inv.Distro, err = readOSRelease(fsys); err != nil {
		return nil, err
	}
	for _, r := range readers {
		for _, p := range r.paths {
			if _, err := fs.Stat(fsys, p); errors.Is(err, fs.ErrNotExist) {
				continue
			} else if err != nil {
				return nil, fmt.Errorf("%s database %s: %w", r.kind, p, err)
			}
			pkgs, err := r.read(fsys, p, o)
			if err != nil {
				return nil, fmt.Errorf("%s database %s: %w", r.kind, p, err)
			}
			inv.Packages = append(inv.Packages, pkgs...)
			inv.Databases = append(inv.Databases, p)
			break
		}
	}
	sortPackages(inv.Packages)
	return inv, nil
}

func sortPackages(ps []Package) {
	sort.Slice(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.Arch < b.Arch
	})
}
