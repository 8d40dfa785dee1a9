package disk

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/c2vm/c2vm/internal/sparse"
)

// Format is a disk image's file format. Write makes a raw image; Convert
// turns it into the others with qemu-img.
type Format string

// The formats c2vm writes, as qemu-img names them (-O), each for the
// hypervisors that want it: raw for any, qcow2 for QEMU and libvirt, vmdk
// for VMware and VirtualBox, vhdx for Hyper-V.
const (
	Raw   Format = "raw"
	QCOW2 Format = "qcow2"
	VMDK  Format = "vmdk"
	VHDX  Format = "vhdx"
)

// Formats lists every Format, raw first.
func Formats() []Format { return []Format{Raw, QCOW2, VMDK, VHDX} }

// ErrFormat is returned for a format name c2vm does not write.
var ErrFormat = errors.New("unknown disk format")

// ParseFormat reads a --disk value.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats() {
		if string(f) == s {
			return f, nil
		}
	}
	names := make([]string, len(Formats()))
	for i, f := range Formats() {
		names[i] = string(f)
	}
	return "", fmt.Errorf("%w %q: want %s", ErrFormat, s, strings.Join(names, ", "))
}

// File is the disk image's file name in an output directory.
func (f Format) File() string {
	if f == Raw {
		return "disk.img"
	}
	return "disk." + string(f)
}

// Convert writes the raw image as f into out with qemu-img, then
// removes raw. QEMU's own converter rather than Go writers: it is present
// wherever these images are booted, and `qemu-img check` verifies them
// anyway. qcow2 comes out deterministic; the fields qemu-img fills at
// random in vmdk (the descriptor's CID) and vhdx (its write GUIDs, disk
// identifier and the creation log) are then set from seed (fixVMDK,
// fixVHDX), so one input gives one file.
func Convert(raw, out string, f Format, seed string) error {
	if f == Raw {
		return fmt.Errorf("%w: raw needs no conversion", ErrFormat)
	}
	if _, err := exec.LookPath("qemu-img"); err != nil {
		return fmt.Errorf("--disk %s: qemu-img not found: install Debian's qemu-utils package, or use --disk raw", f)
	}
	cmd := exec.Command("qemu-img", "convert", "-f", "raw", "-O", string(f), raw, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("qemu-img convert %s to %s: %w: %s", filepath.Base(raw), f, err, strings.TrimSpace(string(b)))
	}
	fix := map[Format]func(*os.File, string) error{VMDK: fixVMDK, VHDX: fixVHDX}[f]
	if fix != nil {
		if err := fixFile(out, seed, fix); err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(out), err)
		}
	}
	return os.Remove(raw)
}

func fixFile(p, seed string, fix func(*os.File, string) error) error {
	fl, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer fl.Close()
	if err := fix(fl, seed); err != nil {
		return err
	}
	return fl.Close()
}

// errLayout is a qemu-img output not laid out as fixVMDK and fixVHDX
// expect (another qemu-img version's, say): refused, not left random.
var errLayout = errors.New("unexpected qemu-img output layout")

