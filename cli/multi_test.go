package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
)

// TestConvertAllJSON: `convert --platform all --json` prints one document
// listing each platform's result, and -q prints nothing on stderr.
func TestConvertAllJSON(t *testing.T) {
	img := filepath.Join(fixtures.Dir(t), "busybox-multi")
	out := filepath.Join(t.TempDir(), "all.vm")
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), []string{"convert", "--platform", "all", "--no-kernel", "--json", "-q", "-o", out, img}, &stdout, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if stderr.Len() != 0 {
		t.Errorf("-q printed %q", stderr.String())
	}
	var res multiResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	if res.Dir != out || len(res.Platforms) != 2 || res.Image.IndexDigest == "" || res.Artifacts["manifest.json"].SHA256 == "" {
		t.Fatalf("result %+v", res)
	}
	for i, arch := range []string{"amd64", "arm64"} {
		p := res.Platforms[i]
		if p.Dir != filepath.Join(out, "linux-"+arch) || p.Image.Platform.Architecture != arch || p.Artifacts["rootfs.img"].Size == 0 {
			t.Errorf("platform %d: %+v", i, p)
		}
	}
}

// TestConvertAllUsage: options that serve one arch are command-line
// mistakes with several platforms (exit 2), as are malformed lists.
func TestConvertAllUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--platform", "all", "--vm-arch", "arm64"}, "--vm-arch"},
		{[]string{"--platform", "linux/amd64,linux/arm64", "--binfmt-interpreter", "/q"}, "--binfmt-interpreter"},
		{[]string{"--platform", "all", "--kernel", "/boot/vmlinuz"}, "ARCH=PATH"},
		{[]string{"--platform", "linux/amd64,,linux/arm64"}, "empty entry"},
		{[]string{"--platform", "all", "--disk", "raw", "--efi-stub", os.Args[0]}, "an EFI stub serves one arch"},
		{[]string{"--platform", "all", "--jobs", "-1"}, "--jobs -1: want 1 or more"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "never.vm")
			var stdout, stderr bytes.Buffer
			err := Run(context.Background(), append(append([]string{"convert", "-o", out}, tc.args...), "/nonexistent"), &stdout, &stderr)
			code, msg := exitStatus(err)
			if code != 2 || !strings.Contains(msg, tc.want) {
				t.Errorf("exit %d %q; want 2 naming %q", code, msg, tc.want)
			}
		})
	}
}
