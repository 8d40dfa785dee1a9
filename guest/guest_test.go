package guest

import (
	"testing"
)

func TestMatchesFS(t *testing.T) {
	ext4 := make([]byte, 2048)
	ext4[1080], ext4[1081] = 0x53, 0xef
	sq := append([]byte("hsqs"), make([]byte, 2044)...)
	erofs := make([]byte, 2048)
	copy(erofs[1024:], []byte{0xe2, 0xe1, 0xf5, 0xe0})
	for _, tc := range []struct {
		name string
		head []byte
		fs   string
		want bool
	}{
		{"ext4", ext4, "ext4", true}, {"ext4 is not squashfs", ext4, "squashfs", false},
		{"squashfs", sq, "squashfs", true}, {"erofs", erofs, "erofs", true},
		{"zeros", make([]byte, 2048), "ext4", false}, {"short", sq[:3], "squashfs", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := matchesFS(tc.head, tc.fs); got != tc.want {
				t.Errorf("%s: %v", tc.fs, got)
			}
		})
	}
}

func TestLookPath(t *testing.T) {
	files := map[string]bool{"/usr/bin/tool": true, "/bin/data": false, "/bin/sh": true}
	exists := func(p string) (bool, bool) { x, ok := files[p]; return x, ok }
	for _, tc := range []struct {
		name, file string
		env        []string
		want       string
		found      bool
	}{
		{"in PATH", "tool", []string{"PATH=/bin:/usr/bin"}, "/usr/bin/tool", true},
		{"not executable", "data", []string{"PATH=/bin:/usr/bin"}, "data", false},
		{"absolute as is", "/abs", nil, "/abs", true},
		{"default PATH when none", "sh", nil, "/bin/sh", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p, ok := lookPath(tc.file, tc.env, exists); p != tc.want || ok != tc.found {
				t.Errorf("got %s %v", p, ok)
			}
		})
	}
}
