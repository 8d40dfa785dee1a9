// Package verity writes dm-verity hash trees (format 1, sha256, 4 KiB data
// and hash blocks) in the layout `veritysetup format` writes: a superblock
// in the first hash block, then the tree, its top level first. The kernel's
// verity target (Documentation/admin-guide/device-mapper/verity.rst) and
// `veritysetup verify DATA HASH ROOTHASH` both check what it writes.
//
//	salt := verity.Salt(rootfsDigest)
//	root, err := verity.Write(hashFile, rootfsImg, size, salt)
//	// the kernel table: verity.Table(dataDev, hashDev, size, root, salt)
//
// The superblock's UUID is derived from the salt and the root hash, so the
// same data and salt give the same bytes.
package verity

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/c2vm/c2vm/internal/uuid"
)

// Format parameters, fixed: what cryptsetup defaults to.
const (
	BlockSize = 4096     // data and hash block size
	Algorithm = "sha256" // hash algorithm
	Version   = 1        // hash_type 1: salt before the data (0 is Chrome OS's)
	// HashOffset is where the tree starts in the hash file: after the
	// superblock, which takes one hash block (cryptsetup pads it so).
	HashOffset = BlockSize
)

// Magic starts the superblock (cryptsetup lib/verity/verity.c, VERITY_SIGNATURE).
var Magic = []byte("verity\x00\x00")

// superblockSize is struct verity_sb's packed size.
const superblockSize = 512

// maxSalt is the superblock's salt field size.
const maxSalt = 256

// digestsPerBlock is how many sha256 digests a hash block holds: format 1
// pads each digest to a power of two, which 32 already is.
const digestsPerBlock = BlockSize / sha256.Size

// Errors a caller may test.
var (
	ErrSize = errors.New("verity: data size must be a positive multiple of 4096")
	ErrSalt = errors.New("verity: salt longer than 256 bytes")
)

// Salt derives a 32-byte salt from seed (the root filesystem's digest):
// reproducible for the same content, different for different content.
func Salt(seed []byte) []byte {
	h := sha256.New()
	h.Write([]byte("c2vm dm-verity salt\x00"))
	h.Write(seed)
	return h.Sum(nil)
}

// Write hashes size bytes of data and writes the hash file (superblock and
// tree) to w, returning the root hash. size must be a multiple of
// BlockSize: pad the filesystem image first (squashfs and ext4 tolerate
// trailing zeros). The tree is built in memory first (its top level is
// written first): 1/128 of the data's size.
func Write(w io.Writer, data io.ReaderAt, size int64, salt []byte) ([]byte, error) {
	if size <= 0 || size%BlockSize != 0 {
		return nil, fmt.Errorf("%w: %d", ErrSize, size)
	}
	if len(salt) > maxSalt {
		return nil, ErrSalt
	}
	levels, root, err := tree(data, size, salt)
	if err != nil {
		return nil, err
	}
	sb := superblock(uint64(size/BlockSize), salt, root)
	if _, err := w.Write(sb); err != nil {
		return nil, fmt.Errorf("writing verity superblock: %w", err)
	}
	// The top level comes first (cryptsetup's hash_position counts from
	// the highest level down; the kernel reads the tree the same way).
	for i := len(levels) - 1; i >= 0; i-- {
		if _, err := w.Write(levels[i]); err != nil {
			return nil, fmt.Errorf("writing verity hash tree: %w", err)
		}
	}
	return root, nil
}

// HashSize is the size of the hash file Write writes for size bytes of data.
func HashSize(size int64) int64 {
	n := int64(HashOffset)
	for blocks := (size + BlockSize - 1) / BlockSize; blocks > 1; {
		blocks = (blocks + digestsPerBlock - 1) / digestsPerBlock
		n += blocks * BlockSize
	}
	return n
}

