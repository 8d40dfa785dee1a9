// Package pesign signs PE32+ images for UEFI Secure Boot: the
// Authenticode image hash, a PKCS#7 SignedData over it, and the PE
// checksum, in Go (Microsoft's "Windows Authenticode Portable Executable
// Signature Format"; the PE/COFF specification, "The Attribute
// Certificate Table (Image Only)"). The result is what sbsign(1) writes
// and what sbverify(1) and the firmware (EDK2's AuthenticodeVerify)
// check.
//
//	signed, err := pesign.Sign(uki, key, cert) // RSA key, X.509 certificate
//
// The image must cover its file with its sections, as BuildUKI lays a UKI
// out: data outside every section would be hashed as "extra data" by some
// tools and not others (sbsign warns of such gaps).
package pesign

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// Offsets in the headers (PE/COFF specification, section 3).
const (
	peSigOffset    = 0x3c
	coffSize       = 20
	optCheckSum    = 64
	optSecurityDir = 144 // PE32+ data directory 4: the certificate table
	// WIN_CERTIFICATE: dwLength, wRevision 2.0, WIN_CERT_TYPE_PKCS_SIGNED_DATA.
	winCertHeader   = 8
	winCertRevision = 0x0200
	winCertPKCS7    = 0x0002
)

// ErrNotPE is returned for an image that is not a PE32+ file.
var ErrNotPE = errors.New("not a PE32+ image")

// layout is where Hash and Sign find the headers and sections.
type layout struct {
	checksum int // file offset of the optional header's CheckSum
	certDir  int // file offset of the certificate table's data directory entry
	headers  int // SizeOfHeaders
	sections [][2]int
	signed   bool
}

func parse(img []byte) (*layout, error) {
	f, err := pe.NewFile(bytes.NewReader(img))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotPE, err)
	}
	o, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok || o.NumberOfRvaAndSizes <= pe.IMAGE_DIRECTORY_ENTRY_SECURITY {
		return nil, fmt.Errorf("%w: no PE32+ optional header with a certificate table entry", ErrNotPE)
	}
	opt := int(binary.LittleEndian.Uint32(img[peSigOffset:])) + 4 + coffSize
	l := &layout{checksum: opt + optCheckSum, certDir: opt + optSecurityDir, headers: int(o.SizeOfHeaders),
		signed: o.DataDirectory[pe.IMAGE_DIRECTORY_ENTRY_SECURITY].Size != 0}
	if l.headers > len(img) || l.certDir+8 > l.headers {
		return nil, fmt.Errorf("%w: SizeOfHeaders %d is out of the file", ErrNotPE, l.headers)
	}
	for _, s := range f.Sections {
		if s.Size == 0 {
			continue
		}
		if int64(s.Offset)+int64(s.Size) > int64(len(img)) {
			return nil, fmt.Errorf("%w: section %s runs past the file's end", ErrNotPE, s.Name)
		}
		l.sections = append(l.sections, [2]int{int(s.Offset), int(s.Offset + s.Size)})
	}
	sort.Slice(l.sections, func(i, j int) bool { return l.sections[i][0] < l.sections[j][0] })
	return l, nil
}

// Hash is the Authenticode SHA-256 of an unsigned image: the headers
// without the checksum and the certificate table entry, each section's
// raw data in file order, then whatever follows the last section.
func Hash(img []byte) ([]byte, error) {
	l, err := parse(img)
	if err != nil {
		return nil, err
	}
	if l.signed {
		return nil, fmt.Errorf("%w: already signed", ErrNotPE)
	}
	h := sha256.New()
	h.Write(img[:l.checksum])
	h.Write(img[l.checksum+4 : l.certDir])
	h.Write(img[l.certDir+8 : l.headers])
	end := l.headers
	for _, s := range l.sections {
		h.Write(img[s[0]:s[1]])
		end = max(end, s[1])
	}
	h.Write(img[end:])
	return h.Sum(nil), nil
}

// Sign appends a WIN_CERTIFICATE holding the PKCS#7 signature of the
// image's Authenticode hash by key (RSA, PKCS #1 v1.5, SHA-256: what
// UEFI firmware verifies) for cert, points the certificate table at it
// and sets the checksum. It is deterministic: the same inputs give the
// same bytes.
func Sign(img []byte, key crypto.Signer, cert *x509.Certificate) ([]byte, error) {
	if _, ok := key.(*rsa.PrivateKey); !ok {
		return nil, errors.New("the Secure Boot key is not RSA (UEFI firmware verifies RSA signatures)")
	}
	if !publicKeyMatches(key, cert) {
		return nil, errors.New("the Secure Boot key is not the certificate's")
	}
	digest, err := Hash(img)
	if err != nil {
		return nil, err
	}
	sig, err := signedData(digest, key, cert)
	if err != nil {
		return nil, err
	}
	l, _ := parse(img)
	out := append([]byte(nil), img...)
	out = append(out, make([]byte, (8-len(out)%8)%8)...) // the table starts 8-aligned
	at := len(out)
	n := winCertHeader + len(sig)
	n += (8 - n%8) % 8 // and its entries are padded to 8 bytes
	hdr := make([]byte, winCertHeader)
	binary.LittleEndian.PutUint32(hdr, uint32(n))
	binary.LittleEndian.PutUint16(hdr[4:], winCertRevision)
	binary.LittleEndian.PutUint16(hdr[6:], winCertPKCS7)
	out = append(append(out, hdr...), sig...)
	out = append(out, make([]byte, at+n-len(out))...)
	binary.LittleEndian.PutUint32(out[l.certDir:], uint32(at))
	binary.LittleEndian.PutUint32(out[l.certDir+4:], uint32(n))
	binary.LittleEndian.PutUint32(out[l.checksum:], Checksum(out, l.checksum))
	return out, nil
}

func publicKeyMatches(key crypto.Signer, cert *x509.Certificate) bool {
	k, ok := key.Public().(*rsa.PublicKey)
	return ok && k.Equal(cert.PublicKey)
}

// Checksum is the PE image checksum (the algorithm of ImageHlp's
// CheckSumMappedFile): the 16-bit one's-complement-style sum of the file,
// skipping the checksum field at offset field, plus the file's length.
func Checksum(b []byte, field int) uint32 {
	var sum uint64
	for i := 0; i < len(b); i += 2 {
		if i == field || i == field+2 {
			continue
		}
		w := uint64(b[i])
		if i+1 < len(b) {
			w |= uint64(b[i+1]) << 8
		}
		sum += w
		sum = (sum & 0xffff) + (sum >> 16)
	}
	sum = (sum & 0xffff) + (sum >> 16)
	return uint32(sum) + uint32(len(b))
}
