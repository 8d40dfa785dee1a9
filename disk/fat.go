package disk

import (
	"encoding/binary"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
)

// FAT32 as Microsoft's "FAT: General Overview of On-Disk Format" (the
// FAT32 specification, 2000) lays it out: boot sector and FSInfo in the
// reserved area, with their backups at sectors 6 and 7; two FATs; then
// clusters of one 512-byte sector. Only what an ESP needs is written: a
// few directories and files with 8.3 upper-case names, each file in
// contiguous clusters.
const (
	fatReserved     = 32
	fatCopies       = 2
	fatMinClusters  = 65525 // fewer clusters make the volume FAT16 (spec, "FAT Type Determination")
	fatEOC          = 0x0fffffff
	fatMedia        = 0xf8
	fatAttrDir      = 0x10
	fatAttrArchive  = 0x20
	fatDirEntrySize = 32
)

// fatFile is one file of the ESP; Path is "EFI/BOOT/BOOTX64.EFI".
type fatFile struct {
	Path string
	Data []byte
}

// fatNode is a directory or a file in the tree being written.
type fatNode struct {
	name     string // 8.3, "EFI", "BOOTX64.EFI"
	data     []byte
	dir      bool
	children []*fatNode
	parent   *fatNode
	cluster  uint32
	clusters uint32
}

// fatSectors is the size of a FAT32 volume holding dataClusters.
func fatSectors(dataClusters uint64) uint64 {
	fat := (dataClusters + 2) * 4
	return fatReserved + fatCopies*((fat+sectorSize-1)/sectorSize) + dataClusters
}

// writeFAT32 writes a FAT32 file system of the given number of sectors
// holding files to w at byte offset off. hidden is the partition's first
// LBA (BPB_HiddSec); serial the volume ID; t every timestamp.
func writeFAT32(w io.WriterAt, off int64, sectors uint64, hidden uint64, serial uint32, t time.Time, files []fatFile) error {
	root, err := fatTree(files)
	if err != nil {
		return err
	}
	// BPB_FATSz32 from the spec's formula: enough FAT for every cluster
	// the remaining sectors could hold (a little more than needed).
	fatSz := ((sectors-fatReserved)+2)*4 + sectorSize - 1
	fatSz /= sectorSize
	clusters := sectors - fatReserved - fatCopies*fatSz
	if clusters < fatMinClusters {
		return fmt.Errorf("FAT32 volume of %d sectors has %d clusters, fewer than %d", sectors, clusters, fatMinClusters)
	}
	nodes, next := assignClusters(root)
	if uint64(next-2) > clusters {
		return fmt.Errorf("ESP files need %d clusters, the FAT32 volume has %d", next-2, clusters)
	}
	fat := fatTable(nodes, fatSz)
	boot := fatBootSector(sectors, fatSz, hidden, serial)
	info := fatInfo(uint32(clusters)-(next-2), next)
	for _, blk := range []struct {
		sector uint64
		b      []byte
	}{{0, boot}, {1, info}, {6, boot}, {7, info}, {fatReserved, fat}, {fatReserved + fatSz, fat}} {
		if _, err := w.WriteAt(blk.b, off+int64(blk.sector*sectorSize)); err != nil {
			return err
		}
	}
	dataStart := off + int64((fatReserved+fatCopies*fatSz)*sectorSize)
	for _, n := range nodes {
		b := n.data
		if n.dir {
			b = fatDir(n, n == root, t)
		}
		if _, err := w.WriteAt(b, dataStart+int64(n.cluster-2)*sectorSize); err != nil {
			return err
		}
	}
	return nil
}

// assignClusters gives each node its contiguous clusters, in tree order
// from cluster 2, and returns the nodes in that order and the next free
// cluster.
func assignClusters(root *fatNode) ([]*fatNode, uint32) {
	next := uint32(2)
	var nodes []*fatNode
	var assign func(n *fatNode)
	assign = func(n *fatNode) {
		n.clusters = max(1, uint32((len(n.data)+sectorSize-1)/sectorSize))
		if n.dir {
			n.clusters = uint32((len(n.children)+2)*fatDirEntrySize+sectorSize-1) / sectorSize
		}
		n.cluster, next = next, next+n.clusters
		nodes = append(nodes, n)
		for _, c := range n.children {
			assign(c)
		}
	}
	assign(root)
	return nodes, next
}

// fatTable is the FAT of fatSz sectors chaining each node's clusters.
func fatTable(nodes []*fatNode, fatSz uint64) []byte {
	fat := make([]byte, fatSz*sectorSize)
	binary.LittleEndian.PutUint32(fat[0:], 0x0fffff00|fatMedia)
	binary.LittleEndian.PutUint32(fat[4:], fatEOC)
	for _, n := range nodes {
		for i := range n.clusters {
			v := uint32(fatEOC)
			if i+1 < n.clusters {
				v = n.cluster + i + 1
			}
			binary.LittleEndian.PutUint32(fat[4*(n.cluster+i):], v)
		}
	}
	return fat
}

