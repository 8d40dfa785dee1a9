package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// layout builds a tiny OCI layout in a temp dir, blob by blob.
type layout struct {
	t   *testing.T
	dir string
}

func newLayout(t *testing.T) *layout {
	l := &layout{t: t, dir: t.TempDir()}
	os.MkdirAll(filepath.Join(l.dir, "blobs", "sha256"), 0o755)
	os.WriteFile(filepath.Join(l.dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	return l
}

func (l *layout) blob(mt string, b []byte) ocispec.Descriptor {
	d := digest.FromBytes(b)
	if err := os.WriteFile(filepath.Join(l.dir, "blobs", "sha256", d.Encoded()), b, 0o644); err != nil {
		l.t.Fatal(err)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(b))}
}

func (l *layout) json(mt string, v any) ocispec.Descriptor {
	b, _ := json.Marshal(v)
	return l.blob(mt, b)
}

func tarOf(files map[string]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zst(b []byte) []byte {
	w, _ := zstd.NewWriter(nil)
	return w.EncodeAll(b, nil)
}

// image adds one image (config + manifest) and returns its descriptor.
func (l *layout) image(arch string, layers ...[]byte) ocispec.Descriptor {
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: arch}}
	cfg.Config.Cmd = []string{"/bin/true"}
	cfg.RootFS.Type = "layers"
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest}
	m.SchemaVersion = 2
	for _, raw := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(raw))
		m.Layers = append(m.Layers, l.blob(ocispec.MediaTypeImageLayerGzip, gz(raw)))
	}
	m.Config = l.json(ocispec.MediaTypeImageConfig, cfg)
	return l.json(ocispec.MediaTypeImageManifest, m)
}

func (l *layout) index(ds ...ocispec.Descriptor) {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: ds}
	idx.SchemaVersion = 2
	b, _ := json.Marshal(idx)
	os.WriteFile(filepath.Join(l.dir, "index.json"), b, 0o644)
}

func (l *layout) nestedIndex(ds ...ocispec.Descriptor) ocispec.Descriptor {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: ds}
	idx.SchemaVersion = 2
	return l.json(ocispec.MediaTypeImageIndex, idx)
}

