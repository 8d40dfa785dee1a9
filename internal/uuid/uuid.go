// Package uuid derives the fixed UUIDs c2vm writes into its artifacts (a
// file system's volume UUID, a GPT disk's GUIDs, a dm-verity superblock's
// UUID) from a hash of their input, so that the same input gives the same
// bytes (the house rule: fixed UUIDs derived from the input digest).
//
//	u := uuid.Derive("c2vm disk guid", seed, name)
//	fmt.Println(u) // 8c3a…-…: version 8, RFC 9562 variant
//
// Every one is RFC 9562's version 8 ("custom"), the version the RFC gives
// for a name hashed with SHA-256 (section 5.8, appendix B.2); versions 3
// and 5 are MD5 and SHA-1 name hashes under a namespace UUID, and version
// 4 promises randomness. The package is a leaf of the standard library,
// so the guest init may link it.
package uuid

import (
	"crypto/sha256"
	"fmt"
)

// UUID is a UUID in its canonical (big-endian, as printed) byte order.
type UUID [16]byte

// FromHash makes a version 8 UUID of the first 16 bytes of a digest,
// which must be at least that long.
func FromHash(sum []byte) UUID {
	var u UUID
	copy(u[:], sum[:16])
	u[6] = u[6]&0x0f | 0x80 // version 8 (RFC 9562 section 4.2)
	u[8] = u[8]&0x3f | 0x80 // variant 10 (section 4.1)
	return u
}

// Derive is the UUID of SHA-256 over domain and each part, each followed
// by a zero byte except the last: one domain per use, so that two uses
// never share a UUID for one input.
func Derive(domain string, parts ...string) UUID {
	h := sha256.New()
	h.Write([]byte(domain))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return FromHash(h.Sum(nil))
}

// String is the canonical 8-4-4-4-12 form, in lower case.
func (u UUID) String() string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
