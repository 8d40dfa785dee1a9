package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
)

// copyFixture copies the amd64 OCI layout so a test can damage it.
func copyFixture(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "img")
	if out, err := exec.Command("cp", "-r", filepath.Join(fixtures.Dir(t), "busybox-amd64"), dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}

// layerBlobs lists the layer blob paths of the layout's only manifest.
func layerBlobs(t *testing.T, dir string) []string {
	t.Helper()
	var idx struct{ Manifests []struct{ Digest string } }
	b, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	json.Unmarshal(b, &idx)
	var m struct{ Layers []struct{ Digest string } }
	b, _ = os.ReadFile(filepath.Join(dir, "blobs/sha256", strings.TrimPrefix(idx.Manifests[0].Digest, "sha256:")))
	json.Unmarshal(b, &m)
	var out []string
	for _, l := range m.Layers {
		out = append(out, filepath.Join(dir, "blobs/sha256", strings.TrimPrefix(l.Digest, "sha256:")))
	}
	return out
}

// addRawLayer appends an uncompressed tar as a layer with umoci.
func addRawLayer(t *testing.T, dir string, entries map[string]string) {
	t.Helper()
	fixtures.NeedTools(t, "umoci")
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range entries {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	p := filepath.Join(t.TempDir(), "layer.tar")
	os.WriteFile(p, buf.Bytes(), 0o644)
	if out, err := exec.Command("umoci", "raw", "add-layer", "--image", dir+":latest", p).CombinedOutput(); err != nil {
		t.Fatalf("umoci raw add-layer: %v %s", err, out)
	}
}

// TestDamagedImages: damage found mid-conversion (while layers stream)
// still ends in one line, a non-zero exit, and nothing left behind.
func TestDamagedImages(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   string
	}{
		{"layer digest mismatch", func(t *testing.T, dir string) {
			l := layerBlobs(t, dir)[1]
			b, _ := os.ReadFile(l)
			b[len(b)-10] ^= 0x55
			os.WriteFile(l, b, 0o644)
		}, "layer sha256:"},
		// The headline of issue 10: a flipped byte mid-stream used to
		// decode to garbage and fail as "invalid tar header".
		{"layer byte flipped mid-stream", func(t *testing.T, dir string) {
			l := layerBlobs(t, dir)[0]
			b, _ := os.ReadFile(l)
			b[len(b)/2] ^= 0x55
			os.WriteFile(l, b, 0o644)
		}, "digest mismatch: got sha256:"},
		{"truncated layer", func(t *testing.T, dir string) {
			l := layerBlobs(t, dir)[0]
			b, _ := os.ReadFile(l)
			os.WriteFile(l, b[:len(b)/2], 0o644)
		}, "layer sha256:"},
		{"missing blob", func(t *testing.T, dir string) { os.Remove(layerBlobs(t, dir)[2]) }, "missing blob"},
		// "../../escape" lands at /escape, as in containerd; what
		// containerd refuses is a whiteout of the root's parent.
		{"whiteout of the root's parent", func(t *testing.T, dir string) {
			addRawLayer(t, dir, map[string]string{".wh...": ""})
		}, "invalid whiteout name: path escapes the root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyFixture(t)
			tc.damage(t, dir)
			parent := t.TempDir()
			out := filepath.Join(parent, "vm")
			code, stderr := c2vm(t, "convert", "-q", "--no-kernel", "oci:"+dir, "-o", out)
			if code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want one line with %q", code, stderr, tc.want)
			}
			if entries, _ := os.ReadDir(parent); len(entries) != 0 {
				t.Errorf("left behind: %v", entries)
			}
		})
	}
}