// fixVMDK sets the CID of a monolithicSparse VMDK's embedded descriptor,
// which qemu-img draws at random (block/vmdk.c, vmdk_co_do_create:
// g_random_int()), to 8 hex digits derived from seed. The CID is a
// content ID a parent/child chain checks; nothing checksums the
// descriptor. The header (VMware's Virtual Disk Format 1.1, "Hosted
// Sparse Extent Header"): magic "KDMV", descriptorOffset and
// descriptorSize in sectors at bytes 28 and 36.
func fixVMDK(f *os.File, seed string) error {
	var h [44]byte
	if _, err := f.ReadAt(h[:], 0); err != nil {
		return err
	}
	off, size := binary.LittleEndian.Uint64(h[28:]), binary.LittleEndian.Uint64(h[36:])
	if string(h[:4]) != "KDMV" || off == 0 || size == 0 || size > 2048 {
		return fmt.Errorf("vmdk header: %w", errLayout)
	}
	desc := make([]byte, size*512)
	if _, err := f.ReadAt(desc, int64(off)*512); err != nil {
		return fmt.Errorf("vmdk descriptor: %w", err)
	}
	i := bytes.Index(desc, []byte("\nCID=")) + 5
	n := bytes.IndexByte(desc[max(i, 0):], '\n')
	if i < 5 || n < 1 || n > 8 {
		return fmt.Errorf("vmdk descriptor has no CID line: %w", errLayout)
	}
	sum := sha256.Sum256([]byte("c2vm vmdk cid\x00" + seed))
	cid := fmt.Sprintf("%08x", binary.BigEndian.Uint32(sum[:]))
	if cid == "ffffffff" { // "no parent" in parentCID's vocabulary
		cid = "fffffffe"
	}
	// qemu-img prints the CID without leading zeros: the text after it
	// moves, within the descriptor's NUL-padded sectors.
	fixed := append(append(append([]byte(nil), desc[:i]...), cid...), desc[i+n:]...)
	if fixed = fixed[:len(desc)]; fixed[len(fixed)-1] != 0 {
		return fmt.Errorf("vmdk descriptor is full: %w", errLayout)
	}
	_, err := f.WriteAt(fixed, int64(off)*512)
	return err
}

// VHDX layout (Microsoft's [MS-VHDX] 2.2): two 4 KiB headers at 64 and
// 128 KiB, region tables at 192 and 256 KiB.
const (
	vhdxHeader1 = 64 << 10
	vhdxHeader2 = 128 << 10
	vhdxRegions = 192 << 10
	vhdxHdrSize = 4 << 10
)

// GUIDs of [MS-VHDX] 2.3 and 2.6.2.6, as printed.
var (
	vhdxMetadataRegion = MustGUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
	vhdxPage83Data     = MustGUID("BECA12AB-B2E6-4523-93EF-C309E000C746")
)

// fixVHDX replaces what qemu-img's vhdx writer draws at random
// (block/vhdx.c, qemu_uuid_generate): each header's FileWriteGuid and
// DataWriteGuid and SequenceNumber, re-checksummed (CRC-32C over the 4 KiB header with its
// checksum zeroed, [MS-VHDX] 2.2.2), and the metadata's Page83Data (the
// disk's SCSI identifier). The log region holds the entries qemu-img
// wrote while creating the file, stamped with a random LogGuid; both
// headers' LogGuid is zero once it closed the file cleanly, which says
// the log has nothing to replay ([MS-VHDX] 2.2.2.1), so the region is
// zeroed rather than left as random history.
func fixVHDX(f *os.File, seed string) error {
	seqs, err := vhdxSequences(f)
	if err != nil {
		return err
	}
	var logOff, logLen uint64
	for i, at := range []int64{vhdxHeader1, vhdxHeader2} {
		off, n, err := fixVHDXHeader(f, at, seed, seqs[i])
		if err != nil {
			return fmt.Errorf("vhdx header %d: %w", i+1, err)
		}
		logOff, logLen = off, n
	}
	if logOff < vhdxRegions+2*(64<<10) || logLen > 1<<30 {
		return fmt.Errorf("vhdx log at %d, %d bytes: %w", logOff, logLen, errLayout)
	}
	if _, err := f.WriteAt(make([]byte, logLen), int64(logOff)); err != nil {
		return err
	}
	return fixVHDXPage83(f, seed)
}

// vhdxSequences are the two headers' SequenceNumbers, which qemu-img
// starts at random, made to start at 1: the current header is still the
// one with the greater number ([MS-VHDX] 2.2.2.1), and they are as far
// apart.
func vhdxSequences(f *os.File) ([2]uint64, error) {
	var s [2]uint64
	for i, at := range []int64{vhdxHeader1, vhdxHeader2} {
		var b [8]byte
		if _, err := f.ReadAt(b[:], at+8); err != nil {
			return s, err
		}
		s[i] = binary.LittleEndian.Uint64(b[:])
	}
	base := min(s[0], s[1]) - 1
	return [2]uint64{s[0] - base, s[1] - base}, nil
}

