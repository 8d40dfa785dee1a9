package convert

import (
	"errors"
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

// TestStageLock: a second stage of one output fails at once with a line
// saying another c2vm is writing it; once the first is done, the lock
// file is gone and a new stage starts.
func TestStageLock(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	first, err := newStage(out)
	if err != nil {
		t.Fatal(err)
	}
	_, err = newStage(out)
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "output "+out+": another c2vm is writing it") {
		t.Fatalf("second stage: %v, want %v", err, ErrBusy)
	}
	if err := first.commit(); err != nil {
		t.Fatal(err)
	}
	if names := entries(t, dir); strings.Join(names, " ") != "out" {
		t.Errorf("after commit the output's parent holds %q, want only out", names)
	}
	again, err := newStage(out)
	if err != nil {
		t.Fatalf("stage after the first committed: %v", err)
	}
	again.abort()
	if names := entries(t, dir); strings.Join(names, " ") != "out" {
		t.Errorf("after abort the output's parent holds %q, want only out", names)
	}
}

// TestStageRemovesStale: what a killed run left beside the output (its
// temp dir, the earlier output it had moved aside) is removed by the next
// run into the same place, and nothing of another output's.
func TestStageRemovesStale(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{".out.tmp-123", ".out.tmp-123.old", ".other.tmp-9"} {
		if err := os.MkdirAll(filepath.Join(dir, d, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	st, err := newStage(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	st.abort()
	if names := entries(t, dir); strings.Join(names, " ") != ".other.tmp-9" {
		t.Errorf("left %q, want only .other.tmp-9", names)
	}
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}