func readLayer(t *testing.T, l Layer) ([]byte, error) {
	t.Helper()
	rc, err := l.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func withPlatform(d ocispec.Descriptor, arch, variant string) ocispec.Descriptor {
	d.Platform = &ocispec.Platform{OS: "linux", Architecture: arch, Variant: variant}
	return d
}

func TestNestedIndexPlatforms(t *testing.T) {
	l := newLayout(t)
	raw := tarOf(map[string]string{"hello": "world"})
	amd := withPlatform(l.image("amd64", raw), "amd64", "")
	arm := withPlatform(l.image("arm64", raw), "arm64", "v8")
	att := withPlatform(l.image("amd64"), "unknown", "unknown")
	inner := l.nestedIndex(amd, arm, att)
	inner.Annotations = map[string]string{ocispec.AnnotationRefName: "latest"}
	l.index(inner)
	for _, tc := range []struct{ platform, arch string }{
		{"linux/arm64", "arm64"}, {"linux/arm64/v8", "arm64"}, {"linux/amd64", "amd64"},
	} {
		img, err := Open("oci:"+l.dir, Options{Platform: tc.platform})
		if err != nil {
			t.Fatalf("%s: %v", tc.platform, err)
		}
		if img.Platform.Architecture != tc.arch {
			t.Errorf("%s: got %s", tc.platform, img.Platform.Architecture)
		}
		b, err := readLayer(t, img.Layers[0])
		if err != nil || !bytes.Equal(b, raw) {
			t.Errorf("%s: layer: %v", tc.platform, err)
		}
		img.Close()
	}
	_, err := Open("oci:"+l.dir, Options{Platform: "linux/s390x"})
	if !errors.Is(err, ErrNoPlatform) || !strings.Contains(err.Error(), "linux/amd64, linux/arm64/v8") {
		t.Errorf("s390x: %v, want ErrNoPlatform listing what is offered", err)
	}
}

func TestCompressionDetectedByMagic(t *testing.T) {
	raw := tarOf(map[string]string{"a": "b"})
	for name, stored := range map[string][]byte{"gzip": gz(raw), "zstd": zst(raw), "none": raw} {
		t.Run(name, func(t *testing.T) {
			// The media type says gzip whatever the content: detection
			// goes by the magic bytes.
			img := oneLayer(t, context.Background(), stored, raw)
			if b, err := readLayer(t, img.Layers[0]); err != nil || !bytes.Equal(b, raw) {
				t.Errorf("read %d bytes, err %v", len(b), err)
			}
		})
	}
}

func TestBadImages(t *testing.T) {
	raw := tarOf(map[string]string{"f": "data"})
	for _, tc := range []struct {
		name   string
		build  func(l *layout) string // returns the ref
		want   error
		atRead bool
	}{
		{"not an image", func(l *layout) string { os.Remove(filepath.Join(l.dir, "oci-layout")); return l.dir }, ErrNotImage, false},
		{"missing blob", func(l *layout) string {
			d := l.image("amd64", raw)
			l.index(d)
			b, _ := os.ReadFile(filepath.Join(l.dir, "blobs/sha256", d.Digest.Encoded()))
			var m ocispec.Manifest
			json.Unmarshal(b, &m)
			os.Remove(filepath.Join(l.dir, "blobs/sha256", m.Layers[0].Digest.Encoded()))
			return l.dir
		}, ErrMissingBlob, false},
		{"manifest digest mismatch", func(l *layout) string {
			d := l.image("amd64", raw)
			l.index(d)
			p := filepath.Join(l.dir, "blobs/sha256", d.Digest.Encoded())
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(b, []byte("schemaVersion"), []byte("schemaVersioN"), 1), 0o644)
			return l.dir
		}, ErrDigestMismatch, false},
		{"layer digest mismatch", func(l *layout) string {
			d := l.image("amd64", raw)
			l.index(d)
			b, _ := os.ReadFile(filepath.Join(l.dir, "blobs/sha256", d.Digest.Encoded()))
			var m ocispec.Manifest
			json.Unmarshal(b, &m)
			p := filepath.Join(l.dir, "blobs/sha256", m.Layers[0].Digest.Encoded())
			os.WriteFile(p, gz(tarOf(map[string]string{"f": "evil"})), 0o644)
			return l.dir
		}, ErrDigestMismatch, true},
		{"corrupt gzip", func(l *layout) string {
			bad := gz(raw)
			bad[len(bad)/2] ^= 0xff
			cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}}
			m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: l.json(ocispec.MediaTypeImageConfig, cfg),
				Layers: []ocispec.Descriptor{l.blob(ocispec.MediaTypeImageLayerGzip, bad)}}
			l.index(l.json(ocispec.MediaTypeImageManifest, m))
			return l.dir
		}, ErrCorrupt, true},
		{"ambiguous", func(l *layout) string {
			a := l.image("amd64", raw)
			b := l.image("amd64")
			a.Annotations = map[string]string{ocispec.AnnotationRefName: "one"}
			b.Annotations = map[string]string{ocispec.AnnotationRefName: "two"}
			l.index(a, b)
			return l.dir
		}, ErrAmbiguous, false},
		{"no such name", func(l *layout) string {
			a := l.image("amd64", raw)
			a.Annotations = map[string]string{ocispec.AnnotationRefName: "one"}
			l.index(a)
			return "oci:" + l.dir + ":three"
		}, ErrNoSuchImage, false},
		{"escaping blob path", func(l *layout) string {
			l.index(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: "sha256:../../etc/passwd", Size: 1})
			return l.dir
		}, ErrCorrupt, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLayout(t)
			ref := tc.build(l)
			img, err := Open(ref, Options{})
			if tc.atRead {
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				_, err = readLayer(t, img.Layers[0])
				img.Close()
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestOCIArchiveAndDockerArchive(t *testing.T) {
	raw := tarOf(map[string]string{"x": "y"})
	l := newLayout(t)
	d := l.image("arm64", raw)
	d.Annotations = map[string]string{ocispec.AnnotationRefName: "v1"}
	l.index(d)
	archive := filepath.Join(t.TempDir(), "img.tar")
	tarDir(t, l.dir, archive)
	img, err := Open("oci-archive:"+archive+":v1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := readLayer(t, img.Layers[0]); err != nil || !bytes.Equal(b, raw) {
		t.Errorf("layer: %v", err)
	}
	img.Close()

	// A legacy `docker save` archive: manifest.json, config, layer.tar.
	dd := t.TempDir()
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}}
	cfg.RootFS.DiffIDs = []digest.Digest{digest.FromBytes(raw)}
	cb, _ := json.Marshal(cfg)
	cd := digest.FromBytes(cb)
	os.WriteFile(filepath.Join(dd, cd.Encoded()+".json"), cb, 0o644)
	os.MkdirAll(filepath.Join(dd, "abc"), 0o755)
	os.WriteFile(filepath.Join(dd, "abc", "layer.tar"), raw, 0o644)
	mj, _ := json.Marshal([]DockerManifest{{Config: cd.Encoded() + ".json", RepoTags: []string{"app:1"}, Layers: []string{"abc/layer.tar"}}})
	os.WriteFile(filepath.Join(dd, "manifest.json"), mj, 0o644)
	darchive := filepath.Join(t.TempDir(), "docker.tar")
	tarDir(t, dd, darchive)
	img, err = Open(darchive, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if img.ConfigDigest != cd {
		t.Errorf("config digest %s, want %s", img.ConfigDigest, cd)
	}
	if b, err := readLayer(t, img.Layers[0]); err != nil || !bytes.Equal(b, raw) {
		t.Errorf("layer: %v", err)
	}
}

