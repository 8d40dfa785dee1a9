package image

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// oneLayer writes an image of one layer stored as stored, whose diff_id
// is that of raw, and opens it with ctx.
func oneLayer(t *testing.T, ctx context.Context, stored, raw []byte) *Image {
	t.Helper()
	l := newLayout(t)
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}}
	cfg.RootFS.DiffIDs = []digest.Digest{digest.FromBytes(raw)}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: l.json(ocispec.MediaTypeImageConfig, cfg),
		Layers: []ocispec.Descriptor{l.blob(ocispec.MediaTypeImageLayerGzip, stored)}}
	l.index(l.json(ocispec.MediaTypeImageManifest, m))
	img, err := OpenContext(ctx, l.dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

// TestCorruptBlobIsADigestMismatch: one flipped byte anywhere in a stored
// layer is reported as the blob's digest mismatch, never as whatever the
// damaged bytes decode to (a tar or gzip error), because the stored blob
// is verified before it is decoded.
func TestCorruptBlobIsADigestMismatch(t *testing.T) {
	raw := tarOf(map[string]string{"etc/motd": strings.Repeat("hello\n", 2000)})
	for name, stored := range map[string][]byte{"gzip": gz(raw), "zstd": zst(raw), "plain": raw} {
		for _, at := range []int{0, 12, len(stored) / 2, len(stored) - 5} {
			t.Run(name, func(t *testing.T) {
				img := oneLayer(t, context.Background(), stored, raw)
				bad := bytes.Clone(stored)
				bad[at] ^= 0x20
				l := img.Layers[0]
				writeBlob(t, l, bad)
				_, err := readLayer(t, l)
				if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), "layer "+l.Digest.String()+": digest mismatch: got sha256:") {
					t.Fatalf("byte %d flipped: got %v, want the layer's digest mismatch", at, err)
				}
			})
		}
	}
}

// writeBlob replaces a layer's stored bytes in its layout.
func writeBlob(t *testing.T, l Layer, b []byte) {
	t.Helper()
	r, _, err := l.s.open(l.path)
	if err != nil {
		t.Fatal(err)
	}
	f := r.(interface{ Name() string })
	r.Close()
	if err := os.WriteFile(f.Name(), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestZstdSkippableFrame: a zstd stream may start with a skippable frame
// (RFC 8878 section 3.1.2, magic 0x184D2A50 to 0x184D2A5F), and is still
// zstd.
func TestZstdSkippableFrame(t *testing.T) {
	raw := tarOf(map[string]string{"a": "b"})
	for _, magic := range []uint32{0x184D2A50, 0x184D2A5F} {
		skip := binary.LittleEndian.AppendUint32(nil, magic)
		skip = binary.LittleEndian.AppendUint32(skip, 5)
		stored := append(append(skip, "hello"...), zst(raw)...)
		if c := DetectCompression(stored); c != Zstd {
			t.Errorf("%#x: detected %s", magic, c)
		}
		img := oneLayer(t, context.Background(), stored, raw)
		if b, err := readLayer(t, img.Layers[0]); err != nil || !bytes.Equal(b, raw) {
			t.Errorf("%#x: read %d bytes, err %v", magic, len(b), err)
		}
	}
}

// TestLayerStreamStopsOnCancel: once the context is done, the next read of
// a streaming layer fails with the context's error.
func TestLayerStreamStopsOnCancel(t *testing.T) {
	raw := tarOf(map[string]string{"big": strings.Repeat("z", 8<<20)})
	ctx, cancel := context.WithCancel(context.Background())
	img := oneLayer(t, ctx, gz(raw), raw)
	rc, err := img.Layers[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	cancel()
	_, err = io.Copy(io.Discard, rc)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}
