package guest

import (
	"bytes"
	"encoding/binary"
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

// verityMagic starts the superblock of a dm-verity hash disk as
// veritysetup format writes it (cryptsetup lib/verity/verity.c, struct
// verity_sb: signature, then little-endian fields; salt_size is a 16-bit
// count at byte 80, the salt at byte 88).
var verityMagic = []byte("verity\x00\x00")

// matchesVerity reports whether head (a disk's first bytes) is a verity
// hash disk made with salt: the salt tells one image's tree from another's.
func matchesVerity(head, salt []byte) bool {
	if len(head) < 88+256 || !bytes.Equal(head[:8], verityMagic) {
		return false
	}
	n := int(binary.LittleEndian.Uint16(head[80:]))
	return n <= 256 && bytes.Equal(head[88:88+n], salt)
}
