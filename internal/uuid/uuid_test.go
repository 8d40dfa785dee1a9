package uuid

import (
	"crypto/sha256"
	"testing"
)

func TestDerive(t *testing.T) {
	u := Derive("d", "a", "b")
	if want := FromHash(sha256New("d\x00a\x00b")); u != want {
		t.Errorf("Derive hashes %x, want %x", u, want)
	}
	if u[6]>>4 != 8 || u[8]>>6 != 2 {
		t.Errorf("%s: version %d, variant bits %b; want 8, 10", u, u[6]>>4, u[8]>>6)
	}
	for _, other := range []UUID{Derive("d", "a", "c"), Derive("e", "a", "b"), Derive("d", "a")} {
		if other == u {
			t.Errorf("%s: two inputs share a UUID", u)
		}
	}
	if Derive("d", "a", "b") != u {
		t.Error("not stable")
	}
}

func TestString(t *testing.T) {
	var u UUID
	for i := range u {
		u[i] = byte(i * 17)
	}
	if got, want := u.String(), "00112233-4455-6677-8899-aabbccddeeff"; got != want {
		t.Errorf("String = %s, want %s", got, want)
	}
}

func sha256New(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
