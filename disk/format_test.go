package disk

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
)

// rawDisk writes a small raw image with data in a few places and holes
// between them.
func rawDisk(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, off := range []int64{0, 3 << 20, 17<<20 + 512} {
		if _, err := f.WriteAt(bytes.Repeat([]byte("c2vm disk "), 1000), off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(32 << 20); err != nil {
		t.Fatal(err)
	}
	return p
}

// convertTo converts a fresh copy of raw to f and returns the file.
func convertTo(t *testing.T, raw string, f Format, seed string) string {
	t.Helper()
	b, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(src, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, f.File())
	if err := Convert(src, out, f, seed); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(src); !os.IsNotExist(err) {
		t.Errorf("Convert left the raw image: %v", err)
	}
	return out
}

// TestConvertReproducible: each format converted twice (in different
// directories, at different times) gives the same bytes, passes
// `qemu-img check`, and reads back as the raw image (`qemu-img compare`);
// another seed gives another file, so the seed, not a constant, is what
// fills the fields qemu-img draws at random.
func TestConvertReproducible(t *testing.T) {
	fixtures.NeedTools(t, "qemu-img")
	raw := rawDisk(t)
	for _, f := range []Format{QCOW2, VMDK, VHDX} {
		t.Run(string(f), func(t *testing.T) {
			a, b := convertTo(t, raw, f, "seed"), convertTo(t, raw, f, "seed")
			ab, bb := readFile(t, a), readFile(t, b)
			if !bytes.Equal(ab, bb) {
				t.Errorf("two conversions differ at %d bytes", countDiff(ab, bb))
			}
			if out, err := exec.Command("qemu-img", "check", "-f", string(f), a).CombinedOutput(); err != nil {
				t.Errorf("qemu-img check: %v\n%s", err, out)
			}
			if out, err := exec.Command("qemu-img", "compare", "-f", "raw", "-F", string(f), raw, a).CombinedOutput(); err != nil {
				t.Errorf("qemu-img compare: %v\n%s", err, out)
			}
			if f != QCOW2 && bytes.Equal(ab, readFile(t, convertTo(t, raw, f, "other seed"))) {
				t.Errorf("another seed gives the same %s", f)
			}
		})
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func countDiff(a, b []byte) int {
	n := max(len(a), len(b)) - min(len(a), len(b))
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}

// TestFixRefusesOtherLayouts: a file not laid out as qemu-img's is
// refused, not patched blindly.
func TestFixRefusesOtherLayouts(t *testing.T) {
	for _, tc := range []struct {
		name string
		fix  func(*os.File, string) error
	}{{"vmdk", fixVMDK}, {"vhdx", fixVHDX}} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x")
			if err := os.WriteFile(p, bytes.Repeat([]byte{0}, 512<<10), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := fixFile(p, "seed", tc.fix); !errors.Is(err, errLayout) {
				t.Errorf("fix of zeros: %v, want errLayout", err)
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range Formats() {
		if got, err := ParseFormat(string(f)); got != f || err != nil {
			t.Errorf("ParseFormat(%q) = %q, %v", f, got, err)
		}
	}
	if _, err := ParseFormat("vdi"); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "raw, qcow2, vmdk, vhdx") {
		t.Errorf("ParseFormat(vdi): %v", err)
	}
	if Raw.File() != "disk.img" || VHDX.File() != "disk.vhdx" {
		t.Errorf("file names %s %s", Raw.File(), VHDX.File())
	}
}

// TestFixVMDKShortCID: qemu-img prints the CID without leading zeros;
// the fixed one has 8 digits and the lines after it move, intact.
func TestFixVMDKShortCID(t *testing.T) {
	b := make([]byte, 1024)
	copy(b, "KDMV")
	b[28], b[36] = 1, 1 // descriptor: sector 1, one sector
	copy(b[512:], "# Disk DescriptorFile\nversion=1\nCID=3f\nparentCID=ffffffff\n")
	p := filepath.Join(t.TempDir(), "x.vmdk")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fixFile(p, "seed", fixVMDK); err != nil {
		t.Fatal(err)
	}
	got := string(bytes.TrimRight(readFile(t, p)[512:], "\x00"))
	lines := strings.Split(got, "\n")
	if len(lines) != 5 || len(lines[2]) != len("CID=")+8 || lines[3] != "parentCID=ffffffff" || lines[2] == "CID=3f" {
		t.Errorf("descriptor after the fix:\n%s", got)
	}
}
