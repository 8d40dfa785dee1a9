package verity

import (
	"bytes"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
)

// data makes n blocks of content that differs block by block.
func data(blocks int) []byte {
	b := make([]byte, blocks*BlockSize)
	for i := range b {
		b[i] = byte(i*7 + i/BlockSize)
	}
	return b
}

// sizes cover no tree (one block), one level (a partial and a full hash
// block), two and three levels.
var sizes = []struct {
	name   string
	blocks int
}{
	{"one block", 1},
	{"two blocks", 2},
	{"one full hash block", 128},
	{"two levels", 129},
	{"three levels", 128*128 + 1},
}

// TestVeritysetupVerify checks the hash file and root hash with the
// reference tool, and that it rejects a flipped data byte.
func TestVeritysetupVerify(t *testing.T) {
	fixtures.NeedTools(t, "veritysetup")
	for _, tc := range sizes {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			d := data(tc.blocks)
			dataPath, hashPath := filepath.Join(dir, "data"), filepath.Join(dir, "hash")
			if err := os.WriteFile(dataPath, d, 0o644); err != nil {
				t.Fatal(err)
			}
			var h bytes.Buffer
			root, err := Write(&h, bytes.NewReader(d), int64(len(d)), Salt([]byte(tc.name)))
			if err != nil {
				t.Fatal(err)
			}
			if int64(h.Len()) != HashSize(int64(len(d))) {
				t.Errorf("hash file is %d bytes, HashSize says %d", h.Len(), HashSize(int64(len(d))))
			}
			if err := os.WriteFile(hashPath, h.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("veritysetup", "verify", dataPath, hashPath, Hex(root)).CombinedOutput(); err != nil {
				t.Fatalf("veritysetup verify: %v\n%s", err, out)
			}
			// The last block: the one a careless tree leaves out.
			d[len(d)-BlockSize/2] ^= 1
			if err := os.WriteFile(dataPath, d, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("veritysetup", "verify", dataPath, hashPath, Hex(root)).CombinedOutput(); err == nil {
				t.Fatalf("veritysetup verify accepted a flipped byte:\n%s", out)
			}
		})
	}
}

// TestMatchesVeritysetupFormat compares the bytes with what veritysetup
// format writes for the same salt and UUID.
func TestMatchesVeritysetupFormat(t *testing.T) {
	fixtures.NeedTools(t, "veritysetup")
	for _, tc := range sizes {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			d := data(tc.blocks)
			salt := Salt([]byte(tc.name))
			var ours bytes.Buffer
			root, err := Write(&ours, bytes.NewReader(d), int64(len(d)), salt)
			if err != nil {
				t.Fatal(err)
			}
			dataPath, hashPath := filepath.Join(dir, "data"), filepath.Join(dir, "hash")
			if err := os.WriteFile(dataPath, d, 0o644); err != nil {
				t.Fatal(err)
			}
			u := ours.Bytes()[16:32]
			uuidStr := Hex(u[0:4]) + "-" + Hex(u[4:6]) + "-" + Hex(u[6:8]) + "-" + Hex(u[8:10]) + "-" + Hex(u[10:16])
			out, err := exec.Command("veritysetup", "format", "--salt", Hex(salt), "--uuid", uuidStr, dataPath, hashPath).CombinedOutput()
			if err != nil {
				t.Fatalf("veritysetup format: %v\n%s", err, out)
			}
			if !bytes.Contains(out, []byte(Hex(root))) {
				t.Errorf("veritysetup's root hash differs from ours (%s):\n%s", Hex(root), out)
			}
			theirs, err := os.ReadFile(hashPath)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ours.Bytes(), theirs) {
				t.Errorf("hash file differs from veritysetup format's: %d vs %d bytes, sha256 %x vs %x",
					ours.Len(), len(theirs), sha256.Sum256(ours.Bytes()), sha256.Sum256(theirs))
			}
		})
	}
}

func TestReproducible(t *testing.T) {
	d := data(300)
	var a, b bytes.Buffer
	ra, err := Write(&a, bytes.NewReader(d), int64(len(d)), Salt([]byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	rb, err := Write(&b, bytes.NewReader(d), int64(len(d)), Salt([]byte("x")))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) || !bytes.Equal(ra, rb) {
		t.Fatal("two runs over the same data and salt differ")
	}
	var c bytes.Buffer
	rc, err := Write(&c, bytes.NewReader(d), int64(len(d)), Salt([]byte("y")))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(ra, rc) {
		t.Fatal("a different salt gave the same root hash")
	}
}

func TestSuperblockRoundTrip(t *testing.T) {
	d := data(3)
	salt := Salt([]byte("sb"))
	var h bytes.Buffer
	if _, err := Write(&h, bytes.NewReader(d), int64(len(d)), salt); err != nil {
		t.Fatal(err)
	}
	sb, err := ParseSuperblock(h.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if sb.DataBlocks != 3 || !bytes.Equal(sb.Salt, salt) {
		t.Fatalf("superblock says %d blocks, salt %x", sb.DataBlocks, sb.Salt)
	}
	bad := bytes.Clone(h.Bytes())
	bad[0] = 'V'
	if _, err := ParseSuperblock(bad); err == nil {
		t.Fatal("a bad magic parsed")
	}
}

func TestWriteRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int64
		salt []byte
	}{
		{"empty", 0, nil},
		{"partial block", BlockSize + 1, nil},
		{"long salt", BlockSize, make([]byte, 257)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := make([]byte, tc.size)
			if _, err := Write(&bytes.Buffer{}, bytes.NewReader(d), tc.size, tc.salt); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