// fatTree builds the directory tree of files, children sorted by name.
func fatTree(files []fatFile) (*fatNode, error) {
	root := &fatNode{dir: true}
	for _, f := range files {
		parts := strings.Split(path.Clean(f.Path), "/")
		dir := root
		for i, p := range parts {
			name, err := fatName(p)
			if err != nil {
				return nil, fmt.Errorf("ESP file %s: %w", f.Path, err)
			}
			var child *fatNode
			for _, c := range dir.children {
				if c.name == p {
					child = c
				}
			}
			last := i == len(parts)-1
			if child == nil {
				child = &fatNode{name: p, dir: !last, parent: dir}
				dir.children = append(dir.children, child)
			} else if last || !child.dir {
				return nil, fmt.Errorf("ESP file %s: %s given twice", f.Path, name)
			}
			if last {
				child.data = f.Data
			}
			dir = child
		}
	}
	var sortTree func(n *fatNode)
	sortTree = func(n *fatNode) {
		sort.Slice(n.children, func(i, j int) bool { return n.children[i].name < n.children[j].name })
		for _, c := range n.children {
			sortTree(c)
		}
	}
	sortTree(root)
	return root, nil
}

// fatName is a name's 11-byte short-name field; only names that are
// already valid upper-case 8.3 names are taken, so no long-name entries
// are needed.
func fatName(s string) ([11]byte, error) {
	var b [11]byte
	for i := range b {
		b[i] = ' '
	}
	base, ext, _ := strings.Cut(s, ".")
	if base == "" || len(base) > 8 || len(ext) > 3 || strings.Contains(ext, ".") {
		return b, fmt.Errorf("%q is not an 8.3 name", s)
	}
	for _, r := range base + ext {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return b, fmt.Errorf("%q is not an upper-case 8.3 name", s)
		}
	}
	copy(b[:], base)
	copy(b[8:], ext)
	return b, nil
}

// fatDir is a directory's clusters: "." and ".." (but in the root), then
// an entry per child.
func fatDir(n *fatNode, isRoot bool, t time.Time) []byte {
	b := make([]byte, n.clusters*sectorSize)
	i := 0
	put := func(name [11]byte, attr byte, cluster uint32, size int) {
		e := b[i*fatDirEntrySize:]
		copy(e, name[:])
		e[11] = attr
		d, tm := dosTime(t)
		binary.LittleEndian.PutUint16(e[14:], tm) // DIR_CrtTime
		binary.LittleEndian.PutUint16(e[16:], d)  // DIR_CrtDate
		binary.LittleEndian.PutUint16(e[18:], d)  // DIR_LstAccDate
		binary.LittleEndian.PutUint16(e[20:], uint16(cluster>>16))
		binary.LittleEndian.PutUint16(e[22:], tm) // DIR_WrtTime
		binary.LittleEndian.PutUint16(e[24:], d)  // DIR_WrtDate
		binary.LittleEndian.PutUint16(e[26:], uint16(cluster))
		binary.LittleEndian.PutUint32(e[28:], uint32(size))
		i++
	}
	if !isRoot {
		put([11]byte{'.', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}, fatAttrDir, n.cluster, 0)
		// ".." of a directory in the root names cluster 0 (spec, "FAT
		// Directory Structure").
		parent := n.parent.cluster
		if n.parent.parent == nil {
			parent = 0
		}
		put([11]byte{'.', '.', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}, fatAttrDir, parent, 0)
	}
	for _, c := range n.children {
		name, _ := fatName(c.name)
		if c.dir {
			put(name, fatAttrDir, c.cluster, 0)
		} else {
			put(name, fatAttrArchive, c.cluster, len(c.data))
		}
	}
	return b
}

// dosTime is t as FAT's date and time words, clamped to FAT's range
// (1980 to 2107), with FAT's 2-second resolution.
func dosTime(t time.Time) (date, tm uint16) {
	t = t.UTC()
	if t.Year() < 1980 {
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if t.Year() > 2107 {
		t = time.Date(2107, 12, 31, 23, 59, 58, 0, time.UTC)
	}
	date = uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
	tm = uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2)
	return date, tm
}

func fatBootSector(sectors, fatSz, hidden uint64, serial uint32) []byte {
	b := make([]byte, sectorSize)
	copy(b, []byte{0xeb, 0x58, 0x90}) // jump over the BPB
	copy(b[3:], "C2VM    ")
	binary.LittleEndian.PutUint16(b[11:], sectorSize)
	b[13] = 1 // sectors per cluster
	binary.LittleEndian.PutUint16(b[14:], fatReserved)
	b[16] = fatCopies
	b[21] = fatMedia
	binary.LittleEndian.PutUint16(b[24:], 63)  // sectors per track: unused, mkfs.fat's default
	binary.LittleEndian.PutUint16(b[26:], 255) // heads: likewise
	binary.LittleEndian.PutUint32(b[28:], uint32(hidden))
	binary.LittleEndian.PutUint32(b[32:], uint32(sectors))
	binary.LittleEndian.PutUint32(b[36:], uint32(fatSz))
	binary.LittleEndian.PutUint32(b[44:], 2) // root directory cluster
	binary.LittleEndian.PutUint16(b[48:], 1) // FSInfo sector
	binary.LittleEndian.PutUint16(b[50:], 6) // backup boot sector
	b[64] = 0x80                             // drive number
	b[66] = 0x29                             // extended boot signature: the next three fields are valid
	binary.LittleEndian.PutUint32(b[67:], serial)
	copy(b[71:], "NO NAME    ")
	copy(b[82:], "FAT32   ")
	b[510], b[511] = 0x55, 0xaa
	return b
}

// fatInfo is the FSInfo sector: free clusters and the next free one.
func fatInfo(free, next uint32) []byte {
	b := make([]byte, sectorSize)
	binary.LittleEndian.PutUint32(b[0:], 0x41615252)
	binary.LittleEndian.PutUint32(b[484:], 0x61417272)
	binary.LittleEndian.PutUint32(b[488:], free)
	binary.LittleEndian.PutUint32(b[492:], next)
	binary.LittleEndian.PutUint32(b[508:], 0xaa550000)
	return b
}
