package vmimage

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/c2vm/c2vm/image"
	"github.com/c2vm/c2vm/vmdir"
)

// vmDir writes a small VM directory: a few artifacts, a disk when
// diskFile is not "", and manifest.json listing them.
func vmDir(t *testing.T, dir, arch, diskFile string) string {
	t.Helper()
	files := map[string]string{"kernel": "kernel " + arch, "initramfs.img": "initramfs", "rootfs.img": strings.Repeat("root", 5000), "qemu.sh": "#!/bin/sh\n"}
	if diskFile != "" {
		files[diskFile] = "disk " + arch + strings.Repeat("\x00", 1<<20)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m := vmdir.Manifest{C2VMVersion: "test", Platform: ocispec.Platform{OS: "linux", Architecture: arch}, Rootfs: "squashfs", Artifacts: map[string]vmdir.Artifact{}}
	for name, body := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		a, err := vmdir.DigestFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m.Artifacts[name] = a
	}
	if diskFile != "" {
		m.Disk = &vmdir.DiskInfo{File: diskFile, Format: "qcow2"}
	}
	writeJSONFile(t, filepath.Join(dir, "manifest.json"), m)
	return dir
}

func writeJSONFile(t *testing.T, p string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// multiDir writes a --platform all top directory of two platforms.
func multiDir(t *testing.T) string {
	top := t.TempDir()
	mm := vmdir.MultiManifest{C2VMVersion: "test"}
	for _, arch := range []string{"amd64", "arm64"} {
		sub := vmDir(t, filepath.Join(top, "linux-"+arch), arch, "disk.qcow2")
		a, err := vmdir.DigestFile(filepath.Join(sub, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		mm.Platforms = append(mm.Platforms, vmdir.PlatformEntry{Platform: ocispec.Platform{OS: "linux", Architecture: arch}, Dir: "linux-" + arch, Manifest: a})
	}
	writeJSONFile(t, filepath.Join(top, "manifest.json"), mm)
	return top
}

// testRegistry is go-containerregistry's in-memory registry, counting
// the bytes of blob uploads (PATCH and PUT bodies).
func testRegistry(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var up atomic.Int64
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(true))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/uploads/") && r.Method != http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			up.Add(int64(len(b)))
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), &up
}

// sameTree fails unless a and b hold the same files, byte for byte.
func sameTree(t *testing.T, a, b string) {
	t.Helper()
	walk := func(root string) map[string]string {
		out := map[string]string{}
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			if !d.IsDir() {
				body, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				fi, _ := d.Info()
				rel, _ := filepath.Rel(root, p)
				out[rel] = fi.Mode().String() + " " + string(body)
			}
			return nil
		})
		return out
	}
	x, y := walk(a), walk(b)
	if len(x) != len(y) {
		t.Errorf("%d files, want %d", len(y), len(x))
	}
	for k, v := range x {
		if y[k] != v {
			t.Errorf("%s differs after the round trip", k)
		}
	}
}

func TestPushPullRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		dir  func(t *testing.T) string
	}{
		{"one platform", func(t *testing.T) string { return vmDir(t, t.TempDir(), "amd64", "disk.qcow2") }},
		{"index", multiDir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, up := testRegistry(t)
			src := tc.dir(t)
			ref := "docker://" + host + "/vm/web:1"
			first, err := Push(context.Background(), src, ref, Options{}, image.Options{})
			if err != nil {
				t.Fatal(err)
			}
			// The registry also receives the configs, which Uploaded
			// (layer bytes) does not count.
			if first.Uploaded == 0 || up.Load() < first.Uploaded {
				t.Errorf("first push: %d layer bytes uploaded, the registry received %d", first.Uploaded, up.Load())
			}
			up.Store(0)
			again, err := Push(context.Background(), src, ref, Options{}, image.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if again.Digest != first.Digest || again.Uploaded != 0 || up.Load() != 0 {
				t.Errorf("second push: digest %s (first %s), %d bytes uploaded, the registry received %d", again.Digest, first.Digest, again.Uploaded, up.Load())
			}
			out := filepath.Join(t.TempDir(), "out")
			res, err := Pull(context.Background(), ref, out, image.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Digest != first.Digest {
				t.Errorf("pulled %s, pushed %s", res.Digest, first.Digest)
			}
			sameTree(t, src, out)
		})
	}
}

