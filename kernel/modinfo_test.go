package kernel

import (
	"bytes"
	"compress/zlib"
	"debug/elf"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// elfModule is the smallest ELF a module's .modinfo is read from: an
// x86_64 relocatable object with sections null, .modinfo and .shstrtab
// (the System V gABI's ELF64 header and section header layouts, as
// debug/elf declares them). With compressed, .modinfo is stored as
// SHF_COMPRESSED zlib behind an Elf64_Chdr that claims size bytes.
func elfModule(modinfo []byte, compressed bool, size uint64) []byte {
	body := modinfo
	var flags uint64 = uint64(elf.SHF_ALLOC)
	if compressed {
		var z bytes.Buffer
		binary.Write(&z, binary.LittleEndian, elf.Chdr64{Type: uint32(elf.COMPRESS_ZLIB), Size: size, Addralign: 1})
		zw := zlib.NewWriter(&z)
		zw.Write(modinfo)
		zw.Close()
		body = z.Bytes()
		flags = uint64(elf.SHF_COMPRESSED) // debug/elf: never with SHF_ALLOC
	}
	names := []byte("\x00.modinfo\x00.shstrtab\x00")
	const ehsize = 64
	strOff := ehsize + len(body)
	shOff := (strOff + len(names) + 7) &^ 7
	var b bytes.Buffer
	hdr := elf.Header64{Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_X86_64), Version: 1,
		Shoff: uint64(shOff), Ehsize: ehsize, Shentsize: 64, Shnum: 3, Shstrndx: 2}
	copy(hdr.Ident[:], "\x7fELF\x02\x01\x01")
	binary.Write(&b, binary.LittleEndian, hdr)
	b.Write(body)
	b.Write(names)
	b.Write(make([]byte, shOff-b.Len()))
	binary.Write(&b, binary.LittleEndian, []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Flags: flags, Off: ehsize, Size: uint64(len(body)), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: uint64(strOff), Size: uint64(len(names)), Addralign: 1},
	})
	return b.Bytes()
}

// TestModinfo: .modinfo is read from plain and compressed sections, and a
// compressed one that inflates past maxModinfoSize is refused.
func TestModinfo(t *testing.T) {
	info := []byte("license=GPL\x00depends=virtio,virtio-ring,\x00softdep=pre: crc32c-intel post: x\x00vermagic=6.1.0 SMP\x00")
	for _, tc := range []struct {
		name string
		elf  []byte
		err  error
	}{
		{"plain", elfModule(info, false, 0), nil},
		{"zlib", elfModule(info, true, uint64(len(info))), nil},
		{"zlib bomb", elfModule(make([]byte, 64<<20), true, 64<<20), ErrTooLarge},
		// debug/elf reads a compressed section past the size its header claims.
		{"zlib bomb claiming little", elfModule(make([]byte, 64<<20), true, 16), ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var data []byte
			var err error
			grew := allocated(func() { data, err = readModinfo(tc.elf) })
			if !errors.Is(err, tc.err) {
				t.Fatalf("readModinfo: %v, want %v", err, tc.err)
			}
			if grew > 16<<20 {
				t.Errorf("allocated %d MiB", grew>>20)
			}
			if err != nil {
				if !strings.Contains(err.Error(), ".modinfo: too large (limit 1 MiB)") {
					t.Errorf("error %q", err)
				}
				return
			}
			if !bytes.Equal(data, info) {
				t.Errorf("read %q", data)
			}
			deps, soft := parseModinfo(data)
			if !reflect.DeepEqual(deps, []string{"virtio", "virtio_ring"}) || !reflect.DeepEqual(soft, []string{"crc32c_intel"}) {
				t.Errorf("parsed depends %q softdep pre %q", deps, soft)
			}
		})
	}
}
