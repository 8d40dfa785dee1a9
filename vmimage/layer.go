package vmimage

import (
	"archive/tar"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/c2vm/c2vm/convert"
)

// entry is one tar entry of a layer: a directory (src "") or the file src.
type entry struct {
	name  string // in the layer, no leading slash
	src   string
	mode  int64
	owner int
}

// gzipLevel is fixed: the same directory gives the same blobs. BestSpeed
// (klauspost's level 1) still shrinks a raw disk's empty space to nearly
// nothing, at several times the default level's speed.
const gzipLevel = gzip.BestSpeed

// writeLayer writes entries (in their order) as one gzip-compressed tar
// in tmp, hashing the compressed and the uncompressed bytes as it goes.
func writeLayer(tmp string, entries []entry, epoch time.Time) (*blob, error) {
	f, err := os.CreateTemp(tmp, "layer-*.tar.gz")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := &blob{path: f.Name()}
	digest, diffID := sha256.New(), sha256.New()
	zw, err := gzip.NewWriterLevel(io.MultiWriter(f, digest), gzipLevel)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(io.MultiWriter(zw, diffID))
	for _, e := range entries {
		if err := writeEntry(tw, e, epoch); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b.size, b.digest, b.diffID = fi.Size(), hashOf(digest), hashOf(diffID)
	return b, f.Close()
}

func writeEntry(tw *tar.Writer, e entry, epoch time.Time) error {
	h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.owner, Gid: e.owner, ModTime: epoch, Format: tar.FormatPAX}
	if e.src == "" {
		h.Typeflag, h.Name = tar.TypeDir, e.name+"/"
		return tw.WriteHeader(h)
	}
	f, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	h.Typeflag, h.Size = tar.TypeReg, fi.Size()
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
}

// blob is a layer written to a file: partial.CompressedLayer with its
// DiffID known, so nothing is hashed twice. Compressed is what an upload
// reads: it feeds the meter and the upload count.
type blob struct {
	path           string
	size           int64
	digest, diffID v1.Hash
	meter          convert.Meter
	uploaded       *atomic.Int64
}

func (b *blob) Digest() (v1.Hash, error)            { return b.digest, nil }
func (b *blob) DiffID() (v1.Hash, error)            { return b.diffID, nil }
func (b *blob) Size() (int64, error)                { return b.size, nil }
func (b *blob) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

func (b *blob) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(b.path)
	if err != nil {
		return nil, err
	}
	rc := &uploadReader{f: f, uploaded: b.uploaded}
	if b.meter != nil {
		rc.bar = b.meter("push "+b.digest.Hex[:12], b.size)
	}
	return rc, nil
}

func (b *blob) layer() (v1.Layer, error) { return partial.CompressedToLayer(b) }

type uploadReader struct {
	f        *os.File
	bar      io.WriteCloser
	uploaded *atomic.Int64
}

func (r *uploadReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	if n > 0 {
		if r.uploaded != nil {
			r.uploaded.Add(int64(n))
		}
		if r.bar != nil {
			r.bar.Write(p[:n])
		}
	}
	return n, err
}

func (r *uploadReader) Close() error {
	if r.bar != nil {
		r.bar.Close()
	}
	return r.f.Close()
}

// dirEntry is a layer's directory entry: root's, 0755.
func dirEntry(name string) entry { return entry{name: name, mode: 0o755} }

// fileEntry is name in dir as layerDir/name.
func fileEntry(layerDir, dir, name string, mode int64, owner int) entry {
	return entry{name: path.Join(layerDir, name), src: dir + "/" + name, mode: mode, owner: owner}
}