func TestPullPlatform(t *testing.T) {
	host, _ := testRegistry(t)
	src := multiDir(t)
	ref := "docker://" + host + "/vm/multi"
	if _, err := Push(context.Background(), src, ref, Options{}, image.Options{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := Pull(context.Background(), ref, out, image.Options{Platform: "linux/arm64"}); err != nil {
		t.Fatal(err)
	}
	sameTree(t, filepath.Join(src, "linux-arm64"), out)
	_, err := Pull(context.Background(), ref, filepath.Join(t.TempDir(), "x"), image.Options{Platform: "linux/riscv64"})
	if err == nil || !strings.Contains(err.Error(), "no linux/riscv64 image") {
		t.Errorf("pull of a missing platform: %v", err)
	}
}

// TestDiskLayer: the first layer is a KubeVirt containerDisk's /disk/
// with one file, 107:107, 0440; the second holds the rest in /c2vm/.
func TestDiskLayer(t *testing.T) {
	vm, err := Build(vmDir(t, t.TempDir(), "amd64", "disk.qcow2"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	layers, err := vm.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{
		{"disk/ 0:0 755", "disk/disk.qcow2 107:107 440"},
		{"c2vm/ 0:0 755", "c2vm/initramfs.img 0:0 644", "c2vm/kernel 0:0 644", "c2vm/manifest.json 0:0 644", "c2vm/qemu.sh 0:0 755", "c2vm/rootfs.img 0:0 644"},
	}
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			got = append(got, h.Name+" "+itoa(h.Uid)+":"+itoa(h.Gid)+" "+strconvOct(h.Mode))
			if h.ModTime.Unix() != 0 {
				t.Errorf("%s: mtime %s", h.Name, h.ModTime)
			}
		}
		rc.Close()
		if strings.Join(got, "\n") != strings.Join(want[i], "\n") {
			t.Errorf("layer %d:\n%s\nwant:\n%s", i, strings.Join(got, "\n"), strings.Join(want[i], "\n"))
		}
	}
}

func TestBuildRefuses(t *testing.T) {
	noDisk := vmDir(t, t.TempDir(), "amd64", "")
	if _, err := Build(noDisk, Options{}); !errors.Is(err, ErrNoDisk) || !strings.Contains(err.Error(), "--disk qcow2") {
		t.Errorf("a directory without a disk: %v", err)
	}
	flipped := vmDir(t, t.TempDir(), "amd64", "disk.qcow2")
	if err := os.WriteFile(filepath.Join(flipped, "kernel"), []byte("kernel AMD64"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(flipped, Options{}); err == nil || !strings.Contains(err.Error(), "/kernel: sha256 mismatch") {
		t.Errorf("a changed artifact: %v", err)
	}
	booted := vmDir(t, t.TempDir(), "amd64", "disk.qcow2")
	if err := os.WriteFile(filepath.Join(booted, "disk.qcow2"), []byte("written by a boot"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(booted, Options{}); err == nil || !strings.Contains(err.Error(), "/disk.qcow2: changed since the conversion") {
		t.Errorf("a disk changed since the conversion: %v", err)
	}
	vmdk := vmDir(t, t.TempDir(), "amd64", "disk.vmdk")
	m, err := vmdir.ReadManifest(vmdk)
	if err != nil {
		t.Fatal(err)
	}
	m.Disk.Format = "vmdk"
	writeJSONFile(t, filepath.Join(vmdk, "manifest.json"), m)
	if _, err := Build(vmdk, Options{}); err == nil || !strings.Contains(err.Error(), "KubeVirt boots qcow2 or raw") {
		t.Errorf("a vmdk disk: %v", err)
	}
	if _, err := Build(t.TempDir(), Options{}); err == nil || !strings.Contains(err.Error(), "not a bootable c2vm output") {
		t.Errorf("an empty directory: %v", err)
	}
}

// vmImage is a VM image whose artifacts layer holds entries as given.
func vmImage(t *testing.T, entries []entry) v1.Image {
	t.Helper()
	b := &builder{o: Options{Epoch: time.Unix(0, 0)}, tmp: t.TempDir(), uploaded: &atomic.Int64{}}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := b.append(img, LayerDisk, []entry{dirEntry(DiskDir)})
	if err == nil {
		img, err = b.append(img, LayerArtifacts, entries)
	}
	if err != nil {
		t.Fatal(err)
	}
	return mutate.Annotations(img, map[string]string{AnnotationVM: Version}).(v1.Image)
}

// TestRestoreRefuses: a plain container image, and VM images whose
// layers hold what a VM directory does not, write nothing.
func TestRestoreRefuses(t *testing.T) {
	plain, err := random.Image(100, 1)
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		img  v1.Image
		want string
	}{
		{"plain image", plain, "is not a c2vm VM image; convert it with `c2vm convert`"},
		{"dot-dot", vmImage(t, []entry{{name: "c2vm/../evil", src: filepath.Join(src, "f"), mode: 0o644}}), `unexpected entry "c2vm/../evil"`},
		{"outside", vmImage(t, []entry{{name: "etc/passwd", src: filepath.Join(src, "f"), mode: 0o644}}), `unexpected entry "etc/passwd"`},
		{"subdir", vmImage(t, []entry{dirEntry("c2vm/sub")}), `unexpected entry "c2vm/sub/"`},
		{"no manifest", vmImage(t, []entry{{name: "c2vm/kernel", src: filepath.Join(src, "f"), mode: 0o644}}), "manifest.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			err := Restore(tc.img, out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Restore: %v, want %q", err, tc.want)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s was written: %v", out, err)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func strconvOct(n int64) string { return strconv.FormatInt(n, 8) }

// TestReferrers: artifacts given as Referrers are listed by the
// registry's referrers API for the pushed VM's digest.
func TestReferrers(t *testing.T) {
	host, _ := testRegistry(t)
	sbom, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	sbom = mutate.ConfigMediaType(mutate.MediaType(sbom, types.OCIManifestSchema1), "application/spdx+json")
	res, err := Push(context.Background(), vmDir(t, t.TempDir(), "amd64", "disk.qcow2"), "docker://"+host+"/vm/ref:1", Options{Referrers: []v1.Image{sbom}}, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := name.NewDigest(res.Pinned)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Referrers(d)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 || m.Manifests[0].ArtifactType != "application/spdx+json" {
		t.Errorf("referrers of %s: %+v", res.Pinned, m.Manifests)
	}
}

// TestPushVolumes: a VOLUME's data disk is pushed first as an image of
// its own (the disk alone in /disk/), by digest and as TAG-data-N.
func TestPushVolumes(t *testing.T) {
	host, _ := testRegistry(t)
	dir := vmDir(t, t.TempDir(), "amd64", "disk.qcow2")
	m, err := vmdir.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data-0.img"), []byte("ext4 of /data"), 0o644); err != nil {
		t.Fatal(err)
	}
	if m.Artifacts["data-0.img"], err = vmdir.DigestFile(filepath.Join(dir, "data-0.img")); err != nil {
		t.Fatal(err)
	}
	m.Volumes = []vmdir.VolumeInfo{{Path: "/data", Disk: "data-0.img", Label: "c2vm-vol-0"}}
	writeJSONFile(t, filepath.Join(dir, "manifest.json"), m)
	res, err := Push(context.Background(), dir, "docker://"+host+"/vm/vol:1", Options{}, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Volumes) != 1 || res.Volumes[0].Path != "/data" || res.Volumes[0].Size != 13 {
		t.Fatalf("volumes %+v", res.Volumes)
	}
	tagged, err := name.ParseReference(host + "/vm/vol:1-data-0")
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(tagged)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	if !strings.HasSuffix(res.Volumes[0].Pinned, "@"+d.String()) {
		t.Errorf("the tag holds %s, the result pins %s", d, res.Volumes[0].Pinned)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("%d layers: %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var names []string
	for h, err := tr.Next(); err == nil; h, err = tr.Next() {
		names = append(names, h.Name+" "+strconv.Itoa(h.Uid)+" "+strconvOct(h.Mode))
	}
	if strings.Join(names, ",") != "disk/ 0 755,disk/data-0.img 107 440" {
		t.Errorf("the data image holds %q", names)
	}
}

// TestSupplyChainReferrers: push attaches the directory's SBOM and signed
// provenance as referrers, each typed, holding the file's bytes.
func TestSupplyChainReferrers(t *testing.T) {
	host, _ := testRegistry(t)
	dir := vmDir(t, t.TempDir(), "amd64", "disk.qcow2")
	files := map[string]string{vmdir.SBOM: `{"spdxVersion":"SPDX-2.3"}`, vmdir.SignedProvenance: `{"payloadType":"application/vnd.in-toto+json"}`}
	for n, body := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, err := vmdir.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	m.SBOM, m.Provenance = vmdir.SBOM, vmdir.SignedProvenance
	m.Artifacts[vmdir.SBOM], _ = vmdir.DigestFile(filepath.Join(dir, vmdir.SBOM))
	writeJSONFile(t, filepath.Join(dir, vmdir.ManifestFile), m)
	refs, err := SupplyChain(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Push(context.Background(), dir, "docker://"+host+"/vm/supply:1", Options{Referrers: refs}, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := name.NewDigest(res.Pinned)
	idx, err := remote.Referrers(d)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	got := map[string]string{}
	for _, desc := range im.Manifests {
		img, err := remote.Image(d.Context().Digest(desc.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		ls, _ := img.Layers()
		rc, _ := ls[0].Uncompressed()
		b, _ := io.ReadAll(rc)
		got[desc.ArtifactType] = string(b)
	}
	want := map[string]string{SPDXType: files[vmdir.SBOM], DSSEType: files[vmdir.SignedProvenance]}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("referrers of %s: %v, want %v", res.Pinned, got, want)
	} // The provenance, which manifest.json cannot list, is pulled too.
	out := filepath.Join(t.TempDir(), "pulled")
	if _, err := Pull(context.Background(), "docker://"+res.Pinned, out, image.Options{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(out, vmdir.SignedProvenance)); err != nil || string(b) != files[vmdir.SignedProvenance] {
		t.Errorf("pulled %s: %q, %v", vmdir.SignedProvenance, b, err)
	}
}