// tarDir writes dir's files into a tar archive (as skopeo's archives are).
func tarDir(t *testing.T, dir, out string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, _ := os.ReadFile(p)
		tw.WriteHeader(&tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
		return nil
	})
	tw.Close()
}

func TestParseRef(t *testing.T) {
	for _, tc := range []struct{ ref, tr, path, name string }{
		{"oci:/a/b:latest", "oci", "/a/b", "latest"},
		{"oci-archive:x.tar", "oci-archive", "x.tar", ""},
		{"docker-archive:/x.tar:app:1", "docker-archive", "/x.tar:app", "1"},
		{"/plain/path", "", "/plain/path", ""},
	} {
		tr, p, n := ParseRef(tc.ref)
		if string(tr) != tc.tr || p != tc.path || n != tc.name {
			t.Errorf("ParseRef(%q) = %q %q %q", tc.ref, tr, p, n)
		}
	}
}

// A Docker 25+ `docker save` carries both manifest.json and an OCI
// layout; the layout (with real manifest digests) wins.
func TestDocker25ArchivePrefersOCILayout(t *testing.T) {
	raw := tarOf(map[string]string{"x": "y"})
	l := newLayout(t)
	d := l.image("amd64", raw)
	l.index(d)
	os.WriteFile(filepath.Join(l.dir, "manifest.json"), []byte(`[{"Config":"blobs/sha256/none","RepoTags":["a:1"],"Layers":[]}]`), 0o644)
	archive := filepath.Join(t.TempDir(), "docker25.tar")
	tarDir(t, l.dir, archive)
	img, err := Open(archive, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if img.ManifestDigest != d.Digest {
		t.Errorf("manifest %s, want the OCI layout's %s", img.ManifestDigest, d.Digest)
	}
}
