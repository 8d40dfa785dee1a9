package pesign

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"slices"
)

// OIDs of PKCS #7 (RFC 2315), PKCS #9 and Authenticode.
var (
	oidSignedData       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidContentType      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSHA256           = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidRSAEncryption    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidSpcIndirectData  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 4}
	oidSpcPEImageData   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 15}
	oidSpcSpOpusInfo    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 12}
	oidSpcStatementType = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 11}
	oidSpcIndividualSP  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 21}
)

var sha256Alg = pkix.AlgorithmIdentifier{Algorithm: oidSHA256, Parameters: asn1.NullRawValue}

// Authenticode's SpcIndirectDataContent: what is signed is the image's
// digest, inside an SpcPeImageData that says "a PE image" (its file link
// the customary "<<<Obsolete>>>", as signtool and sbsign write it).
type spcIndirectDataContent struct {
	Data          spcAttributeTypeAndValue
	MessageDigest digestInfo
}

type spcAttributeTypeAndValue struct {
	Type  asn1.ObjectIdentifier
	Value spcPEImageData
}

type spcPEImageData struct {
	Flags asn1.BitString
	File  asn1.RawValue // [0] EXPLICIT SpcLink (encoding/asn1 writes a RawValue as it is: the tag is in it)
}

type digestInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Digest    []byte
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue // [0] EXPLICIT, made by explicit0
}

type signedDataT struct {
	Version          int
	DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
	ContentInfo      contentInfo
	Certificates     asn1.RawValue `asn1:"tag:0,optional"`
	SignerInfos      []signerInfo  `asn1:"set"`
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values []asn1.RawValue `asn1:"set"`
}

type signerInfo struct {
	Version                   int
	IssuerAndSerialNumber     issuerAndSerial
	DigestAlgorithm           pkix.AlgorithmIdentifier
	AuthenticatedAttributes   asn1.RawValue `asn1:"optional"`
	DigestEncryptionAlgorithm pkix.AlgorithmIdentifier
	EncryptedDigest           []byte
}

// obsoleteFile is SpcLink's file choice: [2] { [0] IMPLICIT BMPString
// "<<<Obsolete>>>" }.
func obsoleteFile() asn1.RawValue {
	var bmp []byte
	for _, r := range "<<<Obsolete>>>" {
		bmp = append(bmp, 0, byte(r))
	}
	inner, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, Bytes: bmp})
	file, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, IsCompound: true, Bytes: inner})
	return explicit0(file)
}

// explicit0 wraps DER in a [0] EXPLICIT tag.
func explicit0(der []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: der}
}

// signedData is the DER of a ContentInfo holding SignedData over the
// image digest: one signer, the certificate, authenticated attributes
// (content type, message digest, an empty SpcSpOpusInfo and the
// individual-signing statement type, as sbsign writes them), signed with
// PKCS #1 v1.5 (deterministic).
func signedData(digest []byte, key crypto.Signer, cert *x509.Certificate) ([]byte, error) {
	idc, err := asn1.Marshal(spcIndirectDataContent{
		Data:          spcAttributeTypeAndValue{Type: oidSpcPEImageData, Value: spcPEImageData{File: obsoleteFile()}},
		MessageDigest: digestInfo{Algorithm: sha256Alg, Digest: digest},
	})
	if err != nil {
		return nil, err
	}
	// Authenticode's message digest is of the content's value, its
	// SEQUENCE tag and length left out.
	var seq asn1.RawValue
	if _, err := asn1.Unmarshal(idc, &seq); err != nil {
		return nil, err
	}
	attrs, err := authenticatedAttributes(seq.Bytes)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(attrs.FullBytes)
	sig, err := key.Sign(rand.Reader, sum[:], crypto.SHA256) // RSA PKCS #1 v1.5 draws nothing
	if err != nil {
		return nil, err
	}
	// In SignerInfo the attributes are [0] IMPLICIT, not a SET.
	attrs.FullBytes[0] = 0xa0
	sd := signedDataT{
		Version:          1,
		DigestAlgorithms: []pkix.AlgorithmIdentifier{sha256Alg},
		ContentInfo:      contentInfo{ContentType: oidSpcIndirectData, Content: explicit0(idc)},
		Certificates:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: cert.Raw},
		SignerInfos: []signerInfo{{Version: 1,
			IssuerAndSerialNumber:     issuerAndSerial{Issuer: asn1.RawValue{FullBytes: cert.RawIssuer}, Serial: cert.SerialNumber},
			DigestAlgorithm:           sha256Alg,
			AuthenticatedAttributes:   asn1.RawValue{FullBytes: attrs.FullBytes},
			DigestEncryptionAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oidRSAEncryption, Parameters: asn1.NullRawValue},
			EncryptedDigest:           sig}},
	}
	inner, err := asn1.Marshal(sd)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(contentInfo{ContentType: oidSignedData, Content: explicit0(inner)})
}

// authenticatedAttributes is the DER SET OF the signer's attributes over
// content (what is signed). DER sorts a SET OF by its elements' encodings
// (X.690, 11.6), and a verifier re-encodes before it checks: unsorted,
// the signature would not verify.
func authenticatedAttributes(content []byte) (asn1.RawValue, error) {
	ct, _ := asn1.Marshal(oidSpcIndirectData)
	h := sha256.Sum256(content)
	md, _ := asn1.Marshal(h[:])
	opus, _ := asn1.Marshal(struct{}{})
	stmt, _ := asn1.Marshal([]asn1.ObjectIdentifier{oidSpcIndividualSP})
	var encoded [][]byte
	for _, a := range []attribute{
		{oidContentType, []asn1.RawValue{{FullBytes: ct}}},
		{oidMessageDigest, []asn1.RawValue{{FullBytes: md}}},
		{oidSpcSpOpusInfo, []asn1.RawValue{{FullBytes: opus}}},
		{oidSpcStatementType, []asn1.RawValue{{FullBytes: stmt}}},
	} {
		b, err := asn1.Marshal(a)
		if err != nil {
			return asn1.RawValue{}, err
		}
		encoded = append(encoded, b)
	}
	slices.SortFunc(encoded, bytes.Compare)
	set, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: bytes.Join(encoded, nil)})
	return asn1.RawValue{FullBytes: set}, err
}
