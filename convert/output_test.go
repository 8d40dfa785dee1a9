package convert

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStageReplacesOnlyC2VMOutput(t *testing.T) {
	parent := t.TempDir()
	target := filepath.Join(parent, "out")

	// A fresh target: committed whole.
	st, err := newStage(target)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(st.path("manifest.json"), []byte("{}"), 0o644)
	if err := st.commit(); err != nil {
		t.Fatal(err)
	}
	// A previous output is replaced; aborting leaves it as it was.
	st, _ = newStage(target)
	os.WriteFile(st.path("half-written"), []byte("x"), 0o644)
	st.abort()
	if _, err := os.Stat(filepath.Join(target, "manifest.json")); err != nil {
		t.Error("abort touched the previous output")
	}
	st, _ = newStage(target)
	os.WriteFile(st.path("manifest.json"), []byte(`{"new":1}`), 0o644)
	if err := st.commit(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(target, "manifest.json")); string(b) != `{"new":1}` {
		t.Errorf("not replaced: %s", b)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Errorf("leftovers beside the output: %v", entries)
	}
	// Someone's directory is never replaced.
	mine := filepath.Join(parent, "mine")
	os.MkdirAll(mine, 0o755)
	os.WriteFile(filepath.Join(mine, "thesis.tex"), []byte("x"), 0o644)
	if _, err := newStage(mine); err == nil || !strings.Contains(err.Error(), "not a c2vm output") {
		t.Errorf("replacing a foreign dir: %v", err)
	}
}

func TestDefaultOutput(t *testing.T) {
	for in, want := range map[string]string{
		"alpine.tar": "alpine.vm", "oci-archive:/x/app.tar:latest": "app.vm", "oci:/img/dir/": "dir.vm", "docker-archive:b.tar.gz": "b.vm",
		"docker://localhost:5000/c2vm/busybox:1.36": "busybox.vm", "docker://ghcr.io/o/app@sha256:0123": "app.vm", "docker://alpine": "alpine.vm", "my@image.tar": "my@image.vm",
		"docker-daemon:c2vm/busybox:amd64": "busybox.vm", "docker-daemon:app@sha256:0123": "app.vm",
	} {
		if got := defaultOutput(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
