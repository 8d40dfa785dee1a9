package provenance

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
)

// Envelope is a DSSE envelope.
type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     string      `json:"payload"` // base64 (standard, padded)
	Signatures  []Signature `json:"signatures"`
}

// Signature is one DSSE signature; KeyID is the sha256 of the signer's
// public key in PKIX DER, in hex.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"` // base64
}

// Errors a verifier reports.
var (
	ErrBadSignature = errors.New("signature does not verify")
	ErrKeyType      = errors.New("key is neither ed25519 nor ECDSA P-256")
)

// PAE is DSSE's pre-authentication encoding, what is signed:
// "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in decimal.
func PAE(payloadType string, body []byte) []byte {
	b := []byte("DSSEv1 " + strconv.Itoa(len(payloadType)) + " " + payloadType + " " + strconv.Itoa(len(body)) + " ")
	return append(b, body...)
}

// Sign wraps the statement's JSON in an envelope signed by key.
func Sign(st Statement, key crypto.Signer) (*Envelope, error) {
	body, err := st.Marshal()
	if err != nil {
		return nil, err
	}
	sig, err := signPAE(key, PAE(PayloadType, body))
	if err != nil {
		return nil, err
	}
	id, err := KeyID(key.Public())
	if err != nil {
		return nil, err
	}
	return &Envelope{PayloadType: PayloadType, Payload: base64.StdEncoding.EncodeToString(body),
		Signatures: []Signature{{KeyID: id, Sig: base64.StdEncoding.EncodeToString(sig)}}}, nil
}

func signPAE(key crypto.Signer, msg []byte) ([]byte, error) {
	switch k := key.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(k, msg), nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, ErrKeyType
		}
		sum := sha256.Sum256(msg)
		return k.Sign(nil, sum[:], crypto.SHA256) // nil: RFC 6979, deterministic
	}
	return nil, ErrKeyType
}

// Verify checks that one of the envelope's signatures is pub's over its
// payload and returns the statement inside.
func (e *Envelope) Verify(pub crypto.PublicKey) (*Statement, error) {
	if e.PayloadType != PayloadType {
		return nil, fmt.Errorf("payloadType %q, want %s", e.PayloadType, PayloadType)
	}
	body, err := base64.StdEncoding.DecodeString(e.Payload)
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	msg := PAE(e.PayloadType, body)
	ok := false
	for _, s := range e.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err == nil && verifyPAE(pub, msg, sig) {
			ok = true
			break
		}
	}
	if !ok {
		return nil, ErrBadSignature
	}
	return e.Statement()
}

// Statement decodes the payload without checking a signature.
func (e *Envelope) Statement() (*Statement, error) {
	body, err := base64.StdEncoding.DecodeString(e.Payload)
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	return ParseStatement(body)
}

// ParseStatement reads an in-toto statement and checks its types.
func ParseStatement(b []byte) (*Statement, error) {
	var st Statement
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	if st.Type != StatementType || st.PredicateType != PredicateType {
		return nil, fmt.Errorf("statement of type %q with predicate %q, want %s with %s", st.Type, st.PredicateType, StatementType, PredicateType)
	}
	return &st, nil
}

func verifyPAE(pub crypto.PublicKey, msg, sig []byte) bool {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return ed25519.Verify(k, msg, sig)
	case *ecdsa.PublicKey:
		sum := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(k, sum[:], sig)
	}
	return false
}

// KeyID is the hex sha256 of the public key's PKIX DER encoding.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// ParsePrivateKey reads a PKCS#8 PEM ("PRIVATE KEY") ed25519 or ECDSA
// P-256 key. An encrypted one is refused: decrypt it first (openssl pkcs8).
func ParsePrivateKey(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	if blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("PEM block %q, want an unencrypted PKCS#8 \"PRIVATE KEY\"", blk.Type)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("PKCS#8: %w", err)
	}
	switch k := k.(type) {
	case ed25519.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		if k.Curve == elliptic.P256() {
			return k, nil
		}
	}
	return nil, ErrKeyType
}

// ParsePublicKey reads a PKIX PEM ("PUBLIC KEY") ed25519 or ECDSA P-256
// key.
func ParsePublicKey(b []byte) (crypto.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, errors.New("no PEM \"PUBLIC KEY\" block")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("PKIX: %w", err)
	}
	switch k := k.(type) {
	case ed25519.PublicKey:
		return k, nil
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return k, nil
		}
	}
	return nil, ErrKeyType
}
