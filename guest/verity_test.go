package guest

import (
	"bytes"
	"testing"

	"github.com/c2vm/c2vm/rootfs/verity"
)

// TestMatchesVerity: the hash disk is recognised by the superblock
// rootfs/verity writes, and only with its own salt.
func TestMatchesVerity(t *testing.T) {
	data := make([]byte, 3*verity.BlockSize)
	salt := verity.Salt([]byte("image"))
	var h bytes.Buffer
	if _, err := verity.Write(&h, bytes.NewReader(data), int64(len(data)), salt); err != nil {
		t.Fatal(err)
	}
	head := h.Bytes()[:2048]
	for _, tc := range []struct {
		name string
		head []byte
		salt []byte
		want bool
	}{
		{"its salt", head, salt, true},
		{"another image's salt", head, verity.Salt([]byte("other")), false},
		{"short", head[:100], salt, false},
		{"a squashfs root", append([]byte("hsqs"), make([]byte, 2044)...), salt, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := matchesVerity(tc.head, tc.salt); got != tc.want {
				t.Errorf("matchesVerity = %v, want %v", got, tc.want)
			}
		})
	}
}