// fixVHDXHeader rewrites one header's write GUIDs, sequence number and checksum and
// returns where its log lies.
func fixVHDXHeader(f *os.File, at int64, seed string, seq uint64) (logOff, logLen uint64, err error) {
	h := make([]byte, vhdxHdrSize)
	if _, err := f.ReadAt(h, at); err != nil {
		return 0, 0, err
	}
	if string(h[:4]) != "head" || crc32.Checksum(zeroed(h, 4, 8), castagnoli) != binary.LittleEndian.Uint32(h[4:]) {
		return 0, 0, errLayout
	}
	if !sparse.IsZero(h[48:64]) {
		return 0, 0, fmt.Errorf("LogGuid set, the log must be replayed: %w", errLayout)
	}
	fw, dw := DeriveGUID(seed, "vhdx file write").disk(), DeriveGUID(seed, "vhdx data write").disk()
	copy(h[16:32], fw[:])
	copy(h[32:48], dw[:])
	binary.LittleEndian.PutUint64(h[8:], seq)
	binary.LittleEndian.PutUint32(h[4:], crc32.Checksum(zeroed(h, 4, 8), castagnoli))
	if _, err := f.WriteAt(h, at); err != nil {
		return 0, 0, err
	}
	return binary.LittleEndian.Uint64(h[72:]), uint64(binary.LittleEndian.Uint32(h[68:])), nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// zeroed is a copy of b with b[i:j] zeroed.
func zeroed(b []byte, i, j int) []byte {
	c := append([]byte(nil), b...)
	clear(c[i:j])
	return c
}

// fixVHDXPage83 finds the metadata region in the region table and its
// Page83Data item, and sets it from seed. Metadata items carry no
// checksum ([MS-VHDX] 2.6).
func fixVHDXPage83(f *os.File, seed string) error {
	rt := make([]byte, 64<<10)
	if _, err := f.ReadAt(rt, vhdxRegions); err != nil {
		return err
	}
	n := binary.LittleEndian.Uint32(rt[8:])
	if string(rt[:4]) != "regi" || n > 2047 {
		return fmt.Errorf("vhdx region table: %w", errLayout)
	}
	want := vhdxMetadataRegion.disk()
	for i := range int(n) {
		e := rt[16+32*i:]
		if [16]byte(e[:16]) == want {
			return fixMetadataItem(f, int64(binary.LittleEndian.Uint64(e[16:])), vhdxPage83Data.disk(), DeriveGUID(seed, "vhdx page83").disk())
		}
	}
	return fmt.Errorf("vhdx: no metadata region: %w", errLayout)
}

// fixMetadataItem overwrites the 16-byte metadata item id in the
// metadata region at base with v.
func fixMetadataItem(f *os.File, base int64, id, v [16]byte) error {
	t := make([]byte, 64<<10)
	if _, err := io.ReadFull(io.NewSectionReader(f, base, int64(len(t))), t); err != nil {
		return fmt.Errorf("vhdx metadata table: %w", err)
	}
	n := binary.LittleEndian.Uint16(t[10:])
	if string(t[:8]) != "metadata" || n > 2047 {
		return fmt.Errorf("vhdx metadata table: %w", errLayout)
	}
	for i := range int(n) {
		e := t[32+32*i:]
		if [16]byte(e[:16]) == id {
			if binary.LittleEndian.Uint32(e[20:]) != 16 {
				return fmt.Errorf("vhdx Page83Data is not 16 bytes: %w", errLayout)
			}
			_, err := f.WriteAt(v[:], base+int64(binary.LittleEndian.Uint32(e[16:])))
			return err
		}
	}
	return fmt.Errorf("vhdx: no Page83Data item: %w", errLayout)
}
