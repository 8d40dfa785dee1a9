package initramfs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/arch"
	"github.com/c2vm/c2vm/internal/fixtures"
)

func files() []File {
	return []File{
		{Path: "init", Mode: 0o755, Data: []byte("#!/bin/sh\n")},
		{Path: "c2vm/boot.json", Mode: 0o644, Data: []byte("{}")},
		{Path: "lib/modules/6.1/kernel/x.ko", Mode: 0o644, Data: []byte("ko!")},
	}
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	fixtures.NeedTools(t, tools...)
}

// TestListedByCpio: the real cpio(1) lists names, modes and the console
// device; the real decompressors read each compression.
func TestListedByCpio(t *testing.T) {
	need(t, "cpio", "zstd", "gzip")
	for name, c := range map[string]Compression{"zstd": Zstd, "gzip": Gzip} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Write(&buf, files(), Options{Compression: c, ModTime: time.Unix(1700000000, 0)}); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(t.TempDir(), "initrd")
			os.WriteFile(p, buf.Bytes(), 0o644)
			cmd := exec.Command("sh", "-c", name+" -dc < "+p+" | cpio -itv")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, want := range []string{
				"-rwxr-xr-x   1 root     root           10 Nov 14  2023 init",
				"crw-------   1 root     root       5,   1 Nov 14  2023 dev/console",
				"drwxr-xr-x   2 root     root            0 Nov 14  2023 lib/modules/6.1/kernel",
				"c2vm/boot.json",
			} {
				if !strings.Contains(string(out), want) {
					t.Errorf("cpio -itv lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestReproducible(t *testing.T) {
	var a, b bytes.Buffer
	if err := Write(&a, files(), Options{Compression: Zstd}); err != nil {
		t.Fatal(err)
	}
	fs := files()
	fs[0], fs[2] = fs[2], fs[0] // order of input does not matter
	if err := Write(&b, fs, Options{Compression: Zstd}); err != nil {
		t.Fatal(err)
	}
	if a.Len() == 0 || !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("same files, different bytes (%d and %d)", a.Len(), b.Len())
	}
}

// TestInitBinary builds the real init for each VM arch and checks it.
func TestInitBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds the init three times")
	}
	need(t, "go")
	for _, name := range arch.VMNames() {
		t.Run(name, func(t *testing.T) {
			a, _ := arch.VM(name)
			b, err := buildInit(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.CheckStatic(b); err != nil {
				t.Error(err)
			}
			t.Logf("init for %s: %d bytes", name, len(b))
			if len(b) > 3<<20 {
				t.Errorf("init is %d bytes, over the 3 MB budget", len(b))
			}
		})
	}
}
