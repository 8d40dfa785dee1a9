package convert

import (
	"fmt"
	"io"

	"github.com/c2vm/c2vm/rootfs"
)

// Meter starts a live display of one long read: what is being read and
// its total bytes (-1 unknown). The stream's bytes are written to it; it
// is closed when the stream ends.
type Meter func(what string, total int64) io.WriteCloser

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
