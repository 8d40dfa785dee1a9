package convert

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/disk"
)

// TestOutputsTable: each output has its own name and a writer.
func TestOutputsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, out := range outputs {
		if out.name == "" || seen[out.name] || out.write == nil || out.phase > afterManifest {
			t.Errorf("output %q: unnamed, named twice, without a writer or a phase", out.name)
		}
		seen[out.name] = true
	}
}

// TestOptionsCheckedFirst: options no output or root filesystem can
// serve are refused before the image is opened (it does not exist here),
// for Convert's and ConvertAll's library callers alike.
func TestOptionsCheckedFirst(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-image.tar")
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"unknown disk format", Options{Disk: "vdi"}, `--disk: unknown disk format "vdi"`},
		{"disk without a kernel", Options{Disk: "raw", NoKernel: true}, "--disk needs a kernel"},
		{"unknown root filesystem", Options{RootfsFormat: "btrfs"}, `unknown --rootfs "btrfs"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Image = missing
			tc.o.Output = filepath.Join(t.TempDir(), "out")
			_, err := Convert(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Convert: %v; want %q", err, tc.want)
			}
			_, err = ConvertAll(context.Background(), tc.o, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ConvertAll: %v; want %q", err, tc.want)
			}
		})
	}
	if err := checkOutputs(&Options{Disk: "qcow2"}); err != nil {
		t.Errorf("--disk qcow2: %v", err)
	}
	if err := checkOutputs(&Options{Disk: "vdi"}); !errors.Is(err, disk.ErrFormat) {
		t.Errorf("--disk vdi: %v, want disk.ErrFormat", err)
	}
}
