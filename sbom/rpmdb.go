package sbom

import (
	"bytes"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"net/url"
	"os"

	"github.com/knqyf263/go-rpmdb/pkg/bdb"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", pure Go
)

func isSQLite(head []byte) bool { return bytes.HasPrefix(head, []byte("SQLite format 3\x00")) }

// sqliteBlobs reads rpm's sqlite backend: table Packages (hnum, blob),
// opened read-only and immutable (no journal or lock files are made).
func sqliteBlobs(p string) ([][]byte, error) {
	u := url.URL{Scheme: "file", Path: p, RawQuery: "mode=ro&immutable=1"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.Query("SELECT blob FROM Packages ORDER BY hnum")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// rpm's ndb backend (lib/backend/ndb/rpmpkg.c): a 32-byte header
// ("RpmP", version 0, generation, slot page count), 4 KiB slot pages of
// 16-byte slots {"Slot", package index, block offset, block count} (the
// header takes the first two), and blobs at offset*16 with a 16-byte
// header {"BlbS", package index, checksum, length}. All little-endian.
const (
	ndbHeaderMagic = 'R' | 'p'<<8 | 'm'<<16 | 'P'<<24
	ndbSlotMagic   = 'S' | 'l'<<8 | 'o'<<16 | 't'<<24
	ndbBlobMagic   = 'B' | 'l'<<8 | 'b'<<16 | 'S'<<24
	ndbSlotSize    = 16
	ndbPage        = 4096
	ndbMaxPages    = 2048
)

func isNDB(head []byte) bool {
	return len(head) >= 4 && binary.LittleEndian.Uint32(head) == ndbHeaderMagic
}

func ndbBlobs(p string) ([][]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hdr := make([]byte, 16)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	pages := binary.LittleEndian.Uint32(hdr[12:])
	if binary.LittleEndian.Uint32(hdr[4:]) != 0 || pages == 0 || pages > ndbMaxPages {
		return nil, fmt.Errorf("header: version %d with %d slot pages is not rpm's ndb", binary.LittleEndian.Uint32(hdr[4:]), pages)
	}
	slots := make([]byte, pages*ndbPage)
	if _, err := f.ReadAt(slots, 0); err != nil {
		return nil, fmt.Errorf("slot pages: %w", err)
	}
	var out [][]byte
	for off := 2 * ndbSlotSize; off < len(slots); off += ndbSlotSize {
		s := slots[off:]
		if binary.LittleEndian.Uint32(s) != ndbSlotMagic {
			return nil, fmt.Errorf("slot at offset %d: bad magic", off)
		}
		idx, blk := binary.LittleEndian.Uint32(s[4:]), binary.LittleEndian.Uint32(s[8:])
		if idx == 0 {
			continue // a free slot
		}
		b, err := ndbBlob(f, idx, int64(blk)*ndbSlotSize)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func ndbBlob(f *os.File, idx uint32, at int64) ([]byte, error) {
	h := make([]byte, 16)
	if _, err := f.ReadAt(h, at); err != nil {
		return nil, fmt.Errorf("blob of package %d at offset %d: %w", idx, at, err)
	}
	if binary.LittleEndian.Uint32(h) != ndbBlobMagic || binary.LittleEndian.Uint32(h[4:]) != idx {
		return nil, fmt.Errorf("blob of package %d at offset %d: bad header", idx, at)
	}
	n := binary.LittleEndian.Uint32(h[12:])
	if n > maxTextDB {
		return nil, fmt.Errorf("blob of package %d at offset %d: %d bytes", idx, at, n)
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, at+16); err != nil {
		return nil, fmt.Errorf("blob of package %d at offset %d: %w", idx, at, err)
	}
	return b, nil
}

// isBDBHash checks the Berkeley DB metadata page's magic (0x061561, hash)
// at offset 12, in either byte order.
func isBDBHash(head []byte) bool {
	if len(head) < 16 {
		return false
	}
	return binary.LittleEndian.Uint32(head[12:]) == 0x061561 || binary.BigEndian.Uint32(head[12:]) == 0x061561
}

// bdbBlobs reads a Berkeley DB hash database by go-rpmdb's reader (the
// module's served version reads only this format).
func bdbBlobs(p string) ([][]byte, error) {
	db, err := bdb.Open(p)
	if err != nil {
		return nil, err
	}
	// Drain the channel even after an error: its goroutine sends on.
	// The reader has no Close; its file is closed by os.File's finalizer.
	var out [][]byte
	for e := range db.Read() {
		if e.Err != nil && err == nil {
			err = e.Err
		}
		out = append(out, e.Value)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}
