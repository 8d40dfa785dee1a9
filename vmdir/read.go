package vmdir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Errors of Read and ReadMulti, wrapped in messages that name the file.
var (
	// ErrNotVM: the directory is not a c2vm output (no manifest.json, no
	// artifacts listed) or not a bootable one (converted with --no-kernel).
	ErrNotVM = errors.New("not a bootable c2vm output")
	// ErrUnsupported: manifest.json has a schemaVersion this c2vm does
	// not read.
	ErrUnsupported = errors.New("unsupported schema version")
	// ErrMismatch: an artifact is not what manifest.json says.
	ErrMismatch = errors.New("mismatch")
	// ErrMultiPlatform: Read was given the top directory of several
	// platforms (ReadMulti reads it).
	ErrMultiPlatform = errors.New("holds one output per platform")
)

// VM is a VM directory read back, every artifact checked: its manifest
// (platform, kernel, root filesystem and verity, disks, forwards,
// volumes, stop timeout) and where it lies.
type VM struct {
	Dir string // absolute
	Manifest
}

// Multi is the top directory of several platforms, each read back.
type Multi struct {
	Dir       string // absolute
	Manifest  MultiManifest
	Platforms []*VM // in Manifest.Platforms' order
}

// Read reads dir's manifest.json and checks every artifact it lists: it
// is a plain file of dir, of the size and sha256 recorded. The VM's
// writable state (Writable: data disks, the disk image) is checked to be
// there only, as a VM that has run has changed it.
func Read(dir string) (*VM, error) { return read(dir, false) }

// ReadExact is Read that holds the VM's writable state to its sha256 too:
// for what ships a directory as converted (push), where a disk a VM has
// booted since is refused.
func ReadExact(dir string) (*VM, error) { return read(dir, true) }

func read(dir string, exact bool) (*VM, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	m, err := ReadManifest(abs)
	if err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(m.Artifacts)) {
		if !IsPlainName(name) {
			return nil, fmt.Errorf("%s: artifact %q is not a file name", filepath.Join(abs, ManifestFile), name)
		}
		if err := checkFile(filepath.Join(abs, name), m.Artifacts[name], Writable(name) && !exact); err != nil {
			return nil, err
		}
	}
	return &VM{Dir: abs, Manifest: *m}, nil
}

// ReadManifest reads and parses dir's manifest.json, without checking
// the artifacts (Read does).
func ReadManifest(dir string) (*Manifest, error) {
	var m Manifest
	b, err := readJSON(dir, &m)
	if err != nil {
		return nil, err
	}
	m.SchemaVersion = SchemaVersion // also when missing: version 1
	if m.Artifacts == nil {
		var mm MultiManifest
		if json.Unmarshal(b, &mm) == nil && len(mm.Platforms) > 0 {
			var dirs []string
			for _, p := range mm.Platforms {
				dirs = append(dirs, p.Dir)
			}
			return nil, fmt.Errorf("%s %w (%s): give one of those directories", dir, ErrMultiPlatform, strings.Join(dirs, ", "))
		}
		return nil, fmt.Errorf("%s: %w (%s lists no artifacts)", dir, ErrNotVM, ManifestFile)
	}
	return &m, nil
}

// ReadMulti reads the top directory of several platforms: its
// manifest.json, each platform's manifest.json against the digest
// recorded there, and each platform's directory as Read does.
func ReadMulti(dir string) (*Multi, error) { return readMulti(dir, false) }

// ReadMultiExact is ReadMulti with each platform read by ReadExact.
func ReadMultiExact(dir string) (*Multi, error) { return readMulti(dir, true) }

func readMulti(dir string, exact bool) (*Multi, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	r := &Multi{Dir: abs}
	if _, err := readJSON(abs, &r.Manifest); err != nil {
		return nil, err
	}
	r.Manifest.SchemaVersion = SchemaVersion // also when missing: version 1
	if len(r.Manifest.Platforms) == 0 {
		return nil, fmt.Errorf("%s: %w (%s lists no platforms)", abs, ErrNotVM, ManifestFile)
	}
	for _, e := range r.Manifest.Platforms {
		if !IsPlainName(e.Dir) {
			return nil, fmt.Errorf("%s: platform directory %q is not a directory name", filepath.Join(abs, ManifestFile), e.Dir)
		}
		sub := filepath.Join(abs, e.Dir)
		if err := checkFile(filepath.Join(sub, ManifestFile), e.Manifest, false); err != nil {
			return nil, err
		}
		vm, err := read(sub, exact)
		if err != nil {
			return nil, err
		}
		r.Platforms = append(r.Platforms, vm)
	}
	return r, nil
}

// readJSON reads dir/manifest.json into v after checking its
// schemaVersion (missing or 0: 1), and returns its bytes.
func readJSON(dir string, v any) ([]byte, error) {
	p := filepath.Join(dir, ManifestFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (no %s)", dir, ErrNotVM, ManifestFile)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	var h struct {
		SchemaVersion int `json:"schemaVersion"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", p, err)
	}
	if h.SchemaVersion != 0 && h.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("%s: schema version %d: %w (this c2vm reads %d)", p, h.SchemaVersion, ErrUnsupported, SchemaVersion)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", p, err)
	}
	return b, nil
}

// checkFile checks that p is a regular file and, unless presentOnly, of
// want's size and sha256.
func checkFile(p string, want Artifact, presentOnly bool) error {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: missing (listed in %s)", p, ManifestFile)
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s: not a regular file", p)
	case presentOnly:
		return nil
	case fi.Size() != want.Size && !Writable(filepath.Base(p)):
		return fmt.Errorf("%s: size %w (%s says %d bytes, the file has %d)", p, ErrMismatch, ManifestFile, want.Size, fi.Size())
	}
	got, err := DigestFile(p)
	if err != nil {
		return err
	}
	if got.SHA256 != want.SHA256 {
		if Writable(filepath.Base(p)) {
			return fmt.Errorf("%s: changed since the conversion (%w: %s says sha256 %s, the file has %s; did a VM boot it?)", p, ErrMismatch, ManifestFile, want.SHA256, got.SHA256)
		}
		return fmt.Errorf("%s: sha256 %w (%s says %s, the file has %s)", p, ErrMismatch, ManifestFile, want.SHA256, got.SHA256)
	}
	return nil
}

// IsPlainName reports whether s names an entry of a directory itself: no
// separator, not "." or "..".
func IsPlainName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\`)
}
