package vmdir

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// writeVM writes a small VM directory: its files and a manifest.json
// listing them as convert does, edited by edit before it is written.
func writeVM(t *testing.T, dir string, edit func(m map[string]any)) *Manifest {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m := &Manifest{SchemaVersion: SchemaVersion, VMArch: "amd64", Kernel: &KernelInfo{Version: "6.1"},
		Image: ImageInfo{ManifestDigest: "sha256:0123456789abcdef"}, DataDisks: []string{DataDisk(0)},
		Artifacts: map[string]Artifact{}}
	for name, body := range map[string]string{Kernel: "k", Initramfs: "i", Rootfs: "root", DataDisk(0): "data"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		a, err := DigestFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m.Artifacts[name] = a
	}
	var raw map[string]any
	b, _ := json.Marshal(m)
	json.Unmarshal(b, &raw)
	if edit != nil {
		edit(raw)
	}
	if err := WriteJSON(filepath.Join(dir, ManifestFile), raw); err != nil {
		t.Fatal(err)
	}
	return m
}

func artifact(m map[string]any, name string) map[string]any {
	return m["artifacts"].(map[string]any)[name].(map[string]any)
}

// TestReadRefuses: a directory whose manifest.json does not describe it
// is refused, the message naming the file.
func TestReadRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(m map[string]any)
		change func(dir string) error
		want   error
		msg    string
	}{
		{name: "flipped sha256", edit: func(m map[string]any) {
			a := artifact(m, Rootfs)
			a["sha256"] = strings.Repeat("0", 64)
		}, want: ErrMismatch, msg: "rootfs.img: sha256 mismatch (manifest.json says 0000"},
		{name: "changed content", change: func(dir string) error {
			return os.WriteFile(filepath.Join(dir, Kernel), []byte("K"), 0o644)
		}, want: ErrMismatch, msg: "kernel: sha256 mismatch"},
		{name: "changed size", change: func(dir string) error {
			return os.WriteFile(filepath.Join(dir, Initramfs), []byte("ii"), 0o644)
		}, want: ErrMismatch, msg: "initramfs.img: size mismatch (manifest.json says 1 bytes, the file has 2)"},
		{name: "missing artifact", change: func(dir string) error {
			return os.Remove(filepath.Join(dir, Rootfs))
		}, msg: "rootfs.img: missing (listed in manifest.json)"},
		{name: "missing data disk", change: func(dir string) error {
			return os.Remove(filepath.Join(dir, DataDisk(0)))
		}, msg: "data-0.img: missing"},
		{name: "artifact outside", edit: func(m map[string]any) {
			m["artifacts"].(map[string]any)["../x"] = map[string]any{}
		}, msg: `manifest.json: artifact "../x" is not a file name`},
		{name: "unknown schema version", edit: func(m map[string]any) {
			m["schemaVersion"] = 2
		}, want: ErrUnsupported, msg: "manifest.json: schema version 2: unsupported schema version (this c2vm reads 1)"},
		{name: "no artifacts", edit: func(m map[string]any) {
			delete(m, "artifacts")
		}, want: ErrNotVM, msg: "manifest.json lists no artifacts"},
		{name: "no manifest", change: func(dir string) error {
			return os.Remove(filepath.Join(dir, ManifestFile))
		}, want: ErrNotVM, msg: "(no manifest.json)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeVM(t, dir, tc.edit)
			if tc.change != nil {
				if err := tc.change(dir); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Read(dir)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Read = %v; want %v naming %q", err, tc.want, tc.msg)
			}
		})
	}
}

// TestRead: an intact directory reads back as written; a manifest
// without schemaVersion (before the field) is version 1; the VM's
// writable disks may change.
func TestRead(t *testing.T) {
	dir := t.TempDir()
	want := writeVM(t, dir, func(m map[string]any) { delete(m, "schemaVersion") })
	if err := os.WriteFile(filepath.Join(dir, DataDisk(0)), []byte("written by the VM"), 0o644); err != nil {
		t.Fatal(err)
	}
	vm, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if vm.Dir != dir || vm.SchemaVersion != 1 || vm.Kernel.Version != want.Kernel.Version || len(vm.Artifacts) != len(want.Artifacts) {
		t.Errorf("Read = %+v; want %+v in %s", vm, want, dir)
	}
	if err := vm.Bootable(); err != nil {
		t.Error(err)
	}
	// ReadExact, for what ships the directory, holds the writable disks
	// to their sha256 too.
	if _, err := ReadExact(dir); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), DataDisk(0)+": changed since the conversion") {
		t.Errorf("ReadExact of a changed data disk: %v", err)
	}
}

// TestReadMulti: the top directory of several platforms is read with
// each platform's manifest.json checked against its recorded digest;
// Read refuses it, naming the platforms' directories.
func TestReadMulti(t *testing.T) {
	top := t.TempDir()
	mm := MultiManifest{SchemaVersion: SchemaVersion}
	for _, p := range []ocispec.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}} {
		sub := p.OS + "-" + p.Architecture
		writeVM(t, filepath.Join(top, sub), nil)
		a, err := DigestFile(filepath.Join(top, sub, ManifestFile))
		if err != nil {
			t.Fatal(err)
		}
		mm.Platforms = append(mm.Platforms, PlatformEntry{Platform: p, Dir: sub, Manifest: a})
	}
	if err := WriteJSON(filepath.Join(top, ManifestFile), mm); err != nil {
		t.Fatal(err)
	}
	r, err := ReadMulti(top)
	if err != nil || len(r.Platforms) != 2 || r.Platforms[1].Dir != filepath.Join(top, "linux-arm64") {
		t.Fatalf("ReadMulti = %+v, %v", r, err)
	}
	if _, err := Read(top); !errors.Is(err, ErrMultiPlatform) || !strings.Contains(err.Error(), "linux-amd64, linux-arm64") {
		t.Errorf("Read of the top directory: %v", err)
	}
	// A platform's manifest.json edited after the conversion.
	writeVM(t, filepath.Join(top, "linux-arm64"), func(m map[string]any) { m["memory"] = 1024 })
	if _, err := ReadMulti(top); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "linux-arm64/manifest.json: size mismatch") {
		t.Errorf("ReadMulti of an edited platform manifest: %v", err)
	}
}
