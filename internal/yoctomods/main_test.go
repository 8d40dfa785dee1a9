package main

import (
	"archive/zip"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
)

// TestIncCurrent fails when go.mod or go.sum changed without the .inc the
// Yocto recipe fetches its modules from: bitbake would then miss a module
// at do_compile, which has no network.
func TestIncCurrent(t *testing.T) {
	fixtures.NeedTools(t, "go")
	root := fixtures.RepoRoot()
	want, err := Generate(root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, IncPath))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s is stale: run `go run ./internal/yoctomods`\n--- want\n%s", IncPath, want)
	}
}

// TestOfflineBuild does what the recipe's do_unpack and do_compile do,
// with the host's Go: a module cache holding only the .inc's files laid
// out as bitbake's gomod fetcher unpacks them (the .zip, and the go.mod
// taken out of it), then, with GOPROXY=off and GOTOOLCHAIN=local, the
// three guest inits and c2vm embedding them. A module missing from the
// .inc, or a go directive newer than the toolchain, fails here.
func TestOfflineBuild(t *testing.T) {
	fixtures.NeedTools(t, "go")
	root := fixtures.RepoRoot()
	inc, err := os.ReadFile(filepath.Join(root, IncPath))
	if err != nil {
		t.Fatal(err)
	}
	entries := Parse(string(inc))
	if len(entries) == 0 {
		t.Fatalf("%s: no gomod:// entries", IncPath)
	}
	// The files come from a cache filled as the generator fills it, and
	// must hash as the .inc says: bitbake checks sha256sum the same way.
	src := t.TempDir()
	if err := Download(root, src); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.CachePath()))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(cache, e.CachePath())
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if sum, _ := sha256File(p); sum != e.SHA256 {
			t.Fatalf("%s: sha256 %s, the .inc says %s", e.CachePath(), sum, e.SHA256)
		}
		if !e.ModOnly {
			unpackGoMod(t, p, e)
		}
	}

	out := t.TempDir()
	env := append(os.Environ(), "GOMODCACHE="+cache, "GOPROXY=off", "GOTOOLCHAIN=local", "GOWORK=off",
		"GOFLAGS=-modcacherw", "GOOS=linux", "CGO_ENABLED=0")
	gobuild := func(arch string, args ...string) {
		t.Helper()
		cmd := exec.Command("go", append([]string{"build", "-trimpath"}, args...)...)
		cmd.Dir = root
		cmd.Env = append(env, "GOARCH="+arch)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build (GOARCH=%s) %s: %v\n%s", arch, strings.Join(args, " "), err, b)
		}
	}
	// c2vm embeds initramfs/bin (initramfs/init.go): an overlay puts the
	// inits there without writing into the source tree.
	overlay := map[string]string{}
	for _, a := range []string{"amd64", "arm64", "riscv64"} {
		p := filepath.Join(out, "c2vm-init-"+a)
		gobuild(a, "-ldflags=-s -w -buildid=", "-o", p, "./cmd/c2vm-init")
		overlay[filepath.Join(root, "initramfs", "bin", "c2vm-init-"+a)] = p
	}
	ov, _ := json.Marshal(map[string]any{"Replace": overlay})
	ovPath := filepath.Join(out, "overlay.json")
	if err := os.WriteFile(ovPath, ov, 0o644); err != nil {
		t.Fatal(err)
	}
	c2vm := filepath.Join(out, "c2vm")
	gobuild("amd64", "-overlay", ovPath, "-o", c2vm, "./cmd/c2vm")
	fi, err := os.Stat(c2vm)
	if err != nil {
		t.Fatal(err)
	}
	for a, p := range overlay {
		init, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() < init.Size() {
			t.Errorf("c2vm (%d bytes) is smaller than %s (%d): not embedded", fi.Size(), filepath.Base(a), init.Size())
		}
	}
}

// unpackGoMod writes MODULE@VERSION/go.mod from the zip beside it, as
// fetch2/gomod.py's unpack does.
func unpackGoMod(t *testing.T, zipPath string, e Entry) {
	t.Helper()
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	mod := []byte("module " + e.Module + "\n")
	if f, err := zr.Open(e.Module + "@" + e.Version + "/go.mod"); err == nil {
		mod, err = io.ReadAll(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(strings.TrimSuffix(zipPath, ".zip")+".mod", mod, 0o644); err != nil {
		t.Fatal(err)
	}
}