// tree hashes data level by level, bottom up, until one block remains; its
// hash is the root. One data block makes no tree: the kernel then compares
// the block's own hash with the root (dm-verity counts levels as the
// number of 7-bit shifts that leave data_blocks-1 non-zero: zero for one).
func tree(data io.ReaderAt, size int64, salt []byte) ([][]byte, []byte, error) {
	level, err := hashBlocks(io.NewSectionReader(data, 0, size), salt)
	if err != nil {
		return nil, nil, fmt.Errorf("hashing verity data: %w", err)
	}
	if size == BlockSize {
		return nil, level[:sha256.Size], nil
	}
	levels := [][]byte{level}
	for len(level) > BlockSize {
		if level, err = hashBlocks(bytes.NewReader(level), salt); err != nil {
			return nil, nil, err
		}
		levels = append(levels, level)
	}
	return levels, hash(salt, level), nil
}

// hashBlocks reads r to its end in BlockSize blocks and returns the hash
// of each, packed, the last hash block zero-filled.
func hashBlocks(r io.Reader, salt []byte) ([]byte, error) {
	var out []byte
	buf := make([]byte, 256*BlockSize)
	for {
		n, err := io.ReadFull(r, buf)
		for off := 0; off+BlockSize <= n; off += BlockSize {
			out = append(out, hash(salt, buf[off:off+BlockSize])...)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if rem := len(out) % BlockSize; rem != 0 {
		out = append(out, make([]byte, BlockSize-rem)...)
	}
	return out, nil
}

// hash is format 1's block hash: sha256(salt || block).
func hash(salt, block []byte) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write(block)
	return h.Sum(nil)
}

// superblock is struct verity_sb (cryptsetup lib/verity/verity.c), little
// endian, padded with zeros to one hash block.
func superblock(dataBlocks uint64, salt, root []byte) []byte {
	b := make([]byte, HashOffset)
	copy(b[0:8], Magic)
	le := binary.LittleEndian
	le.PutUint32(b[8:], 1)        // superblock version
	le.PutUint32(b[12:], Version) // hash_type
	u := superUUID(salt, root)
	copy(b[16:32], u[:])
	copy(b[32:64], Algorithm)
	le.PutUint32(b[64:], BlockSize) // data_block_size
	le.PutUint32(b[68:], BlockSize) // hash_block_size
	le.PutUint64(b[72:], dataBlocks)
	le.PutUint16(b[80:], uint16(len(salt)))
	copy(b[88:88+maxSalt], salt) // after 6 bytes of padding
	return b
}

// superUUID derives the superblock's UUID (random in veritysetup) from
// the salt and root hash.
func superUUID(salt, root []byte) uuid.UUID {
	return uuid.Derive("c2vm dm-verity uuid", string(salt)+string(root))
}

// Superblock is what a verity superblock says about its hash tree.
type Superblock struct {
	DataBlocks uint64
	Salt       []byte
}

// ParseSuperblock reads a verity superblock written by Write (or by
// veritysetup format with c2vm's parameters), refusing any other format.
func ParseSuperblock(b []byte) (*Superblock, error) {
	if len(b) < superblockSize || !bytes.Equal(b[:8], Magic) {
		return nil, errors.New("verity superblock: bad magic")
	}
	le := binary.LittleEndian
	alg := string(bytes.TrimRight(b[32:64], "\x00"))
	switch {
	case le.Uint32(b[8:]) != 1:
		return nil, fmt.Errorf("verity superblock: version %d", le.Uint32(b[8:]))
	case le.Uint32(b[12:]) != Version:
		return nil, fmt.Errorf("verity superblock: hash type %d", le.Uint32(b[12:]))
	case alg != Algorithm:
		return nil, fmt.Errorf("verity superblock: algorithm %q", alg)
	case le.Uint32(b[64:]) != BlockSize || le.Uint32(b[68:]) != BlockSize:
		return nil, fmt.Errorf("verity superblock: block sizes %d/%d", le.Uint32(b[64:]), le.Uint32(b[68:]))
	}
	n := int(le.Uint16(b[80:]))
	if n > maxSalt {
		return nil, fmt.Errorf("verity superblock: salt size %d", n)
	}
	return &Superblock{DataBlocks: le.Uint64(b[72:]), Salt: bytes.Clone(b[88 : 88+n])}, nil
}

// Hex formats a root hash or salt as dm-verity's table and veritysetup
// print them.
func Hex(b []byte) string { return hex.EncodeToString(b) }
