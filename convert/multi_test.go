package convert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/c2vm/c2vm/image"
	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/vmdir"
)

func TestParsePlatforms(t *testing.T) {
	for _, tc := range []struct {
		in    string
		multi bool
		want  []string // nil: all
		err   string
	}{
		{in: "all", multi: true},
		{in: "linux/amd64", multi: false, want: []string{"linux/amd64"}},
		{in: "linux/amd64,linux/arm64/v8", multi: true, want: []string{"linux/amd64", "linux/arm64"}},
		{in: " linux/amd64 , linux/riscv64", multi: true, want: []string{"linux/amd64", "linux/riscv64"}},
		{in: "linux/amd64,,linux/arm64", multi: true, err: "empty entry"},
		{in: "all,linux/amd64", multi: true, err: `"all" in a list`},
		{in: "linux/arm64,linux/arm64/v8", multi: true, err: "linux/arm64 given twice"},
		{in: "linux/amd64,a/b/c/d", multi: true, err: "a/b/c/d"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := IsMulti(tc.in); got != tc.multi {
				t.Errorf("IsMulti = %v", got)
			}
			got, err := ParsePlatforms(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("got %v, %v; want an error naming %q", got, err, tc.err)
				}
				return
			}
			var names []string
			for _, p := range got {
				names = append(names, platforms.Format(p))
			}
			if err != nil || !slices.Equal(names, tc.want) || (got == nil) != (tc.want == nil) {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestCheckMulti: what names one arch's VM or kernel is refused with
// several platforms; the --kernel forms that serve each arch are not.
func TestCheckMulti(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		ok   bool
	}{
		{"defaults", Options{}, true},
		{"debian suite", Options{Kernel: ParseByArch("debian:bookworm")}, true},
		{"debian pinned", Options{Kernel: ParseByArch("debian:bookworm=6.1.0-28")}, true},
		{"kernel image", Options{Kernel: ParseByArch("docker://example.com/kernels:6.6")}, true},
		{"one kernel per arch", Options{Kernel: ParseByArch("amd64=/k/a.deb,aarch64=/k/b.deb")}, true},
		{"a kernel file", Options{Kernel: ParseByArch("/boot/vmlinuz")}, false},
		{"an unknown arch", Options{Kernel: ParseByArch("amd64=/k/a.deb,vax=/k/v")}, false},
		{"an empty path", Options{Kernel: ParseByArch("amd64=")}, false},
		{"one init per arch", Options{Init: ParseByArch("x86_64=/i/a,arm64=/i/b")}, true},
		{"one init", Options{Init: ParseByArch("/i/c2vm-init")}, false},
		{"one EFI stub per arch", Options{EFIStub: ParseByArch("amd64=/s/x64.stub,arm64=/s/aa64.stub")}, true},
		{"one EFI stub", Options{EFIStub: ParseByArch("/s/linuxx64.efi.stub")}, false},
		{"--vm-arch", Options{VMArch: "amd64"}, false},
		{"--binfmt-interpreter", Options{BinfmtInterpreter: "/usr/bin/qemu-aarch64-static"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckMulti(tc.o)
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrMultiOption)) {
				t.Errorf("got %v; want ok=%v or ErrMultiOption", err, tc.ok)
			}
		})
	}
	kernels, stubs := ParseByArch("amd64=/k/a.deb,aarch64=/k/b.deb"), ParseByArch("amd64=/s/x64,arm64=/s/aa64,riscv64=/s/rv")
	for _, tc := range []struct{ arch, kernel, stub, err string }{
		{"amd64", "/k/a.deb", "/s/x64", ""}, {"arm64", "/k/b.deb", "/s/aa64", ""}, {"riscv64", "", "/s/rv", "--kernel names no file for riscv64"},
	} {
		k, err := kernels.For("--kernel", tc.arch)
		s, _ := stubs.For("--efi-stub", tc.arch)
		if tc.err != "" && (err == nil || err.Error() != tc.err) || tc.err == "" && (err != nil || k != tc.kernel) || s != tc.stub {
			t.Errorf("%s: kernel %q stub %q, %v; want %q %q or %q", tc.arch, k, s, err, tc.kernel, tc.stub, tc.err)
		}
	}
	if k, err := One("/k/vmlinuz").For("--kernel", "arm64"); k != "/k/vmlinuz" || err != nil {
		t.Errorf("One: %q, %v", k, err)
	}
	if k, err := ByArch(nil).For("--kernel", "arm64"); k != "" || err != nil {
		t.Errorf("none: %q, %v", k, err)
	}
}

