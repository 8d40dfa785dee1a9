package kernel

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
)

// TestDebControl reads packages that dpkg-deb built, under a file name that
// says nothing of them, with each of its control.tar compressions.
func TestDebControl(t *testing.T) {
	fixtures.NeedTools(t, "dpkg-deb")
	want := DebPackage{Package: "linux-image-6.1.0-99-cloud-amd64", Version: "6.1.999-1+deb12u1", Architecture: "amd64"}
	for _, z := range []string{"xz", "gzip", "zstd", "none"} {
		t.Run(z, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "pkg")
			if err := os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755); err != nil {
				t.Fatal(err)
			}
			control := "Package: " + want.Package + "\nVersion: " + want.Version + "\nArchitecture: " + want.Architecture +
				"\nMaintainer: nobody <nobody@example.org>\nDescription: a test\n continued\n"
			if err := os.WriteFile(filepath.Join(root, "DEBIAN", "control"), []byte(control), 0o644); err != nil {
				t.Fatal(err)
			}
			deb := filepath.Join(dir, "kernel.deb")
			if out, err := exec.Command("dpkg-deb", "--root-owner-group", "-Z"+z, "--build", root, deb).CombinedOutput(); err != nil {
				t.Fatalf("dpkg-deb: %v: %s", err, out)
			}
			got, err := DebControl(deb)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
	t.Run("not a deb", func(t *testing.T) {
		if _, err := DebControl(writeFile(t, "k.deb", []byte("MZ not an ar archive"))); !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("got %v, want ErrUnknownFormat", err)
		}
	})
	t.Run("no control", func(t *testing.T) {
		if _, err := DebControl(writeFile(t, "k.deb", deb(t, "control.tar", tarOf(t, "./md5sums", []byte("x"))))); !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("got %v, want ErrUnknownFormat", err)
		}
	})
}
