package kernel

import (
	"errors"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
)

// TestOpenMetered: a .deb's data member is shown on the meter as it is
// unpacked, every byte of it against its size, and the display ends.
func TestOpenMetered(t *testing.T) {
	data := gzipOf(tarOf(t, "usr/share/doc/x", make([]byte, 100_000)))
	p := writeFile(t, "k.deb", deb(t, "data.tar.gz", data))
	rec := &fixtures.Meter{}
	_, err := OpenMetered(p, rec.Start)
	if !errors.Is(err, ErrNoKernel) {
		t.Fatalf("OpenMetered: %v; want ErrNoKernel (the package holds no kernel)", err)
	}
	if rec.What != "unpack k.deb" || rec.Total != int64(len(data)) || rec.N != rec.Total || !rec.Closed {
		t.Errorf("meter: %q total %d, %d bytes, closed %v; want \"unpack k.deb\" total %d, all of it, closed",
			rec.What, rec.Total, rec.N, rec.Closed, len(data))
	}
}
