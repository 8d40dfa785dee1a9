// Package disk writes a converted VM as one bootable GPT disk image, the
// pipeline's stage after the kernel, initramfs and root filesystem are
// written: an EFI system partition holding a Unified Kernel Image (the
// kernel, initramfs and command line in one PE file on systemd's EFI
// stub) at the removable-media path UEFI firmware boots with no boot
// entry, the root filesystem partition, and one partition per data disk.
//
//	uki, err := disk.BuildUKI(stub, "amd64", disk.UKISections{Cmdline: "console=ttyS0 panic=-1", Linux: k, Initrd: i})
//	layout, err := disk.Write(ctx, "out/disk.img", disk.Options{Arch: "amd64", UKI: uki,
//		Root: "out/rootfs.img", Seed: manifestDigest, Epoch: epoch})
//
// The image is reproducible: GUIDs and the FAT volume ID derive from
// Seed, every timestamp is Epoch, and unwritten space is left as holes.
// GPT and FAT32 are written here rather than with go-diskfs (read at
// c5b3b50, July 2026): its FAT timestamps come from util/timestamp, which
// reads the SOURCE_DATE_EPOCH environment variable and falls back to
// time.Now() — not the Epoch c2vm is given, whose default is a fixed date
// when the variable is unset; its FAT32 volume ID is time-based unless
// Create's reproducible flag zeroes it; its GPT draws a random disk GUID
// unless one is set. All avoidable, but an ESP needs only a few
// directories and one contiguous file, which is less code than the
// dependency and its own dependencies (uuid, xz, logrus).
package disk

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"github.com/c2vm/c2vm/arch"
	"github.com/c2vm/c2vm/internal/sparse"
)

// Options describe the disk; the zero value of an optional field leaves
// its partition out.
type Options struct {
	Arch string // the VM's GOARCH: the UKI's boot path and the root's type
	UKI  []byte // the Unified Kernel Image (BuildUKI)
	Root string // the root filesystem image's file
	// Verity is the root's dm-verity hash tree file, in a partition of the
	// Discoverable Partitions Specification's root-verity type after the
	// root; "" = none. (The hook for --verity: the hash tree and its root
	// hash on the UKI's command line are written elsewhere.)
	Verity string
	Data   []Data    // data partitions, after the root, in this order
	Seed   string    // input identity the GUIDs and volume ID derive from
	Epoch  time.Time // the ESP's timestamps
}

// Data is one data partition: a file system image (an ext4 data disk)
// copied into its own partition.
type Data struct {
	Name string // the GPT partition name (the volume's label)
	File string
}

// Part is one partition as written.
type Part struct {
	Name   string `json:"name"`
	Type   string `json:"type"` // type GUID
	GUID   string `json:"guid"`
	Offset int64  `json:"offset"` // bytes from the disk's start
	Size   int64  `json:"size"`
}

// Layout is the disk as written.
type Layout struct {
	Size       int64  `json:"size"`
	GUID       string `json:"guid"`
	BootFile   string `json:"bootFile"` // the UKI's path in the ESP
	Partitions []Part `json:"partitions"`
}

// minESP is the ESP's smallest size: FAT32 needs 65525 clusters.
const minESP = 64 << 20

// Write writes the disk image to p, which must not exist; a cancelled ctx
// stops the copying of its partitions.
func Write(ctx context.Context, p string, o Options) (*Layout, error) {
	efi, err := efiOf(o.Arch)
	if err != nil {
		return nil, fmt.Errorf("disk image: %w", err)
	}
	boot := efi.BootFile()
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	l, err := write(ctx, f, o, boot)
	if err != nil {
		return nil, fmt.Errorf("writing disk image %s: %w", p, err)
	}
	return l, f.Close()
}

// planned is a partition with where its content comes from.
type planned struct {
	gptPart
	file string // copied in; "" for the ESP
}