// multiLayout is a copy of the busybox-multi fixture whose index.json
// lists extra manifests, and whose blobs may then be changed.
func multiLayout(t *testing.T, extra ...ocispec.Descriptor) (dir string, inner ocispec.Descriptor) {
	t.Helper()
	src := filepath.Join(fixtures.Dir(t), "busybox-multi")
	dir = t.TempDir()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(src, "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, "blobs", "sha256", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(blobs, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var top ocispec.Index
	readJSON(t, filepath.Join(src, "index.json"), &top)
	inner = top.Manifests[0]
	if len(extra) > 0 {
		var idx ocispec.Index
		readJSON(t, filepath.Join(blobs, inner.Digest.Encoded()), &idx)
		idx.Manifests = append(idx.Manifests, extra...)
		b, _ := json.Marshal(idx)
		inner.Digest, inner.Size = digest.FromBytes(b), int64(len(b))
		if err := os.WriteFile(filepath.Join(blobs, inner.Digest.Encoded()), b, 0o644); err != nil {
			t.Fatal(err)
		}
		top.Manifests[0] = inner
	}
	b, _ := json.Marshal(top)
	if err := os.WriteFile(filepath.Join(dir, "index.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, inner
}

func readJSON(t *testing.T, p string, v any) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// fixtureManifests are the fixture's per-platform manifests, by arch.
func fixtureManifests(t *testing.T, dir string, inner ocispec.Descriptor) map[string]ocispec.Descriptor {
	var idx ocispec.Index
	readJSON(t, filepath.Join(dir, "blobs", "sha256", inner.Digest.Encoded()), &idx)
	out := map[string]ocispec.Descriptor{}
	for _, d := range idx.Manifests {
		out[d.Platform.Architecture] = d
	}
	return out
}

// TestConvertAllMatchesSingle: --platform all writes each platform's
// directory with the same bytes as converting that platform alone, and a
// top manifest.json naming the index, each platform's manifest and the
// digest of its manifest.json. BuildKit's attestation manifests are not
// platforms; a platform c2vm makes no VM for is skipped, and said so.
func TestConvertAllMatchesSingle(t *testing.T) {
	dir, inner := multiLayout(t)
	ms := fixtureManifests(t, dir, inner)
	att := ms["amd64"]
	att.Platform = &ocispec.Platform{OS: "unknown", Architecture: "unknown"}
	s390x := ms["amd64"]
	s390x.Platform = &ocispec.Platform{OS: "linux", Architecture: "s390x"}
	dir, inner = multiLayout(t, att, s390x)
	ref := "oci:" + dir

	out := filepath.Join(t.TempDir(), "all.vm")
	var progress bytes.Buffer
	r, err := ConvertAll(context.Background(), Options{Image: ref, NoKernel: true, Output: out, Version: "test", Progress: &progress}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("progress:\n%s", progress.String())
	top, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range top {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"linux-amd64", "linux-arm64", "manifest.json"}) {
		t.Fatalf("%s holds %v; want linux-amd64, linux-arm64 and manifest.json", out, names)
	}
	var m vmdir.MultiManifest
	readJSON(t, filepath.Join(out, "manifest.json"), &m)
	if m.C2VMVersion != "test" || m.Image.Ref != ref || m.Image.IndexDigest != inner.Digest.String() || len(m.Platforms) != 2 {
		t.Fatalf("top manifest %+v", m)
	}
	if len(m.Skipped) != 1 || m.Skipped[0].Platform.Architecture != "s390x" || !strings.Contains(progress.String(), "c2vm: skipping linux/s390x: ") {
		t.Errorf("skipped %+v; want linux/s390x, and said so:\n%s", m.Skipped, progress.String())
	}
	for i, arch := range []string{"amd64", "arm64"} {
		e := m.Platforms[i]
		t.Run(arch, func(t *testing.T) {
			if e.Dir != "linux-"+arch || e.Platform.Architecture != arch || e.ManifestDigest != ms[arch].Digest.String() {
				t.Errorf("entry %+v; want linux-%s with manifest %s", e, arch, ms[arch].Digest)
			}
			if a, err := vmdir.DigestFile(filepath.Join(out, e.Dir, "manifest.json")); err != nil || a != e.Manifest {
				t.Errorf("manifest.json is %+v (%v); the top manifest says %+v", a, err, e.Manifest)
			}
			if r.Platforms[i].Dir != filepath.Join(out, e.Dir) {
				t.Errorf("result dir %s", r.Platforms[i].Dir)
			}
			if !strings.Contains(progress.String(), "c2vm: linux/"+arch) {
				t.Errorf("no progress line prefixed with linux/%s:\n%s", arch, progress.String())
			}
			single := filepath.Join(t.TempDir(), arch+".vm")
			if _, err := Convert(context.Background(), Options{Image: ref, Platform: &ocispec.Platform{OS: "linux", Architecture: arch}, NoKernel: true, Output: single, Version: "test"}); err != nil {
				t.Fatal(err)
			}
			sameDirs(t, single, filepath.Join(out, e.Dir))
		})
	}
}

// sameDirs checks that two output directories hold the same files with
// the same bytes.
func sameDirs(t *testing.T, want, got string) {
	t.Helper()
	we, _ := os.ReadDir(want)
	ge, _ := os.ReadDir(got)
	if len(we) != len(ge) || len(we) == 0 {
		t.Errorf("%s holds %d files, %s %d", got, len(ge), want, len(we))
	}
	for _, e := range we {
		a, _ := os.ReadFile(filepath.Join(want, e.Name()))
		b, err := os.ReadFile(filepath.Join(got, e.Name()))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs from the single-platform conversion's (%v)", e.Name(), err)
		}
	}
}

// TestConvertAllAtomic: a platform that fails (a corrupt layer only arm64
// has) fails the whole run naming that platform, after amd64 was written
// or while it is (two jobs):
// nothing new appears, an earlier output stays as it was, no temp
// directory is left, and a directory that is not c2vm's is never replaced.
func TestConvertAllAtomic(t *testing.T) {
	dir, inner := multiLayout(t)
	ms := fixtureManifests(t, dir, inner)
	var arm ocispec.Manifest
	readJSON(t, filepath.Join(dir, "blobs", "sha256", ms["arm64"].Digest.Encoded()), &arm)
	layer := filepath.Join(dir, "blobs", "sha256", arm.Layers[0].Digest.Encoded())
	b, err := os.ReadFile(layer)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(layer, b, 0o644); err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	earlier := filepath.Join(parent, "earlier.vm")
	if err := os.MkdirAll(earlier, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(earlier, "manifest.json"), []byte("{}\n"), 0o644)
	withData := filepath.Join(parent, "data.vm")
	os.MkdirAll(withData, 0o755)
	os.WriteFile(filepath.Join(withData, "manifest.json"), []byte("{}\n"), 0o644)
	os.WriteFile(filepath.Join(withData, "data-0.img"), []byte("the VM's files"), 0o644)
	mine := filepath.Join(parent, "mine")
	os.MkdirAll(mine, 0o755)
	os.WriteFile(filepath.Join(mine, "notes.txt"), []byte("x"), 0o644)

	for _, tc := range []struct {
		name, out, want string
		jobs            int
	}{
		{"fresh", filepath.Join(parent, "fresh.vm"), "platform linux/arm64: ", 1},
		{"fresh, at once", filepath.Join(parent, "fresh.vm"), "platform linux/arm64: ", 2},
		{"over an earlier output", earlier, "platform linux/arm64: ", 1},
		{"over an earlier output, at once", earlier, "platform linux/arm64: ", 2},
		{"over someone's directory", mine, "not a c2vm output", 2},
		{"over an output holding a data disk", withData, "data-0.img, the VM's data", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := listTree(t, parent)
			_, err := ConvertAll(context.Background(), Options{Image: "oci:" + dir, NoKernel: true, Output: tc.out, Jobs: tc.jobs}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v; want one line naming %q", err, tc.want)
			}
			t.Logf("error: %v", err)
			if strings.HasPrefix(tc.want, "platform ") && !errors.Is(err, image.ErrDigestMismatch) {
				t.Errorf("got %v; want a digest mismatch", err)
			}
			if after := listTree(t, parent); !slices.Equal(before, after) {
				t.Errorf("%s changed: %v, was %v", parent, after, before)
			}
		})
	}
}

// listTree lists every path under dir, with each file's size.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %d", strings.TrimPrefix(p, dir), fi.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
