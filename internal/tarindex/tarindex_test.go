package tarindex

import (
	"archive/tar"
	"bytes"
	"io"
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
