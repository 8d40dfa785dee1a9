package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Generators of the bad-input corpus (badinput_test.go): OCI layouts,
// docker-save archives, layer tars and compressed streams written in code,
// each open to damage at any field.

// badOCI is an OCI layout written blob by blob, every field open to damage.
type badOCI struct {
	t   *testing.T
	dir string
}

func newBadOCI(t *testing.T) *badOCI {
	o := &badOCI{t: t, dir: filepath.Join(t.TempDir(), "img")}
	o.file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	return o
}

func (o *badOCI) file(name string, b []byte) {
	p := filepath.Join(o.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		o.t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		o.t.Fatal(err)
	}
}

func (o *badOCI) blobPath(d ocispec.Descriptor) string {
	return filepath.Join(o.dir, "blobs", "sha256", d.Digest.Encoded())
}

func (o *badOCI) blob(mt string, b []byte) ocispec.Descriptor {
	d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
	o.file("blobs/sha256/"+d.Digest.Encoded(), b)
	return d
}

func (o *badOCI) json(mt string, v any) ocispec.Descriptor {
	b, err := json.Marshal(v)
	if err != nil {
		o.t.Fatal(err)
	}
	return o.blob(mt, b)
}

// replace swaps a written blob's bytes, keeping its name (a corrupt blob).
func (o *badOCI) replace(d ocispec.Descriptor, edit func([]byte) []byte) {
	b, err := os.ReadFile(o.blobPath(d))
	if err != nil {
		o.t.Fatal(err)
	}
	o.file("blobs/sha256/"+d.Digest.Encoded(), edit(b))
}

// special makes a written blob a FIFO or a symlink to a device.
func (o *badOCI) special(d ocispec.Descriptor, kind string) {
	p := o.blobPath(d)
	os.Remove(p)
	if err := makeSpecial(p, kind); err != nil {
		o.t.Fatal(err)
	}
}

func makeSpecial(p, kind string) error {
	if kind == "fifo" {
		return syscall.Mkfifo(p, 0o644)
	}
	return os.Symlink(kind, p)
}

func (o *badOCI) index(ds ...ocispec.Descriptor) string {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: ds}
	idx.SchemaVersion = 2
	b, _ := json.Marshal(idx)
	o.file("index.json", b)
	return o.dir
}

func (o *badOCI) nested(ds ...ocispec.Descriptor) ocispec.Descriptor {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: ds}
	idx.SchemaVersion = 2
	return o.json(ocispec.MediaTypeImageIndex, idx)
}

// layer is a layer's stored bytes and the diff_id its config names.
type layer struct {
	stored []byte
	diffID digest.Digest
}

func gzLayer(raw []byte) layer   { return layer{gzipBytes(raw), digest.FromBytes(raw)} }
func zstdLayer(raw []byte) layer { return layer{zstdBytes(raw), digest.FromBytes(raw)} }
func plainLayer(raw []byte) layer {
	return layer{raw, digest.FromBytes(raw)}
}

// edits change an image's config and manifest before they are written.
type edits struct {
	cfg      func(*ocispec.Image)
	manifest func(*ocispec.Manifest)
}

// image writes config and manifest for layers and returns the manifest's
// descriptor; the manifest itself is returned for later damage.
func (o *badOCI) image(e edits, layers ...layer) (ocispec.Descriptor, ocispec.Manifest) {
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}}
	cfg.Config.Cmd = []string{"/bin/true"}
	cfg.RootFS.Type = "layers"
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest}
	m.SchemaVersion = 2
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
		m.Layers = append(m.Layers, o.blob(ocispec.MediaTypeImageLayerGzip, l.stored))
	}
	if e.cfg != nil {
		e.cfg(&cfg)
	}
	m.Config = o.json(ocispec.MediaTypeImageConfig, cfg)
	if e.manifest != nil {
		e.manifest(&m)
	}
	return o.json(ocispec.MediaTypeImageManifest, m), m
}

// simple is a one-layer image of layer l, listed by index.json.
func (o *badOCI) simple(e edits, l layer) string {
	d, _ := o.image(e, l)
	return o.index(d)
}

// files is a small, valid layer tar.
func files() []byte {
	return tarOf(func(tw *tar.Writer) {
		tw.WriteHeader(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755})
		body := strings.Repeat("hello corpus\n", 400)
		tw.WriteHeader(&tar.Header{Name: "etc/motd", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))})
		tw.Write([]byte(body))
	})
}

func tarOf(write func(tw *tar.Writer)) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	write(tw)
	tw.Close()
	return buf.Bytes()
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func zstdBytes(b []byte) []byte {
	w, _ := zstd.NewWriter(nil)
	return w.EncodeAll(b, nil)
}

// flipMiddle flips one byte in the middle of a blob.
func flipMiddle(b []byte) []byte {
	b[len(b)/2] ^= 0x55
	return b
}

