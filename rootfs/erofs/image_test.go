package erofs

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
)

// TestAllocator: records are 32-byte aligned, never overlap, and one no
// bigger than a block never crosses a block boundary (the kernel refuses
// inline data that does); bigger ones start on a block.
func TestAllocator(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sizes func(r *rand.Rand) int64
	}{
		{"small", func(r *rand.Rand) int64 { return 32 + r.Int64N(200) }},
		{"mixed", func(r *rand.Rand) int64 { return 32 + r.Int64N(4064) }},
		{"with big", func(r *rand.Rand) int64 {
			if r.IntN(20) == 0 {
				return 4097 + r.Int64N(20000)
			}
			return 32 + r.Int64N(3000)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			a := allocator{end: 1152, open: []int64{1152}}
			type span struct{ at, size int64 }
			var spans []span
			for i := range 5000 {
				size := tc.sizes(r)
				at := a.alloc(size)
				if i == 0 && at != 1152 && 1152+size <= blockSize {
					t.Fatalf("first record at %d, want 1152 (right after the superblock)", at)
				}
				switch {
				case at%slotSize != 0:
					t.Fatalf("record of %d at %d: not 32-byte aligned", size, at)
				case size <= blockSize && at/blockSize != (at+size-1)/blockSize:
					t.Fatalf("record of %d at %d crosses a block boundary", size, at)
				case size > blockSize && at%blockSize != 0:
					t.Fatalf("record of %d at %d does not start a block", size, at)
				case at+size > a.end:
					t.Fatalf("record of %d at %d ends past the area's end %d", size, at, a.end)
				}
				spans = append(spans, span{at, size})
			}
			sort.Slice(spans, func(i, j int) bool { return spans[i].at < spans[j].at })
			var used int64
			for i, s := range spans {
				used += roundUp(s.size, slotSize)
				if i > 0 && spans[i-1].at+spans[i-1].size > s.at {
					t.Fatalf("records at %d (+%d) and %d overlap", spans[i-1].at, spans[i-1].size, s.at)
				}
			}
			t.Logf("%d bytes in an area of %d (%.1f%% used)", used, a.end, 100*float64(used)/float64(a.end))
		})
	}
}

// TestDirBlocks: a directory's names fill blocks without being split, in
// order, and its size ends at its last name.
func TestDirBlocks(t *testing.T) {
	var ents []dirent
	for i := range 1000 {
		ents = append(ents, dirent{name: "name-" + string(rune('a'+i%26)) + fmt.Sprintf("%04d", i)})
	}
	blocks := dirBlocks(ents)
	n := 0
	for _, b := range blocks {
		used := 0
		for _, e := range b {
			if e.name != ents[n].name {
				t.Fatalf("entry %d is %q, want %q", n, e.name, ents[n].name)
			}
			n++
			used += direntSize + len(e.name)
		}
		if used > blockSize {
			t.Fatalf("block of %d bytes", used)
		}
	}
	if n != len(ents) {
		t.Fatalf("%d entries in blocks, want %d", n, len(ents))
	}
	last := blocks[len(blocks)-1]
	want := int64(len(blocks)-1) * blockSize
	for _, e := range last {
		want += int64(direntSize + len(e.name))
	}
	if got := dirSize(ents); got != want {
		t.Errorf("dirSize = %d, want %d", got, want)
	}
}
