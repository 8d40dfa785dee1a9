package tarindex

import (
	"bytes"
	"maps"
	"testing"
)

// FuzzIndex: any byte stream gives an index or an error, never a panic;
// every indexed member's data lies inside the stream, and the seekable and
// the streaming reads agree.
func FuzzIndex(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 1024))
	f.Fuzz(func(t *testing.T, b []byte) {
		seek, err := Index(bytes.NewReader(b))
		stream, err2 := Index(onlyReader{bytes.NewReader(b)})
		if (err == nil) != (err2 == nil) {
			t.Fatalf("seekable: %v, stream: %v", err, err2)
		}
		if err != nil {
			return
		}
		if !maps.Equal(seek, stream) {
			t.Fatalf("seekable %v, stream %v", seek, stream)
		}
		for name, m := range seek {
			if m.Offset < 0 || m.Size < 0 || m.Offset+m.Size > int64(len(b)) {
				t.Fatalf("%s: offset %d size %d outside %d bytes", name, m.Offset, m.Size, len(b))
			}
		}
	})
}
