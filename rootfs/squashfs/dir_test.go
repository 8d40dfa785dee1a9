package squashfs

import (
	"encoding/binary"
	"testing"

	"github.com/c2vm/c2vm/rootfs"
)

// store is a compressor that never shrinks, so metadata blocks are kept
// as is and the test can read them back.
type store struct{}

func (store) compress(dst, src []byte) ([]byte, error) { return append(dst[:0], src...), nil }

// unblock strips the 2-byte headers of uncompressed metadata blocks.
func unblock(t *testing.T, b []byte) []byte {
	var u []byte
	for len(b) > 0 {
		h := binary.LittleEndian.Uint16(b)
		if h&0x8000 == 0 {
			t.Fatal("block unexpectedly compressed")
		}
		n := int(h &^ 0x8000)
		u, b = append(u, b[2:2+n]...), b[2+n:]
	}
	return u
}

// TestDirectoryIndex: a listing spanning metadata blocks gets one index
// entry per block it enters, each pointing at a header whose first name
// is the index's name.
func TestDirectoryIndex(t *testing.T) {
	var children []dentry
	for i := range 3000 {
		children = append(children, dentry{name: "name-" + itoa(100000+i), typ: rootfs.TypeRegular,
			num: uint32(i + 1), ref: uint64(i/200)<<16 | uint64(i%200*32)})
	}
	dt := &metaWriter{comp: store{}}
	dt.write(make([]byte, 5000)) // start mid-block, after other listings
	size, index := writeListing(children, dt)
	b, err := dt.finish()
	if err != nil {
		t.Fatal(err)
	}
	u := unblock(t, b)
	if int(size) != len(u)-5000 {
		t.Fatalf("size %d, listing %d", size, len(u)-5000)
	}
	if want := (len(u)-1)/metaSize - 5000/metaSize; len(index) != want {
		t.Fatalf("%d index entries, want %d", len(index), want)
	}
	for i, x := range index {
		at := 5000 + int(x.index)
		if at/metaSize != i+1 || int(x.start) != (i+1)*(metaSize+2) {
			t.Errorf("index %d: offset %d block start %d", i, at, x.start)
		}
		name := u[at+12+8 : at+12+8+int(binary.LittleEndian.Uint16(u[at+12+6:]))+1]
		if string(name) != x.name {
			t.Errorf("index %d names %q, header there starts with %q", i, x.name, name)
		}
	}
}
