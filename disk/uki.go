package disk

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/c2vm/c2vm/disk/pesign"
)

// Section is one PE section a UKI adds to its stub.
type Section struct {
	Name string // at most 8 bytes: ".linux", ".initrd", ...
	Data []byte
}

// UKISections are the sections of a Unified Kernel Image, added in the
// order systemd's ukify adds them (make_uki: .osrel, .cmdline, .initrd,
// .uname, and .linux last, "to leave breathing room for decompression").
// See https://uapi-group.org/specifications/specs/unified_kernel_image/.
type UKISections struct {
	OSRel   []byte // os-release(5) text, for boot menus
	Cmdline string // the kernel command line
	Uname   string // the kernel's version (uname -r)
	Initrd  []byte
	Linux   []byte // an EFI-stub kernel: bzImage (amd64), Image (arm64)
}

func (u UKISections) list() []Section {
	var out []Section
	add := func(name string, b []byte) {
		if len(b) > 0 {
			out = append(out, Section{name, b})
		}
	}
	add(".osrel", u.OSRel)
	add(".cmdline", []byte(u.Cmdline))
	add(".initrd", u.Initrd)
	add(".uname", []byte(u.Uname))
	add(".linux", u.Linux)
	return out
}

// ErrNotPE is returned for a stub that is not a PE32+ image.
var ErrNotPE = errors.New("not a PE32+ EFI image")

// peFile is what UKI needs to know of a PE32+ file; offsets are into the file.
type peFile struct {
	machine      uint16
	nsections    int
	optHdr       int // optional header
	sectionTable int
	sizeOfHdrs   int
	secAlign     uint32
	fileAlign    uint32
	endVA        uint32 // end of the last section in memory
	endRaw       int    // end of the last section's data in the file
}

// Offsets in the PE/COFF headers (PE/COFF specification, sections 3 and
// 4: "COFF File Header", "Optional Header (Image Only)", "Section Table").
const (
	peSigOffset    = 0x3c // MS-DOS stub: offset of "PE\0\0"
	coffSize       = 20
	optSizeOfInit  = 8
	optSecAlign    = 32
	optFileAlign   = 36
	optSizeOfImage = 56
	optSizeOfHdrs  = 60
	optCheckSum    = 64
	optSecurityDir = 144 // PE32+ data directory 4, the certificate table
	sectionHdrSize = 40
	scnInitRead    = 0x40000040 // IMAGE_SCN_CNT_INITIALIZED_DATA | IMAGE_SCN_MEM_READ
	scnCodeRead    = 0x40000020 // IMAGE_SCN_CNT_CODE | IMAGE_SCN_MEM_READ
	maxSectionName = 8
)

// parsePE reads a stub's headers with debug/pe and finds where in the
// file they are, for BuildUKI to extend them in place.
func parsePE(b []byte) (*peFile, error) {
	f, err := pe.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotPE, err)
	}
	o, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok || o.NumberOfRvaAndSizes <= pe.IMAGE_DIRECTORY_ENTRY_SECURITY {
		return nil, fmt.Errorf("%w: no PE32+ optional header with a certificate table entry", ErrNotPE)
	}
	if o.DataDirectory[pe.IMAGE_DIRECTORY_ENTRY_SECURITY].VirtualAddress != 0 {
		// Appending sections would break the signature (ukify refuses too).
		return nil, fmt.Errorf("%w: the stub is signed (it has a certificate table)", ErrNotPE)
	}
	if o.SectionAlignment == 0 || o.FileAlignment == 0 {
		return nil, fmt.Errorf("%w: zero section or file alignment", ErrNotPE)
	}
	// debug/pe found "PE\0\0" where the MS-DOS header points.
	optHdr := int(binary.LittleEndian.Uint32(b[peSigOffset:])) + 4 + coffSize
	p := &peFile{machine: f.Machine, nsections: len(f.Sections), optHdr: optHdr,
		sectionTable: optHdr + int(f.SizeOfOptionalHeader), sizeOfHdrs: int(o.SizeOfHeaders),
		secAlign: o.SectionAlignment, fileAlign: o.FileAlignment}
	for _, s := range f.Sections {
		p.endVA = max(p.endVA, s.VirtualAddress+s.VirtualSize)
		p.endRaw = max(p.endRaw, int(s.Offset)+int(s.Size))
	}
	if p.endRaw > len(b) {
		return nil, fmt.Errorf("%w: a section runs past the file's end", ErrNotPE)
	}
	return p, nil
}

