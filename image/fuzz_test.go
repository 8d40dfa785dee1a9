package image

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// memStore is an image container held in memory, for fuzzing.
type memStore map[string][]byte

func (m memStore) open(name string) (io.ReadCloser, int64, error) {
	c, err := cleanName(name)
	if err != nil {
		return nil, 0, err
	}
	b, ok := m[c]
	if !ok {
		return nil, 0, fmt.Errorf("%s: %w", name, ErrMissingBlob)
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}

func (m memStore) exists(name string) bool { _, ok := m[name]; return ok }
func (memStore) Close() error              { return nil }

// FuzzParseDockerManifest: any manifest.json gives entries or an error,
// and no accepted path escapes the archive.
func FuzzParseDockerManifest(f *testing.F) {
	f.Add([]byte(`[{"Config":"abc.json","RepoTags":["a:1"],"Layers":["l/layer.tar"]}]`))
	f.Add([]byte(`[{"Config":"../x","Layers":[]}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := ParseDockerManifest(b)
		if err != nil {
			return
		}
		for _, m := range ms {
			for _, p := range append([]string{m.Config}, m.Layers...) {
				if _, err := cleanName(p); err != nil {
					t.Fatalf("accepted escaping path %q", p)
				}
			}
		}
	})
}

// FuzzResolveIndex: index resolution over hostile index.json and nested
// index blobs never panics and never loops.
func FuzzResolveIndex(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"INNER","size":SIZE}]}`),
		[]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2,"platform":{"os":"linux","architecture":"arm64"}}]}`),
		"linux/arm64")
	f.Add([]byte(`{"manifests":[{"digest":"INNER","size":SIZE}]}`), []byte(`{"manifests":[{"digest":"INNER","size":SIZE}]}`), "")
	f.Fuzz(func(t *testing.T, idx, inner []byte, platform string) {
		d := digest.FromBytes(inner)
		idx = bytes.ReplaceAll(idx, []byte("INNER"), []byte(d.String()))
		idx = bytes.ReplaceAll(idx, []byte("SIZE"), []byte(fmt.Sprint(len(inner))))
		s := memStore{"oci-layout": []byte(`{}`), "index.json": idx, "blobs/sha256/" + d.Encoded(): inner}
		img, err := resolveOCI(s, "", Options{Platform: platform})
		if err == nil && img == nil {
			t.Fatal("nil image without error")
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error %q", err)
		}
	})
}

// FuzzLayerOpen: any stored bytes, with any diff_id, give a stream that
// ends in EOF or an error, never a panic; the error is one line.
func FuzzLayerOpen(f *testing.F) {
	raw := tarOf(map[string]string{"a": "b"})
	for _, b := range [][]byte{raw, gz(raw), zst(raw), {0x5a, 0x2a, 0x4d, 0x18, 0, 0, 0, 0}, {0x1f, 0x8b}} {
		f.Add(b, "sha256:"+digest.FromBytes(raw).Encoded())
	}
	f.Fuzz(func(t *testing.T, stored []byte, diffID string) {
		d := digest.FromBytes(stored)
		s := memStore{"blob": stored}
		l := Layer{Digest: d, Size: int64(len(stored)), s: s, path: "blob"}
		if checkDigest(digest.Digest(diffID)) == nil {
			l.DiffID = digest.Digest(diffID)
		}
		rc, err := l.Open()
		if err == nil {
			_, err = io.Copy(io.Discard, io.LimitReader(rc, 64<<20))
			rc.Close()
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("multi-line error %q", err)
		}
	})
}
