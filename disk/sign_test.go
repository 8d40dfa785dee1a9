package disk

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/disk/pesign"
	"github.com/c2vm/c2vm/internal/fixtures"
)

// keyPair is an RSA key and a self-signed certificate for it.
func keyPair(t *testing.T) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "c2vm test db"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<33, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return k, c
}

// TestSignedUKIVerifies: pesign.Sign on a UKI: sbverify (sbsigntool, OpenSSL's PKCS #7) accepts the
// signature for the certificate, with no warning, and refuses another
// certificate; signing is deterministic.
func TestSignedUKIVerifies(t *testing.T) {
	fixtures.NeedTools(t, "sbverify")
	img, _ := testUKI(t)
	k, c := keyPair(t)
	signed, err := pesign.Sign(img, k, c)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := pesign.Sign(img, k, c); !bytes.Equal(signed, again) {
		t.Error("two signatures of one image differ")
	}
	dir := t.TempDir()
	efi, cert := filepath.Join(dir, "signed.efi"), filepath.Join(dir, "db.pem")
	os.WriteFile(efi, signed, 0o644)
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), 0o644)
	out, err := exec.Command("sbverify", "--cert", cert, efi).CombinedOutput()
	if err != nil || strings.Contains(string(out), "warning") {
		t.Errorf("sbverify: %v\n%s", err, out)
	}
	_, other := keyPair(t)
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.Raw}), 0o644)
	if out, err := exec.Command("sbverify", "--cert", cert, efi).CombinedOutput(); err == nil {
		t.Errorf("sbverify accepts another certificate:\n%s", out)
	}
}

func TestSignUKIErrors(t *testing.T) {
	img, _ := testUKI(t)
	k, c := keyPair(t)
	other, _ := keyPair(t)
	if _, err := pesign.Sign(img, other, c); err == nil {
		t.Error("signed with a key that is not the certificate's")
	}
	signed, err := pesign.Sign(img, k, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pesign.Sign(signed, k, c); err == nil {
		t.Error("signed a signed image again")
	}
	if _, err := pesign.Hash([]byte("MZ not a PE")); err == nil {
		t.Error("hashed a file that is no PE")
	}
}
