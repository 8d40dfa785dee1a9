package provenance

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
)

// TestPAE is DSSE's own example (protocol.md, "Test Vectors").
func TestPAE(t *testing.T) {
	got := string(PAE("http://example.com/HelloWorld", []byte("hello world")))
	if want := "DSSEv1 29 http://example.com/HelloWorld 11 hello world"; got != want {
		t.Errorf("PAE = %q, want %q", got, want)
	}
}

func statement() Statement {
	return New(map[string]string{"rootfs.img": "aa", "kernel": "bb"}, Build{
		Parameters:   map[string]any{"image": "oci:app", "verity": true},
		Dependencies: []Resource{{Name: "image", URI: "oci:app", Digest: map[string]string{"sha256": "cc"}}},
		Version:      "v0-test",
	})
}

// keys makes PKCS#8 keys with openssl, the way a user would.
func keys(t *testing.T) map[string]string {
	fixtures.NeedTools(t, "openssl")
	dir := t.TempDir()
	out := map[string]string{}
	for name, args := range map[string][]string{
		"ed25519": {"-algorithm", "ed25519"},
		"p256":    {"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"},
	} {
		key := filepath.Join(dir, name+".pem")
		run(t, "openssl", append(append([]string{"genpkey"}, args...), "-out", key)...)
		run(t, "openssl", "pkey", "-in", key, "-pubout", "-out", key+".pub")
		out[name] = key
	}
	return out
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func load(t *testing.T, key string) (crypto.Signer, crypto.PublicKey) {
	b, _ := os.ReadFile(key)
	priv, err := ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(key + ".pub")
	pub, err := ParsePublicKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

func TestSignVerify(t *testing.T) {
	ks := keys(t)
	for name, key := range ks {
		t.Run(name, func(t *testing.T) {
			priv, pub := load(t, key)
			env, err := Sign(statement(), priv)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := Sign(statement(), priv)
			if a, b := mustJSON(t, env), mustJSON(t, again); !bytes.Equal(a, b) {
				t.Error("two signatures of one statement differ: not reproducible")
			}
			st, err := env.Verify(pub)
			if err != nil {
				t.Fatal(err)
			}
			if len(st.Subject) != 2 || st.Subject[0].Name != "kernel" || st.Predicate.BuildDefinition.ExternalParameters["verity"] != true {
				t.Errorf("statement back: %+v", st)
			}
			opensslVerifies(t, name, key+".pub", env)
			other := ks["ed25519"]
			if name == "ed25519" {
				other = ks["p256"]
			}
			_, wrong := load(t, other)
			if _, err := env.Verify(wrong); !errors.Is(err, ErrBadSignature) {
				t.Errorf("another key's Verify = %v", err)
			}
			body, _ := base64.StdEncoding.DecodeString(env.Payload)
			env.Payload = base64.StdEncoding.EncodeToString(bytes.Replace(body, []byte(`"aa"`), []byte(`"ab"`), 1))
			if _, err := env.Verify(pub); !errors.Is(err, ErrBadSignature) {
				t.Errorf("a changed payload's Verify = %v", err)
			}
		})
	}
}

// opensslVerifies checks the signature over PAE with openssl, a verifier
// that shares no code with this package.
func opensslVerifies(t *testing.T, kind, pub string, env *Envelope) {
	dir := t.TempDir()
	body, _ := base64.StdEncoding.DecodeString(env.Payload)
	sig, _ := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	msg, sigFile := filepath.Join(dir, "pae"), filepath.Join(dir, "sig")
	os.WriteFile(msg, PAE(env.PayloadType, body), 0o644)
	os.WriteFile(sigFile, sig, 0o644)
	if kind == "ed25519" {
		run(t, "openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", msg, "-sigfile", sigFile)
	} else {
		run(t, "openssl", "dgst", "-sha256", "-verify", pub, "-signature", sigFile, msg)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBadKeys(t *testing.T) {
	fixtures.NeedTools(t, "openssl")
	dir := t.TempDir()
	rsa := filepath.Join(dir, "rsa.pem")
	run(t, "openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", rsa)
	b, _ := os.ReadFile(rsa)
	if _, err := ParsePrivateKey(b); !errors.Is(err, ErrKeyType) {
		t.Errorf("RSA key: %v", err)
	}
	enc := filepath.Join(dir, "enc.pem")
	run(t, "openssl", "genpkey", "-algorithm", "ed25519", "-aes-256-cbc", "-pass", "pass:x", "-out", enc)
	b, _ = os.ReadFile(enc)
	if _, err := ParsePrivateKey(b); err == nil {
		t.Error("an encrypted key parsed")
	}
	if _, err := ParsePrivateKey([]byte("nothing")); err == nil {
		t.Error("no PEM parsed")
	}
}

func TestStatementShape(t *testing.T) {
	b, err := statement().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseStatement(b)
	if err != nil {
		t.Fatal(err)
	}
	if st.Predicate.RunDetails.Builder.Version["c2vm"] != "v0-test" || st.Predicate.BuildDefinition.ResolvedDependencies[0].Digest["sha256"] != "cc" {
		t.Errorf("round trip: %s", b)
	}
	if _, err := ParseStatement([]byte(`{"_type":"https://in-toto.io/Statement/v0.1"}`)); err == nil {
		t.Error("a v0.1 statement parsed")
	}
}
