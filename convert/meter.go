package convert

import (
	"fmt"
	"io"
	"sync"

	"github.com/c2vm/c2vm/kernel"
	"github.com/c2vm/c2vm/rootfs"
)

// Meter starts a live display of one long read: what is being read and
// its total bytes (-1 unknown). The stream's bytes are written to it; it
// is closed when the stream ends.
type Meter = kernel.Meter

// meteredLayers shows each layer's uncompressed bytes as the flattener
// reads them (and, for a registry, the download before: image.Options).
func meteredLayers(layers []rootfs.Layer, m Meter) {
	for i, l := range layers {
		layers[i] = meteredLayer{l: l, m: m, what: fmt.Sprintf("layer %d/%d", i+1, len(layers))}
	}
}

type meteredLayer struct {
	l    rootfs.Layer
	m    Meter
	what string
}

func (ml meteredLayer) Open() (io.ReadCloser, error) {
	rc, err := ml.l.Open()
	if err != nil {
		return nil, err
	}
	w := ml.m(ml.what, -1)
	return meteredReader{Reader: io.TeeReader(rc, w), rc: rc, w: w}, nil
}

type meteredReader struct {
	io.Reader
	rc io.Closer
	w  io.Closer
}

func (r meteredReader) Close() error {
	r.w.Close()
	return r.rc.Close()
}

// meterContents shows a rootfs writer's progress: every regular file's
// contents, counted as the writer reads them, against the tree's total.
// A writer may read a file twice (squashfs hashes same-size files to find
// duplicates), so the count is capped at the total. The returned function
// puts the tree's contents back and ends the display.
func meterContents(t *rootfs.Tree, m Meter, what string) (func(), error) {
	seen := map[*rootfs.Inode]rootfs.Content{}
	var total int64
	err := t.Walk(func(e rootfs.Entry) error {
		if _, ok := seen[e.Inode]; !ok && e.Inode.Content != nil {
			seen[e.Inode] = e.Inode.Content
			total += e.Inode.Size
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	w := &cappedMeter{w: m(what, total), left: total}
	for ino, c := range seen {
		ino.Content = meteredContent{c: c, w: w}
	}
	return func() {
		for ino, c := range seen {
			ino.Content = c
		}
		w.w.Close()
	}, nil
}

type meteredContent struct {
	c rootfs.Content
	w io.Writer
}

func (mc meteredContent) Open() (io.ReadCloser, error) {
	rc, err := mc.c.Open()
	if err != nil {
		return nil, err
	}
	tee := io.TeeReader(rc, mc.w)
	if s, ok := rc.(io.Seeker); ok {
		// Bytes sought past are not metered: a writer seeks to a tail
		// it reads later.
		return struct {
			io.Reader
			io.Seeker
			io.Closer
		}{tee, s, rc}, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{tee, rc}, nil
}

// cappedMeter forwards at most left bytes to w, from any goroutine (the
// squashfs writer reads files concurrently).
type cappedMeter struct {
	mu   sync.Mutex
	w    io.WriteCloser
	left int64
}

func (c *cappedMeter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := int64(len(p))
	if n > c.left {
		n = c.left
	}
	if n > 0 {
		c.w.Write(p[:n]) // a display: its errors do not stop the write
		c.left -= n
	}
	return len(p), nil
}
