package safeio

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestReader(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := Reader(ctx, strings.NewReader("abcdef"))
	b := make([]byte, 3)
	if n, err := r.Read(b); n != 3 || err != nil {
		t.Fatalf("%d %v", n, err)
	}
	cancel()
	if _, err := r.Read(b); !errors.Is(err, context.Canceled) {
		t.Errorf("after cancel: %v", err)
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	os.WriteFile(small, []byte("0123456789"), 0o644)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		limit      int64
		ok         bool
	}{
		{"fits", small, 10, true},
		{"too large", small, 9, false},
		{"directory", dir, 1 << 20, false},
		{"device", "/dev/zero", 1 << 20, false},
		{"fifo with no writer", fifo, 1 << 20, false},
		{"absent", filepath.Join(dir, "absent"), 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ReadFile(tc.path, tc.limit)
			if (err == nil) != tc.ok || tc.ok && string(b) != "0123456789" {
				t.Errorf("got %q, %v", b, err)
			}
		})
	}
}
