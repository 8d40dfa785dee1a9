package squashfs

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"time"
)

const (
	superblockSize = 96
	magic          = 0x73717368 // "hsqs"
	noTable        = ^uint64(0) // SQUASHFS_INVALID_BLK: an absent table
	pad            = 4096       // images are padded like mksquashfs's, for loop devices

	// Superblock flags (squashfs_fs.h).
	flagNoXattrs        = 0x0200
	flagAlwaysFragments = 0x0020
	flagDuplicates      = 0x0040
)

func (im *image) write(ctx context.Context, f *os.File) error {
	if _, err := f.Seek(superblockSize, 0); err != nil {
		return err
	}
	out := &output{w: bufio.NewWriterSize(f, 1<<20), off: superblockSize}
	if err := im.findDuplicates(ctx); err != nil {
		return fmt.Errorf("finding duplicate files: %w", err)
	}
	frags, err := im.writeData(ctx, out)
	if err != nil {
		return fmt.Errorf("writing file data: %w", err)
	}
	sb, err := im.writeMeta(out, frags)
	if err != nil {
		return err
	}
	if rem := out.off % pad; rem != 0 {
		if err := out.write(make([]byte, pad-rem)); err != nil {
			return err
		}
	}
	if err := out.w.Flush(); err != nil {
		return err
	}
	if _, err := f.WriteAt(sb, 0); err != nil {
		return err
	}
	// f may have held something longer.
	return f.Truncate(int64(out.off))
}

// meta starts a metadata table; the tables are built one after another
// and share one compressor.
func (im *image) meta() (*metaWriter, error) {
	if im.metaComp == nil {
		c, err := newCompressor(im.o.Compression, im.o.BlockSize, metaBlock)
		if err != nil {
			return nil, err
		}
		im.metaComp = c
	}
	return &metaWriter{comp: im.metaComp}, nil
}

// writeMeta writes every table after the data and returns the superblock.
func (im *image) writeMeta(out *output, frags []fragEntry) ([]byte, error) {
	it, err := im.meta()
	if err != nil {
		return nil, err
	}
	dt, _ := im.meta()
	t := &tables{inodes: it, dirs: dt}
	if err := im.writeInodes(t); err != nil {
		return nil, fmt.Errorf("writing inodes: %w", err)
	}
	s := superblock{inodes: im.nInode, frags: uint32(len(frags)), root: im.rootRef,
		xattrs: noTable, lookup: noTable}
	steps := []struct {
		name string
		at   *uint64
		fn   func() ([]byte, error)
	}{
		{"inode table", &s.inodeTable, it.finish},
		{"directory table", &s.dirTable, dt.finish},
	}
	for _, st := range steps {
		*st.at = out.off
		b, err := st.fn()
		if err == nil {
			err = out.write(b)
		}
		if err != nil {
			return nil, fmt.Errorf("writing %s: %w", st.name, err)
		}
	}
	var fe le
	for _, e := range frags {
		fe = fe.u64(e.start).u32(e.size).u32(0)
	}
	if s.fragTable, err = im.writeTable(out, fe, nil); err != nil {
		return nil, fmt.Errorf("writing fragment table: %w", err)
	}
	var ids le
	for _, id := range im.ids {
		ids = ids.u32(id)
	}
	if s.idTable, err = im.writeTable(out, ids, nil); err != nil {
		return nil, fmt.Errorf("writing id table: %w", err)
	}
	if len(im.xattrSets) > 0 {
		if s.xattrs, err = im.writeXattrs(out); err != nil {
			return nil, fmt.Errorf("writing xattr table: %w", err)
		}
	}
	s.bytesUsed = out.off
	return im.superblock(s), nil
}

// writeTable writes entries as metadata blocks followed by the list of
// the blocks' offsets (after head, when given), and returns where that
// list (or head) starts: the form of the fragment, id and xattr id tables.
func (im *image) writeTable(out *output, entries []byte, head []byte) (uint64, error) {
	m, err := im.meta()
	if err != nil {
		return 0, err
	}
	m.write(entries)
	b, err := m.finish()
	if err != nil {
		return 0, err
	}
	base := out.off
	if err := out.write(b); err != nil {
		return 0, err
	}
	at := out.off
	idx := le(head)
	for _, s := range m.starts {
		idx = idx.u64(base + uint64(s))
	}
	return at, out.write(idx)
}

// writeXattrs writes the key/value pairs, the xattr id table and its
// header, and returns where the header is.
func (im *image) writeXattrs(out *output) (uint64, error) {
	kv, err := im.meta()
	if err != nil {
		return 0, err
	}
	var ids le
	for i, set := range im.xattrSets {
		ids = ids.u64(kv.ref()).u32(im.xattrCnt[i]).u32(uint32(len(set)))
		kv.write(set)
	}
	b, err := kv.finish()
	if err != nil {
		return 0, err
	}
	kvStart := out.off
	if err := out.write(b); err != nil {
		return 0, err
	}
	head := le(nil).u64(kvStart).u32(uint32(len(im.xattrSets))).u32(0)
	return im.writeTable(out, ids, head)
}

type superblock struct {
	inodes, frags                                    uint32
	root, bytesUsed                                  uint64
	idTable, xattrs, inodeTable, dirTable, fragTable uint64
	lookup                                           uint64
}

func (im *image) superblock(s superblock) []byte {
	flags := uint16(flagAlwaysFragments | flagDuplicates)
	if len(im.xattrSets) == 0 {
		flags |= flagNoXattrs
	}
	mt := im.o.ModTime
	if mt.IsZero() {
		mt = time.Unix(0, 0)
	}
	log := uint16(0)
	for 1<<log < im.o.BlockSize {
		log++
	}
	return le(nil).u32(magic).u32(s.inodes).u32(uint32(mt.Unix())).u32(uint32(im.o.BlockSize)).
		u32(s.frags).u16(compressorID[im.o.Compression]).u16(log).u16(flags).u16(uint16(len(im.ids))).
		u16(4).u16(0).u64(s.root).u64(s.bytesUsed).u64(s.idTable).u64(s.xattrs).
		u64(s.inodeTable).u64(s.dirTable).u64(s.fragTable).u64(s.lookup)
}