// gzipBomb is a gzip layer whose tar claims a file of claim bytes and
// whose stream inflates to members MiB of zeros: gzip members of 1 MiB of
// zeros (~1 KiB each at deflate's ~1030:1 best) concatenated, as RFC 1952
// section 2.2 allows, so a few MB are built without writing GiBs.
func gzipBomb(claim int64, members int) []byte {
	var buf bytes.Buffer
	buf.Write(gzipBytes(tarHeaderOnly(claim)))
	zeros := gzipBytes(make([]byte, 1<<20))
	for range members {
		buf.Write(zeros)
	}
	return buf.Bytes()
}

// zstdBomb is a zstd frame (RFC 8878 section 3.1.1) of the tar header as a
// Raw block, then RLE blocks of 128 KiB of zeros (4 bytes each) up to size.
func zstdBomb(size int64) []byte {
	var b bytes.Buffer
	b.Write([]byte{0x28, 0xb5, 0x2f, 0xfd})
	b.WriteByte(0x00) // descriptor: no content size, no checksum, no dictionary
	b.WriteByte(0x50) // window: 2^(10+10) = 1 MiB
	hdr := tarHeaderOnly(size)
	zstdBlock(&b, 0, len(hdr), false)
	b.Write(hdr)
	const blockMax = 128 << 10
	n := size / blockMax
	for i := int64(0); i < n; i++ {
		zstdBlock(&b, 1, blockMax, i == n-1)
		b.WriteByte(0)
	}
	return b.Bytes()
}

// zstdBlock writes a block header: Last_Block, Block_Type, Block_Size
// (RFC 8878 section 3.1.1.2.1), little-endian in 3 bytes.
func zstdBlock(b *bytes.Buffer, typ, size int, last bool) {
	h := size<<3 | typ<<1
	if last {
		h |= 1
	}
	b.Write([]byte{byte(h), byte(h >> 8), byte(h >> 16)})
}

// tarHeaderOnly is the header blocks of one regular file of size bytes.
func tarHeaderOnly(size int64) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: size})
	return buf.Bytes()
}

// ustar is one hand-made tar header block (POSIX ustar layout) plus the
// padded body, for what archive/tar's writer refuses to produce.
func ustar(name string, typ byte, body []byte, edit func(h []byte)) []byte {
	h := make([]byte, 512)
	copy(h[0:100], name)
	copy(h[100:108], "0000644\x00")
	copy(h[108:116], "0000000\x00")
	copy(h[116:124], "0000000\x00")
	copy(h[124:136], fmt.Sprintf("%011o\x00", len(body)))
	copy(h[136:148], "00000000000\x00")
	h[156] = typ
	copy(h[257:265], "ustar\x0000")
	if edit != nil {
		edit(h)
	}
	copy(h[148:156], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	out := append(h, body...)
	if pad := len(body) % 512; pad != 0 {
		out = append(out, make([]byte, 512-pad)...)
	}
	return out
}

// paxRecord is one "length key=value\n" record; the length counts itself.
func paxRecord(k, v string) string {
	n := len(k) + len(v) + 3
	for {
		s := fmt.Sprintf("%d %s=%s\n", n, k, v)
		if len(s) == n {
			return s
		}
		n = len(s)
	}
}

// rawTar joins hand-made blocks and ends the archive.
func rawTar(blocks ...[]byte) []byte {
	return append(bytes.Join(blocks, nil), make([]byte, 1024)...)
}

// legacy is a `docker save` archive's files, editable before archiving.
type legacy map[string][]byte

func newLegacy(layers ...[]byte) legacy {
	l := legacy{}
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}}
	cfg.RootFS.Type = "layers"
	var paths []string
	for i, raw := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(raw))
		p := fmt.Sprintf("l%d/layer.tar", i)
		l[p] = raw
		paths = append(paths, p)
	}
	cb, _ := json.Marshal(cfg)
	name := digest.FromBytes(cb).Encoded() + ".json"
	l[name] = cb
	l["manifest.json"], _ = json.Marshal([]map[string]any{{"Config": name, "RepoTags": []string{"app:1"}, "Layers": paths}})
	return l
}

// config returns the name of the config file.
func (l legacy) config() string {
	for n := range l {
		if strings.HasSuffix(n, ".json") && n != "manifest.json" {
			return n
		}
	}
	return ""
}

// setConfig replaces the config (renamed by its new digest).
func (l legacy) setConfig(edit func(*ocispec.Image)) {
	old := l.config()
	var cfg ocispec.Image
	json.Unmarshal(l[old], &cfg)
	edit(&cfg)
	cb, _ := json.Marshal(cfg)
	delete(l, old)
	name := digest.FromBytes(cb).Encoded() + ".json"
	l[name] = cb
	l["manifest.json"] = bytes.ReplaceAll(l["manifest.json"], []byte(old), []byte(name))
}

func (l legacy) archive(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "docker.tar")
	b := tarOf(func(tw *tar.Writer) {
		for _, name := range slices.Sorted(maps.Keys(l)) {
			tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(l[name]))})
			tw.Write(l[name])
		}
	})
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
