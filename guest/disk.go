package guest

import (
	"bytes"
	"encoding/binary"

	"github.com/c2vm/c2vm/rootfs/verity"
)

// Superblock magics that identify a root disk by content, whatever its
// device name (vda, xvda, sda, nvme0n1).
var magics = map[string]struct {
	off   int
	magic []byte
}{
	// Documentation/filesystems/ext4: s_magic 0xEF53 at byte 56 of the
	// superblock, which starts at 1024.
	"ext4": {1024 + 56, []byte{0x53, 0xef}},
	// squashfs_fs.h: SQUASHFS_MAGIC 0x73717368 ("hsqs") at 0.
	"squashfs": {0, []byte("hsqs")},
	// erofs_fs.h: EROFS_SUPER_MAGIC_V1 0xE0F5E1E2 at 1024.
	"erofs": {1024, le32(0xE0F5E1E2)},
}

func le32(v uint32) []byte {
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, v)
	return b
}

// matchesFS reports whether head (a disk's first 2 KiB) holds a
// filesystem of type fstype.
func matchesFS(head []byte, fstype string) bool {
	m, ok := magics[fstype]
	return ok && len(head) >= m.off+len(m.magic) && bytes.Equal(head[m.off:m.off+len(m.magic)], m.magic)
}

// matchesVerity reports whether head (a disk's first bytes) is a verity
// hash disk made with salt: the salt tells one image's tree from another's.
// The superblock is read as rootfs/verity writes it (standard library
// only, so the init may link it).
func matchesVerity(head, salt []byte) bool {
	sb, err := verity.ParseSuperblock(head)
	return err == nil && bytes.Equal(sb.Salt, salt)
}