// BuildUKI appends the sections to a copy of the EFI stub, the way
// systemd's ukify does it (src/ukify/ukify.py, pe_add_sections): each
// new section starts in memory at the next SectionAlignment boundary
// after the previous one — systemd's stub finds them by name in its own
// loaded image, so they must lie inside SizeOfImage, after the stub's own
// sections — and in the file at the next FileAlignment boundary; the
// section headers go in the slack between the stub's section table and
// SizeOfHeaders (rounded up to FileAlignment, as ukify does: the first
// section's data starts there), which must have room for them. .linux is
// marked code, as ukify marks it, for kernels that the stub runs in place
// through the EFI handover protocol. The checksum is recomputed (ukify
// zeroes it; firmware does not check it). goarch is the VM's: the stub's
// machine must match it.
func BuildUKI(stub []byte, goarch string, u UKISections) ([]byte, error) {
	p, err := parsePE(stub)
	if err != nil {
		return nil, err
	}
	efi, err := efiOf(goarch)
	if err != nil {
		return nil, err
	}
	if p.machine != efi.PEMachine {
		return nil, fmt.Errorf("EFI stub is for PE machine %#x, not %s", p.machine, goarch)
	}
	secs := u.list()
	hdrs := int(alignUp(uint32(p.sizeOfHdrs), p.fileAlign))
	tableEnd := p.sectionTable + (p.nsections+len(secs))*sectionHdrSize
	if tableEnd > hdrs {
		return nil, fmt.Errorf("EFI stub's headers (%d bytes) have no room for %d more section headers", hdrs, len(secs))
	}
	// The new sections follow the stub's last one in the file: what the
	// stub carries after it (Debian's: a COFF symbol table, which no
	// loader reads) would be a gap, hashed or not as each Authenticode
	// tool decides (sbsign: "gap in section table"), so it is dropped.
	out := append([]byte(nil), stub[:p.endRaw]...)
	coff := p.optHdr - coffSize
	binary.LittleEndian.PutUint32(out[coff+8:], 0)  // PointerToSymbolTable
	binary.LittleEndian.PutUint32(out[coff+12:], 0) // NumberOfSymbols
	va := alignUp(p.endVA, p.secAlign)
	var initSize uint32
	for i, s := range secs {
		if out, va, err = p.appendSection(out, i, s, va); err != nil {
			return nil, err
		}
		initSize += uint32(len(s.Data))
	}
	binary.LittleEndian.PutUint16(out[coff+2:], uint16(p.nsections+len(secs)))
	o := out[p.optHdr:]
	binary.LittleEndian.PutUint32(o[optSizeOfHdrs:], uint32(hdrs))
	binary.LittleEndian.PutUint32(o[optSizeOfInit:], binary.LittleEndian.Uint32(o[optSizeOfInit:])+initSize)
	binary.LittleEndian.PutUint32(o[optSizeOfImage:], va)
	binary.LittleEndian.PutUint32(o[optCheckSum:], pesign.Checksum(out, p.optHdr+optCheckSum))
	return out, nil
}

// appendSection appends s's data, aligned to the file alignment, to out
// and fills in its header, the stub's i-th new one, at virtual address va.
// It returns out and the next section's virtual address.
func (p *peFile) appendSection(out []byte, i int, s Section, va uint32) ([]byte, uint32, error) {
	if len(s.Name) > maxSectionName {
		return nil, 0, fmt.Errorf("PE section name %q is longer than 8 bytes", s.Name)
	}
	if uint64(len(s.Data)) > 1<<31 {
		return nil, 0, fmt.Errorf("PE section %s: %d bytes is too big", s.Name, len(s.Data))
	}
	raw := alignUp(uint32(len(s.Data)), p.fileAlign)
	off := alignUp(uint32(len(out)), p.fileAlign)
	out = append(out, make([]byte, int(off)-len(out))...)
	out = append(out, s.Data...)
	out = append(out, make([]byte, int(off+raw)-len(out))...)
	h := out[p.sectionTable+(p.nsections+i)*sectionHdrSize:][:sectionHdrSize]
	copy(h, s.Name)
	binary.LittleEndian.PutUint32(h[8:], uint32(len(s.Data))) // VirtualSize
	binary.LittleEndian.PutUint32(h[12:], va)                 // VirtualAddress
	binary.LittleEndian.PutUint32(h[16:], raw)                // SizeOfRawData
	binary.LittleEndian.PutUint32(h[20:], off)                // PointerToRawData
	flags := uint32(scnInitRead)
	if s.Name == ".linux" {
		flags = scnCodeRead
	}
	binary.LittleEndian.PutUint32(h[36:], flags) // Characteristics
	return out, alignUp(va+uint32(len(s.Data)), p.secAlign), nil
}

func alignUp(n, a uint32) uint32 { return (n + a - 1) / a * a }
