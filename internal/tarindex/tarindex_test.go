package tarindex

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

type onlyReader struct{ io.Reader }

func TestIndex(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		tw.WriteHeader(h)
		tw.Write([]byte(body))
	}
	add(&tar.Header{Name: "./boot/vmlinuz-6.1", Typeflag: tar.TypeReg, Mode: 0o644, PAXRecords: map[string]string{"SCHILY.xattr.user.a": "b"}}, "kernel bytes")
	tw.WriteHeader(&tar.Header{Name: "vmlinuz", Typeflag: tar.TypeSymlink, Linkname: "boot/vmlinuz-6.1"})
	add(&tar.Header{Name: "/../etc/x", Typeflag: tar.TypeReg, Mode: 0o644}, "x")
	tw.Close()
	for name, r := range map[string]io.Reader{"seekable": bytes.NewReader(buf.Bytes()), "stream": onlyReader{bytes.NewReader(buf.Bytes())}} {
		idx, err := Index(r)
		if err != nil {
			t.Fatal(err)
		}
		for file, want := range map[string]string{"boot/vmlinuz-6.1": "kernel bytes", "vmlinuz": "kernel bytes", "etc/x": "x"} {
			m, ok := idx[file]
			if !ok {
				t.Fatalf("%s: %s not indexed: %v", name, file, idx)
			}
			if got := string(buf.Bytes()[m.Offset : m.Offset+m.Size]); got != want {
				t.Errorf("%s: %s = %q", name, file, got)
			}
		}
	}
}

// TestIndexBounds: GNU contiguous files are regular files (as tar reads
// them), a name longer than PATH_MAX is not indexed, and an archive whose
// names would take more than the bound is refused rather than held.
func TestIndexBounds(t *testing.T) {
	long := strings.Repeat("n/", maxName/2) + "x"
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "cont", Typeflag: tar.TypeCont, Mode: 0o644, Size: 1, Format: tar.FormatGNU},
		{Name: long, Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
	} {
		tw.WriteHeader(h)
		tw.Write([]byte("x"))
	}
	tw.Close()
	idx, err := Index(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := idx["cont"]; !ok {
		t.Errorf("contiguous file not indexed: %v", idx)
	}
	if _, ok := idx[long]; ok {
		t.Errorf("a %d-byte name was indexed", len(long))
	}

	// Names of 4000 bytes, each member a header and a PAX record only:
	// the stream grows by ~2.5 KiB per 4 KB kept, so the bound trips
	// after ~40 MB of input, not after gigabytes of memory.
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		for i := 0; ; i++ {
			name := fmt.Sprintf("%08d", i) + strings.Repeat("a", 3992)
			if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}); err != nil {
				return
			}
		}
	}()
	_, err = Index(pr)
	pr.CloseWithError(io.ErrClosedPipe)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
}
