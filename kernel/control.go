package kernel

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
)

// maxControl bounds a .deb's control file (deb-control(5)): a kernel's is
// about 1 KiB.
const maxControl = 1 << 20

// DebPackage is a Debian binary package's identity, from its control file.
type DebPackage struct{ Package, Version, Architecture string }

// DebControl reads the identity of the Debian package at p from its own
// control file (control.tar's ./control), so a package is named for what
// it is, not for what its file happens to be called.
func DebControl(p string) (DebPackage, error) {
	f, err := os.Open(p)
	if err != nil {
		return DebPackage{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return DebPackage{}, err
	}
	ctl, name, err := arMember(f, fi.Size(), "control.tar")
	if err != nil {
		return DebPackage{}, fmt.Errorf("%s: %w", p, err)
	}
	dec, stop, err := streamDecompressor(name, ctl)
	if err != nil {
		return DebPackage{}, fmt.Errorf("%s: %s: %w", p, name, err)
	}
	pkg, err := readControl(dec)
	if serr := stop(); err == nil && serr != nil {
		err = serr
	}
	if err != nil {
		return DebPackage{}, fmt.Errorf("%s: %s: %w", p, name, err)
	}
	return pkg, nil
}

// readControl finds ./control in a control.tar and reads its fields.
func readControl(r io.Reader) (DebPackage, error) {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return DebPackage{}, fmt.Errorf("no control file: %w", ErrUnknownFormat)
		}
		if err != nil {
			return DebPackage{}, err
		}
		if path.Clean(h.Name) != "control" || h.Typeflag != tar.TypeReg {
			continue
		}
		var pkg DebPackage
		err = stanzas(io.LimitReader(tr, maxControl), func(f map[string]string) bool {
			pkg = DebPackage{Package: f["Package"], Version: f["Version"], Architecture: f["Architecture"]}
			return false
		})
		if err == nil && (pkg.Package == "" || pkg.Version == "") {
			err = fmt.Errorf("control file without Package or Version: %w", ErrUnknownFormat)
		}
		return pkg, err
	}
}
