package sbom

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
)

// rpmPaths are where rpm keeps its database: Fedora 36+ and RHEL 9
// (sqlite, rpmdb.sqlite) under usr/lib/sysimage/rpm, openSUSE (ndb,
// Packages.db), older ones (Berkeley DB hash, Packages) under var/lib/rpm.
var rpmPaths = []string{
	"usr/lib/sysimage/rpm/rpmdb.sqlite",
	"usr/lib/sysimage/rpm/Packages.db",
	"usr/lib/sysimage/rpm/Packages",
	"var/lib/rpm/rpmdb.sqlite",
	"var/lib/rpm/Packages.db",
	"var/lib/rpm/Packages",
}

// ErrUnknownRpmDB is returned for an rpm database in no format c2vm reads.
var ErrUnknownRpmDB = errors.New("not an rpm database c2vm reads (sqlite, ndb or Berkeley DB hash)")

// rpmBackend reads every package header blob of one database format.
type rpmBackend struct {
	name  string
	magic func(head []byte) bool
	blobs func(path string) ([][]byte, error)
}

var rpmBackends = []rpmBackend{
	{"sqlite", isSQLite, sqliteBlobs},
	{"ndb", isNDB, ndbBlobs},
	{"bdb", isBDBHash, bdbBlobs},
}

// readRpm copies the database file alone out of the root (the readers
// open a path), finds its format by magic and parses each package header.
func readRpm(fsys fs.FS, p string, o Options) ([]Package, error) {
	tmp, err := spoolFile(fsys, p, o.TempDir)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	head := make([]byte, 64)
	f, err := os.Open(tmp)
	if err != nil {
		return nil, err
	}
	n, _ := io.ReadFull(f, head)
	f.Close()
	for _, b := range rpmBackends {
		if !b.magic(head[:n]) {
			continue
		}
		blobs, err := b.blobs(tmp)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.name, err)
		}
		return rpmPackages(blobs)
	}
	return nil, ErrUnknownRpmDB
}

func rpmPackages(blobs [][]byte) ([]Package, error) {
	out := make([]Package, 0, len(blobs))
	for i, b := range blobs {
		h, err := parseRpmHeader(b)
		if err != nil {
			return nil, fmt.Errorf("package header %d: %w", i+1, err)
		}
		p := h.pkg()
		if p.Name == "" {
			return nil, fmt.Errorf("package header %d has no name", i+1)
		}
		out = append(out, p)
	}
	return out, nil
}

// spoolFile copies one file of fsys to a new temporary file in dir.
func spoolFile(fsys fs.FS, p, dir string) (string, error) {
	in, err := fsys.Open(p)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.CreateTemp(dir, "rpmdb-*")
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(out.Name())
		return "", fmt.Errorf("copying %s: %w", p, err)
	}
	if err := out.Close(); err != nil {
		os.Remove(out.Name())
		return "", err
	}
	return out.Name(), nil
}

// rpm header tags and types (rpm's include/rpm/rpmtag.h).
const (
	tagName    = 1000
	tagVersion = 1001
	tagRelease = 1002
	tagEpoch   = 1003
	tagVendor  = 1011
	tagLicense = 1014
	tagArch    = 1022
	tagSource  = 1044 // SOURCERPM

	typeInt32       = 4
	typeString      = 6
	typeI18NString  = 9
	rpmEntrySize    = 16
	maxHeaderFields = 1 << 16
)

// rpmHeader is a parsed header blob: the tags read, by number.
type rpmHeader map[int32]string

// parseRpmHeader reads a header as rpm stores it in its database (no lead
// or magic): big-endian il (entries) and dl (data length), il index
// entries {tag, type, offset, count}, then the data. Only one-string and
// one-int32 tags are kept.
func parseRpmHeader(b []byte) (rpmHeader, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("header of %d bytes is truncated", len(b))
	}
	il, dl := binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])
	if il > maxHeaderFields || uint64(8+il*rpmEntrySize)+uint64(dl) > uint64(len(b)) {
		return nil, fmt.Errorf("header: %d entries and %d data bytes overrun its %d bytes", il, dl, len(b))
	}
	data := b[8+il*rpmEntrySize:][:dl]
	h := rpmHeader{}
	for i := range il {
		e := b[8+i*rpmEntrySize:]
		tag, typ, off := int32(binary.BigEndian.Uint32(e)), binary.BigEndian.Uint32(e[4:]), binary.BigEndian.Uint32(e[8:])
		if off >= dl {
			continue
		}
		switch typ {
		case typeString, typeI18NString:
			s, _, _ := bytes.Cut(data[off:], []byte{0})
			h[tag] = string(s)
		case typeInt32:
			if off+4 <= dl {
				h[tag] = strconv.FormatUint(uint64(binary.BigEndian.Uint32(data[off:])), 10)
			}
		}
	}
	return h, nil
}

// pkg is the header's package; Version is rpm -q's [EPOCH:]VERSION-RELEASE.
func (h rpmHeader) pkg() Package {
	p := Package{Type: "rpm", Name: h[tagName], Arch: h[tagArch], License: h[tagLicense],
		Supplier: h[tagVendor], Epoch: h[tagEpoch], Source: h[tagSource]}
	p.Version = h[tagVersion]
	if r := h[tagRelease]; r != "" {
		p.Version += "-" + r
	}
	if p.Epoch != "" && p.Epoch != "0" {
		p.Version = p.Epoch + ":" + p.Version
	}
	return p
}
