package disk

import (
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"strings"
	"unicode/utf16"

	"github.com/c2vm/c2vm/internal/uuid"
)

// GUID is a GUID in its canonical (big-endian, as printed) byte order.
type GUID [16]byte

// MustGUID parses "C12A7328-F81F-11D2-BA4B-00A0C93EC93B".
func MustGUID(s string) GUID {
	b, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(b) != 16 {
		panic("bad GUID " + s)
	}
	return GUID(b)
}

// DeriveGUID is a GUID derived from seed and name: one input, one GUID,
// yet distinct per partition.
func DeriveGUID(seed, name string) GUID {
	return GUID(uuid.Derive("c2vm disk guid", seed, name))
}

func (g GUID) String() string {
	h := hex.EncodeToString(g[:])
	return strings.ToUpper(h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:])
}

// disk is the GPT's mixed-endian encoding: the first three fields
// little-endian (UEFI specification 2.10, appendix A, "EFI_GUID").
func (g GUID) disk() [16]byte {
	var d [16]byte
	d[0], d[1], d[2], d[3] = g[3], g[2], g[1], g[0]
	d[4], d[5] = g[5], g[4]
	d[6], d[7] = g[7], g[6]
	copy(d[8:], g[8:])
	return d
}

// Partition type GUIDs: the ESP from the UEFI specification (section
// 5.3.3), the others from the UAPI Discoverable Partitions Specification
// (https://uapi-group.org/specifications/specs/discoverable_partitions_specification/);
// each architecture's root and root-verity types are in arch's table.
var (
	TypeESP       = MustGUID("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
	TypeLinuxData = MustGUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4")
)

// Partition attribute bits (UEFI 5.3.3 and the Discoverable Partitions
// Specification: bit 60 read-only).
const (
	AttrRequired = 1 << 0
	AttrReadOnly = 1 << 60
)

// GPT geometry: 512-byte logical blocks, the usual 128 entries of 128
// bytes (16 KiB, 32 blocks), partitions aligned to 1 MiB as fdisk does.
const (
	sectorSize   = 512
	gptEntries   = 128
	gptEntrySize = 128
	gptEntryLBAs = gptEntries * gptEntrySize / sectorSize
	gptHdrSize   = 92
	alignLBAs    = 1 << 20 / sectorSize
)

// gptPart is one partition table entry; LBAs are inclusive.
type gptPart struct {
	typ, id     GUID
	first, last uint64
	attrs       uint64
	name        string
}

// gptTables returns the protective MBR plus primary header and entries
// (to write at LBA 0), and the backup entries plus backup header (to
// write at the disk's last 33 blocks), for a disk of size blocks.
func gptTables(parts []gptPart, diskID GUID, size uint64) (primary, backup []byte) {
	entries := make([]byte, gptEntries*gptEntrySize)
	for i, p := range parts {
		e := entries[i*gptEntrySize:]
		t, id := p.typ.disk(), p.id.disk()
		copy(e[0:], t[:])
		copy(e[16:], id[:])
		binary.LittleEndian.PutUint64(e[32:], p.first)
		binary.LittleEndian.PutUint64(e[40:], p.last)
		binary.LittleEndian.PutUint64(e[48:], p.attrs)
		for j, r := range utf16.Encode([]rune(p.name)) {
			if j < 36 {
				binary.LittleEndian.PutUint16(e[56+2*j:], r)
			}
		}
	}
	entriesCRC := crc32.ChecksumIEEE(entries)
	last := size - 1
	firstUsable, lastUsable := uint64(2+gptEntryLBAs), last-1-gptEntryLBAs
	header := func(my, alt, entriesLBA uint64) []byte {
		h := make([]byte, sectorSize)
		copy(h, "EFI PART")
		binary.LittleEndian.PutUint32(h[8:], 0x00010000) // revision 1.0
		binary.LittleEndian.PutUint32(h[12:], gptHdrSize)
		binary.LittleEndian.PutUint64(h[24:], my)
		binary.LittleEndian.PutUint64(h[32:], alt)
		binary.LittleEndian.PutUint64(h[40:], firstUsable)
		binary.LittleEndian.PutUint64(h[48:], lastUsable)
		id := diskID.disk()
		copy(h[56:], id[:])
		binary.LittleEndian.PutUint64(h[72:], entriesLBA)
		binary.LittleEndian.PutUint32(h[80:], gptEntries)
		binary.LittleEndian.PutUint32(h[84:], gptEntrySize)
		binary.LittleEndian.PutUint32(h[88:], entriesCRC)
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:gptHdrSize]))
		return h
	}
	primary = append(protectiveMBR(size), header(1, last, 2)...)
	primary = append(primary, entries...)
	backup = append(append([]byte(nil), entries...), header(last, 1, last-gptEntryLBAs)...)
	return primary, backup
}

// protectiveMBR is LBA 0 of a GPT disk: one partition of type 0xEE over
// the whole disk (or 2^32-1 blocks), as UEFI 2.10 section 5.2.3 says.
func protectiveMBR(size uint64) []byte {
	m := make([]byte, sectorSize)
	e := m[446:]
	copy(e[1:4], []byte{0x00, 0x02, 0x00}) // CHS of LBA 1
	e[4] = 0xee
	copy(e[5:8], []byte{0xff, 0xff, 0xff})
	binary.LittleEndian.PutUint32(e[8:], 1)
	binary.LittleEndian.PutUint32(e[12:], uint32(min(size-1, 0xffffffff)))
	m[510], m[511] = 0x55, 0xaa
	return m
}