func write(ctx context.Context, f *os.File, o Options, boot string) (*Layout, error) {
	parts, err := plan(o)
	if err != nil {
		return nil, err
	}
	size := parts[len(parts)-1].last + 1 + alignLBAs // the backup GPT in the last MiB
	diskID := DeriveGUID(o.Seed, "disk")
	gp := make([]gptPart, len(parts))
	l := &Layout{Size: int64(size * sectorSize), GUID: diskID.String(), BootFile: "/" + boot}
	for i, p := range parts {
		gp[i] = p.gptPart
		l.Partitions = append(l.Partitions, Part{Name: p.name, Type: p.typ.String(), GUID: p.id.String(),
			Offset: int64(p.first * sectorSize), Size: int64((p.last - p.first + 1) * sectorSize)})
	}
	if err := f.Truncate(l.Size); err != nil {
		return nil, err
	}
	primary, backup := gptTables(gp, diskID, size)
	if _, err := f.WriteAt(primary, 0); err != nil {
		return nil, err
	}
	if _, err := f.WriteAt(backup, l.Size-int64(len(backup))); err != nil {
		return nil, err
	}
	esp := parts[0]
	serial := binary.LittleEndian.Uint32(esp.id[:4])
	if err := writeFAT32(f, int64(esp.first*sectorSize), esp.last-esp.first+1, esp.first, serial, o.Epoch,
		[]fatFile{{Path: boot, Data: o.UKI}}); err != nil {
		return nil, fmt.Errorf("ESP: %w", err)
	}
	for _, p := range parts[1:] {
		if err := copyInto(ctx, f, int64(p.first*sectorSize), p.file); err != nil {
			return nil, fmt.Errorf("partition %s: %w", p.name, err)
		}
	}
	return l, nil
}

// source is a partition copied from a file.
type source struct {
	name, file string
	typ        GUID
	attrs      uint64
}

// plan places the partitions, each at a 1 MiB boundary and a whole
// number of MiB long.
func plan(o Options) ([]planned, error) {
	next := uint64(alignLBAs)
	add := func(out []planned, name string, typ GUID, attrs uint64, file string, bytes int64) []planned {
		n := (uint64(bytes) + alignLBAs*sectorSize - 1) / (alignLBAs * sectorSize) * alignLBAs
		p := planned{gptPart: gptPart{typ: typ, id: DeriveGUID(o.Seed, name), first: next, last: next + n - 1, attrs: attrs, name: name}, file: file}
		next += n
		return append(out, p)
	}
	// The ESP: room for the UKI's clusters and its directories, and
	// at least FAT32's minimum.
	espBytes := max(int64(fatSectors(uint64(len(o.UKI))/sectorSize+16))*sectorSize*9/8, minESP)
	parts := add(nil, "esp", TypeESP, AttrRequired, "", espBytes)
	efi, err := efiOf(o.Arch)
	if err != nil {
		return nil, err
	}
	files := []source{{"root", o.Root, MustGUID(efi.RootType), AttrReadOnly}}
	if o.Verity != "" {
		files = append(files, source{"root-verity", o.Verity, MustGUID(efi.RootVerityType), AttrReadOnly})
	}
	for _, d := range o.Data {
		files = append(files, source{d.Name, d.File, TypeLinuxData, 0})
	}
	for _, pf := range files {
		fi, err := os.Stat(pf.file)
		if err != nil {
			return nil, fmt.Errorf("partition %s: %w", pf.name, err)
		}
		parts = add(parts, pf.name, pf.typ, pf.attrs, pf.file, fi.Size())
	}
	return parts, nil
}

// copyInto copies file src into f at off, leaving holes where src has
// whole zero blocks so that the image stays as sparse as its inputs.
func copyInto(ctx context.Context, f *os.File, off int64, src string) error {
	s, err := os.Open(src)
	if err != nil {
		return err
	}
	defer s.Close()
	_, err = sparse.Copy(ctx, f, off, s)
	return err
}

// efiOf is the UEFI row of arch's table for a GOARCH.
func efiOf(goarch string) (*arch.EFI, error) {
	a, err := arch.Lookup(goarch)
	if err != nil {
		return nil, err
	}
	if a.EFI == nil {
		return nil, fmt.Errorf("no UEFI disk for %s", a.GOARCH)
	}
	return a.EFI, nil
}
